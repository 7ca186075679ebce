//! A real `ao-session-manager` process on a free loopback port.
//!
//! With `AO_TEST_STORE=postgres` every server a test starts stores its data
//! in PostgreSQL instead: one PostgreSQL server per test process
//! (`Postgres::shared`), one database per database path a test names, so
//! that a restart finds its data again. Tests that open a SQLite file
//! themselves start their server with [`SessionManager::spawn_sqlite`]
//! (or `start_sqlite`) and stay on SQLite.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use agent_orchestrator::client::SessionClient;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

use super::{Http, command};

/// A running session manager; killed when dropped.
pub struct SessionManager {
    child: Option<Child>,
    pub url: String,
    /// The SQLite file, or on PostgreSQL the path the test named, which
    /// stands for its database (the local token and the log are beside it).
    pub db: PathBuf,
    pub log: PathBuf,
    extra: Vec<String>,
    /// What `--db` gets.
    db_arg: std::ffi::OsString,
    env: Vec<(String, String)>,
    _dir: Option<TempDir>,
}

/// Set to `postgres` to run the servers the tests start on PostgreSQL.
pub const STORE_ENV: &str = "AO_TEST_STORE";

/// Whether the servers of this test run store their data in PostgreSQL.
pub fn on_postgres() -> bool {
    std::env::var(STORE_ENV).is_ok_and(|v| v == "postgres")
}

/// What `--db` gets for the database path `db`: the path itself, or on
/// PostgreSQL the URL of the database that stands for it (made on first use).
fn db_arg(db: &Path, sqlite_only: bool) -> std::ffi::OsString {
    if sqlite_only || !on_postgres() {
        return db.as_os_str().to_owned();
    }
    static DATABASES: Mutex<Option<HashMap<PathBuf, String>>> = Mutex::new(None);
    let mut made = DATABASES.lock().unwrap_or_else(|e| e.into_inner());
    made.get_or_insert_with(HashMap::new)
        .entry(db.to_owned())
        .or_insert_with(|| {
            super::postgres::Postgres::shared()
                .unwrap_or_else(|| panic!("{STORE_ENV}=postgres but PostgreSQL is not installed"))
                .fresh_database()
        })
        .clone()
        .into()
}

impl SessionManager {
    /// A fresh server with its own database in a new temporary folder.
    pub fn start() -> Self {
        Self::start_with_args(&[])
    }

    /// A fresh server with extra command-line arguments.
    pub fn start_with_args(extra: &[&str]) -> Self {
        Self::start_on(extra, &[], false)
    }

    /// A fresh server with extra arguments and environment variables (its
    /// own host's runners inherit them: the `claude` to run, its HOME).
    pub fn start_with_env(extra: &[&str], env: &[(String, String)]) -> Self {
        Self::start_on(extra, env, false)
    }

    /// A fresh server on a SQLite file, whatever `AO_TEST_STORE` says: for
    /// tests that read the file themselves.
    pub fn start_sqlite() -> Self {
        Self::start_on(&[], &[], true)
    }

    fn start_on(extra: &[&str], env: &[(String, String)], sqlite_only: bool) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("sm.db");
        let log = db.with_extension(format!("{}.log", std::process::id()));
        let mut sm = Self::launch(&db, &log, extra, None, env, sqlite_only)
            .unwrap_or_else(|e| panic!("{e}"));
        sm._dir = Some(dir);
        sm
    }

    /// A server on an existing database, on `port` (0 = any).
    pub fn spawn(db: &Path, extra: &[&str], port: Option<u16>) -> Result<Self, String> {
        let log = db.with_extension(format!("{}.log", std::process::id()));
        Self::launch(db, &log, extra, port, &[], false)
    }

    /// [`spawn`](Self::spawn) on a SQLite file, whatever `AO_TEST_STORE`
    /// says: for files of older releases, and tests that read the file.
    pub fn spawn_sqlite(db: &Path, extra: &[&str], port: Option<u16>) -> Result<Self, String> {
        let log = db.with_extension(format!("{}.log", std::process::id()));
        Self::launch(db, &log, extra, port, &[], true)
    }

    /// A server on the SQLite file `db`, whatever `AO_TEST_STORE` says, with
    /// its stderr going to `log`.
    pub fn spawn_logged_sqlite(
        db: &Path,
        log: &Path,
        extra: &[&str],
        port: Option<u16>,
    ) -> Result<Self, String> {
        Self::launch(db, log, extra, port, &[], true)
    }

    /// A fresh server on the PostgreSQL database at `url` (several may
    /// share one: they are replicas).
    pub fn on_database(url: &str) -> Self {
        Self::on_database_with(url, &[])
    }

    /// [`on_database`](Self::on_database) with extra arguments.
    pub fn on_database_with(url: &str, extra: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        let db = dir.path().join("replica");
        let log = dir.path().join("replica.log");
        let mut sm = Self::launch_with(&db, url.as_ref(), &log, extra, None, &[])
            .unwrap_or_else(|e| panic!("{e}"));
        sm._dir = Some(dir);
        sm
    }

    fn launch(
        db: &Path,
        log: &Path,
        extra: &[&str],
        port: Option<u16>,
        env: &[(String, String)],
        sqlite_only: bool,
    ) -> Result<Self, String> {
        Self::launch_with(db, &db_arg(db, sqlite_only), log, extra, port, env)
    }

    fn launch_with(
        db: &Path,
        db_arg: &std::ffi::OsStr,
        log: &Path,
        extra: &[&str],
        port: Option<u16>,
        env: &[(String, String)],
    ) -> Result<Self, String> {
        let log = log.to_owned();
        let log_file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .map_err(|e| e.to_string())?;
        let port = port.unwrap_or(0).to_string();
        let mut child = command("ao-session-manager")
            .args(["--port", &port, "--db"])
            .arg(db_arg)
            // Its own local token, beside its database: not the user's.
            .env(
                agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
                Self::local_token_file_of(db),
            )
            .args(extra)
            .envs(env.iter().cloned())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(log_file)
            .spawn()
            .map_err(|e| format!("cannot start ao-session-manager: {e}"))?;
        let line = super::procs::first_line(&mut child, Duration::from_secs(20));
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            let _ = child.wait();
            let log = std::fs::read_to_string(&log).unwrap_or_default();
            return Err(format!(
                "session manager did not start; first line {line:?}; log:\n{log}"
            ));
        };
        Ok(SessionManager {
            child: Some(child),
            url: url.to_owned(),
            db: db.to_owned(),
            log,
            extra: extra.iter().map(|s| s.to_string()).collect(),
            db_arg: db_arg.to_owned(),
            env: env.to_vec(),
            _dir: None,
        })
    }

    /// The local token file of a server on database `db`.
    fn local_token_file_of(db: &Path) -> PathBuf {
        db.with_extension("local-token")
    }

    /// This server's local token file: the same user's commands read it
    /// (`AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE`).
    pub fn local_token_file(&self) -> PathBuf {
        Self::local_token_file_of(&self.db)
    }

    /// The port the server listens on.
    pub fn port(&self) -> u16 {
        port_of(&self.url)
    }

    /// A typed client for this server.
    pub fn client(&self) -> SessionClient {
        SessionClient::new(&self.url).expect("client")
    }

    /// A raw-JSON HTTP helper for this server.
    pub fn http(&self) -> Http {
        Http::new(&self.url)
    }

    /// The server's `(peak, current)` resident memory in bytes (`VmHWM`,
    /// `VmRSS`).
    pub fn memory(&self) -> (u64, u64) {
        super::memory::resident(self.pid().as_raw() as u32)
    }

    fn pid(&self) -> Pid {
        Pid::from_raw(self.child.as_ref().expect("running").id() as i32)
    }

    /// The local token the server made: what its machine's user presents,
    /// and what a remote host is given to present.
    pub fn local_token(&self) -> String {
        std::fs::read_to_string(self.local_token_file())
            .expect("the local token file")
            .trim()
            .to_owned()
    }

    /// Sends SIGTERM and waits; returns the exit code.
    pub fn stop(&mut self) -> Option<i32> {
        let _ = kill(self.pid(), Signal::SIGTERM);
        let status = self.child.take().and_then(|mut c| c.wait().ok());
        status.and_then(|s| s.code())
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        let _ = kill(self.pid(), Signal::SIGKILL);
        if let Some(mut c) = self.child.take() {
            let _ = c.wait();
        }
    }

    /// Starts again on the same database and port, after `stop` or `kill9`.
    pub fn restart(&mut self) {
        let extra: Vec<&str> = self.extra.iter().map(String::as_str).collect();
        let port = self.port();
        let mut last = String::new();
        // The old socket may linger for a moment; retry the bind briefly.
        for _ in 0..50 {
            match Self::launch_with(
                &self.db,
                &self.db_arg,
                &self.log,
                &extra,
                Some(port),
                &self.env,
            ) {
                Ok(mut fresh) => {
                    self.child = fresh.child.take();
                    self.url = fresh.url.clone();
                    return;
                }
                Err(e) => last = e,
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("restart failed: {last}");
    }

    /// The server's log so far.
    pub fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }
}

/// The port of a `http://host:port` URL.
pub fn port_of(url: &str) -> u16 {
    url.rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port in url")
}

impl Drop for SessionManager {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}
