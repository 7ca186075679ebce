//! `ao-sync`: rebuild in the session manager whatever it is missing of a
//! session, from the backup files alone. The actions come from the same
//! planner the runner uses ([`record::replay`]), with the same event ids, so
//! a replay adds only what is missing and a second one adds nothing.

use std::collections::{HashMap, HashSet};

use serde::Serialize;

use crate::backup::{BackupError, LogWriter, SessionFiles};
use crate::client::{ClientError, SessionClient};
use crate::record::{Action, natural_keys, replay};
use crate::recover::close_last_run;
use crate::report::{Applied, apply};
use crate::wire::{RunFigures, parse_timestamp};

/// What a sync of one session did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct SyncReport {
    pub session_name: String,
    pub session_id: Option<String>,
    /// The session record was created.
    pub created_session: bool,
    /// `last_resumed_at` was brought forward.
    pub updated_session: bool,
    pub events_added: usize,
    pub events_present: usize,
    /// Runs stored without their figures, or with figures an older release
    /// derived wrongly (the sums over the conversation some CLI releases
    /// report), that got the right ones.
    pub runs_filled: usize,
    /// A run whose runner had died was closed as interrupted.
    pub closed_stale_run: bool,
}

/// Why a session could not be synced.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("session '{0}' is running (runner pid {1}); sync it once the run is over")]
    Running(String, String),
    #[error("session '{0}' has no backup files in {1}")]
    NoBackup(String, String),
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Client(#[from] ClientError),
}

/// Brings the API's record of one session up to what its backups say.
pub async fn sync_session(
    files: &SessionFiles,
    client: &SessionClient,
    legacy: bool,
) -> Result<SyncReport, SyncError> {
    let name = files.name().to_string();
    if !files.exist() {
        return Err(SyncError::NoBackup(name, files.dir().display().to_string()));
    }
    let _lock = match files.try_lock()? {
        Ok(mut lock) => {
            lock.end_left_behind();
            lock
        }
        Err(state) => return Err(SyncError::Running(name, state.holder())),
    };
    let (mut log, mut lines) = LogWriter::open(&files.log_path())?;
    let closed = close_last_run(&name, &mut log, &mut lines, legacy)?;
    let (recorder, actions) = replay(&name, legacy, &lines);
    let mut report = SyncReport {
        session_name: name,
        session_id: recorder.session_id().map(str::to_owned),
        closed_stale_run: closed.was_open,
        ..SyncReport::default()
    };
    let Some(session_id) = report.session_id.clone() else {
        return Ok(report); // no run ever named its session: nothing the API could hold
    };
    let (mut session, stored) = match client.session_if_any(&session_id).await? {
        Some(session) => (Some(session), client.list_events(&session_id).await?),
        None => (None, Vec::new()),
    };
    // The figures of each stored event, by id: a replay that derives other
    // figures (a run stored without them, or with the sums an older release
    // took for the run's own) corrects them.
    let figures: HashMap<uuid::Uuid, RunFigures> = stored
        .iter()
        .filter_map(|e| Some((e.event.event_id?, e.event.figures())))
        .collect();
    let known_keys: HashSet<String> = natural_keys(stored.iter().map(|e| &e.event))
        .into_iter()
        .collect();
    let replayed_keys = natural_keys(actions.iter().filter_map(|a| match a {
        Action::Event(event) => Some(&**event),
        _ => None,
    }));
    let mut keys = replayed_keys.iter();
    for action in &actions {
        let key = matches!(action, Action::Event(_))
            .then(|| keys.next())
            .flatten();
        match action {
            Action::Create(_) if session.is_some() => {}
            Action::Resume { at, .. }
                if session
                    .as_ref()
                    .is_some_and(|s| !is_later(at, s.last_resumed_at.as_deref())) => {}
            Action::Event(event) if event.event_id.is_some_and(|id| figures.contains_key(&id)) => {
                report.events_present += 1;
                let stored = event.event_id.and_then(|id| figures.get(&id));
                if stored.is_some_and(|f| *f != event.figures())
                    && apply(client, action).await? == Applied::Filled
                {
                    report.runs_filled += 1;
                }
            }
            Action::Event(_) if key.is_some_and(|k| known_keys.contains(k)) => {
                report.events_present += 1;
            }
            _ => {
                let applied = apply(client, action).await?;
                match action {
                    Action::Create(_) => {
                        report.created_session = applied == Applied::Added;
                        session = Some(client.get_session(&session_id).await?);
                    }
                    Action::Resume { .. } => {
                        report.updated_session = true;
                        session = Some(client.get_session(&session_id).await?);
                    }
                    Action::Event(_) if applied == Applied::Added => report.events_added += 1,
                    Action::Event(_) => {
                        report.events_present += 1;
                        if applied == Applied::Filled {
                            report.runs_filled += 1;
                        }
                    }
                }
            }
        }
    }
    Ok(report)
}

/// True when `at` is after `current` (or there is no current time).
fn is_later(at: &str, current: Option<&str>) -> bool {
    match (parse_timestamp(at), current.map(parse_timestamp)) {
        (Ok(at), Some(Ok(current))) => at > current,
        _ => true,
    }
}
