//! A webhook receiver on loopback, as Slack, Discord or ntfy would be for
//! the session manager's notifications: it records every request and
//! answers each with the next status of a script (then 200), or never
//! answers. Runs on its own thread; stops when dropped.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, Uri};
use serde_json::Value;

/// One request the receiver got.
#[derive(Debug, Clone)]
pub struct Received {
    /// Path and query, as sent.
    pub target: String,
    pub content_type: Option<String>,
    pub body: Value,
}

#[derive(Default)]
struct Data {
    received: Vec<Received>,
    statuses: VecDeque<u16>,
    hang: bool,
}

type Shared = Arc<Mutex<Data>>;

pub struct Webhook {
    /// `http://127.0.0.1:PORT`
    pub base: String,
    data: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Webhook {
    /// A receiver that answers 200.
    pub fn start() -> Self {
        Self::start_with(Vec::new(), false)
    }

    /// A receiver answering `statuses` in turn, then 200.
    pub fn answering(statuses: &[u16]) -> Self {
        Self::start_with(statuses.to_vec(), false)
    }

    /// A receiver that records each request and never answers it.
    pub fn hanging() -> Self {
        Self::start_with(Vec::new(), true)
    }

    fn start_with(statuses: Vec<u16>, hang: bool) -> Self {
        let data: Shared = Arc::new(Mutex::new(Data {
            statuses: statuses.into(),
            hang,
            ..Data::default()
        }));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&data));
        let (addr, tx) = super::serve_on_thread(app);
        Webhook {
            base: format!("http://{addr}"),
            data,
            shutdown: Some(tx),
        }
    }

    /// Everything received so far.
    pub fn received(&self) -> Vec<Received> {
        self.data.lock().expect("lock").received.clone()
    }

    /// Waits (at most `limit`) until `n` requests have come.
    pub async fn wait_for(&self, n: usize, limit: Duration) -> Vec<Received> {
        let deadline = Instant::now() + limit;
        loop {
            let received = self.received();
            if received.len() >= n || Instant::now() > deadline {
                return received;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for Webhook {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

async fn handle(
    State(data): State<Shared>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> StatusCode {
    let (status, hang) = {
        let mut data = data.lock().expect("lock");
        data.received.push(Received {
            target: uri
                .path_and_query()
                .map(|p| p.as_str().to_owned())
                .unwrap_or_default(),
            content_type: headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        });
        (data.statuses.pop_front().unwrap_or(200), data.hang)
    };
    if hang {
        std::future::pending::<()>().await;
    }
    StatusCode::from_u16(status).unwrap_or(StatusCode::OK)
}
