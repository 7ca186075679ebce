//! Plain events (neither ending a run nor creating their session), the
//! bulk of what runners send, stored together: one read of their sessions,
//! ids drawn at once, one insert. A batch made of plain events only that
//! changes no session's status (the usual case) is committed in two round
//! trips, each sending its statements without waiting between them:
//! `BEGIN`, the sessions and the ids; then the insert, the notification
//! and `COMMIT`. Anything else goes through the writer's general path.

use std::collections::{HashMap, HashSet};

use super::ops::{Done, Outcome};
use super::reader::{SESSIONS_BY_IDS, session_from_row};
use super::{Db, exec, notify, rows};
use crate::server::changes::Change;
use crate::server::store::{Added, StoreError, rules};
use crate::wire::{Event, Session};

const NEXT_IDS: &str = "SELECT nextval('events_id_seq') FROM generate_series(1, $1)";
const INSERT: &str = "INSERT INTO events (id, session_id, event_id, event_type, role, body)
     SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])
     ORDER BY 1
     ON CONFLICT (session_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
     RETURNING id";

type Plain<'a> = (&'a Event, &'a str);

/// The sessions of `events`, locked against deletion until the commit.
async fn sessions(
    db: &impl Db,
    events: &[Plain<'_>],
) -> Result<HashMap<String, Session>, StoreError> {
    let ids: Vec<&str> = events
        .iter()
        .map(|(e, _)| e.session_id.as_str())
        .collect::<HashSet<_>>()
        .into_iter()
        .collect();
    let mut sessions = HashMap::new();
    for r in rows(db, SESSIONS_BY_IDS, &[&ids]).await? {
        let session = session_from_row(&r)?;
        sessions.insert(session.session_id.clone(), session);
    }
    Ok(sessions)
}

/// `n` new event ids, in increasing order.
async fn next_ids(db: &impl Db, n: usize) -> Result<Vec<i64>, StoreError> {
    let n = n as i32;
    let mut ids: Vec<i64> = rows(db, NEXT_IDS, &[&n])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    ids.sort_unstable();
    Ok(ids)
}

/// Inserts `rows` with the ids `ids`, in order; answers the ids inserted
/// (the others repeat an `event_id` already stored in their session).
async fn insert(db: &impl Db, rows: &[Plain<'_>], ids: &[i64]) -> Result<HashSet<i64>, StoreError> {
    let session_ids: Vec<&str> = rows.iter().map(|(e, _)| e.session_id.as_str()).collect();
    let event_ids: Vec<Option<String>> = rows
        .iter()
        .map(|(e, _)| e.event_id.map(|id| id.to_string()))
        .collect();
    let types: Vec<&str> = rows.iter().map(|(e, _)| e.event_type.as_str()).collect();
    let roles: Vec<Option<&str>> = rows
        .iter()
        .map(|(e, _)| e.role.map(|r| r.as_str()))
        .collect();
    let bodies: Vec<&str> = rows.iter().map(|(_, b)| *b).collect();
    super::rows(
        db,
        INSERT,
        &[&ids, &session_ids, &event_ids, &types, &roles, &bodies],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0).map_err(StoreError::from))
    .collect()
}

/// Inserts `rows` in one statement, in order (the writer's way, for the
/// benchmark's limit); answers the ids inserted.
pub(super) async fn insert_event_rows(
    db: &impl Db,
    rows: &[Plain<'_>],
) -> Result<HashSet<i64>, StoreError> {
    let ids = next_ids(db, rows.len()).await?;
    insert(db, rows, &ids).await
}

/// The events whose session exists, each with its id.
fn known<'a>(
    events: &[Plain<'a>],
    sessions: &HashMap<String, Session>,
    ids: &[i64],
) -> (Vec<Plain<'a>>, Vec<i64>) {
    let known: Vec<Plain<'a>> = events
        .iter()
        .filter(|(e, _)| sessions.contains_key(&e.session_id))
        .copied()
        .collect();
    let ids = ids[..known.len()].to_vec();
    (known, ids)
}

/// Each event's outcome, in order, as SQLite's `AddEvent` decides it;
/// `sessions` follow the status changes, which are answered.
fn outcomes(
    events: &[Plain<'_>],
    sessions: &mut HashMap<String, Session>,
    ids: &[i64],
    inserted: &HashSet<i64>,
) -> (Vec<Outcome>, Vec<String>) {
    let mut outcomes = Vec::with_capacity(events.len());
    let mut next_id = ids.iter();
    let mut changed: Vec<String> = Vec::new();
    for (event, body) in events {
        let Some(session) = sessions.get_mut(&event.session_id) else {
            outcomes.push(Err(rules::no_session(&event.session_id)));
            continue;
        };
        let id = next_id.next().copied().unwrap_or_default();
        if !inserted.contains(&id) {
            let added = Added {
                duplicate: true,
                filled: false,
            };
            outcomes.push(Ok((Done::Added(added), Vec::new())));
            continue;
        }
        let mut changes = vec![Change::Event {
            session_id: event.session_id.clone(),
            id,
            body: (*body).to_owned(),
        }];
        if let Some(status) = event.event_type.status_effect()
            && status != session.status
        {
            session.status = status;
            changes.push(Change::SessionUpdated(session.clone()));
            if !changed.contains(&session.session_id) {
                changed.push(session.session_id.clone());
            }
        }
        let added = Added {
            duplicate: false,
            filled: false,
        };
        outcomes.push(Ok((Done::Added(added), changes)));
    }
    (outcomes, changed)
}

/// Stores plain events together inside the writer's open transaction.
pub(super) async fn add_events(
    db: &impl Db,
    events: &[Plain<'_>],
) -> Result<Vec<Outcome>, StoreError> {
    let mut sessions = sessions(db, events).await?;
    let count = events
        .iter()
        .filter(|(e, _)| sessions.contains_key(&e.session_id))
        .count();
    let ids = next_ids(db, count).await?;
    let (known, ids) = known(events, &sessions, &ids);
    let inserted = insert(db, &known, &ids).await?;
    let (outcomes, changed) = outcomes(events, &mut sessions, &ids, &inserted);
    if !changed.is_empty() {
        let statuses: Vec<&str> = changed
            .iter()
            .map(|id| sessions[id].status.as_str())
            .collect();
        exec(
            db,
            "UPDATE sessions SET status = v.status
             FROM unnest($1::TEXT[], $2::TEXT[]) AS v(id, status) WHERE session_id = v.id",
            &[&changed, &statuses],
        )
        .await?;
    }
    Ok(outcomes)
}

/// Commits a batch of plain events in two round trips (see the module's
/// comment). `Ok(None)`, rolled back, when one of them changes its
/// session's status; an `Err` leaves the transaction to be rolled back.
pub(super) async fn commit(
    db: &impl Db,
    replica_id: &str,
    tag: u64,
    events: &[Plain<'_>],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    // Prepared first (once per connection): a statement still being
    // prepared would let the `COMMIT` sent after it overtake it.
    for sql in [SESSIONS_BY_IDS, NEXT_IDS, INSERT, notify::SEND] {
        db.prepare(sql).await?;
    }
    let (begun, sessions, ids) = futures_util::join!(
        db.client().batch_execute("BEGIN"),
        sessions(db, events),
        next_ids(db, events.len()),
    );
    begun?;
    let (mut sessions, ids) = (sessions?, ids?);
    let changes_status = events.iter().any(|(e, _)| {
        sessions.get(&e.session_id).is_some_and(|s| {
            e.event_type
                .status_effect()
                .is_some_and(|status| status != s.status)
        })
    });
    if changes_status {
        db.client().batch_execute("ROLLBACK").await?;
        return Ok(None);
    }
    let (known, ids) = known(events, &sessions, &ids);
    // The other replicas are told of every id; those of repeated events
    // name no row, and are skipped there.
    let named: Vec<Change> = known
        .iter()
        .zip(&ids)
        .map(|((e, _), id)| Change::Event {
            session_id: e.session_id.clone(),
            id: *id,
            body: String::new(),
        })
        .collect();
    let (inserted, notified, committed) = futures_util::join!(
        insert(db, &known, &ids),
        notify::send(db, replica_id, Some(tag), &named),
        db.client().batch_execute("COMMIT"),
    );
    // After a failed statement, COMMIT rolls back without an error.
    let inserted = inserted?;
    notified?;
    committed?;
    let (outcomes, _) = outcomes(events, &mut sessions, &ids, &inserted);
    Ok(Some(outcomes))
}
