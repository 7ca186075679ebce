//! The session manager on PostgreSQL, measured against PostgreSQL's own
//! limit in the same run.
//!
//! `cargo bench --bench postgres` (`AO_BENCH_QUICK=1` for a short run)
//! starts a PostgreSQL server of its own (Debian's package, durable as
//! PostgreSQL is by default: fsync and synchronous commits on), then
//! measures: PostgreSQL's insert limit (event rows written straight into the
//! server's schema with the server's own statements, one commit per event,
//! and N events per commit in one statement: the batched limit), HTTP ingest
//! from 1, 8 and 32 clients into the real `ao-session-manager` release binary
//! on that database, and the live latency from one replica to another (events
//! posted to replica A, read by WebSocket and SSE clients of replica B).
//! docs/benchmarks.md ("PostgreSQL") explains each line.

#[allow(dead_code)]
#[path = "session_manager/config.rs"]
mod config;
#[allow(dead_code)]
#[path = "session_manager/events.rs"]
mod events;
#[allow(dead_code)]
#[path = "session_manager/fanout.rs"]
mod fanout;
#[allow(dead_code)]
#[path = "session_manager/http.rs"]
mod http;
#[allow(dead_code)]
#[path = "session_manager/ingest.rs"]
mod ingest;
#[allow(dead_code)]
#[path = "../tests/it/support/memory.rs"]
mod memory;
#[allow(dead_code)]
#[path = "../tests/it/support/postgres.rs"]
mod pg;
#[allow(dead_code)]
#[path = "session_manager/server.rs"]
mod server;
#[allow(dead_code)]
#[path = "session_manager/stats.rs"]
mod stats;

use std::time::{Duration, Instant};

use agent_orchestrator::server::pg_bench_support::BenchConnection;
use agent_orchestrator::wire::Event;

use config::Config;
use server::Server;
use stats::{Row, median_index, print_table, rate_summary};

/// Ingest at 32 clients must reach at least this share of the batched limit.
const INGEST_SHARE: f64 = 0.5;
/// Replica-to-replica p99 must stay under this many ms.
const REPLICA_P99_MS: f64 = 50.0;

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("postgres bench: run it with `cargo bench --bench postgres`");
        return;
    }
    let config = Config::from_env();
    let started = Instant::now();
    eprintln!("PostgreSQL benchmark; sizes: {config:?}");
    let Some(postgres) = pg::Postgres::start_durable() else {
        eprintln!("PostgreSQL is not installed (apt install postgresql): nothing measured");
        return;
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let mut rows = Vec::new();
    runtime.block_on(phases(&config, &postgres, &mut rows));
    drop(postgres);
    eprintln!("done in {:.0} s\n", started.elapsed().as_secs_f64());
    print_table(&rows);
}

async fn phases(config: &Config, postgres: &pg::Postgres, rows: &mut Vec<Row>) {
    postgres.create_database("limit");
    let conn = BenchConnection::open(&postgres.url("limit"))
        .await
        .expect("connect as the server does");
    let mut batched = f64::NAN;
    // The most that N clients with one request each can have waiting for
    // one commit: the bound of their ingest, shown beside it.
    let mut per_client_batch = Vec::new();
    let most_clients = config.ingest_clients.iter().copied().max().unwrap_or(1);
    let mut sizes = vec![1, most_clients, config.storage_batch];
    sizes.dedup();
    for batch in sizes {
        eprintln!("PostgreSQL limit: {batch} per commit");
        let mut rates = Vec::new();
        for round in 0..config.rounds {
            rates.push(events_per_second(&conn, batch, round, config.storage_time).await);
        }
        let median = rates[median_index(&rates)];
        let what = if batch == 1 {
            "1 commit per event".to_owned()
        } else if batch == config.storage_batch {
            batched = median;
            format!("{batch} events per commit, one statement")
        } else {
            per_client_batch.push((batch, median));
            format!(
                "{batch} events per commit, one statement (the most {batch} clients have waiting)"
            )
        };
        rows.push(Row::info(
            format!("PostgreSQL limit, {what}"),
            rate_summary(&rates),
        ));
    }
    drop(conn);

    postgres.create_database("ao");
    let url = postgres.url("ao");
    let a = Server::on_database(&url);
    for &clients in &config.ingest_clients {
        a.note(&format!("ingest: {clients} clients"));
        let mut runs = Vec::new();
        for round in 0..config.rounds {
            runs.push(
                ingest::run(&a.url, clients, round, config.ingest_time, || a.cpu_time()).await,
            );
        }
        let bound = per_client_batch
            .iter()
            .find(|(batch, _)| *batch == clients)
            .map(|(_, rate)| *rate);
        rows.push(ingest_row(runs, batched, bound));
    }

    let b = Server::on_database(&url);
    b.note(&format!(
        "replica to replica: {} WS + {} SSE clients on B, events posted to A",
        config.ws_clients, config.sse_clients
    ));
    let mut live = fanout::run(
        &a.url,
        &b.url,
        config.ws_clients,
        config.sse_clients,
        config.fanout_rate,
        config.fanout_time,
        || b.rss(),
    )
    .await;
    rows.push(Row {
        figure: format!("live: events posted to A at {}/s", config.fanout_rate),
        value: format!(
            "{:.0} ev/s achieved, {} events, {} errors; POST {}",
            live.send_rate,
            live.sent,
            live.send_errors,
            live.send_latencies.summary()
        ),
        target: "0 errors".to_owned(),
        ratio: String::new(),
        pass: Some(live.send_errors == 0),
    });
    for (kind, seen) in [("WebSocket", &mut live.ws), ("SSE", &mut live.sse)] {
        let p99 = seen.latencies.percentile_ms(99.0);
        rows.push(Row {
            figure: format!(
                "replica A to B latency, {} {kind} clients on B",
                seen.clients
            ),
            value: seen.latencies.summary(),
            target: format!("p99 < {REPLICA_P99_MS:.0} ms"),
            ratio: format!("{:.2}x", p99 / REPLICA_P99_MS),
            pass: Some(p99 < REPLICA_P99_MS),
        });
    }
    let missed = live.ws.missed + live.sse.missed;
    rows.push(Row {
        figure: format!(
            "messages missed on B, {} clients x {} events",
            live.ws.clients + live.sse.clients,
            live.sent
        ),
        value: format!(
            "{missed} (resync {})",
            live.ws.resync_missed + live.sse.resync_missed
        ),
        target: "0".to_owned(),
        ratio: String::new(),
        pass: Some(missed == 0),
    });
    a.stop();
    b.stop();
}

/// Events per second stored with `per_commit` rows in each commit (one
/// statement for them all when more than one), timing only the database.
async fn events_per_second(
    conn: &BenchConnection,
    per_commit: usize,
    round: usize,
    time: Duration,
) -> f64 {
    let session = format!("bench-limit-{per_commit}-{round}");
    conn.execute(&format!(
        "INSERT INTO sessions (session_id, session_name, status, created_at)
         VALUES ('{session}', '{session}', 'running', '2026-01-01T00:00:00.000Z')"
    ))
    .await
    .expect("the session of the limit's events");
    let wall_limit = Instant::now() + time * 3;
    let mut spent = Duration::ZERO;
    let mut stored = 0u64;
    while spent < time && Instant::now() < wall_limit {
        let rows: Vec<(Event, String)> = (stored..stored + per_commit as u64)
            .map(|seq| {
                let value = events::tool_event(&session, seq);
                let body = value.to_string();
                (serde_json::from_value(value).expect("a valid event"), body)
            })
            .collect();
        let start = Instant::now();
        if per_commit == 1 {
            conn.execute("BEGIN").await.expect("begin");
            conn.insert_event(&rows[0].0, &rows[0].1)
                .await
                .expect("insert");
            conn.execute("COMMIT").await.expect("commit");
        } else {
            conn.store_events(&rows).await.expect("insert");
        }
        spent += start.elapsed();
        stored += rows.len() as u64;
    }
    stored as f64 / spent.as_secs_f64()
}

/// The median run's rate against the batched limit (and against the limit
/// at one event per client and commit, `bound`, when measured), with the
/// latencies, errors and server CPU of all runs.
fn ingest_row(runs: Vec<ingest::Ingest>, batched: f64, bound: Option<f64>) -> Row {
    let rates: Vec<f64> = runs.iter().map(ingest::Ingest::per_second).collect();
    let rate = rates[median_index(&rates)];
    let clients = runs[0].clients;
    let mut latencies = stats::Latencies::default();
    let (mut errors, mut events, mut cpu) = (0, 0, 0.0);
    for run in runs {
        errors += run.errors;
        events += run.events;
        cpu += run.server_cpu.as_secs_f64();
        latencies.merge(run.latencies);
    }
    let share = rate / batched;
    let (target, pass) = if clients == 32 {
        (
            format!(">= {INGEST_SHARE}x batched limit, 0 errors"),
            share >= INGEST_SHARE && errors == 0,
        )
    } else {
        ("0 errors".to_owned(), errors == 0)
    };
    Row {
        figure: format!("HTTP ingest on PostgreSQL, {clients} clients"),
        value: format!(
            "{}; {}; {errors} errors; server CPU {:.0} us/ev{}",
            rate_summary(&rates),
            latencies.summary_with_max(),
            cpu * 1e6 / events.max(1) as f64,
            bound.map_or(String::new(), |b| format!(
                "; {:.2}x the {clients}-per-commit limit",
                rate / b
            ))
        ),
        target,
        ratio: format!("{share:.2}x batched limit"),
        pass: Some(pass),
    }
}
