//! A temporary project in which tests run the `ao-*` binaries as a user
//! would: the project directory as cwd, its own HOME and data directory, a
//! session manager (its own, a shared one, or a closed port), no autostart,
//! and `ao-fake-claude` (or the real CLI) as the `claude` CLI. Nothing of
//! the user's environment leaks in.
//!
//! Also here: what a finished command printed ([`Output`]), a command still
//! running ([`Running`]), the backup files, the fake CLI's log, and the
//! API's view of the project's sessions.

use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use agent_orchestrator::client::SessionClient;
use agent_orchestrator::token::Token;
use agent_orchestrator::wire::Session;
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tempfile::TempDir;

use super::real_claude::RealClaude;
use super::{Http, SessionManager, bin, command};

/// How long one command may take before the test gives up on it. A safety
/// net against a hung test run, not a timing assertion.
const COMMAND_LIMIT: Duration = Duration::from_secs(60);
/// How long [`eventually`] polls.
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

    /// Asserts exit 0, nothing on stderr, and a stdout that is empty or
    /// ends with a newline; answers stdout without that newline.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(self.code, Some(0), "expected success: {self:?}");
        assert_eq!(self.stderr, "", "expected a quiet stderr: {self:?}");
        if self.stdout.is_empty() {
            return "";
        }
        self.stdout
            .strip_suffix('\n')
            .unwrap_or_else(|| panic!("stdout does not end with a newline: {self:?}"))
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

/// A started command: its stdin is written (then closed) and its stdout
/// and stderr are read by threads, so it never blocks on a pipe. Waited
/// for with [`wait`](Self::wait) or [`stop`](Self::stop); one dropped
/// while it still runs gets SIGTERM, then SIGKILL.
pub struct Running {
    name: String,
    child: Option<Child>,
    writer: Option<JoinHandle<std::io::Result<()>>>,
    stdout: Receiver<String>,
    stderr: Receiver<String>,
}

impl Running {
    /// Starts `cmd` with `stdin` written and closed (`None`: no stdin at
    /// all), its stdout and stderr collected.
    pub fn start(mut cmd: Command, stdin: Option<&str>) -> Running {
        let name = Path::new(cmd.get_program())
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        let mut child = cmd
            .stdin(if stdin.is_some() {
                Stdio::piped()
            } else {
                Stdio::null()
            })
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {name}: {e}"));
        // A writer thread, so a child that does not read cannot block us.
        let writer = stdin.map(|text| {
            let mut pipe = child.stdin.take().expect("stdin");
            let text = text.to_owned();
            std::thread::spawn(move || pipe.write_all(text.as_bytes()))
        });
        let stdout = read_all(child.stdout.take().expect("stdout"));
        let stderr = read_all(child.stderr.take().expect("stderr"));
        Running {
            name,
            child: Some(child),
            writer,
            stdout,
            stderr,
        }
    }

    pub fn pid(&self) -> i32 {
        self.child.as_ref().expect("running").id() as i32
    }

    /// Sends `signal` and waits; answers what the command printed.
    pub fn stop(self, signal: Signal) -> Output {
        kill(Pid::from_raw(self.pid()), signal).expect("signal the command");
        self.wait()
    }

    /// Waits (bounded) for the command to end; answers what it printed.
    pub fn wait(mut self) -> Output {
        let mut child = self.child.take().expect("running");
        let deadline = Instant::now() + COMMAND_LIMIT;
        let status = loop {
            match child.try_wait().expect("wait") {
                Some(status) => break status,
                None if Instant::now() > deadline => {
                    let _ = child.kill();
                    let _ = child.wait();
                    panic!("{} did not finish within {COMMAND_LIMIT:?}", self.name);
                }
                None => std::thread::sleep(Duration::from_millis(5)),
            }
        };
        if let Some(writer) = self.writer.take() {
            // A command that refuses early may not read its stdin at all.
            if let Err(e) = writer.join().expect("stdin writer") {
                assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
            }
        }
        let collect = |pipe: &Receiver<String>, which: &str| {
            pipe.recv_timeout(COMMAND_LIMIT)
                .unwrap_or_else(|_| panic!("{}'s {which} stayed open", self.name))
        };
        Output {
            code: status.code(),
            stdout: collect(&self.stdout, "stdout"),
            stderr: collect(&self.stderr, "stderr"),
        }
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        let _ = kill(Pid::from_raw(child.id() as i32), Signal::SIGTERM);
        let deadline = Instant::now() + Duration::from_secs(5);
        while matches!(child.try_wait(), Ok(None)) && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let _ = child.wait();
    }
}

/// Reads `pipe` to its end on a thread; the text arrives on the receiver.
fn read_all(mut pipe: impl Read + Send + 'static) -> Receiver<String> {
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        let _ = tx.send(String::from_utf8_lossy(&bytes).into_owned());
    });
    rx
}

/// A project directory with its own environment for the `ao-*` binaries.
pub struct Project {
    /// Its own session manager, if it has one (dropped, so stopped, first).
    sm: Option<SessionManager>,
    root: TempDir,
    /// The project directory, canonical (as the API stores it).
    pub dir: PathBuf,
    url: String,
    claude: PathBuf,
    /// The real CLI's whole environment, when it plays `claude`.
    real_claude_env: Option<Vec<(String, String)>>,
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
            sm: None,
            root,
            dir,
            url: url.to_owned(),
            claude: bin("ao-fake-claude"),
            real_claude_env: None,
            env: Vec::new(),
        }
    }

    /// A new empty project with a session manager of its own.
    pub fn with_server() -> Project {
        Self::with_server_args(&[])
    }

    /// A new empty project with a session manager of its own, started with
    /// extra arguments.
    pub fn with_server_args(extra: &[&str]) -> Project {
        let sm = SessionManager::start_with_args(extra);
        let mut project = Project::new(&sm.url);
        project.sm = Some(sm);
        project
    }

    /// A new empty project with a session manager of its own whose own host
    /// runs sessions (`POST /runs`, callbacks) as the project's commands
    /// do: the same `claude` (the fake, or `real` with its mock API's URL),
    /// HOME and sessions folder.
    pub fn with_hosting_server(extra: &[&str], real: Option<(&RealClaude, &str)>) -> Project {
        let mut project = Project::new("http://127.0.0.1:9");
        if let Some((claude, base_url)) = real {
            project.use_real_claude(claude, base_url);
        }
        let cmd = project.command("ao-new");
        let env: Vec<(String, String)> = cmd
            .get_envs()
            .filter_map(|(k, v)| Some((k.to_str()?.to_owned(), v?.to_str()?.to_owned())))
            .filter(|(k, _)| {
                k != "AGENT_ORCHESTRATOR_SESSION_MANAGER_URL"
                    && k != agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE
            })
            .collect();
        let sm = SessionManager::start_with_env(extra, &env);
        project.url = sm.url.clone();
        project.sm = Some(sm);
        project
    }

    /// [`with_server`](Self::with_server) on a SQLite file whatever
    /// `AO_TEST_STORE` says: for tests that edit the file themselves.
    pub fn with_sqlite_server() -> Project {
        let sm = SessionManager::start_sqlite();
        let mut project = Project::new(&sm.url);
        project.sm = Some(sm);
        project
    }

    /// A new empty project whose session manager URL is a closed port.
    pub fn offline() -> Project {
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        Project::new(&url)
    }

    /// Starts a session manager of its own at the URL the commands use
    /// (after runs made while nothing listened there).
    pub fn start_server_late(&mut self) {
        let port = super::manager::port_of(&self.url);
        let db = self.root.path().join("late.db");
        let sm = SessionManager::spawn(&db, &[], Some(port)).unwrap_or_else(|e| panic!("{e}"));
        self.sm = Some(sm);
    }

    /// The project's own session manager.
    pub fn sm(&self) -> &SessionManager {
        self.sm
            .as_ref()
            .expect("a project with its own session manager")
    }

    pub fn sm_mut(&mut self) -> &mut SessionManager {
        self.sm
            .as_mut()
            .expect("a project with its own session manager")
    }

    /// The session manager URL the commands use.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Raw JSON requests to that URL.
    pub fn http(&self) -> Http {
        Http::new(&self.url)
    }

    /// The project directory as text, as the API stores it.
    pub fn dir_text(&self) -> String {
        self.dir.to_string_lossy().into_owned()
    }

    /// A temporary folder next to the project, for a test's own files.
    pub fn scratch(&self) -> &Path {
        self.root.path()
    }

    /// The commands' HOME.
    pub fn home(&self) -> PathBuf {
        self.root.path().join("home")
    }

    /// The commands' `XDG_DATA_HOME`.
    pub fn data_home(&self) -> PathBuf {
        self.home().join(".local/share")
    }

    /// Points the commands at another session manager (or a dead address).
    pub fn set_url(&mut self, url: &str) {
        self.url = url.to_owned();
    }

    /// Sets an extra environment variable for every command from now on.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.unset_env(key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    /// Drops an extra environment variable set with [`set_env`](Self::set_env).
    pub fn unset_env(&mut self, key: &str) {
        self.env.retain(|(k, _)| k != key);
    }

    /// The `claude` the commands run (the fake CLI unless changed).
    pub fn claude(&self) -> &Path {
        &self.claude
    }

    /// Runs another program as `claude` from now on.
    pub fn set_claude(&mut self, path: &Path) {
        self.claude = path.to_owned();
    }

    /// Runs the real CLI as `claude`, against the mock API at `base_url`,
    /// from now on. The commands then get the CLI's environment and their
    /// own settings, nothing else (so HOME is the CLI's).
    pub fn use_real_claude(&mut self, claude: &RealClaude, base_url: &str) {
        self.claude = claude.path.clone();
        self.real_claude_env = Some(claude.env(base_url));
    }

    /// `<project>/.agent-orchestrator/agent-sessions`
    pub fn sessions_dir(&self) -> PathBuf {
        self.dir.join(".agent-orchestrator/agent-sessions")
    }

    /// Writes the project's agent `name` (`<project>/.agent-orchestrator/agents/NAME/agent.json`)
    /// with `json` as its `agent.json`; answers that file.
    pub fn write_agent(&self, name: &str, json: &str) -> PathBuf {
        let folder = self.dir.join(".agent-orchestrator/agents").join(name);
        std::fs::create_dir_all(&folder).expect("agent folder");
        let file = folder.join("agent.json");
        std::fs::write(&file, json).expect("agent.json");
        file
    }

    /// The path of one backup file of `name` (`ext`: `jsonl`, `meta.json`, `lock`).
    pub fn backup(&self, name: &str, ext: &str) -> PathBuf {
        self.sessions_dir().join(format!("{name}.{ext}"))
    }

    /// The session's `.jsonl` as text (empty when missing).
    pub fn backup_text(&self, name: &str) -> String {
        std::fs::read_to_string(self.backup(name, "jsonl")).unwrap_or_default()
    }

    /// The lines of the session's `.jsonl`, parsed (unparsable ones as strings).
    pub fn backup_lines(&self, name: &str) -> Vec<Value> {
        self.backup_text(name)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|_| Value::String(l.to_owned())))
            .collect()
    }

    /// The session's `.meta.json`, parsed.
    #[track_caller]
    pub fn meta(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.backup(name, "meta.json")).expect("meta file");
        serde_json::from_str(&text).expect("meta JSON")
    }

    /// The session id the backups recorded for `name`.
    #[track_caller]
    pub fn session_id(&self, name: &str) -> String {
        let meta = self.meta(name);
        meta["session_id"]
            .as_str()
            .expect("session id in the meta file")
            .to_owned()
    }

    /// Where the fake CLI logs its argv and stdin, one JSON line per process.
    fn fake_log_path(&self) -> PathBuf {
        self.root.path().join("fake-log.jsonl")
    }

    /// Every record the fake CLI logged, in the order its processes ended.
    pub fn fake_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.fake_log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("fake log line"))
            .collect()
    }

    /// Every line the `n`th fake CLI process read on stdin.
    pub fn fake_stdin(&self, n: usize) -> Vec<Value> {
        let log = self.fake_log();
        log[n]["stdin"]
            .as_array()
            .expect("stdin in the fake log")
            .clone()
    }

    /// A command for one of our binaries, set up for this project.
    pub fn command(&self, program: &str) -> Command {
        let mut cmd = command(program);
        cmd.current_dir(&self.dir);
        match &self.real_claude_env {
            Some(env) => {
                cmd.env_clear().envs(env.iter().cloned());
            }
            None => {
                cmd.env("HOME", self.home())
                    .env("XDG_DATA_HOME", self.data_home())
                    .env("FAKE_CLAUDE_LOG", self.fake_log_path())
                    .env("FAKE_CLAUDE_STATE_DIR", self.root.path().join("fake-state"))
                    .env_remove("FAKE_CLAUDE_SCENARIO");
            }
        }
        cmd.env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", &self.url)
            .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", &self.claude)
            .env("AGENT_ORCHESTRATOR_AUTOSTART", "0");
        if let Some(sm) = &self.sm {
            cmd.env(
                agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
                sm.local_token_file(),
            );
        }
        for (key, value) in &self.env {
            cmd.env(key, value);
        }
        cmd
    }

    /// Runs `program args` to completion, with `stdin` written and closed
    /// (`None`: no stdin). The fake CLI takes its scenario from a
    /// `SCENARIO=<spec>` token in the prompt, else plays `plain`.
    pub fn ao(&self, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        Running::start(cmd, stdin).wait()
    }

    /// Runs `program args` to completion with `stdin`, the fake CLI playing
    /// `scenario` whatever the prompt says.
    pub fn run(&self, program: &str, args: &[&str], stdin: &str, scenario: &str) -> Output {
        self.spawn(program, args, stdin, scenario).wait()
    }

    /// Starts `program args` with `stdin`, the fake CLI playing `scenario`.
    pub fn spawn(&self, program: &str, args: &[&str], stdin: &str, scenario: &str) -> Running {
        let mut cmd = self.command(program);
        cmd.args(args).env("FAKE_CLAUDE_SCENARIO", scenario);
        Running::start(cmd, Some(stdin))
    }

    /// Runs `ao-new NAME` with `prompt`, asserts it succeeded, and answers
    /// the session id.
    #[track_caller]
    pub fn new_session(&self, name: &str, prompt: &str) -> String {
        let out = self.ao("ao-new", &[name], Some(prompt));
        assert_eq!(out.code, Some(0), "ao-new {name}: {out:?}");
        self.session_id(name)
    }

    /// `ao-status NAME --json`, asserted quiet and parsed.
    #[track_caller]
    pub fn status_json(&self, name: &str) -> Value {
        let out = self.ao("ao-status", &[name, "--json"], None);
        serde_json::from_str(out.ok()).expect("json")
    }

    /// Starts `ao-new NAME` with the fake CLI in its `hang` scenario and
    /// waits until the run is under way: the session manager says running
    /// and the backup has the CLI's init line (so the runner holds the lock,
    /// and the CLI's pid is in the backup). End it with [`Running::stop`] or
    /// [`kill_run`](Self::kill_run).
    pub async fn start_hanging(&self, name: &str) -> Running {
        let runner = self.spawn("ao-new", &[name], "please wait", "hang");
        eventually(&format!("the run of {name} to be under way"), async || {
            self.session(name)
                .await
                .is_some_and(|s| s.status.as_str() == "running")
                && self.backup_text(name).contains("\"subtype\":\"init\"")
        })
        .await;
        runner
    }

    /// SIGKILLs `runner`, the runner of session `name`, then the CLI it
    /// leaves behind: the runner had no chance to pass a signal on, and the
    /// fake's `hang` outlives its stdin (the real CLI ends at stdin EOF). The
    /// CLI's pid is in the backup's answer to `initialize` (the fake puts it
    /// there). Answers what the runner printed.
    pub fn kill_run(&self, name: &str, runner: Running) -> Output {
        let cli = self.cli_pid(name);
        let out = runner.stop(Signal::SIGKILL);
        let _ = kill(Pid::from_raw(cli), Signal::SIGKILL);
        out
    }

    /// The pid of the fake CLI of session `name` (it puts it in its answer
    /// to `initialize`, which the backup holds).
    #[track_caller]
    pub fn cli_pid(&self, name: &str) -> i32 {
        self.backup_lines(name)
            .iter()
            .find_map(|line| line["response"]["response"]["pid"].as_i64())
            .expect("the fake's pid in the backup") as i32
    }

    /// A typed client for the commands' session manager, with their token.
    pub fn client(&self) -> SessionClient {
        let token = self
            .env
            .iter()
            .find(|(k, _)| k == "AGENT_ORCHESTRATOR_TOKEN")
            .map(|(_, v)| Token::new(v, "test").expect("token"));
        SessionClient::new(&self.url)
            .expect("client")
            .with_token(token)
    }

    /// The API's session record for `name` in this project.
    pub async fn session(&self, name: &str) -> Option<Session> {
        let client = self.client();
        client
            .get_session_by_name(name, Some(&self.dir_text()))
            .await
            .expect("lookup")
    }

    /// The API's status of session `name` (`running` or `finished`).
    pub async fn api_status(&self, name: &str) -> String {
        let session = self.session(name).await.expect("session in API");
        session.status.as_str().to_owned()
    }

    /// The API's events for session `name`, as JSON.
    pub async fn events(&self, name: &str) -> Vec<Value> {
        let session = self.session(name).await.expect("session in API");
        self.http().events(&session.session_id).await
    }
}

/// Polls `check` until it holds; panics after a generous limit, naming `what`.
pub async fn eventually(what: &str, mut check: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + WAIT_LIMIT;
    while !check().await {
        assert!(Instant::now() < deadline, "gave up waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// True when `dir` holds no file at all (nothing was written).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}
