//! The real `ao-session-manager` release binary, on a free loopback port
//! with a database in a temporary folder (or a PostgreSQL database); killed
//! if the benchmark panics.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use agent_orchestrator::server::Synchronous;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

pub struct Server {
    child: Option<Child>,
    pub url: String,
    _dir: TempDir,
}

impl Server {
    /// A server on a SQLite file in a temporary folder.
    pub fn start(sync: Synchronous) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        let sync = match sync {
            Synchronous::Full => "full",
            Synchronous::Normal => "normal",
        };
        let db = dir.path().join("bench.db");
        Server::launch(
            dir,
            &[
                "--synchronous".as_ref(),
                sync.as_ref(),
                "--db".as_ref(),
                db.as_os_str(),
            ],
        )
    }

    /// A server on the PostgreSQL database at `url` (several may share it).
    #[allow(dead_code)] // benches/postgres.rs
    pub fn on_database(url: &str) -> Server {
        let dir = tempfile::tempdir().expect("temp dir");
        Server::launch(dir, &["--db".as_ref(), url.as_ref()])
    }

    fn launch(dir: TempDir, args: &[&std::ffi::OsStr]) -> Server {
        // AO_BENCH_SERVER_LOG=PATH keeps the server's log for a look afterwards.
        let log_path = std::env::var_os("AO_BENCH_SERVER_LOG")
            .map_or_else(|| dir.path().join("server.log"), Into::into);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .expect("log file");
        // AO_BENCH_SERVER_BIN=PATH measures another build (to compare two).
        let bin = std::env::var_os("AO_BENCH_SERVER_BIN")
            .unwrap_or_else(|| env!("CARGO_BIN_EXE_ao-session-manager").into());
        let mut cmd = Command::new(bin);
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("AGENT_ORCHESTRATOR_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd
            .args(["--host", "127.0.0.1", "--port", "0"])
            .args(args)
            .env(
                "AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE",
                dir.path().join("local-token"),
            )
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log)
            .spawn()
            .expect("start ao-session-manager");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("read the first line");
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_owned();
        Server {
            child: Some(child),
            url,
            _dir: dir,
        }
    }

    fn pid(&self) -> u32 {
        self.child.as_ref().expect("running").id()
    }

    /// Prints a progress line with the server's memory and CPU time so far.
    pub fn note(&self, what: &str) {
        let (_, rss) = self.rss();
        eprintln!(
            "{what} (server: RSS {:.1} MB, CPU {:.1} s; benchmark CPU {:.1} s)",
            rss as f64 / 1e6,
            self.cpu_time().as_secs_f64(),
            cpu_time_of("self").as_secs_f64()
        );
    }

    /// CPU time the server has used so far, user and system, all threads.
    pub fn cpu_time(&self) -> Duration {
        cpu_time_of(&self.pid().to_string())
    }

    /// `(peak, current)` resident set size in bytes (`VmHWM`, `VmRSS`).
    pub fn rss(&self) -> (u64, u64) {
        crate::memory::resident(self.pid())
    }

    /// SIGTERM, then waits (at most 10 s) for a clean exit.
    pub fn stop(mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        for _ in 0..100 {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// CPU time (user + system, all threads) of process `pid` ("self" for this one).
pub fn cpu_time_of(pid: &str) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .expect("read /proc/PID/stat (Linux only)");
    // After the command name, which ends with the last ')', utime and stime
    // are the 12th and 13th fields, in USER_HZ (100 on Linux).
    let after = &stat[stat.rfind(')').expect("stat format") + 2..];
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
