//! `ao-usage`: what runs cost (dollars, tokens, runs), per project, agent,
//! day or session, as the session manager adds them up (`GET /usage`); from
//! the backup files of the current sessions directory when it cannot be
//! reached.

use std::process::ExitCode;

use chrono::{DateTime, Duration as Span, NaiveDate, SecondsFormat, Utc};
use clap::{Parser, ValueEnum};
use serde::Serialize;

use crate::accounting::{RunCost, group, runs_from_backup};
use crate::backup::{SessionFiles, list_metas, read_log};
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{UsageAnswer, UsageFigures, parse_timestamp};

use super::{AnswerSource, CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-usage";

/// What runs cost: dollars, tokens and runs per project, agent, day or session.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Costs are those the Claude Code CLI reported for each run (its total_cost_usd); runs reported by ao-hook carry none. ",
        "When the session manager cannot be reached, the backup files of the current sessions directory answer, after one warning line.\n\n",
        "Examples:\n  ao-usage\n  ao-usage --by day --since 7d\n  ao-usage --by session --project --json | jq '.total.cost_usd'\n\n",
        exit_codes!(),
    ),
)]
struct UsageArgs {
    /// How to group the runs
    #[arg(long, value_enum, default_value = "project")]
    by: By,

    /// Only runs that ended since: a span back from now (30m, 24h, 7d, 2w) or a date/time (2026-11-01, RFC 3339)
    #[arg(long, value_name = "WHEN", value_parser = parse_since)]
    since: Option<DateTime<Utc>>,

    /// Only the runs of the current project directory
    #[arg(long)]
    project: bool,

    /// Print {"group_by","groups":[{key,runs,cost_usd,input_tokens,...}],"total":{...},"budgets":[{kind,session_name|project_dir,budget_usd,spent_usd,left_usd}],"source"}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum By {
    Project,
    Agent,
    Day,
    Session,
}

impl By {
    fn as_str(self) -> &'static str {
        match self {
            By::Project => "project",
            By::Agent => "agent",
            By::Day => "day",
            By::Session => "session",
        }
    }
}

/// `30m`, `24h`, `7d`, `2w` back from now, or a date (midnight UTC) or an
/// RFC 3339 time.
fn parse_since(text: &str) -> Result<DateTime<Utc>, String> {
    let text = text.trim();
    let bad = || {
        format!("'{text}' is neither a span such as 30m, 24h, 7d, 2w nor a date such as 2026-11-01")
    };
    if let Some(unit) = text.chars().last().filter(|c| c.is_ascii_alphabetic())
        && let Ok(n) = text[..text.len() - 1].parse::<i64>()
        && (0..=100_000).contains(&n)
    {
        let span = match unit {
            'm' => Span::minutes(n),
            'h' => Span::hours(n),
            'd' => Span::days(n),
            'w' => Span::weeks(n),
            _ => return Err(bad()),
        };
        return Ok(Utc::now() - span);
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return day
            .and_hms_opt(0, 0, 0)
            .map(|t| t.and_utc())
            .ok_or_else(bad);
    }
    parse_timestamp(text).map_err(|_| bad())
}

/// The answer of `ao-usage --json`.
#[derive(Debug, Clone, Serialize)]
pub struct UsageReport {
    #[serde(flatten)]
    pub usage: UsageAnswer,
    pub source: AnswerSource,
}

/// `main` of `ao-usage`.
pub fn main() -> ExitCode {
    main_with::<UsageArgs>(PROGRAM, run)
}

fn run(args: &UsageArgs, diag: Diag) -> Result<(), CommandError> {
    let mut ctx = Ctx::load(&args.common, diag)?;
    ctx.set_fallback_note("adding up the backup files of this sessions directory");
    let since = args
        .since
        .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true));
    let project = args.project.then(|| ctx.project().to_owned());
    let report = block_on(usage(&ctx, args.by, since, project))??;
    if args.json {
        print_json(&report)
    } else {
        print_line(&table(&report.usage))
    }
}

async fn usage(
    ctx: &Ctx,
    by: By,
    since: Option<String>,
    project: Option<String>,
) -> Result<UsageReport, CommandError> {
    match ctx
        .client
        .usage(by.as_str(), since.as_deref(), project.as_deref())
        .await
    {
        Ok(usage) => Ok(UsageReport {
            usage,
            source: AnswerSource::Api,
        }),
        Err(e) if e.is_unreachable() => {
            ctx.fall_back(&e);
            Ok(UsageReport {
                usage: from_backups(ctx, by, since.as_deref(), project.as_deref())?,
                source: AnswerSource::Backup,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The same totals from the backups of the current sessions directory.
fn from_backups(
    ctx: &Ctx,
    by: By,
    since: Option<&str>,
    project: Option<&str>,
) -> Result<UsageAnswer, CommandError> {
    let dir = &ctx.config.sessions_dir.value;
    let mut runs: Vec<(String, Option<String>, RunCost)> = Vec::new();
    for meta in list_metas(dir)?.into_iter().flatten() {
        if project.is_some_and(|p| p != meta.project_dir) {
            continue;
        }
        let Ok(name) = SessionName::parse(&meta.session_name) else {
            continue;
        };
        let lines = read_log(&SessionFiles::new(dir, &name).log_path())?;
        for run in runs_from_backup(name.as_str(), &lines) {
            let ended = parse_timestamp(&run.ended_at)
                .map(|t| t.to_rfc3339_opts(SecondsFormat::Millis, true))
                .unwrap_or_else(|_| run.ended_at.clone());
            if since.is_some_and(|s| ended.as_str() < s) {
                continue;
            }
            let key = match by {
                By::Project => meta.project_dir.clone(),
                By::Agent => meta.agent_name.clone().unwrap_or_default(),
                By::Day => ended.chars().take(10).collect(),
                By::Session => run.session_id.clone(),
            };
            runs.push((key, Some(meta.session_name.clone()), run));
        }
    }
    let mut answer = group(by.as_str(), runs.iter().map(|(k, _, r)| (k.clone(), r)));
    if by == By::Session {
        for g in &mut answer.groups {
            g.session_name = runs
                .iter()
                .find(|(k, _, _)| *k == g.key)
                .and_then(|(_, n, _)| n.clone());
        }
    }
    Ok(answer)
}

/// The text table: one row per group and a total line.
fn table(usage: &UsageAnswer) -> String {
    if usage.groups.is_empty() {
        return "No runs found".to_owned();
    }
    let label = |key: &str, name: Option<&str>| match (key, name) {
        ("", _) => "(none)".to_owned(),
        (key, Some(name)) => format!("{name} ({key})"),
        (key, None) => key.to_owned(),
    };
    let keys: Vec<String> = usage
        .groups
        .iter()
        .map(|g| label(&g.key, g.session_name.as_deref()))
        .collect();
    let width = keys
        .iter()
        .map(|k| k.chars().count())
        .max()
        .unwrap_or(0)
        .max(7);
    let row = |key: &str, f: &UsageFigures| {
        format!(
            "{key:<width$}  {:>6}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}",
            f.runs,
            format!("${:.4}", f.cost_usd),
            f.input_tokens,
            f.output_tokens,
            f.cache_creation_input_tokens,
            f.cache_read_input_tokens
        )
    };
    let mut lines = vec![format!(
        "{:<width$}  {:>6}  {:>12}  {:>12}  {:>12}  {:>12}  {:>12}",
        usage.group_by.to_uppercase(),
        "RUNS",
        "COST",
        "INPUT",
        "OUTPUT",
        "CACHE WRITE",
        "CACHE READ"
    )];
    for (key, group) in keys.iter().zip(&usage.groups) {
        lines.push(row(key, &group.figures));
    }
    lines.push(row("TOTAL", &usage.total));
    if !usage.budgets.is_empty() {
        lines.push(String::new());
        lines.push("BUDGETS".to_owned());
        for b in &usage.budgets {
            let whose = match b.kind.as_str() {
                "daily" => format!("project {} today", b.project_dir.as_deref().unwrap_or("?")),
                _ => format!(
                    "tree of session '{}'",
                    b.session_name.as_deref().unwrap_or("?")
                ),
            };
            lines.push(format!(
                "{whose}: ${:.4} of ${:.4} spent, ${:.4} left",
                b.spent_usd, b.budget_usd, b.left_usd
            ));
        }
    }
    lines.join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_spans_dates_and_times() {
        let now = Utc::now();
        let week = parse_since("7d").unwrap();
        assert!((now - week - Span::days(7)).num_seconds().abs() < 5);
        assert!(parse_since("30m").unwrap() > parse_since("2h").unwrap());
        assert_eq!(
            parse_since("2026-11-01").unwrap().to_rfc3339(),
            "2026-11-01T00:00:00+00:00"
        );
        assert!(parse_since("2026-11-01T10:00:00Z").is_ok());
        for bad in ["yesterday", "7x", "d", "", "-3d", "2026-13-01"] {
            assert!(parse_since(bad).is_err(), "{bad}");
        }
    }
}
