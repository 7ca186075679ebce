//! The CLI's stream-json protocol (`protocol/README.md`): the lines we send
//! on its stdin, and typed views of the lines it prints. Lines are parsed
//! from a copy; the raw bytes are what the backups keep.

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use crate::wire::{Decision, DecisionBody, RequestKind, RunFigures};

/// The id our `initialize` request carries.
pub const INIT_REQUEST_ID: &str = "req_1_init";
/// The callback id registered for PostToolUse.
pub const POST_TOOL_HOOK_ID: &str = "hook_0";
/// The callback id registered for PreToolUse.
pub const PRE_TOOL_HOOK_ID: &str = "hook_1";

/// The first line we send: register a PostToolUse hook (what a tool did)
/// and a PreToolUse hook (what is running now).
pub fn initialize_request() -> Value {
    json!({
        "type": "control_request",
        "request_id": INIT_REQUEST_ID,
        "request": {
            "subtype": "initialize",
            "hooks": {
                "PostToolUse": [{"matcher": null, "hookCallbackIds": [POST_TOOL_HOOK_ID]}],
                "PreToolUse": [{"matcher": null, "hookCallbackIds": [PRE_TOOL_HOOK_ID]}],
            },
        },
    })
}

/// Asks the CLI to end its current turn; it answers, prints a `result`
/// (subtype `error_during_execution`) and waits for more input, so the
/// conversation stays resumable.
pub fn interrupt_request() -> Value {
    json!({
        "type": "control_request",
        "request_id": format!("req_stop_{}", uuid::Uuid::new_v4().simple()),
        "request": {"subtype": "interrupt"},
    })
}

/// The prompt, sent as a user message once `initialize` is answered.
pub fn user_message(prompt: &str) -> Value {
    json!({
        "type": "user",
        "message": {"role": "user", "content": prompt},
        "parent_tool_use_id": null,
        "session_id": "",
    })
}

/// A successful answer to a control request.
pub fn control_success(request_id: &str, response: Value) -> Value {
    json!({
        "type": "control_response",
        "response": {"subtype": "success", "request_id": request_id, "response": response},
    })
}

/// A refusal of a control request we do not support.
pub fn control_error(request_id: &str, error: &str) -> Value {
    json!({
        "type": "control_response",
        "response": {"subtype": "error", "request_id": request_id, "error": error},
    })
}

/// One stdout line of the CLI, as far as we act on it. Every other type is
/// `Other`.
#[derive(Debug, Clone, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum CliLine {
    System(SystemLine),
    ControlRequest(ControlRequest),
    ControlResponse(ControlResponseLine),
    Result(Box<ResultLine>),
    Assistant(Box<AssistantLine>),
    /// A tool's result, or a subagent's prompt.
    User {},
    /// With `--include-partial-messages`: one event of the model's stream.
    StreamEvent(Box<StreamEventLine>),
    #[serde(other)]
    Other,
}

/// `{"type":"assistant","message":{...},"parent_tool_use_id":...,"uuid":...}`:
/// what the model said, one content block per line in recent releases.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssistantLine {
    #[serde(default)]
    pub message: AssistantMessage,
    /// Set on a subagent's lines: the tool call that started it.
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
    #[serde(default)]
    pub uuid: Option<String>,
}

/// The model's message of an [`AssistantLine`].
#[derive(Debug, Clone, Default, Deserialize)]
pub struct AssistantMessage {
    #[serde(default)]
    pub id: Option<String>,
    /// `<synthetic>` on what the CLI makes up itself (an API error's text).
    #[serde(default)]
    pub model: Option<String>,
    /// Kept as sent: a block of a type we do not know must not make the
    /// whole line unreadable.
    #[serde(default)]
    pub content: Value,
}

/// One content block of an assistant message, as far as we show it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Block<'a> {
    Text(&'a str),
    Thinking(&'a str),
    ToolUse { id: &'a str },
    Other,
}

impl AssistantLine {
    /// The message's content blocks, in order.
    pub fn blocks(&self) -> Vec<Block<'_>> {
        let Some(blocks) = self.message.content.as_array() else {
            return Vec::new();
        };
        blocks
            .iter()
            .map(|b| {
                let field = |name: &str| b.get(name).and_then(Value::as_str);
                match field("type") {
                    Some("text") => field("text").map_or(Block::Other, Block::Text),
                    Some("thinking") => field("thinking").map_or(Block::Other, Block::Thinking),
                    Some("tool_use") => {
                        field("id").map_or(Block::Other, |id| Block::ToolUse { id })
                    }
                    _ => Block::Other,
                }
            })
            .collect()
    }

    /// True for a message the CLI made up itself rather than the model.
    pub fn is_synthetic(&self) -> bool {
        self.message.model.as_deref() == Some("<synthetic>")
    }
}

/// `{"type":"stream_event","event":{...},"parent_tool_use_id":...}`.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct StreamEventLine {
    #[serde(default)]
    pub event: Value,
    #[serde(default)]
    pub parent_tool_use_id: Option<String>,
}

impl StreamEventLine {
    /// The event's type (`message_start`, `content_block_delta`, ...).
    pub fn kind(&self) -> &str {
        self.event.get("type").and_then(Value::as_str).unwrap_or("")
    }

    /// True when a new message or content block begins.
    pub fn starts_block(&self) -> bool {
        matches!(self.kind(), "message_start" | "content_block_start")
    }

    /// The message id a `message_start` announces.
    pub fn message_id(&self) -> Option<&str> {
        self.event.pointer("/message/id").and_then(Value::as_str)
    }

    /// The text of a `text_delta` of the main conversation (not of a
    /// subagent), with the block's index.
    pub fn text_delta(&self) -> Option<(u64, &str)> {
        if self.parent_tool_use_id.is_some() || self.kind() != "content_block_delta" {
            return None;
        }
        let delta = self.event.get("delta")?;
        if delta.get("type").and_then(Value::as_str) != Some("text_delta") {
            return None;
        }
        let index = self.event.get("index").and_then(Value::as_u64).unwrap_or(0);
        Some((index, delta.get("text").and_then(Value::as_str)?))
    }
}

/// `{"type":"system",...}`; `subtype` `init` starts a run and names the session.
#[derive(Debug, Clone, Deserialize)]
pub struct SystemLine {
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    /// On the init line of releases since about 2.0.2x: which figures of
    /// the result line are per run and which cumulative depends on it.
    #[serde(default)]
    pub claude_code_version: Option<String>,
    /// On `task_started` (a subagent begins): its id...
    #[serde(default)]
    pub task_id: Option<String>,
    /// ...and the Task tool call that started it.
    #[serde(default)]
    pub tool_use_id: Option<String>,
}

impl SystemLine {
    /// A subagent's id and the tool call that started it, when this line
    /// says one began.
    pub fn task_started(&self) -> Option<(&str, &str)> {
        if self.subtype.as_deref() != Some("task_started") {
            return None;
        }
        Some((self.task_id.as_deref()?, self.tool_use_id.as_deref()?))
    }

    /// The session id, when this is the init line.
    pub fn init_session_id(&self) -> Option<&str> {
        (self.subtype.as_deref() == Some("init"))
            .then_some(self.session_id.as_deref())
            .flatten()
    }
}

/// `{"type":"control_request","request_id":...,"request":{"subtype":...}}`:
/// the CLI waits for our answer.
#[derive(Debug, Clone, Deserialize)]
pub struct ControlRequest {
    pub request_id: String,
    #[serde(default)]
    pub request: Value,
}

impl ControlRequest {
    /// The request's subtype (`hook_callback`, `can_use_tool`, ...).
    pub fn subtype(&self) -> &str {
        self.request
            .get("subtype")
            .and_then(Value::as_str)
            .unwrap_or("")
    }

    /// The hook input, when this is a PreToolUse or PostToolUse hook
    /// callback. Claude Code before 2.0.31 puts `tool_use_id` only beside
    /// the input; it is read from there too.
    pub fn tool_hook(&self) -> Option<HookInput> {
        if self.subtype() != "hook_callback" {
            return None;
        }
        let mut input = HookInput::deserialize(self.request.get("input")?).ok()?;
        if !matches!(input.hook_event_name.as_str(), "PreToolUse" | "PostToolUse") {
            return None;
        }
        if input.tool_use_id.is_none() {
            input.tool_use_id = self
                .request
                .get("tool_use_id")
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
        Some(input)
    }

    /// The tool call or question, when this is a `can_use_tool` request:
    /// the CLI waits for a decision (see [`permission_answer`]).
    pub fn tool_permission(&self) -> Option<ToolPermission> {
        if self.subtype() != "can_use_tool" {
            return None;
        }
        ToolPermission::deserialize(&self.request).ok()
    }

    /// What we answer at once: hooks succeed with no changes; anything
    /// else but a `can_use_tool` (which waits for a decision) is refused so
    /// the CLI does not wait forever.
    pub fn answer(&self) -> Value {
        match self.subtype() {
            "hook_callback" => control_success(&self.request_id, json!({})),
            other => control_error(
                &self.request_id,
                &format!("agent-orchestrator does not support control request '{other}'"),
            ),
        }
    }
}

/// A `can_use_tool` request: a tool call that needs permission, or (for
/// `AskUserQuestion`) questions for the user. Releases before about 2.0
/// send only `tool_name` and `input`.
#[derive(Debug, Clone, Deserialize)]
pub struct ToolPermission {
    pub tool_name: String,
    #[serde(default)]
    pub input: Value,
    /// What accepting "always" would add (rules, directories), as given.
    #[serde(default)]
    pub permission_suggestions: Option<Value>,
    #[serde(default)]
    pub blocked_path: Option<String>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    #[serde(default)]
    pub requires_user_interaction: bool,
}

impl ToolPermission {
    /// A question (`AskUserQuestion`, or anything that needs the user) or
    /// a permission.
    pub fn kind(&self) -> RequestKind {
        if self.tool_name == "AskUserQuestion" || self.requires_user_interaction {
            RequestKind::Question
        } else {
            RequestKind::Permission
        }
    }
}

/// The answer to a `can_use_tool` request: allow with the input (a
/// question's answers merged in; the suggestions as `updatedPermissions`
/// for "always"), or deny with the message the model reads.
pub fn permission_answer(
    request_id: &str,
    request: &ToolPermission,
    decision: &DecisionBody,
) -> Value {
    let response = match decision.decision {
        Decision::Allow => {
            let mut input = request.input.clone();
            if let (Some(answers), Some(fields)) = (&decision.answers, input.as_object_mut()) {
                fields.insert("answers".to_owned(), json!(answers));
            }
            let mut allow = json!({"behavior": "allow", "updatedInput": input});
            if decision.always == Some(true)
                && let Some(suggestions) = &request.permission_suggestions
            {
                allow["updatedPermissions"] = suggestions.clone();
            }
            allow
        }
        Decision::Deny => json!({
            "behavior": "deny",
            "message": decision.message.clone().unwrap_or_else(|| "Permission denied.".to_owned()),
        }),
    };
    control_success(request_id, response)
}

/// Claude Code's hook input: what a `hook_callback` control request carries,
/// and what a command hook (`ao-hook`) reads on stdin. Which fields are
/// present depends on the hook event.
#[derive(Debug, Clone, Default, Deserialize)]
pub struct HookInput {
    #[serde(default)]
    pub hook_event_name: String,
    #[serde(default)]
    pub session_id: String,
    #[serde(default)]
    pub transcript_path: Option<String>,
    #[serde(default)]
    pub cwd: Option<String>,
    /// SessionStart: `startup`, `resume`, `clear` or `compact`.
    #[serde(default)]
    pub source: Option<String>,
    /// UserPromptSubmit.
    #[serde(default)]
    pub prompt: Option<String>,
    #[serde(default)]
    pub tool_name: Option<String>,
    #[serde(default)]
    pub tool_input: Option<Value>,
    #[serde(default)]
    pub tool_response: Option<Value>,
    #[serde(default)]
    pub tool_use_id: Option<String>,
    /// Set on a subagent's tool calls: the subagent's id.
    #[serde(default)]
    pub agent_id: Option<String>,
    #[serde(default)]
    pub error: Option<Value>,
    /// Stop, in Claude Code versions that send it.
    #[serde(default)]
    pub last_assistant_message: Option<String>,
}

/// `{"type":"control_response",...}`: the CLI's answer to our request.
#[derive(Debug, Clone, Deserialize)]
pub struct ControlResponseLine {
    #[serde(default)]
    pub response: Value,
}

impl ControlResponseLine {
    /// The id of the request this answers.
    pub fn request_id(&self) -> Option<&str> {
        self.response.get("request_id").and_then(Value::as_str)
    }

    /// True for `subtype: success`.
    pub fn is_success(&self) -> bool {
        self.response.get("subtype").and_then(Value::as_str) == Some("success")
    }
}

/// `{"type":"result",...}`: the end of a turn, with the final text.
#[derive(Debug, Clone, Deserialize, Serialize)]
pub struct ResultLine {
    #[serde(default)]
    pub subtype: Option<String>,
    #[serde(default)]
    pub is_error: bool,
    #[serde(default)]
    pub result: Option<String>,
    #[serde(default)]
    pub session_id: Option<String>,
    #[serde(default)]
    pub errors: Vec<String>,
    /// With `--json-schema`: the document the model produced.
    #[serde(default)]
    pub structured_output: Option<Value>,
    // The run's figures, kept as sent: a bad one must not make the whole
    // line unreadable (see `figures`).
    #[serde(default)]
    total_cost_usd: Value,
    #[serde(default)]
    usage: Value,
    #[serde(default, rename = "modelUsage")]
    model_usage: Value,
    #[serde(default)]
    num_turns: Value,
    #[serde(default)]
    duration_ms: Value,
    #[serde(default)]
    duration_api_ms: Value,
}

impl ResultLine {
    /// What the run cost and took, each figure only when it makes sense.
    pub fn figures(&self) -> RunFigures {
        RunFigures::from_result(&json!({
            "total_cost_usd": self.total_cost_usd,
            "usage": self.usage,
            "modelUsage": self.model_usage,
            "num_turns": self.num_turns,
            "duration_ms": self.duration_ms,
            "duration_api_ms": self.duration_api_ms,
        }))
    }

    /// What went wrong, for an error result: its text, else its `errors`.
    pub fn error_text(&self) -> String {
        match &self.result {
            Some(text) if !text.is_empty() => text.clone(),
            _ if !self.errors.is_empty() => self.errors.join("; "),
            _ => format!(
                "the CLI reported an error ({})",
                self.subtype.as_deref().unwrap_or("no details")
            ),
        }
    }
}

/// Parses one stdout line; `None` for anything that is not a JSON object
/// with a `type` (garbage is kept in the backup, never acted on).
pub fn parse_line(line: &[u8]) -> Option<(CliLine, Option<String>)> {
    parse_value(serde_json::from_slice(line).ok()?)
}

/// Like [`parse_line`], for a line already parsed as JSON.
pub fn parse_value(value: Value) -> Option<(CliLine, Option<String>)> {
    if !value.get("type").is_some_and(Value::is_string) {
        return None;
    }
    let stamp = value
        .get("timestamp")
        .and_then(Value::as_str)
        .map(str::to_owned);
    let parsed = CliLine::deserialize(value).ok()?;
    Some((parsed, stamp))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn transcript_lines(file: &str) -> Vec<String> {
        let path = format!(
            "{}/tests/fixtures/protocol/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let text = std::fs::read_to_string(&path).unwrap();
        text.lines()
            .filter_map(|l| l.strip_prefix("STDOUT "))
            .map(str::to_owned)
            .collect()
    }

    #[test]
    fn parses_the_real_new_run_transcript() {
        let lines = transcript_lines("new_run.txt");
        let parsed: Vec<CliLine> = lines
            .iter()
            .map(|l| parse_line(l.as_bytes()).unwrap().0)
            .collect();
        assert!(
            matches!(&parsed[0], CliLine::ControlResponse(r) if r.request_id() == Some(INIT_REQUEST_ID) && r.is_success())
        );
        let CliLine::System(init) = &parsed[1] else {
            panic!("init")
        };
        assert_eq!(
            init.init_session_id(),
            Some("0d8df837-37ba-475d-923b-58be339b3251")
        );
        let hook = parsed
            .iter()
            .find_map(|l| match l {
                CliLine::ControlRequest(r) => r.tool_hook(),
                _ => None,
            })
            .unwrap();
        assert_eq!(hook.tool_name.as_deref(), Some("Bash"));
        assert_eq!(hook.tool_response.unwrap()["stdout"], "hello-from-tool");
        let CliLine::Result(result) = parsed.last().unwrap() else {
            panic!("result")
        };
        assert!(!result.is_error);
        assert_eq!(
            result.result.as_deref(),
            Some("The command printed hello-from-tool. Final answer: 4")
        );
        // Assistant lines carry a timestamp.
        let (_, stamp) = parse_line(lines[2].as_bytes()).unwrap();
        assert_eq!(stamp.as_deref(), Some("2026-11-20T22:21:21.453Z"));
    }

    #[test]
    fn parses_error_and_bad_resume_results() {
        for (file, subtype) in [
            ("error_run.txt", "success"),
            ("bad_resume.txt", "error_during_execution"),
        ] {
            let lines = transcript_lines(file);
            let last = lines.last().unwrap();
            let Some((CliLine::Result(r), _)) = parse_line(last.as_bytes()) else {
                panic!("{file}: result")
            };
            assert!(r.is_error, "{file}");
            assert_eq!(r.subtype.as_deref(), Some(subtype));
            assert!(!r.error_text().is_empty());
        }
    }

    #[test]
    fn garbage_is_not_a_line() {
        assert!(parse_line(b"this is not json {").is_none());
        assert!(parse_line(b"[1,2]").is_none());
        assert!(parse_line(b"{\"no_type\":1}").is_none());
        assert!(matches!(
            parse_line(b"{\"type\":\"stream_event\"}"),
            Some((CliLine::StreamEvent(_), None))
        ));
        assert!(matches!(
            parse_line(b"{\"type\":\"rate_limit_event\"}"),
            Some((CliLine::Other, None))
        ));
    }

    #[test]
    fn answers_every_control_request() {
        let req = |v: Value| -> ControlRequest { serde_json::from_value(v).unwrap() };
        let hook = req(json!({"request_id": "a", "request": {"subtype": "hook_callback"}}));
        assert_eq!(hook.answer()["response"]["subtype"], "success");
        let odd = req(json!({"request_id": "c", "request": {"subtype": "mystery"}}));
        let answer = odd.answer();
        assert_eq!(answer["response"]["subtype"], "error");
        assert_eq!(answer["response"]["request_id"], "c");
    }

    #[test]
    fn permission_answers_carry_the_input_answers_and_suggestions() {
        let req: ControlRequest = serde_json::from_value(json!({"request_id": "b", "request": {
            "subtype": "can_use_tool", "tool_name": "Bash", "input": {"command": "ls"},
            "permission_suggestions": [{"type": "addRules"}]}}))
        .unwrap();
        let perm = req.tool_permission().unwrap();
        assert_eq!(perm.kind(), RequestKind::Permission);
        let allow = |always, answers| DecisionBody {
            decision: Decision::Allow,
            message: None,
            always,
            answers,
            decided_by: None,
        };
        let answer = permission_answer("b", &perm, &allow(None, None));
        let response = &answer["response"]["response"];
        assert_eq!(response["updatedInput"]["command"], "ls");
        assert!(response.get("updatedPermissions").is_none());
        let answer = permission_answer("b", &perm, &allow(Some(true), None));
        assert_eq!(
            answer["response"]["response"]["updatedPermissions"][0]["type"],
            "addRules"
        );
        let deny = DecisionBody {
            decision: Decision::Deny,
            message: Some("no".into()),
            ..allow(None, None)
        };
        let answer = permission_answer("b", &perm, &deny);
        assert_eq!(
            answer["response"]["response"],
            json!({"behavior": "deny", "message": "no"})
        );
        let ask: ControlRequest = serde_json::from_value(json!({"request_id": "q", "request": {
            "subtype": "can_use_tool", "tool_name": "AskUserQuestion", "requires_user_interaction": true,
            "input": {"questions": [{"question": "Which?"}]}}}))
        .unwrap();
        let question = ask.tool_permission().unwrap();
        assert_eq!(question.kind(), RequestKind::Question);
        let answers = Some([("Which?".to_owned(), "blue".to_owned())].into());
        let answer = permission_answer("q", &question, &allow(None, answers));
        let input = &answer["response"]["response"]["updatedInput"];
        assert_eq!(input["answers"]["Which?"], "blue");
        assert_eq!(input["questions"][0]["question"], "Which?");
    }
}
