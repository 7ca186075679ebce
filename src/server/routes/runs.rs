//! `/runs`: launch a run on a host (`POST /runs`), follow it, stop it; and
//! the routes a host uses on the runs given to it (claim, exited).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use utoipa::IntoParams;

use crate::agents::settings::{PermissionMode, SystemPromptMode, check_usd};
use crate::claude::launch::MAX_SYSTEM_PROMPT_BYTES;
use crate::name::{AgentName, SessionName};
use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::{ApiPath, ApiQuery, JsonBody};
use crate::server::guard::Actor;
use crate::server::store::RunFilter;
use crate::wire::{
    ErrorAnswer, LaunchSettings, RunAnswer, RunClaim, RunCreate, RunExited, RunStatus, RunsAnswer,
    SessionPatch, check_host_name, check_id, check_text,
};

/// The longest project directory accepted.
const MAX_PATH_LEN: usize = 4096;
/// Runs `GET /runs` answers unless told otherwise, and at most.
const DEFAULT_LIMIT: u32 = 200;
const MAX_LIMIT: u32 = 10_000;

/// A value that becomes a command-line argument of the runner: text that
/// no option parser could take for a flag.
fn check_arg(field: &str, value: &str) -> Result<(), String> {
    check_text(field, value)?;
    if value.starts_with('-') {
        return Err(format!("{field} must not start with '-'"));
    }
    Ok(())
}

fn check_settings(s: &LaunchSettings) -> Result<(), String> {
    if let Some(model) = &s.model {
        check_arg("settings.model", model)?;
    }
    for (field, list) in [
        ("settings.tools", &s.tools),
        ("settings.allowed_tools", &s.allowed_tools),
        ("settings.disallowed_tools", &s.disallowed_tools),
    ] {
        for item in list.iter().flatten() {
            check_arg(field, item)?;
        }
    }
    if let Some(mode) = &s.permission_mode {
        mode.parse::<PermissionMode>()
            .map_err(|e| format!("settings.permission_mode: {e}"))?;
    }
    if let Some(mode) = &s.system_prompt_mode {
        mode.parse::<SystemPromptMode>()
            .map_err(|e| format!("settings.system_prompt_mode: {e}"))?;
    }
    check_usd("settings.max_budget_usd", s.max_budget_usd)?;
    check_usd("settings.budget_usd", s.budget_usd)?;
    if let Some(parent) = &s.parent_session_id {
        check_id("settings.parent_session_id", parent)?;
        check_arg("settings.parent_session_id", parent)?;
    }
    if s.max_turns == Some(0) {
        return Err("settings.max_turns must be at least 1".to_owned());
    }
    if let Some(prompt) = &s.system_prompt
        && (prompt.len() > MAX_SYSTEM_PROMPT_BYTES || prompt.contains('\0'))
    {
        return Err(format!(
            "settings.system_prompt must be at most {MAX_SYSTEM_PROMPT_BYTES} bytes without NUL characters"
        ));
    }
    if let Some(schema) = &s.output_schema
        && !schema.is_object()
    {
        return Err("settings.output_schema must be a JSON object (a JSON Schema)".to_owned());
    }
    Ok(())
}

/// What `POST /runs` refuses before asking the store: a body whose every
/// field could reach a command line as what it claims to be, and nothing else.
fn check_create(c: &RunCreate) -> Result<(), String> {
    SessionName::parse(&c.session_name).map_err(|e| e.to_string())?;
    if c.prompt.trim().is_empty() {
        return Err("the prompt is empty: say what the session should do".to_owned());
    }
    if let Some(dir) = &c.project_dir
        && (!dir.starts_with('/') || dir.len() > MAX_PATH_LEN || dir.chars().any(char::is_control))
    {
        return Err(format!(
            "project_dir must be an absolute path of at most {MAX_PATH_LEN} bytes without control characters"
        ));
    }
    if let Some(agent) = &c.agent {
        AgentName::parse(agent).map_err(|e| e.to_string())?;
    }
    if let Some(host) = &c.host {
        check_host_name("host", host)?;
    }
    for label in &c.labels {
        check_host_name("label", label)?;
    }
    if let Some(base) = &c.base {
        check_arg("base", base)?;
        if base.chars().any(char::is_whitespace) {
            return Err("base must be a git ref without white space".to_owned());
        }
        if !c.worktree {
            return Err("base needs worktree: true".to_owned());
        }
    }
    if c.resume && (c.worktree || c.base.is_some()) {
        return Err(
            "a resume runs where its session ran: worktree and base belong to a new session"
                .to_owned(),
        );
    }
    if let Some(settings) = &c.settings {
        check_settings(settings)?;
        if settings.callback && !c.resume && settings.parent_session_id.is_none() {
            return Err(
                "settings.callback needs settings.parent_session_id: the session its result goes to"
                    .to_owned(),
            );
        }
    }
    Ok(())
}

/// `POST /runs`
#[utoipa::path(post, path = "/runs", tag = "runs", request_body = RunCreate,
    responses(
        (status = 202, description = "Queued (its place in queue_position); broadcasts run_updated, and the run goes to a host as soon as one has room", body = RunAnswer),
        (status = 401, description = "Neither the configured nor the local token", body = ErrorAnswer),
        (status = 404, description = "A resume of a session nobody knows; no session has settings.parent_session_id", body = ErrorAnswer),
        (status = 409, description = "No host it fits is online; the name is taken; the session is running or has a run queued; its host is gone", body = ErrorAnswer),
        (status = 422, description = "A field is invalid; no such host or label (the detail lists the hosts)", body = ErrorAnswer),
    ))]
pub async fn create(
    State(state): State<AppState>,
    _actor: Actor,
    body: JsonBody<RunCreate>,
) -> Result<Response, ApiError> {
    let create = body.value;
    check_create(&create).map_err(ApiError::unprocessable)?;
    // A new run past a spent budget is refused (a resume: its tree's too).
    let resumed = match (create.resume, &create.project_dir) {
        (true, Some(dir)) => state
            .store
            .list_sessions(Some(create.session_name.clone()), Some(dir.clone()))
            .await?
            .into_iter()
            .next()
            .map(|s| s.session_id),
        _ => None,
    };
    let settings = create.settings.as_ref();
    // A resume's new budget counts before the check, as `ao-resume
    // --budget-usd` does where it runs: a spent tree can be given more.
    if let (Some(id), Some(usd)) = (&resumed, settings.and_then(|s| s.budget_usd)) {
        let patch = SessionPatch {
            budget_usd: Some(usd),
            ..SessionPatch::default()
        };
        state.store.update_session(id.clone(), patch).await?;
    }
    let parent = settings.and_then(|s| s.parent_session_id.clone());
    if let Some(id) = &parent
        && state.store.get_session(id.clone()).await?.is_none()
    {
        return Err(ApiError::not_found(format!(
            "settings.parent_session_id: no session has the id '{id}'"
        )));
    }
    state
        .store
        .check_budget(
            resumed,
            parent,
            create.project_dir.clone(),
            state.daily_budget.clone(),
        )
        .await?;
    let run_id = uuid::Uuid::new_v4().to_string();
    let run = state.store.create_run(create, run_id).await?;
    Ok((StatusCode::ACCEPTED, Json(RunAnswer { run })).into_response())
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct RunsQuery {
    /// Only runs with this status
    status: Option<String>,
    /// Only the runs of this host
    host: Option<String>,
    /// Only the runs of sessions with this name
    session_name: Option<String>,
    /// At most this many (default 200)
    limit: Option<u32>,
}

/// `GET /runs`
#[utoipa::path(get, path = "/runs", tag = "runs", params(RunsQuery),
    responses(
        (status = 200, description = "Runs, newest first; queued ones with their place in the queue", body = RunsAnswer),
        (status = 400, description = "An unknown status", body = ErrorAnswer),
    ))]
pub async fn list(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<RunsQuery>,
) -> Result<Json<RunsAnswer>, ApiError> {
    let status = query
        .status
        .map(|s| {
            RunStatus::parse(&s).ok_or_else(|| {
                let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
                ApiError::bad_request(format!("unknown status '{s}' (one of: {})", all.join(", ")))
            })
        })
        .transpose()?;
    let filter = RunFilter {
        status,
        host: query.host,
        session_name: query.session_name,
        limit: query.limit.unwrap_or(DEFAULT_LIMIT).min(MAX_LIMIT),
    };
    let runs = state.store.runs(filter).await?;
    Ok(Json(RunsAnswer { runs }))
}

fn not_found(run_id: &str) -> ApiError {
    ApiError::not_found(format!("run '{run_id}' not found"))
}

/// `GET /runs/{run_id}`
#[utoipa::path(get, path = "/runs/{run_id}", tag = "runs", params(("run_id" = String, Path, description = "The run's id")),
    responses((status = 200, description = "The run, with its prompt", body = RunAnswer), (status = 404, body = ErrorAnswer)))]
pub async fn get(
    State(state): State<AppState>,
    ApiPath(run_id): ApiPath<String>,
) -> Result<Json<RunAnswer>, ApiError> {
    let run = state
        .store
        .run(run_id.clone(), true)
        .await?
        .ok_or_else(|| not_found(&run_id))?;
    Ok(Json(RunAnswer { run }))
}

/// `POST /runs/{run_id}/stop`
#[utoipa::path(post, path = "/runs/{run_id}/stop", tag = "runs", params(("run_id" = String, Path, description = "The run's id")),
    responses(
        (status = 202, description = "A queued run is stopped; a run on a host is stopped by its host (run_stop_requested), and ends as stopped", body = RunAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 404, body = ErrorAnswer),
        (status = 409, description = "The run has ended", body = ErrorAnswer),
    ))]
pub async fn stop(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(run_id): ApiPath<String>,
) -> Result<Response, ApiError> {
    let (run, _) = state.store.stop_run(run_id).await?;
    Ok((StatusCode::ACCEPTED, Json(RunAnswer { run })).into_response())
}

/// `POST /runs/{run_id}/claim`
#[utoipa::path(post, path = "/runs/{run_id}/claim", tag = "hosts", params(("run_id" = String, Path, description = "The run's id")), request_body = RunClaim,
    responses(
        (status = 200, description = "The run is this host's to start, once: with its prompt", body = RunAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 404, description = "Unknown run, or host not registered", body = ErrorAnswer),
        (status = 409, description = "Not given to this host, claimed already, or this host process is not the registered one", body = ErrorAnswer),
    ))]
pub async fn claim(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(run_id): ApiPath<String>,
    body: JsonBody<RunClaim>,
) -> Result<Json<RunAnswer>, ApiError> {
    let claim = body.value;
    check_host_name("host", &claim.host).map_err(ApiError::unprocessable)?;
    check_id("instance", &claim.instance).map_err(ApiError::unprocessable)?;
    let run = state
        .store
        .claim_run(run_id, claim.host, claim.instance)
        .await?;
    Ok(Json(RunAnswer { run }))
}

/// `POST /runs/{run_id}/exited`
#[utoipa::path(post, path = "/runs/{run_id}/exited", tag = "hosts", params(("run_id" = String, Path, description = "The run's id")), request_body = RunExited,
    responses(
        (status = 200, description = "Recorded: a run whose runner ended before the conversation began failed to start, with the runner's line", body = RunAnswer),
        (status = 401, body = ErrorAnswer),
        (status = 404, body = ErrorAnswer),
        (status = 409, description = "Not this host's run", body = ErrorAnswer),
    ))]
pub async fn exited(
    State(state): State<AppState>,
    _actor: Actor,
    ApiPath(run_id): ApiPath<String>,
    body: JsonBody<RunExited>,
) -> Result<Json<RunAnswer>, ApiError> {
    let mut exited = body.value;
    check_host_name("host", &exited.host).map_err(ApiError::unprocessable)?;
    check_id("instance", &exited.instance).map_err(ApiError::unprocessable)?;
    exited.error = exited.error.map(|e| {
        let line = e.lines().rev().find(|l| !l.trim().is_empty()).unwrap_or("");
        line.chars().take(2000).collect()
    });
    let run = state.store.run_exited(run_id, exited).await?;
    Ok(Json(RunAnswer { run }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn create(json: &str) -> RunCreate {
        serde_json::from_str(json).unwrap()
    }

    #[test]
    fn no_field_can_smuggle_a_flag() {
        let base = r#""session_name":"a","prompt":"p","project_dir":"/p""#;
        assert!(check_create(&create(&format!("{{{base}}}"))).is_ok());
        for bad in [
            r#""settings":{"model":"--dangerously-skip-permissions"}"#,
            r#""settings":{"tools":["-x"]}"#,
            r#""settings":{"permission_mode":"yolo"}"#,
            r#""settings":{"max_turns":0}"#,
            r#""settings":{"output_schema":"x"}"#,
            r#""worktree":true,"base":"--upload-pack=evil""#,
            r#""base":"main""#,
            r#""agent":"../x""#,
            r#""host":"-h""#,
            r#""labels":["a b"]"#,
            r#""settings":{"parent_session_id":"-x"}"#,
            r#""settings":{"budget_usd":0}"#,
            r#""settings":{"callback":true}"#,
        ] {
            let c = create(&format!("{{{base},{bad}}}"));
            assert!(check_create(&c).is_err(), "{bad}");
        }
        let relative = create(r#"{"session_name":"a","prompt":"p","project_dir":"p"}"#);
        assert!(check_create(&relative).is_err());
        let resume = create(r#"{"session_name":"a","prompt":"p","resume":true,"worktree":true}"#);
        assert!(check_create(&resume).is_err());
        let child = create(&format!(
            r#"{{{base},"settings":{{"parent_session_id":"p-1","callback":true,"budget_usd":0.5}}}}"#
        ));
        assert!(check_create(&child).is_ok());
        // A resume's parent is the one its session recorded.
        let resumed = create(
            r#"{"session_name":"a","prompt":"p","resume":true,"settings":{"callback":true}}"#,
        );
        assert!(check_create(&resumed).is_ok());
    }
}
