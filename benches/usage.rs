//! What cost accounting costs the session manager, next to baselines
//! measured in the same run:
//!
//! - `GET /usage?group_by=...` over 10,000 sessions and 1,000,000 events
//!   (100,000 of them run ends with figures); target < 50 ms.
//! - The session list with its totals against the list as the previous
//!   release read it (the same rows without the totals' columns), read and
//!   encoded as the server does before it serves them; target within 2x.
//!   `GET /sessions` over HTTP is shown too.
//! - Ingest of `run_completed` events (each also records a run and adds to
//!   its session's totals) against `message` events, 8 clients over HTTP;
//!   target: not slower.
//!
//! Run with `cargo bench --bench usage` (AO_BENCH_QUICK=1: 2,000 sessions
//! and 100,000 events).

use std::path::Path;
use std::time::{Duration, Instant};

use agent_orchestrator::server::Synchronous;
use agent_orchestrator::server::bench_support::{
    begin_write, create_session, insert_event_row, open_store_connection, record_run, sessions_json,
};
use agent_orchestrator::wire::{Event, EventType, Role, RunFigures, SessionCreate, Usage};
use serde_json::json;

mod common;
use common::{ms, percentile, start_server, verdict};

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("usage bench: run it with `cargo bench --bench usage`");
        return;
    }
    let quick = std::env::var("AO_BENCH_QUICK").is_ok_and(|v| v == "1");
    let (sessions, events) = if quick {
        (2_000, 100_000)
    } else {
        (10_000, 1_000_000)
    };
    let dir = tempfile::tempdir().expect("temp dir");
    let db = dir.path().join("usage.db");
    let t = Instant::now();
    let runs = fill(&db, sessions, events);
    eprintln!(
        "filled {sessions} sessions, {events} events ({runs} run ends) in {:.1} s",
        t.elapsed().as_secs_f64()
    );
    let (old, new) = list_cost(&db);

    let (mut server, url) = start_server(&db);
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let get = |path: String| {
        let http = http.clone();
        let url = format!("{url}{path}");
        async move {
            let t = Instant::now();
            let response = http.get(&url).send().await.expect("request");
            assert!(
                response.status().is_success(),
                "{url}: {}",
                response.status()
            );
            let _ = response.bytes().await.expect("body");
            t.elapsed()
        }
    };
    let mut usage_rows = Vec::new();
    for group in ["project", "agent", "day", "session"] {
        runtime.block_on(get(format!("/usage?group_by={group}"))); // warm
        let times: Vec<Duration> = (0..20)
            .map(|_| runtime.block_on(get(format!("/usage?group_by={group}"))))
            .collect();
        usage_rows.push((group, times));
    }
    runtime.block_on(get("/sessions".to_owned()));
    let list: Vec<Duration> = (0..20)
        .map(|_| runtime.block_on(get("/sessions".to_owned())))
        .collect();
    let (message_rate, end_rate) = runtime.block_on(ingest(&url, &http, server.id()));
    let _ = server.kill();
    let _ = server.wait();

    println!("usage benchmark: {sessions} sessions, {events} events, {runs} run ends");
    println!("{:<50} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    for (group, times) in &usage_rows {
        common::row(&format!("GET /usage?group_by={group}"), 50, times);
    }
    common::row("GET /sessions (with totals, served warm)", 50, &list);
    common::row("session list as the last release read it", 50, &old);
    common::row("session list with totals", 50, &new);
    println!(
        "{:<50} {:>10.0} ev/s\n{:<50} {:>10.0} ev/s",
        "ingest, message events, 8 clients",
        message_rate,
        "ingest, run_completed events, 8 clients",
        end_rate
    );
    println!();
    let project = ms(percentile(&usage_rows[0].1, 0.5));
    println!(
        "GET /usage?group_by=project (median)     {project:>8.2} ms   target < 50 ms   {}",
        verdict(project < 50.0)
    );
    let ratio = ms(percentile(&new, 0.5)) / ms(percentile(&old, 0.5));
    println!(
        "session list with totals / without       {ratio:>8.2} x    target <= 2 x    {}",
        verdict(ratio <= 2.0)
    );
    let ingest_ratio = end_rate / message_rate;
    println!(
        "run_completed ingest / message ingest     {ingest_ratio:>8.2} x    target >= 1 x    {}",
        verdict(ingest_ratio >= 0.95)
    );
}

/// Writes `sessions` sessions and `events` events straight into a new
/// database through the server's own statements: per session, runs of ten
/// events whose last is a run end with figures.
fn fill(db: &Path, sessions: usize, events: usize) -> usize {
    let mut conn = open_store_connection(db, Synchronous::Normal).expect("open");
    let per_session = events / sessions;
    let mut runs = 0;
    let (mut t_msg, mut t_end, mut n_msg) = (Duration::ZERO, Duration::ZERO, 0u32);
    let tx = begin_write(&mut conn).expect("begin");
    for s in 0..sessions {
        // Shaped like real sessions: the CLI's UUIDs, names and paths of
        // the lengths people use.
        let id = uuid::Uuid::new_v4().to_string();
        create_session(
            &tx,
            SessionCreate {
                session_id: id.clone(),
                session_name: format!("worker-{s}"),
                project_dir: Some(format!("/home/user/work/project-{}", s % 20)),
                agent_name: (s % 3 != 0).then(|| format!("reviewer-{}", s % 7)),
                ..SessionCreate::default()
            },
            "2026-11-01T00:00:00.000Z",
        )
        .expect("session");
        for e in 0..per_session {
            let day = 1 + (e / 10) % 28;
            let ts = format!("2026-11-{day:02}T10:00:{:02}.000Z", e % 60);
            let event = if e % 10 == 9 {
                let mut end = Event::new(EventType::RunCompleted, &id, format!("worker-{s}"), ts);
                end.reason = Some("completed".to_owned());
                end.exit_code = Some(0);
                end.set_figures(&RunFigures {
                    cost_usd: Some(0.01 * (1 + e % 5) as f64),
                    usage: Some(Usage {
                        input_tokens: 1000,
                        output_tokens: 200,
                        cache_creation_input_tokens: 10,
                        cache_read_input_tokens: 500,
                    }),
                    num_turns: Some(3),
                    duration_ms: Some(4000),
                    duration_api_ms: Some(3000),
                    model_usage: None,
                });
                end
            } else {
                let mut m = Event::new(EventType::Message, &id, format!("worker-{s}"), ts);
                m.role = Some(Role::Assistant);
                m.content = Some(vec![agent_orchestrator::wire::ContentBlock::text(
                    "some text of a typical length for an answer in a session",
                )]);
                m
            };
            let t = Instant::now();
            let body = serde_json::to_string(&event).expect("json");
            let row = insert_event_row(&tx, &event, &body)
                .expect("insert")
                .expect("new row");
            if event.event_type == EventType::RunCompleted {
                record_run(&tx, row, &event).expect("run");
                runs += 1;
                t_end += t.elapsed();
            } else {
                t_msg += t.elapsed();
                n_msg += 1;
            }
        }
    }
    tx.commit().expect("commit");
    eprintln!(
        "storage cost: message {:.1} us, run end {:.1} us (the run recorded and the totals added)",
        t_msg.as_secs_f64() * 1e6 / f64::from(n_msg.max(1)),
        t_end.as_secs_f64() * 1e6 / runs.max(1) as f64
    );
    runs
}

/// A session as the previous release listed it.
#[derive(serde::Serialize)]
struct OldSession {
    session_id: String,
    session_name: String,
    status: String,
    created_at: String,
    project_dir: Option<String>,
    agent_name: Option<String>,
    last_resumed_at: Option<String>,
}

/// Reads every session and encodes the list before `GET /sessions` serves
/// it: as the previous release did (rows into its `Session` type, that
/// type into JSON), and as this one does (the totals included, written
/// straight from the rows). 20 rounds each, interleaved.
fn list_cost(db: &Path) -> (Vec<Duration>, Vec<Duration>) {
    let conn = rusqlite::Connection::open(db).expect("open");
    let old_sql = "SELECT session_id, session_name, status, created_at, project_dir, agent_name, last_resumed_at FROM sessions ORDER BY seq DESC";
    let old_read = || {
        let t = Instant::now();
        let mut stmt = conn.prepare_cached(old_sql).expect("prepare");
        let rows: Vec<OldSession> = stmt
            .query_map([], |r| {
                Ok(OldSession {
                    session_id: r.get(0)?,
                    session_name: r.get(1)?,
                    status: r.get(2)?,
                    created_at: r.get(3)?,
                    project_dir: r.get(4)?,
                    agent_name: r.get(5)?,
                    last_resumed_at: r.get(6)?,
                })
            })
            .expect("query")
            .collect::<Result<_, _>>()
            .expect("rows");
        assert!(!serde_json::to_vec(&rows).expect("encode").is_empty());
        t.elapsed()
    };
    let new_read = || {
        let t = Instant::now();
        assert!(!sessions_json(&conn).expect("list").is_empty());
        t.elapsed()
    };
    let (mut old, mut new) = (Vec::new(), Vec::new());
    for _ in 0..20 {
        old.push(old_read());
        new.push(new_read());
    }
    (old, new)
}

/// Events per second for 8 clients posting `message` events, then
/// `run_completed` events, into fresh sessions; the median of 3 rounds
/// each, interleaved.
async fn ingest(url: &str, http: &reqwest::Client, server: u32) -> (f64, f64) {
    let (mut messages, mut ends) = (Vec::new(), Vec::new());
    let kinds: &[&'static str] = if std::env::var("AO_BENCH_VARIANTS").is_ok() {
        &["message", "run_completed", "post_tool", "session_stop"]
    } else {
        &["message", "run_completed"]
    };
    for round in 0..3 {
        for kind in kinds {
            let cpu = server_cpu(server);
            let rate = ingest_round(url, http, kind, round).await;
            let per_event = (server_cpu(server) - cpu) * 1e6 / 12_000.0;
            eprintln!("{kind}: {rate:.0} ev/s, server CPU {per_event:.0} us/ev");
            match *kind {
                "message" => messages.push(rate),
                "run_completed" => ends.push(rate),
                _ => {}
            }
        }
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    (median(&mut messages), median(&mut ends))
}

async fn ingest_round(url: &str, http: &reqwest::Client, kind: &'static str, round: usize) -> f64 {
    {
        let per_client = 1500;
        let start = Instant::now();
        let mut tasks = Vec::new();
        for c in 0..8 {
            let http = http.clone();
            let url = url.to_owned();
            tasks.push(tokio::spawn(async move {
                let id = format!("ingest-{kind}-{round}-{c}");
                let created = http
                    .post(format!("{url}/sessions"))
                    .json(&json!({"session_id": id, "session_name": id}))
                    .send()
                    .await
                    .expect("create");
                assert!(created.status().is_success());
                for i in 0..per_client {
                    let mut event = json!({"event_type": kind, "session_id": id, "session_name": id,
                        "timestamp": "2026-11-28T10:00:00Z"});
                    if kind == "message" {
                        event["role"] = json!("assistant");
                        event["content"] = json!([{"type": "text", "text": format!("answer {i}")}]);
                    } else if kind == "post_tool" {
                        event["tool_name"] = json!("Bash");
                        event["tool_input"] = json!({"command": "ls"});
                    } else if kind == "session_stop" {
                        event["reason"] = json!("completed");
                    } else {
                        event["reason"] = json!("completed");
                        event["cost_usd"] = json!(0.01);
                        event["usage"] = json!({"input_tokens": 10, "output_tokens": 2});
                        event["num_turns"] = json!(1);
                    }
                    let r = http
                        .post(format!("{url}/sessions/{id}/events"))
                        .json(&event)
                        .send()
                        .await
                        .expect("post");
                    assert!(r.status().is_success(), "{}", r.status());
                }
            }));
        }
        for task in tasks {
            task.await.expect("client");
        }
        (8 * per_client) as f64 / start.elapsed().as_secs_f64()
    }
}

/// The CPU seconds process `pid` has used so far.
fn server_cpu(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let fields: Vec<&str> = stat
        .rsplit(')')
        .next()
        .unwrap_or("")
        .split_whitespace()
        .collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    (ticks(11) + ticks(12)) / 100.0
}
