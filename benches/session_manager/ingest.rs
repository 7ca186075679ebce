//! Ingest: `POST /sessions/{id}/events` from N keep-alive clients at once,
//! each posting to its own session (as N runners would) for a fixed time.

use std::time::{Duration, Instant};

use crate::events::{narration_event, session_body, text_delta, tool_event};
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

/// What each client posts besides, and which events.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Load {
    /// Each session also gets a `text_delta` every 100 ms on a connection
    /// of its own, as a runner forwards the model's text.
    pub deltas: bool,
    /// The events are narration (assistant messages, indexed for search)
    /// instead of `post_tool`.
    pub narration: bool,
}

impl Load {
    fn name(self) -> &'static str {
        match (self.deltas, self.narration) {
            (false, false) => "tools",
            (true, false) => "deltas",
            (false, true) => "narration",
            (true, true) => "both",
        }
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
    run_with(base, clients, round, time, cpu_time, Load::default()).await
}

/// [`run`] with `load`.
pub async fn run_with(
    base: &str,
    clients: usize,
    round: usize,
    time: Duration,
    cpu_time: impl Fn() -> Duration,
    load: Load,
) -> Ingest {
    let sessions: Vec<String> = (0..clients)
        .map(|w| format!("bench-ingest-{}-{clients}-{round}-{w}", load.name()))
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
    let streams: Vec<_> = sessions
        .iter()
        .filter(|_| load.deltas)
        .map(|id| tokio::spawn(stream_until(format!("{base}/sessions/{id}/live"), deadline)))
        .collect();
    let workers: Vec<_> = sessions
        .into_iter()
        .map(|id| {
            tokio::spawn(post_until(
                format!("{base}/sessions/{id}/events"),
                id,
                deadline,
                load.narration,
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
    for stream in streams {
        let errors = stream.await.expect("delta sender");
        result.errors += errors;
    }
    result
}

/// One session's text as the model writes it: a delta every 100 ms (the
/// most a runner sends) until `deadline`; answers the errors.
async fn stream_until(url: String, deadline: Instant) -> u64 {
    let client = http::client();
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    let (mut seq, mut errors) = (0, 0);
    while Instant::now() < deadline {
        tick.tick().await;
        seq += 1;
        if let Err(e) = http::post(&client, &url, text_delta(seq)).await {
            if errors == 0 {
                eprintln!("  delta error: {e}");
            }
            errors += 1;
        }
    }
    errors
}

/// One client: posts one event after another until `deadline`.
async fn post_until(
    url: String,
    session: String,
    deadline: Instant,
    narration: bool,
) -> (u64, u64, Latencies) {
    let client = http::client();
    let (mut ok, mut errors) = (0, 0);
    let mut latencies = Latencies::default();
    let mut seq = 0;
    while Instant::now() < deadline {
        let body = if narration {
            narration_event(&session, seq)
        } else {
            tool_event(&session, seq)
        }
        .to_string();
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
