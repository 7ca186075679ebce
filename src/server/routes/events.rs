//! `/sessions/{id}/events` and the legacy `/events` routes: store events and
//! read them back, in order, without a silent cap.

use axum::Json;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value};
use utoipa::IntoParams;

use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, ApiQuery, JsonBody};
use crate::server::store::Store;
use crate::server::{AppState, drafts};
use crate::wire::{AddEventAnswer, ErrorAnswer, Event, EventsAnswer};

/// Rows fetched per read when streaming a long event list.
const PAGE: u32 = 1000;

/// `POST /sessions/{id}/events`
#[utoipa::path(post, path = "/sessions/{session_id}/events", tag = "events", params(("session_id" = String, Path, description = "The session's id")), request_body = Event,
    responses(
        (status = 200, description = "Stored (duplicate: its event_id was already stored); broadcasts event, and session_updated when the status changed", body = AddEventAnswer),
        (status = 400, description = "Malformed JSON, or the body's session_id differs from the URL's", body = ErrorAnswer),
        (status = 404, description = "Unknown session", body = ErrorAnswer),
        (status = 413, description = "The body is over the size limit", body = ErrorAnswer),
        (status = 422, description = "A field is missing or invalid", body = ErrorAnswer),
    ))]
pub async fn add(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    body: JsonBody<Event>,
) -> Result<Json<AddEventAnswer>, ApiError> {
    if body.value.session_id != session_id {
        return Err(ApiError::bad_request(format!(
            "the body's session_id '{}' differs from the URL's '{session_id}'",
            body.value.session_id
        )));
    }
    store_event(&state, body, false).await
}

/// `POST /events`, for clients that predate `/sessions/{id}/events`: there
/// the first event of an unknown session creates it, whatever its type
/// (hooks installed in the middle of a session send `pre_tool` first).
#[utoipa::path(post, path = "/events", tag = "events", request_body = Event,
    responses((status = 200, description = "Stored; an unknown session is created first", body = AddEventAnswer)))]
pub async fn add_legacy(
    State(state): State<AppState>,
    body: JsonBody<Event>,
) -> Result<Json<AddEventAnswer>, ApiError> {
    store_event(&state, body, true).await
}

async fn store_event(
    state: &AppState,
    body: JsonBody<Event>,
    create_if_missing: bool,
) -> Result<Json<AddEventAnswer>, ApiError> {
    let JsonBody {
        value: event,
        object,
    } = body;
    event.validate().map_err(ApiError::unprocessable)?;
    // The message being written ends with its event, or with the run.
    let ends_draft = drafts::ends(&event);
    let session_id = event.session_id.clone();
    let added = state
        .store
        .add_event(event, stored_body(object), create_if_missing)
        .await?;
    if ends_draft {
        state.drafts.clear(&session_id);
    }
    Ok(Json(AddEventAnswer {
        ok: true,
        duplicate: added.duplicate,
        filled: added.filled,
    }))
}

/// The event as it will be stored: every field sent, except an `id`, which
/// is the server's to assign.
fn stored_body(mut object: Map<String, Value>) -> String {
    object.shift_remove("id");
    Value::Object(object).to_string()
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct EventsQuery {
    /// Only events with an id above this one
    after: Option<i64>,
    /// At most this many events
    limit: Option<u32>,
}

/// `GET /sessions/{id}/events[?after=ID][&limit=N]` (and the legacy
/// `GET /events/{id}`). Without `limit`, every event, streamed page by page
/// so that a long session costs no more memory than a short one.
#[utoipa::path(get, path = "/sessions/{session_id}/events", tag = "events", params(("session_id" = String, Path, description = "The session's id"), EventsQuery),
    responses(
        (status = 200, description = "Events in the order stored, each with its id; never capped", body = EventsAnswer),
        (status = 404, body = ErrorAnswer),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiPath(session_id): ApiPath<String>,
    ApiQuery(query): ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    if state.store.get_session(session_id.clone()).await?.is_none() {
        return Err(ApiError::not_found(format!(
            "session '{session_id}' not found"
        )));
    }
    let cursor = Cursor {
        store: state.store.clone(),
        session_id,
        after: query.after.unwrap_or(0),
        remaining: query.limit.map(u64::from),
        written: 0,
    };
    let body = Body::from_stream(futures_util::stream::unfold(Some(cursor), next_chunk));
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

struct Cursor {
    store: Store,
    session_id: String,
    after: i64,
    remaining: Option<u64>,
    written: u64,
}

/// The next piece of `{"events":[...]}`: the opening, then one page at a
/// time, then the close. `None` ends the body.
async fn next_chunk(
    cursor: Option<Cursor>,
) -> Option<(Result<Bytes, std::io::Error>, Option<Cursor>)> {
    let mut cursor = cursor?;
    let want = cursor
        .remaining
        .map_or(PAGE, |r| r.min(u64::from(PAGE)) as u32);
    let rows = if want == 0 {
        Vec::new()
    } else {
        match cursor
            .store
            .events_page(cursor.session_id.clone(), cursor.after, want)
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                tracing::error!("reading events failed mid-answer: {e}");
                return Some((Err(std::io::Error::other(e.to_string())), None));
            }
        }
    };
    let mut chunk = String::new();
    if cursor.written == 0 {
        chunk.push_str("{\"events\":[");
    }
    let last_page = (rows.len() as u32) < want || want == 0;
    for (id, json) in &rows {
        if cursor.written > 0 {
            chunk.push(',');
        }
        chunk.push_str(json);
        cursor.written += 1;
        cursor.after = *id;
    }
    if let Some(remaining) = &mut cursor.remaining {
        *remaining -= rows.len() as u64;
    }
    let done = last_page || cursor.remaining == Some(0);
    if done {
        chunk.push_str("]}");
    }
    Some((Ok(Bytes::from(chunk)), (!done).then_some(cursor)))
}

/// `GET /events/{id}`: the older name of `GET /sessions/{id}/events`; as
/// the original system did, an unknown session has no events (not a 404).
#[utoipa::path(get, path = "/events/{session_id}", tag = "events", params(("session_id" = String, Path, description = "The session's id"), EventsQuery),
    responses((status = 200, description = "The events; none for an unknown session", body = EventsAnswer)))]
#[deprecated(note = "use GET /sessions/{session_id}/events")]
pub async fn list_legacy(
    state: State<AppState>,
    path: ApiPath<String>,
    query: ApiQuery<EventsQuery>,
) -> Result<Response, ApiError> {
    if state.store.get_session(path.0.clone()).await?.is_none() {
        return Ok(Json(EventsAnswer { events: Vec::new() }).into_response());
    }
    list(state, path, query).await
}
