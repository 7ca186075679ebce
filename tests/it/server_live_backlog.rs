//! Live clients that stop reading: the server keeps a backlog bounded in
//! bytes for them, whatever the size of the messages, and tells each one
//! what it missed (`resync`) when it reads again.

use std::collections::HashSet;
use std::time::Duration;

use agent_orchestrator::feed::Feed;
use serde_json::{Value, json};

use crate::support::SessionManager;
use crate::support::http::{assistant, event, numbered};
use crate::support::live::{SseClient, WsClient, keep_up};
use crate::support::stalled::StalledClient;

/// Clients that never read, half WebSocket and half SSE.
const STALLED: usize = 200;
/// Events posted while they stall, each of about [`EVENT_BYTES`].
const EVENTS: u64 = 1_000;
const EVENT_BYTES: usize = 200_000;
/// The server's resident memory must stay under this (bytes).
const MEMORY_LIMIT: u64 = 100_000_000;

fn mb(bytes: u64) -> f64 {
    bytes as f64 / 1e6
}

/// What a client that read again got after its init, up to the marker
/// message: the numbers of the events it was sent, and the `missed`
/// counts of its `resync` messages. Panics on anything else.
struct Caught {
    events: Vec<u64>,
    resyncs: Vec<u64>,
    /// Events sent after the first `resync`.
    after_resync: usize,
}

impl Caught {
    fn new() -> Self {
        Caught {
            events: Vec::new(),
            resyncs: Vec::new(),
            after_resync: 0,
        }
    }

    /// Takes one message; `false` once the marker arrived.
    fn take(&mut self, message: &Value) -> bool {
        match message["type"].as_str().unwrap() {
            "resync" => self.resyncs.push(message["missed"].as_u64().unwrap()),
            "event" if message["data"]["event_type"] == "message" => return false,
            "event" => {
                let n = message["data"]["tool_input"]["n"].as_u64().unwrap();
                self.events.push(n);
                if !self.resyncs.is_empty() {
                    self.after_resync += 1;
                }
            }
            other => panic!("unexpected {other}: {message}"),
        }
        true
    }

    /// Every event is either delivered, in order, or counted as missed.
    fn check(&self, who: &str, expected: u64) {
        assert!(
            self.events.windows(2).all(|w| w[0] < w[1]),
            "{who}: events in order"
        );
        let missed: u64 = self.resyncs.iter().sum();
        assert_eq!(
            self.events.len() as u64 + missed,
            expected,
            "{who}: every event is either delivered or counted as missed \
             ({} delivered, resync {:?})",
            self.events.len(),
            self.resyncs
        );
    }
}

/// 200 clients that never read and 1,000 events of 200 KB: the server
/// keeps what they missed within its byte budget (it kept every message
/// for each of them, hundreds of MB), a stalled client that reads again is
/// told what it missed and then follows live again, and a client that keeps
/// up misses nothing.
#[tokio::test]
async fn stalled_clients_leave_the_server_small_and_are_told_what_they_missed() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;

    let stalled = StalledClient::many(&sm.url, STALLED).await;
    // Two more stalled clients, which read again at the end.
    let mut late_ws = WsClient::connect(&sm.url).await;
    let mut late_sse = SseClient::connect(&sm.url).await;

    // The poster waits for the fast client to see each event, so that it
    // keeps up by construction.
    let mut fast = WsClient::connect(&sm.url).await;
    assert_eq!(fast.next().await.unwrap()["type"], "init");
    let mut seen = keep_up(fast, |m| m["data"]["tool_input"]["n"] == EVENTS - 1);

    let (_, before) = sm.memory();
    let output = "x".repeat(EVENT_BYTES);
    for n in 0..EVENTS {
        http.event("s", numbered("s", n, &output)).await;
        let message = seen.recv().await.unwrap();
        assert_eq!(
            (&message["type"], &message["data"]["tool_input"]["n"]),
            (&json!("event"), &json!(n)),
            "the client that keeps up got event {n}, and no resync"
        );
    }
    let (peak, now) = sm.memory();
    eprintln!(
        "server memory with {} stalled clients: {:.1} MB before, peak {:.1} MB, now {:.1} MB",
        STALLED + 2,
        mb(before),
        mb(peak),
        mb(now)
    );
    assert!(
        peak < MEMORY_LIMIT,
        "the server peaked at {:.1} MB (limit {:.0} MB) with {} clients that do not read",
        mb(peak),
        mb(MEMORY_LIMIT),
        STALLED + 2
    );

    // The late clients read again: what they missed is counted, and they
    // follow live messages again.
    http.event("s", assistant("s", "marker")).await;
    assert_eq!(late_ws.next().await.unwrap()["type"], "init");
    let mut ws = Caught::new();
    while ws.take(&late_ws.next().await.unwrap()) {}
    ws.check("WebSocket", EVENTS);
    assert!(!ws.resyncs.is_empty(), "the WebSocket client got a resync");

    assert_eq!(late_sse.next().await.unwrap().0, "init");
    let mut sse = Caught::new();
    while sse.take(&late_sse.next().await.unwrap().1) {}
    sse.check("SSE", EVENTS);
    assert!(!sse.resyncs.is_empty(), "the SSE client got a resync");

    // Still live after the resync.
    http.event("s", numbered("s", EVENTS, "again")).await;
    assert_eq!(
        late_ws.next().await.unwrap()["data"]["tool_input"]["n"],
        EVENTS
    );
    assert_eq!(
        late_sse.next().await.unwrap().1["data"]["tool_input"]["n"],
        EVENTS
    );
    drop(stalled);
}

/// A filtered feed (a runner's, `ao-wait`'s) that falls behind is told only
/// what it missed of its own sessions: traffic about other sessions, which
/// it would never have been sent, does not count.
#[tokio::test]
async fn a_lagging_filtered_feed_counts_only_its_own_sessions_as_missed() {
    // A backlog of 8 messages, so that a few small events about another
    // session push the filtered client's own out of it.
    let sm = SessionManager::start_with_args(&["--live-buffer", "8"]);
    let http = sm.http();
    http.create("a", "a", None).await;
    http.create("other", "other", None).await;
    let mut feed = SseClient::connect_to(&sm.url, "/sse?session_id=a&runner=1").await;

    // 12 MB about `a` fill the socket of the feed, which does not read...
    const OWN: u64 = 60;
    let output = "x".repeat(EVENT_BYTES);
    for n in 0..OWN {
        http.event("a", numbered("a", n, &output)).await;
    }
    // ...then a burst about another session passes it by.
    for n in 0..100 {
        http.event("other", numbered("other", n, "small")).await;
    }
    http.event("a", assistant("a", "marker")).await;

    let (name, init) = feed.next().await.unwrap();
    assert_eq!(name, "init");
    assert_eq!(init["sessions"][0]["session_id"], "a");
    let mut caught = Caught::new();
    while caught.take(&feed.next().await.unwrap().1) {}
    caught.check("the filtered feed", OWN);

    // It still carries what concerns it.
    let (status, _) = http.post("/sessions/a/stop", json!({})).await;
    assert_eq!(status, 202);
    assert_eq!(feed.next().await.unwrap().0, "stop_requested");
}

/// `ao-wait` and `ao-stop` follow a filtered feed until a run ends. When the
/// server dropped messages for it (`resync`), among them the end of the
/// run, the feed reopens, and its fresh `init` shows the run ended.
#[tokio::test]
async fn a_feed_that_missed_the_end_of_a_run_learns_it_from_a_fresh_init() {
    let sm = SessionManager::start_with_args(&["--live-buffer", "8"]);
    let http = sm.http();
    http.create("w", "w", None).await;
    let mut feed = Feed::open(&sm.client(), &["w".to_owned()], false)
        .await
        .unwrap();
    // The feed is not read while the run fills its socket, ends, and goes
    // on sending past the end (more than the backlog of 8 holds).
    let output = "x".repeat(EVENT_BYTES);
    for n in 0..60 {
        http.event("w", numbered("w", n, &output)).await;
    }
    http.event("w", event("w", "run_completed")).await;
    for n in 60..80 {
        http.event("w", numbered("w", n, "small")).await;
    }
    let pending: HashSet<String> = ["w".to_owned()].into();
    let ended = tokio::time::timeout(Duration::from_secs(20), feed.next_end(&pending)).await;
    assert_eq!(
        ended.ok(),
        Some(Some("w".to_owned())),
        "the feed learnt that the run of w ended"
    );
}
