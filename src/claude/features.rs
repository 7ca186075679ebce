//! Flags some supported releases lack: `--fork-session` and
//! `--max-budget-usd` came after 1.0.100. A run that needs one first makes
//! sure the CLI has it, so that an old CLI is refused with one line instead
//! of failing on an unknown option: an npm release that runs `cli.js` is
//! asked its code; any other CLI its `--help` (a process start, about
//! 0.4 s for 2.1.329), whose answer is kept per executable (path, size and
//! modification time) in the data directory, so that it is asked once.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::{Deserialize, Serialize};

/// A flag a run needs and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Fork,
    Budget,
}

impl Feature {
    const ALL: [Feature; 2] = [Feature::Fork, Feature::Budget];

    fn flag(self) -> &'static str {
        match self {
            Feature::Fork => "--fork-session",
            Feature::Budget => "--max-budget-usd",
        }
    }

    fn purpose(self) -> &'static str {
        match self {
            Feature::Fork => "a fork",
            Feature::Budget => "a budget",
        }
    }
}

/// Why a run cannot have what it asks for.
#[derive(Debug, thiserror::Error)]
#[error(
    "{purpose} needs a Claude Code release with {flag}; {program} ({version}) has none: install a newer one (npm install -g @anthropic-ai/claude-code) or pass --claude-path"
)]
pub struct Missing {
    purpose: &'static str,
    flag: &'static str,
    program: String,
    version: String,
}

/// Checks that `program` takes the flags of `features`.
pub async fn require(program: &Path, features: &[Feature]) -> Result<(), Missing> {
    let cache = crate::paths::data_dir()
        .ok()
        .map(|dir| dir.join("claude-flags.json"));
    require_with(program, features, cache.as_deref()).await
}

/// [`require`], with the answers of `--help` kept in `cache`.
async fn require_with(
    program: &Path,
    features: &[Feature],
    cache: Option<&Path>,
) -> Result<(), Missing> {
    if features.is_empty() {
        return Ok(());
    }
    let known = match super::release::package_code(program) {
        Some(code) => flags_in(&code),
        None => asked(program, cache).await,
    };
    match features
        .iter()
        .find(|f| !known.iter().any(|k| k == f.flag()))
    {
        None => Ok(()),
        Some(feature) => Err(Missing {
            purpose: feature.purpose(),
            flag: feature.flag(),
            program: program.display().to_string(),
            version: output(program, "--version")
                .await
                .lines()
                .next()
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .unwrap_or("version unknown")
                .to_owned(),
        }),
    }
}

/// The flags of [`Feature::ALL`] that `text` names, as whole words.
fn flags_in(text: &str) -> Vec<String> {
    let words: std::collections::HashSet<&str> = text
        .split(|c: char| !(c.is_ascii_alphanumeric() || c == '-'))
        .collect();
    Feature::ALL
        .iter()
        .map(|f| f.flag())
        .filter(|flag| words.contains(flag))
        .map(str::to_owned)
        .collect()
}

/// What the cache keeps per executable.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Entry {
    len: u64,
    modified_ns: u128,
    flags: Vec<String>,
}

/// The flags `program`'s `--help` names: from `cache` when the executable
/// is the one asked before, else asked (and kept).
async fn asked(program: &Path, cache: Option<&Path>) -> Vec<String> {
    let real = which(program);
    let stamp = real.as_deref().and_then(|p| {
        let meta = std::fs::metadata(p).ok()?;
        let modified = meta
            .modified()
            .ok()?
            .duration_since(std::time::UNIX_EPOCH)
            .ok()?;
        Some((
            p.to_string_lossy().into_owned(),
            meta.len(),
            modified.as_nanos(),
        ))
    });
    let mut kept: BTreeMap<String, Entry> = cache
        .and_then(|c| crate::bounded::read(c, crate::bounded::SETTINGS).ok())
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_default();
    if let Some((key, len, modified_ns)) = &stamp
        && let Some(entry) = kept.get(key)
        && entry.len == *len
        && entry.modified_ns == *modified_ns
    {
        return entry.flags.clone();
    }
    let help = output(program, "--help").await;
    let flags = flags_in(&help);
    if let (Some(cache), Some((key, len, modified_ns)), false) = (cache, stamp, help.is_empty()) {
        kept.insert(
            key,
            Entry {
                len,
                modified_ns,
                flags: flags.clone(),
            },
        );
        keep(cache, &kept);
    }
    flags
}

/// Writes the cache whole (a reader sees the old file or the new one);
/// a cache that cannot be written is only asked again next time.
fn keep(cache: &Path, kept: &BTreeMap<String, Entry>) {
    let Some(dir) = cache.parent() else { return };
    let written = crate::private::create_dir_all(dir)
        .and_then(|()| tempfile::NamedTempFile::new_in(dir))
        .and_then(|mut tmp| {
            use std::io::Write;
            tmp.write_all(&serde_json::to_vec(kept).unwrap_or_default())?;
            tmp.persist(cache).map_err(|e| e.error)?;
            Ok(())
        });
    if let Err(e) = written {
        tracing::debug!(
            "cannot keep what the CLI's --help said in {}: {e}",
            cache.display()
        );
    }
}

/// The executable `program` names: a path as it is, a bare name on PATH.
fn which(program: &Path) -> Option<PathBuf> {
    if program.components().count() > 1 {
        return std::fs::canonicalize(program).ok();
    }
    std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|dir| dir.join(program))
            .find(|p| p.is_file())
            .and_then(|p| std::fs::canonicalize(p).ok())
    })
}

async fn output(program: &Path, arg: &str) -> String {
    tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(program)
            .arg(arg)
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()
    .and_then(Result::ok)
    .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
    .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A CLI whose `--help` names `flags` and counts how often it is asked.
    fn cli(dir: &Path, flags: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = dir.join("claude");
        let count = dir.join("asked");
        std::fs::write(
            &path,
            format!(
                "#!/bin/sh\nif [ \"$1\" = --help ]; then echo x >> {}; echo 'Options: {flags}'; else echo '9.9.9 (Claude Code)'; fi\n",
                count.display()
            ),
        )
        .unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path
    }

    fn asked_times(dir: &Path) -> usize {
        std::fs::read_to_string(dir.join("asked"))
            .map(|t| t.lines().count())
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn help_is_asked_once_per_executable_and_again_when_it_changes() {
        let dir = tempfile::tempdir().unwrap();
        let cache = dir.path().join("data/claude-flags.json");
        let program = cli(dir.path(), "--fork-session  --max-budget-usd <amount>");
        for _ in 0..3 {
            require_with(&program, &[Feature::Fork, Feature::Budget], Some(&cache))
                .await
                .unwrap();
        }
        assert_eq!(asked_times(dir.path()), 1, "asked once, then kept");
        // Another CLI at the same path (an upgrade, a downgrade) is asked again.
        std::thread::sleep(Duration::from_millis(20));
        let program = cli(dir.path(), "--resume");
        let err = require_with(&program, &[Feature::Budget], Some(&cache))
            .await
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("a budget needs a Claude Code release with --max-budget-usd")
                && err.contains("9.9.9 (Claude Code)"),
            "{err}"
        );
        assert_eq!(asked_times(dir.path()), 2);
        // Nothing asked, nothing run.
        require_with(&program, &[], Some(&cache)).await.unwrap();
        assert_eq!(asked_times(dir.path()), 2);
    }

    #[test]
    fn flags_are_whole_words() {
        assert_eq!(
            flags_in("--fork-sessions --max-budget-usd-x"),
            Vec::<String>::new()
        );
        assert_eq!(
            flags_in("  --fork-session   When resuming"),
            ["--fork-session"]
        );
    }
}
