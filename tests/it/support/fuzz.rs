//! Random and malformed HTTP requests for the fuzz test: a small seeded
//! generator (reproducible from its seed) and a raw TCP sender, so that
//! broken framing reaches the server too, not only what a client library
//! would produce.

use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::http::url_encode;

/// xorshift64*: tiny, fast, deterministic.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed.max(1))
    }

    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }

    pub fn chance(&mut self, percent: usize) -> bool {
        self.below(100) < percent
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    fn string(&mut self) -> String {
        let pieces = [
            "s0",
            "s1",
            "x",
            "",
            " ",
            "é",
            "日本",
            "\"",
            "\\",
            "%",
            "/",
            "..",
            "\u{0}",
            "\n",
            "a".repeat(300).leak(),
        ];
        (0..1 + self.below(3))
            .map(|_| *self.pick(&pieces))
            .collect()
    }

    fn bytes(&mut self, n: usize) -> Vec<u8> {
        (0..n).map(|_| self.next() as u8).collect()
    }
}

/// One generated request.
pub struct Request {
    pub bytes: Vec<u8>,
    summary: String,
}

impl Request {
    /// What the request was, for a failure message.
    pub fn describe(&self) -> &str {
        &self.summary
    }
}

fn random_json(rng: &mut Rng, depth: usize) -> Value {
    match rng.below(if depth > 4 { 5 } else { 8 }) {
        0 => Value::Null,
        1 => json!(rng.chance(50)),
        2 => json!(rng.next() as i64),
        3 => json!(rng.next() as f64 / 3.0),
        4 => json!(rng.string()),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| random_json(rng, depth + 1))
                .collect(),
        ),
        _ => {
            let keys = [
                "event_type",
                "session_id",
                "session_name",
                "timestamp",
                "role",
                "content",
                "tool_name",
                "id",
                "event_id",
                "x",
            ];
            Value::Object(
                (0..rng.below(5))
                    .map(|_| (rng.pick(&keys).to_string(), random_json(rng, depth + 1)))
                    .collect(),
            )
        }
    }
}

fn valid_event(rng: &mut Rng, id: &str) -> Value {
    let types = [
        "run_start",
        "run_completed",
        "pre_tool",
        "post_tool",
        "message",
        "session_start",
        "session_stop",
        "bogus",
    ];
    let mut e = json!({
        "event_type": rng.pick(&types),
        "session_id": id,
        "session_name": "n",
        "timestamp": "2024-01-01T00:00:00Z",
        "role": rng.pick(&["user", "assistant", "system", "nobody"]),
        "content": [{"type": "text", "text": rng.string()}],
        "tool_name": "Bash",
        "tool_input": random_json(rng, 2),
    });
    if rng.chance(30) {
        e["event_id"] = json!(if rng.chance(70) {
            uuid::Uuid::new_v4().to_string()
        } else {
            rng.string()
        });
    }
    for _ in 0..rng.below(3) {
        let key = rng
            .pick(&[
                "event_type",
                "session_id",
                "session_name",
                "timestamp",
                "role",
                "content",
                "exit_code",
                "reason",
                "id",
            ])
            .to_string();
        if rng.chance(50) {
            e.as_object_mut().unwrap().remove(&key);
        } else {
            e[key] = random_json(rng, 3);
        }
    }
    e
}

fn deep(depth: usize) -> String {
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}

/// A random request, valid-looking or broken.
pub fn request(rng: &mut Rng) -> Request {
    let ids = ["s0", "s1", "s2", "s3", "s4", "nope", ""];
    let id = if rng.chance(80) {
        rng.pick(&ids).to_string()
    } else {
        rng.string()
    };
    let enc = url_encode(&id);
    let path = match rng.below(16) {
        0 => "/".to_owned(),
        1 => "/health".to_owned(),
        2 => "/sessions".to_owned(),
        3 => format!("/sessions/{enc}"),
        4 => format!("/sessions/{enc}/status"),
        5 => format!("/sessions/{enc}/result"),
        6 | 7 => format!("/sessions/{enc}/events"),
        8 => format!("/sessions/{enc}/metadata"),
        9 => "/events".to_owned(),
        10 => format!("/events/{enc}"),
        11 => format!(
            "/sessions?name={}&project_dir={}",
            url_encode(&rng.string()),
            url_encode(&rng.string())
        ),
        12 => format!(
            "/sessions/{enc}/events?after={}&limit={}",
            rng.pick(&["0", "-1", "abc", "99999999999999999999"]),
            rng.pick(&["0", "1", "-5", "x", "4294967296"])
        ),
        13 => format!("/{}", "%FF%00%2F..".repeat(rng.below(50))),
        14 => format!("/sessions/{}", "a".repeat(rng.below(9000))),
        _ => format!("/ws{}", if rng.chance(50) { "" } else { "?x=1" }),
    };
    let method = if rng.chance(55) {
        "POST".to_owned()
    } else {
        rng.pick(&[
            "GET", "GET", "PATCH", "PATCH", "DELETE", "PUT", "HEAD", "OPTIONS", "TRACE", "G ET",
            "BREW",
        ])
        .to_string()
    };
    let body: Vec<u8> = match rng.below(10) {
        0 => Vec::new(),
        1 => {
            let n = rng.below(200);
            rng.bytes(n)
        }
        2 => random_json(rng, 0).to_string().into_bytes(),
        3 => deep(rng.below(3000)).into_bytes(),
        4 => json!({"session_id": id, "session_name": rng.string(), "project_dir": rng.string(), "created_at": rng.string()}).to_string().into_bytes(),
        5 => format!("{{\"tool_output\":\"{}\"}}", "x".repeat(if rng.chance(40) { 1_100_000 } else { 10 })).into_bytes(),
        _ => valid_event(rng, &id).to_string().into_bytes(),
    };
    let content_type = *rng.pick(&[
        "application/json",
        "application/json",
        "text/plain",
        "application/x-www-form-urlencoded",
        "\u{7f}bad",
        "",
    ]);
    // Mostly hosts and origins the guard lets in, so that requests reach the routes.
    let host = *rng.pick(&["127.0.0.1", "127.0.0.1", "localhost:8765", "[::1]", "fuzz"]);
    let mut head = format!("{method} {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n");
    if rng.chance(10) {
        let origin = *rng.pick(&["http://evil.example", "null", "http://127.0.0.1"]);
        head.push_str(&format!("Origin: {origin}\r\n"));
    }
    if !content_type.is_empty() {
        head.push_str(&format!("Content-Type: {content_type}\r\n"));
    }
    let declared = match rng.below(20) {
        0 => body.len().saturating_sub(1 + rng.below(5)),
        1 => usize::MAX / 2,
        _ => body.len(),
    };
    if !(body.is_empty() && rng.chance(50)) {
        head.push_str(&format!("Content-Length: {declared}\r\n"));
    }
    if rng.chance(5) {
        head.push_str("X-Junk: \u{1}\u{2}\r\n");
    }
    if rng.chance(3) {
        head = format!("{method} {path}\r\n"); // no version, no headers
    }
    head.push_str("\r\n");
    let mut bytes = head.into_bytes();
    bytes.extend_from_slice(&body);
    Request {
        summary: format!(
            "{method} {path} ({} body bytes, declared {declared})",
            body.len()
        ),
        bytes,
    }
}

/// Sends raw bytes; answers the status code of the response, or `None`
/// when the server closed the connection without one (or took too long,
/// e.g. waiting for a body that was declared but never sent).
pub async fn send_raw(addr: &str, bytes: &[u8]) -> Option<u16> {
    let mut stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
    // The server may answer and close before reading all of a large body.
    let _ = stream.write_all(bytes).await;
    let mut buf = Vec::new();
    let read = tokio::time::timeout(Duration::from_millis(250), async {
        let mut chunk = [0u8; 4096];
        while buf.len() < 64 {
            match stream.read(&mut chunk).await {
                Ok(0) | Err(_) => break,
                Ok(n) => buf.extend_from_slice(&chunk[..n]),
            }
        }
    })
    .await;
    let _ = read;
    let text = String::from_utf8_lossy(&buf);
    let status = text.strip_prefix("HTTP/1.1 ")?.get(..3)?;
    status.parse().ok()
}
