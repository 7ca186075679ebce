//! Files only their owner may read. The database and the backups hold
//! prompts, tool outputs and answers: what we create is 0600, folders 0700.
//! What already exists keeps its mode (the user chose it), but
//! `ao-show-config` reports anything wider.

use std::fs::{DirBuilder, OpenOptions};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use serde::Serialize;

/// The mode of the files we create.
pub const FILE_MODE: u32 = 0o600;
/// The mode of the folders we create.
pub const DIR_MODE: u32 = 0o700;

/// Creates `path` and its missing parents, each 0700.
pub fn create_dir_all(path: &Path) -> std::io::Result<()> {
    DirBuilder::new()
        .recursive(true)
        .mode(DIR_MODE)
        .create(path)
}

/// Options that create a file 0600.
pub fn open_options() -> OpenOptions {
    let mut options = OpenOptions::new();
    options.mode(FILE_MODE);
    options
}

/// A file or folder that other users may read or enter.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WideMode {
    pub path: PathBuf,
    /// Its permission bits, as `0644`.
    pub mode: String,
    /// What we would have created it with.
    pub expected: String,
}

impl WideMode {
    /// One line: what is wrong and the command that fixes it.
    pub fn warning(&self) -> String {
        format!(
            "{} has mode {}, so other users of this machine can read it; run: chmod {} '{}'",
            self.path.display(),
            self.mode,
            self.expected.trim_start_matches('0'),
            self.path.display()
        )
    }
}

/// `path` when it exists with group or other permission bits set.
pub fn wide_mode(path: &Path) -> Option<WideMode> {
    let meta = std::fs::metadata(path).ok()?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 == 0 {
        return None;
    }
    let expected = if meta.is_dir() { DIR_MODE } else { FILE_MODE };
    Some(WideMode {
        path: path.to_owned(),
        mode: format!("{mode:04o}"),
        expected: format!("{expected:04o}"),
    })
}

/// `dir` and the files directly in it whose name ends in one of `suffixes`,
/// where they are wider than ours.
pub fn wide_in(dir: &Path, suffixes: &[&str]) -> Vec<WideMode> {
    let mut found: Vec<WideMode> = wide_mode(dir).into_iter().collect();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    let mut files: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| suffixes.iter().any(|s| n.ends_with(s)))
        })
        .collect();
    files.sort();
    found.extend(files.iter().filter_map(|p| wide_mode(p)));
    found
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn what_we_create_is_private_and_wider_modes_are_found() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("a/b");
        create_dir_all(&dir).unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&dir), 0o700);
        assert_eq!(mode(&tmp.path().join("a")), 0o700);
        let file = dir.join("x.jsonl");
        open_options()
            .create(true)
            .append(true)
            .open(&file)
            .unwrap()
            .write_all(b"{}\n")
            .unwrap();
        assert_eq!(mode(&file), 0o600);
        assert!(wide_in(&dir, &[".jsonl"]).is_empty());

        std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
        std::fs::write(dir.join("other.txt"), "").unwrap();
        std::fs::set_permissions(
            dir.join("other.txt"),
            std::fs::Permissions::from_mode(0o644),
        )
        .unwrap();
        let wide = wide_in(&dir, &[".jsonl"]);
        assert_eq!(wide.len(), 1, "{wide:?}");
        assert_eq!(wide[0].mode, "0644");
        assert!(
            wide[0].warning().contains("chmod 600"),
            "{}",
            wide[0].warning()
        );
    }
}
