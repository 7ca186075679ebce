//! Plain events (neither ending a run nor creating their session), the
//! bulk of what runners send, stored together: one read of their sessions,
//! ids drawn at once, one insert. A batch of plain events none of which can
//! change a session's status (the usual case: tool calls and messages) is
//! one statement, its own transaction, in one round trip ([`store`]); one
//! that may change a status is committed in two, each sending its
//! statements without waiting between them: `BEGIN`, the sessions and the
//! ids; then the insert, the notification and `COMMIT`. Anything else goes
//! through the writer's general path.

use std::collections::{HashMap, HashSet};

use super::ops::{Done, Outcome};
use super::reader::SESSIONS_BY_IDS;
use super::{Db, exec, notify, rows};
use crate::server::changes::Change;
use crate::server::store::rules::{self, session_from_row};
use crate::server::store::{Added, StoreError};
use crate::wire::{Event, Session};

const NEXT_IDS: &str = "SELECT nextval('events_id_seq') FROM generate_series(1, $1)";
const INSERT: &str = "INSERT INTO events (id, session_id, event_id, event_type, role, body)
     SELECT * FROM unnest($1::BIGINT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[], $6::TEXT[])
     ORDER BY 1
     ON CONFLICT (session_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
     RETURNING id";

/// The events that exist in their session, numbered in order, stored
/// unless they repeat an `event_id`, and every replica told of them (as
/// [`notify::send`] would: `$6` is the payload's prefix, `$7` the ids per
/// payload), in one statement. Answers `(position, id, stored)` for each
/// event whose session exists (positions from 1), then `(0, payloads, NULL)`.
const STORE: &str = "WITH input AS (
       SELECT * FROM unnest($1::TEXT[], $2::TEXT[], $3::TEXT[], $4::TEXT[], $5::TEXT[])
         WITH ORDINALITY AS i(session_id, event_id, event_type, role, body, ord)
     ), known AS (
       SELECT session_id FROM sessions WHERE session_id = ANY($1) FOR KEY SHARE
     ), numbered AS (
       SELECT nextval('events_id_seq') AS id, k.* FROM (
         SELECT i.* FROM input i WHERE i.session_id IN (SELECT session_id FROM known) ORDER BY i.ord
       ) k
     ), inserted AS (
       INSERT INTO events (id, session_id, event_id, event_type, role, body)
       SELECT id, session_id, event_id, event_type, role, body FROM numbered ORDER BY id
       ON CONFLICT (session_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
       RETURNING id
     ), told AS (
       SELECT pg_notify('ao_changes', p) FROM (
         SELECT $6 || '.' || g.g || COALESCE(' ' || string_agg('e' || n.id, ' ' ORDER BY n.id), '') AS p
         FROM generate_series(0, greatest(0, ((SELECT count(*) FROM numbered) - 1) / $7)) AS g(g)
         LEFT JOIN (SELECT id, (row_number() OVER (ORDER BY id) - 1) / $7 AS g FROM numbered) n
           ON n.g = g.g
         GROUP BY g.g ORDER BY g.g
       ) payloads
     )
     SELECT n.ord, n.id, n.id IN (SELECT id FROM inserted) FROM numbered n
     UNION ALL SELECT 0, count(*), NULL FROM told";
/// Event references per notification: each is at most 21 bytes (`e`, a
/// BIGINT, a space), so a payload stays under PostgreSQL's 8000 bytes.
const REFS_PER_PAYLOAD: i64 = 300;

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

/// Events as the array parameters of [`INSERT`] and [`STORE`].
struct Columns<'a> {
    session_ids: Vec<&'a str>,
    event_ids: Vec<Option<String>>,
    types: Vec<&'static str>,
    roles: Vec<Option<&'static str>>,
    bodies: Vec<&'a str>,
}

impl<'a> Columns<'a> {
    fn of(rows: &[Plain<'a>]) -> Columns<'a> {
        Columns {
            session_ids: rows.iter().map(|(e, _)| e.session_id.as_str()).collect(),
            event_ids: rows
                .iter()
                .map(|(e, _)| e.event_id.map(|id| id.to_string()))
                .collect(),
            types: rows.iter().map(|(e, _)| e.event_type.as_str()).collect(),
            roles: rows
                .iter()
                .map(|(e, _)| e.role.map(|r| r.as_str()))
                .collect(),
            bodies: rows.iter().map(|(_, b)| *b).collect(),
        }
    }
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
    let c = Columns::of(rows);
    super::rows(
        db,
        INSERT,
        &[
            &ids,
            &c.session_ids,
            &c.event_ids,
            &c.types,
            &c.roles,
            &c.bodies,
        ],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0).map_err(StoreError::from))
    .collect()
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
        let (done, mut changes) = added(event, body, id, inserted.contains(&id));
        if changes.is_empty() {
            outcomes.push(Ok((done, changes)));
            continue;
        }
        if let Some(status) = event.event_type.status_effect()
            && status != session.status
        {
            session.status = status;
            changes.push(Change::SessionUpdated(session.clone()));
            if !changed.contains(&session.session_id) {
                changed.push(session.session_id.clone());
            }
        }
        outcomes.push(Ok((done, changes)));
    }
    (outcomes, changed)
}

/// An event stored as row `id` (or found repeated), and its change.
fn added(event: &Event, body: &str, id: i64, stored: bool) -> (Done, Vec<Change>) {
    let done = Done::Added(Added {
        duplicate: !stored,
        filled: false,
    });
    if !stored {
        return (done, Vec::new());
    }
    let change = Change::Event {
        session_id: event.session_id.clone(),
        id,
        body: body.to_owned(),
    };
    (done, vec![change])
}

/// True when none of `events` can change its session's status, so that
/// [`store`] may take them.
fn keep_statuses(events: &[Plain<'_>]) -> bool {
    events
        .iter()
        .all(|(e, _)| e.event_type.status_effect().is_none())
}

/// Stores events that change no status ([`keep_statuses`]) and tells
/// every replica, in one statement outside any transaction: one round trip,
/// committed when it answers.
pub(super) async fn store(
    db: &impl Db,
    replica_id: &str,
    tag: u64,
    events: &[Plain<'_>],
) -> Result<Vec<Outcome>, StoreError> {
    let c = Columns::of(events);
    let prefix = format!("{replica_id}:{tag}");
    let found = rows(
        db,
        STORE,
        &[
            &c.session_ids,
            &c.event_ids,
            &c.types,
            &c.roles,
            &c.bodies,
            &prefix,
            &REFS_PER_PAYLOAD,
        ],
    )
    .await?;
    let mut numbered: HashMap<i64, (i64, bool)> = HashMap::with_capacity(found.len());
    for r in &found {
        let position: i64 = r.try_get(0)?;
        if position > 0 {
            numbered.insert(position, (r.try_get(1)?, r.try_get(2)?));
        }
    }
    Ok(events
        .iter()
        .zip(1..)
        .map(|((event, body), position)| match numbered.get(&position) {
            None => Err(rules::no_session(&event.session_id)),
            Some(&(id, stored)) => Ok(added(event, body, id, stored)),
        })
        .collect())
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

/// Commits a batch of plain events: in one statement when none can change
/// its session's status, else in two round trips (see the module's
/// comment). `Ok(None)`, rolled back, when one of them changes its
/// session's status; an `Err` leaves the transaction, if one is open, to be
/// rolled back.
pub(super) async fn commit(
    db: &impl Db,
    replica_id: &str,
    tag: u64,
    events: &[Plain<'_>],
) -> Result<Option<Vec<Outcome>>, StoreError> {
    if keep_statuses(events) {
        return store(db, replica_id, tag, events).await.map(Some);
    }
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
