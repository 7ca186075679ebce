//! Session records and the request and answer bodies of the `/sessions` routes.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::usage::{LastRunSummary, Usage};

/// Whether a session has a run in progress. A session has many runs; this
/// follows the last `run_start` / `run_completed` it received.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SessionStatus {
    Running,
    Finished,
}

impl SessionStatus {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            SessionStatus::Running => "running",
            SessionStatus::Finished => "finished",
        }
    }

    /// Parses the stored name; `None` for anything else.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "running" => Some(SessionStatus::Running),
            "finished" => Some(SessionStatus::Finished),
            _ => None,
        }
    }
}

/// One session as the API returns it, with the totals of its runs.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Session {
    pub session_id: String,
    pub session_name: String,
    pub status: SessionStatus,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub project_dir: Option<String>,
    #[serde(default)]
    pub agent_name: Option<String>,
    #[serde(default)]
    pub last_resumed_at: Option<String>,
    /// The git worktree the session runs in (`ao-new --worktree`).
    #[serde(default)]
    pub worktree: Option<String>,
    /// The branch of that worktree.
    #[serde(default)]
    pub branch: Option<String>,
    /// The session whose run started this one (through `ao-mcp`).
    #[serde(default)]
    pub parent_session_id: Option<String>,
    /// The session this one is a fork of (`ao-fork`).
    #[serde(default)]
    pub forked_from: Option<String>,
    /// Dollars this session and its descendants may spend (`ao-new --budget-usd`).
    #[serde(default, serialize_with = "super::money::serialize_option")]
    pub budget_usd: Option<f64>,
    /// Requests of its run waiting for a decision (`GET /sessions/{id}/requests`).
    #[serde(default)]
    pub pending_requests: u64,
    /// The host that ran it (a run launched through `POST /runs`): Claude
    /// Code keeps the conversation on that machine, so a resume goes there.
    #[serde(default)]
    pub host: Option<String>,
    /// Runs that ended.
    #[serde(default)]
    pub num_runs: u64,
    /// The sum of the costs its runs reported; `null` when none did.
    #[serde(default, serialize_with = "super::money::serialize_option")]
    pub cost_usd: Option<f64>,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub last_run: Option<LastRunSummary>,
}

/// Body of `POST /sessions`. `created_at` is optional so that a replay from
/// the backup files can restore the original creation time.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionCreate {
    pub session_id: String,
    pub session_name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

/// Body of `PATCH /sessions/{id}`: every field optional, absent or null
/// means "leave as it is".
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionPatch {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_dir: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_resumed_at: Option<String>,
    /// A new tree budget (`ao-resume --budget-usd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

/// `GET /health`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HealthAnswer {
    pub status: String,
}

/// `POST /sessions` and `PATCH /sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionAnswer {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ok: Option<bool>,
    pub session: Session,
}

/// `GET /sessions`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SessionsAnswer {
    pub sessions: Vec<Session>,
}

/// The three answers of `GET /sessions/{id}/status`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum StatusValue {
    Running,
    Finished,
    NotExistent,
}

impl StatusValue {
    /// The word printed by `ao-status`.
    pub fn as_str(self) -> &'static str {
        match self {
            StatusValue::Running => "running",
            StatusValue::Finished => "finished",
            StatusValue::NotExistent => "not_existent",
        }
    }
}

impl From<SessionStatus> for StatusValue {
    fn from(status: SessionStatus) -> Self {
        match status {
            SessionStatus::Running => StatusValue::Running,
            SessionStatus::Finished => StatusValue::Finished,
        }
    }
}

/// `GET /sessions/{id}/status`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StatusAnswer {
    pub status: StatusValue,
}

/// `GET /sessions/{id}/result`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ResultAnswer {
    pub result: String,
    /// The JSON document of a run with an output schema.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<serde_json::Value>,
}

/// `POST /sessions/{id}/events`. `duplicate` is present only when the
/// event's `event_id` had already been stored, so a retrying sender can tell.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AddEventAnswer {
    pub ok: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub duplicate: bool,
    /// A repeated `run_completed` brought the figures its stored copy lacked.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub filled: bool,
}

/// `GET /sessions/{id}/events`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct EventsAnswer {
    pub events: Vec<super::StoredEvent>,
}

/// What `DELETE /sessions/{id}` removed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeletedCounts {
    pub session: bool,
    pub events_count: u64,
}

/// `POST /sessions/{id}/stop`: 202 with `delivered` when a runner follows
/// the session and was asked to stop; 200 with `closed` when none did (its
/// runner is gone), so the server closed the run as interrupted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct StopAnswer {
    pub ok: bool,
    pub delivered: bool,
    pub closed: bool,
}

/// Every error answer: what is wrong, in one line.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ErrorAnswer {
    pub detail: String,
}

/// `DELETE /sessions/{id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DeleteAnswer {
    pub ok: bool,
    pub session_id: String,
    pub deleted: DeletedCounts,
}
