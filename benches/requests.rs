//! A person in the loop, timed against the limits, each next to a
//! baseline measured in the same run:
//!
//! - from the CLI's `can_use_tool` line (the fake notes when it is out) to
//!   the request being visible in the API (its `permission_request` event
//!   on the live feed, which is sent once it is committed); target < 50 ms.
//!   Measured two ways, interleaved: with the fake's lines in a burst (the
//!   request comes a few milliseconds after the run began, behind the run's
//!   first events in the runner's queue: the worst case), and with 50 ms
//!   between its lines (a model's pause, as a real run has). Baseline: an
//!   event posted straight to the API, until it is on the feed.
//! - from a decision POSTed to the API to the CLI reading its answer (the
//!   fake notes when); target < 50 ms. Baseline: the POST's own answer.
//!
//! Runs `ao-new NAME --permission-mode default` with the fake CLI's
//! `permission:FILE` scenario against a session manager of its own. Run
//! with `cargo bench --bench requests` (AO_BENCH_RUNS=N to change the count).

use std::collections::HashMap;
use std::io::Write;
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use agent_orchestrator::client::SessionClient;
use agent_orchestrator::feed::Feed;
use agent_orchestrator::token::Token;
use agent_orchestrator::wire::{Decision, DecisionBody, Event, EventType, LiveMessage};

mod common;
mod fake;
mod project;
use common::{ms, percentile, verdict};
use project::{Bench, Env};

const TARGET_MS: f64 = 50.0;

fn row(label: &str, times: &[Duration]) {
    common::row(label, 46, times);
}

/// `ao-new NAME --permission-mode default`, its fake CLI asking to write
/// `NAME.txt` (`pause`: 50 ms before each of its lines) and noting when
/// into `times`.
fn ask(env: &Env<'_>, name: &str, times: &Path, pause: bool) -> Child {
    let slow = if pause { ",slow:50" } else { "" };
    let mut child = env
        .command("ao-new")
        .args([name, "--permission-mode", "default"])
        .env(
            "FAKE_CLAUDE_SCENARIO",
            format!("permission:{name}.txt{slow}"),
        )
        .env("FAKE_CLAUDE_TIMES", times)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ao-new");
    let _ = child.stdin.take().expect("stdin").write_all(b"a task");
    child
}

/// What the fake CLI noted in `times`: (request id, what) -> when.
fn notes(times: &Path) -> HashMap<(String, String), SystemTime> {
    std::fs::read_to_string(times)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| {
            let ns: u64 = v["at_ns"].as_str()?.parse().ok()?;
            Some((
                (
                    v["request_id"].as_str()?.to_owned(),
                    v["what"].as_str()?.to_owned(),
                ),
                UNIX_EPOCH + Duration::from_nanos(ns),
            ))
        })
        .collect()
}

/// `later - earlier` on this machine's clock (zero if the clock stepped back).
fn since(earlier: SystemTime, later: SystemTime) -> Duration {
    later.duration_since(earlier).unwrap_or_default()
}

/// The next `permission_request` event on the feed: its session, request
/// id, and when it arrived.
async fn next_request(feed: &mut Feed) -> (String, String, SystemTime) {
    loop {
        let message = feed.next().await.expect("the live feed");
        let now = SystemTime::now();
        if let LiveMessage::Event { data } = message
            && data["event_type"] == "permission_request"
        {
            let field = |k: &str| data[k].as_str().expect(k).to_owned();
            return (field("session_id"), field("request_id"), now);
        }
    }
}

fn main() {
    let runs = project::runs(30);
    let bench = Bench::start();
    let env = bench.env();
    let times = bench.project.with_file_name("times.jsonl");
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let token = Token::read_file(env.token_file).expect("the local token");
    let client = SessionClient::new(env.url)
        .expect("client")
        .with_token(Some(token));
    let mut feed = runtime
        .block_on(Feed::open(&client, &[], false))
        .expect("the live feed");

    let mut burst = Vec::new();
    let mut paused = Vec::new();
    let mut answered = Vec::new();
    let mut posts = Vec::new();
    let mut session = None;
    // The first two runs warm up (page cache, first connections).
    for i in 0..2 * (runs + 1) {
        let name = format!("ask-{i}");
        let pause = i % 2 == 0;
        let mut runner = ask(&env, &name, &times, pause);
        let (session_id, request_id, seen) = runtime.block_on(next_request(&mut feed));
        let listed = runtime
            .block_on(client.pending_requests(&session_id))
            .expect("GET requests");
        assert!(
            listed.iter().any(|r| r.request_id == request_id),
            "the request is in the API"
        );
        let allow = DecisionBody {
            decision: Decision::Allow,
            message: None,
            always: None,
            answers: None,
            decided_by: None,
        };
        let posted = SystemTime::now();
        let started = Instant::now();
        runtime
            .block_on(client.decide(&session_id, &request_id, &allow))
            .expect("POST decision");
        let post = started.elapsed();
        let status = runner.wait().expect("ao-new");
        assert!(status.success(), "ao-new {name} failed");
        let notes = notes(&times);
        let asked = notes[&(request_id.clone(), "asked".to_owned())];
        let read = notes[&(request_id.clone(), "answered".to_owned())];
        if i > 1 {
            match pause {
                true => paused.push(since(asked, seen)),
                false => burst.push(since(asked, seen)),
            }
            answered.push(since(posted, read));
            posts.push(post);
        }
        session = Some((session_id, name));
    }

    // Baseline: an event posted straight to the API, until it is on the feed.
    let (session_id, name) = session.expect("a session");
    let mut straight = Vec::new();
    for i in 0..runs {
        let mut event = Event::new(
            EventType::PreTool,
            &session_id,
            &name,
            agent_orchestrator::wire::now_rfc3339(),
        );
        event.tool_name = Some(format!("baseline-{i}"));
        let sent = Instant::now();
        runtime
            .block_on(client.add_event(&session_id, &event))
            .expect("POST event");
        runtime.block_on(async {
            loop {
                if let Some(LiveMessage::Event { data }) = feed.next().await
                    && data["tool_name"] == format!("baseline-{i}").as_str()
                {
                    break;
                }
            }
        });
        straight.push(sent.elapsed());
    }

    assert_eq!(
        env.run("ao-requests", &[]).trim(),
        "No requests are waiting",
        "every request was answered"
    );
    println!("requests benchmark: {runs} runs of each kind, fake claude, session manager up");
    println!("{:<46} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    row("event POSTed until on the feed (baseline)", &straight);
    row("can_use_tool until visible in the API, burst", &burst);
    row("the same, 50 ms between the CLI's lines", &paused);
    row("decision POST, its answer (baseline)", &posts);
    row("decision POSTed until the CLI reads it", &answered);
    println!();
    for (label, times) in [("burst", &burst), ("paused", &paused)] {
        let worst = ms(percentile(times, 1.0));
        println!(
            "request visible in the API, {label:<6} (max) {worst:>8.2} ms   target < {TARGET_MS} ms   {}",
            verdict(worst < TARGET_MS)
        );
    }
    let worst = ms(percentile(&answered, 1.0));
    println!(
        "decision reaches the CLI (max)              {worst:>8.2} ms   target < {TARGET_MS} ms   {}",
        verdict(worst < TARGET_MS)
    );
}
