//! What both engines decide alike about launched runs (`/runs`): which
//! session a resume continues and whether it may run where it lives, what a
//! claim, a runner's exit or a stop does to a run, and the run end that
//! closes a session's run its runner could not close. The engines read the
//! rows these take (a launch's row as [`launch_from_row`] decodes it) and
//! write what they answer.

use super::StoreError;
use super::placement::{HostRow, Want, check_reachable};
use super::row::StoredRow;
use crate::wire::{
    Event, EventType, LaunchSettings, Run, RunCreate, RunEndReason, RunExited, RunStatus, Session,
    SessionStatus, now_rfc3339,
};

/// A launch as stored.
#[derive(Debug, Clone)]
pub(super) struct LaunchRow {
    pub run: Run,
    pub seq: i64,
    /// The host asked for (a resume: the session's).
    pub want_host: Option<String>,
    /// The host process that claimed it.
    pub claimed_by: Option<String>,
}

/// A launch as its row is read (`SELECT <every launch column>`, in the
/// engines' order), with its prompt if asked (lists leave it out):
/// unreadable settings read as none, an unknown status as an error.
pub(super) fn launch_from_row<R: StoredRow>(
    r: &R,
    with_prompt: bool,
) -> Result<LaunchRow, R::Error> {
    let status: String = r.column(1)?;
    let settings: Option<String> = r.column(8)?;
    let want_host: Option<String> = r.column(9)?;
    let labels: String = r.column(10)?;
    let host: Option<String> = r.column(11)?;
    Ok(LaunchRow {
        run: Run {
            run_id: r.column(0)?,
            status: RunStatus::parse(&status).unwrap_or(RunStatus::Error),
            session_name: r.column(2)?,
            project_dir: r.column(3)?,
            resume: r.column(4)?,
            agent: r.column(5)?,
            worktree: r.column(6)?,
            base: r.column(7)?,
            settings: settings.and_then(|s| serde_json::from_str::<LaunchSettings>(&s).ok()),
            host: host.or_else(|| want_host.clone()),
            labels: serde_json::from_str(&labels).unwrap_or_default(),
            session_id: r.column(12)?,
            queue_position: None,
            error: r.column(13)?,
            runner_exit_code: r.column(14)?,
            created_at: r.column(15)?,
            started_at: r.column(16)?,
            ended_at: r.column(17)?,
            prompt: if with_prompt { r.column(20)? } else { None },
        },
        seq: r.column(18)?,
        want_host,
        claimed_by: r.column(19)?,
    })
}

/// The session a resume continues, among `found`: the sessions named so
/// (in `project_dir` when given, else in any project).
pub(super) fn session_to_resume(
    name: &str,
    project_dir: Option<&str>,
    mut found: Vec<Session>,
) -> Result<Session, StoreError> {
    match (found.len(), project_dir) {
        (0, Some(dir)) => Err(StoreError::NotFound(format!(
            "there is no session named '{name}' in {dir}; start one (without \"resume\")"
        ))),
        (0, None) => Err(StoreError::NotFound(format!(
            "there is no session named '{name}'; start one (without \"resume\")"
        ))),
        (1, _) => Ok(found.remove(0)),
        _ => Err(StoreError::Conflict(format!(
            "several projects have a session named '{name}' ({}); give project_dir",
            found
                .iter()
                .map(|s| s.project_dir.clone().unwrap_or_default())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}

fn home_name(session: &Session) -> String {
    session.host.as_deref().map_or_else(
        || "the session manager's own host".to_owned(),
        |h| format!("host '{h}'"),
    )
}

/// A resume of `session` as `c` asks it: refused while it runs, on another
/// host than its own, or when its home (among `all`) cannot run it now.
pub(super) fn check_resume(
    c: &RunCreate,
    session: &Session,
    all: &[HostRow],
) -> Result<(), StoreError> {
    let name = &session.session_name;
    if session.status == SessionStatus::Running {
        return Err(StoreError::Conflict(format!(
            "session '{name}' is running; wait for its run to end (ao-wait {name}), then resume it"
        )));
    }
    if let Some(asked) = c.host.as_deref()
        && session.host.as_deref() != Some(asked)
    {
        return Err(StoreError::Conflict(format!(
            "session '{name}' lives on {}; a resume runs where the session's conversation is",
            home_name(session)
        )));
    }
    let home = all.iter().find(|r| match &session.host {
        Some(h) => &r.host.name == h,
        None => r.host.embedded,
    });
    if let Some(missing) = c
        .labels
        .iter()
        .find(|l| !home.is_some_and(|r| r.host.labels.contains(l)))
    {
        return Err(StoreError::Conflict(format!(
            "session '{name}' lives on {}, which has no label '{missing}'; a resume runs where the session's conversation is",
            home_name(session)
        )));
    }
    let Some(home) = &session.host else {
        return check_reachable(all, Want::Local, None).map_err(|_| {
            StoreError::Conflict(format!(
                "session '{name}' was run on the session manager's machine, which runs no sessions itself (--no-local-runs): resume it there with ao-resume {name}"
            ))
        });
    };
    match all.iter().find(|r| &r.host.name == home) {
        Some(r) if r.host.online => Ok(()),
        Some(r) => Err(StoreError::Conflict(format!(
            "session '{name}' lives on host '{home}', which is offline (last seen {}): Claude Code keeps the conversation on that machine, so start its ao-host again to resume it",
            r.host.last_seen
        ))),
        None => Err(StoreError::Conflict(format!(
            "session '{name}' lives on host '{home}', which is not registered any more: Claude Code keeps the conversation on that machine, so start its ao-host again to resume it"
        ))),
    }
}

/// A new session's run needs its folder.
pub(super) fn needs_project_dir() -> StoreError {
    StoreError::Invalid(
        "project_dir is needed: the folder on the host to run the new session in".to_owned(),
    )
}

/// A new session's name is taken in its folder by `other`.
pub(super) fn name_taken(name: &str, dir: &str, other: &Session) -> StoreError {
    StoreError::Conflict(format!(
        "a session named '{name}' already exists in {dir} (session_id {}); resume it (\"resume\": true) or give the new one another name",
        other.session_id
    ))
}

/// The session has a run open already.
pub(super) fn run_open(name: &str, run_id: &str, status: &str) -> StoreError {
    StoreError::Conflict(format!(
        "a run of session '{name}' is {status} already (run {run_id}); wait for it (ao-wait {name}) first"
    ))
}

/// A claim that did not take: why, from the run as it is.
pub(super) fn not_yours(run_id: &str, run: &Run, claimed: bool, host: &str) -> StoreError {
    StoreError::Conflict(format!(
        "run '{run_id}' is not this host's to start: it is {}{}",
        run.status.as_str(),
        match &run.host {
            Some(h) if *h != host => format!(" on host '{h}'"),
            _ if claimed => " and claimed already".to_owned(),
            _ => String::new(),
        }
    ))
}

/// A run reported by a process of its host that did not start it.
pub(super) fn not_started_here(run_id: &str) -> StoreError {
    StoreError::Conflict(format!("run '{run_id}' was not started by this host"))
}

/// A run that is not stored.
pub(super) fn no_run(run_id: &str) -> StoreError {
    StoreError::NotFound(format!("run '{run_id}' not found"))
}

/// The status and error of `run` once its runner ended as `e` says: one
/// that ended before its run began fails it with its own line.
pub(super) fn exited(run: &Run, e: &RunExited) -> (RunStatus, Option<String>) {
    let code = e
        .exit_code
        .map_or_else(|| "a signal".to_owned(), |c| format!("code {c}"));
    let (status, error) = match run.status {
        RunStatus::Starting => (
            RunStatus::FailedToStart,
            e.error
                .clone()
                .filter(|l| !l.trim().is_empty())
                .unwrap_or_else(|| {
                    format!("the runner ended ({code}) before the conversation began")
                }),
        ),
        RunStatus::Running => (
            RunStatus::Interrupted,
            format!(
                "the runner ended ({code}) and its run's end never reached the session manager"
            ),
        ),
        _ => (run.status, run.error.clone().unwrap_or_default()),
    };
    (status, (!error.is_empty()).then_some(error))
}

/// What a stop does to a run.
pub(super) enum StopAction {
    /// Not taken by its host yet (the claim needs it starting): it never starts.
    Cancel,
    /// Its host is asked to stop it.
    AskHost(String),
}

pub(super) fn stop(run: &Run, claimed: bool) -> Result<StopAction, StoreError> {
    let untaken =
        run.status == RunStatus::Queued || (run.status == RunStatus::Starting && !claimed);
    match (run.status, &run.host) {
        _ if untaken => Ok(StopAction::Cancel),
        (RunStatus::Starting | RunStatus::Running, Some(host)) => {
            Ok(StopAction::AskHost(host.clone()))
        }
        (status, _) => Err(StoreError::Conflict(format!(
            "run '{}' is {} already",
            run.run_id,
            status.as_str()
        ))),
    }
}

/// Why a stopped run never started.
pub(super) const STOPPED_UNTAKEN: &str = "stopped before a host took it";

/// Why a queued run failed after `seconds`.
pub(super) fn expired(seconds: f64) -> String {
    format!(
        "no host took the run within {seconds} s (the session manager's --queue-timeout): every host it fits was full or offline"
    )
}

/// Why a host's runs ended when it went silent for `seconds`.
pub(super) fn silent(name: &str, seconds: f64) -> String {
    format!("host '{name}' went offline (no heartbeat for {seconds} s)")
}

/// The run end that closes `session`'s run of `run` as interrupted, with
/// the event id the runner's own end would have, so that end, should it
/// come later, is taken for a repeat; `None` when the session does not show
/// it running. The event and its stored JSON.
pub(super) fn interrupted_end(
    session: &Session,
    run: &Run,
    why: &str,
) -> Result<Option<(Event, String)>, StoreError> {
    if session.status != SessionStatus::Running {
        return Ok(None);
    }
    let session_id = &session.session_id;
    let mut end = Event::new(
        EventType::RunCompleted,
        session_id,
        &session.session_name,
        now_rfc3339(),
    );
    end.event_id = Some(crate::record::run_event_id(
        session_id,
        &run.run_id,
        "run_end",
        None,
    ));
    end.run_id = Some(run.run_id.clone());
    end.reason = Some(RunEndReason::Interrupted.as_str().to_owned());
    end.error = Some(why.to_owned());
    let body = serde_json::to_string(&end)
        .map_err(|e| StoreError::Unavailable(format!("cannot encode the run's end: {e}")))?;
    Ok(Some((end, body)))
}
