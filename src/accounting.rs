//! What runs cost, read from the backups: the same figures the session
//! manager adds up (`GET /usage`, a session's totals), for when it cannot
//! be asked. Each run's figures come from its `run_completed` action, as the
//! runner derived it from the CLI's result line.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::backup::LogLines;
use crate::record::{Action, replay};
use crate::wire::{
    EventType, LastRunSummary, RunFigures, Usage, UsageAnswer, UsageFigures, UsageGroup, round_usd,
};

/// One ended run, as its backup records it.
#[derive(Debug, Clone, PartialEq)]
pub struct RunCost {
    pub session_id: String,
    pub ended_at: String,
    pub reason: Option<String>,
    pub exit_code: Option<i64>,
    pub figures: RunFigures,
}

/// Every ended run of session `name` in its backup lines.
pub fn runs_from_backup(name: &str, lines: &LogLines) -> Vec<RunCost> {
    let (_, actions) = replay(name, false, lines);
    actions
        .into_iter()
        .filter_map(|action| match action {
            Action::Event(event) if event.event_type == EventType::RunCompleted => Some(RunCost {
                session_id: event.session_id.clone(),
                ended_at: event.timestamp.clone(),
                reason: event.reason.clone(),
                exit_code: event.exit_code,
                figures: event.figures(),
            }),
            _ => None,
        })
        .collect()
}

/// A session's totals, as `GET /sessions` carries them.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SessionTotals {
    pub num_runs: u64,
    #[serde(serialize_with = "crate::wire::money::serialize_option")]
    pub cost_usd: Option<f64>,
    pub usage: Usage,
    pub last_run: Option<LastRunSummary>,
}

impl SessionTotals {
    /// The totals the API keeps for `session`.
    pub fn of_session(session: &crate::wire::Session) -> SessionTotals {
        SessionTotals {
            num_runs: session.num_runs,
            cost_usd: session.cost_usd,
            usage: session.usage,
            last_run: session.last_run.clone(),
        }
    }

    /// The totals of session `name` from its backup log (none when it
    /// cannot be read: the totals are extra, not the answer).
    pub fn of_backup(files: &crate::backup::SessionFiles) -> SessionTotals {
        crate::backup::read_log(&files.log_path())
            .map(|lines| SessionTotals::of(&runs_from_backup(files.name().as_str(), &lines)))
            .unwrap_or_default()
    }

    /// The totals of a session's runs, in the order they ended.
    pub fn of(runs: &[RunCost]) -> SessionTotals {
        let mut totals = SessionTotals::default();
        for run in runs {
            totals.num_runs += 1;
            if let Some(cost) = run.figures.cost_usd {
                totals.cost_usd = Some(round_usd(totals.cost_usd.unwrap_or(0.0) + cost));
            }
            if let Some(usage) = run.figures.usage {
                totals.usage = totals.usage.plus(usage);
            }
            totals.last_run = Some(LastRunSummary {
                reason: run.reason.clone(),
                exit_code: run.exit_code,
                duration_ms: run.figures.duration_ms,
                ended_at: run.ended_at.clone(),
            });
        }
        totals
    }
}

/// Runs grouped by `key` (as `GET /usage` groups them), most expensive first.
pub fn group<'a>(
    group_by: &str,
    runs: impl IntoIterator<Item = (String, &'a RunCost)>,
) -> UsageAnswer {
    let mut groups: BTreeMap<String, UsageFigures> = BTreeMap::new();
    let mut total = UsageFigures::default();
    for (key, run) in runs {
        groups
            .entry(key)
            .or_default()
            .add(run.figures.cost_usd, run.figures.usage);
        total.add(run.figures.cost_usd, run.figures.usage);
    }
    let mut groups: Vec<UsageGroup> = groups
        .into_iter()
        .map(|(key, figures)| UsageGroup {
            key,
            sub_key: None,
            session_name: None,
            figures,
        })
        .collect();
    groups.sort_by(|a, b| {
        b.figures
            .cost_usd
            .total_cmp(&a.figures.cost_usd)
            .then_with(|| a.key.cmp(&b.key))
    });
    UsageAnswer {
        group_by: group_by.to_owned(),
        groups,
        total,
        budgets: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::fixtures::{end_line, user_line};
    use crate::wire::RunEndReason;

    #[test]
    fn a_backup_gives_each_runs_figures_and_the_totals() {
        let result = |cost: f64| {
            serde_json::json!({"type": "result", "subtype": "success", "is_error": false, "result": "ok",
                "session_id": "sid", "total_cost_usd": cost, "num_turns": 2, "duration_ms": 50,
                "usage": {"input_tokens": 10, "output_tokens": 4}})
            .to_string()
            .into_bytes()
        };
        let init = br#"{"type":"system","subtype":"init","session_id":"sid"}"#.to_vec();
        let lines: LogLines = [
            user_line("2026-01-01T00:00:00Z", None),
            init.clone(),
            result(0.5),
            end_line(
                "2026-01-01T00:00:01Z",
                Some(0),
                RunEndReason::Completed,
                None,
            ),
            user_line("2026-01-02T00:00:00Z", Some("sid")),
            init,
            result(0.25),
            end_line(
                "2026-01-02T00:00:01Z",
                Some(0),
                RunEndReason::Completed,
                None,
            ),
        ]
        .into_iter()
        .enumerate()
        .map(|(i, l)| (i as u64, l))
        .collect();
        let runs = runs_from_backup("s", &lines);
        assert_eq!(runs.len(), 2);
        assert_eq!(runs[1].figures.cost_usd, Some(0.25));
        let totals = SessionTotals::of(&runs);
        assert_eq!(totals.num_runs, 2);
        assert_eq!(totals.cost_usd, Some(0.75));
        assert_eq!(totals.usage.input_tokens, 20);
        assert_eq!(totals.last_run.unwrap().ended_at, "2026-01-02T00:00:01Z");
        let by_day = group("day", runs.iter().map(|r| (r.ended_at[..10].to_owned(), r)));
        assert_eq!(by_day.groups[0].key, "2026-01-01");
        assert_eq!(by_day.total.runs, 2);
    }
}
