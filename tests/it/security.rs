//! The session manager lets in only what it was asked to: loopback hosts,
//! its own origin, JSON bodies, the token when it has one; and what it and
//! the runner write is private to the user.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::support::{Http, Project, Running, SessionManager, command};

pub const TOKEN: &str = "test-token-5f0c2a9e41b7d3";
const EVIL: &str = "http://evil.example";

/// A file holding [`TOKEN`], and the folder that keeps it.
fn token_file() -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    (dir, path)
}

/// A session manager that needs [`TOKEN`].
pub fn token_server() -> (SessionManager, tempfile::TempDir) {
    let (dir, path) = token_file();
    let sm = SessionManager::start_with_args(&["--token-file", path.to_str().unwrap()]);
    (sm, dir)
}

/// Sends `head` (request line and headers, without the blank line) over a
/// plain socket, so that any Host can be sent; answers the status and the
/// whole answer.
async fn raw(sm: &SessionManager, head: &str) -> (u16, String) {
    let addr = sm.url.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    stream
        .write_all(format!("{head}\r\nConnection: close\r\n\r\n").as_bytes())
        .await
        .unwrap();
    let mut bytes = Vec::new();
    tokio::time::timeout(Duration::from_secs(10), stream.read_to_end(&mut bytes))
        .await
        .expect("an answer in time")
        .unwrap();
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let status = text
        .get(9..12)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("no status in {text:?}"));
    (status, text)
}

/// Every route the server has, as (method, concrete path): the API's from
/// its own OpenAPI document, and the dashboard's files.
async fn every_route(http: &Http) -> Vec<(String, String)> {
    let (status, doc) = http.get("/openapi.json").await;
    assert_eq!(status, 200);
    let mut routes = vec![
        ("GET".to_owned(), "/openapi.json".to_owned()),
        ("GET".to_owned(), "/".to_owned()),
        ("GET".to_owned(), "/app.js".to_owned()),
        ("GET".to_owned(), "/style.css".to_owned()),
    ];
    for (template, item) in doc["paths"].as_object().unwrap() {
        let path = template
            .split('/')
            .map(|part| if part.starts_with('{') { "s1" } else { part })
            .collect::<Vec<_>>()
            .join("/");
        for method in item.as_object().unwrap().keys() {
            if method != "parameters" {
                routes.push((method.to_ascii_uppercase(), path.clone()));
            }
        }
    }
    assert!(routes.len() > 15, "{routes:?}");
    routes
}

/// A body that would be accepted, so a refusal cannot be the body's fault.
fn body_for(method: &str) -> Option<Value> {
    matches!(method, "POST" | "PATCH").then(|| json!({}))
}

async fn session_ids(http: &Http) -> Vec<String> {
    let (status, list) = http.get("/sessions").await;
    assert_eq!(status, 200, "{list}");
    let mut ids: Vec<String> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["session_id"].as_str().unwrap().to_owned())
        .collect();
    ids.sort();
    ids
}

/// Opens a WebSocket to `sm` with `headers`; answers `Ok` when it opened,
/// else the status of the refusal.
async fn websocket(sm: &SessionManager, headers: &[(&'static str, &str)]) -> Result<(), u16> {
    let mut request = format!("{}/ws", sm.url.replacen("http", "ws", 1))
        .into_client_request()
        .unwrap();
    for (name, value) in headers {
        request.headers_mut().insert(*name, value.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(request).await {
        Ok(_) => Ok(()),
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            Err(response.status().as_u16())
        }
        Err(e) => panic!("WebSocket: {e}"),
    }
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn a_dns_rebinding_request_is_refused() {
    let sm = SessionManager::start();
    sm.http().create("s1", "one", Some("/p")).await;
    let port = sm.port();
    for head in [
        format!("GET /sessions HTTP/1.1\r\nHost: attacker.example:{port}"),
        format!("DELETE /sessions/s1 HTTP/1.1\r\nHost: attacker.example:{port}"),
        format!("GET /sse HTTP/1.1\r\nHost: attacker.example:{port}"),
        format!(
            "GET /ws HTTP/1.1\r\nHost: attacker.example:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ=="
        ),
        format!("GET / HTTP/1.1\r\nHost: 10.0.0.7:{port}"),
    ] {
        let (status, text) = raw(&sm, &head).await;
        assert_eq!(status, 403, "{head}: {text}");
        assert!(
            text.contains("--allowed-host") && text.contains("nosniff"),
            "{text}"
        );
    }
    for host in [
        format!("localhost:{port}"),
        format!("127.0.0.1:{port}"),
        format!("[::1]:{port}"),
    ] {
        let (status, text) = raw(&sm, &format!("GET /sessions/s1 HTTP/1.1\r\nHost: {host}")).await;
        assert_eq!(status, 200, "{host}: {text}");
    }
    assert_eq!(session_ids(&sm.http()).await, ["s1"], "nothing was deleted");
    assert!(sm.log_text().contains("refused DELETE /sessions/s1: 403"));

    let team = SessionManager::start_with_args(&["--allowed-host", "ao.team.example"]);
    let (status, _) = raw(&team, "GET /health HTTP/1.1\r\nHost: ao.team.example").await;
    assert_eq!(status, 200);
    let (status, _) = raw(&team, "GET /health HTTP/1.1\r\nHost: attacker.example").await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn a_foreign_origin_is_refused_on_every_route() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s1", "one", Some("/p")).await;
    let evil = sm.http().with_header("origin", EVIL);
    for (method, path) in every_route(&http).await {
        let (status, answer) = evil.send(&method, &path, body_for(&method)).await;
        assert_eq!(status, 403, "{method} {path}: {answer}");
        assert!(
            answer["detail"]
                .as_str()
                .unwrap()
                .contains("--allowed-origin http://evil.example"),
            "{answer}"
        );
    }
    let (status, _) = sm
        .http()
        .with_header("origin", "null")
        .get("/sessions")
        .await;
    assert_eq!(status, 403, "an opaque origin is foreign too");

    // A real WebSocket handshake from a foreign page.
    assert_eq!(websocket(&sm, &[("origin", EVIL)]).await, Err(403));

    // The dashboard's own origin keeps working.
    let own = sm.http().with_header("origin", &sm.url);
    assert_eq!(own.get("/sessions").await.0, 200);
    let (status, created) = own
        .post(
            "/sessions",
            json!({"session_id": "s2", "session_name": "two"}),
        )
        .await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(
        websocket(&sm, &[("origin", &sm.url)]).await,
        Ok(()),
        "a same-origin WebSocket opens"
    );

    assert_eq!(session_ids(&http).await, ["s1", "s2"], "nothing deleted");
}

#[tokio::test]
async fn an_allowed_origin_gets_cors_and_the_history() {
    let sm = SessionManager::start_with_args(&["--allowed-origin", "http://localhost:3000/"]);
    let http = sm.http();
    http.create("s1", "one", Some("/p")).await;
    http.event(
        "s1",
        crate::support::http::assistant("s1", "history to load"),
    )
    .await;
    let dash = "http://localhost:3000";

    let preflight = sm
        .http()
        .with_header("origin", dash)
        .with_header("access-control-request-method", "DELETE")
        .with_header("access-control-request-headers", "content-type")
        .send_full("OPTIONS", "/sessions/s1", None)
        .await;
    assert_eq!(preflight.status(), 204);
    let h = preflight.headers();
    assert_eq!(h["access-control-allow-origin"], dash);
    assert!(
        h["access-control-allow-methods"]
            .to_str()
            .unwrap()
            .contains("DELETE")
    );
    assert!(
        h["access-control-allow-headers"]
            .to_str()
            .unwrap()
            .contains("content-type")
    );

    let history = sm
        .http()
        .with_header("origin", dash)
        .send_full("GET", "/sessions/s1/events", None)
        .await;
    assert_eq!(history.status(), 200);
    assert_eq!(history.headers()["access-control-allow-origin"], dash);
    assert_eq!(history.headers()["vary"], "Origin");
    let events: Value = history.json().await.unwrap();
    assert_eq!(
        events["events"][0]["content"][0]["text"], "history to load",
        "{events}"
    );

    assert_eq!(
        websocket(&sm, &[("origin", dash)]).await,
        Ok(()),
        "the allowed dashboard's WebSocket opens"
    );

    let other = sm
        .http()
        .with_header("origin", "http://localhost:3001")
        .send_full("GET", "/sessions", None)
        .await;
    assert_eq!(other.status(), 403);
    assert!(other.headers().get("access-control-allow-origin").is_none());

    let bad = command("ao-session-manager")
        .args(["--port", "0", "--allowed-origin", "localhost:3000", "--db"])
        .arg(sm.db.with_extension("other.db"))
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(stderr.contains("scheme://host"), "{stderr}");
}

#[tokio::test]
async fn writes_need_a_json_body() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s1", "one", Some("/p")).await;
    let create = br#"{"session_id":"forged","session_name":"forged"}"#.to_vec();
    for ct in [
        Some("text/plain"),
        Some("application/x-www-form-urlencoded"),
        Some("multipart/form-data; boundary=x"),
        None,
    ] {
        let (status, answer) = http.send_raw("POST", "/sessions", create.clone(), ct).await;
        assert_eq!(status, 415, "{ct:?}: {answer}");
        let (status, _) = http
            .send_raw(
                "PATCH",
                "/sessions/s1",
                br#"{"session_name":"forged"}"#.to_vec(),
                ct,
            )
            .await;
        assert_eq!(status, 415, "{ct:?}");
    }
    assert_eq!(session_ids(&http).await, ["s1"]);
    assert_eq!(
        http.get("/sessions/s1").await.1["session"]["session_name"],
        "one"
    );
    let (status, _) = http
        .send_raw(
            "POST",
            "/sessions",
            create,
            Some("application/json; charset=utf-8"),
        )
        .await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn a_token_guards_every_route_but_health() {
    let (sm, _dir) = token_server();
    let anonymous = sm.http();
    let wrong = sm.http().with_token("test-token-5f0c2a9e41b7d4");
    let http = sm.http().with_token(TOKEN);
    http.create("s1", "one", Some("/p")).await;
    for (method, path) in every_route(&http).await {
        let public = method == "GET" && path == "/health";
        for (who, client) in [("no token", &anonymous), ("a wrong token", &wrong)] {
            let (status, answer) = client.send(&method, &path, body_for(&method)).await;
            if public {
                assert_eq!(status, 200);
                continue;
            }
            assert_eq!(status, 401, "{method} {path} with {who}: {answer}");
            assert!(
                answer["detail"]
                    .as_str()
                    .unwrap()
                    .contains("AGENT_ORCHESTRATOR_TOKEN"),
                "{answer}"
            );
        }
        if method != "DELETE" {
            // Headers only: /sse never ends.
            let status = http
                .send_full(&method, &path, body_for(&method))
                .await
                .status();
            assert!(
                status != 401 && status != 403,
                "{method} {path} with the token: {status}"
            );
        }
    }
    assert_eq!(session_ids(&http).await, ["s1"], "nothing deleted");

    // The live feeds too.
    assert_eq!(websocket(&sm, &[]).await, Err(401));
    let bearer = format!("Bearer {TOKEN}");
    assert_eq!(websocket(&sm, &[("authorization", &bearer)]).await, Ok(()));
    let sse = http.send_full("GET", "/sse", None).await;
    assert_eq!(sse.status(), 200);
    assert_eq!(anonymous.send_full("GET", "/sse", None).await.status(), 401);
    let log = sm.log_text();
    assert!(log.contains("refused GET /sse: 401"), "{log}");
    assert!(!log.contains(TOKEN), "the token never reaches the log");
}

#[tokio::test]
async fn the_dashboard_takes_the_token_once_and_keeps_a_cookie() {
    let (sm, _dir) = token_server();
    let client = reqwest::Client::builder()
        .no_proxy()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str, cookie: Option<&str>| {
        let mut req = client.get(format!("{}{path}", sm.url));
        if let Some(cookie) = cookie {
            req = req.header("cookie", cookie);
        }
        req.send()
    };
    assert_eq!(get("/", None).await.unwrap().status(), 401);
    assert_eq!(get("/?token=nope", None).await.unwrap().status(), 401);

    let login = get(&format!("/?token={TOKEN}"), None).await.unwrap();
    assert_eq!(login.status(), 303);
    assert_eq!(
        login.headers()["location"],
        "/",
        "the token leaves the address bar"
    );
    let set_cookie = login.headers()["set-cookie"].to_str().unwrap().to_owned();
    for part in ["HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.contains(part), "{set_cookie}");
    }
    let cookie = set_cookie.split(';').next().unwrap().to_owned();
    assert_eq!(cookie, format!("ao_token={TOKEN}"));

    let page = get("/", Some(&cookie)).await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(
        page.headers()["content-security-policy"]
            .to_str()
            .unwrap()
            .contains("default-src 'self'")
    );
    assert_eq!(page.headers()["x-content-type-options"], "nosniff");
    assert_eq!(get("/app.js", Some(&cookie)).await.unwrap().status(), 200);
    assert_eq!(get("/sessions", Some(&cookie)).await.unwrap().status(), 200);
    assert_eq!(
        get("/sessions", Some("ao_token=wrong"))
            .await
            .unwrap()
            .status(),
        401
    );
}

/// Every client of ours sends AGENT_ORCHESTRATOR_TOKEN; without it each
/// one is told why the session manager refused.
#[tokio::test]
async fn every_client_sends_the_token() {
    let (dir, token_path) = token_file();
    let mut p = Project::with_server_args(&["--token-file", token_path.to_str().unwrap()]);
    p.set_env("AGENT_ORCHESTRATOR_TOKEN", TOKEN);
    let http = p.http().with_token(TOKEN);

    let out = p.run("ao-new", &["first"], "hello", "tools:1");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stderr.contains("401"), "{out:?}");
    let id = p.session_id("first");
    let events = http.events(&id).await;
    assert!(
        events.iter().any(|e| e["event_type"] == "post_tool"),
        "the runner's events arrived: {events:?}"
    );
    let out = p.run("ao-resume", &["first"], "again", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(p.status_json("first")["source"], "api");
    assert!(
        p.ao("ao-get-result", &["first"], None)
            .ok()
            .contains("again")
    );
    let list: Value =
        serde_json::from_str(p.ao("ao-list-sessions", &["--json"], None).ok()).unwrap();
    assert_eq!(list["source"], "api");
    let usage: Value =
        serde_json::from_str(p.ao("ao-usage", &["--by", "session", "--json"], None).ok()).unwrap();
    assert_eq!(usage["source"], "api", "{usage}");
    p.ao("ao-wait", &["first", "--timeout", "10"], None).ok();
    p.ao("ao-sync", &["first"], None).ok();

    // ao-hook, as Claude Code runs it, with the same environment.
    let mut hook = command("ao-hook");
    hook.env("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", p.url())
        .env("AGENT_ORCHESTRATOR_TOKEN", TOKEN);
    let input = json!({"session_id": "6a1d2c3e-0000-4000-8000-00000000000a", "cwd": "/w",
        "hook_event_name": "UserPromptSubmit", "prompt": "via hook"});
    let out = Running::start(hook, Some(&input.to_string())).wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = http.events("6a1d2c3e-0000-4000-8000-00000000000a").await;
    assert!(!events.is_empty(), "the hook's event arrived");

    // A remote stop goes through the API with the token too.
    let runner = p.start_hanging("second").await;
    let mut other = Project::new(p.url());
    other.set_env("AGENT_ORCHESTRATOR_TOKEN", TOKEN);
    let out = other.ao("ao-stop", &["second", "--json"], None);
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["via"], "api", "{report}");
    assert_eq!(runner.wait().code, Some(143));

    // Without the token: every command says why, and the API holds
    // nothing from it.
    p.unset_env("AGENT_ORCHESTRATOR_TOKEN");
    let out = p.ao("ao-list-sessions", &["--json"], None);
    assert!(out.stderr.contains("401"), "{out:?}");
    assert!(out.stderr.contains("AGENT_ORCHESTRATOR_TOKEN"), "{out:?}");
    // The runner refuses before it starts the CLI: a run the API would
    // not record is not started.
    let out = p.run("ao-new", &["anonymous"], "hello", "plain");
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(
        out.stderr.contains("401") && out.stderr.contains("AGENT_ORCHESTRATOR_TOKEN"),
        "{out:?}"
    );
    assert!(!p.backup("anonymous", "jsonl").exists());
    let (_, list) = http.get("/sessions").await;
    assert!(
        !list.to_string().contains("anonymous"),
        "nothing reached the API without the token: {list}"
    );
    drop(dir);
}

#[test]
fn a_public_address_needs_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("public.db");
    let out = command("ao-session-manager")
        .args(["--host", "0.0.0.0", "--port", "0", "--db"])
        .arg(&db)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    let refusal: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("ao-session-manager:"))
        .collect();
    assert_eq!(refusal.len(), 1, "{stderr}");
    for needle in [
        "without a token",
        "AGENT_ORCHESTRATOR_TOKEN",
        "--token-file",
        "--no-auth",
    ] {
        assert!(refusal[0].contains(needle), "{stderr}");
    }
    assert!(!db.exists(), "refused before the database is touched");

    let no_auth = SessionManager::spawn(&db, &["--host", "0.0.0.0", "--no-auth"], None)
        .unwrap_or_else(|e| panic!("{e}"));
    assert!(
        no_auth.log_text().contains("--no-auth"),
        "{}",
        no_auth.log_text()
    );
    drop(no_auth);

    let (_dir, token) = token_file();
    let team = SessionManager::spawn(
        &tmp.path().join("team.db"),
        &["--host", "0.0.0.0", "--token-file", token.to_str().unwrap()],
        None,
    )
    .unwrap_or_else(|e| panic!("{e}"));
    let url = team.url.replacen("0.0.0.0", "127.0.0.1", 1);
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(async {
        assert_eq!(Http::new(&url).get("/sessions").await.0, 401);
        assert_eq!(
            Http::new(&url).with_token(TOKEN).get("/sessions").await.0,
            200
        );
    });
}

#[test]
fn what_we_write_is_private_to_the_user() {
    let tmp = tempfile::tempdir().unwrap();
    let db = tmp.path().join("new-folder/sm.db");
    // SQLite only: the test checks the modes of the database's files.
    let sm = SessionManager::spawn_logged_sqlite(&db, &tmp.path().join("sm.log"), &[], None)
        .unwrap_or_else(|e| panic!("{e}"));
    let p = Project::new(&sm.url);
    p.new_session("private", "secret prompt");
    assert_eq!(mode(&tmp.path().join("new-folder")), 0o700);
    for suffix in ["", "-wal", "-shm"] {
        let path = PathBuf::from(format!("{}{suffix}", db.display()));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
    }
    assert_eq!(mode(&p.sessions_dir()), 0o700);
    assert_eq!(mode(&p.dir.join(".agent-orchestrator")), 0o700);
    for ext in ["jsonl", "meta.json", "lock"] {
        assert_eq!(mode(&p.backup("private", ext)), 0o600, "{ext}");
    }

    // What exists with a wider mode is left alone, and reported.
    let jsonl = p.backup("private", "jsonl");
    std::fs::set_permissions(&jsonl, std::fs::Permissions::from_mode(0o644)).unwrap();
    p.new_session("private2", "more");
    assert_eq!(mode(&jsonl), 0o644, "left as the user set it");
    let out = p.ao("ao-show-config", &["--json"], None);
    assert_eq!(out.code, Some(0));
    let config: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(config["wide_modes"][0]["path"], jsonl.to_str().unwrap());
    assert_eq!(config["wide_modes"][0]["mode"], "0644");
    assert!(
        out.stderr.contains("chmod 600") && out.stderr.contains("private.jsonl"),
        "{out:?}"
    );
}
