//! `/sessions` and `/sessions/{id}`: create, list, read, change and delete
//! sessions, and the status and result lookups the commands poll.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::agents::settings::check_usd;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, ApiQuery, JsonBody};
use crate::server::store::ResultLookup;
use crate::wire::{
    DeleteAnswer, ErrorAnswer, Event, EventType, ResultAnswer, RunEndReason, SessionAnswer,
    SessionCreate, SessionPatch, SessionStatus, SessionsAnswer, StatusAnswer, StatusValue,
    StopAnswer, check_id, check_text, now_rfc3339, parse_timestamp,
};

/// How long a stop request waits for a runner to follow its session
/// before the run is taken for one whose runner is gone.
const RUNNER_WAIT: std::time::Duration = std::time::Duration::from_secs(3);

/// The longest project directory or agent name accepted.
const MAX_PATH_LEN: usize = 4096;

fn check_optional_path(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    let Some(value) = value else { return Ok(()) };
    if value.len() > MAX_PATH_LEN || value.contains('\0') {
        return Err(ApiError::unprocessable(format!(
            "{field} must be at most {MAX_PATH_LEN} bytes without NUL characters"
        )));
    }
    Ok(())
}

fn check_optional_time(field: &str, value: Option<&str>) -> Result<(), ApiError> {
    match value.map(parse_timestamp) {
        Some(Err(e)) => Err(ApiError::unprocessable(format!("{field}: {e}"))),
        _ => Ok(()),
    }
}

fn not_found(session_id: &str) -> ApiError {
    ApiError::not_found(format!("session '{session_id}' not found"))
}

/// `POST /sessions`
#[utoipa::path(post, path = "/sessions", tag = "sessions", request_body = SessionCreate,
    responses(
        (status = 200, description = "Created; broadcasts session_created", body = SessionAnswer),
        (status = 400, description = "Malformed JSON", body = ErrorAnswer),
        (status = 409, description = "The id exists, or the name is taken in that project_dir", body = ErrorAnswer),
        (status = 422, description = "A field is missing or invalid", body = ErrorAnswer),
    ))]
pub async fn create(
    State(state): State<AppState>,
    body: JsonBody<SessionCreate>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let create = body.value;
    check_id("session_id", &create.session_id).map_err(ApiError::unprocessable)?;
    check_text("session_name", &create.session_name).map_err(ApiError::unprocessable)?;
    check_optional_path("project_dir", create.project_dir.as_deref())?;
    if let Some(agent) = &create.agent_name {
        check_text("agent_name", agent).map_err(ApiError::unprocessable)?;
    }
    check_optional_time("created_at", create.created_at.as_deref())?;
    check_usd("budget_usd", create.budget_usd).map_err(ApiError::unprocessable)?;
    let session = state.store.create_session(create, now_rfc3339()).await?;
    Ok(Json(SessionAnswer {
        ok: Some(true),
        session,
    }))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// Only sessions with this name
    name: Option<String>,
    /// With `name`: only the one in this project directory
    project_dir: Option<String>,
}

/// `GET /sessions[?name=N[&project_dir=P]]`. The whole list comes from the
/// copy shared with live clients (see `server::snapshot`).
#[utoipa::path(get, path = "/sessions", tag = "sessions", params(ListQuery),
    responses((status = 200, description = "Sessions, newest first", body = SessionsAnswer)))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<ListQuery>,
) -> Result<Response, ApiError> {
    if query.name.is_none() && query.project_dir.is_none() {
        let sessions = state
            .snapshots
            .sessions_json(&state.store, &state.hub)
            .await?;
        let pieces = [
            Bytes::from_static(br#"{"sessions":"#),
            sessions,
            Bytes::from_static(b"}"),
        ];
        let body = Body::from_stream(futures_util::stream::iter(
            pieces.map(Ok::<_, std::convert::Infallible>),
        ));
        return Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response());
    }
    let sessions = state
        .store
        .list_sessions(query.name, query.project_dir)
        .await?;
    Ok(Json(SessionsAnswer { sessions }).into_response())
}

/// `GET /sessions/{id}`
#[utoipa::path(get, path = "/sessions/{session_id}", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses((status = 200, body = SessionAnswer), (status = 404, body = ErrorAnswer)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let session = state
        .store
        .get_session(session_id.clone())
        .await?
        .ok_or_else(|| not_found(&session_id))?;
    Ok(Json(SessionAnswer { ok: None, session }))
}

/// `GET /sessions/{id}/status`: never a 404, `not_existent` instead.
#[utoipa::path(get, path = "/sessions/{session_id}/status", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses((status = 200, description = "running, finished or not_existent (never 404)", body = StatusAnswer)))]
pub async fn status(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<StatusAnswer>, ApiError> {
    let status = match state.store.get_session(session_id).await? {
        Some(session) => session.status.into(),
        None => StatusValue::NotExistent,
    };
    Ok(Json(StatusAnswer { status }))
}

/// `GET /sessions/{id}/result`
#[utoipa::path(get, path = "/sessions/{session_id}/result", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The answer of the session's last run (its last assistant message)", body = ResultAnswer),
        (status = 400, description = "The session is running", body = ErrorAnswer),
        (status = 404, description = "Unknown session, or no result yet", body = ErrorAnswer),
        (status = 409, description = "The last run failed (the error in detail), or was interrupted or stopped before it answered", body = ErrorAnswer),
    ))]
pub async fn result(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<ResultAnswer>, ApiError> {
    match state.store.result(session_id.clone()).await? {
        ResultLookup::Found(answer) => Ok(Json(answer)),
        ResultLookup::UnknownSession => Err(not_found(&session_id)),
        ResultLookup::Running => Err(ApiError::bad_request(format!(
            "session '{session_id}' is still running"
        ))),
        ResultLookup::NoResult => Err(ApiError::not_found(format!(
            "session '{session_id}' has no result yet"
        ))),
        ResultLookup::Failed(why) => Err(ApiError::new(axum::http::StatusCode::CONFLICT, why)),
    }
}

/// `PATCH /sessions/{id}` and its older alias `PATCH /sessions/{id}/metadata`.
#[utoipa::path(patch, path = "/sessions/{session_id}", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")), request_body = SessionPatch,
    responses(
        (status = 200, description = "Updated; broadcasts session_updated", body = SessionAnswer),
        (status = 404, body = ErrorAnswer), (status = 409, description = "The new name is taken", body = ErrorAnswer),
        (status = 422, body = ErrorAnswer),
    ))]
pub async fn update(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    body: JsonBody<SessionPatch>,
) -> Result<Json<SessionAnswer>, ApiError> {
    let patch = body.value;
    if let Some(name) = &patch.session_name {
        check_text("session_name", name).map_err(ApiError::unprocessable)?;
    }
    if let Some(agent) = &patch.agent_name {
        check_text("agent_name", agent).map_err(ApiError::unprocessable)?;
    }
    check_optional_path("project_dir", patch.project_dir.as_deref())?;
    check_optional_time("last_resumed_at", patch.last_resumed_at.as_deref())?;
    check_usd("budget_usd", patch.budget_usd).map_err(ApiError::unprocessable)?;
    let session = state.store.update_session(session_id, patch).await?;
    Ok(Json(SessionAnswer {
        ok: Some(true),
        session,
    }))
}

/// `PATCH /sessions/{id}/metadata`: the older name of `PATCH /sessions/{id}`.
#[utoipa::path(patch, path = "/sessions/{session_id}/metadata", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")), request_body = SessionPatch,
    responses((status = 200, body = SessionAnswer), (status = 404, body = ErrorAnswer)))]
#[deprecated(note = "use PATCH /sessions/{session_id}")]
pub async fn update_metadata(
    state: State<AppState>,
    path: ApiPath<String>,
    body: JsonBody<SessionPatch>,
) -> Result<Json<SessionAnswer>, ApiError> {
    update(state, path, body).await
}

/// `DELETE /sessions/{id}`
#[utoipa::path(delete, path = "/sessions/{session_id}", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "Deleted with its events; broadcasts session_deleted", body = DeleteAnswer),
        (status = 404, body = ErrorAnswer),
    ))]
pub async fn delete(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<DeleteAnswer>, ApiError> {
    let deleted = state.store.delete_session(session_id.clone()).await?;
    state.drafts.clear(&session_id);
    Ok(Json(DeleteAnswer {
        ok: true,
        session_id,
        deleted,
    }))
}

/// `POST /sessions/{id}/stop`: asks the session's runner, wherever it runs,
/// to stop its run (it follows its session's feed, on any replica, and
/// acts within 2 s). A
/// running session that no runner follows has lost its runner: its run is
/// closed here as interrupted rather than left running.
#[utoipa::path(post, path = "/sessions/{session_id}/stop", tag = "sessions", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 202, description = "Its runner was asked to stop (delivered); broadcasts stop_requested", body = StopAnswer),
        (status = 200, description = "No runner follows the session: the run was closed as interrupted (closed)", body = StopAnswer),
        (status = 404, body = ErrorAnswer),
        (status = 409, description = "The session is not running", body = ErrorAnswer),
    ))]
pub async fn stop(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let session = state
        .store
        .get_session(session_id.clone())
        .await?
        .ok_or_else(|| not_found(&session_id))?;
    if session.status != SessionStatus::Running {
        return Err(ApiError::new(
            axum::http::StatusCode::CONFLICT,
            format!("session '{session_id}' is not running"),
        ));
    }
    // A run started a moment ago may not follow its feed yet.
    let deadline = tokio::time::Instant::now() + RUNNER_WAIT;
    loop {
        if state.hub.has_runner(&session_id) || state.store.runner_elsewhere(&session_id).await? {
            state.store.request_stop(session_id).await?;
            let answer = StopAnswer {
                ok: true,
                delivered: true,
                closed: false,
            };
            return Ok((axum::http::StatusCode::ACCEPTED, Json(answer)).into_response());
        }
        if tokio::time::Instant::now() >= deadline {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
    let mut end = Event::new(
        EventType::RunCompleted,
        &session_id,
        &session.session_name,
        now_rfc3339(),
    );
    end.reason = Some(RunEndReason::Interrupted.as_str().to_owned());
    end.error = Some("a stop was requested and no runner was following the session; the run is closed as interrupted".to_owned());
    let body = serde_json::to_string(&end)
        .map_err(|e| ApiError::bad_request(format!("cannot encode the event: {e}")))?;
    state.store.add_event(end, body, false).await?;
    let answer = StopAnswer {
        ok: true,
        delivered: false,
        closed: true,
    };
    Ok(Json(answer).into_response())
}
