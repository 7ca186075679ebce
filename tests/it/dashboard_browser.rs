//! The dashboard in a real browser: tests/browser/dashboard.mjs drives
//! Debian's headless Chromium through playwright-core while this test makes
//! real runs with `ao-new` / `ao-resume` and the fake claude, and the page
//! must show them without a reload. Its screenshots are copied to
//! `target/test-artifacts/`.
//!
//! Needs `node`, Chromium (`CHROMIUM_PATH`, default /usr/bin/chromium) and
//! `npm ci --prefix tests/browser`. Without them the test is skipped with a
//! note on stderr, or fails when `AO_REQUIRE_BROWSER=1` (as in CI).

use std::io::{BufRead, BufReader, Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, Command, Stdio};
use std::sync::mpsc::{Receiver, RecvTimeoutError, channel};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::Project;

/// How long one step of the script may take before the test gives up; the
/// script's own steps time out well before this.
const STEP: Duration = Duration::from_secs(90);
const NAME: &str = "dashboard-demo";

#[test]
fn dashboard_shows_runs_live_in_chromium() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let project = Project::with_server();
    let work = project.scratch();
    let shot = work.join("dashboard.png");
    // Dropped after the script has exited, so a failure's screenshot is kept too.
    let artifacts = Artifacts::new(
        work,
        &[
            "dashboard.png",
            "dashboard-phone.png",
            "dashboard-failure.png",
        ],
    );
    let started = Instant::now();

    let mut script = Script::spawn(
        &chromium,
        "dashboard.mjs",
        &[format!("{}/", project.url()).as_ref(), shot.as_os_str()],
    );
    script.expect("READY");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    // What the last run cost, as the page should show it.
    let last_cost = || {
        let events = runtime.block_on(project.events(NAME));
        let end = events.last().expect("the run's end");
        format!("${:.6}", end["cost_usd"].as_f64().expect("a cost"))
    };

    // Text that would become markup if the page used innerHTML, and a newline.
    let prompt = "List the <b>files</b>\nthen say hello";
    let result = run(&project, "ao-new", prompt, 2);
    let first_cost = last_cost();
    script.send(
        &json!({"name": NAME, "prompt": prompt, "result": result, "tools": 2, "cost": first_cost}),
    );
    script.expect("OPENED");

    let prompt = "And once more";
    let result = run(&project, "ao-resume", prompt, 1);
    let cost = last_cost();
    let session = runtime
        .block_on(project.session(NAME))
        .expect("the session");
    let total = format!("${:.6}", session.cost_usd.expect("a cost"));
    script.send(&json!({"name": NAME, "prompt": prompt, "result": result, "tools": 1, "cost": cost, "total": total}));
    script.expect("RESUMED");

    // A running session ticks, shows its running tool call, and gets a
    // Stop button; clicking it stops the run.
    let hanging = project.spawn(
        "ao-new",
        &["long-job"],
        "please wait",
        "tools:1,slow:2000,hang",
    );
    runtime.block_on(crate::support::project::eventually(
        "long-job to run",
        async || project.session("long-job").await.is_some(),
    ));
    script.command("STOP", &json!({"name": "long-job"}));
    let out = hanging.wait();
    assert_eq!(out.code, Some(143), "stopped from the page: {out:?}");
    let events = runtime.block_on(project.events("long-job"));
    assert_eq!(events.last().unwrap()["reason"], "stopped");
    script.expect("STOPPED");

    // A session started from inside the first one's run sits under it
    // (this one is a fork of it too, as ao-fork run from that run makes).
    let parent = runtime.block_on(project.session(NAME)).expect("the parent");
    let (status, _) = runtime.block_on(project.http().post(
        "/sessions",
        json!({"session_id": "child-session-id", "session_name": "helper",
               "project_dir": project.dir_text(), "parent_session_id": parent.session_id,
               "forked_from": parent.session_id}),
    ));
    assert_eq!(status, 200);
    script.command("CHILD", &json!({"parent": NAME, "child": "helper"}));
    script.expect("CHILDREN");
    // A fork made from outside any session (ao-fork in a terminal) has no
    // parent: it sits beside its origin all the same.
    let (status, _) = runtime.block_on(project.http().post(
        "/sessions",
        json!({"session_id": "fork-session-id", "session_name": "alternative",
               "project_dir": project.dir_text(), "forked_from": parent.session_id}),
    ));
    assert_eq!(status, 200);
    script.command("FORK", &json!({"origin": NAME, "fork": "alternative"}));
    script.expect("FORKED");
    script.expect("PASS");
    let code = script.finish();
    eprintln!("browser test took {:.1?}", started.elapsed());

    assert_eq!(code, Some(0), "the script failed:\n{}", script.transcript());
    for name in ["dashboard.png", "dashboard-phone.png"] {
        let bytes = std::fs::read(work.join(name)).unwrap_or_default();
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n"),
            "{name} is not a PNG ({} bytes)",
            bytes.len()
        );
    }
    eprintln!("screenshots in {}", artifacts.to.display());
}

/// Copies the screenshots in `from` to `target/test-artifacts/` when dropped.
pub struct Artifacts {
    from: PathBuf,
    to: PathBuf,
}

impl Artifacts {
    /// Also removes the screenshots `names` of an earlier run.
    pub fn new(from: &Path, names: &[&str]) -> Artifacts {
        let to = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .parent()
            .expect("target dir")
            .join("test-artifacts");
        std::fs::create_dir_all(&to).expect("artifacts dir");
        for name in names {
            let _ = std::fs::remove_file(to.join(name));
        }
        Artifacts {
            from: from.to_owned(),
            to,
        }
    }
}

impl Drop for Artifacts {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(&self.from) else {
            return;
        };
        for entry in entries.flatten() {
            let name = entry.file_name();
            if name.to_string_lossy().ends_with(".png") {
                let _ = std::fs::copy(entry.path(), self.to.join(&name));
            }
        }
    }
}

/// Checks that each screenshot `names` in `work` is a PNG; with
/// `AO_UPDATE_DOCS=1`, makes it the README's (in `docs/`).
pub fn screenshots_for_docs(work: &Path, names: &[&str]) {
    for name in names {
        let bytes = std::fs::read(work.join(name)).unwrap_or_default();
        assert!(bytes.starts_with(b"\x89PNG"), "{name}");
        if std::env::var_os("AO_UPDATE_DOCS").is_some() {
            let docs = Path::new(env!("CARGO_MANIFEST_DIR"))
                .join("docs")
                .join(name);
            std::fs::write(&docs, &bytes).expect("write docs/");
        }
    }
}

/// Chromium's path when node, Chromium and the script's packages are all
/// there; otherwise `None` after a note, or a panic under AO_REQUIRE_BROWSER=1.
pub fn browser_or_skip() -> Option<PathBuf> {
    let chromium = PathBuf::from(
        std::env::var_os("CHROMIUM_PATH").unwrap_or_else(|| "/usr/bin/chromium".into()),
    );
    let package = browser_dir().join("node_modules/playwright-core/package.json");
    let node = Command::new("node")
        .arg("--version")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    let missing = if !node {
        "node is not on PATH"
    } else if !chromium.is_file() {
        "Chromium is missing (apt-get install chromium chromium-driver, or set CHROMIUM_PATH)"
    } else if !package.is_file() {
        "playwright-core is not installed (npm ci --prefix tests/browser)"
    } else {
        return Some(chromium);
    };
    if std::env::var("AO_REQUIRE_BROWSER").as_deref() == Ok("1") {
        panic!("AO_REQUIRE_BROWSER=1 but {missing}");
    }
    eprintln!("skipping a browser test: {missing}");
    None
}

pub fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

/// Makes one run of session NAME in `project` with the fake claude making
/// `tools` tool calls; answers what it printed.
fn run(project: &Project, binary: &str, prompt: &str, tools: u32) -> String {
    let out = project.run(binary, &[NAME], prompt, &format!("tools:{tools}"));
    assert_eq!(out.code, Some(0), "{binary} failed: {out:?}");
    out.stdout.trim_end().to_owned()
}

/// A node script of tests/browser, with its stdout read line by line and
/// its stderr kept.
pub struct Script {
    child: Child,
    stdin: Option<ChildStdin>,
    lines: Receiver<String>,
    seen: Vec<String>,
    stderr: Arc<Mutex<String>>,
}

impl Script {
    /// Starts `node tests/browser/NAME ARGS...` with Chromium at `chromium`.
    pub fn spawn(chromium: &Path, name: &str, args: &[&std::ffi::OsStr]) -> Script {
        let mut child = Command::new("node")
            .arg(browser_dir().join(name))
            .args(args)
            .env("CHROMIUM_PATH", chromium)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start node");
        let (tx, lines) = channel();
        let stdout = child.stdout.take().expect("stdout");
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let stderr = Arc::new(Mutex::new(String::new()));
        let mut pipe = child.stderr.take().expect("stderr");
        let keep = Arc::clone(&stderr);
        std::thread::spawn(move || {
            let mut text = String::new();
            let _ = pipe.read_to_string(&mut text);
            keep.lock().expect("stderr lock").push_str(&text);
        });
        Script {
            stdin: child.stdin.take(),
            child,
            lines,
            seen: Vec::new(),
            stderr,
        }
    }

    /// Reads lines until `word`; panics with the transcript on `FAIL`, on
    /// the script's exit, or after [`STEP`].
    pub fn expect(&mut self, word: &str) {
        let deadline = Instant::now() + STEP;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    let done = line == word;
                    self.seen.push(line);
                    if done {
                        return;
                    }
                }
                Err(RecvTimeoutError::Timeout) => {
                    panic!("no {word} from the script:\n{}", self.transcript())
                }
                Err(RecvTimeoutError::Disconnected) => {
                    let _ = self.child.wait();
                    panic!("the script ended before {word}:\n{}", self.transcript())
                }
            }
        }
    }

    fn send(&mut self, go: &serde_json::Value) {
        self.command("GO", go);
    }

    pub fn command(&mut self, word: &str, body: &serde_json::Value) {
        let stdin = self.stdin.as_mut().expect("stdin open");
        writeln!(stdin, "{word} {body}").expect("write to the script");
        stdin.flush().expect("flush");
    }

    /// Waits for the script to exit; answers its exit code.
    pub fn finish(&mut self) -> Option<i32> {
        self.stdin.take();
        let status = self.child.wait().expect("wait for node");
        // Let the reader threads drain what is left.
        while let Ok(line) = self.lines.recv_timeout(Duration::from_secs(5)) {
            self.seen.push(line);
        }
        status.code()
    }

    pub fn transcript(&self) -> String {
        let stderr = self.stderr.lock().map(|s| s.clone()).unwrap_or_default();
        format!("--- stdout\n{}\n--- stderr\n{stderr}", self.seen.join("\n"))
    }
}

impl Drop for Script {
    /// Closing stdin makes the script fail and close Chromium; kill it if
    /// it has not gone after a while.
    fn drop(&mut self) {
        self.stdin.take();
        let deadline = Instant::now() + Duration::from_secs(10);
        while Instant::now() < deadline {
            if !matches!(self.child.try_wait(), Ok(None)) {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
