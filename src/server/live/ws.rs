//! `/ws`: the live feed over WebSocket.

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::{Sink, SinkExt, StreamExt};
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::sync::broadcast;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::Frame as WsFrame;
use tokio_tungstenite::tungstenite::protocol::frame::coding::{Data, OpCode};
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};

use super::{Frame, INIT_START, MAX_COALESCED, next_frame, subscribe_with_snapshot, waiting_frame};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::wire::LiveMessage;

/// A long WebSocket message (the init of a big database) goes out in
/// fragments of about this size, so that no connection keeps a buffer the
/// size of the whole message.
const WS_FRAGMENT: usize = 16 * 1024;

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
    if total <= WS_FRAGMENT
        && let Ok(list) = std::str::from_utf8(&sessions)
    {
        let mut text = String::with_capacity(total);
        text.push_str(INIT_START);
        text.push_str(list);
        text.push('}');
        return sink.send(Message::Text(text.into())).await;
    }
    let first = WsFrame::message(
        Bytes::from_static(INIT_START.as_bytes()),
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
