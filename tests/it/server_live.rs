//! `/ws` and `/sse`: the init snapshot, then every broadcast, to many clients
//! at once; a client that falls behind is told so.

use serde_json::{Value, json};

use crate::support::SessionManager;
use crate::support::http::{assistant, event, numbered};
use crate::support::live::{SseClient, WsClient, keep_up};

fn kinds(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["type"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn every_change_reaches_every_ws_and_sse_client_in_order() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("before", "early", None).await;

    let mut ws = Vec::new();
    let mut sse = Vec::new();
    for _ in 0..3 {
        ws.push(WsClient::connect(&sm.url).await);
        sse.push(SseClient::connect(&sm.url).await);
    }
    for client in &mut ws {
        let init = client.next().await.unwrap();
        assert_eq!(init["type"], "init");
        assert_eq!(init["sessions"][0]["session_id"], "before");
    }
    for client in &mut sse {
        let (name, init) = client.next().await.unwrap();
        assert_eq!((name.as_str(), &init["type"]), ("init", &json!("init")));
        assert_eq!(init["sessions"].as_array().unwrap().len(), 1);
    }

    http.create("s", "n", None).await;
    http.event("s", assistant("s", "hello")).await;
    http.event("s", event("s", "run_completed")).await;
    http.patch("/sessions/s", json!({"agent_name": "a"})).await;
    http.delete("/sessions/s").await;
    let expected = [
        "session_created",
        "event",
        "event",
        "session_updated",
        "session_updated",
        "session_deleted",
    ];

    for client in &mut ws {
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            got.push(client.next().await.unwrap());
        }
        assert_eq!(kinds(&got), expected);
        assert_eq!(got[0]["session"]["session_id"], "s");
        assert_eq!(got[1]["data"]["content"][0]["text"], "hello");
        assert!(got[1]["data"]["id"].is_i64(), "events carry their id");
        assert_eq!(got[2]["data"]["event_type"], "run_completed");
        assert_eq!(got[3]["session"]["status"], "finished");
        assert_eq!(got[4]["session"]["agent_name"], "a");
        assert_eq!(got[5]["session_id"], "s");
    }
    for client in &mut sse {
        let mut got = Vec::new();
        for _ in 0..expected.len() {
            let (name, data) = client.next().await.unwrap();
            assert_eq!(data["type"], name.as_str(), "SSE event name is the type");
            got.push(data);
        }
        assert_eq!(kinds(&got), expected);
    }
}

#[tokio::test]
async fn a_duplicate_event_is_not_broadcast_again() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    let mut ws = WsClient::connect(&sm.url).await;
    assert_eq!(ws.next().await.unwrap()["type"], "init");
    let mut e = assistant("s", "once");
    e["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    http.event("s", e.clone()).await;
    http.event("s", e).await;
    http.event("s", assistant("s", "marker")).await;
    let first = ws.next().await.unwrap();
    let second = ws.next().await.unwrap();
    assert_eq!(first["data"]["content"][0]["text"], "once");
    assert_eq!(second["data"]["content"][0]["text"], "marker");
}

/// A client that stops reading falls behind; it must be told (`resync`)
/// rather than silently skipped, and a client that keeps up misses nothing.
#[tokio::test]
async fn a_stalled_client_gets_resync_and_others_miss_nothing() {
    let sm = SessionManager::start_with_args(&["--live-buffer", "8"]);
    let http = sm.http();
    http.create("s", "n", None).await;

    let mut stalled_ws = WsClient::connect(&sm.url).await;
    let mut stalled_sse = SseClient::connect(&sm.url).await;

    // The poster waits for the fast client to see each event, so that it
    // keeps up by construction.
    let mut fast = WsClient::connect(&sm.url).await;
    assert_eq!(fast.next().await.unwrap()["type"], "init");
    let mut seen = keep_up(fast, |m| m["data"]["tool_input"]["n"] == 119);

    // 120 events of ~200 KB: far more than the socket buffers plus 8 slots.
    let payload = "x".repeat(200_000);
    for n in 0..120 {
        http.event("s", numbered("s", n, &payload)).await;
        let message = seen.recv().await.unwrap();
        assert_eq!(
            (&message["type"], &message["data"]["tool_input"]["n"]),
            (&json!("event"), &json!(n)),
            "the fast client saw event {n}, and no resync"
        );
    }

    // Now the stalled clients read: somewhere in their stream is a resync.
    http.event("s", assistant("s", "after")).await;
    let mut ws_missed = 0;
    let mut ws_events = 0;
    assert_eq!(stalled_ws.next().await.unwrap()["type"], "init");
    loop {
        let msg = stalled_ws.next().await.unwrap();
        match msg["type"].as_str().unwrap() {
            "resync" => ws_missed += msg["missed"].as_u64().unwrap(),
            "event" if msg["data"]["event_type"] == "message" => break,
            "event" => ws_events += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        ws_missed > 0,
        "the stalled WebSocket client was told it missed messages"
    );
    assert_eq!(
        ws_events + ws_missed,
        120,
        "every message is either delivered or counted"
    );

    let mut sse_missed = 0;
    let mut sse_events = 0;
    assert_eq!(stalled_sse.next().await.unwrap().0, "init");
    loop {
        let (name, msg) = stalled_sse.next().await.unwrap();
        match name.as_str() {
            "resync" => sse_missed += msg["missed"].as_u64().unwrap(),
            "event" if msg["data"]["event_type"] == "message" => break,
            "event" => sse_events += 1,
            other => panic!("unexpected {other}"),
        }
    }
    assert!(
        sse_missed > 0,
        "the stalled SSE client was told it missed messages"
    );
    assert_eq!(sse_events + sse_missed, 120);
}

/// A long init (many sessions, names of multi-byte characters) goes out in
/// WebSocket fragments; both feeds must still deliver it whole and equal to
/// `GET /sessions`.
#[tokio::test]
async fn a_long_init_arrives_whole_on_both_feeds() {
    let sm = SessionManager::start();
    let http = sm.http();
    for i in 0..300 {
        let name = format!("セッション-{i}-{}", "é".repeat(i % 7));
        http.create(&format!("s{i}"), &name, Some("/tmp/プロジェクト"))
            .await;
    }
    let (_, listed) = http.get("/sessions").await;
    assert!(
        listed.to_string().len() > 3 * 16 * 1024,
        "long enough for several 16 KiB fragments"
    );

    let mut ws = WsClient::connect(&sm.url).await;
    let init = ws.next().await.unwrap();
    assert_eq!(init["type"], "init");
    assert_eq!(init["sessions"], listed["sessions"]);
    assert_eq!(init["sessions"][0]["session_id"], "s299", "newest first");

    let mut sse = SseClient::connect(&sm.url).await;
    let (name, init) = sse.next().await.unwrap();
    assert_eq!(name, "init");
    assert_eq!(init["sessions"], listed["sessions"]);

    // Live messages follow the fragmented init as usual.
    http.delete("/sessions/s0").await;
    assert_eq!(ws.next().await.unwrap()["type"], "session_deleted");
    assert_eq!(sse.next().await.unwrap().0, "session_deleted");
}

/// The session list is shared between requests while nothing changes; every
/// kind of change must show in the very next `GET /sessions` and init.
#[tokio::test]
async fn the_session_list_shows_every_change_at_once() {
    let sm = SessionManager::start();
    let http = sm.http();
    let list = || async { http.get("/sessions").await.1["sessions"].clone() };
    assert_eq!(list().await, json!([]));
    http.create("a", "first", None).await;
    assert_eq!(list().await[0]["session_name"], "first");
    http.patch("/sessions/a", json!({"session_name": "renamed"}))
        .await;
    assert_eq!(list().await[0]["session_name"], "renamed");
    http.event("a", event("a", "run_completed")).await;
    assert_eq!(list().await[0]["status"], "finished");
    http.event("a", event("a", "run_start")).await;
    assert_eq!(list().await[0]["status"], "running");
    http.event("a", assistant("a", "no change to the session"))
        .await;
    let mut legacy = event("b", "session_start");
    legacy["session_name"] = "legacy".into();
    assert_eq!(http.post("/events", legacy).await.0, 200);
    assert_eq!(list().await[0]["session_id"], "b", "created by an event");
    let mut ws = WsClient::connect(&sm.url).await;
    assert_eq!(ws.next().await.unwrap()["sessions"], list().await);
    http.delete("/sessions/a").await;
    assert_eq!(list().await.as_array().unwrap().len(), 1);
    let mut ws = WsClient::connect(&sm.url).await;
    assert_eq!(ws.next().await.unwrap()["sessions"], list().await);
}

#[tokio::test]
async fn a_filtered_feed_carries_only_its_sessions_and_a_short_init() {
    let sm = SessionManager::start();
    let http = sm.http();
    for id in ["a", "b", "c"] {
        let (status, _) = http
            .post("/sessions", json!({"session_id": id, "session_name": id}))
            .await;
        assert_eq!(status, 200);
    }
    let mut feed = SseClient::connect_to(&sm.url, "/sse?session_id=a&session_id=c").await;
    let (name, init) = feed.next().await.unwrap();
    assert_eq!(name, "init");
    let mut listed: Vec<&str> = init["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap())
        .collect();
    listed.sort_unstable();
    assert_eq!(listed, ["a", "c"], "only the sessions followed");
    for id in ["b", "a", "b", "c"] {
        let event = json!({"event_type": "run_start", "session_id": id, "session_name": id, "timestamp": "2026-01-01T00:00:00Z"});
        let (status, _) = http.post(&format!("/sessions/{id}/events"), event).await;
        assert_eq!(status, 200);
    }
    // `a` and `c` were created running, so run_start changes no status: events only.
    let mut seen = Vec::new();
    while seen.len() < 2 {
        let (name, message) = feed.next().await.unwrap();
        assert_eq!(name, "event");
        seen.push(message["data"]["session_id"].as_str().unwrap().to_owned());
    }
    assert_eq!(seen, ["a", "c"]);
    // A stop request reaches the followers of that session only.
    let mut runner = SseClient::connect_to(&sm.url, "/sse?session_id=c&runner=1").await;
    runner.next().await.unwrap();
    let (status, answer) = http.post("/sessions/c/stop", json!({})).await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(
        answer,
        json!({"ok": true, "delivered": true, "closed": false})
    );
    let (name, message) = runner.next().await.unwrap();
    assert_eq!(
        (name.as_str(), &message),
        (
            "stop_requested",
            &json!({"type": "stop_requested", "session_id": "c"})
        )
    );
    let (name, _) = feed.next().await.unwrap();
    assert_eq!(name, "stop_requested");
    let (status, answer) = http.get("/sse?session_id=a%2Fb").await;
    assert_eq!(status, 400, "{answer}");
    let (status, _) = http.get("/sse?runner=1").await;
    assert_eq!(status, 400);
}
