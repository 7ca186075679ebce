//! The sizes of one run, from the environment. `AO_BENCH_QUICK=1` shrinks
//! every default for a smoke run; each `AO_BENCH_*` variable overrides one.

use std::time::Duration;

use agent_orchestrator::server::Synchronous;

#[derive(Debug, Clone)]
pub struct Config {
    /// Each storage-limit and ingest figure is the median of this many runs,
    /// so that a burst from another process on the machine moves it less.
    pub rounds: usize,
    /// Time spent writing per storage-limit run.
    pub storage_time: Duration,
    /// Rows per commit in the batched storage measurement.
    pub storage_batch: usize,
    /// The client counts of the ingest measurements.
    pub ingest_clients: Vec<usize>,
    /// Time spent per ingest run.
    pub ingest_time: Duration,
    /// Sessions stored for `GET /sessions` and the name lookups.
    pub sessions: usize,
    /// Events stored in one session for `GET /sessions/{id}/events`.
    pub big_session_events: usize,
    /// `GET /sessions` requests timed.
    pub list_requests: usize,
    /// `GET /sessions/{id}/events` requests timed.
    pub event_reads: usize,
    /// Time spent on name lookups.
    pub lookup_time: Duration,
    /// Concurrent clients doing name lookups.
    pub lookup_clients: usize,
    /// WebSocket clients during the fan-out.
    pub ws_clients: usize,
    /// SSE clients during the fan-out.
    pub sse_clients: usize,
    /// Events per second posted during the fan-out.
    pub fanout_rate: u32,
    /// How long the fan-out lasts.
    pub fanout_time: Duration,
    /// Live clients that never read, for the POST latency beside them.
    pub stalled_clients: usize,
    /// Events posted without them and again with them.
    pub stalled_events: u64,
    /// The size of each of those events.
    pub stalled_event_bytes: usize,
    /// The server's `--synchronous`.
    pub synchronous: Synchronous,
    /// The parts to run (`AO_BENCH_ONLY=storage,ingest,partial,reads,fanout,stalled`; all by default).
    pub only: Vec<String>,
}

impl Config {
    pub fn from_env() -> Config {
        let quick = flag("AO_BENCH_QUICK");
        let pick = |full: u64, quick_value: u64| if quick { quick_value } else { full };
        Config {
            rounds: num("AO_BENCH_ROUNDS", pick(3, 1)).max(1) as usize,
            storage_time: secs("AO_BENCH_STORAGE_SECS", 1),
            storage_batch: num("AO_BENCH_STORAGE_BATCH", 100) as usize,
            ingest_clients: list("AO_BENCH_INGEST_CLIENTS", "1,8,32")
                .iter()
                .map(|n| n.parse().expect("AO_BENCH_INGEST_CLIENTS: numbers"))
                .collect(),
            ingest_time: secs("AO_BENCH_INGEST_SECS", pick(3, 2)),
            sessions: num("AO_BENCH_SESSIONS", pick(10_000, 2_000)) as usize,
            big_session_events: num("AO_BENCH_EVENTS", pick(100_000, 10_000)) as usize,
            list_requests: num("AO_BENCH_LIST_REQUESTS", pick(100, 10)) as usize,
            event_reads: num("AO_BENCH_EVENT_READS", pick(5, 2)) as usize,
            lookup_time: secs("AO_BENCH_LOOKUP_SECS", pick(3, 1)),
            lookup_clients: 8,
            ws_clients: num("AO_BENCH_WS_CLIENTS", 100) as usize,
            sse_clients: num("AO_BENCH_SSE_CLIENTS", 100) as usize,
            fanout_rate: num("AO_BENCH_FANOUT_RATE", 1000) as u32,
            fanout_time: secs("AO_BENCH_FANOUT_SECS", pick(10, 3)),
            stalled_clients: num("AO_BENCH_STALLED_CLIENTS", 200) as usize,
            stalled_events: num("AO_BENCH_STALLED_EVENTS", pick(1_000, 300)),
            stalled_event_bytes: num("AO_BENCH_STALLED_BYTES", 200_000) as usize,
            synchronous: match std::env::var("AO_BENCH_SYNCHRONOUS").as_deref() {
                Ok("normal") => Synchronous::Normal,
                _ => Synchronous::Full,
            },
            only: list(
                "AO_BENCH_ONLY",
                "storage,ingest,partial,reads,fanout,stalled",
            ),
        }
    }

    /// Whether the part `name` is to run.
    pub fn runs(&self, name: &str) -> bool {
        self.only.iter().any(|p| p == name)
    }
}

fn list(name: &str, default: &str) -> Vec<String> {
    std::env::var(name)
        .unwrap_or_else(|_| default.to_owned())
        .split(',')
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .collect()
}

fn flag(name: &str) -> bool {
    std::env::var(name).is_ok_and(|v| !v.is_empty() && v != "0")
}

fn num(name: &str, default: u64) -> u64 {
    match std::env::var(name) {
        Ok(v) => v
            .parse()
            .unwrap_or_else(|_| panic!("{name}={v:?} is not a whole number")),
        Err(_) => default,
    }
}

fn secs(name: &str, default: u64) -> Duration {
    Duration::from_secs(num(name, default))
}
