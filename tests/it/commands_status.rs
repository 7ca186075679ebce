//! `ao-status`: the three answers, name resolution across projects, bad
//! names, and the recovery of a run whose runner was killed.

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::project::{claude_pid, kill_pid, signal, wait_for};
use crate::support::{Project, SessionManager};

/// Runs `ao-new NAME` with `prompt` and asserts it succeeded.
pub fn new_session(p: &Project, name: &str, prompt: &str) -> String {
    let out = p.ao("ao-new", &[name], Some(prompt));
    assert_eq!(out.code, Some(0), "ao-new {name}: {out:?}");
    p.session_id(name).expect("session id in the meta file")
}

/// `ao-status NAME --json`, parsed.
pub fn status_json(p: &Project, name: &str) -> Value {
    let out = p.ao("ao-status", &[name, "--json"], None);
    serde_json::from_str(out.ok()).expect("json")
}

/// Starts `ao-new NAME` with the fake's `hang` scenario and waits until the
/// session manager has the session: the run is in progress, and its
/// runner holds the lock.
pub fn start_hanging(p: &Project, name: &str) -> std::process::Child {
    let child = p.spawn_background("ao-new", &[name], Some("SCENARIO=hang please wait"));
    wait_for("the hanging run to reach the session manager", || {
        let out = p.ao("ao-status", &[name, "--json"], None);
        serde_json::from_str::<Value>(&out.stdout)
            .is_ok_and(|v| v["source"] == "api" && v["status"] == "running")
    });
    child
}

#[test]
fn finished_and_not_existent() {
    let sm = SessionManager::start();
    let p = Project::new(&sm.url);
    let id = new_session(&p, "w1", "hello");
    assert_eq!(p.ao("ao-status", &["w1"], None).ok(), "finished");
    assert_eq!(
        status_json(&p, "w1"),
        json!({"session_name": "w1", "session_id": id, "status": "finished", "source": "api"})
    );
    // Not an error: the command answered the question.
    assert_eq!(p.ao("ao-status", &["nope"], None).ok(), "not_existent");
    assert_eq!(
        status_json(&p, "nope"),
        json!({"session_name": "nope", "session_id": null, "status": "not_existent", "source": "api"})
    );
}

#[test]
fn a_bad_name_is_refused_before_disk_or_api() {
    // A dead URL: a warning would show if the API were asked.
    let p = Project::new("http://127.0.0.1:9");
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
fn usage_errors_exit_2_and_help_shows_the_exit_codes() {
    let p = Project::new("http://127.0.0.1:9");
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

#[test]
fn a_running_session_is_running_until_its_run_ends() {
    let sm = SessionManager::start();
    let p = Project::new(&sm.url);
    let mut runner = start_hanging(&p, "h1");
    assert_eq!(p.ao("ao-status", &["h1"], None).ok(), "running");
    let line = p.ao("ao-get-result", &["h1"], None).fails(1).to_owned();
    assert_eq!(
        line,
        "ao-get-result: error: session 'h1' is still running; wait until `ao-status h1` says finished"
    );
    assert_eq!(signal(&mut runner, Signal::SIGTERM), Some(143));
    assert_eq!(p.ao("ao-status", &["h1"], None).ok(), "finished");
    let line = p.ao("ao-get-result", &["h1"], None).fails(1).to_owned();
    assert!(
        line.contains("was interrupted before it produced a result"),
        "{line}"
    );
}

#[tokio::test]
async fn a_run_whose_runner_was_killed_is_closed_as_interrupted() {
    let sm = SessionManager::start();
    let p = Project::new(&sm.url);
    let mut runner = start_hanging(&p, "stuck");
    let claude = claude_pid(&p.log("stuck")).expect("the fake's pid in the backup");
    // SIGKILL the runner, not the CLI: nobody will ever close the run.
    assert_eq!(signal(&mut runner, Signal::SIGKILL), None);
    kill_pid(claude);
    let id = p.session_id("stuck").expect("session id");
    let http = sm.http();
    assert_eq!(
        http.get(&format!("/sessions/{id}/status")).await.1["status"],
        "running"
    );

    // The lock is free while the API says running: closed, and answered.
    assert_eq!(p.ao("ao-status", &["stuck"], None).ok(), "finished");
    assert_eq!(
        http.get(&format!("/sessions/{id}/status")).await.1["status"],
        "finished"
    );
    let (_, events) = http.get(&format!("/sessions/{id}/events")).await;
    let events = events["events"].as_array().expect("events").clone();
    let last = events.last().expect("an event");
    assert_eq!(last["event_type"], "run_completed");
    assert_eq!(last["reason"], "interrupted");
    let log = p.log("stuck");
    assert_eq!(log.last().expect("a line")["type"], "run_completed");
    assert_eq!(log.last().expect("a line")["reason"], "interrupted");

    // Asking again changes nothing.
    assert_eq!(p.ao("ao-status", &["stuck"], None).ok(), "finished");
    let (_, again) = http.get(&format!("/sessions/{id}/events")).await;
    assert_eq!(again["events"].as_array().map(Vec::len), Some(events.len()));
    assert_eq!(p.log("stuck").len(), log.len());
    let line = p.ao("ao-get-result", &["stuck"], None).fails(1).to_owned();
    assert!(line.contains("was interrupted"), "{line}");
}

#[test]
fn a_name_resolves_in_the_current_project_first() {
    let sm = SessionManager::start();
    let a = Project::new(&sm.url);
    let b = Project::new(&sm.url);
    let elsewhere = Project::new(&sm.url);
    let id_a = new_session(&a, "architect", "from A");
    let id_b = new_session(&b, "architect", "from B");
    assert_ne!(id_a, id_b);
    assert_eq!(status_json(&a, "architect")["session_id"], id_a.as_str());
    assert_eq!(status_json(&b, "architect")["session_id"], id_b.as_str());
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
    new_session(&b, "only-in-b", "unique");
    assert_eq!(
        elsewhere.ao("ao-status", &["only-in-b"], None).ok(),
        "finished"
    );
    assert_eq!(
        elsewhere.ao("ao-get-result", &["only-in-b"], None).ok(),
        "fake answer to: unique"
    );
}
