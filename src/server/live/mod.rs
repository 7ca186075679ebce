//! Live updates: every committed change is published once to a broadcast
//! channel, and each `/ws` or `/sse` client reads it at its own pace. A client
//! that falls more than the channel's capacity behind is sent a `resync`
//! message with the count it missed, so it is never silently skipped, and it
//! never slows the writer or other clients.
//!
//! Each message is encoded once for all clients (its WebSocket text and its
//! SSE block are shared, not copied per client), and a client that wakes up
//! to several waiting messages gets them in one write. The transports are
//! in `ws` and `sse`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use serde::Serialize;
use tokio::sync::broadcast::{self, error::RecvError, error::TryRecvError};
use tokio_tungstenite::tungstenite::Utf8Bytes;
use tokio_util::sync::CancellationToken;

use super::AppState;
use super::error::ApiError;
use crate::wire::Session;

pub mod sse;
pub mod ws;

/// Messages already waiting that a client is sent in one write, at most.
const MAX_COALESCED: usize = 64;

/// One broadcast message, encoded once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JSON text, sent as is on WebSockets.
    text: Utf8Bytes,
    /// `event: TYPE\ndata: JSON\n\n`, sent as is on SSE streams.
    sse: Bytes,
    /// Whether it announces a change to a session (as opposed to an event).
    changes_sessions: bool,
    /// The session it is about, for feeds filtered by session (`None`:
    /// it concerns every client, as `resync` does).
    session: Option<Arc<str>>,
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
struct StopMessage<'a> {
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
    fn new(kind: &'static str, json: String, session: Option<&str>) -> Frame {
        let mut sse = Vec::with_capacity(json.len() + kind.len() + 18);
        push_sse(&mut sse, kind, &json);
        Frame {
            text: json.into(),
            sse: sse.into(),
            changes_sessions: matches!(
                kind,
                "session_created" | "session_updated" | "session_deleted"
            ),
            session: session.map(Arc::from),
        }
    }

    /// `{"type":"session_created","session":...}`
    pub fn session_created(session: &Session) -> Frame {
        let kind = "session_created";
        let json = to_json(kind, &SessionMessage { kind, session });
        Frame::new(kind, json, Some(&session.session_id))
    }

    /// `{"type":"session_updated","session":...}`
    pub fn session_updated(session: &Session) -> Frame {
        let kind = "session_updated";
        let json = to_json(kind, &SessionMessage { kind, session });
        Frame::new(kind, json, Some(&session.session_id))
    }

    /// `{"type":"session_deleted","session_id":...}`
    pub fn session_deleted(session_id: &str) -> Frame {
        let kind = "session_deleted";
        let json = to_json(kind, &DeletedMessage { kind, session_id });
        Frame::new(kind, json, Some(session_id))
    }

    /// `{"type":"event","data":...}`, from the stored event's JSON.
    pub fn event(session_id: &str, event_json: &str) -> Frame {
        Frame::new(
            "event",
            format!(r#"{{"type":"event","data":{event_json}}}"#),
            Some(session_id),
        )
    }

    /// `{"type":"stop_requested","session_id":...}`: the session's runner
    /// should stop its run.
    pub fn stop_requested(session_id: &str) -> Frame {
        let kind = "stop_requested";
        let json = to_json(kind, &StopMessage { kind, session_id });
        Frame::new(kind, json, Some(session_id))
    }

    /// `{"type":"resync","missed":N}`
    pub fn resync(missed: u64) -> Frame {
        let kind = "resync";
        Frame::new(kind, to_json(kind, &ResyncMessage { kind, missed }), None)
    }

    /// Whether a client following only `sessions` gets this frame.
    fn concerns(&self, sessions: &std::collections::HashSet<String>) -> bool {
        self.session
            .as_deref()
            .is_none_or(|id| sessions.contains(id))
    }
}

/// A committed change, turned into a [`Frame`] only when some live client
/// is connected to receive it: ingest with nobody watching encodes nothing.
#[derive(Debug, Clone)]
pub enum Change {
    SessionCreated(Session),
    SessionUpdated(Session),
    SessionDeleted(String),
    /// A stored event: its row id and stored JSON (without the id).
    Event {
        session_id: String,
        id: i64,
        body: String,
    },
}

impl Change {
    fn changes_sessions(&self) -> bool {
        !matches!(self, Change::Event { .. })
    }

    fn frame(&self) -> Frame {
        match self {
            Change::SessionCreated(session) => Frame::session_created(session),
            Change::SessionUpdated(session) => Frame::session_updated(session),
            Change::SessionDeleted(id) => Frame::session_deleted(id),
            Change::Event {
                session_id,
                id,
                body,
            } => Frame::event(session_id, &crate::server::store::with_id(*id, body)),
        }
    }
}

/// The start of the first message of a connection,
/// `{"type":"init","sessions":[...]}`; the session list follows.
const INIT_START: &str = r#"{"type":"init","sessions":"#;

/// The fan-out point: the writer publishes, every live client subscribes.
#[derive(Clone)]
pub struct Hub {
    tx: broadcast::Sender<Frame>,
    /// Frames published so far that change a session.
    session_changes: Arc<AtomicU64>,
    /// Runners following their session's feed, by session id: a stop
    /// request reaches a run only through one of them.
    runners: Arc<Mutex<HashMap<String, usize>>>,
}

/// Counts a runner as listening for its sessions while it lives.
pub struct RunnerGuard {
    runners: Arc<Mutex<HashMap<String, usize>>>,
    sessions: Vec<String>,
}

impl Drop for RunnerGuard {
    fn drop(&mut self) {
        let Ok(mut runners) = self.runners.lock() else {
            return;
        };
        for id in &self.sessions {
            if let Some(n) = runners.get_mut(id) {
                *n -= 1;
                if *n == 0 {
                    runners.remove(id);
                }
            }
        }
    }
}

impl Hub {
    /// A hub whose clients may fall `capacity` messages behind before resync.
    pub fn new(capacity: usize) -> Self {
        Hub {
            tx: broadcast::channel(capacity.max(1)).0,
            session_changes: Arc::default(),
            runners: Arc::default(),
        }
    }

    /// Registers a runner following `sessions`, until the guard is dropped.
    pub fn runner_guard(&self, sessions: &[String]) -> RunnerGuard {
        if let Ok(mut runners) = self.runners.lock() {
            for id in sessions {
                *runners.entry(id.clone()).or_default() += 1;
            }
        }
        RunnerGuard {
            runners: Arc::clone(&self.runners),
            sessions: sessions.to_vec(),
        }
    }

    /// Whether a runner follows `session_id`'s feed now.
    pub fn has_runner(&self, session_id: &str) -> bool {
        self.runners
            .lock()
            .is_ok_and(|runners| runners.contains_key(session_id))
    }

    /// Sends a committed change to every connected client (none connected
    /// is fine), counting it first if it changes a session.
    pub fn publish(&self, frame: Frame) {
        if frame.changes_sessions {
            self.session_changes.fetch_add(1, Ordering::SeqCst);
        }
        let _ = self.tx.send(frame);
    }

    /// Publishes a committed change: counted first if it changes a
    /// session, encoded and sent only if a live client is connected.
    pub fn publish_change(&self, change: &Change) {
        if change.changes_sessions() {
            self.session_changes.fetch_add(1, Ordering::SeqCst);
        }
        if self.tx.receiver_count() > 0 {
            let mut frame = change.frame();
            // Counted above already.
            frame.changes_sessions = false;
            let _ = self.tx.send(frame);
        }
    }

    /// How many session changes were published so far.
    pub fn session_changes(&self) -> u64 {
        self.session_changes.load(Ordering::SeqCst)
    }

    pub(super) fn subscribe(&self) -> broadcast::Receiver<Frame> {
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
