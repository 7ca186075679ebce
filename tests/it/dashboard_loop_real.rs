//! The dashboard drives real runs: the real Claude Code CLI (pinned, or
//! `AO_TEST_CLAUDE`) against the mock model, in headless Chromium
//! (tests/browser/runs.mjs). A person clicks Allow on a run waiting on a
//! permission and the run completes; a person starts a session with the
//! New session form on the session manager's own host and continues it
//! with the reply box, each answer appearing live.

use serde_json::{Value, json};

use crate::dashboard_browser::{Artifacts, Script, browser_or_skip};
use crate::requests::{events_of, pending};
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;
use crate::support::{Project, Running, SessionManager};

/// The script's ANSWER line, as the page showed it.
fn shown_answer(script: &Script) -> String {
    let transcript = script.transcript();
    let line = transcript
        .lines()
        .find_map(|l| l.strip_prefix("ANSWER "))
        .unwrap_or_else(|| panic!("no ANSWER line:\n{transcript}"));
    serde_json::from_str(line).unwrap()
}

#[tokio::test]
async fn chromium_clicks_allow_and_the_real_run_completes() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let mut cmd = env.command("ao-new");
    cmd.args(["w", "--permission-mode", "default"]);
    let runner = Running::start(
        cmd,
        Some("Please RUN_BASH: echo written-by-agent > agent-output.txt"),
    );
    eventually("the run to wait on its permission", async || {
        pending(&env, "w").await.len() == 1
    })
    .await;
    assert!(!env.dir.join("agent-output.txt").exists(), "it waits");
    let work = env.scratch().to_owned();
    let artifacts = Artifacts::new(&work, &["runs-allow-failure.png"]);
    let token = std::fs::read_to_string(env.sm().local_token_file()).unwrap();
    let mut script = Script::spawn(
        &chromium,
        "runs.mjs",
        &[
            format!("{}/", env.url()).as_ref(),
            work.as_os_str(),
            json!({"token": token.trim(), "mode": "allow", "name": "w",
                   "command": "echo written-by-agent > agent-output.txt"})
            .to_string()
            .as_ref(),
        ],
    );
    script.expect("PASS");
    assert_eq!(script.finish(), Some(0), "{}", script.transcript());
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout.trim_end(), shown_answer(&script));
    assert_eq!(
        std::fs::read_to_string(env.dir.join("agent-output.txt")).unwrap(),
        "written-by-agent\n"
    );
    let decided = &events_of(&env, "w", "permission_decision").await[0];
    assert_eq!(decided["decision"], "allow");
    assert_eq!(decided["decided_by"], "person");
    drop(artifacts);
}

#[tokio::test]
async fn chromium_starts_and_continues_a_session_on_the_session_managers_own_host() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let scratch = tempfile::tempdir().unwrap();
    let project = scratch.path().canonicalize().unwrap().join("shop");
    std::fs::create_dir_all(project.join(".claude/agents")).unwrap();
    std::fs::write(
        project.join(".claude/agents/reviewer.md"),
        "---\nname: reviewer\ndescription: Reviews a change\n---\nYou review changes.\n",
    )
    .unwrap();
    let mut env = claude.env(mock.base_url());
    env.push((
        "AGENT_ORCHESTRATOR_CLAUDE_PATH".to_owned(),
        claude.path.to_string_lossy().into_owned(),
    ));
    let sm = SessionManager::start_with_env(&[], &env);
    let work = scratch.path().join("shots");
    std::fs::create_dir(&work).unwrap();
    let artifacts = Artifacts::new(&work, &["runs.png", "runs-start-failure.png"]);
    let mut script = Script::spawn(
        &chromium,
        "runs.mjs",
        &[
            format!("{}/", sm.url).as_ref(),
            work.as_os_str(),
            json!({"token": sm.local_token(), "mode": "start", "project": project,
                   "agent": "reviewer", "prompt": "Please USE_TOOL now",
                   "answer": "The command printed hello-from-tool. Final answer: 4",
                   "reply": "and once more", "reply_answer": "mock answer: and once more"})
            .to_string()
            .as_ref(),
        ],
    );
    script.expect("PASS");
    assert_eq!(script.finish(), Some(0), "{}", script.transcript());
    let (_, runs) = sm.http().get("/runs?session_name=from-page").await;
    let runs = runs["runs"].as_array().unwrap();
    assert_eq!(runs.len(), 2, "{runs:?}");
    assert!(runs.iter().all(|r| r["status"] == "completed"), "{runs:?}");
    let resumed: Vec<&Value> = runs.iter().filter(|r| r["resume"] == true).collect();
    assert_eq!(resumed.len(), 1, "{runs:?}");
    assert_eq!(runs[0]["session_id"], runs[1]["session_id"]);
    drop(artifacts);
}
