//! The stdout lines, shaped like the ones of Claude Code 2.1.329
//! (`/work/shared/protocol/*.txt`), trimmed to a realistic subset of fields.
//! serde_json is built with `preserve_order`, so keys keep the order written here.

use serde_json::{Value, json};

pub const VERSION: &str = "2.1.329";
pub const DEFAULT_MODEL: &str = "claude-fake-1";
const TOOLS: [&str; 8] = [
    "Task", "Bash", "Edit", "Glob", "Grep", "Read", "WebFetch", "Write",
];

/// What every line of one session shares.
pub struct Ctx {
    pub session_id: String,
    pub cwd: String,
    pub model: String,
    pub permission_mode: String,
}

fn uuid() -> String {
    uuid::Uuid::new_v4().to_string()
}

fn now() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

fn short_id(prefix: &str) -> String {
    let hex = uuid::Uuid::new_v4().simple().to_string();
    format!("{prefix}_{}", &hex[..20])
}

fn usage(input: u64, output: u64) -> Value {
    json!({
        "input_tokens": input,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "output_tokens_details": {"thinking_tokens": 0},
        "server_tool_use": {"web_search_requests": 0, "web_fetch_requests": 0},
        "service_tier": "standard",
        "cache_creation": {"ephemeral_1h_input_tokens": 0, "ephemeral_5m_input_tokens": 0},
        "inference_geo": "",
        "iterations": [],
        "speed": "standard",
        "fallback_credit": null
    })
}

/// Answer to the driver's `initialize` control request.
pub fn initialize_response(request_id: &Value, ctx_model: &str, permission_mode: &str) -> Value {
    json!({
        "type": "control_response",
        "response": {
            "subtype": "success",
            "request_id": request_id,
            "response": {
                "commands": [],
                "agents": [],
                "output_style": "default",
                "available_output_styles": ["default"],
                "models": [{
                    "value": "default",
                    "resolvedModel": ctx_model,
                    "displayName": "Default (fake)",
                    "description": "The fake model of ao-fake-claude"
                }],
                "account": {"tokenSource": "none", "apiKeySource": "none", "apiProvider": "firstParty"},
                "pid": std::process::id(),
                "claude_code_version": super::ledger::release(),
                "current_permission_mode": permission_mode,
                "hooks_applied": true
            }
        }
    })
}

pub fn system_init(ctx: &Ctx) -> Value {
    let mut init = json!({
        "type": "system",
        "subtype": "init",
        "cwd": ctx.cwd,
        "session_id": ctx.session_id,
        "tools": TOOLS,
        "mcp_servers": [],
        "model": ctx.model,
        "permissionMode": ctx.permission_mode,
        "slash_commands": [],
        "apiKeySource": "none",
        "claude_code_version": super::ledger::release(),
        "output_style": "default",
        "agents": [],
        "skills": [],
        "plugins": [],
        "uuid": uuid(),
        "original_cwd": ctx.cwd,
        "additional_directories": []
    });
    if !super::ledger::names_release()
        && let Some(fields) = init.as_object_mut()
    {
        fields.remove("claude_code_version");
    }
    init
}

fn assistant(ctx: &Ctx, content: Value) -> Value {
    json!({
        "type": "assistant",
        "message": {
            "id": short_id("msg"),
            "type": "message",
            "role": "assistant",
            "model": ctx.model,
            "content": [content],
            "stop_reason": null,
            "stop_sequence": null,
            "usage": {"input_tokens": 12, "output_tokens": 7, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            "context_management": null
        },
        "parent_tool_use_id": null,
        "session_id": ctx.session_id,
        "uuid": uuid(),
        "timestamp": now()
    })
}

/// A line of the model's stream (`--include-partial-messages`).
pub fn stream_event(ctx: &Ctx, event: Value) -> Value {
    json!({
        "type": "stream_event",
        "event": event,
        "session_id": ctx.session_id,
        "parent_tool_use_id": null,
        "uuid": uuid()
    })
}

/// The model's message id, for a stream's `message_start`.
pub fn message_id() -> String {
    short_id("msg")
}

pub fn assistant_text(ctx: &Ctx, text: &str) -> Value {
    assistant(ctx, json!({"type": "text", "text": text}))
}

pub fn new_tool_use_id() -> String {
    short_id("toolu")
}

pub fn new_request_id() -> String {
    uuid()
}

fn tool_input(n: u32) -> Value {
    json!({"command": format!("echo tool-{n}"), "description": format!("fake tool call {n}")})
}

fn tool_response(n: u32) -> Value {
    json!({"stdout": format!("tool-{n}"), "stderr": "", "interrupted": false, "isImage": false, "noOutputExpected": false})
}

pub fn assistant_tool_use(ctx: &Ctx, tool_use_id: &str, n: u32) -> Value {
    assistant(
        ctx,
        json!({"type": "tool_use", "id": tool_use_id, "name": "Bash", "input": tool_input(n)}),
    )
}

pub fn transcript_path(ctx: &Ctx) -> String {
    let home = std::env::var("HOME").unwrap_or_else(|_| "/nonexistent".to_string());
    let project = ctx.cwd.replace(['/', '.'], "-");
    format!("{home}/.claude/projects/{project}/{}.jsonl", ctx.session_id)
}

/// A tool hook callback; `event` is `PreToolUse` (no tool response yet)
/// or `PostToolUse`.
pub fn hook_callback(
    ctx: &Ctx,
    request_id: &str,
    callback_id: &str,
    event: &str,
    tool_use_id: &str,
    n: u32,
) -> Value {
    let call = Call {
        tool_use_id,
        tool_name: "Bash",
        input: tool_input(n),
        response: tool_response(n),
    };
    tool_hook(ctx, request_id, callback_id, event, &call)
}

/// One tool call, as its hooks describe it.
pub struct Call<'a> {
    pub tool_use_id: &'a str,
    pub tool_name: &'a str,
    pub input: Value,
    pub response: Value,
}

/// The hook callback of `event` for any tool call.
pub fn tool_hook(
    ctx: &Ctx,
    request_id: &str,
    callback_id: &str,
    event: &str,
    call: &Call<'_>,
) -> Value {
    let (tool_use_id, tool_name) = (call.tool_use_id, call.tool_name);
    let mut line = json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {
            "subtype": "hook_callback",
            "callback_id": callback_id,
            "input": {
                "session_id": ctx.session_id,
                "transcript_path": transcript_path(ctx),
                "cwd": ctx.cwd,
                "permission_mode": ctx.permission_mode,
                "hook_event_name": event,
                "tool_name": tool_name,
                "tool_input": call.input,
                "tool_response": call.response,
                "tool_use_id": tool_use_id,
                "duration_ms": 1
            },
            "tool_use_id": tool_use_id
        }
    });
    if event == "PreToolUse" {
        let input = &mut line["request"]["input"];
        if let Some(input) = input.as_object_mut() {
            input.remove("tool_response");
            input.remove("duration_ms");
        }
    }
    line
}

pub fn user_tool_result(ctx: &Ctx, tool_use_id: &str, n: u32) -> Value {
    json!({
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"tool_use_id": tool_use_id, "type": "tool_result", "content": format!("tool-{n}"), "is_error": false}]
        },
        "parent_tool_use_id": null,
        "session_id": ctx.session_id,
        "uuid": uuid(),
        "timestamp": now(),
        "tool_use_result": tool_response(n)
    })
}

/// An `assistant` line calling `name` with `input`.
pub fn assistant_call(ctx: &Ctx, tool_use_id: &str, name: &str, input: &Value) -> Value {
    assistant(
        ctx,
        json!({"type": "tool_use", "id": tool_use_id, "name": name, "input": input}),
    )
}

/// The `user` line with a tool's result (an error for a denied call).
pub fn tool_result(ctx: &Ctx, tool_use_id: &str, content: &str, is_error: bool) -> Value {
    json!({
        "type": "user",
        "message": {
            "role": "user",
            "content": [{"type": "tool_result", "content": content, "is_error": is_error, "tool_use_id": tool_use_id}]
        },
        "parent_tool_use_id": null,
        "session_id": ctx.session_id,
        "uuid": uuid(),
        "timestamp": now()
    })
}

/// The input of the `permission:FILE` scenario's Bash call.
pub fn write_input(file: &str) -> Value {
    json!({"command": format!("echo written-by-fake > {file}"), "description": "write a file"})
}

/// A `can_use_tool` request for a Bash call that writes `path`, as 2.1.329
/// sends it under `--permission-prompt-tool stdio`.
pub fn permission_request(
    ctx: &Ctx,
    request_id: &str,
    tool_use_id: &str,
    input: &Value,
    path: &str,
) -> Value {
    let command = input["command"].as_str().unwrap_or("");
    let rule = format!("{} *", command.split(" > ").next().unwrap_or(command));
    json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {
            "subtype": "can_use_tool",
            "tool_name": "Bash",
            "display_name": "Bash",
            "input": input,
            "description": input["description"],
            "permission_suggestions": [
                {"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": rule}], "behavior": "allow", "destination": "localSettings"},
                {"type": "addDirectories", "directories": [ctx.cwd], "destination": "session"}
            ],
            "blocked_path": path,
            "tool_use_id": tool_use_id
        }
    })
}

/// The input of the `question` scenario's `AskUserQuestion` call.
pub fn question_input() -> Value {
    json!({"questions": [{
        "question": "Which colour?",
        "header": "Colour",
        "options": [
            {"label": "blue", "description": "the sky"},
            {"label": "red", "description": "a rose"}
        ],
        "multiSelect": false
    }]})
}

/// A `can_use_tool` request for `AskUserQuestion`, as 2.1.329 sends it.
pub fn question_request(request_id: &str, tool_use_id: &str, input: &Value) -> Value {
    json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {
            "subtype": "can_use_tool",
            "tool_name": "AskUserQuestion",
            "display_name": "AskUserQuestion",
            "input": input,
            "tool_use_id": tool_use_id,
            "requires_user_interaction": true
        }
    })
}

/// What 2.1.329 prints when it denies a call itself (no prompt tool).
pub fn permission_denied(ctx: &Ctx, tool_name: &str, tool_use_id: &str) -> Value {
    json!({
        "type": "system",
        "subtype": "permission_denied",
        "tool_name": tool_name,
        "tool_use_id": tool_use_id,
        "session_id": ctx.session_id,
        "uuid": uuid()
    })
}

pub fn can_use_tool(request_id: &str) -> Value {
    json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {
            "subtype": "can_use_tool",
            "tool_name": "Bash",
            "input": {"command": "ls"},
            "permission_suggestions": [],
            "tool_use_id": new_tool_use_id()
        }
    })
}

pub fn mystery_request(request_id: &str) -> Value {
    json!({
        "type": "control_request",
        "request_id": request_id,
        "request": {"subtype": "mystery_request", "detail": "a request kind the driver does not know"}
    })
}

/// Answer to a control request of the driver that the fake does not support.
pub fn control_error(request_id: &Value, subtype: &str) -> Value {
    json!({
        "type": "control_response",
        "response": {
            "subtype": "error",
            "request_id": request_id,
            "error": format!("ao-fake-claude does not support control request {subtype:?}")
        }
    })
}

/// `modelUsage`: one model's tokens and cost (and facts about it, which
/// never add up).
fn model_usage(model: &str, input: u64, output: u64, cost: f64) -> Value {
    json!({model: {
        "inputTokens": input,
        "outputTokens": output,
        "cacheReadInputTokens": 0,
        "cacheCreationInputTokens": 0,
        "webSearchRequests": 0,
        "costUSD": cost,
        "contextWindow": 200000,
        "maxOutputTokens": 32000
    }})
}

/// The final `result` line. Like the real CLI it does not start with "type".
pub fn result(ctx: &Ctx, text: &str, is_error: bool, num_turns: u32, duration_ms: u128) -> Value {
    let cost = if is_error {
        0.0
    } else {
        0.000188 * f64::from(num_turns)
    };
    let (input, output) = if is_error {
        (0, 0)
    } else {
        (12 * u64::from(num_turns), 7 * u64::from(num_turns))
    };
    json!({
        "duration_api_ms": duration_ms,
        "stop_reason": if is_error { "stop_sequence" } else { "end_turn" },
        "session_id": ctx.session_id,
        "total_cost_usd": cost,
        "usage": usage(input, output),
        "modelUsage": model_usage(&ctx.model, input, output, cost),
        "permission_denials": [],
        "terminal_reason": if is_error { "api_error" } else { "completed" },
        "is_error": is_error,
        "num_turns": num_turns,
        "subtype": "success",
        "api_error_status": if is_error { json!(400) } else { Value::Null },
        "result": text,
        "type": "result",
        "duration_ms": duration_ms,
        "uuid": uuid(),
        "queued_turn_count": 0,
        "result_index": 0
    })
}

/// The result of a run stopped by `--max-turns` (as 2.1.329 prints it).
pub fn max_turns_result(ctx: &Ctx, max: u32, duration_ms: u128) -> Value {
    json!({
        "type": "result",
        "subtype": "error_max_turns",
        "duration_ms": duration_ms,
        "duration_api_ms": duration_ms,
        "is_error": true,
        "num_turns": max + 1,
        "stop_reason": "tool_use",
        "session_id": ctx.session_id,
        "total_cost_usd": 0.000188 * f64::from(max + 1),
        "usage": usage(12, 7),
        "modelUsage": model_usage(&ctx.model, 12, 7, 0.000188 * f64::from(max + 1)),
        "permission_denials": [],
        "terminal_reason": "max_turns",
        "errors": [format!("Reached maximum number of turns ({max})")],
        "uuid": uuid()
    })
}

/// The result of a run ended by `--max-budget-usd` after `turns` turns
/// (as 2.1.329 prints it).
pub fn budget_result(ctx: &Ctx, max: f64, turns: u32, duration_ms: u128) -> Value {
    let cost = 0.000188 * f64::from(turns);
    json!({
        "type": "result",
        "subtype": "error_max_budget_usd",
        "duration_ms": duration_ms,
        "duration_api_ms": duration_ms,
        "is_error": true,
        "num_turns": turns,
        "stop_reason": "tool_use",
        "session_id": ctx.session_id,
        "total_cost_usd": cost,
        "usage": usage(12 * u64::from(turns), 7 * u64::from(turns)),
        "modelUsage": model_usage(&ctx.model, 12 * u64::from(turns), 7 * u64::from(turns), cost),
        "permission_denials": [],
        "terminal_reason": "max_budget_usd",
        "errors": [format!("Reached maximum budget (${max})")],
        "uuid": uuid()
    })
}

/// A document that follows `schema` well enough for tests: each property
/// of an object gets a value of its type (strings say "fake").
pub fn sample_document(schema: &Value) -> Value {
    match schema["type"].as_str() {
        Some("object") | None => {
            let mut doc = serde_json::Map::new();
            if let Some(props) = schema["properties"].as_object() {
                for (key, sub) in props {
                    doc.insert(key.clone(), sample_document(sub));
                }
            }
            Value::Object(doc)
        }
        Some("array") => json!([sample_document(&schema["items"])]),
        Some("string") => json!("fake"),
        Some("integer" | "number") => json!(1),
        Some("boolean") => json!(true),
        Some(_) => Value::Null,
    }
}

/// The assistant line the real CLI makes up when the API fails.
pub fn synthetic_error_assistant(ctx: &Ctx, text: &str) -> Value {
    json!({
        "type": "assistant",
        "message": {
            "id": uuid(),
            "container": null,
            "model": "<synthetic>",
            "role": "assistant",
            "stop_reason": "stop_sequence",
            "stop_sequence": "",
            "type": "message",
            "usage": {"input_tokens": 0, "output_tokens": 0, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
            "content": [{"type": "text", "text": text}],
            "context_management": null
        },
        "parent_tool_use_id": null,
        "session_id": ctx.session_id,
        "uuid": uuid(),
        "timestamp": now(),
        "error": "unknown",
        "is_api_error_message": true,
        "api_error_status": 400,
        "api_error_type": "invalid_request_error"
    })
}

/// The only line of a run whose session cannot be resumed (bad_resume.txt).
/// A successful answer to a control request of the driver.
pub fn control_success(request_id: &Value) -> Value {
    json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": {}}
    })
}

/// The result after an `interrupt` (as 2.1.329 prints it).
pub fn interrupted_result(session_id: &str, duration_ms: u128) -> Value {
    json!({
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": duration_ms,
        "duration_api_ms": 0,
        "is_error": true,
        "num_turns": 1,
        "stop_reason": null,
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "uuid": uuid(),
        "errors": ["Request was aborted."]
    })
}

pub fn noinit_result(session_id: &str) -> Value {
    json!({
        "type": "result",
        "subtype": "error_during_execution",
        "duration_ms": 0,
        "duration_api_ms": 0,
        "is_error": true,
        "num_turns": 0,
        "stop_reason": null,
        "session_id": session_id,
        "total_cost_usd": 0,
        "usage": usage(0, 0),
        "modelUsage": {},
        "permission_denials": [],
        "uuid": uuid(),
        "errors": [no_conversation(session_id)],
        "result_index": 0
    })
}

pub fn no_conversation(session_id: &str) -> String {
    format!("No conversation found with session ID: {session_id}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Ctx {
        Ctx {
            session_id: "s1".into(),
            cwd: "/p".into(),
            model: DEFAULT_MODEL.into(),
            permission_mode: "bypassPermissions".into(),
        }
    }

    #[test]
    fn result_line_does_not_start_with_type() {
        let line = serde_json::to_string(&result(&ctx(), "hi", false, 1, 5)).unwrap();
        assert!(line.starts_with("{\"duration_api_ms\""), "{line}");
        let v: Value = serde_json::from_str(&line).unwrap();
        assert_eq!(v["type"], "result");
        assert_eq!(v["subtype"], "success");
        assert_eq!(v["is_error"], false);
        assert_eq!(v["result"], "hi");
    }

    #[test]
    fn hook_callback_shape() {
        let v = hook_callback(&ctx(), "r1", "hook_0", "PostToolUse", "toolu_1", 2);
        assert_eq!(v["request"]["subtype"], "hook_callback");
        assert_eq!(v["request"]["callback_id"], "hook_0");
        assert_eq!(
            v["request"]["input"]["tool_input"]["command"],
            "echo tool-2"
        );
        assert_eq!(v["request"]["input"]["tool_response"]["stdout"], "tool-2");
        assert_eq!(v["request"]["tool_use_id"], "toolu_1");
    }
}
