//! What runs cost: the figures a run's `run_completed` carries, the totals
//! a session keeps, and the answer of `GET /usage`.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Rounds an amount of US dollars to a billionth: sums and differences of
/// the CLI's figures then read as the CLI wrote them (`0.000188`, not
/// `0.00018799999999999999`).
pub fn round_usd(amount: f64) -> f64 {
    (amount * 1e9).round() / 1e9
}

/// Tokens, as the CLI's result line counts them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Usage {
    pub input_tokens: u64,
    pub output_tokens: u64,
    #[serde(default)]
    pub cache_creation_input_tokens: u64,
    #[serde(default)]
    pub cache_read_input_tokens: u64,
}

impl Usage {
    /// The sum of two counts.
    pub fn plus(self, other: Usage) -> Usage {
        Usage {
            input_tokens: self.input_tokens + other.input_tokens,
            output_tokens: self.output_tokens + other.output_tokens,
            cache_creation_input_tokens: self.cache_creation_input_tokens
                + other.cache_creation_input_tokens,
            cache_read_input_tokens: self.cache_read_input_tokens + other.cache_read_input_tokens,
        }
    }
}

/// What the CLI reported about one run, each figure only when it was
/// there and made sense (a missing, null, negative or non-numeric one is
/// left out, never a failed run).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunFigures {
    pub cost_usd: Option<f64>,
    pub usage: Option<Usage>,
    /// Per model, as the CLI gives it (`modelUsage`).
    pub model_usage: Option<Value>,
    pub num_turns: Option<u64>,
    pub duration_ms: Option<u64>,
    pub duration_api_ms: Option<u64>,
}

impl RunFigures {
    /// Reads the figures of a `result` line.
    pub fn from_result(line: &Value) -> RunFigures {
        let count = |v: &Value| v.as_u64();
        let usage = &line["usage"];
        let usage = match (
            count(&usage["input_tokens"]),
            count(&usage["output_tokens"]),
        ) {
            (Some(input_tokens), Some(output_tokens)) => Some(Usage {
                input_tokens,
                output_tokens,
                cache_creation_input_tokens: count(&usage["cache_creation_input_tokens"])
                    .unwrap_or(0),
                cache_read_input_tokens: count(&usage["cache_read_input_tokens"]).unwrap_or(0),
            }),
            _ => None,
        };
        RunFigures {
            cost_usd: line["total_cost_usd"]
                .as_f64()
                .filter(|c| c.is_finite() && *c >= 0.0),
            usage,
            model_usage: Some(line["modelUsage"].clone()).filter(Value::is_object),
            num_turns: count(&line["num_turns"]),
            duration_ms: count(&line["duration_ms"]),
            duration_api_ms: count(&line["duration_api_ms"]),
        }
    }

    /// True when the CLI reported nothing usable.
    pub fn is_empty(&self) -> bool {
        *self == RunFigures::default()
    }
}

/// How a session's last run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct LastRunSummary {
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
    pub duration_ms: Option<u64>,
    pub ended_at: String,
}

/// The figures of one group of `GET /usage`, or of its total.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageFigures {
    pub runs: u64,
    /// The sum of the costs the CLI reported (runs without one count 0).
    #[serde(serialize_with = "super::money::serialize")]
    pub cost_usd: f64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cache_creation_input_tokens: u64,
    pub cache_read_input_tokens: u64,
}

impl UsageFigures {
    /// Adds one run's figures.
    pub fn add(&mut self, cost: Option<f64>, usage: Option<Usage>) {
        self.runs += 1;
        self.cost_usd = round_usd(self.cost_usd + cost.unwrap_or(0.0));
        let usage = usage.unwrap_or_default();
        self.input_tokens += usage.input_tokens;
        self.output_tokens += usage.output_tokens;
        self.cache_creation_input_tokens += usage.cache_creation_input_tokens;
        self.cache_read_input_tokens += usage.cache_read_input_tokens;
    }

    /// Adds another group's figures.
    pub fn merge(&mut self, other: &UsageFigures) {
        self.runs += other.runs;
        self.cost_usd = round_usd(self.cost_usd + other.cost_usd);
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_creation_input_tokens += other.cache_creation_input_tokens;
        self.cache_read_input_tokens += other.cache_read_input_tokens;
    }
}

/// One group of `GET /usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageGroup {
    /// The project directory, agent name, day (`YYYY-MM-DD`, UTC) or session id.
    pub key: String,
    /// With a second key (`group_by=day,project`): its value (the project
    /// directory or agent name, `""` for none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sub_key: Option<String>,
    /// With `group_by=session`: the session's name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    #[serde(flatten)]
    pub figures: UsageFigures,
}

/// `GET /usage`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct UsageAnswer {
    pub group_by: String,
    pub groups: Vec<UsageGroup>,
    pub total: UsageFigures,
    /// Every budget (a tree's, a project's per day) and what is left of it.
    #[serde(default)]
    pub budgets: Vec<Budget>,
}

/// A budget and what is left of it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Budget {
    /// `tree` (a session and all its descendants, `ao-new --budget-usd`)
    /// or `daily` (a project per UTC day, `ao-session-manager --daily-budget-usd`).
    pub kind: String,
    /// A tree's: the session that set it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_name: Option<String>,
    /// A daily budget's project (every project, each on its own, when absent).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_dir: Option<String>,
    #[serde(serialize_with = "super::money::serialize")]
    pub budget_usd: f64,
    #[serde(serialize_with = "super::money::serialize")]
    pub spent_usd: f64,
    /// What is left (0 when it is spent).
    #[serde(serialize_with = "super::money::serialize")]
    pub left_usd: f64,
}

impl Budget {
    /// The one line that refuses a run in a budget that is spent.
    pub fn refusal(&self) -> String {
        match self.kind.as_str() {
            "daily" => format!(
                "project {} has spent ${} today (UTC) of its daily budget of ${} (ao-session-manager --daily-budget-usd); no new run starts in it before tomorrow",
                self.project_dir.as_deref().unwrap_or("?"),
                super::round_usd(self.spent_usd),
                super::round_usd(self.budget_usd)
            ),
            _ => {
                let name = self.session_name.as_deref().unwrap_or("?");
                format!(
                    "the budget of ${} set by session '{name}' for itself and its descendants is spent (${} spent); no new run starts in that tree: raise it with `ao-resume {name} --budget-usd X`",
                    super::round_usd(self.budget_usd),
                    super::round_usd(self.spent_usd)
                )
            }
        }
    }
}

/// Answer of `GET /budget`: the budgets a new run falls under, and the
/// most it may spend (the least that is left of them).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct BudgetAnswer {
    pub budgets: Vec<Budget>,
    #[serde(default)]
    pub max_budget_usd: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn figures_come_from_the_result_line_and_bad_ones_are_left_out() {
        let line = json!({"total_cost_usd": 0.25, "num_turns": 3, "duration_ms": 1200, "duration_api_ms": 800,
            "usage": {"input_tokens": 10, "output_tokens": 5, "cache_read_input_tokens": 2},
            "modelUsage": {"m": {"costUSD": 0.25}}});
        let f = RunFigures::from_result(&line);
        assert_eq!(f.cost_usd, Some(0.25));
        assert_eq!(f.usage.unwrap().cache_read_input_tokens, 2);
        assert_eq!(
            (f.num_turns, f.duration_ms, f.duration_api_ms),
            (Some(3), Some(1200), Some(800))
        );
        assert!(f.model_usage.is_some());
        let bad = json!({"total_cost_usd": -1, "num_turns": "3", "usage": {"input_tokens": null, "output_tokens": 1},
            "modelUsage": [], "duration_ms": -5});
        let f = RunFigures::from_result(&bad);
        assert!(f.is_empty(), "{f:?}");
        assert!(RunFigures::from_result(&json!({"total_cost_usd": "NaN"})).is_empty());
    }
}
