//! Budgets (issue 22), as both engines decide them apart from their SQL: a
//! tree's (`budget_usd` on a session covers it and all its descendants,
//! found through `parent_session_id`) and a project's per UTC day (the
//! server's `--daily-budget-usd`).

use super::StoreError;
use crate::wire::{Budget, BudgetAnswer};

/// How deep a tree is followed, at most (a guard against a cycle).
pub(super) const MAX_DEPTH: i64 = 64;

/// `--daily-budget-usd X [--daily-budget-project DIR]`.
#[derive(Debug, Clone, PartialEq)]
pub struct DailyBudget {
    pub usd: f64,
    /// Only this project; every project on its own when `None`.
    pub project: Option<String>,
}

impl DailyBudget {
    /// Whether `project` has this budget.
    pub(super) fn covers(&self, project: &str) -> bool {
        self.project.as_deref().is_none_or(|p| p == project)
    }
}

/// The budget of the tree under session `id`, which spent `spent`.
pub(super) fn tree(id: String, name: String, budget_usd: f64, spent: f64) -> Budget {
    Budget {
        kind: "tree".to_owned(),
        session_id: Some(id),
        session_name: Some(name),
        project_dir: None,
        budget_usd,
        spent_usd: spent,
        left_usd: (budget_usd - spent).max(0.0),
    }
}

/// `project`'s budget today, which spent `spent`.
pub(super) fn daily(daily: &DailyBudget, project: &str, spent: f64) -> Budget {
    Budget {
        kind: "daily".to_owned(),
        session_id: None,
        session_name: None,
        project_dir: Some(project.to_owned()),
        budget_usd: daily.usd,
        spent_usd: spent,
        left_usd: (daily.usd - spent).max(0.0),
    }
}

/// The start of the UTC day, as times are stored.
pub(super) fn today() -> String {
    chrono::Utc::now()
        .format("%Y-%m-%dT00:00:00.000Z")
        .to_string()
}

/// What a run under `budgets` may spend; `Conflict` with the one line that
/// says which is spent.
pub(super) fn answer(budgets: Vec<Budget>) -> Result<BudgetAnswer, StoreError> {
    if let Some(spent) = budgets.iter().find(|b| b.left_usd <= 0.0) {
        return Err(StoreError::Conflict(spent.refusal()));
    }
    let max_budget_usd = budgets.iter().map(|b| b.left_usd).reduce(f64::min);
    Ok(BudgetAnswer {
        budgets,
        max_budget_usd,
    })
}

/// Logs why a session of a spent tree is stopped.
pub(super) fn log_stop(session_id: &str, budget: &Budget) {
    tracing::info!(
        "stopping session {session_id}: the budget of ${} set by session '{}' is spent",
        budget.budget_usd,
        budget.session_name.as_deref().unwrap_or("?")
    );
}
