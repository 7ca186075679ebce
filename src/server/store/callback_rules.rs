//! Callbacks (issue 22), as both engines decide them apart from their SQL.
//! A child's run registers one for its parent; its end (the stored
//! `run_completed`) makes it pending, in the same write; the dispatcher
//! then resumes each parent that is not running with every pending
//! callback it has, in the order the children ended, as one launch (`POST
//! /runs` with `resume`), and marks them delivering in the same write. A
//! parent has at most one such resume at a time. Everything is in the
//! database, so a restart of the session manager delivers what is left,
//! once.
//!
//! A callback is `waiting` while the child's run goes on, `pending` once it
//! ended, `delivering` once a resume of the parent carries it, then
//! `delivered`, or `failed` with `error`. Both engines read a callback's
//! row with [`callback_from_row`].

use super::StoreError;
use super::row::StoredRow;
use crate::wire::{Callback, Event, RunCreate, Session, callback_message};

/// A callback as its row is read (`SELECT <every callback column>`, in the
/// engines' order).
pub(super) fn callback_from_row<R: StoredRow>(r: &R) -> Result<Callback, R::Error> {
    Ok(Callback {
        child_run_id: r.column(0)?,
        child_session_name: r.column(1)?,
        child_session_id: r.column(2)?,
        parent_session_id: r.column(3)?,
        status: r.column(4)?,
        child_status: r.column(5)?,
        result: r.column(6)?,
        run_id: r.column(7)?,
        error: r.column(8)?,
        created_at: r.column(9)?,
        ended_at: r.column(10)?,
    })
}

/// How times a resume that did not start is tried, in all.
pub(super) const MAX_ATTEMPTS: i64 = 4;

/// The refusal of a callback to a parent that does not exist.
pub(super) fn no_parent(parent: &str) -> StoreError {
    StoreError::NotFound(format!("there is no session '{parent}' to call back"))
}

/// The refusal of the end of a run that registered no callback.
pub(super) fn no_callback(child_run_id: &str) -> StoreError {
    StoreError::NotFound(format!("no callback of run '{child_run_id}'"))
}

/// How a child's run ended, as its callback says: `completed` and
/// `stopped` carry the run's last answer (`None`: look it up), anything
/// else is an `error` with why.
pub(super) fn ending(event: &Event) -> (&'static str, Option<String>) {
    match event.reason.as_deref() {
        Some("completed") => ("completed", None),
        Some("stopped") => ("stopped", None),
        other => {
            (
                "error",
                Some(event.error.clone().unwrap_or_else(|| {
                    format!("the run ended ({})", other.unwrap_or("no reason"))
                })),
            )
        }
    }
}

/// The text of a stored assistant message.
pub(super) fn answer_text(body: Option<String>) -> String {
    body.and_then(|b| serde_json::from_str::<Event>(&b).ok())
        .map(|e| e.text())
        .unwrap_or_default()
}

/// The resume of `parent` that carries `due` (pending, in the order the
/// children ended) as one prompt.
pub(super) fn resume(parent: &Session, due: &[Callback]) -> RunCreate {
    let prompt = due
        .iter()
        .map(|c| {
            callback_message(
                &c.child_session_name,
                c.child_status.as_deref().unwrap_or("error"),
                c.result.as_deref().unwrap_or(""),
            )
        })
        .collect::<Vec<_>>()
        .join("\n");
    RunCreate {
        session_name: parent.session_name.clone(),
        prompt,
        project_dir: parent.project_dir.clone(),
        resume: true,
        ..RunCreate::default()
    }
}

/// What becomes of a callback whose parent's resume did not start, on its
/// `attempts`-th failure (its runner refused: the parent was running after
/// all, its CLI is missing, its tree's budget is spent...).
pub(super) enum Retry {
    /// Pending again, tried at this time (one second more each time).
    At(String),
    /// Failed for good after [`MAX_ATTEMPTS`].
    Fail,
}

/// Why a resume that did not start delivered nothing, and what follows.
pub(super) fn retry(child: &str, attempts: i64, launch_error: Option<&str>) -> (String, Retry) {
    let why = format!(
        "the resume of the parent did not start: {}",
        launch_error.unwrap_or("no reason")
    );
    if attempts >= MAX_ATTEMPTS {
        tracing::warn!("the callback of session '{child}' failed: {why}");
        return (why, Retry::Fail);
    }
    let retry_at = (chrono::Utc::now() + chrono::Duration::seconds(attempts))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    tracing::info!("the callback of session '{child}' is tried again at {retry_at}: {why}");
    (why, Retry::At(retry_at))
}

/// Logs the callbacks of `children` to `parent` that failed for `why`.
pub(super) fn log_failed(children: &[String], parent: &str, why: &str) {
    for child in children {
        tracing::warn!("the callback of session '{child}' to session {parent} failed: {why}");
    }
}
