//! `--detach`: the run goes on in a process of its own, in a new session
//! (no terminal, no stdin of the caller), its stderr in
//! `<sessions_dir>/NAME.log`. The caller has already checked everything
//! that can be refused; it starts the same program again with the hidden
//! [`CHILD_FLAG`], hands it the prompt on a pipe (never argv), and returns
//! once the child says it holds the session's lock and the CLI has started.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// Marks the detached process: it reads the whole prompt from stdin and
/// says `started PID` on stdout once its run is under way.
pub const CHILD_FLAG: &str = "--detached-child";
/// What the detached process prints once the CLI has started.
const STARTED: &str = "started ";
/// How long the caller waits for the detached run to start.
const START_WAIT: Duration = Duration::from_secs(60);

/// Why a detached run did not start.
#[derive(Debug, thiserror::Error)]
pub enum DetachError {
    #[error("cannot start the detached run: {0}")]
    Spawn(std::io::Error),
    #[error("{message}")]
    Failed { code: u8, message: String },
    #[error(
        "the detached run did not start within {}s (see {})",
        START_WAIT.as_secs(),
        crate::diag::shell_word(log)
    )]
    Timeout { log: String },
}

/// Starts this program again, detached, with `prompt` on its stdin and its
/// stderr appended to `log`; answers the detached runner's pid once its
/// run is under way.
pub fn start(prompt: &str, log: &Path) -> Result<u32, DetachError> {
    let exe = std::env::current_exe().map_err(DetachError::Spawn)?;
    let stderr = crate::private::open_options()
        .create(true)
        .append(true)
        .open(log)
        .map_err(DetachError::Spawn)?;
    let log_start = stderr.metadata().map(|m| m.len()).unwrap_or(0);
    let mut cmd = Command::new(exe);
    cmd.args(std::env::args_os().skip(1))
        .arg(CHILD_FLAG)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(stderr);
    new_session(&mut cmd);
    let mut child = cmd.spawn().map_err(DetachError::Spawn)?;
    if let Some(mut stdin) = child.stdin.take() {
        // A child that failed at once may not read it; its exit says why.
        let _ = stdin.write_all(prompt.as_bytes());
    }
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| DetachError::Spawn(std::io::Error::other("no stdout pipe")))?;
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let pid = child.id();
    match rx.recv_timeout(START_WAIT) {
        Ok(line) if line.starts_with(STARTED) => Ok(pid),
        Ok(_) => {
            let code = child
                .wait()
                .ok()
                .and_then(|s| s.code())
                .and_then(|c| u8::try_from(c).ok())
                .filter(|c| *c != 0)
                .unwrap_or(1);
            Err(DetachError::Failed {
                code,
                message: last_line(log, log_start).unwrap_or_else(|| {
                    format!(
                        "the detached run ended before it started (see {})",
                        log.display()
                    )
                }),
            })
        }
        Err(_) => Err(DetachError::Timeout {
            log: log.display().to_string(),
        }),
    }
}

/// Says, in the detached process, that the run is under way.
pub fn say_started(runner_pid: u32) {
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{STARTED}{runner_pid}").and_then(|()| stdout.flush());
}

/// The last line written to `log` after `from`, without the program prefix.
fn last_line(log: &Path, from: u64) -> Option<String> {
    let text = std::fs::read(log).ok()?;
    let text = String::from_utf8_lossy(text.get(from as usize..)?).into_owned();
    let line = text.lines().rev().find(|l| !l.trim().is_empty())?;
    let line = line.split_once(": error: ").map_or(line, |(_, rest)| rest);
    Some(line.trim().to_owned())
}

/// Runs the child in a session of its own: no controlling terminal, so no
/// hang-up or Ctrl-C of the caller's terminal reaches it.
#[allow(unsafe_code)]
fn new_session(cmd: &mut Command) {
    use std::os::unix::process::CommandExt;
    // SAFETY: the closure runs in the forked child before exec and makes
    // one async-signal-safe system call.
    unsafe {
        cmd.pre_exec(|| {
            nix::unistd::setsid().map_err(std::io::Error::from)?;
            Ok(())
        });
    }
}
