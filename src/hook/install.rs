//! Adding (and removing) the `ao-hook` entries in a Claude Code
//! `settings.json`, leaving every other setting and hook as it was.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value, json};

/// The hook events `ao-hook` listens to.
pub const EVENTS: [&str; 5] = [
    "SessionStart",
    "UserPromptSubmit",
    "PreToolUse",
    "PostToolUse",
    "Stop",
];
/// Claude Code's own limit for one hook run, in seconds (ao-hook needs ~2 at most).
const TIMEOUT_SECS: u64 = 5;
/// What marks an entry as ours.
const MARK: &str = "ao-hook";

/// Why the settings file was not changed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    #[error("{path}: {reason}")]
    File { path: PathBuf, reason: String },
}

fn file_error(path: &Path, reason: impl ToString) -> InstallError {
    InstallError::File {
        path: path.to_owned(),
        reason: reason.to_string(),
    }
}

/// The `hooks` settings that run `command` on each event.
pub fn settings(command: &str) -> Value {
    let entry = |matcher: bool| {
        let hook = json!({"type": "command", "command": command, "timeout": TIMEOUT_SECS});
        if matcher {
            json!({"matcher": "*", "hooks": [hook]})
        } else {
            json!({"hooks": [hook]})
        }
    };
    let hooks: Map<String, Value> = EVENTS
        .iter()
        .map(|e| (e.to_string(), json!([entry(e.ends_with("ToolUse"))])))
        .collect();
    json!({ "hooks": hooks })
}

fn is_ours(entry: &Value) -> bool {
    entry
        .get("hooks")
        .and_then(Value::as_array)
        .is_some_and(|hooks| {
            hooks.iter().any(|h| {
                h.get("command")
                    .and_then(Value::as_str)
                    .is_some_and(|c| c.contains(MARK))
            })
        })
}

fn load(path: &Path) -> Result<Option<Map<String, Value>>, InstallError> {
    let text = match crate::bounded::read_to_string(path, crate::bounded::SETTINGS) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(file_error(path, e)),
    };
    if text.trim().is_empty() {
        return Ok(Some(Map::new()));
    }
    match serde_json::from_str(&text) {
        Ok(Value::Object(map)) => Ok(Some(map)),
        Ok(_) => Err(file_error(path, "is not a JSON object; left unchanged")),
        Err(e) => Err(file_error(
            path,
            format!("is not valid JSON ({e}); left unchanged"),
        )),
    }
}

/// Writes `settings` atomically, keeping the previous file as `<path>.bak`.
fn save(path: &Path, settings: &Map<String, Value>, existed: bool) -> Result<(), InstallError> {
    let dir = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| file_error(dir, e))?;
    if existed {
        let backup = path.with_extension("json.bak");
        std::fs::copy(path, &backup).map_err(|e| file_error(&backup, e))?;
    }
    let mut tmp = tempfile::NamedTempFile::new_in(dir).map_err(|e| file_error(dir, e))?;
    let text = serde_json::to_string_pretty(settings).map_err(|e| file_error(path, e))?;
    tmp.write_all(text.as_bytes())
        .and_then(|()| tmp.write_all(b"\n"))
        .map_err(|e| file_error(path, e))?;
    tmp.persist(path).map_err(|e| file_error(path, e.error))?;
    Ok(())
}

/// Adds the hook for every event that does not have it yet; answers the
/// events it was added to.
pub fn install(path: &Path, command: &str) -> Result<Vec<&'static str>, InstallError> {
    let loaded = load(path)?;
    let existed = loaded.is_some();
    let mut root = loaded.unwrap_or_default();
    let ours = settings(command);
    let hooks = root.entry("hooks").or_insert_with(|| json!({}));
    let Some(hooks) = hooks.as_object_mut() else {
        return Err(file_error(
            path,
            "its \"hooks\" is not an object; left unchanged",
        ));
    };
    let mut added = Vec::new();
    for event in EVENTS {
        let list = hooks.entry(event).or_insert_with(|| json!([]));
        let Some(list) = list.as_array_mut() else {
            return Err(file_error(
                path,
                format!("its hooks.{event} is not a list; left unchanged"),
            ));
        };
        if !list.iter().any(is_ours) {
            list.extend(ours["hooks"][event].as_array().cloned().unwrap_or_default());
            added.push(event);
        }
    }
    if !added.is_empty() {
        save(path, &root, existed)?;
    }
    Ok(added)
}

/// Removes every `ao-hook` entry; answers how many were removed.
pub fn uninstall(path: &Path) -> Result<usize, InstallError> {
    let Some(mut root) = load(path)? else {
        return Ok(0);
    };
    let mut removed = 0;
    if let Some(hooks) = root.get_mut("hooks").and_then(Value::as_object_mut) {
        for list in hooks.values_mut().filter_map(Value::as_array_mut) {
            let before = list.len();
            list.retain(|entry| !is_ours(entry));
            removed += before - list.len();
        }
        hooks.retain(|_, list| list.as_array().is_none_or(|l| !l.is_empty()));
    }
    if removed > 0 {
        save(path, &root, true)?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn install_merges_and_uninstall_restores() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join(".claude/settings.json");
        assert_eq!(install(&path, "/bin/ao-hook").unwrap(), EVENTS.to_vec());
        assert!(
            install(&path, "/bin/ao-hook").unwrap().is_empty(),
            "idempotent"
        );

        let theirs = json!({
            "model": "opus",
            "hooks": {"Stop": [{"hooks": [{"type": "command", "command": "notify-send done"}]}]}
        });
        std::fs::write(&path, theirs.to_string()).unwrap();
        install(&path, "/bin/ao-hook").unwrap();
        let merged: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(merged["model"], "opus");
        assert_eq!(
            merged["hooks"]["Stop"].as_array().unwrap().len(),
            2,
            "theirs kept"
        );
        assert_eq!(merged["hooks"]["PostToolUse"][0]["matcher"], "*");
        assert!(dir.path().join(".claude/settings.json.bak").exists());

        assert_eq!(uninstall(&path).unwrap(), 5);
        let back: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
        assert_eq!(back, theirs);
    }

    #[test]
    fn a_broken_settings_file_is_left_alone() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("settings.json");
        std::fs::write(&path, "{ not json").unwrap();
        let err = install(&path, "ao-hook").unwrap_err().to_string();
        assert!(err.contains("not valid JSON"), "{err}");
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "{ not json");
    }
}
