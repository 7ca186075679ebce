//! The command line of `ao-session-manager`.

use std::path::PathBuf;

use clap::Parser;

use super::{DEFAULT_LIVE_BUFFER, DEFAULT_MAX_BODY_BYTES, ServerConfig, Synchronous};
use crate::paths;

/// The session manager: the HTTP API every ao-* command and dashboard talks
/// to, on an embedded SQLite database, with live updates over /ws and /sse.
///
/// Prints `listening on http://HOST:PORT` as its first line on stdout; logs go
/// to stderr (set RUST_LOG=debug for more).
#[derive(Debug, Parser)]
#[command(name = "ao-session-manager", version)]
pub struct ServerArgs {
    /// Address to listen on. Only loopback is private to this machine.
    #[arg(long, env = "AGENT_ORCHESTRATOR_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "AGENT_ORCHESTRATOR_PORT", default_value_t = 8765)]
    pub port: u16,

    /// Database file [default: <data dir>/agent-orchestrator/session-manager.db]
    #[arg(long, env = "AGENT_ORCHESTRATOR_DB")]
    pub db: Option<PathBuf>,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "AGENT_ORCHESTRATOR_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Durability of each commit: `full` survives a power cut, `normal` only a crash of the server.
    #[arg(
        long,
        value_enum,
        env = "AGENT_ORCHESTRATOR_SYNCHRONOUS",
        default_value = "full"
    )]
    pub synchronous: Synchronous,

    /// Messages a live client may fall behind by before it is sent `resync`.
    #[arg(long, env = "AGENT_ORCHESTRATOR_LIVE_BUFFER", default_value_t = DEFAULT_LIVE_BUFFER, hide = true)]
    pub live_buffer: usize,
}

impl ServerArgs {
    /// The server settings these arguments ask for.
    pub fn config(&self) -> Result<ServerConfig, paths::NoDataDir> {
        let db_path = match &self.db {
            Some(path) => path.clone(),
            None => paths::default_db_path()?,
        };
        Ok(ServerConfig {
            db_path,
            synchronous: self.synchronous,
            max_body_bytes: self.max_body_bytes,
            live_buffer: self.live_buffer.max(1),
        })
    }
}
