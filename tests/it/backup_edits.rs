//! A backup edited after the fact (a line inserted, a last line cut short)
//! must not make `ao-sync` or a command that closes a run invent events:
//! an event's identity comes from what the lines carry, not where they are.

use serde_json::Value;

use crate::support::{Project, SessionManager};

/// The `.jsonl` of `name` with `line` inserted before line `at`.
fn insert_line(env: &Project, name: &str, at: usize, line: &str) {
    let path = env.backup(name, "jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(at, line);
    std::fs::write(&path, lines.join("\n") + "\n").unwrap();
}

/// The session's record in the API: its run count, cost and event count.
async fn record(env: &Project, name: &str) -> (u64, Option<f64>, usize) {
    let session = env.session(name).await.unwrap();
    let events = env.events(name).await.len();
    (session.num_runs, session.cost_usd, events)
}

#[tokio::test]
async fn a_line_inserted_into_a_finished_backup_adds_nothing_on_sync() {
    let env = Project::with_server();
    assert_eq!(env.run("ao-new", &["w"], "do it", "tools:2").code, Some(0));
    assert_eq!(
        env.run("ao-resume", &["w"], "again", "tools:1").code,
        Some(0)
    );
    let before = record(&env, "w").await;
    assert_eq!(before.0, 2);
    for at in [1, 3] {
        insert_line(&env, "w", at, "garbage that is not JSON {");
    }
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added 0 events"), "{out:?}");
    assert_eq!(
        record(&env, "w").await,
        before,
        "no run, cost or event twice"
    );
    // Garbage is kept as it was: the backup is not rewritten.
    assert!(
        env.backup_text("w")
            .contains("\ngarbage that is not JSON {\n")
    );
}

#[tokio::test]
async fn a_cut_last_line_invents_no_second_run() {
    let env = Project::with_server();
    assert_eq!(env.run("ao-new", &["w"], "do it", "tools:1").code, Some(0));
    let before = record(&env, "w").await;
    // The closing line loses its second half and its newline.
    let path = env.backup("w", "jsonl");
    let text = std::fs::read_to_string(&path).unwrap();
    let last_start = text.trim_end().rfind('\n').unwrap() + 1;
    let cut = &text[..last_start + (text.len() - last_start) / 2];
    std::fs::write(&path, cut).unwrap();
    // Any command that looks at the run closes it (it seems open)...
    let status = env.ao("ao-status", &["w"], None);
    assert_eq!(status.code, Some(0), "{status:?}");
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    // ...and the API still holds one run, ended as it was.
    assert_eq!(record(&env, "w").await, before);
    let events = env.events("w").await;
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "run_completed")
        .collect();
    assert_eq!(ends.len(), 1, "{ends:?}");
    assert_eq!(ends[0]["reason"], "completed");
}

#[tokio::test]
async fn a_backup_of_the_previous_release_edited_adds_nothing_on_sync() {
    let old = crate::support::fixtures::copy_release("release-0.1.0");
    // SQLite only: the fixture is a SQLite file of an older release.
    let sm = SessionManager::spawn_sqlite(&old.db, &[], None).unwrap();
    let http = sm.http();
    let mut project = Project::new(&sm.url);
    project.set_env(
        "AGENT_ORCHESTRATOR_SESSIONS_DIR",
        old.sessions.to_str().unwrap(),
    );
    // Its runs have no ids: their events were stored with ids from line
    // positions, which an inserted line moves.
    let alpha = old.sessions.join("alpha.jsonl");
    let text = std::fs::read_to_string(&alpha).unwrap();
    assert!(!text.contains("run_id"), "the fixture predates run ids");
    let (_, list) = http.get("/sessions?name=alpha").await;
    let id = list["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let out = project.ao("ao-sync", &["--all"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let before = http.events(&id).await.len();
    let mut lines: Vec<&str> = text.lines().collect();
    lines.insert(2, "{\"not\": \"a line of ours\"}");
    std::fs::write(&alpha, lines.join("\n") + "\n").unwrap();
    let out = project.ao("ao-sync", &["--all"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added 0 events"), "{out:?}");
    assert_eq!(http.events(&id).await.len(), before, "no event twice");
    let (_, session) = http.get(&format!("/sessions/{id}")).await;
    assert_eq!(session["session"]["num_runs"], 2);
}

/// Narration, thinking and a changes line get their ids from the run and
/// what they are, so lines inserted among them add nothing on sync.
#[tokio::test]
async fn narration_and_changes_survive_inserted_lines() {
    let env = Project::with_server();
    crate::support::git::repository(&env.dir, "base.txt", "one\n");
    let out = env.run("ao-new", &["w"], "do it", "narrate,tools:2,edit:notes.txt");
    assert_eq!(out.code, Some(0), "{out:?}");
    let before = record(&env, "w").await;
    let events = env.events("w").await;
    assert!(
        events.iter().any(|e| e["event_type"] == "changes"),
        "{events:?}"
    );
    assert!(events.iter().any(|e| e["final"] == false), "{events:?}");
    let lines = env.backup_text("w").lines().count();
    for at in [lines - 2, 4, 2] {
        insert_line(&env, "w", at, r#"{"type":"system","subtype":"note"}"#);
    }
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added 0 events"), "{out:?}");
    assert_eq!(record(&env, "w").await, before);
}
