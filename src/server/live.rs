//! Live updates: every committed change is published once to a broadcast
//! channel, and each `/ws` or `/sse` client reads it at its own pace. A client
//! that falls more than the channel's capacity behind is sent a `resync`
//! message with the count it missed, so it is never silently skipped, and it
//! never slows the writer or other clients.
//!
//! Each message is encoded once for all clients (its WebSocket text and its
//! SSE block are shared, not copied per client), and a client that wakes up
//! to several waiting messages gets them in one write.

use std::convert::Infallible;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio::time::{Instant, Sleep};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Message, Utf8Bytes};
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::ApiError;
use crate::wire::{LiveMessage, Session};

/// Messages already waiting that a client is sent in one write, at most.
const MAX_COALESCED: usize = 64;
/// A long WebSocket message (the init of a big database) goes out in
/// fragments of about this size, so that no connection keeps a buffer the
/// size of the whole message.
const WS_FRAGMENT: usize = 16 * 1024;
/// An idle SSE stream gets a comment this often, so that proxies keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// One broadcast message, encoded once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JSON text, sent as is on WebSockets.
    text: Utf8Bytes,
    /// `event: TYPE\ndata: JSON\n\n`, sent as is on SSE streams.
    sse: Bytes,
    /// Whether it announces a change to a session (as opposed to an event).
    changes_sessions: bool,
}

#[derive(Serialize)]
struct SessionMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session: &'a Session,
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

fn to_json(kind: &'static str, body: &impl Serialize) -> String {
    serde_json::to_string(body).unwrap_or_else(|e| {
        tracing::error!("cannot serialize a {kind} message: {e}");
        format!(r#"{{"type":"{kind}"}}"#)
    })
}

/// Appends `json` as the data of an SSE event named `kind`. Compact JSON
/// has no line breaks; should some appear, each line gets its own `data:`.
fn push_sse(out: &mut Vec<u8>, kind: &str, json: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(kind.as_bytes());
    out.push(b'\n');
    for line in json.lines() {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
}

impl Frame {
    fn new(kind: &'static str, json: String) -> Frame {
        let mut sse = Vec::with_capacity(json.len() + kind.len() + 18);
        push_sse(&mut sse, kind, &json);
        Frame {
            text: json.into(),
            sse: sse.into(),
            changes_sessions: !matches!(kind, "event" | "resync"),
        }
    }

    /// `{"type":"session_created","session":...}`
    pub fn session_created(session: &Session) -> Frame {
        let kind = "session_created";
        Frame::new(kind, to_json(kind, &SessionMessage { kind, session }))
    }

    /// `{"type":"session_updated","session":...}`
    pub fn session_updated(session: &Session) -> Frame {
        let kind = "session_updated";
        Frame::new(kind, to_json(kind, &SessionMessage { kind, session }))
    }

    /// `{"type":"session_deleted","session_id":...}`
    pub fn session_deleted(session_id: &str) -> Frame {
        let kind = "session_deleted";
        Frame::new(kind, to_json(kind, &DeletedMessage { kind, session_id }))
    }

    /// `{"type":"event","data":...}`, from the stored event's JSON.
    pub fn event(event_json: &str) -> Frame {
        Frame::new(
            "event",
            format!(r#"{{"type":"event","data":{event_json}}}"#),
        )
    }

    /// `{"type":"resync","missed":N}`
    pub fn resync(missed: u64) -> Frame {
        let kind = "resync";
        Frame::new(kind, to_json(kind, &ResyncMessage { kind, missed }))
    }
}

/// The start of the first message of a connection,
/// `{"type":"init","sessions":[...]}`; the session list follows.
const INIT_START: &[u8] = br#"{"type":"init","sessions":"#;

/// The fan-out point: the writer publishes, every live client subscribes.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
    /// Frames published so far that change a session.
    session_changes: Arc<AtomicU64>,
}

impl Hub {
    /// A hub whose clients may fall `capacity` messages behind before resync.
    pub fn new(capacity: usize) -> Self {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
            session_changes: Arc::default(),
        }
    }

    /// Sends a committed change to every connected client (none connected
    /// is fine), counting it first if it changes a session.
    pub fn publish(&self, frame: Frame) {
        if frame.changes_sessions {
            self.session_changes.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.tx.send(frame);
    }

    /// How many session changes were published so far.
    pub fn session_changes(&self) -> u64 {
        self.session_changes.load(Ordering::SeqCst)
    }

    fn subscribe(&self) -> broadcast::Receiver<Frame> {
        self.tx.subscribe()
    }
}

/// Subscribes first and reads the session list second, so that no change
/// made in between is missed (it may be seen twice, which updates are safe
/// against). The list is the JSON array of the init message.
async fn subscribe_with_snapshot(
    state: &AppState,
) -> Result<(Bytes, broadcast::Receiver<Frame>), ApiError> {
    let rx = state.hub.subscribe();
    let sessions = state
        .snapshots
        .sessions_json(&state.store, &state.hub)
        .await?;
    Ok((sessions, rx))
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

/// A frame already waiting for this client, if any.
fn waiting_frame(rx: &mut broadcast::Receiver<Frame>) -> Option<Frame> {
    match rx.try_recv() {
        Ok(frame) => Some(frame),
        Err(TryRecvError::Lagged(missed)) => Some(Frame::resync(missed)),
        Err(TryRecvError::Empty | TryRecvError::Closed) => None,
    }
}

/// `GET /ws`. The upgrade is done here rather than with axum's
/// `WebSocketUpgrade` to size the connection's buffers (see [`ws_config`])
/// and to send a long init message in fragments: a WebSocket connection
/// keeps a write buffer as large as the largest frame it ever sent.
#[utoipa::path(get, path = "/ws", tag = "live",
    responses(
        (status = 101, description = "Switching to the WebSocket protocol: `init` (every session), then every broadcast, as LiveMessage objects", body = LiveMessage),
        (status = 400, description = "Not a WebSocket upgrade request", body = crate::wire::ErrorAnswer),
    ))]
pub async fn ws(State(state): State<AppState>, mut request: Request) -> Result<Response, ApiError> {
    let key = websocket_key(request.headers())?;
    let on_upgrade = request
        .extensions_mut()
        .remove::<OnUpgrade>()
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::UPGRADE_REQUIRED,
                "this connection cannot be upgraded to a WebSocket",
            )
        })?;
    tokio::spawn(async move {
        match on_upgrade.await {
            Ok(upgraded) => {
                let io = TokioIo::new(upgraded);
                let socket =
                    WebSocketStream::from_raw_socket(io, Role::Server, Some(ws_config())).await;
                serve_socket(socket, state).await;
            }
            Err(e) => tracing::debug!("WebSocket upgrade failed: {e}"),
        }
    });
    let accept = HeaderValue::from_str(&derive_accept_key(key.as_bytes()))
        .map_err(|_| ApiError::bad_request("bad Sec-WebSocket-Key"))?;
    Ok((
        StatusCode::SWITCHING_PROTOCOLS,
        [
            (header::CONNECTION, HeaderValue::from_static("upgrade")),
            (header::UPGRADE, HeaderValue::from_static("websocket")),
            (header::SEC_WEBSOCKET_ACCEPT, accept),
        ],
    )
        .into_response())
}

/// Checks that a request asks for a WebSocket (RFC 6455, 4.2.1) and returns
/// its `Sec-WebSocket-Key`.
fn websocket_key(headers: &HeaderMap) -> Result<HeaderValue, ApiError> {
    let has_token = |name: header::HeaderName, token: &str| {
        headers.get_all(name).iter().any(|value| {
            value
                .to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    if !has_token(header::CONNECTION, "upgrade") || !has_token(header::UPGRADE, "websocket") {
        return Err(ApiError::bad_request(
            "GET /ws expects a WebSocket upgrade (Connection: upgrade, Upgrade: websocket)",
        ));
    }
    if headers
        .get(header::SEC_WEBSOCKET_VERSION)
        .is_none_or(|v| v.as_bytes() != b"13")
    {
        return Err(ApiError::bad_request(
            "GET /ws expects Sec-WebSocket-Version: 13",
        ));
    }
    headers
        .get(header::SEC_WEBSOCKET_KEY)
        .cloned()
        .ok_or_else(|| ApiError::bad_request("GET /ws expects a Sec-WebSocket-Key header"))
}

/// Clients only ever send closes and pings, so the read side stays small;
/// the default would zero a 128 KiB buffer on every read attempt.
fn ws_config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(4 * 1024)
        .write_buffer_size(WS_FRAGMENT)
        .max_message_size(Some(64 * 1024))
        .max_frame_size(Some(64 * 1024))
}

async fn serve_socket<S>(socket: WebSocketStream<S>, state: AppState)
where
    S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let (mut sink, mut incoming) = socket.split();
    let Ok((sessions, mut rx)) = subscribe_with_snapshot(&state).await else {
        let _ = sink.send(Message::Close(None)).await;
        return;
    };
    if send_init(&mut sink, sessions).await.is_err() {
        return;
    }
    // Reading is only for noticing the client leave (and answering pings).
    let closed = async move {
        while let Some(Ok(message)) = incoming.next().await {
            if message.is_close() {
                break;
            }
        }
    };
    tokio::pin!(closed);
    loop {
        tokio::select! {
            frame = next_frame(&mut rx, &state.shutdown) => {
                let Some(frame) = frame else { break };
                if send_waiting(&mut sink, frame, &mut rx).await.is_err() {
                    return;
                }
            }
            () = &mut closed => return,
        }
    }
    let _ = sink.send(Message::Close(None)).await;
}

/// Sends `first` and whatever else is already waiting, then flushes once.
async fn send_waiting<K>(
    sink: &mut K,
    first: Frame,
    rx: &mut broadcast::Receiver<Frame>,
) -> Result<(), K::Error>
where
    K: Sink<Message> + Unpin,
{
    sink.feed(Message::Text(first.text)).await?;
    for _ in 1..MAX_COALESCED {
        let Some(frame) = waiting_frame(rx) else {
            break;
        };
        sink.feed(Message::Text(frame.text)).await?;
    }
    sink.flush().await
}

/// Sends `{"type":"init","sessions":SESSIONS}`, in fragments of about
/// [`WS_FRAGMENT`] bytes (cut between characters) when it is longer.
async fn send_init<K>(sink: &mut K, sessions: Bytes) -> Result<(), K::Error>
where
    K: Sink<Message> + Unpin,
{
    let total = INIT_START.len() + sessions.len() + 1;
    if total <= WS_FRAGMENT {
        let mut text = Vec::with_capacity(total);
        text.extend_from_slice(INIT_START);
        text.extend_from_slice(&sessions);
        text.push(b'}');
        let text = Utf8Bytes::try_from(text).expect("JSON is UTF-8");
        return sink.send(Message::Text(text)).await;
    }
    let first = WsFrame::message(
        Bytes::from_static(INIT_START),
        OpCode::Data(Data::Text),
        false,
    );
    sink.feed(Message::Frame(first)).await?;
    let mut from = 0;
    while from < sessions.len() {
        let mut to = (from + WS_FRAGMENT).min(sessions.len());
        // A UTF-8 continuation byte is 0b10xx_xxxx; never cut before one.
        while to < sessions.len() && sessions[to] & 0xC0 == 0x80 {
            to -= 1;
        }
        let fragment = WsFrame::message(
            sessions.slice(from..to),
            OpCode::Data(Data::Continue),
            false,
        );
        sink.feed(Message::Frame(fragment)).await?;
        from = to;
    }
    let last = WsFrame::message(Bytes::from_static(b"}"), OpCode::Data(Data::Continue), true);
    sink.feed(Message::Frame(last)).await?;
    sink.flush().await
}

/// `GET /sse`: the same messages as server-sent events, the message type
/// as the event name.
#[utoipa::path(get, path = "/sse", tag = "live",
    responses((status = 200, description = "An event stream of LiveMessage objects, the type as the event name", content_type = "text/event-stream", body = LiveMessage)))]
pub async fn sse(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (sessions, rx) = subscribe_with_snapshot(&state).await?;
    let mut start = b"event: init\ndata: ".to_vec();
    start.extend_from_slice(INIT_START);
    let init = vec![Bytes::from(start), sessions, Bytes::from_static(b"}\n\n")];
    let stream = SseStream {
        init,
        rx,
        shutdown: state.shutdown.clone(),
        keep_alive: Box::pin(tokio::time::sleep(SSE_KEEP_ALIVE)),
        last_sent: Instant::now(),
    };
    let stream = futures_util::stream::unfold(stream, |mut s| async move {
        let chunk = s.next_chunk().await?;
        Some((Ok::<_, Infallible>(chunk), s))
    });
    Ok((
        [
            (header::CONTENT_TYPE, "text/event-stream"),
            (header::CACHE_CONTROL, "no-cache"),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

struct SseStream {
    /// The pieces of the init message, sent first.
    init: Vec<Bytes>,
    rx: broadcast::Receiver<Frame>,
    shutdown: CancellationToken,
    /// Fires at most every [`SSE_KEEP_ALIVE`]; re-armed only when it fires,
    /// so that messages do not each reset a timer.
    keep_alive: std::pin::Pin<Box<Sleep>>,
    last_sent: Instant,
}

impl SseStream {
    /// The next bytes of the stream; `None` ends it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if !self.init.is_empty() {
            self.last_sent = Instant::now();
            return Some(self.init.remove(0));
        }
        loop {
            tokio::select! {
                frame = next_frame(&mut self.rx, &self.shutdown) => {
                    self.last_sent = Instant::now();
                    return Some(self.with_waiting(frame?));
                }
                () = &mut self.keep_alive => {
                    let due = self.last_sent + SSE_KEEP_ALIVE;
                    if Instant::now() >= due {
                        self.keep_alive.as_mut().reset(Instant::now() + SSE_KEEP_ALIVE);
                        self.last_sent = Instant::now();
                        return Some(Bytes::from_static(b":\n\n"));
                    }
                    self.keep_alive.as_mut().reset(due);
                }
            }
        }
    }

    /// `first`, joined by whatever else is already waiting.
    fn with_waiting(&mut self, first: Frame) -> Bytes {
        let Some(second) = waiting_frame(&mut self.rx) else {
            return first.sse;
        };
        let mut chunk = Vec::with_capacity(4 * first.sse.len());
        chunk.extend_from_slice(&first.sse);
        chunk.extend_from_slice(&second.sse);
        for _ in 2..MAX_COALESCED {
            let Some(frame) = waiting_frame(&mut self.rx) else {
                break;
            };
            chunk.extend_from_slice(&frame.sse);
        }
        Bytes::from(chunk)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sse_blocks_carry_the_type_as_event_name() {
        let frame = Frame::session_deleted("s1");
        assert_eq!(
            frame.text.as_str(),
            r#"{"type":"session_deleted","session_id":"s1"}"#
        );
        assert_eq!(
            &frame.sse[..],
            b"event: session_deleted\ndata: {\"type\":\"session_deleted\",\"session_id\":\"s1\"}\n\n"
        );
    }

    #[test]
    fn a_line_break_gets_its_own_data_line() {
        let mut out = Vec::new();
        push_sse(&mut out, "x", "a\nb");
        assert_eq!(out, b"event: x\ndata: a\ndata: b\n\n");
    }
}
