//! The backup files beside each session, written whether or not the API is
//! up, so no run is ever lost:
//! - `<name>.jsonl`: every stdout line of the CLI, unchanged, after a leading
//!   `user_message` line per run and closed by a `run_completed` line;
//! - `<name>.meta.json`: the session's metadata, rewritten atomically;
//! - `<name>.lock`: held (flock) by the runner while a run is in progress.

mod lines;
mod lock;
mod log;
mod meta;

use std::path::{Path, PathBuf};

pub use lines::{
    BackupLine, ChangesLine, PermissionDecisionLine, RunCompletedLine, UserMessageLine,
};
pub use lock::{LockState, RunLock};
pub use log::{LogLines, LogWriter, read_log};
pub use meta::{Meta, list_metas};

use crate::name::SessionName;

/// A failure reading or writing a backup file; says which file.
#[derive(Debug, thiserror::Error)]
#[error("{path}: {source}")]
pub struct BackupError {
    pub path: PathBuf,
    #[source]
    pub source: std::io::Error,
}

impl BackupError {
    /// True for a file or line past what we read: bad input (exit 2).
    pub fn is_too_large(&self) -> bool {
        crate::bounded::is_too_large(&self.source)
    }

    fn new(path: &Path, source: std::io::Error) -> Self {
        BackupError {
            path: path.to_owned(),
            source,
        }
    }
}

/// The backup files of one session.
#[derive(Debug, Clone)]
pub struct SessionFiles {
    dir: PathBuf,
    name: SessionName,
}

impl SessionFiles {
    /// The files of `name` in `dir` (nothing is touched yet).
    pub fn new(dir: &Path, name: &SessionName) -> Self {
        SessionFiles {
            dir: dir.to_owned(),
            name: name.clone(),
        }
    }

    /// The session's name.
    pub fn name(&self) -> &SessionName {
        &self.name
    }

    /// The folder the files live in.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    fn path(&self, ext: &str) -> PathBuf {
        self.dir.join(format!("{}.{ext}", self.name))
    }

    /// `<dir>/<name>.jsonl`
    pub fn log_path(&self) -> PathBuf {
        self.path("jsonl")
    }

    /// `<dir>/<name>.meta.json`
    pub fn meta_path(&self) -> PathBuf {
        self.path("meta.json")
    }

    /// `<dir>/<name>.lock`
    pub fn lock_path(&self) -> PathBuf {
        self.path("lock")
    }

    /// `<dir>/<name>.log`: the stderr of a detached run.
    pub fn run_log_path(&self) -> PathBuf {
        self.path("log")
    }

    /// True when any backup of this session exists.
    pub fn exist(&self) -> bool {
        self.meta_path().exists() || self.log_path().exists()
    }

    /// Creates the folder if needed; a folder it creates, and the default
    /// one, ignore themselves in git.
    pub fn ensure_dir(&self) -> Result<(), BackupError> {
        let default = self.dir.ends_with(crate::config::DEFAULT_SESSIONS_SUBDIR);
        crate::ignored_dir::create(&self.dir, default).map_err(|e| BackupError::new(&self.dir, e))
    }

    /// Deletes every file of the session; answers how many existed.
    pub fn remove(&self) -> Result<usize, BackupError> {
        let mut removed = 0;
        for path in [
            self.log_path(),
            self.meta_path(),
            self.lock_path(),
            self.run_log_path(),
        ] {
            match std::fs::remove_file(&path) {
                Ok(()) => removed += 1,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(BackupError::new(&path, e)),
            }
        }
        Ok(removed)
    }
}

/// Backup lines and files for the unit tests of the modules that read them.
#[cfg(test)]
pub(crate) mod fixtures {
    use std::path::Path;

    use super::{RunCompletedLine, SessionFiles, UserMessageLine};
    use crate::name::SessionName;
    use crate::wire::RunEndReason;

    /// The files of session `s` in `dir`.
    pub fn files(dir: &Path) -> SessionFiles {
        SessionFiles::new(dir, &SessionName::parse("s").unwrap())
    }

    /// A run's opening line at `ts` (a resume of `resume`, if given).
    pub fn user_line(ts: &str, resume: Option<&str>) -> Vec<u8> {
        UserMessageLine {
            timestamp: ts.into(),
            content: "do it".into(),
            project_dir: "/p".into(),
            resume_session_id: resume.map(str::to_owned),
            ..UserMessageLine::default()
        }
        .to_line()
    }

    /// A run's closing line.
    pub fn end_line(
        ts: &str,
        exit_code: Option<i64>,
        reason: RunEndReason,
        error: Option<&str>,
    ) -> Vec<u8> {
        RunCompletedLine {
            timestamp: ts.into(),
            exit_code,
            reason,
            error: error.map(str::to_owned),
        }
        .to_line()
    }
}
