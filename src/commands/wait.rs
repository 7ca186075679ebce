//! `ao-wait NAME...`: blocks until the named runs have ended (with `--any`,
//! the first), printing `NAME: STATUS` as each ends. A run whose runner is
//! on this machine is watched through its lock file (the kernel wakes us
//! when the runner lets go of it, however it ends, SIGKILL included); any
//! other through the session manager's live feed. A run that waits for
//! someone to answer a request ends the wait at once (`NAME: needs_input`,
//! exit 3): the feed shows its session's `pending_requests`. Nothing is
//! polled.

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
use crate::wire::{LiveMessage, Session, SessionStatus};

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
        "A run that waits for someone to answer (a permission request or a question) ends the wait at once: NAME: needs_input; ",
        "see it with ao-requests NAME, answer it with ao-approve, ao-deny or ao-answer, then wait again. ",
        "Exit codes: 0 every run waited for completed; 1 one ended otherwise (reason on stderr); 3 a run needs input; ",
        "124 --timeout passed first; 2 bad usage or an unknown name.\n\n",
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

    /// Print one JSON array of {session_name, session_id, status (or needs_input, or running), reason, exit_code (the CLI's), runner_exit_code (ao-new's: 0, 1, 130, 143), result, error} at the end
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
    /// Its run waited for an answer when the wait began.
    needs_input: bool,
}

/// What happened to a target while waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Seen {
    Ended(usize),
    NeedsInput(usize),
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

/// The exit of the wait: a run needs input, every run waited for
/// completed, or not, or time ran out.
fn verdict(entries: &[WaitEntry], waited: usize, timeout: Option<f64>) -> Result<(), CommandError> {
    let needs_input: Vec<String> = entries
        .iter()
        .filter(|e| e.end.status == "needs_input")
        .map(|e| e.session_name.clone())
        .collect();
    if !needs_input.is_empty() {
        return Err(CommandError::NeedsInput { names: needs_input });
    }
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

/// Waits for the runs of `names` (with `any`, the first to end), or until
/// one of them needs input; answers every session, those that ended (or
/// need input) first in the order they did, and how many ends were waited
/// for.
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
    let (tx, mut rx) = mpsc::unbounded_channel::<Seen>();
    let mut followed = Vec::new();
    let mut ended_before = Vec::new();
    let mut waiting_before = None;
    for (index, target) in targets.iter().enumerate() {
        if !target.running {
            ended_before.push(index);
            continue;
        }
        if target.needs_input && waiting_before.is_none() {
            waiting_before = Some(index);
        }
        match &target.watch {
            Watch::Lock(files) => {
                let files = files.clone();
                let tx = tx.clone();
                tokio::spawn(async move {
                    let _ = lock_freed(&files).await;
                    let _ = tx.send(Seen::Ended(index));
                });
                if !ctx.fell_back() {
                    // A run started a moment ago may not have told the
                    // session manager its id yet: it is known by name then.
                    let key = match &target.session_id {
                        Some(id) => Key::Id(id.clone()),
                        None => Key::Name {
                            name: target.name.to_string(),
                            project: ctx.project().to_owned(),
                        },
                    };
                    followed.push(Followed {
                        index,
                        key,
                        remote: false,
                    });
                }
            }
            Watch::Feed(id) => followed.push(Followed {
                index,
                key: Key::Id(id.clone()),
                remote: true,
            }),
        }
    }
    if !followed.is_empty() {
        tokio::spawn(follow(ctx.client.clone(), followed, tx.clone()));
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
    let mut first = waiting_before.map(Seen::NeedsInput);
    while order.len() < want {
        let next = match (first.take(), deadline) {
            (Some(seen), _) => Some(seen),
            (None, Some(at)) => match tokio::time::timeout_at(at, rx.recv()).await {
                Ok(next) => next,
                Err(_) => break,
            },
            (None, None) => rx.recv().await,
        };
        let Some(seen) = next else { break };
        let (Seen::Ended(index) | Seen::NeedsInput(index)) = seen;
        if ended[index].is_some() {
            continue;
        }
        let entry = match seen {
            Seen::Ended(_) => end_of(ctx, &targets[index]).await?,
            Seen::NeedsInput(_) => WaitEntry {
                session_name: targets[index].name.to_string(),
                session_id: targets[index].session_id.clone(),
                end: RunEnd::needs_input(),
            },
        };
        on_end(&entry);
        ended[index] = Some(entry);
        order.push(index);
        if matches!(seen, Seen::NeedsInput(_)) {
            // Someone must act first: the wait ends here.
            break;
        }
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
            needs_input: false,
        })
    };
    let waits = |session: &Session| session.pending_requests > 0;
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
        }) => {
            let mut found = target(Some(session.session_id.clone()), Watch::Lock(files))?;
            found.needs_input = waits(&session);
            Ok(found)
        }
        Some(Found::Api {
            session,
            files: None,
        }) => {
            let id = session.session_id.clone();
            let mut found = target(Some(session.session_id.clone()), Watch::Feed(id))?;
            found.running = session.status == SessionStatus::Running;
            found.needs_input = waits(&session);
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

/// A target followed on the live feed: for the end of its run (`remote`:
/// one not watched through its lock), and for requests it waits on.
struct Followed {
    index: usize,
    key: Key,
    remote: bool,
}

/// How a followed session is recognised.
enum Key {
    Id(String),
    /// Its name in its project: a run whose session has no id yet.
    Name {
        name: String,
        project: String,
    },
}

impl Followed {
    /// Whether `session` is this target's.
    fn is(&self, session: &Session) -> bool {
        match &self.key {
            Key::Id(id) => session.session_id == *id,
            Key::Name { name, project } => {
                session.session_name == *name && session.project_dir.as_deref() == Some(project)
            }
        }
    }

    /// What the session's record (`None`: gone) says of this target.
    fn seen(&self, session: Option<&Session>) -> Option<Seen> {
        match session {
            Some(s) if s.status == SessionStatus::Running && s.pending_requests > 0 => {
                Some(Seen::NeedsInput(self.index))
            }
            Some(s) if s.status == SessionStatus::Running => None,
            _ if self.remote => Some(Seen::Ended(self.index)),
            _ => None,
        }
    }
}

/// Follows the live feed of the targets and reports each whose run ends
/// (remote ones) or waits for an answer; reconnects (backing off) when the
/// feed drops, until the wait is over. A target known only by name needs
/// the whole feed.
async fn follow(client: SessionClient, followed: Vec<Followed>, tx: mpsc::UnboundedSender<Seen>) {
    let ids: Vec<String> = followed
        .iter()
        .map(|f| match &f.key {
            Key::Id(id) => Some(id.clone()),
            Key::Name { .. } => None,
        })
        .collect::<Option<_>>()
        .unwrap_or_default();
    let mut delay = Duration::from_millis(100);
    loop {
        if let Ok(mut feed) = Feed::open(&client, &ids, false).await {
            delay = Duration::from_millis(100);
            while let Some(message) = feed.next().await {
                let seen: Vec<Seen> = match &message {
                    LiveMessage::Init { sessions } => followed
                        .iter()
                        .filter_map(|f| f.seen(sessions.iter().find(|s| f.is(s))))
                        .collect(),
                    LiveMessage::SessionCreated { session }
                    | LiveMessage::SessionUpdated { session } => followed
                        .iter()
                        .filter(|f| f.is(session))
                        .filter_map(|f| f.seen(Some(session)))
                        .collect(),
                    LiveMessage::SessionDeleted { session_id } => followed
                        .iter()
                        .filter(|f| matches!(&f.key, Key::Id(id) if id == session_id))
                        .filter_map(|f| f.seen(None))
                        .collect(),
                    _ => Vec::new(),
                };
                for seen in seen {
                    if tx.send(seen).is_err() {
                        return;
                    }
                }
            }
        }
        if tx.is_closed() {
            return;
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
