//! What a run changed in its git checkout (`crate::changes`), measured off
//! the run's path where it can be: the first snapshot is taken while the
//! CLI starts (the prompt waits for it, at most [`BEFORE_WAIT`]), the second
//! as soon as the CLI has answered (while it exits), and only the diff
//! between them after.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio::task::JoinHandle;

use crate::backup::ChangesLine;
use crate::changes::{self, ChangesError, Snapshot};
use crate::diag::Diag;
use crate::wire::now_rfc3339;

/// How long the prompt waits for the first snapshot: a larger checkout's
/// snapshot goes on beside the run.
pub const BEFORE_WAIT: Duration = Duration::from_secs(3);

type Taking<T> = JoinHandle<Result<Option<T>, ChangesError>>;

/// The first snapshot, being taken or taken.
enum Before {
    Taking(Taking<Snapshot>),
    Taken(Result<Option<Snapshot>, ChangesError>),
}

/// The two snapshots of one run.
pub struct ChangeWatch {
    before: Option<Before>,
    /// The first snapshot's tree and the second, when they differ.
    after: Option<Taking<(String, Snapshot)>>,
    /// In a worktree session: the commit its branch started from.
    base: Option<String>,
}

impl ChangeWatch {
    /// Starts the first snapshot of the checkout `dir` is in.
    pub fn start(dir: &Path, base: Option<String>) -> ChangeWatch {
        let dir: PathBuf = dir.to_owned();
        ChangeWatch {
            before: Some(Before::Taking(tokio::task::spawn_blocking(move || {
                changes::snapshot(&dir)
            }))),
            after: None,
            base,
        }
    }

    /// Waits (bounded) for the first snapshot: the CLI must not change
    /// anything before it is taken.
    pub async fn ready(&mut self) {
        if let Some(Before::Taking(taking)) = &mut self.before
            && let Ok(taken) = tokio::time::timeout(BEFORE_WAIT, taking).await
        {
            self.before = Some(Before::Taken(taken.unwrap_or(Ok(None))));
        }
    }

    /// The CLI answered: takes the second snapshot while it exits.
    pub fn answered(&mut self) {
        if self.after.is_some() {
            return;
        }
        let Some(before) = self.before.take() else {
            return;
        };
        self.after = Some(tokio::task::spawn(async move {
            let taken = match before {
                Before::Taking(taking) => taking.await.unwrap_or(Ok(None)),
                Before::Taken(taken) => taken,
            };
            let Some(before) = taken? else {
                return Ok(None);
            };
            tokio::task::spawn_blocking(move || {
                let after = before.again()?;
                Ok((after.tree != before.tree).then(|| (before.tree.clone(), after)))
            })
            .await
            .unwrap_or(Ok(None))
        }));
    }

    /// What the run changed, as the backup line to write; `None` when it
    /// changed nothing or runs in no checkout. A failure costs one warning.
    pub async fn finish(mut self, diag: &Diag) -> Option<ChangesLine> {
        self.answered();
        let after = self.after.take()?;
        match after.await {
            Ok(Ok(Some((from, after)))) => {
                let (top, to) = (after.top.clone(), after.tree.clone());
                let diff = tokio::task::spawn_blocking(move || changes::diff(&top, &from, &to))
                    .await
                    .ok()?;
                match diff {
                    Ok(diff) if !diff.files.is_empty() => Some(ChangesLine {
                        timestamp: now_rfc3339(),
                        files: diff.files,
                        diff: diff.text,
                        diff_truncated: diff.truncated,
                        base: self.base,
                    }),
                    Ok(_) => None,
                    Err(e) => {
                        diag.warn(format!("cannot tell what the run changed: {e}"));
                        None
                    }
                }
            }
            Ok(Ok(None)) | Err(_) => None,
            Ok(Err(e)) => {
                diag.warn(format!("cannot tell what the run changed: {e}"));
                None
            }
        }
    }
}
