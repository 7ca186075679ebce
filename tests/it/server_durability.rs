//! The database under stress and failure: concurrent writers, restarts,
//! kill -9, schema versions, the default location, clean shutdown.

use std::path::Path;

use serde_json::json;

use crate::support::http::event;
use crate::support::live::WsClient;
use crate::support::{SessionManager, command};

#[tokio::test]
async fn concurrent_writers_never_see_database_is_locked() {
    let sm = SessionManager::start();
    let http = sm.http();
    let writers = 16;
    let per_writer = 150;
    for w in 0..writers {
        http.create(&format!("s{w}"), &format!("n{w}"), None).await;
    }
    let mut tasks = Vec::new();
    for w in 0..writers {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("s{w}");
            for i in 0..per_writer {
                let mut e = event(&id, "post_tool");
                e["tool_input"] = json!({"i": i});
                let (status, body) = http.post(&format!("/sessions/{id}/events"), e).await;
                assert_eq!(status, 200, "{body}");
            }
        }));
    }
    // Readers at the same time.
    for _ in 0..4 {
        let http = http.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..50 {
                assert_eq!(http.get("/sessions").await.0, 200);
                assert_eq!(http.get("/sessions/s0/events?limit=10").await.0, 200);
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    for w in 0..writers {
        let (_, events) = http.get(&format!("/sessions/s{w}/events")).await;
        let events = events["events"].as_array().unwrap();
        assert_eq!(events.len(), per_writer);
        let order: Vec<i64> = events
            .iter()
            .map(|e| e["tool_input"]["i"].as_i64().unwrap())
            .collect();
        assert_eq!(
            order,
            (0..per_writer as i64).collect::<Vec<_>>(),
            "per-writer order kept"
        );
    }
    assert!(!sm.log_text().contains("locked"), "{}", sm.log_text());
}

#[tokio::test]
async fn data_survives_a_restart() {
    let mut sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", Some("/p")).await;
    http.event("s", event("s", "message")).await;
    http.event("s", event("s", "run_completed")).await;
    let (_, before) = http.get("/sessions/s/events").await;
    assert_eq!(sm.stop(), Some(0), "clean exit on SIGTERM");
    assert!(sm.log_text().contains("stopped"));
    sm.restart();
    let http = sm.http();
    let (_, session) = http.get("/sessions/s").await;
    assert_eq!(session["session"]["status"], "finished");
    assert_eq!(http.get("/sessions/s/events").await.1, before);
    // Ids keep growing after a restart.
    http.event("s", event("s", "message")).await;
    let (_, after) = http.get("/sessions/s/events").await;
    let ids: Vec<i64> = after["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]));
}

#[tokio::test]
async fn the_default_database_lives_in_the_data_dir_with_folders_created() {
    let home = tempfile::tempdir().unwrap();
    let data = home.path().join("deep/data");
    let mut child = command("ao-session-manager")
        .args(["--port", "0"])
        .env("HOME", home.path())
        .env("XDG_DATA_HOME", &data)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening on http://127.0.0.1:"), "{line}");
    let db = data.join("agent-orchestrator/session-manager.db");
    assert!(db.exists(), "{} should exist", db.display());
    let _ = child.kill();
    let _ = child.wait();
}

#[tokio::test]
async fn a_newer_or_foreign_database_is_refused_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("sm.db");
    {
        // SQLite only: the test edits the file (PostgreSQL's version check
        // has its own test, in postgres.rs).
        let mut sm = SessionManager::spawn_sqlite(&db, &[], None).unwrap();
        sm.stop();
    }
    let conn = rusqlite::Connection::open(&db).unwrap();
    let version: i64 = conn
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, agent_orchestrator::server::SCHEMA_VERSION);
    conn.pragma_update(None, "user_version", version + 1)
        .unwrap();
    drop(conn);
    let stderr = refused("0", &db);
    assert!(stderr.contains("newer"), "{stderr}");

    let foreign = dir.path().join("other.db");
    rusqlite::Connection::open(&foreign)
        .unwrap()
        .execute_batch("CREATE TABLE notes (x)")
        .unwrap();
    let stderr = refused("0", &foreign);
    assert!(
        stderr.contains("not a session-manager database"),
        "{stderr}"
    );
}

#[test]
fn a_garbage_database_file_is_refused_in_one_line_that_says_it_once() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("garbage.db");
    std::fs::write(
        &db,
        "this is no database, but it is long enough to look like a header of one\n".repeat(100),
    )
    .unwrap();
    let stderr = refused("0", &db);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert_eq!(
        stderr.matches("file is not a database").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains(&db.display().to_string()), "{stderr}");
    // Other failures to start keep their cause, once.
    let sm = SessionManager::start();
    let stderr = refused(&sm.port().to_string(), &dir.path().join("x.db"));
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.contains("cannot listen on") && stderr.contains("in use"),
        "{stderr}"
    );
}

/// Runs `ao-session-manager --port PORT --db DB`, asserts that it refuses
/// to start (a failure exit, nothing on stdout); answers its stderr.
fn refused(port: &str, db: &Path) -> String {
    let out = command("ao-session-manager")
        .args(["--port", port, "--db"])
        .arg(db)
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no `listening on` line");
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[tokio::test]
async fn a_port_in_use_is_a_clear_error() {
    let sm = SessionManager::start();
    let dir = tempfile::tempdir().unwrap();
    let stderr = refused(&sm.port().to_string(), &dir.path().join("x.db"));
    assert!(stderr.contains("cannot listen"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[tokio::test]
async fn sigterm_closes_live_clients_and_exits_cleanly() {
    let mut sm = SessionManager::start();
    let mut ws = WsClient::connect(&sm.url).await;
    assert_eq!(ws.next().await.unwrap()["type"], "init");
    let mut sse = crate::support::live::SseClient::connect(&sm.url).await;
    assert_eq!(sse.next().await.unwrap().0, "init");
    assert_eq!(sm.stop(), Some(0));
    // The server's own host says it goes offline; then the streams end.
    let mut last = ws.next().await;
    while last.as_ref().is_some_and(|m| m["type"] == "host_updated") {
        last = ws.next().await;
    }
    assert!(last.is_none(), "the WebSocket is closed: {last:?}");
    let mut last = sse.next().await;
    while last
        .as_ref()
        .is_some_and(|(kind, _)| kind == "host_updated")
    {
        last = sse.next().await;
    }
    assert!(last.is_none(), "the SSE stream ends: {last:?}");
}
