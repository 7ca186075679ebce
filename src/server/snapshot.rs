//! The full session list as JSON, kept between changes. Every dashboard that
//! connects (the `init` of `/ws` and `/sse`) and every `GET /sessions`
//! without a filter needs all sessions; while none changes they share one
//! encoded copy instead of each reading and encoding them all again (with
//! 10,000 sessions that is 2 MB and milliseconds of work per client).
//!
//! Freshness: the hub counts the frames that change a session, after
//! their commit and before anyone is told about it. A copy is only reused for
//! a caller that saw the same count, so it holds at least every change
//! announced before the call, and a live client (which subscribes before
//! asking) receives every later change as a broadcast.

use axum::body::Bytes;
use tokio::sync::Mutex;

use super::live::Hub;
use super::store::{Store, StoreError};

#[derive(Default)]
pub struct Snapshots {
    /// The session-change count the copy was read at, and the JSON array.
    sessions: Mutex<Option<(u64, Bytes)>>,
}

impl Snapshots {
    /// `[session, ...]`, newest first. On a database shared with other
    /// replicas, read afresh: their changes reach this one's hub a moment
    /// after they are committed, and a client may have made one through
    /// another replica just before asking this one.
    pub async fn sessions_json(&self, store: &Store, hub: &Hub) -> Result<Bytes, StoreError> {
        if store.is_shared() {
            return Ok(Bytes::from(store.sessions_json().await?));
        }
        let generation = hub.session_changes();
        // Callers wait for one another here, so that clients connecting at
        // once share one read instead of each doing their own.
        let mut cached = self.sessions.lock().await;
        if let Some((at, json)) = cached.as_ref()
            && *at == generation
        {
            return Ok(json.clone());
        }
        *cached = None;
        let json = Bytes::from(store.sessions_json().await?);
        *cached = Some((generation, json.clone()));
        Ok(json)
    }
}
