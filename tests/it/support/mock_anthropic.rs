//! A mock Anthropic Messages API, enough for the real Claude Code CLI to run
//! offline: point `ANTHROPIC_BASE_URL` at [`MockAnthropic::base_url`].
//!
//! It answers `POST /v1/messages` (the CLI sends `?beta=true` and
//! `stream: true`) as server-sent events, or as one JSON message when
//! `stream` is false, and `POST /v1/messages/count_tokens`. What it answers
//! depends on the LAST `user` message of the request:
//!
//! - a `tool_result`: text `The command printed <tool output>. Final answer: 4`;
//! - text containing `FAIL_API`: HTTP 400 with an Anthropic error body
//!   (`invalid_request_error`, `mock: prompt rejected`);
//! - text containing `USE_TOOL` while the conversation has no `tool_result`
//!   yet: one `tool_use` block for `Bash` running `echo hello-from-tool`;
//! - text containing `USE_SLOW_TOOL` while the conversation has no
//!   `tool_result` yet: one `tool_use` block for `Bash` running
//!   [`SLOW_COMMAND`] (a turn to interrupt);
//! - text containing `RUN_BASH: <command>` (to the end of its line) while
//!   the conversation has no `tool_result` yet: one `tool_use` block for
//!   `Bash` running that command;
//! - text containing `CALL_MCP:<tool> [JSON]` (an `mcp__SERVER__TOOL` name,
//!   and the rest of the line as its input) while the conversation has no
//!   `tool_result` yet: one `tool_use` block for that tool with that input
//!   (default `{"text": "from-the-mock"}`) (MCP tools are
//!   deferred, so the name need not be in the request's `tools`);
//! - text containing `USE_TASK: <prompt>` (to the end of its line) while the
//!   conversation has no `tool_result` yet: a call of the CLI's subagent
//!   tool (`Task`, or `Agent` where the request's tools name it so) with
//!   that prompt, which the subagent's own requests then answer by these
//!   same rules;
//! - text containing `ASK_QUESTION` while the conversation has no
//!   `tool_result` yet: one `tool_use` block for `AskUserQuestion` asking
//!   [`QUESTION`] with the options `blue` and `red`;
//! - a request that offers the `StructuredOutput` tool (a run with
//!   `--json-schema`) and has no `tool_result` yet: a call of it with a
//!   document that follows the tool's schema (strings are "mock");
//! - anything else: text `mock answer: <first 100 chars of the prompt>`.
//!
//! The first user prompt of a conversation also sets how every answer in it
//! looks: with `THINK`, a thinking block ([`THINKING`]) comes first; with
//! `NARRATE`, a tool call comes after a text block ([`NARRATION`]); with
//! `STREAM_SLOWLY`, a text arrives in [`SLOW_CHUNKS`] deltas, each after
//! [`SLOW_PAUSE`], so that a reader sees it grow.
//!
//! Every request (any method, any path) is recorded for assertions; paths it
//! does not know get a 404 JSON error. The server runs on its own thread with
//! its own tokio runtime, so it keeps answering while a test blocks (for
//! example in `std::process::Child::wait`), in plain `#[test]`s and in
//! `#[tokio::test]`s alike.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use serde_json::{Value, json};

/// The command of the mock's `Bash` tool call.
pub const TOOL_COMMAND: &str = "echo hello-from-tool";
/// The command of the mock's slow `Bash` tool call: 30 s of waiting that
/// is not a bare `sleep` (Claude Code 2.1 may refuse a standalone `sleep N`
/// as a tool error, and the turn then ends at once).
pub const SLOW_COMMAND: &str = "timeout 30 tail -f /dev/null";
/// What that command prints.
pub const TOOL_OUTPUT: &str = "hello-from-tool";
/// The question of an `ASK_QUESTION` answer.
pub const QUESTION: &str = "Which colour?";
/// The error message of a `FAIL_API` answer.
pub const FAIL_MESSAGE: &str = "mock: prompt rejected";

/// One request the mock received.
#[derive(Clone, Debug)]
pub struct RecordedRequest {
    pub method: String,
    /// The path without the query, e.g. `/v1/messages`.
    pub path: String,
    /// The query string without `?`, e.g. `beta=true`.
    pub query: Option<String>,
    /// Header names in lower case.
    pub headers: Vec<(String, String)>,
    /// The body as JSON; `Value::Null` when empty, a JSON string when it is not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of a header (name in any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        let name = name.to_ascii_lowercase();
        self.headers
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.as_str())
    }

    /// A `POST /v1/messages` (not `count_tokens`).
    pub fn is_messages(&self) -> bool {
        self.method == "POST" && self.path == "/v1/messages"
    }

    /// The Claude Code session this request belongs to (the CLI's
    /// `X-Claude-Code-Session-Id` header).
    pub fn session_id(&self) -> Option<&str> {
        self.header("x-claude-code-session-id")
    }

    /// The request's `messages` array (empty when there is none).
    pub fn messages(&self) -> &[Value] {
        self.body["messages"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
    }

    /// The turn the mock answers: the last message with role `user`.
    pub fn last_user_turn(&self) -> UserTurn {
        last_user_turn(&self.body)
    }

    /// Whether any message of the conversation carries a `tool_result`.
    pub fn has_tool_result(&self) -> bool {
        self.messages().iter().any(is_tool_result_message)
    }
}

/// What the last `user` message of a request is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserTurn {
    /// The user's prompt: the message's text blocks joined by newlines,
    /// without the CLI's `<system-reminder>` blocks.
    Prompt(String),
    /// A tool's result: its text content.
    ToolResult(String),
}

/// The mock server; stops when dropped.
pub struct MockAnthropic {
    base_url: String,
    requests: Arc<Mutex<Vec<RecordedRequest>>>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
}

impl MockAnthropic {
    /// Starts the mock on a free loopback port.
    pub fn start() -> Self {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind mock API port");
        listener
            .set_nonblocking(true)
            .expect("non-blocking listener");
        let addr = listener.local_addr().expect("mock API address");
        let requests = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new()
            .fallback(handle)
            .with_state(Arc::clone(&requests));
        std::thread::Builder::new()
            .name("mock-anthropic".into())
            .spawn(move || {
                let runtime = tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                    .expect("mock API runtime");
                runtime.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    let _ = axum::serve(listener, app)
                        .with_graceful_shutdown(async {
                            let _ = rx.await;
                        })
                        .await;
                });
            })
            .expect("mock API thread");
        MockAnthropic {
            base_url: format!("http://{addr}"),
            requests,
            shutdown: Some(tx),
        }
    }

    /// `http://127.0.0.1:PORT`, for `ANTHROPIC_BASE_URL`.
    pub fn base_url(&self) -> &str {
        &self.base_url
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.requests.lock().expect("request log").clone()
    }

    /// The `POST /v1/messages` requests so far, in arrival order.
    pub fn message_requests(&self) -> Vec<RecordedRequest> {
        self.requests()
            .into_iter()
            .filter(RecordedRequest::is_messages)
            .collect()
    }

    /// The conversation the last `POST /v1/messages` carried, as JSON text:
    /// what the model saw (a resumed run's history included).
    pub fn last_history(&self) -> String {
        let last = self.message_requests().pop().expect("a messages request");
        Value::Array(last.messages().to_vec()).to_string()
    }

    /// How many requests arrived so far (to look only at later ones).
    pub fn request_count(&self) -> usize {
        self.requests.lock().expect("request log").len()
    }
}

impl Drop for MockAnthropic {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

type Log = Arc<Mutex<Vec<RecordedRequest>>>;

async fn handle(
    State(log): State<Log>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let body = if body.is_empty() {
        Value::Null
    } else {
        serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()))
    };
    let request = RecordedRequest {
        method: method.to_string(),
        path: uri.path().to_owned(),
        query: uri.query().map(str::to_owned),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    log.lock().expect("request log").push(request.clone());

    match (request.method.as_str(), request.path.as_str()) {
        ("POST", "/v1/messages") => messages(&request),
        ("POST", "/v1/messages/count_tokens") => {
            let chars = request.body.to_string().len() as u64;
            axum::Json(json!({ "input_tokens": chars / 4 + 1 })).into_response()
        }
        // The CLI's connectivity probe (sent only without
        // CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC).
        ("HEAD" | "GET", "/" | "/api/hello") => StatusCode::OK.into_response(),
        _ => error(
            StatusCode::NOT_FOUND,
            "not_found_error",
            &format!("mock: no route for {} {}", request.method, request.path),
        ),
    }
}

fn error(status: StatusCode, kind: &str, message: &str) -> Response {
    let body = json!({"type": "error", "error": {"type": kind, "message": message}});
    (status, axum::Json(body)).into_response()
}

/// The content of one answer.
enum Answer {
    Text(String),
    ToolUse,
    Call { name: String, input: Value },
}

/// What the first prompt of a conversation asks of every answer in it.
#[derive(Default)]
struct Style {
    /// `THINK`: a thinking block first.
    think: bool,
    /// `NARRATE`: a text block before a tool call.
    narrate: bool,
    /// `STREAM_SLOWLY`: text in several deltas with pauses.
    slowly: bool,
}

impl Style {
    fn of(request: &RecordedRequest) -> Style {
        let first = request
            .messages()
            .iter()
            .find(|m| m["role"] == "user")
            .map(|m| text_of(&m["content"], true))
            .unwrap_or_default();
        Style {
            think: first.contains("THINK"),
            narrate: first.contains("NARRATE"),
            slowly: first.contains("STREAM_SLOWLY"),
        }
    }
}

/// The name the CLI gives its subagent tool (`Task`, or `Agent` in some
/// releases), from the request's `tools`.
fn task_tool(request: &RecordedRequest) -> String {
    request.body["tools"]
        .as_array()
        .and_then(|tools| {
            tools
                .iter()
                .filter_map(|t| t["name"].as_str())
                .find(|n| matches!(*n, "Task" | "Agent"))
        })
        .unwrap_or("Task")
        .to_owned()
}

fn messages(request: &RecordedRequest) -> Response {
    let structured = request.body["tools"].as_array().and_then(|tools| {
        tools
            .iter()
            .find(|t| t["name"] == "StructuredOutput")
            .map(|t| sample_document(&t["input_schema"]))
    });
    let answer = match request.last_user_turn() {
        UserTurn::Prompt(_) if structured.is_some() && !request.has_tool_result() => Answer::Call {
            name: "StructuredOutput".to_owned(),
            input: structured.unwrap_or_default(),
        },
        UserTurn::Prompt(prompt)
            if prompt.contains("USE_SLOW_TOOL") && !request.has_tool_result() =>
        {
            Answer::Call {
                name: "Bash".to_owned(),
                input: json!({"command": SLOW_COMMAND, "description": "wait a while"}),
            }
        }
        UserTurn::Prompt(prompt)
            if prompt.contains("ASK_QUESTION") && !request.has_tool_result() =>
        {
            Answer::Call {
                name: "AskUserQuestion".to_owned(),
                input: json!({"questions": [{
                    "question": QUESTION,
                    "header": "Colour",
                    "options": [
                        {"label": "blue", "description": "the sky"},
                        {"label": "red", "description": "a rose"}
                    ],
                    "multiSelect": false
                }]}),
            }
        }
        UserTurn::Prompt(prompt) if prompt.contains("RUN_BASH:") && !request.has_tool_result() => {
            Answer::Call {
                name: "Bash".to_owned(),
                input: json!({"command": rest_of_line(&prompt, "RUN_BASH:"), "description": "as asked"}),
            }
        }
        UserTurn::Prompt(prompt) if prompt.contains("USE_TASK:") && !request.has_tool_result() => {
            Answer::Call {
                name: task_tool(request),
                input: json!({"description": "a helper's task", "prompt": rest_of_line(&prompt, "USE_TASK:"),
                              "subagent_type": "general-purpose", "run_in_background": false}),
            }
        }
        UserTurn::Prompt(prompt) if prompt.contains("CALL_MCP:") && !request.has_tool_result() => {
            let rest = rest_of_line(&prompt, "CALL_MCP:");
            let (name, input) = rest.split_once(' ').unwrap_or((&rest, ""));
            Answer::Call {
                name: name.to_owned(),
                input: serde_json::from_str(input.trim())
                    .unwrap_or_else(|_| json!({"text": "from-the-mock"})),
            }
        }
        UserTurn::ToolResult(output) => {
            Answer::Text(format!("The command printed {output}. Final answer: 4"))
        }
        UserTurn::Prompt(prompt) if prompt.contains("FAIL_API") => {
            return error(
                StatusCode::BAD_REQUEST,
                "invalid_request_error",
                FAIL_MESSAGE,
            );
        }
        UserTurn::Prompt(prompt) if prompt.contains("USE_TOOL") && !request.has_tool_result() => {
            Answer::ToolUse
        }
        UserTurn::Prompt(prompt) => Answer::Text(format!(
            "mock answer: {}",
            prompt.chars().take(100).collect::<String>()
        )),
    };
    let style = Style::of(request);
    let model = request.body["model"].as_str().unwrap_or("claude-mock");
    let id = format!("msg_mock_{}", uuid::Uuid::new_v4().simple());
    let mut blocks = Vec::new();
    if style.think {
        blocks
            .push(json!({"type": "thinking", "thinking": THINKING, "signature": "mock-signature"}));
    }
    let stop_reason = match answer {
        Answer::Text(text) => {
            blocks.push(json!({"type": "text", "text": text}));
            "end_turn"
        }
        Answer::ToolUse => {
            let input = json!({"command": TOOL_COMMAND, "description": "print a greeting"});
            tool_call(&mut blocks, &style, "Bash", input);
            "tool_use"
        }
        Answer::Call { name, input } => {
            tool_call(&mut blocks, &style, &name, input);
            "tool_use"
        }
    };
    let usage = json!({"input_tokens": 12, "output_tokens": 7});
    if request.body["stream"] != Value::Bool(true) {
        return axum::Json(json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": blocks, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": usage,
        }))
        .into_response();
    }

    // Each block starts empty and its content arrives in deltas, as the
    // real API streams it: one delta, or with STREAM_SLOWLY a text in
    // several, each after a pause.
    let mut events = vec![(
        Duration::ZERO,
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": [], "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 1},
        }}),
    )];
    for (index, block) in blocks.iter().enumerate() {
        for (pause, event) in block_events(index, block, style.slowly) {
            events.push((pause, event));
        }
    }
    events.push((
        Duration::ZERO,
        json!({"type": "message_delta",
               "delta": {"stop_reason": stop_reason, "stop_sequence": null},
               "usage": {"output_tokens": 7}}),
    ));
    events.push((Duration::ZERO, json!({"type": "message_stop"})));
    let stream = futures_util::stream::iter(events).then(|(pause, event)| async move {
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
        let name = event["type"].as_str().unwrap_or("message").to_owned();
        Ok::<_, std::convert::Infallible>(Bytes::from(format!("event: {name}\ndata: {event}\n\n")))
    });
    Response::builder()
        .status(StatusCode::OK)
        .header(header::CONTENT_TYPE, "text/event-stream")
        .header(header::CACHE_CONTROL, "no-cache")
        .body(Body::from_stream(stream))
        .expect("SSE response")
}

/// The thinking block of a `THINK` conversation.
pub const THINKING: &str = "The user wants a careful answer; I will think first.";
/// The text before a tool call of a `NARRATE` conversation.
pub const NARRATION: &str = "Let me run a command first.";
/// How many deltas a `STREAM_SLOWLY` text comes in, at least...
pub const SLOW_CHUNKS: usize = 5;
/// ...and the pause before each.
pub const SLOW_PAUSE: Duration = Duration::from_millis(600);

/// Adds a tool call (after its narration, with `NARRATE`).
fn tool_call(blocks: &mut Vec<Value>, style: &Style, name: &str, input: Value) {
    if style.narrate {
        blocks.push(json!({"type": "text", "text": NARRATION}));
    }
    blocks.push(json!({
        "type": "tool_use",
        "id": format!("toolu_mock_{}", uuid::Uuid::new_v4().simple()),
        "name": name,
        "input": input,
    }));
}

/// The stream events of content block `index`, each with the pause before it.
fn block_events(index: usize, block: &Value, slowly: bool) -> Vec<(Duration, Value)> {
    let (start, deltas) = match block["type"].as_str() {
        Some("tool_use") => (
            json!({"type": "tool_use", "id": block["id"], "name": block["name"], "input": {}}),
            vec![json!({"type": "input_json_delta", "partial_json": block["input"].to_string()})],
        ),
        Some("thinking") => (
            json!({"type": "thinking", "thinking": "", "signature": ""}),
            vec![
                json!({"type": "thinking_delta", "thinking": block["thinking"]}),
                json!({"type": "signature_delta", "signature": block["signature"]}),
            ],
        ),
        _ => {
            let text = block["text"].as_str().unwrap_or_default();
            let pieces = if slowly {
                chunks(text, SLOW_CHUNKS)
            } else {
                vec![text.to_owned()]
            };
            (
                json!({"type": "text", "text": ""}),
                pieces
                    .into_iter()
                    .map(|t| json!({"type": "text_delta", "text": t}))
                    .collect(),
            )
        }
    };
    let pause = if slowly && block["type"] == "text" {
        SLOW_PAUSE
    } else {
        Duration::ZERO
    };
    let mut events = vec![
        (
            Duration::ZERO,
            json!({"type": "content_block_start", "index": index, "content_block": start}),
        ),
        (Duration::ZERO, json!({"type": "ping"})),
    ];
    for delta in deltas {
        events.push((
            pause,
            json!({"type": "content_block_delta", "index": index, "delta": delta}),
        ));
    }
    events.push((
        Duration::ZERO,
        json!({"type": "content_block_stop", "index": index}),
    ));
    events
}

/// `text` cut into `n` pieces at least (at character boundaries).
fn chunks(text: &str, n: usize) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    let size = chars.len().div_ceil(n).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

/// What follows `marker` in `prompt`, to the end of its line, trimmed.
fn rest_of_line(prompt: &str, marker: &str) -> String {
    prompt
        .split(marker)
        .nth(1)
        .and_then(|rest| rest.lines().next())
        .unwrap_or_default()
        .trim()
        .to_owned()
}

/// A document that follows `schema`: each property of an object gets a
/// value of its type (strings are "mock").
pub fn sample_document(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("object") | None => Value::Object(
            schema["properties"]
                .as_object()
                .map(|props| {
                    props
                        .iter()
                        .map(|(k, sub)| (k.clone(), sample_document(sub)))
                        .collect()
                })
                .unwrap_or_default(),
        ),
        Some("array") => json!([sample_document(&schema["items"])]),
        Some("string") => json!("mock"),
        Some("integer" | "number") => json!(2),
        Some("boolean") => json!(true),
        Some(_) => Value::Null,
    }
}

fn is_tool_result_message(message: &Value) -> bool {
    message["content"]
        .as_array()
        .is_some_and(|blocks| blocks.iter().any(|b| b["type"] == "tool_result"))
}

/// Text of a `content` value: a string, or the `text` of its text blocks.
fn text_of(content: &Value, skip_reminders: bool) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(blocks) => blocks
            .iter()
            .filter(|b| b["type"] == "text")
            .filter_map(|b| b["text"].as_str())
            .filter(|t| !(skip_reminders && t.starts_with("<system-reminder>")))
            .collect::<Vec<_>>()
            .join("\n"),
        _ => String::new(),
    }
}

fn last_user_turn(body: &Value) -> UserTurn {
    let Some(message) = body["messages"]
        .as_array()
        .and_then(|m| m.iter().rev().find(|m| m["role"] == "user"))
    else {
        return UserTurn::Prompt(String::new());
    };
    if let Some(result) = message["content"]
        .as_array()
        .and_then(|blocks| blocks.iter().find(|b| b["type"] == "tool_result"))
    {
        return UserTurn::ToolResult(text_of(&result["content"], false));
    }
    UserTurn::Prompt(text_of(&message["content"], true))
}
