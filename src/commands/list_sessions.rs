//! `ao-list-sessions`: every session, newest first, one line each as
//! `NAME (session-id: ID, project-dir: DIR)`, or `No sessions found`.
//! Without the API, the `.meta.json` files of the current sessions
//! directory answer.

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use crate::accounting::SessionTotals;
use crate::backup::{LockState, SessionFiles, list_metas};
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{Session, SessionStatus};

use super::{AnswerSource, CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-list-sessions";

/// List the sessions the session manager knows, newest first.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "One line per session: NAME (session-id: ID, project-dir: DIR); `No sessions found` when there are none. ",
        "When the session manager cannot be reached, the .meta.json backups of the current sessions directory answer, after one warning line on stderr.\n\n",
        "Examples:\n  ao-list-sessions\n  ao-list-sessions --project\n  ao-list-sessions --json | jq -r '.sessions[].session_name'\n\n",
        exit_codes!(),
    ),
)]
struct ListArgs {
    /// Only the sessions of the current project directory
    #[arg(long)]
    project: bool,

    /// Print {"sessions":[...],"source":"api"|"backup"} instead of lines
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// One session in the list: the API's session record; from the backups,
/// what the `.meta.json` knows (the status from the session's lock).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListedSession {
    /// `null` only from a backup whose first run never reached the CLI's init line.
    pub session_id: Option<String>,
    pub session_name: String,
    pub status: SessionStatus,
    pub created_at: String,
    pub project_dir: Option<String>,
    pub agent_name: Option<String>,
    pub last_resumed_at: Option<String>,
    /// The git worktree it runs in, and its branch (`ao-new --worktree`).
    pub worktree: Option<String>,
    pub branch: Option<String>,
    /// The session whose run started it.
    pub parent_session_id: Option<String>,
    /// What its runs cost and how the last one ended.
    #[serde(flatten)]
    pub totals: SessionTotals,
}

impl From<Session> for ListedSession {
    fn from(s: Session) -> Self {
        ListedSession {
            totals: SessionTotals::of_session(&s),
            session_id: Some(s.session_id),
            session_name: s.session_name,
            status: s.status,
            created_at: s.created_at,
            project_dir: s.project_dir,
            agent_name: s.agent_name,
            last_resumed_at: s.last_resumed_at,
            worktree: s.worktree,
            branch: s.branch,
            parent_session_id: s.parent_session_id,
        }
    }
}

/// The `--json` answer of `ao-list-sessions`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ListReport {
    pub sessions: Vec<ListedSession>,
    pub source: AnswerSource,
}

/// `main` of `ao-list-sessions`.
pub fn main() -> ExitCode {
    main_with::<ListArgs>(PROGRAM, run)
}

fn run(args: &ListArgs, diag: Diag) -> Result<(), CommandError> {
    let ctx = Ctx::load(&args.common, diag)?;
    let report = block_on(list(&ctx, args.project, args.json))??;
    if args.json {
        return print_json(&report);
    }
    if report.sessions.is_empty() {
        return print_line("No sessions found");
    }
    let mut text = String::new();
    for s in &report.sessions {
        text.push_str(&format!(
            "{} (session-id: {}, project-dir: {})\n",
            s.session_name,
            s.session_id.as_deref().unwrap_or("unknown"),
            s.project_dir.as_deref().unwrap_or("unknown"),
        ));
    }
    print_line(text.trim_end_matches('\n'))
}

/// The sessions, newest first: all of them, or only this project's. From
/// the backups, only a `full` answer carries the totals (each session's
/// whole log replayed).
pub(crate) async fn list(
    ctx: &Ctx,
    project_only: bool,
    full: bool,
) -> Result<ListReport, CommandError> {
    let answer = if project_only {
        ctx.client.list_project_sessions(ctx.project()).await
    } else {
        ctx.client.list_sessions().await
    };
    match answer {
        Ok(sessions) => Ok(ListReport {
            sessions: sessions.into_iter().map(ListedSession::from).collect(),
            source: AnswerSource::Api,
        }),
        Err(e) if e.is_unreachable() => {
            ctx.fall_back(&e);
            Ok(ListReport {
                sessions: from_backups(ctx, project_only, full)?,
                source: AnswerSource::Backup,
            })
        }
        Err(e) => Err(e.into()),
    }
}

/// The sessions the `.meta.json` files describe, newest first.
fn from_backups(
    ctx: &Ctx,
    project_only: bool,
    full: bool,
) -> Result<Vec<ListedSession>, CommandError> {
    let dir = &ctx.config.sessions_dir.value;
    let mut unreadable = Vec::new();
    let mut sessions = Vec::new();
    for meta in list_metas(dir)? {
        let meta = match meta {
            Ok(meta) => meta,
            Err(e) => {
                unreadable.push(e);
                continue;
            }
        };
        if project_only && meta.project_dir != ctx.project() {
            continue;
        }
        // A meta whose name is not a valid session name was not written by
        // the runner; its lock and log cannot be found either.
        let files = SessionName::parse(&meta.session_name)
            .ok()
            .map(|name| SessionFiles::new(dir, &name));
        let running = files
            .as_ref()
            .is_some_and(|f| matches!(f.lock_state(), Ok(LockState::Held(_))));
        let totals = files
            .as_ref()
            .filter(|_| full)
            .map(SessionTotals::of_backup)
            .unwrap_or_default();
        sessions.push(ListedSession {
            totals,
            session_id: meta.session_id,
            session_name: meta.session_name,
            status: if running {
                SessionStatus::Running
            } else {
                SessionStatus::Finished
            },
            created_at: meta.created_at,
            project_dir: Some(meta.project_dir),
            agent_name: meta.agent_name,
            last_resumed_at: meta.last_resumed_at,
            worktree: meta
                .worktree
                .as_ref()
                .map(|w| w.path.to_string_lossy().into_owned()),
            branch: meta.worktree.map(|w| w.branch),
            parent_session_id: meta.parent_session_id,
        });
    }
    if let Some(first) = unreadable.first() {
        ctx.diag.warn(format!(
            "skipped {} unreadable .meta.json file(s) (first: {first})",
            unreadable.len()
        ));
    }
    sessions.sort_by(|a, b| {
        b.created_at
            .cmp(&a.created_at)
            .then_with(|| a.session_name.cmp(&b.session_name))
    });
    Ok(sessions)
}
