//! Runs through the runner's own programs, `ao-new` and `ao-resume`: each
//! run is a process of its own, exactly as from a shell, so it holds its
//! session's lock, outlives a client that goes away, and stops as `ao-stop`
//! stops it. A run waited for reports its tool calls as MCP progress, read
//! from its backup as it grows.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use rmcp::model::{ProgressNotificationParam, ProgressToken};
use rmcp::{Peer, RoleServer};
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use crate::backup::BackupLine;
use crate::claude::protocol::CliLine;
use crate::config::{CommonArgs, Config};

/// How often a waited-for run's backup is read for tool calls.
const PROGRESS_EVERY: Duration = Duration::from_millis(200);
/// How long a cancelled run may take to stop before we answer anyway.
const STOP_WAIT: Duration = Duration::from_secs(20);

/// One run to make.
pub struct RunSpec {
    pub resume: bool,
    pub name: String,
    pub prompt: String,
    pub agent: Option<String>,
    pub common: CommonArgs,
    pub detach: bool,
    /// `--worktree`, and `--base REF` (ao-new checks them as from a shell).
    pub worktree: bool,
    pub base: Option<String>,
    /// `--on HOST_OR_LABEL`, each: run on another host.
    pub on: Vec<String>,
    /// `ao-fork ORIGIN NAME`: the session a new one copies.
    pub fork: Option<String>,
    /// `--callback`: resume the caller's session with the result.
    pub callback: bool,
    /// `--max-budget-usd` and `--budget-usd`.
    pub max_budget_usd: Option<f64>,
    pub budget_usd: Option<f64>,
}

/// Where a run's progress goes: the client, under its progress token.
pub struct Progress {
    pub peer: Peer<RoleServer>,
    pub token: ProgressToken,
}

/// How a run ended, for the tool's answer.
pub enum RunAnswer {
    /// Exit 0: stdout, the answer (or, detached, `{"session_name","pid"}`).
    Done(String),
    /// The runner's one-line reason.
    Failed(String),
    /// The client cancelled; the run was stopped.
    Cancelled,
    /// ao-mcp's stdin closed (a clean shutdown): the run was left to
    /// finish, as when ao-mcp is killed.
    Left,
}

impl RunSpec {
    fn command(&self) -> tokio::process::Command {
        let program = match (&self.fork, self.resume) {
            (Some(_), _) => "ao-fork",
            (None, true) => "ao-resume",
            (None, false) => "ao-new",
        };
        let mut cmd = tokio::process::Command::new(crate::paths::sibling_program(program));
        if let Some(origin) = &self.fork {
            cmd.arg(origin);
        }
        cmd.arg(&self.name);
        if self.callback {
            cmd.arg("--callback");
        }
        for (flag, usd) in [
            ("--max-budget-usd", self.max_budget_usd),
            ("--budget-usd", self.budget_usd),
        ] {
            if let Some(usd) = usd {
                cmd.arg(format!("{flag}={}", crate::claude::launch::format_usd(usd)));
            }
        }
        if let Some(agent) = &self.agent {
            cmd.args(["--agent", agent]);
        }
        if self.worktree {
            cmd.arg("--worktree");
        }
        if let Some(base) = &self.base {
            cmd.args(["--base", base]);
        }
        for on in &self.on {
            cmd.arg(format!("--on={on}"));
        }
        let common = &self.common;
        if let Some(dir) = &common.project_dir {
            cmd.arg("--project-dir").arg(dir);
        }
        if let Some(dir) = &common.sessions_dir {
            cmd.arg("--sessions-dir").arg(dir);
        }
        if let Some(url) = &common.session_manager_url {
            cmd.args(["--session-manager-url", url]);
        }
        if self.detach {
            cmd.args(["--detach", "--json"]);
        } else {
            // Its own group: a signal to ours (the client ending us) does
            // not end the run.
            cmd.process_group(0);
        }
        cmd.stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        cmd
    }

    /// The backup the run appends the CLI's lines to.
    fn backup(&self) -> Option<PathBuf> {
        let config = Config::load(&self.common, None).ok()?;
        let name = crate::name::SessionName::parse(&self.name).ok()?;
        Some(crate::backup::SessionFiles::new(&config.sessions_dir.value, &name).log_path())
    }
}

/// Makes the run; with `detach`, answers once it has started. `cancel`
/// (the client's cancellation) stops it; `closed` (ao-mcp shutting down)
/// leaves it to finish on its own.
pub async fn run(
    spec: RunSpec,
    progress: Option<Progress>,
    cancel: CancellationToken,
    closed: CancellationToken,
) -> RunAnswer {
    let backup = spec.backup();
    let start = match &backup {
        Some(path) => tokio::fs::metadata(path).await.map_or(0, |m| m.len()),
        None => 0,
    };
    let mut child = match spec.command().spawn() {
        Ok(child) => child,
        Err(e) => return RunAnswer::Failed(format!("cannot start the runner: {e}")),
    };
    if let Some(mut stdin) = child.stdin.take() {
        // A runner that refused early may not read its stdin.
        let _ = stdin.write_all(spec.prompt.as_bytes()).await;
    }
    let pid = child.id();
    let mut stdout = child.stdout.take();
    let mut stderr = child.stderr.take();
    let read_out = async {
        let mut text = String::new();
        if let Some(out) = stdout.as_mut() {
            let _ = out.read_to_string(&mut text).await;
        }
        text
    };
    let read_err = async {
        let mut text = String::new();
        if let Some(err) = stderr.as_mut() {
            let _ = err.read_to_string(&mut text).await;
        }
        text
    };
    let finished = async {
        let (out, err) = tokio::join!(read_out, read_err);
        (child.wait().await, out, err)
    };
    let mut watcher = backup
        .zip(progress)
        .map(|(path, progress)| ToolCallWatcher::new(path, start, progress));
    let watch = async {
        match watcher.as_mut() {
            Some(watcher) => loop {
                tokio::time::sleep(PROGRESS_EVERY).await;
                watcher.poll().await;
            },
            None => std::future::pending().await,
        }
    };
    tokio::pin!(finished);
    // A shutdown also cancels every request: it is looked at first.
    let ended = tokio::select! {
        biased;
        ended = &mut finished => Some(ended),
        () = closed.cancelled() => return RunAnswer::Left,
        () = cancel.cancelled() => None,
        () = watch => None,
    };
    let Some((status, out, err)) = ended else {
        if let Some(pid) = pid.filter(|_| !spec.detach) {
            // The runner's stop request: the CLI ends its turn, the run is
            // recorded as stopped and stays resumable.
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGUSR1);
        }
        let _ = tokio::time::timeout(STOP_WAIT, finished).await;
        return RunAnswer::Cancelled;
    };
    // The calls made since the last look.
    if let Some(watcher) = watcher.as_mut() {
        watcher.poll().await;
    }
    match status {
        Ok(status) if status.success() => RunAnswer::Done(out.trim_end_matches('\n').to_owned()),
        Ok(_) => RunAnswer::Failed(reason(&err)),
        Err(e) => RunAnswer::Failed(format!("the runner could not be waited for: {e}")),
    }
}

/// The runner's reason: its last error line, without the program's prefix.
fn reason(stderr: &str) -> String {
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = lines
        .iter()
        .rev()
        .find(|l| l.contains(": error: "))
        .or(lines.last())
        .copied()
        .unwrap_or("the run failed without a reason");
    match line.split_once(": error: ") {
        Some((_, reason)) => reason.to_owned(),
        None => line.to_owned(),
    }
}

/// Sends one progress notification per tool call the run makes, read from
/// its backup as it grows.
struct ToolCallWatcher {
    path: PathBuf,
    offset: u64,
    pending: Vec<u8>,
    calls: u32,
    progress: Progress,
}

impl ToolCallWatcher {
    fn new(path: PathBuf, offset: u64, progress: Progress) -> Self {
        ToolCallWatcher {
            path,
            offset,
            pending: Vec::new(),
            calls: 0,
            progress,
        }
    }

    /// Reads what was appended since the last look; one notification per call.
    async fn poll(&mut self) {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return;
        };
        if file
            .seek(std::io::SeekFrom::Start(self.offset))
            .await
            .is_err()
        {
            return;
        }
        let mut bytes = Vec::new();
        let Ok(read) = file.read_to_end(&mut bytes).await else {
            return;
        };
        self.offset += read as u64;
        self.pending.extend_from_slice(&bytes);
        while let Some(end) = self.pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.pending.drain(..=end).collect();
            if let Some(tool) = tool_call(&line) {
                self.calls += 1;
                let calls = self.calls;
                let note =
                    ProgressNotificationParam::new(self.progress.token.clone(), f64::from(calls))
                        .with_message(format!("tool call {calls}: {tool}"));
                let _ = self.progress.peer.notify_progress(note).await;
            }
        }
    }
}

/// The tool a backup line says is about to run: the CLI's PreToolUse hook
/// callback, the same line the run's `pre_tool` event is made from.
fn tool_call(line: &[u8]) -> Option<String> {
    let line = line.strip_suffix(b"\n").unwrap_or(line);
    let BackupLine::Cli(CliLine::ControlRequest(request), _) = BackupLine::parse(line) else {
        return None;
    };
    let hook = request.tool_hook()?;
    (hook.hook_event_name == "PreToolUse")
        .then(|| hook.tool_name.unwrap_or_else(|| "a tool".to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_reason_is_the_last_error_line() {
        let stderr = "ao-new: warning: slow\nao-new: error: a session named 'x' already exists\n";
        assert_eq!(reason(stderr), "a session named 'x' already exists");
        assert_eq!(reason("plain words\n"), "plain words");
        assert_eq!(reason(""), "the run failed without a reason");
    }

    #[test]
    fn tool_calls_are_read_from_pre_tool_hook_callbacks() {
        let hook = |event: &str| {
            format!(
                r#"{{"type":"control_request","request_id":"r1","request":{{"subtype":"hook_callback","callback_id":"c","input":{{"hook_event_name":"{event}","session_id":"s","tool_name":"Bash","tool_input":{{}},"tool_use_id":"t1"}}}}}}"#
            )
            .into_bytes()
        };
        assert_eq!(tool_call(&hook("PreToolUse")).as_deref(), Some("Bash"));
        let mut with_newline = hook("PreToolUse");
        with_newline.push(b'\n');
        assert_eq!(tool_call(&with_newline).as_deref(), Some("Bash"));
        assert_eq!(tool_call(&hook("PostToolUse")), None);
        assert_eq!(
            tool_call(br#"{"type":"assistant","message":{"content":[{"type":"tool_use","name":"Bash","input":{}}]}}"#),
            None
        );
        assert_eq!(tool_call(b"not json"), None);
    }
}
