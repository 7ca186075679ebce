//! Issue 22 with the real Claude Code CLI and the mock model API: a parent
//! woken by its children's callbacks (one, three at once, across a restart
//! of the session manager), a tree over its budget, a fork. Forks and
//! budgets need a release with `--fork-session` and `--max-budget-usd`
//! (not 1.0.100): there those parts check the one-line refusal instead.

use std::time::Duration;

use crate::orchestration::{prompts, runs_of};
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;
use crate::support::{Project, Running};

/// A Bash call that waits until the file `go` appears in the project.
const WAIT_FOR_GO: &str =
    "RUN_BASH: timeout 120 sh -c 'until [ -f go ]; do sleep 0.1; done; echo released'";

/// Starts `ao-new NAME [args]` with a run that waits for [`WAIT_FOR_GO`],
/// and waits until its tool call is under way.
async fn start_waiting(env: &Project, name: &str, args: &[&str]) -> Running {
    let mut all = vec![name];
    all.extend_from_slice(args);
    let runner = env.spawn("ao-new", &all, WAIT_FOR_GO, "");
    eventually(&format!("{name} to wait in its tool call"), async || {
        env.session(name).await.is_some()
            && env
                .events(name)
                .await
                .iter()
                .any(|e| e["event_type"] == "pre_tool")
    })
    .await;
    runner
}

fn callback(child: &str, status: &str, result: &str) -> String {
    format!("<agent-callback session=\"{child}\" status=\"{status}\">{result}</agent-callback>")
}

#[tokio::test]
async fn a_real_parent_is_resumed_with_a_childs_result() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = Project::with_hosting_server(&[], Some((&claude, mock.base_url())));
    env.new_session("boss", "Plan the work");
    let out = env.ao(
        "ao-new",
        &["kid", "--detach", "--callback", "--parent", "boss"],
        Some("Do part one"),
    );
    assert_eq!(out.ok(), "kid");
    env.ao("ao-wait", &["kid"], None).ok();
    runs_of(&env, "boss", 2).await;
    let expected = callback("kid", "completed", "mock answer: Do part one");
    assert_eq!(prompts(&env, "boss"), ["Plan the work", expected.as_str()]);
    // The model read it, in the parent's conversation.
    let history = mock.last_history();
    assert!(
        history.contains("Plan the work") && history.contains("agent-callback session="),
        "{history}"
    );
    assert!(
        env.ao("ao-get-result", &["boss"], None)
            .ok()
            .starts_with("mock answer: <agent-callback session=\"kid\"")
    );
}

#[tokio::test]
async fn a_real_parent_running_while_three_children_end_gets_one_resume_with_all_three() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = Project::with_hosting_server(&[], Some((&claude, mock.base_url())));
    let boss = start_waiting(&env, "boss", &[]).await;
    for kid in ["kid-1", "kid-2", "kid-3"] {
        let prompt = if kid == "kid-2" {
            "FAIL_API please".to_owned()
        } else {
            format!("Part {kid}")
        };
        let out = env.ao(
            "ao-new",
            &[kid, "--callback", "--parent", "boss"],
            Some(&prompt),
        );
        assert!(out.code.is_some(), "{out:?}");
    }
    let owed = env.status_json("boss")["callbacks"].clone();
    assert_eq!(owed.as_array().unwrap().len(), 3, "{owed}");
    std::fs::write(env.dir.join("go"), "").unwrap();
    boss.wait().ok();
    runs_of(&env, "boss", 2).await;
    env.ao("ao-wait", &["boss"], None);
    let all = prompts(&env, "boss");
    assert_eq!(all.len(), 2, "exactly one resume: {all:?}");
    let lines: Vec<&str> = all[1].lines().collect();
    assert_eq!(lines.len(), 3, "{all:?}");
    assert_eq!(
        lines[0],
        callback("kid-1", "completed", "mock answer: Part kid-1")
    );
    assert!(
        lines[1].starts_with("<agent-callback session=\"kid-2\" status=\"error\">")
            && lines[1].contains("mock: prompt rejected"),
        "{}",
        lines[1]
    );
    assert_eq!(
        lines[2],
        callback("kid-3", "completed", "mock answer: Part kid-3")
    );
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(
        env.session("boss").await.unwrap().num_runs,
        2,
        "no second resume"
    );
}

#[tokio::test]
async fn a_real_session_manager_restarted_before_the_delivery_delivers_once() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_hosting_server(&[], Some((&claude, mock.base_url())));
    let boss = start_waiting(&env, "boss", &[]).await;
    env.ao(
        "ao-new",
        &["kid", "--callback", "--parent", "boss"],
        Some("Part one"),
    )
    .ok();
    assert_eq!(env.status_json("boss")["callbacks"][0]["status"], "pending");
    // The session manager dies; the parent's run ends while it is away.
    env.sm_mut().kill9();
    std::fs::write(env.dir.join("go"), "").unwrap();
    let out = boss.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    env.sm_mut().restart();
    env.ao("ao-sync", &["boss"], None);
    runs_of(&env, "boss", 2).await;
    env.ao("ao-wait", &["boss"], None);
    // Another restart delivers nothing more.
    env.sm_mut().stop();
    env.sm_mut().restart();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let all = prompts(&env, "boss");
    assert_eq!(all.len(), 2, "exactly once: {all:?}");
    assert_eq!(
        all[1],
        callback("kid", "completed", "mock answer: Part one")
    );
    assert_eq!(env.session("boss").await.unwrap().num_runs, 2);
}

#[tokio::test]
async fn a_real_tree_over_its_budget_refuses_the_next_run_and_stops_a_running_one() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = Project::with_hosting_server(&[], Some((&claude, mock.base_url())));
    if !claude.supports("--max-budget-usd") {
        let out = env.ao("ao-new", &["root", "--budget-usd", "1"], Some("plan"));
        assert!(
            out.fails(1)
                .contains("a budget needs a Claude Code release with --max-budget-usd"),
            "{out:?}"
        );
        return;
    }
    // One model request costs $0.000188 here.
    env.ao(
        "ao-new",
        &["root", "--budget-usd", "0.0005"],
        Some("Plan the work"),
    )
    .ok();
    assert_eq!(env.session("root").await.unwrap().cost_usd, Some(0.000188));
    let waiting = start_waiting(&env, "kid-1", &["--parent", "root"]).await;
    // Two requests ($0.000376) pass what is left ($0.000312): the CLI ends
    // the run, and the tree is spent.
    let out = env.ao(
        "ao-new",
        &["kid-2", "--parent", "root"],
        Some("Please USE_TOOL now"),
    );
    assert!(
        out.fails(1).contains("Reached maximum budget ($0.000312)"),
        "{out:?}"
    );
    assert_eq!(
        env.events("kid-2").await.last().unwrap()["reason"],
        "budget"
    );
    let out = waiting.wait();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("its tree's budget is spent"), "{out:?}");
    assert_eq!(
        env.events("kid-1").await.last().unwrap()["reason"],
        "budget"
    );
    let requests = mock.request_count();
    let out = env.ao("ao-new", &["kid-3", "--parent", "root"], Some("More"));
    let line = out.fails(1);
    assert!(
        line.contains("the budget of $0.0005 set by session 'root'") && line.contains(" spent"),
        "{line}"
    );
    assert_eq!(out.stderr_lines().len(), 1);
    assert_eq!(mock.request_count(), requests, "nothing started");
}

#[tokio::test]
async fn a_real_fork_continues_differently_and_its_origin_is_unchanged() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = Project::with_hosting_server(&[], Some((&claude, mock.base_url())));
    env.new_session("design", "Remember the word APPLE");
    if !claude.supports("--fork-session") {
        let out = env.ao("ao-fork", &["design", "alt"], Some("Say PEAR"));
        assert!(
            out.fails(1)
                .contains("a fork needs a Claude Code release with --fork-session"),
            "{out:?}"
        );
        return;
    }
    let origin = env.session("design").await.unwrap();
    let out = env.ao("ao-fork", &["design", "alt"], Some("Now say PEAR"));
    assert_eq!(out.ok(), "mock answer: Now say PEAR");
    let history = mock.last_history();
    assert!(
        history.contains("APPLE") && history.contains("PEAR"),
        "{history}"
    );
    let fork = env.session("alt").await.unwrap();
    assert_ne!(fork.session_id, origin.session_id);
    assert_eq!(
        fork.forked_from.as_deref(),
        Some(origin.session_id.as_str())
    );
    assert_eq!(env.meta("alt")["forked_from"], origin.session_id.as_str());
    // The fork's own cost, though the CLI reports the origin's with it.
    assert_eq!(fork.cost_usd, Some(0.000188));

    // The origin's conversation did not take the fork's turn.
    env.ao("ao-resume", &["design"], Some("Which word?")).ok();
    let history = mock.last_history();
    assert!(
        history.contains("APPLE") && !history.contains("PEAR"),
        "{history}"
    );
    assert_eq!(
        env.session("design").await.unwrap().session_id,
        origin.session_id
    );
    // The fork goes on in its own conversation.
    env.ao("ao-resume", &["alt"], Some("And again?")).ok();
    let history = mock.last_history();
    assert!(
        history.contains("PEAR") && !history.contains("Which word"),
        "{history}"
    );

    // A fork of a worktree session: its own worktree, the same conversation.
    crate::worktree::repository(&env);
    env.ao("ao-new", &["w", "--worktree"], Some("Remember CHERRY"))
        .ok();
    env.ao("ao-fork", &["w", "w2"], Some("Now PLUM")).ok();
    let history = mock.last_history();
    assert!(
        history.contains("CHERRY") && history.contains("PLUM"),
        "{history}"
    );
    assert_eq!(env.meta("w2")["worktree"]["branch"], "ao/w2");
}
