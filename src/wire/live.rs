//! Messages pushed to live clients over `/ws` and `/sse`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::{DecisionBody, Host, Run, Session};

/// One live message. Over SSE, `type` becomes the SSE event name and the
/// whole object is the data.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveMessage {
    /// Sent first on every connection: the sessions as they are now.
    Init {
        sessions: Vec<Session>,
    },
    SessionCreated {
        session: Session,
    },
    SessionUpdated {
        session: Session,
    },
    SessionDeleted {
        session_id: String,
    },
    /// `data` is the stored event, `id` included.
    Event {
        data: Value,
    },
    /// `POST /sessions/{id}/stop` asked the session's runner to stop its run.
    StopRequested {
        session_id: String,
        /// `budget` when its tree's budget is spent.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// Text the model of a session's run is writing (live only, never
    /// stored; the message's event follows once it is written).
    TextDelta {
        session_id: String,
        #[serde(flatten)]
        delta: super::TextDelta,
    },
    /// `POST /sessions/{id}/requests/{request_id}` answered a request; the
    /// session's runner passes the decision on to its CLI.
    RequestAnswered {
        session_id: String,
        request_id: String,
        #[serde(flatten)]
        decision: DecisionBody,
    },
    /// A run launched through `POST /runs` changed (created, given to a
    /// host, started, ended).
    RunUpdated {
        run: Box<Run>,
    },
    /// A run was given to `host`, which should claim and start it (on the
    /// host's feed, `/sse?host=NAME`).
    RunAssigned {
        run_id: String,
        host: String,
    },
    /// `POST /runs/{run_id}/stop` asked `host` to stop the run's runner.
    RunStopRequested {
        run_id: String,
        host: String,
    },
    /// A host registered, went offline or came back.
    HostUpdated {
        host: Host,
    },
    /// This client fell behind and `missed` messages were dropped for it:
    /// it should fetch the state again.
    Resync {
        missed: u64,
    },
}

impl LiveMessage {
    /// The `type` tag, used as the SSE event name.
    pub fn kind(&self) -> &'static str {
        match self {
            LiveMessage::Init { .. } => "init",
            LiveMessage::SessionCreated { .. } => "session_created",
            LiveMessage::SessionUpdated { .. } => "session_updated",
            LiveMessage::SessionDeleted { .. } => "session_deleted",
            LiveMessage::Event { .. } => "event",
            LiveMessage::StopRequested { .. } => "stop_requested",
            LiveMessage::TextDelta { .. } => "text_delta",
            LiveMessage::RequestAnswered { .. } => "request_answered",
            LiveMessage::RunUpdated { .. } => "run_updated",
            LiveMessage::RunAssigned { .. } => "run_assigned",
            LiveMessage::RunStopRequested { .. } => "run_stop_requested",
            LiveMessage::HostUpdated { .. } => "host_updated",
            LiveMessage::Resync { .. } => "resync",
        }
    }
}
