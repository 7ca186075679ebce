//! Git repositories for tests: the `git` on PATH in a folder, and a
//! repository with one commit.

use std::path::Path;
use std::process::Command;

/// Runs git in `dir`; answers its trimmed stdout, failing on an error.
#[track_caller]
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// Makes `dir` a repository on branch `main` with `file` (holding `text`)
/// committed.
pub fn repository(dir: &Path, file: &str, text: &str) {
    git(dir, &["init", "--quiet", "-b", "main"]);
    git(dir, &["config", "user.email", "test@example.com"]);
    git(dir, &["config", "user.name", "test"]);
    std::fs::write(dir.join(file), text).unwrap();
    git(dir, &["add", file]);
    git(dir, &["commit", "--quiet", "-m", "base"]);
}
