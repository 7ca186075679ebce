//! Runs anywhere (issue 25), with two `ao-host` processes (each its own
//! HOME, project folder, labels and fake CLI conversations) and one session
//! manager, all on loopback: dispatch by label and by name, a resume that
//! goes back to its host, capacity and the queue, a host killed or silent
//! mid-run, a stop that reaches a remote run, a refused folder, and the
//! caller's view (`ao-new --on`, `ao-resume` from anywhere) being a local
//! run's.

use nix::sys::signal::Signal;
use serde_json::{Value, json};

use crate::support::hosts::HostProc;
use crate::support::procs::{Leftovers, alive, matching};
use crate::support::project::eventually;
use crate::support::{Http, Project, SessionManager};

/// A session manager that runs nothing itself, and two hosts.
struct Fleet {
    sm: SessionManager,
    gpu: HostProc,
    mac: HostProc,
    /// Where a user types commands: a folder no host serves.
    caller: Project,
}

fn fleet(capacity: u32, sm_args: &[&str]) -> Fleet {
    let mut args = vec!["--no-local-runs"];
    args.extend_from_slice(sm_args);
    let sm = SessionManager::start_with_args(&args);
    let gpu = HostProc::start(&sm, "gpu-box", &["gpu", "linux"], capacity);
    let mac = HostProc::start(&sm, "mac-mini", &["mac"], capacity);
    let caller = caller(&sm);
    Fleet {
        sm,
        gpu,
        mac,
        caller,
    }
}

/// A project of the session manager's user (it reads the local token).
fn caller(sm: &SessionManager) -> Project {
    let mut caller = Project::new(&sm.url);
    caller.set_env(
        agent_orchestrator::token::ENV_LOCAL_TOKEN_FILE,
        sm.local_token_file().to_str().unwrap(),
    );
    caller
}

/// The API with the local token: what may launch runs.
fn actor(sm: &SessionManager) -> Http {
    sm.http().with_token(&sm.local_token())
}

/// The newest run of session `name`.
async fn run_of(sm: &SessionManager, name: &str) -> Value {
    let (status, answer) = sm.http().get(&format!("/runs?session_name={name}")).await;
    assert_eq!(status, 200, "{answer}");
    answer["runs"][0].clone()
}

/// Waits until run `id` has status `want`; answers it.
async fn until(sm: &SessionManager, id: &str, want: &str) -> Value {
    let mut last = Value::Null;
    eventually(&format!("run {id} to be {want}"), async || {
        last = sm.http().get(&format!("/runs/{id}")).await.1["run"].clone();
        last["status"] == want
    })
    .await;
    last
}

/// `POST /runs`, asserted accepted; answers the run.
async fn launch(sm: &SessionManager, body: Value) -> Value {
    let (status, answer) = actor(sm).post("/runs", body).await;
    assert_eq!(status, 202, "{answer}");
    answer["run"].clone()
}

fn fake_processes(host: &HostProc) -> usize {
    host.fake_log().len()
}

#[tokio::test]
async fn runs_go_by_label_and_by_name_and_a_resume_goes_back_to_its_host() {
    let f = fleet(2, &[]);
    let gpu_dir = f.gpu.project_text();
    let mac_dir = f.mac.project_text();
    // By label: the only host labelled gpu, in a folder it serves.
    let out = f.caller.ao(
        "ao-new",
        &["train", "--on", "gpu", "--project-dir", &gpu_dir],
        Some("first step"),
    );
    assert_eq!(out.ok(), "fake answer to: first step");
    let run = run_of(&f.sm, "train").await;
    assert_eq!(run["host"], "gpu-box");
    assert_eq!(run["status"], "completed");
    assert!(
        !f.gpu.backup_lines("train").is_empty(),
        "backups on gpu-box"
    );
    assert!(f.mac.backup_lines("train").is_empty());
    let (_, sessions) = f.sm.http().get("/sessions?name=train").await;
    assert_eq!(sessions["sessions"][0]["host"], "gpu-box");
    // Its events carry the run's id: the runner was started with it.
    let opening = &f.gpu.backup_lines("train")[0];
    assert_eq!(opening["run_id"], run["run_id"]);

    // By name, through the API.
    let run = launch(
        &f.sm,
        json!({"session_name": "build", "prompt": "compile", "project_dir": mac_dir, "host": "mac-mini"}),
    )
    .await;
    let done = until(&f.sm, run["run_id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["host"], "mac-mini");
    assert_eq!(fake_processes(&f.mac), 1);

    // A resume typed where neither lives goes where the conversation is;
    // on the other host (its own CLI state) it would find none.
    let out = f.caller.ao("ao-resume", &["train"], Some("second step"));
    assert_eq!(out.ok(), "fake answer to: second step");
    let log = f.gpu.fake_log();
    assert_eq!(log.len(), 2);
    assert!(log[1]["argv"].to_string().contains("--resume"), "{log:?}");
    assert_eq!(fake_processes(&f.mac), 1, "mac-mini ran nothing more");
    let run = launch(
        &f.sm,
        json!({"session_name": "build", "prompt": "again", "resume": true}),
    )
    .await;
    let done = until(&f.sm, run["run_id"].as_str().unwrap(), "completed").await;
    assert_eq!(done["host"], "mac-mini");
    // The query commands answer from anywhere.
    assert_eq!(
        f.caller.ao("ao-get-result", &["train"], None).ok(),
        "fake answer to: second step"
    );
    assert_eq!(f.caller.ao("ao-status", &["build"], None).ok(), "finished");
}

#[tokio::test]
async fn a_run_on_another_host_answers_its_caller_as_a_local_run_would() {
    let f = fleet(2, &[]);
    let dir = f.gpu.project_text();
    // A failed run: exit 1 and the same line as the runner's own.
    let remote = f.caller.ao(
        "ao-new",
        &["broken", "--on", "gpu-box", "--project-dir", &dir],
        Some("SCENARIO=error"),
    );
    let local = f
        .caller
        .ao("ao-new", &["broken-here"], Some("SCENARIO=error"));
    assert_eq!(remote.fails(1), local.fails(1));

    // An agent the host does not know: its own check, its own line, exit 2.
    let out = f.caller.ao(
        "ao-new",
        &[
            "agentless",
            "--on",
            "gpu",
            "--project-dir",
            &dir,
            "--agent",
            "nosuch",
        ],
        Some("task"),
    );
    let line = out.fails(2);
    assert!(
        line.starts_with("ao-new: error: ") && line.contains("'nosuch'"),
        "{line}"
    );
    let run = run_of(&f.sm, "agentless").await;
    assert_eq!(run["status"], "failed_to_start");
    assert_eq!(run["runner_exit_code"], 2);
    assert!(line.ends_with(run["error"].as_str().unwrap()), "{run}");
    assert_eq!(fake_processes(&f.gpu), 1, "no CLI was started for it");

    // --detach returns once it runs; ao-wait, ao-status, ao-get-result work.
    let out = f.caller.ao(
        "ao-new",
        &[
            "bg",
            "--on",
            "gpu",
            "--project-dir",
            &dir,
            "--detach",
            "--json",
        ],
        Some("SCENARIO=tools:2,slow:300 in the background"),
    );
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["session_name"], "bg");
    assert_eq!(report["host"], "gpu-box");
    assert_eq!(f.caller.ao("ao-status", &["bg"], None).ok(), "running");
    assert_eq!(f.caller.ao("ao-wait", &["bg"], None).ok(), "bg: completed");
    assert_eq!(
        f.caller.ao("ao-get-result", &["bg"], None).ok(),
        "fake answer to: SCENARIO=tools:2,slow:300 in the background"
    );
}

#[tokio::test]
async fn a_full_host_queues_runs_in_order_and_takes_the_next_when_one_ends() {
    let f = fleet(1, &[]);
    let dir = f.gpu.project_text();
    let mut ids = Vec::new();
    for name in ["q1", "q2", "q3"] {
        let run = launch(
            &f.sm,
            json!({"session_name": name, "prompt": "SCENARIO=hang wait", "project_dir": dir, "labels": ["gpu"]}),
        )
        .await;
        ids.push(run["run_id"].as_str().unwrap().to_owned());
    }
    until(&f.sm, &ids[0], "running").await;
    let runs = f.sm.http().get("/runs?status=queued").await.1["runs"].clone();
    let places: Vec<(String, u64)> = runs
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["session_name"].as_str().unwrap().to_owned(),
                r["queue_position"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(places, [("q3".into(), 2), ("q2".into(), 1)]);
    let (_, hosts) = f.sm.http().get("/hosts").await;
    let gpu = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|h| h["name"] == "gpu-box")
        .unwrap()
        .clone();
    assert_eq!(
        (gpu["running"].as_u64(), gpu["capacity"].as_u64()),
        (Some(1), Some(1))
    );
    // ao-runs shows the places too.
    let out = f.caller.ao("ao-runs", &["--status", "queued"], None);
    assert!(
        out.ok().contains("queued #1") && out.stdout.contains("queued #2"),
        "{out:?}"
    );

    assert_eq!(f.caller.ao("ao-stop", &["q1"], None).ok(), "q1: stopped");
    until(&f.sm, &ids[0], "stopped").await;
    until(&f.sm, &ids[1], "running").await;
    let q3 = f.sm.http().get(&format!("/runs/{}", ids[2])).await.1;
    assert_eq!(q3["run"]["queue_position"], 1);
    // A queued run stops at once, without a host.
    let (status, stopped) = actor(&f.sm)
        .post(&format!("/runs/{}/stop", ids[2]), json!({}))
        .await;
    assert_eq!(status, 202, "{stopped}");
    assert_eq!(stopped["run"]["status"], "stopped");
    assert_eq!(f.caller.ao("ao-stop", &["q2"], None).ok(), "q2: stopped");
    assert_eq!(fake_processes(&f.gpu), 2, "q3 never ran");
}

#[tokio::test]
async fn a_host_killed_mid_run_leaves_its_run_interrupted_and_no_cli() {
    let mut f = fleet(2, &["--host-timeout", "1"]);
    let run = launch(
        &f.sm,
        json!({"session_name": "doomed", "prompt": "SCENARIO=hang", "project_dir": f.gpu.project_text(), "host": "gpu-box"}),
    )
    .await;
    let id = run["run_id"].as_str().unwrap().to_owned();
    until(&f.sm, &id, "running").await;
    let mut leftovers = Leftovers::default();
    let runner = matching(&format!("--run-id={id}"));
    assert_eq!(runner.len(), 1, "one runner");
    leftovers.watch(runner.clone());
    let cli = f.gpu.cli_pid("doomed").expect("the CLI's pid");
    leftovers.watch([cli]);
    f.gpu.kill9();
    until(&f.sm, &id, "interrupted").await;
    eventually("the CLI and the runner to be gone", async || {
        !alive(cli) && !alive(runner[0])
    })
    .await;
    let session = &f.sm.http().get("/sessions?name=doomed").await.1["sessions"][0];
    assert_eq!(session["status"], "finished");
    assert_eq!(session["last_run"]["reason"], "interrupted");
    // Silent for longer than the host timeout: offline, and a resume of
    // its session is refused with the reason.
    eventually("gpu-box to be offline", async || {
        let (_, hosts) = f.sm.http().get("/hosts").await;
        hosts["hosts"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["name"] == "gpu-box" && h["online"] == false)
    })
    .await;
    let out = f.caller.ao("ao-resume", &["doomed"], Some("go on"));
    let line = out.fails(1);
    assert!(
        line.contains("lives on host 'gpu-box', which is offline"),
        "{line}"
    );
}

#[tokio::test]
async fn a_silent_host_goes_offline_and_its_running_run_is_interrupted() {
    let f = fleet(2, &["--host-timeout", "1"]);
    let run = launch(
        &f.sm,
        json!({"session_name": "frozen", "prompt": "SCENARIO=hang", "project_dir": f.mac.project_text(), "labels": ["mac"]}),
    )
    .await;
    let id = run["run_id"].as_str().unwrap().to_owned();
    until(&f.sm, &id, "running").await;
    f.mac.freeze();
    let done = until(&f.sm, &id, "interrupted").await;
    assert!(
        done["error"].as_str().unwrap().contains("no heartbeat"),
        "{done}"
    );
    let session = &f.sm.http().get("/sessions?name=frozen").await.1["sessions"][0];
    assert_eq!(session["status"], "finished", "ao-wait is not left waiting");
    assert_eq!(
        f.caller.ao("ao-wait", &["frozen"], None).stdout,
        "frozen: interrupted\n"
    );
    // Its queued runs wait for another host that fits: there is none.
    let (status, refused) = actor(&f.sm)
        .post(
            "/runs",
            json!({"session_name": "later", "prompt": "x", "project_dir": f.mac.project_text(), "labels": ["mac"]}),
        )
        .await;
    assert_eq!(status, 409, "{refused}");
    assert!(
        refused["detail"]
            .as_str()
            .unwrap()
            .contains("mac-mini (offline"),
        "{refused}"
    );
}

#[tokio::test]
async fn a_stop_reaches_a_run_on_another_host() {
    let f = fleet(2, &[]);
    let dir = f.mac.project_text();
    let mut leftovers = Leftovers::default();
    let out = f.caller.ao(
        "ao-new",
        &["far", "--on", "mac", "--project-dir", &dir, "--detach"],
        Some("SCENARIO=hang"),
    );
    assert_eq!(out.ok(), "far");
    let cli = f.mac.cli_pid("far").expect("the CLI's pid");
    leftovers.watch([cli]);
    assert_eq!(f.caller.ao("ao-stop", &["far"], None).ok(), "far: stopped");
    assert_eq!(run_of(&f.sm, "far").await["status"], "stopped");
    eventually("the CLI to end", async || !alive(cli)).await;

    // The caller's Ctrl-C stops the run it waits for, as a local one's does.
    let waiting = f.caller.spawn(
        "ao-new",
        &["near", "--on", "mac-mini", "--project-dir", &dir],
        "SCENARIO=hang",
        "plain",
    );
    eventually("the run to be running", async || {
        f.sm.http().get("/runs?session_name=near").await.1["runs"][0]["status"] == "running"
    })
    .await;
    let out = waiting.stop(Signal::SIGINT);
    assert_eq!(out.code, Some(130), "{out:?}");
    assert!(out.stderr.contains("interrupted by SIGINT"), "{out:?}");
    assert_eq!(run_of(&f.sm, "near").await["status"], "stopped");
}

#[tokio::test]
async fn a_host_refuses_a_folder_it_does_not_serve_whatever_it_is_told() {
    let f = fleet(2, &[]);
    let elsewhere = f.mac.project_text();
    // Named: the server takes the host at its word; the host refuses.
    let out = f.caller.ao(
        "ao-new",
        &["stray", "--on", "gpu-box", "--project-dir", &elsewhere],
        Some("task"),
    );
    let line = out.fails(1);
    assert!(
        line.contains("host 'gpu-box' does not serve") && line.contains(&f.gpu.project_text()),
        "{line}"
    );
    let run = run_of(&f.sm, "stray").await;
    assert_eq!(run["status"], "failed_to_start");
    assert_eq!(fake_processes(&f.gpu), 0, "nothing ran");
    assert!(f.mac.backup_lines("stray").is_empty());
    let stray_backups = std::path::Path::new(&elsewhere).join(".agent-orchestrator");
    assert!(!stray_backups.exists(), "nothing written there");
    // By label: no host that fits serves it; the hosts are listed.
    let out = f.caller.ao(
        "ao-new",
        &["stray2", "--on", "gpu", "--project-dir", &elsewhere],
        Some("task"),
    );
    let line = out.fails(2);
    assert!(
        line.contains("no online host with the labels [gpu] serves"),
        "{line}"
    );
    assert!(
        line.contains("gpu-box (online; labels gpu,linux; serves "),
        "{line}"
    );
}

#[tokio::test]
async fn bad_runs_are_refused_with_a_reason_and_nothing_starts() {
    let mut f = fleet(2, &[]);
    let dir = f.gpu.project_text();
    let http = actor(&f.sm);
    let body = |extra: Value| {
        let mut b = json!({"session_name": "x1", "prompt": "task", "project_dir": dir});
        b.as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        b
    };
    let (status, answer) = http.post("/runs", body(json!({"host": "nowhere"}))).await;
    assert_eq!(status, 422, "{answer}");
    let detail = answer["detail"].as_str().unwrap();
    assert!(
        detail.contains("gpu-box") && detail.contains("mac-mini"),
        "{detail}"
    );
    let (status, answer) = http.post("/runs", body(json!({"labels": ["tpu"]}))).await;
    assert_eq!(status, 422, "{answer}");
    let (status, answer) = http
        .post("/runs", body(json!({"settings": {"mcp_config": {}}})))
        .await;
    assert_eq!(status, 422, "a command line is no setting: {answer}");
    // The one local host is off: a run naming no host has nowhere to go.
    let (status, answer) = http.post("/runs", body(json!({}))).await;
    assert_eq!(status, 409, "{answer}");

    // A name that is taken; a resume of a running session; of an unknown one.
    let (status, answer) = http
        .post("/runs", json!({"session_name": "hung", "prompt": "SCENARIO=hang", "project_dir": dir, "host": "gpu-box"}))
        .await;
    assert_eq!(status, 202, "{answer}");
    until(&f.sm, answer["run"]["run_id"].as_str().unwrap(), "running").await;
    let (status, answer) = http
        .post("/runs", json!({"session_name": "hung", "prompt": "again", "project_dir": dir, "host": "gpu-box"}))
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"]
            .as_str()
            .unwrap()
            .contains("already exists"),
        "{answer}"
    );
    let (status, answer) = http
        .post(
            "/runs",
            json!({"session_name": "hung", "prompt": "again", "resume": true}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("is running"),
        "{answer}"
    );
    let (status, answer) = http
        .post(
            "/runs",
            json!({"session_name": "ghost", "prompt": "again", "resume": true}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    let before = fake_processes(&f.gpu) + fake_processes(&f.mac);
    // No host online at all.
    f.gpu.stop();
    f.mac.stop();
    let (status, answer) = http
        .post(
            "/runs",
            json!({"session_name": "late", "prompt": "x", "project_dir": dir, "labels": ["gpu"]}),
        )
        .await;
    assert_eq!(status, 409, "{answer}");
    assert!(
        answer["detail"].as_str().unwrap().contains("is online"),
        "{answer}"
    );
    assert_eq!(
        fake_processes(&f.gpu) + fake_processes(&f.mac),
        before + 1,
        "only the hung run's CLI, ended by the stop"
    );
}

#[tokio::test]
async fn launching_and_hosting_need_the_token() {
    let f = fleet(2, &[]);
    let plain = f.sm.http();
    let (status, answer) = plain
        .post("/runs", json!({"session_name": "sneak", "prompt": "task", "project_dir": f.gpu.project_text(), "host": "gpu-box"}))
        .await;
    assert_eq!(status, 401, "{answer}");
    let (status, _) = plain
        .post(
            "/hosts",
            json!({"name": "rogue", "instance": "i", "capacity": 1}),
        )
        .await;
    assert_eq!(status, 401);
    let (status, _) = plain
        .post("/runs/x/claim", json!({"host": "gpu-box", "instance": "i"}))
        .await;
    assert_eq!(status, 401);
    let (_, runs) = plain.get("/runs").await;
    assert_eq!(runs["runs"], json!([]), "nothing queued");
    assert_eq!(
        fake_processes(&f.gpu) + fake_processes(&f.mac),
        0,
        "nothing ran"
    );
    // ao-new --on of a user without the token is refused the same way.
    let mut stranger = Project::new(&f.sm.url);
    stranger.set_env("AGENT_ORCHESTRATOR_LOCAL_TOKEN_FILE", "/nonexistent/token");
    let out = stranger.ao(
        "ao-new",
        &[
            "sneak",
            "--on",
            "gpu-box",
            "--project-dir",
            &f.gpu.project_text(),
        ],
        Some("task"),
    );
    assert!(
        out.fails(1)
            .contains("needs proof that it comes from its user"),
        "{out:?}"
    );
}

#[tokio::test]
async fn runs_queued_too_long_fail_with_the_reason() {
    let f = fleet(1, &["--queue-timeout", "1"]);
    let dir = f.gpu.project_text();
    let first = launch(
        &f.sm,
        json!({"session_name": "busy", "prompt": "SCENARIO=hang", "project_dir": dir, "host": "gpu-box"}),
    )
    .await;
    until(&f.sm, first["run_id"].as_str().unwrap(), "running").await;
    let out = f.caller.ao(
        "ao-new",
        &["patient", "--on", "gpu-box", "--project-dir", &dir],
        Some("task"),
    );
    assert_eq!(out.code, Some(1), "{out:?}");
    let lines = out.stderr_lines();
    assert!(
        lines[0].contains("is queued (place 1 in the queue) for host 'gpu-box'"),
        "{out:?}"
    );
    assert!(
        lines[1].contains("no host took the run within 1 s"),
        "{out:?}"
    );
    assert_eq!(run_of(&f.sm, "patient").await["status"], "failed_to_start");
}

#[tokio::test]
async fn ao_hosts_lists_the_hosts_and_a_stopped_host_is_offline_at_once() {
    let mut f = fleet(3, &[]);
    let out = f.caller.ao("ao-hosts", &[], None);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("HOST"), "{text}");
    assert!(
        lines[1].starts_with("gpu-box") && lines[1].contains("online") && lines[1].contains("0/3"),
        "{text}"
    );
    assert!(
        lines[1].contains("gpu,linux") && lines[1].contains("2.1.329 (Claude Code fake)"),
        "{text}"
    );
    assert!(lines[2].starts_with("mac-mini"), "{text}");
    assert_eq!(f.mac.stop(), Some(0));
    let out = f.caller.ao("ao-hosts", &["--json"], None);
    let hosts: Value = serde_json::from_str(out.ok()).unwrap();
    let mac = &hosts["hosts"][1];
    assert_eq!(
        (mac["name"].as_str(), mac["online"].as_bool()),
        (Some("mac-mini"), Some(false))
    );
    assert_eq!(mac["projects"], json!([f.mac.project_text()]));
    let out = f.caller.ao("ao-runs", &["--json"], None);
    assert_eq!(
        serde_json::from_str::<Value>(out.ok()).unwrap(),
        json!({"runs": []})
    );
    assert_eq!(f.caller.ao("ao-runs", &[], None).ok(), "no launched run");
}

#[tokio::test]
async fn mcp_tools_list_the_hosts_and_start_and_resume_runs_on_them() {
    use crate::mcp::{call, connect};
    let f = fleet(2, &[]);
    let (session, _) = connect(&f.caller, "plain").await;
    let (failed, answer) = call(&session, "list_hosts", json!({})).await;
    assert!(!failed, "{answer}");
    let hosts: Value = serde_json::from_str(&answer).unwrap();
    let names: Vec<&str> = hosts["hosts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|h| h["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["gpu-box", "mac-mini"]);

    let (failed, answer) = call(
        &session,
        "start_agent_session",
        json!({"session_name": "tool-run", "prompt": "by tool", "host": "gpu-box", "project_dir": f.gpu.project_text()}),
    )
    .await;
    assert!(!failed, "{answer}");
    assert_eq!(answer, "fake answer to: by tool");
    assert_eq!(run_of(&f.sm, "tool-run").await["host"], "gpu-box");
    let (failed, answer) = call(
        &session,
        "start_agent_session",
        json!({"session_name": "tool-bg", "prompt": "SCENARIO=slow:200 later", "labels": ["mac"], "project_dir": f.mac.project_text(), "async": true}),
    )
    .await;
    assert!(
        !failed && answer.contains("running in the background"),
        "{answer}"
    );
    let (failed, answer) = call(
        &session,
        "wait_for_agent_sessions",
        json!({"session_names": ["tool-bg"]}),
    )
    .await;
    assert!(!failed && answer.contains("\"completed\""), "{answer}");
    assert_eq!(run_of(&f.sm, "tool-bg").await["host"], "mac-mini");
    // A resume needs no host: it goes where the session lives.
    let (failed, answer) = call(
        &session,
        "resume_agent_session",
        json!({"session_name": "tool-run", "prompt": "more"}),
    )
    .await;
    assert!(!failed, "{answer}");
    assert_eq!(answer, "fake answer to: more");
    assert_eq!(f.gpu.fake_log().len(), 2);
    let (failed, answer) = call(
        &session,
        "resume_agent_session",
        json!({"session_name": "tool-run", "prompt": "more", "host": "mac-mini"}),
    )
    .await;
    assert!(
        failed && answer.contains("lives on host 'gpu-box'"),
        "{answer}"
    );
    let (failed, answer) = call(
        &session,
        "start_agent_session",
        json!({"session_name": "both", "prompt": "x", "host": "gpu-box", "labels": ["gpu"]}),
    )
    .await;
    assert!(failed && answer.contains("not both"), "{answer}");
    session.cancel().await.unwrap();
}

/// What session `name` on `host` has been asked, run by run (its
/// backup's `user_message` lines), once it has had `runs` runs.
async fn prompts_of(sm: &SessionManager, host: &HostProc, name: &str, runs: usize) -> Vec<String> {
    eventually(
        &format!("{name} to have {runs} finished runs"),
        async || {
            let session = session_of(sm, name).await;
            session["num_runs"].as_u64() >= Some(runs as u64) && session["status"] == "finished"
        },
    )
    .await;
    host.backup_lines(name)
        .iter()
        .filter(|l| l["type"] == "user_message")
        .map(|l| l["content"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// `ao-new NAME --on HOST --project-dir DIR EXTRA...` from `caller`.
fn new_on(
    caller: &Project,
    name: &str,
    host: &str,
    dir: &str,
    extra: &[&str],
    prompt: &str,
) -> crate::support::Output {
    let mut argv = vec![name, "--on", host, "--project-dir", dir];
    argv.extend_from_slice(extra);
    caller.ao("ao-new", &argv, Some(prompt))
}

/// Session `name`'s record.
async fn session_of(sm: &SessionManager, name: &str) -> Value {
    sm.http().get(&format!("/sessions?name={name}")).await.1["sessions"][0].clone()
}

#[tokio::test]
async fn a_child_on_another_host_is_in_its_parents_tree_calls_it_back_and_spends_its_budget() {
    let mut f = fleet(2, &[]);
    let (gpu, mac) = (f.gpu.project_text(), f.mac.project_text());
    // The parent runs on gpu-box; its child on mac-mini calls it back there
    // (--parent finds it though it lives in another project).
    new_on(&f.caller, "boss", "gpu-box", &gpu, &[], "plan").ok();
    let out = new_on(
        &f.caller,
        "kid",
        "mac",
        &mac,
        &["--callback", "--parent", "boss", "--detach"],
        "do part one",
    );
    assert_eq!(out.ok(), "kid");
    assert_eq!(
        prompts_of(&f.sm, &f.gpu, "boss", 2).await,
        [
            "plan",
            "<agent-callback session=\"kid\" status=\"completed\">fake answer to: do part one</agent-callback>"
        ]
    );
    let boss = run_of(&f.sm, "boss").await;
    assert_eq!(
        boss["host"], "gpu-box",
        "the parent is resumed on its own host"
    );
    assert_eq!(boss["resume"], true, "{boss}");
    let boss_id = session_of(&f.sm, "boss").await["session_id"].clone();
    assert_eq!(session_of(&f.sm, "kid").await["parent_session_id"], boss_id);

    // A child started from inside the parent's run (which gives it the
    // parent's .meta.json) is its child without being told.
    let meta = f
        .gpu
        .project
        .join(".agent-orchestrator/agent-sessions/boss.meta.json");
    f.caller
        .set_env("AGENT_ORCHESTRATOR_PARENT_META", meta.to_str().unwrap());
    new_on(&f.caller, "helper", "mac", &mac, &[], "help").ok();
    f.caller.unset_env("AGENT_ORCHESTRATOR_PARENT_META");
    assert_eq!(
        session_of(&f.sm, "helper").await["parent_session_id"],
        boss_id
    );

    // A tree budget set on one host bounds its children on another: a
    // child starts with what is left ($0.0002 - $0.000188), spends past it
    // (reason budget), and the next child is refused before it is queued.
    new_on(
        &f.caller,
        "lean",
        "gpu-box",
        &gpu,
        &["--budget-usd", "0.0002"],
        "plan",
    )
    .ok();
    let out = new_on(
        &f.caller,
        "spender",
        "mac",
        &mac,
        &["--parent", "lean"],
        "SCENARIO=tools:3 spend",
    );
    assert!(out.fails(1).contains("budget"), "{out:?}");
    let spender = f
        .mac
        .fake_log()
        .into_iter()
        .find(|l| l["scenario"] == "tools:3")
        .expect("the spender's CLI");
    let argv: Vec<String> = serde_json::from_value(spender["argv"].clone()).unwrap();
    let at = argv
        .iter()
        .position(|a| a == "--max-budget-usd")
        .expect("a run budget");
    assert_eq!(argv[at + 1], "0.000012");
    let before = fake_processes(&f.mac);
    let out = new_on(
        &f.caller,
        "late",
        "mac",
        &mac,
        &["--parent", "lean"],
        "more",
    );
    let line = out.fails(1);
    assert!(line.contains("set by session 'lean'"), "{line}");
    assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
    assert_eq!(fake_processes(&f.mac), before, "nothing started");
    // The advice of that line works from here too: a new budget for the
    // tree, given with a resume that goes to the parent's host.
    let out = f
        .caller
        .ao("ao-resume", &["lean", "--budget-usd", "1"], Some("go on"));
    assert_eq!(out.ok(), "fake answer to: go on");
    assert_eq!(session_of(&f.sm, "lean").await["budget_usd"], 1.0);
    new_on(
        &f.caller,
        "late",
        "mac",
        &mac,
        &["--parent", "lean"],
        "more",
    )
    .ok();

    // A run started from one the session manager never recorded has no parent.
    let stray = f.caller.dir.join("stray.meta.json");
    std::fs::write(
        &stray,
        json!({"session_name": "stray", "session_id": "never-recorded",
               "project_dir": f.caller.dir_text(), "created_at": "2026-01-01T00:00:00Z"})
        .to_string(),
    )
    .unwrap();
    f.caller
        .set_env("AGENT_ORCHESTRATOR_PARENT_META", stray.to_str().unwrap());
    new_on(&f.caller, "free", "mac", &mac, &[], "alone").ok();
    f.caller.unset_env("AGENT_ORCHESTRATOR_PARENT_META");
    assert_eq!(
        session_of(&f.sm, "free").await["parent_session_id"],
        Value::Null
    );
    let before = fake_processes(&f.mac);

    // Bad input, one line each and nothing started.
    let out = new_on(&f.caller, "orphan", "mac", &mac, &["--callback"], "x");
    assert!(
        out.fails(2).contains("--callback needs a parent"),
        "{out:?}"
    );
    let out = new_on(
        &f.caller,
        "orphan",
        "mac",
        &mac,
        &["--parent", "nobody"],
        "x",
    );
    assert!(
        out.fails(2).contains("no session named 'nobody'"),
        "{out:?}"
    );
    let (status, answer) = actor(&f.sm)
        .post(
            "/runs",
            json!({"session_name": "orphan", "prompt": "x", "project_dir": mac,
                   "settings": {"parent_session_id": "no-such-id", "callback": true}}),
        )
        .await;
    assert_eq!(status, 404, "{answer}");
    assert_eq!(fake_processes(&f.mac), before, "nothing started");
}
