//! Every route of the API, declared in one place; handlers live in the
//! module named for the resource they serve.

mod events;
mod sessions;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri};
use axum::routing::{get, patch, post};

use super::AppState;
use super::dashboard;
use super::error::ApiError;
use super::live;
use crate::wire::HealthAnswer;

/// The whole API over `state`.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/sessions", get(sessions::list).post(sessions::create))
        .route(
            "/sessions/{session_id}",
            get(sessions::get)
                .patch(sessions::update)
                .delete(sessions::delete),
        )
        .route("/sessions/{session_id}/metadata", patch(sessions::update))
        .route("/sessions/{session_id}/status", get(sessions::status))
        .route("/sessions/{session_id}/result", get(sessions::result))
        .route(
            "/sessions/{session_id}/events",
            get(events::list).post(events::add),
        )
        .route("/events", post(events::add_legacy))
        .route("/events/{session_id}", get(events::list))
        .route("/ws", get(live::ws))
        .route("/sse", get(live::sse))
        .merge(dashboard::routes())
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(max_body))
        .with_state(state)
}

async fn health() -> Json<HealthAnswer> {
    Json(HealthAnswer {
        status: "ok".to_owned(),
    })
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(format!("no route for {}", uri.path()))
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::METHOD_NOT_ALLOWED,
        format!("{method} is not allowed on {}", uri.path()),
    )
}
