//! `ao-new` / `ao-resume` against the scripted fake CLI, on every path:
//! stdout, exit code, backup files and the events in a real session manager.

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::http::{kinds, run_kinds};
use crate::support::project::is_empty_dir;
use crate::support::{Project, Running};

/// The `exit_code` and `reason` of the last event (the run's end).
fn ending(events: &[Value]) -> (Option<i64>, Option<&str>) {
    let end = events.last().expect("an event");
    (end["exit_code"].as_i64(), end["reason"].as_str())
}

#[tokio::test]
async fn a_plain_run_answers_on_stdout_and_reports_every_step() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["w1"], "What is 2+2?\n", "plain");
    // Nothing but the answer.
    assert_eq!(out.ok(), "fake answer to: What is 2+2?");

    let session = env.session("w1").await.expect("created in the API");
    assert_eq!(session.status.as_str(), "finished");
    assert_eq!(
        session.project_dir.as_deref(),
        Some(env.dir_text().as_str())
    );
    let events = env.events("w1").await;
    assert_eq!(kinds(&events), run_kinds(0));
    assert_eq!(events[1]["content"][0]["text"], "What is 2+2?");
    assert_eq!(
        events[2]["content"][0]["text"],
        "fake answer to: What is 2+2?"
    );
    assert_eq!(events[3]["exit_code"], 0);
    assert_eq!(events[3]["reason"], "completed");
    let ids: std::collections::HashSet<&str> = events
        .iter()
        .map(|e| e["event_id"].as_str().expect("event_id"))
        .collect();
    assert_eq!(ids.len(), events.len(), "each event has its own id");

    // Backups: user_message first, the CLI's lines, run_completed last.
    let lines = env.backup_lines("w1");
    assert_eq!(lines[0]["type"], "user_message");
    assert_eq!(lines[0]["content"], "What is 2+2?");
    assert!(
        lines
            .iter()
            .any(|l| l["type"] == "system" && l["subtype"] == "init")
    );
    assert!(lines.iter().any(|l| l["type"] == "result"));
    assert_eq!(lines.last().unwrap()["type"], "run_completed");
    let meta = env.meta("w1");
    assert_eq!(meta["session_id"], session.session_id.as_str());
    assert_eq!(meta["session_name"], "w1");

    // The prompt went on stdin, never on the command line.
    let log = env.fake_log();
    assert_eq!(log.len(), 1);
    let argv = log[0]["argv"].to_string();
    assert!(!argv.contains("2+2"), "prompt in argv: {argv}");
    for flag in ["stream-json", "--verbose", "bypassPermissions"] {
        assert!(argv.contains(flag), "{flag} missing from {argv}");
    }
    let stdin = env.fake_stdin(0);
    assert_eq!(stdin[0]["request"]["subtype"], "initialize");
    assert_eq!(stdin[1]["message"]["content"], "What is 2+2?");
}

#[tokio::test]
async fn every_backup_line_is_the_cli_line_byte_for_byte() {
    let mut env = Project::with_server();
    // A wrapper that copies the fake's stdout to a file on its way.
    let copy = env.scratch().join("cli-stdout.txt");
    let wrapper = env.scratch().join("claude-tee.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/bash\nset -o pipefail\n'{}' \"$@\" | tee '{}'\n",
            env.claude().display(),
            copy.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set_claude(&wrapper);
    let out = env.run("ao-new", &["tee"], "copy me", "tools:2,garbage");
    assert_eq!(out.code, Some(0), "{out:?}");
    let raw = env.backup_text("tee");
    let lines: Vec<&str> = raw.lines().collect();
    let cli = std::fs::read_to_string(&copy).unwrap();
    let cli_lines: Vec<&str> = cli.lines().collect();
    assert_eq!(
        &lines[1..lines.len() - 1],
        &cli_lines[..],
        "unchanged and in order"
    );
    assert!(cli_lines.contains(&"this is not json {"));
}

#[tokio::test]
async fn tool_calls_are_answered_at_once_and_reported_in_order() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["tools"], "use tools", "tools:3");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("tools").await;
    assert_eq!(kinds(&events), run_kinds(3));
    let calls = crate::support::http::tool_calls(&events);
    let started: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "pre_tool")
        .collect();
    for (pre, post) in started.iter().zip(&calls) {
        assert_eq!(
            pre["tool_use_id"], post["tool_use_id"],
            "a call's start and end pair up"
        );
        assert!(
            pre["tool_output"].is_null(),
            "a starting call has no output yet"
        );
    }
    for (n, e) in calls.iter().enumerate() {
        assert_eq!(e["tool_name"], "Bash");
        assert_eq!(e["tool_input"]["command"], format!("echo tool-{}", n + 1));
        assert_eq!(e["tool_output"]["stdout"], format!("tool-{}", n + 1));
    }
    // Each hook callback got its answer (the fake exits 3 otherwise).
    let stdin = env.fake_stdin(0);
    let answers = stdin
        .iter()
        .filter(|l| l["type"] == "control_response" && l["response"]["subtype"] == "success")
        .count();
    assert_eq!(
        answers, 6,
        "three PreToolUse and three PostToolUse callbacks"
    );
}

#[tokio::test]
async fn other_control_requests_get_an_answer_instead_of_a_hang() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["ctl"], "x", "control");
    assert_eq!(out.code, Some(0), "{out:?}");
    let stdin = env.fake_stdin(0);
    let subtypes: Vec<&str> = stdin
        .iter()
        .filter(|l| l["type"] == "control_response")
        .map(|l| l["response"]["subtype"].as_str().unwrap())
        .collect();
    assert_eq!(
        subtypes,
        ["success", "error"],
        "can_use_tool allowed, the unknown refused"
    );
}

#[tokio::test]
async fn an_error_result_fails_the_run_with_its_text() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["err"], "x", "error");
    let line = out.fails(1);
    assert!(
        line.contains("API Error: 400 fake: prompt rejected"),
        "{line}"
    );
    let events = env.events("err").await;
    // The CLI's error text is no answer: it is in run_completed only.
    assert_eq!(
        kinds(&events),
        ["run_start", "message:user", "run_completed"]
    );
    assert_eq!(ending(&events), (Some(1), Some("error")));
    let end = events.last().unwrap();
    assert!(end["error"].as_str().unwrap().contains("API Error"));
    assert_eq!(env.api_status("err").await, "finished");
}

#[tokio::test]
async fn a_crash_mid_stream_is_recorded_with_the_stderr_tail() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["crash"], "x", "crash");
    let line = out.fails(1);
    assert!(line.contains("exited with code 2"), "{line}");
    assert!(line.contains("simulated crash"), "{line}");
    let events = env.events("crash").await;
    // What it said before it crashed is narration, not an answer.
    assert_eq!(
        kinds(&events),
        [
            "run_start",
            "message:user",
            "message:assistant",
            "run_completed"
        ]
    );
    assert_eq!(events[2]["final"], false);
    assert_eq!(
        events[2]["content"][0]["text"],
        "Let me look into that first."
    );
    assert_eq!(ending(&events), (Some(2), Some("error")));
    assert!(events[3]["error"].as_str().unwrap().contains("at step 2"));
    assert_eq!(env.backup_lines("crash").last().unwrap()["reason"], "error");
}

#[tokio::test]
async fn a_cli_killed_by_sigkill_is_an_error_run() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["killed"], "x", "sigkill");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("SIGKILL"), "{out:?}");
    let events = env.events("killed").await;
    assert_eq!(ending(&events), (Some(137), Some("error")));
    assert_eq!(env.api_status("killed").await, "finished");
}

#[tokio::test]
async fn garbage_and_slow_output_do_not_disturb_the_run() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["slow"], "x", "garbage,slow:30,tools:2");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.backup_text("slow").contains("\nthis is not json {\n"));
    let events = env.events("slow").await;
    assert_eq!(kinds(&events), run_kinds(2));
}

#[tokio::test]
async fn a_run_without_init_fails_and_keeps_its_backup() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["noinit"], "x", "noinit");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("No conversation found"), "{out:?}");
    // The CLI never named a session, so the API has nothing; the backup has it all.
    assert!(env.session("noinit").await.is_none());
    let lines = env.backup_lines("noinit");
    let types: Vec<&str> = lines
        .iter()
        .map(|l| l["type"].as_str().unwrap_or("result"))
        .collect();
    assert_eq!(types.first(), Some(&"user_message"));
    assert_eq!(types.last(), Some(&"run_completed"));
    // A session that never started can be started again under the same name.
    let again = env.run("ao-new", &["noinit"], "x", "plain");
    assert_eq!(again.code, Some(0), "{again:?}");
}

#[tokio::test]
async fn a_one_mebibyte_line_passes_whole() {
    let env = Project::with_server();
    let size = 1024 * 1024;
    let out = env.run("ao-new", &["big"], "x", &format!("bigline:{size}"));
    assert_eq!(out.code, Some(0), "{:?}", out.stderr);
    assert_eq!(out.stdout.len(), size + 1, "the whole answer and a newline");
    let raw = env.backup_text("big");
    assert!(
        raw.lines().any(|l| l.len() > size),
        "the long line is in the backup"
    );
    let events = env.events("big").await;
    assert_eq!(kinds(&events), run_kinds(0));
    let text = events[2]["content"][0]["text"].as_str().unwrap();
    assert!(
        text.ends_with(agent_orchestrator::record::TRUNCATION_MARK),
        "cut to fit the API"
    );
    assert!(text.starts_with("fake big answer: "));
}

#[tokio::test]
async fn resume_continues_the_same_session() {
    let env = Project::with_server();
    env.new_session("r", "first");
    let first = env.session("r").await.unwrap();
    let out = env.run("ao-resume", &["r"], "second", "tools:1");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "fake answer to: second\n");
    let again = env.session("r").await.unwrap();
    assert_eq!(again.session_id, first.session_id);
    assert!(again.last_resumed_at.is_some());
    assert_eq!(again.created_at, first.created_at);
    let events = env.events("r").await;
    assert_eq!(kinds(&events), [run_kinds(0), run_kinds(1)].concat());
    let log = env.fake_log();
    let argv = log[1]["argv"].as_array().unwrap();
    let at = argv.iter().position(|a| a == "--resume").expect("--resume");
    assert_eq!(argv[at + 1], first.session_id.as_str());
    assert_eq!(
        env.meta("r")["last_resumed_at"],
        again.last_resumed_at.unwrap().as_str()
    );
}

#[tokio::test]
async fn refusals_are_one_line_and_touch_nothing() {
    let env = Project::with_server();
    let check = |args: &[&str], program: &str, stdin: &str, code: i32, needle: &str| {
        let out = env.run(program, args, stdin, "plain");
        let line = out.fails(code);
        assert!(line.contains(needle), "{program} {args:?}: {line}");
    };
    check(&["../x"], "ao-new", "x", 2, "letters, digits");
    check(&[&"x".repeat(61)], "ao-new", "x", 2, "limit is 60");
    check(&["ok"], "ao-new", "  \n", 2, "prompt is empty");
    check(&["ghost"], "ao-resume", "x", 1, "no session named 'ghost'");
    check(&["ok", "--bogus"], "ao-new", "x", 2, "--bogus");
    assert!(
        is_empty_dir(&env.sessions_dir()),
        "nothing written for refused runs"
    );

    let mut missing = env.command("ao-new");
    missing
        .args(["nocli"])
        .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", "/nonexistent/claude");
    let out = Running::start(missing, Some("x")).wait();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr
            .contains("npm install -g @anthropic-ai/claude-code"),
        "{out:?}"
    );
    assert!(
        is_empty_dir(&env.sessions_dir()),
        "no backup for a CLI that is not there"
    );

    env.new_session("dup", "x");
    check(&["dup"], "ao-new", "x", 1, "already exists");
}

#[tokio::test]
async fn the_prompt_can_come_from_the_flag_and_stdin_together() {
    let env = Project::with_server();
    let out = env.run(
        "ao-new",
        &["both", "-p", "from flag"],
        "from stdin",
        "plain",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let stdin = env.fake_stdin(0);
    assert_eq!(stdin[1]["message"]["content"], "from flag\n\nfrom stdin");
    // With -p and a stdin that stays open and silent, the flag alone is used.
    let mut child = env.command("ao-new");
    child
        .args(["flag-only", "-p", "just the flag"])
        .env("FAKE_CLAUDE_SCENARIO", "plain")
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped());
    let mut child = child.spawn().unwrap();
    let _keep_open = child.stdin.take();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "fake answer to: just the flag\n"
    );
}

#[tokio::test]
async fn signals_are_passed_on_and_recorded_as_interrupted() {
    for (signal, code) in [(Signal::SIGTERM, 143), (Signal::SIGINT, 130)] {
        let env = Project::with_server();
        let runner = env.start_hanging("sig").await;

        // While it runs, a resume of the same session is refused.
        let busy = env.run("ao-resume", &["sig"], "y", "plain");
        assert_eq!(busy.code, Some(1), "{busy:?}");
        assert!(busy.stderr.contains("is running"), "{busy:?}");

        let out = runner.stop(signal);
        assert_eq!(out.code, Some(code), "{out:?}");
        assert!(out.stderr.contains("interrupted"), "{out:?}");
        let events = env.events("sig").await;
        let end = events.last().unwrap();
        assert_eq!(end["event_type"], "run_completed");
        assert_eq!(end["reason"], "interrupted");
        assert_eq!(env.api_status("sig").await, "finished");
        let fake = &env.fake_log()[0];
        assert_eq!(
            fake["exit_code"].as_i64(),
            Some(code as i64),
            "the CLI got the signal: {fake}"
        );
    }
}

#[tokio::test]
async fn an_unreachable_api_costs_one_warning_never_the_run() {
    let env = Project::offline();
    let out = env.run("ao-new", &["offline"], "x", "tools:2");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "fake answer to: x\n");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(
        lines[0].contains("warning") && lines[0].contains("ao-sync offline"),
        "{out:?}"
    );
    let lines = env.backup_lines("offline");
    assert_eq!(lines.first().unwrap()["type"], "user_message");
    assert_eq!(lines.last().unwrap()["reason"], "completed");
    assert!(env.meta("offline")["session_id"].is_string());
    // And resume works from the backups alone.
    let out = env.run("ao-resume", &["offline"], "y", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn legacy_events_send_session_stop_and_no_run_start() {
    let mut env = Project::with_server();
    let out = env.ao("ao-new", &["old", "--legacy-events", "-p", "x"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("old").await;
    assert_eq!(
        kinds(&events),
        ["message:user", "message:assistant", "session_stop"]
    );
    assert_eq!(env.api_status("old").await, "finished");

    env.set_env("AGENT_ORCHESTRATOR_LEGACY_EVENTS", "1");
    assert_eq!(env.ao("ao-new", &["old2", "-p", "x"], None).code, Some(0));
    assert_eq!(
        kinds(&env.events("old2").await).last().unwrap(),
        "session_stop"
    );
}

#[tokio::test]
async fn many_tool_calls_arrive_exactly_once_in_order() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["many"], "x", "tools:40");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("many").await;
    let tools: Vec<String> = events
        .iter()
        .filter(|e| e["event_type"] == "post_tool")
        .map(|e| e["tool_output"]["stdout"].as_str().unwrap().to_owned())
        .collect();
    let expected: Vec<String> = (1..=40).map(|n| format!("tool-{n}")).collect();
    assert_eq!(tools, expected);
    let ids: std::collections::HashSet<i64> =
        events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert_eq!(ids.len(), events.len());
    assert!(
        events
            .iter()
            .all(|e| e["timestamp"].as_str().is_some_and(|t| !t.is_empty()))
    );
    let _: Vec<Value> = events;
}
