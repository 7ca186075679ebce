//! The single writer. Requests queue on a channel; the thread takes every
//! request waiting, applies each inside its own savepoint of one transaction,
//! commits once, then answers them all and publishes their broadcasts. Many
//! concurrent writers thus cost one commit (one fsync) between them, and no
//! two writers ever contend for SQLite's lock.

use std::thread::JoinHandle;

use rusqlite::{Connection, Transaction, TransactionBehavior};
use tokio::sync::{mpsc, oneshot};

use std::sync::Arc;

use super::StoreError;
use crate::server::changes::{Change, Publish};

/// Requests taken into one transaction at most.
const MAX_BATCH: usize = 512;
/// Requests that may wait for the writer before senders wait too.
const QUEUE_DEPTH: usize = 4096;

/// One write: its SQL, and the frames to broadcast once it is committed.
pub(super) trait Op: Send + 'static {
    type Out: Send + 'static;
    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Self::Out, StoreError>;
}

/// A queued write with its reply channel, type-erased so one queue holds all kinds.
trait Job: Send {
    fn apply(&mut self, conn: &Connection);
    /// Hands the frames of a successful write to the caller of `finish`.
    fn take_frames(&mut self) -> Vec<Change>;
    /// True when the write was refused, so its savepoint must be undone.
    fn failed(&self) -> bool;
    fn finish(self: Box<Self>, committed: Result<(), &StoreError>);
}

struct Pending<O: Op> {
    op: Option<O>,
    reply: oneshot::Sender<Result<O::Out, StoreError>>,
    result: Option<Result<O::Out, StoreError>>,
    frames: Vec<Change>,
}

impl<O: Op> Job for Pending<O> {
    fn apply(&mut self, conn: &Connection) {
        if let Some(op) = self.op.take() {
            self.result = Some(op.apply(conn, &mut self.frames));
        }
    }

    fn take_frames(&mut self) -> Vec<Change> {
        match self.result {
            Some(Ok(_)) => std::mem::take(&mut self.frames),
            _ => Vec::new(),
        }
    }

    fn failed(&self) -> bool {
        !matches!(self.result, Some(Ok(_)))
    }

    fn finish(self: Box<Self>, committed: Result<(), &StoreError>) {
        let answer = match (committed, self.result) {
            (Ok(()), Some(result)) => result,
            (Err(e), Some(Ok(_))) => Err(StoreError::Unavailable(format!("not stored: {e}"))),
            (_, Some(Err(e))) => Err(e),
            (_, None) => Err(StoreError::Closed),
        };
        // The caller may have gone away (client disconnected); nothing to do then.
        let _ = self.reply.send(answer);
    }
}

enum Message {
    Job(Box<dyn Job>),
    Close,
}

/// The sending side, held by every `Store` clone.
#[derive(Clone)]
pub(super) struct WriterHandle {
    tx: mpsc::Sender<Message>,
}

impl WriterHandle {
    /// Queues a write and waits until it is committed (or refused).
    pub(super) async fn run<O: Op>(&self, op: O) -> Result<O::Out, StoreError> {
        let (reply, answer) = oneshot::channel();
        let job = Pending {
            op: Some(op),
            reply,
            result: None,
            frames: Vec::new(),
        };
        self.tx
            .send(Message::Job(Box::new(job)))
            .await
            .map_err(|_| StoreError::Closed)?;
        answer.await.map_err(|_| StoreError::Closed)?
    }
}

/// The writer thread; `close` finishes what is queued and closes the database.
pub struct WriterThread {
    tx: mpsc::Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl WriterThread {
    /// Commits what is queued, checkpoints and closes the file, and waits
    /// for the thread to end. Writes sent afterwards get `StoreError::Closed`.
    pub async fn close(mut self) {
        let _ = self.tx.send(Message::Close).await;
        if let Some(thread) = self.thread.take() {
            let _ = tokio::task::spawn_blocking(move || thread.join()).await;
        }
    }
}

pub(super) fn start(
    conn: Connection,
    publish: Arc<dyn Publish>,
) -> Result<(WriterHandle, WriterThread), StoreError> {
    let (tx, rx) = mpsc::channel(QUEUE_DEPTH);
    let thread = std::thread::Builder::new()
        .name("store-writer".to_owned())
        .spawn(move || writer_loop(conn, rx, &*publish))
        .map_err(|e| StoreError::Unavailable(format!("cannot start the writer thread: {e}")))?;
    Ok((
        WriterHandle { tx: tx.clone() },
        WriterThread {
            tx,
            thread: Some(thread),
        },
    ))
}

fn writer_loop(mut conn: Connection, mut rx: mpsc::Receiver<Message>, hub: &dyn Publish) {
    let mut batch: Vec<Box<dyn Job>> = Vec::with_capacity(MAX_BATCH);
    let mut closing = false;
    while !closing {
        match rx.blocking_recv() {
            Some(Message::Job(job)) => batch.push(job),
            Some(Message::Close) | None => break,
        }
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(Message::Job(job)) => batch.push(job),
                Ok(Message::Close) => {
                    closing = true;
                    break;
                }
                Err(_) => break,
            }
        }
        commit_batch(&mut conn, &mut batch, hub);
    }
    rx.close();
    // Answer whatever raced in after Close; those writes are refused.
    while let Ok(Message::Job(job)) = rx.try_recv() {
        job.finish(Err(&StoreError::Closed));
    }
    if let Err(e) = conn.execute_batch("PRAGMA wal_checkpoint(TRUNCATE)") {
        tracing::warn!("checkpoint at close failed: {e}");
    }
    if let Err((_, e)) = conn.close() {
        tracing::warn!("closing the database failed: {e}");
    }
}

fn commit_batch(conn: &mut Connection, batch: &mut Vec<Box<dyn Job>>, hub: &dyn Publish) {
    let committed = apply_all(conn, batch);
    if let Err(e) = &committed {
        tracing::error!("commit of {} writes failed: {e}", batch.len());
    }
    for mut job in batch.drain(..) {
        if committed.is_ok() {
            for change in job.take_frames() {
                hub.publish_change(&change);
            }
        }
        job.finish(committed.as_ref().map(|_| ()));
    }
}

/// Starts a write transaction the way the writer does: taking the write
/// lock at once, so that it cannot fail half way for want of it.
pub(super) fn begin_write(conn: &mut Connection) -> rusqlite::Result<Transaction<'_>> {
    conn.transaction_with_behavior(TransactionBehavior::Immediate)
}

fn apply_all(conn: &mut Connection, batch: &mut [Box<dyn Job>]) -> Result<(), StoreError> {
    let tx = begin_write(conn)?;
    for job in batch.iter_mut() {
        // Each write in its own savepoint, so that a refused one is undone
        // alone. Prepared once and reused: parsing these three statements
        // for every write cost more than the write's own INSERT.
        tx.prepare_cached("SAVEPOINT job")?.execute([])?;
        job.apply(&tx);
        if job.failed() {
            tx.prepare_cached("ROLLBACK TO job")?.execute([])?;
        }
        tx.prepare_cached("RELEASE job")?.execute([])?;
    }
    tx.commit()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inserts a row, then fails if told to: a write refused half way.
    struct InsertThenMaybeFail(&'static str, bool);

    impl Op for InsertThenMaybeFail {
        type Out = ();
        fn apply(self, conn: &Connection, _: &mut Vec<Change>) -> Result<(), StoreError> {
            conn.execute("INSERT INTO t (v) VALUES (?1)", [self.0])?;
            if self.1 {
                return Err(StoreError::Invalid("refused".to_owned()));
            }
            Ok(())
        }
    }

    fn job(value: &'static str, fail: bool) -> Box<dyn Job> {
        let (reply, _answer) = oneshot::channel();
        Box::new(Pending {
            op: Some(InsertThenMaybeFail(value, fail)),
            reply,
            result: None,
            frames: Vec::new(),
        })
    }

    #[test]
    fn a_refused_write_is_undone_alone_and_the_batch_commits() {
        let mut conn = Connection::open_in_memory().unwrap();
        conn.execute_batch("CREATE TABLE t (v TEXT)").unwrap();
        let mut batch = vec![job("a", false), job("b", true), job("c", false)];
        apply_all(&mut conn, &mut batch).unwrap();
        assert!(!batch[0].failed() && batch[1].failed() && !batch[2].failed());
        let rows: Vec<String> = conn
            .prepare("SELECT v FROM t ORDER BY rowid")
            .unwrap()
            .query_map([], |r| r.get(0))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert_eq!(rows, ["a", "c"]);
        // The cached savepoint statements work again in the next batch.
        let mut batch = vec![job("d", true), job("e", false)];
        apply_all(&mut conn, &mut batch).unwrap();
        let count: i64 = conn
            .query_row("SELECT count(*) FROM t", [], |r| r.get(0))
            .unwrap();
        assert_eq!(count, 3);
    }
}
