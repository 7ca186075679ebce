//! Requests a run waits on, and each session's count of pending ones. A
//! stored `permission_request` opens one; a decision posted through the
//! API answers it (once: a second is refused); the run's own
//! `permission_decision` closes it, and the run's end closes whatever is
//! left, so that nothing stays pending after its run. Written by the writer
//! thread inside the savepoint of the event or decision that causes it.

use rusqlite::{Connection, OptionalExtension, params};
use serde_json::Value;

use super::StoreError;
use super::writer::Op;
use crate::server::changes::Change;
use crate::server::store::requests_rules::{self as rules, record_from_row};
use crate::server::store::rules::normalize;
use crate::wire::{
    DecisionBody, Event, EventType, PendingRequest, RequestKind, RequestRecord, RequestStatus,
    Session, SessionStatus,
};

/// `SELECT <every request column>, the session's name FROM requests <rest>`.
macro_rules! select_requests {
    ($rest:literal) => {
        concat!(
            "SELECT r.request_id, r.session_id, s.session_name, r.kind, r.tool_name, r.input, \
             r.suggestions, r.tool_use_id, r.blocked_path, r.created_at, r.status, r.decision \
             FROM requests r JOIN sessions s ON s.session_id = r.session_id ",
            $rest
        )
    };
}

const PENDING: &str =
    select_requests!("WHERE r.session_id = ?1 AND r.status = 'pending' ORDER BY r.rowid");
const ONE: &str = select_requests!("WHERE r.session_id = ?1 AND r.request_id = ?2");

/// The pending requests of a session, oldest first; `None` for an unknown session.
pub(super) fn pending(
    conn: &Connection,
    session_id: &str,
) -> Result<Option<Vec<PendingRequest>>, StoreError> {
    if super::reader::get_session(conn, session_id)?.is_none() {
        return Ok(None);
    }
    let mut stmt = conn.prepare_cached(PENDING)?;
    let rows = stmt.query_map([session_id], |r| record_from_row(r))?;
    Ok(Some(
        rows.map(|r| r.map(|r| r.request))
            .collect::<Result<_, _>>()?,
    ))
}

/// One request of a session, whatever its status.
pub(super) fn one(
    conn: &Connection,
    session_id: &str,
    request_id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    Ok(conn
        .prepare_cached(ONE)?
        .query_row(params![session_id, request_id], |r| record_from_row(r))
        .optional()?)
}

/// Moves the session's pending count by `delta`, in the row and in `session`.
fn count(conn: &Connection, session: &mut Session, delta: i64) -> Result<(), StoreError> {
    let now = (session.pending_requests as i64 + delta).max(0);
    session.pending_requests = now as u64;
    conn.prepare_cached("UPDATE sessions SET pending_requests = ?1 WHERE session_id = ?2")?
        .execute(params![now, session.session_id])?;
    Ok(())
}

/// What a stored `permission_request` or `permission_decision` does to the
/// session's requests; answers whether its pending count changed. A request
/// of a session that is not running (a replay of a run that has ended) is
/// stored closed.
pub(super) fn on_event(
    conn: &Connection,
    event: &Event,
    session: &mut Session,
) -> Result<bool, StoreError> {
    let Some(request_id) = event.request_id.as_deref() else {
        return Ok(false);
    };
    match event.event_type {
        EventType::PermissionRequest => {
            let open = session.status == SessionStatus::Running;
            let status = if open {
                RequestStatus::Pending
            } else {
                RequestStatus::Closed
            };
            let inserted = conn
                .prepare_cached(
                    "INSERT OR IGNORE INTO requests (session_id, request_id, kind, tool_name, input,
                         suggestions, tool_use_id, blocked_path, created_at, status)
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                )?
                .execute(params![
                    event.session_id,
                    request_id,
                    event.kind.unwrap_or(RequestKind::Permission).as_str(),
                    event.tool_name.as_deref().unwrap_or("unknown"),
                    event.tool_input.as_ref().unwrap_or(&Value::Null).to_string(),
                    event.suggestions.as_ref().map(Value::to_string),
                    event.tool_use_id,
                    event.blocked_path,
                    normalize(&event.timestamp),
                    status.as_str(),
                ])?;
            if inserted > 0 && open {
                count(conn, session, 1)?;
                return Ok(true);
            }
            Ok(false)
        }
        EventType::PermissionDecision => {
            let was: Option<String> = conn
                .prepare_cached(
                    "SELECT status FROM requests WHERE session_id = ?1 AND request_id = ?2",
                )?
                .query_row(params![event.session_id, request_id], |r| r.get(0))
                .optional()?;
            let Some(was) = was else { return Ok(false) };
            let decision = rules::acted_on(event);
            conn.prepare_cached(
                "UPDATE requests SET status = 'closed', decision = ?1
                 WHERE session_id = ?2 AND request_id = ?3",
            )?
            .execute(params![
                serde_json::to_string(&decision).unwrap_or_default(),
                event.session_id,
                request_id
            ])?;
            if was == RequestStatus::Pending.as_str() {
                count(conn, session, -1)?;
                return Ok(true);
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Closes every open request of the session (its run ended); answers
/// whether its pending count changed.
pub(super) fn close_all(conn: &Connection, session: &mut Session) -> Result<bool, StoreError> {
    conn.prepare_cached(
        "UPDATE requests SET status = 'closed' WHERE session_id = ?1 AND status != 'closed'",
    )?
    .execute([&session.session_id])?;
    if session.pending_requests == 0 {
        return Ok(false);
    }
    count(conn, session, -(session.pending_requests as i64))?;
    Ok(true)
}

/// Deletes a session's requests.
pub(super) fn delete(conn: &Connection, session_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached("DELETE FROM requests WHERE session_id = ?1")?
        .execute([session_id])?;
    Ok(())
}

/// A decision posted for a pending request: taken once, atomically.
pub(super) struct Decide {
    pub session_id: String,
    pub request_id: String,
    pub body: DecisionBody,
}

impl Op for Decide {
    type Out = ();

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<(), StoreError> {
        let Decide {
            session_id,
            request_id,
            body,
        } = self;
        let mut session = super::reader::get_session(conn, &session_id)?
            .ok_or_else(|| crate::server::store::rules::no_session(&session_id))?;
        let record = one(conn, &session_id, &request_id)?
            .ok_or_else(|| rules::no_request(&session_id, &request_id))?;
        let body = rules::decision(&record, body)?;
        conn.prepare_cached(
            "UPDATE requests SET status = 'answered', decision = ?1
             WHERE session_id = ?2 AND request_id = ?3",
        )?
        .execute(params![
            serde_json::to_string(&body).unwrap_or_default(),
            session_id,
            request_id
        ])?;
        count(conn, &mut session, -1)?;
        frames.push(Change::SessionUpdated(session));
        frames.push(Change::RequestAnswered {
            session_id,
            request_id,
            decision: body,
        });
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The request lookups read the session's rows through an index, never
    /// the whole table.
    #[test]
    fn lookups_use_an_index_not_a_scan() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for sql in [PENDING, ONE] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN r")),
                "a full scan of requests for {sql}: {plan:?}"
            );
        }
    }
}
