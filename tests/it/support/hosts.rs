//! A real `ao-host` process as another machine would run it: its own HOME
//! and data folder, its own project folder, its own labels, the fake CLI
//! (with its own conversations: a resume on the wrong host finds none), on
//! loopback, presenting the session manager's local token as a remote host
//! is given it. Killed when dropped, and its runners with it.

use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use super::{SessionManager, bin, command};

/// A running `ao-host`.
pub struct HostProc {
    child: Option<Child>,
    root: TempDir,
    /// Its project folder, canonical.
    pub project: PathBuf,
    log: PathBuf,
}

impl HostProc {
    /// Starts host `name` with `labels` and `capacity` for `sm`, serving one
    /// project folder of its own; returns once it has registered.
    pub fn start(sm: &SessionManager, name: &str, labels: &[&str], capacity: u32) -> HostProc {
        Self::start_with(sm, name, labels, capacity, &[])
    }

    /// [`start`](Self::start) with extra arguments.
    pub fn start_with(
        sm: &SessionManager,
        name: &str,
        labels: &[&str],
        capacity: u32,
        extra: &[&str],
    ) -> HostProc {
        let root = tempfile::Builder::new()
            .prefix(&format!("ao-host-{name}-"))
            .tempdir()
            .expect("temp dir");
        let project = root.path().join("project");
        std::fs::create_dir_all(&project).expect("project dir");
        let project = project.canonicalize().expect("canonical project");
        let home = root.path().join("home");
        let log = root.path().join("host.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let mut cmd = command("ao-host");
        cmd.current_dir(&project)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("XDG_CONFIG_HOME", home.join(".config"))
            .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", &sm.url)
            .env("AGENT_ORCHESTRATOR_TOKEN", sm.local_token())
            .env("FAKE_CLAUDE_LOG", root.path().join("fake-log.jsonl"))
            .env("FAKE_CLAUDE_STATE_DIR", root.path().join("fake-state"))
            .env_remove("FAKE_CLAUDE_SCENARIO")
            .args(["--name", name, "--capacity", &capacity.to_string()])
            .arg("--claude-path")
            .arg(bin(super::FAKE_CLAUDE))
            .arg("--project")
            .arg(&project)
            .args(extra);
        for label in labels {
            cmd.args(["--label", label]);
        }
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .expect("start ao-host");
        let line = super::procs::first_line(&mut child, Duration::from_secs(30));
        let host = HostProc {
            child: Some(child),
            root,
            project,
            log,
        };
        assert!(
            line.starts_with(&format!("host {name} registered at ")),
            "ao-host {name} did not register: {line:?}; log:\n{}",
            host.log_text()
        );
        host
    }

    /// The project folder as text, as the API stores it.
    pub fn project_text(&self) -> String {
        self.project.to_string_lossy().into_owned()
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Its log (stderr) so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// What the fake CLI of this host logged, one record per process that ended.
    pub fn fake_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.root.path().join("fake-log.jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("fake log line"))
            .collect()
    }

    /// The backup lines of session `name` on this host, parsed.
    pub fn backup_lines(&self, name: &str) -> Vec<Value> {
        let path = self
            .project
            .join(".agent-orchestrator/agent-sessions")
            .join(format!("{name}.jsonl"));
        std::fs::read_to_string(path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| serde_json::from_str(l).ok())
            .collect()
    }

    /// The pid of the fake CLI of session `name` on this host (it puts it
    /// in its answer to `initialize`, which the backup holds).
    pub fn cli_pid(&self, name: &str) -> Option<i32> {
        self.backup_lines(name)
            .iter()
            .find_map(|line| line["response"]["response"]["pid"].as_i64())
            .map(|p| p as i32)
    }

    /// SIGKILL: no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL);
            let _ = child.wait();
        }
    }

    /// SIGSTOP: alive, but silent (no heartbeat).
    pub fn freeze(&self) {
        let _ = kill(Pid::from_raw(self.pid()), Signal::SIGSTOP);
    }

    /// SIGTERM, and waits: its runs end, it leaves. Answers its exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let mut child = self.child.take()?;
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGCONT);
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        child.wait().ok().and_then(|s| s.code())
    }
}

impl Drop for HostProc {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let pid = Pid::from_raw(child.id() as i32);
            let _ = kill(pid, Signal::SIGCONT);
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
