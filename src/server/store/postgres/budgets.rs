//! Budgets on PostgreSQL (the rules are `store::budget_rules`): what a
//! tree spent is the sum of its sessions' costs, found with recursive
//! queries through `parent_session_id`.

use super::reader::get_session;
use super::{Db, row, rows};
use crate::server::changes::Change;
use crate::server::store::StoreError;
use crate::server::store::budget_rules::{self, DailyBudget, MAX_DEPTH};
use crate::wire::{Budget, BudgetAnswer, SessionStatus};

const SPENT_IN_TREE: &str = "WITH RECURSIVE down(id, depth) AS (
        SELECT $1::TEXT, 0::BIGINT
        UNION SELECT s.session_id, down.depth + 1 FROM sessions s JOIN down
            ON s.parent_session_id = down.id WHERE down.depth < $2)
    SELECT COALESCE(SUM(s.cost_usd), 0)::DOUBLE PRECISION FROM sessions s
    WHERE s.session_id IN (SELECT id FROM down)";

const BUDGETS_ABOVE: &str = "WITH RECURSIVE up(id, depth) AS (
        SELECT $1::TEXT, 0::BIGINT
        UNION SELECT s.parent_session_id, up.depth + 1 FROM sessions s JOIN up
            ON s.session_id = up.id WHERE s.parent_session_id IS NOT NULL AND up.depth < $2)
    SELECT s.session_id, s.session_name, s.budget_usd FROM sessions s JOIN up ON s.session_id = up.id
    WHERE s.budget_usd IS NOT NULL ORDER BY up.depth";

const RUNNING_IN_TREE: &str = "WITH RECURSIVE down(id, depth) AS (
        SELECT $1::TEXT, 0::BIGINT
        UNION SELECT s.session_id, down.depth + 1 FROM sessions s JOIN down
            ON s.parent_session_id = down.id WHERE down.depth < $2)
    SELECT session_id FROM sessions WHERE status = $3 AND session_id IN (SELECT id FROM down)";

const SPENT_TODAY: &str = "SELECT COALESCE(SUM(cost_usd), 0)::DOUBLE PRECISION FROM runs
    WHERE COALESCE(project_dir, '') = $1 AND ended_at >= $2";

async fn spent_in_tree(db: &impl Db, root: &str) -> Result<f64, StoreError> {
    Ok(row(db, SPENT_IN_TREE, &[&root, &MAX_DEPTH])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0.0))
}

/// The sessions with a budget among `session_id` and its ancestors.
async fn budgets_above(db: &impl Db, session_id: &str) -> Result<Vec<Budget>, StoreError> {
    let mut out = Vec::new();
    for r in rows(db, BUDGETS_ABOVE, &[&session_id, &MAX_DEPTH]).await? {
        let id: String = r.try_get(0)?;
        let spent = spent_in_tree(db, &id).await?;
        out.push(budget_rules::tree(id, r.try_get(1)?, r.try_get(2)?, spent));
    }
    Ok(out)
}

async fn daily_of(
    db: &impl Db,
    daily: &DailyBudget,
    project: &str,
) -> Result<Option<Budget>, StoreError> {
    if !daily.covers(project) {
        return Ok(None);
    }
    let spent: f64 = row(db, SPENT_TODAY, &[&project, &budget_rules::today()])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?
        .unwrap_or(0.0);
    Ok(Some(budget_rules::daily(daily, project, spent)))
}

/// See [`Store::check_budget`](crate::server::store::Store::check_budget).
pub(super) async fn check(
    db: &impl Db,
    session_id: Option<&str>,
    parent: Option<&str>,
    project: Option<&str>,
    daily: Option<&DailyBudget>,
) -> Result<BudgetAnswer, StoreError> {
    let mut budgets = match session_id.or(parent) {
        Some(id) => budgets_above(db, id).await?,
        None => Vec::new(),
    };
    let project = match (project, session_id) {
        (Some(p), _) => Some(p.to_owned()),
        (None, Some(id)) => get_session(db, id).await?.and_then(|s| s.project_dir),
        (None, None) => None,
    };
    if let (Some(daily), Some(project)) = (daily, &project)
        && let Some(budget) = daily_of(db, daily, project).await?
    {
        budgets.push(budget);
    }
    budget_rules::answer(budgets)
}

/// Every budget: each tree's, and each project's today.
pub(super) async fn all(
    db: &impl Db,
    daily: Option<&DailyBudget>,
) -> Result<Vec<Budget>, StoreError> {
    let mut out = Vec::new();
    let roots = rows(
        db,
        "SELECT session_id, session_name, budget_usd FROM sessions WHERE budget_usd IS NOT NULL ORDER BY seq",
        &[],
    )
    .await?;
    for r in roots {
        let id: String = r.try_get(0)?;
        let spent = spent_in_tree(db, &id).await?;
        out.push(budget_rules::tree(id, r.try_get(1)?, r.try_get(2)?, spent));
    }
    if let Some(daily) = daily {
        let projects: Vec<String> = match &daily.project {
            Some(p) => vec![p.clone()],
            None => rows(
                db,
                "SELECT DISTINCT COALESCE(project_dir, '') COLLATE \"C\" AS p FROM sessions ORDER BY p",
                &[],
            )
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?,
        };
        for project in projects {
            if let Some(budget) = daily_of(db, daily, &project).await? {
                out.push(budget);
            }
        }
    }
    Ok(out)
}

/// After a run of `session_id` ended: every tree above it whose budget is
/// spent has its running sessions stopped (reason `budget`).
pub(super) async fn enforce(
    db: &impl Db,
    session_id: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    for budget in budgets_above(db, session_id).await? {
        if budget.left_usd > 0.0 {
            continue;
        }
        let Some(root) = budget.session_id.clone() else {
            continue;
        };
        let running = rows(
            db,
            RUNNING_IN_TREE,
            &[&root, &MAX_DEPTH, &SessionStatus::Running.as_str()],
        )
        .await?;
        for r in running {
            let id: String = r.try_get(0)?;
            budget_rules::log_stop(&id, &budget);
            changes.push(Change::BudgetStop(id));
        }
    }
    Ok(())
}
