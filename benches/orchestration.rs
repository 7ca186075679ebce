//! Fan out and fan in, timed against the limits, each next to a
//! baseline measured in the same run:
//!
//! - `ao-new NAME --detach` until it returns, against the CLI's own start
//!   (spawning the fake `claude` until its answer to `initialize`);
//!   target: detach < 50 ms + the CLI's start.
//! - `ao-wait NAME` after the run's `run_completed` is stored (seen on the
//!   session manager's live feed); target < 100 ms.
//! - `ao-stop NAME` until the runner has exited, through the control
//!   protocol (target < 2 s), and for a CLI that ignores the interrupt and
//!   SIGTERM (worst case, target < 7 s).
//!
//! Run with `cargo bench --bench orchestration` (AO_BENCH_RUNS=N to change the count).

use std::io::Write;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use agent_orchestrator::client::SessionClient;
use agent_orchestrator::feed::Feed;

mod common;
mod fake;
mod project;
use common::{ms, percentile, verdict};
use project::{Bench, Env};

fn median(times: &[Duration]) -> Duration {
    percentile(times, 0.5)
}

fn row(label: &str, times: &[Duration]) {
    common::row(label, 44, times);
}

fn main() {
    let runs = project::runs(20);
    let bench = Bench::start();
    let env = bench.env();
    let runtime = tokio::runtime::Runtime::new().expect("runtime");

    // Warm up (page cache, first connections).
    fake::cli_start();
    env.detach("warmup", "plain");
    env.run("ao-wait", &["warmup"]);

    let mut starts = Vec::new();
    let mut detaches = Vec::new();
    for i in 0..runs {
        starts.push(fake::cli_start());
        let t = Instant::now();
        env.detach(&format!("d-{i}"), "plain");
        detaches.push(t.elapsed());
    }
    let names: Vec<String> = (0..runs).map(|i| format!("d-{i}")).collect();
    let all: Vec<&str> = names.iter().map(String::as_str).collect();
    env.run("ao-wait", &all);

    let mut waits = Vec::new();
    for i in 0..runs {
        let name = format!("w-{i}");
        env.detach(&name, "tools:2,slow:100");
        waits.push(runtime.block_on(wait_latency(&env, &name)));
    }

    let mut stops = Vec::new();
    for i in 0..runs.min(10) {
        let name = format!("s-{i}");
        env.detach(&name, "hang");
        let t = Instant::now();
        let out = env.run("ao-stop", &[&name]);
        assert_eq!(out.trim(), format!("{name}: stopped"));
        stops.push(t.elapsed());
    }
    env.detach("stubborn", "hang,deaf,noterm");
    let t = Instant::now();
    env.run("ao-stop", &["stubborn"]);
    let worst = t.elapsed();

    println!("orchestration benchmark: {runs} runs each, fake claude, session manager up");
    println!("{:<44} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    row("CLI start (spawn to initialize answer)", &starts);
    row("ao-new --detach, until it returns", &detaches);
    row("ao-wait exit after run_completed stored", &waits);
    row("ao-stop to runner exit (control protocol)", &stops);
    row("ao-stop to runner exit (ignores it all)", &[worst]);
    println!();
    let added = ms(median(&detaches)) - ms(median(&starts));
    println!(
        "detach beyond the CLI's start (median) {:>8.2} ms   target < 50 ms    {}",
        added,
        verdict(added < 50.0)
    );
    let wait = ms(percentile(&waits, 1.0));
    println!(
        "ao-wait after run_completed (max)      {:>8.2} ms   target < 100 ms   {}",
        wait,
        verdict(wait < 100.0)
    );
    let stop = ms(percentile(&stops, 1.0));
    println!(
        "ao-stop, control protocol (max)        {:>8.2} ms   target < 2000 ms  {}",
        stop,
        verdict(stop < 2000.0)
    );
    println!(
        "ao-stop, worst case                    {:>8.2} ms   target < 7000 ms  {}",
        ms(worst),
        verdict(ms(worst) < 7000.0)
    );
}

impl Env<'_> {
    fn detach(&self, name: &str, scenario: &str) {
        let mut child = self
            .command("ao-new")
            .args([name, "--detach"])
            .env("FAKE_CLAUDE_SCENARIO", scenario)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("ao-new --detach");
        let _ = child.stdin.take().expect("stdin").write_all(b"a task");
        let out = child.wait_with_output().expect("wait");
        assert!(out.status.success(), "ao-new --detach {name} failed");
    }
}

/// From the moment the session manager broadcasts the run's end to the
/// moment `ao-wait` has exited.
async fn wait_latency(env: &Env<'_>, name: &str) -> Duration {
    let client = SessionClient::new(env.url).expect("client");
    let session = loop {
        if let Some(s) = client
            .get_session_by_name(
                name,
                Some(&env.project.canonicalize().unwrap().to_string_lossy()),
            )
            .await
            .expect("lookup")
        {
            break s;
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    };
    let id = session.session_id.clone();
    let mut feed = Feed::open(&client, std::slice::from_ref(&id), false)
        .await
        .expect("feed");
    let mut waiter: Child = env
        .command("ao-wait")
        .arg(name)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("ao-wait");
    let pending = std::iter::once(id).collect();
    feed.next_end(&pending).await.expect("the run's end");
    let stored = Instant::now();
    tokio::task::spawn_blocking(move || waiter.wait())
        .await
        .expect("join")
        .expect("wait");
    stored.elapsed()
}
