//! Fan out and fan in against the scripted fake CLI: detached runs
//! (refusals in the foreground), `ao-wait` (all, any, timeout), `ao-stop`
//! (through the control protocol, a CLI that ignores it, through the API
//! from elsewhere, a dead runner), many runs at once, and no CLI outliving
//! its runner.

use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::Value;

use crate::support::http::kinds;
use crate::support::procs::{Leftovers, alive, parent};
use crate::support::project::{eventually, is_empty_dir};
use crate::support::{Project, Running};

/// `ao-new NAME --detach` with the fake playing `scenario`; asserts the
/// foreground returned the name, and answers the runner's pid.
#[track_caller]
fn detach(env: &Project, name: &str, scenario: &str) -> i32 {
    let out = env.run("ao-new", &[name, "--detach", "--json"], "task", scenario);
    let report: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(report["session_name"], name);
    report["pid"].as_i64().expect("pid") as i32
}

fn wait_json(env: &Project, args: &[&str]) -> (Option<i32>, Vec<Value>) {
    let mut all = args.to_vec();
    all.push("--json");
    let out = env.ao("ao-wait", &all, None);
    let list: Value = serde_json::from_str(out.stdout.trim()).unwrap_or_else(|_| panic!("{out:?}"));
    (out.code, list.as_array().expect("an array").clone())
}

#[tokio::test]
async fn a_detached_run_returns_at_once_and_is_collected_with_ao_wait() {
    let env = Project::with_server();
    let out = env.run(
        "ao-new",
        &["bg", "--detach"],
        "in the background",
        "tools:2,slow:100",
    );
    assert_eq!(out.ok(), "bg");
    // It returned while the run holds the lock and the CLI runs.
    let lock = std::fs::read_to_string(env.backup("bg", "lock")).unwrap();
    assert_eq!(lock.lines().count(), 2, "runner pid and CLI group: {lock}");
    assert_eq!(env.ao("ao-status", &["bg"], None).ok(), "running");
    let out = env.ao("ao-wait", &["bg"], None);
    assert_eq!(out.ok(), "bg: completed");
    assert_eq!(
        env.ao("ao-get-result", &["bg"], None).ok(),
        "fake answer to: in the background"
    );
    let events = env.events("bg").await;
    assert_eq!(events.last().unwrap()["reason"], "completed");
    // Its stderr went to the log beside the backups, not to the caller.
    assert!(env.backup("bg", "log").exists());

    // A resume detaches too, and runs in the same conversation.
    let out = env.run("ao-resume", &["bg", "--detach"], "again", "plain");
    assert_eq!(out.ok(), "bg");
    assert_eq!(env.ao("ao-wait", &["bg"], None).ok(), "bg: completed");
    let log = env.fake_log();
    let resumed = log.last().unwrap()["argv"].to_string();
    assert!(resumed.contains(&env.session_id("bg")), "{resumed}");
    assert!(
        !resumed.contains("again") && !resumed.contains("background"),
        "prompts stay off argv"
    );
}

#[tokio::test]
async fn everything_that_can_be_refused_is_refused_in_the_foreground() {
    let env = Project::with_server();
    let check = |args: &[&str], stdin: &str, code: i32, needle: &str| {
        let out = env.run(args[0], &args[1..], stdin, "plain");
        let line = out.fails(code);
        assert!(line.contains(needle), "{args:?}: {line}");
    };
    check(&["ao-new", "../x", "--detach"], "x", 2, "letters, digits");
    check(&["ao-new", "ok", "--detach"], " \n", 2, "prompt is empty");
    check(
        &["ao-new", "ok", "--detach", "--agent", "ghost"],
        "x",
        2,
        "unknown agent 'ghost'",
    );
    check(
        &["ao-resume", "ghost", "--detach"],
        "x",
        1,
        "no session named 'ghost'",
    );
    assert!(is_empty_dir(&env.sessions_dir()), "nothing written");
    let mut missing = env.command("ao-new");
    missing
        .args(["nocli", "--detach"])
        .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", "/nonexistent/claude");
    let out = Running::start(missing, Some("x")).wait();
    assert!(
        out.fails(1).contains("cannot find the Claude Code CLI"),
        "{out:?}"
    );
    assert!(env.fake_log().is_empty(), "nothing spawned");

    env.new_session("dup", "x");
    check(&["ao-new", "dup", "--detach"], "x", 1, "already exists");
    let runner = env.start_hanging("busy").await;
    check(&["ao-resume", "busy", "--detach"], "x", 1, "is running");
    let out = env.ao("ao-stop", &["busy"], None);
    assert_eq!(out.ok(), "busy: stopped");
    assert_eq!(runner.wait().code, Some(143));
}

#[tokio::test]
async fn a_running_name_is_refused_with_advice_that_fits_new_and_resume() {
    let env = Project::with_server();
    let runner = env.start_hanging("busy").await;
    for detach in [false, true] {
        let mut args = vec!["busy"];
        if detach {
            args.push("--detach");
        }
        let out = env.run("ao-new", &args, "x", "plain");
        let line = out.fails(1);
        assert!(
            line.contains("session 'busy' is running")
                && line.contains("another name")
                && line.contains("`ao-wait busy`"),
            "{line}"
        );
        assert!(!line.contains("before resuming"), "{line}");
        let out = env.run("ao-resume", &args, "x", "plain");
        let line = out.fails(1);
        assert!(
            line.contains("session 'busy' is running") && line.contains("`ao-wait busy`"),
            "{line}"
        );
    }
    assert_eq!(env.ao("ao-stop", &["busy"], None).ok(), "busy: stopped");
    assert_eq!(runner.wait().code, Some(143));
}

#[tokio::test]
async fn wait_for_all_for_any_and_until_a_timeout() {
    let env = Project::with_server();
    detach(&env, "slow", "tools:3,slow:200");
    detach(&env, "quick", "tools:1");
    detach(&env, "fails", "error");
    detach(&env, "hangs", "hang");
    // --any: the first to end.
    let (code, list) = wait_json(&env, &["slow", "quick", "--any"]);
    assert_eq!(code, Some(0), "{list:?}");
    assert_eq!(list[0]["session_name"], "quick");
    assert_eq!(list[0]["status"], "completed");
    assert_eq!(list[0]["result"], "fake answer to: task");
    assert_eq!(list[1]["status"], "running");
    // All: in the order they end; a failure makes exit 1.
    let out = env.ao("ao-wait", &["slow", "fails", "quick"], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    let mut lines: Vec<&str> = out.stdout.lines().collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        ["fails: error", "quick: completed", "slow: completed"]
    );
    assert_eq!(out.stderr_lines().len(), 1);
    assert!(out.stderr.contains("fails (error)"), "{out:?}");
    let (code, list) = wait_json(&env, &["fails"]);
    assert_eq!(code, Some(1));
    assert!(
        list[0]["error"]
            .as_str()
            .unwrap()
            .contains("API Error: 400")
    );
    assert_eq!(list[0]["exit_code"], 1);
    assert_eq!(list[0]["runner_exit_code"], 1);
    // A timeout: 124, and the run still going is listed as running.
    let (code, list) = wait_json(&env, &["hangs", "quick", "--timeout", "0.3"]);
    assert_eq!(code, Some(124));
    assert_eq!(list[0]["session_name"], "quick");
    assert_eq!(
        (&list[0]["exit_code"], &list[0]["runner_exit_code"]),
        (&Value::from(0), &Value::from(0))
    );
    assert_eq!(list[1]["status"], "running");
    assert_eq!(list[1]["runner_exit_code"], Value::Null);
    let out = env.ao("ao-wait", &["hangs", "--timeout", "0.2"], None);
    assert_eq!(out.code, Some(124));
    assert!(
        out.stderr.contains("gave up after 0.2s waiting for: hangs"),
        "{out:?}"
    );
    assert_eq!(env.ao("ao-stop", &["hangs"], None).ok(), "hangs: stopped");
}

#[tokio::test]
async fn bad_waits_are_usage_errors() {
    let env = Project::with_server();
    env.new_session("one", "x");
    for (args, needle) in [
        (vec![], "NAME"),
        (vec!["../x"], "letters, digits"),
        (vec!["one", "--timeout", "-3"], "number of seconds"),
        (vec!["one", "--timeout", "soon"], "number of seconds"),
        (vec!["one", "ghost"], "no session named 'ghost'"),
    ] {
        let out = env.ao("ao-wait", &args, None);
        let line = out.fails(2);
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    // A session that is not running counts as ended at once.
    assert_eq!(env.ao("ao-wait", &["one"], None).ok(), "one: completed");
    let out = env.ao("ao-stop", &["one"], None);
    assert_eq!(out.fails(1), "ao-stop: error: session 'one' is not running");
    let out = env.ao("ao-stop", &["ghost"], None);
    assert!(out.fails(1).contains("no session named 'ghost'"));
}

#[tokio::test]
async fn sessions_that_are_not_running_end_at_once_whatever_the_timeout() {
    let env = Project::with_server();
    for name in ["a", "b", "c"] {
        env.new_session(name, "x");
    }
    // Also one whose backups are elsewhere (followed through the API).
    let elsewhere = Project::new(env.url());
    elsewhere.new_session("far", "x");
    for timeout in ["0.0001", "0"] {
        let out = env.ao(
            "ao-wait",
            &["a", "b", "c", "far", "--timeout", timeout],
            None,
        );
        assert_eq!(
            out.ok(),
            "a: completed\nb: completed\nc: completed\nfar: completed",
            "--timeout {timeout}"
        );
        let (code, list) = wait_json(&env, &["c", "a", "--any", "--timeout", timeout]);
        assert_eq!(code, Some(0), "{list:?}");
        assert_eq!(list[0]["session_name"], "c");
        assert_eq!(list[0]["status"], "completed");
    }
    // A run still going times out as before.
    let runner = env.start_hanging("busy").await;
    let (code, list) = wait_json(&env, &["a", "busy", "--timeout", "0"]);
    assert_eq!(code, Some(124), "{list:?}");
    assert_eq!(
        (list[0]["status"].as_str(), list[1]["status"].as_str()),
        (Some("completed"), Some("running"))
    );
    assert_eq!(env.ao("ao-stop", &["busy"], None).ok(), "busy: stopped");
    assert_eq!(runner.wait().code, Some(143));
}

#[tokio::test]
async fn stop_through_the_control_protocol_keeps_the_conversation_resumable() {
    let env = Project::with_server();
    let runner = env.start_hanging("h").await;
    let out = env.ao("ao-stop", &["h", "--json"], None);
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["status"], "stopped");
    assert_eq!(report["via"], "signal");
    let out = runner.wait();
    assert_eq!(out.code, Some(143), "{out:?}");
    // Which exit code is which: the CLI's, as recorded, and the runner's.
    assert_eq!(
        (&report["exit_code"], &report["runner_exit_code"]),
        (&Value::from(1), &Value::from(143)),
        "{report}"
    );
    let (_, list) = wait_json(&env, &["h"]);
    assert_eq!(list[0]["runner_exit_code"], 143, "{list:?}");
    assert!(out.stderr.contains("stopped on request"), "{out:?}");
    // The CLI was asked through the control protocol, and ended its turn.
    let stdin = env.fake_stdin(0);
    assert!(
        stdin.iter().any(|l| l["request"]["subtype"] == "interrupt"),
        "{stdin:?}"
    );
    assert_eq!(
        env.fake_log()[0]["exit_code"],
        1,
        "ended by the interrupt, not a signal"
    );
    let events = env.events("h").await;
    let end = events.last().unwrap();
    assert_eq!(
        (end["event_type"].as_str(), end["reason"].as_str()),
        (Some("run_completed"), Some("stopped"))
    );
    let last = env.backup_lines("h").pop().unwrap();
    assert_eq!(last["reason"], "stopped");
    let out = env.ao("ao-get-result", &["h"], None);
    assert!(out.fails(1).contains("was stopped"), "{out:?}");
    // ao-resume continues the same conversation.
    let out = env.run("ao-resume", &["h"], "go on", "plain");
    assert_eq!(out.ok(), "fake answer to: go on");
    assert_eq!(
        env.fake_log()[1]["session_id"],
        env.session_id("h").as_str()
    );
}

#[tokio::test]
async fn a_run_stopped_before_the_clis_init_line_is_started_again_with_ao_new() {
    let env = Project::with_server();
    // A CLI that never says init (nor reads its stdin): the stop ends it by SIGTERM.
    let mute = env.scratch().join("mute-claude");
    std::fs::write(&mute, "#!/bin/sh\nexec sleep 30\n").unwrap();
    std::fs::set_permissions(&mute, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut cmd = env.command("ao-new");
    cmd.arg("early")
        .env("AGENT_ORCHESTRATOR_CLAUDE_PATH", &mute);
    let runner = Running::start(cmd, Some("task"));
    eventually("the run to hold its lock", async || {
        std::fs::read_to_string(env.backup("early", "lock")).is_ok_and(|l| l.lines().count() == 2)
    })
    .await;
    assert_eq!(env.ao("ao-stop", &["early"], None).ok(), "early: stopped");
    let out = runner.wait();
    assert_eq!(out.code, Some(143), "{out:?}");
    // Every piece of advice agrees: there is no conversation to resume.
    assert!(out.stderr.contains("`ao-new early`"), "{out:?}");
    let line = env
        .ao("ao-get-result", &["early"], None)
        .fails(1)
        .to_owned();
    assert!(line.contains("`ao-new early`"), "{line}");
    for advice in [&out.stderr, &line] {
        assert!(!advice.contains("ao-resume"), "{advice}");
    }
    let resume = env.run("ao-resume", &["early"], "go on", "plain");
    assert!(resume.fails(1).contains("`ao-new early`"), "{resume:?}");
    // And the advice works.
    let again = env.run("ao-new", &["early"], "again", "plain");
    assert_eq!(again.ok(), "fake answer to: again");
}

#[tokio::test]
async fn a_cli_that_ignores_the_interrupt_gets_sigterm_then_sigkill() {
    let env = Project::with_server();
    let deaf = env.spawn("ao-new", &["deaf"], "x", "hang,deaf");
    let stubborn = env.spawn("ao-new", &["stubborn"], "x", "hang,deaf,noterm");
    for name in ["deaf", "stubborn"] {
        eventually("the runs to be under way", async || {
            env.backup_text(name).contains("\"subtype\":\"init\"")
        })
        .await;
    }
    let stop_deaf = Running::start(
        {
            let mut c = env.command("ao-stop");
            c.arg("deaf");
            c
        },
        None,
    );
    let out = env.ao("ao-stop", &["stubborn"], None);
    assert_eq!(out.ok(), "stubborn: stopped");
    assert_eq!(stop_deaf.wait().ok(), "deaf: stopped");
    assert_eq!(deaf.wait().code, Some(143));
    assert_eq!(stubborn.wait().code, Some(143));
    let exits: Vec<(String, Value)> = env
        .fake_log()
        .iter()
        .map(|l| {
            (
                l["scenario"].as_str().unwrap().to_owned(),
                l["exit_code"].clone(),
            )
        })
        .collect();
    // SIGTERM ended the deaf one (143); the stubborn one logged nothing
    // (SIGKILL gives no chance to).
    assert_eq!(exits, [("hang,deaf".to_owned(), Value::from(143))]);
    for name in ["deaf", "stubborn"] {
        let events = env.events(name).await;
        assert_eq!(events.last().unwrap()["reason"], "stopped", "{name}");
    }
}

#[tokio::test]
async fn stop_through_the_api_from_another_project() {
    let env = Project::with_server();
    let elsewhere = Project::new(env.url());
    let runner = env.start_hanging("far").await;
    let out = elsewhere.ao("ao-stop", &["far", "--json"], None);
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(
        (report["via"].as_str(), report["status"].as_str()),
        (Some("api"), Some("stopped"))
    );
    assert_eq!(runner.wait().code, Some(143));
    // ao-wait from there follows the live feed.
    let out = env.run(
        "ao-resume",
        &["far", "--detach"],
        "more",
        "tools:2,slow:100",
    );
    assert_eq!(out.ok(), "far");
    // The detached run is under way once its CLI has started; the session
    // manager hears of it at the CLI's init line, a moment later, and a
    // waiter elsewhere knows only what the session manager knows.
    eventually("the resumed run to reach the session manager", async || {
        kinds(&env.events("far").await)
            .iter()
            .filter(|k| *k == "run_start")
            .count()
            == 2
    })
    .await;
    assert_eq!(
        elsewhere.ao("ao-wait", &["far"], None).ok(),
        "far: completed"
    );
}

#[tokio::test]
async fn stopping_a_dead_runners_run_closes_it_as_interrupted() {
    let env = Project::with_server();
    let runner = env.start_hanging("dead").await;
    let cli = env.cli_pid("dead");
    let out = runner.stop(Signal::SIGKILL);
    assert_eq!(out.code, None);
    // The CLI died with its runner (parent-death signal): no orphan.
    eventually("the CLI to die with its runner", async || !alive(cli)).await;
    assert_eq!(
        env.api_status("dead").await,
        "running",
        "nobody told the API yet"
    );
    let out = env.ao("ao-stop", &["dead"], None);
    assert_eq!(out.ok(), "dead: interrupted");
    assert_eq!(env.api_status("dead").await, "finished");
    let events = env.events("dead").await;
    assert_eq!(events.last().unwrap()["reason"], "interrupted");

    // Through the API: a running session no runner follows is closed.
    let http = env.http();
    let (_, body) = http
        .post(
            "/sessions",
            serde_json::json!({"session_id": "orphan-1", "session_name": "orphan"}),
        )
        .await;
    assert_eq!(body["session"]["status"], "running");
    let (status, body) = http
        .post("/sessions/orphan-1/stop", serde_json::json!({}))
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(
        body,
        serde_json::json!({"ok": true, "delivered": false, "closed": true})
    );
    assert_eq!(http.status("orphan-1").await, "finished");
    let (status, _) = http
        .post("/sessions/orphan-1/stop", serde_json::json!({}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = http
        .post("/sessions/nobody/stop", serde_json::json!({}))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn a_runner_killed_mid_tool_call_takes_its_cli_along_and_wait_returns() {
    let env = Project::with_server();
    let pid = detach(&env, "k", "tools:50,slow:100");
    eventually("a tool call", async || {
        env.backup_text("k").contains("hook_callback")
    })
    .await;
    let cli = env.cli_pid("k");
    assert!(alive(cli));
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL).unwrap();
    // ao-wait returns: the lock is free; the run is recorded as interrupted.
    let (code, list) = wait_json(&env, &["k", "--timeout", "20"]);
    assert_eq!(code, Some(1), "{list:?}");
    assert_eq!(list[0]["status"], "interrupted");
    eventually("no CLI of that run to survive", async || !alive(cli)).await;
    let events = env.events("k").await;
    assert_eq!(events.last().unwrap()["reason"], "interrupted");
}

/// The pids a fake playing `children:FILE` wrote to FILE (in the project
/// directory), once there are `count` of them; all of them go to `leftovers`.
async fn tool_children(
    env: &Project,
    file: &str,
    count: usize,
    leftovers: &mut Leftovers,
) -> Vec<i32> {
    let path = env.dir.join(file);
    let read = || {
        std::fs::read_to_string(&path)
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.trim().parse().ok())
            .collect::<Vec<i32>>()
    };
    eventually("the tool's processes to start", async || {
        read().len() >= count
    })
    .await;
    let pids = read();
    leftovers.watch(pids.iter().copied());
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
    pids
}

/// The process group the runner of `name` recorded for its CLI in the lock.
fn recorded_group(env: &Project, name: &str) -> i32 {
    let text = std::fs::read_to_string(env.backup(name, "lock")).expect("lock file");
    text.lines()
        .nth(1)
        .and_then(|l| l.trim().parse().ok())
        .expect("a CLI group in the lock")
}

#[tokio::test]
async fn a_sigkilled_runners_tool_processes_end_with_it() {
    let env = Project::with_server();
    let mut leftovers = Leftovers::default();
    let runner = detach(&env, "tk", "tools:1,children:pids.txt,hang");
    let pids = tool_children(&env, "pids.txt", 2, &mut leftovers).await;
    let cli = env.cli_pid("tk");
    leftovers.watch([runner, cli]);
    nix::sys::signal::kill(nix::unistd::Pid::from_raw(runner), Signal::SIGKILL).unwrap();
    let killed = std::time::Instant::now();
    // A tool's processes, in a session of their own or orphaned at once,
    // do not wait for the next command on the session to end them.
    eventually("no process of the tool to survive its runner", async || {
        !pids.iter().any(|p| alive(*p)) && !alive(cli)
    })
    .await;
    eprintln!(
        "the tool's processes ended {} ms after the runner's SIGKILL",
        killed.elapsed().as_millis()
    );
    let (code, list) = wait_json(&env, &["tk", "--timeout", "20"]);
    assert_eq!(
        (code, &list[0]["status"]),
        (Some(1), &Value::from("interrupted"))
    );
}

#[tokio::test]
async fn a_cli_killed_after_ignoring_its_stop_takes_its_tools_along() {
    let env = Project::with_server();
    let mut leftovers = Leftovers::default();
    // It ignores the interrupt and SIGTERM: the stop ends in SIGKILL.
    let runner = detach(&env, "deaf", "tools:1,children:pids.txt,hang,deaf,noterm");
    let pids = tool_children(&env, "pids.txt", 2, &mut leftovers).await;
    let cli = env.cli_pid("deaf");
    leftovers.watch([runner, cli]);
    assert_eq!(env.ao("ao-stop", &["deaf"], None).ok(), "deaf: stopped");
    // What its tools started, in sessions of their own, goes with it.
    eventually(
        "no process of the tool to outlive the killed CLI",
        async || !pids.iter().any(|p| alive(*p)) && !alive(cli),
    )
    .await;
}

#[tokio::test]
async fn a_run_that_ends_takes_its_guardian_along_and_nothing_else() {
    let env = Project::with_server();
    let mut leftovers = Leftovers::default();
    let runner = detach(&env, "calm", "tools:1,children:pids.txt,hang");
    let pids = tool_children(&env, "pids.txt", 2, &mut leftovers).await;
    leftovers.watch([runner, env.cli_pid("calm")]);
    // The orphan was adopted by the run's guardian, the leader of the group
    // the lock records, not by init.
    let guardian = recorded_group(&env, "calm");
    assert_eq!(parent(pids[1]), Some(guardian), "adopted by the guardian");
    assert_ne!(guardian, env.cli_pid("calm"));
    assert_eq!(env.ao("ao-stop", &["calm"], None).ok(), "calm: stopped");
    eventually("the guardian to exit with its run", async || {
        !alive(guardian)
    })
    .await;
    // The normal path ends no process the CLI left running.
    assert!(pids.iter().all(|p| alive(*p)), "{pids:?}");
}

#[tokio::test]
async fn twenty_detached_runs_all_run_and_one_wait_collects_them() {
    let env = Project::with_server();
    let names: Vec<String> = (0..20).map(|i| format!("fan-{i}")).collect();
    for name in &names {
        let out = env.run(
            "ao-new",
            &[name, "--detach"],
            &format!("part {name}"),
            "tools:2,slow:50",
        );
        assert_eq!(out.ok(), name);
    }
    let args: Vec<&str> = names.iter().map(String::as_str).collect();
    let (code, list) = wait_json(&env, &args);
    assert_eq!(code, Some(0), "{list:?}");
    assert_eq!(list.len(), 20);
    for entry in &list {
        let name = entry["session_name"].as_str().unwrap();
        assert_eq!(entry["status"], "completed");
        assert_eq!(entry["result"], format!("fake answer to: part {name}"));
    }
    for name in &names {
        assert_eq!(env.api_status(name).await, "finished");
    }
    tokio::time::sleep(Duration::from_millis(10)).await;
}
