//! Agent Orchestrator: hand work to Claude Code in named, resumable sessions,
//! and watch every session live.
//!
//! The library holds all the logic; each `ao-*` binary is a thin `main`.
//! - [`wire`]: the JSON shapes of the session manager's API.
//! - [`server`]: the session manager (`ao-session-manager`).
//! - [`client`]: the typed HTTP client every command uses.
//! - [`commands`]: the query commands (`ao-status`, `ao-get-result`, `ao-list-sessions`,
//!   `ao-clean`, `ao-show-config`).
//! - [`name`]: session names, checked before they touch disk or the API.
//! - [`suggest`]: "did you mean" for a session name nobody knows.
//! - [`paths`]: the user's data directory.

pub mod accounting;
pub mod agents;
pub mod autostart;
pub mod backup;
pub mod bounded;
pub mod changes;
pub mod claude;
pub mod client;
pub mod commands;
pub mod config;
pub mod diag;
pub mod feed;
pub mod hook;
pub mod ignored_dir;
pub mod mcp;
pub mod name;
pub mod paths;
pub mod private;
pub mod record;
pub mod recover;
pub mod report;
pub mod runner;
pub mod server;
pub mod suggest;
pub mod sync;
pub mod token;
pub mod wire;
pub mod worktree;
