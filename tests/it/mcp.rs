//! `ao-mcp` spoken to as an MCP client would: the `rmcp` client over a
//! child process, in a project with its own session manager and the fake
//! CLI (which `ao-mcp`'s runs inherit through the environment).

use std::collections::BTreeSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rmcp::model::{
    CallToolRequestParams, CallToolResult, ClientRequest, ProgressNotificationParam, Request,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::transport::TokioChildProcess;
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use serde_json::{Value, json};

use crate::support::http::{kinds, run_kinds};
use crate::support::project::eventually;
use crate::support::{Project, command};

/// The client's side: it keeps the progress notifications it hears.
#[derive(Clone, Default)]
pub struct Client {
    progress: Arc<Mutex<Vec<ProgressNotificationParam>>>,
}

impl ClientHandler for Client {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        self.progress.lock().unwrap().push(params);
    }
}

pub type Session = RunningService<RoleClient, Client>;

/// `ao-mcp` started with the project's environment (and `scenario` for the
/// fake CLI of its runs).
pub async fn connect(p: &Project, scenario: &str) -> (Session, Client) {
    let mut cmd = tokio::process::Command::from(p.command("ao-mcp"));
    cmd.current_dir(&p.dir)
        .env("FAKE_CLAUDE_SCENARIO", scenario);
    let transport = TokioChildProcess::new(cmd).expect("start ao-mcp");
    let client = Client::default();
    let session = client
        .clone()
        .serve(transport)
        .await
        .expect("MCP handshake");
    (session, client)
}

fn params(tool: &str, args: Value) -> CallToolRequestParams {
    CallToolRequestParams::new(tool.to_owned())
        .with_arguments(args.as_object().expect("an object").clone())
}

/// Calls `tool`; answers whether it failed and its text.
pub async fn call(session: &Session, tool: &str, args: Value) -> (bool, String) {
    let result = session
        .call_tool(params(tool, args))
        .await
        .expect("tools/call");
    (result.is_error == Some(true), text(&result))
}

fn text(result: &CallToolResult) -> String {
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect::<Vec<_>>()
        .join("\n")
}

#[tokio::test]
async fn every_tool_is_offered_with_what_a_model_needs_to_know() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "plain").await;
    let tools = session.list_all_tools().await.unwrap();
    let names: BTreeSet<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(
        names,
        BTreeSet::from([
            "delete_agent_session",
            "delete_all_agent_sessions",
            "fork_agent_session",
            "get_agent_session_result",
            "get_agent_session_status",
            "list_agent_definitions",
            "list_agent_sessions",
            "list_pending_requests",
            "answer_request",
            "list_hosts",
            "resume_agent_session",
            "start_agent_session",
            "stop_agent_session",
            "wait_for_agent_sessions",
        ])
    );
    for tool in &tools {
        let description = tool.description.as_deref().unwrap_or_default();
        assert!(description.len() > 60, "{}: {description}", tool.name);
    }
    let start = tools
        .iter()
        .find(|t| t.name == "start_agent_session")
        .unwrap();
    let schema = Value::Object((*start.input_schema).clone());
    assert_eq!(
        schema["required"],
        json!(["session_name", "prompt"]),
        "{schema}"
    );
    for field in [
        "async",
        "agent_name",
        "project_dir",
        "worktree",
        "base",
        "host",
        "labels",
        "callback",
        "max_budget_usd",
        "budget_usd",
    ] {
        assert!(
            schema["properties"][field]["description"].is_string(),
            "{field}: {schema}"
        );
    }
    let info = session.peer_info().expect("server info");
    assert!(
        info.instructions
            .as_deref()
            .unwrap_or_default()
            .contains("wait_for_agent_sessions")
    );
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn a_synchronous_start_answers_reports_progress_and_records_as_ao_new() {
    let p = Project::with_server();
    let (session, client) = connect(&p, "tools:3").await;
    let handle = session
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params(
                "start_agent_session",
                json!({"session_name": "via-mcp", "prompt": "count the files"}),
            ))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    let token = handle.progress_token.clone();
    let answer = handle.await_response().await.unwrap();
    let rmcp::model::ServerResult::CallToolResult(result) = answer else {
        panic!("not a tool result: {answer:?}");
    };
    assert_eq!(result.is_error, Some(false));
    assert_eq!(text(&result), "fake answer to: count the files");

    // One progress notification per tool call, under the call's token.
    let progress = client.progress.lock().unwrap().clone();
    let messages: Vec<String> = progress
        .iter()
        .filter(|n| n.progress_token == token)
        .filter_map(|n| n.message.clone())
        .collect();
    assert_eq!(
        messages,
        [
            "tool call 1: Bash",
            "tool call 2: Bash",
            "tool call 3: Bash"
        ]
    );

    // The same record as ao-new makes.
    assert_eq!(p.status_json("via-mcp")["status"], "finished");
    assert_eq!(kinds(&p.events("via-mcp").await), run_kinds(3));
    assert_eq!(
        p.ao("ao-get-result", &["via-mcp"], None).ok(),
        "fake answer to: count the files"
    );

    let (failed, answer) = call(
        &session,
        "resume_agent_session",
        json!({"session_name": "via-mcp", "prompt": "and the folders"}),
    )
    .await;
    assert!(!failed, "{answer}");
    assert_eq!(answer, "fake answer to: and the folders");
    let (_, status) = call(
        &session,
        "get_agent_session_status",
        json!({"session_name": "via-mcp"}),
    )
    .await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(
        (status["status"].as_str(), status["num_runs"].as_u64()),
        (Some("finished"), Some(2))
    );
    let (_, list) = call(&session, "list_agent_sessions", json!({})).await;
    let list: Value = serde_json::from_str(&list).unwrap();
    assert_eq!(list["sessions"][0]["session_name"], "via-mcp");
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn ten_async_starts_from_one_client_all_run_and_one_wait_collects_them() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "tools:1,slow:50").await;
    let names: Vec<String> = (1..=10).map(|i| format!("par-{i}")).collect();
    let starts = names.iter().map(|name| {
        call(
            &session,
            "start_agent_session",
            json!({"session_name": name, "prompt": format!("job {name}"), "async": true}),
        )
    });
    for (failed, answer) in futures_util::future::join_all(starts).await {
        assert!(!failed, "{answer}");
        assert!(answer.contains("wait_for_agent_sessions"), "{answer}");
    }
    let (failed, waited) = call(
        &session,
        "wait_for_agent_sessions",
        json!({"session_names": names, "timeout_seconds": 120}),
    )
    .await;
    assert!(!failed, "{waited}");
    let waited: Value = serde_json::from_str(&waited).unwrap();
    assert_eq!(waited["timed_out"], false);
    let statuses: Vec<&str> = waited["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses, ["completed"; 10], "{waited}");
    for name in &names {
        let (failed, answer) = call(
            &session,
            "get_agent_session_result",
            json!({"session_name": name}),
        )
        .await;
        assert!(!failed);
        assert_eq!(answer, format!("fake answer to: job {name}"));
    }

    let (failed, answer) = call(
        &session,
        "delete_agent_session",
        json!({"session_name": "par-1"}),
    )
    .await;
    assert!(
        !failed && answer.starts_with("Deleted session par-1"),
        "{answer}"
    );
    let (failed, answer) = call(&session, "delete_all_agent_sessions", json!({})).await;
    assert!(!failed, "{answer}");
    assert_eq!(answer.lines().count(), 9, "{answer}");
    let (_, list) = call(&session, "list_agent_sessions", json!({})).await;
    assert_eq!(
        serde_json::from_str::<Value>(&list).unwrap()["sessions"],
        json!([])
    );
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn bad_input_is_a_tool_error_that_says_what_is_wrong() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "plain").await;
    // An unknown tool is refused by the protocol.
    let err = session.call_tool(params("no_such_tool", json!({}))).await;
    assert!(format!("{err:?}").contains("tool not found"), "{err:?}");
    // Everything else is a tool error with one line that says what is wrong.
    let cases = [
        (
            "start_agent_session",
            json!({"session_name": "x"}),
            "missing field `prompt`",
        ),
        (
            "start_agent_session",
            json!({"session_name": 5, "prompt": "p"}),
            "invalid type: integer `5`, expected a string",
        ),
        (
            "wait_for_agent_sessions",
            json!({"session_names": "a"}),
            "expected a sequence",
        ),
        (
            "start_agent_session",
            json!({"session_name": "a b", "prompt": "p"}),
            "letters, digits",
        ),
        (
            "start_agent_session",
            json!({"session_name": "ok", "prompt": "  "}),
            "prompt is empty",
        ),
        (
            "start_agent_session",
            json!({"session_name": "ok", "prompt": "p", "agent_name": "nobody"}),
            "nobody",
        ),
        (
            "resume_agent_session",
            json!({"session_name": "never", "prompt": "p"}),
            "start one with start_agent_session with session_name \"never\"",
        ),
        (
            "get_agent_session_result",
            json!({"session_name": "never"}),
            "no session named 'never'",
        ),
        (
            "stop_agent_session",
            json!({"session_name": "never"}),
            "no session named 'never'",
        ),
        (
            "delete_agent_session",
            json!({"session_name": "../x"}),
            "letters, digits",
        ),
        (
            "wait_for_agent_sessions",
            json!({"session_names": []}),
            "empty",
        ),
        (
            "wait_for_agent_sessions",
            json!({"session_names": ["a"], "timeout_seconds": -1}),
            "not a number of seconds",
        ),
        (
            "list_agent_sessions",
            json!({"project_dir": "/no/such/dir"}),
            "/no/such/dir",
        ),
    ];
    for (tool, args, needle) in cases {
        let (failed, answer) = call(&session, tool, args.clone()).await;
        assert!(failed, "{tool} {args}: {answer}");
        assert!(answer.contains(needle), "{tool} {args}: {answer}");
        assert_eq!(answer.lines().count(), 1, "one line: {answer}");
        assert_no_command_advice(&answer);
    }
    // A session that exists cannot be started again.
    assert!(
        !call(
            &session,
            "start_agent_session",
            json!({"session_name": "once", "prompt": "p"})
        )
        .await
        .0
    );
    let (failed, answer) = call(
        &session,
        "start_agent_session",
        json!({"session_name": "once", "prompt": "p"}),
    )
    .await;
    assert!(failed && answer.contains("already exists"), "{answer}");
    // What to do next is said in tools, not in commands.
    assert!(
        answer.contains("resume_agent_session with session_name \"once\"")
            && answer.contains("delete_agent_session with session_name \"once\""),
        "{answer}"
    );
    assert_no_command_advice(&answer);
    // Still serving.
    let (failed, _) = call(&session, "list_agent_sessions", json!({})).await;
    assert!(!failed);
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn cancelling_a_synchronous_run_stops_it_and_it_stays_resumable() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "hang").await;
    let handle = session
        .send_cancellable_request(
            ClientRequest::CallToolRequest(Request::new(params(
                "start_agent_session",
                json!({"session_name": "long", "prompt": "take your time"}),
            ))),
            PeerRequestOptions::no_options(),
        )
        .await
        .unwrap();
    // Under way, and recorded: the session manager has the session.
    eventually("the run to be under way", async || {
        p.backup_lines("long").iter().any(|l| l["type"] == "system")
            && p.session("long").await.is_some()
    })
    .await;
    handle.cancel(Some("changed my mind".into())).await.unwrap();
    eventually("the run to be stopped", async || {
        p.events("long")
            .await
            .last()
            .is_some_and(|e| e["reason"] == "stopped")
    })
    .await;
    assert_eq!(p.status_json("long")["status"], "finished");
    // The server goes on serving, and the session continues.
    let (failed, answer) = call(
        &session,
        "get_agent_session_status",
        json!({"session_name": "long"}),
    )
    .await;
    assert!(!failed, "{answer}");
    session.cancel().await.unwrap();
    let out = p.run("ao-resume", &["long"], "go on", "plain");
    assert_eq!(out.ok(), "fake answer to: go on");
}

#[tokio::test]
async fn a_client_that_goes_away_mid_run_leaves_the_run_to_finish_and_be_recorded() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "tools:2,slow:300").await;
    let call = tokio::spawn({
        let peer = session.peer().clone();
        async move {
            let _ = peer
                .call_tool(params(
                    "start_agent_session",
                    json!({"session_name": "orphan", "prompt": "keep going"}),
                ))
                .await;
        }
    });
    eventually("the run to be under way", async || {
        p.backup_lines("orphan")
            .iter()
            .any(|l| l["type"] == "system")
    })
    .await;
    // The client goes: ao-mcp is killed with it.
    drop(session);
    call.abort();
    let out = p.ao("ao-wait", &["orphan", "--timeout", "60"], None);
    assert_eq!(out.ok(), "orphan: completed");
    assert_eq!(
        p.ao("ao-get-result", &["orphan"], None).ok(),
        "fake answer to: keep going"
    );
    assert_eq!(kinds(&p.events("orphan").await), run_kinds(2));
}

#[tokio::test]
async fn deleting_a_running_session_advises_tools_not_flags() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "hang").await;
    p.new_session("done", "x");
    let (failed, answer) = call(
        &session,
        "start_agent_session",
        json!({"session_name": "busy", "prompt": "p", "async": true}),
    )
    .await;
    assert!(!failed, "{answer}");
    let (failed, answer) = call(
        &session,
        "delete_agent_session",
        json!({"session_name": "busy"}),
    )
    .await;
    assert!(failed, "{answer}");
    assert_eq!(answer.lines().count(), 1, "{answer}");
    assert!(
        answer.contains("is running") && answer.contains("stop_agent_session"),
        "{answer}"
    );
    assert!(!answer.contains("--"), "no flag a tool lacks: {answer}");
    let (failed, answer) = call(&session, "delete_all_agent_sessions", json!({})).await;
    assert!(failed, "{answer}");
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines.len(), 3, "{answer}");
    // One line per session, then why the command failed.
    let mut sessions = lines[..2].to_vec();
    sessions.sort_unstable();
    assert!(sessions[0].starts_with("Deleted session done"), "{answer}");
    assert!(sessions[1].starts_with("Kept session 'busy': "), "{answer}");
    assert!(lines[2].contains("stop_agent_session"), "{answer}");
    assert!(!answer.contains("--"), "no flag a tool lacks: {answer}");
    assert!(!answer.contains("Kept skipped"), "{answer}");
    // The advice works.
    let (failed, answer) = call(
        &session,
        "stop_agent_session",
        json!({"session_name": "busy"}),
    )
    .await;
    assert!(!failed, "{answer}");
    let (failed, answer) = call(
        &session,
        "delete_agent_session",
        json!({"session_name": "busy"}),
    )
    .await;
    assert!(
        !failed && answer.starts_with("Deleted session busy"),
        "{answer}"
    );
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn wait_seconds_blocks_until_the_run_ends() {
    let p = Project::with_server();
    let (session, _) = connect(&p, "tools:2,slow:200").await;
    assert!(
        !call(
            &session,
            "start_agent_session",
            json!({"session_name": "w", "prompt": "p", "async": true})
        )
        .await
        .0
    );
    let (_, status) = call(
        &session,
        "get_agent_session_status",
        json!({"session_name": "w", "wait_seconds": 60}),
    )
    .await;
    let status: Value = serde_json::from_str(&status).unwrap();
    assert_eq!(status["status"], "finished", "{status}");
    session.cancel().await.unwrap();
}

#[test]
fn malformed_json_rpc_gets_an_error_answer_and_never_a_panic() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let mut child = command("ao-mcp")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    writeln!(stdin, "this is not json").unwrap();
    writeln!(stdin, r#"{{"jsonrpc":"2.0","id":1,"method":"nope"}}"#).unwrap();
    writeln!(
        stdin,
        r#"{{"jsonrpc":"2.0","id":2,"method":"initialize","params":{{"protocolVersion":"2025-06-18","capabilities":{{}},"clientInfo":{{"name":"raw","version":"0"}}}}}}"#
    )
    .unwrap();
    stdin.flush().unwrap();
    let mut answers = Vec::new();
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while std::time::Instant::now() < deadline {
        let mut line = String::new();
        if stdout.read_line(&mut line).unwrap_or(0) == 0 {
            break;
        }
        let answer: Value = serde_json::from_str(&line).expect("every answer is JSON-RPC");
        let done = answer["id"] == 2;
        answers.push(answer);
        if done {
            break;
        }
    }
    drop(stdin);
    let status = child.wait().unwrap();
    let mut stderr = String::new();
    std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut stderr).unwrap();
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert!(status.code().is_some(), "exited, not killed by a signal");
    assert!(
        answers
            .iter()
            .any(|a| a["id"] == 2 && a["result"]["serverInfo"]["name"] == "agent-orchestrator")
            || answers.iter().any(|a| a["error"].is_object()),
        "{answers:?}"
    );
}

/// `ao-mcp` spoken to line by line, as a client that writes raw bytes: its
/// answers arrive on a channel, so a missing answer times out.
struct Raw {
    child: std::process::Child,
    stdin: Option<std::process::ChildStdin>,
    lines: std::sync::mpsc::Receiver<Value>,
}

impl Raw {
    fn start(p: &Project, scenario: &str) -> Raw {
        use std::io::BufRead;
        use std::process::Stdio;
        let mut child = p
            .command("ao-mcp")
            .env("FAKE_CLAUDE_SCENARIO", scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let (tx, lines) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in stdout.lines().map_while(Result::ok) {
                let answer = serde_json::from_str(&line).expect("every answer is JSON");
                if tx.send(answer).is_err() {
                    break;
                }
            }
        });
        Raw {
            stdin: child.stdin.take(),
            child,
            lines,
        }
    }

    fn send(&mut self, bytes: &[u8]) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin open");
        stdin.write_all(bytes).unwrap();
        stdin.write_all(b"\n").unwrap();
        stdin.flush().unwrap();
    }

    /// The next answer; panics when none comes in time.
    fn next(&self) -> Value {
        self.lines
            .recv_timeout(Duration::from_secs(20))
            .expect("an answer from ao-mcp")
    }

    /// Initializes the connection.
    fn handshake(&mut self) {
        self.send(br#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"raw","version":"0"}}}"#);
        assert_eq!(self.next()["id"], 1);
        self.send(br#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    }

    /// Closes stdin and waits (bounded) for ao-mcp to exit.
    fn close(mut self) -> std::process::ExitStatus {
        drop(self.stdin.take());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "ao-mcp did not exit");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Raw {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn a_line_that_is_not_json_gets_json_rpcs_parse_error() {
    let p = Project::with_server();
    let mut raw = Raw::start(&p, "plain");
    raw.handshake();
    let parse_error = |answer: Value| {
        assert_eq!(answer["jsonrpc"], "2.0", "{answer}");
        assert_eq!(answer["id"], Value::Null, "{answer}");
        assert!(
            answer.get("id").is_some(),
            "id null, not left out: {answer}"
        );
        assert_eq!(answer["error"]["code"], -32700, "{answer}");
        assert!(answer["error"]["message"].is_string(), "{answer}");
    };
    for bad in [
        b"this is not json".as_slice(),
        b"{\"jsonrpc\":\"2.0\",\"id\":3,",
        b"\xff\xfe not UTF-8",
        b"{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"ping\",\"x\":\"\xc3\x28\"}",
    ] {
        raw.send(bad);
        parse_error(raw.next());
    }
    // Still serving, in order.
    raw.send(br#"{"jsonrpc":"2.0","id":5,"method":"ping"}"#);
    let answer = raw.next();
    assert_eq!(answer["id"], 5, "{answer}");
    assert!(answer["result"].is_object(), "{answer}");
    assert!(raw.close().success());
}

#[tokio::test]
async fn closing_stdin_mid_run_leaves_the_run_to_finish_and_be_recorded() {
    let p = Project::with_server();
    let mut raw = Raw::start(&p, "tools:5,slow:400");
    raw.handshake();
    raw.send(br#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"start_agent_session","arguments":{"session_name":"left","prompt":"keep going"}}}"#);
    eventually("the run to be under way", async || {
        p.backup_lines("left").iter().any(|l| l["type"] == "system")
    })
    .await;
    // A clean shutdown: stdin closes, ao-mcp exits, the run goes on.
    let status = raw.close();
    assert!(status.code().is_some(), "exited, not killed: {status:?}");
    let out = p.ao("ao-wait", &["left", "--timeout", "60"], None);
    assert_eq!(out.ok(), "left: completed");
    assert_eq!(
        p.ao("ao-get-result", &["left"], None).ok(),
        "fake answer to: keep going"
    );
    assert_eq!(kinds(&p.events("left").await), run_kinds(5));
}

/// A tool error's advice names tools, never the commands that do the same.
fn assert_no_command_advice(answer: &str) {
    for command in [
        "ao-new",
        "ao-resume",
        "ao-status",
        "ao-clean",
        "ao-list-agents",
        "ao-stop",
    ] {
        assert!(!answer.contains(&format!("`{command}")), "{answer}");
    }
}
