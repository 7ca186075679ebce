//! Bad input never gets a 500 and never crashes the server: each gets a 4xx
//! with a `{"detail"}` that says what is wrong.

use serde_json::{Value, json};

use crate::support::SessionManager;
use crate::support::http::event;

/// method, path, raw body, content type, expected status, text the detail must contain
type RawCase = (
    &'static str,
    &'static str,
    &'static [u8],
    Option<&'static str>,
    u16,
    &'static str,
);

fn detail(body: &Value) -> &str {
    body["detail"]
        .as_str()
        .unwrap_or_else(|| panic!("no detail in {body}"))
}

#[tokio::test]
async fn each_bad_request_gets_a_4xx_that_names_the_problem() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;

    let mut wrong_session = event("other", "message");
    wrong_session["session_id"] = "other".into();
    let mut no_role = event("s", "message");
    no_role.as_object_mut().unwrap().remove("role");
    let mut no_tool = event("s", "post_tool");
    no_tool.as_object_mut().unwrap().remove("tool_name");
    let mut bad_time = event("s", "run_start");
    bad_time["timestamp"] = "last tuesday".into();
    let mut bad_content = event("s", "message");
    bad_content["content"] = json!("not a list");
    let mut bad_exit = event("s", "run_completed");
    bad_exit["exit_code"] = json!("zero");
    let mut no_type = event("s", "run_start");
    no_type.as_object_mut().unwrap().remove("event_type");
    let mut bad_event_id = event("s", "run_start");
    bad_event_id["event_id"] = json!("not-a-uuid");

    let cases: Vec<(&str, &str, Option<Value>, u16, &str)> = vec![
        ("POST", "/sessions", Some(json!({})), 422, "session_id"),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "x"})),
            422,
            "session_name",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": 5, "session_name": "n"})),
            422,
            "session_id",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "", "session_name": "n"})),
            422,
            "empty",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "a/b", "session_name": "n"})),
            422,
            "slashes",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "x", "session_name": "a\u{1}b"})),
            422,
            "control",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "x".repeat(300), "session_name": "n"})),
            422,
            "longer",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "x", "session_name": "n", "created_at": "?"})),
            422,
            "created_at",
        ),
        (
            "POST",
            "/sessions",
            Some(json!({"session_id": "x", "session_name": "n", "budget_usd": -1})),
            422,
            "budget_usd must be a positive number of dollars",
        ),
        (
            "PATCH",
            "/sessions/s",
            Some(json!({"budget_usd": 0.0000001})),
            422,
            "at least 0.000001",
        ),
        ("POST", "/sessions", Some(json!([1, 2])), 422, "object"),
        ("POST", "/sessions", Some(json!("text")), 422, "object"),
        (
            "POST",
            "/sessions/s/events",
            Some(
                json!({"event_type": "bogus", "session_id": "s", "session_name": "n", "timestamp": "2024-01-01T00:00:00Z"}),
            ),
            422,
            "bogus",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(no_type),
            422,
            "event_type",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(wrong_session),
            400,
            "differs",
        ),
        ("POST", "/sessions/s/events", Some(no_role), 422, "role"),
        (
            "POST",
            "/sessions/s/events",
            Some(no_tool),
            422,
            "tool_name",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(bad_time),
            422,
            "timestamp",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(bad_content),
            422,
            "content",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(bad_exit),
            422,
            "exit_code",
        ),
        (
            "POST",
            "/sessions/s/events",
            Some(bad_event_id),
            422,
            "event_id",
        ),
        (
            "POST",
            "/sessions/nope/events",
            Some(event("nope", "message")),
            404,
            "not found",
        ),
        (
            "POST",
            "/events",
            Some(json!({"event_type": "message"})),
            422,
            "session_id",
        ),
        (
            "PATCH",
            "/sessions/s",
            Some(json!({"session_name": 7})),
            422,
            "session_name",
        ),
        (
            "PATCH",
            "/sessions/s",
            Some(json!({"session_name": ""})),
            422,
            "empty",
        ),
        ("PATCH", "/sessions/nope", Some(json!({})), 404, "not found"),
        ("GET", "/sessions/s/events?after=abc", None, 400, "after"),
        ("GET", "/sessions/s/events?limit=-1", None, 400, "limit"),
        ("PUT", "/sessions", None, 405, "PUT"),
        ("DELETE", "/health", None, 405, "DELETE"),
        ("GET", "/no/such/route", None, 404, "no route"),
        ("GET", "/sessions/s/result/extra", None, 404, "no route"),
    ];
    for (method, path, body, want, needle) in cases {
        let (status, answer) = http.send(method, path, body.clone()).await;
        assert_eq!(status, want, "{method} {path} {body:?} -> {answer}");
        assert!(
            detail(&answer).contains(needle),
            "{method} {path}: detail {:?} should mention {needle:?}",
            detail(&answer)
        );
    }

    let raw: Vec<RawCase> = vec![
        (
            "POST",
            "/sessions",
            b"{bad",
            Some("application/json"),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/sessions",
            b"",
            Some("application/json"),
            400,
            "empty",
        ),
        (
            "POST",
            "/sessions",
            b"\xff\xfe",
            Some("application/json"),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/sessions",
            b"{\"session_id\":\"t\",\"session_name\":\"t\"}",
            None,
            415,
            "must be JSON",
        ),
        (
            "POST",
            "/sessions/s/events",
            b"null",
            Some("application/json"),
            422,
            "object",
        ),
        (
            "PATCH",
            "/sessions/s",
            b"[",
            Some("application/json"),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/events",
            b"{\"a\":1,}",
            Some("application/json; charset=utf-8"),
            400,
            "malformed JSON",
        ),
        (
            "POST",
            "/events",
            b"{\"event_type\":\"message\",\"session_id\":\"s\"}",
            Some("text/plain"),
            415,
            "Content-Type: application/json",
        ),
        (
            "PATCH",
            "/sessions/s",
            b"{\"session_name\":\"forged\"}",
            Some("application/x-www-form-urlencoded"),
            415,
            "must be JSON",
        ),
        ("GET", "/sessions/%FF%FE", b"", None, 400, "path"),
        ("GET", "/ws", b"", None, 400, "WebSocket upgrade"),
    ];
    for (method, path, body, ct, want, needle) in raw {
        let (status, answer) = http.send_raw(method, path, body.to_vec(), ct).await;
        assert_eq!(status, want, "{method} {path} {body:?} -> {answer}");
        assert!(
            detail(&answer).contains(needle),
            "{method} {path}: {answer}"
        );
    }

    // Still alive and consistent.
    assert_eq!(http.get("/health").await.0, 200);
    let (_, events) = http.get("/sessions/s/events").await;
    assert_eq!(events, json!({"events": []}), "nothing bad was stored");
}

#[tokio::test]
async fn oversized_bodies_are_refused_with_the_limit_named() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    let mut big = event("s", "post_tool");
    big["tool_output"] = "x".repeat(1024 * 1024 + 1).into();
    let (status, body) = http.post("/sessions/s/events", big).await;
    assert_eq!(status, 413);
    assert!(detail(&body).contains("1048576"), "{body}");
    // Just under the limit is fine.
    let mut fits = event("s", "post_tool");
    fits["tool_output"] = "x".repeat(1000 * 1000).into();
    assert_eq!(http.post("/sessions/s/events", fits).await.0, 200);
}

#[tokio::test]
async fn the_body_limit_is_configurable() {
    let sm = SessionManager::start_with_args(&["--max-body-bytes", "300"]);
    let http = sm.http();
    http.create("s", "n", None).await;
    let mut e = event("s", "post_tool");
    e["tool_output"] = "x".repeat(400).into();
    let (status, body) = http.post("/sessions/s/events", e).await;
    assert_eq!(status, 413);
    assert!(detail(&body).contains("300"), "{body}");
}
