//! `ao-status`: the three answers, name resolution across projects, bad
//! names, and the recovery of a run whose runner was killed.

use nix::sys::signal::Signal;
use serde_json::json;

use crate::support::{Output, Project, Running, SessionManager};

#[test]
fn finished_and_not_existent() {
    let p = Project::with_server();
    let id = p.new_session("w1", "hello");
    assert_eq!(p.ao("ao-status", &["w1"], None).ok(), "finished");
    let status = p.status_json("w1");
    let keys = ["session_name", "session_id", "status", "source", "num_runs"];
    let picked: serde_json::Map<String, serde_json::Value> = keys
        .iter()
        .map(|k| (k.to_string(), status[*k].clone()))
        .collect();
    assert_eq!(
        serde_json::Value::Object(picked),
        json!({"session_name": "w1", "session_id": id, "status": "finished", "source": "api", "num_runs": 1})
    );
    assert_eq!(status["usage"]["output_tokens"], 7, "the fake's tokens");
    assert_eq!(status["last_run"]["reason"], "completed");
    // Not an error: the command answered the question.
    assert_eq!(p.ao("ao-status", &["nope"], None).ok(), "not_existent");
    assert_eq!(
        p.status_json("nope"),
        json!({"session_name": "nope", "session_id": null, "status": "not_existent", "source": "api",
            "num_runs": 0, "cost_usd": null, "usage": {"input_tokens": 0, "output_tokens": 0,
            "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}, "last_run": null})
    );
}

#[test]
fn a_bad_name_is_refused_before_disk_or_api() {
    // A dead URL: a warning would show if the API were asked.
    let p = Project::offline();
    for bin in ["ao-status", "ao-get-result", "ao-clean"] {
        for bad in ["../x", "a b", "", &"x".repeat(61)] {
            let out = p.ao(bin, &[bad], None);
            let line = out.fails(2);
            assert!(
                line.starts_with(&format!("{bin}: error: session name")),
                "{line}"
            );
        }
    }
    assert!(!p.dir.join(".agent-orchestrator").exists());
}

#[test]
fn every_program_answers_an_unknown_flag_with_one_line_and_exit_2() {
    let p = Project::offline();
    for bin in [
        "ao-new",
        "ao-resume",
        "ao-status",
        "ao-get-result",
        "ao-list-sessions",
        "ao-list-agents",
        "ao-clean",
        "ao-show-config",
        "ao-sync",
        "ao-usage",
        "ao-wait",
        "ao-stop",
        "ao-hook",
        "ao-mcp",
        "ao-session-manager",
    ] {
        let out = p.ao(bin, &["--no-such-flag"], Some(""));
        let line = out.fails(2);
        assert!(
            line.starts_with(&format!(
                "{bin}: error: unexpected argument '--no-such-flag'"
            )),
            "{line}"
        );
        assert!(line.ends_with(&format!("(see {bin} --help)")), "{line}");
    }
}

#[test]
fn usage_errors_exit_2_and_help_shows_the_exit_codes() {
    let p = Project::offline();
    assert_eq!(p.ao("ao-status", &[], None).code, Some(2));
    assert_eq!(p.ao("ao-status", &["a", "--bogus"], None).code, Some(2));
    assert_eq!(p.ao("ao-clean", &["a", "--all"], None).code, Some(2));
    assert_eq!(p.ao("ao-clean", &[], None).code, Some(2));
    for bin in [
        "ao-status",
        "ao-get-result",
        "ao-list-sessions",
        "ao-clean",
        "ao-show-config",
    ] {
        let help = p.ao(bin, &["--help"], None);
        assert!(help.ok().contains("Exit codes: 0"), "{bin}: {help:?}");
        assert!(help.stdout.contains("Examples:"), "{bin}");
    }
}

#[tokio::test]
async fn a_running_session_is_running_until_its_run_ends() {
    let p = Project::with_server();
    let runner = p.start_hanging("h1").await;
    assert_eq!(p.ao("ao-status", &["h1"], None).ok(), "running");
    let line = p.ao("ao-get-result", &["h1"], None).fails(1).to_owned();
    assert_eq!(
        line,
        "ao-get-result: error: session 'h1' is still running; wait for its run to end with `ao-wait h1`"
    );
    assert_eq!(runner.stop(Signal::SIGTERM).code, Some(143));
    assert_eq!(p.ao("ao-status", &["h1"], None).ok(), "finished");
    let line = p.ao("ao-get-result", &["h1"], None).fails(1).to_owned();
    assert!(
        line.contains("was interrupted before it produced a result"),
        "{line}"
    );
}

#[tokio::test]
async fn a_run_whose_runner_was_killed_is_closed_as_interrupted() {
    let p = Project::with_server();
    let runner = p.start_hanging("stuck").await;
    // SIGKILL the runner, then its CLI: nobody will ever close the run.
    assert_eq!(p.kill_run("stuck", runner).code, None);
    let id = p.session_id("stuck");
    let http = p.http();
    assert_eq!(http.status(&id).await, "running");

    // The lock is free while the API says running: closed, and answered.
    assert_eq!(p.ao("ao-status", &["stuck"], None).ok(), "finished");
    assert_eq!(http.status(&id).await, "finished");
    let events = http.events(&id).await;
    let last = events.last().expect("an event");
    assert_eq!(last["event_type"], "run_completed");
    assert_eq!(last["reason"], "interrupted");
    let log = p.backup_lines("stuck");
    assert_eq!(log.last().expect("a line")["type"], "run_completed");
    assert_eq!(log.last().expect("a line")["reason"], "interrupted");

    // Asking again changes nothing.
    assert_eq!(p.ao("ao-status", &["stuck"], None).ok(), "finished");
    assert_eq!(http.events(&id).await.len(), events.len());
    assert_eq!(p.backup_lines("stuck").len(), log.len());
    let line = p.ao("ao-get-result", &["stuck"], None).fails(1).to_owned();
    assert!(line.contains("was interrupted"), "{line}");
}

#[test]
fn a_name_resolves_in_the_current_project_first() {
    let sm = SessionManager::start();
    let a = Project::new(&sm.url);
    let b = Project::new(&sm.url);
    let elsewhere = Project::new(&sm.url);
    let id_a = a.new_session("architect", "from A");
    let id_b = b.new_session("architect", "from B");
    assert_ne!(id_a, id_b);
    assert_eq!(a.status_json("architect")["session_id"], id_a.as_str());
    assert_eq!(b.status_json("architect")["session_id"], id_b.as_str());
    assert_eq!(
        a.ao("ao-get-result", &["architect"], None).ok(),
        "fake answer to: from A"
    );
    assert_eq!(
        b.ao("ao-get-result", &["architect"], None).ok(),
        "fake answer to: from B"
    );

    // From a third project the name is ambiguous: both directories named.
    for bin in ["ao-status", "ao-get-result"] {
        let out = elsewhere.ao(bin, &["architect"], None);
        let line = out.fails(1);
        assert!(line.contains(&a.dir_text()), "{line}");
        assert!(line.contains(&b.dir_text()), "{line}");
        assert!(line.contains("--project-dir"), "{line}");
    }
    let out = elsewhere.ao(
        "ao-get-result",
        &["architect", "--project-dir", &a.dir_text()],
        None,
    );
    assert_eq!(out.ok(), "fake answer to: from A");

    // A name only one project has is found from anywhere.
    b.new_session("only-in-b", "unique");
    assert_eq!(
        elsewhere.ao("ao-status", &["only-in-b"], None).ok(),
        "finished"
    );
    assert_eq!(
        elsewhere.ao("ao-get-result", &["only-in-b"], None).ok(),
        "fake answer to: unique"
    );
}

/// Runs `program args` in the project with its sessions folder mounted
/// read-only (in a mount namespace of its own, as `unshare` makes one), so
/// that nothing there can be opened for writing, not even by root.
fn read_only(p: &Project, program: &str, args: &[&str]) -> Output {
    let inner = p.command(program);
    let mut cmd = std::process::Command::new("unshare");
    cmd.args([
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        r#"mount --bind -o ro "$0" "$0" && exec "$@""#,
    ])
    .arg(p.sessions_dir())
    .arg(inner.get_program())
    .args(args)
    .current_dir(&p.dir);
    for (key, value) in inner.get_envs() {
        match value {
            Some(value) => cmd.env(key, value),
            None => cmd.env_remove(key),
        };
    }
    Running::start(cmd, None).wait()
}

#[test]
fn read_only_queries_need_no_write_access_to_the_sessions_folder() {
    let mut p = Project::with_server();
    let id = p.new_session("ro", "hello");
    // The folder really is read-only there.
    let touch = read_only(&p, "ao-status", &["--version"]);
    assert_eq!(touch.code, Some(0), "{touch:?}");
    let mut probe = std::process::Command::new("unshare");
    probe
        .args(["--map-root-user", "--mount", "sh", "-c"])
        .arg(r#"mount --bind -o ro "$0" "$0" && touch "$0/ro.lock""#)
        .arg(p.sessions_dir());
    let probe = Running::start(probe, None).wait();
    assert!(probe.stderr.contains("Read-only file system"), "{probe:?}");

    assert_eq!(read_only(&p, "ao-status", &["ro"]).ok(), "finished");
    let status: serde_json::Value =
        serde_json::from_str(read_only(&p, "ao-status", &["ro", "--json"]).ok()).unwrap();
    assert_eq!(status["session_id"], id.as_str());
    assert_eq!(
        read_only(&p, "ao-get-result", &["ro"]).ok(),
        "fake answer to: hello"
    );
    assert_eq!(read_only(&p, "ao-wait", &["ro"]).ok(), "ro: completed");
    assert!(
        read_only(&p, "ao-list-sessions", &[])
            .ok()
            .starts_with("ro (session-id: ")
    );
    // The backups answer as well when the session manager is away.
    p.set_url("http://127.0.0.1:9");
    let out = read_only(&p, "ao-get-result", &["ro"]);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "fake answer to: hello\n");
    let out = read_only(&p, "ao-status", &["ro"]);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(0), "finished\n"),
        "{out:?}"
    );
}

#[test]
fn a_mistyped_flag_or_session_name_gets_a_did_you_mean() {
    let p = Project::with_server();
    let line = p.ao("ao-status", &["x", "--jsn"], None).fails(2).to_owned();
    assert!(line.contains("did you mean '--json'?"), "{line}");
    let line = p
        .ao("ao-usage", &["--by", "projct"], None)
        .fails(2)
        .to_owned();
    assert!(line.contains("did you mean 'project'?"), "{line}");
    let line = p
        .run("ao-new", &["x", "--agnet", "a"], "task", "plain")
        .fails(2)
        .to_owned();
    assert!(line.contains("did you mean '--agent'?"), "{line}");

    p.new_session("reviewer-1", "x");
    let hint = "did you mean 'reviewer-1'?";
    for (program, code) in [
        ("ao-get-result", 1),
        ("ao-stop", 1),
        ("ao-clean", 1),
        ("ao-wait", 2),
    ] {
        let out = p.ao(program, &["revewer-1"], None);
        let line = out.fails(code);
        assert!(
            line.contains("no session named 'revewer-1'") && line.contains(hint),
            "{program}: {line}"
        );
    }
    let line = p
        .run("ao-resume", &["reveiwer-1"], "more", "plain")
        .fails(1)
        .to_owned();
    assert!(line.contains(hint), "{line}");
    // ao-status answers the question, and says the near name on stderr.
    let out = p.ao("ao-status", &["Reviewer-1"], None);
    assert_eq!(out.stdout, "not_existent\n");
    assert!(out.stderr.contains(hint), "{out:?}");
    // Nothing near: no hint.
    let line = p.ao("ao-get-result", &["zzz"], None).fails(1).to_owned();
    assert!(!line.contains("did you mean"), "{line}");
    assert_eq!(p.ao("ao-status", &["zzz"], None).ok(), "not_existent");
}
