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
        for flag in ["--max-budget-usd", "--budget-usd"] {
            let out = env.run("ao-new", &["b", flag, bad], "go", "plain");
            let line = out.fails(2);
            assert!(line.contains("positive number"), "{flag} {bad}: {line}");
        }
    }
    // A budget on a name that does not exist.
    let out = env.run("ao-resume", &["ghost", "--budget-usd", "1"], "go", "plain");
    assert!(out.fails(1).contains("no session named 'ghost'"), "{out:?}");
    let out = env.run(
        "ao-new",
        &["b", "--budget-usd", "1", "--parent", "ghost"],
        "go",
        "plain",
    );
    assert!(out.fails(2).contains("no session named 'ghost'"), "{out:?}");
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

/// The prompts of `name`'s runs, in order, from its backup.
pub(crate) fn prompts(env: &Project, name: &str) -> Vec<String> {
    env.backup_lines(name)
        .iter()
        .filter(|l| l["type"] == "user_message")
        .map(|l| l["content"].as_str().unwrap().to_owned())
        .collect()
}

/// Waits until `name` has had `runs` runs and none is running.
pub(crate) async fn runs_of(env: &Project, name: &str, runs: usize) {
    crate::support::project::eventually(
        &format!("{name} to have {runs} runs, ended"),
        async || {
            env.session(name)
                .await
                .is_some_and(|s| s.num_runs as usize >= runs && s.status.as_str() == "finished")
        },
    )
    .await;
}

#[tokio::test]
async fn a_parent_is_resumed_with_its_childs_result() {
    let env = Project::with_hosting_server(&[], None);
    env.new_session("boss", "plan the work");
    let out = env.run(
        "ao-new",
        &["kid", "--detach", "--callback", "--parent", "boss"],
        "do part one",
        "plain",
    );
    assert_eq!(out.ok(), "kid");
    env.ao("ao-wait", &["kid"], None).ok();
    runs_of(&env, "boss", 2).await;
    assert_eq!(
        prompts(&env, "boss"),
        [
            "plan the work",
            "<agent-callback session=\"kid\" status=\"completed\">fake answer to: do part one</agent-callback>"
        ]
    );
    let kid = env.session("kid").await.unwrap();
    let boss = env.session("boss").await.unwrap();
    assert_eq!(
        kid.parent_session_id.as_deref(),
        Some(boss.session_id.as_str())
    );
    let status = env.status_json("boss");
    assert_eq!(status["callbacks"], serde_json::json!([]), "{status}");
}

#[tokio::test]
async fn callbacks_of_children_that_end_while_the_parent_runs_come_in_one_resume() {
    let env = Project::with_hosting_server(&[], None);
    let boss = env.start_hanging("boss").await;
    for (kid, scenario) in [("kid-1", "plain"), ("kid-2", "error"), ("kid-3", "plain")] {
        let out = env.run(
            "ao-new",
            &[kid, "--callback", "--parent", "boss"],
            &format!("part {kid}"),
            scenario,
        );
        assert!(out.code.is_some(), "{out:?}");
    }
    // The parent still runs: all three wait, in the order the children ended.
    let status = env.status_json("boss");
    let owed: Vec<(String, String)> = status["callbacks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["child_session_name"].as_str().unwrap().to_owned(),
                c["status"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        owed,
        [
            ("kid-1".to_owned(), "pending".to_owned()),
            ("kid-2".to_owned(), "pending".to_owned()),
            ("kid-3".to_owned(), "pending".to_owned())
        ]
    );
    env.ao("ao-stop", &["boss"], None).ok();
    drop(boss.wait());
    runs_of(&env, "boss", 2).await;
    env.ao("ao-wait", &["boss"], None);
    let all = prompts(&env, "boss");
    assert_eq!(all.len(), 2, "exactly one resume: {all:?}");
    assert_eq!(
        all[1],
        "<agent-callback session=\"kid-1\" status=\"completed\">fake answer to: part kid-1</agent-callback>\n\
         <agent-callback session=\"kid-2\" status=\"error\">API Error: 400 fake: prompt rejected</agent-callback>\n\
         <agent-callback session=\"kid-3\" status=\"completed\">fake answer to: part kid-3</agent-callback>"
    );
    // Nothing more comes.
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    assert_eq!(env.session("boss").await.unwrap().num_runs, 2);
    assert_eq!(env.status_json("boss")["callbacks"], serde_json::json!([]));
}

#[tokio::test]
async fn a_session_manager_restarted_before_the_delivery_delivers_once() {
    let mut env = Project::with_hosting_server(&[], None);
    let boss = env.start_hanging("boss").await;
    env.run(
        "ao-new",
        &["kid", "--callback", "--parent", "boss"],
        "part",
        "plain",
    )
    .ok();
    assert_eq!(env.status_json("boss")["callbacks"][0]["status"], "pending");
    // The session manager goes away; the parent's run ends meanwhile.
    env.sm_mut().kill9();
    env.ao("ao-stop", &["boss"], None);
    drop(boss.wait());
    env.sm_mut().restart();
    // The parent's end reaches it (ao-status closes the run), and the
    // callback goes out.
    env.ao("ao-sync", &["boss"], None);
    runs_of(&env, "boss", 2).await;
    env.ao("ao-wait", &["boss"], None);
    env.sm_mut().stop();
    env.sm_mut().restart();
    tokio::time::sleep(std::time::Duration::from_millis(500)).await;
    let all = prompts(&env, "boss");
    assert_eq!(all.len(), 2, "exactly once: {all:?}");
    assert!(all[1].starts_with("<agent-callback session=\"kid\" status=\"completed\">"));
}

#[tokio::test]
async fn callbacks_that_cannot_be_are_refused_and_a_deleted_parent_fails_with_a_reason() {
    let env = Project::with_hosting_server(&[], None);
    let out = env.run("ao-new", &["kid", "--detach", "--callback"], "go", "plain");
    let line = out.fails(2);
    assert!(line.contains("--callback needs a parent"), "{line}");
    let out = env.run(
        "ao-new",
        &["kid", "--detach", "--callback", "--parent", "ghost"],
        "go",
        "plain",
    );
    assert!(out.fails(2).contains("no session named 'ghost'"));
    let out = env.run(
        "ao-new",
        &["kid", "--callback", "--on", "gpu", "--parent", "boss"],
        "go",
        "plain",
    );
    assert!(out.fails(2).contains("no session named 'boss'"), "{out:?}");
    // The parent's id a host passes on (hidden --parent-id), gone meanwhile.
    let out = env.run(
        "ao-new",
        &["kid", "--callback", "--parent-id=gone-by-now"],
        "go",
        "plain",
    );
    assert!(
        out.fails(2)
            .contains("the parent session gone-by-now is not known to the session manager"),
        "{out:?}"
    );
    assert!(!env.backup("kid", "jsonl").exists());
    assert!(env.fake_log().is_empty());

    env.new_session("boss", "plan");
    let boss_id = env.session_id("boss");
    let kid = env.spawn(
        "ao-new",
        &["kid", "--callback", "--parent", "boss"],
        "go",
        "slow:300",
    );
    crate::support::project::eventually("the callback to be registered", async || {
        env.client()
            .callbacks(&boss_id)
            .await
            .is_ok_and(|c| c.len() == 1)
    })
    .await;
    env.ao("ao-clean", &["boss"], None).ok();
    kid.wait();
    crate::support::project::eventually("the callback to fail", async || {
        env.client()
            .callbacks(&boss_id)
            .await
            .is_ok_and(|c| c[0].status == "failed")
    })
    .await;
    assert!(
        env.sm()
            .log_text()
            .contains("the callback of session 'kid' to session"),
        "logged"
    );
    let owed = env.client().callbacks(&boss_id).await.unwrap();
    assert_eq!(
        owed[0].error.as_deref(),
        Some("the parent session was deleted")
    );
}

#[tokio::test]
async fn a_fork_of_a_worktree_session_gets_its_own_worktree_from_the_origins_branch() {
    let env = Project::with_server();
    crate::worktree::repository(&env);
    env.run("ao-new", &["w", "--worktree"], "edit it", "edit:notes.txt")
        .ok();
    let origin_tree = env.dir.join(".agent-orchestrator/worktrees/w");
    crate::worktree::git(&origin_tree, &["add", "notes.txt"]);
    crate::worktree::git(&origin_tree, &["commit", "--quiet", "-m", "notes"]);
    let origin_head = crate::worktree::git(&origin_tree, &["rev-parse", "HEAD"]);

    env.run("ao-fork", &["w", "w2"], "go on", "plain").ok();
    let fork_tree = env.dir.join(".agent-orchestrator/worktrees/w2");
    assert!(
        fork_tree.join("notes.txt").exists(),
        "the origin's work is there"
    );
    assert_eq!(
        crate::worktree::git(&fork_tree, &["rev-parse", "--abbrev-ref", "HEAD"]).trim(),
        "ao/w2"
    );
    assert_eq!(
        crate::worktree::git(&fork_tree, &["rev-parse", "HEAD"]),
        origin_head
    );
    let log = env.fake_log();
    assert_eq!(
        log.last().unwrap()["cwd"],
        fork_tree.to_string_lossy().as_ref()
    );
    let meta = env.meta("w2");
    assert_eq!(meta["worktree"]["branch"], "ao/w2");
    assert_eq!(meta["forked_from"], env.session_id("w").as_str());
    // The origin's worktree is as it was.
    assert_eq!(
        crate::worktree::git(&origin_tree, &["rev-parse", "HEAD"]),
        origin_head
    );
}

#[tokio::test]
async fn a_tree_budget_bounds_each_run_refuses_the_next_and_stops_running_ones() {
    let env = Project::with_server();
    // A turn costs $0.000188.
    env.run(
        "ao-new",
        &["root", "--budget-usd", "0.0005"],
        "plan",
        "plain",
    )
    .ok();
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.0005")
    );
    let root = env.session("root").await.unwrap();
    assert_eq!(root.budget_usd, Some(0.0005));
    assert_eq!(env.backup_lines("root")[0]["budget_usd"], 0.0005);

    // A child starts with what is left of the root's budget.
    let hanging = env.spawn("ao-new", &["kid-1", "--parent", "root"], "wait", "hang");
    crate::support::project::eventually("kid-1 to run", async || {
        env.session("kid-1")
            .await
            .is_some_and(|s| s.status.as_str() == "running")
    })
    .await;
    // Another child spends past what is left: its own run ends (budget),
    // the tree is spent, and the running one is stopped with reason budget.
    let out = env.run("ao-new", &["kid-2", "--parent", "root"], "spend", "tools:3");
    assert!(out.fails(1).contains("budget"), "{out:?}");
    let out = hanging.wait();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("its tree's budget is spent"), "{out:?}");
    let ends = env.events("kid-1").await;
    assert_eq!(ends.last().unwrap()["reason"], "budget");
    // It had started with what was left of the root's budget.
    let kid_1 = env
        .fake_log()
        .into_iter()
        .find(|l| l["scenario"] == "hang")
        .unwrap();
    let argv: Vec<String> = serde_json::from_value(kid_1["argv"].clone()).unwrap();
    assert_eq!(
        flag_value(&argv, "--max-budget-usd").as_deref(),
        Some("0.000312")
    );

    // The next run in the tree is refused, in one line, and nothing starts.
    let runs_before = env.fake_log().len();
    let out = env.run("ao-new", &["kid-3", "--parent", "root"], "more", "plain");
    let line = out.fails(1);
    assert!(
        line.contains("the budget of $0.0005 set by session 'root'") && line.contains(" spent)"),
        "{line}"
    );
    assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
    let out = env.run("ao-resume", &["root"], "more", "plain");
    assert!(out.fails(1).contains("set by session 'root'"));
    assert_eq!(env.fake_log().len(), runs_before, "nothing started");
    assert!(!env.backup("kid-3", "jsonl").exists());

    // ao-usage and GET /usage show it.
    let usage: Value = serde_json::from_str(env.ao("ao-usage", &["--json"], None).ok()).unwrap();
    let budget = &usage["budgets"][0];
    assert_eq!(budget["kind"], "tree");
    assert_eq!(budget["session_name"], "root");
    assert_eq!(budget["left_usd"], 0.0);
    let text = env.ao("ao-usage", &[], None);
    assert!(text.ok().contains("tree of session 'root': $"), "{text:?}");

    // A new budget lets the tree go on.
    env.run(
        "ao-resume",
        &["root", "--budget-usd", "1"],
        "go on",
        "plain",
    )
    .ok();
    assert_eq!(env.session("root").await.unwrap().budget_usd, Some(1.0));
}

#[tokio::test]
async fn a_project_past_its_daily_budget_is_refused_with_409_and_what_was_spent() {
    let env = Project::with_hosting_server(&["--daily-budget-usd", "0.0003"], None);
    env.run("ao-new", &["a"], "one", "plain").ok();
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.0003")
    );
    // The next one may spend what is left, and spends past it.
    env.run("ao-new", &["b"], "two", "tools:1").fails(1);
    assert_eq!(
        flag_value(&last_argv(&env), "--max-budget-usd").as_deref(),
        Some("0.000112")
    );
    let out = env.run("ao-new", &["c"], "three", "plain");
    let line = out.fails(1);
    assert!(
        line.contains("today") && line.contains("daily budget of $0.0003"),
        "{line}"
    );
    let http = env.sm().http().with_token(&env.sm().local_token());
    let answer = http
        .post(
            "/runs",
            serde_json::json!({"session_name": "d", "prompt": "go", "project_dir": env.dir_text()}),
        )
        .await;
    assert_eq!(answer.0, 409, "{answer:?}");
    assert!(
        answer.1["detail"].as_str().unwrap().contains("spent $"),
        "{answer:?}"
    );
    let usage = env.client().usage("project", None, None).await.unwrap();
    let daily = usage.budgets.iter().find(|b| b.kind == "daily").unwrap();
    assert_eq!(daily.left_usd, 0.0);
    assert_eq!(daily.project_dir.as_deref(), Some(env.dir_text().as_str()));
}

#[tokio::test]
async fn through_mcp_an_async_start_calls_back_and_a_fork_forks() {
    use crate::mcp::{call, connect};
    let mut env = Project::with_hosting_server(&[], None);
    env.new_session("boss", "plan");
    // ao-mcp as the CLI of boss's run starts it: the runner names its meta.
    let meta = env.backup("boss", "meta.json");
    env.set_env(
        agent_orchestrator::config::ENV_PARENT_META,
        &meta.to_string_lossy(),
    );
    let (session, _) = connect(&env, "plain").await;
    let (failed, text) = call(
        &session,
        "start_agent_session",
        serde_json::json!({"session_name": "kid", "prompt": "sync", "callback": true}),
    )
    .await;
    assert!(failed && text.contains("needs async=true"), "{text}");
    let (failed, text) = call(
        &session,
        "start_agent_session",
        serde_json::json!({"session_name": "kid", "prompt": "part one", "async": true, "callback": true, "budget_usd": 1.5}),
    )
    .await;
    assert!(!failed, "{text}");
    runs_of(&env, "boss", 2).await;
    assert_eq!(
        prompts(&env, "boss")[1],
        "<agent-callback session=\"kid\" status=\"completed\">fake answer to: part one</agent-callback>"
    );
    assert_eq!(env.session("kid").await.unwrap().budget_usd, Some(1.5));
    env.ao("ao-wait", &["boss"], None);

    let (failed, text) = call(
        &session,
        "fork_agent_session",
        serde_json::json!({"session_name": "boss", "new_session_name": "alt", "prompt": "another way"}),
    )
    .await;
    assert!(!failed, "{text}");
    assert_eq!(text, "fake answer to: another way");
    assert_eq!(
        env.meta("alt")["forked_from"],
        env.session_id("boss").as_str()
    );
    let (failed, text) = call(
        &session,
        "fork_agent_session",
        serde_json::json!({"session_name": "nobody", "new_session_name": "alt2", "prompt": "x"}),
    )
    .await;
    assert!(
        failed && text.contains("no session named 'nobody'"),
        "{text}"
    );
    // A fork in the background calls back too.
    let (failed, text) = call(
        &session,
        "fork_agent_session",
        serde_json::json!({"session_name": "alt", "new_session_name": "alt-2", "prompt": "a third way", "async": true, "callback": true}),
    )
    .await;
    assert!(!failed, "{text}");
    runs_of(&env, "boss", 3).await;
    assert_eq!(
        prompts(&env, "boss")[2],
        "<agent-callback session=\"alt-2\" status=\"completed\">fake answer to: a third way</agent-callback>"
    );
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn a_child_whose_cli_never_began_still_calls_back_with_its_error() {
    let env = Project::with_hosting_server(&[], None);
    env.new_session("boss", "plan");
    let out = env.run(
        "ao-new",
        &["kid", "--callback", "--parent", "boss"],
        "go",
        "noinit",
    );
    out.fails(1);
    runs_of(&env, "boss", 2).await;
    let resumed = &prompts(&env, "boss")[1];
    assert!(
        resumed.starts_with("<agent-callback session=\"kid\" status=\"error\">")
            && resumed.contains("No conversation found"),
        "{resumed}"
    );
}

#[tokio::test]
async fn a_resume_of_the_parent_that_cannot_start_is_tried_again_then_fails_with_its_reason() {
    let env = Project::with_hosting_server(&[], None);
    crate::worktree::repository(&env);
    env.run("ao-new", &["boss", "--worktree"], "plan", "plain")
        .ok();
    let boss_id = env.session_id("boss");
    // Its worktree goes: a resume of it refuses to start.
    std::fs::remove_dir_all(env.dir.join(".agent-orchestrator/worktrees/boss")).unwrap();
    env.run(
        "ao-new",
        &["kid", "--callback", "--parent", "boss"],
        "go",
        "plain",
    )
    .ok();
    crate::support::project::eventually("the callback to fail", async || {
        env.client()
            .callbacks(&boss_id)
            .await
            .is_ok_and(|c| c[0].status == "failed")
    })
    .await;
    let owed = env.client().callbacks(&boss_id).await.unwrap();
    let error = owed[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("the resume of the parent did not start:") && error.contains("worktree"),
        "{error}"
    );
    // Four launches were tried, none ran.
    let runs = env
        .client()
        .list_runs(None, None, Some("boss"))
        .await
        .unwrap();
    assert_eq!(runs.len(), 4, "{runs:?}");
    assert!(runs.iter().all(|r| r.status.as_str() == "failed_to_start"));
    assert_eq!(env.session("boss").await.unwrap().num_runs, 1);
}
