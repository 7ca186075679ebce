//! A temporary project in which tests run the `ao-*` binaries as a user
//! would: the project directory as cwd, its own HOME and data directory, a
//! chosen session manager URL, no autostart, and `ao-fake-claude` as the
//! `claude` CLI. Nothing of the user's environment leaks in.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use super::{bin, command};

/// How long one command may take before the test gives up on it. A safety
/// net against a hung test run, not a timing assertion.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// How long `wait_for` polls.
const WAIT_LIMIT: Duration = Duration::from_secs(30);

/// What a finished command printed and how it exited.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when killed by a signal.
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Output {
    /// The stderr lines (there are none when stderr is empty).
    pub fn stderr_lines(&self) -> Vec<&str> {
        self.stderr.lines().collect()
    }

    /// Asserts exit 0 and nothing on stderr; answers stdout without its
    /// final newline.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        assert_eq!(self.stderr, "", "expected a quiet stderr: {self:?}");
        self.stdout.strip_suffix('\n').unwrap_or(&self.stdout)
    }

    /// Asserts exit `code`, an empty stdout and exactly one stderr line;
    /// answers that line.
    #[track_caller]
    pub fn fails(&self, code: i32) -> &str {
        assert_eq!(self.code, Some(code), "expected exit {code}: {self:?}");
        assert_eq!(self.stdout, "", "a failure prints no answer: {self:?}");
        let lines = self.stderr_lines();
        assert_eq!(lines.len(), 1, "expected one stderr line: {self:?}");
        lines[0]
    }
}

/// A project directory with its own environment for the `ao-*` binaries.
pub struct Project {
    root: TempDir,
    /// The project directory, canonical (as the API stores it).
    pub dir: PathBuf,
    url: String,
    env: Vec<(String, String)>,
}

impl Project {
    /// A new empty project talking to the session manager at `url`.
    pub fn new(url: &str) -> Project {
        let root = tempfile::tempdir().expect("temp dir");
        let dir = root.path().join("project");
        std::fs::create_dir_all(&dir).expect("project dir");
        let dir = dir.canonicalize().expect("canonical project dir");
        Project {
            root,
            dir,
            url: url.to_owned(),
            env: Vec::new(),
        }
    }

    /// The project directory as text, as the API stores it.
    pub fn dir_text(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// Points the commands at another session manager (or a dead address).
    pub fn set_url(&mut self, url: &str) {
        self.url = url.to_owned();
    }

    /// Sets an extra environment variable for every command from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// `<project>/.agent-orchestrator/agent-sessions`
    pub fn sessions_dir(&self) -> PathBuf {
        self.dir.join(".agent-orchestrator/agent-sessions")
    }

    /// The path of one backup file of `name` (`ext`: `jsonl`, `meta.json`, `lock`).
    pub fn backup(&self, name: &str, ext: &str) -> PathBuf {
        self.sessions_dir().join(format!("{name}.{ext}"))
    }

    /// The session's `.meta.json`, parsed; `None` when missing or unreadable.
    pub fn meta(&self, name: &str) -> Option<Value> {
        let bytes = std::fs::read(self.backup(name, "meta.json")).ok()?;
        serde_json::from_slice(&bytes).ok()
    }

    /// The session id the backups recorded for `name`.
    pub fn session_id(&self, name: &str) -> Option<String> {
        self.meta(name)?["session_id"].as_str().map(str::to_owned)
    }

    /// The lines of the session's `.jsonl`, parsed (unparsable ones as strings).
    pub fn log(&self, name: &str) -> Vec<Value> {
        std::fs::read_to_string(self.backup(name, "jsonl"))
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_owned())))
            .collect()
    }

    /// A command for one of our binaries, set up for this project.
    pub fn command(&self, name: &str) -> Command {
        let home = self.root.path().join("home");
        let mut cmd = command(name);
        cmd.current_dir(&self.dir)
            .env("HOME", &home)
            .env("XDG_DATA_HOME", home.join(".local/share"))
            .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", &self.url)
            .env("AGENT_ORCHESTRATOR_AUTOSTART", "0")
            .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", bin("ao-fake-claude"))
            .env_remove("FAKE_CLAUDE_SCENARIO")
            .env_remove("FAKE_CLAUDE_STATE_DIR")
            .env_remove("FAKE_CLAUDE_LOG");
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs `name args...` with `stdin` (closed when `None`) to completion.
    pub fn ao(&self, name: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let child = self.spawn(name, args, stdin, true);
        finish(child, name)
    }

    /// Starts `name args...` in the background with `stdin`; its output is
    /// discarded. Stop it with `signal`.
    pub fn spawn_background(&self, name: &str, args: &[&str], stdin: Option<&str>) -> Child {
        self.spawn(name, args, stdin, false)
    }

    fn spawn(&self, name: &str, args: &[&str], stdin: Option<&str>, capture: bool) -> Child {
        let out = || {
            if capture {
                Stdio::piped()
            } else {
                Stdio::null()
            }
        };
        let mut child = self
            .command(name)
            .args(args)
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(out())
            .stderr(out())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
            let text = text.to_owned();
            // A writer thread, so a child that does not read cannot block us.
            std::thread::spawn(move || {
                let _ = pipe.write_all(text.as_bytes());
            });
        }
        child
    }
}

/// Waits for `child` (bounded) and collects what it printed.
fn finish(mut child: Child, name: &str) -> Output {
    let reader = |pipe: Option<Box<dyn Read + Send>>| {
        std::thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = reader(
        child
            .stdout
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let stderr = reader(
        child
            .stderr
            .take()
            .map(|p| Box::new(p) as Box<dyn Read + Send>),
    );
    let deadline = Instant::now() + COMMAND_LIMIT;
    let status = loop {
        match child.try_wait().expect("wait") {
            Some(status) => break status,
            None if Instant::now() > deadline => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("{name} did not finish within {COMMAND_LIMIT:?}");
            }
            None => std::thread::sleep(Duration::from_millis(5)),
        }
    };
    Output {
        code: status.code(),
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
    }
}

/// Sends `signal` to a background child and waits for it; answers its
/// exit code (`None` when the signal killed it).
pub fn signal(child: &mut Child, signal: Signal) -> Option<i32> {
    let _ = kill(Pid::from_raw(child.id() as i32), signal);
    child.wait().expect("wait").code()
}

/// Polls `check` until it holds; panics after a generous limit, naming `what`.
#[track_caller]
pub fn wait_for(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !check() {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The pid of the `claude` process a run started, from the answer to the
/// `initialize` request the backup kept (the fake puts its pid there).
pub fn claude_pid(log: &[Value]) -> Option<i32> {
    log.iter()
        .find_map(|line| line["response"]["response"]["pid"].as_i64())
        .map(|pid| pid as i32)
}

/// Kills a process by pid (ignoring a process that is already gone).
pub fn kill_pid(pid: i32) {
    let _ = kill(Pid::from_raw(pid), Signal::SIGKILL);
}
