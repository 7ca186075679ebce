//! `/sessions/{id}/requests`: what a session's run waits for (a tool call's
//! permission, a question), and the decisions that answer it. A decision
//! makes the machine act, so it needs the local (or configured) token.

use axum::Json;
use axum::extract::State;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, JsonBody};
use crate::server::guard::Actor;
use crate::wire::{
    DecisionAnswer, DecisionBody, ErrorAnswer, RequestAnswer, RequestsAnswer, check_id,
};

/// `GET /sessions/{id}/requests`
#[utoipa::path(get, path = "/sessions/{session_id}/requests", tag = "requests", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The session's pending requests, oldest first", body = RequestsAnswer),
        (status = 404, description = "Unknown session", body = ErrorAnswer),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<RequestsAnswer>, ApiError> {
    let requests = state
        .store
        .pending_requests(session_id.clone())
        .await?
        .ok_or_else(|| ApiError::not_found(format!("session '{session_id}' not found")))?;
    Ok(Json(RequestsAnswer { requests }))
}

/// `GET /sessions/{id}/requests/{request_id}`: what a runner that
/// reconnects asks about a request it still waits on.
#[utoipa::path(get, path = "/sessions/{session_id}/requests/{request_id}", tag = "requests",
    params(("session_id" = String, Path, description = "The session's id"), ("request_id" = String, Path, description = "The request's id")),
    responses(
        (status = 200, description = "The request, whatever its status (pending, answered, closed), with its decision once there is one", body = RequestAnswer),
        (status = 404, description = "Unknown session, or no such request in it", body = ErrorAnswer),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath((session_id, request_id)): ApiPath<(String, String)>,
) -> Result<Json<RequestAnswer>, ApiError> {
    let request = state
        .store
        .request(session_id.clone(), request_id.clone())
        .await?
        .ok_or_else(|| {
            ApiError::not_found(format!(
                "session '{session_id}' has no request '{request_id}'"
            ))
        })?;
    Ok(Json(RequestAnswer { request }))
}

/// `POST /sessions/{id}/requests/{request_id}`
#[utoipa::path(post, path = "/sessions/{session_id}/requests/{request_id}", tag = "requests",
    params(("session_id" = String, Path, description = "The session's id"), ("request_id" = String, Path, description = "The request's id")),
    request_body = DecisionBody,
    responses(
        (status = 200, description = "Taken; broadcasts request_answered (the session's runner passes it on) and session_updated", body = DecisionAnswer),
        (status = 401, description = "Without the local token (or the configured one)", body = ErrorAnswer),
        (status = 404, description = "Unknown session, or no such request in it (a request of another session included)", body = ErrorAnswer),
        (status = 409, description = "Already decided, or its run ended", body = ErrorAnswer),
        (status = 422, description = "A decision that does not fit the request (answers for a permission, always without suggestions...)", body = ErrorAnswer),
    ))]
pub async fn decide(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath((session_id, request_id)): ApiPath<(String, String)>,
    body: JsonBody<DecisionBody>,
) -> Result<Json<DecisionAnswer>, ApiError> {
    check_id("request_id", &request_id).map_err(ApiError::unprocessable)?;
    state
        .store
        .decide(session_id, request_id, body.value)
        .await?;
    Ok(Json(DecisionAnswer { ok: true }))
}
