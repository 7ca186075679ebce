//! Requests a run waits on (a tool call that needs permission, a question
//! for the user) and the decisions that answer them: what
//! `/sessions/{id}/requests` serves and takes.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// What a request asks.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestKind {
    /// May this tool call run?
    Permission,
    /// Choose among options (`AskUserQuestion`).
    Question,
}

impl RequestKind {
    /// The name stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestKind::Permission => "permission",
            RequestKind::Question => "question",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "permission" => Some(RequestKind::Permission),
            "question" => Some(RequestKind::Question),
            _ => None,
        }
    }
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    Allow,
    Deny,
}

impl Decision {
    /// The name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allow => "allow",
            Decision::Deny => "deny",
        }
    }
}

/// Who decided: a person (a command, the dashboard), the parent agent
/// (through `ao-mcp`, or a command run inside a run), the run's policy
/// (`--on-permission`, a stop, the run's end) or its timeout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum DecidedBy {
    Person,
    Parent,
    Policy,
    Timeout,
}

impl DecidedBy {
    /// The name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            DecidedBy::Person => "person",
            DecidedBy::Parent => "parent",
            DecidedBy::Policy => "policy",
            DecidedBy::Timeout => "timeout",
        }
    }
}

/// A question's answers: each question's text, and the label chosen (the
/// labels of a multiple choice joined with ", ").
pub type Answers = BTreeMap<String, String>;

/// Where a request stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RequestStatus {
    /// Nobody has answered yet.
    Pending,
    /// Answered through the API; the run has not acted on it yet.
    Answered,
    /// The run recorded its decision, or ended.
    Closed,
}

impl RequestStatus {
    /// The name stored and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RequestStatus::Pending => "pending",
            RequestStatus::Answered => "answered",
            RequestStatus::Closed => "closed",
        }
    }

    /// Parses the stored name.
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "pending" => Some(RequestStatus::Pending),
            "answered" => Some(RequestStatus::Answered),
            "closed" => Some(RequestStatus::Closed),
            _ => None,
        }
    }
}

/// A decision, as posted and as broadcast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecisionBody {
    pub decision: Decision,
    /// Why (a deny's reason, which the model reads).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// Allow, and accept the CLI's suggestions so that it does not ask again
    /// (permissions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<bool>,
    /// The answers to a question (questions only).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
    /// `person` (the default) or `parent`; `policy` and `timeout` are the run's own.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
}

/// A request of a session, as `GET /sessions/{id}/requests` lists it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct PendingRequest {
    pub request_id: String,
    pub session_id: String,
    pub session_name: String,
    pub kind: RequestKind,
    pub tool_name: String,
    /// The tool's input as the CLI gave it (a question's `questions`).
    pub input: Value,
    /// What the CLI suggests accepting for "always" (`permission_suggestions`).
    #[serde(default)]
    pub suggestions: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// The file the call would touch, when the CLI says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_path: Option<String>,
    pub created_at: String,
}

impl PendingRequest {
    /// The questions of a question request: each one's text and its
    /// options' labels.
    pub fn questions(&self) -> Vec<(String, Vec<String>)> {
        self.input["questions"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|q| {
                let labels = q["options"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .filter_map(|o| o["label"].as_str().map(str::to_owned))
                    .collect();
                (q["question"].as_str().unwrap_or("").to_owned(), labels)
            })
            .collect()
    }

    /// A question request's questions and options, on one line:
    /// `'Which colour?': blue, red; ...`.
    pub fn options(&self) -> String {
        self.questions()
            .iter()
            .map(|(q, labels)| format!("'{q}': {}", labels.join(", ")))
            .collect::<Vec<_>>()
            .join("; ")
    }

    /// Whether the CLI offered something to accept for "always".
    pub fn has_suggestions(&self) -> bool {
        self.suggestions.as_array().is_some_and(|s| !s.is_empty())
    }

    /// What the request is about, on one line: the command for Bash, the
    /// file for an edit, the questions for a question.
    pub fn summary(&self) -> String {
        let input = &self.input;
        let text = match self.kind {
            RequestKind::Question => self
                .questions()
                .iter()
                .map(|(q, labels)| format!("{q} [{}]", labels.join(" | ")))
                .collect::<Vec<_>>()
                .join("; "),
            RequestKind::Permission => ["command", "file_path", "path", "url", "pattern"]
                .iter()
                .find_map(|key| input[*key].as_str().map(str::to_owned))
                .unwrap_or_else(|| input.to_string()),
        };
        let text = text.replace(['\n', '\r'], " ");
        match text.char_indices().nth(200) {
            Some((cut, _)) => format!("{}…", &text[..cut]),
            None => text,
        }
    }
}

/// `GET /sessions/{id}/requests`: pending requests, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestsAnswer {
    pub requests: Vec<PendingRequest>,
}

/// One request whatever its status, with its decision once there is one.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestRecord {
    #[serde(flatten)]
    pub request: PendingRequest,
    pub status: RequestStatus,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<DecisionBody>,
}

/// `GET /sessions/{id}/requests/{request_id}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RequestAnswer {
    pub request: RequestRecord,
}

/// `POST /sessions/{id}/requests/{request_id}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DecisionAnswer {
    pub ok: bool,
}
