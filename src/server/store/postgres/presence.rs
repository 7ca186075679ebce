//! Which replica a session's runner follows its feed on. Each replica
//! keeps a heartbeat row in `replicas` and, for each session one of its
//! runners follows, a row in `runner_feeds`; a replica not seen for
//! [`STALE_SECS`] counts as gone, its rows are ignored and then removed.
//! A stop posted to any replica thus learns that a runner is attached
//! somewhere, and the notification (`x` in `notify`) reaches it there.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{Db, Replica, exec, row};
use crate::server::store::StoreError;

/// How often a replica says it is alive.
const HEARTBEAT: Duration = Duration::from_secs(5);
/// Seconds after which a silent replica counts as gone.
const STALE_SECS: f64 = 30.0;

enum Message {
    Attach(Vec<String>),
    Release(Vec<String>),
}

/// Where leases are taken.
#[derive(Clone)]
pub(super) struct Presence {
    tx: mpsc::UnboundedSender<Message>,
}

impl Presence {
    pub(super) fn lease(&self, sessions: &HashSet<String>) -> Lease {
        let sessions: Vec<String> = sessions.iter().cloned().collect();
        let _ = self.tx.send(Message::Attach(sessions.clone()));
        Lease {
            sessions,
            tx: self.tx.clone(),
        }
    }
}

/// Runners of some sessions follow their feed on this replica while this
/// lives.
pub struct Lease {
    sessions: Vec<String>,
    tx: mpsc::UnboundedSender<Message>,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let _ = self
            .tx
            .send(Message::Release(std::mem::take(&mut self.sessions)));
    }
}

/// Says this replica is alive (failing at once if it cannot), then keeps
/// saying it and keeps its runners' rows in step, in a task.
pub(super) async fn start(
    replica: &Arc<Replica>,
) -> Result<(Presence, JoinHandle<()>), StoreError> {
    heartbeat(&replica.pool.get().await?, &replica.id).await?;
    let (tx, rx) = mpsc::unbounded_channel();
    let task = tokio::spawn(keep(Arc::clone(replica), rx));
    Ok((Presence { tx }, task))
}

async fn keep(replica: Arc<Replica>, mut rx: mpsc::UnboundedReceiver<Message>) {
    let mut counts: HashMap<String, usize> = HashMap::new();
    let mut ticks = tokio::time::interval(HEARTBEAT);
    let mut written = true;
    loop {
        tokio::select! {
            () = replica.stop.cancelled() => break,
            _ = ticks.tick() => {
                if let Err(e) = beat(&replica).await {
                    tracing::debug!("heartbeat failed: {e}");
                    written = false;
                }
            }
            message = rx.recv() => {
                let Some(message) = message else { break };
                apply(&mut counts, message);
                while let Ok(more) = rx.try_recv() {
                    apply(&mut counts, more);
                }
                written = false;
            }
        }
        if !written {
            let sessions: Vec<&str> = counts.keys().map(String::as_str).collect();
            written = match write(&replica, &sessions).await {
                Ok(()) => true,
                Err(e) => {
                    tracing::debug!("cannot record this replica's runners: {e}");
                    false
                }
            };
        }
    }
    // Gone: the other replicas need not wait for this one to go stale.
    if let Ok(db) = replica.pool.get().await {
        let _ = exec(
            &db,
            "DELETE FROM runner_feeds WHERE replica_id = $1",
            &[&replica.id],
        )
        .await;
        let _ = exec(
            &db,
            "DELETE FROM replicas WHERE replica_id = $1",
            &[&replica.id],
        )
        .await;
    }
}

fn apply(counts: &mut HashMap<String, usize>, message: Message) {
    match message {
        Message::Attach(sessions) => {
            for id in sessions {
                *counts.entry(id).or_default() += 1;
            }
        }
        Message::Release(sessions) => {
            for id in sessions {
                if let Some(n) = counts.get_mut(&id) {
                    *n -= 1;
                    if *n == 0 {
                        counts.remove(&id);
                    }
                }
            }
        }
    }
}

async fn heartbeat(db: &impl Db, id: &str) -> Result<(), StoreError> {
    exec(
        db,
        "INSERT INTO replicas (replica_id, seen_at) VALUES ($1, now())
         ON CONFLICT (replica_id) DO UPDATE SET seen_at = now()",
        &[&id],
    )
    .await?;
    Ok(())
}

/// A heartbeat, and the removal of replicas gone silent.
async fn beat(replica: &Replica) -> Result<(), StoreError> {
    let db = replica.pool.get().await?;
    heartbeat(&db, &replica.id).await?;
    exec(
        &db,
        "DELETE FROM runner_feeds WHERE replica_id IN (
             SELECT replica_id FROM replicas WHERE seen_at < now() - make_interval(secs => $1))",
        &[&STALE_SECS],
    )
    .await?;
    exec(
        &db,
        "DELETE FROM replicas WHERE seen_at < now() - make_interval(secs => $1)",
        &[&STALE_SECS],
    )
    .await?;
    Ok(())
}

/// Makes this replica's rows in `runner_feeds` exactly `sessions`.
async fn write(replica: &Replica, sessions: &[&str]) -> Result<(), StoreError> {
    let db = replica.pool.get().await?;
    exec(
        &db,
        "DELETE FROM runner_feeds WHERE replica_id = $1 AND NOT (session_id = ANY($2))",
        &[&replica.id, &sessions],
    )
    .await?;
    exec(
        &db,
        "INSERT INTO runner_feeds (replica_id, session_id) SELECT $1, s FROM unnest($2::TEXT[]) AS s
         ON CONFLICT DO NOTHING",
        &[&replica.id, &sessions],
    )
    .await?;
    Ok(())
}

/// Whether a live replica other than `own` has a runner of `session_id`.
pub(super) async fn runner_elsewhere(
    db: &impl Db,
    own: &str,
    session_id: &str,
) -> Result<bool, StoreError> {
    let found = row(
        db,
        "SELECT 1 FROM runner_feeds f JOIN replicas r ON r.replica_id = f.replica_id
         WHERE f.session_id = $1 AND f.replica_id <> $2
           AND r.seen_at > now() - make_interval(secs => $3) LIMIT 1",
        &[&session_id, &own, &STALE_SECS],
    )
    .await?;
    Ok(found.is_some())
}
