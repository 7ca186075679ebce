//! `/sse`: the live feed as server-sent events.

use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::{Frame, INIT_START, MAX_COALESCED, next_frame, subscribe_with_snapshot, waiting_frame};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::wire::LiveMessage;

/// An idle SSE stream gets a comment this often, so that proxies keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// `GET /sse`: the same messages as server-sent events, the message type
/// as the event name.
#[utoipa::path(get, path = "/sse", tag = "live",
    responses((status = 200, description = "An event stream of LiveMessage objects, the type as the event name", content_type = "text/event-stream", body = LiveMessage)))]
pub async fn sse(State(state): State<AppState>) -> Result<Response, ApiError> {
    let (sessions, rx) = subscribe_with_snapshot(&state).await?;
    let mut start = b"event: init\ndata: ".to_vec();
    start.extend_from_slice(INIT_START.as_bytes());
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
