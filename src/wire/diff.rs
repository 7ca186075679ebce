//! `GET /sessions/{id}/diff`: a worktree session's branch against its base.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use super::ChangedFile;

/// The whole branch of a worktree session against the commit it started from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct BranchDiffAnswer {
    pub branch: String,
    pub base: String,
    pub files: Vec<ChangedFile>,
    /// The unified diff, cut at 256 KiB.
    pub diff: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diff_truncated: bool,
}
