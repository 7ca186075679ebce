//! Runs launched on hosts (issue 25), each figure next to its target and a
//! baseline measured in the same run:
//!
//! - `POST /runs` until the run's CLI has started on an `ao-host` (its
//!   `run_start` stored, seen on the live feed: the CLI was spawned, took
//!   `initialize` and the prompt), one run at a time, against the fake
//!   CLI's own start; target: p99 < 50 ms on loopback.
//! - 50 runs posted at once over two hosts of capacity 4: every run
//!   completes, and each started exactly one CLI (none twice).
//!
//! Run with `cargo bench --bench hosts` (AO_BENCH_RUNS=N for the count of
//! timed runs, default 100).

use std::collections::HashMap;
use std::path::Path;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use agent_orchestrator::client::SessionClient;
use agent_orchestrator::feed::Feed;
use agent_orchestrator::token::Token;
use agent_orchestrator::wire::{LiveMessage, RunCreate, RunStatus};

mod common;
mod fake;
use common::{ms, percentile, start_reading, start_server, verdict};

const SPAWN_LIMIT_MS: f64 = 50.0;
const BURST: usize = 50;
const CAPACITY: u32 = 4;

/// A process killed when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn program(name: &str) -> Command {
    Command::new(Path::new(env!("CARGO_BIN_EXE_ao-new")).with_file_name(name))
}

/// An `ao-host` with its own HOME and fake CLI log, serving `project`.
fn host(root: &Path, name: &str, url: &str, token: &str, project: &Path) -> Proc {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).expect("host dir");
    let mut cmd = program("ao-host");
    cmd.current_dir(project)
        .env("HOME", dir.join("home"))
        .env("XDG_DATA_HOME", dir.join("home/.local/share"))
        .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", url)
        .env("AGENT_ORCHESTRATOR_TOKEN", token)
        .env("FAKE_CLAUDE_LOG", dir.join("fake-log.jsonl"))
        .env("RUST_LOG", "warn")
        .args(["--name", name, "--label", "bench", "--capacity"])
        .arg(CAPACITY.to_string())
        .arg("--claude-path")
        .arg(fake::fake_claude())
        .arg("--project")
        .arg(project);
    let (child, line) = start_reading(cmd);
    assert!(line.starts_with("host "), "{name} did not register: {line}");
    Proc(child)
}

/// What the CLIs a host started read on stdin (their prompts among it),
/// one per CLI, from its fake CLI's log.
fn started(root: &Path, host: &str) -> Vec<String> {
    std::fs::read_to_string(root.join(host).join("fake-log.jsonl"))
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .map(|v| v["stdin"].to_string())
        .collect()
}

/// The prompt of run `name`; its CLI's stdin holds it.
fn prompt(name: &str, scenario: &str) -> String {
    format!("{scenario}task {name}.")
}

fn main() {
    let runs = std::env::var("AO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(100);
    let root = tempfile::tempdir().expect("temp dir");
    let db = root.path().join("sm.db");
    let (server, url) = start_server(&db);
    let _sm = Proc(server);
    // The session manager's own host takes no run here: each names a
    // host, or a label only the ao-hosts have.
    let token = Token::read_file(&common::local_token_file(&db))
        .expect("the local token the session manager made");
    // Both serve one folder, so that the label leaves the choice to the
    // dispatcher (the host with most room).
    let shared = root.path().join("project");
    std::fs::create_dir_all(&shared).expect("project dir");
    let shared = shared.canonicalize().expect("project");
    let _a = host(root.path(), "host-a", &url, token.expose(), &shared);
    let _b = host(root.path(), "host-b", &url, token.expose(), &shared);
    let client = SessionClient::new(&url)
        .expect("client")
        .with_token(Some(token));
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    for _ in 0..5 {
        fake::cli_start();
    }
    let mut bare = Vec::new();
    for _ in 0..runs {
        bare.push(fake::cli_start());
    }
    let (answers, to_running, mut names) = runtime.block_on(one_at_a_time(&client, &shared, runs));
    let burst = runtime.block_on(burst(&client, &shared));
    names.extend(burst.names.iter().cloned());

    println!(
        "hosts benchmark: {runs} runs one at a time, then {BURST} at once over 2 ao-host processes of capacity {CAPACITY}; fake claude, loopback"
    );
    println!("{:<46} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    common::row("CLI start (spawn to initialize answer)", 46, &bare);
    common::row("POST /runs answered (202)", 46, &answers);
    common::row("POST /runs to the CLI running on its host", 46, &to_running);
    let p50 = ms(percentile(&to_running, 0.5));
    let p99 = ms(percentile(&to_running, 0.99));
    println!();
    println!(
        "POST /runs to the CLI running, p50 {p50:>7.2} ms p99 {p99:>7.2} ms   target p99 < {SPAWN_LIMIT_MS} ms   {}",
        verdict(p99 < SPAWN_LIMIT_MS)
    );
    println!(
        "  of which beyond the CLI's own start (p50)  {:>7.2} ms",
        p50 - ms(percentile(&bare, 0.5))
    );
    let a = started(root.path(), "host-a");
    let b = started(root.path(), "host-b");
    let starts = |name: &String| {
        let needle = format!("task {name}.");
        a.iter()
            .chain(&b)
            .filter(|stdin| stdin.contains(&needle))
            .count()
    };
    let twice = names.iter().filter(|n| starts(n) > 1).count();
    let never = names.iter().filter(|n| starts(n) == 0).count();
    let cli_total = a.len() + b.len();
    let ok = burst.completed == BURST && twice == 0 && never == 0 && cli_total == names.len();
    println!(
        "{BURST} runs at once: {}/{BURST} completed in {:.2} s, at most {} queued at once; {} runs in all, {} CLIs started (host-a {}, host-b {}), {twice} runs started twice, {never} never   target all complete, none twice   {}",
        burst.completed,
        burst.took.as_secs_f64(),
        burst.most_queued,
        names.len(),
        cli_total,
        a.len(),
        b.len(),
        verdict(ok)
    );
}

/// Runs posted one after the other, each waited for: how long `POST`
/// took to answer, and to the run's `run_start` on the live feed.
async fn one_at_a_time(
    client: &SessionClient,
    project: &Path,
    runs: usize,
) -> (Vec<Duration>, Vec<Duration>, Vec<String>) {
    let mut feed = Feed::open(client, &[], false).await.expect("feed");
    let mut answers = Vec::new();
    let mut running = Vec::new();
    let mut names = Vec::new();
    for i in 0..runs + 5 {
        let name = format!("one-{i}");
        let create = RunCreate {
            prompt: prompt(&name, ""),
            session_name: name.clone(),
            project_dir: Some(project.to_string_lossy().into_owned()),
            host: Some("host-a".to_owned()),
            ..RunCreate::default()
        };
        let t = Instant::now();
        let run = client.create_run(&create).await.expect("POST /runs");
        let answered = t.elapsed();
        let mut started = None;
        loop {
            match feed.next().await.expect("the feed") {
                LiveMessage::RunUpdated { run: r } if r.run_id == run.run_id => {
                    if r.status == RunStatus::Running && started.is_none() {
                        started = Some(t.elapsed());
                    }
                    if !r.status.is_open() {
                        assert_eq!(r.status, RunStatus::Completed, "{r:?}");
                        break;
                    }
                }
                _ => {}
            }
        }
        // The first runs warm up the page cache and the connections.
        if i >= 5 {
            answers.push(answered);
            running.push(started.expect("it ran"));
        }
        names.push(name);
    }
    (answers, running, names)
}

struct Burst {
    names: Vec<String>,
    completed: usize,
    most_queued: usize,
    took: Duration,
}

/// `BURST` runs posted at once for either host (a label both have).
async fn burst(client: &SessionClient, project: &Path) -> Burst {
    let mut feed = Feed::open(client, &[], false).await.expect("feed");
    let t = Instant::now();
    let mut ids = Vec::new();
    let mut names = Vec::new();
    for i in 0..BURST {
        let name = format!("burst-{i}");
        let create = RunCreate {
            prompt: prompt(&name, "SCENARIO=slow:20 "),
            session_name: name.clone(),
            project_dir: Some(project.to_string_lossy().into_owned()),
            labels: vec!["bench".to_owned()],
            ..RunCreate::default()
        };
        let run = client.create_run(&create).await.expect("POST /runs");
        ids.push((run.run_id, run.status));
        names.push(name);
    }
    let mut open: HashMap<String, RunStatus> = ids.into_iter().collect();
    let mut completed = 0;
    let mut most_queued = 0;
    while !open.is_empty() {
        if let LiveMessage::RunUpdated { run } = feed.next().await.expect("the feed")
            && let Some(status) = open.get_mut(&run.run_id)
        {
            *status = run.status;
            if !run.status.is_open() {
                open.remove(&run.run_id);
                completed += usize::from(run.status == RunStatus::Completed);
            }
            let queued = open.values().filter(|s| **s == RunStatus::Queued).count();
            most_queued = most_queued.max(queued);
        }
    }
    Burst {
        names,
        completed,
        most_queued,
        took: t.elapsed(),
    }
}
