//! Where the system keeps its own files: the user's data directory
//! (`$XDG_DATA_HOME/agent-orchestrator`, usually `~/.local/share/agent-orchestrator`).

use std::path::PathBuf;

/// The home directory could not be found, so there is no default data directory.
#[derive(Debug, thiserror::Error)]
#[error("cannot find the user's data directory (is HOME set?); pass an explicit path")]
pub struct NoDataDir;

/// `~/.local/share/agent-orchestrator` or its XDG equivalent.
pub fn data_dir() -> Result<PathBuf, NoDataDir> {
    directories::ProjectDirs::from("", "", "agent-orchestrator")
        .map(|dirs| dirs.data_dir().to_owned())
        .ok_or(NoDataDir)
}

/// The session manager's database when `--db` is not given.
pub fn default_db_path() -> Result<PathBuf, NoDataDir> {
    Ok(data_dir()?.join("session-manager.db"))
}

/// Where an auto-started session manager writes its log.
pub fn server_log_path() -> Result<PathBuf, NoDataDir> {
    Ok(data_dir()?.join("session-manager.log"))
}

/// Our program `name`: the one beside this executable (so that one install
/// is used throughout), else the one on PATH.
pub fn sibling_program(name: &str) -> PathBuf {
    std::env::current_exe()
        .ok()
        .map(|exe| exe.with_file_name(name))
        .filter(|p| p.is_file())
        .unwrap_or_else(|| PathBuf::from(name))
}
