//! Web pages attack the session manager in real headless Chromium
//! (tests/browser/attack.mjs): a page of another local origin, and a page
//! whose name was rebound to 127.0.0.1. Each of the guard's checks is needed
//! for this test to pass: without the Host check the rebound page reads and
//! writes; without the JSON check the text/plain posts are refused for
//! their origin instead; without the Origin check the WebSockets open and
//! the empty POST stops a run.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::dashboard_browser::{browser_dir, browser_or_skip};
use crate::security::{TOKEN, token_server};
use crate::support::http::event;
use crate::support::{Http, SessionManager};

const SCRIPT_LIMIT: Duration = Duration::from_secs(120);

/// Everything a page could change: the sessions and the victim's events.
async fn state(http: &Http) -> Value {
    let (_, sessions) = http.get("/sessions").await;
    let (_, events) = http.get("/sessions/victim/events").await;
    json!({"sessions": sessions, "events": events})
}

/// Runs the script; answers its RESULT.
fn attack(chromium: &std::path::Path, open: &str, guarded: &str) -> Value {
    let mut child = Command::new("node")
        .arg(browser_dir().join("attack.mjs"))
        .args([open, guarded, TOKEN])
        .env("CHROMIUM_PATH", chromium)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start node");
    let deadline = Instant::now() + SCRIPT_LIMIT;
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("attack.mjs did not finish within {SCRIPT_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let mut stdout = String::new();
    let mut stderr = String::new();
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut stdout)
        .unwrap();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .unwrap();
    assert!(status.success(), "attack.mjs failed:\n{stdout}\n{stderr}");
    let line = stdout
        .lines()
        .find_map(|l| l.strip_prefix("RESULT "))
        .unwrap_or_else(|| panic!("no RESULT:\n{stdout}\n{stderr}"));
    serde_json::from_str(line).expect("RESULT json")
}

#[test]
fn pages_of_other_origins_and_rebound_names_get_nothing() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let open = SessionManager::start();
    let (guarded, _token_dir) = token_server();
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (open_http, guarded_http) = (open.http(), guarded.http().with_token(TOKEN));
    let before = rt.block_on(async {
        open_http.create("victim", "victim", Some("/p")).await;
        open_http
            .event("victim", event("victim", "run_start"))
            .await;
        guarded_http.create("team", "team", Some("/p")).await;
        (state(&open_http).await, state(&guarded_http).await)
    });

    let result = attack(&chromium, &open.url, &guarded.url);
    eprintln!("attack results: {result:#}");

    // The dashboard took its token once, and keeps it from scripts.
    assert_eq!(result["login"]["url"], format!("{}/", guarded.url));
    assert_eq!(result["login"]["script_sees_cookie"], "");

    let foreign = &result["foreign"];
    for live in ["websocket", "eventsource", "guarded_websocket"] {
        assert_ne!(foreign[live], "OPEN", "{live} opened from another origin");
    }
    for read in ["read", "guarded_read", "json_post", "delete"] {
        let outcome = foreign[read].as_str().unwrap_or_default();
        assert!(outcome.starts_with("blocked"), "{read}: {outcome}");
    }
    assert_eq!(foreign["form_post"], 415, "a cross-site form is not JSON");
    let rebinding = &result["rebinding"];
    for what in ["landing", "read", "create", "delete"] {
        assert_eq!(rebinding[what], 403, "rebinding {what}: {rebinding}");
    }

    let after = rt.block_on(async { (state(&open_http).await, state(&guarded_http).await) });
    assert_eq!(after.0, before.0, "the open server is unchanged");
    assert_eq!(after.1, before.1, "the guarded server is unchanged");
    assert_eq!(after.0["sessions"]["sessions"][0]["status"], "running");

    // Each attempt was refused by the check meant for it.
    let log = open.log_text();
    for refusal in [
        "refused POST /sessions: 415",
        "refused POST /sessions/victim/stop: 403",
        "refused OPTIONS /sessions: 403",
        "refused OPTIONS /sessions/victim: 403",
        "refused GET /sessions: 403",
        "refused GET /ws: 403",
        "refused GET /sse: 403",
        "refused GET /: 403",
        "refused DELETE /sessions/victim: 403",
    ] {
        assert!(log.contains(refusal), "no '{refusal}' in the log:\n{log}");
    }
    let log = guarded.log_text();
    assert!(log.contains("refused GET /ws: 403"), "{log}");
    assert!(log.contains("refused GET /sessions: 403"), "{log}");
}
