//! The live messages, each encoded once for every client: its JSON text is
//! the WebSocket message and, between a head and a tail, the data of its
//! SSE event, so the two transports share one copy.

use std::sync::Arc;

use axum::body::Bytes;
use serde::Serialize;
use tokio_tungstenite::tungstenite::Utf8Bytes;

use crate::server::changes::{Change, with_id};
use crate::wire::{DecisionBody, Host, LiveMessage, Run, Session, TextDelta};

/// A frame longer than this is sent without being copied for each client:
/// in WebSocket fragments of about this size, and as its shared pieces on
/// SSE. Shorter ones are copied into one write with the others waiting.
pub const LONG_FRAME: usize = 16 * 1024;

/// The end of every SSE event.
const SSE_TAIL: &[u8] = b"\n\n";

/// One broadcast message, encoded once for every client.
#[derive(Debug, Clone)]
pub struct Frame {
    /// The JSON text, sent as is on WebSockets.
    text: Utf8Bytes,
    /// `event: TYPE\ndata: `, followed on SSE by the text and a blank line;
    /// or, should the JSON hold line breaks, the whole SSE event.
    sse_head: Bytes,
    /// Whether the text follows `sse_head` on SSE.
    sse_shares_text: bool,
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
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<&'static str>,
}

#[derive(Serialize)]
struct TextDeltaMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    session_id: &'a str,
    #[serde(flatten)]
    delta: &'a TextDelta,
}

#[derive(Serialize)]
struct RunMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    run: &'a Run,
}

#[derive(Serialize)]
struct HostRunMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    run_id: &'a str,
    host: &'a str,
}

#[derive(Serialize)]
struct HostMessage<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    host: &'a Host,
}

/// What a feed filtered by run (`/sse?run_id=ID`) follows.
pub fn run_topic(run_id: &str) -> String {
    format!("run/{run_id}")
}

/// What a host's feed (`/sse?host=NAME`) follows.
pub fn host_topic(host: &str) -> String {
    format!("host/{host}")
}

/// Followed by no filtered feed (session ids have no slash): host changes
/// go to the unfiltered feeds only.
const HOSTS_TOPIC: &str = "hosts/";

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
    fn new(kind: &'static str, mut json: String, session: Option<&str>) -> Frame {
        // Kept in the backlog as it is: no spare capacity beyond its size.
        json.shrink_to_fit();
        let sse_shares_text = !json.contains(['\n', '\r']);
        let sse_head = if sse_shares_text {
            format!("event: {kind}\ndata: ").into_bytes()
        } else {
            let mut block = Vec::with_capacity(json.len() + kind.len() + 18);
            push_sse(&mut block, kind, &json);
            block
        };
        Frame {
            text: json.into(),
            sse_head: sse_head.into(),
            sse_shares_text,
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
        const START: &str = r#"{"type":"event","data":"#;
        let mut json = String::with_capacity(START.len() + event_json.len() + 1);
        json.push_str(START);
        json.push_str(event_json);
        json.push('}');
        Frame::new("event", json, Some(session_id))
    }

    /// `{"type":"stop_requested","session_id":...}`: the session's runner
    /// should stop its run.
    pub fn stop_requested(session_id: &str) -> Frame {
        Frame::stop_requested_for(session_id, None)
    }

    /// A stop request with a reason (`budget`), which the run ends with.
    pub fn stop_requested_for(session_id: &str, reason: Option<&'static str>) -> Frame {
        let kind = "stop_requested";
        let json = to_json(
            kind,
            &StopMessage {
                kind,
                session_id,
                reason,
            },
        );
        Frame::new(kind, json, Some(session_id))
    }

    /// `{"type":"text_delta","session_id":...,"text":...,"seq":N,...}`:
    /// text the session's model is writing.
    pub fn text_delta(session_id: &str, delta: &TextDelta) -> Frame {
        let kind = "text_delta";
        let json = to_json(
            kind,
            &TextDeltaMessage {
                kind,
                session_id,
                delta,
            },
        );
        Frame::new(kind, json, Some(session_id))
    }

    /// `{"type":"request_answered","session_id","request_id","decision",...}`:
    /// the session's runner passes the decision on to its CLI.
    pub fn request_answered(session_id: &str, request_id: &str, decision: &DecisionBody) -> Frame {
        let kind = "request_answered";
        let message = LiveMessage::RequestAnswered {
            session_id: session_id.to_owned(),
            request_id: request_id.to_owned(),
            decision: decision.clone(),
        };
        Frame::new(kind, to_json(kind, &message), Some(session_id))
    }

    /// `{"type":"run_updated","run":...}`, for the run's own feed and the
    /// unfiltered ones.
    pub fn run_updated(run: &Run) -> Frame {
        let kind = "run_updated";
        let json = to_json(kind, &RunMessage { kind, run });
        Frame::new(kind, json, Some(&run_topic(&run.run_id)))
    }

    /// `{"type":"run_assigned","run_id","host"}`, for the host's feed.
    pub fn run_assigned(run_id: &str, host: &str) -> Frame {
        Frame::host_run("run_assigned", run_id, host)
    }

    /// `{"type":"run_stop_requested","run_id","host"}`, for the host's feed.
    pub fn run_stop_requested(run_id: &str, host: &str) -> Frame {
        Frame::host_run("run_stop_requested", run_id, host)
    }

    fn host_run(kind: &'static str, run_id: &str, host: &str) -> Frame {
        let json = to_json(kind, &HostRunMessage { kind, run_id, host });
        Frame::new(kind, json, Some(&host_topic(host)))
    }

    /// `{"type":"host_updated","host":...}`
    pub fn host_updated(host: &Host) -> Frame {
        let kind = "host_updated";
        let json = to_json(kind, &HostMessage { kind, host });
        Frame::new(kind, json, Some(HOSTS_TOPIC))
    }

    /// `{"type":"resync","missed":N}`
    pub fn resync(missed: u64) -> Frame {
        let kind = "resync";
        Frame::new(kind, to_json(kind, &ResyncMessage { kind, missed }), None)
    }

    /// The session it is about; `None` for every client.
    pub(super) fn session(&self) -> Option<&str> {
        self.session.as_deref()
    }

    /// The memory it holds, about: what a backlog counts against its budget.
    pub(super) fn size(&self) -> usize {
        std::mem::size_of::<Frame>()
            + self.text.len()
            + self.sse_head.len()
            + self.session.as_ref().map_or(0, |s| s.len())
    }

    /// Whether it is sent alone and uncopied (see [`LONG_FRAME`]).
    pub(crate) fn is_long(&self) -> bool {
        self.text.len() > LONG_FRAME
    }

    /// The WebSocket text message.
    pub(crate) fn text(&self) -> &Utf8Bytes {
        &self.text
    }

    /// The WebSocket text message's bytes, shared.
    pub(crate) fn text_bytes(&self) -> Bytes {
        self.text.clone().into()
    }

    /// The SSE event, in pieces that share the frame's memory.
    pub(crate) fn sse_pieces(&self) -> Vec<Bytes> {
        if !self.sse_shares_text {
            return vec![self.sse_head.clone()];
        }
        vec![
            self.sse_head.clone(),
            self.text_bytes(),
            Bytes::from_static(SSE_TAIL),
        ]
    }

    /// The length of the SSE event.
    pub(crate) fn sse_len(&self) -> usize {
        if self.sse_shares_text {
            self.sse_head.len() + self.text.len() + SSE_TAIL.len()
        } else {
            self.sse_head.len()
        }
    }

    /// Appends the SSE event to `out`.
    pub(crate) fn write_sse(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.sse_head);
        if self.sse_shares_text {
            out.extend_from_slice(self.text.as_bytes());
            out.extend_from_slice(SSE_TAIL);
        }
    }
}

impl Frame {
    /// The message announcing `change`.
    pub(crate) fn of(change: &Change) -> Frame {
        match change {
            Change::SessionCreated(session) => Frame::session_created(session),
            Change::SessionUpdated(session) => Frame::session_updated(session),
            Change::SessionDeleted(id) => Frame::session_deleted(id),
            Change::Event {
                session_id,
                id,
                body,
            } => Frame::event(session_id, &with_id(*id, body)),
            Change::StopRequested(id) => Frame::stop_requested(id),
            Change::BudgetStop(id) => Frame::stop_requested_for(id, Some("budget")),
            // How many were missed is not known: 0 says so.
            Change::Resync => Frame::resync(0),
            Change::RequestAnswered {
                session_id,
                request_id,
                decision,
            } => Frame::request_answered(session_id, request_id, decision),
            Change::Run(run) => Frame::run_updated(run),
            Change::RunAssigned { run_id, host } => Frame::run_assigned(run_id, host),
            Change::RunStopRequested { run_id, host } => Frame::run_stop_requested(run_id, host),
            Change::Host(host) => Frame::host_updated(host),
            Change::TextDelta { session_id, delta } => Frame::text_delta(session_id, delta),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sse(frame: &Frame) -> Vec<u8> {
        let mut out = Vec::new();
        frame.write_sse(&mut out);
        assert_eq!(out.len(), frame.sse_len());
        assert_eq!(out, frame.sse_pieces().concat(), "pieces and copy agree");
        out
    }

    #[test]
    fn sse_blocks_carry_the_type_as_event_name() {
        let frame = Frame::session_deleted("s1");
        assert_eq!(
            frame.text.as_str(),
            r#"{"type":"session_deleted","session_id":"s1"}"#
        );
        assert_eq!(
            sse(&frame),
            b"event: session_deleted\ndata: {\"type\":\"session_deleted\",\"session_id\":\"s1\"}\n\n"
        );
    }

    #[test]
    fn the_sse_event_shares_the_text() {
        let frame = Frame::event("s", &format!(r#"{{"x":"{}"}}"#, "y".repeat(100_000)));
        assert!(frame.is_long());
        let pieces = frame.sse_pieces();
        assert_eq!(pieces[1].as_ptr(), frame.text.as_ptr(), "not a copy");
        assert!(frame.size() < frame.text.len() + 200);
    }

    #[test]
    fn a_line_break_gets_its_own_data_line() {
        let mut out = Vec::new();
        push_sse(&mut out, "x", "a\nb");
        assert_eq!(out, b"event: x\ndata: a\ndata: b\n\n");
        let frame = Frame::new("x", "a\nb".to_owned(), None);
        assert_eq!(sse(&frame), b"event: x\ndata: a\ndata: b\n\n");
    }
}
