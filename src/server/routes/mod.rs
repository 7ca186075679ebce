//! Every route of the API, declared in one place; handlers live in the
//! module named for the resource they serve.

mod access;
mod callbacks;
mod diff;
mod drafts;
mod events;
mod hosts;
mod live;
mod requests;
mod runs;
mod search;
mod sessions;
mod usage;

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::http::{Method, Uri, header};
use axum::response::IntoResponse;
use axum::routing::get;
use utoipa::OpenApi;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::AppState;
use super::dashboard;
use super::error::ApiError;
use crate::wire::{ErrorAnswer, HealthAnswer, LiveMessage};

/// The parts of the OpenAPI document that are not a route.
#[derive(OpenApi)]
#[openapi(
    info(
        title = "Agent Orchestrator session manager",
        description = "Sessions of Claude Code runs and their events, with live updates over /ws and /sse. \
Every error is {\"detail\": \"...\"} with a 4xx status saying what is wrong. \
Runs are launched on hosts with POST /runs (which needs the local or the configured token)."
    ),
    tags(
        (name = "sessions", description = "Create, list, read, change and delete sessions"),
        (name = "events", description = "What happened in a session, in order"),
        (name = "requests", description = "What a session's run waits for (a permission, a question), and the decisions that answer it"),
        (name = "live", description = "Every change, pushed as it is committed"),
        (name = "runs", description = "Launch runs on hosts, follow and stop them"),
        (name = "hosts", description = "The machines that run sessions: the session manager's own and ao-host processes"),
    ),
    components(schemas(ErrorAnswer, LiveMessage))
)]
struct ApiDoc;

/// The API's routes with their OpenAPI description: one declaration per
/// route, so the document cannot drift from what is served.
#[allow(deprecated)] // the legacy aliases are served, and documented as deprecated
fn api() -> OpenApiRouter<AppState> {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(health))
        .routes(routes!(sessions::list, sessions::create))
        .routes(routes!(sessions::get, sessions::update, sessions::delete))
        .routes(routes!(sessions::update_metadata))
        .routes(routes!(sessions::status))
        .routes(routes!(sessions::result))
        .routes(routes!(sessions::stop))
        .routes(routes!(usage::usage))
        .routes(routes!(search::search))
        .routes(routes!(access::access))
        .routes(routes!(access::agents))
        .routes(routes!(drafts::post))
        .routes(routes!(drafts::get))
        .routes(routes!(diff::branch_diff))
        .routes(routes!(usage::budget))
        .routes(routes!(callbacks::register))
        .routes(routes!(callbacks::end))
        .routes(routes!(callbacks::list))
        .routes(routes!(requests::list))
        .routes(routes!(requests::get, requests::decide))
        .routes(routes!(events::list, events::add))
        .routes(routes!(events::add_legacy))
        .routes(routes!(events::list_legacy))
        .routes(routes!(runs::list, runs::create))
        .routes(routes!(runs::get))
        .routes(routes!(runs::stop))
        .routes(routes!(runs::claim))
        .routes(routes!(runs::exited))
        .routes(routes!(hosts::list, hosts::register))
        .routes(routes!(hosts::heartbeat))
        .routes(routes!(hosts::leave))
        .routes(routes!(live::ws::ws))
        .routes(routes!(live::sse::sse))
}

/// The whole API over `state`.
pub fn router(state: AppState) -> Router {
    let max_body = state.max_body_bytes;
    let (api, doc) = api().split_for_parts();
    let doc: Arc<str> = doc.to_pretty_json().unwrap_or_default().into();
    api.route(
        "/openapi.json",
        get(move || async move {
            (
                [(header::CONTENT_TYPE, "application/json")],
                doc.to_string(),
            )
                .into_response()
        }),
    )
    .merge(dashboard::routes())
    .fallback(not_found)
    .method_not_allowed_fallback(method_not_allowed)
    .layer(DefaultBodyLimit::max(max_body))
    .layer(axum::middleware::from_fn_with_state(
        state.clone(),
        super::guard::guard,
    ))
    .layer(axum::middleware::from_fn(super::error::log_refusals))
    .with_state(state)
}

/// `GET /health`: answers while the server is up.
#[utoipa::path(get, path = "/health", tag = "sessions",
    responses((status = 200, body = HealthAnswer)))]
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
