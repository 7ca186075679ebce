//! Callbacks (issue 22): a child's run registers one for its parent; its
//! end (the stored `run_completed`) makes it pending, in the same write; the
//! dispatcher then resumes each parent that is not running with every
//! pending callback it has, in the order the children ended, as one
//! launch (`POST /runs` with `resume`), and marks them delivering in the
//! same write. A parent has at most one such resume at a time. Everything is
//! in the database, so a restart of the session manager delivers what is
//! left, once.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::launches;
use super::reader::get_session;
use super::writer::Op;
use crate::server::live::Change;
use crate::wire::{
    Callback, CallbackCreate, Event, RunCreate, SessionStatus, callback_message, now_rfc3339,
};

const SELECT_CALLBACK: &str =
    "SELECT child_run_id, child_name, child_session_id, parent_session_id,
        status, child_status, result, run_id, error, created_at, ended_at FROM callbacks";

fn callback_from_row(r: &rusqlite::Row<'_>) -> rusqlite::Result<Callback> {
    Ok(Callback {
        child_run_id: r.get(0)?,
        child_session_name: r.get(1)?,
        child_session_id: r.get(2)?,
        parent_session_id: r.get(3)?,
        status: r.get(4)?,
        child_status: r.get(5)?,
        result: r.get(6)?,
        run_id: r.get(7)?,
        error: r.get(8)?,
        created_at: r.get(9)?,
        ended_at: r.get(10)?,
    })
}

/// `POST /callbacks`.
pub(super) struct Register {
    pub create: CallbackCreate,
}

impl Op for Register {
    type Out = Callback;

    fn apply(self, conn: &Connection, _frames: &mut Vec<Change>) -> Result<Callback, StoreError> {
        let c = self.create;
        if get_session(conn, &c.parent_session_id)?.is_none() {
            return Err(StoreError::NotFound(format!(
                "there is no session '{}' to call back",
                c.parent_session_id
            )));
        }
        conn.prepare_cached(
            "INSERT INTO callbacks (child_run_id, child_name, parent_session_id, status, created_at)
             VALUES (?1, ?2, ?3, 'waiting', ?4) ON CONFLICT (child_run_id) DO NOTHING",
        )?
        .execute(params![
            c.child_run_id,
            c.child_session_name,
            c.parent_session_id,
            now_rfc3339()
        ])?;
        get(conn, &c.child_run_id)?
            .ok_or_else(|| StoreError::Unavailable("the new callback vanished".to_owned()))
    }
}

fn get(conn: &Connection, child_run_id: &str) -> Result<Option<Callback>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{SELECT_CALLBACK} WHERE child_run_id = ?1"))?
        .query_row([child_run_id], callback_from_row)
        .optional()?)
}

/// The callbacks owed to `parent` that are not delivered yet, in the order
/// the children ended (those still running last).
pub(super) fn owed_to(conn: &Connection, parent: &str) -> Result<Vec<Callback>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT_CALLBACK} WHERE parent_session_id = ?1 AND status <> 'delivered'
         ORDER BY seq IS NULL, seq, created_at"
    ))?;
    let rows = stmt.query_map([parent], callback_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// A stored run end: the child's callback becomes pending (with how the
/// run ended and its answer), and a parent's resume that carried
/// callbacks has delivered them.
pub(super) fn on_run_end(conn: &Connection, event: &Event) -> Result<(), StoreError> {
    let Some(run_id) = &event.run_id else {
        return Ok(());
    };
    conn.prepare_cached(
        "UPDATE callbacks SET status = 'delivered' WHERE run_id = ?1 AND status = 'delivering'",
    )?
    .execute([run_id])?;
    let waiting: bool = conn
        .prepare_cached(
            "SELECT EXISTS (SELECT 1 FROM callbacks WHERE child_run_id = ?1 AND status = 'waiting')",
        )?
        .query_row([run_id], |r| r.get(0))?;
    if !waiting {
        return Ok(());
    }
    let (status, result) = match event.reason.as_deref() {
        Some("completed") => ("completed", answer_of(conn, &event.session_id, run_id)?),
        Some("stopped") => ("stopped", answer_of(conn, &event.session_id, run_id)?),
        other => (
            "error",
            event
                .error
                .clone()
                .unwrap_or_else(|| format!("the run ended ({})", other.unwrap_or("no reason"))),
        ),
    };
    let seq: i64 = conn
        .prepare_cached("SELECT IFNULL(MAX(seq), 0) + 1 FROM callbacks")?
        .query_row([], |r| r.get(0))?;
    conn.prepare_cached(
        "UPDATE callbacks SET status = 'pending', child_session_id = ?1, child_status = ?2,
             result = ?3, seq = ?4, ended_at = ?5
         WHERE child_run_id = ?6 AND status = 'waiting'",
    )?
    .execute(params![
        event.session_id,
        status,
        result,
        seq,
        now_rfc3339(),
        run_id
    ])?;
    Ok(())
}

/// The last answer of run `run_id` of `session_id`.
fn answer_of(conn: &Connection, session_id: &str, run_id: &str) -> Result<String, StoreError> {
    let body: Option<String> = conn
        .prepare_cached(
            "SELECT body FROM events WHERE session_id = ?1 AND event_type = 'message'
             AND role = 'assistant' AND json_extract(body, '$.run_id') = ?2
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row(params![session_id, run_id], |r| r.get(0))
        .optional()?;
    Ok(body
        .and_then(|b| serde_json::from_str::<Event>(&b).ok())
        .map(|e| e.text())
        .unwrap_or_default())
}

/// Resumes every parent that has pending callbacks and is not running,
/// with all of them at once; fails those whose parent is gone. Answers
/// how many parents were resumed.
pub(super) fn deliver(conn: &Connection, frames: &mut Vec<Change>) -> Result<usize, StoreError> {
    retry_unstarted(conn)?;
    let now = now_rfc3339();
    let parents: Vec<String> = conn
        .prepare_cached(
            "SELECT DISTINCT parent_session_id FROM callbacks WHERE status = 'pending'
             AND parent_session_id NOT IN (SELECT parent_session_id FROM callbacks
                 WHERE status = 'pending' AND retry_at > ?1)",
        )?
        .query_map([&now], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    let mut resumed = 0;
    for parent in parents {
        let busy: bool = conn
            .prepare_cached(
                "SELECT EXISTS (SELECT 1 FROM callbacks WHERE parent_session_id = ?1 AND status = 'delivering')",
            )?
            .query_row([&parent], |r| r.get(0))?;
        if busy {
            continue;
        }
        let Some(session) = get_session(conn, &parent)? else {
            fail_all(conn, &parent, "the parent session was deleted")?;
            continue;
        };
        if session.status == SessionStatus::Running {
            continue;
        }
        let due: Vec<Callback> = owed_to(conn, &parent)?
            .into_iter()
            .filter(|c| c.status == "pending")
            .collect();
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
        let run_id = uuid::Uuid::new_v4().to_string();
        let create = RunCreate {
            session_name: session.session_name.clone(),
            prompt,
            project_dir: session.project_dir.clone(),
            resume: true,
            ..RunCreate::default()
        };
        match (launches::Create {
            create,
            run_id: run_id.clone(),
        })
        .apply(conn, frames)
        {
            Ok(_) => {
                conn.prepare_cached(
                    "UPDATE callbacks SET status = 'delivering', run_id = ?1
                     WHERE parent_session_id = ?2 AND status = 'pending'",
                )?
                .execute(params![run_id, parent])?;
                resumed += 1;
            }
            // Its run or its host is busy or away: tried again on the next change.
            Err(StoreError::Conflict(why)) => {
                tracing::debug!(
                    "callbacks for session '{}' wait: {why}",
                    session.session_name
                );
            }
            Err(StoreError::NotFound(why) | StoreError::Invalid(why)) => {
                fail_all(conn, &parent, &why)?;
            }
            Err(e) => return Err(e),
        }
    }
    Ok(resumed)
}

/// How many times a resume that did not start is tried, in all.
const MAX_ATTEMPTS: i64 = 4;

/// A resume that never started (its runner refused: the parent was running
/// after all, its CLI is missing, its tree's budget is spent...) delivered
/// nothing: its callbacks are pending again, tried after a pause (one
/// second more each time), and fail with its reason after [`MAX_ATTEMPTS`].
fn retry_unstarted(conn: &Connection) -> Result<(), StoreError> {
    let unstarted: Vec<(String, String, i64, Option<String>)> = conn
        .prepare_cached(
            "SELECT c.child_run_id, c.child_name, c.attempts, l.error FROM callbacks c
             JOIN launches l ON l.run_id = c.run_id
             WHERE c.status = 'delivering' AND l.status IN ('failed_to_start', 'stopped')
                 AND l.session_id IS NULL",
        )?
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
        .collect::<Result<_, _>>()?;
    for (child_run_id, child, attempts, error) in unstarted {
        let attempts = attempts + 1;
        let why = format!(
            "the resume of the parent did not start: {}",
            error.as_deref().unwrap_or("no reason")
        );
        if attempts >= MAX_ATTEMPTS {
            tracing::warn!("the callback of session '{child}' failed: {why}");
            conn.prepare_cached(
                "UPDATE callbacks SET status = 'failed', attempts = ?1, error = ?2 WHERE child_run_id = ?3",
            )?
            .execute(params![attempts, why, child_run_id])?;
            continue;
        }
        let retry_at = (chrono::Utc::now() + chrono::Duration::seconds(attempts))
            .to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
        tracing::info!("the callback of session '{child}' is tried again at {retry_at}: {why}");
        conn.prepare_cached(
            "UPDATE callbacks SET status = 'pending', attempts = ?1, retry_at = ?2, error = ?3
             WHERE child_run_id = ?4",
        )?
        .execute(params![attempts, retry_at, why, child_run_id])?;
    }
    Ok(())
}

/// `POST /callbacks/{child_run_id}/end`: a child's run that ended before
/// its CLI named the conversation (so the session manager never heard of
/// its session) still calls back, with its error.
pub(super) struct End {
    pub child_run_id: String,
    pub error: String,
}

impl Op for End {
    type Out = Callback;

    fn apply(self, conn: &Connection, _frames: &mut Vec<Change>) -> Result<Callback, StoreError> {
        let seq: i64 = conn
            .prepare_cached("SELECT IFNULL(MAX(seq), 0) + 1 FROM callbacks")?
            .query_row([], |r| r.get(0))?;
        conn.prepare_cached(
            "UPDATE callbacks SET status = 'pending', child_status = 'error', result = ?1, seq = ?2,
                 ended_at = ?3 WHERE child_run_id = ?4 AND status = 'waiting'",
        )?
        .execute(params![self.error, seq, now_rfc3339(), self.child_run_id])?;
        get(conn, &self.child_run_id)?.ok_or_else(|| {
            StoreError::NotFound(format!("no callback of run '{}'", self.child_run_id))
        })
    }
}

fn fail_all(conn: &Connection, parent: &str, why: &str) -> Result<(), StoreError> {
    let names: Vec<String> = conn
        .prepare_cached(
            "SELECT child_name FROM callbacks WHERE parent_session_id = ?1 AND status = 'pending'",
        )?
        .query_map([parent], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for child in names {
        tracing::warn!("the callback of session '{child}' to session {parent} failed: {why}");
    }
    conn.prepare_cached(
        "UPDATE callbacks SET status = 'failed', error = ?1 WHERE parent_session_id = ?2 AND status = 'pending'",
    )?
    .execute(params![why, parent])?;
    Ok(())
}
