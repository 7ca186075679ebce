//! `/ws`: the live feed over WebSocket.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{INIT_START, MAX_COALESCED, MAX_COALESCED_BYTES, subscribe_with_snapshot};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::live::{Frame, LONG_FRAME, Receiver};
use crate::wire::LiveMessage;

/// A long WebSocket message (the init of a big database, a large event)
/// goes out in fragments of about this size, so that no connection keeps a
/// buffer the size of the whole message.
const WS_FRAGMENT: usize = LONG_FRAME;

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
            frame = rx.recv(&state.shutdown) => {
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

/// Sends `first` and whatever else is already waiting (up to
/// [`MAX_COALESCED_BYTES`]), then flushes once. A long frame goes out in
/// fragments, so that the connection's write buffer holds about one at a
/// time, not a copy of the whole frame.
async fn send_waiting<K>(sink: &mut K, first: Frame, rx: &mut Receiver) -> Result<(), K::Error>
where
    K: Sink<Message> + Unpin,
{
    let mut frame = first;
    let mut sent = 0;
    for _ in 0..MAX_COALESCED {
        sent += frame.text().len();
        if frame.is_long() {
            feed_fragments(sink, &[frame.text_bytes()]).await?;
        } else {
            sink.feed(Message::Text(frame.text().clone())).await?;
        }
        if sent >= MAX_COALESCED_BYTES {
            break;
        }
        match rx.try_recv() {
            Some(next) => frame = next,
            None => break,
        }
    }
    sink.flush().await
}

/// Sends `{"type":"init","sessions":SESSIONS}`, in fragments of about
/// [`WS_FRAGMENT`] bytes when it is longer.
async fn send_init<K>(sink: &mut K, sessions: Bytes) -> Result<(), K::Error>
where
    K: Sink<Message> + Unpin,
{
    let total = INIT_START.len() + sessions.len() + 1;
    if total <= WS_FRAGMENT
        && let Ok(list) = std::str::from_utf8(&sessions)
    {
        let mut text = String::with_capacity(total);
        text.push_str(INIT_START);
        text.push_str(list);
        text.push('}');
        return sink.send(Message::Text(text.into())).await;
    }
    let parts = [
        Bytes::from_static(INIT_START.as_bytes()),
        sessions,
        Bytes::from_static(b"}"),
    ];
    feed_fragments(sink, &parts).await?;
    sink.flush().await
}

/// Feeds one text message made of `parts` (UTF-8 together) as fragments of
/// at most [`WS_FRAGMENT`] bytes, each a slice of the parts (cut between
/// characters), none empty.
async fn feed_fragments<K>(sink: &mut K, parts: &[Bytes]) -> Result<(), K::Error>
where
    K: Sink<Message> + Unpin,
{
    let mut opcode = OpCode::Data(Data::Text);
    let mut pending: Option<Bytes> = None;
    for part in parts {
        let mut from = 0;
        while from < part.len() {
            let mut to = (from + WS_FRAGMENT).min(part.len());
            // A UTF-8 continuation byte is 0b10xx_xxxx; never cut before one.
            while to < part.len() && to > from + 1 && part[to] & 0xC0 == 0x80 {
                to -= 1;
            }
            if let Some(previous) = pending.replace(part.slice(from..to)) {
                sink.feed(Message::Frame(WsFrame::message(previous, opcode, false)))
                    .await?;
                opcode = OpCode::Data(Data::Continue);
            }
            from = to;
        }
    }
    let last = pending.unwrap_or_default();
    sink.feed(Message::Frame(WsFrame::message(last, opcode, true)))
        .await
}
