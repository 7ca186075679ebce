//! `<name>.meta.json`: the session's metadata, readable without the API.

use std::io::Write;
use std::path::Path;

use serde::{Deserialize, Serialize};

use super::{BackupError, SessionFiles};
use crate::worktree::Worktree;

/// What the backups know about a session.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Meta {
    pub session_name: String,
    /// Unknown until the CLI's init line names it.
    pub session_id: Option<String>,
    pub project_dir: String,
    pub created_at: String,
    #[serde(default)]
    pub last_resumed_at: Option<String>,
    /// The agent every run of the session runs (`agent` in the original
    /// system's files).
    #[serde(default, alias = "agent", skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The `--agents-dir` folder the agent came from, searched again by a
    /// resume that is not given one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agents_dir: Option<std::path::PathBuf>,
    /// The CLI's own id for the conversation, when it differs from
    /// `session_id` (Claude Code before 1.0.124 gives a resumed conversation
    /// a new id): what the next resume passes to `--resume`. The session
    /// keeps `session_id` as its identity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The git worktree every run of the session runs in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<Worktree>,
    /// The session whose run started this one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    /// The session this one is a fork of (`ao-fork`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
}

impl Meta {
    /// The id to pass to `--resume`: the CLI's latest for the conversation.
    pub fn conversation(&self) -> Option<&str> {
        self.conversation_id
            .as_deref()
            .or(self.session_id.as_deref())
    }
}

impl SessionFiles {
    /// The metadata, or `None` when there is no meta file.
    pub fn read_meta(&self) -> Result<Option<Meta>, BackupError> {
        read_meta_file(&self.meta_path())
    }

    /// Writes the metadata atomically (a reader sees the old or the new
    /// file, never half of one).
    pub fn write_meta(&self, meta: &Meta) -> Result<(), BackupError> {
        let path = self.meta_path();
        let err = |e| BackupError::new(&path, e);
        self.ensure_dir()?;
        let mut tmp = tempfile::NamedTempFile::new_in(self.dir()).map_err(err)?;
        let json = serde_json::to_vec_pretty(meta).map_err(|e| err(e.into()))?;
        tmp.write_all(&json).map_err(err)?;
        tmp.write_all(b"\n").map_err(err)?;
        tmp.persist(&path).map_err(|e| err(e.error))?;
        Ok(())
    }
}

fn read_meta_file(path: &Path) -> Result<Option<Meta>, BackupError> {
    let bytes = match crate::bounded::read(path, crate::bounded::SETTINGS) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(BackupError::new(path, e)),
    };
    serde_json::from_slice(&bytes).map(Some).map_err(|e| {
        BackupError::new(
            path,
            std::io::Error::new(std::io::ErrorKind::InvalidData, e),
        )
    })
}

/// Every `*.meta.json` in `dir`, sorted by name; unreadable ones as errors.
pub fn list_metas(dir: &Path) -> Result<Vec<Result<Meta, BackupError>>, BackupError> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(BackupError::new(dir, e)),
    };
    let mut paths: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.to_string_lossy().ends_with(".meta.json"))
        .collect();
    paths.sort();
    Ok(paths
        .iter()
        .filter_map(|p| read_meta_file(p).transpose())
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::name::SessionName;

    #[test]
    fn meta_round_trips_and_lists() {
        let dir = tempfile::tempdir().unwrap();
        let files = SessionFiles::new(&dir.path().join("sub"), &SessionName::parse("w1").unwrap());
        assert_eq!(files.read_meta().unwrap(), None);
        let mut meta = Meta {
            session_name: "w1".into(),
            session_id: None,
            project_dir: "/p".into(),
            created_at: "2026-01-01T00:00:00.000Z".into(),
            ..Meta::default()
        };
        files.write_meta(&meta).unwrap();
        meta.session_id = Some("abc".into());
        files.write_meta(&meta).unwrap();
        assert_eq!(files.read_meta().unwrap(), Some(meta.clone()));
        std::fs::write(dir.path().join("sub/bad.meta.json"), b"{").unwrap();
        let listed = list_metas(&dir.path().join("sub")).unwrap();
        assert_eq!(listed.len(), 2);
        assert!(listed[0].is_err(), "bad sorts first");
        assert_eq!(listed[1].as_ref().unwrap(), &meta);
        assert!(list_metas(&dir.path().join("none")).unwrap().is_empty());
    }
}
