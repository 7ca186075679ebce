//! How replicas hear of each other's changes. A transaction that commits
//! changes sends, with its commit, notifications on [`CHANNEL`] that name
//! them: its replica's id, then one reference per change (`c`, `u` or `d`
//! and a session id for a session created, updated or deleted, `e` and a
//! row id for an event, `x` and a session id for a stop request).
//! PostgreSQL delivers them to every listener in commit order; a
//! notification's payload is limited to 8000 bytes, so references rather
//! than rows travel, and a long batch is split over several.
//!
//! Each replica listens on a connection of its own, skips its own
//! notifications (it published those when it committed them), reads the
//! rows named and publishes them to its live clients. When that connection
//! breaks, it reconnects and tells its clients to `resync`, since changes
//! may have been missed in between.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use super::reader::{select_sessions, session_from_row};
use super::{Db, Replica, exec, rows};
use crate::server::changes::Change;
use crate::server::store::StoreError;
use crate::wire::Session;

/// The notification channel.
const CHANNEL: &str = "ao_changes";
/// A payload's size at most (PostgreSQL refuses 8000 bytes and more).
const MAX_PAYLOAD: usize = 7900;
/// The longest wait between two attempts to listen again.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// A change as notifications name it.
fn reference(change: &Change) -> Option<String> {
    Some(match change {
        Change::SessionCreated(s) => format!("c{}", s.session_id),
        Change::SessionUpdated(s) => format!("u{}", s.session_id),
        Change::SessionDeleted(id) => format!("d{id}"),
        Change::Event { id, .. } => format!("e{id}"),
        Change::StopRequested(id) => format!("x{id}"),
        Change::Resync => return None,
    })
}

/// The payloads that name `changes`: each starts with the replica's id and
/// its number in the batch (PostgreSQL would merge identical ones).
fn payloads<'a>(replica_id: &str, changes: impl IntoIterator<Item = &'a Change>) -> Vec<String> {
    let mut payloads = Vec::new();
    let mut current = String::new();
    for item in changes.into_iter().filter_map(reference) {
        if !current.is_empty() && current.len() + 1 + item.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current = format!("{replica_id}:{}", payloads.len());
        }
        current.push(' ');
        current.push_str(&item);
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// Notifies every replica of `changes`; inside a transaction, at its commit.
pub(super) async fn send<'a>(
    db: &impl Db,
    replica_id: &str,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<(), StoreError> {
    let payloads = payloads(replica_id, changes);
    if payloads.is_empty() {
        return Ok(());
    }
    exec(
        db,
        "SELECT pg_notify('ao_changes', p) FROM unnest($1::TEXT[]) AS p",
        &[&payloads],
    )
    .await?;
    Ok(())
}

/// A change named by another replica, to be read.
enum Named {
    Created(String),
    Updated(String),
    Deleted(String),
    Event(i64),
    Stop(String),
}

/// The changes another replica's payload names; `None` for this replica's own.
fn parse(payload: &str, own: &str) -> Option<Vec<Named>> {
    let mut words = payload.split(' ');
    let origin = words.next()?.split(':').next()?;
    if origin == own {
        return None;
    }
    Some(
        words
            .filter_map(|word| {
                let (kind, rest) = word.split_at_checked(1)?;
                Some(match kind {
                    "c" => Named::Created(rest.to_owned()),
                    "u" => Named::Updated(rest.to_owned()),
                    "d" => Named::Deleted(rest.to_owned()),
                    "e" => Named::Event(rest.parse().ok()?),
                    "x" => Named::Stop(rest.to_owned()),
                    _ => return None,
                })
            })
            .collect(),
    )
}

/// This replica's listening connection.
pub(super) struct Listener;

impl Listener {
    /// Listens (failing at once if it cannot), then follows in a task.
    pub(super) async fn start(replica: &Arc<Replica>) -> Result<JoinHandle<()>, StoreError> {
        let (client, payloads) = listen(replica).await?;
        Ok(tokio::spawn(follow(Arc::clone(replica), client, payloads)))
    }
}

/// A connection that listens on [`CHANNEL`], and its notifications' payloads;
/// the channel closes when the connection breaks.
async fn listen(
    replica: &Replica,
) -> Result<(Client, mpsc::UnboundedReceiver<String>), StoreError> {
    let (client, mut connection) = replica.target.open().await?;
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(async move {
        let mut messages = futures_util::stream::poll_fn(move |cx| connection.poll_message(cx));
        while let Some(message) = messages.next().await {
            match message {
                Ok(AsyncMessage::Notification(n)) => {
                    if tx.send(n.payload().to_owned()).is_err() {
                        return;
                    }
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!("the database's notifications stopped: {e}");
                    return;
                }
            }
        }
    });
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await?;
    Ok((client, rx))
}

async fn follow(
    replica: Arc<Replica>,
    mut client: Client,
    mut payloads: mpsc::UnboundedReceiver<String>,
) {
    loop {
        let payload = tokio::select! {
            () = replica.stop.cancelled() => return,
            payload = payloads.recv() => payload,
        };
        let Some(first) = payload else {
            drop(client);
            let Some(again) = relisten(&replica).await else {
                return;
            };
            (client, payloads) = again;
            replica.publish.publish_change(&Change::Resync);
            continue;
        };
        let mut named = Vec::new();
        let mut next = Some(first);
        while let Some(payload) = next {
            named.extend(parse(&payload, &replica.id).into_iter().flatten());
            next = payloads.try_recv().ok();
        }
        if named.is_empty() {
            continue;
        }
        if let Err(e) = publish(&replica, named).await {
            tracing::warn!("cannot read what another replica changed: {e}");
            replica.publish.publish_change(&Change::Resync);
        }
    }
}

/// Listens again, backing off; `None` at shutdown.
async fn relisten(replica: &Replica) -> Option<(Client, mpsc::UnboundedReceiver<String>)> {
    tracing::warn!("lost the database's notifications; listening again");
    let mut pause = Duration::from_millis(250);
    loop {
        match listen(replica).await {
            Ok(again) => {
                tracing::info!("listening to the database's notifications again");
                return Some(again);
            }
            Err(e) => tracing::debug!("{e}"),
        }
        tokio::select! {
            () = replica.stop.cancelled() => return None,
            () = tokio::time::sleep(pause) => {}
        }
        pause = (pause * 2).min(MAX_BACKOFF);
    }
}

const SESSIONS_BY_IDS: &str = select_sessions!("WHERE session_id = ANY($1)");

/// Reads the rows `named` refers to and publishes them, in order.
async fn publish(replica: &Replica, named: Vec<Named>) -> Result<(), StoreError> {
    let db = replica.pool.get().await?;
    let event_ids: Vec<i64> = named
        .iter()
        .filter_map(|n| match n {
            Named::Event(id) => Some(*id),
            _ => None,
        })
        .collect();
    let session_ids: Vec<&str> = named
        .iter()
        .filter_map(|n| match n {
            Named::Created(id) | Named::Updated(id) => Some(id.as_str()),
            _ => None,
        })
        .collect();
    let mut events: HashMap<i64, (String, String)> = HashMap::new();
    if !event_ids.is_empty() {
        for r in rows(
            &db,
            "SELECT id, session_id, body FROM events WHERE id = ANY($1)",
            &[&event_ids],
        )
        .await?
        {
            events.insert(r.try_get(0)?, (r.try_get(1)?, r.try_get(2)?));
        }
    }
    let mut sessions: HashMap<String, Session> = HashMap::new();
    if !session_ids.is_empty() {
        for r in rows(&db, SESSIONS_BY_IDS, &[&session_ids]).await? {
            let session = session_from_row(&r)?;
            sessions.insert(session.session_id.clone(), session);
        }
    }
    for n in named {
        let change = match n {
            Named::Created(id) => sessions.get(&id).cloned().map(Change::SessionCreated),
            Named::Updated(id) => sessions.get(&id).cloned().map(Change::SessionUpdated),
            Named::Deleted(id) => Some(Change::SessionDeleted(id)),
            Named::Event(id) => events.remove(&id).map(|(session_id, body)| Change::Event {
                session_id,
                id,
                body,
            }),
            Named::Stop(id) => Some(Change::StopRequested(id)),
        };
        if let Some(change) = change {
            replica.publish.publish_change(&change);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(id: i64) -> Change {
        Change::Event {
            session_id: "s".to_owned(),
            id,
            body: "{}".to_owned(),
        }
    }

    #[test]
    fn a_long_batch_is_split_into_payloads_under_the_limit() {
        let changes: Vec<Change> = (1_000_000..1_002_000).map(event).collect();
        let payloads = payloads("r1", &changes);
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for (n, payload) in payloads.iter().enumerate() {
            assert!(payload.len() < 8000, "{}", payload.len());
            assert!(
                payload.starts_with(&format!("r1:{n} ")),
                "numbered: {payload:.20}"
            );
            for named in parse(payload, "other").unwrap() {
                let Named::Event(id) = named else { panic!() };
                seen.push(id);
            }
        }
        assert_eq!(
            seen,
            (1_000_000..1_002_000).collect::<Vec<_>>(),
            "all, in order"
        );
        assert!(
            parse(&payloads[0], "r1").is_none(),
            "a replica skips its own"
        );
    }

    #[test]
    fn every_kind_of_change_is_named() {
        let session = crate::server::store::rules::new_session(
            crate::wire::SessionCreate {
                session_id: "a:b".to_owned(),
                session_name: "n".to_owned(),
                ..Default::default()
            },
            "t".to_owned(),
        );
        let changes = [
            Change::SessionCreated(session.clone()),
            Change::SessionUpdated(session),
            Change::SessionDeleted("d1".to_owned()),
            event(7),
            Change::StopRequested("x1".to_owned()),
            Change::Resync,
        ];
        let payloads = payloads("r", &changes);
        assert_eq!(payloads, ["r:0 ca:b ua:b dd1 e7 xx1"]);
        let named = parse(&payloads[0], "other").unwrap();
        assert!(matches!(&named[..], [
            Named::Created(a), Named::Updated(b), Named::Deleted(d), Named::Event(7), Named::Stop(x)
        ] if a == "a:b" && b == "a:b" && d == "d1" && x == "x1"));
    }
}
