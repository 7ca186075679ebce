//! What the runner costs: the same scripted conversation (a prompt, three
//! tool calls with hook callbacks, an answer) played through the bare fake
//! `claude` with a minimal driver, and through `ao-new` with a session
//! manager up, interleaved in one run. Prints the runner's added wall time
//! (median) and its peak RSS, against the targets (20 ms, 20 MB).
//!
//! Run with `cargo bench --bench runner` (AO_BENCH_RUNS=N to change the count).

use std::io::{BufRead, BufReader, Read, Write};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use nix::sys::resource::{UsageWho, getrusage};

mod common;
mod fake;
use common::{ms, percentile, start_server, verdict};
use serde_json::{Value, json};

const SCENARIO: &str = "tools:3";
const PROMPT: &str = "Summarise the project in one line";

fn main() {
    let runs: usize = std::env::var("AO_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(60);
    let fake = fake::fake_claude();
    let ao_new = env!("CARGO_BIN_EXE_ao-new");
    let dir = tempfile::tempdir().expect("temp dir");
    let project = dir.path().join("project");
    std::fs::create_dir_all(&project).expect("project dir");
    let (mut server, url) = start_server(&dir.path().join("sm.db"));

    // Warm up both paths (page cache, first connection).
    bare(fake, &project);
    runner(ao_new, fake, &project, &url, "warmup");

    let mut bare_times = Vec::with_capacity(runs);
    let mut runner_times = Vec::with_capacity(runs);
    for i in 0..runs {
        bare_times.push(bare(fake, &project));
        runner_times.push(runner(ao_new, fake, &project, &url, &format!("bench-{i}")));
    }
    // The largest RSS of any finished child: ao-new (the fake is far smaller,
    // and the session manager is still running, so it is not counted).
    let peak_kib = getrusage(UsageWho::RUSAGE_CHILDREN)
        .map(|u| u.max_rss())
        .unwrap_or(0);
    let _ = server.kill();
    let _ = server.wait();

    let bare_med = percentile(&bare_times, 0.5);
    let run_med = percentile(&runner_times, 0.5);
    let added = run_med.saturating_sub(bare_med);
    let peak_mb = peak_kib as f64 / 1024.0;
    println!("runner benchmark: {runs} runs each, scenario {SCENARIO}, session manager up");
    println!("{:<34} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    common::row("bare fake claude (minimal driver)", 34, &bare_times);
    common::row("ao-new with the fake claude", 34, &runner_times);
    println!();
    println!(
        "added wall time (median)  {:>8.2} ms   target < 20 ms   {}",
        ms(added),
        verdict(ms(added) < 20.0)
    );
    println!(
        "peak RSS of ao-new        {:>8.2} MB   target < 20 MB   {}",
        peak_mb,
        verdict(peak_mb < 20.0)
    );
}

/// The conversation with nothing but the protocol: initialize, prompt,
/// answer each hook, close stdin after the result.
fn bare(fake: &std::path::Path, project: &std::path::Path) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(fake)
        .args(agent_orchestrator::claude::process::STREAM_JSON_ARGS)
        .current_dir(project)
        .env("FAKE_CLAUDE_SCENARIO", SCENARIO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fake");
    let mut stdin = child.stdin.take().expect("stdin");
    let stdout = BufReader::new(child.stdout.take().expect("stdout"));
    let send = |stdin: &mut std::process::ChildStdin, v: Value| {
        let mut line = v.to_string();
        line.push('\n');
        stdin.write_all(line.as_bytes()).expect("write");
    };
    send(
        &mut stdin,
        json!({"type": "control_request", "request_id": "req_1_init",
        "request": {"subtype": "initialize", "hooks": {"PostToolUse": [{"matcher": null, "hookCallbackIds": ["hook_0"]}]}}}),
    );
    let mut stdin = Some(stdin);
    for line in stdout.lines() {
        let line = line.expect("line");
        let v: Value = serde_json::from_str(&line).unwrap_or(Value::Null);
        let Some(pipe) = stdin.as_mut() else { continue };
        match v["type"].as_str() {
            Some("control_response") => send(
                pipe,
                json!({"type": "user",
                "message": {"role": "user", "content": PROMPT}, "parent_tool_use_id": null, "session_id": ""}),
            ),
            Some("control_request") => send(
                pipe,
                json!({"type": "control_response",
                "response": {"subtype": "success", "request_id": v["request_id"], "response": {}}}),
            ),
            Some("result") => stdin = None,
            _ => {}
        }
    }
    let status = child.wait().expect("wait");
    assert!(status.success(), "the bare fake failed");
    start.elapsed()
}

fn runner(
    ao_new: &str,
    fake: &std::path::Path,
    project: &std::path::Path,
    url: &str,
    name: &str,
) -> Duration {
    let start = Instant::now();
    let mut child = Command::new(ao_new)
        .arg(name)
        .current_dir(project)
        .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", url)
        .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", fake)
        .env("AGENT_ORCHESTRATOR_AUTOSTART", "0")
        .env("FAKE_CLAUDE_SCENARIO", SCENARIO)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn ao-new");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(PROMPT.as_bytes())
        .expect("prompt");
    let mut out = String::new();
    child
        .stdout
        .take()
        .expect("stdout")
        .read_to_string(&mut out)
        .expect("stdout");
    let output = child.wait_with_output().expect("wait");
    assert!(
        output.status.success() && out.starts_with("fake answer"),
        "ao-new failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    start.elapsed()
}
