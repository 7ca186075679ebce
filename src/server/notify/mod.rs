//! Notifications: a word to a person, through their own command or
//! webhook, when a run starts waiting for someone (`needs_input`: a stored
//! `permission_request`) or ends (`run_completed`: a stored `run_completed`
//! or `session_stop`).
//!
//! They come from what the store commits, as the live feed does, so every
//! path that stores an event counts (a runner's posts, `ao-sync`, a command
//! closing a dead run), an event stored twice notifies once, and one
//! stamped more than [`RECENT`] from now (a replay of old runs) not at all.
//! The writer thread only hands each on to a bounded queue; a task of the
//! server reads the session and hands the notification to each hook's own
//! bounded queue and task. So a slow, hanging or failing hook never slows
//! the API: when a queue is full the notification is dropped and logged.

mod deliver;
mod notice;

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use super::changes::{Change, Observer};
use super::store::Store;

pub use deliver::{ATTEMPTS, TIMEOUT, redact_url};
pub use notice::{Notice, NoticeKind, RECENT};

use deliver::Hook;
use notice::Candidate;

/// Notifications waiting for their session to be read, at most.
const INTAKE_DEPTH: usize = 256;
/// Notifications waiting for one hook, at most.
const HOOK_DEPTH: usize = 64;

/// Where notifications go (`--notify-command`, `--notify-url`).
#[derive(Debug, Clone, Default)]
pub struct NotifySettings {
    /// Run by `sh -c` with one notification's JSON on its stdin.
    pub command: Option<String>,
    /// POSTed one notification's JSON.
    pub url: Option<reqwest::Url>,
}

/// The server's side of the notifications, ready to run once the server
/// serves.
pub(super) struct Notifier {
    intake: mpsc::Receiver<Candidate>,
    hooks: Vec<Hook>,
}

impl Notifier {
    /// The notifier for `settings`, and the observer that feeds it from the
    /// store's writer thread; `None` when no hook is set.
    pub(super) fn new(settings: &NotifySettings) -> Option<(Notifier, Observer)> {
        let mut hooks = Vec::new();
        if let Some(command) = &settings.command {
            hooks.push(Hook::Command(command.clone()));
        }
        if let Some(url) = &settings.url {
            match crate::client::http_client(url, Some(TIMEOUT)) {
                Ok(client) => hooks.push(Hook::Url(url.clone(), client)),
                Err(e) => tracing::warn!(
                    "notify URL {}: cannot make an HTTP client ({}); no notification will be posted",
                    redact_url(url),
                    e.without_url()
                ),
            }
        }
        if hooks.is_empty() {
            return None;
        }
        let names: Vec<String> = hooks.iter().map(Hook::describe).collect();
        tracing::info!("notifications go to the {}", names.join(" and the "));
        let (tx, intake) = mpsc::channel(INTAKE_DEPTH);
        let observer: Observer = Box::new(move |change: &Change| {
            let Change::Event {
                session_id, body, ..
            } = change
            else {
                return;
            };
            let Some(candidate) = Candidate::of(session_id, body, chrono::Utc::now()) else {
                return;
            };
            if let Err(mpsc::error::TrySendError::Full(c)) = tx.try_send(candidate) {
                tracing::warn!(
                    "notifications: {INTAKE_DEPTH} are waiting already; {} of session '{}' dropped",
                    c.kind.as_str(),
                    c.session_name
                );
            }
        });
        Some((Notifier { intake, hooks }, observer))
    }

    /// Sends notifications until the store closes (the server drops the
    /// observer then), then until the hooks' queues are empty.
    /// Dropping the future cancels every delivery under way, and kills the
    /// commands still running.
    pub(super) async fn run(mut self, store: Store) {
        let mut workers = JoinSet::new();
        let queues: Vec<(String, mpsc::Sender<Arc<Notice>>)> = self
            .hooks
            .into_iter()
            .map(|hook| {
                let (tx, mut rx) = mpsc::channel::<Arc<Notice>>(HOOK_DEPTH);
                let name = hook.describe();
                workers.spawn(async move {
                    while let Some(notice) = rx.recv().await {
                        hook.deliver(&notice).await;
                    }
                });
                (name, tx)
            })
            .collect();
        while let Some(candidate) = self.intake.recv().await {
            let session = store
                .get_session(candidate.session_id.clone())
                .await
                .ok()
                .flatten();
            let notice = Arc::new(Notice::new(candidate, session.as_ref()));
            for (name, queue) in &queues {
                if let Err(mpsc::error::TrySendError::Full(_)) = queue.try_send(Arc::clone(&notice))
                {
                    tracing::warn!(
                        "{name}: {HOOK_DEPTH} notifications are waiting already; {} of session '{}' dropped",
                        notice.kind.as_str(),
                        notice.session_name
                    );
                }
            }
        }
        drop(queues);
        while workers.join_next().await.is_some() {}
    }
}
