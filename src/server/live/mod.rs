//! Live updates: every committed change is published once into a backlog
//! bounded in messages and in bytes (`hub`), and each `/ws` or `/sse` client
//! reads it at its own pace. A client that falls so far behind that frames
//! it had not read were dropped is sent a `resync` message with the count it
//! missed, so it is never silently skipped, and it never slows the writer or
//! other clients.
//!
//! Each message is encoded once for all clients (`frame`): the WebSocket
//! text and the SSE event share it. A client that wakes up to several short
//! messages waiting gets them in one write; a long one is sent alone, in
//! pieces of the shared copy, so that a client that does not read holds
//! little more than its place in the backlog. The transports are in `ws`
//! and `sse`.

use axum::body::Bytes;

use super::AppState;
use super::error::ApiError;

mod frame;
mod hub;
pub mod sse;
pub mod ws;

pub use frame::{Change, Frame, host_topic, run_topic};
use hub::Receiver;
pub use hub::{Budget, Hub};

/// Messages already waiting that a client is sent in one write, at most...
const MAX_COALESCED: usize = 64;
/// ...and bytes: beyond, each write is copied for one client alone.
const MAX_COALESCED_BYTES: usize = 64 * 1024;

/// The start of the first message of a connection,
/// `{"type":"init","sessions":[...]}`; the session list follows.
const INIT_START: &str = r#"{"type":"init","sessions":"#;

/// Subscribes first and reads the session list second, so that no change
/// made in between is missed (it may be seen twice, which updates are safe
/// against). The list is the JSON array of the init message.
async fn subscribe_with_snapshot(state: &AppState) -> Result<(Bytes, Receiver), ApiError> {
    let rx = state.hub.subscribe();
    let sessions = state
        .snapshots
        .sessions_json(&state.store, &state.hub)
        .await?;
    Ok((sessions, rx))
}
