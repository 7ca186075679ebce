//! `ao-fake-claude`: a scripted stand-in for the `claude` CLI (2.1.329) in
//! stream-json mode, for fast deterministic tests of the runner.
//! See `tests/fake_claude/README.md` for the scenarios and environment variables.

mod args;
mod ledger;
mod proto;
mod runtime;
mod scenario;

use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use proto::Ctx;
use runtime::{Input, Out, Shared};
use scenario::{Ending, Scenario};

const DEFAULT_ANSWER_TIMEOUT_MS: u64 = 10_000;

fn main() {
    let argv: Vec<String> = std::env::args().skip(1).collect();
    let args = match args::parse(&argv) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            std::process::exit(1);
        }
    };
    if args.version {
        println!("{} (Claude Code fake)", ledger::release());
        return;
    }
    if args.help {
        print_help();
        return;
    }
    let cwd = match std::env::current_dir() {
        Ok(d) => d.display().to_string(),
        Err(e) => {
            eprintln!("fake-claude: cannot read the current directory: {e}");
            std::process::exit(1);
        }
    };
    let shared = Shared::new(argv, cwd);
    if let Err(e) = runtime::handle_signals(shared.clone()) {
        shared.fail(1, &e);
    }
    if let Some(path) = &args.mcp_config {
        read_mcp_config(&shared, path);
    }
    let rx = runtime::spawn_reader(shared.clone());
    Session::new(shared, rx, args).run()
}

/// Whether two folders are in worktrees of one git repository.
fn same_repository(a: &str, b: &str) -> bool {
    let common = |dir: &str| {
        std::process::Command::new("git")
            .args([
                "-C",
                dir,
                "rev-parse",
                "--path-format=absolute",
                "--git-common-dir",
            ])
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
    };
    matches!((common(a), common(b)), (Some(x), Some(y)) if x == y)
}

/// `--help`: the flags of the release imitated, as the real CLI lists them.
fn print_help() {
    println!("Usage: claude [options] [command] [prompt]\n\nOptions:");
    println!("  --resume [value]                      Resume a conversation");
    if args::has_fork_and_budget() {
        println!("  --fork-session                        When resuming, create a new session ID");
        println!(
            "  --max-budget-usd <amount>             Maximum dollar amount to spend on API calls"
        );
    }
    println!("  --model <model>                       Model for the current session");
}

/// One process: the conversation with the driver.
struct Session {
    shared: Arc<Shared>,
    rx: Receiver<Input>,
    out: Out,
    args: args::Args,
    answer_timeout: Duration,
    started: Instant,
    hook_callback_id: Option<String>,
    /// The PreToolUse callback id, when the driver registered one.
    pre_hook_callback_id: Option<String>,
    /// The session, once init is out: an interrupt then ends the turn.
    session_id: Option<String>,
    /// Interrupt requests go unanswered (the `deaf` scenario).
    deaf: bool,
    /// What the conversation spent before this run, and after.
    ledger: ledger::Ledger,
}

/// A stdin line, parsed.
enum Msg {
    Json(Value),
    Eof,
}

impl Session {
    fn new(shared: Arc<Shared>, rx: Receiver<Input>, args: args::Args) -> Session {
        Session {
            out: Out::new(shared.clone()),
            shared,
            rx,
            args,
            answer_timeout: Duration::from_millis(DEFAULT_ANSWER_TIMEOUT_MS),
            started: Instant::now(),
            hook_callback_id: None,
            pre_hook_callback_id: None,
            session_id: None,
            deaf: false,
            ledger: ledger::Ledger::new(None, None, ""),
        }
    }

    fn run(mut self) -> ! {
        match env_number("FAKE_CLAUDE_ANSWER_TIMEOUT_MS") {
            Ok(Some(ms)) => self.answer_timeout = Duration::from_millis(ms),
            Ok(None) => {}
            Err(e) => self.shared.fail(1, &e),
        }
        // 1. The scenario from the environment is known before any I/O.
        let env_spec = std::env::var("FAKE_CLAUDE_SCENARIO")
            .ok()
            .filter(|s| !s.trim().is_empty());
        let env_scenario = env_spec.as_deref().map(|spec| self.scenario(spec));
        let state_dir = std::env::var_os("FAKE_CLAUDE_STATE_DIR")
            .filter(|d| !d.is_empty())
            .map(std::path::PathBuf::from);
        // As the real CLI, which keys conversations by directory: a
        // conversation is found only from the directory it began in.
        // A fork is found from another worktree of the same repository too
        // (as 2.1.329 finds it).
        let unknown_resume = match (&self.args.resume, &state_dir) {
            (Some(id), Some(dir)) => {
                uuid::Uuid::parse_str(id).is_err()
                    || std::fs::read_to_string(dir.join(id)).map_or(true, |cwd| {
                        let cwd = cwd.trim_end();
                        cwd != self.shared.cwd()
                            && !(self.args.fork_session && same_repository(cwd, self.shared.cwd()))
                    })
            }
            _ => false,
        };
        if unknown_resume
            || env_scenario
                .as_ref()
                .is_some_and(|s| s.ending == Ending::NoInit)
        {
            if unknown_resume {
                self.shared.set_scenario("noinit");
            }
            // As in bad_resume.txt: the initialize request arrives, nothing answers it.
            let _ = self.next(None);
            self.noinit();
        }

        // 2. initialize, then the user message.
        let prompt = self.read_prompt();

        // 3. A scenario in the prompt counts only when the environment names none.
        let sc = match env_scenario {
            Some(sc) => sc,
            None => match scenario::from_prompt(&prompt) {
                Some(spec) => self.scenario(spec),
                None => Scenario::default(),
            },
        };
        if sc.ending == Ending::NoInit {
            self.noinit();
        }
        self.out.slow = Duration::from_millis(sc.slow_ms);
        self.deaf = sc.deaf;
        if sc.noterm {
            self.shared.ignore_sigterm();
        }

        // 4. init
        // Claude Code before 1.0.124 gave a resumed conversation a new id.
        let new_id_on_resume =
            std::env::var("FAKE_CLAUDE_NEW_ID_ON_RESUME").is_ok_and(|v| v == "1");
        let ctx = Ctx {
            session_id: match &self.args.resume {
                Some(id) if !new_id_on_resume && !self.args.fork_session => id.clone(),
                _ => uuid::Uuid::new_v4().to_string(),
            },
            cwd: self.shared.cwd().to_string(),
            model: self
                .args
                .model
                .clone()
                .unwrap_or_else(|| proto::DEFAULT_MODEL.to_string()),
            permission_mode: self
                .args
                .permission_mode
                .clone()
                .unwrap_or_else(|| "default".to_string()),
        };
        self.shared.set_session_id(&ctx.session_id);
        if let Some(dir) = state_dir
            .as_ref()
            .filter(|_| self.args.resume.is_none() || new_id_on_resume || self.args.fork_session)
        {
            let made = std::fs::create_dir_all(dir)
                .and_then(|()| std::fs::write(dir.join(&ctx.session_id), format!("{}\n", ctx.cwd)));
            if let Err(e) = made {
                self.shared.fail(
                    1,
                    &format!("cannot write session file in {}: {e}", dir.display()),
                );
            }
        }
        self.ledger = ledger::Ledger::new(
            state_dir.as_ref(),
            self.args.resume.as_deref(),
            &ctx.session_id,
        );
        self.out.line(&proto::system_init(&ctx));
        self.out.after_init = true;
        self.session_id = Some(ctx.session_id.clone());

        // 5. The scripted middle part.
        if let Some(file) = &sc.edit {
            let path = std::path::Path::new(self.shared.cwd()).join(file);
            let edited = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .and_then(|mut f| {
                    use std::io::Write;
                    writeln!(f, "{}", prompt.trim())
                });
            if let Err(e) = edited {
                self.shared
                    .fail(1, &format!("cannot edit {}: {e}", path.display()));
            }
        }
        if sc.garbage {
            self.out.raw(b"this is not json {\n");
        }
        let turn_limit = self.args.max_turns.filter(|max| sc.tools >= *max);
        for n in 1..=turn_limit.unwrap_or(sc.tools) {
            if let Some(file) = &sc.children {
                self.start_children(file);
            }
            if sc.narrate {
                self.say(&ctx, &format!("I will run tool {n}."));
            }
            self.tool_call(&ctx, n);
            self.check_budget(&ctx, n);
        }
        if let Some(max) = turn_limit {
            // As the real CLI: the turn that would exceed the limit ends the run.
            let mut result = proto::max_turns_result(&ctx, max, self.elapsed_ms());
            self.ledger.report(&mut result, |_| {});
            self.out.line(&result);
            self.drain();
            self.shared.finish(1)
        }
        let outcomes = self.requests(&ctx, &sc);
        if sc.control {
            let id = proto::new_request_id();
            self.out.line(&proto::can_use_tool(&id));
            self.await_response(&id, "control request", " (can_use_tool)");
            let id = proto::new_request_id();
            self.out.line(&proto::mystery_request(&id));
            self.await_response(&id, "control request", " (mystery_request)");
        }

        // 6. The ending.
        let turns = sc.tools + 1;
        match sc.ending {
            Ending::Answer => {
                // The answer's turn counts too (2.1.329 ends such a run with
                // the budget's error after the model answered).
                self.check_budget(&ctx, turns);
                let structured = self.args.json_schema.as_deref().map(|schema| {
                    match serde_json::from_str::<Value>(schema) {
                        Ok(schema) => proto::sample_document(&schema),
                        Err(e) => self
                            .shared
                            .fail(1, &format!("--json-schema is not JSON: {e}")),
                    }
                });
                let text = match (&structured, sc.bigline) {
                    (Some(doc), _) => doc.to_string(),
                    (None, Some(len)) => big_text(len),
                    (None, None) => format!(
                        "fake answer to: {}{}",
                        head(prompt.trim(), 200),
                        outcomes
                            .iter()
                            .map(|o| format!(" [{o}]"))
                            .collect::<String>()
                    ),
                };
                self.say(&ctx, &text);
                let mut result = proto::result(&ctx, &text, false, turns, self.elapsed_ms());
                if let Some(doc) = structured {
                    result["structured_output"] = doc;
                }
                let shared = &self.shared;
                self.ledger
                    .report(&mut result, |r| override_result(shared, r));
                self.out.line(&result);
                self.drain();
                self.shared.finish(sc.exit_code.unwrap_or(0))
            }
            Ending::Error => {
                let text = "API Error: 400 fake: prompt rejected";
                self.out.line(&proto::synthetic_error_assistant(&ctx, text));
                let mut result = proto::result(&ctx, text, true, turns, self.elapsed_ms());
                self.ledger.report(&mut result, |_| {});
                self.out.line(&result);
                self.drain();
                self.shared.finish(sc.exit_code.unwrap_or(1))
            }
            Ending::Crash => {
                self.say(&ctx, "Let me look into that first.");
                self.shared.fail(2, "fatal: simulated crash\n  at step 2")
            }
            Ending::Sigkill => runtime::sigkill(&self.shared),
            Ending::Hang => {
                // Until an interrupt, SIGTERM/SIGINT (see runtime::handle_signals) or SIGKILL.
                while let Some(Msg::Json(v)) = self.next(None) {
                    self.incidental(&v);
                }
                loop {
                    std::thread::park();
                }
            }
            Ending::NoInit => self.noinit(),
        }
    }

    /// `--max-budget-usd`: after each turn, a spend past the budget ends
    /// the run as 2.1.329 does (a `result` of subtype
    /// `error_max_budget_usd`, exit 1 after stdin EOF). A turn costs what
    /// a result reports per turn. The spend is the run's own, even where
    /// the release reports sums (seen with 2.1.329: a resume of a
    /// conversation that had spent more than the budget still runs).
    fn check_budget(&self, ctx: &Ctx, turns: u32) {
        let Some(max) = self.args.max_budget_usd else {
            return;
        };
        let mut result = proto::budget_result(ctx, max, turns, self.elapsed_ms());
        if result["total_cost_usd"].as_f64().unwrap_or(0.0) <= max {
            return;
        }
        self.ledger.report(&mut result, |_| {});
        self.out.line(&result);
        self.drain();
        self.shared.finish(1)
    }

    fn scenario(&self, spec: &str) -> Scenario {
        self.shared.set_scenario(spec);
        match scenario::parse(spec) {
            Ok(sc) => {
                if let Some(text) = &sc.stderr {
                    eprintln!("{text}");
                }
                sc
            }
            Err(e) => self.shared.fail(1, &e),
        }
    }

    fn elapsed_ms(&self) -> u128 {
        self.started.elapsed().as_millis()
    }

    /// The next non-empty stdin line, parsed; waits at most `timeout`.
    /// `None` on timeout. A line that is not JSON ends the process (exit 1).
    fn next(&self, timeout: Option<Duration>) -> Option<Msg> {
        loop {
            let input = match timeout {
                None => self.rx.recv().ok(),
                Some(t) => match self.rx.recv_timeout(t) {
                    Ok(i) => Some(i),
                    Err(RecvTimeoutError::Timeout) => return None,
                    Err(RecvTimeoutError::Disconnected) => None,
                },
            };
            let line = match input {
                Some(Input::Line(l)) => l,
                Some(Input::Eof) | None => return Some(Msg::Eof),
            };
            if line.trim().is_empty() {
                continue;
            }
            match serde_json::from_str::<Value>(&line) {
                Ok(v) => return Some(Msg::Json(v)),
                Err(e) => self.shared.fail(
                    1,
                    &format!("stdin line is not JSON ({e}): {}", head(&line, 200)),
                ),
            }
        }
    }

    /// Answers `initialize`, returns the text of the first `user` message.
    /// EOF before that: exit 0 quietly.
    fn read_prompt(&mut self) -> String {
        loop {
            let v = match self.next(None) {
                Some(Msg::Json(v)) => v,
                Some(Msg::Eof) | None => self.shared.finish(0),
            };
            match v["type"].as_str() {
                Some("user") => return self.prompt_text(&v),
                Some("control_request") if v["request"]["subtype"] == "initialize" => {
                    let hooks = &v["request"]["hooks"];
                    self.hook_callback_id = hooks["PostToolUse"][0]["hookCallbackIds"][0]
                        .as_str()
                        .map(String::from);
                    self.pre_hook_callback_id = hooks["PreToolUse"][0]["hookCallbackIds"][0]
                        .as_str()
                        .map(String::from);
                    let model = self.args.model.as_deref().unwrap_or(proto::DEFAULT_MODEL);
                    let mode = self.args.permission_mode.as_deref().unwrap_or("default");
                    self.out
                        .line(&proto::initialize_response(&v["request_id"], model, mode));
                }
                _ => self.incidental(&v),
            }
        }
    }

    fn prompt_text(&self, v: &Value) -> String {
        let content = &v["message"]["content"];
        if let Some(s) = content.as_str() {
            return s.to_string();
        }
        if let Some(blocks) = content.as_array() {
            let texts: Vec<&str> = blocks
                .iter()
                .filter(|b| b["type"] == "text")
                .filter_map(|b| b["text"].as_str())
                .collect();
            if !texts.is_empty() {
                return texts.join("\n");
            }
        }
        self.shared
            .fail(1, "user message without message.content text")
    }

    /// A stdin message that is not the one being waited for: an `interrupt`
    /// once the session runs ends the turn as the real CLI does (answer, a
    /// `result` of subtype `error_during_execution`, then exit 1 at stdin
    /// EOF); other control requests of the driver get an error answer;
    /// everything else is ignored.
    fn incidental(&self, v: &Value) {
        if v["type"] != "control_request" {
            return;
        }
        let subtype = v["request"]["subtype"].as_str().unwrap_or("");
        match (&self.session_id, subtype) {
            (_, "interrupt") if self.deaf => {}
            (Some(session_id), "interrupt") => {
                self.out.line(&proto::control_success(&v["request_id"]));
                self.out
                    .line(&proto::interrupted_result(session_id, self.elapsed_ms()));
                self.drain();
                self.shared.finish(1)
            }
            _ => self
                .out
                .line(&proto::control_error(&v["request_id"], subtype)),
        }
    }

    /// A text the model writes: its assistant line and, with
    /// `--include-partial-messages`, the stream around it (the text in three
    /// deltas, which alone wait out `slow`, as a model writes).
    fn say(&self, ctx: &Ctx, text: &str) {
        if !self.args.partial_messages {
            self.out.line(&proto::assistant_text(ctx, text));
            return;
        }
        let quick = |event: Value| self.out.quick_line(&proto::stream_event(ctx, event));
        quick(
            json!({"type": "message_start", "message": {"id": proto::message_id(), "role": "assistant", "content": []}}),
        );
        quick(
            json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        );
        let chars: Vec<char> = text.chars().collect();
        for piece in chars.chunks(chars.len().div_ceil(3).max(1)) {
            let delta = json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "text_delta", "text": piece.iter().collect::<String>()}});
            self.out.line(&proto::stream_event(ctx, delta));
        }
        self.out.quick_line(&proto::assistant_text(ctx, text));
        quick(json!({"type": "content_block_stop", "index": 0}));
        quick(json!({"type": "message_stop"}));
    }

    /// One Bash tool call: tool_use, hook callback (awaited), tool_result.
    fn tool_call(&self, ctx: &Ctx, n: u32) {
        let tool_use_id = proto::new_tool_use_id();
        self.out
            .line(&proto::assistant_tool_use(ctx, &tool_use_id, n));
        for (callback_id, event) in [
            (&self.pre_hook_callback_id, "PreToolUse"),
            (&self.hook_callback_id, "PostToolUse"),
        ] {
            let Some(callback_id) = callback_id else {
                continue;
            };
            let request_id = proto::new_request_id();
            self.out.line(&proto::hook_callback(
                ctx,
                &request_id,
                callback_id,
                event,
                &tool_use_id,
                n,
            ));
            self.await_response(&request_id, "hook callback", "");
        }
        self.out
            .line(&proto::user_tool_result(ctx, &tool_use_id, n));
    }

    /// The `permission:FILE` and `question` calls: each asks the driver
    /// (`can_use_tool`) when started with `--permission-prompt-tool stdio`,
    /// and acts on the answer. Answers what became of each, for the final
    /// answer's text.
    fn requests(&self, ctx: &Ctx, sc: &Scenario) -> Vec<String> {
        let mut calls = Vec::new();
        if let Some(file) = &sc.permission {
            calls.push(Request::permission(ctx, file));
        }
        if sc.question {
            calls.push(Request::question());
        }
        let stdio = self.args.permission_prompt_tool.as_deref() == Some("stdio");
        let bypass = self.args.permission_mode.as_deref() == Some("bypassPermissions");
        let mut outcomes = Vec::new();
        let mut waiting = Vec::new();
        for call in calls {
            self.out.line(&proto::assistant_call(
                ctx,
                &call.tool_use_id,
                call.tool_name,
                &call.input,
            ));
            self.hook(ctx, &call, "PreToolUse");
            if call.file.is_some() && bypass {
                outcomes.push(self.conclude(ctx, &call, &serde_json::json!({"behavior": "allow"})));
            } else if !stdio {
                self.out.line(&proto::permission_denied(
                    ctx,
                    call.tool_name,
                    &call.tool_use_id,
                ));
                let text = format!(
                    "Claude requested permissions to use {}, but it needs approval.",
                    call.tool_name
                );
                self.out
                    .line(&proto::tool_result(ctx, &call.tool_use_id, &text, true));
                outcomes.push(format!("{}: needs approval", call.label()));
            } else {
                self.out.line(&call.request(ctx));
                note_time(&call.request_id, "asked");
                waiting.push(call);
                if !sc.together {
                    outcomes.extend(self.settle(ctx, &mut waiting));
                }
            }
        }
        outcomes.extend(self.settle(ctx, &mut waiting));
        outcomes
    }

    /// Waits for the answers to `waiting`'s requests (in any order, with no
    /// time limit, as the real CLI) and acts on each.
    fn settle(&self, ctx: &Ctx, waiting: &mut Vec<Request>) -> Vec<String> {
        let mut answers: Vec<Option<Value>> = waiting.iter().map(|_| None).collect();
        while answers.iter().any(Option::is_none) {
            match self.next(None) {
                Some(Msg::Json(v)) => {
                    let slot = waiting.iter().position(|c| {
                        v["type"] == "control_response"
                            && v["response"]["request_id"] == c.request_id.as_str()
                    });
                    match slot {
                        Some(i) => {
                            note_time(&waiting[i].request_id, "answered");
                            answers[i] = Some(v["response"]["response"].clone());
                        }
                        None => self.incidental(&v),
                    }
                }
                Some(Msg::Eof) | None => {
                    let open: Vec<&str> = waiting.iter().map(|c| c.request_id.as_str()).collect();
                    self.shared.fail(
                        3,
                        &format!(
                            "no answer to control request {} (can_use_tool)",
                            open.join(", ")
                        ),
                    )
                }
            }
        }
        let done: Vec<Request> = std::mem::take(waiting);
        done.iter()
            .zip(answers)
            .map(|(call, answer)| self.conclude(ctx, call, &answer.unwrap_or_default()))
            .collect()
    }

    /// Acts on the answer to one call: an allowed write writes its file, an
    /// answered question reads the answers; answers what became of it.
    fn conclude(&self, ctx: &Ctx, call: &Request, answer: &Value) -> String {
        let label = call.label();
        if answer["behavior"] != "allow" {
            let message = answer["message"].as_str().unwrap_or("denied");
            self.out
                .line(&proto::tool_result(ctx, &call.tool_use_id, message, true));
            return format!("{label}: denied: {message}");
        }
        let (result, outcome) = match &call.file {
            Some(file) => {
                let path = std::path::Path::new(self.shared.cwd()).join(file);
                if let Err(e) = std::fs::write(&path, "written-by-fake\n") {
                    self.shared
                        .fail(1, &format!("cannot write {}: {e}", path.display()));
                }
                let always = answer["updatedPermissions"].as_array().map_or(0, Vec::len);
                let outcome = match always {
                    0 => format!("{label}: allowed"),
                    n => format!("{label}: allowed always ({n} suggestions)"),
                };
                ("(Bash completed with no output)".to_owned(), outcome)
            }
            None => match answer["updatedInput"]["answers"].as_object() {
                Some(answers) if !answers.is_empty() => {
                    let pairs: Vec<String> = answers
                        .iter()
                        .map(|(q, a)| format!("{q}={}", a.as_str().unwrap_or("")))
                        .collect();
                    let quoted: Vec<String> = answers
                        .iter()
                        .map(|(q, a)| format!("\"{q}\"=\"{}\"", a.as_str().unwrap_or("")))
                        .collect();
                    (
                        format!("Your questions have been answered: {}.", quoted.join(", ")),
                        format!("{label}: {}", pairs.join(", ")),
                    )
                }
                _ => (
                    "The user did not answer the questions.".to_owned(),
                    format!("{label}: not answered"),
                ),
            },
        };
        self.hook(ctx, call, "PostToolUse");
        self.out
            .line(&proto::tool_result(ctx, &call.tool_use_id, &result, false));
        outcome
    }

    /// The call's hook callback for `event`, when the driver registered one.
    fn hook(&self, ctx: &Ctx, call: &Request, event: &str) {
        let callback = match event {
            "PreToolUse" => &self.pre_hook_callback_id,
            _ => &self.hook_callback_id,
        };
        let Some(callback) = callback else { return };
        let request_id = proto::new_request_id();
        let response = match event {
            "PreToolUse" => Value::Null,
            _ => serde_json::json!({"stdout": "", "stderr": "", "interrupted": false}),
        };
        let hook = proto::Call {
            tool_use_id: &call.tool_use_id,
            tool_name: call.tool_name,
            input: call.input.clone(),
            response,
        };
        self.out
            .line(&proto::tool_hook(ctx, &request_id, callback, event, &hook));
        self.await_response(&request_id, "hook callback", "");
    }

    /// What a Bash command may leave running: a `sleep 3600` in a session of
    /// its own that stays our child (Claude Code runs each command so), and
    /// one double-forked away, an orphan at once (as `(server &)` does).
    /// Their pids are appended to `file`.
    fn start_children(&self, file: &str) {
        use std::process::{Command, Stdio};
        let own_session = Command::new("setsid")
            .args(["sleep", "3600"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .map(|child| child.id().to_string());
        let orphan = Command::new("sh")
            .args([
                "-c",
                "setsid sleep 3600 </dev/null >/dev/null 2>&1 & echo $!",
            ])
            .stdin(Stdio::null())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned());
        let path = std::path::Path::new(self.shared.cwd()).join(file);
        let written = own_session
            .and_then(|a| orphan.map(|b| format!("{a}\n{b}\n")))
            .and_then(|pids| {
                use std::io::Write;
                std::fs::OpenOptions::new()
                    .create(true)
                    .append(true)
                    .open(&path)?
                    .write_all(pids.as_bytes())
            });
        if let Err(e) = written {
            self.shared.fail(
                1,
                &format!("cannot start children ({}): {e}", path.display()),
            );
        }
    }

    /// Waits for the `control_response` to `request_id`; exit 3 when none comes
    /// within the answer timeout or stdin ends first.
    fn await_response(&self, request_id: &str, what: &str, detail: &str) {
        let deadline = Instant::now() + self.answer_timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.next(Some(left)) {
                Some(Msg::Json(v)) => {
                    if v["type"] == "control_response" && v["response"]["request_id"] == request_id
                    {
                        return;
                    }
                    self.incidental(&v);
                }
                Some(Msg::Eof) | None => self
                    .shared
                    .fail(3, &format!("no answer to {what} {request_id}{detail}")),
            }
        }
    }

    /// After the result: read stdin until EOF.
    fn drain(&self) {
        while let Some(Msg::Json(v)) = self.next(None) {
            if v["type"] != "control_response" {
                self.incidental(&v);
            }
        }
    }

    /// bad_resume.txt: no init, one error result, the reason on stderr, exit 1.
    fn noinit(&self) -> ! {
        let id = self
            .args
            .resume
            .clone()
            .unwrap_or_else(|| uuid::Uuid::nil().to_string());
        self.shared.set_session_id(&id);
        self.out.line(&proto::noinit_result(&id));
        eprintln!("{}", proto::no_conversation(&id));
        self.shared.finish(1)
    }
}

/// A tool call that may need the driver's decision.
struct Request {
    tool_name: &'static str,
    tool_use_id: String,
    request_id: String,
    input: Value,
    /// The file a permission call writes (`None`: the question).
    file: Option<String>,
    path: String,
}

impl Request {
    fn permission(ctx: &Ctx, file: &str) -> Request {
        Request {
            tool_name: "Bash",
            tool_use_id: proto::new_tool_use_id(),
            request_id: proto::new_request_id(),
            input: proto::write_input(file),
            file: Some(file.to_owned()),
            path: std::path::Path::new(&ctx.cwd)
                .join(file)
                .display()
                .to_string(),
        }
    }

    fn question() -> Request {
        Request {
            tool_name: "AskUserQuestion",
            tool_use_id: proto::new_tool_use_id(),
            request_id: proto::new_request_id(),
            input: proto::question_input(),
            file: None,
            path: String::new(),
        }
    }

    fn label(&self) -> &'static str {
        if self.file.is_some() {
            "permission"
        } else {
            "question"
        }
    }

    /// Its `can_use_tool` control request.
    fn request(&self, ctx: &Ctx) -> Value {
        match self.file {
            Some(_) => proto::permission_request(
                ctx,
                &self.request_id,
                &self.tool_use_id,
                &self.input,
                &self.path,
            ),
            None => proto::question_request(&self.request_id, &self.tool_use_id, &self.input),
        }
    }
}

/// Reads `--mcp-config` as the real CLI would before starting, and records
/// what it read and the file's mode for the log.
fn read_mcp_config(shared: &Shared, path: &str) {
    use std::os::unix::fs::PermissionsExt;
    let read = std::fs::read_to_string(path)
        .map_err(|e| e.to_string())
        .and_then(|text| serde_json::from_str::<Value>(&text).map_err(|e| e.to_string()));
    match read {
        Ok(config) if config["mcpServers"].is_object() => {
            let mode = std::fs::metadata(path)
                .map(|m| m.permissions().mode() & 0o777)
                .unwrap_or(0);
            shared.set_mcp_config(
                serde_json::json!({"content": config, "mode": format!("{mode:o}")}),
            );
        }
        Ok(_) => shared.fail(
            1,
            &format!("Invalid MCP configuration in {path}: no mcpServers"),
        ),
        Err(e) => shared.fail(1, &format!("Invalid MCP configuration in {path}: {e}")),
    }
}

/// With `FAKE_CLAUDE_TIMES=FILE`: appends `{"request_id","what","at_ns"}`
/// (nanoseconds since the epoch, this machine's clock) for a benchmark that
/// times a request's way from the CLI and its answer's way back.
fn note_time(request_id: &str, what: &str) {
    let Some(path) = std::env::var_os("FAKE_CLAUDE_TIMES").filter(|p| !p.is_empty()) else {
        return;
    };
    let at_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos());
    let line = format!(
        "{}\n",
        serde_json::json!({"request_id": request_id, "what": what, "at_ns": at_ns.to_string()})
    );
    let _ = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .and_then(|mut f| {
            use std::io::Write;
            f.write_all(line.as_bytes())
        });
}

fn env_number(name: &str) -> Result<Option<u64>, String> {
    match std::env::var(name) {
        Ok(s) if !s.trim().is_empty() => s
            .trim()
            .parse()
            .map(Some)
            .map_err(|_| format!("{name}={s:?} is not a number")),
        _ => Ok(None),
    }
}

/// The first `max` characters of `s`.
fn head(s: &str, max: usize) -> &str {
    match s.char_indices().nth(max) {
        Some((i, _)) => &s[..i],
        None => s,
    }
}

/// An ASCII text of exactly `len` bytes.
fn big_text(len: usize) -> String {
    let mut text = String::with_capacity(len);
    text.push_str("fake big answer: ");
    text.truncate(len);
    while text.len() < len {
        text.push('x');
    }
    text
}

/// `FAKE_CLAUDE_RESULT`, a JSON object, replaces fields of the result
/// line (cost, usage, turns...): known or broken figures for tests.
fn override_result(shared: &Shared, result: &mut Value) {
    let Ok(text) = std::env::var("FAKE_CLAUDE_RESULT") else {
        return;
    };
    match serde_json::from_str::<serde_json::Map<String, Value>>(&text) {
        Ok(fields) => {
            for (key, value) in fields {
                result[key] = value;
            }
        }
        Err(e) => shared.fail(1, &format!("FAKE_CLAUDE_RESULT is not a JSON object: {e}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_counts_chars() {
        assert_eq!(head("héllo", 2), "hé");
        assert_eq!(head("ab", 200), "ab");
    }

    #[test]
    fn big_text_has_exact_length() {
        for len in [1, 5, 17, 18, 1_048_576] {
            assert_eq!(big_text(len).len(), len);
        }
    }
}
