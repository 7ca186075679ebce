//! Notifications (`--notify-command`, `--notify-url`): what a hook
//! receives when a run needs someone and when it ends, what is not news,
//! and hooks that fail or hang while the API goes on answering.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::procs::{self, Leftovers};
use crate::support::webhook::Webhook;
use crate::support::{Project, SessionManager};

/// A command line that appends each notification (one JSON line) to `out`.
fn appending_to(out: &Path) -> String {
    format!("cat >> '{}'", out.display())
}

/// The JSON lines in `path` once there are `n` (or `limit` has passed).
async fn lines(path: &Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let found: Vec<Value> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l:?}")))
            .collect();
        if found.len() >= n || Instant::now() > deadline {
            return found;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The server's log once it contains `needle` (or `limit` has passed).
async fn log_with(sm: &SessionManager, needle: &str, limit: Duration) -> String {
    let deadline = Instant::now() + limit;
    loop {
        let log = sm.log_text();
        if log.contains(needle) || Instant::now() > deadline {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn now_minus(seconds: i64) -> String {
    (chrono::Utc::now() - chrono::Duration::seconds(seconds))
        .to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// A `permission_request` as the runner stores it, stamped `at`.
fn permission_request(id: &str, name: &str, request_id: &str, at: &str) -> Value {
    json!({"event_type": "permission_request", "session_id": id, "session_name": name,
           "timestamp": at, "request_id": request_id, "kind": "permission",
           "tool_name": "Bash", "tool_input": {"command": "touch /tmp/x"},
           "suggestions": [], "tool_use_id": "toolu_1"})
}

fn run_completed(id: &str, name: &str, reason: &str, at: &str) -> Value {
    json!({"event_type": "run_completed", "session_id": id, "session_name": name,
           "timestamp": at, "reason": reason, "exit_code": 0})
}

/// A session manager started with `args` whose session `s1`
/// (`worker-1`, in `project_dir`) has just asked to use Bash.
async fn with_a_waiting_run(args: &[&str], project_dir: Option<&str>) -> SessionManager {
    let sm = SessionManager::start_with_args(args);
    let http = sm.http();
    http.create("s1", "worker-1", project_dir).await;
    http.event(
        "s1",
        permission_request("s1", "worker-1", "r1", &now_minus(0)),
    )
    .await;
    sm
}

struct Scratch {
    dir: tempfile::TempDir,
}

impl Scratch {
    fn new() -> Self {
        Scratch {
            dir: tempfile::tempdir().expect("temp dir"),
        }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }
}

#[tokio::test]
async fn needs_input_reaches_the_notify_command_and_the_webhook() {
    let scratch = Scratch::new();
    let out = scratch.path("notices.jsonl");
    let hook = Webhook::start();
    // An ntfy-style URL: its query (a message template) is kept as given.
    let url = format!("{}/mytopic?tpl=1&m={{{{.text}}}}", hook.base);
    let _sm = with_a_waiting_run(
        &[
            "--notify-command",
            &appending_to(&out),
            "--notify-url",
            &url,
        ],
        Some("/srv/shop"),
    )
    .await;

    let got = lines(&out, 1, Duration::from_secs(20)).await;
    let expected = json!({"kind": "needs_input", "session_name": "worker-1", "session_id": "s1",
        "project_dir": "/srv/shop", "tool_name": "Bash", "request_id": "r1",
        "text": "ao: worker-1 needs input: may it use Bash? (shop)"});
    assert_eq!(got, vec![expected.clone()]);

    let posts = hook.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].target, "/mytopic?tpl=1&m={{.text}}");
    assert_eq!(posts[0].content_type.as_deref(), Some("application/json"));
    let mut with_content = expected.clone();
    with_content["content"] = expected["text"].clone();
    assert_eq!(posts[0].body, with_content, "Discord reads `content`");
}

#[tokio::test]
async fn a_real_run_notifies_when_it_ends() {
    let scratch = Scratch::new();
    let out = scratch.path("notices.jsonl");
    let hook = Webhook::start();
    let p = Project::with_server_args(&[
        "--notify-command",
        &appending_to(&out),
        "--notify-url",
        &hook.base,
    ]);
    let run = p.ao("ao-new", &["worker-1"], Some("say hello"));
    run.ok();
    let id = p.session_id("worker-1");

    let got = lines(&out, 1, Duration::from_secs(20)).await;
    let expected = json!({"kind": "run_completed", "session_name": "worker-1", "session_id": id,
        "project_dir": p.dir_text(), "reason": "completed",
        "text": "ao: worker-1 finished: completed (project)"});
    assert_eq!(got, vec![expected.clone()]);
    let posts = hook.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 1, "{posts:?}");
    assert_eq!(posts[0].body["text"], expected["text"]);
    assert_eq!(posts[0].body["content"], expected["text"]);
    assert_eq!(posts[0].body["session_id"], expected["session_id"]);
}

#[tokio::test]
async fn replayed_and_repeated_events_notify_nobody() {
    let scratch = Scratch::new();
    let out = scratch.path("notices.jsonl");
    let sm = SessionManager::start_with_args(&["--notify-command", &appending_to(&out)]);
    let http = sm.http();
    http.create("s1", "worker-1", None).await;
    // What ao-sync sends of last week's runs is stored, and is not news.
    let week = 7 * 24 * 3600;
    http.event(
        "s1",
        permission_request("s1", "worker-1", "old", &now_minus(week)),
    )
    .await;
    http.event(
        "s1",
        run_completed("s1", "worker-1", "error", &now_minus(week)),
    )
    .await;
    // Sent twice (a runner's retry), stored and told once.
    let mut fresh = permission_request("s1", "worker-1", "new", &now_minus(1));
    fresh["event_id"] = json!(uuid::Uuid::new_v4().to_string());
    http.event("s1", fresh.clone()).await;
    http.event("s1", fresh).await;
    http.event(
        "s1",
        run_completed("s1", "worker-1", "completed", &now_minus(0)),
    )
    .await;

    let got = lines(&out, 2, Duration::from_secs(20)).await;
    let told: Vec<(&str, &str)> = got
        .iter()
        .map(|n| {
            let what = n["request_id"].as_str().or(n["reason"].as_str());
            (n["kind"].as_str().unwrap_or(""), what.unwrap_or(""))
        })
        .collect();
    assert_eq!(
        told,
        [("needs_input", "new"), ("run_completed", "completed")],
        "in commit order, the old ones left out"
    );
    assert_eq!(http.events("s1").await.len(), 4, "every event is stored");
    // Nothing more follows (the queue is in order: the last one was seen).
    assert_eq!(lines(&out, 3, Duration::from_millis(300)).await.len(), 2);
}

#[tokio::test]
async fn a_failing_hook_is_retried_a_few_times_and_logged() {
    let scratch = Scratch::new();
    let attempts = scratch.path("attempts.jsonl");
    let hook = Webhook::answering(&[503, 500]);
    let sm = with_a_waiting_run(
        &[
            "--notify-command",
            &format!("{}; exit 1", appending_to(&attempts)),
            "--notify-url",
            &format!("{}/services/T0/B0/s3cret-path?key=s3cret-query", hook.base),
        ],
        None,
    )
    .await;

    let gave_up = "attempt 3 of 3, giving up";
    let log = log_with(&sm, gave_up, Duration::from_secs(30)).await;
    let command_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("notify command: needs_input of session 'worker-1' not delivered"))
        .collect();
    assert_eq!(command_lines.len(), 3, "one line per failure:\n{log}");
    assert!(command_lines[0].contains("exited with status 1 (attempt 1 of 3, retrying in 1 s)"));
    assert!(command_lines[1].contains("(attempt 2 of 3, retrying in 3 s)"));
    assert!(command_lines[2].contains(gave_up));
    let tried = lines(&attempts, 3, Duration::from_secs(5)).await;
    assert_eq!(tried.len(), 3, "three attempts, no more");
    assert!(tried.iter().all(|t| t == &tried[0]));

    // The webhook failed twice, then took it.
    let posts = hook.wait_for(3, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 3);
    let url = format!("notify URL {}/…", hook.base);
    let url_lines: Vec<&str> = log
        .lines()
        .filter(|l| l.contains(&url) && l.contains("not delivered"))
        .collect();
    assert_eq!(url_lines.len(), 2, "{log}");
    assert!(url_lines[0].contains("answered 503 Service Unavailable (attempt 1 of 3"));
    assert!(url_lines[1].contains("answered 500 Internal Server Error (attempt 2 of 3"));
    assert!(
        !log.contains("s3cret"),
        "no secret of the URL is logged:\n{log}"
    );
}

#[tokio::test]
async fn a_webhook_that_refuses_is_not_retried() {
    let hook = Webhook::answering(&[404]);
    let sm = SessionManager::start_with_args(&["--notify-url", &hook.base]);
    let http = sm.http();
    http.create("s1", "worker-1", None).await;
    http.event(
        "s1",
        run_completed("s1", "worker-1", "completed", &now_minus(0)),
    )
    .await;
    let log = log_with(&sm, "not retried", Duration::from_secs(20)).await;
    assert!(
        log.contains("run_completed of session 'worker-1' not delivered: answered 404 Not Found (not retried)"),
        "{log}"
    );
    // Then the next notification goes out as usual.
    http.event(
        "s1",
        run_completed("s1", "worker-1", "error", &now_minus(0)),
    )
    .await;
    let posts = hook.wait_for(2, Duration::from_secs(20)).await;
    assert_eq!(posts.len(), 2);
    assert_eq!(posts[1].body["reason"], "error");
}

/// The command line of the hanging hook's `sleep` (not of the shell that
/// runs it).
const SLEEP: &str = "sleep\u{0}3579";

#[tokio::test]
async fn a_hanging_hook_is_killed_after_10_s_and_the_api_does_not_wait_for_it() {
    let scratch = Scratch::new();
    let out = scratch.path("notices.jsonl");
    let pid_file = scratch.path("hook.pid");
    let marker = scratch.path("hung-once");
    // The first notification hangs (and what the hook started with it); the
    // next ones go through.
    let command = format!(
        "{}; if [ ! -e '{m}' ]; then touch '{m}'; echo $$ > '{p}'; sleep 3579; fi",
        appending_to(&out),
        m = marker.display(),
        p = pid_file.display()
    );
    let hook = Webhook::hanging();
    let mut sm = with_a_waiting_run(
        &[
            "--notify-command",
            &command,
            "--notify-url",
            &format!("{}/hook/s3cret-path?token=s3cret-query", hook.base),
        ],
        None,
    )
    .await;
    let http = sm.http();

    let deadline = Instant::now() + Duration::from_secs(20);
    let hook_pid = loop {
        let text = std::fs::read_to_string(&pid_file).unwrap_or_default();
        if let Ok(pid) = text.trim().parse::<i32>() {
            break pid;
        }
        assert!(Instant::now() < deadline, "the hook never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let mut leftovers = Leftovers::default();
    leftovers.watch([hook_pid]);
    let sleeping = loop {
        let found = procs::matching(SLEEP);
        if !found.is_empty() {
            break found;
        }
        assert!(Instant::now() < deadline, "the hook's sleep never started");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    leftovers.watch(sleeping);
    assert_eq!(hook.wait_for(1, Duration::from_secs(20)).await.len(), 1);

    // Both hooks hang; the API stores and answers as ever, a notifying
    // event included.
    for n in 0..5 {
        let mut message = crate::support::http::assistant("s1", &format!("step {n}"));
        message["timestamp"] = json!(now_minus(0));
        http.event("s1", message).await;
    }
    http.event(
        "s1",
        run_completed("s1", "worker-1", "completed", &now_minus(0)),
    )
    .await;
    assert_eq!(http.events("s1").await.len(), 7);
    assert!(
        procs::alive(hook_pid),
        "the API answered while the hook was still hanging"
    );

    // Then the command is killed, with what it started.
    let killed = "notify command: needs_input of session 'worker-1' not delivered: still running after 10 s, killed (not retried)";
    let log = log_with(&sm, killed, Duration::from_secs(40)).await;
    assert!(log.contains(killed), "{log}");
    assert!(!procs::alive(hook_pid));
    assert!(
        procs::matching(SLEEP).is_empty(),
        "the hook's child is gone too"
    );
    let url_line = format!(
        "notify URL {}/…: needs_input of session 'worker-1' not delivered: no answer within 10 s (not retried)",
        hook.base
    );
    let log = log_with(&sm, &url_line, Duration::from_secs(20)).await;
    assert!(log.contains(&url_line), "{log}");
    assert!(!log.contains("s3cret"), "{log}");

    // What waited behind the hanging command goes out after it.
    let got = lines(&out, 2, Duration::from_secs(20)).await;
    let kinds: Vec<&str> = got
        .iter()
        .map(|n| n["kind"].as_str().unwrap_or(""))
        .collect();
    assert_eq!(kinds, ["needs_input", "run_completed"]);
    // A stop cancels the webhook's second hang at once.
    assert_eq!(sm.stop(), Some(0));
}

#[tokio::test]
async fn ao_show_config_shows_the_notify_settings_without_their_secrets() {
    let mut p = Project::offline();
    let shown = p.ao("ao-show-config", &[], None);
    let text = shown.ok();
    assert!(
        text.contains("notify_command = (none) (default; ao-session-manager's --notify-command, from AGENT_ORCHESTRATOR_NOTIFY_COMMAND when started from here)"),
        "{text}"
    );
    assert!(text.contains("notify_url = (none) (default;"), "{text}");

    p.set_env(
        "AGENT_ORCHESTRATOR_NOTIFY_COMMAND",
        "/usr/local/bin/tell --token s3cret",
    );
    p.set_env(
        "AGENT_ORCHESTRATOR_NOTIFY_URL",
        "https://hooks.slack.com/services/T0/B0/s3cret",
    );
    let shown = p.ao("ao-show-config", &[], None);
    let text = shown.ok();
    assert!(
        text.contains("notify_command = /usr/local/bin/tell … (env;"),
        "{text}"
    );
    assert!(
        text.contains("notify_url = https://hooks.slack.com/… (env;"),
        "{text}"
    );
    let json = p.ao("ao-show-config", &["--json"], None);
    let value: Value = serde_json::from_str(json.ok()).expect("json");
    assert_eq!(
        value["notify_url"],
        json!({"value": "https://hooks.slack.com/…", "source": "env"})
    );
    assert_eq!(value["notify_command"]["source"], "env");
    assert!(!json.stdout.contains("s3cret") && !text.contains("s3cret"));
}
