//! Agent Orchestrator: hand work to Claude Code in named, resumable sessions,
//! and watch every session live. The library holds all the logic; each `ao-*`
//! binary is a thin `main`. Its modules, one line each:
//!
//! - [`accounting`]: what runs cost, added up from the backups.
//! - [`agents`]: agent definitions in their two formats, and the settings a run takes from them.
//! - [`autostart`]: starting a local session manager when a command needs one.
//! - [`backup`]: a session's `.jsonl`, `.meta.json` and `.lock` files.
//! - [`bounded`]: reads that stop at a ceiling.
//! - [`claude`]: the Claude Code CLI: its protocol, its process, its guardian, its figures.
//! - [`client`]: the typed HTTP client every command uses.
//! - [`commands`]: the `ao-*` commands other than the runner, one file each.
//! - [`config`]: settings from flags, environment and defaults, with their source.
//! - [`diag`]: one-line messages on stderr and exit codes.
//! - [`feed`]: following the live feed of a few sessions.
//! - [`hook`]: `ao-hook`, Claude Code's command hooks for any session.
//! - [`hosts`]: the machines that run sessions: `ao-host`, and the session manager's own host.
//! - [`ignored_dir`]: folders of ours in a project that git never sees.
//! - [`mcp`]: `ao-mcp`, every capability as MCP tools.
//! - [`name`]: session names, checked before they touch disk or the API.
//! - [`paths`]: the user's data directory, and our programs beside each other.
//! - [`private`]: files only their owner may read.
//! - [`record`]: backup lines to what the session manager must be told.
//! - [`recover`]: closing a run whose runner died.
//! - [`report`]: telling the session manager, safe to repeat.
//! - [`runner`]: `ao-new` and `ao-resume`.
//! - [`server`]: `ao-session-manager`: routes, guard, store, live feed, dashboard.
//! - [`suggest`]: "did you mean" for a session name nobody knows.
//! - [`sync`]: rebuilding the session manager's record from the backups.
//! - [`token`]: the configured and the local token.
//! - [`wire`]: the JSON shapes of the session manager's API.
//! - [`worktree`]: a git worktree and branch per session.

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
pub mod hosts;
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
