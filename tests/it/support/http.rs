//! Plain HTTP against the API, seeing the exact status and JSON.

use serde_json::Value;

/// Raw JSON requests to one base URL.
#[derive(Clone)]
pub struct Http {
    base: String,
    client: reqwest::Client,
    /// Sent with every request (a token, an Origin, a Host).
    headers: Vec<(String, String)>,
}

impl Http {
    pub fn new(base: &str) -> Self {
        Http {
            base: base.trim_end_matches('/').to_owned(),
            client: reqwest::Client::builder()
                .no_proxy()
                .build()
                .expect("client"),
            headers: Vec::new(),
        }
    }

    /// The same helper, sending `name: value` with every request too.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.to_owned(), value.to_owned()));
        self
    }

    /// The same helper, sending the token.
    pub fn with_token(self, token: &str) -> Self {
        self.with_header("authorization", &format!("Bearer {token}"))
    }

    fn request(&self, method: &str, path: &str) -> reqwest::RequestBuilder {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let mut req = self.client.request(method, format!("{}{path}", self.base));
        for (name, value) in &self.headers {
            req = req.header(name, value);
        }
        req
    }

    /// Sends a request; answers the whole response, headers included.
    pub async fn send_full(
        &self,
        method: &str,
        path: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut req = self.request(method, path);
        if let Some(body) = body {
            req = req.json(&body);
        }
        req.send().await.expect("request")
    }

    /// Sends a request with an optional JSON body; answers the status and the
    /// body parsed as JSON (`Value::Null` when it is not JSON).
    pub async fn send(&self, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
        let resp = self.send_full(method, path, body).await;
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    /// Sends raw bytes with an optional content type.
    pub async fn send_raw(
        &self,
        method: &str,
        path: &str,
        body: Vec<u8>,
        content_type: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.request(method, path).body(body);
        if let Some(ct) = content_type {
            req = req.header("content-type", ct);
        }
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let bytes = resp.bytes().await.expect("body");
        (
            status,
            serde_json::from_slice(&bytes).unwrap_or(Value::Null),
        )
    }

    pub async fn get(&self, path: &str) -> (u16, Value) {
        self.send("GET", path, None).await
    }

    pub async fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("POST", path, Some(body)).await
    }

    pub async fn patch(&self, path: &str, body: Value) -> (u16, Value) {
        self.send("PATCH", path, Some(body)).await
    }

    pub async fn delete(&self, path: &str) -> (u16, Value) {
        self.send("DELETE", path, None).await
    }

    /// Creates a session and asserts it worked.
    pub async fn create(&self, id: &str, name: &str, project_dir: Option<&str>) -> Value {
        let mut body = serde_json::json!({"session_id": id, "session_name": name});
        if let Some(dir) = project_dir {
            body["project_dir"] = dir.into();
        }
        let (status, answer) = self.post("/sessions", body).await;
        assert_eq!(status, 200, "create {id}: {answer}");
        answer
    }

    /// The events of session `id`, asserting the answer was 200.
    pub async fn events(&self, id: &str) -> Vec<Value> {
        let (status, body) = self.get(&format!("/sessions/{id}/events")).await;
        assert_eq!(status, 200, "events of {id}: {body}");
        body["events"].as_array().expect("events").clone()
    }

    /// The status of session `id` (`running`, `finished`, `not_existent`).
    pub async fn status(&self, id: &str) -> String {
        let (status, body) = self.get(&format!("/sessions/{id}/status")).await;
        assert_eq!(status, 200, "status of {id}: {body}");
        body["status"].as_str().expect("status").to_owned()
    }

    /// The session of the phase 3 seed's verification: `test-session`
    /// (`test-789`) in `/tmp`, finished with the answer `Test result`.
    pub async fn create_phase_3_session(&self) {
        self.create("test-789", "test-session", Some("/tmp")).await;
        self.event(
            "test-789",
            serde_json::json!({"event_type": "message", "session_id": "test-789", "session_name": "test-session",
                   "timestamp": "2024-01-01T00:00:00Z", "role": "assistant",
                   "content": [{"type": "text", "text": "Test result"}]}),
        )
        .await;
        self.event(
            "test-789",
            serde_json::json!({"event_type": "session_stop", "session_id": "test-789", "session_name": "test-session",
                   "timestamp": "2024-01-01T00:00:01Z", "exit_code": 0, "reason": "completed"}),
        )
        .await;
    }

    /// Posts one event and asserts it was accepted.
    pub async fn event(&self, id: &str, event: Value) -> Value {
        let (status, answer) = self.post(&format!("/sessions/{id}/events"), event).await;
        assert_eq!(status, 200, "event for {id}: {answer}");
        answer
    }
}

/// A minimal valid event of `event_type` for session `id`.
pub fn event(id: &str, event_type: &str) -> Value {
    let mut e = serde_json::json!({
        "event_type": event_type,
        "session_id": id,
        "session_name": "n",
        "timestamp": "2024-01-01T00:00:00Z",
    });
    match event_type {
        "message" => {
            e["role"] = "assistant".into();
            e["content"] = serde_json::json!([{"type": "text", "text": "hi"}]);
        }
        "post_tool" | "pre_tool" => e["tool_name"] = "Bash".into(),
        _ => {}
    }
    e
}

/// A `post_tool` event numbered `n` (in `tool_input`), with `output` as
/// its output: what live tests count messages with.
pub fn numbered(id: &str, n: u64, output: &str) -> Value {
    let mut e = event(id, "post_tool");
    e["tool_input"] = serde_json::json!({ "n": n });
    e["tool_output"] = output.into();
    e
}

/// An assistant message with this text.
pub fn assistant(id: &str, text: &str) -> Value {
    let mut e = event(id, "message");
    e["content"] = serde_json::json!([{"type": "text", "text": text}]);
    e
}

/// `event_type` of each event, with the role for messages (`message:user`).
pub fn kinds(events: &[Value]) -> Vec<String> {
    events
        .iter()
        .map(|e| match e["role"].as_str() {
            Some(role) => format!("message:{role}"),
            None => e["event_type"].as_str().unwrap_or("?").to_owned(),
        })
        .collect()
}

/// The `post_tool` events among `events`: what each tool call did.
pub fn tool_calls(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "post_tool")
        .collect()
}

/// The [`kinds`] of one complete run with `tools` tool calls: `run_start`,
/// the prompt, `pre_tool` and `post_tool` per call, the answer, `run_completed`.
pub fn run_kinds(tools: usize) -> Vec<String> {
    let mut kinds = vec!["run_start".to_owned(), "message:user".to_owned()];
    for _ in 0..tools {
        kinds.extend(["pre_tool".to_owned(), "post_tool".to_owned()]);
    }
    kinds.extend(["message:assistant".to_owned(), "run_completed".to_owned()]);
    kinds
}

/// Percent-encodes `text` for a path segment or a query value.
pub fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| {
            if b.is_ascii_alphanumeric() || b"-_.~".contains(&b) {
                (b as char).to_string()
            } else {
                format!("%{b:02X}")
            }
        })
        .collect()
}
