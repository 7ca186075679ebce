//! Live fan-out: WebSocket and SSE clients read every
//! broadcast while senders post stamped events at a steady rate. Each client
//! computes receive time − send time per event, and counts the events it never
//! got (and any `resync` the server sent it for falling behind).

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;
use tokio_util::sync::CancellationToken;

use crate::events::{read_stamp, session_body, stamped_event};
use crate::http;
use crate::stats::Latencies;

/// Clients connect this many at a time, as dashboards opening one by one
/// would, rather than all 200 in the same millisecond.
const CONNECT_WAVE: usize = 10;
/// Connections sharing the posting rate, each with one request in flight:
/// enough that the rate holds even when an acknowledgement takes 10 ms.
const SENDERS: u64 = 16;
/// How long clients may take to receive the last events after sending ends.
const GRACE: Duration = Duration::from_secs(10);

/// µs since the benchmark's clock started; senders and clients share it.
pub fn now_us() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_micros() as u64
}

/// What one kind of client (WS or SSE) saw, summed over its clients.
#[derive(Default)]
pub struct Seen {
    pub clients: usize,
    pub latencies: Latencies,
    /// Events sent and acknowledged that a client never received, summed.
    pub missed: u64,
    /// Messages the server said a client missed (`resync`), summed.
    pub resync_missed: u64,
}

pub struct Fanout {
    pub sent: u64,
    pub send_errors: u64,
    pub send_rate: f64,
    /// How long each `POST` took (stamp to acknowledgement).
    pub send_latencies: Latencies,
    pub ws: Seen,
    pub sse: Seen,
    /// `(peak, current)` server RSS, read while every client was connected.
    pub rss: (u64, u64),
}

struct ClientResult {
    sse: bool,
    latencies: Latencies,
    received: u64,
    resync_missed: u64,
}

/// Runs the fan-out: events posted to `base`, clients on `watch` (the same
/// server, or another replica on its database); `rss` is called once all
/// events were delivered, while every client is still connected.
#[allow(clippy::too_many_arguments)]
pub async fn run(
    base: &str,
    watch: &str,
    ws_clients: usize,
    sse_clients: usize,
    rate: u32,
    time: Duration,
    rss: impl FnOnce() -> (u64, u64),
) -> Fanout {
    let session = "bench-live";
    http::post(
        &http::client(),
        &format!("{base}/sessions"),
        session_body(session),
    )
    .await
    .expect("create the live session");
    let total = u64::from(rate) * time.as_secs().max(1);
    let stop = CancellationToken::new();
    let (done_tx, mut done_rx) = mpsc::channel(ws_clients + sse_clients + 1);
    let readers = connect(watch, ws_clients, sse_clients, total, &stop, &done_tx).await;
    let (sent, send_errors, send_rate, send_latencies) = send(base, session, rate, total).await;
    let mut complete = 0;
    let _ = tokio::time::timeout(GRACE, async {
        while complete < readers.len() && done_rx.recv().await.is_some() {
            complete += 1;
        }
    })
    .await;
    let rss = rss();
    stop.cancel();
    let mut fanout = Fanout {
        sent,
        send_errors,
        send_rate,
        send_latencies,
        ws: Seen::default(),
        sse: Seen::default(),
        rss,
    };
    for reader in readers {
        let r = reader.await.expect("live client");
        let seen = if r.sse {
            &mut fanout.sse
        } else {
            &mut fanout.ws
        };
        seen.clients += 1;
        seen.latencies.merge(r.latencies);
        seen.missed += sent.saturating_sub(r.received);
        seen.resync_missed += r.resync_missed;
    }
    fanout
}

/// Connects the clients, [`CONNECT_WAVE`] at a time, alternating the kinds;
/// returns once each has read its init.
async fn connect(
    base: &str,
    ws_clients: usize,
    sse_clients: usize,
    total: u64,
    stop: &CancellationToken,
    done: &mpsc::Sender<()>,
) -> Vec<tokio::task::JoinHandle<ClientResult>> {
    // `true` is SSE.
    let kinds: Vec<bool> = (0..ws_clients.max(sse_clients))
        .flat_map(|i| {
            [
                (i < ws_clients).then_some(false),
                (i < sse_clients).then_some(true),
            ]
        })
        .flatten()
        .collect();
    let mut readers = Vec::new();
    for wave in kinds.chunks(CONNECT_WAVE) {
        let mut connecting = Vec::new();
        for &sse in wave {
            let (base, stop, done) = (base.to_owned(), stop.clone(), done.clone());
            let (ready_tx, ready_rx) = tokio::sync::oneshot::channel();
            readers.push(tokio::spawn(async move {
                if sse {
                    read_sse(&base, total, stop, done, ready_tx).await
                } else {
                    read_ws(&base, total, stop, done, ready_tx).await
                }
            }));
            connecting.push(ready_rx);
        }
        for ready in connecting {
            ready.await.expect("a live client connected");
        }
    }
    readers
}

/// Posts `total` stamped events at `rate` per second from `SENDERS`
/// connections: `(acknowledged, failed, achieved rate, POST latencies)`.
async fn send(base: &str, session: &str, rate: u32, total: u64) -> (u64, u64, f64, Latencies) {
    let start = tokio::time::Instant::now();
    let interval = Duration::from_secs(1) / rate;
    let senders: Vec<_> = (0..SENDERS)
        .map(|w| {
            let url = format!("{base}/sessions/{session}/events");
            let session = session.to_owned();
            tokio::spawn(async move {
                let client = http::client();
                let (mut ok, mut failed) = (0u64, 0u64);
                let mut latencies = Latencies::default();
                for seq in (w..total).step_by(SENDERS as usize) {
                    tokio::time::sleep_until(start + interval * seq as u32).await;
                    let body = stamped_event(&session, seq, now_us());
                    match http::post(&client, &url, body).await {
                        Ok(took) => {
                            ok += 1;
                            latencies.record(took);
                        }
                        Err(e) => {
                            if failed == 0 {
                                eprintln!("  live sender error: {e}");
                            }
                            failed += 1;
                        }
                    }
                }
                (ok, failed, latencies)
            })
        })
        .collect();
    let (mut ok, mut failed) = (0, 0);
    let mut latencies = Latencies::default();
    for sender in senders {
        let (o, f, l) = sender.await.expect("sender");
        ok += o;
        failed += f;
        latencies.merge(l);
    }
    (
        ok,
        failed,
        ok as f64 / start.elapsed().as_secs_f64(),
        latencies,
    )
}

/// What a client does with each message it reads.
struct Tally {
    sse: bool,
    total: u64,
    seen: Vec<bool>,
    result: ClientResult,
    done: Option<mpsc::Sender<()>>,
}

impl Tally {
    fn new(sse: bool, total: u64, done: mpsc::Sender<()>) -> Tally {
        Tally {
            sse,
            total,
            seen: vec![false; total as usize],
            result: ClientResult {
                sse,
                latencies: Latencies::default(),
                received: 0,
                resync_missed: 0,
            },
            done: Some(done),
        }
    }

    fn message(&mut self, text: &str, now: u64) {
        if let Some((seq, sent)) = read_stamp(text) {
            if let Some(seen) = self.seen.get_mut(seq as usize)
                && !*seen
            {
                *seen = true;
                self.result.received += 1;
                self.result
                    .latencies
                    .record_micros(now.saturating_sub(sent));
            }
        } else if text.starts_with(r#"{"type":"resync""#) {
            let v: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
            self.result.resync_missed += v["missed"].as_u64().unwrap_or(0);
            eprintln!(
                "  a {} client was sent {text}",
                if self.sse { "SSE" } else { "WS" }
            );
        }
        if self.result.received == self.total
            && let Some(done) = self.done.take()
        {
            let _ = done.try_send(());
        }
    }
}

async fn read_ws(
    base: &str,
    total: u64,
    stop: CancellationToken,
    done: mpsc::Sender<()>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> ClientResult {
    let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
    // The default 128 KiB read buffer is zeroed on every read; keep it small.
    let config = WebSocketConfig::default().read_buffer_size(16 * 1024);
    let (mut ws, _) = tokio_tungstenite::connect_async_with_config(url, Some(config), true)
        .await
        .expect("ws connect");
    match ws.next().await {
        Some(Ok(Message::Text(t))) if t.starts_with(r#"{"type":"init""#) => {}
        other => panic!("expected init, got {other:?}"),
    }
    let _ = ready.send(());
    let mut tally = Tally::new(false, total, done);
    loop {
        let msg = tokio::select! {
            _ = stop.cancelled() => break,
            msg = ws.next() => msg,
        };
        match msg {
            Some(Ok(Message::Text(t))) => tally.message(&t, now_us()),
            Some(Ok(_)) => {}
            Some(Err(_)) | None => break,
        }
    }
    tally.result
}

async fn read_sse(
    base: &str,
    total: u64,
    stop: CancellationToken,
    done: mpsc::Sender<()>,
    ready: tokio::sync::oneshot::Sender<()>,
) -> ClientResult {
    let mut resp = http::client()
        .get(format!("{base}/sse"))
        .timeout(Duration::from_secs(3600))
        .send()
        .await
        .expect("sse connect");
    assert_eq!(resp.status(), 200, "GET /sse");
    let mut tally = Tally::new(true, total, done);
    let mut ready = Some(ready);
    let mut buf: Vec<u8> = Vec::new();
    loop {
        let chunk = tokio::select! {
            _ = stop.cancelled() => break,
            chunk = resp.chunk() => chunk,
        };
        let Ok(Some(chunk)) = chunk else { break };
        let now = now_us();
        buf.extend_from_slice(&chunk);
        let mut start = 0;
        while let Some(end) = find_blank_line(&buf[start..]) {
            let block = std::str::from_utf8(&buf[start..start + end]).expect("UTF-8");
            if let Some(data) = block.lines().find_map(|l| l.strip_prefix("data:")) {
                let data = data.strip_prefix(' ').unwrap_or(data);
                match ready.take() {
                    Some(r) if data.starts_with(r#"{"type":"init""#) => drop(r.send(())),
                    Some(_) => panic!("expected init, got {data}"),
                    None => tally.message(data, now),
                }
            }
            start += end + 2;
        }
        buf.drain(..start);
    }
    tally.result
}

fn find_blank_line(bytes: &[u8]) -> Option<usize> {
    bytes.windows(2).position(|w| w == b"\n\n")
}

/// A dashboard: one `/sse` client that reads everything until stopped.
pub struct Dashboard {
    stop: CancellationToken,
    task: tokio::task::JoinHandle<u64>,
}

impl Dashboard {
    /// Stops reading; answers how many messages it read.
    pub async fn stop(self) -> u64 {
        self.stop.cancel();
        self.task.await.unwrap_or(0)
    }
}

/// Connects a [`Dashboard`] to `base`.
pub async fn reader(base: &str) -> Dashboard {
    let resp = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("SSE client")
        .get(format!("{base}/sse"))
        .send()
        .await
        .expect("GET /sse");
    assert_eq!(resp.status(), 200, "GET /sse");
    let stop = CancellationToken::new();
    let token = stop.clone();
    let task = tokio::spawn(async move {
        let mut stream = resp.bytes_stream();
        let mut messages = 0;
        loop {
            tokio::select! {
                () = token.cancelled() => return messages,
                chunk = stream.next() => match chunk {
                    Some(Ok(bytes)) => {
                        messages += bytes.windows(7).filter(|w| w == b"event: ").count() as u64;
                    }
                    _ => return messages,
                },
            }
        }
    });
    Dashboard { stop, task }
}
