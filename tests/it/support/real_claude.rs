//! The real Claude Code CLI (pinned 2.1.329), run offline against
//! [`MockAnthropic`](super::mock_anthropic::MockAnthropic).
//!
//! Where it is looked for, in order: env `AO_TEST_CLAUDE` (a path);
//! `<repo>/.ci/cache/claude/node_modules/.bin/claude`;
//! `<repo>/.ci/cache/claude/node_modules/@anthropic-ai/claude-code/bin/claude.exe`
//! (CI installs it with `npm install --prefix .ci/cache/claude
//! @anthropic-ai/claude-code@2.1.329`). When it is missing a test skips, unless
//! `AO_REQUIRE_REAL_CLAUDE=1` (CI), which makes it fail.
//!
//! What the CLI needs to run offline (found by experiment): an empty HOME is
//! enough, no onboarding state; `CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC=1`
//! leaves `POST /v1/messages` as its only network traffic (without it, it
//! also sends `HEAD /api/hello` to the base URL); `IS_SANDBOX=1` because
//! under root it refuses `--permission-mode bypassPermissions` otherwise.
//! Sessions are stored under `$HOME/.claude/projects/<cwd with / as ->/`, so
//! a resume must use the same HOME (2.1.329 also finds a session resumed
//! from another working directory). A run takes about 0.5 to 2 s.

use std::path::{Path, PathBuf};
use std::process::Command;

use tempfile::TempDir;

use super::mock_anthropic::MockAnthropic;

/// The env variable naming the CLI to test against.
pub const CLAUDE_ENV: &str = "AO_TEST_CLAUDE";
/// Set to `1` to fail, rather than skip, when the CLI is missing.
pub const REQUIRE_ENV: &str = "AO_REQUIRE_REAL_CLAUDE";

/// The stream-json arguments DESIGN.md prescribes (add `--resume ID` to resume).
pub use agent_orchestrator::claude::process::STREAM_JSON_ARGS;

/// The located CLI and a fresh HOME for it (removed when dropped). Keep one
/// `RealClaude` for runs that must see each other's sessions (resume).
pub struct RealClaude {
    pub path: PathBuf,
    pub home: TempDir,
}

impl RealClaude {
    /// The CLI with a fresh HOME; `None` (after a note on stderr) when the
    /// CLI is not installed and `AO_REQUIRE_REAL_CLAUDE` is not `1`.
    /// Use as `let Some(claude) = RealClaude::locate() else { return };`.
    pub fn locate() -> Option<Self> {
        match find_cli() {
            Some(path) => Some(RealClaude {
                path,
                home: tempfile::Builder::new()
                    .prefix("ao-claude-home-")
                    .tempdir()
                    .expect("temp HOME for claude"),
            }),
            None if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") => panic!(
                "{REQUIRE_ENV}=1 but the real Claude Code CLI was not found: \
                 set {CLAUDE_ENV} to its path or run \
                 `npm install --prefix .ci/cache/claude @anthropic-ai/claude-code@2.1.329` \
                 in the repository (looked in: {})",
                candidates()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            None => {
                eprintln!("skipping: real Claude Code CLI not found (set {CLAUDE_ENV})");
                None
            }
        }
    }

    /// Claude Code `version` as CI installs it beside the pinned one
    /// (`.ci/cache/claude-<version>`), with a fresh HOME. Skips (or fails
    /// under `AO_REQUIRE_REAL_CLAUDE=1`) like [`locate`](Self::locate).
    pub fn locate_version(version: &str) -> Option<Self> {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
            ".ci/cache/claude-{version}/node_modules/.bin/claude"
        ));
        if path.is_file() {
            return Some(RealClaude {
                path,
                home: tempfile::Builder::new()
                    .prefix("ao-claude-home-")
                    .tempdir()
                    .expect("temp HOME for claude"),
            });
        }
        if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
            panic!(
                "{REQUIRE_ENV}=1 but Claude Code {version} is not at {}: run \
                 `npm install --prefix .ci/cache/claude-{version} @anthropic-ai/claude-code@{version}`",
                path.display()
            );
        }
        eprintln!(
            "skipping: Claude Code {version} not found at {}",
            path.display()
        );
        None
    }

    /// Whether this CLI takes `flag` (its `--help` names it): older releases
    /// lack some of what agents use (`--tools` and `--json-schema` are newer
    /// than 1.0.100). A test of such a feature skips, with a note, on a CLI
    /// without it.
    pub fn supports(&self, flag: &str) -> bool {
        let help = Command::new(&self.path)
            .arg("--help")
            .env("HOME", self.home())
            .output()
            .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
            .unwrap_or_default();
        let found = help
            .split(|c: char| c.is_whitespace() || c == ',')
            .any(|w| w == flag);
        if !found {
            eprintln!("skipping: {} has no {flag}", self.path.display());
        }
        found
    }

    /// [`locate`](Self::locate), and a mock API for the CLI to talk to.
    /// Use as `let Some((claude, mock)) = RealClaude::with_mock() else { return };`.
    pub fn with_mock() -> Option<(Self, MockAnthropic)> {
        Some((Self::locate()?, MockAnthropic::start()))
    }

    /// The HOME the CLI runs with.
    pub fn home(&self) -> &Path {
        self.home.path()
    }

    /// The complete environment for the CLI talking to the mock API at
    /// `base_url`: use it with `env_clear()` (as [`command`](Self::command)
    /// does), so that no `CLAUDE_*`, `ANTHROPIC_*` or proxy settings of the
    /// user leak in. To spawn a program that spawns the CLI (the runner),
    /// `cmd.env_clear().envs(claude.env(url))`, then add that program's own.
    pub fn env(&self, base_url: &str) -> Vec<(String, String)> {
        let home = self.home();
        let tmp = home.join("tmp");
        // The CLI keeps per-session scratch files and its messaging socket in
        // CLAUDE_CODE_TMPDIR (default /tmp/claude-<uid>).
        std::fs::create_dir_all(&tmp).expect("tmp dir in claude HOME");
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        let mut env = vec![
            ("ANTHROPIC_BASE_URL", base_url.to_owned()),
            ("ANTHROPIC_API_KEY", "test-key".to_owned()),
            ("CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC", "1".to_owned()),
            ("DISABLE_AUTOUPDATER", "1".to_owned()),
            ("DISABLE_TELEMETRY", "1".to_owned()),
            ("DISABLE_ERROR_REPORTING", "1".to_owned()),
            ("IS_SANDBOX", "1".to_owned()),
            ("HOME", path(home.to_owned())),
            ("CLAUDE_CODE_TMPDIR", path(tmp.clone())),
            ("TMPDIR", path(tmp)),
            ("XDG_CONFIG_HOME", path(home.join(".config"))),
            ("XDG_CACHE_HOME", path(home.join(".cache"))),
            ("XDG_DATA_HOME", path(home.join(".local/share"))),
            ("XDG_STATE_HOME", path(home.join(".local/state"))),
        ];
        for key in ["PATH", "LANG", "LC_ALL", "USER", "LOGNAME", "SHELL"] {
            if let Ok(value) = std::env::var(key) {
                env.push((key, value));
            }
        }
        env.into_iter().map(|(k, v)| (k.to_owned(), v)).collect()
    }

    /// A `Command` for the CLI with [`env`](Self::env) and nothing else
    /// inherited; no arguments, stdio and cwd left to the caller.
    pub fn command(&self, base_url: &str) -> Command {
        let mut cmd = Command::new(&self.path);
        cmd.env_clear().envs(self.env(base_url));
        cmd
    }

    /// The command the runner spawns: `claude <STREAM_JSON_ARGS> [--resume ID]`
    /// in `cwd`, with stdin, stdout and stderr piped.
    pub fn stream_json_command(&self, base_url: &str, cwd: &Path, resume: Option<&str>) -> Command {
        let mut cmd = self.command(base_url);
        cmd.args(STREAM_JSON_ARGS);
        if let Some(id) = resume {
            cmd.args(["--resume", id]);
        }
        cmd.current_dir(cwd)
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped());
        cmd
    }
}

/// Where the CLI may be, in the order they are tried (env first).
fn candidates() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let modules = repo.join(".ci/cache/claude/node_modules");
    let mut list = Vec::new();
    if let Some(path) = std::env::var_os(CLAUDE_ENV).filter(|p| !p.is_empty()) {
        list.push(PathBuf::from(path));
    }
    list.push(modules.join(".bin/claude"));
    list.push(modules.join("@anthropic-ai/claude-code/bin/claude.exe"));
    list
}

/// The path of the real CLI, if one is installed. A set `AO_TEST_CLAUDE`
/// that names no file is a mistake and panics.
pub fn find_cli() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os(CLAUDE_ENV).filter(|p| !p.is_empty()) {
        let path = PathBuf::from(path);
        assert!(
            path.is_file(),
            "{CLAUDE_ENV}={} does not name a file",
            path.display()
        );
        return Some(path);
    }
    candidates().into_iter().find(|p| p.is_file())
}
