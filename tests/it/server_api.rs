//! Every endpoint of the session manager, with the exact shapes DESIGN.md gives.

use serde_json::{Value, json};

use crate::support::SessionManager;
use crate::support::http::{assistant, event};

#[tokio::test]
async fn health_answers_ok() {
    let sm = SessionManager::start();
    assert_eq!(
        sm.http().get("/health").await,
        (200, json!({"status": "ok"}))
    );
}

/// The "Verification" curl sequence of seeds/phase-1-backend-api.md.
#[tokio::test]
async fn phase_1_verification_sequence() {
    let sm = SessionManager::start();
    let http = sm.http();
    let (status, created) = http
        .post(
            "/sessions",
            json!({"session_id": "test-123", "session_name": "test", "project_dir": "/tmp"}),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(created["ok"], true);
    let session = &created["session"];
    assert_eq!(session["session_id"], "test-123");
    assert_eq!(session["session_name"], "test");
    assert_eq!(session["project_dir"], "/tmp");
    assert_eq!(session["status"], "running");
    assert_eq!(session["agent_name"], Value::Null);
    assert_eq!(session["last_resumed_at"], Value::Null);
    let created_at = session["created_at"].as_str().unwrap();
    assert!(chrono::DateTime::parse_from_rfc3339(created_at).is_ok());
    assert!(created_at.ends_with('Z'), "UTC: {created_at}");

    let (status, got) = http.get("/sessions/test-123").await;
    assert_eq!(status, 200);
    assert_eq!(got, json!({"session": session.clone()}));

    assert_eq!(
        http.get("/sessions/test-123/status").await,
        (200, json!({"status": "running"}))
    );

    let (status, ok) = http
        .post(
            "/sessions/test-123/events",
            json!({"event_type": "message", "session_id": "test-123", "session_name": "test",
                   "timestamp": "2024-01-01T00:00:00Z", "role": "assistant",
                   "content": [{"type": "text", "text": "Hello"}]}),
        )
        .await;
    assert_eq!((status, ok), (200, json!({"ok": true})));

    // The seed expects the result once the session is finished; while it is
    // running the contract says 400.
    let (status, body) = http.get("/sessions/test-123/result").await;
    assert_eq!(status, 400, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("running"));
    http.event("test-123", event("test-123", "run_completed"))
        .await;
    assert_eq!(
        http.get("/sessions/test-123/result").await,
        (200, json!({"result": "Hello"}))
    );
}

/// The API half of seeds/phase-3-command-migration.md's verification.
#[tokio::test]
async fn phase_3_verification_sequence() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create_phase_3_session().await;
    let (_, list) = http.get("/sessions").await;
    assert_eq!(list["sessions"][0]["session_name"], "test-session");
    assert_eq!(
        http.get("/sessions/test-789/status").await.1,
        json!({"status": "finished"})
    );
    assert_eq!(
        http.get("/sessions/test-789/result").await.1,
        json!({"result": "Test result"})
    );
    let (status, deleted) = http.delete("/sessions/test-789").await;
    assert_eq!(status, 200);
    assert_eq!(
        deleted,
        json!({"ok": true, "session_id": "test-789",
               "deleted": {"session": true, "events_count": 2}})
    );
    assert_eq!(
        http.get("/sessions/test-789/status").await,
        (200, json!({"status": "not_existent"}))
    );
}

#[tokio::test]
async fn sessions_are_listed_newest_first_and_found_by_name() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("a", "architect", Some("/p1")).await;
    http.create("b", "architect", Some("/p2")).await;
    http.create("c", "coder", Some("/p1")).await;
    http.create("d", "architect", None).await;

    let ids = |v: &Value| -> Vec<String> {
        v["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s["session_id"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(ids(&http.get("/sessions").await.1), ["d", "c", "b", "a"]);
    assert_eq!(
        ids(&http.get("/sessions?name=architect").await.1),
        ["d", "b", "a"]
    );
    assert_eq!(
        ids(&http.get("/sessions?name=architect&project_dir=/p2").await.1),
        ["b"]
    );
    assert_eq!(
        ids(&http
            .get("/sessions?name=architect&project_dir=%2Fp1")
            .await
            .1),
        ["a"]
    );
    assert_eq!(
        ids(&http.get("/sessions?project_dir=/p1").await.1),
        ["c", "a"]
    );
    assert!(ids(&http.get("/sessions?name=nobody").await.1).is_empty());
    assert!(ids(&http.get("/sessions?name=coder&project_dir=/p2").await.1).is_empty());
}

#[tokio::test]
async fn names_are_unique_within_a_project_dir() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("a", "worker", Some("/p")).await;
    let (status, body) = http
        .post(
            "/sessions",
            json!({"session_id": "b", "session_name": "worker", "project_dir": "/p"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("worker"));
    let (status, body) = http
        .post(
            "/sessions",
            json!({"session_id": "a", "session_name": "other"}),
        )
        .await;
    assert_eq!(status, 409, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("already exists"));
    http.create("c", "worker", Some("/q")).await;
    http.create("d", "worker", None).await;
    let (status, _) = http
        .post(
            "/sessions",
            json!({"session_id": "e", "session_name": "worker"}),
        )
        .await;
    assert_eq!(status, 409);
}

#[tokio::test]
async fn get_unknown_session_is_404_but_status_is_not_existent() {
    let sm = SessionManager::start();
    let http = sm.http();
    let (status, body) = http.get("/sessions/nope").await;
    assert_eq!(status, 404);
    assert_eq!(body, json!({"detail": "session 'nope' not found"}));
    assert_eq!(
        http.get("/sessions/nope/status").await,
        (200, json!({"status": "not_existent"}))
    );
}

#[tokio::test]
async fn result_is_the_last_assistant_message_after_the_run() {
    let sm = SessionManager::start();
    let http = sm.http();
    let (status, body) = http.get("/sessions/s/result").await;
    assert_eq!(
        (status, body["detail"].as_str().unwrap()),
        (404, "session 's' not found")
    );

    http.create("s", "n", None).await;
    http.event("s", event("s", "run_start")).await;
    assert_eq!(http.get("/sessions/s/result").await.0, 400);
    http.event("s", event("s", "run_completed")).await;
    let (status, body) = http.get("/sessions/s/result").await;
    assert_eq!(status, 404);
    assert!(body["detail"].as_str().unwrap().contains("no result"));

    http.event("s", event("s", "run_start")).await;
    http.event("s", assistant("s", "first")).await;
    let mut user = assistant("s", "a user message is not a result");
    user["role"] = "user".into();
    http.event("s", user).await;
    http.event("s", event("s", "run_completed")).await;
    assert_eq!(
        http.get("/sessions/s/result").await.1,
        json!({"result": "first"})
    );

    http.event("s", event("s", "run_start")).await;
    http.event("s", assistant("s", "second")).await;
    http.event("s", event("s", "session_stop")).await;
    assert_eq!(
        http.get("/sessions/s/result").await.1,
        json!({"result": "second"})
    );
}

#[tokio::test]
async fn run_events_move_the_status_both_names() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    let status = |http: crate::support::Http| async move {
        http.get("/sessions/s/status").await.1["status"].clone()
    };
    for (event_type, expected) in [
        ("run_completed", "finished"),
        ("run_start", "running"),
        ("message", "running"),
        ("session_stop", "finished"),
        ("post_tool", "finished"),
        ("session_start", "running"),
        ("pre_tool", "running"),
        ("run_completed", "finished"),
    ] {
        http.event("s", event("s", event_type)).await;
        assert_eq!(status(http.clone()).await, expected, "after {event_type}");
    }
    let (_, events) = http.get("/sessions/s/events").await;
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(
        types,
        [
            "run_completed",
            "run_start",
            "message",
            "session_stop",
            "post_tool",
            "session_start",
            "pre_tool",
            "run_completed"
        ],
        "stored as sent"
    );
}

#[tokio::test]
async fn events_keep_order_and_every_field_sent() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    let mut tool = event("s", "post_tool");
    tool["tool_input"] = json!({"command": "echo hi", "nested": [1, 2, {"x": null}]});
    tool["tool_output"] = json!({"stdout": "hi\n", "stderr": ""});
    tool["error"] = json!("boom");
    tool["extra_field"] = json!({"kept": true});
    tool["id"] = json!(999_999);
    http.event("s", tool.clone()).await;
    let mut done = event("s", "run_completed");
    done["exit_code"] = json!(3);
    done["reason"] = json!("error");
    http.event("s", done.clone()).await;

    let (status, body) = http.get("/sessions/s/events").await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), 2);
    let mut expected = tool;
    expected["id"] = events[0]["id"].clone();
    assert_ne!(events[0]["id"], json!(999_999), "the server assigns ids");
    assert_eq!(events[0], expected);
    assert!(events[1]["id"].as_i64() > events[0]["id"].as_i64());
    assert_eq!(events[1]["exit_code"], 3);
    assert_eq!(events[1]["reason"], "error");
}

#[tokio::test]
async fn events_are_never_capped_and_page_with_after_and_limit() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    let client = sm.client();
    // More than one internal page (1000 rows), posted concurrently in order per task.
    let total = 2_345usize;
    let mut tasks = Vec::new();
    for chunk in 0..5 {
        let client = client.clone();
        tasks.push(tokio::spawn(async move {
            for i in (chunk..total).step_by(5) {
                let mut e = agent_orchestrator::wire::Event::new(
                    agent_orchestrator::wire::EventType::PostTool,
                    "s",
                    "n",
                    "2024-01-01T00:00:00Z",
                );
                e.tool_name = Some(format!("tool-{i}"));
                client.add_event("s", &e).await.unwrap();
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let (status, body) = http.get("/sessions/s/events").await;
    assert_eq!(status, 200);
    let events = body["events"].as_array().unwrap();
    assert_eq!(events.len(), total);
    let ids: Vec<i64> = events.iter().map(|e| e["id"].as_i64().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "insertion order");

    let (_, page) = http
        .get(&format!("/sessions/s/events?after={}&limit=10", ids[99]))
        .await;
    let page: Vec<i64> = page["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_i64().unwrap())
        .collect();
    assert_eq!(page, ids[100..110]);
    let (_, tail) = http
        .get(&format!("/sessions/s/events?after={}", ids[total - 3]))
        .await;
    assert_eq!(tail["events"].as_array().unwrap().len(), 2);
    let (_, none) = http.get("/sessions/s/events?limit=0").await;
    assert_eq!(none, json!({"events": []}));
    let (_, big) = http.get("/sessions/s/events?limit=1500").await;
    assert_eq!(big["events"].as_array().unwrap().len(), 1500);
    // The typed client reads the same list.
    assert_eq!(client.list_events("s").await.unwrap().len(), total);
}

#[tokio::test]
async fn events_of_an_unknown_session_are_404() {
    let sm = SessionManager::start();
    let http = sm.http();
    let (status, body) = http.get("/sessions/nope/events").await;
    assert_eq!(status, 404);
    assert_eq!(body["detail"], "session 'nope' not found");
    let (status, body) = http
        .post("/sessions/nope/events", event("nope", "message"))
        .await;
    assert_eq!(status, 404, "{body}");
}

#[tokio::test]
async fn a_repeated_event_id_is_acknowledged_and_stored_once() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    http.create("t", "m", None).await;
    let mut e = assistant("s", "once");
    e["event_id"] = json!("0d8df837-37ba-475d-923b-58be339b3251");
    assert_eq!(http.event("s", e.clone()).await, json!({"ok": true}));
    assert_eq!(
        http.event("s", e.clone()).await,
        json!({"ok": true, "duplicate": true})
    );
    let mut other = e.clone();
    other["session_id"] = "t".into();
    assert_eq!(
        http.event("t", other).await,
        json!({"ok": true}),
        "ids are per session"
    );
    let (_, events) = http.get("/sessions/s/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 1);
    // Events without an id are never deduplicated.
    http.event("s", assistant("s", "x")).await;
    http.event("s", assistant("s", "x")).await;
    let (_, events) = http.get("/sessions/s/events").await;
    assert_eq!(events["events"].as_array().unwrap().len(), 3);
}

#[tokio::test]
async fn patch_updates_metadata_and_the_alias_works() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", Some("/p")).await;
    http.create("t", "taken", Some("/p")).await;
    let (status, body) = http
        .patch(
            "/sessions/s",
            json!({"last_resumed_at": "2026-01-02T03:04:05Z"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["ok"], true);
    assert_eq!(body["session"]["last_resumed_at"], "2026-01-02T03:04:05Z");
    assert_eq!(body["session"]["session_name"], "n");

    let (status, body) = http
        .patch(
            "/sessions/s/metadata",
            json!({"agent_name": "reviewer", "session_name": "n2"}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["session"]["agent_name"], "reviewer");
    assert_eq!(body["session"]["session_name"], "n2");
    assert_eq!(body["session"]["last_resumed_at"], "2026-01-02T03:04:05Z");
    let (_, got) = http.get("/sessions/s").await;
    assert_eq!(got["session"], body["session"]);

    let (status, _) = http
        .patch("/sessions/s", json!({"session_name": "taken"}))
        .await;
    assert_eq!(status, 409);
    let (status, _) = http
        .patch(
            "/sessions/s",
            json!({"session_name": "taken", "project_dir": "/other"}),
        )
        .await;
    assert_eq!(status, 200);
    let (status, _) = http
        .patch("/sessions/nope", json!({"agent_name": "x"}))
        .await;
    assert_eq!(status, 404);
    let (status, body) = http
        .patch("/sessions/s", json!({"last_resumed_at": "soon"}))
        .await;
    assert_eq!(status, 422, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("last_resumed_at"));
}

#[tokio::test]
async fn delete_removes_the_session_and_its_events() {
    let sm = SessionManager::start();
    let http = sm.http();
    http.create("s", "n", None).await;
    http.create("keep", "k", None).await;
    for _ in 0..3 {
        http.event("s", event("s", "message")).await;
    }
    http.event("keep", event("keep", "message")).await;
    let (status, body) = http.delete("/sessions/s").await;
    assert_eq!(status, 200);
    assert_eq!(body["deleted"], json!({"session": true, "events_count": 3}));
    assert_eq!(http.get("/sessions/s").await.0, 404);
    assert_eq!(http.delete("/sessions/s").await.0, 404);
    assert_eq!(http.get("/sessions/s/events").await.0, 404);
    let (_, kept) = http.get("/sessions/keep/events").await;
    assert_eq!(kept["events"].as_array().unwrap().len(), 1);
    // The name is free again.
    http.create("s2", "n", None).await;
}

#[tokio::test]
async fn legacy_routes_create_on_session_start_and_list_events() {
    let sm = SessionManager::start();
    let http = sm.http();
    let (status, body) = http.post("/events", event("old", "session_start")).await;
    assert_eq!((status, body), (200, json!({"ok": true})));
    let (_, session) = http.get("/sessions/old").await;
    assert_eq!(session["session"]["status"], "running");
    assert_eq!(session["session"]["session_name"], "n");
    let (status, _) = http.post("/events", event("old", "session_stop")).await;
    assert_eq!(status, 200);
    let (status, events) = http.get("/events/old").await;
    assert_eq!(status, 200);
    let types: Vec<&str> = events["events"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event_type"].as_str().unwrap())
        .collect();
    assert_eq!(types, ["session_start", "session_stop"]);
    assert_eq!(
        http.get("/sessions/old/status").await.1["status"],
        "finished"
    );
}

#[tokio::test]
async fn the_typed_client_covers_every_call() {
    use agent_orchestrator::client::ClientError;
    use agent_orchestrator::wire::{
        ContentBlock, Event, EventType, Role, SessionCreate, SessionPatch, StatusValue,
    };
    let sm = SessionManager::start();
    let c = sm.client();
    c.health().await.unwrap();
    let created = c
        .create_session(&SessionCreate {
            session_id: "id-1".into(),
            session_name: "worker".into(),
            project_dir: Some("/proj".into()),
            agent_name: Some("coder".into()),
            ..SessionCreate::default()
        })
        .await
        .unwrap();
    assert_eq!(created.agent_name.as_deref(), Some("coder"));
    assert_eq!(c.get_session("id-1").await.unwrap(), created);
    assert_eq!(c.get_status("id-1").await.unwrap(), StatusValue::Running);
    assert_eq!(c.get_status("zzz").await.unwrap(), StatusValue::NotExistent);
    assert!(matches!(
        c.get_session("zzz").await,
        Err(ClientError::NotFound(_))
    ));
    assert!(matches!(
        c.get_result("id-1").await,
        Err(ClientError::Api { status: 400, .. })
    ));
    let mut e = Event::new(EventType::Message, "id-1", "worker", "2024-01-01T00:00:00Z");
    e.role = Some(Role::Assistant);
    e.content = Some(vec![ContentBlock::text("done")]);
    e.event_id = Some(uuid::Uuid::new_v4());
    assert!(!c.add_event("id-1", &e).await.unwrap());
    assert!(c.add_event("id-1", &e).await.unwrap(), "duplicate");
    let stop = Event::new(
        EventType::RunCompleted,
        "id-1",
        "worker",
        "2024-01-01T00:00:01Z",
    );
    c.add_event("id-1", &stop).await.unwrap();
    assert_eq!(c.get_result("id-1").await.unwrap(), "done");
    assert_eq!(c.list_sessions().await.unwrap().len(), 1);
    assert_eq!(
        c.get_session_by_name("worker", Some("/proj"))
            .await
            .unwrap()
            .map(|s| s.session_id),
        Some("id-1".to_owned())
    );
    assert_eq!(
        c.get_session_by_name("worker", Some("/x")).await.unwrap(),
        None
    );
    let updated = c
        .update_session(
            "id-1",
            &SessionPatch {
                last_resumed_at: Some("2026-01-01T00:00:00Z".into()),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    assert_eq!(
        updated.last_resumed_at.as_deref(),
        Some("2026-01-01T00:00:00Z")
    );
    let events = c.list_events("id-1").await.unwrap();
    assert_eq!(events.len(), 2);
    assert_eq!(events[0].event.event_id, e.event_id);
    let deleted = c.delete_session("id-1").await.unwrap();
    assert_eq!(deleted.events_count, 2);
    assert!(matches!(
        c.delete_session("id-1").await,
        Err(ClientError::NotFound(_))
    ));
    // Names with characters that need encoding survive the round trip.
    let odd = c
        .create_session(&SessionCreate {
            session_id: "x%y&z".into(),
            session_name: "a b&c".into(),
            project_dir: Some("/dir with space/ü".into()),
            ..SessionCreate::default()
        })
        .await
        .unwrap();
    assert_eq!(c.get_session("x%y&z").await.unwrap(), odd);
    assert_eq!(
        c.get_session_by_name("a b&c", Some("/dir with space/ü"))
            .await
            .unwrap(),
        Some(odd)
    );
}

#[tokio::test]
async fn the_client_tells_unreachable_from_other_errors() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let c = agent_orchestrator::client::SessionClient::new(&format!("http://127.0.0.1:{port}"))
        .unwrap();
    let err = c.get_status("x").await.unwrap_err();
    assert!(err.is_unreachable(), "{err}");
    assert!(err.to_string().contains("cannot reach"), "{err}");
}
