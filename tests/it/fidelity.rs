//! Fidelity to what nobody here wrote: a CLI that renames a resumed
//! conversation (Claude Code before 1.0.124), an error that must not be read
//! as an answer, a CLI that does not speak our protocol, and the original
//! system's server and its clients.

use serde_json::{Value, json};

use crate::support::http::kinds;
use crate::support::legacy_server::LegacyServer;
use crate::support::mock_anthropic::MockAnthropic;
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;
use crate::support::{Project, SessionManager};

/// Three runs of one session with a CLI that gives every resume a new id:
/// one identity in the API and the backup, every run's events on it, each
/// resume continuing the CLI's latest id.
fn three_runs_keep_one_identity(env: &Project, prompts: [&str; 3]) -> String {
    for (i, prompt) in prompts.iter().enumerate() {
        let program = if i == 0 { "ao-new" } else { "ao-resume" };
        let out = env.ao(program, &["renamed"], Some(prompt));
        assert_eq!(out.code, Some(0), "run {}: {out:?}", i + 1);
        assert_eq!(out.stderr, "", "run {}: nothing refused: {out:?}", i + 1);
    }
    let meta = env.meta("renamed");
    let identity = meta["session_id"].as_str().unwrap().to_owned();
    let conversation = meta["conversation_id"]
        .as_str()
        .expect("the CLI's latest id");
    assert_ne!(identity, conversation);
    identity
}

#[tokio::test]
async fn a_cli_that_renames_resumed_conversations_keeps_one_session() {
    let mut env = Project::with_server();
    env.set_env("FAKE_CLAUDE_NEW_ID_ON_RESUME", "1");
    let identity = three_runs_keep_one_identity(&env, ["one", "two", "three"]);
    let (_, all) = env.http().get("/sessions").await;
    assert_eq!(
        all["sessions"].as_array().unwrap().len(),
        1,
        "one session: {all}"
    );
    let events = env.http().events(&identity).await;
    let runs = kinds(&events)
        .iter()
        .filter(|k| *k == "run_completed")
        .count();
    assert_eq!(
        runs,
        3,
        "every run's events on the first id: {:?}",
        kinds(&events)
    );
    // Each resume continued the conversation under the CLI's latest id.
    let log = env.fake_log();
    let resumed: Vec<&str> = log[1..]
        .iter()
        .map(|l| {
            let argv = l["argv"].as_array().unwrap();
            let at = argv.iter().position(|a| a == "--resume").unwrap();
            argv[at + 1].as_str().unwrap()
        })
        .collect();
    assert_eq!(resumed[0], identity);
    assert_eq!(
        resumed[1],
        log[1]["session_id"].as_str().unwrap(),
        "the second run's id"
    );
    assert_eq!(
        env.ao("ao-get-result", &["renamed"], None).ok(),
        "fake answer to: three"
    );

    // ao-sync rebuilds the same record from the backups.
    let http = env.http();
    let (status, _) = http.delete(&format!("/sessions/{identity}")).await;
    assert_eq!(status, 200);
    let out = env.ao("ao-sync", &["renamed"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let again = http.events(&identity).await;
    assert_eq!(kinds(&again), kinds(&events));
}

#[tokio::test]
async fn claude_code_1_0_100_resumes_under_one_identity() {
    let Some(claude) = RealClaude::locate_version("1.0.100") else {
        return;
    };
    let mock = MockAnthropic::start();
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let identity = three_runs_keep_one_identity(
        &env,
        [
            "Please USE_TOOL now",
            "What did I ask before?",
            "And once more",
        ],
    );
    let events = env.http().events(&identity).await;
    let runs = kinds(&events)
        .iter()
        .filter(|k| *k == "run_completed")
        .count();
    assert_eq!(runs, 3, "{:?}", kinds(&events));
    // The third run saw the whole conversation.
    let history = mock.last_history();
    assert!(
        history.contains("USE_TOOL") && history.contains("What did I ask before"),
        "{history}"
    );
}

#[tokio::test]
async fn a_failed_runs_error_is_never_served_as_its_result() {
    let env = Project::with_server();
    env.new_session("f", "fine");
    let out = env.run("ao-resume", &["f"], "x", "error");
    assert!(out.fails(1).contains("API Error: 400"), "{out:?}");
    let events = env.events("f").await;
    let answers: Vec<&Value> = events.iter().filter(|e| e["role"] == "assistant").collect();
    assert_eq!(
        answers.len(),
        1,
        "only the first run's answer: {:?}",
        kinds(&events)
    );
    let end = events.last().unwrap();
    assert_eq!(end["reason"], "error");
    assert!(end["error"].as_str().unwrap().contains("API Error: 400"));
    let id = env.session_id("f");
    let (status, body) = env.http().get(&format!("/sessions/{id}/result")).await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("API Error: 400"),
        "{body}"
    );
    assert!(
        env.ao("ao-get-result", &["f"], None)
            .fails(1)
            .contains("failed")
    );

    // A session recorded before the fix (the error stored as an answer) too.
    let http = env.http();
    http.post(
        "/sessions",
        json!({"session_id": "old-1", "session_name": "old"}),
    )
    .await;
    let e = |kind: &str, extra: Value| {
        let mut e = json!({"event_type": kind, "session_id": "old-1", "session_name": "old", "timestamp": "2026-01-01T00:00:00Z"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    for event in [
        e("run_start", json!({})),
        e(
            "message",
            json!({"role": "assistant", "content": [{"type": "text", "text": "the answer"}]}),
        ),
        e(
            "run_completed",
            json!({"reason": "completed", "exit_code": 0}),
        ),
        e("run_start", json!({})),
        e(
            "message",
            json!({"role": "assistant", "content": [{"type": "text", "text": "API Error: 500 boom"}]}),
        ),
        e(
            "run_completed",
            json!({"reason": "error", "exit_code": 1, "error": "API Error: 500 boom"}),
        ),
    ] {
        let (status, body) = http.post("/sessions/old-1/events", event).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = http.get("/sessions/old-1/result").await;
    assert_eq!(
        (status, body["detail"].as_str()),
        (409, Some("API Error: 500 boom"))
    );
    // Legacy senders without run_start: the last run starts after the previous end.
    http.post(
        "/sessions",
        json!({"session_id": "old-2", "session_name": "old2"}),
    )
    .await;
    let f = |kind: &str, extra: Value| {
        let mut v = e(kind, extra);
        v["session_id"] = json!("old-2");
        v
    };
    for event in [
        f(
            "message",
            json!({"role": "assistant", "content": [{"type": "text", "text": "first"}]}),
        ),
        f("session_stop", json!({"reason": "completed"})),
        f("session_stop", json!({"reason": "interrupted"})),
    ] {
        http.post("/sessions/old-2/events", event).await;
    }
    let (status, body) = http.get("/sessions/old-2/result").await;
    assert_eq!(status, 409, "the last run was interrupted: {body}");
}

#[tokio::test]
async fn a_cli_that_does_not_speak_the_protocol_is_named_with_its_version() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["v"], "x", "noinit");
    let line = out.fails(1);
    assert!(
        line.contains("found claude 2.1.329 (Claude Code fake)")
            && line.contains("this release drives Claude Code 1.0.100 to 2.1.332"),
        "{line}"
    );
}

#[tokio::test]
async fn legacy_mode_works_against_the_original_server() {
    let legacy = LegacyServer::start();
    legacy.add_session("other-1", "other", "/somewhere/else");
    legacy.add_session("other-2", "w", "/another/project");
    let mut env = Project::new(&legacy.url);
    env.set_env("AGENT_ORCHESTRATOR_LEGACY_EVENTS", "1");
    let out = env.run("ao-new", &["w"], "first", "tools:1");
    assert_eq!(out.ok(), "fake answer to: first");
    let id = env.session_id("w");
    let stored = legacy.events(&id);
    let types: Vec<&str> = stored
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "message",
            "pre_tool",
            "post_tool",
            "message",
            "session_stop"
        ]
    );
    // The name lookups ignore the sessions the server returned unasked.
    assert_eq!(env.ao("ao-status", &["w"], None).ok(), "finished");
    assert_eq!(
        env.ao("ao-get-result", &["w"], None).ok(),
        "fake answer to: first"
    );
    let out = env.run("ao-resume", &["w"], "second", "plain");
    assert_eq!(out.ok(), "fake answer to: second");
    assert!(
        legacy
            .requests()
            .contains(&("PATCH".to_owned(), format!("/sessions/{id}/metadata"))),
        "the PATCH went to /metadata"
    );
    let session = legacy
        .sessions()
        .into_iter()
        .find(|s| s["session_id"] == id)
        .unwrap();
    assert!(session["last_resumed_at"].is_string(), "{session}");
    assert_eq!(
        env.ao("ao-get-result", &["w"], None).ok(),
        "fake answer to: second"
    );
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added 0 events"), "{out:?}");

    // A run whose runner died is closed without creating the session again.
    let runner = env.spawn("ao-resume", &["w"], "third", "hang");
    eventually("the run to start", async || {
        env.backup_text("w").contains("third")
    })
    .await;
    eventually("its init", async || {
        env.backup_text("w").matches("\"subtype\":\"init\"").count() == 3
    })
    .await;
    runner.stop(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(env.ao("ao-status", &["w"], None).ok(), "finished");
    let creates = legacy
        .requests()
        .iter()
        .filter(|(m, p)| m == "POST" && p == "/sessions")
        .count();
    assert_eq!(
        creates,
        1,
        "the session was created once: {:?}",
        legacy.requests()
    );
    let last = legacy.events(&id).pop().unwrap();
    assert_eq!(
        (last["event_type"].as_str(), last["reason"].as_str()),
        (Some("session_stop"), Some("interrupted"))
    );
}

#[tokio::test]
async fn our_server_serves_the_original_systems_clients() {
    let sm = SessionManager::start();
    let http = sm.http();
    // The first event of an unknown session creates it, whatever its type.
    let (status, body) = http
        .post(
            "/events",
            json!({"event_type": "pre_tool", "session_id": "hooked-1", "session_name": "hooked",
                   "timestamp": "2026-01-01T00:00:00Z", "tool_name": "Bash", "tool_input": {"command": "ls"}}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(http.status("hooked-1").await, "running");
    let (status, body) = http.get("/events/nobody").await;
    assert_eq!((status, body), (200, json!({"events": []})));
    // A refused request is in the log with its reason.
    let (status, _) = http.get("/sessions/nobody").await;
    assert_eq!(status, 404);
    eventually("the refusal to be logged", async || {
        sm.log_text()
            .contains("refused GET /sessions/nobody: 404 session 'nobody' not found")
    })
    .await;
}

#[test]
fn ci_tests_the_ends_of_the_supported_range() {
    let ci = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/.ci/run")).unwrap();
    use agent_orchestrator::claude::{NEWEST_SUPPORTED, OLDEST_SUPPORTED};
    assert!(
        ci.contains(&format!("OLDEST_CLAUDE_CODE={OLDEST_SUPPORTED}\n")),
        "{ci}"
    );
    assert!(
        ci.contains(&format!("NEWEST_CLAUDE_CODE={NEWEST_SUPPORTED}\n")),
        "{ci}"
    );
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    assert!(
        readme.contains(&format!(
            "Claude Code {OLDEST_SUPPORTED} to {NEWEST_SUPPORTED}"
        )),
        "the README states the range"
    );
}
