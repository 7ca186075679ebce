//! A person in the loop with the real Claude Code CLI (pinned 2.1.329, or
//! `AO_TEST_CLAUDE`) against the mock model, under `--permission-mode
//! default`: a Bash call that writes a file waits for a decision, which a
//! person gives with the commands or the API, or the parent agent through
//! `ao-mcp`; an `AskUserQuestion` is answered with `ao-answer`. Claude Code
//! 1.0.100 sends its requests without suggestions and has no
//! `AskUserQuestion`: the tests say what they check there instead.

use serde_json::{Value, json};

use crate::requests::{authorized, events_of, pending};
use crate::support::mock_anthropic::{MockAnthropic, QUESTION};
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;
use crate::support::{Project, Running};

const FILE: &str = "agent-output.txt";
const WRITE: &str = "Please RUN_BASH: echo written-by-agent > agent-output.txt";

fn real_project(claude: &RealClaude, mock: &MockAnthropic) -> Project {
    let mut project = Project::with_server();
    project.use_real_claude(claude, mock.base_url());
    project
}

/// Starts `ao-new NAME ARGS` with `prompt` and waits until a request of its
/// run waits; answers the runner and the request.
async fn asking(env: &Project, name: &str, args: &[&str], prompt: &str) -> (Running, Value) {
    let mut cmd = env.command("ao-new");
    cmd.arg(name).args(args);
    let runner = Running::start(cmd, Some(prompt));
    let mut requests = Vec::new();
    eventually(&format!("a request of {name}"), async || {
        requests = pending(env, name).await;
        !requests.is_empty()
    })
    .await;
    assert_eq!(requests.len(), 1, "{requests:?}");
    (runner, requests.remove(0))
}

const DEFAULT: [&str; 2] = ["--permission-mode", "default"];

/// The `tool_result` the mock model received last, as text.
fn last_tool_result(mock: &MockAnthropic) -> String {
    let last = mock.message_requests().pop().expect("a messages request");
    let results: Vec<&Value> = last
        .messages()
        .iter()
        .flat_map(|m| m["content"].as_array().into_iter().flatten())
        .filter(|b| b["type"] == "tool_result")
        .collect();
    results
        .last()
        .map(|b| b["content"].to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn a_real_bash_call_that_writes_waits_until_ao_approve_lets_it() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let (runner, request) = asking(&env, "w", &DEFAULT, WRITE).await;
    assert_eq!(request["kind"], "permission");
    assert_eq!(request["tool_name"], "Bash");
    assert_eq!(
        request["input"]["command"],
        "echo written-by-agent > agent-output.txt"
    );
    assert!(!env.dir.join(FILE).exists(), "it waits");
    if request["suggestions"].is_null() {
        // Releases before about 2.0 (1.0.100) send no suggestions: there is
        // nothing to accept always, and saying so is refused.
        let out = env.ao("ao-approve", &["w", "--always"], None);
        assert!(out.fails(2).contains("no suggestion"), "{out:?}");
    } else {
        assert!(request["blocked_path"].as_str().unwrap().ends_with(FILE));
    }
    let out = env.ao("ao-approve", &["w"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.starts_with("The command printed"), "{out:?}");
    assert_eq!(
        std::fs::read_to_string(env.dir.join(FILE)).unwrap(),
        "written-by-agent\n"
    );
    let decided = &events_of(&env, "w", "permission_decision").await[0];
    assert_eq!(decided["decision"], "allow");
    assert_eq!(env.api_status("w").await, "finished");
}

#[tokio::test]
async fn a_real_denial_writes_nothing_and_the_models_next_request_carries_its_message() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let (runner, _) = asking(&env, "d", &DEFAULT, WRITE).await;
    let out = env.ao(
        "ao-deny",
        &["d", "--message", "no files from you today"],
        None,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!env.dir.join(FILE).exists());
    let result = last_tool_result(&mock);
    assert!(result.contains("no files from you today"), "{result}");
    let decided = &events_of(&env, "d", "permission_decision").await[0];
    assert_eq!(decided["message"], "no files from you today");
}

#[tokio::test]
async fn a_real_run_is_answered_through_the_api() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let (runner, request) = asking(&env, "api", &DEFAULT, WRITE).await;
    let sid = env.session("api").await.unwrap().session_id;
    let path = format!(
        "/sessions/{sid}/requests/{}",
        request["request_id"].as_str().unwrap()
    );
    let (status, body) = env.http().post(&path, json!({"decision": "allow"})).await;
    assert_eq!(status, 401, "no token, no decision: {body}");
    let always = !request["suggestions"].is_null();
    let (status, body) = authorized(&env)
        .post(&path, json!({"decision": "allow", "always": always}))
        .await;
    assert_eq!(status, 200, "{body}");
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.dir.join(FILE).exists());
    let decided = &events_of(&env, "api", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "person");
}

#[tokio::test]
async fn a_real_run_is_answered_by_the_parent_through_ao_mcp() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let (runner, _) = asking(&env, "child", &DEFAULT, WRITE).await;
    let (mcp, _) = crate::mcp::connect(&env, "").await;
    let (failed, text) = crate::mcp::call(
        &mcp,
        "answer_request",
        json!({"session_name": "child", "decision": "deny", "message": "ask me about files first"}),
    )
    .await;
    assert!(!failed, "{text}");
    mcp.cancel().await.unwrap();
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!env.dir.join(FILE).exists());
    assert!(last_tool_result(&mock).contains("ask me about files first"));
    let decided = &events_of(&env, "child", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "parent");
}

#[tokio::test]
async fn a_real_question_is_answered_with_ao_answer_and_the_choice_reaches_the_model() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    let mut cmd = env.command("ao-new");
    cmd.arg("q").args(DEFAULT);
    let runner = Running::start(cmd, Some("Please ASK_QUESTION now"));
    let mut requests = Vec::new();
    eventually("a question, or the end of the run", async || {
        requests = pending(&env, "q").await;
        !requests.is_empty()
            || env
                .session("q")
                .await
                .is_some_and(|s| s.status.as_str() == "finished")
    })
    .await;
    if requests.is_empty() {
        // A release without AskUserQuestion (1.0.100) refuses the call
        // itself: what is checked then is that the run does not wait.
        let tools = env
            .backup_lines("q")
            .into_iter()
            .find(|l| l["subtype"] == "init")
            .map(|l| l["tools"].clone())
            .unwrap_or_default();
        assert!(
            !tools
                .as_array()
                .unwrap()
                .iter()
                .any(|t| t == "AskUserQuestion"),
            "a release with AskUserQuestion must ask: {tools}"
        );
        eprintln!(
            "note: {} has no AskUserQuestion: checked that the run ends without waiting",
            claude.path.display()
        );
        assert_eq!(runner.wait().code, Some(0));
        return;
    }
    let request = requests.remove(0);
    assert_eq!(request["kind"], "question");
    assert_eq!(request["input"]["questions"][0]["question"], QUESTION);
    let out = env.ao("ao-answer", &["q", "--choice", "red"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    let result = last_tool_result(&mock);
    assert!(result.contains(r#"\"Which colour?\"=\"red\""#), "{result}");
    let decided = &events_of(&env, "q", "permission_decision").await[0];
    assert_eq!(decided["answers"][QUESTION], "red");
}

#[tokio::test]
async fn a_real_agent_with_accept_edits_writes_in_its_project_and_asks_for_the_rest() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let env = real_project(&claude, &mock);
    env.write_agent(
        "editor",
        r#"{"name": "editor", "description": "edits freely", "permission_mode": "acceptEdits"}"#,
    );
    // An edit in the project: accepted without asking.
    let out = env.ao(
        "ao-new",
        &["ed", "--agent", "editor"],
        Some("Please RUN_BASH: touch inside.txt"),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(env.dir.join("inside.txt").exists());
    assert!(events_of(&env, "ed", "permission_request").await.is_empty());
    // Outside it: asked.
    let outside = env.scratch().join("outside.txt");
    let prompt = format!("Please RUN_BASH: echo x > {}", outside.display());
    let (runner, request) = asking(&env, "ed2", &["--agent", "editor"], &prompt).await;
    assert_eq!(request["tool_name"], "Bash");
    assert!(!outside.exists());
    let out = env.ao("ao-approve", &["ed2"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(std::fs::read_to_string(&outside).unwrap(), "x\n");
}
