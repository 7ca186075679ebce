//! Live updates: every committed change is published once to a broadcast
//! channel, and each `/ws` or `/sse` client reads it at its own pace. A client
//! that falls more than the channel's capacity behind is sent a `resync`
//! message with the count it missed, so it is never silently skipped, and it
//! never slows the writer or other clients.

use std::convert::Infallible;
use std::sync::Arc;

use axum::extract::State;
use axum::extract::ws::{Message, WebSocket, WebSocketUpgrade};
use axum::response::sse::{Event as SseEvent, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use futures_util::{Stream, StreamExt};
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::ApiError;
use crate::wire::{LiveMessage, Session};

/// One broadcast message, serialized once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    kind: &'static str,
    json: Arc<str>,
}

#[derive(Serialize)]
struct SessionMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session: &'a Session,
}

#[derive(Serialize)]
struct SessionsMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    sessions: &'a [Session],
}

#[derive(Serialize)]
struct DeletedMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session_id: &'a str,
}

#[derive(Serialize)]
struct ResyncMessage {
    #[serde(rename = "type")]
    kind: &'static str,
    missed: u64,
}

fn frame(kind: &'static str, body: &impl Serialize) -> Frame {
    let json = serde_json::to_string(body).unwrap_or_else(|e| {
        tracing::error!("cannot serialize a {kind} message: {e}");
        format!(r#"{{"type":"{kind}"}}"#)
    });
    Frame {
        kind,
        json: json.into(),
    }
}

impl Frame {
    /// `{"type":"session_created","session":...}`
    pub fn session_created(session: &Session) -> Frame {
        let kind = "session_created";
        frame(kind, &SessionMessage { kind, session })
    }

    /// `{"type":"session_updated","session":...}`
    pub fn session_updated(session: &Session) -> Frame {
        let kind = "session_updated";
        frame(kind, &SessionMessage { kind, session })
    }

    /// `{"type":"session_deleted","session_id":...}`
    pub fn session_deleted(session_id: &str) -> Frame {
        let kind = "session_deleted";
        frame(kind, &DeletedMessage { kind, session_id })
    }

    /// `{"type":"event","data":...}`, from the stored event's JSON.
    pub fn event(event_json: &str) -> Frame {
        Frame {
            kind: "event",
            json: format!(r#"{{"type":"event","data":{event_json}}}"#).into(),
        }
    }

    /// `{"type":"init","sessions":[...]}`, the first message of a connection.
    pub fn init(sessions: &[Session]) -> Frame {
        let kind = "init";
        frame(kind, &SessionsMessage { kind, sessions })
    }

    /// `{"type":"resync","missed":N}`
    pub fn resync(missed: u64) -> Frame {
        let kind = "resync";
        frame(kind, &ResyncMessage { kind, missed })
    }

    /// The message type, used as the SSE event name.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// The message as JSON text.
    pub fn json(&self) -> &str {
        &self.json
    }
}

/// The fan-out point: the writer publishes, every live client subscribes.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
}

impl Hub {
    /// A hub whose clients may fall `capacity` messages behind before resync.
    pub fn new(capacity: usize) -> Self {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
        }
    }

    /// Sends a frame to every connected client (none connected is fine).
    pub fn publish(&self, frame: Frame) {
        let _ = self.tx.send(frame);
    }

    fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }
}

/// Subscribes first and reads the snapshot second, so that no change made in
/// between is missed (it may be seen twice, which updates are safe against).
async fn subscribe_with_snapshot(
    state: &AppState,
) -> Result<(Frame, broadcast::Receiver<Frame>), ApiError> {
    let rx = state.hub.subscribe();
    let sessions = state.store.list_sessions(None, None).await?;
    Ok((Frame::init(&sessions), rx))
}

/// Waits for the next frame for this client, or `None` at shutdown.
async fn next_frame(
    rx: &mut broadcast::Receiver<Frame>,
    shutdown: &CancellationToken,
) -> Option<Frame> {
    tokio::select! {
        _ = shutdown.cancelled() => None,
        received = rx.recv() => match received {
            Ok(frame) => Some(frame),
            Err(RecvError::Lagged(missed)) => Some(Frame::resync(missed)),
            Err(RecvError::Closed) => None,
        },
    }
}

/// `GET /ws`: a WebSocket that first sends `init` (every session), then
/// every broadcast as one JSON text message.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses((status = 101, description = "Switching to the WebSocket protocol; messages are LiveMessage objects", body = LiveMessage)))]
pub async fn ws(State(state): State<AppState>, upgrade: WebSocketUpgrade) -> Response {
    upgrade.on_upgrade(move |socket| serve_socket(socket, state))
}

async fn serve_socket(mut socket: WebSocket, state: AppState) {
    let Ok((init, mut rx)) = subscribe_with_snapshot(&state).await else {
        let _ = socket.send(Message::Close(None)).await;
        return;
    };
    if socket.send(Message::text(init.json())).await.is_err() {
        return;
    }
    loop {
        tokio::select! {
            frame = next_frame(&mut rx, &state.shutdown) => {
                let Some(frame) = frame else { break };
                if socket.send(Message::text(frame.json())).await.is_err() {
                    return;
                }
            }
            incoming = socket.recv() => match incoming {
                Some(Ok(Message::Close(_))) | Some(Err(_)) | None => return,
                Some(Ok(_)) => {}
            },
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// `GET /sse`: the same messages as server-sent events, the message type
/// as the event name.
#[utoipa::path(get, path = "/sse", tag = "live",
    responses((status = 200, description = "An event stream of LiveMessage objects, the type as the event name", content_type = "text/event-stream", body = LiveMessage)))]
pub async fn sse(State(state): State<AppState>) -> Result<impl IntoResponse, ApiError> {
    let (init, rx) = subscribe_with_snapshot(&state).await?;
    let stream = sse_stream(init, rx, state.shutdown.clone());
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

fn sse_stream(
    init: Frame,
    rx: broadcast::Receiver<Frame>,
    shutdown: CancellationToken,
) -> impl Stream<Item = Result<SseEvent, Infallible>> {
    let first = futures_util::stream::once(async move { init });
    let rest = futures_util::stream::unfold((rx, shutdown), |(mut rx, shutdown)| async move {
        let frame = next_frame(&mut rx, &shutdown).await?;
        Some((frame, (rx, shutdown)))
    });
    first
        .chain(rest)
        .map(|frame| Ok(SseEvent::default().event(frame.kind()).data(frame.json())))
}
