//! The commands with the session manager stopped: the backup files answer,
//! after exactly one warning line.

use serde_json::Value;

use crate::support::{Output, Project, SessionManager};

const WARNING: &str = "warning: session manager unreachable (";

/// Asserts exit 0, exactly one stderr line (the warning, ending with
/// `note`), and answers stdout without its final newline.
#[track_caller]
fn warned<'a>(out: &'a Output, program: &str, note: &str) -> &'a str {
    assert_eq!(out.code, Some(0), "{out:?}");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "exactly one warning line: {out:?}");
    assert!(
        lines[0].starts_with(&format!("{program}: {WARNING}")),
        "{}",
        lines[0]
    );
    assert!(lines[0].ends_with(note), "{}", lines[0]);
    out.stdout.strip_suffix('\n').unwrap_or(&out.stdout)
}

const ANSWERING: &str = "; answering from the backup files";

#[tokio::test]
async fn the_backups_answer_when_the_session_manager_is_down() {
    let mut p = Project::with_server();
    let w1 = p.new_session("w1", "hello");
    let out = p.ao("ao-new", &["e1"], Some("SCENARIO=error"));
    assert_eq!(out.code, Some(1));
    let e1 = p.session_id("e1");
    p.sm_mut().stop();

    let out = p.ao("ao-status", &["w1"], None);
    assert_eq!(warned(&out, "ao-status", ANSWERING), "finished");
    let out = p.ao("ao-status", &["w1", "--json"], None);
    let status: Value = serde_json::from_str(warned(&out, "ao-status", ANSWERING)).expect("json");
    assert_eq!(status["source"], "backup");
    assert_eq!(status["session_id"], w1.as_str());
    let out = p.ao("ao-status", &["nope"], None);
    assert_eq!(warned(&out, "ao-status", ANSWERING), "not_existent");

    let out = p.ao("ao-get-result", &["w1"], None);
    assert_eq!(
        warned(&out, "ao-get-result", ANSWERING),
        "fake answer to: hello"
    );
    let out = p.ao("ao-get-result", &["e1"], None);
    assert_eq!(out.code, Some(1));
    assert_eq!(out.stdout, "");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 2, "the warning, then the reason: {out:?}");
    assert!(lines[0].contains(WARNING));
    assert_eq!(
        lines[1],
        "ao-get-result: error: the last run of session 'e1' failed: API Error: 400 fake: prompt rejected"
    );

    let out = p.ao("ao-list-sessions", &[], None);
    let dir = p.dir_text();
    assert_eq!(
        warned(&out, "ao-list-sessions", ANSWERING),
        format!(
            "e1 (session-id: {e1}, project-dir: {dir})\nw1 (session-id: {w1}, project-dir: {dir})"
        )
    );
    let out = p.ao("ao-list-sessions", &["--json"], None);
    let list: Value =
        serde_json::from_str(warned(&out, "ao-list-sessions", ANSWERING)).expect("json");
    assert_eq!(list["source"], "backup");
    assert_eq!(list["sessions"][1]["session_name"], "w1");
    assert_eq!(list["sessions"][1]["status"], "finished");

    let out = p.ao("ao-clean", &["w1"], None);
    assert_eq!(
        warned(&out, "ao-clean", "(run ao-clean again once it is back)"),
        format!("Deleted session w1 (session-id: {w1}, backup files only)")
    );
    assert!(!p.backup("w1", "jsonl").exists());
    assert!(!p.backup("w1", "meta.json").exists());

    // The warning was true: the record is still there, and goes now.
    p.sm_mut().restart();
    assert_eq!(p.http().get(&format!("/sessions/{w1}")).await.0, 200);
    assert_eq!(
        p.ao("ao-clean", &["w1"], None).ok(),
        format!("Deleted session w1 (session-id: {w1}, 4 events)")
    );
}

#[tokio::test]
async fn a_dead_run_is_closed_without_the_api_and_reported_once_it_is_back() {
    let mut p = Project::with_server();
    let runner = p.start_hanging("stuck").await;
    let id = p.session_id("stuck");
    p.sm_mut().stop();
    p.kill_run("stuck", runner);

    let out = p.ao("ao-status", &["stuck"], None);
    assert_eq!(warned(&out, "ao-status", ANSWERING), "finished");
    let last = p.backup_lines("stuck").pop().expect("a line");
    assert_eq!(
        (last["type"].as_str(), last["reason"].as_str()),
        (Some("run_completed"), Some("interrupted"))
    );

    // Back up, the API still says running; the closed run is sent now.
    p.sm_mut().restart();
    let http = p.http();
    assert_eq!(http.status(&id).await, "running");
    assert_eq!(p.status_json("stuck")["status"], "finished");
    assert_eq!(http.status(&id).await, "finished");
    let last = http.events(&id).await.pop();
    assert_eq!(
        last.map(|e| e["reason"].clone()),
        Some(Value::from("interrupted"))
    );
}

#[test]
fn a_session_only_the_backups_know_is_still_answered() {
    let sm = SessionManager::start();
    let mut p = Project::offline();
    // The runner works without the API; the run is only in the backups.
    let out = p.ao("ao-new", &["offline"], Some("no api"));
    assert_eq!(out.code, Some(0), "{out:?}");
    p.set_url(&sm.url);
    let note = "answering from the backup files (`ao-sync offline` sends them)";
    let out = p.ao("ao-status", &["offline"], None);
    assert_eq!(
        out.stderr_lines().len(),
        1,
        "one warning line: {:?}",
        out.stderr
    );
    assert!(out.stderr.trim_end().ends_with(note), "{}", out.stderr);
    assert_eq!(out.stdout, "finished\n");
    let out = p.ao("ao-get-result", &["offline"], None);
    assert_eq!(out.stdout, "fake answer to: no api\n");
    assert_eq!(out.code, Some(0));
    let out = p.ao("ao-clean", &["offline"], None);
    assert!(out.ok().ends_with("backup files only)"), "{out:?}");
}
