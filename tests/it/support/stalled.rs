//! A live client that never reads, on a raw socket. The session-manager
//! benchmark includes this file too (`#[path]`), to measure the same client.

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// How long to wait for the server's `init`.
const INIT_WAIT: Duration = Duration::from_secs(20);

/// Sends its request, waits until the server has begun its `init` (so it
/// is subscribed), and reads no more.
pub struct StalledClient {
    _socket: TcpStream,
}

impl StalledClient {
    /// `n` of them, every other one WebSocket and SSE (`/sse`).
    pub async fn many(base: &str, n: usize) -> Vec<Self> {
        let mut clients = Vec::with_capacity(n);
        for i in 0..n {
            clients.push(if i % 2 == 0 {
                Self::ws(base).await
            } else {
                Self::sse(base, "/sse").await
            });
        }
        clients
    }

    /// A WebSocket client of `/ws` on `base` (`http://host:port`).
    pub async fn ws(base: &str) -> Self {
        let request = "GET /ws HTTP/1.1\r\nHost: {host}\r\nConnection: Upgrade\r\n\
Upgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\
Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n";
        Self::connect(base, request, br#"{"type":"init""#).await
    }

    /// An SSE client of `path` (`/sse`, with a query or not).
    pub async fn sse(base: &str, path: &str) -> Self {
        let request = format!("GET {path} HTTP/1.1\r\nHost: {{host}}\r\n\r\n");
        Self::connect(base, &request, b"event: init").await
    }

    async fn connect(base: &str, request: &str, until: &[u8]) -> Self {
        let host = base.trim_start_matches("http://");
        let mut socket = TcpStream::connect(host).await.expect("connect");
        socket
            .write_all(request.replace("{host}", host).as_bytes())
            .await
            .expect("send the request");
        let mut seen = Vec::new();
        let mut buf = [0u8; 512];
        while !seen.windows(until.len()).any(|w| w == until) {
            let n = tokio::time::timeout(INIT_WAIT, socket.read(&mut buf))
                .await
                .expect("no init in time")
                .expect("read");
            assert!(
                n > 0,
                "closed before the init: {}",
                String::from_utf8_lossy(&seen)
            );
            seen.extend_from_slice(&buf[..n]);
        }
        StalledClient { _socket: socket }
    }
}
