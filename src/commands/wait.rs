//! `ao-wait NAME...`: blocks until the named runs have ended (with `--any`,
//! the first), printing `NAME: STATUS` as each ends. A run whose runner is
//! on this machine is watched through its lock file (the kernel wakes us
//! when the runner lets go of it, however it ends, SIGKILL included); any
//! other through the session manager's live feed. Nothing is polled.

use std::collections::HashSet;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use serde::Serialize;
use tokio::sync::mpsc;

use crate::backup::{LockState, SessionFiles};
use crate::client::SessionClient;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::feed::Feed;
use crate::name::SessionName;
use crate::wire::SessionStatus;

use super::local::{RunEnd, lock_freed, settled_end};
use super::lookup::{Found, Scope, find, near};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-wait";
/// The longest wait between two attempts to reach the live feed.
const FEED_RETRY_MAX: Duration = Duration::from_secs(2);

/// Wait until the runs of the named sessions have ended.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Prints NAME: completed|error|interrupted|stopped for each session as its run ends; a session that is not running counts as ended at once. ",
        "Exit codes: 0 every run waited for completed; 1 one ended otherwise (reason on stderr); 124 --timeout passed first; ",
        "2 bad usage or an unknown name.\n\n",
        "Examples:\n  for t in a b c; do ao-new \"$t\" --detach < \"$t.md\"; done\n  ao-wait a b c --timeout 600\n  ao-wait a b c --any --json\n",
    ),
)]
struct WaitArgs {
    /// Session names: 1-60 letters, digits, '-' or '_'
    #[arg(required = true, value_name = "NAME")]
    names: Vec<String>,

    /// Return when the first run ends
    #[arg(long)]
    any: bool,

    /// Give up after SECONDS (exit 124); 0 answers at once for the runs that have ended
    #[arg(long, value_name = "SECONDS", value_parser = parse_timeout, allow_hyphen_values = true)]
    timeout: Option<f64>,

    /// Print one JSON array of {session_name, session_id, status, reason, exit_code (the CLI's), runner_exit_code (ao-new's: 0, 1, 130, 143), result, error} at the end
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

fn parse_timeout(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..1e9).contains(&s) => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds (0 or more)")),
    }
}

/// One session in the answer of `ao-wait`.
#[derive(Debug, Clone, Serialize)]
pub struct WaitEntry {
    pub session_name: String,
    pub session_id: Option<String>,
    /// `running` for a run that had not ended when the wait did.
    #[serde(flatten)]
    pub end: RunEnd,
}

/// What a run to wait for is watched through.
enum Watch {
    Lock(SessionFiles),
    Feed(String),
}

struct Target {
    name: SessionName,
    session_id: Option<String>,
    watch: Watch,
    /// False for a session whose run had ended when the wait began: it
    /// counts as ended at once, whatever the timeout.
    running: bool,
}

/// `main` of `ao-wait`.
pub fn main() -> ExitCode {
    main_with::<WaitArgs>(PROGRAM, run)
}

fn run(args: &WaitArgs, diag: Diag) -> Result<(), CommandError> {
    let names = args
        .names
        .iter()
        .map(|n| SessionName::parse(n))
        .collect::<Result<Vec<_>, _>>()?;
    let ctx = Ctx::load(&args.common, diag)?;
    let json = args.json;
    let (entries, waited) = block_on(wait(&ctx, &names, args.any, args.timeout, |entry| {
        if !json {
            let _ = print_line(&format!("{}: {}", entry.session_name, entry.end.status));
        }
    }))??;
    if json {
        print_json(&entries)?;
    }
    verdict(&entries, waited, args.timeout)
}

/// The exit of the wait: every run waited for completed, or not, or time ran out.
fn verdict(entries: &[WaitEntry], waited: usize, timeout: Option<f64>) -> Result<(), CommandError> {
    let (ended, running): (Vec<&WaitEntry>, Vec<&WaitEntry>) =
        entries.iter().partition(|e| e.end.status != "running");
    if ended.len() < waited {
        return Err(CommandError::TimedOut {
            seconds: timeout.unwrap_or_default(),
            names: running.iter().map(|e| e.session_name.clone()).collect(),
        });
    }
    let failed: Vec<String> = ended[..waited]
        .iter()
        .filter(|e| !e.end.completed())
        .map(|e| format!("{} ({})", e.session_name, e.end.status))
        .collect();
    if failed.is_empty() {
        Ok(())
    } else {
        Err(CommandError::NotCompleted { ended: failed })
    }
}

/// Waits for the runs of `names` (with `any`, the first to end); answers
/// every session, those that ended first in the order they ended, and how
/// many ends were waited for.
pub(crate) async fn wait(
    ctx: &Ctx,
    names: &[SessionName],
    any: bool,
    timeout: Option<f64>,
    mut on_end: impl FnMut(&WaitEntry),
) -> Result<(Vec<WaitEntry>, usize), CommandError> {
    let mut targets = Vec::new();
    let mut seen = HashSet::new();
    for name in names.iter().filter(|n| seen.insert(n.as_str().to_owned())) {
        targets.push(target(ctx, name).await?);
    }
    let want = if any { 1 } else { targets.len() };
    let (tx, mut rx) = mpsc::unbounded_channel::<usize>();
    let mut remote = Vec::new();
    let mut ended_before = Vec::new();
    for (index, target) in targets.iter().enumerate() {
        if !target.running {
            ended_before.push(index);
            continue;
        }
        match &target.watch {
            Watch::Lock(files) => {
                let files = files.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = lock_freed(&files).await;
                    let _ = tx.send(index);
                });
            }
            Watch::Feed(id) => remote.push((index, id.clone())),
        }
    }
    if !remote.is_empty() {
        tokio::spawn(follow(ctx.client.clone(), remote, tx.clone()));
    }
    drop(tx);
    let mut ended: Vec<Option<WaitEntry>> = targets.iter().map(|_| None).collect();
    let mut order = Vec::new();
    for index in ended_before.into_iter().take(want) {
        let entry = end_of(ctx, &targets[index]).await?;
        on_end(&entry);
        ended[index] = Some(entry);
        order.push(index);
    }
    let deadline = timeout.map(|s| tokio::time::Instant::now() + Duration::from_secs_f64(s));
    while order.len() < want {
        let next = match deadline {
            Some(at) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            None => rx.recv().await,
        };
        let Some(index) = next else { break };
        if ended[index].is_some() {
            continue;
        }
        let entry = end_of(ctx, &targets[index]).await?;
        on_end(&entry);
        ended[index] = Some(entry);
        order.push(index);
    }
    let mut entries: Vec<WaitEntry> = order.iter().filter_map(|&i| ended[i].take()).collect();
    for (index, target) in targets.iter().enumerate() {
        if ended[index].is_none() && !order.contains(&index) {
            entries.push(WaitEntry {
                session_name: target.name.to_string(),
                session_id: target.session_id.clone(),
                end: RunEnd::running(),
            });
        }
    }
    Ok((entries, want))
}

/// Finds a session to wait for; an unknown name is bad usage.
async fn target(ctx: &Ctx, name: &SessionName) -> Result<Target, CommandError> {
    let target = |session_id, watch: Watch| -> Result<Target, CommandError> {
        let running = match &watch {
            Watch::Lock(files) => matches!(files.lock_state()?, LockState::Held(_)),
            Watch::Feed(_) => true,
        };
        Ok(Target {
            name: name.clone(),
            session_id,
            watch,
            running,
        })
    };
    match find(ctx, name, Scope::AnyProject).await? {
        None => Err(CommandError::UnknownName {
            name: name.to_string(),
            project: ctx.project().to_owned(),
            near: near(ctx, name).await,
        }),
        Some(Found::Backup { files, meta }) => {
            target(meta.and_then(|m| m.session_id), Watch::Lock(files))
        }
        Some(Found::Api {
            session,
            files: Some(files),
        }) => target(Some(session.session_id), Watch::Lock(files)),
        Some(Found::Api {
            session,
            files: None,
        }) => {
            let id = session.session_id.clone();
            let mut found = target(Some(session.session_id), Watch::Feed(id))?;
            found.running = session.status == SessionStatus::Running;
            Ok(found)
        }
    }
}

/// How the run of an ended target ended.
async fn end_of(ctx: &Ctx, target: &Target) -> Result<WaitEntry, CommandError> {
    let end = match &target.watch {
        Watch::Lock(files) => {
            if let LockState::Held(_) = files.lock_state()? {
                // A new run took the lock at once; the one waited for has ended.
                RunEnd::from_last_run(&super::local::LastRun::read(files)?)
            } else {
                settled_end(ctx, &target.name, files).await?
            }
        }
        Watch::Feed(id) => RunEnd::from_events(&ctx.client.list_events(id).await?),
    };
    Ok(WaitEntry {
        session_name: target.name.to_string(),
        session_id: target.session_id.clone(),
        end,
    })
}

/// Follows the live feed of the remote targets and reports each as its run
/// ends; reconnects (backing off) when the feed drops.
async fn follow(
    client: SessionClient,
    remote: Vec<(usize, String)>,
    tx: mpsc::UnboundedSender<usize>,
) {
    let mut pending: HashSet<String> = remote.iter().map(|(_, id)| id.clone()).collect();
    let ids: Vec<String> = pending.iter().cloned().collect();
    let mut delay = Duration::from_millis(100);
    while !pending.is_empty() {
        if let Ok(mut feed) = Feed::open(&client, &ids, false).await {
            delay = Duration::from_millis(100);
            while let Some(id) = feed.next_end(&pending).await {
                pending.remove(&id);
                if let Some((index, _)) = remote.iter().find(|(_, r)| *r == id) {
                    let _ = tx.send(*index);
                }
                if pending.is_empty() {
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(FEED_RETRY_MAX);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_are_numbers_of_seconds_from_zero() {
        assert_eq!(parse_timeout("1.5"), Ok(1.5));
        assert_eq!(parse_timeout("0"), Ok(0.0));
        for bad in ["-1", "x", "inf", "NaN", ""] {
            assert!(parse_timeout(bad).is_err(), "{bad}");
        }
    }
}
