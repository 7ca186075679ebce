//! Live updates: every change is published once into a backlog bounded in
//! messages and in bytes (`hub`), and each `/ws` or `/sse` client reads it
//! at its own pace. A client that falls so far behind that frames it had
//! not read were dropped is sent a `resync` message with the count it
//! missed, so it is never silently skipped, and it never slows the writer
//! or other clients.
//!
//! Each message is encoded once for all clients (`frame`): the WebSocket
//! text and the SSE event share it. The transports, which are HTTP routes,
//! are in `routes::live`; this module knows neither them nor the store,
//! only the changes the store hands over (`server::changes`).

mod frame;
mod hub;

pub use frame::{Frame, LONG_FRAME, host_topic, run_topic};
pub use hub::{Budget, Hub, Receiver};
