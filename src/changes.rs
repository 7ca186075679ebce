//! What a run changed in its git checkout, without touching the checkout:
//! a snapshot of the working tree is a git tree written from a temporary
//! copy of the checkout's index (`git add -A` into it, then `git
//! write-tree`), so the user's index and files are left as they are. Two
//! snapshots, one when the run begins and one when it ends, give the files
//! changed (committed by the run or not) and their diff. The same diff
//! between two commits gives a worktree branch against its base.
//!
//! Everything goes through the `git` on PATH, with external diff drivers,
//! text conversion and colour off, so that no setting of the repository
//! runs a program or changes the output.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use crate::wire::{ChangedFile, MAX_DIFF};

/// Why a snapshot or a diff could not be made.
#[derive(Debug, thiserror::Error)]
pub enum ChangesError {
    #[error("git {what} failed: {detail}")]
    Git { what: String, detail: String },
    #[error("cannot run git: {0}")]
    Io(#[from] std::io::Error),
}

/// The working tree of a checkout at one moment, as a git tree.
#[derive(Debug)]
pub struct Snapshot {
    /// The checkout's top folder.
    pub top: PathBuf,
    /// The tree's id.
    pub tree: String,
    /// The temporary index it was written from: the next snapshot starts
    /// from it, so that only files changed since are read again (untracked
    /// ones included, which the checkout's own index does not list).
    index: tempfile::TempDir,
}

impl PartialEq for Snapshot {
    fn eq(&self, other: &Snapshot) -> bool {
        (&self.top, &self.tree) == (&other.top, &other.tree)
    }
}

/// The files changed between two trees or commits, and their diff.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Diff {
    pub files: Vec<ChangedFile>,
    /// The unified diff, at most [`MAX_DIFF`] bytes.
    pub text: String,
    /// The diff was cut.
    pub truncated: bool,
}

fn git(dir: &Path) -> Command {
    let mut cmd = Command::new("git");
    cmd.arg("-C")
        .arg(dir)
        .args(["-c", "core.quotepath=false", "-c", "diff.external="])
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_INDEX_FILE")
        .stdin(Stdio::null());
    cmd
}

/// Runs `cmd`; answers its stdout, or the last line of its stderr as the error.
fn output(mut cmd: Command, what: &str) -> Result<Vec<u8>, ChangesError> {
    let out = cmd.output()?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(ChangesError::Git {
            what: what.to_owned(),
            detail: stderr.trim().lines().last().unwrap_or("").to_owned(),
        });
    }
    Ok(out.stdout)
}

fn text(bytes: Vec<u8>) -> String {
    String::from_utf8_lossy(&bytes).trim_end().to_owned()
}

/// A snapshot of the checkout `dir` is in; `None` when `dir` is in no git
/// work tree (or git is missing).
pub fn snapshot(dir: &Path) -> Result<Option<Snapshot>, ChangesError> {
    let mut probe = git(dir);
    probe.args(["rev-parse", "--show-toplevel", "--git-path", "index"]);
    let out = match probe.stderr(Stdio::null()).output() {
        Ok(out) if out.status.success() => text(out.stdout),
        Ok(_) => return Ok(None),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e.into()),
    };
    let mut lines = out.lines();
    let (Some(top), Some(index)) = (lines.next(), lines.next()) else {
        return Ok(None);
    };
    // The temporary index starts as a copy of the real one, so that files
    // whose stat data did not change are not read again.
    take(PathBuf::from(top), &dir.join(index)).map(Some)
}

impl Snapshot {
    /// The same checkout now.
    pub fn again(&self) -> Result<Snapshot, ChangesError> {
        take(self.top.clone(), &self.index.path().join("index"))
    }
}

/// A snapshot of the checkout at `top`, from a copy of `index`.
fn take(top: PathBuf, index: &Path) -> Result<Snapshot, ChangesError> {
    let scratch = tempfile::Builder::new().prefix("ao-snapshot-").tempdir()?;
    let temp_index = scratch.path().join("index");
    match std::fs::copy(index, &temp_index) {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e.into()),
    }
    let mut add = git(&top);
    add.args(["add", "-A", "--", "."])
        .env("GIT_INDEX_FILE", &temp_index)
        .stdout(Stdio::null());
    output(add, "add -A")?;
    let mut write = git(&top);
    write.arg("write-tree").env("GIT_INDEX_FILE", &temp_index);
    let tree = text(output(write, "write-tree")?);
    Ok(Snapshot {
        top,
        tree,
        index: scratch,
    })
}

/// What changed from `from` to `to` (trees, commits or refs) in the
/// repository of `dir`.
pub fn diff(dir: &Path, from: &str, to: &str) -> Result<Diff, ChangesError> {
    let mut numstat = git(dir);
    numstat.args(["diff", "--no-renames", "--numstat", "-z", from, to, "--"]);
    let files = parse_numstat(&output(numstat, "diff --numstat")?);
    if files.is_empty() {
        return Ok(Diff::default());
    }
    let mut patch = git(dir);
    patch
        .args([
            "diff",
            "--no-renames",
            "--no-color",
            "--no-ext-diff",
            "--no-textconv",
            from,
            to,
            "--",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null());
    let mut child = patch.spawn()?;
    let mut bytes = Vec::new();
    if let Some(stdout) = child.stdout.take() {
        stdout.take(MAX_DIFF as u64 + 1).read_to_end(&mut bytes)?;
    }
    let truncated = bytes.len() > MAX_DIFF;
    if truncated {
        // The rest is not read: git may wait on a full pipe, so end it.
        let _ = child.kill();
        bytes.truncate(MAX_DIFF);
        if let Some(end) = bytes.iter().rposition(|&b| b == b'\n') {
            bytes.truncate(end + 1);
        }
    }
    let status = child.wait()?;
    if !truncated && !status.success() {
        return Err(ChangesError::Git {
            what: "diff".to_owned(),
            detail: format!("exited with {status}"),
        });
    }
    Ok(Diff {
        files,
        text: String::from_utf8_lossy(&bytes).into_owned(),
        truncated,
    })
}

/// `git diff --numstat -z`: `ADDED\tREMOVED\tPATH\0` per file, `-` for the
/// counts of a binary file.
fn parse_numstat(out: &[u8]) -> Vec<ChangedFile> {
    out.split(|&b| b == 0)
        .filter(|entry| !entry.is_empty())
        .filter_map(|entry| {
            let entry = String::from_utf8_lossy(entry);
            let mut parts = entry.splitn(3, '\t');
            let added = parts.next()?.parse().ok();
            let removed = parts.next()?.parse().ok();
            Some(ChangedFile {
                path: parts.next()?.to_owned(),
                added,
                removed,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(dir: &Path, args: &[&str]) {
        let ok = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(args)
            .stdout(Stdio::null())
            .status()
            .unwrap()
            .success();
        assert!(ok, "git {args:?}");
    }

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        run(dir.path(), &["init", "-q", "-b", "main"]);
        run(dir.path(), &["config", "user.email", "t@example.com"]);
        run(dir.path(), &["config", "user.name", "t"]);
        std::fs::write(dir.path().join("a.txt"), "one\ntwo\n").unwrap();
        std::fs::write(dir.path().join("gone.txt"), "bye\n").unwrap();
        run(dir.path(), &["add", "-A"]);
        run(dir.path(), &["commit", "-qm", "first"]);
        dir
    }

    fn index_and_status(dir: &Path) -> (Vec<u8>, String) {
        let index = std::fs::read(dir.join(".git/index")).unwrap();
        let status = Command::new("git")
            .arg("-C")
            .arg(dir)
            .args(["status", "--porcelain"])
            .output()
            .unwrap();
        (index, String::from_utf8(status.stdout).unwrap())
    }

    #[test]
    fn two_snapshots_give_what_changed_and_the_checkout_is_left_alone() {
        let dir = repo();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let before = snapshot(&sub).unwrap().expect("a checkout");
        std::fs::write(dir.path().join("a.txt"), "one\n2\nthree\n").unwrap();
        std::fs::remove_file(dir.path().join("gone.txt")).unwrap();
        std::fs::write(sub.join("new.txt"), "fresh\n").unwrap();
        std::fs::write(dir.path().join("bin.dat"), b"\0\x01\x02").unwrap();
        let state = index_and_status(dir.path());
        let after = snapshot(&sub).unwrap().unwrap();
        assert_eq!(
            index_and_status(dir.path()),
            state,
            "index and files untouched"
        );
        let changed = diff(&after.top, &before.tree, &after.tree).unwrap();
        let files: Vec<(&str, Option<u64>, Option<u64>)> = changed
            .files
            .iter()
            .map(|f| (f.path.as_str(), f.added, f.removed))
            .collect();
        assert_eq!(
            files,
            [
                ("a.txt", Some(2), Some(1)),
                ("bin.dat", None, None),
                ("gone.txt", Some(0), Some(1)),
                ("sub/new.txt", Some(1), Some(0)),
            ]
        );
        assert!(changed.text.contains("+three\n") && changed.text.contains("-bye\n"));
        assert!(!changed.truncated);
        // Committed by the run counts the same.
        run(dir.path(), &["add", "-A"]);
        run(dir.path(), &["commit", "-qm", "second"]);
        let committed = snapshot(dir.path()).unwrap().unwrap();
        assert_eq!(committed.tree, after.tree);
    }

    #[test]
    fn a_huge_diff_is_cut_at_a_line_and_marked() {
        let dir = repo();
        let before = snapshot(dir.path()).unwrap().unwrap();
        let line = "x".repeat(99);
        let big: String = (0..4000).map(|i| format!("{i} {line}\n")).collect();
        std::fs::write(dir.path().join("big.txt"), big).unwrap();
        let after = snapshot(dir.path()).unwrap().unwrap();
        let changed = diff(dir.path(), &before.tree, &after.tree).unwrap();
        assert!(changed.truncated);
        assert!(changed.text.len() <= MAX_DIFF && changed.text.ends_with('\n'));
        assert_eq!(changed.files[0].added, Some(4000), "the counts are whole");
    }

    #[test]
    fn no_checkout_no_snapshot() {
        let dir = tempfile::tempdir().unwrap();
        assert!(snapshot(dir.path()).unwrap().is_none());
    }
}
