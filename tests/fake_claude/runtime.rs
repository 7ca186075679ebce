//! Process plumbing: the stdin reader thread, whole-line stdout writes, the
//! `FAKE_CLAUDE_LOG` record, SIGTERM/SIGINT handling and exits.

use std::io::{BufRead, Write};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use nix::sys::signal::{SigSet, Signal};
use serde_json::{Value, json};

/// State the log record needs, shared with the reader and signal threads.
pub struct Shared {
    argv: Vec<String>,
    cwd: String,
    log_path: Option<PathBuf>,
    stdin: Mutex<Vec<Value>>,
    scenario: Mutex<String>,
    session_id: Mutex<Option<String>>,
    /// What the process read from `--mcp-config`, for the log.
    mcp_config: Mutex<Option<Value>>,
    /// Set by the `noterm` scenario: SIGTERM is ignored.
    ignore_term: AtomicBool,
    logged: AtomicBool,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Shared {
    pub fn new(argv: Vec<String>, cwd: String) -> Arc<Shared> {
        Arc::new(Shared {
            argv,
            cwd,
            log_path: std::env::var_os("FAKE_CLAUDE_LOG")
                .filter(|p| !p.is_empty())
                .map(PathBuf::from),
            stdin: Mutex::new(Vec::new()),
            scenario: Mutex::new("plain".to_string()),
            session_id: Mutex::new(None),
            mcp_config: Mutex::new(None),
            ignore_term: AtomicBool::new(false),
            logged: AtomicBool::new(false),
        })
    }

    pub fn cwd(&self) -> &str {
        &self.cwd
    }

    pub fn set_scenario(&self, spec: &str) {
        *lock(&self.scenario) = spec.to_string();
    }

    pub fn set_session_id(&self, id: &str) {
        *lock(&self.session_id) = Some(id.to_string());
    }

    pub fn ignore_sigterm(&self) {
        self.ignore_term.store(true, Ordering::SeqCst);
    }

    pub fn set_mcp_config(&self, read: Value) {
        *lock(&self.mcp_config) = Some(read);
    }

    /// Appends the one log line of this process (only the first call writes).
    pub fn write_log(&self, exit_code: Option<i32>) {
        let Some(path) = &self.log_path else { return };
        if self.logged.swap(true, Ordering::SeqCst) {
            return;
        }
        let record = json!({
            "argv": self.argv,
            "cwd": self.cwd,
            "stdin": *lock(&self.stdin),
            "scenario": *lock(&self.scenario),
            "session_id": *lock(&self.session_id),
            "mcp_config": *lock(&self.mcp_config),
            "exit_code": exit_code,
            "pid": std::process::id()
        });
        let mut line = record.to_string().into_bytes();
        line.push(b'\n');
        let written = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .and_then(|mut f| f.write_all(&line));
        if let Err(e) = written {
            eprintln!("fake-claude: cannot write log {}: {e}", path.display());
        }
    }

    /// Writes the log record and exits with `code`.
    pub fn finish(&self, code: i32) -> ! {
        self.write_log(Some(code));
        let _ = std::io::stderr().flush();
        std::process::exit(code)
    }

    /// One line on stderr, then `finish(code)`.
    pub fn fail(&self, code: i32, message: &str) -> ! {
        eprintln!("fake-claude: {message}");
        self.finish(code)
    }
}

/// What the reader thread hands over: one stdin line (without its newline) or EOF.
pub enum Input {
    Line(String),
    Eof,
}

/// Reads stdin line by line on its own thread; every line is recorded for the
/// log as soon as it arrives (as JSON if it parses, else as a string).
pub fn spawn_reader(shared: Arc<Shared>) -> Receiver<Input> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let stdin = std::io::stdin();
        let mut reader = stdin.lock();
        let mut buf = Vec::new();
        loop {
            buf.clear();
            match reader.read_until(b'\n', &mut buf) {
                Ok(0) => break,
                Ok(_) => {
                    while matches!(buf.last(), Some(b'\n' | b'\r')) {
                        buf.pop();
                    }
                    let line = String::from_utf8_lossy(&buf).into_owned();
                    let recorded = serde_json::from_str::<Value>(&line)
                        .unwrap_or_else(|_| Value::String(line.clone()));
                    lock(&shared.stdin).push(recorded);
                    if tx.send(Input::Line(line)).is_err() {
                        return;
                    }
                }
                Err(e) => {
                    eprintln!("fake-claude: cannot read stdin: {e}");
                    break;
                }
            }
        }
        let _ = tx.send(Input::Eof);
    });
    rx
}

/// Blocks SIGTERM and SIGINT in this thread (and so in every thread spawned
/// after it) and waits for them on a thread of their own: on either, write
/// `fake-claude: interrupted` to stderr, log, and exit 128 + signal number
/// (143 for SIGTERM, 130 for SIGINT). Call before spawning other threads.
pub fn handle_signals(shared: Arc<Shared>) -> Result<(), String> {
    let mut set = SigSet::empty();
    set.add(Signal::SIGTERM);
    set.add(Signal::SIGINT);
    set.thread_block()
        .map_err(|e| format!("cannot block signals: {e}"))?;
    std::thread::spawn(move || {
        while let Ok(sig) = set.wait() {
            if sig == Signal::SIGTERM && shared.ignore_term.load(Ordering::SeqCst) {
                continue;
            }
            eprintln!("fake-claude: interrupted");
            shared.finish(128 + sig as i32);
        }
    });
    Ok(())
}

/// Logs, then kills this process with SIGKILL.
pub fn sigkill(shared: &Shared) -> ! {
    shared.write_log(None);
    let _ = std::io::stderr().flush();
    if let Err(e) = nix::sys::signal::raise(Signal::SIGKILL) {
        shared.fail(1, &format!("cannot raise SIGKILL: {e}"));
    }
    loop {
        std::thread::park();
    }
}

/// Writes whole stdout lines, each with one `write_all` and a flush; after the
/// init line every line waits `slow` first.
pub struct Out {
    shared: Arc<Shared>,
    pub slow: Duration,
    pub after_init: bool,
}

impl Out {
    pub fn new(shared: Arc<Shared>) -> Out {
        Out {
            shared,
            slow: Duration::ZERO,
            after_init: false,
        }
    }

    pub fn line(&self, v: &Value) {
        let mut bytes = v.to_string().into_bytes();
        bytes.push(b'\n');
        self.raw(&bytes);
    }

    /// A line that does not wait out `slow`.
    pub fn quick_line(&self, v: &Value) {
        let mut bytes = v.to_string().into_bytes();
        bytes.push(b'\n');
        self.write(&bytes);
    }

    pub fn raw(&self, bytes: &[u8]) {
        if self.after_init && !self.slow.is_zero() {
            std::thread::sleep(self.slow);
        }
        self.write(bytes);
    }

    fn write(&self, bytes: &[u8]) {
        let stdout = std::io::stdout();
        let mut out = stdout.lock();
        if let Err(e) = out.write_all(bytes).and_then(|()| out.flush()) {
            drop(out);
            self.shared.fail(1, &format!("cannot write stdout: {e}"));
        }
    }
}
