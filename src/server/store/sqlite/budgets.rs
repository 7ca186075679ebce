//! Budgets on SQLite (the rules are `store::budget_rules`): what a tree
//! spent is the sum of its sessions' costs, found with recursive queries
//! through `parent_session_id`.

use rusqlite::{Connection, params};

use super::StoreError;
use super::reader::get_session;
use crate::server::changes::Change;
use crate::server::store::budget_rules::{self, DailyBudget, MAX_DEPTH};
use crate::wire::{Budget, BudgetAnswer, SessionStatus};

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
            Ok(budget_rules::tree(id, name, budget, spent))
        })
        .collect()
}

/// What `project` has spent since the start of the UTC day.
fn spent_today(conn: &Connection, project: &str) -> Result<f64, StoreError> {
    let today = budget_rules::today();
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
    if !daily.covers(project) {
        return Ok(None);
    }
    let spent = spent_today(conn, project)?;
    Ok(Some(budget_rules::daily(daily, project, spent)))
}

/// See [`Store::check_budget`](crate::server::store::Store::check_budget).
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
    budget_rules::answer(budgets)
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
        let Some(root) = budget.session_id.clone() else {
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
            budget_rules::log_stop(&id, &budget);
            frames.push(Change::BudgetStop(id));
        }
    }
    Ok(())
}
