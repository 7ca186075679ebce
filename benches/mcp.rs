//! `ao-mcp` against the numbers, each next to a baseline measured
//! in the same run:
//!
//! - a tool call (status, result, list) over one MCP connection, against
//!   the same command as a process (`ao-status NAME --json`, ...);
//!   target: the tool call costs < 10 ms more than the command;
//! - `ao-mcp`'s resident memory once it has answered and sits idle;
//!   target < 10 MB;
//! - 10 `start_agent_session` calls with async=true sent at once from one
//!   client: all 10 runs complete.
//!
//! Run with `cargo bench --bench mcp` (AO_BENCH_RUNS=N to change the count).

use std::time::{Duration, Instant};

use rmcp::model::CallToolRequestParams;
use rmcp::transport::TokioChildProcess;
use rmcp::{RoleClient, ServiceExt, service::RunningService};
use serde_json::{Value, json};

mod common;
mod fake;
mod project;
use common::{ms, percentile, verdict};
use project::Bench;

const TOOL_OVERHEAD_LIMIT: Duration = Duration::from_millis(10);
const RSS_LIMIT_KB: u64 = 10 * 1024;

type Client = RunningService<RoleClient, ()>;

async fn call(client: &Client, tool: &str, args: Value) -> String {
    let result = client
        .call_tool(
            CallToolRequestParams::new(tool.to_owned())
                .with_arguments(args.as_object().expect("object").clone()),
        )
        .await
        .expect("tools/call");
    assert_ne!(result.is_error, Some(true), "{tool}: {result:?}");
    result
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect()
}

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
        })
        .unwrap_or(0)
}

fn median(times: &[Duration]) -> Duration {
    percentile(times, 0.5)
}

fn main() {
    let runs = project::runs(30);
    let bench = Bench::start();
    let env = bench.env();
    env.command("ao-new")
        .args(["bench", "-p", "a task"])
        .env("FAKE_CLAUDE_SCENARIO", "plain")
        .output()
        .expect("a first session");

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let mut cmd = tokio::process::Command::from(env.command("ao-mcp"));
    cmd.stderr(std::process::Stdio::null())
        .env("FAKE_CLAUDE_SCENARIO", "plain");
    let transport = {
        let _inside = runtime.enter();
        TokioChildProcess::new(cmd).expect("start ao-mcp")
    };
    let pid = transport.id().expect("ao-mcp pid");
    let client: Client = runtime
        .block_on(().serve(transport))
        .expect("MCP handshake");
    std::thread::sleep(Duration::from_millis(300));
    let fresh_rss = rss_kb(pid);

    let cases: [(&str, &[&str], &str, Value); 3] = [
        (
            "ao-status",
            &["bench", "--json"],
            "get_agent_session_status",
            json!({"session_name": "bench"}),
        ),
        (
            "ao-get-result",
            &["bench"],
            "get_agent_session_result",
            json!({"session_name": "bench"}),
        ),
        (
            "ao-list-sessions",
            &["--json"],
            "list_agent_sessions",
            json!({}),
        ),
    ];
    println!("ao-mcp: {runs} calls each, median / p90 / max (2 cores)");
    println!("{:<44} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    let mut ok = true;
    for (program, args, tool, tool_args) in &cases {
        // Warm up both.
        env.run(program, args);
        runtime.block_on(call(&client, tool, tool_args.clone()));
        let mut commands = Vec::new();
        let mut tools = Vec::new();
        for _ in 0..runs {
            let t = Instant::now();
            env.run(program, args);
            commands.push(t.elapsed());
            let t = Instant::now();
            runtime.block_on(call(&client, tool, tool_args.clone()));
            tools.push(t.elapsed());
        }
        common::row(&format!("{program} (command, baseline)"), 44, &commands);
        common::row(&format!("{tool} (tool call)"), 44, &tools);
        let over = ms(median(&tools)) - ms(median(&commands));
        let pass = over < ms(TOOL_OVERHEAD_LIMIT);
        ok &= pass;
        println!(
            "  tool call minus command: {over:+.2} ms (target < {} ms) {}",
            TOOL_OVERHEAD_LIMIT.as_millis(),
            verdict(pass)
        );
    }

    // Idle again: the query threads have ended.
    std::thread::sleep(Duration::from_secs(3));
    let used_rss = rss_kb(pid);
    for (when, rss) in [
        ("after the handshake", fresh_rss),
        ("idle after the calls above", used_rss),
    ] {
        let pass = rss > 0 && rss < RSS_LIMIT_KB;
        ok &= pass;
        println!(
            "ao-mcp RSS {when}: {:.1} MB (target < {} MB) {}",
            rss as f64 / 1024.0,
            RSS_LIMIT_KB / 1024,
            verdict(pass)
        );
    }

    let names: Vec<String> = (0..10).map(|i| format!("async-{i}")).collect();
    let t = Instant::now();
    runtime.block_on(async {
        let starts = names.iter().map(|name| {
            call(
                &client,
                "start_agent_session",
                json!({"session_name": name, "prompt": "a task", "async": true}),
            )
        });
        futures_util::future::join_all(starts).await;
    });
    let started = t.elapsed();
    let waited = runtime.block_on(call(
        &client,
        "wait_for_agent_sessions",
        json!({"session_names": names, "timeout_seconds": 120}),
    ));
    let waited: Value = serde_json::from_str(&waited).expect("json");
    let completed = waited["sessions"].as_array().map_or(0, |a| {
        a.iter().filter(|e| e["status"] == "completed").count()
    });
    let pass = completed == 10;
    ok &= pass;
    println!(
        "10 async starts at once from one client: all started in {:.0} ms, {completed}/10 completed {}",
        ms(started),
        verdict(pass)
    );

    runtime.block_on(client.cancel()).ok();
    drop(bench);
    if !ok {
        std::process::exit(1);
    }
}
