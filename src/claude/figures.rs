//! What a result line's figures count, release by release. Measured against
//! every supported release with a mock model (three runs of one
//! conversation): `usage` and the durations always count the run alone;
//! `num_turns` counts the whole conversation before 2.0.30; and
//! `total_cost_usd` and `modelUsage` count the whole conversation from
//! 2.1.277 on. A run's own figures are what it reported, less what the
//! conversation had spent before it where the release reports a sum.

use serde_json::{Map, Value};

use crate::wire::{RunFigures, round_usd};

/// The first release whose `num_turns` counts the run alone.
const TURNS_PER_RUN_SINCE: (u32, u32, u32) = (2, 0, 30);
/// The first release whose cost and `modelUsage` count the whole conversation.
const COST_CUMULATIVE_SINCE: (u32, u32, u32) = (2, 1, 277);

/// Which reported figures are sums over the conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cumulative {
    pub cost: bool,
    pub turns: bool,
}

impl Cumulative {
    /// For the release an init line names (`claude_code_version`; releases
    /// before about 2.0.20 do not name it). A version that does not parse
    /// is taken to behave as the newest release known.
    pub fn of_release(version: Option<&str>) -> Cumulative {
        match version {
            None => Cumulative {
                cost: false,
                turns: true,
            },
            Some(text) => match parse_version(text) {
                Some(v) => Cumulative {
                    cost: v >= COST_CUMULATIVE_SINCE,
                    turns: v < TURNS_PER_RUN_SINCE,
                },
                None => Cumulative {
                    cost: true,
                    turns: false,
                },
            },
        }
    }
}

/// `2.1.329` (or `2.1.329 (Claude Code)`) as numbers.
fn parse_version(text: &str) -> Option<(u32, u32, u32)> {
    let core = text.split_whitespace().next()?;
    let mut parts = core.split('.').map(|p| {
        p.split(|c: char| !c.is_ascii_digit())
            .next()
            .and_then(|d| d.parse::<u32>().ok())
    });
    Some((parts.next()??, parts.next()??, parts.next()??))
}

/// What a conversation has spent so far: the sum of its runs' own figures,
/// for the figures that some release reports as sums.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Spent {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cost_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    num_turns: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    model_usage: Option<Map<String, Value>>,
}

impl Spent {
    /// Dollars spent so far, when a result said.
    pub fn cost_usd(&self) -> Option<f64> {
        self.cost_usd
    }

    /// A run's own figures from what its result line `reported`, under the
    /// release `version`; and what the conversation has spent after it. A
    /// sum smaller than what was spent before (a counter that started
    /// again) is taken as the run's own.
    pub fn own(&self, reported: RunFigures, version: Option<&str>) -> (RunFigures, Spent) {
        let cumulative = Cumulative::of_release(version);
        let mut own = reported;
        let restarted =
            matches!((own.cost_usd, self.cost_usd), (Some(total), Some(before)) if total < before);
        if cumulative.cost && !restarted {
            if let (Some(total), Some(before)) = (own.cost_usd, self.cost_usd) {
                own.cost_usd = Some(round_usd(total - before));
            }
            if let (Some(Value::Object(total)), Some(before)) =
                (&own.model_usage, &self.model_usage)
            {
                own.model_usage = Some(Value::Object(less(total, before)));
            }
        }
        if cumulative.turns
            && let (Some(total), Some(before)) = (own.num_turns, self.num_turns)
            && total >= before
        {
            own.num_turns = Some(total - before);
        }
        own.cost_usd = own.cost_usd.map(round_usd);
        if let Some(Value::Object(models)) = &own.model_usage {
            own.model_usage = Some(Value::Object(combine(models, &Map::new(), |a, _| a)));
        }
        let after = Spent {
            cost_usd: sum(self.cost_usd, own.cost_usd, |a, b| round_usd(a + b)),
            num_turns: sum(self.num_turns, own.num_turns, |a, b| a.saturating_add(b)),
            model_usage: match (&self.model_usage, &own.model_usage) {
                (Some(before), Some(Value::Object(run))) => Some(plus(before, run)),
                (None, Some(Value::Object(run))) => Some(run.clone()),
                (before, _) => before.clone(),
            },
        };
        (own, after)
    }
}

fn sum<T: Copy>(a: Option<T>, b: Option<T>, add: impl Fn(T, T) -> T) -> Option<T> {
    match (a, b) {
        (Some(a), Some(b)) => Some(add(a, b)),
        (a, b) => a.or(b),
    }
}

/// The fields of a model's entry in `modelUsage` that add up over runs
/// (tokens, requests, cost), as opposed to facts about the model
/// (`contextWindow`, `maxOutputTokens`, names).
fn additive(field: &str) -> bool {
    field == "costUSD"
        || (field.ends_with("Tokens") && !field.starts_with("max"))
        || field.ends_with("Requests")
}

/// Applies `op` to the additive numbers of each model in `a` and the same
/// number in `b` (0 when `b` lacks it); costs come out rounded.
fn combine(
    a: &Map<String, Value>,
    b: &Map<String, Value>,
    op: impl Fn(f64, f64) -> f64,
) -> Map<String, Value> {
    let mut out = a.clone();
    for (model, entry) in out.iter_mut() {
        let Value::Object(fields) = entry else {
            continue;
        };
        let other = b.get(model).and_then(Value::as_object);
        for (field, value) in fields.iter_mut() {
            let Some(x) = value.as_f64().filter(|_| additive(field)) else {
                continue;
            };
            let y = other
                .and_then(|o| o.get(field))
                .and_then(Value::as_f64)
                .unwrap_or(0.0);
            let n = op(x, y).max(0.0);
            *value = if field == "costUSD" {
                Value::from(round_usd(n))
            } else {
                Value::from(n.round() as u64)
            };
        }
    }
    out
}

/// `total` less `before`, model by model.
fn less(total: &Map<String, Value>, before: &Map<String, Value>) -> Map<String, Value> {
    combine(total, before, |a, b| a - b)
}

/// `a` plus `b`, model by model (models only one of them has are kept).
fn plus(a: &Map<String, Value>, b: &Map<String, Value>) -> Map<String, Value> {
    let mut out = combine(a, b, |x, y| x + y);
    for (model, entry) in b {
        out.entry(model.clone()).or_insert_with(|| entry.clone());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn reported(cost: f64, turns: u64, input: u64) -> RunFigures {
        RunFigures::from_result(&json!({
            "total_cost_usd": cost, "num_turns": turns,
            "usage": {"input_tokens": 12, "output_tokens": 7},
            "modelUsage": {"m": {"inputTokens": input, "costUSD": cost, "contextWindow": 1000000, "maxOutputTokens": 128000}},
        }))
    }

    #[test]
    fn releases_are_told_apart() {
        let c = |v| Cumulative::of_release(v);
        assert_eq!(
            c(None),
            Cumulative {
                cost: false,
                turns: true
            }
        );
        assert_eq!(
            c(Some("2.0.29")),
            Cumulative {
                cost: false,
                turns: true
            }
        );
        assert_eq!(
            c(Some("2.0.30")),
            Cumulative {
                cost: false,
                turns: false
            }
        );
        assert_eq!(
            c(Some("2.1.276")),
            Cumulative {
                cost: false,
                turns: false
            }
        );
        assert_eq!(
            c(Some("2.1.277")),
            Cumulative {
                cost: true,
                turns: false
            }
        );
        assert_eq!(
            c(Some("2.1.329 (Claude Code)")),
            Cumulative {
                cost: true,
                turns: false
            }
        );
        assert_eq!(
            c(Some("10.0.0-beta.1")),
            Cumulative {
                cost: true,
                turns: false
            }
        );
        assert_eq!(
            c(Some("nonsense")),
            Cumulative {
                cost: true,
                turns: false
            }
        );
    }

    #[test]
    fn cumulative_costs_become_each_runs_own() {
        // What 2.1.329 reported for three runs of 12 input tokens each.
        let mut spent = Spent::default();
        let mut costs = Vec::new();
        for (cost, input) in [(0.000188, 12), (0.000376, 24), (0.0005639999999999999, 36)] {
            let (own, after) = spent.own(reported(cost, 1, input), Some("2.1.329"));
            costs.push(own.cost_usd.unwrap());
            let m = &own.model_usage.as_ref().unwrap()["m"];
            assert_eq!(m["inputTokens"], 12);
            assert_eq!(m["contextWindow"], 1000000, "facts about the model stay");
            assert_eq!(m["maxOutputTokens"], 128000);
            assert_eq!(own.num_turns, Some(1));
            spent = after;
        }
        assert_eq!(costs, [0.000188, 0.000188, 0.000188]);
    }

    #[test]
    fn per_run_costs_and_cumulative_turns_of_older_releases() {
        let mut spent = Spent::default();
        let mut seen = Vec::new();
        // 1.0.100: cost per run, turns 3, 5, 7.
        for turns in [3, 5, 7] {
            let (own, after) = spent.own(reported(0.000705, turns, 12), None);
            seen.push((own.cost_usd.unwrap(), own.num_turns.unwrap()));
            spent = after;
        }
        assert_eq!(seen, [(0.000705, 3), (0.000705, 2), (0.000705, 2)]);
    }

    #[test]
    fn a_sum_that_starts_again_is_the_runs_own() {
        let spent = Spent::default();
        let (_, spent) = spent.own(reported(0.5, 1, 100), Some("2.1.329"));
        let (own, _) = spent.own(reported(0.1, 1, 10), Some("2.1.329"));
        assert_eq!(own.cost_usd, Some(0.1));
        assert_eq!(own.model_usage.unwrap()["m"]["inputTokens"], 10);
    }
}
