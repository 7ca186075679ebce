//! Callbacks on SQLite (the rules are `store::callback_rules`): the
//! writer's one transaction makes each step atomic.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::launches;
use super::reader::get_session;
use super::writer::Op;
use crate::server::changes::Change;
use crate::server::store::callback_rules::{self, Retry, callback_from_row};
use crate::wire::{Callback, CallbackCreate, Event, SessionStatus, now_rfc3339};

const SELECT_CALLBACK: &str =
    "SELECT child_run_id, child_name, child_session_id, parent_session_id,
        status, child_status, result, run_id, error, created_at, ended_at FROM callbacks";

/// `POST /callbacks`.
pub(super) struct Register {
    pub create: CallbackCreate,
}

impl Op for Register {
    type Out = Callback;

    fn apply(self, conn: &Connection, _frames: &mut Vec<Change>) -> Result<Callback, StoreError> {
        let c = self.create;
        if get_session(conn, &c.parent_session_id)?.is_none() {
            return Err(callback_rules::no_parent(&c.parent_session_id));
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
        .query_row([child_run_id], |r| callback_from_row(r))
        .optional()?)
}

/// The callbacks owed to `parent` that are not delivered yet, in the order
/// the children ended (those still running last).
pub(super) fn owed_to(conn: &Connection, parent: &str) -> Result<Vec<Callback>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT_CALLBACK} WHERE parent_session_id = ?1 AND status <> 'delivered'
         ORDER BY seq IS NULL, seq, created_at"
    ))?;
    let rows = stmt.query_map([parent], |r| callback_from_row(r))?;
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
    let (status, result) = match callback_rules::ending(event) {
        (status, Some(error)) => (status, error),
        (status, None) => (status, answer_of(conn, &event.session_id, run_id)?),
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
    Ok(callback_rules::answer_text(body))
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
        let create = callback_rules::resume(&session, &due);
        let run_id = uuid::Uuid::new_v4().to_string();
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

/// A resume that never started delivered nothing: its callbacks are
/// pending again after a pause, or fail (`callback_rules::retry`).
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
        let (why, retry) = callback_rules::retry(&child, attempts, error.as_deref());
        let (status, retry_at) = match retry {
            Retry::At(at) => ("pending", Some(at)),
            Retry::Fail => ("failed", None),
        };
        conn.prepare_cached(
            "UPDATE callbacks SET status = ?1, attempts = ?2, retry_at = IFNULL(?3, retry_at),
                 error = ?4 WHERE child_run_id = ?5",
        )?
        .execute(params![status, attempts, retry_at, why, child_run_id])?;
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
        get(conn, &self.child_run_id)?
            .ok_or_else(|| callback_rules::no_callback(&self.child_run_id))
    }
}

fn fail_all(conn: &Connection, parent: &str, why: &str) -> Result<(), StoreError> {
    let names: Vec<String> = conn
        .prepare_cached(
            "SELECT child_name FROM callbacks WHERE parent_session_id = ?1 AND status = 'pending'",
        )?
        .query_map([parent], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    callback_rules::log_failed(&names, parent, why);
    conn.prepare_cached(
        "UPDATE callbacks SET status = 'failed', error = ?1 WHERE parent_session_id = ?2 AND status = 'pending'",
    )?
    .execute(params![why, parent])?;
    Ok(())
}
