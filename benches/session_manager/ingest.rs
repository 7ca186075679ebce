//! Ingest: `POST /sessions/{id}/events` from N keep-alive clients at once,
//! each posting to its own session (as N runners would) for a fixed time.

use std::time::{Duration, Instant};

use crate::events::{session_body, tool_event};
use crate::http;
use crate::stats::Latencies;

pub struct Ingest {
    pub clients: usize,
    pub events: u64,
    pub errors: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Server CPU time (user + system) spent meanwhile.
    pub server_cpu: Duration,
}

impl Ingest {
    pub fn per_second(&self) -> f64 {
        self.events as f64 / self.elapsed.as_secs_f64()
    }
}

/// Posts events from `clients` clients for `time`.
/// `round` tells runs apart (each has its own sessions); `cpu_time` reads
/// the server's CPU time.
pub async fn run(
    base: &str,
    clients: usize,
    round: usize,
    time: Duration,
    cpu_time: impl Fn() -> Duration,
) -> Ingest {
    let sessions: Vec<String> = (0..clients)
        .map(|w| format!("bench-ingest-{clients}-{round}-{w}"))
        .collect();
    let setup = http::client();
    for id in &sessions {
        http::post(&setup, &format!("{base}/sessions"), session_body(id))
            .await
            .expect("create an ingest session");
    }
    let cpu_before = cpu_time();
    let start = Instant::now();
    let deadline = start + time;
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|id| {
            tokio::spawn(post_until(
                format!("{base}/sessions/{id}/events"),
                id,
                deadline,
            ))
        })
        .collect();
    let mut result = Ingest {
        clients,
        events: 0,
        errors: 0,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        server_cpu: Duration::ZERO,
    };
    for worker in workers {
        let (ok, errors, latencies) = worker.await.expect("ingest worker");
        result.events += ok;
        result.errors += errors;
        result.latencies.merge(latencies);
    }
    result.elapsed = start.elapsed();
    result.server_cpu = cpu_time().saturating_sub(cpu_before);
    result
}

/// One client: posts one event after another until `deadline`.
async fn post_until(url: String, session: String, deadline: Instant) -> (u64, u64, Latencies) {
    let client = http::client();
    let (mut ok, mut errors) = (0, 0);
    let mut latencies = Latencies::default();
    let mut seq = 0;
    while Instant::now() < deadline {
        let body = tool_event(&session, seq).to_string();
        seq += 1;
        match http::post(&client, &url, body).await {
            Ok(took) => {
                ok += 1;
                latencies.record(took);
            }
            Err(e) => {
                if errors == 0 {
                    eprintln!("  ingest error: {e}");
                }
                errors += 1;
            }
        }
    }
    (ok, errors, latencies)
}

/// Stores `count` events in one session with 32 clients; events per second.
pub async fn fill_session(base: &str, session: &str, count: u64) -> f64 {
    let setup = http::client();
    http::post(&setup, &format!("{base}/sessions"), session_body(session))
        .await
        .expect("create the big session");
    let url = format!("{base}/sessions/{session}/events");
    let session = session.to_owned();
    let start = Instant::now();
    http::for_each(count, 32, move |client, i| {
        let (url, body) = (url.clone(), tool_event(&session, i).to_string());
        async move { http::post(&client, &url, body).await.map(drop) }
    })
    .await;
    count as f64 / start.elapsed().as_secs_f64()
}

/// Creates sessions `bench-session-{i}` for `i` in `0..count`, 16 at a time.
pub async fn create_sessions(base: &str, count: u64) {
    let url = format!("{base}/sessions");
    http::for_each(count, 16, move |client, i| {
        let (url, body) = (url.clone(), session_body(&format!("bench-session-{i}")));
        async move { http::post(&client, &url, body).await.map(drop) }
    })
    .await;
}
