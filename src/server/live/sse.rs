//! `/sse`: the live feed as server-sent events; `?session_id=ID`
//! (repeatable) narrows it to those sessions, for runners and waiters that
//! follow a few runs among thousands of sessions.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::sync::broadcast;
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::{
    Frame, INIT_START, MAX_COALESCED, RunnerGuard, next_frame, subscribe_with_snapshot,
    waiting_frame,
};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::wire::{LiveMessage, check_id};

/// An idle SSE stream gets a comment this often, so that proxies keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a client asked to follow.
struct Filter {
    sessions: HashSet<String>,
    /// The client is the runner of these sessions: stop requests reach them through it.
    runner: bool,
}

/// Reads `session_id=ID` (repeatable) and `runner=1` from the query.
fn filter(query: Option<&str>) -> Result<Option<Filter>, ApiError> {
    let mut sessions = HashSet::new();
    let mut runner = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "session_id" => {
                check_id("session_id", &value).map_err(ApiError::bad_request)?;
                sessions.insert(value.into_owned());
            }
            "runner" => runner = matches!(value.as_ref(), "1" | "true"),
            _ => {}
        }
    }
    if sessions.is_empty() {
        if runner {
            return Err(ApiError::bad_request(
                "runner=1 needs at least one session_id",
            ));
        }
        return Ok(None);
    }
    Ok(Some(Filter { sessions, runner }))
}

/// `GET /sse[?session_id=ID...][&runner=1]`: the same messages as
/// server-sent events, the message type as the event name. With
/// `session_id`, only the messages about those sessions, after an `init`
/// that lists only them.
#[utoipa::path(get, path = "/sse", tag = "live",
    params(
        ("session_id" = Option<Vec<String>>, Query, description = "Follow only these sessions (repeat the parameter for several); the init lists only them"),
        ("runner" = Option<bool>, Query, description = "The client runs these sessions: POST /sessions/{id}/stop reaches the run through it"),
    ),
    responses(
        (status = 200, description = "An event stream of LiveMessage objects, the type as the event name", content_type = "text/event-stream", body = LiveMessage),
        (status = 400, description = "A session_id that is not a valid id", body = crate::wire::ErrorAnswer),
    ))]
pub async fn sse(
    State(state): State<AppState>,
    RawQuery(query): RawQuery,
) -> Result<Response, ApiError> {
    let filter = filter(query.as_deref())?;
    let (sessions, rx, guard, only) = match filter {
        None => {
            let (sessions, rx) = subscribe_with_snapshot(&state).await?;
            (sessions, rx, None, None)
        }
        Some(filter) => {
            // Subscribe first, then read: no change in between is missed.
            let rx = state.hub.subscribe();
            let mut listed = Vec::new();
            for id in &filter.sessions {
                if let Some(session) = state.store.get_session(id.clone()).await? {
                    listed.push(session);
                }
            }
            let json = serde_json::to_vec(&listed)
                .map_err(|e| ApiError::bad_request(format!("cannot encode sessions: {e}")))?;
            let ids: Vec<String> = filter.sessions.iter().cloned().collect();
            let guard = filter.runner.then(|| state.hub.runner_guard(&ids));
            (Bytes::from(json), rx, guard, Some(filter.sessions))
        }
    };
    let mut start = b"event: init\ndata: ".to_vec();
    start.extend_from_slice(INIT_START.as_bytes());
    let init = vec![Bytes::from(start), sessions, Bytes::from_static(b"}\n\n")];
    let stream = SseStream {
        init,
        rx,
        shutdown: state.shutdown.clone(),
        keep_alive: Box::pin(tokio::time::sleep(SSE_KEEP_ALIVE)),
        last_sent: Instant::now(),
        only,
        _runner: guard,
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
    /// The sessions followed, when the feed is filtered.
    only: Option<HashSet<String>>,
    /// Held while a runner follows its sessions.
    _runner: Option<RunnerGuard>,
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
                    let frame = frame?;
                    if !self.wanted(&frame) {
                        continue;
                    }
                    self.last_sent = Instant::now();
                    return Some(self.with_waiting(frame));
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

    fn wanted(&self, frame: &Frame) -> bool {
        self.only.as_ref().is_none_or(|only| frame.concerns(only))
    }

    /// The next waiting frame this client wants, if any.
    fn waiting(&mut self) -> Option<Frame> {
        loop {
            let frame = waiting_frame(&mut self.rx)?;
            if self.wanted(&frame) {
                return Some(frame);
            }
        }
    }

    /// `first`, joined by whatever else is already waiting.
    fn with_waiting(&mut self, first: Frame) -> Bytes {
        let Some(second) = self.waiting() else {
            return first.sse;
        };
        let mut chunk = Vec::with_capacity(4 * first.sse.len());
        chunk.extend_from_slice(&first.sse);
        chunk.extend_from_slice(&second.sse);
        for _ in 2..MAX_COALESCED {
            let Some(frame) = self.waiting() else {
                break;
            };
            chunk.extend_from_slice(&frame.sse);
        }
        Bytes::from(chunk)
    }
}
