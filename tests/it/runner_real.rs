//! `ao-new` / `ao-resume` driving the real Claude Code CLI (pinned
//! 2.1.329) against the mock Anthropic API: a new run with a tool call, a
//! resume of it, and a model API error.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::Project;
use crate::support::http::{kinds, run_kinds};
use crate::support::mock_anthropic::{MockAnthropic, NARRATION, SLOW_COMMAND, THINKING};
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

/// The whole conversation of a real run: the model's thinking, what it says
/// before a tool call, a subagent (the Task tool) whose own tool call is
/// nested under it, and the answer once, streamed as it was written.
#[tokio::test]
async fn a_real_run_records_thinking_narration_and_a_subagents_calls() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let out = env.ao(
        "ao-new",
        &["talk"],
        Some("THINK NARRATE USE_TASK: please USE_TOOL"),
    );
    let answer = out.ok().to_owned();
    assert!(answer.starts_with("The command printed "), "{answer}");
    let events = env.events("talk").await;
    let shown: Vec<String> = events
        .iter()
        .map(|e| {
            let kind = match (e["event_type"].as_str().unwrap(), e["final"].as_bool()) {
                ("message", Some(false)) => {
                    format!("said:{}", e["content"][0]["type"].as_str().unwrap())
                }
                ("message", _) => format!("message:{}", e["role"].as_str().unwrap()),
                (tool @ ("pre_tool" | "post_tool"), _) => {
                    format!("{tool}:{}", e["tool_name"].as_str().unwrap())
                }
                (other, _) => other.to_owned(),
            };
            if e["parent_tool_use_id"].is_string() {
                format!("  {kind}")
            } else {
                kind
            }
        })
        .collect();
    let task = events
        .iter()
        .find(|e| e["event_type"] == "pre_tool")
        .expect("the Task call");
    let task_name = task["tool_name"].as_str().unwrap();
    let expected = [
        "run_start".to_owned(),
        "message:user".to_owned(),
        "said:thinking".to_owned(),
        "said:text".to_owned(),
        format!("pre_tool:{task_name}"),
        "  pre_tool:Bash".to_owned(),
        "  post_tool:Bash".to_owned(),
        format!("post_tool:{task_name}"),
        "said:thinking".to_owned(),
        "message:assistant".to_owned(),
        "run_completed".to_owned(),
    ];
    assert_eq!(
        shown,
        expected,
        "{}",
        env.backup_text("talk")
            .lines()
            .filter(|l| !l.contains("stream_event"))
            .collect::<Vec<_>>()
            .join("\n")
    );
    let nested = events
        .iter()
        .find(|e| e["event_type"] == "pre_tool" && e["tool_name"] == "Bash")
        .unwrap();
    assert_eq!(nested["parent_tool_use_id"], task["tool_use_id"]);
    assert_eq!(events[3]["content"][0]["text"], NARRATION);
    assert_eq!(events[2]["content"][0]["text"], THINKING);
    assert_eq!(
        env.ao("ao-get-result", &["talk"], None).ok(),
        answer,
        "the answer, not what was said on the way"
    );
}
