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
