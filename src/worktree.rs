//! A git worktree per session, so that parallel runs editing one project do
//! not overwrite each other: `<project>/.agent-orchestrator/worktrees/NAME`
//! on a new branch `ao/NAME`, hidden from the main checkout through
//! `.git/info/exclude`. Everything goes through the `git` on PATH.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::{Deserialize, Serialize};

use crate::name::SessionName;

/// Where, under the project directory, the worktrees go.
pub const WORKTREES_SUBDIR: &str = ".agent-orchestrator/worktrees";
/// The prefix of the sessions' branches.
pub const BRANCH_PREFIX: &str = "ao/";

/// A session's worktree, as its backups and the API record it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Worktree {
    /// The worktree's folder.
    pub path: PathBuf,
    pub branch: String,
    /// The commit it started from, which "ahead" counts from.
    pub base: String,
    /// Where the CLI runs: the project's place inside the worktree (the
    /// project may be a folder of its repository).
    pub cwd: PathBuf,
}

/// What a worktree holds now.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WorktreeState {
    pub path: PathBuf,
    pub branch: String,
    /// False when its folder is gone.
    pub exists: bool,
    /// Commits on the branch since the base.
    pub ahead: Option<u64>,
    /// Uncommitted changes (`git status --porcelain`).
    pub dirty: bool,
    pub changed_files: Vec<String>,
}

/// What cleaning a worktree did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Removed {
    Removed,
    /// Its folder was already gone; git's record of it was pruned.
    WasMissing,
}

/// Why a worktree cannot be made or used.
#[derive(Debug, thiserror::Error)]
pub enum WorktreeError {
    #[error("--worktree needs git, and there is no git on PATH (install git)")]
    GitMissing,
    #[error(
        "--worktree needs a git repository, and {0} is not in one (run `git init` and commit, or drop --worktree)"
    )]
    NotARepo(PathBuf),
    #[error(
        "--worktree needs a work tree to branch from, and {} is a bare git repository, which has no work tree; run ao-new in a checkout of it (`git clone {} CHECKOUT`), or drop --worktree",
        .0.display(), quoted(.0)
    )]
    Bare(PathBuf),
    #[error("the repository at {0} has no commit yet; commit once before using --worktree")]
    NoCommits(PathBuf),
    #[error("--base '{0}' is not a commit of this repository")]
    BadBase(String),
    #[error(
        "a branch '{0}' already exists; pick another session name, or delete the branch (`git branch -D {0}`)"
    )]
    BranchExists(String),
    #[error(
        "a branch '{branch}' already exists, checked out in the worktree {}; pick another session name, or remove that worktree and the branch, losing what they hold: {}",
        quoted(path), clear_advice(path, branch, *locked)
    )]
    BranchCheckedOut {
        branch: String,
        path: PathBuf,
        locked: bool,
    },
    #[error(
        "the worktree {path} of session '{name}' was left half made by a run killed while git made it; remove it with `ao-clean {name}`, then start the session again",
        path = quoted(.0), name = .1
    )]
    HalfMade(PathBuf, String),
    #[error("{0} already exists; remove it, or pick another session name")]
    FolderExists(PathBuf),
    #[error(
        "the worktree {0} has uncommitted changes ({1}); commit them, or pass --force to discard them"
    )]
    Dirty(PathBuf, String),
    #[error(
        "the worktree {0} is gone (deleted by hand?); run `git worktree prune`, then `ao-clean` the session or restore the folder with `git worktree add {path} {branch}`",
        path = crate::diag::shell_word(&.0.to_string_lossy()),
        branch = crate::diag::shell_word(.1)
    )]
    Missing(PathBuf, String),
    #[error("git {what} failed: {detail}")]
    Git { what: String, detail: String },
}

impl WorktreeError {
    /// Bad input (exit 2), as opposed to a failure (exit 1).
    pub fn is_usage(&self) -> bool {
        !matches!(
            self,
            WorktreeError::Dirty(..)
                | WorktreeError::Missing(..)
                | WorktreeError::HalfMade(..)
                | WorktreeError::Git { .. }
        )
    }
}

/// Runs git in `dir`; answers its trimmed stdout.
fn git(dir: &Path, args: &[&str]) -> Result<String, WorktreeError> {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => WorktreeError::GitMissing,
            _ => WorktreeError::Git {
                what: args.join(" "),
                detail: e.to_string(),
            },
        })?;
    if !out.status.success() {
        let stderr = String::from_utf8_lossy(&out.stderr);
        return Err(WorktreeError::Git {
            what: args.first().copied().unwrap_or("").to_owned(),
            detail: stderr.trim().lines().last().unwrap_or("").to_owned(),
        });
    }
    // Only the end: a porcelain status line may start with a space.
    Ok(String::from_utf8_lossy(&out.stdout).trim_end().to_owned())
}

/// True when git answers `args` with success.
fn git_ok(dir: &Path, args: &[&str]) -> Result<bool, WorktreeError> {
    match git(dir, args) {
        Ok(_) => Ok(true),
        Err(WorktreeError::Git { .. }) => Ok(false),
        Err(e) => Err(e),
    }
}

/// Checks everything that could refuse a worktree for session `name`,
/// without writing anything, and answers the worktree to make.
pub fn plan(
    project_dir: &Path,
    name: &SessionName,
    base: Option<&str>,
) -> Result<Worktree, WorktreeError> {
    let top = match git(project_dir, &["rev-parse", "--show-toplevel"]) {
        Ok(top) => PathBuf::from(top),
        Err(WorktreeError::Git { .. }) => {
            let bare = git(project_dir, &["rev-parse", "--is-bare-repository"]);
            return Err(match bare.as_deref() {
                Ok("true") => WorktreeError::Bare(project_dir.to_owned()),
                _ => WorktreeError::NotARepo(project_dir.to_owned()),
            });
        }
        Err(e) => return Err(e),
    };
    let asked = base.unwrap_or("HEAD");
    let base = match git(
        project_dir,
        &[
            "rev-parse",
            "--verify",
            "--quiet",
            &format!("{asked}^{{commit}}"),
        ],
    ) {
        Ok(sha) => sha,
        Err(WorktreeError::Git { .. }) if base.is_none() => {
            return Err(WorktreeError::NoCommits(top));
        }
        Err(WorktreeError::Git { .. }) => return Err(WorktreeError::BadBase(asked.to_owned())),
        Err(e) => return Err(e),
    };
    let branch = format!("{BRANCH_PREFIX}{name}");
    if git_ok(
        project_dir,
        &[
            "show-ref",
            "--verify",
            "--quiet",
            &format!("refs/heads/{branch}"),
        ],
    )? {
        let reference = format!("refs/heads/{branch}");
        return Err(
            match listed(project_dir)?
                .into_iter()
                .find(|w| w.branch.as_deref() == Some(&reference))
            {
                Some(w) => WorktreeError::BranchCheckedOut {
                    branch,
                    locked: w.locked.is_some(),
                    path: w.path,
                },
                None => WorktreeError::BranchExists(branch),
            },
        );
    }
    let path = project_dir.join(WORKTREES_SUBDIR).join(name.as_str());
    if path.exists() {
        return Err(WorktreeError::FolderExists(path));
    }
    let top = top.canonicalize().unwrap_or(top);
    let inside = project_dir
        .canonicalize()
        .ok()
        .and_then(|p| p.strip_prefix(&top).ok().map(Path::to_owned))
        .unwrap_or_default();
    Ok(Worktree {
        cwd: path.join(inside),
        path,
        branch,
        base,
    })
}

/// Makes the planned worktree: hides the worktrees folder from the main
/// checkout, then `git worktree add -b BRANCH PATH BASE`.
pub fn create(project_dir: &Path, worktree: &Worktree) -> Result<(), WorktreeError> {
    exclude(project_dir)?;
    if let Some(parent) = worktree.path.parent() {
        crate::ignored_dir::create(parent, true).map_err(|e| WorktreeError::Git {
            what: "worktree add".to_owned(),
            detail: format!("{}: {e}", parent.display()),
        })?;
    }
    let path = worktree.path.to_string_lossy();
    git(
        project_dir,
        &[
            "worktree",
            "add",
            "--quiet",
            "-b",
            &worktree.branch,
            &path,
            &worktree.base,
        ],
    )?;
    // A project folder the repository does not track yet.
    std::fs::create_dir_all(&worktree.cwd).map_err(|e| WorktreeError::Git {
        what: "worktree add".to_owned(),
        detail: format!("{}: {e}", worktree.cwd.display()),
    })
}

/// Adds the worktrees folder to `.git/info/exclude` once.
fn exclude(project_dir: &Path) -> Result<(), WorktreeError> {
    let top = PathBuf::from(git(project_dir, &["rev-parse", "--show-toplevel"])?);
    // Relative to the directory git ran in, unless absolute.
    let file = project_dir.join(git(
        project_dir,
        &["rev-parse", "--git-path", "info/exclude"],
    )?);
    let folder = project_dir.join(WORKTREES_SUBDIR);
    let relative = folder
        .strip_prefix(top.canonicalize().unwrap_or(top))
        .map(Path::to_owned)
        .unwrap_or(folder);
    let pattern = format!("/{}/", relative.to_string_lossy());
    let text = std::fs::read_to_string(&file).unwrap_or_default();
    if text.lines().any(|l| l.trim() == pattern) {
        return Ok(());
    }
    let err = |e: std::io::Error| WorktreeError::Git {
        what: "info/exclude".to_owned(),
        detail: format!("{}: {e}", file.display()),
    };
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).map_err(err)?;
    }
    let mut new = text;
    if !new.is_empty() && !new.ends_with('\n') {
        new.push('\n');
    }
    new.push_str(&format!(
        "# the session worktrees of ao-new --worktree\n{pattern}\n"
    ));
    std::fs::write(&file, new).map_err(err)
}

/// The reason `git worktree add` locks a worktree with until it is made:
/// still there, the add was cut short.
const INITIALIZING: &str = "initializing";

/// A worktree as `git worktree list` names it.
struct Listed {
    path: PathBuf,
    /// `refs/heads/...`, when a branch is checked out.
    branch: Option<String>,
    /// The lock's reason (empty when none was given).
    locked: Option<String>,
}

/// The worktrees of the repository `dir` is in.
fn listed(dir: &Path) -> Result<Vec<Listed>, WorktreeError> {
    let text = git(dir, &["worktree", "list", "--porcelain"])?;
    let mut all: Vec<Listed> = Vec::new();
    for line in text.lines() {
        let (key, value) = line.split_once(' ').unwrap_or((line, ""));
        match (key, all.last_mut()) {
            ("worktree", _) => all.push(Listed {
                path: PathBuf::from(value),
                branch: None,
                locked: None,
            }),
            ("branch", Some(w)) => w.branch = Some(value.to_owned()),
            ("locked", Some(w)) => w.locked = Some(value.to_owned()),
            _ => {}
        }
    }
    Ok(all)
}

/// `path` for a shell command line: in single quotes unless plainly safe.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text.into_owned()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// The commands that remove a worktree (and its lock) and then its branch.
fn clear_advice(path: &Path, branch: &str, locked: bool) -> String {
    let exists = path.is_dir();
    let path = quoted(path);
    let worktree = if exists {
        format!("`git worktree remove --force --force {path}`")
    } else if locked {
        format!("`git worktree unlock {path}`, `git worktree prune`")
    } else {
        "`git worktree prune`".to_owned()
    };
    format!("{worktree}, then `git branch -D {branch}`")
}

impl Worktree {
    /// The worktree the API records for a session whose backups are not at
    /// hand (its base is then unknown).
    pub fn of_session(session: &crate::wire::Session) -> Option<Worktree> {
        let path = PathBuf::from(session.worktree.as_ref()?);
        Some(Worktree {
            cwd: path.clone(),
            path,
            branch: session.branch.clone().unwrap_or_default(),
            base: String::new(),
        })
    }

    /// What it holds now: commits ahead of the base, uncommitted changes.
    pub fn state(&self) -> WorktreeState {
        let exists = self.path.is_dir();
        let (ahead, changed_files) = if exists {
            let ahead = (!self.base.is_empty())
                .then(|| {
                    git(
                        &self.path,
                        &["rev-list", "--count", &format!("{}..HEAD", self.base)],
                    )
                    .ok()
                })
                .flatten()
                .and_then(|n| n.parse().ok());
            (ahead, self.changed_files().unwrap_or_default())
        } else {
            (None, Vec::new())
        };
        WorktreeState {
            path: self.path.clone(),
            branch: self.branch.clone(),
            exists,
            ahead,
            dirty: !changed_files.is_empty(),
            changed_files,
        }
    }

    fn changed_files(&self) -> Result<Vec<String>, WorktreeError> {
        let out = git(
            &self.path,
            &["status", "--porcelain", "--untracked-files=all"],
        )?;
        Ok(out
            .lines()
            .filter_map(|l| l.get(3..))
            .map(str::to_owned)
            .collect())
    }

    /// Refuses a worktree whose folder is gone, naming the way back.
    pub fn check_present(&self) -> Result<(), WorktreeError> {
        if self.path.is_dir() {
            Ok(())
        } else {
            Err(WorktreeError::Missing(
                self.path.clone(),
                self.branch.clone(),
            ))
        }
    }

    /// The refusal to remove a worktree with uncommitted changes.
    pub fn check_clean(&self) -> Result<(), WorktreeError> {
        if !self.path.is_dir() {
            return Ok(());
        }
        let files = self.changed_files()?;
        if files.is_empty() {
            return Ok(());
        }
        let mut list = files.iter().take(5).cloned().collect::<Vec<_>>().join(", ");
        if files.len() > 5 {
            list.push_str(&format!(" and {} more", files.len() - 5));
        }
        Err(WorktreeError::Dirty(self.path.clone(), list))
    }

    /// Refuses a worktree that `git worktree add` did not finish (its runner
    /// was killed meanwhile), which no run may use; `name` is its session.
    pub fn check_whole(&self, name: &SessionName) -> Result<(), WorktreeError> {
        match self.listed()? {
            Some(w) if w.locked.as_deref() != Some(INITIALIZING) => Ok(()),
            _ => Err(WorktreeError::HalfMade(self.path.clone(), name.to_string())),
        }
    }

    /// What `git worktree list` says of this worktree, if it names it.
    fn listed(&self) -> Result<Option<Listed>, WorktreeError> {
        // The worktrees folder lies inside the main checkout, so git run
        // there finds the repository.
        let Some(folder) = self.path.parent().filter(|f| f.is_dir()) else {
            return Ok(None);
        };
        let same =
            |p: &Path| p == self.path || p.canonicalize().ok() == self.path.canonicalize().ok();
        Ok(listed(folder)?.into_iter().find(|w| same(&w.path)))
    }

    /// Removes the worktree and keeps its branch; with `force`, discards
    /// uncommitted changes. A folder already gone is pruned from git's list.
    /// A worktree whose `git worktree add` was cut short is unlocked and
    /// removed as it is: it holds nothing of an agent's.
    pub fn remove(&self, force: bool) -> Result<Removed, WorktreeError> {
        let Some(folder) = self.path.parent() else {
            return Ok(Removed::WasMissing);
        };
        let cut_short = self
            .listed()?
            .is_some_and(|w| w.locked.as_deref() == Some(INITIALIZING));
        if cut_short {
            git(
                folder,
                &["worktree", "unlock", &self.path.to_string_lossy()],
            )?;
        }
        if !self.path.is_dir() {
            if folder.is_dir() {
                git(folder, &["worktree", "prune"])?;
            }
            return Ok(Removed::WasMissing);
        }
        let force = force || cut_short;
        if !force {
            self.check_clean()?;
        }
        let path = self.path.to_string_lossy();
        let mut args = vec!["worktree", "remove"];
        if force {
            args.push("--force");
        }
        args.push(&path);
        git(folder, &args)?;
        Ok(Removed::Removed)
    }

    /// Deletes the branch when it has no commit of its own beyond its base
    /// (for a session whose CLI never ran, whose branch can hold nothing);
    /// true when it did. Call once the worktree is removed.
    pub fn delete_branch_if_unused(&self) -> Result<bool, WorktreeError> {
        let Some(folder) = self.path.parent().filter(|f| f.is_dir()) else {
            return Ok(false);
        };
        if self.base.is_empty() {
            return Ok(false);
        }
        let reference = format!("refs/heads/{}", self.branch);
        let own = git(
            folder,
            &[
                "rev-list",
                "--count",
                &format!("{}..{reference}", self.base),
            ],
        );
        if !own.is_ok_and(|n| n == "0") {
            return Ok(false);
        }
        git(folder, &["branch", "--quiet", "-D", &self.branch])?;
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path();
        for args in [
            vec!["init", "--quiet", "-b", "main"],
            vec!["config", "user.email", "t@example.com"],
            vec!["config", "user.name", "t"],
        ] {
            git(p, &args).unwrap();
        }
        std::fs::write(p.join("a.txt"), "one\n").unwrap();
        git(p, &["add", "."]).unwrap();
        git(p, &["commit", "--quiet", "-m", "first"]).unwrap();
        dir
    }

    #[test]
    fn a_worktree_is_made_hidden_counted_and_removed_keeping_its_branch() {
        let dir = repo();
        let project = dir.path().canonicalize().unwrap();
        let name = SessionName::parse("w1").unwrap();
        let wt = plan(&project, &name, None).unwrap();
        assert_eq!(wt.branch, "ao/w1");
        assert_eq!(wt.cwd, wt.path);
        create(&project, &wt).unwrap();
        create(
            &project,
            &plan(&project, &SessionName::parse("w2").unwrap(), None).unwrap(),
        )
        .unwrap();
        assert_eq!(
            git(&project, &["status", "--porcelain"]).unwrap(),
            "",
            "hidden"
        );
        let exclude = std::fs::read_to_string(project.join(".git/info/exclude")).unwrap();
        assert_eq!(
            exclude.matches("/.agent-orchestrator/worktrees/").count(),
            1
        );

        std::fs::write(wt.path.join("a.txt"), "two\n").unwrap();
        let state = wt.state();
        assert!(state.dirty && state.changed_files == ["a.txt"], "{state:?}");
        assert!(matches!(wt.remove(false), Err(WorktreeError::Dirty(..))));
        git(&wt.path, &["commit", "--quiet", "-am", "edit"]).unwrap();
        assert_eq!(wt.state().ahead, Some(1));
        assert_eq!(wt.remove(false).unwrap(), Removed::Removed);
        assert!(!wt.path.exists());
        assert!(
            git_ok(
                &project,
                &["show-ref", "--verify", "--quiet", "refs/heads/ao/w1"]
            )
            .unwrap()
        );
        assert!(matches!(
            plan(&project, &name, None),
            Err(WorktreeError::BranchExists(_))
        ));
    }

    #[test]
    fn bad_input_is_refused_before_anything_is_written() {
        let dir = repo();
        let project = dir.path().canonicalize().unwrap();
        let name = SessionName::parse("w").unwrap();
        assert!(matches!(
            plan(&project, &name, Some("no-such-ref")),
            Err(WorktreeError::BadBase(_))
        ));
        let plain = tempfile::tempdir().unwrap();
        assert!(matches!(
            plan(plain.path(), &name, None),
            Err(WorktreeError::NotARepo(_))
        ));
        let empty = tempfile::tempdir().unwrap();
        git(empty.path(), &["init", "--quiet"]).unwrap();
        assert!(matches!(
            plan(empty.path(), &name, None),
            Err(WorktreeError::NoCommits(_))
        ));
        assert!(!project.join(WORKTREES_SUBDIR).exists());
    }

    #[test]
    fn paths_in_advice_are_quoted_when_a_shell_would_split_them() {
        assert_eq!(quoted(Path::new("/tmp/p-1/.x")), "/tmp/p-1/.x");
        assert_eq!(quoted(Path::new("/tmp/my project")), "'/tmp/my project'");
        assert_eq!(quoted(Path::new("/tmp/it's")), r"'/tmp/it'\''s'");
    }

    #[test]
    fn a_project_inside_a_repository_runs_in_its_place_in_the_worktree() {
        let dir = repo();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        let sub = sub.canonicalize().unwrap();
        let wt = plan(&sub, &SessionName::parse("s").unwrap(), None).unwrap();
        assert_eq!(wt.cwd, wt.path.join("sub"));
    }
}
