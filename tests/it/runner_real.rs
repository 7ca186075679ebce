//! `ao-new` / `ao-resume` driving the real Claude Code CLI (pinned
//! 2.1.329) against the mock Anthropic API: a new run with a tool call, a
//! resume of it, and a model API error.

use serde_json::Value;

use crate::support::mock_anthropic::MockAnthropic;
use crate::support::real_claude::RealClaude;
use crate::support::run_env::{RunEnv, kinds, texts};

/// An `ao-*` command in `env` whose `claude` is the real CLI talking to `mock`.
fn real(
    env: &RunEnv,
    claude: &RealClaude,
    mock: &MockAnthropic,
    program: &str,
    args: &[&str],
    prompt: &str,
) -> std::process::Output {
    use std::io::Write;
    let mut cmd = env.cmd(program);
    cmd.env_clear()
        .envs(claude.env(mock.base_url()))
        .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", env.url())
        .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", &claude.path)
        .env("AGENT_ORCHESTRATOR_AUTOSTART", "0")
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let mut child = cmd.spawn().expect("spawn");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(prompt.as_bytes())
        .unwrap();
    child.wait_with_output().expect("wait")
}

#[tokio::test]
async fn a_real_run_with_a_tool_call_then_a_resume() {
    let Some(claude) = RealClaude::locate() else {
        return;
    };
    let mock = MockAnthropic::start();
    let env = RunEnv::new();

    let out = real(
        &env,
        &claude,
        &mock,
        "ao-new",
        &["real"],
        "Please USE_TOOL now",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert_eq!(
        stdout,
        "The command printed hello-from-tool. Final answer: 4\n"
    );
    assert_eq!(stderr, "");
    let session = env.session("real").await.expect("session in the API");
    assert_eq!(session.status.as_str(), "finished");
    let events = env.events("real").await;
    assert_eq!(
        kinds(&events),
        [
            "run_start",
            "message:user",
            "post_tool",
            "message:assistant",
            "run_completed"
        ]
    );
    let tool = &events[2];
    assert_eq!(tool["tool_name"], "Bash");
    assert_eq!(tool["tool_input"]["command"], "echo hello-from-tool");
    assert_eq!(tool["tool_output"]["stdout"], "hello-from-tool");
    assert_eq!(events[4]["exit_code"], 0);
    assert_eq!(env.meta("real")["session_id"], session.session_id.as_str());
    // The backup holds the CLI's init line with the same session id.
    let lines = env.backup_lines("real");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "system" && l["session_id"] == session.session_id.as_str())
    );

    let out = real(
        &env,
        &claude,
        &mock,
        "ao-resume",
        &["real"],
        "What did I ask before?",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        stdout.starts_with("mock answer: What did I ask before?"),
        "{stdout}"
    );
    let resumed = env.session("real").await.unwrap();
    assert_eq!(
        resumed.session_id, session.session_id,
        "the same conversation"
    );
    assert!(resumed.last_resumed_at.is_some());
    let events = env.events("real").await;
    assert_eq!(
        kinds(&events)[5..],
        [
            "run_start",
            "message:user",
            "message:assistant",
            "run_completed"
        ]
    );
    // The model saw the first run's conversation in the resumed request.
    let last = mock.message_requests().pop().unwrap();
    let history = Value::Array(last.messages().to_vec()).to_string();
    assert!(history.contains("USE_TOOL"), "{history}");
    assert!(history.contains("hello-from-tool"));
}

#[tokio::test]
async fn a_model_api_error_fails_the_run_and_is_recorded() {
    let Some(claude) = RealClaude::locate() else {
        return;
    };
    let mock = MockAnthropic::start();
    let env = RunEnv::new();
    let out = real(
        &env,
        &claude,
        &mock,
        "ao-new",
        &["fails"],
        "Please FAIL_API now",
    );
    let (stdout, stderr) = texts(&out);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stdout, "");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("400"), "{stderr}");
    let events = env.events("fails").await;
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "run_completed");
    assert_eq!(end["reason"], "error");
    assert_eq!(end["exit_code"], 1);
    assert!(end["error"].as_str().unwrap().contains("400"));
    assert_eq!(
        env.session("fails").await.unwrap().status.as_str(),
        "finished"
    );
}
