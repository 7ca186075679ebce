//! What the integration tests share: starting the real session manager,
//! temporary folders, plain HTTP helpers that see the raw JSON, projects in
//! which to run the `ao-*` binaries, and the real Claude Code CLI against a
//! mock Anthropic API.

pub mod fuzz;
pub mod http;
pub mod legacy_server;
pub mod live;
pub mod manager;
pub mod memory;
pub mod mock_anthropic;
pub mod project;
pub mod real_claude;
pub mod stalled;

pub use http::Http;
pub use manager::SessionManager;
pub use project::{Output, Project, Running};

use std::path::PathBuf;

/// The path of one of this package's binaries, built by cargo for the tests.
pub fn bin(name: &str) -> PathBuf {
    let var = format!("CARGO_BIN_EXE_{name}");
    std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set; run the tests through cargo"))
}

/// A `Command` for one of our binaries with none of the user's
/// `AGENT_ORCHESTRATOR_*` settings leaking in.
pub fn command(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin(name));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AGENT_ORCHESTRATOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}
