//! The events the benchmark stores: a `post_tool` event of the size a runner
//! typically sends (about 400 bytes), each with its own `event_id`, as the
//! runner sends them for deduplication.

use serde_json::{Value, json};
use uuid::Uuid;

/// Session ids and names are the same in the benchmark.
pub fn session_body(session_id: &str) -> String {
    json!({"session_id": session_id, "session_name": session_id}).to_string()
}

/// A `post_tool` event for `session_id`, number `seq` of its sender.
pub fn tool_event(session_id: &str, seq: u64) -> Value {
    json!({
        "event_type": "post_tool",
        "session_id": session_id,
        "session_name": session_id,
        "timestamp": "2025-06-01T12:00:00.000000Z",
        "event_id": Uuid::new_v4(),
        "tool_name": "Bash",
        "tool_input": {
            "command": format!("cargo test --workspace -- step_{seq}"),
            "description": "Run the tests of the workspace"
        },
        "tool_output": {
            "stdout": "running 42 tests\n..........................................\ntest result: ok. 42 passed; 0 failed; 0 ignored; finished in 1.23s",
            "stderr": "",
            "interrupted": false
        }
    })
}

/// What the model says between tool calls, as the runner sends it: an
/// assistant message with `"final": false` (indexed for search).
pub fn narration_event(session_id: &str, seq: u64) -> Value {
    json!({
        "event_type": "message",
        "session_id": session_id,
        "session_name": session_id,
        "timestamp": "2025-06-01T12:00:00.000000Z",
        "event_id": Uuid::new_v4(),
        "role": "assistant",
        "final": false,
        "content": [{"type": "text", "text": format!(
            "Step {seq}: the tests pass, so next I will look at the parser and the tokenizer it calls, \
             then run the whole workspace again to be sure nothing else broke along the way.")}]
    })
}

/// A piece of text as the model writes it, for `POST /sessions/{id}/live`.
pub fn text_delta(seq: u64) -> String {
    json!({"type": "text_delta", "text": "the tests pass, so next I will look at the parser ",
           "message_id": "msg_bench", "index": 0, "seq": seq})
    .to_string()
}

/// A `post_tool` event whose output is `bytes` long: a large tool result.
pub fn sized_event(session_id: &str, bytes: usize) -> String {
    let mut event = tool_event(session_id, 0);
    event["tool_output"]["stdout"] = "x".repeat(bytes).into();
    event.to_string()
}

/// A small event for the fan-out, stamped with its sequence number and the
/// time it was sent (µs since the benchmark's clock started).
pub fn stamped_event(session_id: &str, seq: u64, sent_us: u64) -> String {
    json!({
        "event_type": "post_tool",
        "session_id": session_id,
        "session_name": session_id,
        "timestamp": "2025-06-01T12:00:00.000000Z",
        "event_id": Uuid::new_v4(),
        "tool_name": "Bash",
        "tool_input": {"bench_seq": seq, "sent_us": sent_us}
    })
    .to_string()
}

/// Reads the stamp back out of a live message's JSON text without parsing
/// all of it: `(seq, sent_us)`, or `None` for a message that is not one.
pub fn read_stamp(text: &str) -> Option<(u64, u64)> {
    Some((
        number_after(text, "\"bench_seq\":")?,
        number_after(text, "\"sent_us\":")?,
    ))
}

fn number_after(text: &str, key: &str) -> Option<u64> {
    let start = text.find(key)? + key.len();
    let digits = text[start..]
        .trim_start()
        .split(|c: char| !c.is_ascii_digit())
        .next()?;
    digits.parse().ok()
}
