//! `ao-clean NAME` / `ao-clean --all`: delete sessions, from the API and
//! from the backup files. A name resolves as for `ao-status` (the current
//! project first, then the one project that has a session of that name;
//! stderr says which when it is another); `--all` stays within the current
//! project. A session whose runner is alive is never deleted unless told
//! to (`--force`), and then its run is stopped first, as `ao-stop` does:
//! nothing of it runs on unrecorded, and its worktree goes only once its
//! CLI has ended.

use std::collections::HashSet;
use std::process::ExitCode;

use clap::Parser;

use crate::backup::{LockState, RunLock, SessionFiles, list_metas};
use crate::client::ClientError;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{Session, SessionStatus};
use crate::worktree::{Removed, Worktree};

use super::lookup::{Found, Scope, find, unknown};
use super::stop::{stop_local, stop_remote};
use super::{CommandError, Ctx, block_on, main_with, print_line};

const PROGRAM: &str = "ao-clean";

/// Delete session NAME, or with --all every session of the current project directory.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Deletes the session's record and events from the session manager, and its .jsonl, .meta.json, .lock and .log backups. ",
        "NAME is looked up in the current project first, then in the one other project that has a session of that name (stderr says which); ",
        "when several have one, pass --project-dir DIR. --all deletes only the current project's sessions. ",
        "Prints one line per deleted session: Deleted session NAME (session-id: ID, N events). ",
        "A running session is refused (with --all: skipped, and the exit code is 1) unless --force is given: then its run is stopped first, ",
        "as ao-stop does (through the session manager for a run on another machine), and deleted once it has ended. ",
        "A session's git worktree (ao-new --worktree) is removed too and its branch ao/NAME kept (deleted when the session's CLI never ran ",
        "and the branch has no commit of its own, as after a run killed while git made the worktree); a worktree with uncommitted changes ",
        "is refused the same way (the line names the files) unless --force, which discards them. ",
        "When the session manager cannot be reached, only the backup files are deleted (exit 0), ",
        "with one warning line on stderr saying that its record could not be removed; run ao-clean again once it is back.\n\n",
        "Examples:\n  ao-clean worker-1\n  ao-clean --all\n  ao-clean --all --force\n\n",
        exit_codes!(),
    ),
)]
struct CleanArgs {
    /// Session name: 1-60 letters, digits, '-' or '_'
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,

    /// Delete every session of the current project directory
    #[arg(long)]
    all: bool,

    /// Stop running sessions and delete them too, and worktrees with uncommitted changes
    #[arg(long)]
    force: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-clean`.
pub fn main() -> ExitCode {
    main_with::<CleanArgs>(PROGRAM, run)
}

fn run(args: &CleanArgs, diag: Diag) -> Result<(), CommandError> {
    let name = args.name.as_deref().map(SessionName::parse).transpose()?;
    let mut ctx = Ctx::load(&args.common, diag)?;
    ctx.set_fallback_note(
        "deleting the backup files only; the session manager's record, if any, is not removed (run ao-clean again once it is back)",
    );
    match name {
        Some(name) => print_line(&block_on(clean_one(&ctx, &name, args.force))??),
        None => block_on(clean_all(&ctx, args.force, |line| match line {
            Ok(deleted) => {
                let _ = print_line(deleted);
            }
            Err(reason) => diag.warn(reason),
        }))?,
    }
}

/// A session to delete: what the API and the backups hold of it.
struct Target {
    name: String,
    session: Option<Session>,
    files: Option<SessionFiles>,
}

/// Deletes session `name`; answers the line that says so.
pub(crate) async fn clean_one(
    ctx: &Ctx,
    name: &SessionName,
    force: bool,
) -> Result<String, CommandError> {
    let target = match find(ctx, name, Scope::AnyProject).await? {
        None => return Err(unknown(ctx, name).await),
        Some(Found::Backup { files, .. }) => Target {
            name: name.to_string(),
            session: None,
            files: Some(files),
        },
        Some(Found::Api { session, files }) => {
            let elsewhere = session
                .project_dir
                .as_deref()
                .filter(|dir| *dir != ctx.project());
            // The backups of a session of another project are that project's.
            let files = match (files, elsewhere) {
                (Some(files), _) => Some(files),
                (None, Some(dir)) => their_backups(dir, name, &session.session_id),
                (None, None) => None,
            };
            if let Some(dir) = elsewhere {
                ctx.diag.note(format!(
                    "session '{name}' is not in the current project; deleting it from {dir}"
                ));
            }
            Target {
                name: name.to_string(),
                session: Some(session),
                files,
            }
        }
    };
    delete(ctx, target, force).await
}

/// The backups of session `id` in project `dir`'s default sessions folder,
/// when they are there and are this session's.
fn their_backups(dir: &str, name: &SessionName, id: &str) -> Option<SessionFiles> {
    let files = SessionFiles::new(
        &std::path::Path::new(dir).join(crate::config::DEFAULT_SESSIONS_SUBDIR),
        name,
    );
    let meta = files.read_meta().ok().flatten()?;
    (meta.session_id.as_deref() == Some(id)).then_some(files)
}

/// Deletes every session of the current project; `report` hears each
/// deletion's line, or why a session was kept.
pub(crate) async fn clean_all(
    ctx: &Ctx,
    force: bool,
    mut report: impl FnMut(Result<&str, &str>),
) -> Result<(), CommandError> {
    let sessions = match ctx.client.list_project_sessions(ctx.project()).await {
        Ok(sessions) => sessions,
        Err(e) if e.is_unreachable() => {
            ctx.fall_back(&e);
            Vec::new()
        }
        Err(e) => return Err(e.into()),
    };
    let dir = &ctx.config.sessions_dir.value;
    let files_of = |name: &str| {
        SessionName::parse(name)
            .ok()
            .map(|n| SessionFiles::new(dir, &n))
    };
    let mut seen = HashSet::new();
    let mut targets = Vec::new();
    for session in sessions {
        seen.insert(session.session_name.clone());
        targets.push(Target {
            name: session.session_name.clone(),
            files: files_of(&session.session_name),
            session: Some(session),
        });
    }
    let mut unreadable = 0;
    for meta in list_metas(dir)? {
        let Ok(meta) = meta else {
            unreadable += 1;
            continue;
        };
        // A sessions directory shared by several projects holds theirs too.
        if meta.project_dir != ctx.project() || !seen.insert(meta.session_name.clone()) {
            continue;
        }
        if let Some(files) = files_of(&meta.session_name) {
            targets.push(Target {
                name: meta.session_name,
                session: None,
                files: Some(files),
            });
        }
    }
    if unreadable > 0 {
        ctx.diag.warn(format!(
            "left {unreadable} unreadable .meta.json file(s) in {}",
            dir.display()
        ));
    }
    if targets.is_empty() {
        report(Ok("No sessions found"));
        return Ok(());
    }
    let (mut skipped, mut failed) = (0, 0);
    for target in targets {
        let name = target.name.clone();
        match delete(ctx, target, force).await {
            Ok(line) => report(Ok(&line)),
            Err(
                e @ (CommandError::CleanRunning { .. } | CommandError::CleanRemoteRunning { .. }),
            ) => {
                skipped += 1;
                report(Err(&format!("skipped '{name}': {e}")));
            }
            Err(e) => {
                failed += 1;
                report(Err(&format!("'{name}': {e}")));
            }
        }
    }
    if skipped > 0 {
        return Err(CommandError::SkippedRunning { count: skipped });
    }
    if failed > 0 {
        return Err(CommandError::CleanFailed { count: failed });
    }
    Ok(())
}

/// Deletes one session; answers the line that says so.
async fn delete(ctx: &Ctx, target: Target, force: bool) -> Result<String, CommandError> {
    let Target {
        name,
        session,
        files,
    } = target;
    // Holding the lock keeps a runner from starting on the files while they go.
    let _lock = lock(ctx, files.as_ref(), &name, force).await?;
    let meta = files.as_ref().and_then(|f| f.read_meta().ok().flatten());
    let worktree = meta
        .as_ref()
        .and_then(|m| m.worktree.clone())
        .or_else(|| session.as_ref().and_then(Worktree::of_session));
    if let Some(session) = &session {
        let ours = meta
            .as_ref()
            .and_then(|m| m.session_id.as_deref())
            .is_some_and(|id| id == session.session_id);
        if session.status == SessionStatus::Running && !ours {
            if !force {
                return Err(CommandError::CleanRemoteRunning { name });
            }
            stop_remote(ctx, session).await?;
        }
    }
    // The worktree goes first: refused (uncommitted changes), nothing is deleted.
    let worktree_note = match &worktree {
        Some(worktree) => {
            let removed = match worktree.remove(force) {
                Ok(Removed::Removed) => "worktree removed",
                Ok(Removed::WasMissing) => "worktree was already gone",
                Err(source) => return Err(CommandError::CleanWorktree { name, source }),
            };
            // A session whose CLI never ran (its runner died while git made
            // the worktree, say) has put nothing on its branch.
            let never_ran =
                session.is_none() && meta.as_ref().is_some_and(|m| m.session_id.is_none());
            let branch = if never_ran && worktree.delete_branch_if_unused().unwrap_or(false) {
                "deleted (it had no commit of its own)"
            } else {
                "kept"
            };
            format!("; {removed}, branch {} {branch}", worktree.branch)
        }
        None => String::new(),
    };
    let mut events = None;
    if let Some(session) = &session {
        match ctx.client.delete_session(&session.session_id).await {
            Ok(deleted) => events = Some(deleted.events_count),
            // Gone already (another ao-clean): the backups still go.
            Err(ClientError::NotFound(_)) => {}
            Err(e) if e.is_unreachable() => ctx.fall_back(&e),
            Err(e) => return Err(e.into()),
        }
    }
    if let Some(files) = &files {
        files.remove()?;
    }
    let id = session
        .as_ref()
        .map(|s| s.session_id.clone())
        .or_else(|| meta.and_then(|m| m.session_id))
        .unwrap_or_else(|| "unknown".to_owned());
    Ok(match events {
        Some(n) => format!(
            "Deleted session {name} (session-id: {id}, {n} event{}{worktree_note})",
            if n == 1 { "" } else { "s" }
        ),
        None => {
            format!("Deleted session {name} (session-id: {id}, backup files only{worktree_note})")
        }
    })
}

/// Takes the session's lock when it has backups here. A held lock means a
/// live runner: refused unless `force`, which stops its run first (as
/// `ao-stop` does) and takes the lock once the run has ended.
async fn lock(
    ctx: &Ctx,
    files: Option<&SessionFiles>,
    name: &str,
    force: bool,
) -> Result<Option<RunLock>, CommandError> {
    let Some(files) = files.filter(|f| f.exist() || f.lock_path().exists()) else {
        return Ok(None);
    };
    let running = |state| CommandError::CleanRunning {
        name: name.to_owned(),
        pid: match state {
            LockState::Held(pid) => pid,
            LockState::Free => None,
        },
    };
    match files.try_lock()? {
        Ok(lock) => return Ok(Some(lock)),
        Err(state) if !force => return Err(running(state)),
        Err(_) => {}
    }
    stop_local(ctx, files.name(), files, false).await?;
    // A run begun since is refused as any running one.
    files.try_lock()?.map(Some).map_err(running)
}
