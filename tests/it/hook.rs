//! `ao-hook`: any Claude Code session reports to the session manager
//! through command hooks, silently and within bounded time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::real_cli_protocol::drive_with_env;
use crate::support::http::{kinds, run_kinds};
use crate::support::real_claude::RealClaude;
use crate::support::{Output, Project, Running, SessionManager, command};

fn hook(url: &str, input: &Value) -> Output {
    let mut cmd = command("ao-hook");
    cmd.env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", url);
    Running::start(cmd, Some(&input.to_string())).wait()
}

/// `ao-hook ARGS`, with no stdin.
fn hook_command(args: &[&str]) -> Output {
    let mut cmd = command("ao-hook");
    cmd.args(args);
    Running::start(cmd, None).wait()
}

fn silent_success(out: &Output) {
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.is_empty(), "a hook prints nothing: {out:?}");
    assert!(out.stderr.is_empty(), "{out:?}");
}

#[tokio::test]
async fn each_hook_event_becomes_the_matching_session_and_events() {
    let sm = SessionManager::start();
    let dir = tempfile::tempdir().unwrap();
    let transcript = dir.path().join("t.jsonl");
    std::fs::write(
        &transcript,
        r#"{"type":"assistant","message":{"content":[{"type":"text","text":"All done."}]}}"#,
    )
    .unwrap();
    let id = "5b1d2c3e-0000-4000-8000-000000000001";
    let base = json!({"session_id": id, "transcript_path": transcript, "cwd": "/work/proj"});
    let with = |extra: Value| {
        let mut v = base.clone();
        v.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        v
    };
    silent_success(&hook(
        &sm.url,
        &with(json!({"hook_event_name": "SessionStart", "source": "startup"})),
    ));
    silent_success(&hook(
        &sm.url,
        &with(json!({"hook_event_name": "UserPromptSubmit", "prompt": "fix the bug"})),
    ));
    let tool = with(
        json!({"hook_event_name": "PostToolUse", "tool_name": "Bash",
        "tool_input": {"command": "ls"}, "tool_response": {"stdout": "a b"}, "tool_use_id": "toolu_1"}),
    );
    let mut starting = tool.clone();
    starting["hook_event_name"] = json!("PreToolUse");
    starting.as_object_mut().unwrap().remove("tool_response");
    silent_success(&hook(&sm.url, &starting));
    silent_success(&hook(&sm.url, &tool));
    silent_success(&hook(&sm.url, &tool)); // fired twice: stored once
    silent_success(&hook(
        &sm.url,
        &with(json!({"hook_event_name": "Stop", "stop_hook_active": false})),
    ));
    silent_success(&hook(
        &sm.url,
        &with(json!({"hook_event_name": "SessionStart", "source": "resume"})),
    ));

    let session = sm.client().get_session(id).await.unwrap();
    assert_eq!(session.session_name, "claude-5b1d2c3e");
    assert_eq!(session.project_dir.as_deref(), Some("/work/proj"));
    assert_eq!(session.agent_name.as_deref(), Some("claude-code"));
    assert_eq!(session.status.as_str(), "finished");
    assert!(session.last_resumed_at.is_some());
    let events = sm.http().events(id).await;
    assert_eq!(kinds(&events), run_kinds(1));
    assert_eq!(events[1]["content"][0]["text"], "fix the bug");
    assert_eq!(events[2]["tool_input"]["command"], "ls");
    assert_eq!(events[2]["tool_use_id"], events[3]["tool_use_id"]);
    assert_eq!(events[3]["tool_output"]["stdout"], "a b");
    assert_eq!(events[4]["content"][0]["text"], "All done.");
    // The session is usable by the query commands by its name.
    assert_eq!(sm.client().get_result(id).await.unwrap(), "All done.");
}

#[tokio::test]
async fn a_hook_is_silent_and_quick_when_the_api_is_down_or_the_input_is_bad() {
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", closed.local_addr().unwrap());
    drop(closed);
    let started = Instant::now();
    silent_success(&hook(
        &url,
        &json!({"hook_event_name": "UserPromptSubmit", "session_id": "s", "prompt": "x"}),
    ));
    silent_success(&hook(&url, &json!("not an object")));
    silent_success(&hook(&url, &json!({"hook_event_name": "Stop"})));
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "each hook is bounded (2 s)"
    );
    // A session manager that accepts the connection but never answers.
    let black_hole = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", black_hole.local_addr().unwrap());
    let started = Instant::now();
    silent_success(&hook(
        &url,
        &json!({"hook_event_name": "SessionStart", "session_id": "s"}),
    ));
    assert!(
        started.elapsed() < Duration::from_secs(4),
        "gave up within its deadline"
    );
    drop(black_hole);
}

#[tokio::test]
async fn install_and_uninstall_edit_a_settings_file_safely() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(".claude/settings.json");
    let out = hook_command(&["install", "--settings", path.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let settings: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    for event in [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
    ] {
        let cmd = settings["hooks"][event][0]["hooks"][0]["command"]
            .as_str()
            .unwrap();
        assert!(
            cmd.ends_with("ao-hook") && cmd.starts_with('/'),
            "{event}: {cmd}"
        );
    }
    let out = hook_command(&["install", "--settings", path.to_str().unwrap()]);
    assert!(out.stdout.contains("already installed"));
    let out = hook_command(&["uninstall", "--settings", path.to_str().unwrap()]);
    assert!(out.stdout.contains("removed 5"), "{}", out.stdout);
    let out = hook_command(&["print-settings"]);
    let printed: Value = serde_json::from_str(&out.stdout).unwrap();
    assert!(printed["hooks"]["Stop"].is_array());
    // The settings file shipped in hooks/ is the same shape.
    let shipped: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/settings.json"))
            .unwrap(),
    )
    .unwrap();
    for event in [
        "SessionStart",
        "UserPromptSubmit",
        "PreToolUse",
        "PostToolUse",
        "Stop",
    ] {
        assert_eq!(shipped["hooks"][event][0]["hooks"][0]["command"], "ao-hook");
    }
    // The plugin's hooks are the same block.
    let plugin: Value = serde_json::from_str(
        &std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/hooks/hooks.json")).unwrap(),
    )
    .unwrap();
    assert_eq!(plugin, shipped);
}

/// The real CLI, with the hooks installed in its settings, reports a
/// session run outside the runner.
#[tokio::test]
async fn a_real_claude_session_reports_through_the_hooks() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = Project::with_server();
    let sm = project.sm();
    let settings = claude.home().join(".claude/settings.json");
    let out = hook_command(&["install", "--settings", settings.to_str().unwrap()]);
    assert_eq!(out.code, Some(0), "{out:?}");
    let run = drive_with_env(
        &claude,
        &mock,
        &project.dir,
        None,
        "Please USE_TOOL now",
        &[("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", &sm.url)],
    );
    let id = run.session_id();
    let session = sm
        .client()
        .get_session(&id)
        .await
        .expect("the hooks created the session");
    assert_eq!(session.session_name, format!("claude-{}", &id[..8]));
    let events = sm.http().events(&id).await;
    assert_eq!(kinds(&events), run_kinds(1));
    assert_eq!(events[2]["tool_input"]["command"], "echo hello-from-tool");
    assert_eq!(events[3]["tool_output"]["stdout"], "hello-from-tool");
    assert_eq!(
        events[4]["content"][0]["text"],
        "The command printed hello-from-tool. Final answer: 4"
    );
    assert_eq!(
        session.project_dir.as_deref(),
        Some(project.dir_text().as_str())
    );
}

/// With the hooks installed, a run made by `ao-new` is reported once, by the
/// runner, under its own name.
#[tokio::test]
async fn hooks_stay_out_of_runner_sessions() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let settings = claude.home().join(".claude/settings.json");
    hook_command(&["install", "--settings", settings.to_str().unwrap()]);
    let out = env.ao("ao-new", &["named", "-p", "Please USE_TOOL now"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let (_, all) = env.http().get("/sessions").await;
    let names: Vec<&str> = all["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["named"]);
    assert_eq!(env.events("named").await.len(), 6, "no event twice");
}
