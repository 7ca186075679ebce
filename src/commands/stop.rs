//! `ao-stop NAME`: stops a running run. A run whose runner is on this
//! machine (its lock file is here) gets SIGUSR1, which the runner turns
//! into an interrupt request to the CLI (the conversation stays resumable),
//! then SIGTERM and SIGKILL if the CLI does not end. Any other run is asked
//! through the API (`POST /sessions/{id}/stop`), which its runner follows.
//! Either way the command returns once the run has ended.

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde::Serialize;

use crate::backup::{LockState, SessionFiles};
use crate::client::ClientError;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::feed::Feed;
use crate::name::SessionName;
use crate::wire::{Session, SessionStatus};

use super::local::{RunEnd, Settled, lock_freed, settle, settled_end, tell_api};
use super::lookup::{Found, Scope, find, unknown};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-stop";
/// How long a stopped run may take to end: the runner's 5 s for the CLI
/// to end its turn, 1.5 s after SIGTERM, and a wide margin for a loaded
/// machine.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// Stop the running run of session NAME; its conversation stays resumable.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "The run ends with reason `stopped` (its runner exits 143) and `ao-resume NAME` continues the conversation. ",
        "The runner asks the CLI to end its turn first; a CLI that has not exited after 5 s gets SIGTERM, then SIGKILL. ",
        "Prints NAME: stopped once the run has ended. A session that is not running: exit 1. ",
        "A session the session manager calls running whose runner is gone is closed as interrupted (NAME: interrupted).\n\n",
        "Examples:\n  ao-stop worker-3\n  ao-stop worker-3 --json\n\n",
        exit_codes!(),
    ),
)]
struct StopArgs {
    /// Session name: 1-60 letters, digits, '-' or '_'
    name: String,

    /// Print {"session_name","session_id","via","status","reason","exit_code" (the CLI's),"runner_exit_code" (ao-new's: 143 when stopped),"result","error"}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// How the stop reached the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum StopVia {
    /// SIGUSR1 to the runner on this machine.
    Signal,
    /// `POST /sessions/{id}/stop`.
    Api,
    /// The runner was gone; the run was closed as interrupted.
    Closed,
}

/// The answer of `ao-stop`.
#[derive(Debug, Clone, Serialize)]
pub struct StopReport {
    pub session_name: String,
    pub session_id: Option<String>,
    pub via: StopVia,
    #[serde(flatten)]
    pub end: RunEnd,
}

/// `main` of `ao-stop`.
pub fn main() -> ExitCode {
    main_with::<StopArgs>(PROGRAM, run)
}

fn run(args: &StopArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let report = block_on(stop(&ctx, &name))??;
    if args.json {
        print_json(&report)
    } else {
        print_line(&format!("{}: {}", report.session_name, report.end.status))
    }
}

/// Stops `name`'s run and answers how it ended.
pub(crate) async fn stop(ctx: &Ctx, name: &SessionName) -> Result<StopReport, CommandError> {
    let not_running = || CommandError::NotRunning {
        name: name.to_string(),
    };
    let report = |session_id, via, end| StopReport {
        session_name: name.to_string(),
        session_id,
        via,
        end,
    };
    match find(ctx, name, Scope::AnyProject).await? {
        None => Err(unknown(ctx, name).await),
        Some(Found::Backup { files, meta }) => {
            let id = meta.and_then(|m| m.session_id);
            let (via, end) = stop_local(ctx, name, &files, false)
                .await?
                .ok_or_else(not_running)?;
            Ok(report(id, via, end))
        }
        Some(Found::Api {
            session,
            files: Some(files),
        }) => {
            let running = session.status == SessionStatus::Running;
            match stop_local(ctx, name, &files, running).await? {
                Some((via, end)) => Ok(report(Some(session.session_id), via, end)),
                None => Err(not_running()),
            }
        }
        Some(Found::Api {
            session,
            files: None,
        }) => {
            let (via, end) = stop_remote(ctx, &session).await?.ok_or_else(not_running)?;
            Ok(report(Some(session.session_id), via, end))
        }
    }
}

/// A session whose backups are here: signal its runner and wait for its
/// end, or close the run of a runner that died. `None` when nothing runs.
pub(crate) async fn stop_local(
    ctx: &Ctx,
    name: &SessionName,
    files: &SessionFiles,
    api_running: bool,
) -> Result<Option<(StopVia, RunEnd)>, CommandError> {
    if let LockState::Held(Some(pid)) = files.lock_state()? {
        let pid = Pid::from_raw(pid as i32);
        kill(pid, Signal::SIGUSR1).map_err(|e| CommandError::StopFailed {
            name: name.to_string(),
            reason: format!("cannot signal its runner (pid {pid}): {e}"),
        })?;
        match tokio::time::timeout(STOP_WAIT, lock_freed(files)).await {
            Ok(freed) => freed?,
            Err(_) => {
                return Err(CommandError::StopFailed {
                    name: name.to_string(),
                    reason: format!("its run did not end within {}s", STOP_WAIT.as_secs()),
                });
            }
        }
        return Ok(Some((
            StopVia::Signal,
            settled_end(ctx, name, files).await?,
        )));
    }
    match settle(files, ctx.legacy(), api_running)? {
        Settled::Running => Err(CommandError::StopFailed {
            name: name.to_string(),
            reason: "its runner's pid is unknown (unreadable lock file)".to_owned(),
        }),
        Settled::Done {
            last,
            closed: Some(closed),
        } if closed.was_open || api_running => {
            tell_api(ctx, name.as_str(), &closed).await;
            Ok(Some((StopVia::Closed, RunEnd::from_last_run(&last))))
        }
        Settled::Done { .. } => Ok(None),
    }
}

/// A session run elsewhere: ask through the API and follow its feed until
/// the run ends. `None` when it is not running.
pub(crate) async fn stop_remote(
    ctx: &Ctx,
    session: &Session,
) -> Result<Option<(StopVia, RunEnd)>, CommandError> {
    let id = &session.session_id;
    // Follow first, then ask: the end cannot slip by in between.
    let mut feed = Feed::open(&ctx.client, std::slice::from_ref(id), false).await?;
    let answer = match ctx.client.stop_session(id).await {
        Ok(answer) => answer,
        Err(ClientError::Api { status: 409, .. }) => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let via = if answer.delivered {
        let pending = std::iter::once(id.clone()).collect();
        let ended = tokio::time::timeout(STOP_WAIT, feed.next_end(&pending)).await;
        if !matches!(ended, Ok(Some(_))) {
            return Err(CommandError::StopFailed {
                name: session.session_name.clone(),
                reason: format!(
                    "its runner was asked to stop and the run did not end within {}s",
                    STOP_WAIT.as_secs()
                ),
            });
        }
        StopVia::Api
    } else {
        StopVia::Closed
    };
    let events = ctx.client.list_events(id).await?;
    Ok(Some((via, RunEnd::from_events(&events))))
}
