//! Text as it is written: the deltas a runner forwards while the model
//! writes (live only, never stored), and the text so far of a session's
//! current message, which a page that opens late starts from.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// The most text one `text_delta` may carry, in bytes: a runner sends at
/// most ten a second, far less than a model writes in that time.
pub const MAX_DELTA_TEXT: usize = 64 * 1024;

/// Body of `POST /sessions/{id}/live`: one live-only message for the
/// session's feed. Only `text_delta` for now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum LiveInput {
    TextDelta(TextDelta),
}

/// Text the model wrote since the last delta of the same block.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct TextDelta {
    pub text: String,
    /// The model's message the text belongs to (the API's message id).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    /// The content block of that message.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// Counts the deltas of one block from 1, so that a reader that
    /// started from a [`Draft`] skips those it holds.
    pub seq: u64,
}

/// The text so far of the message a session's model is writing.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Draft {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u64>,
    /// The `seq` of the last delta it holds.
    pub seq: u64,
    pub text: String,
    /// The text outgrew what the server keeps; its end is missing.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub truncated: bool,
}

/// `GET /sessions/{id}/draft`: `null` when no message is being written.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct DraftAnswer {
    pub draft: Option<Draft>,
}

/// `POST /sessions/{id}/live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LiveAnswer {
    pub ok: bool,
}
