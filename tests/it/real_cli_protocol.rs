//! The real Claude Code CLI against the mock Anthropic API, driven over
//! stream-json exactly as DESIGN.md says the runner drives it. For now: the
//! mock API on its own.

use serde_json::{Value, json};

use crate::support::mock_anthropic::{FAIL_MESSAGE, MockAnthropic, TOOL_COMMAND, TOOL_OUTPUT};

const FINAL_TEXT: &str = "The command printed hello-from-tool. Final answer: 4";

/// The mock itself, without the CLI: the answers the CLI tests rely on,
/// and the non-streaming and unknown-endpoint paths the CLI does not take.
#[tokio::test]
async fn real_cli_mock_api_answers_by_the_last_user_turn() {
    let mock = MockAnthropic::start();
    let http = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("{}/v1/messages?beta=true", mock.base_url());
    let post = |body: Value| {
        http.post(&url)
            .header("X-Claude-Code-Session-Id", "s-1")
            .json(&body)
            .send()
    };

    // A tool call, streamed.
    let tool = post(json!({"model": "m", "stream": true, "messages": [
        {"role": "user", "content": [
            {"type": "text", "text": "<system-reminder>\nignore me\n</system-reminder>"},
            {"type": "text", "text": "please USE_TOOL"}]},
    ]}))
    .await
    .expect("request");
    assert_eq!(tool.status(), 200);
    assert_eq!(tool.headers()["content-type"], "text/event-stream");
    let sse = tool.text().await.expect("body");
    let events: Vec<Value> = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).expect("JSON event"))
        .collect();
    let names: Vec<&str> = events.iter().filter_map(|e| e["type"].as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop"
        ]
    );
    assert_eq!(events[1]["content_block"]["name"], "Bash");
    let input: Value = serde_json::from_str(
        events[3]["delta"]["partial_json"]
            .as_str()
            .expect("input_json_delta"),
    )
    .expect("tool input JSON");
    assert_eq!(input["command"], TOOL_COMMAND);
    assert_eq!(events[5]["delta"]["stop_reason"], "tool_use");

    // A tool result, not streamed.
    let answer: Value = post(json!({"model": "m", "messages": [
        {"role": "user", "content": "USE_TOOL"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": TOOL_OUTPUT}]},
    ]}))
    .await
    .expect("request")
    .json()
    .await
    .expect("JSON");
    assert_eq!(answer["content"][0]["text"], FINAL_TEXT);
    assert_eq!(answer["stop_reason"], "end_turn");

    // USE_TOOL again after a tool result: plain text.
    let again: Value = post(json!({"model": "m", "messages": [
        {"role": "user", "content": "USE_TOOL"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "Bash", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": [{"type": "text", "text": "out"}]}]},
        {"role": "assistant", "content": "done"},
        {"role": "user", "content": "USE_TOOL once more"},
    ]}))
    .await
    .expect("request")
    .json()
    .await
    .expect("JSON");
    assert_eq!(
        again["content"][0]["text"],
        "mock answer: USE_TOOL once more"
    );

    let fail = post(json!({"model": "m", "stream": true, "messages": [
        {"role": "user", "content": "FAIL_API"}]}))
    .await
    .expect("request");
    assert_eq!(fail.status(), 400);
    let body: Value = fail.json().await.expect("JSON");
    assert_eq!(
        body,
        json!({"type": "error", "error": {"type": "invalid_request_error", "message": FAIL_MESSAGE}})
    );

    let long = "x".repeat(300);
    let plain: Value = post(json!({"model": "m", "messages": [{"role": "user", "content": long}]}))
        .await
        .expect("request")
        .json()
        .await
        .expect("JSON");
    assert_eq!(
        plain["content"][0]["text"],
        format!("mock answer: {}", "x".repeat(100))
    );

    let other = http
        .get(format!("{}/v1/models", mock.base_url()))
        .send()
        .await
        .expect("request");
    assert_eq!(other.status(), 404);

    let requests = mock.requests();
    assert_eq!(requests.len(), 6);
    assert_eq!(mock.request_count(), 6);
    assert_eq!(mock.message_requests().len(), 5);
    assert_eq!(requests[0].query.as_deref(), Some("beta=true"));
    assert_eq!(requests[0].session_id(), Some("s-1"));
    assert_eq!(requests[0].header("Content-Type"), Some("application/json"));
    assert!(!requests[0].has_tool_result());
    assert!(requests[1].has_tool_result());
    assert_eq!(requests[5].method, "GET");
    assert_eq!(requests[5].path, "/v1/models");
}
