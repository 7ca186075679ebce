//! `ao-new` / `ao-resume` driving the real Claude Code CLI (pinned
//! 2.1.329) against the mock Anthropic API: a new run with a tool call, a
//! resume of it, and a model API error.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::Project;
use crate::support::http::{kinds, run_kinds};
use crate::support::mock_anthropic::{MockAnthropic, SLOW_COMMAND};
use crate::support::procs::{self, Leftovers};
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;

/// A project with its own session manager whose `claude` is the real CLI
/// talking to `mock`.
fn real_project(claude: &RealClaude, mock: &MockAnthropic) -> Project {
    let mut project = Project::with_server();
    project.use_real_claude(claude, mock.base_url());
    project
}

#[tokio::test]
async fn a_real_run_with_a_tool_call_then_a_resume() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);

    let out = env.ao("ao-new", &["real"], Some("Please USE_TOOL now"));
    assert_eq!(
        out.ok(),
        "The command printed hello-from-tool. Final answer: 4"
    );
    let session = env.session("real").await.expect("session in the API");
    assert_eq!(session.status.as_str(), "finished");
    let events = env.events("real").await;
    assert_eq!(kinds(&events), run_kinds(1));
    assert_eq!(events[2]["tool_name"], "Bash", "the call as it starts");
    let tool = &events[3];
    assert_eq!(tool["tool_name"], "Bash");
    assert_eq!(tool["tool_input"]["command"], "echo hello-from-tool");
    assert_eq!(tool["tool_output"]["stdout"], "hello-from-tool");
    assert_eq!(events[5]["exit_code"], 0);
    assert_eq!(env.meta("real")["session_id"], session.session_id.as_str());
    // The backup holds the CLI's init line with the same session id.
    let lines = env.backup_lines("real");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "system" && l["session_id"] == session.session_id.as_str())
    );

    let out = env.ao("ao-resume", &["real"], Some("What did I ask before?"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .starts_with("mock answer: What did I ask before?"),
        "{out:?}"
    );
    let resumed = env.session("real").await.unwrap();
    assert_eq!(
        resumed.session_id, session.session_id,
        "the same conversation"
    );
    assert!(resumed.last_resumed_at.is_some());
    let events = env.events("real").await;
    assert_eq!(kinds(&events)[6..], run_kinds(0));
    // The model saw the first run's conversation in the resumed request.
    let history = mock.last_history();
    assert!(history.contains("USE_TOOL"), "{history}");
    assert!(history.contains("hello-from-tool"));
}

#[tokio::test]
async fn a_model_api_error_fails_the_run_and_is_recorded() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let out = env.ao("ao-new", &["fails"], Some("Please FAIL_API now"));
    let line = out.fails(1);
    assert!(line.contains("400"), "{line}");
    let events = env.events("fails").await;
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "run_completed");
    assert_eq!(end["reason"], "error");
    assert_eq!(end["exit_code"], 1);
    assert!(end["error"].as_str().unwrap().contains("400"));
    assert_eq!(env.api_status("fails").await, "finished");
}

#[tokio::test]
async fn a_run_stopped_mid_tool_call_resumes_the_conversation() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let out = env.ao(
        "ao-new",
        &["slow", "--detach"],
        Some("Please USE_SLOW_TOOL now"),
    );
    assert_eq!(out.ok(), "slow");
    crate::support::project::eventually("the slow tool call to start", async || {
        env.backup_text("slow").contains(SLOW_COMMAND)
    })
    .await;
    let out = env.ao("ao-stop", &["slow", "--json"], None);
    let report: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(report["status"], "stopped", "{report}");
    assert_eq!(report["via"], "signal");
    let lines = env.backup_lines("slow");
    // The interrupt went through the control protocol, and the CLI took it.
    assert!(
        lines.iter().any(|l| l["type"] == "control_response"
            && l["response"]["request_id"]
                .as_str()
                .is_some_and(|id| id.starts_with("req_stop"))
            && l["response"]["subtype"] == "success"),
        "the CLI's answer to the interrupt: {report}\n{}",
        env.backup_text("slow")
    );
    // How the CLI ends after that depends on where in its turn the
    // interrupt found it (a result of subtype error_during_execution and
    // exit 1 mid tool call; under load sometimes no result and exit 0): the
    // run is stopped either way.
    let events = env.events("slow").await;
    assert_eq!(events.last().unwrap()["reason"], "stopped");

    let out = env.ao("ao-resume", &["slow"], Some("What did I ask before?"));
    assert!(
        out.ok().starts_with("mock answer: What did I ask before?"),
        "{out:?}"
    );
    let history = mock.last_history();
    assert!(
        history.contains("USE_SLOW_TOOL"),
        "the conversation went on: {history}"
    );
}

/// Claude Code runs each Bash command in a session of its own, so what a
/// command starts is in no process group of the runner's: a SIGKILLed
/// runner must still take it along (a foreground command, one started
/// with `setsid`, one double-forked away).
#[tokio::test]
async fn a_sigkilled_runners_bash_processes_end_with_it() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    // Every process of the command names this file, and nothing else does.
    let marker = env.dir.join("tool-marker.log");
    std::fs::write(&marker, "").unwrap();
    let marker = marker.to_string_lossy().into_owned();
    let command = format!(
        "(timeout 300 tail -f {marker} >/dev/null 2>&1 &); \
         setsid timeout 301 tail -f {marker} >/dev/null 2>&1 & \
         timeout 302 tail -f {marker}"
    );
    let mut leftovers = Leftovers::default();
    let out = env.ao(
        "ao-new",
        &["tools", "--detach", "--json"],
        Some(&format!("Please RUN_BASH: {command}\n")),
    );
    let report: Value = serde_json::from_str(out.ok()).expect("json");
    let runner = report["pid"].as_i64().expect("pid") as i32;
    leftovers.watch([runner]);
    // Three `timeout`s, three `tail`s, and the shell running the command.
    eventually("the command's processes to start", async || {
        procs::matching(&marker).len() >= 7
    })
    .await;
    let started = procs::matching(&marker);
    leftovers.watch(started.iter().copied());
    kill(Pid::from_raw(runner), Signal::SIGKILL).unwrap();
    let killed = std::time::Instant::now();
    eventually(
        "no process of the command to survive its runner",
        async || procs::matching(&marker).is_empty(),
    )
    .await;
    eprintln!(
        "{} processes of the Bash command ended {} ms after the runner's SIGKILL",
        started.len(),
        killed.elapsed().as_millis()
    );
}
