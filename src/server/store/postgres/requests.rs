//! Requests a run waits on, as SQLite's `requests` keeps them (see there),
//! written inside the writer's transaction; the decisions follow
//! `store::requests_rules`.

use serde_json::Value;

use super::reader::get_session;
use super::{Db, exec, row, rows};
use crate::server::changes::Change;
use crate::server::store::StoreError;
use crate::server::store::requests_rules::{self as rules, record_from_row};
use crate::server::store::rules::{no_session, normalize};
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
    select_requests!("WHERE r.session_id = $1 AND r.status = 'pending' ORDER BY r.seq");
const ONE: &str = select_requests!("WHERE r.session_id = $1 AND r.request_id = $2");

/// The pending requests of a session, oldest first; `None` for an unknown session.
pub(super) async fn pending(
    db: &impl Db,
    session_id: &str,
) -> Result<Option<Vec<PendingRequest>>, StoreError> {
    if get_session(db, session_id).await?.is_none() {
        return Ok(None);
    }
    let found = rows(db, PENDING, &[&session_id]).await?;
    let records: Result<Vec<_>, _> = found.iter().map(record_from_row).collect();
    Ok(Some(records?.into_iter().map(|r| r.request).collect()))
}

/// One request of a session, whatever its status.
pub(super) async fn one(
    db: &impl Db,
    session_id: &str,
    request_id: &str,
) -> Result<Option<RequestRecord>, StoreError> {
    row(db, ONE, &[&session_id, &request_id])
        .await?
        .as_ref()
        .map(record_from_row)
        .transpose()
}

/// Moves the session's pending count by `delta`, in the row and in `session`.
async fn count(db: &impl Db, session: &mut Session, delta: i64) -> Result<(), StoreError> {
    let now = (session.pending_requests as i64 + delta).max(0);
    session.pending_requests = now as u64;
    exec(
        db,
        "UPDATE sessions SET pending_requests = $1 WHERE session_id = $2",
        &[&now, &session.session_id],
    )
    .await?;
    Ok(())
}

/// What a stored `permission_request` or `permission_decision` does to the
/// session's requests; answers whether its pending count changed.
pub(super) async fn on_event(
    db: &impl Db,
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
            let inserted = exec(
                db,
                "INSERT INTO requests (session_id, request_id, kind, tool_name, input,
                     suggestions, tool_use_id, blocked_path, created_at, status)
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)
                 ON CONFLICT (session_id, request_id) DO NOTHING",
                &[
                    &event.session_id,
                    &request_id,
                    &event.kind.unwrap_or(RequestKind::Permission).as_str(),
                    &event.tool_name.as_deref().unwrap_or("unknown"),
                    &event
                        .tool_input
                        .as_ref()
                        .unwrap_or(&Value::Null)
                        .to_string(),
                    &event.suggestions.as_ref().map(Value::to_string),
                    &event.tool_use_id,
                    &event.blocked_path,
                    &normalize(&event.timestamp),
                    &status.as_str(),
                ],
            )
            .await?;
            if inserted > 0 && open {
                count(db, session, 1).await?;
                return Ok(true);
            }
            Ok(false)
        }
        EventType::PermissionDecision => {
            let was = row(
                db,
                "SELECT status FROM requests WHERE session_id = $1 AND request_id = $2 FOR UPDATE",
                &[&event.session_id, &request_id],
            )
            .await?;
            let Some(was) = was else { return Ok(false) };
            let was: String = was.try_get(0)?;
            let decision = serde_json::to_string(&rules::acted_on(event)).unwrap_or_default();
            exec(
                db,
                "UPDATE requests SET status = 'closed', decision = $1
                 WHERE session_id = $2 AND request_id = $3",
                &[&decision, &event.session_id, &request_id],
            )
            .await?;
            if was == RequestStatus::Pending.as_str() {
                count(db, session, -1).await?;
                return Ok(true);
            }
            Ok(false)
        }
        _ => Ok(false),
    }
}

/// Closes every open request of the session (its run ended).
pub(super) async fn close_all(db: &impl Db, session: &mut Session) -> Result<bool, StoreError> {
    exec(
        db,
        "UPDATE requests SET status = 'closed' WHERE session_id = $1 AND status != 'closed'",
        &[&session.session_id],
    )
    .await?;
    if session.pending_requests == 0 {
        return Ok(false);
    }
    count(db, session, -(session.pending_requests as i64)).await?;
    Ok(true)
}

/// Deletes a session's requests.
pub(super) async fn delete(db: &impl Db, session_id: &str) -> Result<(), StoreError> {
    exec(
        db,
        "DELETE FROM requests WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    Ok(())
}

/// A decision posted for a pending request: taken once, atomically (the
/// session's row is locked, so two replicas deciding at once take turns,
/// and the second finds it answered).
pub(super) async fn decide(
    db: &impl Db,
    session_id: &str,
    request_id: &str,
    body: DecisionBody,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let mut session = super::ops::locked_session(db, session_id)
        .await?
        .ok_or_else(|| no_session(session_id))?;
    let record = one(db, session_id, request_id)
        .await?
        .ok_or_else(|| rules::no_request(session_id, request_id))?;
    let body = rules::decision(&record, body)?;
    exec(
        db,
        "UPDATE requests SET status = 'answered', decision = $1
         WHERE session_id = $2 AND request_id = $3",
        &[
            &serde_json::to_string(&body).unwrap_or_default(),
            &session_id,
            &request_id,
        ],
    )
    .await?;
    count(db, &mut session, -1).await?;
    changes.push(Change::SessionUpdated(session));
    changes.push(Change::RequestAnswered {
        session_id: session_id.to_owned(),
        request_id: request_id.to_owned(),
        decision: body,
    });
    Ok(())
}

/// The decision stored for a request, for another replica's live clients.
pub(super) async fn decision_of(
    db: &impl Db,
    session_id: &str,
    request_id: &str,
) -> Result<Option<DecisionBody>, StoreError> {
    Ok(one(db, session_id, request_id)
        .await?
        .and_then(|record| record.decision))
}
