//! Folders of ours inside a project that git must never offer to commit
//! (backups hold transcripts and tool output, possibly secrets; worktrees
//! are checkouts of their own): each holds a `.gitignore` of `*`, as
//! pytest's and ruff's caches do, so it ignores itself wherever the project
//! is cloned, with no change to the project's own ignore files.

use std::path::Path;

/// What the `.gitignore` of such a folder holds.
const IGNORE_ALL: &str = "# Written by agent-orchestrator: this folder is not for git.\n*\n";

/// Creates `dir` (0700) if needed; when this call created it, or it is
/// `mine` (a folder only we ever make, such as the default backups folder),
/// makes it ignore itself. A `.gitignore` that cannot be written (a
/// read-only folder) is left out: it never fails the caller.
pub fn create(dir: &Path, mine: bool) -> std::io::Result<()> {
    let existed = dir.is_dir();
    crate::private::create_dir_all(dir)?;
    if !existed || mine {
        let file = dir.join(".gitignore");
        if !file.exists() {
            let _ = std::fs::write(file, IGNORE_ALL);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_folder_it_makes_ignores_itself_and_one_it_finds_is_left_alone() {
        let root = tempfile::tempdir().unwrap();
        let made = root.path().join("a/b");
        create(&made, false).unwrap();
        assert_eq!(
            std::fs::read_to_string(made.join(".gitignore")).unwrap(),
            IGNORE_ALL
        );
        let users = root.path().join("users");
        std::fs::create_dir(&users).unwrap();
        create(&users, false).unwrap();
        assert!(!users.join(".gitignore").exists(), "not ours to hide");
        create(&users, true).unwrap();
        assert!(users.join(".gitignore").exists(), "ours after all");
        std::fs::write(made.join(".gitignore"), "custom\n").unwrap();
        create(&made, true).unwrap();
        assert_eq!(
            std::fs::read_to_string(made.join(".gitignore")).unwrap(),
            "custom\n",
            "a user's own file stays"
        );
    }
}
