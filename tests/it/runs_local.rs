//! The session manager's own host (issue 25, item 2): `POST /runs` runs on
//! its machine with no other process; on by default on loopback or with a
//! token, off with `--no-local-runs` or on a public address without a
//! token; its runs end with it, as interrupted, and a restart leaves no
//! run open. A database of the previous release takes runs and hosts.

use std::path::PathBuf;

use serde_json::{Value, json};
use tempfile::TempDir;

use crate::support::procs::{Leftovers, alive, matching};
use crate::support::project::eventually;
use crate::support::real_claude::RealClaude;
use crate::support::{Http, Project, SessionManager, bin};

/// A session manager whose own host runs the fake CLI, with a HOME and a
/// project folder of its own.
struct Local {
    sm: SessionManager,
    root: TempDir,
    project: PathBuf,
}

fn local(extra: &[&str], more_env: &[(&str, &str)]) -> Local {
    let root = tempfile::tempdir().unwrap();
    let project = root.path().join("project");
    std::fs::create_dir_all(&project).unwrap();
    let project = project.canonicalize().unwrap();
    let path = |p: PathBuf| p.to_string_lossy().into_owned();
    let mut env = vec![
        (
            "AGENT_ORCHESTRATOR_CLAUDE_PATH".to_owned(),
            path(bin(crate::support::FAKE_CLAUDE)),
        ),
        ("HOME".to_owned(), path(root.path().join("home"))),
        (
            "XDG_DATA_HOME".to_owned(),
            path(root.path().join("home/.local/share")),
        ),
        (
            "FAKE_CLAUDE_LOG".to_owned(),
            path(root.path().join("fake-log.jsonl")),
        ),
        (
            "FAKE_CLAUDE_STATE_DIR".to_owned(),
            path(root.path().join("fake-state")),
        ),
    ];
    env.extend(more_env.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let sm = SessionManager::start_with_env(extra, &env);
    Local { sm, root, project }
}

impl Local {
    fn dir(&self) -> String {
        self.project.to_string_lossy().into_owned()
    }

    fn actor(&self) -> Http {
        self.sm.http().with_token(&self.sm.local_token())
    }

    fn fake_runs(&self) -> usize {
        std::fs::read_to_string(self.root.path().join("fake-log.jsonl"))
            .unwrap_or_default()
            .lines()
            .count()
    }

    async fn until(&self, id: &str, want: &str) -> Value {
        let mut last = Value::Null;
        for _ in 0..500 {
            last = self.sm.http().get(&format!("/runs/{id}")).await.1["run"].clone();
            if last["status"] == want {
                return last;
            }
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
        panic!(
            "run {id} is not {want}: {last}; log:\n{}",
            self.sm.log_text()
        );
    }
}

#[tokio::test]
async fn the_session_manager_runs_a_post_runs_itself_and_resumes_it_there() {
    let l = local(&[], &[]);
    let (_, hosts) = l.sm.http().get("/hosts").await;
    let host = &hosts["hosts"][0];
    assert_eq!(
        (host["name"].as_str(), host["embedded"].as_bool()),
        (Some("local"), Some(true)),
        "registered before the server answers"
    );
    eventually("its claude's version", async || {
        let (_, hosts) = l.sm.http().get("/hosts").await;
        hosts["hosts"][0]["claude_version"] == "2.1.329 (Claude Code fake)"
    })
    .await;
    let (status, answer) = l
        .actor()
        .post(
            "/runs",
            json!({"session_name": "dash", "prompt": "hello there", "project_dir": l.dir()}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"]["run_id"].as_str().unwrap().to_owned();
    let done = l.until(&id, "completed").await;
    assert_eq!(done["host"], "local");
    let session_id = done["session_id"].as_str().unwrap();
    let (_, result) =
        l.sm.http()
            .get(&format!("/sessions/{session_id}/result"))
            .await;
    assert_eq!(result["result"], "fake answer to: hello there");
    // The backups are the runner's own, in the project, with the run's id.
    let backup = std::fs::read_to_string(
        l.project
            .join(".agent-orchestrator/agent-sessions/dash.jsonl"),
    )
    .unwrap();
    assert!(backup.lines().next().unwrap().contains(&id), "{backup}");

    // A reply (what the dashboard's box sends) resumes it on this machine.
    let (status, answer) = l
        .actor()
        .post(
            "/runs",
            json!({"session_name": "dash", "prompt": "and then", "resume": true}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    l.until(answer["run"]["run_id"].as_str().unwrap(), "completed")
        .await;
    // ao-resume typed in another folder goes there too.
    let mut elsewhere = Project::new(&l.sm.url);
    elsewhere.set_env(
        agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
        l.sm.local_token_file().to_str().unwrap(),
    );
    let out = elsewhere.ao("ao-resume", &["dash"], Some("third"));
    assert_eq!(out.ok(), "fake answer to: third");
    assert_eq!(l.fake_runs(), 3);
    assert!(
        elsewhere.fake_log().is_empty(),
        "nothing ran in the caller's folder"
    );
}

#[tokio::test]
async fn the_own_host_takes_the_name_it_is_given() {
    let l = local(&["--local-host-name", "build-box"], &[]);
    let (_, hosts) = l.sm.http().get("/hosts").await;
    let names: Vec<(&str, bool)> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| (h["name"].as_str().unwrap(), h["embedded"] == true))
        .collect();
    assert_eq!(names, [("build-box", true)]);
    let (status, answer) = l
        .actor()
        .post(
            "/runs",
            json!({"session_name": "named", "prompt": "hi", "project_dir": l.dir()}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"]["run_id"].as_str().unwrap().to_owned();
    assert_eq!(l.until(&id, "completed").await["host"], "build-box");

    let out = crate::support::command("ao-session-manager")
        .args(["--port", "0", "--local-host-name", "../x"])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("letters, digits"), "{stderr}");
}

#[tokio::test]
async fn local_runs_are_off_when_asked_or_on_a_public_address_without_a_token() {
    let off = local(&["--no-local-runs"], &[]);
    let (_, hosts) = off.sm.http().get("/hosts").await;
    assert_eq!(hosts["hosts"], json!([]));
    let (status, answer) = off
        .actor()
        .post(
            "/runs",
            json!({"session_name": "x", "prompt": "p", "project_dir": off.dir()}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("--no-local-runs"),
        "{answer}"
    );

    let public = local(&["--host", "0.0.0.0", "--no-auth"], &[]);
    let loopback = |l: &Local| Http::new(&format!("http://127.0.0.1:{}", l.sm.port()));
    let (_, hosts) = loopback(&public).get("/hosts").await;
    assert_eq!(
        hosts["hosts"],
        json!([]),
        "nobody may make it run code uninvited"
    );

    let token = "t0ken-for-the-team";
    let team = local(
        &["--host", "0.0.0.0"],
        &[("AGENT_ORCHESTRATOR_TOKEN", token)],
    );
    let (status, hosts) = loopback(&team).with_token(token).get("/hosts").await;
    assert_eq!(status, 200);
    assert_eq!(
        hosts["hosts"][0]["name"], "local",
        "with a token it runs sessions"
    );
    let (status, answer) = loopback(&team)
        .with_token(token)
        .post(
            "/runs",
            json!({"session_name": "t", "prompt": "p", "project_dir": team.dir()}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let id = answer["run"]["run_id"].as_str().unwrap().to_owned();
    eventually("the team's run to complete", async || {
        let (_, run) = loopback(&team)
            .with_token(token)
            .get(&format!("/runs/{id}"))
            .await;
        run["run"]["status"] == "completed"
    })
    .await;
    assert_eq!(off.fake_runs() + public.fake_runs(), 0);
}

#[tokio::test]
async fn the_session_managers_runs_end_with_it_and_a_restart_leaves_none_open() {
    let mut l = local(&[], &[]);
    let mut leftovers = Leftovers::default();
    let launch = async |l: &Local, name: &str| {
        let (status, answer) = l
            .actor()
            .post(
                "/runs",
                json!({"session_name": name, "prompt": "SCENARIO=hang", "project_dir": l.dir()}),
            )
            .await;
        assert_eq!(status, 202, "{answer}");
        answer["run"]["run_id"].as_str().unwrap().to_owned()
    };
    // A clean stop: the run is stopped while its end can still be stored.
    let first = launch(&l, "first").await;
    l.until(&first, "running").await;
    let runner = matching(&format!("--run-id={first}"));
    leftovers.watch(runner.clone());
    assert_eq!(l.sm.stop(), Some(0));
    assert!(
        runner.iter().all(|p| !alive(*p)),
        "its runner ended before it"
    );
    l.sm.restart();
    let (_, run) = l.sm.http().get(&format!("/runs/{first}")).await;
    assert_eq!(run["run"]["status"], "interrupted", "{run}");

    // Killed: its runners get SIGTERM and take their CLIs along; the
    // restarted server's own host closes what they could not record.
    let second = launch(&l, "second").await;
    l.until(&second, "running").await;
    let runner = matching(&format!("--run-id={second}"));
    leftovers.watch(runner.clone());
    l.sm.kill9();
    eventually("the runner to end with its host", async || {
        runner.iter().all(|p| !alive(*p))
    })
    .await;
    l.sm.restart();
    let done = l.until(&second, "interrupted").await;
    assert!(
        done["error"]
            .as_str()
            .unwrap()
            .contains("host 'local' was started again"),
        "{done}"
    );
    let (_, sessions) = l.sm.http().get("/sessions?name=second").await;
    assert_eq!(
        sessions["sessions"][0]["status"], "finished",
        "no run left open"
    );
}

#[tokio::test]
async fn a_database_of_the_previous_release_takes_runs_and_hosts() {
    let old = crate::support::fixtures::copy_release("release-schema-4");
    let sm = SessionManager::spawn_sqlite(&old.db, &["--no-local-runs"], None).unwrap();
    let http = sm.http();
    let (status, runs) = http.get("/runs").await;
    assert_eq!((status, runs), (200, json!({"runs": []})));
    let (_, sessions) = http.get("/sessions").await;
    let sessions = sessions["sessions"].as_array().unwrap().clone();
    assert!(!sessions.is_empty());
    assert!(
        sessions.iter().all(|s| s["host"].is_null()),
        "no host recorded before"
    );
    let actor = http.clone().with_token(&sm.local_token());
    let (status, _) = actor
        .post(
            "/hosts",
            json!({"name": "h", "instance": "i", "capacity": 1, "projects": ["/p"]}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, answer) = actor
        .post(
            "/runs",
            json!({"session_name": "new-one", "prompt": "p", "project_dir": "/p", "host": "h"}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    assert_eq!(answer["run"]["status"], "starting");
}

#[tokio::test]
async fn a_real_cli_answers_a_post_runs_on_the_session_managers_own_host() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let project = tempfile::tempdir().unwrap();
    let dir = project.path().canonicalize().unwrap();
    let mut env = claude.env(mock.base_url());
    env.push((
        "AGENT_ORCHESTRATOR_CLAUDE_PATH".to_owned(),
        claude.path.to_string_lossy().into_owned(),
    ));
    let sm = SessionManager::start_with_env(&[], &env);
    let actor = sm.http().with_token(&sm.local_token());
    let wait = async |id: &str| -> Value {
        let mut last = Value::Null;
        eventually(&format!("run {id} to end"), async || {
            last = sm.http().get(&format!("/runs/{id}")).await.1["run"].clone();
            !["queued", "starting", "running"].contains(&last["status"].as_str().unwrap_or(""))
        })
        .await;
        last
    };
    let (status, answer) = actor
        .post(
            "/runs",
            json!({"session_name": "real-dash", "prompt": "Please USE_TOOL now", "project_dir": dir}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let done = wait(answer["run"]["run_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}\n{}", sm.log_text());
    let session_id = done["session_id"].as_str().unwrap().to_owned();
    let (_, result) = sm
        .http()
        .get(&format!("/sessions/{session_id}/result"))
        .await;
    assert!(
        result["result"]
            .as_str()
            .unwrap()
            .contains("Final answer: 4"),
        "{result}"
    );
    let events = sm.http().events(&session_id).await;
    let kinds: Vec<&str> = events
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"pre_tool") && kinds.contains(&"post_tool"),
        "{kinds:?}"
    );
    assert!(
        events.iter().all(|e| e["run_id"] == done["run_id"]),
        "every event carries the run's id"
    );
    // A reply continues the same conversation with the real CLI.
    let (status, answer) = actor
        .post(
            "/runs",
            json!({"session_name": "real-dash", "prompt": "and once more", "resume": true}),
        )
        .await;
    assert_eq!(status, 202, "{answer}");
    let done = wait(answer["run"]["run_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["session_id"], session_id.as_str());
    let (_, result) = sm
        .http()
        .get(&format!("/sessions/{session_id}/result"))
        .await;
    assert_eq!(result["result"], "mock answer: and once more");
}
