//! Live-feed clients for tests: a WebSocket and an SSE reader that hand out
//! one JSON message at a time.

use std::time::Duration;

use futures_util::StreamExt;
use serde_json::Value;
use tokio::sync::mpsc;
use tokio_tungstenite::tungstenite::Message;

/// How long a test waits for one live message before failing.
const WAIT: Duration = Duration::from_secs(20);

pub struct WsClient {
    stream: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
}

impl WsClient {
    pub async fn connect(base: &str) -> Self {
        let url = format!("{}/ws", base.replacen("http://", "ws://", 1));
        let (stream, _) = tokio_tungstenite::connect_async(url)
            .await
            .expect("ws connect");
        WsClient { stream }
    }

    /// The next JSON message; `None` when the server closed the connection.
    pub async fn next(&mut self) -> Option<Value> {
        loop {
            let msg = tokio::time::timeout(WAIT, self.stream.next())
                .await
                .expect("no WebSocket message in time");
            match msg {
                Some(Ok(Message::Text(text))) => {
                    return Some(serde_json::from_str(&text).expect("JSON message"));
                }
                Some(Ok(Message::Close(_))) | None | Some(Err(_)) => return None,
                Some(Ok(_)) => {}
            }
        }
    }
}

pub struct SseClient {
    response: reqwest::Response,
    /// Bytes, not text: a read may end inside a multi-byte character.
    buffer: Vec<u8>,
}

impl SseClient {
    pub async fn connect(base: &str) -> Self {
        Self::connect_to(base, "/sse").await
    }

    /// Connects to `path` (`/sse` with a query, for instance).
    pub async fn connect_to(base: &str, path: &str) -> Self {
        let response = reqwest::Client::builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(format!("{base}{path}"))
            .send()
            .await
            .expect("sse connect");
        assert_eq!(response.status(), 200);
        assert!(
            response.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/event-stream")
        );
        SseClient {
            response,
            buffer: Vec::new(),
        }
    }

    /// The next event as (SSE event name, JSON data); `None` at end of stream.
    pub async fn next(&mut self) -> Option<(String, Value)> {
        loop {
            if let Some(end) = self.buffer.windows(2).position(|w| w == b"\n\n") {
                let block: Vec<u8> = self.buffer.drain(..end + 2).collect();
                let block = String::from_utf8(block).expect("UTF-8 event");
                let mut name = String::from("message");
                let mut data = String::new();
                for line in block.lines() {
                    if let Some(v) = line.strip_prefix("event:") {
                        name = v.trim().to_owned();
                    } else if let Some(v) = line.strip_prefix("data:") {
                        data.push_str(v.strip_prefix(' ').unwrap_or(v));
                    }
                }
                if data.is_empty() {
                    continue; // a keep-alive comment
                }
                return Some((name, serde_json::from_str(&data).expect("JSON data")));
            }
            let chunk = tokio::time::timeout(WAIT, self.response.chunk())
                .await
                .expect("no SSE data in time")
                .ok()??;
            self.buffer.extend_from_slice(&chunk);
        }
    }
}

/// A client that keeps up: a task of its own reads `client` and hands
/// over each message, so that a test can wait for each one before sending
/// the next. It stops after the message that `last` accepts.
pub fn keep_up(
    mut client: WsClient,
    last: impl Fn(&Value) -> bool + Send + 'static,
) -> mpsc::UnboundedReceiver<Value> {
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Some(message) = client.next().await {
            let done = last(&message);
            if tx.send(message).is_err() || done {
                break;
            }
        }
    });
    rx
}
