//! The `claude` child process: spawned in stream-json mode in its own
//! process group (under its guardian, see [`super::guard`]), fed on stdin,
//! read line by line on stdout. Its stderr is drained concurrently (so a
//! noisy CLI never blocks) and its tail kept for error messages.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::task::JoinHandle;

use super::guard::{self, Lifeline};
use super::launch::Launch;

/// The arguments that put the CLI in stream-json mode (DESIGN.md, step 4),
/// with the default permission mode; [`Launch`] adds the rest.
pub const STREAM_JSON_ARGS: [&str; 7] = [
    "--output-format",
    "stream-json",
    "--verbose",
    "--input-format",
    "stream-json",
    "--permission-mode",
    "bypassPermissions",
];

/// Lines of stderr kept for error messages.
const STDERR_TAIL_LINES: usize = 12;
/// Bytes of one stderr line kept.
const STDERR_LINE_MAX: usize = 500;

/// Why the CLI could not be started.
#[derive(Debug, thiserror::Error)]
pub enum SpawnError {
    #[error(
        "cannot find the Claude Code CLI ('{0}'); install it with `npm install -g @anthropic-ai/claude-code`, or pass --claude-path / set AGENT_ORCHESTRATOR_CLAUDE_PATH"
    )]
    NotFound(PathBuf),
    #[error("cannot start {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
}

/// Finds the executable: a path with a slash must exist; a bare name is
/// looked up on PATH. Checked before anything is written for a run.
pub fn locate(program: &Path) -> Result<PathBuf, SpawnError> {
    let executable = |p: &Path| {
        use std::os::unix::fs::PermissionsExt;
        p.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    };
    if program.components().count() > 1 || program.is_absolute() {
        return if executable(program) {
            Ok(program.to_owned())
        } else {
            Err(SpawnError::NotFound(program.to_owned()))
        };
    }
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(program))
        .find(|p| executable(p))
        .ok_or_else(|| SpawnError::NotFound(program.to_owned()))
}

/// A running CLI.
pub struct ClaudeProcess {
    child: Child,
    group: Group,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    stderr: Option<JoinHandle<VecDeque<String>>>,
}

/// The CLI's process group, to signal it while its pipes are borrowed.
#[derive(Debug, Clone)]
pub struct Group {
    pid: Option<Pid>,
    /// Held while the CLI runs under a guardian; dropped, the guardian ends
    /// the CLI and everything it started.
    lifeline: Arc<Mutex<Option<Lifeline>>>,
}

impl Group {
    /// Sends `signal` to every process of the group. SIGKILL of a CLI under
    /// a guardian is the guardian's to deal: it ends the CLI and whatever
    /// its tools started (in sessions of their own, out of the group's
    /// reach), and exits. A second SIGKILL reaches the group itself.
    pub fn signal(&self, signal: Signal) {
        if signal == Signal::SIGKILL
            && let Ok(mut lifeline) = self.lifeline.lock()
            && lifeline.take().is_some()
        {
            return;
        }
        if let Some(pid) = self.pid {
            let _ = kill(Pid::from_raw(-pid.as_raw()), signal);
        }
    }
}

/// How the CLI ended.
#[derive(Debug, Clone)]
pub struct Exit {
    pub status: ExitStatus,
    /// The last lines it wrote to stderr.
    pub stderr_tail: Vec<String>,
}

impl Exit {
    /// The exit code, or `128 + n` when killed by signal `n`.
    pub fn code(&self) -> i64 {
        use std::os::unix::process::ExitStatusExt;
        match (self.status.code(), self.status.signal()) {
            (Some(code), _) => i64::from(code),
            (None, Some(sig)) => 128 + i64::from(sig),
            (None, None) => -1,
        }
    }

    /// The signal that killed it, if one did.
    pub fn signal(&self) -> Option<i32> {
        use std::os::unix::process::ExitStatusExt;
        self.status.signal()
    }

    /// The stderr tail on one line, for a one-line error message.
    pub fn stderr_summary(&self) -> String {
        self.stderr_tail.join(" | ")
    }
}

impl ClaudeProcess {
    /// Starts the CLI in `cwd` with the arguments of `launch`. The prompt is
    /// never on the command line.
    pub fn spawn(program: &Path, cwd: &Path, launch: &Launch) -> Result<ClaudeProcess, SpawnError> {
        let io = |source| SpawnError::Io {
            path: program.to_owned(),
            source,
        };
        let (mut cmd, guardian) = guard::command(program).map_err(io)?;
        cmd.args(launch.args());
        cmd.current_dir(cwd)
            // ao-hook, if the user installed it, leaves runner sessions alone.
            .env(crate::hook::RUNNER_ENV, "1")
            .envs(launch.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // Signals are ours to forward: a Ctrl-C in the terminal reaches
            // the runner, which records the interruption first.
            .process_group(0)
            // A guardian ends all once its lifeline is dropped.
            .kill_on_drop(guardian.is_none());
        let mut child = cmd.spawn().map_err(|source| match source.kind() {
            std::io::ErrorKind::NotFound => SpawnError::NotFound(program.to_owned()),
            _ => SpawnError::Io {
                path: program.to_owned(),
                source,
            },
        })?;
        let lifeline = guardian.map(guard::Pending::started);
        let missing = || io(std::io::Error::other("child pipes missing"));
        let stdin = child.stdin.take().ok_or_else(missing)?;
        let stdout = child.stdout.take().ok_or_else(missing)?;
        let stderr = child.stderr.take().ok_or_else(missing)?;
        let group = Group {
            pid: child.id().map(|id| Pid::from_raw(id as i32)),
            lifeline: Arc::new(Mutex::new(lifeline)),
        };
        Ok(ClaudeProcess {
            child,
            group,
            stdin: Some(stdin),
            stdout: BufReader::with_capacity(256 * 1024, stdout),
            stderr: Some(tokio::spawn(collect_tail(stderr))),
        })
    }

    /// Writes one JSON line to the CLI's stdin. A CLI that has gone away is
    /// not an error here; its exit says what happened.
    pub async fn send(&mut self, message: &Value) {
        let Some(stdin) = &mut self.stdin else { return };
        let mut line = message.to_string().into_bytes();
        line.push(b'\n');
        if stdin.write_all(&line).await.is_err() || stdin.flush().await.is_err() {
            self.stdin = None;
        }
    }

    /// Closes stdin: the CLI ends the session once its turn is done.
    pub fn close_stdin(&mut self) {
        self.stdin = None;
    }

    /// Reads the next stdout line into `buf` (without its newline); false at
    /// end of output. A line longer than [`crate::bounded::LINE`] is an
    /// error: no backup could keep it whole.
    pub async fn next_line(&mut self, buf: &mut Vec<u8>) -> std::io::Result<bool> {
        buf.clear();
        let limit = crate::bounded::LINE as u64 + 1;
        let n = (&mut self.stdout)
            .take(limit)
            .read_until(b'\n', buf)
            .await?;
        if n == 0 {
            return Ok(false);
        }
        if buf.last() == Some(&b'\n') {
            buf.pop();
        }
        if buf.len() > crate::bounded::LINE {
            buf.clear();
            return Err(std::io::Error::new(
                std::io::ErrorKind::FileTooLarge,
                format!(
                    "claude printed a line longer than {}, the most a backup keeps",
                    crate::bounded::size(crate::bounded::LINE as u64)
                ),
            ));
        }
        Ok(true)
    }

    /// The CLI's process group.
    pub fn group(&self) -> Group {
        self.group.clone()
    }

    /// The id of the CLI's process group: the pid of its guardian, or of
    /// the CLI itself when it runs without one.
    pub fn pid(&self) -> Option<u32> {
        self.group.pid.map(|p| p.as_raw() as u32)
    }

    /// Waits for the CLI to exit (stdin is closed first).
    pub async fn wait(&mut self) -> std::io::Result<Exit> {
        self.stdin = None;
        let status = self.child.wait().await?;
        let stderr_tail = match self.stderr.take() {
            Some(task) => task.await.unwrap_or_default().into(),
            None => Vec::new(),
        };
        Ok(Exit {
            status,
            stderr_tail,
        })
    }
}

async fn collect_tail(stderr: tokio::process::ChildStderr) -> VecDeque<String> {
    let mut tail = VecDeque::with_capacity(STDERR_TAIL_LINES);
    let mut reader = BufReader::new(stderr);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bounded reads: a line without newline cannot grow without limit.
        let mut limited = (&mut reader).take(64 * 1024);
        match limited.read_until(b'\n', &mut line).await {
            Ok(0) | Err(_) => return tail,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim();
        if text.is_empty() {
            continue;
        }
        let mut text = text.to_owned();
        if text.len() > STDERR_LINE_MAX {
            let mut end = STDERR_LINE_MAX;
            while !text.is_char_boundary(end) {
                end -= 1;
            }
            text.truncate(end);
            text.push('…');
        }
        if tail.len() == STDERR_TAIL_LINES {
            tail.pop_front();
        }
        tail.push_back(text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn locate_finds_programs_on_path_and_refuses_missing_ones() {
        assert!(locate(Path::new("sh")).is_ok());
        assert!(matches!(
            locate(Path::new("definitely-not-a-program-xyz")),
            Err(SpawnError::NotFound(_))
        ));
        assert!(matches!(
            locate(Path::new("/nonexistent/claude")),
            Err(SpawnError::NotFound(_))
        ));
        let msg = SpawnError::NotFound("claude".into()).to_string();
        assert!(
            msg.contains("npm install -g @anthropic-ai/claude-code"),
            "{msg}"
        );
    }

    #[tokio::test]
    async fn reads_lines_and_keeps_the_stderr_tail() {
        let dir = tempfile::tempdir().unwrap();
        let script = dir.path().join("fake.sh");
        std::fs::write(
            &script,
            "#!/bin/sh\nread line\necho \"got:$line\"\nfor i in $(seq 1 20); do echo \"err $i\" >&2; done\nexit 3\n",
        )
        .unwrap();
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        let mut p = ClaudeProcess::spawn(&script, dir.path(), &Launch::default()).unwrap();
        p.group().signal(Signal::SIGCONT);
        p.send(&serde_json::json!({"a": 1})).await;
        let mut buf = Vec::new();
        assert!(p.next_line(&mut buf).await.unwrap());
        assert_eq!(buf, br#"got:{"a":1}"#);
        assert!(!p.next_line(&mut buf).await.unwrap());
        let exit = p.wait().await.unwrap();
        assert_eq!(exit.code(), 3);
        assert_eq!(exit.stderr_tail.len(), STDERR_TAIL_LINES);
        assert_eq!(exit.stderr_tail.last().unwrap(), "err 20");
    }
}
