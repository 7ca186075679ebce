//! Why a query command could not answer, and the exit code each reason
//! gets: callers script on the code and read the one-line reason.

use crate::backup::BackupError;
use crate::client::ClientError;
use crate::config::ConfigError;
use crate::diag::{exit, shell_word};
use crate::name::NameError;
use crate::suggest::did_you_mean;
use crate::sync::SyncError;
use crate::worktree::WorktreeError;

/// A failure of a query command; its `Display` is the one line on stderr.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error(transparent)]
    Config(#[from] ConfigError),
    #[error("no session named '{name}' in {project}{}", did_you_mean(near))]
    Unknown {
        name: String,
        project: String,
        /// The project's session with the nearest name.
        near: Option<String>,
    },
    #[error(
        "no session named '{name}' in {project}, and {} other projects have one ({}); choose one with --project-dir DIR",
        dirs.len(),
        dirs.iter().map(|d| shell_word(d)).collect::<Vec<_>>().join(", ")
    )]
    Ambiguous {
        name: String,
        project: String,
        dirs: Vec<String>,
    },
    #[error("session '{name}' is still running; wait for its run to end with `ao-wait {name}`")]
    Running { name: String },
    #[error(
        "no session named '{name}' in {project} (nor a unique one elsewhere){}",
        did_you_mean(near)
    )]
    UnknownName {
        name: String,
        project: String,
        near: Option<String>,
    },
    #[error("gave up after {seconds}s waiting for: {}", names.join(", "))]
    TimedOut { seconds: f64, names: Vec<String> },
    #[error("not every run completed: {}", ended.join(", "))]
    NotCompleted { ended: Vec<String> },
    #[error("session '{name}' is not running")]
    NotRunning { name: String },
    #[error("cannot stop session '{name}': {reason}")]
    StopFailed { name: String, reason: String },
    #[error("session '{name}' has no result yet")]
    NoResult { name: String },
    #[error("the last run of session '{name}' was interrupted before it produced a result")]
    Interrupted { name: String },
    #[error(
        "the last run of session '{name}' was stopped before it produced a result; continue it with `ao-resume {name}`"
    )]
    Stopped { name: String },
    #[error(
        "the last run of session '{name}' was stopped before the CLI began the conversation; start it again with `ao-new {name}`"
    )]
    StoppedBeforeStart { name: String },
    #[error("the last run of session '{name}' failed: {error}")]
    RunFailed { name: String, error: String },
    #[error(
        "session '{name}' is running{}; wait for it (`ao-wait {name}`), or pass --force to stop it and delete it",
        pid.map(|p| format!(" (runner pid {p})")).unwrap_or_default()
    )]
    CleanRunning { name: String, pid: Option<u32> },
    #[error(
        "session '{name}' is running according to the session manager and no runner of it is known here; pass --force to stop it (through the session manager) and delete it"
    )]
    CleanRemoteRunning { name: String },
    #[error(
        "{count} running session{} not deleted; wait for {}, or pass --force to stop and delete {}",
        if *count == 1 { " was" } else { "s were" },
        if *count == 1 { "it" } else { "them" },
        if *count == 1 { "it" } else { "them" }
    )]
    SkippedRunning { count: usize },
    #[error(
        "{count} session{} could not be deleted (reasons above)",
        if *count == 1 { "" } else { "s" }
    )]
    CleanFailed { count: usize },
    #[error("session '{name}' was not deleted: {source}")]
    CleanWorktree { name: String, source: WorktreeError },
    #[error(transparent)]
    Sync(#[from] SyncError),
    #[error(
        "{count} session{} could not be synced (reasons above)",
        if *count == 1 { "" } else { "s" }
    )]
    SyncFailed { count: usize },
    #[error("no session has backups in {0}")]
    NothingToSync(String),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error(transparent)]
    Dashboard(#[from] crate::commands::dashboard::DashboardError),
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    #[error("nothing is waiting for an answer in session '{name}'")]
    NothingWaiting { name: String },
    #[error(
        "session '{name}' waits for {} requests: {}; name one: `{program} {name} REQUEST_ID`",
        requests.len(),
        requests.join(", ")
    )]
    SeveralWaiting {
        name: String,
        program: &'static str,
        /// `ID (what it asks)` for each.
        requests: Vec<String>,
    },
    /// A decision that does not fit its request; the message says how to give one.
    #[error("{0}")]
    BadDecision(String),
    #[error(
        "{} {} for an answer: see `ao-requests{}`, then answer with `ao-approve`, `ao-deny` or `ao-answer`",
        names.join(", "),
        if names.len() == 1 { "waits" } else { "wait" },
        if names.len() == 1 { format!(" {}", names[0]) } else { String::new() }
    )]
    NeedsInput { names: Vec<String> },
    #[error("cannot write the answer: {0}")]
    Output(String),
    #[error("cannot start: {0}")]
    Runtime(std::io::Error),
}

impl CommandError {
    /// The exit code for this failure: 2 for bad usage or input, else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            CommandError::Name(_) | CommandError::Config(_) | CommandError::UnknownName { .. } => {
                exit::USAGE
            }
            CommandError::TimedOut { .. } => exit::TIMEOUT,
            CommandError::NeedsInput { .. } => exit::NEEDS_INPUT,
            CommandError::SeveralWaiting { .. } | CommandError::BadDecision(_) => exit::USAGE,
            CommandError::Backup(e) | CommandError::Sync(SyncError::Backup(e))
                if e.is_too_large() =>
            {
                exit::USAGE
            }
            CommandError::Client(ClientError::BadUrl(_)) => exit::USAGE,
            _ => exit::FAILED,
        }
    }
}
