//! A real PostgreSQL server of the tests' own: Debian's `postgresql`
//! package, started by the tests in a temporary folder on a free loopback
//! port, as an unprivileged user (PostgreSQL refuses to run as root, and
//! the tests run as root in CI: then the server runs as `nobody`), and
//! stopped when dropped. Connections over TCP need the password
//! ([`PASSWORD`], SCRAM); the server's own socket folder is private.
//!
//! When PostgreSQL is not installed a test skips with a note, unless
//! `AO_REQUIRE_POSTGRES=1` (CI), which makes it fail.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tempfile::TempDir;

/// Set to `1` to fail, rather than skip, when PostgreSQL is missing.
pub const REQUIRE_ENV: &str = "AO_REQUIRE_POSTGRES";
/// The superuser the tests connect as.
pub const USER: &str = "ao";
/// Its password.
pub const PASSWORD: &str = "ao-test-secret";
/// How long the server may take to accept connections.
const START_LIMIT: Duration = Duration::from_secs(30);

/// A running server; stopped (and its folder removed) when dropped. It
/// runs under a small shell watchdog that holds the read end of a pipe
/// from this process: when this process ends, however it ends, the pipe
/// closes and the watchdog stops the server (and removes the folder of the
/// one the tests share, which is never dropped).
pub struct Postgres {
    child: Option<Child>,
    pub port: u16,
    bin: PathBuf,
    /// Where its files live (removed last).
    dir: TempDir,
    as_nobody: bool,
    /// Whether it makes each commit durable (PostgreSQL's defaults).
    durable: bool,
    /// Databases made so far by [`fresh_database`](Self::fresh_database).
    made: std::sync::atomic::AtomicUsize,
}

/// Starts `postgres ARGS...`, stops it when its standard input closes, then
/// removes `$AO_PG_REMOVE` if set.
const WATCHDOG: &str = r#""$@" </dev/null &
pg=$!
read -r _ || true
kill -INT "$pg" 2>/dev/null
wait "$pg"
if [ -n "$AO_PG_REMOVE" ]; then rm -rf "$AO_PG_REMOVE"; fi"#;

/// The settings every start uses: loopback only, room for many session
/// managers.
const SETTINGS: &[&str] = &[
    "-c",
    "listen_addresses=127.0.0.1",
    "-c",
    "max_connections=400",
];
/// And, unless durable, no durability: the tests' data is thrown away.
const FAST: &[&str] = &[
    "-c",
    "fsync=off",
    "-c",
    "synchronous_commit=off",
    "-c",
    "full_page_writes=off",
];

/// `postgres` under the watchdog, on the files of `dir`.
fn watched(
    bin: &Path,
    dir: &Path,
    port: u16,
    as_nobody: bool,
    durable: bool,
    remove: bool,
) -> Command {
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(WATCHDOG)
        .arg("sh")
        .arg(bin.join("postgres"))
        .arg("-D")
        .arg(dir.join("data"))
        .args(["-p", &port.to_string(), "-k"])
        .arg(dir)
        .args(SETTINGS)
        .args(if durable { &[][..] } else { FAST })
        .env(
            "AO_PG_REMOVE",
            if remove { dir.as_os_str() } else { "".as_ref() },
        )
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    as_user(&mut cmd, as_nobody);
    cmd
}

impl Postgres {
    /// Starts a fresh server; `None` (after a note on stderr) when
    /// PostgreSQL is not installed and `AO_REQUIRE_POSTGRES` is not `1`.
    pub fn start() -> Option<Postgres> {
        Self::start_with(false)
    }

    /// [`start`](Self::start) with every commit durable (fsync on, as
    /// PostgreSQL is set up by default): for benchmarks.
    #[allow(dead_code)] // benches/postgres.rs
    pub fn start_durable() -> Option<Postgres> {
        Self::start_with(true)
    }

    fn start_with(durable: bool) -> Option<Postgres> {
        let Some(bin) = find_bin() else {
            if std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1") {
                panic!(
                    "{REQUIRE_ENV}=1 but PostgreSQL was not found (looked for initdb and postgres \
                     through pg_config and in /usr/lib/postgresql/*/bin): apt install postgresql"
                );
            }
            eprintln!("skipping: PostgreSQL not found (apt install postgresql)");
            return None;
        };
        let as_nobody = nix::unistd::geteuid().is_root();
        let dir = tempfile::Builder::new()
            .prefix("ao-postgres-")
            .tempdir()
            .expect("temp dir");
        if as_nobody {
            let nobody = nix::unistd::User::from_name("nobody")
                .ok()
                .flatten()
                .expect("a user named nobody");
            nix::unistd::chown(dir.path(), Some(nobody.uid), Some(nobody.gid))
                .expect("give the folder to nobody");
        }
        let data = dir.path().join("data");
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, format!("{PASSWORD}\n")).expect("password file");
        if as_nobody {
            let _ = std::fs::set_permissions(
                &pwfile,
                std::os::unix::fs::PermissionsExt::from_mode(0o644),
            );
        }
        let mut initdb = Command::new(bin.join("initdb"));
        initdb
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                USER,
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pwfile.display()))
            .args(["--no-sync", "-E", "UTF8", "--locale=C"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        as_user(&mut initdb, as_nobody);
        let out = initdb.output().expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let _ = std::fs::remove_file(&pwfile);
        let port = free_port();
        let mut postgres = watched(&bin, dir.path(), port, as_nobody, durable, false);
        postgres.stderr(Stdio::piped());
        let mut child = postgres.spawn().expect("start postgres");
        let stderr = child.stderr.take().expect("stderr");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("ready to accept connections") {
                    let _ = tx.send(());
                }
            }
        });
        let ready = rx.recv_timeout(START_LIMIT).is_ok();
        let server = Postgres {
            child: Some(child),
            port,
            bin,
            dir,
            as_nobody,
            durable,
            made: Default::default(),
        };
        assert!(ready, "postgres did not start within {START_LIMIT:?}");
        Some(server)
    }

    /// `postgres://ao:PASSWORD@127.0.0.1:PORT/DB`.
    pub fn url(&self, db: &str) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{db}", self.port)
    }

    /// Creates database `name` (through the server's private socket).
    pub fn create_database(&self, name: &str) {
        let mut createdb = Command::new(self.bin.join("createdb"));
        createdb.args(["-h"]).arg(self.dir.path()).args([
            "-p",
            &self.port.to_string(),
            "-U",
            USER,
            name,
        ]);
        as_user(&mut createdb, self.as_nobody);
        let out = createdb.output().expect("run createdb");
        assert!(
            out.status.success(),
            "createdb {name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Stops the server (fast shutdown) and waits for it.
    pub fn stop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        // Closing the pipe tells the watchdog to stop the server.
        drop(child.stdin.take());
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if let Ok(Some(_)) = child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        // Stuck: the postmaster's pid is the first line of its pid file.
        let pid_file = self.dir.path().join("data/postmaster.pid");
        if let Some(pid) = std::fs::read_to_string(pid_file)
            .ok()
            .and_then(|text| text.lines().next()?.trim().parse::<i32>().ok())
        {
            let _ = kill(Pid::from_raw(pid), Signal::SIGQUIT);
        }
        let _ = child.wait();
    }

    /// Starts it again on the same port and files (after [`stop`](Self::stop)).
    pub fn restart(&mut self) {
        self.stop();
        self.launch(false);
    }

    /// Starts the server on its files, and waits until it takes connections.
    fn launch(&mut self, remove: bool) {
        let mut postgres = watched(
            &self.bin,
            self.dir.path(),
            self.port,
            self.as_nobody,
            self.durable,
            remove,
        );
        postgres.stderr(Stdio::null());
        self.child = Some(postgres.spawn().expect("start postgres"));
        let deadline = Instant::now() + START_LIMIT;
        loop {
            let ready = Command::new(self.bin.join("pg_isready"))
                .args(["-q", "-h", "127.0.0.1", "-p", &self.port.to_string()])
                .status()
                .is_ok_and(|s| s.success());
            if ready {
                return;
            }
            assert!(Instant::now() < deadline, "postgres did not start again");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The server the tests of this process share, started on first use;
    /// `None` when PostgreSQL is not installed (see [`start`](Self::start)).
    /// It stops, and its folder goes, when the test process ends.
    pub fn shared() -> Option<&'static Postgres> {
        static SHARED: OnceLock<Option<Postgres>> = OnceLock::new();
        SHARED
            .get_or_init(|| {
                let mut server = Postgres::start()?;
                // Started again under a watchdog that also removes the
                // folder: this one is never dropped.
                server.stop();
                server.launch(true);
                Some(server)
            })
            .as_ref()
    }

    /// A new empty database on this server; answers its URL.
    pub fn fresh_database(&self) -> String {
        let n = self.made.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        let name = format!("t{}_{n}", std::process::id());
        self.create_database(&name);
        self.url(&name)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Runs `cmd` as `nobody` when the tests run as root.
fn as_user(cmd: &mut Command, as_nobody: bool) {
    if as_nobody {
        use std::os::unix::process::CommandExt;
        cmd.uid(65534).gid(65534);
        // Its HOME is not ours to write into.
        cmd.env("HOME", "/tmp");
    }
}

/// The folder of `initdb` and `postgres`: `pg_config --bindir`, else the
/// newest `/usr/lib/postgresql/*/bin`.
fn find_bin() -> Option<PathBuf> {
    let has = |dir: &Path| dir.join("initdb").is_file() && dir.join("postgres").is_file();
    if let Ok(out) = Command::new("pg_config").arg("--bindir").output() {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && has(&dir) {
            return Some(dir);
        }
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| Some(e.ok()?.path().join("bin")))
        .filter(|dir| has(dir))
        .collect();
    versions.sort();
    versions.pop()
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}
