//! The Claude Code CLI: its stream-json protocol and the child process.

pub mod features;
pub mod figures;
pub mod guard;
pub mod launch;
pub mod process;
mod release;

pub use release::takes_partial_messages;

/// The oldest Claude Code release this one is tested against.
pub const OLDEST_SUPPORTED: &str = "1.0.100";
/// The newest Claude Code release this one is tested against.
pub const NEWEST_SUPPORTED: &str = "2.1.332";

/// Says which CLI was found and which ones this release drives, for an
/// error that may come from a CLI that speaks another protocol. Costs a
/// process start, so it is only asked when something went wrong.
pub async fn version_note(program: &std::path::Path) -> String {
    let found = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        tokio::process::Command::new(program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|out| String::from_utf8_lossy(&out.stdout).trim().to_owned())
    .filter(|v| !v.is_empty())
    .unwrap_or_else(|| "a version it would not tell".to_owned());
    format!(
        "found claude {found}; this release drives Claude Code {OLDEST_SUPPORTED} to {NEWEST_SUPPORTED}"
    )
}
pub mod protocol;
