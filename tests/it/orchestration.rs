//! Issue 22 against the scripted fake CLI: per-run budgets, forks,
//! callbacks, tree and daily budgets.

use serde_json::Value;

use crate::support::Project;

/// The fake's argv of its last run.
fn last_argv(env: &Project) -> Vec<String> {
    env.fake_log().last().unwrap()["argv"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

fn flag_value(argv: &[String], flag: &str) -> Option<String> {
    argv.iter()
        .position(|a| a == flag)
        .map(|i| argv[i + 1].clone())
}

#[tokio::test]
async fn a_run_past_its_budget_ends_with_reason_budget() {
    let env = Project::with_server();
    // Each turn costs $0.000188: three tool calls pass $0.0005.
    let out = env.run(
        "ao-new",
        &["spender", "--max-budget-usd", "0.0005"],
        "spend",
        "tools:5",
    );
    let line = out.fails(1);
    assert!(
        line.contains("budget") && line.contains("ao-resume spender"),
        "{line}"
    );
    assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.0005")
    );
    let events = env.events("spender").await;
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "run_completed");
    assert_eq!(end["reason"], "budget");
    assert!(
        end["error"]
            .as_str()
            .unwrap()
            .contains("Reached maximum budget"),
        "{end}"
    );
    let closing = env.backup_lines("spender").last().unwrap().clone();
    assert_eq!(closing["reason"], "budget");
    let wait = env.ao("ao-wait", &["spender"], None);
    assert_eq!(wait.stdout.trim(), "spender: budget");
    assert_eq!(wait.code, Some(1));

    // Within the budget, the run completes.
    let out = env.run(
        "ao-new",
        &["thrifty", "--max-budget-usd", "1"],
        "spend a little",
        "tools:2",
    );
    out.ok();
}

#[tokio::test]
async fn an_agent_gives_its_runs_a_budget_and_a_flag_wins() {
    let env = Project::with_server();
    env.write_agent(
        "cheap",
        r#"{"name":"cheap","description":"d","max_budget_usd":0.25}"#,
    );
    env.run("ao-new", &["a1", "--agent", "cheap"], "go", "plain")
        .ok();
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.25")
    );
    env.run(
        "ao-new",
        &["a2", "--agent", "cheap", "--max-budget-usd", "0.5"],
        "go",
        "plain",
    )
    .ok();
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.5")
    );
    env.write_agent(
        "broke",
        r#"{"name":"broke","description":"d","max_budget_usd":-1}"#,
    );
    let out = env.run("ao-new", &["a3", "--agent", "broke"], "go", "plain");
    assert!(
        out.fails(2)
            .contains("max_budget_usd must be a positive number")
    );
}

#[tokio::test]
async fn budgets_that_are_not_positive_numbers_are_refused_and_nothing_starts() {
    let env = Project::with_server();
    for bad in ["0", "-1", "abc", "NaN", "inf"] {
        let out = env.run("ao-new", &["b", "--max-budget-usd", bad], "go", "plain");
        let line = out.fails(2);
        assert!(line.contains("positive number"), "{bad}: {line}");
    }
    assert!(!env.backup("b", "jsonl").exists());
    assert!(env.fake_log().is_empty());
}

#[tokio::test]
async fn an_old_cli_without_the_flags_refuses_a_budget_and_a_fork_in_one_line() {
    let mut env = Project::with_server();
    env.set_env("FAKE_CLAUDE_VERSION", "1.0.100");
    let out = env.run("ao-new", &["old", "--max-budget-usd", "1"], "go", "plain");
    let line = out.fails(1);
    assert!(
        line.contains("a budget needs a Claude Code release with --max-budget-usd")
            && line.contains("1.0.100"),
        "{line}"
    );
    assert_eq!(out.stderr_lines().len(), 1);
    assert!(!env.backup("old", "jsonl").exists());
    env.new_session("orig", "first");
    let out = env.run("ao-fork", &["orig", "copy"], "go", "plain");
    assert!(
        out.fails(1)
            .contains("a fork needs a Claude Code release with --fork-session")
    );
    assert!(!env.backup("copy", "jsonl").exists());
}

#[tokio::test]
async fn a_fork_continues_a_copy_and_leaves_its_origin_as_it_was() {
    let env = Project::with_server();
    let origin_id = env.new_session("design", "plan the schema");
    let origin_backup = env.backup_text("design");
    let origin_meta = env.meta("design");

    let out = env.run(
        "ao-fork",
        &["design", "try-sqlite", "-p", "use SQLite"],
        "",
        "plain",
    );
    assert_eq!(out.ok(), "fake answer to: use SQLite");
    let argv = last_argv(&env);
    assert_eq!(
        flag_value(&argv, "--resume").as_deref(),
        Some(origin_id.as_str())
    );
    assert!(argv.iter().any(|a| a == "--fork-session"), "{argv:?}");

    let fork_id = env.session_id("try-sqlite");
    assert_ne!(fork_id, origin_id);
    assert_eq!(env.meta("try-sqlite")["forked_from"], origin_id.as_str());
    let session = env.session("try-sqlite").await.unwrap();
    assert_eq!(session.forked_from.as_deref(), Some(origin_id.as_str()));
    let opening = &env.backup_lines("try-sqlite")[0];
    assert_eq!(opening["forked_from"], origin_id.as_str());
    assert!(opening.get("resume_session_id").is_none(), "{opening}");
    // The origin is as it was.
    assert_eq!(env.backup_text("design"), origin_backup);
    assert_eq!(env.meta("design"), origin_meta);
    assert_eq!(
        env.ao("ao-get-result", &["design"], None).ok(),
        "fake answer to: plan the schema"
    );

    // The fork's own cost: its first result counted the origin's too.
    let fork = env.session("try-sqlite").await.unwrap();
    let origin = env.session("design").await.unwrap();
    assert_eq!(origin.cost_usd, Some(0.000188));
    assert_eq!(fork.cost_usd, Some(0.000188), "the fork's own spend");

    // A resume of the fork continues the fork's conversation.
    env.run("ao-resume", &["try-sqlite"], "more", "plain").ok();
    assert_eq!(
        flag_value(&last_argv(&env), "--resume").as_deref(),
        Some(fork_id.as_str())
    );
    assert!(!last_argv(&env).iter().any(|a| a == "--fork-session"));
    let fork = env.session("try-sqlite").await.unwrap();
    assert_eq!(fork.cost_usd, Some(0.000376));
}

#[tokio::test]
async fn forks_that_cannot_be_are_refused_in_one_line_and_nothing_starts() {
    let env = Project::with_server();
    let out = env.run("ao-fork", &["nobody", "copy"], "go", "plain");
    let line = out.fails(2);
    assert!(line.contains("no session named 'nobody'"), "{line}");
    env.new_session("taken", "one");
    env.new_session("orig", "two");
    let out = env.run("ao-fork", &["orig", "taken"], "go", "plain");
    assert!(out.fails(1).contains("already exists"), "{out:?}");
    let out = env.run("ao-fork", &["orig", "bad name"], "go", "plain");
    out.fails(2);
    let out = env.run("ao-fork", &["orig", "empty"], "", "plain");
    out.fails(2);
    let runner = env.start_hanging("busy").await;
    let out = env.run("ao-fork", &["busy", "copy"], "go", "plain");
    let line = out.fails(1);
    assert!(
        line.contains("is running") && line.contains("ao-wait busy"),
        "{line}"
    );
    runner.stop(nix::sys::signal::Signal::SIGTERM);
    assert!(!env.backup("copy", "jsonl").exists());
    assert!(!env.backup("empty", "jsonl").exists());
    let fakes: Vec<Value> = env.fake_log();
    assert_eq!(fakes.len(), 3, "only the sessions made above ran");
}
