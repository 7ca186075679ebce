//! The writer of one replica: requests queue on a channel; one task takes
//! every request waiting, applies them in one transaction on a connection
//! of its own (`ops`, `plain`), commits once with the notifications that
//! tell every replica, then answers them all and hands their changes to
//! this replica's listener, which publishes them in commit order (`notify`).
//! A batch that meets a deadlock with another replica is applied again; a
//! lost connection fails the batch with `Down` (503: the runners send it
//! again) and is opened anew for the next one, at most twice a second.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_postgres::{Client, Statement};

use super::ops::{self, Done, Outcome, Write};
use super::{Db, Replica, notify, plain};
use crate::server::store::StoreError;

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 512;
/// How long a batch smaller than the one before waits for the rest: the
/// writers answered last come back a moment later with their next request,
/// and one commit for all of them costs less than one for each half.
const GATHER: Duration = Duration::from_micros(500);
/// Requests that may wait for the writer before senders wait too.
const QUEUE_DEPTH: usize = 4096;
/// The least time between two attempts to reconnect.
const RECONNECT_PAUSE: Duration = Duration::from_millis(500);
/// Times a batch is applied when other replicas' transactions get in the way.
const ATTEMPTS: usize = 10;
/// The longest pause before a batch is applied again: random, so that two
/// replicas whose batches deadlocked do not meet again at once.
const RETRY_PAUSE_MAX_MS: u64 = 40;

/// The writer's connection, each statement prepared once on it.
pub(super) struct Conn {
    client: Client,
    prepared: Mutex<HashMap<String, Statement>>,
}

impl Conn {
    pub(super) fn new(client: Client) -> Conn {
        Conn {
            client,
            prepared: Mutex::default(),
        }
    }
}

impl Db for Conn {
    fn client(&self) -> &Client {
        &self.client
    }

    async fn prepare(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        let cached = self
            .prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(sql)
            .cloned();
        if let Some(stmt) = cached {
            return Ok(stmt);
        }
        let stmt = self.client.prepare(sql).await?;
        self.prepared
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(sql.to_owned(), stmt.clone());
        Ok(stmt)
    }
}

struct Job {
    write: Write,
    reply: oneshot::Sender<Result<Done, StoreError>>,
}

enum Message {
    Job(Box<Job>),
    Close,
}

/// The sending side, held by every `PgStore` clone.
#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

impl WriterHandle {
    /// Queues a write and waits until it is committed (or refused).
    pub(super) async fn run(&self, write: Write) -> Result<Done, StoreError> {
        let (reply, answer) = oneshot::channel();
        self.tx
            .send(Message::Job(Box::new(Job { write, reply })))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer task; `close` finishes what is queued.
pub(super) struct WriterTask {
    tx: mpsc::Sender<Message>,
    task: JoinHandle<()>,
}

impl WriterTask {
    pub(super) async fn close(self) {
        let _ = self.tx.send(Message::Close).await;
        let _ = self.task.await;
    }
}

pub(super) fn start(replica: Arc<Replica>, client: Client) -> (WriterHandle, WriterTask) {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let task = tokio::spawn(writer_loop(replica, Conn::new(client), rx));
    (WriterHandle { tx: tx.clone() }, WriterTask { tx, task })
}

async fn writer_loop(replica: Arc<Replica>, conn: Conn, mut rx: mpsc::Receiver<Message>) {
    let mut link = Link {
        conn: Some(conn),
        last_attempt: Instant::now(),
    };
    let mut batch: Vec<Job> = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    let mut last_size = 0;
    while !closing {
        match rx.recv().await {
            Some(Message::Job(job)) => batch.push(*job),
            Some(Message::Close) | None => break,
        }
        closing = take_waiting(&mut rx, &mut batch);
        let gathering = Instant::now();
        while !closing && batch.len() < last_size && gathering.elapsed() < GATHER {
            tokio::task::yield_now().await;
            closing = take_waiting(&mut rx, &mut batch);
        }
        last_size = batch.len();
        commit_batch(&replica, &mut link, std::mem::take(&mut batch)).await;
    }
    rx.close();
    while let Ok(Message::Job(job)) = rx.try_recv() {
        let _ = job.reply.send(Err(StoreError::Closed));
    }
}

/// Moves what waits into `batch`; true when the writer is to close.
fn take_waiting(rx: &mut mpsc::Receiver<Message>, batch: &mut Vec<Job>) -> bool {
    while batch.len() < MAX_BATCH {
        match rx.try_recv() {
            Ok(Message::Job(job)) => batch.push(*job),
            Ok(Message::Close) => return true,
            Err(_) => break,
        }
    }
    false
}

/// The writer's connection, when it has one.
struct Link {
    conn: Option<Conn>,
    last_attempt: Instant,
}

impl Link {
    /// The connection, opened again if it was lost (not more often than
    /// [`RECONNECT_PAUSE`]).
    async fn get(&mut self, replica: &Replica) -> Option<&Conn> {
        if self.conn.as_ref().is_some_and(|c| c.client.is_closed()) {
            self.conn = None;
        }
        if self.conn.is_none() && self.last_attempt.elapsed() >= RECONNECT_PAUSE {
            self.last_attempt = Instant::now();
            match replica.target.connect().await {
                Ok(client) => {
                    tracing::info!("reconnected to the database");
                    self.conn = Some(Conn::new(client));
                }
                Err(e) => tracing::warn!("{e}"),
            }
        }
        self.conn.as_ref()
    }
}

async fn commit_batch(replica: &Replica, link: &mut Link, batch: Vec<Job>) {
    let (writes, replies): (Vec<Write>, Vec<_>) =
        batch.into_iter().map(|job| (job.write, job.reply)).unzip();
    let Some(conn) = link.get(replica).await else {
        for reply in replies {
            let _ = reply.send(Err(StoreError::Down(
                "the database is unreachable; nothing was stored: retry in a moment".to_owned(),
            )));
        }
        return;
    };
    let ticket = replica.own.ticket();
    let mut attempt = 1;
    let committed = loop {
        match transaction(conn, &replica.id, ticket.tag, &writes).await {
            Err(StoreError::Contention(why)) if attempt < ATTEMPTS => {
                tracing::debug!("batch of {} writes applied again: {why}", writes.len());
                tokio::time::sleep(retry_pause(attempt)).await;
                attempt += 1;
            }
            other => break other,
        }
    };
    match committed {
        Ok(outcomes) => {
            let mut changes = Vec::new();
            let answers: Vec<_> = outcomes
                .into_iter()
                .map(|outcome| {
                    outcome.map(|(done, mut made)| {
                        changes.append(&mut made);
                        done
                    })
                })
                .collect();
            replica.own.deliver(ticket, changes, &*replica.publish);
            for (answer, reply) in answers.into_iter().zip(replies) {
                let _ = reply.send(answer);
            }
        }
        Err(e) => {
            replica.own.cancel(ticket);
            tracing::error!("commit of {} writes failed: {e}", writes.len());
            for reply in replies {
                let _ = reply.send(Err(match &e {
                    StoreError::Down(why) => {
                        StoreError::Down(format!("{why}; nothing was stored: retry in a moment"))
                    }
                    StoreError::Contention(why) => StoreError::Contention(why.clone()),
                    other => StoreError::Unavailable(format!("not stored: {other}")),
                }));
            }
        }
    }
}

/// One transaction over the batch; rolled back if it fails.
async fn transaction(
    conn: &Conn,
    replica_id: &str,
    tag: u64,
    writes: &[Write],
) -> Result<Vec<Outcome>, StoreError> {
    let plain: Vec<_> = writes.iter().map_while(Write::plain_event).collect();
    if plain.len() == writes.len() {
        match plain::commit(conn, replica_id, tag, &plain).await {
            Ok(Some(outcomes)) => return Ok(outcomes),
            Ok(None) => {}
            Err(e) if ops::fails_batch(&e) => {
                if !conn.client.is_closed() {
                    let _ = conn.client.batch_execute("ROLLBACK").await;
                }
                return Err(e);
            }
            Err(e) => {
                // The general path below says which write is at fault.
                tracing::debug!("a batch of events is applied one by one: {e}");
                let _ = conn.client.batch_execute("ROLLBACK").await;
            }
        }
    }
    conn.client.batch_execute("BEGIN").await?;
    let result = async {
        let outcomes = ops::apply_all(conn, writes).await?;
        let changes = outcomes
            .iter()
            .filter_map(|o| o.as_ref().ok())
            .flat_map(|(_, changes)| changes);
        notify::send(conn, replica_id, Some(tag), changes).await?;
        conn.client.batch_execute("COMMIT").await?;
        Ok(outcomes)
    }
    .await;
    if result.is_err() && !conn.client.is_closed() {
        let _ = conn.client.batch_execute("ROLLBACK").await;
    }
    result
}

/// A random pause, longer with each attempt.
fn retry_pause(attempt: usize) -> Duration {
    use std::hash::{BuildHasher, RandomState};
    let random = RandomState::new().hash_one(Instant::now());
    let most = RETRY_PAUSE_MAX_MS.min(5 * attempt as u64).max(1);
    Duration::from_millis(random % most + 1)
}
