//! Databases and backups made by earlier releases (`tests/fixtures/release-*`),
//! copied where a test may change them.

use std::path::{Path, PathBuf};

/// A copy of one release's database and backups.
pub struct Release {
    _dir: tempfile::TempDir,
    pub db: PathBuf,
    pub sessions: PathBuf,
}

/// Copies `tests/fixtures/NAME` (`session-manager.db` and `agent-sessions/`).
pub fn copy_release(name: &str) -> Release {
    let from = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("session-manager.db");
    std::fs::copy(from.join("session-manager.db"), &db).unwrap();
    let sessions = dir.path().join("agent-sessions");
    std::fs::create_dir_all(&sessions).unwrap();
    for entry in std::fs::read_dir(from.join("agent-sessions")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), sessions.join(entry.file_name())).unwrap();
    }
    Release {
        _dir: dir,
        db,
        sessions,
    }
}
