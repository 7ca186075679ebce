//! Events: what happened in a session, in the order it happened.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;
use uuid::Uuid;

use super::SessionStatus;
use super::request::{Answers, DecidedBy, Decision, RequestKind};
use super::timestamp::parse_timestamp;
use super::usage::{RunFigures, Usage};

/// The kinds of event the session manager accepts. `SessionStart` and
/// `SessionStop` are the names older clients send for `RunStart` and
/// `RunCompleted`; they have the same effect and are stored as sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EventType {
    RunStart,
    RunCompleted,
    PreTool,
    PostTool,
    Message,
    SessionStart,
    SessionStop,
    /// What a run changed in its git checkout: the files and their diff.
    Changes,
    /// A run waits for a decision (a tool call's permission, a question).
    PermissionRequest,
    /// The decision the run acted on.
    PermissionDecision,
}

impl EventType {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            EventType::RunStart => "run_start",
            EventType::RunCompleted => "run_completed",
            EventType::PreTool => "pre_tool",
            EventType::PostTool => "post_tool",
            EventType::Message => "message",
            EventType::SessionStart => "session_start",
            EventType::SessionStop => "session_stop",
            EventType::Changes => "changes",
            EventType::PermissionRequest => "permission_request",
            EventType::PermissionDecision => "permission_decision",
        }
    }

    /// The status a session takes when it receives this event, if any.
    pub fn status_effect(self) -> Option<SessionStatus> {
        match self {
            EventType::RunStart | EventType::SessionStart => Some(SessionStatus::Running),
            EventType::RunCompleted | EventType::SessionStop => Some(SessionStatus::Finished),
            _ => None,
        }
    }
}

/// Who wrote a `message` event.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    User,
    Assistant,
    System,
}

impl Role {
    /// The name stored in the database and sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::System => "system",
        }
    }
}

/// Why a run ended, as carried by `run_completed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunEndReason {
    Completed,
    Error,
    Interrupted,
    /// Stopped on request (`ao-stop`, `POST /sessions/{id}/stop`).
    Stopped,
    /// Out of money: the CLI's `--max-budget-usd` ended it, or its tree's
    /// budget ran out and the session manager stopped it.
    Budget,
}

impl RunEndReason {
    /// The name sent on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            RunEndReason::Completed => "completed",
            RunEndReason::Error => "error",
            RunEndReason::Interrupted => "interrupted",
            RunEndReason::Stopped => "stopped",
            RunEndReason::Budget => "budget",
        }
    }
}

/// One block of a message's content, `{"type":"text","text":"..."}` for text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ContentBlock {
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
}

impl ContentBlock {
    /// A text block.
    pub fn text(text: impl Into<String>) -> Self {
        ContentBlock {
            kind: "text".to_owned(),
            text: Some(text.into()),
        }
    }
}

/// One event as a sender posts it. Fields that do not apply to its type are
/// left out; the server keeps any extra fields a sender adds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Event {
    pub event_type: EventType,
    pub session_id: String,
    /// Required when posted; an older server's stored events lack it.
    #[serde(default)]
    pub session_name: String,
    pub timestamp: String,
    /// Chosen by the sender so that a retried or replayed event is stored once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event_id: Option<Uuid>,
    /// The run it belongs to (`run_id` of the run's opening backup line;
    /// runs written before runs had ids have none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_input: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_output: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<Role>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Vec<ContentBlock>>,
    /// On the answer of a run with an output schema: the JSON document.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub structured_output: Option<Value>,
    /// `false` on what the assistant says between tool calls (and its
    /// thinking, a `thinking` content block): only the message without it
    /// is a run's answer, what `/result` and `ao-get-result` give.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    /// On what a subagent (the CLI's Task tool) said or called: the tool
    /// call that started it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_tool_use_id: Option<String>,
    /// On `changes`: the files the run changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub files: Option<Vec<ChangedFile>>,
    /// On `changes`: the unified diff, cut at [`MAX_DIFF`] bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff: Option<String>,
    /// On `changes`: the diff was cut.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub diff_truncated: Option<bool>,
    /// On `changes` in a worktree session: the commit its branch started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// On `pre_tool` / `post_tool`: the tool call they belong to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tool_use_id: Option<String>,
    /// On `run_completed`: what the CLI said the run cost, in US dollars.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        serialize_with = "super::money::serialize_option"
    )]
    pub cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub num_turns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duration_api_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub usage: Option<Usage>,
    /// Per model, as the CLI gives it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_usage: Option<Value>,
    /// On `permission_request` / `permission_decision`: the request (the
    /// CLI's control request id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<RequestKind>,
    /// The CLI's `permission_suggestions`, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suggestions: Option<Value>,
    /// The file the tool call would touch, when the CLI says.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub blocked_path: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decision: Option<Decision>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub decided_by: Option<DecidedBy>,
    /// A deny's reason, or why it was decided so.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A question's answers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub answers: Option<Answers>,
    /// An allow that accepted the CLI's suggestions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub always: Option<bool>,
}

/// The largest diff a `changes` event carries, in bytes.
pub const MAX_DIFF: usize = 256 * 1024;

/// One file a run changed, with its added and removed lines (`None` for a
/// binary file).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ChangedFile {
    pub path: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub added: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub removed: Option<u64>,
}

/// The longest session id or name the API accepts.
pub const MAX_ID_LEN: usize = 256;

impl Event {
    /// An event with only the fields every type carries.
    pub fn new(
        event_type: EventType,
        session_id: impl Into<String>,
        session_name: impl Into<String>,
        timestamp: impl Into<String>,
    ) -> Self {
        Event {
            event_type,
            session_id: session_id.into(),
            session_name: session_name.into(),
            timestamp: timestamp.into(),
            event_id: None,
            run_id: None,
            tool_name: None,
            tool_input: None,
            tool_output: None,
            error: None,
            exit_code: None,
            reason: None,
            role: None,
            content: None,
            structured_output: None,
            is_final: None,
            parent_tool_use_id: None,
            files: None,
            diff: None,
            diff_truncated: None,
            base: None,
            tool_use_id: None,
            cost_usd: None,
            num_turns: None,
            duration_ms: None,
            duration_api_ms: None,
            usage: None,
            model_usage: None,
            request_id: None,
            kind: None,
            suggestions: None,
            blocked_path: None,
            decision: None,
            decided_by: None,
            message: None,
            answers: None,
            always: None,
        }
    }

    /// Checks what serde cannot: non-empty ids, a real timestamp, and the
    /// fields each event type needs. The message says what is wrong.
    pub fn validate(&self) -> Result<(), String> {
        check_id("session_id", &self.session_id)?;
        check_text("session_name", &self.session_name)?;
        parse_timestamp(&self.timestamp).map_err(|e| format!("timestamp: {e}"))?;
        if let Some(cost) = self.cost_usd
            && !(cost.is_finite() && cost >= 0.0)
        {
            return Err(format!(
                "cost_usd must be a non-negative number (got {cost})"
            ));
        }
        let needs_tool = matches!(self.event_type, EventType::PreTool | EventType::PostTool);
        if self.event_type == EventType::Message {
            if self.role.is_none() {
                return Err("a message event needs a role".to_owned());
            }
            if self.content.is_none() {
                return Err("a message event needs content".to_owned());
            }
        } else if self.event_type == EventType::Changes && self.files.is_none() {
            return Err("a changes event needs files".to_owned());
        } else if needs_tool && self.tool_name.as_deref().is_none_or(str::is_empty) {
            return Err(format!(
                "a {} event needs a tool_name",
                self.event_type.as_str()
            ));
        }
        self.validate_request()
    }

    /// The fields of a request and of its decision.
    fn validate_request(&self) -> Result<(), String> {
        let name = self.event_type.as_str();
        match self.event_type {
            EventType::PermissionRequest => {
                check_id("request_id", self.request_id.as_deref().unwrap_or(""))?;
                if self.kind.is_none() {
                    return Err(format!("a {name} event needs a kind"));
                }
                if self.tool_name.as_deref().is_none_or(str::is_empty) {
                    return Err(format!("a {name} event needs a tool_name"));
                }
            }
            EventType::PermissionDecision => {
                check_id("request_id", self.request_id.as_deref().unwrap_or(""))?;
                if self.decision.is_none() || self.decided_by.is_none() {
                    return Err(format!("a {name} event needs a decision and decided_by"));
                }
            }
            _ => {}
        }
        Ok(())
    }

    /// Puts a run's figures on this (`run_completed`) event.
    pub fn set_figures(&mut self, figures: &RunFigures) {
        self.cost_usd = figures.cost_usd;
        self.usage = figures.usage;
        self.model_usage = figures.model_usage.clone();
        self.num_turns = figures.num_turns;
        self.duration_ms = figures.duration_ms;
        self.duration_api_ms = figures.duration_api_ms;
    }

    /// The run figures this event carries.
    pub fn figures(&self) -> RunFigures {
        RunFigures {
            cost_usd: self.cost_usd,
            usage: self.usage,
            model_usage: self.model_usage.clone(),
            num_turns: self.num_turns,
            duration_ms: self.duration_ms,
            duration_api_ms: self.duration_api_ms,
        }
    }

    /// The text of a message's text blocks, joined: what `ao-get-result`
    /// prints for the last answer.
    pub fn text(&self) -> String {
        self.content
            .iter()
            .flatten()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect::<Vec<_>>()
            .join("")
    }

    /// Whether this is a run's answer: an assistant message that is not
    /// marked `"final": false`.
    pub fn is_answer(&self) -> bool {
        self.event_type == EventType::Message
            && self.role == Some(Role::Assistant)
            && self.is_final != Some(false)
    }
}

/// Checks a session id: it appears in URL paths, so no slashes or controls.
pub fn check_id(field: &str, value: &str) -> Result<(), String> {
    check_text(field, value)?;
    if value.contains(['/', '\\', '?', '#']) || value.chars().any(char::is_whitespace) {
        return Err(format!(
            "{field} must not contain slashes, '?', '#' or white space"
        ));
    }
    Ok(())
}

/// Checks a short text field: non-empty, bounded, no control characters.
pub fn check_text(field: &str, value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err(format!("{field} must not be empty"));
    }
    if value.len() > MAX_ID_LEN {
        return Err(format!("{field} is longer than {MAX_ID_LEN} bytes"));
    }
    if value.chars().any(char::is_control) {
        return Err(format!("{field} must not contain control characters"));
    }
    Ok(())
}

/// An event as the server returns it: what was sent, plus `id`, the
/// server's sequence number (use it with `?after=` to page).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct StoredEvent {
    pub id: i64,
    #[serde(flatten)]
    pub event: Event,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn legacy_names_have_the_same_effect() {
        assert_eq!(
            EventType::SessionStart.status_effect(),
            EventType::RunStart.status_effect()
        );
        assert_eq!(
            EventType::SessionStop.status_effect(),
            Some(SessionStatus::Finished)
        );
        assert_eq!(EventType::Message.status_effect(), None);
    }

    #[test]
    fn validation_names_the_problem() {
        let mut e = Event::new(EventType::Message, "s1", "n", "2024-01-01T00:00:00Z");
        assert!(e.validate().unwrap_err().contains("role"));
        e.role = Some(Role::Assistant);
        e.content = Some(vec![ContentBlock::text("hi")]);
        assert!(e.validate().is_ok());
        e.timestamp = "nope".into();
        assert!(e.validate().unwrap_err().contains("timestamp"));
        let e = Event::new(EventType::PostTool, "s1", "n", "2024-01-01T00:00:00Z");
        assert!(e.validate().unwrap_err().contains("tool_name"));
        let e = Event::new(EventType::RunStart, "a/b", "n", "2024-01-01T00:00:00Z");
        assert!(e.validate().unwrap_err().contains("slashes"));
    }

    #[test]
    fn text_joins_text_blocks() {
        let mut e = Event::new(EventType::Message, "s", "n", "2024-01-01T00:00:00Z");
        e.content = Some(vec![
            ContentBlock::text("a"),
            ContentBlock {
                kind: "image".into(),
                text: None,
            },
            ContentBlock::text("b"),
            ContentBlock {
                kind: "thinking".into(),
                text: Some("hmm".into()),
            },
        ]);
        assert_eq!(e.text(), "ab", "thinking is not the answer's text");
    }
}
