//! `/sessions/{id}/diff`: a worktree session's whole branch against the
//! commit it started from, read from the repository on this machine with
//! git (`crate::changes`). It runs git in a folder the session's record
//! names, so it needs the token that makes this machine act.

use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;

use crate::changes;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::ApiPath;
use crate::server::guard::Actor;
use crate::wire::{BranchDiffAnswer, ErrorAnswer};

/// `GET /sessions/{id}/diff`
#[utoipa::path(get, path = "/sessions/{session_id}/diff", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The branch's files and unified diff against its base (cut at 256 KiB)", body = BranchDiffAnswer),
        (status = 401, description = "Without the token that makes this machine act", body = ErrorAnswer),
        (status = 404, description = "Unknown session, not a worktree session, or no run named its base yet", body = ErrorAnswer),
        (status = 409, description = "The repository is not on this machine, or git failed", body = ErrorAnswer),
    ))]
pub async fn branch_diff(
    _actor: Actor,
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<BranchDiffAnswer>, ApiError> {
    let session = state
        .store
        .get_session(session_id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session '{session_id}' not found")))?;
    let Some(branch) = session.branch.filter(|b| is_branch_name(b)) else {
        return Err(ApiError::not_found(format!(
            "session '{}' runs in no worktree of its own",
            session.session_name
        )));
    };
    let base = state
        .store
        .branch_base(session_id)
        .await?
        .filter(|b| b.len() >= 7 && b.chars().all(|c| c.is_ascii_hexdigit()))
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "no run of session '{}' has reported its branch's base yet",
                session.session_name
            ))
        })?;
    // The worktree while it exists; the project's checkout, which shares
    // the branch, once it was cleaned.
    let dir = [session.worktree, session.project_dir]
        .into_iter()
        .flatten()
        .map(PathBuf::from)
        .find(|p| p.is_absolute() && p.is_dir())
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::CONFLICT,
                "neither the session's worktree nor its project is a folder on this machine",
            )
        })?;
    let to = format!("refs/heads/{branch}");
    let (from, at) = (base.clone(), dir.clone());
    let diff = tokio::task::spawn_blocking(move || changes::diff(&at, &from, &to))
        .await
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, format!("git did not finish: {e}")))?
        .map_err(|e| ApiError::new(StatusCode::CONFLICT, e.to_string()))?;
    Ok(Json(BranchDiffAnswer {
        branch,
        base,
        files: diff.files,
        diff: diff.text,
        diff_truncated: diff.truncated,
    }))
}

/// A branch name git could have made for a session, and nothing git would
/// read as an option or a range.
fn is_branch_name(name: &str) -> bool {
    !name.is_empty()
        && !name.starts_with('-')
        && !name.contains("..")
        && name
            .chars()
            .all(|c| c.is_alphanumeric() || matches!(c, '/' | '-' | '_' | '.'))
}
