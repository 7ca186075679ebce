//! Live clients that never read: the POST latency of large events with
//! such clients connected, against the same without them in the same run,
//! and the server's memory afterwards. Both halves have one client that
//! reads, so that each event is encoded for the live feed in both, and they
//! alternate in rounds, so that a burst of load from elsewhere on the
//! machine falls on both alike.

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::events::{session_body, sized_event};
use crate::http;
use crate::stall::StalledClient;
use crate::stats::Latencies;

pub struct Stalled {
    /// POST latencies with the reading client only.
    pub without: Latencies,
    /// The same with the stalled clients connected too.
    pub with: Latencies,
    /// POSTs that failed, in both halves.
    pub errors: u64,
    /// `(peak, current)` server RSS after the second half.
    pub rss: (u64, u64),
}

/// Rounds of the measurement: each posts its share of the events without
/// the stalled clients, then connects them and posts the same again.
const ROUNDS: u64 = 5;
/// Bytes of events posted untimed after the stalled clients connect: enough to fill
/// their socket buffers (a copy per client in the kernel, which is not
/// what this measures).
const FILL_BYTES: usize = 8_000_000;

/// Posts `events` events of `bytes` one after another, without and with
/// `clients` stalled ones (half WebSocket, half SSE) besides a reading
/// client; `rss` is read at the end, the stalled clients still connected.
pub async fn run(
    base: &str,
    clients: usize,
    events: u64,
    bytes: usize,
    rss: impl FnOnce() -> (u64, u64),
) -> Stalled {
    let session = "bench-stalled";
    let client = http::client();
    http::post(&client, &format!("{base}/sessions"), session_body(session))
        .await
        .expect("create the session");
    let stop = CancellationToken::new();
    let reader = tokio::spawn(read_all(base.to_owned(), stop.clone()));
    let mut poster = Poster {
        client,
        url: format!("{base}/sessions/{session}/events"),
        session,
        bytes,
        errors: 0,
    };
    let (mut without, mut with, mut untimed) = Default::default();
    let fill = (FILL_BYTES / bytes.max(1)) as u64 + 1;
    // Warm-up.
    poster.post(fill, &mut untimed).await;
    let mut stalled = Vec::new();
    for round in 0..ROUNDS {
        let share = events / ROUNDS + u64::from(round < events % ROUNDS);
        drop(stalled);
        poster.post(share, &mut without).await;
        stalled = StalledClient::many(base, clients).await;
        poster.post(fill, &mut untimed).await;
        poster.post(share, &mut with).await;
    }
    let rss = rss();
    drop(stalled);
    stop.cancel();
    let _ = reader.await;
    let errors = poster.errors;
    Stalled {
        without,
        with,
        errors,
        rss,
    }
}

/// Posts events of `bytes` one after another.
struct Poster {
    client: reqwest::Client,
    url: String,
    session: &'static str,
    bytes: usize,
    errors: u64,
}

impl Poster {
    /// Posts `count` events, adding their latencies to `latencies`.
    async fn post(&mut self, count: u64, latencies: &mut Latencies) {
        for _ in 0..count {
            let body = sized_event(self.session, self.bytes);
            match http::post(&self.client, &self.url, body).await {
                Ok(took) => latencies.record(took),
                Err(e) => {
                    if self.errors == 0 {
                        eprintln!("  stalled-client POST error: {e}");
                    }
                    self.errors += 1;
                }
            }
        }
    }
}

/// A WebSocket client that reads every message until `stop`.
async fn read_all(base: String, stop: CancellationToken) {
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    let (mut ws, _) = tokio_tungstenite::connect_async(url)
        .await
        .expect("ws connect");
    loop {
        tokio::select! {
            _ = stop.cancelled() => break,
            message = ws.next() => {
                if !matches!(message, Some(Ok(_))) {
                    break;
                }
            }
        }
    }
}
