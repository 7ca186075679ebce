//! The Claude Code CLI: its stream-json protocol and the child process.

pub mod launch;
pub mod process;
pub mod protocol;
