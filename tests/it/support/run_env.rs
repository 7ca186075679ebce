//! A place to run `ao-*` commands as a user would: a temporary project
//! folder and HOME, a real session manager, and the fake `claude`.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};

use serde_json::Value;
use tempfile::TempDir;

use super::{SessionManager, bin, command};

pub struct RunEnv {
    pub dir: TempDir,
    pub sm: Option<SessionManager>,
    /// Used instead of `sm`'s when set (e.g. a closed port).
    pub url_override: Option<String>,
    pub claude: PathBuf,
}

impl RunEnv {
    /// A project with a running session manager and the fake CLI.
    pub fn new() -> Self {
        let env = Self::without_server();
        RunEnv {
            sm: Some(SessionManager::start()),
            url_override: None,
            ..env
        }
    }

    /// A project whose session manager URL points at a closed port.
    pub fn without_server() -> Self {
        let dir = tempfile::tempdir().expect("temp dir");
        for sub in ["project", "home", "fake-state"] {
            std::fs::create_dir_all(dir.path().join(sub)).expect("mkdir");
        }
        let closed = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let url = format!("http://{}", closed.local_addr().expect("addr"));
        drop(closed);
        RunEnv {
            dir,
            sm: None,
            url_override: Some(url),
            claude: bin("ao-fake-claude"),
        }
    }

    /// Starts a session manager at the URL this env's commands use (after
    /// runs made while nothing listened there).
    pub fn start_server_late(&mut self) {
        let url = self.url();
        let port = url
            .rsplit(':')
            .next()
            .and_then(|p| p.parse().ok())
            .expect("port");
        let db = self.dir.path().join("late.db");
        let sm = SessionManager::spawn(&db, &[], Some(port)).unwrap_or_else(|e| panic!("{e}"));
        self.sm = Some(sm);
    }

    pub fn url(&self) -> String {
        match (&self.url_override, &self.sm) {
            (Some(url), _) => url.clone(),
            (None, Some(sm)) => sm.url.clone(),
            (None, None) => unreachable!("no url"),
        }
    }

    pub fn project(&self) -> PathBuf {
        self.dir
            .path()
            .join("project")
            .canonicalize()
            .expect("project")
    }

    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    pub fn sessions_dir(&self) -> PathBuf {
        self.project().join(".agent-orchestrator/agent-sessions")
    }

    /// Where the fake CLI logs its argv and stdin, one JSON line per process.
    pub fn fake_log_path(&self) -> PathBuf {
        self.dir.path().join("fake-log.jsonl")
    }

    /// Every record the fake CLI logged.
    pub fn fake_log(&self) -> Vec<Value> {
        std::fs::read_to_string(self.fake_log_path())
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).expect("fake log line"))
            .collect()
    }

    /// An `ao-*` command set up for this project.
    pub fn cmd(&self, program: &str) -> Command {
        let mut cmd = command(program);
        cmd.current_dir(self.project())
            .env("HOME", self.home())
            .env("XDG_DATA_HOME", self.home().join("data"))
            .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", self.url())
            .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", &self.claude)
            .env("AGENT_ORCHESTRATOR_AUTOSTART", "0")
            .env("FAKE_CLAUDE_LOG", self.fake_log_path())
            .env("FAKE_CLAUDE_STATE_DIR", self.dir.path().join("fake-state"))
            .env_remove("FAKE_CLAUDE_SCENARIO");
        cmd
    }

    /// Runs `program args` with `stdin` piped in and the fake's `scenario`.
    pub fn run(&self, program: &str, args: &[&str], stdin: &str, scenario: &str) -> Output {
        let child = self.spawn(program, args, stdin, scenario);
        child.wait_with_output().expect("wait")
    }

    /// Starts `program args`, writes `stdin` and closes it.
    pub fn spawn(&self, program: &str, args: &[&str], stdin: &str, scenario: &str) -> Child {
        let mut cmd = self.cmd(program);
        cmd.args(args)
            .env("FAKE_CLAUDE_SCENARIO", scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("spawn");
        let mut pipe = child.stdin.take().expect("stdin");
        // A command that refuses early may not read its stdin at all.
        if let Err(e) = pipe.write_all(stdin.as_bytes()) {
            assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "write stdin: {e}");
        }
        drop(pipe);
        child
    }

    /// The backup lines of session `name`, parsed.
    pub fn backup_lines(&self, name: &str) -> Vec<Value> {
        self.backup_raw(name)
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or(Value::String(l.to_owned())))
            .collect()
    }

    /// The `.jsonl` backup of `name` as text.
    pub fn backup_raw(&self, name: &str) -> String {
        std::fs::read_to_string(self.sessions_dir().join(format!("{name}.jsonl")))
            .unwrap_or_default()
    }

    /// The `.meta.json` of `name`.
    pub fn meta(&self, name: &str) -> Value {
        let text = std::fs::read_to_string(self.sessions_dir().join(format!("{name}.meta.json")))
            .expect("meta file");
        serde_json::from_str(&text).expect("meta JSON")
    }

    /// The API's session record for `name` in this project.
    pub async fn session(&self, name: &str) -> Option<agent_orchestrator::wire::Session> {
        let client = agent_orchestrator::client::SessionClient::new(&self.url()).expect("client");
        let project = self.project();
        client
            .get_session_by_name(name, Some(&project.to_string_lossy()))
            .await
            .expect("lookup")
    }

    /// The API's events for session `name`, as JSON.
    pub async fn events(&self, name: &str) -> Vec<Value> {
        let session = self.session(name).await.expect("session in API");
        let (status, body) = super::Http::new(&self.url())
            .get(&format!("/sessions/{}/events", session.session_id))
            .await;
        assert_eq!(status, 200);
        body["events"].as_array().expect("events").clone()
    }
}

/// `event_type` of each event, with the role for messages (`message:user`).
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["role"].as_str() {
            Some(role) => format!("message:{role}"),
            None => e["event_type"].as_str().unwrap_or("?").to_owned(),
        })
        .collect()
}

/// stdout and stderr as text.
pub fn texts(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// True when `dir` holds no file at all (nothing was written).
pub fn is_empty_dir(dir: &Path) -> bool {
    std::fs::read_dir(dir).map_or(true, |mut d| d.next().is_none())
}
