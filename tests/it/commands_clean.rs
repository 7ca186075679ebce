//! `ao-clean`: deletes from the API and the backups; a name resolves as for
//! `ao-status` (this project first, then the one other project that has it);
//! `--all` stays in the current project; never a running session unless forced.

use nix::sys::signal::Signal;

use crate::support::procs::alive;
use crate::support::project::eventually;
use crate::support::{Project, SessionManager};

#[tokio::test]
async fn deletes_the_record_the_events_and_the_backups() {
    let p = Project::with_server();
    let id = p.new_session("w1", "hello");
    let events = p.http().events(&id).await.len();
    assert_eq!(events, 4, "run_start, prompt, answer, run_completed");
    assert_eq!(
        p.ao("ao-clean", &["w1"], None).ok(),
        format!("Deleted session w1 (session-id: {id}, 4 events)")
    );
    assert_eq!(p.http().get(&format!("/sessions/{id}")).await.0, 404);
    for ext in ["jsonl", "meta.json", "lock"] {
        assert!(!p.backup("w1", ext).exists(), "{ext} is gone");
    }
    assert_eq!(p.ao("ao-status", &["w1"], None).ok(), "not_existent");
    assert_eq!(
        p.ao("ao-clean", &["w1"], None).fails(1),
        format!("ao-clean: error: no session named 'w1' in {}", p.dir_text())
    );
}

#[tokio::test]
async fn a_name_resolves_as_for_status_and_says_when_it_is_another_project() {
    let sm = SessionManager::start();
    let a = Project::new(&sm.url);
    let b = Project::new(&sm.url);
    let c = Project::new(&sm.url);
    let id_a = a.new_session("shared", "a");
    let id_b = b.new_session("shared", "b");
    let only_b = b.new_session("only-b", "b");
    // The current project's comes first.
    assert!(a.ao("ao-clean", &["shared"], None).ok().contains(&id_a));
    assert_eq!(sm.http().get(&format!("/sessions/{id_b}")).await.0, 200);
    assert!(b.backup("shared", "jsonl").exists());
    // Unique across projects: deleted there, its backups too, and stderr says where.
    let out = a.ao("ao-clean", &["only-b"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains(&only_b), "{out:?}");
    assert_eq!(
        out.stderr,
        format!(
            "ao-clean: session 'only-b' is not in the current project; deleting it from {}\n",
            b.dir_text()
        )
    );
    assert_eq!(sm.http().get(&format!("/sessions/{only_b}")).await.0, 404);
    assert!(
        !b.backup("only-b", "jsonl").exists(),
        "its backups went too"
    );
    // In two other projects: refused, naming both.
    c.new_session("twice", "c");
    b.new_session("twice", "b");
    let line = a.ao("ao-clean", &["twice"], None).fails(1).to_owned();
    assert!(
        line.contains(&b.dir_text())
            && line.contains(&c.dir_text())
            && line.contains("--project-dir"),
        "{line}"
    );
    assert_eq!(b.ao("ao-status", &["twice"], None).ok(), "finished");
}

#[tokio::test]
async fn a_running_session_needs_force_which_stops_it_first() {
    let p = Project::with_server();
    let runner = p.start_hanging("busy").await;
    let cli = p.cli_pid("busy");
    let line = p.ao("ao-clean", &["busy"], None).fails(1).to_owned();
    assert!(
        line.starts_with("ao-clean: error: session 'busy' is running (runner pid "),
        "{line}"
    );
    assert!(
        line.ends_with("wait for it (`ao-wait busy`), or pass --force to stop it and delete it"),
        "{line}"
    );
    assert!(p.backup("busy", "jsonl").exists());
    let id = p.session_id("busy");
    let out = p.ao("ao-clean", &["busy", "--force"], None);
    assert!(
        out.ok()
            .starts_with(&format!("Deleted session busy (session-id: {id}, ")),
        "{out:?}"
    );
    // The run was stopped before anything was deleted: its CLI has ended,
    // and its runner ends as a stopped one does.
    assert!(!alive(cli), "the CLI of a deleted session runs on");
    assert_eq!(runner.wait().code, Some(143));
    assert_eq!(p.ao("ao-status", &["busy"], None).ok(), "not_existent");
    assert!(
        !p.backup("busy", "jsonl").exists(),
        "the runner wrote nothing after"
    );
    assert!(p.session("busy").await.is_none(), "nor told the API");
    // The name is free, and no older run goes on beside the new one.
    p.new_session("busy", "again");
    assert_eq!(p.ao("ao-status", &["busy"], None).ok(), "finished");
}

#[tokio::test]
async fn a_session_running_elsewhere_needs_force_which_stops_it_through_the_api() {
    let p = Project::with_server();
    p.http()
        .create("remote-1", "remote", Some(&p.dir_text()))
        .await;
    let line = p.ao("ao-clean", &["remote"], None).fails(1).to_owned();
    assert!(
        line.contains("running according to the session manager"),
        "{line}"
    );
    // No runner follows that record: the stop closes it, then it goes.
    assert_eq!(
        p.ao("ao-clean", &["remote", "--force"], None).ok(),
        "Deleted session remote (session-id: remote-1, 1 event)"
    );
    assert!(!p.dir.join(".agent-orchestrator").exists(), "no files made");

    // A live runner whose backups are out of reach hears the stop through
    // the session manager, and ends before its record goes.
    let mut far = Project::new(p.url());
    let hidden = far.scratch().join("hidden-sessions");
    far.set_env("AGENT_ORCHESTRATOR_SESSIONS_DIR", &hidden.to_string_lossy());
    let runner = far.spawn("ao-new", &["far"], "please wait", "hang");
    eventually("the hidden run to be under way", async || {
        far.session("far")
            .await
            .is_some_and(|s| s.status.as_str() == "running")
            && std::fs::read_to_string(hidden.join("far.jsonl"))
                .is_ok_and(|t| t.contains("\"subtype\":\"init\""))
    })
    .await;
    let out = p.ao("ao-clean", &["far", "--force"], None);
    assert!(
        out.code == Some(0) && out.stdout.starts_with("Deleted session far (session-id: "),
        "{out:?}"
    );
    assert_eq!(runner.wait().code, Some(143));
    assert!(far.session("far").await.is_none());
}

#[tokio::test]
async fn all_deletes_this_projects_sessions_and_skips_running_ones() {
    let sm = SessionManager::start();
    let http = sm.http();
    let a = Project::new(&sm.url);
    let b = Project::new(&sm.url);
    let w1 = a.new_session("w1", "1");
    let w2 = a.new_session("w2", "2");
    let kept = b.new_session("w1", "other project");
    // A name the runner would refuse, created through the API directly.
    http.create("raw-1", "raw name", Some(&a.dir_text())).await;
    http.event(
        "raw-1",
        crate::support::http::event("raw-1", "run_completed"),
    )
    .await;
    let runner = a.start_hanging("busy").await;

    let out = a.ao("ao-clean", &["--all"], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut deleted: Vec<&str> = out.stdout.lines().collect();
    deleted.sort();
    assert_eq!(
        deleted,
        [
            "Deleted session raw name (session-id: raw-1, 1 event)".to_owned(),
            format!("Deleted session w1 (session-id: {w1}, 4 events)"),
            format!("Deleted session w2 (session-id: {w2}, 4 events)"),
        ]
    );
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 2, "{out:?}");
    assert!(
        lines[0].starts_with("ao-clean: warning: skipped 'busy': session 'busy' is running"),
        "{}",
        lines[0]
    );
    assert_eq!(
        lines[1],
        "ao-clean: error: 1 running session was not deleted; wait for it, or pass --force to stop and delete it"
    );
    assert_eq!(http.get(&format!("/sessions/{kept}")).await.0, 200);

    assert_eq!(runner.stop(Signal::SIGTERM).code, Some(143));
    let busy = a.session_id("busy");
    let out = a.ao("ao-clean", &["--all"], None);
    assert!(
        out.ok()
            .starts_with(&format!("Deleted session busy (session-id: {busy}, ")),
        "{out:?}"
    );
    assert_eq!(a.ao("ao-clean", &["--all"], None).ok(), "No sessions found");
    assert_eq!(
        a.ao("ao-list-sessions", &["--project"], None).ok(),
        "No sessions found"
    );
    assert_eq!(b.ao("ao-status", &["w1"], None).ok(), "finished");
}
