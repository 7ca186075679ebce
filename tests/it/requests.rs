//! A person in the loop, against the fake CLI: a run under a permission mode
//! other than bypassPermissions waits for each `can_use_tool` request, and
//! a person (the commands, the API), the parent agent (`ao-mcp`), the
//! run's policy or its timeout decides. Every path ends with the request
//! closed and recorded, in the API and in the backup.

use std::os::unix::process::CommandExt;

use serde_json::{Value, json};

use crate::faults::without_ids;
use crate::support::http::kinds;
use crate::support::live::SseClient;
use crate::support::project::eventually;
use crate::support::{Http, Project, Running, command};

const WRITE: &str = "permission:out.txt";

/// Starts `ao-new NAME --permission-mode default ARGS` with the fake
/// playing `scenario`, and waits until `count` requests of its run wait;
/// answers the runner and those requests.
async fn waiting(
    env: &Project,
    name: &str,
    scenario: &str,
    args: &[&str],
    count: usize,
) -> (Running, Vec<Value>) {
    let mut all = vec![name, "--permission-mode", "default"];
    all.extend_from_slice(args);
    let runner = env.spawn("ao-new", &all, "do it", scenario);
    let mut requests = Vec::new();
    eventually(&format!("{count} requests of {name}"), async || {
        requests = pending(env, name).await;
        requests.len() == count
    })
    .await;
    (runner, requests)
}

/// The pending requests of session `name` (none before it exists).
pub(crate) async fn pending(env: &Project, name: &str) -> Vec<Value> {
    let Some(session) = env.session(name).await else {
        return Vec::new();
    };
    let (status, body) = env
        .http()
        .get(&format!("/sessions/{}/requests", session.session_id))
        .await;
    assert_eq!(status, 200, "{body}");
    body["requests"].as_array().unwrap().clone()
}

/// The API with the project's session manager's local token.
pub(crate) fn authorized(env: &Project) -> Http {
    let token = std::fs::read_to_string(env.sm().local_token_file()).unwrap();
    env.http().with_token(token.trim())
}

/// The events of one type of session `name`.
pub(crate) async fn events_of(env: &Project, name: &str, event_type: &str) -> Vec<Value> {
    env.events(name)
        .await
        .into_iter()
        .filter(|e| e["event_type"] == event_type)
        .collect()
}

/// The backup's decision lines.
fn decision_lines(env: &Project, name: &str) -> Vec<Value> {
    env.backup_lines(name)
        .into_iter()
        .filter(|l| l["type"] == "permission_decision")
        .collect()
}

/// What the runner answered the fake's `can_use_tool` requests.
fn answers_to_cli(env: &Project) -> Vec<Value> {
    env.fake_stdin(0)
        .into_iter()
        .filter(|l| {
            l["type"] == "control_response" && l["response"]["response"]["behavior"].is_string()
        })
        .map(|l| l["response"]["response"].clone())
        .collect()
}

#[tokio::test]
async fn an_approved_tool_call_runs_and_every_step_is_recorded() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "w", WRITE, &[], 1).await;
    let request = &requests[0];
    let id = request["request_id"].as_str().unwrap().to_owned();
    assert_eq!(request["kind"], "permission");
    assert_eq!(request["tool_name"], "Bash");
    assert_eq!(
        request["input"]["command"],
        "echo written-by-fake > out.txt"
    );
    assert_eq!(request["session_name"], "w");
    assert_eq!(request["suggestions"][0]["type"], "addRules");
    assert!(
        request["blocked_path"]
            .as_str()
            .unwrap()
            .ends_with("/out.txt")
    );
    assert!(
        !env.dir.join("out.txt").exists(),
        "nothing runs before the answer"
    );
    let session = env.session("w").await.unwrap();
    assert_eq!(session.pending_requests, 1);
    assert_eq!(
        session.status.as_str(),
        "running",
        "a waiting run is running"
    );

    let listed = env.ao("ao-requests", &[], None);
    assert_eq!(
        listed.ok(),
        format!("w {id} permission Bash: echo written-by-fake > out.txt")
    );
    let json: Value =
        serde_json::from_str(env.ao("ao-requests", &["w", "--json"], None).ok()).unwrap();
    assert_eq!(json[0]["request_id"], id.as_str());

    let out = env.ao("ao-approve", &["w"], None);
    assert_eq!(out.ok(), format!("w: allowed {id}"));
    let out = runner.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "fake answer to: do it [permission: allowed]\n");
    let note = out.stderr_lines();
    assert!(
        note.len() == 1 && note[0].contains(&id) && note[0].contains("ao-approve w"),
        "one line says what the run waits for and how to answer: {out:?}"
    );
    assert_eq!(
        std::fs::read_to_string(env.dir.join("out.txt")).unwrap(),
        "written-by-fake\n"
    );
    let argv = env.fake_log()[0]["argv"].to_string();
    assert!(
        argv.contains(r#""--permission-prompt-tool","stdio""#),
        "{argv}"
    );
    assert_eq!(
        answers_to_cli(&env),
        [json!({"behavior": "allow", "updatedInput": request["input"]})]
    );

    let events = env.events("w").await;
    let kinds = kinds(&events);
    let at = |kind: &str| kinds.iter().position(|k| k == kind).unwrap();
    assert!(at("pre_tool") < at("permission_request"));
    assert!(at("permission_request") < at("permission_decision"));
    assert!(at("permission_decision") < at("post_tool"));
    let asked = &events[at("permission_request")];
    assert_eq!(asked["request_id"], id.as_str());
    assert_eq!(asked["tool_input"], request["input"]);
    let decided = &events[at("permission_decision")];
    assert_eq!(
        (
            &decided["decision"],
            &decided["decided_by"],
            &decided["tool_name"]
        ),
        (&json!("allow"), &json!("person"), &json!("Bash"))
    );
    assert!(pending(&env, "w").await.is_empty());
    assert_eq!(env.session("w").await.unwrap().pending_requests, 0);
    let (_, record) = env
        .http()
        .get(&format!("/sessions/{}/requests/{id}", session.session_id))
        .await;
    assert_eq!(record["request"]["status"], "closed");
    assert_eq!(record["request"]["decision"]["decision"], "allow");

    // The backup: the CLI's request as printed, then the runner's decision.
    let lines = env.backup_lines("w");
    let asked_at = lines
        .iter()
        .position(|l| l["request"]["subtype"] == "can_use_tool")
        .unwrap();
    let decision = &lines[asked_at + 1];
    assert_eq!(decision["type"], "permission_decision");
    assert_eq!(decision["request_id"], id.as_str());
    assert_eq!(decision["run_id"], lines[0]["run_id"]);
    assert_eq!(decision["decided_by"], "person");
}

#[tokio::test]
async fn a_denial_writes_nothing_and_its_message_reaches_the_model() {
    let env = Project::with_server();
    let (runner, _) = waiting(&env, "d", WRITE, &[], 1).await;
    let out = env.ao(
        "ao-deny",
        &["d", "--message", "not on this machine", "--json"],
        None,
    );
    let decided: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(decided["decision"], "deny");
    assert_eq!(decided["message"], "not on this machine");
    let out = runner.wait();
    assert_eq!(
        out.stdout,
        "fake answer to: do it [permission: denied: not on this machine]\n"
    );
    assert!(!env.dir.join("out.txt").exists());
    assert_eq!(
        answers_to_cli(&env),
        [json!({"behavior": "deny", "message": "not on this machine"})]
    );
    let decided = &events_of(&env, "d", "permission_decision").await[0];
    assert_eq!(decided["message"], "not on this machine");
    assert_eq!(decision_lines(&env, "d")[0]["decision"], "deny");
}

#[tokio::test]
async fn always_accepts_the_clis_suggestions() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "a", WRITE, &[], 1).await;
    let out = env.ao("ao-approve", &["a", "--always"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert_eq!(
        out.stdout,
        "fake answer to: do it [permission: allowed always (2 suggestions)]\n"
    );
    let answer = &answers_to_cli(&env)[0];
    assert_eq!(answer["updatedPermissions"], requests[0]["suggestions"]);
    let decided = &events_of(&env, "a", "permission_decision").await[0];
    assert_eq!(decided["always"], true);
}

#[tokio::test]
async fn a_question_is_answered_with_one_of_its_options() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "q", "question", &[], 1).await;
    let id = requests[0]["request_id"].as_str().unwrap().to_owned();
    assert_eq!(requests[0]["kind"], "question");
    assert_eq!(requests[0]["tool_name"], "AskUserQuestion");
    let listed = env.ao("ao-requests", &["q"], None);
    assert_eq!(
        listed.ok(),
        format!("q {id} question AskUserQuestion: Which colour? [blue | red]")
    );
    let refused = env.ao("ao-approve", &["q"], None);
    let line = refused.fails(2);
    assert!(
        line.contains(&format!("ao-answer q {id} --choice LABEL")),
        "{line}"
    );
    let refused = env.ao("ao-answer", &["q", "--choice", "purple"], None);
    let line = refused.fails(2);
    assert!(
        line.contains("'purple' is not an option of 'Which colour?'") && line.contains("blue, red"),
        "{line}"
    );
    assert_eq!(
        pending(&env, "q").await.len(),
        1,
        "a refusal changes nothing"
    );
    let out = env.ao("ao-answer", &["q", "--choice", "Blue"], None);
    assert_eq!(out.ok(), format!("q: answered {id}"));
    let out = runner.wait();
    assert_eq!(
        out.stdout,
        "fake answer to: do it [question: Which colour?=blue]\n"
    );
    let answer = &answers_to_cli(&env)[0];
    assert_eq!(
        answer["updatedInput"]["answers"],
        json!({"Which colour?": "blue"})
    );
    assert_eq!(
        answer["updatedInput"]["questions"],
        requests[0]["input"]["questions"]
    );
    let decided = &events_of(&env, "q", "permission_decision").await[0];
    assert_eq!(decided["answers"]["Which colour?"], "blue");
    assert_eq!(decided["kind"], "question");
}

#[tokio::test]
async fn nobody_answering_in_time_is_a_denial_by_the_timeout() {
    let env = Project::with_server();
    let out = env.run(
        "ao-new",
        &[
            "t",
            "--permission-mode",
            "default",
            "--permission-timeout",
            "1",
        ],
        "do it",
        WRITE,
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("[permission: denied: Denied: nobody answered within 1 s"),
        "{out:?}"
    );
    assert!(!env.dir.join("out.txt").exists());
    let decided = &events_of(&env, "t", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "timeout");
    assert_eq!(decided["decision"], "deny");
    assert_eq!(env.session("t").await.unwrap().pending_requests, 0);
}

#[tokio::test]
async fn a_policy_decides_at_once_for_an_unattended_run() {
    let env = Project::with_server();
    let out = env.run(
        "ao-new",
        &[
            "allow",
            "--permission-mode",
            "default",
            "--on-permission",
            "allow",
        ],
        "do it",
        &format!("{WRITE},question"),
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr, "", "nobody is asked: {out:?}");
    assert!(out.stdout.contains("[permission: allowed]"), "{out:?}");
    assert!(
        out.stdout
            .contains("[question: denied: Nobody is there to answer questions"),
        "{out:?}"
    );
    assert!(env.dir.join("out.txt").exists());
    let decided = events_of(&env, "allow", "permission_decision").await;
    assert_eq!(decided.len(), 2);
    assert!(decided.iter().all(|d| d["decided_by"] == "policy"));

    // The same from an agent's fields.
    let agent = env.write_agent(
        "careful",
        r#"{"name": "careful", "description": "asks nothing", "permission_mode": "acceptEdits", "on_permission": "deny"}"#,
    );
    std::fs::remove_file(env.dir.join("out.txt")).unwrap();
    let out = env.run("ao-new", &["deny", "--agent", "careful"], "do it", WRITE);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("[permission: denied: Denied by the run's policy (--on-permission deny)"),
        "{out:?}"
    );
    assert!(!env.dir.join("out.txt").exists());
    let argv = env.fake_log()[1]["argv"].to_string();
    assert!(
        argv.contains(r#""--permission-mode","acceptEdits","--permission-prompt-tool","stdio""#),
        "{argv}"
    );
    let decided = &events_of(&env, "deny", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "policy");
    // A bad field is refused before anything runs, on its line.
    std::fs::write(
        agent,
        "{\"name\": \"careful\",\n\"permission_timeout\": \"soon\"}",
    )
    .unwrap();
    let out = env.run("ao-new", &["bad", "--agent", "careful"], "do it", WRITE);
    let line = out.fails(2);
    assert!(line.contains("agent.json:2: permission_timeout"), "{line}");
}

#[tokio::test]
async fn an_answer_from_another_process_through_the_api_reaches_the_run() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "api", WRITE, &[], 1).await;
    let session = env.session("api").await.unwrap();
    let id = requests[0]["request_id"].as_str().unwrap();
    let path = format!("/sessions/{}/requests/{id}", session.session_id);
    let mut feed = SseClient::connect_to(
        env.url(),
        &format!("/sse?session_id={}", session.session_id),
    )
    .await;
    let (status, body) = authorized(&env)
        .post(&path, json!({"decision": "allow"}))
        .await;
    assert_eq!((status, &body), (200, &json!({"ok": true})));
    let answered = loop {
        let (name, message) = feed.next().await.expect("a live message");
        if name == "request_answered" {
            break message;
        }
    };
    assert_eq!(answered["request_id"], id);
    assert_eq!(answered["decision"], "allow");
    assert_eq!(answered["decided_by"], "person");
    let out = runner.wait();
    assert!(out.stdout.contains("[permission: allowed]"), "{out:?}");
    assert!(env.dir.join("out.txt").exists());
}

#[tokio::test]
async fn a_stop_while_waiting_denies_the_request_and_stops_the_run() {
    let env = Project::with_server();
    let (runner, _) = waiting(&env, "s", WRITE, &[], 1).await;
    let out = env.ao("ao-stop", &["s"], None);
    assert_eq!(out.ok(), "s: stopped");
    let out = runner.wait();
    assert_eq!(out.code, Some(143), "{out:?}");
    assert!(!env.dir.join("out.txt").exists());
    let lines = decision_lines(&env, "s");
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["message"], "Denied: the run was stopped.");
    assert_eq!(lines[0]["decided_by"], "policy");
    assert_eq!(
        answers_to_cli(&env),
        [json!({"behavior": "deny", "message": "Denied: the run was stopped."})]
    );
    assert!(pending(&env, "s").await.is_empty());
    assert_eq!(env.session("s").await.unwrap().pending_requests, 0);
}

#[tokio::test]
async fn a_runner_killed_while_waiting_leaves_nothing_pending_once_its_run_is_closed() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "k", WRITE, &[], 1).await;
    env.kill_run("k", runner);
    let session = env.session("k").await.unwrap();
    assert_eq!(session.pending_requests, 1, "the API cannot know yet");
    // The next command that takes the session's lock closes the run.
    assert_eq!(env.ao("ao-status", &["k"], None).ok(), "finished");
    assert!(pending(&env, "k").await.is_empty());
    let session = env.session("k").await.unwrap();
    assert_eq!(session.pending_requests, 0);
    let id = requests[0]["request_id"].as_str().unwrap();
    let path = format!("/sessions/{}/requests/{id}", session.session_id);
    let (_, record) = env.http().get(&path).await;
    assert_eq!(record["request"]["status"], "closed");
    let (status, body) = authorized(&env)
        .post(&path, json!({"decision": "allow"}))
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("ended before anyone answered"),
        "{body}"
    );
    let out = env.ao("ao-approve", &["k"], None);
    assert_eq!(
        out.fails(1),
        "ao-approve: error: nothing is waiting for an answer in session 'k'"
    );
}

#[tokio::test]
async fn decisions_that_do_not_fit_are_refused_and_change_nothing() {
    let env = Project::with_server();
    let (runner, requests) =
        waiting(&env, "two", &format!("{WRITE},question,together"), &[], 2).await;
    let out = env.ao("ao-approve", &["two"], None);
    let line = out.fails(2);
    assert!(
        line.contains("session 'two' waits for 2 requests")
            && line.contains("Bash: echo written-by-fake > out.txt")
            && line.contains("question: Which colour?")
            && line.contains("`ao-approve two REQUEST_ID`"),
        "{line}"
    );
    let sid = env.session("two").await.unwrap().session_id;
    let (other_runner, _) = waiting(&env, "other", WRITE, &[], 1).await;
    let other_sid = env.session("other").await.unwrap().session_id;
    let id = |r: &Value| r["request_id"].as_str().unwrap().to_owned();
    let (permission, question) = if requests[0]["kind"] == "permission" {
        (id(&requests[0]), id(&requests[1]))
    } else {
        (id(&requests[1]), id(&requests[0]))
    };
    let http = authorized(&env);
    let post = |sid: &str, rid: &str, body: Value| {
        let http = http.clone();
        let path = format!("/sessions/{sid}/requests/{rid}");
        async move { http.post(&path, body).await }
    };
    let allow = json!({"decision": "allow"});
    let (nope, nobody) = ("nope".to_owned(), "no-such-session".to_owned());
    for (sid, rid, body, status, detail) in [
        (
            &sid,
            &permission,
            json!({"decision": "maybe"}),
            422,
            "decision",
        ),
        (&sid, &permission, json!({}), 422, "decision"),
        (
            &sid,
            &permission,
            json!({"decision": "allow", "answers": {"Which colour?": "blue"}}),
            422,
            "answers go with a question",
        ),
        (
            &sid,
            &question,
            json!({"decision": "allow", "always": true}),
            422,
            "always goes with allow, for a permission",
        ),
        (
            &sid,
            &question,
            allow.clone(),
            422,
            "answered with allow and answers",
        ),
        (
            &sid,
            &question,
            json!({"decision": "allow", "answers": {"Which shape?": "round"}}),
            422,
            "not a question of this request",
        ),
        (
            &sid,
            &permission,
            json!({"decision": "allow", "decided_by": "timeout"}),
            422,
            "decided_by",
        ),
        (
            &other_sid,
            &permission,
            allow.clone(),
            404,
            "has no request",
        ),
        (&sid, &nope, allow.clone(), 404, "has no request"),
        (&nobody, &permission, allow.clone(), 404, "not found"),
    ] {
        let (got, body) = post(sid, rid, body.clone()).await;
        assert_eq!(got, status, "{body}");
        assert!(
            body["detail"].as_str().unwrap().contains(detail),
            "{detail}: {body}"
        );
    }
    // Without the token: 401, whatever the body.
    let (got, body) = env
        .http()
        .post(
            &format!("/sessions/{sid}/requests/{permission}"),
            allow.clone(),
        )
        .await;
    assert_eq!(got, 401, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("local token"),
        "{body}"
    );
    assert_eq!(pending(&env, "two").await.len(), 2, "nothing changed");

    // Twice: the first is taken, the second refused.
    let (got, _) = post(&sid, &permission, allow.clone()).await;
    assert_eq!(got, 200);
    let (got, body) = post(&sid, &permission, json!({"decision": "deny"})).await;
    assert_eq!(got, 409, "{body}");
    assert!(
        body["detail"]
            .as_str()
            .unwrap()
            .contains("already decided: allow by person"),
        "{body}"
    );
    let out = env.ao("ao-answer", &["two", &question, "--choice", "red"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = runner.wait();
    assert!(
        out.stdout
            .contains("[permission: allowed] [question: Which colour?=red]"),
        "{out:?}"
    );
    // After the run ended.
    let (got, body) = post(&sid, &question, json!({"decision": "deny"})).await;
    assert_eq!(got, 409, "{body}");
    let out = env.ao("ao-deny", &["other"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    other_runner.wait();
}

#[tokio::test]
async fn another_user_of_the_machine_cannot_decide() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "u", WRITE, &[], 1).await;
    let token_file = env.sm().local_token_file();
    // `nobody` runs ao-approve with everything the user's commands have but
    // the right to read the user's files: the local token among them.
    let mut cmd = command("ao-approve");
    cmd.arg("u")
        .args(["--project-dir", "/"])
        .current_dir("/")
        .env("HOME", "/nonexistent")
        .env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", env.url())
        .env(agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE, &token_file)
        .uid(65534)
        .gid(65534);
    let out = Running::start(cmd, None).wait();
    let line = out.fails(1);
    assert!(
        line.contains("401") && line.contains("local token"),
        "{line}"
    );
    assert_eq!(pending(&env, "u").await, requests, "nothing changed");
    // The same command as the user decides.
    let out = env.ao("ao-approve", &["u"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    runner.wait();
}

#[tokio::test]
async fn ao_wait_says_a_run_needs_input_and_exits_3() {
    let env = Project::with_server();
    let (runner, requests) = waiting(&env, "n", WRITE, &[], 1).await;
    let out = env.ao("ao-wait", &["n", "--timeout", "30"], None);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(out.stdout, "n: needs_input\n");
    let lines = out.stderr_lines();
    assert_eq!(lines.len(), 1, "{out:?}");
    assert!(lines[0].contains("`ao-requests n`"), "{out:?}");
    let out = env.ao("ao-wait", &["n", "--json"], None);
    assert_eq!(out.code, Some(3), "{out:?}");
    let entries: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(entries[0]["status"], "needs_input");
    // From another project, through the session manager's feed alone.
    let mut elsewhere = Project::new(env.url());
    elsewhere.set_env(
        agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
        env.sm().local_token_file().to_str().unwrap(),
    );
    let out = elsewhere.ao("ao-wait", &["n"], None);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "n: needs_input\n"),
        "{out:?}"
    );
    // A wait that begins before the request does.
    let other = env.spawn(
        "ao-new",
        &["m", "--permission-mode", "default"],
        "do it",
        "slow:300,permission:m.txt",
    );
    eventually("m to run", async || env.session("m").await.is_some()).await;
    let out = env.ao("ao-wait", &["m"], None);
    assert_eq!(
        (out.code, out.stdout.as_str()),
        (Some(3), "m: needs_input\n"),
        "{out:?}"
    );
    assert_eq!(env.ao("ao-deny", &["m"], None).code, Some(0));
    other.wait();

    let id = requests[0]["request_id"].as_str().unwrap();
    let out = env.ao("ao-approve", &["n", id], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.ao("ao-wait", &["n"], None);
    assert_eq!(out.ok(), "n: completed");
    runner.wait();
}

#[tokio::test]
async fn ao_sync_rebuilds_both_events_from_the_backup() {
    let env = Project::with_server();
    let (runner, _) = waiting(&env, "b", &format!("{WRITE},question"), &[], 1).await;
    env.ao("ao-approve", &["b"], None).ok();
    eventually("the question", async || pending(&env, "b").await.len() == 1).await;
    env.ao("ao-answer", &["b", "--choice", "red"], None).ok();
    assert_eq!(runner.wait().code, Some(0));
    let before = env.events("b").await;
    let sid = env.session("b").await.unwrap().session_id;
    let (status, _) = env.http().delete(&format!("/sessions/{sid}")).await;
    assert_eq!(status, 200);
    let out = env.ao("ao-sync", &["b"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let after = env.events("b").await;
    assert_eq!(
        without_ids(&after),
        without_ids(&before),
        "the same events, the same event ids"
    );
    let types: Vec<&str> = after
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types.iter().filter(|t| **t == "permission_request").count(),
        2
    );
    assert_eq!(
        types
            .iter()
            .filter(|t| **t == "permission_decision")
            .count(),
        2
    );
    let session = env.session("b").await.unwrap();
    assert_eq!(session.pending_requests, 0);
    let (_, requests) = env.http().get(&format!("/sessions/{sid}/requests")).await;
    assert_eq!(requests, json!({"requests": []}));
}

#[tokio::test]
async fn a_decision_taken_while_the_runner_was_away_is_found_when_it_reconnects() {
    // It edits the SQLite file while the session manager is down.
    let mut env = Project::with_sqlite_server();
    let (runner, requests) = waiting(&env, "r", WRITE, &[], 1).await;
    let id = requests[0]["request_id"].as_str().unwrap().to_owned();
    let sid = env.session("r").await.unwrap().session_id;
    // While the session manager is down, the decision is taken in its
    // database: no live message can ever tell the runner.
    env.sm_mut().kill9();
    {
        let db = rusqlite::Connection::open(&env.sm().db).unwrap();
        let changed = db
            .execute(
                "UPDATE requests SET status = 'answered', decision = ?1 WHERE session_id = ?2 AND request_id = ?3",
                rusqlite::params![
                    r#"{"decision":"deny","message":"decided while you were away","decided_by":"person"}"#,
                    sid,
                    id
                ],
            )
            .unwrap();
        assert_eq!(changed, 1);
    }
    env.sm_mut().restart();
    let out = runner.wait();
    assert!(
        out.stdout
            .contains("[permission: denied: decided while you were away]"),
        "{out:?}"
    );
    let decided = &events_of(&env, "r", "permission_decision").await[0];
    assert_eq!(decided["message"], "decided while you were away");
}

#[tokio::test]
async fn a_database_of_the_previous_release_gains_requests() {
    let old = crate::support::fixtures::copy_release("release-schema-4");
    let sm = crate::support::SessionManager::spawn_sqlite(&old.db, &[], None).unwrap();
    let http = sm.http();
    let (_, list) = http.get("/sessions").await;
    let sessions = list["sessions"].as_array().unwrap();
    assert!(!sessions.is_empty());
    for session in sessions {
        assert_eq!(session["pending_requests"], 0, "{session}");
        let id = session["session_id"].as_str().unwrap();
        let (status, body) = http.get(&format!("/sessions/{id}/requests")).await;
        assert_eq!((status, body), (200, json!({"requests": []})));
    }
    let db = rusqlite::Connection::open(&old.db).unwrap();
    let version: i64 = db
        .query_row("PRAGMA user_version", [], |r| r.get(0))
        .unwrap();
    assert_eq!(version, agent_orchestrator::server::SCHEMA_VERSION);
}

#[tokio::test]
async fn a_run_that_bypasses_permissions_is_never_asked() {
    let env = Project::with_server();
    let out = env.run("ao-new", &["free"], "do it", WRITE);
    assert_eq!(out.ok(), "fake answer to: do it [permission: allowed]");
    let argv = env.fake_log()[0]["argv"].to_string();
    assert!(!argv.contains("--permission-prompt-tool"), "{argv}");
    assert!(
        events_of(&env, "free", "permission_request")
            .await
            .is_empty()
    );
    assert!(decision_lines(&env, "free").is_empty());
}

#[tokio::test]
async fn the_parent_agent_supervises_its_child_through_mcp() {
    let env = Project::with_server();
    env.write_agent(
        "asker",
        r#"{"name": "asker", "description": "asks first", "permission_mode": "default"}"#,
    );
    let (mcp, _) = crate::mcp::connect(&env, WRITE).await;
    let (failed, text) = crate::mcp::call(
        &mcp,
        "start_agent_session",
        json!({"session_name": "child", "prompt": "do it", "agent_name": "asker", "async": true}),
    )
    .await;
    assert!(!failed, "{text}");
    let (failed, text) = crate::mcp::call(
        &mcp,
        "wait_for_agent_sessions",
        json!({"session_names": ["child"], "timeout_seconds": 30}),
    )
    .await;
    assert!(!failed, "{text}");
    let waited: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(waited["sessions"][0]["status"], "needs_input", "{waited}");
    assert_eq!(waited["needs_input"], json!(["child"]));
    assert_eq!(waited["timed_out"], false);
    let (failed, text) = crate::mcp::call(&mcp, "list_pending_requests", json!({})).await;
    assert!(!failed, "{text}");
    let listed: Value = serde_json::from_str(&text).unwrap();
    let requests = listed["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{listed}");
    assert_eq!(
        requests[0]["input"]["command"],
        "echo written-by-fake > out.txt"
    );
    // An answer that does not fit says which call does.
    let (failed, text) = crate::mcp::call(
        &mcp,
        "answer_request",
        json!({"session_name": "child", "decision": "allow", "choice": "blue"}),
    )
    .await;
    assert!(
        failed && text.contains("answer_request with session_name \"child\""),
        "{text}"
    );
    let (failed, text) = crate::mcp::call(
        &mcp,
        "answer_request",
        json!({"session_name": "child", "decision": "allow"}),
    )
    .await;
    assert!(!failed, "{text}");
    let decided: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(decided["decided_by"], "parent");
    let (_, text) = crate::mcp::call(
        &mcp,
        "wait_for_agent_sessions",
        json!({"session_names": ["child"], "timeout_seconds": 30}),
    )
    .await;
    let waited: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(waited["sessions"][0]["status"], "completed", "{waited}");
    assert!(
        waited["sessions"][0]["result"]
            .as_str()
            .unwrap()
            .contains("[permission: allowed]")
    );
    let decided = &events_of(&env, "child", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "parent");
    mcp.cancel().await.unwrap();
}

/// Every supported release takes `--permission-prompt-tool` (1.0.100 to
/// 2.1.332, see requests_real); one that did not would refuse the flag at
/// start. The run then fails in one line that says why, rather than hang.
#[tokio::test]
async fn a_cli_without_the_permission_prompt_tool_fails_in_one_line() {
    let mut env = Project::with_server();
    let wrapper = env.scratch().join("old-claude.sh");
    std::fs::write(
        &wrapper,
        format!(
            "#!/bin/sh\nfor a in \"$@\"; do [ \"$a\" = --permission-prompt-tool ] && {{ echo \"error: unknown option '--permission-prompt-tool'\" >&2; exit 1; }}; done\nexec '{}' \"$@\"\n",
            env.claude().display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&wrapper, std::fs::Permissions::from_mode(0o755)).unwrap();
    env.set_claude(&wrapper);
    let out = env.run(
        "ao-new",
        &["old", "--permission-mode", "default"],
        "do it",
        WRITE,
    );
    let line = out.fails(1);
    assert!(
        line.contains("unknown option '--permission-prompt-tool'") && line.contains("1.0.100"),
        "{line}"
    );
}
