//! The command line shared by `ao-new` and `ao-resume`: parse, read the
//! prompt, run (here, or detached), and turn the outcome into stdout,
//! stderr and an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nix::sys::signal::Signal;
use serde::Serialize;

use super::detach::{self, CHILD_FLAG};
use super::flags::RunFlags;
use super::remote;
use super::{Hooks, Mode, Outcome, RunError, RunRequest, check, run};
use crate::backup::SessionFiles;
use crate::client::SessionClient;
use crate::config::{AgentsArgs, CommonArgs, Config, RunnerArgs};
use crate::diag::{Diag, exit, parse_args};
use crate::name::{AgentName, SessionName};
use crate::runner::prompt::read_prompt;

#[derive(Debug, Parser)]
struct RunnerCli {
    /// Session name: 1-60 letters, digits, '-' or '_' (it becomes a file name)
    name: String,

    /// The prompt; joined with stdin when both are given. Prefer stdin: a
    /// prompt on a command line is visible to other users in `ps`
    #[arg(short, long, value_name = "TEXT")]
    prompt: Option<String>,

    /// Run in the background: return once the run has started (stdout: the
    /// session name), its stderr in <sessions-dir>/NAME.log. Collect it with
    /// ao-wait and ao-get-result; stop it with ao-stop
    #[arg(long)]
    detach: bool,

    /// With --detach: print {"session_name","pid"} instead of the name
    #[arg(long, requires = "detach")]
    json: bool,

    /// The detached process itself (internal)
    #[arg(long = &CHILD_FLAG[2..], hide = true)]
    detached_child: bool,

    /// Run on another host: a host's name, or a label the host must have (repeatable: every label). The run is queued through the session manager and behaves as a local one; it runs in --project-dir on that host [default: the current folder's path]. ao-resume goes to the session's host by itself; with --on it also checks that this is that host
    #[arg(long, value_name = "HOST_OR_LABEL")]
    on: Vec<String>,

    /// The run's id, given by the host that starts it (internal)
    #[arg(long, hide = true, value_parser = parse_run_id)]
    run_id: Option<String>,

    /// The parent's session id, given by the host that starts the run (internal)
    #[arg(long, hide = true, conflicts_with = "parent", value_parser = parse_session_id)]
    parent_id: Option<String>,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    runner: RunnerArgs,

    #[command(flatten)]
    agents: AgentsArgs,

    #[command(flatten)]
    flags: RunFlags,

    /// `ao-fork`: the session whose conversation the new one copies.
    #[arg(skip)]
    fork: Option<String>,
}

/// `ao-fork ORIGIN NEW`: a new session that continues a copy of ORIGIN's
/// conversation.
#[derive(Debug, Parser)]
struct ForkCli {
    /// The session to fork; it must not be running, and it stays as it is
    origin: String,

    /// The new session's name: 1-60 letters, digits, '-' or '_'
    name: String,

    /// The prompt; joined with stdin when both are given. Prefer stdin: a
    /// prompt on a command line is visible to other users in `ps`
    #[arg(short, long, value_name = "TEXT")]
    prompt: Option<String>,

    /// Run in the background: return once the run has started (stdout: the
    /// new session's name); collect it with ao-wait and ao-get-result
    #[arg(long)]
    detach: bool,

    /// With --detach: print {"session_name","pid"} instead of the name
    #[arg(long, requires = "detach")]
    json: bool,

    /// The detached process itself (internal)
    #[arg(long = &CHILD_FLAG[2..], hide = true)]
    detached_child: bool,

    /// End the run (reason budget) once it has spent USD dollars (the CLI's --max-budget-usd)
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = crate::agents::settings::parse_budget)]
    max_budget_usd: Option<f64>,

    /// A budget for the fork and all its descendants (as ao-new --budget-usd)
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = crate::agents::settings::parse_budget)]
    budget_usd: Option<f64>,

    /// When the fork's run ends, resume the parent session with its result (as ao-new --callback)
    #[arg(long)]
    callback: bool,

    /// The parent session, for a fork started outside any run (as ao-new --parent)
    #[arg(long, value_name = "NAME")]
    parent: Option<String>,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    runner: RunnerArgs,
}

const FORK_ABOUT: &str = "Start session NEW as a copy of session NAME's conversation, continued with a prompt from stdin (or -p); NAME stays as it is";
const FORK_AFTER_HELP: &str = "\
stdout carries only the answer (with --detach: the new session's name). A fork of a session that \
runs in a git worktree gets a worktree of its own, on a branch ao/NEW from NAME's branch. Exit \
codes: 0 success; 1 the run failed or could not start; 2 bad usage or input (an unknown or \
running NAME, a NEW that is taken).

Examples:
  ao-fork design try-sqlite -p \"Go with SQLite instead\"
  ao-fork design try-postgres --detach < other-approach.md; ao-wait try-postgres";

/// `main` of `ao-fork`.
pub fn main_fork() -> ExitCode {
    if let Some(code) = crate::claude::guard::dispatch() {
        return code;
    }
    let diag = Diag::new("ao-fork");
    let command = ForkCli::command()
        .name("ao-fork")
        .bin_name("ao-fork")
        .about(FORK_ABOUT)
        .after_help(FORK_AFTER_HELP);
    let fork: ForkCli = match parse_args(command, diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    if let Err(e) = SessionName::parse(&fork.origin) {
        diag.error(e);
        return ExitCode::from(exit::USAGE);
    }
    let runner = fork.runner;
    let args = RunnerCli {
        name: fork.name,
        prompt: fork.prompt,
        detach: fork.detach,
        json: fork.json,
        detached_child: fork.detached_child,
        on: Vec::new(),
        run_id: None,
        parent_id: None,
        common: fork.common,
        runner,
        agents: AgentsArgs::default(),
        flags: RunFlags {
            max_budget_usd: fork.max_budget_usd,
            budget_usd: fork.budget_usd,
            callback: fork.callback,
            parent: fork.parent,
            ..RunFlags::default()
        },
        fork: Some(fork.origin),
    };
    match request(Mode::New, &args) {
        Ok((request, config)) => ExitCode::from(start(&args, &request, &config, diag)),
        Err(message) => {
            diag.error(message);
            ExitCode::from(exit::USAGE)
        }
    }
}

fn parse_session_id(text: &str) -> Result<String, String> {
    crate::wire::check_id("a session id", text).map(|()| text.to_owned())
}

fn parse_run_id(text: &str) -> Result<String, String> {
    uuid::Uuid::parse_str(text)
        .map(|id| id.to_string())
        .map_err(|_| format!("'{text}' is not a run id (a UUID)"))
}

const NEW_ABOUT: &str =
    "Start a new Claude Code session NAME with a prompt from stdin (or -p), and print its answer";
const RESUME_ABOUT: &str =
    "Continue session NAME with a prompt from stdin (or -p), and print its answer";
const AFTER_HELP: &str = "\
stdout carries only the answer (with --detach: the session name). Exit codes: 0 success; 1 the \
run failed or could not start (reason on stderr); 2 bad usage or input; 130/143 interrupted by \
SIGINT/SIGTERM, 143 also when stopped by ao-stop.

Examples:
  echo \"Summarise README.md\" | ao-new reader
  ao-resume reader -p \"Now list its open questions\"
  ao-new review-1 --agent reviewer < task.md
  ao-new facts --output-schema facts.schema.json -p \"List three facts about Rust\"
  for i in 1 2 3; do ao-new worker-$i --detach < task-$i.md; done; ao-wait worker-1 worker-2 worker-3
  ao-new train-1 --on gpu --project-dir /srv/model < task.md   # on a host labelled gpu (see ao-hosts)";

/// What `--detach --json` prints.
#[derive(Serialize)]
struct DetachedReport<'a> {
    session_name: &'a str,
    pid: u32,
}

/// `main` of `ao-new` (`Mode::New`) and `ao-resume` (`Mode::Resume`).
pub fn main(mode: Mode) -> ExitCode {
    // Started again as its own CLI's guardian?
    if let Some(code) = crate::claude::guard::dispatch() {
        return code;
    }
    let (program, about) = match mode {
        Mode::New => ("ao-new", NEW_ABOUT),
        Mode::Resume => ("ao-resume", RESUME_ABOUT),
    };
    let diag = Diag::new(program);
    let command = RunnerCli::command()
        .name(program)
        .bin_name(program)
        .about(about)
        .after_help(AFTER_HELP);
    let args: RunnerCli = match parse_args(command, diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    if !args.on.is_empty() {
        return ExitCode::from(start_on(mode, &args, diag));
    }
    match request(mode, &args) {
        Ok((request, config)) => ExitCode::from(start(&args, &request, &config, diag)),
        Err(message) => {
            diag.error(message);
            ExitCode::from(exit::USAGE)
        }
    }
}

/// `ao-new NAME --on HOST_OR_LABEL`: the run goes to another host (for
/// `ao-resume`, the host the session must be on).
fn start_on(mode: Mode, args: &RunnerCli, diag: Diag) -> u8 {
    let asked = match request_on(mode, args) {
        Ok(asked) => asked,
        Err(message) => {
            diag.error(message);
            return exit::USAGE;
        }
    };
    let (request, config, project) = asked;
    let Some(runtime) = runtime(diag) else {
        return exit::FAILED;
    };
    runtime.block_on(async {
        let client = match SessionClient::new(&config.session_manager_url.value) {
            Ok(client) => client,
            Err(e) => {
                diag.error(e);
                return exit::USAGE;
            }
        };
        let (host, labels) = match remote::target(&client, &args.on).await {
            Ok(target) => target,
            Err(e) => {
                diag.error(format!(
                    "cannot ask {} for its hosts: {e}",
                    client.base_url()
                ));
                return exit::FAILED;
            }
        };
        match remote::create(&client, &request, &config, project, host, labels).await {
            Ok(create) => remote::run(&client, create, args.detach, args.json, diag).await,
            Err(refusal) => refusal.report(diag),
        }
    })
}

/// The run `--on` asks for, the settings to reach the session manager, and
/// the folder on the host; or why it is bad input. The project folder is
/// the host's, so it is not looked for here.
fn request_on(
    mode: Mode,
    args: &RunnerCli,
) -> Result<(RunRequest, Config, Option<String>), String> {
    let local_only = [
        (args.common.sessions_dir.is_some(), "--sessions-dir"),
        (args.runner.claude_path.is_some(), "--claude-path"),
        (args.agents.agents_dir.is_some(), "--agents-dir"),
    ];
    if let Some((_, flag)) = local_only.iter().find(|(given, _)| *given) {
        return Err(format!(
            "{flag} is this machine's; a run --on another host uses that host's own"
        ));
    }
    let name = SessionName::parse(&args.name).map_err(|e| e.to_string())?;
    let cwd =
        std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?;
    let explicit = args.common.project_dir.clone().or_else(|| {
        std::env::var_os(crate::config::ENV_PROJECT_DIR)
            .filter(|v| !v.is_empty())
            .map(std::path::PathBuf::from)
    });
    let mut common = args.common.clone();
    common.project_dir = None;
    let config = Config::resolve(
        &common,
        Some(&args.runner),
        |key| {
            (key != crate::config::ENV_PROJECT_DIR)
                .then(|| std::env::var(key).ok())
                .flatten()
        },
        &cwd,
    )
    .map_err(|e| e.to_string())?;
    // A resume finds its session by name (and its folder, if given).
    let project = match explicit {
        Some(dir) => Some(cwd.join(dir).to_string_lossy().into_owned()),
        None if mode == Mode::Resume => None,
        None => Some(config.project_dir_text()),
    };
    let mut flags = args.flags.settings()?;
    flags.model = args.runner.model.clone();
    Ok((args.run_request(mode, name, flags)?, config, project))
}

fn runtime(diag: Diag) -> Option<tokio::runtime::Runtime> {
    match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => Some(rt),
        Err(e) => {
            diag.error(format!("cannot start: {e}"));
            None
        }
    }
}

/// The run asked for, or why it is bad input (exit 2).
fn request(mode: Mode, args: &RunnerCli) -> Result<(RunRequest, Config), String> {
    let name = SessionName::parse(&args.name).map_err(|e| e.to_string())?;
    let config = Config::load(&args.common, Some(&args.runner))
        .map_err(|e| e.to_string())?
        .with_agents_args(&args.agents);
    let flags = args.flags.settings()?;
    Ok((args.run_request(mode, name, flags)?, config))
}

impl RunnerCli {
    /// The run of session `name` with `flags`: the agent checked, the
    /// prompt read; or why it is bad input.
    fn run_request(
        &self,
        mode: Mode,
        name: SessionName,
        flags: crate::agents::RunSettings,
    ) -> Result<RunRequest, String> {
        if let Some(agent) = &self.flags.agent {
            AgentName::parse(agent).map_err(|e| e.to_string())?;
        }
        let prompt = if self.detached_child {
            // The whole prompt, as the caller read it (its -p included).
            let bytes = crate::bounded::read_all(std::io::stdin().lock(), crate::bounded::PROMPT)
                .map_err(|e| format!("cannot read the prompt: {e}"))?;
            String::from_utf8(bytes).map_err(|_| "the prompt is not valid UTF-8".to_owned())?
        } else {
            read_prompt(self.prompt.clone()).map_err(|e| e.to_string())?
        };
        Ok(RunRequest {
            mode,
            name,
            prompt,
            agent: self.flags.agent.clone(),
            flags,
            base: self.flags.base.clone(),
            run_id: self.run_id.clone(),
            parent: self
                .flags
                .parent
                .as_deref()
                .map(SessionName::parse)
                .transpose()
                .map_err(|e| format!("--parent: {e}"))?,
            parent_id: self.parent_id.clone(),
            callback: self.flags.callback,
            budget_usd: self.flags.budget_usd,
            fork: self
                .fork
                .as_deref()
                .map(SessionName::parse)
                .transpose()
                .map_err(|e| e.to_string())?,
        })
    }
}

/// Runs (or detaches) and answers the exit code.
fn start(args: &RunnerCli, request: &RunRequest, config: &Config, diag: Diag) -> u8 {
    let Some(runtime) = runtime(diag) else {
        return exit::FAILED;
    };
    // A session that lives on another host is resumed there.
    if request.mode == Mode::Resume
        && !args.detached_child
        && request.run_id.is_none()
        && let Some(session) = runtime.block_on(remote::home_elsewhere(request, config))
    {
        let client = match SessionClient::new(&config.session_manager_url.value) {
            Ok(client) => client,
            Err(e) => {
                diag.error(e);
                return exit::USAGE;
            }
        };
        return runtime.block_on(async {
            match remote::create(
                &client,
                request,
                config,
                session.project_dir,
                None,
                Vec::new(),
            )
            .await
            {
                Ok(create) => remote::run(&client, create, args.detach, args.json, diag).await,
                Err(refusal) => refusal.report(diag),
            }
        });
    }
    if args.detach && !args.detached_child {
        return detach_run(args, request, config, diag, &runtime);
    }
    let hooks = Hooks {
        on_started: args
            .detached_child
            .then(|| Box::new(|_cli_pid| detach::say_started(std::process::id())) as _),
    };
    let report = runtime.block_on(run(request, config, diag, hooks));
    respond(report, diag, &request.name)
}

/// Checks in the foreground what can be refused, then starts the run
/// detached and prints its name (or `{"session_name","pid"}`).
fn detach_run(
    args: &RunnerCli,
    request: &RunRequest,
    config: &Config,
    diag: Diag,
    runtime: &tokio::runtime::Runtime,
) -> u8 {
    if let Err(e) = runtime.block_on(check(request, config, diag)) {
        diag.error(&e);
        return e.exit_code();
    }
    let files = SessionFiles::new(&config.sessions_dir.value, &request.name);
    if let Err(e) = files.ensure_dir() {
        diag.error(e);
        return exit::FAILED;
    }
    match detach::start(&request.prompt, &files.run_log_path()) {
        Ok(pid) => {
            let name = request.name.as_str();
            let line = if args.json {
                serde_json::to_string(&DetachedReport {
                    session_name: name,
                    pid,
                })
                .unwrap_or_default()
            } else {
                name.to_owned()
            };
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
            exit::OK
        }
        Err(detach::DetachError::Failed { code, message }) => {
            diag.error(message);
            code
        }
        Err(e) => {
            diag.error(e);
            exit::FAILED
        }
    }
}

fn respond(report: Result<super::Report, RunError>, diag: Diag, name: &SessionName) -> u8 {
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            diag.error(&e);
            return e.exit_code();
        }
    };
    let started = report.session_id.is_some();
    match report.outcome {
        Outcome::Success { result, structured } => {
            let text = structured.map_or(result, |doc| doc.to_string());
            let mut stdout = std::io::stdout().lock();
            // A reader that went away is not our failure.
            let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            exit::OK
        }
        Outcome::ErrorResult { message } => {
            diag.error(format!("the run failed: {message}"));
            exit::FAILED
        }
        Outcome::Failed { message } => {
            diag.error(message);
            exit::FAILED
        }
        Outcome::Budget { message } => {
            diag.error(format!(
                "the run reached its budget and was ended ({message}); the run is recorded with reason budget (continue it with `ao-resume {name}` and a larger budget)"
            ));
            exit::FAILED
        }
        Outcome::Interrupted { signal } => {
            diag.error(format!(
                "interrupted by {}; the run is recorded as interrupted",
                signal.as_str()
            ));
            if signal == Signal::SIGTERM {
                exit::SIGTERM
            } else {
                exit::SIGINT
            }
        }
        Outcome::Stopped if started => {
            diag.error(format!(
                "stopped on request; the run is recorded as stopped (continue it with `ao-resume {name}`)"
            ));
            exit::SIGTERM
        }
        Outcome::Stopped => {
            diag.error(format!(
                "stopped on request before the CLI began the conversation; the run is recorded as stopped (start it again with `ao-new {name}`)"
            ));
            exit::SIGTERM
        }
    }
}
