//! `/ws` and `/sse`: the live hub's messages over WebSocket and as
//! server-sent events. A client that wakes up to several short messages
//! waiting gets them in one write; a long one is sent alone, in pieces of
//! the shared copy, so that a client that does not read holds little more
//! than its place in the backlog.

use axum::body::Bytes;

use crate::server::AppState;
use crate::server::error::ApiError;
use crate::server::live::Receiver;

pub mod sse;
pub mod ws;

/// Messages already waiting that a client is sent in one write, at most...
const MAX_COALESCED: usize = 64;
/// ...and bytes: beyond, each write is copied for one client alone.
const MAX_COALESCED_BYTES: usize = 64 * 1024;

/// The start of the first message of a connection,
/// `{"type":"init","sessions":[...]}`; the session list follows.
const INIT_START: &str = r#"{"type":"init","sessions":"#;

/// Subscribes (once what was answered before is published) first and
/// reads the session list second, so that no change
/// made in between is missed (it may be seen twice, which updates are safe
/// against). The list is the JSON array of the init message.
async fn subscribe_with_snapshot(state: &AppState) -> Result<(Bytes, Receiver), ApiError> {
    state.store.settled().await;
    let rx = state.hub.subscribe();
    let sessions = state
        .snapshots
        .sessions_json(&state.store, &state.hub)
        .await?;
    Ok((sessions, rx))
}
