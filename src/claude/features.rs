//! Flags some supported releases lack: `--fork-session` and
//! `--max-budget-usd` came after 1.0.100. A run that needs one asks the CLI's
//! `--help` first (one process start, only for such runs), so that an old
//! CLI is refused with one line instead of failing on an unknown option.

use std::path::Path;
use std::time::Duration;

/// A flag a run needs and what it is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Feature {
    Fork,
    Budget,
}

impl Feature {
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
    if features.is_empty() {
        return Ok(());
    }
    let help = output(program, "--help").await;
    match features.iter().find(|f| !help.contains(f.flag())) {
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
