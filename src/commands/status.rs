//! `ao-status NAME`: `running`, `finished` or `not_existent`. Usually one
//! request; a session the API calls running whose runner is gone is closed
//! (reason `interrupted`) and answered `finished`.

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use crate::accounting::SessionTotals;
use crate::backup::{LockState, SessionFiles};
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{SessionStatus, StatusValue};
use crate::worktree::{Worktree, WorktreeState};

use super::local::{Settled, settle, tell_api};
use super::lookup::{Found, Scope, find, near, warn_if_unsynced};
use super::{AnswerSource, CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-status";

/// Print whether session NAME is running, finished, or does not exist.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "The name is looked up in the current project directory first, then in any project that has exactly one session of that name. ",
        "An unknown session prints not_existent (exit 0). ",
        "When the session manager cannot be reached, the backup files answer, after one warning line on stderr.\n\n",
        "Examples:\n  ao-status architect\n  until [ \"$(ao-status worker-1)\" = finished ]; do sleep 2; done\n  ao-status worker-1 --json\n\n",
        exit_codes!(),
    ),
)]
struct StatusArgs {
    /// Session name: 1-60 letters, digits, '-' or '_'
    name: String,

    /// Print {"session_name","session_id","status","source",...} instead of the bare word (a worktree session adds "worktree": {path, branch, exists, ahead, dirty, changed_files}; "callbacks" lists what children owe it and have not delivered)
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// The `--json` answer of `ao-status`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StatusReport {
    pub session_name: String,
    /// `null` when the session does not exist, or its first run never
    /// reached the CLI's init line.
    pub session_id: Option<String>,
    pub status: StatusValue,
    pub source: AnswerSource,
    /// What its runs cost and how the last one ended.
    #[serde(flatten)]
    pub totals: SessionTotals,
    /// For a session in a worktree: its branch, commits ahead of the base,
    /// and uncommitted changes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub worktree: Option<WorktreeState>,
    /// The callbacks children owe this session and have not delivered yet
    /// (`waiting`, `pending`, `delivering`, `failed`), in the order the
    /// children ended; present when the session manager answered.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub callbacks: Option<Vec<crate::wire::Callback>>,
}

/// `main` of `ao-status`.
pub fn main() -> ExitCode {
    main_with::<StatusArgs>(PROGRAM, run)
}

fn run(args: &StatusArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let report = block_on(async {
        let report = status(&ctx, &name, args.json).await?;
        if report.status == StatusValue::NotExistent
            && let Some(near) = near(&ctx, &name).await
        {
            diag.note(format!("no session named '{name}'; did you mean '{near}'?"));
        }
        Ok::<_, CommandError>(report)
    })??;
    if args.json {
        print_json(&report)
    } else {
        print_line(report.status.as_str())
    }
}

/// Answers the status of `name`. Only a `full` answer carries what costs
/// more than the status itself: a worktree's state (git runs) and, from the
/// backups, the totals (the whole log replayed); agents poll the bare word.
pub(crate) async fn status(
    ctx: &Ctx,
    name: &SessionName,
    full: bool,
) -> Result<StatusReport, CommandError> {
    let report = |session_id, status, source, totals, worktree: Option<Worktree>| StatusReport {
        session_name: name.to_string(),
        session_id,
        status,
        source,
        totals,
        worktree: worktree.filter(|_| full).map(|w| w.state()),
        callbacks: None,
    };
    let found = find(ctx, name, Scope::AnyProject).await?;
    warn_if_unsynced(ctx, name, &found);
    match found {
        None => {
            let source = if ctx.fell_back() {
                AnswerSource::Backup
            } else {
                AnswerSource::Api
            };
            Ok(report(
                None,
                StatusValue::NotExistent,
                source,
                SessionTotals::default(),
                None,
            ))
        }
        Some(Found::Api { session, files }) => {
            let worktree = files
                .as_ref()
                .filter(|_| full)
                .and_then(|f| f.read_meta().ok().flatten())
                .and_then(|m| m.worktree)
                .or_else(|| Worktree::of_session(&session));
            let api_running = session.status == SessionStatus::Running;
            let mut totals = SessionTotals::of_session(&session);
            let mut status = StatusValue::from(session.status);
            // Only this session's own backups can tell a dead runner from a
            // live one; the lock decides.
            if let Some(files) = files {
                match settle_if_needed(&files, ctx.legacy(), api_running)? {
                    Some(Settled::Running) => status = StatusValue::Running,
                    Some(Settled::Done { closed, .. }) => {
                        if let Some(closed) = closed {
                            tell_api(ctx, name.as_str(), &closed).await;
                            // The run just closed counts too.
                            if let Ok(fresh) = ctx.client.get_session(&session.session_id).await {
                                totals = SessionTotals::of_session(&fresh);
                            }
                        }
                        status = StatusValue::Finished;
                    }
                    None => {}
                }
            }
            let callbacks = if full {
                ctx.client.callbacks(&session.session_id).await.ok()
            } else {
                None
            };
            Ok(StatusReport {
                callbacks,
                ..report(
                    Some(session.session_id),
                    status,
                    AnswerSource::Api,
                    totals,
                    worktree,
                )
            })
        }
        Some(Found::Backup { files, meta }) => {
            let status = match settle(&files, ctx.legacy(), false)? {
                Settled::Running => StatusValue::Running,
                Settled::Done { .. } => StatusValue::Finished,
            };
            let (id, worktree) = meta.map_or((None, None), |m| (m.session_id, m.worktree));
            Ok(report(
                id,
                status,
                AnswerSource::Backup,
                if full {
                    SessionTotals::of_backup(&files)
                } else {
                    SessionTotals::default()
                },
                worktree,
            ))
        }
    }
}

/// With the API saying running, a free lock means a dead runner: settle.
/// With the API saying finished, only a held lock matters: a run whose
/// runner has not reached the API yet (a resume just begun). Legacy event
/// names never mark a session running, so there the backup decides.
fn settle_if_needed(
    files: &SessionFiles,
    legacy: bool,
    api_running: bool,
) -> Result<Option<Settled>, CommandError> {
    if api_running || legacy {
        return Ok(Some(settle(files, legacy, api_running)?));
    }
    let held = matches!(files.lock_state()?, LockState::Held(_));
    Ok(held.then_some(Settled::Running))
}
