//! A project directory whose `ao-*` commands talk to the benchmark's own
//! session manager and run the fake `claude`.

use std::path::Path;
use std::process::Command;

pub struct Env<'a> {
    pub project: &'a Path,
    pub url: &'a str,
    /// The session manager's local token, which decisions need.
    pub token_file: &'a Path,
}

impl Env<'_> {
    /// `program` (one of ours) in the project, with its settings.
    pub fn command(&self, program: &str) -> Command {
        let exe = Path::new(env!("CARGO_BIN_EXE_ao-new")).with_file_name(program);
        let mut cmd = Command::new(exe);
        cmd.current_dir(self.project)
            .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", self.url)
            .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", super::fake::fake_claude())
            .env("AGENT_ORCHESTRATOR_AUTOSTART", "0")
            .env(
                agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
                self.token_file,
            );
        cmd
    }

    /// Runs a command to its end; answers its stdout.
    pub fn run(&self, program: &str, args: &[&str]) -> String {
        let out = self.command(program).args(args).output().expect("run");
        String::from_utf8_lossy(&out.stdout).into_owned()
    }
}

/// `AO_BENCH_RUNS`, or `default`.
pub fn runs(default: usize) -> usize {
    std::env::var("AO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// A temporary project and a session manager of its own, stopped when
/// dropped.
pub struct Bench {
    _dir: tempfile::TempDir,
    pub project: std::path::PathBuf,
    pub url: String,
    token_file: std::path::PathBuf,
    server: std::process::Child,
}

impl Bench {
    pub fn start() -> Bench {
        let dir = tempfile::tempdir().expect("temp dir");
        let project = dir.path().join("project");
        std::fs::create_dir_all(&project).expect("project dir");
        let db = dir.path().join("sm.db");
        let (server, url) = super::common::start_server(&db);
        Bench {
            token_file: super::common::local_token_file(&db),
            _dir: dir,
            project,
            url,
            server,
        }
    }

    pub fn env(&self) -> Env<'_> {
        Env {
            project: &self.project,
            url: &self.url,
            token_file: &self.token_file,
        }
    }
}

impl Drop for Bench {
    fn drop(&mut self) {
        let _ = self.server.kill();
        let _ = self.server.wait();
    }
}
