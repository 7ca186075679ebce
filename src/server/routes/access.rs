//! `/access` and `/agents`: what the dashboard asks before it offers to
//! act: whether this browser may, and a project's agents on this machine.

use std::path::PathBuf;

use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::agents::Catalog;
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::ApiQuery;
use crate::server::guard::Actor;
use crate::wire::{AccessAnswer, AgentInfo, AgentsAnswer, ErrorAnswer};

/// `GET /access`
#[utoipa::path(get, path = "/access", tag = "sessions",
    responses((status = 200, description = "Whether this request's credentials (bearer or the dashboard's cookie) may answer requests and launch runs, and if not, how to get them", body = AccessAnswer)))]
pub async fn access(State(state): State<AppState>, headers: HeaderMap) -> Json<AccessAnswer> {
    let may_act = state.guard.may_act(&headers);
    Json(AccessAnswer {
        may_act,
        how: (!may_act).then(|| state.guard.how_to_act().to_owned()),
    })
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AgentsQuery {
    /// The project folder (absolute), on the session manager's machine
    project_dir: String,
}

/// `GET /agents?project_dir=P`
#[utoipa::path(get, path = "/agents", tag = "runs", params(AgentsQuery),
    responses(
        (status = 200, description = "The active agents a run in the project can use on the session manager's own machine (as ao-list-agents there), by name", body = AgentsAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 422, description = "Not an absolute path", body = ErrorAnswer),
    ))]
pub async fn agents(
    _actor: Actor,
    ApiQuery(query): ApiQuery<AgentsQuery>,
) -> Result<Json<AgentsAnswer>, ApiError> {
    let dir = query.project_dir;
    if !dir.starts_with('/') || dir.len() > 4096 || dir.chars().any(char::is_control) {
        return Err(ApiError::unprocessable(
            "project_dir must be an absolute path",
        ));
    }
    let extra = std::env::var_os(crate::config::ENV_AGENTS_DIR).map(PathBuf::from);
    let listing = tokio::task::spawn_blocking(move || {
        Catalog::for_project(&PathBuf::from(dir), extra.as_deref()).list()
    })
    .await
    .map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("listing the agents failed: {e}"),
        )
    })?;
    let agents = listing
        .agents
        .into_iter()
        .filter(|a| a.active)
        .map(|a| AgentInfo {
            name: a.name,
            description: a.description,
        })
        .collect();
    Ok(Json(AgentsAnswer { agents }))
}
