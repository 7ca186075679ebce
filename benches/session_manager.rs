//! The session manager measured against its own physical limit.
//!
//! `cargo bench --bench session_manager` (`AO_BENCH_QUICK=1` for a short run)
//! measures, in one run on this machine: the storage limit (event rows written
//! straight into SQLite with the server's own settings), then the real
//! `ao-session-manager` release binary on loopback: HTTP ingest from 1, 8 and
//! 32 clients, reads, live fan-out to WebSocket and SSE clients, the
//! server's peak memory, and POST latency with live clients that never
//! read against the same without them; and prints one table. README.md ("Benchmarks")
//! explains each line.

#[path = "session_manager/config.rs"]
mod config;
#[path = "session_manager/events.rs"]
mod events;
#[path = "session_manager/fanout.rs"]
mod fanout;
#[path = "session_manager/http.rs"]
mod http;
#[path = "session_manager/ingest.rs"]
mod ingest;
#[path = "../tests/it/support/memory.rs"]
mod memory;
#[path = "session_manager/reads.rs"]
mod reads;
#[path = "session_manager/server.rs"]
mod server;
#[path = "../tests/it/support/stalled.rs"]
mod stall;
#[path = "session_manager/stalled.rs"]
mod stalled;
#[path = "session_manager/stats.rs"]
mod stats;
#[path = "session_manager/storage.rs"]
mod storage;

use std::time::Instant;

use agent_orchestrator::server::Synchronous;

use config::Config;
use server::Server;
use stats::{Row, median_index, print_table, rate_summary, thousands};

/// HTTP ingest at 8 clients must reach at least this many events/s.
const INGEST_FLOOR: f64 = 10_000.0;
/// Fan-out p99 must stay under this many ms.
const FANOUT_P99_MS: f64 = 50.0;
/// POST p50 with stalled clients must stay under this many times the p50 without.
const STALLED_P50_RATIO: f64 = 1.5;
/// Peak RSS must stay under this many MB (10^6 bytes).
const RSS_LIMIT_MB: f64 = 100.0;
/// The session whose events are read back.
const BIG_SESSION: &str = "bench-big";

fn main() {
    // `cargo test --all-targets` runs benches without `--bench`: nothing to do then.
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("session_manager bench: run it with `cargo bench --bench session_manager`");
        return;
    }
    let config = Config::from_env();
    let started = Instant::now();
    eprintln!("session manager benchmark; sizes: {config:?}");
    let mut rows = Vec::new();
    let limit = if config.runs("storage") {
        storage_phase(&config, &mut rows)
    } else {
        f64::NAN
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    runtime.block_on(server_phases(&config, limit, &mut rows));
    eprintln!("done in {:.0} s\n", started.elapsed().as_secs_f64());
    print_table(&rows);
}

/// The storage limit under both durability settings; returns the
/// one-commit-per-event figure for the server's setting.
fn storage_phase(config: &Config, rows: &mut Vec<Row>) -> f64 {
    let mut headline = 0.0;
    for sync in [Synchronous::Full, Synchronous::Normal] {
        for batch in [1, config.storage_batch] {
            eprintln!("storage limit: synchronous={sync:?}, {batch} per commit");
            let rates: Vec<f64> = (0..config.rounds)
                .map(|_| storage::events_per_second(sync, batch, config.storage_time))
                .collect();
            if sync == config.synchronous && batch == 1 {
                headline = rates[median_index(&rates)];
            }
            let what = if batch == 1 {
                "1 commit per event".to_owned()
            } else {
                format!("{batch} events per commit")
            };
            rows.push(Row::info(
                format!("storage limit, {what}, synchronous={}", sync_name(sync)),
                rate_summary(&rates),
            ));
        }
    }
    headline
}

fn sync_name(sync: Synchronous) -> &'static str {
    match sync {
        Synchronous::Full => "full",
        Synchronous::Normal => "normal",
    }
}

async fn server_phases(config: &Config, limit: f64, rows: &mut Vec<Row>) {
    let server = Server::start(config.synchronous);
    let base = server.url.clone();
    eprintln!(
        "server at {base} (synchronous={})",
        sync_name(config.synchronous)
    );
    let mut stored = 0u64;
    if config.runs("ingest") {
        ingest_phase(config, &server, limit, &mut stored, rows).await;
    }
    if config.runs("partial") {
        partial_phase(config, &server, &mut stored, rows).await;
    }
    if config.runs("reads") {
        setup_phase(config, &server, &mut stored, rows).await;
        read_phase(config, &server, rows).await;
    }
    if config.runs("fanout") {
        fanout_phase(config, &server, stored, rows).await;
    }
    // Last: its large events would otherwise raise the peak RSS shown above.
    if config.runs("stalled") {
        stalled_phase(config, &server, rows).await;
    }
    server.note("stopping");
    server.stop();
}

async fn ingest_phase(
    config: &Config,
    server: &Server,
    limit: f64,
    stored: &mut u64,
    rows: &mut Vec<Row>,
) {
    for &clients in &config.ingest_clients {
        server.note(&format!("ingest: {clients} clients"));
        let mut runs = Vec::new();
        for round in 0..config.rounds {
            let run = ingest::run(&server.url, clients, round, config.ingest_time, || {
                server.cpu_time()
            })
            .await;
            *stored += run.events;
            runs.push(run);
        }
        rows.push(ingest_row(runs, limit));
    }
}

/// The cost of the whole conversation to ingest: 8 clients posting events
/// while their sessions also get the model's text as it is written (a
/// `text_delta` every 100 ms each, a dashboard reading the live feed), and
/// narration (indexed for search) instead of tool calls; each against the
/// plain ingest in alternating rounds of the same run.
async fn partial_phase(config: &Config, server: &Server, stored: &mut u64, rows: &mut Vec<Row>) {
    use ingest::Load;
    let clients = 8;
    server.note("partial messages: ingest with and without text deltas, and narration");
    let dashboard = fanout::reader(&server.url).await;
    let loads = [
        Load::default(),
        Load {
            deltas: true,
            narration: false,
        },
        Load {
            deltas: false,
            narration: true,
        },
    ];
    let mut rates: Vec<Vec<f64>> = vec![Vec::new(); loads.len()];
    let mut errors = vec![0; loads.len()];
    for round in 0..config.rounds.max(5) {
        for (i, load) in loads.iter().enumerate() {
            // Rounds of their own: the ingest phase's sessions are there.
            let run = ingest::run_with(
                &server.url,
                clients,
                1000 + round,
                config.ingest_time,
                || server.cpu_time(),
                *load,
            )
            .await;
            *stored += run.events;
            errors[i] += run.errors;
            rates[i].push(run.per_second());
        }
    }
    let received = dashboard.stop().await;
    // Each round's arms ran one after the other: their ratio is the least
    // moved by what else the machine does.
    let ratio = |arm: usize| {
        let ratios: Vec<f64> = rates[arm]
            .iter()
            .zip(&rates[0])
            .map(|(a, b)| a / b)
            .collect();
        ratios[median_index(&ratios)]
    };
    rows.push(Row::info(
        format!("HTTP ingest, {clients} clients, beside a dashboard"),
        format!("{}; {} errors", rate_summary(&rates[0]), errors[0]),
    ));
    let with = ratio(1);
    rows.push(Row {
        figure: format!("HTTP ingest, {clients} clients, partial messages forwarded (10/s each)"),
        value: format!(
            "{}; {} errors; the dashboard read {} messages",
            rate_summary(&rates[1]),
            errors[1],
            thousands(received as f64)
        ),
        target: ">= 0.9x without".to_owned(),
        ratio: format!("{with:.2}x"),
        pass: Some(with >= 0.9 && errors[1] == 0),
    });
    let narration = ratio(2);
    rows.push(Row {
        figure: format!("HTTP ingest, {clients} clients, narration (indexed for search)"),
        value: format!("{}; {} errors", rate_summary(&rates[2]), errors[2]),
        target: String::new(),
        ratio: format!("{narration:.2}x tool calls"),
        pass: None,
    });
}

async fn fanout_phase(config: &Config, server: &Server, stored: u64, rows: &mut Vec<Row>) {
    server.note(&format!(
        "fan-out: {} WS + {} SSE clients",
        config.ws_clients, config.sse_clients
    ));
    let mut live = fanout::run(
        &server.url,
        &server.url,
        config.ws_clients,
        config.sse_clients,
        config.fanout_rate,
        config.fanout_time,
        || server.rss(),
    )
    .await;
    let stored = stored + live.sent;
    fanout_rows(config, &mut live, stored, rows);
}

async fn stalled_phase(config: &Config, server: &Server, rows: &mut Vec<Row>) {
    let (clients, events, bytes) = (
        config.stalled_clients,
        config.stalled_events,
        config.stalled_event_bytes,
    );
    server.note(&format!(
        "stalled clients: {events} events of {bytes} bytes, without and with {clients} clients that never read"
    ));
    let mut run = stalled::run(&server.url, clients, events, bytes, || server.rss()).await;
    let size = format!("{} KB", bytes / 1000);
    let p50 = |l: &mut stats::Latencies| l.percentile_ms(50.0);
    let p99 = |l: &mut stats::Latencies| l.percentile_ms(99.0);
    let ratio50 = p50(&mut run.with) / p50(&mut run.without);
    let ratio99 = p99(&mut run.with) / p99(&mut run.without);
    rows.push(Row::info(
        format!("POST {size} events, 1 live client"),
        format!(
            "{}; {} events",
            run.without.summary(),
            thousands(run.without.len() as f64)
        ),
    ));
    rows.push(Row {
        figure: format!("POST {size} events, 1 live + {clients} stalled clients"),
        value: format!(
            "{}; {} events, {} errors; p99 {ratio99:.2}x without",
            run.with.summary(),
            thousands(run.with.len() as f64),
            run.errors
        ),
        target: format!("p50 < {STALLED_P50_RATIO}x without, 0 errors"),
        ratio: format!("{ratio50:.2}x"),
        pass: Some(ratio50 < STALLED_P50_RATIO && run.errors == 0),
    });
    let (peak, now) = run.rss;
    let mb = |b: u64| b as f64 / 1e6;
    rows.push(Row {
        figure: format!("server peak RSS, after {clients} stalled clients"),
        value: format!("{:.1} MB (VmHWM; VmRSS now {:.1} MB)", mb(peak), mb(now)),
        target: format!("< {RSS_LIMIT_MB:.0} MB"),
        ratio: format!("{:.2}x", mb(peak) / RSS_LIMIT_MB),
        pass: Some(mb(peak) < RSS_LIMIT_MB),
    });
}

/// The median run's rate, with the latencies, errors and server CPU of all runs.
fn ingest_row(runs: Vec<ingest::Ingest>, limit: f64) -> Row {
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
    let cpu_per_event = cpu * 1e6 / events.max(1) as f64;
    let value = format!(
        "{}; {}; {errors} errors; server CPU {cpu_per_event:.0} us/ev",
        rate_summary(&rates),
        latencies.summary_with_max(),
    );
    // Without the storage part (AO_BENCH_ONLY), there is no limit to compare to.
    let ratio = if limit.is_nan() {
        "no storage limit measured".to_owned()
    } else {
        format!("{:.2}x storage limit", rate / limit)
    };
    let limit = if limit.is_nan() { 0.0 } else { limit };
    let (target, pass) = if clients == 8 {
        (
            format!(
                ">= storage limit and >= {} ev/s, 0 errors",
                thousands(INGEST_FLOOR)
            ),
            rate >= limit && rate >= INGEST_FLOOR && errors == 0,
        )
    } else {
        ("0 errors".to_owned(), errors == 0)
    };
    Row {
        figure: format!("HTTP ingest, {clients} clients"),
        value,
        target,
        ratio,
        pass: Some(pass),
    }
}

/// Fills the database for the reads: the sessions and the long session.
async fn setup_phase(config: &Config, server: &Server, stored: &mut u64, rows: &mut Vec<Row>) {
    let base = server.url.as_str();
    server.note(&format!("setup: {} sessions", config.sessions));
    let start = Instant::now();
    ingest::create_sessions(base, config.sessions as u64).await;
    let per_second = config.sessions as f64 / start.elapsed().as_secs_f64();
    rows.push(Row::info(
        format!(
            "setup: POST /sessions x {}, 16 clients",
            thousands(config.sessions as f64)
        ),
        format!("{} sessions/s", thousands(per_second)),
    ));
    server.note(&format!(
        "setup: {} events in one session",
        config.big_session_events
    ));
    let n = config.big_session_events as u64;
    let rate = ingest::fill_session(base, BIG_SESSION, n).await;
    *stored += n;
    rows.push(Row::info(
        format!(
            "setup: {} events into one session, 32 clients",
            thousands(n as f64)
        ),
        format!("{} ev/s", thousands(rate)),
    ));
}

async fn read_phase(config: &Config, server: &Server, rows: &mut Vec<Row>) {
    let base = server.url.as_str();
    server.note("reads: GET /sessions");
    let mut list = reads::list_sessions(base, config.list_requests).await;
    rows.push(Row::info(
        format!(
            "GET /sessions ({} sessions), nothing changing",
            thousands(list.items as f64)
        ),
        format!(
            "{:.1} req/s; {}",
            list.per_second(),
            list.latencies.summary()
        ),
    ));
    server.note("reads: GET /sessions after a change");
    let mut cold =
        reads::list_sessions_after_change(base, "bench-session-0", config.list_requests).await;
    rows.push(Row::info(
        format!(
            "GET /sessions ({} sessions), each after a change",
            thousands(cold.items as f64)
        ),
        format!(
            "{:.1} req/s; {}",
            cold.per_second(),
            cold.latencies.summary()
        ),
    ));
    server.note("reads: GET /sessions/{id}/events");
    let mut events = reads::session_events(base, BIG_SESSION, config.event_reads).await;
    let p50 = events.latencies.percentile_ms(50.0);
    rows.push(Row::info(
        format!(
            "GET /sessions/{{id}}/events ({} events)",
            thousands(events.items as f64)
        ),
        format!(
            "{p50:.0} ms per read (p50), {} events/s",
            thousands(events.items as f64 / (p50 / 1000.0))
        ),
    ));
    server.note("reads: name lookups");
    let (mut lookups, errors) = reads::name_lookups(
        base,
        config.sessions,
        config.lookup_clients,
        config.lookup_time,
    )
    .await;
    rows.push(Row {
        figure: format!("GET /sessions?name=, {} clients", config.lookup_clients),
        value: format!(
            "{} req/s; {}; {errors} errors",
            thousands(lookups.per_second()),
            lookups.latencies.summary()
        ),
        target: "0 errors".to_owned(),
        ratio: String::new(),
        pass: Some(errors == 0),
    });
}

fn fanout_rows(config: &Config, live: &mut fanout::Fanout, stored: u64, rows: &mut Vec<Row>) {
    rows.push(Row {
        figure: format!(
            "live: events posted at {}/s",
            thousands(f64::from(config.fanout_rate))
        ),
        value: format!(
            "{} ev/s achieved, {} events, {} errors; POST {}",
            thousands(live.send_rate),
            thousands(live.sent as f64),
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
            figure: format!("fan-out latency, {} {kind} clients", seen.clients),
            value: seen.latencies.summary(),
            target: format!("p99 < {FANOUT_P99_MS:.0} ms"),
            ratio: format!("{:.2}x", p99 / FANOUT_P99_MS),
            pass: Some(p99 < FANOUT_P99_MS),
        });
    }
    let missed = live.ws.missed + live.sse.missed;
    let resync = live.ws.resync_missed + live.sse.resync_missed;
    rows.push(Row {
        figure: format!(
            "messages missed, {} clients x {} events",
            live.ws.clients + live.sse.clients,
            thousands(live.sent as f64)
        ),
        value: format!(
            "{missed} (WS {}, SSE {}; resync {resync})",
            live.ws.missed, live.sse.missed
        ),
        target: "0".to_owned(),
        ratio: String::new(),
        pass: Some(missed == 0),
    });
    let (peak, now) = live.rss;
    let mb = |b: u64| b as f64 / 1e6;
    rows.push(Row {
        figure: format!(
            "server peak RSS, {} events stored, {} live clients",
            thousands(stored as f64),
            live.ws.clients + live.sse.clients
        ),
        value: format!("{:.1} MB (VmHWM; VmRSS now {:.1} MB)", mb(peak), mb(now)),
        target: format!("< {RSS_LIMIT_MB:.0} MB"),
        ratio: format!("{:.2}x", mb(peak) / RSS_LIMIT_MB),
        pass: Some(mb(peak) < RSS_LIMIT_MB),
    });
}
