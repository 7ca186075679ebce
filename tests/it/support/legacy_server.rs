//! A stand-in for the original Python session manager (the system the seeds
//! describe, before the event rename), as it behaves for a client of ours:
//! no `/health`, `GET /sessions` ignores `?name=` and `?project_dir=`, no
//! `PATCH /sessions/{id}` (405; only `/metadata`), its event rows carry no
//! `session_name`, it knows only the legacy event names, and it stores a
//! repeated event twice. Every request is recorded for assertions. Runs on
//! its own thread, like the mock model API.

use std::sync::{Arc, Mutex};

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

#[derive(Default)]
struct Data {
    sessions: Vec<Value>,
    events: Vec<Value>,
    requests: Vec<(String, String)>,
}

type Shared = Arc<Mutex<Data>>;

/// The stand-in; stops when dropped.
pub struct LegacyServer {
    pub url: String,
    data: Shared,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl LegacyServer {
    pub fn start() -> Self {
        let data: Shared = Arc::default();
        let app = Router::new().fallback(handle).with_state(Arc::clone(&data));
        let (addr, tx) = super::serve_on_thread(app);
        LegacyServer {
            url: format!("http://{addr}"),
            data,
            shutdown: Some(tx),
        }
    }

    /// `(method, path)` of every request so far.
    pub fn requests(&self) -> Vec<(String, String)> {
        self.data.lock().unwrap().requests.clone()
    }

    /// The events stored for `id`, as the server keeps them.
    pub fn events(&self, id: &str) -> Vec<Value> {
        let data = self.data.lock().unwrap();
        data.events
            .iter()
            .filter(|e| e["session_id"] == id)
            .cloned()
            .collect()
    }

    /// Every session stored.
    pub fn sessions(&self) -> Vec<Value> {
        self.data.lock().unwrap().sessions.clone()
    }

    /// Adds a session directly (another user's, say).
    pub fn add_session(&self, id: &str, name: &str, project: &str) {
        self.data.lock().unwrap().sessions.push(json!({
            "session_id": id, "session_name": name, "status": "finished",
            "created_at": "2024-01-01T00:00:00", "project_dir": project,
        }));
    }
}

impl Drop for LegacyServer {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

fn answer(status: StatusCode, body: Value) -> Response {
    (status, axum::Json(body)).into_response()
}

fn not_found() -> Response {
    answer(StatusCode::NOT_FOUND, json!({"detail": "Not Found"}))
}

async fn handle(State(data): State<Shared>, method: Method, uri: Uri, body: Bytes) -> Response {
    let path = uri.path().to_owned();
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let mut data = data.lock().unwrap();
    data.requests.push((method.to_string(), path.clone()));
    let parts: Vec<&str> = path.trim_matches('/').split('/').collect();
    let find = |data: &Data, id: &str| data.sessions.iter().position(|s| s["session_id"] == id);
    match (method.as_str(), parts.as_slice()) {
        // The filters are ignored: every session, newest first.
        ("GET", ["sessions"]) => {
            let mut all = data.sessions.clone();
            all.reverse();
            answer(StatusCode::OK, json!({"sessions": all}))
        }
        ("POST", ["sessions"]) => {
            let id = body["session_id"].as_str().unwrap_or_default().to_owned();
            if find(&data, &id).is_some() {
                return answer(
                    StatusCode::CONFLICT,
                    json!({"detail": "Session already exists"}),
                );
            }
            let session = json!({
                "session_id": id, "session_name": body["session_name"], "status": "running",
                "created_at": "2024-01-01T00:00:00", "project_dir": body["project_dir"],
                "agent_name": body["agent_name"],
            });
            data.sessions.push(session.clone());
            answer(StatusCode::OK, json!({"session": session}))
        }
        ("GET", ["sessions", id]) => match find(&data, id) {
            Some(i) => answer(StatusCode::OK, json!({"session": data.sessions[i]})),
            None => not_found(),
        },
        ("DELETE", ["sessions", id]) => match find(&data, id) {
            Some(i) => {
                data.sessions.remove(i);
                let before = data.events.len();
                data.events.retain(|e| e["session_id"] != *id);
                let n = before - data.events.len();
                answer(
                    StatusCode::OK,
                    json!({"ok": true, "session_id": id, "deleted": {"session": true, "events_count": n}}),
                )
            }
            None => not_found(),
        },
        ("PATCH", ["sessions", _]) => answer(
            StatusCode::METHOD_NOT_ALLOWED,
            json!({"detail": "Method Not Allowed"}),
        ),
        ("PATCH", ["sessions", id, "metadata"]) => match find(&data, id) {
            Some(i) => {
                for key in [
                    "session_name",
                    "project_dir",
                    "agent_name",
                    "last_resumed_at",
                ] {
                    if !body[key].is_null() {
                        data.sessions[i][key] = body[key].clone();
                    }
                }
                answer(
                    StatusCode::OK,
                    json!({"ok": true, "session": data.sessions[i]}),
                )
            }
            None => not_found(),
        },
        ("GET", ["sessions", id, "status"]) => {
            let status = find(&data, id).map_or(json!("not_existent"), |i| {
                data.sessions[i]["status"].clone()
            });
            answer(StatusCode::OK, json!({"status": status}))
        }
        ("GET", ["sessions", id, "result"]) => {
            let last = data.events.iter().rev().find(|e| {
                e["session_id"] == *id && e["event_type"] == "message" && e["role"] == "assistant"
            });
            match last {
                Some(e) => answer(StatusCode::OK, json!({"result": e["content"][0]["text"]})),
                None => not_found(),
            }
        }
        ("GET", ["sessions", id, "events"]) => {
            let events: Vec<Value> = data
                .events
                .iter()
                .filter(|e| e["session_id"] == *id)
                .cloned()
                .collect();
            answer(StatusCode::OK, json!({"events": events}))
        }
        ("POST", ["sessions", id, "events"]) => {
            let Some(i) = find(&data, id) else {
                return not_found();
            };
            let kind = body["event_type"].as_str().unwrap_or_default().to_owned();
            if ![
                "session_start",
                "session_stop",
                "message",
                "pre_tool",
                "post_tool",
            ]
            .contains(&kind.as_str())
            {
                return answer(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    json!({"detail": [{"msg": "Input should be 'session_start', 'session_stop', 'pre_tool', 'post_tool' or 'message'"}]}),
                );
            }
            match kind.as_str() {
                "session_start" => data.sessions[i]["status"] = json!("running"),
                "session_stop" => data.sessions[i]["status"] = json!("finished"),
                _ => {}
            }
            // Stored as its columns, without session_name, and never deduplicated.
            let mut row = body.clone();
            if let Some(object) = row.as_object_mut() {
                object.remove("session_name");
            }
            let n = data.events.len() as i64 + 1;
            row["id"] = json!(n);
            data.events.push(row);
            answer(StatusCode::OK, json!({"ok": true}))
        }
        _ => not_found(),
    }
}
