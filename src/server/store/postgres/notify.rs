//! How replicas hear of each other's changes. A transaction that commits
//! changes sends, with its commit, notifications on [`CHANNEL`] that name
//! them: its replica's id, then one reference per change (`c`, `u` or `d`
//! and a session id for a session created, updated or deleted, `e` and a
//! row id for an event, `x` and a session id for a stop request). Text a
//! model is writing, never stored, travels whole on the same channel
//! (`send_delta`), so that it keeps its place among the changes.
//! PostgreSQL delivers them to every listener in commit order; a
//! notification's payload is limited to 8000 bytes, so references rather
//! than rows travel, and a long batch is split over several.
//!
//! Each replica listens on a connection of its own, reads the rows that
//! other replicas' notifications name and publishes them to its live
//! clients. Its own changes it keeps in memory ([`Own`]) and publishes when
//! their notification comes back, so that every replica publishes every
//! change in the one order PostgreSQL committed them (a session created
//! through one replica comes before the events posted to it through
//! another). A write is answered at its commit, a moment before its change
//! is published here: a live client that connects waits for that moment
//! ([`Own::settled`]), so that, as on SQLite, it is not sent what was
//! answered before it connected as news. When that connection breaks, it publishes its own changes as
//! they commit, reconnects, and tells its clients to `resync`, since others'
//! changes may have been missed in between.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::{Notify, mpsc};
use tokio::task::JoinHandle;
use tokio_postgres::{AsyncMessage, Client};

use super::reader::select_sessions;
use super::{Db, Replica, exec, hosts, launches, requests, rows};
use crate::server::changes::{Change, Publish};
use crate::server::store::StoreError;
use crate::server::store::rules::session_from_row;
use crate::wire::{Session, TextDelta};

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
        Change::BudgetStop(id) => format!("b{id}"),
        // Ids hold no '/' (nor white space): it parts two of them.
        Change::RequestAnswered {
            session_id,
            request_id,
            ..
        } => format!("a{session_id}/{request_id}"),
        Change::Run(run) => format!("r{}", run.run_id),
        Change::RunAssigned { run_id, host } => format!("g{run_id}/{host}"),
        Change::RunStopRequested { run_id, host } => format!("k{run_id}/{host}"),
        Change::Host(host) => format!("h{}", host.name),
        // Sent on its own (`send_delta`), never with a commit.
        Change::Resync | Change::TextDelta { .. } => return None,
    })
}

/// The payloads that name `changes`: each starts with the replica's id,
/// the batch's tag (`-` for none) and its number in the batch (PostgreSQL
/// would merge identical payloads).
fn payloads<'a>(
    replica_id: &str,
    tag: Option<u64>,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Vec<String> {
    let tag = tag.map_or("-".to_owned(), |t| t.to_string());
    let mut payloads = Vec::new();
    let mut current = String::new();
    for item in changes.into_iter().filter_map(reference) {
        if !current.is_empty() && current.len() + 1 + item.len() > MAX_PAYLOAD {
            payloads.push(std::mem::take(&mut current));
        }
        if current.is_empty() {
            current = format!("{replica_id}:{tag}.{}", payloads.len());
        }
        current.push(' ');
        current.push_str(&item);
    }
    if payloads.is_empty() && current.is_empty() && tag != "-" {
        // A batch that changed nothing still marks its place.
        current = format!("{replica_id}:{tag}.0");
    }
    if !current.is_empty() {
        payloads.push(current);
    }
    payloads
}

/// The statement that sends a transaction's payloads.
pub(super) const SEND: &str = "SELECT pg_notify('ao_changes', p) FROM unnest($1::TEXT[]) AS p";

/// Notifies every replica of `changes` (of the writer's batch `tag`);
/// inside a transaction, at its commit.
pub(super) async fn send<'a>(
    db: &impl Db,
    replica_id: &str,
    tag: Option<u64>,
    changes: impl IntoIterator<Item = &'a Change>,
) -> Result<(), StoreError> {
    let payloads = payloads(replica_id, tag, changes);
    if payloads.is_empty() {
        return Ok(());
    }
    exec(db, SEND, &[&payloads]).await?;
    Ok(())
}

/// Tells every other replica of text a model is writing, at once (it is
/// never stored): `ORIGIN:~ SESSION DELTA-JSON`. A delta too long for one
/// notification is left out; its message's event, which follows, has it.
pub(super) async fn send_delta(
    db: &impl Db,
    replica_id: &str,
    session_id: &str,
    delta: &TextDelta,
) -> Result<(), StoreError> {
    let json = serde_json::to_string(delta).map_err(|e| StoreError::Invalid(e.to_string()))?;
    let payload = format!("{replica_id}:~ {session_id} {json}");
    if payload.len() > MAX_PAYLOAD {
        tracing::debug!("a text delta of {} bytes is not shared", json.len());
        return Ok(());
    }
    exec(db, SEND, &[&vec![payload]]).await?;
    Ok(())
}

/// The origin, session and delta of a payload [`send_delta`] wrote.
fn parse_delta(payload: &str) -> Option<(&str, String, TextDelta)> {
    let (head, rest) = payload.split_once(' ')?;
    let origin = head.strip_suffix(":~")?;
    let (session_id, json) = rest.split_once(' ')?;
    let delta = serde_json::from_str(json).ok()?;
    Some((origin, session_id.to_owned(), delta))
}

/// This replica's committed changes, waiting for their notification.
#[derive(Default)]
pub(super) struct Own {
    next: AtomicU64,
    state: Mutex<OwnState>,
    /// Wakes the listener waiting for a batch's changes.
    delivered: Notify,
}

#[derive(Default)]
struct OwnState {
    /// Each batch in flight: `None` until it commits.
    waiting: BTreeMap<u64, Option<Batch>>,
    /// Bumped each time the listener (re)connects.
    generation: u64,
    listening: bool,
}

/// A committed batch's changes.
pub(super) struct Batch {
    changes: Vec<Change>,
}

impl Batch {
    fn publish(self, publish: &dyn Publish) {
        for change in &self.changes {
            publish.publish_change(change);
        }
    }
}

/// A writer's batch: its tag in the notifications, and the listening
/// connection it counts on (`None`: none).
pub(super) struct Ticket {
    pub(super) tag: u64,
    listener: Option<u64>,
}

impl Own {
    fn state(&self) -> std::sync::MutexGuard<'_, OwnState> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// A place for a batch about to be applied.
    pub(super) fn ticket(&self) -> Ticket {
        let tag = self.next.fetch_add(1, Ordering::SeqCst);
        let mut state = self.state();
        state.waiting.insert(tag, None);
        Ticket {
            tag,
            listener: state.listening.then_some(state.generation),
        }
    }

    /// The batch committed `changes`: published when its notification
    /// comes back, or now if the listener that would see it is gone.
    pub(super) fn deliver(&self, ticket: Ticket, changes: Vec<Change>, publish: &dyn Publish) {
        let mut state = self.state();
        if !state.listening || ticket.listener != Some(state.generation) {
            state.waiting.remove(&ticket.tag);
            drop(state);
            for change in &changes {
                publish.publish_change(change);
            }
            self.delivered.notify_waiters();
            return;
        }
        state.waiting.insert(ticket.tag, Some(Batch { changes }));
        drop(state);
        self.delivered.notify_waiters();
    }

    /// Resolves once every batch begun before the call is published (or
    /// undone), at most [`OWN_WAIT`] later.
    pub(super) async fn settled(&self) {
        let until = self.next.load(Ordering::SeqCst);
        let deadline = tokio::time::Instant::now() + OWN_WAIT;
        loop {
            let delivered = self.delivered.notified();
            tokio::pin!(delivered);
            delivered.as_mut().enable();
            if self.state().waiting.range(..until).next().is_none() {
                return;
            }
            if tokio::time::timeout_at(deadline, delivered).await.is_err() {
                return;
            }
        }
    }

    /// The batch did not commit: nothing to publish.
    pub(super) fn cancel(&self, ticket: Ticket) {
        self.state().waiting.remove(&ticket.tag);
        self.delivered.notify_waiters();
    }

    /// The changes of batch `tag`, once its writer has them (at most
    /// [`OWN_WAIT`]); `None` if it was cancelled or published already.
    async fn take(&self, tag: u64) -> Option<Batch> {
        let deadline = tokio::time::Instant::now() + OWN_WAIT;
        loop {
            let delivered = self.delivered.notified();
            tokio::pin!(delivered);
            delivered.as_mut().enable();
            {
                let mut state = self.state();
                match state.waiting.get(&tag) {
                    None => return None,
                    Some(Some(_)) => return state.waiting.remove(&tag).flatten(),
                    Some(None) => {}
                }
            }
            if tokio::time::timeout_at(deadline, delivered).await.is_err() {
                return None;
            }
        }
    }

    /// The listener is (again) connected: what committed meanwhile is
    /// published now; batches still in flight publish themselves.
    fn connected(&self, publish: &dyn Publish) {
        let committed: Vec<Batch> = {
            let mut state = self.state();
            state.generation += 1;
            state.listening = true;
            let done: Vec<u64> = state
                .waiting
                .iter()
                .filter(|(_, changes)| changes.is_some())
                .map(|(tag, _)| *tag)
                .collect();
            done.iter()
                .filter_map(|tag| state.waiting.remove(tag).flatten())
                .collect()
        };
        for batch in committed {
            batch.publish(publish);
        }
    }

    /// The listener lost its connection.
    fn disconnected(&self) {
        self.state().listening = false;
    }
}

/// How long the listener waits for its writer to hand over a batch whose
/// notification came back (the writer has it a moment after the commit),
/// and a new live client for this replica's batches to be published.
const OWN_WAIT: Duration = Duration::from_secs(10);

/// A change named by another replica, to be read.
enum Named {
    Created(String),
    Updated(String),
    Deleted(String),
    Event(i64),
    Stop(String),
    BudgetStop(String),
    Answered(String, String),
    Run(String),
    Assigned(String, String),
    StopRun(String, String),
    Host(String),
    Delta(String, TextDelta),
}

/// What a notification says: who committed, the batch's tag and the
/// payload's number in it, and the changes it names.
struct Parsed<'a> {
    origin: &'a str,
    tag: Option<(u64, u64)>,
    named: Vec<Named>,
}

fn parse(payload: &str) -> Option<Parsed<'_>> {
    let mut words = payload.split(' ');
    let (origin, tag) = words.next()?.split_once(':')?;
    let tag = tag
        .split_once('.')
        .and_then(|(tag, n)| Some((tag.parse().ok()?, n.parse().ok()?)));
    let named = words
        .filter_map(|word| {
            let (kind, rest) = word.split_at_checked(1)?;
            Some(match kind {
                "c" => Named::Created(rest.to_owned()),
                "u" => Named::Updated(rest.to_owned()),
                "d" => Named::Deleted(rest.to_owned()),
                "e" => Named::Event(rest.parse().ok()?),
                "x" => Named::Stop(rest.to_owned()),
                "b" => Named::BudgetStop(rest.to_owned()),
                "r" => Named::Run(rest.to_owned()),
                "h" => Named::Host(rest.to_owned()),
                "a" | "g" | "k" => {
                    let (first, second) = rest.split_once('/')?;
                    let (first, second) = (first.to_owned(), second.to_owned());
                    match kind {
                        "a" => Named::Answered(first, second),
                        "g" => Named::Assigned(first, second),
                        _ => Named::StopRun(first, second),
                    }
                }
                _ => return None,
            })
        })
        .collect();
    Some(Parsed { origin, tag, named })
}

/// What the listener publishes, in order: a change another replica named,
/// or this replica's own batch.
enum Item {
    Named(Named),
    Own(u64),
}

/// The items of `payload`, as this replica (`own`) publishes them.
fn items(payload: &str, own: &str) -> Vec<Item> {
    if let Some((origin, session_id, delta)) = parse_delta(payload) {
        if origin == own {
            return Vec::new();
        }
        return vec![Item::Named(Named::Delta(session_id, delta))];
    }
    let Some(parsed) = parse(payload) else {
        return Vec::new();
    };
    if parsed.origin != own {
        return parsed.named.into_iter().map(Item::Named).collect();
    }
    match parsed.tag {
        // A batch's first payload stands for all of it.
        Some((tag, 0)) => vec![Item::Own(tag)],
        _ => Vec::new(),
    }
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
    replica.own.connected(&*replica.publish);
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
            replica.own.disconnected();
            drop(client);
            let Some(again) = relisten(&replica).await else {
                return;
            };
            (client, payloads) = again;
            replica.publish.publish_change(&Change::Resync);
            continue;
        };
        let mut items = Vec::new();
        let mut next = Some(first);
        while let Some(payload) = next {
            items.extend(self::items(&payload, &replica.id));
            next = payloads.try_recv().ok();
        }
        publish(&replica, items).await;
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

/// Publishes `items` in order: others' changes read from the database,
/// this replica's from memory. Others' that cannot be read are replaced by
/// a `resync`.
async fn publish(replica: &Replica, items: Vec<Item>) {
    let named: Vec<&Named> = items
        .iter()
        .filter_map(|item| match item {
            Item::Named(n) => Some(n),
            Item::Own(_) => None,
        })
        .collect();
    let (mut events, sessions) = match read(replica, &named).await {
        Ok(rows) => rows,
        Err(e) => {
            tracing::warn!("cannot read what another replica changed: {e}");
            replica.publish.publish_change(&Change::Resync);
            Default::default()
        }
    };
    for item in items {
        let change = match item {
            Item::Own(tag) => {
                if let Some(batch) = replica.own.take(tag).await {
                    batch.publish(&*replica.publish);
                }
                replica.own.delivered.notify_waiters();
                continue;
            }
            Item::Named(Named::Created(id)) => {
                sessions.get(&id).cloned().map(Change::SessionCreated)
            }
            Item::Named(Named::Updated(id)) => {
                sessions.get(&id).cloned().map(Change::SessionUpdated)
            }
            Item::Named(Named::Deleted(id)) => Some(Change::SessionDeleted(id)),
            Item::Named(Named::Event(id)) => {
                events.remove(&id).map(|(session_id, body)| Change::Event {
                    session_id,
                    id,
                    body,
                })
            }
            Item::Named(Named::Stop(id)) => Some(Change::StopRequested(id)),
            Item::Named(Named::BudgetStop(id)) => Some(Change::BudgetStop(id)),
            Item::Named(Named::Assigned(run_id, host)) => {
                Some(Change::RunAssigned { run_id, host })
            }
            Item::Named(Named::StopRun(run_id, host)) => {
                Some(Change::RunStopRequested { run_id, host })
            }
            Item::Named(Named::Delta(session_id, delta)) => {
                Some(Change::TextDelta { session_id, delta })
            }
            Item::Named(named) => match read_one(replica, named).await {
                Ok(change) => change,
                Err(e) => {
                    tracing::warn!("cannot read what another replica changed: {e}");
                    Some(Change::Resync)
                }
            },
        };
        if let Some(change) = change {
            replica.publish.publish_others(&change);
        }
    }
}

/// A run, a host or a decision another replica changed, read as it is now.
async fn read_one(replica: &Replica, named: Named) -> Result<Option<Change>, StoreError> {
    let db = replica.pool.get().await?;
    Ok(match named {
        Named::Answered(session_id, request_id) => {
            requests::decision_of(&db, &session_id, &request_id)
                .await?
                .map(|decision| Change::RequestAnswered {
                    session_id,
                    request_id,
                    decision,
                })
        }
        Named::Run(run_id) => launches::get(&db, &run_id, false)
            .await?
            .map(|l| Change::Run(Box::new(l.run))),
        Named::Host(name) => hosts::get(&db, &name).await?.map(|r| Change::Host(r.host)),
        _ => None,
    })
}

type Rows = (HashMap<i64, (String, String)>, HashMap<String, Session>);

/// The events and sessions `named` refers to.
async fn read(replica: &Replica, named: &[&Named]) -> Result<Rows, StoreError> {
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
    let mut events = HashMap::new();
    let mut sessions = HashMap::new();
    if event_ids.is_empty() && session_ids.is_empty() {
        return Ok((events, sessions));
    }
    let db = replica.pool.get().await?;
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
    if !session_ids.is_empty() {
        for r in rows(&db, SESSIONS_BY_IDS, &[&session_ids]).await? {
            let session = session_from_row(&r)?;
            sessions.insert(session.session_id.clone(), session);
        }
    }
    Ok((events, sessions))
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

    fn named(payload: &str) -> Vec<Named> {
        items(payload, "other")
            .into_iter()
            .map(|item| match item {
                Item::Named(n) => n,
                Item::Own(_) => panic!("not own"),
            })
            .collect()
    }

    #[test]
    fn a_long_batch_is_split_into_payloads_under_the_limit() {
        let changes: Vec<Change> = (1_000_000..1_002_000).map(event).collect();
        let payloads = payloads("r1", Some(7), &changes);
        assert!(payloads.len() > 1);
        let mut seen = Vec::new();
        for (n, payload) in payloads.iter().enumerate() {
            assert!(payload.len() < 8000, "{}", payload.len());
            assert!(
                payload.starts_with(&format!("r1:7.{n} ")),
                "numbered: {payload:.20}"
            );
            for n in named(payload) {
                let Named::Event(id) = n else { panic!() };
                seen.push(id);
            }
        }
        assert_eq!(
            seen,
            (1_000_000..1_002_000).collect::<Vec<_>>(),
            "all, in order"
        );
        // Its own replica takes the batch from memory, once.
        assert!(matches!(&items(&payloads[0], "r1")[..], [Item::Own(7)]));
        assert!(items(&payloads[1], "r1").is_empty());
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
        let payloads = payloads("r", None, &changes);
        assert_eq!(payloads, ["r:-.0 ca:b ua:b dd1 e7 xx1"]);
        assert!(matches!(&named(&payloads[0])[..], [
            Named::Created(a), Named::Updated(b), Named::Deleted(d), Named::Event(7), Named::Stop(x)
        ] if a == "a:b" && b == "a:b" && d == "d1" && x == "x1"));
        assert!(
            items(&payloads[0], "r").is_empty(),
            "a stop is published where it is posted"
        );
        assert_eq!(
            super::payloads("r", Some(3), &[]),
            ["r:3.0"],
            "an empty batch marks its place"
        );
    }

    #[test]
    fn a_text_delta_travels_whole_and_only_to_the_other_replicas() {
        let delta = TextDelta {
            text: "Hel lo: \"x\"".to_owned(),
            message_id: Some("m1".to_owned()),
            index: Some(0),
            seq: 4,
        };
        let payload = format!("r1:~ a:b {}", serde_json::to_string(&delta).unwrap());
        assert!(
            items(&payload, "r1").is_empty(),
            "its own replica published it"
        );
        assert!(matches!(&items(&payload, "r2")[..], [
            Item::Named(Named::Delta(session, d))
        ] if session == "a:b" && *d == delta));
        assert!(items("r1:~ a:b {not json", "r2").is_empty());
    }

    struct Log(Mutex<Vec<i64>>);

    impl Publish for Log {
        fn publish_change(&self, change: &Change) {
            if let Change::Event { id, .. } = change {
                self.0.lock().unwrap().push(*id);
            }
        }
    }

    #[tokio::test]
    async fn own_changes_wait_for_their_notification_unless_nobody_listens() {
        let own = Own::default();
        let log = Log(Mutex::default());
        // Not listening: published as they commit.
        let ticket = own.ticket();
        own.deliver(ticket, vec![event(1)], &log);
        assert_eq!(*log.0.lock().unwrap(), [1]);
        // Listening: kept for the listener, which may ask before the writer has them.
        own.connected(&log);
        let ticket = own.ticket();
        let tag = ticket.tag;
        let taking = own.take(tag);
        own.deliver(ticket, vec![event(2)], &log);
        assert_eq!(*log.0.lock().unwrap(), [1], "not yet");
        let settled = own.settled();
        tokio::pin!(settled);
        assert!(
            futures_util::poll!(settled.as_mut()).is_pending(),
            "a new client waits for it"
        );
        taking.await.unwrap().publish(&log);
        own.delivered.notify_waiters();
        assert_eq!(*log.0.lock().unwrap(), [1, 2]);
        settled.await;
        assert!(own.take(tag).await.is_none(), "once");
        // Committed while the listener was away: published when it is back.
        let ticket = own.ticket();
        own.deliver(ticket, vec![event(3)], &log);
        own.disconnected();
        own.connected(&log);
        assert_eq!(*log.0.lock().unwrap(), [1, 2, 3]);
        // A ticket from before a reconnection publishes itself.
        let ticket = own.ticket();
        own.disconnected();
        own.connected(&log);
        own.deliver(ticket, vec![event(4)], &log);
        assert_eq!(*log.0.lock().unwrap(), [1, 2, 3, 4]);
        // A cancelled batch has nothing to take.
        let ticket = own.ticket();
        let tag = ticket.tag;
        own.cancel(ticket);
        assert!(own.take(tag).await.is_none());
    }
}
