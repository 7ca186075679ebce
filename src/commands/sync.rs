//! `ao-sync [NAME | --all]`: send the session manager what the backup
//! files hold and it lacks (see [`crate::sync`]).

use std::process::ExitCode;

use clap::Parser;

use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};
use crate::backup::list_metas;
use crate::config::{CommonArgs, RunnerArgs};
use crate::diag::Diag;
use crate::name::SessionName;
use crate::sync::{SyncReport, sync_session};

const PROGRAM: &str = "ao-sync";

/// Send the session manager what the backup files hold and it lacks: the
/// session record and every event a run would have posted. Safe to repeat.
#[derive(Debug, Parser)]
#[command(
    name = "ao-sync",
    version,
    after_help = concat!(
        "Use it after the session manager was down during runs, or lost its database. ",
        "A run whose runner died is closed as interrupted first.\n\n",
        "Examples:\n  ao-sync worker-1\n  ao-sync --all --json\n\n",
        exit_codes!()
    )
)]
struct SyncArgs {
    /// The session to sync
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,

    /// Every session with backups in the sessions folder
    #[arg(long)]
    all: bool,

    /// One JSON object per session on stdout
    #[arg(long)]
    json: bool,

    /// Post session_stop instead of run_completed, and no run_start [env: AGENT_ORCHESTRATOR_LEGACY_EVENTS=1]
    #[arg(long)]
    legacy_events: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-sync`.
pub fn main() -> ExitCode {
    main_with::<SyncArgs>(PROGRAM, run)
}

fn run(args: &SyncArgs, diag: Diag) -> Result<(), CommandError> {
    let name = args.name.as_deref().map(SessionName::parse).transpose()?;
    let runner = RunnerArgs {
        legacy_events: args.legacy_events,
        ..RunnerArgs::default()
    };
    let ctx = Ctx::load_with(&args.common, Some(&runner), diag)?;
    let names = match name {
        Some(name) => vec![name],
        None => backed_up(&ctx)?,
    };
    block_on(sync_all(&ctx, &names, args.json))?
}

/// The sessions with a `.meta.json` in the sessions folder.
fn backed_up(ctx: &Ctx) -> Result<Vec<SessionName>, CommandError> {
    let dir = &ctx.config.sessions_dir.value;
    let mut names = Vec::new();
    for meta in list_metas(dir)? {
        match meta.map(|m| SessionName::parse(&m.session_name)) {
            Ok(Ok(name)) => names.push(name),
            Ok(Err(e)) => ctx
                .diag
                .warn(format!("skipping a backup with a bad name: {e}")),
            Err(e) => ctx.diag.warn(format!("skipping an unreadable backup: {e}")),
        }
    }
    if names.is_empty() {
        return Err(CommandError::NothingToSync(dir.display().to_string()));
    }
    Ok(names)
}

async fn sync_all(ctx: &Ctx, names: &[SessionName], json: bool) -> Result<(), CommandError> {
    ctx.client.health().await?;
    let mut failed = 0;
    for name in names {
        match sync_session(&ctx.files(name), &ctx.client, ctx.legacy()).await {
            Ok(report) if json => print_json(&report)?,
            Ok(report) => print_line(&describe(&report))?,
            Err(e) if names.len() == 1 => return Err(e.into()),
            Err(e) => {
                failed += 1;
                ctx.diag.error(e);
            }
        }
    }
    match failed {
        0 => Ok(()),
        count => Err(CommandError::SyncFailed { count }),
    }
}

fn describe(r: &SyncReport) -> String {
    let Some(id) = &r.session_id else {
        return format!(
            "{}: nothing to send (no run of it ever started a session)",
            r.session_name
        );
    };
    let mut parts = Vec::new();
    if r.closed_stale_run {
        parts.push("closed a run whose runner had died".to_owned());
    }
    if r.created_session {
        parts.push("created the session".to_owned());
    } else if r.updated_session {
        parts.push("updated the session".to_owned());
    }
    parts.push(format!(
        "added {} event{} ({} already there)",
        r.events_added,
        if r.events_added == 1 { "" } else { "s" },
        r.events_present
    ));
    if r.runs_filled > 0 {
        parts.push(format!(
            "filled in or corrected the figures of {} run{}",
            r.runs_filled,
            if r.runs_filled == 1 { "" } else { "s" }
        ));
    }
    format!(
        "{} (session-id: {id}): {}",
        r.session_name,
        parts.join(", ")
    )
}
