//! Reads: the full session list, a long session's events, and name lookups.

use std::time::{Duration, Instant};

use serde::Deserialize;
use serde::de::IgnoredAny;

use crate::http;
use crate::stats::Latencies;

#[derive(Deserialize)]
struct SessionsAnswer {
    sessions: Vec<IgnoredAny>,
}

#[derive(Deserialize)]
struct EventsAnswer {
    events: Vec<IgnoredAny>,
}

/// Sequential requests of one kind: how many, how long each took.
pub struct Reads {
    pub requests: u64,
    pub elapsed: Duration,
    pub latencies: Latencies,
    /// Items in the last answer (sessions or events).
    pub items: usize,
}

impl Reads {
    pub fn per_second(&self) -> f64 {
        self.requests as f64 / self.elapsed.as_secs_f64()
    }
}

/// `GET /sessions`, `n` times, one after another.
pub async fn list_sessions(base: &str, n: usize) -> Reads {
    sequential(&format!("{base}/sessions"), n, |body| {
        serde_json::from_slice::<SessionsAnswer>(body)
            .expect("a session list")
            .sessions
            .len()
    })
    .await
}

/// `GET /sessions`, `n` times, each right after a change to a session (an
/// untimed `PATCH`), so that no answer can be one the server kept from
/// before.
pub async fn list_sessions_after_change(base: &str, changed: &str, n: usize) -> Reads {
    let client = http::client();
    let url = format!("{base}/sessions");
    let patch_url = format!("{base}/sessions/{changed}");
    let mut reads = Reads {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        items: 0,
    };
    for i in 0..n {
        let change = serde_json::json!({"agent_name": format!("agent-{i}")}).to_string();
        let resp = client
            .patch(&patch_url)
            .header("content-type", "application/json")
            .body(change)
            .send()
            .await
            .expect("PATCH");
        assert_eq!(resp.status(), 200, "PATCH {patch_url}");
        let (took, body) = http::get(&client, &url).await.expect("read");
        reads.items = serde_json::from_slice::<SessionsAnswer>(&body)
            .expect("a session list")
            .sessions
            .len();
        reads.latencies.record(took);
        reads.elapsed += took;
        reads.requests += 1;
    }
    reads
}

/// `GET /sessions/{id}/events`, `n` times, one after another.
pub async fn session_events(base: &str, session: &str, n: usize) -> Reads {
    sequential(&format!("{base}/sessions/{session}/events"), n, |body| {
        serde_json::from_slice::<EventsAnswer>(body)
            .expect("an event list")
            .events
            .len()
    })
    .await
}

async fn sequential(url: &str, n: usize, count: impl Fn(&[u8]) -> usize) -> Reads {
    let client = http::client();
    // One untimed request first, so that the connection and the pages are warm.
    let (_, body) = http::get(&client, url).await.expect("warm-up read");
    let mut reads = Reads {
        requests: 0,
        elapsed: Duration::ZERO,
        latencies: Latencies::default(),
        items: count(&body),
    };
    let start = Instant::now();
    for _ in 0..n {
        let (took, _) = http::get(&client, url).await.expect("read");
        reads.latencies.record(took);
        reads.requests += 1;
    }
    reads.elapsed = start.elapsed();
    reads
}

/// `GET /sessions?name=` for random names among `bench-session-0..sessions`,
/// from `clients` clients at once for `time`; failed or wrong answers are errors.
pub async fn name_lookups(
    base: &str,
    sessions: usize,
    clients: usize,
    time: Duration,
) -> (Reads, u64) {
    let start = Instant::now();
    let deadline = start + time;
    let workers: Vec<_> = (0..clients)
        .map(|w| {
            let base = base.to_owned();
            tokio::spawn(async move {
                let client = http::client();
                let mut latencies = Latencies::default();
                let mut errors = 0u64;
                let mut rng = 0x9E37_79B9_7F4A_7C15u64 ^ (w as u64 + 1);
                while Instant::now() < deadline {
                    rng ^= rng << 13;
                    rng ^= rng >> 7;
                    rng ^= rng << 17;
                    let name = format!("bench-session-{}", rng % sessions as u64);
                    match http::get(&client, &format!("{base}/sessions?name={name}")).await {
                        Ok((took, body)) if found(&body, &name) => latencies.record(took),
                        _ => errors += 1,
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    let mut latencies = Latencies::default();
    let mut errors = 0;
    for worker in workers {
        let (l, e) = worker.await.expect("lookup worker");
        latencies.merge(l);
        errors += e;
    }
    let reads = Reads {
        requests: latencies.len() as u64,
        elapsed: start.elapsed(),
        latencies,
        items: 1,
    };
    (reads, errors)
}

/// Whether a lookup answer holds exactly the one session asked for.
fn found(body: &[u8], name: &str) -> bool {
    let Ok(text) = std::str::from_utf8(body) else {
        return false;
    };
    let needle = format!("\"session_name\":\"{name}\"");
    text.matches(&needle).count() == 1 && text.matches("\"session_id\"").count() == 1
}
