//! Following the session manager's live feed for a few sessions
//! (`GET /sse?session_id=...`): a runner listens there for stop requests
//! and decisions, `ao-wait` for the end of runs and for runs that need
//! input, `ao-stop` for the end of runs; a host for the runs given to it
//! (`?host=NAME`), and a caller for its launched run (`?run_id=ID`). The
//! filtered feed carries only those sessions' messages, so following costs
//! the server little however many sessions it holds.

use std::collections::{HashSet, VecDeque};
use std::pin::Pin;

use eventsource_stream::Eventsource;
use futures_util::{Stream, StreamExt};

use crate::client::{ClientError, SessionClient};
use crate::wire::{LiveMessage, SessionStatus};

type Events = Pin<Box<dyn Stream<Item = Result<eventsource_stream::Event, String>> + Send>>;

/// An open feed; messages arrive in commit order.
pub struct Feed {
    events: Events,
    /// Sessions the `init` showed as ended, not yet handed out.
    ended: VecDeque<String>,
    /// What it was opened with, to open it again after a `resync`.
    client: SessionClient,
    query: Vec<(&'static str, String)>,
}

impl Feed {
    /// Opens the feed of `sessions` (`runner`: this process runs them, so a
    /// stop request reaches them through it). The first message is `init`
    /// with those sessions as they are now.
    pub async fn open(
        client: &SessionClient,
        sessions: &[String],
        runner: bool,
    ) -> Result<Feed, ClientError> {
        let mut query: Vec<(&'static str, String)> = sessions
            .iter()
            .map(|id| ("session_id", id.clone()))
            .collect();
        if runner {
            query.push(("runner", "1".to_owned()));
        }
        Self::open_query(client, query).await
    }

    /// The feed of host `name`: the runs given to it, and stop requests
    /// for them.
    pub async fn for_host(client: &SessionClient, name: &str) -> Result<Feed, ClientError> {
        Self::open_query(client, vec![("host", name.to_owned())]).await
    }

    /// The feed of one launched run: `run_updated` as it moves on.
    pub async fn for_run(client: &SessionClient, run_id: &str) -> Result<Feed, ClientError> {
        Self::open_query(client, vec![("run_id", run_id.to_owned())]).await
    }

    async fn open_query(
        client: &SessionClient,
        query: Vec<(&'static str, String)>,
    ) -> Result<Feed, ClientError> {
        Ok(Feed {
            events: Self::connect(client, &query).await?,
            ended: VecDeque::new(),
            client: client.clone(),
            query,
        })
    }

    async fn connect(
        client: &SessionClient,
        query: &[(&'static str, String)],
    ) -> Result<Events, ClientError> {
        let mut url = reqwest::Url::parse(&format!("{}/sse", client.base_url()))
            .map_err(|_| ClientError::BadUrl(client.base_url().to_owned()))?;
        url.query_pairs_mut().extend_pairs(query);
        let unreachable = |reason: String| ClientError::Unreachable {
            url: client.base_url().to_owned(),
            reason,
        };
        // No overall timeout: the feed stays open for as long as it is read.
        let http =
            crate::client::http_client(&url, None).map_err(|e| unreachable(e.to_string()))?;
        let response = client
            .authorize(http.get(url))
            .send()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        let status = response.status();
        if !status.is_success() {
            let detail = response.text().await.unwrap_or_default();
            return Err(ClientError::Api {
                status: status.as_u16(),
                detail,
            });
        }
        let events = response
            .bytes_stream()
            .eventsource()
            .map(|item| item.map_err(|e| e.to_string()));
        Ok(Box::pin(events))
    }

    /// The next message; `None` when the feed ended or broke. Messages of
    /// a type this build does not know are skipped. A `resync` (the server
    /// dropped messages this feed had not read yet) opens the feed again,
    /// so the next message is a fresh `init`. A stop request among those
    /// dropped is lost: `ao-stop` then says that the run did not end.
    pub async fn next(&mut self) -> Option<LiveMessage> {
        loop {
            let event = self.events.next().await?.ok()?;
            if event.data.is_empty() {
                continue;
            }
            match serde_json::from_str::<LiveMessage>(&event.data) {
                Ok(LiveMessage::Resync { .. }) => {
                    self.events = Self::connect(&self.client, &self.query).await.ok()?;
                }
                Ok(message) => return Some(message),
                Err(_) => {}
            }
        }
    }

    /// Follows the feed until a run of one of `pending` ends (its session
    /// turns `finished`, or is deleted), and answers that session's id;
    /// `None` when the feed ends first. A session the `init` shows finished
    /// or does not show at all has ended already.
    pub async fn next_end(&mut self, pending: &HashSet<String>) -> Option<String> {
        loop {
            if let Some(id) = self.ended.pop_front() {
                if pending.contains(&id) {
                    return Some(id);
                }
                continue;
            }
            match self.next().await? {
                LiveMessage::Init { sessions } => {
                    let listed: HashSet<&str> =
                        sessions.iter().map(|s| s.session_id.as_str()).collect();
                    let finished = sessions
                        .iter()
                        .filter(|s| s.status == SessionStatus::Finished)
                        .map(|s| s.session_id.clone());
                    let gone = pending
                        .iter()
                        .filter(|id| !listed.contains(id.as_str()))
                        .cloned();
                    self.ended.extend(finished.chain(gone));
                }
                LiveMessage::SessionUpdated { session }
                    if session.status == SessionStatus::Finished
                        && pending.contains(&session.session_id) =>
                {
                    return Some(session.session_id);
                }
                LiveMessage::SessionDeleted { session_id } if pending.contains(&session_id) => {
                    return Some(session_id);
                }
                _ => {}
            }
        }
    }
}
