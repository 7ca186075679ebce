//! `GET /search`: where sessions said or did something.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// One event that matched.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchHit {
    pub session_id: String,
    pub session_name: String,
    /// The event's id as its sender chose it (`null` if it had none).
    pub event_id: Option<String>,
    /// The server's id of the event (`GET /sessions/{id}/events` lists it as `id`).
    pub id: i64,
    /// `message` (a prompt, an answer or narration) or `pre_tool` (a tool call's input).
    pub event_type: String,
    /// A message's role.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// `false` on narration and thinking.
    #[serde(rename = "final", default, skip_serializing_if = "Option::is_none")]
    pub is_final: Option<bool>,
    pub timestamp: Option<String>,
    /// The matching words with some text around them; each match is
    /// between U+0002 and U+0003, and cut text is marked with `…`.
    pub snippet: String,
}

/// `GET /search`: the best hits first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct SearchAnswer {
    pub hits: Vec<SearchHit>,
}
