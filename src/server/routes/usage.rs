//! `/usage`: what runs cost, added up by SQLite per project, agent, day or
//! session.

use axum::Json;
use axum::extract::State;
use serde::Deserialize;
use utoipa::IntoParams;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::extract::ApiQuery;
use crate::server::store::GroupBy;
use crate::wire::{BudgetAnswer, ErrorAnswer, UsageAnswer, parse_timestamp};

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct UsageQuery {
    /// `project` (the default), `agent`, `day` (UTC) or `session`; or
    /// `day,project` / `day,agent`: each day's runs per project or agent
    group_by: Option<String>,
    /// Only runs that ended at or after this time (RFC 3339)
    since: Option<String>,
    /// Only the runs of sessions of this project directory
    project_dir: Option<String>,
}

/// `GET /usage?group_by=project|agent|day|session|day,project|day,agent[&since=RFC3339][&project_dir=P]`
#[utoipa::path(get, path = "/usage", tag = "sessions", params(UsageQuery),
    responses(
        (status = 200, description = "Runs, cost and tokens per group, and their total", body = UsageAnswer),
        (status = 400, description = "An unknown group_by, or a since that is not a time", body = ErrorAnswer),
    ))]
pub async fn usage(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<UsageQuery>,
) -> Result<Json<UsageAnswer>, ApiError> {
    let (group_by, then) = match query.group_by.as_deref() {
        None => (GroupBy::Project, None),
        Some(text) => grouping(text).ok_or_else(|| {
            ApiError::bad_request(format!(
                "group_by '{text}' is not one of project, agent, day, session, day,project, day,agent"
            ))
        })?,
    };
    let since = query
        .since
        .as_deref()
        .map(|s| {
            parse_timestamp(s)
                .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
                .map_err(|e| ApiError::bad_request(format!("since: {e}")))
        })
        .transpose()?;
    let mut answer = state
        .store
        .usage(group_by, then, since, query.project_dir)
        .await?;
    answer.budgets = state.store.budgets(state.daily_budget.clone()).await?;
    Ok(Json(answer))
}

#[derive(Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BudgetQuery {
    /// A run of this session (a resume)
    session_id: Option<String>,
    /// A new session, child of this one
    parent_session_id: Option<String>,
    /// The run's project directory (for its daily budget)
    project_dir: Option<String>,
}

/// `GET /budget`: what a run about to start may spend.
#[utoipa::path(get, path = "/budget", tag = "sessions", params(BudgetQuery),
    responses(
        (status = 200, description = "The budgets the run falls under, each with what is left, and the least that is left (max_budget_usd: the run's --max-budget-usd)", body = BudgetAnswer),
        (status = 409, description = "A budget it falls under is spent: the detail names it, what was spent and who set it", body = ErrorAnswer),
    ))]
pub async fn budget(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<BudgetQuery>,
) -> Result<Json<BudgetAnswer>, ApiError> {
    let answer = state
        .store
        .check_budget(
            query.session_id,
            query.parent_session_id,
            query.project_dir,
            state.daily_budget.clone(),
        )
        .await?;
    Ok(Json(answer))
}

/// `project`, ..., or `day,project` / `day,agent`.
fn grouping(text: &str) -> Option<(GroupBy, Option<GroupBy>)> {
    match text.split_once(',') {
        None => Some((GroupBy::parse(text)?, None)),
        Some(("day", then @ ("project" | "agent"))) => {
            Some((GroupBy::Day, Some(GroupBy::parse(then)?)))
        }
        Some(_) => None,
    }
}
