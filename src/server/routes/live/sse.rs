//! `/sse`: the live feed as server-sent events; `?session_id=ID`
//! (repeatable) narrows it to those sessions, for runners and waiters that
//! follow a few runs among thousands of sessions.

use std::collections::{HashSet, VecDeque};
use std::convert::Infallible;
use std::time::Duration;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::header;
use axum::response::{IntoResponse, Response};
use tokio::time::{Instant, Sleep};
use tokio_util::sync::CancellationToken;

use super::{INIT_START, MAX_COALESCED, MAX_COALESCED_BYTES, subscribe_with_snapshot};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::live::{Frame, Receiver, host_topic, run_topic};
use crate::server::store::RunnerLease;
use crate::wire::{LiveMessage, check_host_name, check_id};

/// An idle SSE stream gets a comment this often, so that proxies keep it open.
const SSE_KEEP_ALIVE: Duration = Duration::from_secs(15);

/// What a client asked to follow.
struct Filter {
    sessions: HashSet<String>,
    /// A host's or a run's messages.
    topics: HashSet<String>,
    /// The client is the runner of these sessions: stop requests reach them through it.
    runner: bool,
}

/// Reads `session_id=ID` (repeatable), `runner=1`, `host=NAME` and
/// `run_id=ID` from the query; a host's and a run's messages are followed
/// under topics no session id can take (they hold a slash).
fn filter(query: Option<&str>) -> Result<Option<Filter>, ApiError> {
    let mut sessions = HashSet::new();
    let mut topics = HashSet::new();
    let mut runner = false;
    for (key, value) in form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        match key.as_ref() {
            "session_id" => {
                check_id("session_id", &value).map_err(ApiError::bad_request)?;
                sessions.insert(value.into_owned());
            }
            "host" => {
                check_host_name("host", &value).map_err(ApiError::bad_request)?;
                topics.insert(host_topic(&value));
            }
            "run_id" => {
                check_id("run_id", &value).map_err(ApiError::bad_request)?;
                topics.insert(run_topic(&value));
            }
            "runner" => runner = matches!(value.as_ref(), "1" | "true"),
            _ => {}
        }
    }
    if runner && sessions.is_empty() {
        return Err(ApiError::bad_request(
            "runner=1 needs at least one session_id",
        ));
    }
    if sessions.is_empty() && topics.is_empty() {
        return Ok(None);
    }
    Ok(Some(Filter {
        sessions,
        topics,
        runner,
    }))
}

/// `GET /sse[?session_id=ID...][&runner=1]`: the same messages as
/// server-sent events, the message type as the event name. With
/// `session_id`, only the messages about those sessions, after an `init`
/// that lists only them.
#[utoipa::path(get, path = "/sse", tag = "live",
    params(
        ("session_id" = Option<Vec<String>>, Query, description = "Follow only these sessions (repeat the parameter for several); the init lists only them"),
        ("runner" = Option<bool>, Query, description = "The client runs these sessions: POST /sessions/{id}/stop reaches the run through it"),
        ("host" = Option<String>, Query, description = "Follow a host's messages: the runs given to it (run_assigned) and stop requests for them (run_stop_requested)"),
        ("run_id" = Option<String>, Query, description = "Follow one launched run: run_updated as it moves on"),
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
    let mut lease = None;
    let (sessions, rx) = match filter {
        None => subscribe_with_snapshot(&state).await?,
        Some(filter) => {
            // Subscribe first, then read: no change in between is missed.
            let ids: Vec<String> = filter.sessions.iter().cloned().collect();
            if filter.runner {
                lease = Some(state.store.lease_runners(&filter.sessions));
            }
            let mut followed = filter.sessions;
            followed.extend(filter.topics);
            state.store.settled().await;
            let rx = state.hub.follow(followed, filter.runner);
            let mut listed = Vec::new();
            for id in ids {
                if let Some(session) = state.store.get_session(id).await? {
                    listed.push(session);
                }
            }
            let json = serde_json::to_vec(&listed)
                .map_err(|e| ApiError::bad_request(format!("cannot encode sessions: {e}")))?;
            (Bytes::from(json), rx)
        }
    };
    let mut start = b"event: init\ndata: ".to_vec();
    start.extend_from_slice(INIT_START.as_bytes());
    let init = [Bytes::from(start), sessions, Bytes::from_static(b"}\n\n")];
    let stream = SseStream {
        queued: init.into(),
        held: None,
        rx,
        shutdown: state.shutdown.clone(),
        keep_alive: Box::pin(tokio::time::sleep(SSE_KEEP_ALIVE)),
        last_sent: Instant::now(),
        _lease: lease,
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
    /// Chunks to send before anything else: the pieces of the init, then
    /// those of a long frame.
    queued: VecDeque<Bytes>,
    /// A frame read while joining others that did not fit; it goes next.
    held: Option<Frame>,
    rx: Receiver,
    shutdown: CancellationToken,
    /// Fires at most every [`SSE_KEEP_ALIVE`]; re-armed only when it fires,
    /// so that messages do not each reset a timer.
    keep_alive: std::pin::Pin<Box<Sleep>>,
    last_sent: Instant,
    /// Tells other replicas that this feed's runner is here, while it is.
    _lease: Option<RunnerLease>,
}

impl SseStream {
    /// The next bytes of the stream; `None` ends it.
    async fn next_chunk(&mut self) -> Option<Bytes> {
        if let Some(chunk) = self.queued.pop_front() {
            self.last_sent = Instant::now();
            return Some(chunk);
        }
        if let Some(frame) = self.held.take() {
            self.last_sent = Instant::now();
            return Some(self.chunk(frame));
        }
        loop {
            tokio::select! {
                frame = self.rx.recv(&self.shutdown) => {
                    let frame = frame?;
                    self.last_sent = Instant::now();
                    return Some(self.chunk(frame));
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

    /// A long frame's first piece, the rest queued; or a short one joined by
    /// the short ones already waiting, up to [`MAX_COALESCED_BYTES`].
    fn chunk(&mut self, first: Frame) -> Bytes {
        if first.is_long() {
            let mut pieces = first.sse_pieces().into_iter();
            let head = pieces.next().unwrap_or_default();
            self.queued.extend(pieces);
            return head;
        }
        let mut chunk = Vec::with_capacity(first.sse_len());
        first.write_sse(&mut chunk);
        for _ in 1..MAX_COALESCED {
            let Some(frame) = self.rx.try_recv() else {
                break;
            };
            if frame.is_long() || chunk.len() + frame.sse_len() > MAX_COALESCED_BYTES {
                self.held = Some(frame);
                break;
            }
            frame.write_sse(&mut chunk);
        }
        Bytes::from(chunk)
    }
}
