//! `/callbacks`: a child's run registers the callback that resumes its
//! parent when the run ends; `/sessions/{id}/callbacks` lists what a parent
//! is still owed.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

use crate::name::SessionName;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, JsonBody};
use crate::server::guard::Actor;
use crate::wire::{CallbackAnswer, CallbackCreate, CallbacksAnswer, ErrorAnswer, check_id};

/// `POST /callbacks`
#[utoipa::path(post, path = "/callbacks", tag = "sessions", request_body = CallbackCreate,
    responses(
        (status = 201, description = "Registered (waiting for the child's run to end); a repeat answers the same callback", body = CallbackAnswer),
        (status = 401, description = "Neither the configured nor the local token", body = ErrorAnswer),
        (status = 404, description = "No such parent session", body = ErrorAnswer),
        (status = 422, description = "A field is invalid", body = ErrorAnswer),
    ))]
pub async fn register(
    State(state): State<AppState>,
    _actor: Actor,
    body: JsonBody<CallbackCreate>,
) -> Result<Response, ApiError> {
    let create = body.value;
    uuid::Uuid::parse_str(&create.child_run_id)
        .map_err(|_| ApiError::unprocessable("child_run_id must be a run id (a UUID)"))?;
    SessionName::parse(&create.child_session_name)
        .map_err(|e| ApiError::unprocessable(e.to_string()))?;
    check_id("parent_session_id", &create.parent_session_id).map_err(ApiError::unprocessable)?;
    let callback = state.store.register_callback(create).await?;
    Ok((StatusCode::CREATED, Json(CallbackAnswer { callback })).into_response())
}

/// Body of `POST /callbacks/{child_run_id}/end`.
#[derive(Debug, serde::Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CallbackEnd {
    /// Why the child's run ended before its CLI began the conversation.
    pub error: String,
}

/// `POST /callbacks/{child_run_id}/end`
#[utoipa::path(post, path = "/callbacks/{child_run_id}/end", tag = "sessions", params(("child_run_id" = String, Path, description = "The child run's id")), request_body = CallbackEnd,
    responses(
        (status = 200, description = "The callback is pending, with the error as the child's result (a child whose session never began)", body = CallbackAnswer),
        (status = 401, description = "Neither the configured nor the local token", body = ErrorAnswer),
        (status = 404, description = "No callback of that run", body = ErrorAnswer),
    ))]
pub async fn end(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(child_run_id): ApiPath<String>,
    body: JsonBody<CallbackEnd>,
) -> Result<Json<CallbackAnswer>, ApiError> {
    let callback = state
        .store
        .end_callback(child_run_id, body.value.error)
        .await?;
    Ok(Json(CallbackAnswer { callback }))
}

/// `GET /sessions/{id}/callbacks`
#[utoipa::path(get, path = "/sessions/{session_id}/callbacks", tag = "sessions", params(("session_id" = String, Path, description = "The parent session's id")),
    responses(
        (status = 200, description = "The callbacks owed to the session and not delivered yet (waiting, pending, delivering, failed), in the order the children ended", body = CallbacksAnswer),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<CallbacksAnswer>, ApiError> {
    let callbacks = state.store.callbacks(session_id).await?;
    Ok(Json(CallbacksAnswer { callbacks }))
}
