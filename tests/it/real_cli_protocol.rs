//! The real Claude Code CLI against the mock Anthropic API, driven over
//! stream-json exactly as DESIGN.md says the runner drives it. These tests
//! pin down the protocol the runner relies on, as the transcripts recorded
//! from Claude Code 2.1.329 show it (new run with a tool call, resume, API
//! error, unknown --resume id); they skip when the CLI is not installed
//! (see `support::real_claude`).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::Path;
use std::process::{Child, ChildStdin};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::mock_anthropic::{
    FAIL_MESSAGE, MockAnthropic, TOOL_COMMAND, TOOL_OUTPUT, UserTurn,
};
use crate::support::real_claude::RealClaude;

/// A run that takes longer than this has hung (a normal one takes about a second).
const RUN_TIMEOUT: Duration = Duration::from_secs(60);

const FINAL_TEXT: &str = "The command printed hello-from-tool. Final answer: 4";

/// Everything one run printed, and how it ended.
pub struct Transcript {
    pub lines: Vec<Value>,
    pub stderr: String,
    exit_code: Option<i32>,
    elapsed: Duration,
}

impl Transcript {
    /// `type`, plus `/subtype` when the line (or its request/response) has one.
    fn kinds(&self) -> Vec<String> {
        self.lines.iter().map(kind).collect()
    }

    fn init(&self) -> Option<&Value> {
        self.lines
            .iter()
            .find(|l| l["type"] == "system" && l["subtype"] == "init")
    }

    pub fn session_id(&self) -> String {
        let init = self.init().expect("an init line");
        init["session_id"]
            .as_str()
            .expect("session_id in init")
            .to_owned()
    }

    fn result(&self) -> &Value {
        let results: Vec<&Value> = self
            .lines
            .iter()
            .filter(|l| l["type"] == "result")
            .collect();
        assert_eq!(results.len(), 1, "one result line; got {:?}", self.kinds());
        results[0]
    }

    fn hook_callbacks(&self) -> Vec<&Value> {
        self.lines
            .iter()
            .filter(|l| {
                l["type"] == "control_request" && l["request"]["subtype"] == "hook_callback"
            })
            .collect()
    }
}

fn kind(line: &Value) -> String {
    let subtype = [
        &line["subtype"],
        &line["request"]["subtype"],
        &line["response"]["subtype"],
    ]
    .into_iter()
    .find_map(Value::as_str);
    let kind = line["type"].as_str().unwrap_or("?");
    match subtype {
        Some(s) => format!("{kind}/{s}"),
        None => kind.to_owned(),
    }
}

/// Kills the CLI if the test fails before it exits.
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Ok(None) = self.0.try_wait() {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
}

fn send(stdin: &mut Option<ChildStdin>, message: &Value) {
    if let Some(pipe) = stdin.as_mut() {
        // The CLI may already have exited (a bad --resume does so without
        // reading); its exit code and output tell the story then.
        let _ = writeln!(pipe, "{message}").and_then(|()| pipe.flush());
    }
}

/// One run of the CLI the way the runner does it: the `initialize` control
/// request with a PostToolUse hook, the prompt once it is answered, an
/// immediate answer to every `hook_callback`, stdin closed after `result`.
fn drive(
    claude: &RealClaude,
    mock: &MockAnthropic,
    project: &Path,
    resume: Option<&str>,
    prompt: &str,
) -> Transcript {
    drive_with_env(claude, mock, project, resume, prompt, &[])
}

/// [`drive`], with extra environment variables for the CLI (and the hooks it runs).
pub fn drive_with_env(
    claude: &RealClaude,
    mock: &MockAnthropic,
    project: &Path,
    resume: Option<&str>,
    prompt: &str,
    env: &[(&str, &str)],
) -> Transcript {
    drive_with_args(claude, mock, project, resume, prompt, env, &[])
}

/// [`drive_with_env`], with extra arguments for the CLI.
pub fn drive_with_args(
    claude: &RealClaude,
    mock: &MockAnthropic,
    project: &Path,
    resume: Option<&str>,
    prompt: &str,
    env: &[(&str, &str)],
    args: &[&str],
) -> Transcript {
    let started = Instant::now();
    let deadline = started + RUN_TIMEOUT;
    let mut child = KillOnDrop(
        claude
            .stream_json_command(mock.base_url(), project, resume)
            .args(args)
            .envs(env.iter().copied())
            .spawn()
            .expect("spawn the real claude CLI"),
    );
    let stdout = child.0.stdout.take().expect("stdout");
    let mut stderr = child.0.stderr.take().expect("stderr");
    let mut stdin = child.0.stdin.take();

    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        // read_line grows the buffer as needed: the initialize answer alone
        // is a single line of about 17 kB.
        let mut reader = BufReader::new(stdout);
        loop {
            let mut line = String::new();
            match reader.read_line(&mut line) {
                Ok(0) | Err(_) => break,
                Ok(_) => {
                    if tx.send(line).is_err() {
                        break;
                    }
                }
            }
        }
    });
    let stderr_reader = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });

    send(
        &mut stdin,
        &json!({"type": "control_request", "request_id": "req_1_init", "request": {
            "subtype": "initialize",
            "hooks": {"PostToolUse": [{"matcher": null, "hookCallbackIds": ["hook_0"]}]},
        }}),
    );
    let mut lines: Vec<Value> = Vec::new();
    let mut prompt_sent = false;
    loop {
        let wait = deadline.saturating_duration_since(Instant::now());
        let raw = match rx.recv_timeout(wait) {
            Ok(raw) => raw,
            Err(RecvTimeoutError::Disconnected) => break,
            Err(RecvTimeoutError::Timeout) => panic!(
                "the CLI printed nothing more within {RUN_TIMEOUT:?}; lines so far: {:?}",
                lines.iter().map(kind).collect::<Vec<_>>()
            ),
        };
        let line: Value = serde_json::from_str(raw.trim_end())
            .unwrap_or_else(|e| panic!("stdout line is not JSON ({e}): {raw:?}"));
        match line["type"].as_str() {
            Some("control_response")
                if line["response"]["request_id"] == "req_1_init" && !prompt_sent =>
            {
                prompt_sent = true;
                send(
                    &mut stdin,
                    &json!({"type": "user", "message": {"role": "user", "content": prompt},
                            "parent_tool_use_id": null, "session_id": ""}),
                );
            }
            Some("control_request") => {
                let id = line["request_id"].clone();
                let response = if line["request"]["subtype"] == "hook_callback" {
                    json!({"subtype": "success", "request_id": id, "response": {}})
                } else {
                    json!({"subtype": "error", "request_id": id, "error": "not supported by the test driver"})
                };
                send(
                    &mut stdin,
                    &json!({"type": "control_response", "response": response}),
                );
            }
            Some("result") => stdin = None,
            _ => {}
        }
        lines.push(line);
    }
    drop(stdin);

    let status = loop {
        if let Some(status) = child.0.try_wait().expect("wait for the CLI") {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "the CLI closed stdout but did not exit within {RUN_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(10));
    };
    let transcript = Transcript {
        lines,
        stderr: stderr_reader.join().unwrap_or_default(),
        exit_code: status.code(),
        elapsed: started.elapsed(),
    };
    eprintln!(
        "real claude run{} took {:?}: {:?}",
        resume
            .map(|id| format!(" --resume {id}"))
            .unwrap_or_default(),
        transcript.elapsed,
        transcript.kinds()
    );
    transcript
}

fn project_dir() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("ao-claude-project-")
        .tempdir()
        .expect("project dir")
}

/// The text blocks of every message with `role`, in the request's order.
fn texts(messages: &[Value], role: &str) -> Vec<String> {
    messages
        .iter()
        .filter(|m| m["role"] == role)
        .flat_map(|m| match &m["content"] {
            Value::String(s) => vec![s.clone()],
            Value::Array(blocks) => blocks
                .iter()
                .filter_map(|b| b["text"].as_str().map(str::to_owned))
                .collect(),
            _ => Vec::new(),
        })
        .collect()
}

fn blocks_of_type<'a>(messages: &'a [Value], kind: &str) -> Vec<&'a Value> {
    messages
        .iter()
        .filter_map(|m| m["content"].as_array())
        .flatten()
        .filter(|b| b["type"] == kind)
        .collect()
}

/// The new run of `new_run.txt`: init, one Bash call reported through the
/// PostToolUse hook, the final answer, exit 0.
fn new_run_with_tool(claude: &RealClaude, mock: &MockAnthropic, project: &Path) -> Transcript {
    let run = drive(claude, mock, project, None, "Please USE_TOOL now");
    assert_eq!(run.exit_code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.kinds(),
        [
            "control_response/success",
            "system/init",
            "assistant",
            "control_request/hook_callback",
            "user",
            "assistant",
            "result/success",
        ]
    );
    let session_id = run.session_id();
    uuid::Uuid::parse_str(&session_id).expect("session_id is a UUID");

    let hooks = run.hook_callbacks();
    assert_eq!(hooks.len(), 1);
    let hook = &hooks[0]["request"];
    assert_eq!(hook["callback_id"], "hook_0");
    let input = &hook["input"];
    assert_eq!(input["hook_event_name"], "PostToolUse");
    assert_eq!(input["session_id"], session_id.as_str());
    assert_eq!(input["tool_name"], "Bash");
    assert_eq!(input["tool_input"]["command"], TOOL_COMMAND);
    assert_eq!(input["tool_response"]["stdout"], TOOL_OUTPUT);
    assert_eq!(input["tool_response"]["stderr"], "");
    let tool_use = &run.lines[2]["message"]["content"][0];
    assert_eq!(tool_use["type"], "tool_use");
    assert_eq!(input["tool_use_id"], tool_use["id"]);

    let result = run.result();
    assert_eq!(result["is_error"], false);
    assert_eq!(result["result"], FINAL_TEXT);
    assert_eq!(result["session_id"], session_id.as_str());
    assert_eq!(result["num_turns"], 2);
    assert_eq!(run.lines[5]["message"]["content"][0]["text"], FINAL_TEXT);
    run
}

#[test]
fn real_cli_new_run_with_a_tool_call_reports_the_hook_and_the_result() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = project_dir();
    let run = new_run_with_tool(&claude, &mock, project.path());
    let session_id = run.session_id();

    // Two model calls, nothing else: the prompt, then the tool's result.
    let requests = mock.requests();
    assert_eq!(requests.len(), 2, "{requests:#?}");
    for request in &requests {
        assert!(request.is_messages(), "{} {}", request.method, request.path);
        assert_eq!(request.query.as_deref(), Some("beta=true"));
        assert_eq!(request.header("x-api-key"), Some("test-key"));
        assert_eq!(request.session_id(), Some(session_id.as_str()));
        assert_eq!(request.body["stream"], true);
    }
    assert_eq!(
        requests[0].last_user_turn(),
        UserTurn::Prompt("Please USE_TOOL now".into())
    );
    assert!(!requests[0].has_tool_result());
    assert_eq!(
        requests[1].last_user_turn(),
        UserTurn::ToolResult(TOOL_OUTPUT.into())
    );
    let tools: Vec<&str> = requests[0].body["tools"]
        .as_array()
        .expect("tools")
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(tools.contains(&"Bash"), "{tools:?}");
}

#[test]
fn real_cli_resume_keeps_the_session_and_sends_the_earlier_conversation() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = project_dir();
    let first = new_run_with_tool(&claude, &mock, project.path());
    let session_id = first.session_id();
    let before = mock.request_count();

    let run = drive(
        &claude,
        &mock,
        project.path(),
        Some(&session_id),
        "What did I ask before?",
    );
    assert_eq!(run.exit_code, Some(0), "stderr: {}", run.stderr);
    assert_eq!(
        run.kinds(),
        [
            "control_response/success",
            "system/init",
            "assistant",
            "result/success"
        ]
    );
    assert_eq!(run.session_id(), session_id);
    let result = run.result();
    assert_eq!(result["is_error"], false);
    assert_eq!(result["session_id"], session_id.as_str());
    assert_eq!(result["result"], "mock answer: What did I ask before?");

    let requests = mock.requests().split_off(before);
    assert_eq!(requests.len(), 1, "{requests:#?}");
    let request = &requests[0];
    assert!(request.is_messages());
    assert_eq!(request.session_id(), Some(session_id.as_str()));
    assert_eq!(
        request.last_user_turn(),
        UserTurn::Prompt("What did I ask before?".into())
    );
    // The whole earlier conversation is replayed: the first prompt, the
    // tool call, its result and the final answer.
    let messages = request.messages();
    assert!(
        texts(messages, "user")
            .iter()
            .any(|t| t == "Please USE_TOOL now"),
        "{messages:#?}"
    );
    let tool_uses = blocks_of_type(messages, "tool_use");
    assert_eq!(tool_uses.len(), 1, "{messages:#?}");
    assert_eq!(tool_uses[0]["input"]["command"], TOOL_COMMAND);
    let tool_results = blocks_of_type(messages, "tool_result");
    assert_eq!(tool_results.len(), 1);
    assert_eq!(tool_results[0]["tool_use_id"], tool_uses[0]["id"]);
    assert_eq!(tool_results[0]["content"], TOOL_OUTPUT);
    assert!(texts(messages, "assistant").iter().any(|t| t == FINAL_TEXT));
}

#[test]
fn real_cli_api_error_ends_in_an_error_result_and_exit_1() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = project_dir();
    let run = drive(&claude, &mock, project.path(), None, "Please FAIL_API now");
    assert_eq!(run.exit_code, Some(1), "stderr: {}", run.stderr);
    // As in error_run.txt: init, a synthetic assistant message, and a
    // result that is an error although its subtype says "success".
    assert_eq!(
        run.kinds(),
        [
            "control_response/success",
            "system/init",
            "assistant",
            "result/success"
        ]
    );
    let session_id = run.session_id();
    let assistant = &run.lines[2];
    assert_eq!(assistant["message"]["model"], "<synthetic>");
    assert_eq!(assistant["is_api_error_message"], true);
    assert_eq!(assistant["api_error_status"], 400);
    let result = run.result();
    assert_eq!(result["is_error"], true);
    assert_eq!(result["session_id"], session_id.as_str());
    assert_eq!(result["api_error_status"], 400);
    let text = result["result"].as_str().expect("result text");
    assert!(text.contains("400"), "{text}");
    assert!(text.contains(FAIL_MESSAGE), "{text}");

    // After a 400 the CLI retries with fewer beta features (6 requests with
    // 2.1.329), every one of them the same prompt, no other endpoint.
    let requests = mock.requests();
    assert!(!requests.is_empty());
    for request in &requests {
        assert!(request.is_messages(), "{} {}", request.method, request.path);
        assert_eq!(
            request.last_user_turn(),
            UserTurn::Prompt("Please FAIL_API now".into())
        );
    }
    eprintln!("model requests for one 400: {}", requests.len());
}

#[test]
fn real_cli_resume_of_an_unknown_session_fails_without_init() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = project_dir();
    let unknown = uuid::Uuid::new_v4().to_string();
    let run = drive(&claude, &mock, project.path(), Some(&unknown), "hello");
    assert_eq!(run.exit_code, Some(1), "stderr: {}", run.stderr);
    // As in bad_resume.txt: not even the initialize answer, only a result.
    assert_eq!(run.kinds(), ["result/error_during_execution"]);
    assert!(run.init().is_none());
    let result = run.result();
    assert_eq!(result["is_error"], true);
    assert_eq!(result["session_id"], unknown.as_str());
    let reason = format!("No conversation found with session ID: {unknown}");
    assert_eq!(result["errors"], json!([reason]));
    assert!(run.stderr.contains(&reason), "stderr: {}", run.stderr);
    assert!(mock.requests().is_empty());
}

/// The mock itself, without the CLI: the answers the CLI tests rely on,
/// and the non-streaming and unknown-endpoint paths the CLI does not take.
#[tokio::test]
async fn real_cli_mock_api_answers_by_the_last_user_turn() {
    let mock = MockAnthropic::start();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{}/v1/messages?beta=true", mock.base_url());
    let post = |body: Value| {
        http.post(&url)
            .header("X-Claude-Code-Session-Id", "s-1")
            .json(&body)
            .send()
    };

    // A tool call, streamed.
    let tool = post(json!({"model": "m", "stream": true, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nignore me\n</system-reminder>"},
            {"type": "text", "text": "please USE_TOOL"}]},
    ]}))
    .await
    .expect("request");
    assert_eq!(tool.status(), 200);
    assert_eq!(tool.headers()["content-type"], "text/event-stream");
    let sse = tool.text().await.expect("body");
    let events: Vec<Value> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("JSON event"))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1]["content_block"]["name"], "Bash");
    let input: Value = serde_json::from_str(
        events[3]["delta"]["partial_json"]
            .as_str()
            .expect("input_json_delta"),
    )
    .expect("tool input JSON");
    assert_eq!(input["command"], TOOL_COMMAND);
    assert_eq!(events[5]["delta"]["stop_reason"], "tool_use");

    // A tool result, not streamed.
    let answer: Value = post(json!({"model": "m", "messages": [
        {"role": "user", "content": "USE_TOOL"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": TOOL_OUTPUT}]},
    ]}))
    .await
    .expect("request")
    .json()
    .await
    .expect("JSON");
    assert_eq!(answer["content"][0]["text"], FINAL_TEXT);
    assert_eq!(answer["stop_reason"], "end_turn");

    // USE_TOOL again after a tool result: plain text.
    let again: Value = post(json!({"model": "m", "messages": [
        {"role": "user", "content": "USE_TOOL"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "out"}]}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "USE_TOOL once more"},
    ]}))
    .await
    .expect("request")
    .json()
    .await
    .expect("JSON");
    assert_eq!(
        again["content"][0]["text"],
        "mock answer: USE_TOOL once more"
    );

    let fail = post(json!({"model": "m", "stream": true, "messages": [
        {"role": "user", "content": "FAIL_API"}]}))
    .await
    .expect("request");
    assert_eq!(fail.status(), 400);
    let body: Value = fail.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": FAIL_MESSAGE}})
    );

    let long = "x".repeat(300);
    let plain: Value = post(json!({"model": "m", "messages": [{"role": "user", "content": long}]}))
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        plain["content"][0]["text"],
        format!("mock answer: {}", "x".repeat(100))
    );

    let other = http
        .get(format!("{}/v1/models", mock.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 404);

    let requests = mock.requests();
    assert_eq!(requests.len(), 6);
    assert_eq!(mock.request_count(), 6);
    assert_eq!(mock.message_requests().len(), 5);
    assert_eq!(requests[0].query.as_deref(), Some("beta=true"));
    assert_eq!(requests[0].session_id(), Some("s-1"));
    assert_eq!(requests[0].header("Content-Type"), Some("application/json"));
    assert!(!requests[0].has_tool_result());
    assert!(requests[1].has_tool_result());
    assert_eq!(requests[5].method, "GET");
    assert_eq!(requests[5].path, "/v1/models");
}
