//! `/hosts`: the machines that run sessions register, beat and leave here,
//! and anyone may list them.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, ApiQuery, JsonBody};
use crate::server::guard::Actor;
use crate::wire::{
    ErrorAnswer, Host, HostAnswer, HostBeat, HostRegister, HostsAnswer, check_host_name, check_id,
};

/// The most runs one host may take at once.
const MAX_CAPACITY: u32 = 1000;
/// The most labels or folders one host may declare.
const MAX_ITEMS: usize = 100;

fn check_register(r: &HostRegister) -> Result<(), String> {
    check_host_name("name", &r.name)?;
    check_id("instance", &r.instance)?;
    if r.labels.len() > MAX_ITEMS || r.projects.len() > MAX_ITEMS {
        return Err(format!(
            "at most {MAX_ITEMS} labels and {MAX_ITEMS} project folders"
        ));
    }
    for label in &r.labels {
        check_host_name("label", label)?;
    }
    for dir in &r.projects {
        if !dir.starts_with('/') || dir.len() > 4096 || dir.chars().any(char::is_control) {
            return Err(format!("project folder '{dir}' must be an absolute path"));
        }
    }
    if !(1..=MAX_CAPACITY).contains(&r.capacity) {
        return Err(format!("capacity must be 1 to {MAX_CAPACITY}"));
    }
    if let Some(version) = &r.claude_version {
        crate::wire::check_text("claude_version", version)?;
    }
    Ok(())
}

impl crate::server::AppState {
    fn answer(&self, host: Host) -> Json<HostAnswer> {
        Json(HostAnswer {
            host,
            heartbeat_seconds: self.hosting.heartbeat().as_secs_f64(),
        })
    }
}

/// `GET /hosts`
#[utoipa::path(get, path = "/hosts", tag = "hosts",
    responses((status = 200, description = "Every host, by name, online or not, with its runs starting or running", body = HostsAnswer)))]
pub async fn list(State(state): State<AppState>) -> Result<Json<HostsAnswer>, ApiError> {
    let hosts = state.store.hosts().await?;
    Ok(Json(HostsAnswer { hosts }))
}

/// `POST /hosts`
#[utoipa::path(post, path = "/hosts", tag = "hosts", request_body = HostRegister,
    responses(
        (status = 200, description = "Registered and online; beat every heartbeat_seconds. Broadcasts host_updated", body = HostAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 409, description = "Another process of a host with this name is online", body = ErrorAnswer),
        (status = 422, body = ErrorAnswer),
    ))]
pub async fn register(
    State(state): State<AppState>,
    _actor: Actor,
    body: JsonBody<HostRegister>,
) -> Result<Json<HostAnswer>, ApiError> {
    let register = body.value;
    check_register(&register).map_err(ApiError::unprocessable)?;
    let embedded = state.hosting.is_embedded(&register.instance);
    let timeout = state.hosting.host_timeout.as_secs_f64();
    let host = state
        .store
        .register_host(register, embedded, timeout)
        .await?;
    Ok(state.answer(host))
}

/// `POST /hosts/{name}/heartbeat`
#[utoipa::path(post, path = "/hosts/{name}/heartbeat", tag = "hosts", params(("name" = String, Path, description = "The host's name")), request_body = HostBeat,
    responses(
        (status = 200, description = "Alive (online again, if it had been taken for dead)", body = HostAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 404, description = "Not registered: register again", body = ErrorAnswer),
        (status = 409, description = "Another process holds the name now", body = ErrorAnswer),
    ))]
pub async fn heartbeat(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(name): ApiPath<String>,
    body: JsonBody<HostBeat>,
) -> Result<Json<HostAnswer>, ApiError> {
    let host = state.store.heartbeat(name, body.value.instance).await?;
    Ok(state.answer(host))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct LeaveQuery {
    /// The host process that stops
    instance: String,
}

/// `DELETE /hosts/{name}`
#[utoipa::path(delete, path = "/hosts/{name}", tag = "hosts", params(("name" = String, Path, description = "The host's name"), LeaveQuery),
    responses(
        (status = 200, description = "Offline at once: its runs not started go back to the queue", body = HostAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 404, body = ErrorAnswer),
        (status = 409, description = "Another process holds the name", body = ErrorAnswer),
    ))]
pub async fn leave(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(name): ApiPath<String>,
    ApiQuery(query): ApiQuery<LeaveQuery>,
) -> Result<Json<HostAnswer>, ApiError> {
    let host = state.store.leave(name, query.instance).await?;
    Ok(state.answer(host))
}
