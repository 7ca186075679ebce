//! The one ordered queue from a run to the API. Actions leave in order from
//! a background task; a failed post is retried with backoff until it passes
//! or the run's final bounded wait runs out. The run itself never waits for
//! the API, and what is not delivered is still in the backup for `ao-sync`.
//!
//! Live-only messages (text as the model writes it) go through the same
//! queue, so that none arrives after the event that ends it, but are tried
//! once and never counted: they are worth nothing late.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::client::SessionClient;
use crate::record::Action;
use crate::report::{apply, is_transient};
use crate::wire::{LiveInput, TextDelta};

/// What the queue achieved.
#[derive(Debug, Default, Clone)]
pub struct Tally {
    pub queued: usize,
    pub delivered: usize,
    /// Actions the API refused for good (4xx), with the first refusal.
    pub refused: usize,
    pub first_refusal: Option<String>,
}

impl Tally {
    /// Actions neither delivered nor refused (still queued or retrying).
    pub fn undelivered(&self) -> usize {
        self.queued - self.delivered - self.refused
    }
}

/// What the queue carries.
enum Item {
    Action(Action),
    /// A live-only message for a session.
    Live(String, LiveInput),
}

/// The sending side of the queue.
pub struct Reporter {
    tx: Option<mpsc::UnboundedSender<Item>>,
    task: Option<JoinHandle<()>>,
    tally: Arc<Mutex<Tally>>,
}

impl Reporter {
    /// A queue to `client`; `None` when the API is known to be down, in
    /// which case actions are only counted.
    pub fn start(client: Option<SessionClient>) -> Reporter {
        let tally = Arc::new(Mutex::new(Tally::default()));
        let Some(client) = client else {
            return Reporter {
                tx: None,
                task: None,
                tally,
            };
        };
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(deliver(client, rx, Arc::clone(&tally)));
        Reporter {
            tx: Some(tx),
            task: Some(task),
            tally,
        }
    }

    /// Queues actions, in order, without waiting.
    pub fn send(&self, actions: Vec<Action>) {
        if actions.is_empty() {
            return;
        }
        if let Ok(mut tally) = self.tally.lock() {
            tally.queued += actions.len();
        }
        if let Some(tx) = &self.tx {
            for action in actions {
                let _ = tx.send(Item::Action(action));
            }
        }
    }

    /// Queues text the model wrote, behind what is queued already; it is
    /// sent once, and dropped when the API is down.
    pub fn send_text(&self, session_id: &str, delta: TextDelta) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Item::Live(
                session_id.to_owned(),
                LiveInput::TextDelta(delta),
            ));
        }
    }

    /// Closes the queue and waits at most `wait` for it to drain.
    pub async fn finish(mut self, wait: Duration) -> Tally {
        self.tx = None;
        if let Some(mut task) = self.task.take()
            && tokio::time::timeout(wait, &mut task).await.is_err()
        {
            task.abort();
        }
        self.tally.lock().map(|t| t.clone()).unwrap_or_default()
    }
}

async fn deliver(
    client: SessionClient,
    mut rx: mpsc::UnboundedReceiver<Item>,
    tally: Arc<Mutex<Tally>>,
) {
    let backoff = ExponentialBuilder::default()
        .with_min_delay(Duration::from_millis(50))
        .with_max_delay(Duration::from_secs(1))
        .without_max_times();
    while let Some(item) = rx.recv().await {
        let action = match item {
            Item::Action(action) => action,
            Item::Live(session_id, message) => {
                let _ = client.post_live(&session_id, &message).await;
                continue;
            }
        };
        let outcome = (|| apply(&client, &action))
            .retry(backoff)
            .when(is_transient)
            .await;
        let Ok(mut tally) = tally.lock() else { return };
        match outcome {
            Ok(_) => tally.delivered += 1,
            Err(e) => {
                tally.refused += 1;
                if tally.first_refusal.is_none() {
                    tally.first_refusal = Some(e.to_string());
                }
            }
        }
    }
}
