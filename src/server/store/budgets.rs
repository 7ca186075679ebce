//! Budgets (issue 22): a tree's (`budget_usd` on a session covers it and
//! all its descendants) and a project's per UTC day (the server's
//! `--daily-budget-usd`). What a tree spent is the sum of its sessions'
//! costs, found through `parent_session_id`.

use rusqlite::{Connection, params};

use super::StoreError;
use super::reader::get_session;
use crate::server::live::Change;
use crate::wire::{Budget, BudgetAnswer, SessionStatus};

/// How deep a tree is followed, at most (a guard against a cycle).
const MAX_DEPTH: i64 = 64;

/// `--daily-budget-usd X [--daily-budget-project DIR]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyBudget {
    pub usd: f64,
    /// Only this project; every project on its own when `None`.
    pub project: Option<String>,
}

/// What the tree under `root` (its descendants included) has spent.
fn spent_in_tree(conn: &Connection, root: &str) -> Result<f64, StoreError> {
    Ok(conn
        .prepare_cached(
            "WITH RECURSIVE down(id, depth) AS (
                 SELECT ?1, 0
                 UNION SELECT s.session_id, down.depth + 1 FROM sessions s JOIN down
                     ON s.parent_session_id = down.id WHERE down.depth < ?2)
             SELECT IFNULL(SUM(s.cost_usd), 0) FROM sessions s
             WHERE s.session_id IN (SELECT id FROM down)",
        )?
        .query_row(params![root, MAX_DEPTH], |r| r.get(0))?)
}

/// The sessions with a budget among `session_id` and its ancestors.
fn budgets_above(conn: &Connection, session_id: &str) -> Result<Vec<Budget>, StoreError> {
    let rows: Vec<(String, String, f64)> = conn
        .prepare_cached(
            "WITH RECURSIVE up(id, depth) AS (
                 SELECT ?1, 0
                 UNION SELECT s.parent_session_id, up.depth + 1 FROM sessions s JOIN up
                     ON s.session_id = up.id WHERE s.parent_session_id IS NOT NULL AND up.depth < ?2)
             SELECT s.session_id, s.session_name, s.budget_usd FROM sessions s JOIN up ON s.session_id = up.id
             WHERE s.budget_usd IS NOT NULL ORDER BY up.depth",
        )?
        .query_map(params![session_id, MAX_DEPTH], |r| {
            Ok((r.get(0)?, r.get(1)?, r.get(2)?))
        })?
        .collect::<Result<_, _>>()?;
    rows.into_iter()
        .map(|(id, name, budget)| {
            let spent = spent_in_tree(conn, &id)?;
            Ok(Budget {
                kind: "tree".to_owned(),
                session_id: Some(id),
                session_name: Some(name),
                project_dir: None,
                budget_usd: budget,
                spent_usd: spent,
                left_usd: (budget - spent).max(0.0),
            })
        })
        .collect()
}

/// What `project` has spent since the start of the UTC day.
fn spent_today(conn: &Connection, project: &str) -> Result<f64, StoreError> {
    let today = chrono::Utc::now()
        .format("%Y-%m-%dT00:00:00.000Z")
        .to_string();
    Ok(conn
        .prepare_cached(
            "SELECT IFNULL(SUM(cost_usd), 0) FROM runs WHERE IFNULL(project_dir, '') = ?1 AND ended_at >= ?2",
        )?
        .query_row(params![project, today], |r| r.get(0))?)
}

fn daily_of(
    conn: &Connection,
    daily: &DailyBudget,
    project: &str,
) -> Result<Option<Budget>, StoreError> {
    if daily.project.as_deref().is_some_and(|p| p != project) {
        return Ok(None);
    }
    let spent = spent_today(conn, project)?;
    Ok(Some(Budget {
        kind: "daily".to_owned(),
        session_id: None,
        session_name: None,
        project_dir: Some(project.to_owned()),
        budget_usd: daily.usd,
        spent_usd: spent,
        left_usd: (daily.usd - spent).max(0.0),
    }))
}

/// The budgets a run of `session_id` (or, for a new session, a child of
/// `parent`) in `project` falls under, and the most it may spend; `Conflict`
/// with the one line that says which is spent.
pub(super) fn check(
    conn: &Connection,
    session_id: Option<&str>,
    parent: Option<&str>,
    project: Option<&str>,
    daily: Option<&DailyBudget>,
) -> Result<BudgetAnswer, StoreError> {
    let mut budgets = match session_id.or(parent) {
        Some(id) => budgets_above(conn, id)?,
        None => Vec::new(),
    };
    let project = match (project, session_id) {
        (Some(p), _) => Some(p.to_owned()),
        (None, Some(id)) => get_session(conn, id)?.and_then(|s| s.project_dir),
        (None, None) => None,
    };
    if let (Some(daily), Some(project)) = (daily, &project)
        && let Some(budget) = daily_of(conn, daily, project)?
    {
        budgets.push(budget);
    }
    if let Some(spent) = budgets.iter().find(|b| b.left_usd <= 0.0) {
        return Err(StoreError::Conflict(spent.refusal()));
    }
    let max_budget_usd = budgets.iter().map(|b| b.left_usd).reduce(f64::min);
    Ok(BudgetAnswer {
        budgets,
        max_budget_usd,
    })
}

/// Every budget: each tree's, and each project's today.
pub(super) fn all(
    conn: &Connection,
    daily: Option<&DailyBudget>,
) -> Result<Vec<Budget>, StoreError> {
    let roots: Vec<String> = conn
        .prepare_cached(
            "SELECT session_id FROM sessions WHERE budget_usd IS NOT NULL ORDER BY seq",
        )?
        .query_map([], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut out = Vec::new();
    for root in roots {
        if let Some(budget) = budgets_above(conn, &root)?
            .into_iter()
            .find(|b| b.session_id.as_deref() == Some(root.as_str()))
        {
            out.push(budget);
        }
    }
    if let Some(daily) = daily {
        let projects: Vec<String> = match &daily.project {
            Some(p) => vec![p.clone()],
            None => conn
                .prepare_cached("SELECT DISTINCT IFNULL(project_dir, '') FROM sessions ORDER BY 1")?
                .query_map([], |r| r.get(0))?
                .collect::<Result<_, _>>()?,
        };
        for project in projects {
            if let Some(budget) = daily_of(conn, daily, &project)? {
                out.push(budget);
            }
        }
    }
    Ok(out)
}

/// After a run of `session_id` ended: every tree above it whose budget is
/// spent has its running sessions stopped (reason `budget`).
pub(super) fn enforce(
    conn: &Connection,
    session_id: &str,
    frames: &mut Vec<Change>,
) -> Result<(), StoreError> {
    for budget in budgets_above(conn, session_id)? {
        if budget.left_usd > 0.0 {
            continue;
        }
        let Some(root) = budget.session_id else {
            continue;
        };
        let running: Vec<String> = conn
            .prepare_cached(
                "WITH RECURSIVE down(id, depth) AS (
                     SELECT ?1, 0
                     UNION SELECT s.session_id, down.depth + 1 FROM sessions s JOIN down
                         ON s.parent_session_id = down.id WHERE down.depth < ?2)
                 SELECT session_id FROM sessions WHERE status = ?3 AND session_id IN (SELECT id FROM down)",
            )?
            .query_map(
                params![root, MAX_DEPTH, SessionStatus::Running.as_str()],
                |r| r.get(0),
            )?
            .collect::<Result<_, _>>()?;
        for id in running {
            tracing::info!(
                "stopping session {id}: the budget of ${} set by session '{}' is spent",
                budget.budget_usd,
                budget.session_name.as_deref().unwrap_or("?")
            );
            frames.push(Change::BudgetStop(id));
        }
    }
    Ok(())
}
