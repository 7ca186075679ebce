//! `/sessions/{id}/live` and `/sessions/{id}/draft`: text as the model
//! writes it. A runner posts what it reads of the model's stream; the
//! server passes it on to live clients (on PostgreSQL, those of every
//! replica) and keeps the current message's text so far (`server::drafts`),
//! and stores none of it: the message's event, which follows, is the record.

use axum::Json;
use axum::extract::State;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, JsonBody};
use crate::server::live::Frame;
use crate::wire::{DraftAnswer, ErrorAnswer, LiveAnswer, LiveInput, MAX_DELTA_TEXT};

async fn known(state: &AppState, session_id: &str) -> Result<(), ApiError> {
    match state.store.get_session(session_id.to_owned()).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found(format!(
            "session '{session_id}' not found"
        ))),
    }
}

/// `POST /sessions/{id}/live`
#[utoipa::path(post, path = "/sessions/{session_id}/live", tag = "live", params(("session_id" = String, Path, description = "The session's id")), request_body = LiveInput,
    responses(
        (status = 200, description = "Broadcast (text_delta on /ws, /sse and the session's filtered feed); never stored", body = LiveAnswer),
        (status = 404, description = "Unknown session", body = ErrorAnswer),
        (status = 422, description = "An unknown type, or text over 64 KiB", body = ErrorAnswer),
    ))]
pub async fn post(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    body: JsonBody<LiveInput>,
) -> Result<Json<LiveAnswer>, ApiError> {
    let LiveInput::TextDelta(delta) = body.value;
    if delta.text.len() > MAX_DELTA_TEXT {
        return Err(ApiError::unprocessable(format!(
            "text is longer than {MAX_DELTA_TEXT} bytes"
        )));
    }
    known(&state, &session_id).await?;
    state.drafts.add(&session_id, &delta);
    state.hub.publish(Frame::text_delta(&session_id, &delta));
    state.store.share_delta(&session_id, &delta).await;
    Ok(Json(LiveAnswer { ok: true }))
}

/// `GET /sessions/{id}/draft`
#[utoipa::path(get, path = "/sessions/{session_id}/draft", tag = "live", params(("session_id" = String, Path, description = "The session's id")),
    responses(
        (status = 200, description = "The text so far of the message the session's model is writing; null when none is", body = DraftAnswer),
        (status = 404, description = "Unknown session", body = ErrorAnswer),
    ))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
) -> Result<Json<DraftAnswer>, ApiError> {
    known(&state, &session_id).await?;
    Ok(Json(DraftAnswer {
        draft: state.drafts.get(&session_id),
    }))
}
