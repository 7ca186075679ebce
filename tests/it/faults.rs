//! Fault injection: every fault a user will meet, each test asserting that
//! nothing is lost. (Scenario numbers follow the issue; scenario 4, the CLI
//! crashing or SIGKILLed, is in runner_fake: `a_crash_mid_stream_...` and
//! `a_cli_killed_by_sigkill_...`.)

use std::collections::HashSet;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use agent_orchestrator::wire::{Event, EventType};
use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::http::{kinds, run_kinds};
use crate::support::project::eventually;
use crate::support::{Project, SessionManager};

/// The parts of an event that do not depend on when or under which
/// session id it happened.
fn essence(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            json!({
                "event_type": e["event_type"], "role": e["role"], "content": e["content"],
                "tool_name": e["tool_name"], "tool_input": e["tool_input"],
                "tool_output": e["tool_output"], "exit_code": e["exit_code"], "reason": e["reason"],
            })
        })
        .collect()
}

/// Every field the server stored except its own sequence number.
pub(crate) fn without_ids(events: &[Value]) -> Vec<Value> {
    events
        .iter()
        .map(|e| {
            let mut e = e.clone();
            e.as_object_mut().unwrap().remove("id");
            e
        })
        .collect()
}

/// `PRAGMA integrity_check` of the database file `db`.
fn integrity_check(db: &Path) -> String {
    rusqlite::Connection::open(db)
        .unwrap()
        .query_row("PRAGMA integrity_check", [], |r| r.get(0))
        .unwrap()
}

/// The number `sql` (a `SELECT count(*)`) counts.
fn count(conn: &rusqlite::Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |r| r.get(0)).unwrap()
}

/// 1. The session manager is down for the whole run: the run succeeds from
/// the backups, and after a restart `ao-sync` makes the API's record equal
/// to that of a run made with the API up.
#[tokio::test]
async fn api_down_for_a_whole_run_then_sync_restores_an_equal_record() {
    let reference = Project::with_server();
    let mut env = Project::offline();
    for p in [&reference, &env] {
        for (program, prompt) in [("ao-new", "first"), ("ao-resume", "second")] {
            let out = p.run(program, &["w"], prompt, "tools:3");
            assert_eq!(out.code, Some(0), "{out:?}");
        }
    }
    env.start_server_late();
    assert!(
        env.session("w").await.is_none(),
        "the API knows nothing yet"
    );

    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("created the session, added 20 events (0 already there)"),
        "{out:?}"
    );
    let synced = env.events("w").await;
    let live = reference.events("w").await;
    assert_eq!(
        essence(&synced),
        essence(&live),
        "same events in the same order"
    );
    let (s, r) = (
        env.session("w").await.unwrap(),
        reference.session("w").await.unwrap(),
    );
    assert_eq!(s.status, r.status);
    assert_eq!(s.status.as_str(), "finished");
    assert!(s.last_resumed_at.is_some());
    assert_eq!(s.session_id, env.session_id("w"));

    // Again: nothing changes.
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0));
    assert!(
        out.stdout.contains("added 0 events (20 already there)"),
        "{out:?}"
    );
    assert_eq!(env.events("w").await, synced);
}

/// A replay produces exactly what the live runner posted: same event ids,
/// timestamps, contents and order, and the same session record.
#[tokio::test]
async fn a_replay_equals_the_live_record_field_for_field() {
    let env = Project::with_server();
    for (program, scenario) in [("ao-new", "tools:2,garbage"), ("ao-resume", "error")] {
        env.run(program, &["w"], "prompt", scenario);
    }
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("added 0 events (11 already there)"),
        "live == replay: {out:?}"
    );

    let live = env.events("w").await;
    let live_session = env.session("w").await.unwrap();
    let (status, _) = env
        .http()
        .delete(&format!("/sessions/{}", live_session.session_id))
        .await;
    assert_eq!(status, 200);
    let out = env.ao("ao-sync", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("added 11 events"), "{out:?}");
    assert_eq!(without_ids(&env.events("w").await), without_ids(&live));
    let replayed = env.session("w").await.unwrap();
    assert_eq!(replayed.created_at, live_session.created_at);
    assert_eq!(replayed.last_resumed_at, live_session.last_resumed_at);
    assert_eq!(replayed.status, live_session.status);
}

/// 2. The session manager is killed and restarted in the middle of a run
/// with many tool calls: every event arrives exactly once, in order.
#[tokio::test]
async fn api_killed_and_restarted_mid_run_loses_and_doubles_nothing() {
    let mut env = Project::with_server();
    let runner = env.spawn("ao-new", &["busy"], "go", "tools:30,slow:15");
    eventually("four tool calls in the session manager", async || {
        env.session("busy").await.is_some()
            && kinds(&env.events("busy").await)
                .iter()
                .filter(|k| *k == "post_tool")
                .count()
                >= 4
    })
    .await;
    let sm = env.sm_mut();
    sm.kill9();
    tokio::time::sleep(Duration::from_millis(300)).await;
    sm.restart();
    // The outage was absorbed by retries.
    assert_eq!(runner.wait().ok(), "fake answer to: go");
    let events = env.events("busy").await;
    assert_eq!(kinds(&events), run_kinds(30));
    let outputs: Vec<&str> = crate::support::http::tool_calls(&events)
        .iter()
        .map(|e| e["tool_output"]["stdout"].as_str().unwrap())
        .collect();
    let want: Vec<String> = (1..=30).map(|n| format!("tool-{n}")).collect();
    assert_eq!(outputs, want, "in order, once each");
}

/// 3. kill -9 of the session manager during heavy concurrent ingest: it
/// restarts, the file passes `PRAGMA integrity_check`, and every event that
/// got a 200 is there.
#[tokio::test]
async fn kill_9_during_heavy_ingest_keeps_every_acknowledged_event() {
    // SQLite only: the test checks the file itself.
    let mut sm = SessionManager::start_sqlite();
    let client = sm.client();
    for w in 0..8 {
        sm.http()
            .create(&format!("s{w}"), &format!("n{w}"), None)
            .await;
    }
    let acked: Arc<Mutex<HashSet<String>>> = Arc::default();
    let mut tasks = Vec::new();
    for w in 0..8 {
        let client = client.clone();
        let acked = acked.clone();
        tasks.push(tokio::spawn(async move {
            let id = format!("s{w}");
            loop {
                let mut e = Event::new(EventType::PostTool, &id, "n", "2024-01-01T00:00:00Z");
                e.tool_name = Some("Bash".into());
                let event_id = uuid::Uuid::new_v4();
                e.event_id = Some(event_id);
                if client.add_event(&id, &e).await.is_err() {
                    break;
                }
                acked.lock().unwrap().insert(event_id.to_string());
            }
        }));
    }
    while acked.lock().unwrap().len() < 2_000 {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sm.kill9();
    for t in tasks {
        t.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();
    sm.restart();
    assert_eq!(integrity_check(&sm.db), "ok");
    let mut stored = HashSet::new();
    for w in 0..8 {
        for e in sm.client().list_events(&format!("s{w}")).await.unwrap() {
            stored.insert(e.event.event_id.unwrap().to_string());
        }
    }
    let lost = acked.difference(&stored).count();
    assert_eq!(
        lost,
        0,
        "{lost} of {} acknowledged events lost",
        acked.len()
    );
}

/// 5. `ao-new` itself killed with SIGKILL mid-run: the next `ao-resume`
/// recovers the session (its stuck run is recorded as interrupted) and runs.
#[tokio::test]
async fn a_runner_killed_with_sigkill_is_recovered_by_the_next_resume() {
    let env = Project::with_server();
    let runner = env.start_hanging("stuck").await;
    env.kill_run("stuck", runner);
    assert_eq!(env.api_status("stuck").await, "running", "stuck");

    let out = env.run("ao-resume", &["stuck"], "again", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("stuck").await;
    assert_eq!(
        kinds(&events),
        [
            "run_start",
            "message:user",
            "run_completed",
            "run_start",
            "message:user",
            "message:assistant",
            "run_completed"
        ]
    );
    assert_eq!(events[2]["reason"], "interrupted");
    assert_eq!(events[2]["exit_code"], Value::Null);
    let lines = env.backup_lines("stuck");
    let closings: Vec<&Value> = lines
        .iter()
        .filter(|l| l["type"] == "run_completed")
        .collect();
    assert_eq!(closings.len(), 2, "the dead run got its closing line");
    assert_eq!(closings[0]["reason"], "interrupted");
}

/// Two `ao-resume` of one session at once: exactly one runs, the other
/// refuses with a clear message.
#[tokio::test]
async fn two_resumes_at_once_exactly_one_runs() {
    let env = Project::with_server();
    env.new_session("one", "x");
    for _ in 0..3 {
        let a = env.spawn("ao-resume", &["one"], "a", "slow:100");
        let b = env.spawn("ao-resume", &["one"], "b", "slow:100");
        let (a, b) = (a.wait(), b.wait());
        let mut codes = [a.code, b.code];
        codes.sort();
        assert_eq!(codes, [Some(0), Some(1)]);
        let refused = if a.code == Some(1) { &a } else { &b };
        let lines = refused.stderr_lines();
        assert_eq!(lines.len(), 1, "{refused:?}");
        assert!(lines[0].contains("is running"), "{refused:?}");
    }
    let runs = kinds(&env.events("one").await)
        .iter()
        .filter(|k| *k == "run_start")
        .count();
    assert_eq!(runs, 4, "one new run and three resumes");
}

/// 6. 50 concurrent `ao-new` runs against one session manager: 50 sessions,
/// every event, no errors, no "database is locked".
#[tokio::test]
async fn fifty_concurrent_runs_lose_nothing() {
    let env = Project::with_server();
    let runners: Vec<_> = (0..50)
        .map(|i| {
            env.spawn(
                "ao-new",
                &[&format!("par-{i}")],
                &format!("job {i}"),
                "tools:4",
            )
        })
        .collect();
    for (i, runner) in runners.into_iter().enumerate() {
        let out = runner.wait();
        assert_eq!(out.ok(), format!("fake answer to: job {i}"), "par-{i}");
    }
    let (_, list) = env.http().get("/sessions").await;
    assert_eq!(list["sessions"].as_array().unwrap().len(), 50);
    for i in 0..50 {
        let events = env.events(&format!("par-{i}")).await;
        assert_eq!(events.len(), 12, "par-{i}: {:?}", kinds(&events));
        assert_eq!(events.last().unwrap()["reason"], "completed");
    }
    let log = env.sm().log_text();
    assert!(!log.contains("locked"), "{log}");
    assert!(!log.contains("ERROR"), "{log}");
}

/// 7. Random and malformed requests (methods, paths, bodies, headers, raw
/// bytes): never a 500, never a crash, and the database consistent after.
#[tokio::test]
async fn random_and_malformed_requests_never_break_the_server() {
    // SQLite only: the test checks the file itself.
    let sm = SessionManager::start_sqlite();
    let http = sm.http();
    for i in 0..5 {
        http.create(&format!("s{i}"), &format!("n{i}"), Some("/p"))
            .await;
    }
    let seed: u64 = std::env::var("AO_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(0x5eed_ab1e);
    let mut rng = crate::support::fuzz::Rng::new(seed);
    let addr = sm.url.trim_start_matches("http://").to_owned();
    let mut seen = std::collections::BTreeMap::<Option<u16>, usize>::new();
    for n in 0..2_500 {
        let request = crate::support::fuzz::request(&mut rng);
        let status = crate::support::fuzz::send_raw(&addr, &request.bytes).await;
        if let Some(status) = status {
            assert!(
                status < 500,
                "seed {seed}, request {n}: got {status} for {:?}",
                request.describe()
            );
        }
        *seen.entry(status).or_default() += 1;
    }
    eprintln!("fuzz answers (status: count): {seen:?}");
    for status in [200, 400, 403, 404, 405, 413, 415, 422] {
        assert!(
            seen.contains_key(&Some(status)),
            "the fuzzer never provoked a {status}: {seen:?}"
        );
    }
    assert_eq!(http.get("/health").await.0, 200, "still alive");
    drop(http);
    let mut sm = sm;
    assert_eq!(sm.stop(), Some(0));
    assert_eq!(integrity_check(&sm.db), "ok");
    let conn = rusqlite::Connection::open(&sm.db).unwrap();
    let orphans = count(
        &conn,
        "SELECT count(*) FROM events WHERE session_id NOT IN (SELECT session_id FROM sessions)",
    );
    assert_eq!(orphans, 0, "no event without its session");
    let bad_status = count(
        &conn,
        "SELECT count(*) FROM sessions WHERE status NOT IN ('running', 'finished')",
    );
    assert_eq!(bad_status, 0);
    let bad_json = count(
        &conn,
        "SELECT count(*) FROM events WHERE json_valid(body) = 0",
    );
    assert_eq!(bad_json, 0, "every stored event is valid JSON");
}

#[tokio::test]
async fn sync_refuses_bad_names_and_running_sessions_and_reports_all() {
    let env = Project::with_server();
    let out = env.ao("ao-sync", &["../x"], None);
    assert_eq!(out.code, Some(2), "{out:?}");
    let out = env.ao("ao-sync", &["ghost"], None);
    assert_eq!(out.code, Some(1));
    assert!(out.stderr.contains("no backup files"), "{out:?}");
    let out = env.ao("ao-sync", &[], None);
    assert_eq!(out.code, Some(2), "{out:?}");

    env.run("ao-new", &["a"], "x", "plain");
    env.run("ao-new", &["b"], "x", "plain");
    let runner = env.start_hanging("c").await;
    let out = env.ao("ao-sync", &["--all", "--json"], None);
    assert_eq!(out.code, Some(1), "one session could not be synced");
    assert!(out.stderr.contains("'c' is running"), "{out:?}");
    let reports: Vec<Value> = out
        .stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(reports.len(), 2);
    assert!(
        reports
            .iter()
            .all(|r| r["events_added"] == 0 && r["events_present"] == 4)
    );
    runner.stop(Signal::SIGTERM);
}

#[test]
fn a_runner_whose_stderr_nobody_reads_still_finishes_its_run() {
    // The caller went away (ao-mcp gone): every write to stderr fails with
    // EPIPE, starting with the warning that the session manager is down.
    let p = Project::offline();
    let (read_end, write_end) = nix::unistd::pipe().unwrap();
    drop(read_end);
    let mut cmd = p.command("ao-new");
    cmd.arg("orphaned")
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::from(write_end))
        .args(["-p", "still here"]);
    let status = cmd.status().unwrap();
    assert_eq!(status.code(), Some(0), "{status:?}");
    let last = p.backup_lines("orphaned").pop().unwrap();
    assert_eq!(last["type"], "run_completed", "{last}");
    assert_eq!(last["reason"], "completed", "{last}");
}
