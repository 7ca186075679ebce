//! How fast `ao-status NAME` and `ao-get-result NAME` answer as whole
//! processes, the way an orchestrating agent polls them, against a session
//! manager holding 10,000 sessions. Target: median under 10 ms each.
//!
//! Run with `cargo bench --bench commands` (release binaries). Prints
//! median / p90 / p99 per command next to baselines measured in the same
//! run: spawning `/bin/true`, spawning `ao-status --version` (process
//! start-up alone), and one raw HTTP GET of the lookup the commands send.
//!
//! Half of the sessions also have backup files in the project's sessions
//! directory, as sessions the runner made do; the other half are known to
//! the API only. The two take different paths in `ao-get-result`.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use agent_orchestrator::backup::{
    LogWriter, Meta, RunCompletedLine, SessionFiles, UserMessageLine,
};
use agent_orchestrator::client::SessionClient;
use agent_orchestrator::name::SessionName;
use agent_orchestrator::wire::{ContentBlock, Event, EventType, Role, RunEndReason, SessionCreate};

const SESSIONS: usize = 10_000;
const RUNS: usize = 200;
const CONCURRENCY: usize = 32;
const TARGET: Duration = Duration::from_millis(10);
const TIMESTAMP: &str = "2026-01-01T00:00:00.000Z";

type Failure = Box<dyn std::error::Error>;

fn main() -> Result<(), Failure> {
    // `cargo bench` passes `--bench`; a filter argument means "not us".
    if std::env::args().skip(1).any(|a| !a.starts_with("--")) {
        return Ok(());
    }
    let work = tempfile::tempdir()?;
    std::fs::create_dir_all(work.path().join("project"))?;
    let project = work.path().join("project").canonicalize()?;
    let mut server = Server::start(&work.path().join("bench.db"))?;
    let url = server.url.clone();
    println!("ao-session-manager at {url}, project {}", project.display());

    let started = Instant::now();
    fill(&url, &project)?;
    println!(
        "filled {SESSIONS} sessions (4 events each; half with backup files) in {:.1} s",
        started.elapsed().as_secs_f64()
    );

    let status = env!("CARGO_BIN_EXE_ao-status");
    let get_result = env!("CARGO_BIN_EXE_ao-get-result");
    let env = [
        ("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", url.as_str()),
        ("AGENT_ORCHESTRATOR_AUTOSTART", "0"),
    ];
    // Sessions spread across the whole set, alternating the two halves
    // (even numbers have backup files).
    let picks: Vec<usize> = (0..RUNS).map(|i| (i * 4_999 + 7) % SESSIONS).collect();
    let names: Vec<String> = picks.iter().map(|&i| name(i)).collect();
    let with_backup: Vec<String> = picks
        .iter()
        .filter(|&&i| i % 2 == 0)
        .map(|&i| name(i))
        .collect();
    let api_only: Vec<String> = picks
        .iter()
        .filter(|&&i| i % 2 == 1)
        .map(|&i| name(i))
        .collect();

    let mut rows = Vec::new();
    rows.push(Row::new(
        "spawn /bin/true",
        time(RUNS, |_| run(Command::new("/bin/true"), &project, None))?,
        false,
    ));
    rows.push(Row::new(
        "ao-status --version",
        time(RUNS, |_| {
            let mut cmd = Command::new(status);
            cmd.arg("--version");
            run(cmd, &project, None)
        })?,
        false,
    ));
    let lookup = format!(
        "/sessions?name={}&project_dir={}",
        name(SESSIONS / 2),
        encode(&project.to_string_lossy())
    );
    rows.push(Row::new(
        "raw HTTP GET (lookup)",
        time(RUNS, |_| raw_get(&url, &lookup))?,
        false,
    ));
    for (label, bin, expect) in [
        ("ao-status NAME", status, "finished\n"),
        ("ao-get-result NAME", get_result, "the answer of "),
    ] {
        rows.push(Row::new(
            label,
            time(RUNS, |i| {
                let mut cmd = Command::new(bin);
                cmd.arg(&names[i]).envs(env);
                run(cmd, &project, Some(expect))
            })?,
            true,
        ));
    }
    for (label, subset) in [
        ("  with backup files", &with_backup),
        ("  API only", &api_only),
    ] {
        for (cmd_label, bin, expect) in [
            ("ao-status", status, "finished\n"),
            ("ao-get-result", get_result, "the answer of "),
        ] {
            rows.push(Row::new(
                &format!("{cmd_label} {label}"),
                time(subset.len(), |i| {
                    let mut cmd = Command::new(bin);
                    cmd.arg(&subset[i]).envs(env);
                    run(cmd, &project, Some(expect))
                })?,
                false,
            ));
        }
    }
    server.stop();

    println!();
    println!(
        "{:<40} {:>6} {:>9} {:>9} {:>9} {:>9}",
        "", "runs", "median", "p90", "p99", "max"
    );
    let mut pass = true;
    for row in &rows {
        let verdict = if row.judged {
            let ok = row.median < TARGET;
            pass &= ok;
            if ok { "  PASS" } else { "  FAIL" }
        } else {
            ""
        };
        println!(
            "{:<40} {:>6} {:>9} {:>9} {:>9} {:>9}{verdict}",
            row.label,
            row.runs,
            ms(row.median),
            ms(row.p90),
            ms(row.p99),
            ms(row.max)
        );
    }
    println!();
    println!(
        "target: median under {} per command: {}",
        ms(TARGET),
        if pass { "PASS" } else { "FAIL" }
    );
    Ok(())
}

fn name(i: usize) -> String {
    format!("bench-{i:05}")
}

/// Creates every session with a finished run through the API (many
/// requests in flight), and backup files for the even-numbered half.
fn fill(url: &str, project: &Path) -> Result<(), Failure> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    let client = Arc::new(SessionClient::with_timeout(url, Duration::from_secs(30))?);
    let dir = project.to_string_lossy().into_owned();
    runtime.block_on(async {
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut tasks = Vec::new();
        for _ in 0..CONCURRENCY {
            let (client, next, dir) = (client.clone(), next.clone(), dir.clone());
            tasks.push(tokio::spawn(async move {
                loop {
                    let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                    if i >= SESSIONS {
                        return Ok::<(), String>(());
                    }
                    create(&client, i, &dir).await.map_err(|e| e.to_string())?;
                }
            }));
        }
        for task in tasks {
            task.await.map_err(|e| e.to_string())??;
        }
        Ok::<(), String>(())
    })?;
    let sessions_dir = project.join(".agent-orchestrator/agent-sessions");
    for i in (0..SESSIONS).step_by(2) {
        write_backup(&sessions_dir, i, &dir)?;
    }
    Ok(())
}

fn session_id(i: usize) -> String {
    format!("00000000-0000-4000-8000-{i:012}")
}

async fn create(
    client: &SessionClient,
    i: usize,
    project: &str,
) -> Result<(), agent_orchestrator::client::ClientError> {
    let (id, name) = (session_id(i), name(i));
    client
        .create_session(&SessionCreate {
            session_id: id.clone(),
            session_name: name.clone(),
            project_dir: Some(project.to_owned()),
            ..SessionCreate::default()
        })
        .await?;
    let event = |t| Event::new(t, &id, &name, TIMESTAMP);
    let message = |role, text: String| {
        let mut e = event(EventType::Message);
        e.role = Some(role);
        e.content = Some(vec![ContentBlock::text(text)]);
        e
    };
    let mut end = event(EventType::RunCompleted);
    end.exit_code = Some(0);
    end.reason = Some("completed".to_owned());
    for e in [
        event(EventType::RunStart),
        message(Role::User, format!("task {i}")),
        message(Role::Assistant, format!("the answer of {name}")),
        end,
    ] {
        client.add_event(&id, &e).await?;
    }
    Ok(())
}

/// The files the runner would have left after one successful run.
fn write_backup(dir: &Path, i: usize, project: &str) -> Result<(), Failure> {
    let (id, name) = (session_id(i), name(i));
    let files = SessionFiles::new(dir, &SessionName::parse(&name)?);
    files.write_meta(&Meta {
        session_name: name.clone(),
        session_id: Some(id.clone()),
        project_dir: project.to_owned(),
        created_at: TIMESTAMP.to_owned(),
        ..Meta::default()
    })?;
    let (mut log, _) = LogWriter::open(&files.log_path())?;
    log.append(
        &UserMessageLine {
            timestamp: TIMESTAMP.to_owned(),
            content: format!("task {i}"),
            project_dir: project.to_owned(),
            ..UserMessageLine::default()
        }
        .to_line(),
    )?;
    let init = serde_json::json!({"type": "system", "subtype": "init", "session_id": id});
    log.append(init.to_string().as_bytes())?;
    let result = serde_json::json!({"type": "result", "subtype": "success", "is_error": false,
        "result": format!("the answer of {name}"), "session_id": id});
    log.append(result.to_string().as_bytes())?;
    log.append(
        &RunCompletedLine {
            timestamp: TIMESTAMP.to_owned(),
            exit_code: Some(0),
            reason: RunEndReason::Completed,
            error: None,
        }
        .to_line(),
    )?;
    Ok(())
}

/// Runs a command to completion in `cwd`; checks it succeeded and, when
/// `expect` is given, that stdout starts with it.
fn run(mut cmd: Command, cwd: &Path, expect: Option<&str>) -> Result<(), Failure> {
    let out = cmd
        .current_dir(cwd)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .output()?;
    let stdout = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() || expect.is_some_and(|e| !stdout.starts_with(e)) {
        return Err(format!(
            "{cmd:?}: {:?}, stdout {stdout:?}, stderr {:?}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    if !out.stderr.is_empty() {
        return Err(format!(
            "{cmd:?} wrote to stderr: {}",
            String::from_utf8_lossy(&out.stderr)
        )
        .into());
    }
    Ok(())
}

/// One GET on a fresh connection, read to the end: the floor of what a
/// command's one lookup costs.
fn raw_get(url: &str, path: &str) -> Result<(), Failure> {
    let addr = url.trim_start_matches("http://");
    let mut stream = TcpStream::connect(addr)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n"
    )?;
    let mut answer = String::new();
    stream.read_to_string(&mut answer)?;
    if !answer.starts_with("HTTP/1.1 200") || !answer.contains("bench-") {
        return Err(format!("unexpected answer: {answer}").into());
    }
    Ok(())
}

fn encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}

/// Times `runs` calls of `f` (after two unmeasured warm-up calls).
fn time(
    runs: usize,
    mut f: impl FnMut(usize) -> Result<(), Failure>,
) -> Result<Vec<Duration>, Failure> {
    for i in 0..2.min(runs) {
        f(i)?;
    }
    let mut times = Vec::with_capacity(runs);
    for i in 0..runs {
        let start = Instant::now();
        f(i)?;
        times.push(start.elapsed());
    }
    Ok(times)
}

struct Row {
    label: String,
    runs: usize,
    median: Duration,
    p90: Duration,
    p99: Duration,
    max: Duration,
    judged: bool,
}

impl Row {
    fn new(label: &str, mut times: Vec<Duration>, judged: bool) -> Row {
        times.sort();
        let at = |q: f64| times[((times.len() - 1) as f64 * q).round() as usize];
        Row {
            label: label.to_owned(),
            runs: times.len(),
            median: at(0.5),
            p90: at(0.9),
            p99: at(0.99),
            max: at(1.0),
            judged,
        }
    }
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

/// The release `ao-session-manager` on a free port, killed on drop.
struct Server {
    child: Option<Child>,
    url: String,
}

impl Server {
    fn start(db: &Path) -> Result<Server, Failure> {
        let mut child = Command::new(env!("CARGO_BIN_EXE_ao-session-manager"))
            .args(["--port", "0", "--db"])
            .arg(db)
            .env("RUST_LOG", "warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()?;
        let mut line = String::new();
        if let Some(out) = child.stdout.take() {
            BufReader::new(out).read_line(&mut line)?;
        }
        let Some(url) = line.trim().strip_prefix("listening on ") else {
            let _ = child.kill();
            return Err(format!("the session manager said {line:?}").into());
        };
        Ok(Server {
            url: url.to_owned(),
            child: Some(child),
        })
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.stop();
    }
}
