//! What a run asks of the CLI beyond the prompt: system prompt, model,
//! tools, permissions, turn limit, MCP servers and the shape of the answer.
//! An agent fixes some of them; the per-run flags of `ao-new` and
//! `ao-resume` give the same settings and win field by field.

use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::Serialize;
use serde_json::{Map, Value};

/// Claude Code's `--permission-mode` values. Without an explicit one, runs
/// bypass permission checks (nobody is there to answer a prompt).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub enum PermissionMode {
    AcceptEdits,
    Auto,
    BypassPermissions,
    Default,
    DontAsk,
    Manual,
    Plan,
}

impl PermissionMode {
    const ALL: [PermissionMode; 7] = [
        PermissionMode::AcceptEdits,
        PermissionMode::Auto,
        PermissionMode::BypassPermissions,
        PermissionMode::Default,
        PermissionMode::DontAsk,
        PermissionMode::Manual,
        PermissionMode::Plan,
    ];

    /// The name the CLI takes.
    pub fn as_str(self) -> &'static str {
        match self {
            PermissionMode::AcceptEdits => "acceptEdits",
            PermissionMode::Auto => "auto",
            PermissionMode::BypassPermissions => "bypassPermissions",
            PermissionMode::Default => "default",
            PermissionMode::DontAsk => "dontAsk",
            PermissionMode::Manual => "manual",
            PermissionMode::Plan => "plan",
        }
    }
}

impl FromStr for PermissionMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        PermissionMode::ALL
            .into_iter()
            .find(|m| m.as_str() == text)
            .ok_or_else(|| {
                let names: Vec<&str> = PermissionMode::ALL.iter().map(|m| m.as_str()).collect();
                format!(
                    "unknown permission mode '{text}' (use one of: {})",
                    names.join(", ")
                )
            })
    }
}

/// Who answers a run's permission requests: a person or the parent agent
/// (`ask`, through the session manager), or the run itself, at once, for
/// unattended runs (`allow`, `deny`; questions are then denied: nobody is
/// there to answer them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum OnPermission {
    #[default]
    Ask,
    Allow,
    Deny,
}

impl OnPermission {
    /// The name the flag and the agent field take.
    pub fn as_str(self) -> &'static str {
        match self {
            OnPermission::Ask => "ask",
            OnPermission::Allow => "allow",
            OnPermission::Deny => "deny",
        }
    }
}

impl FromStr for OnPermission {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "ask" => Ok(OnPermission::Ask),
            "allow" => Ok(OnPermission::Allow),
            "deny" => Ok(OnPermission::Deny),
            other => Err(format!(
                "unknown on_permission '{other}' (use ask, allow or deny)"
            )),
        }
    }
}

/// How long a permission request waits for an answer, by default: 30 minutes.
pub const DEFAULT_PERMISSION_TIMEOUT: u64 = 1800;

/// Checks a permission timeout: whole seconds, 0 for no limit.
pub fn check_permission_timeout(value: &Value) -> Result<u64, String> {
    value.as_u64().ok_or_else(|| {
        format!(
            "permission_timeout must be a whole number of seconds, 0 for no limit (got {value})"
        )
    })
}

/// Whether a system prompt is added to Claude Code's own or replaces it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum SystemPromptMode {
    #[default]
    Append,
    Replace,
}

impl FromStr for SystemPromptMode {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text {
            "append" => Ok(SystemPromptMode::Append),
            "replace" => Ok(SystemPromptMode::Replace),
            other => Err(format!(
                "unknown system prompt mode '{other}' (use append or replace)"
            )),
        }
    }
}

/// An MCP configuration (`{"mcpServers": {...}}`, Claude Code's format) and
/// the file it was read from. It may hold tokens, so it reaches the CLI
/// only through a private file, never argv.
#[derive(Debug, Clone, PartialEq)]
pub struct McpConfig {
    pub servers: Map<String, Value>,
    pub source: PathBuf,
}

impl McpConfig {
    /// Reads and checks an MCP config file.
    pub fn read(path: &Path) -> Result<McpConfig, String> {
        let value = read_json(path)?;
        McpConfig::from_value(value, path)
    }

    /// Checks an MCP config already parsed from `source`.
    pub fn from_value(value: Value, source: &Path) -> Result<McpConfig, String> {
        match value {
            Value::Object(mut top) => match top.remove("mcpServers") {
                Some(Value::Object(servers)) => Ok(McpConfig {
                    servers,
                    source: source.to_owned(),
                }),
                Some(_) => Err(format!(
                    "{}: \"mcpServers\" must be an object of servers",
                    source.display()
                )),
                None => Err(format!(
                    "{}: no \"mcpServers\" object (Claude Code's MCP config format: {{\"mcpServers\": {{\"NAME\": {{\"command\": ...}}}}}})",
                    source.display()
                )),
            },
            _ => Err(format!(
                "{}: an MCP config must be a JSON object",
                source.display()
            )),
        }
    }

    /// The document the CLI reads.
    pub fn document(&self) -> Value {
        serde_json::json!({ "mcpServers": self.servers })
    }
}

/// Reads a JSON file; the error names the file and the line.
pub fn read_json(path: &Path) -> Result<Value, String> {
    let text = crate::bounded::read_to_string(path, crate::bounded::SETTINGS)
        .map_err(|e| format!("{}: {e}", path.display()))?;
    serde_json::from_str(&text).map_err(|e| {
        format!(
            "{}:{}: not valid JSON: {}",
            path.display(),
            e.line(),
            strip_position(&e.to_string())
        )
    })
}

/// serde's messages end with " at line L column C"; the line is given first.
pub(crate) fn strip_position(message: &str) -> &str {
    match message.rfind(" at line ") {
        Some(i) => &message[..i],
        None => message,
    }
}

/// Checks an output schema: a JSON Schema must be an object.
pub fn check_schema(value: Value, source: &str) -> Result<Value, String> {
    if value.is_object() {
        Ok(value)
    } else {
        Err(format!(
            "{source}: an output schema must be a JSON object (a JSON Schema such as {{\"type\":\"object\",...}})"
        ))
    }
}

/// Checks a turn limit: a positive integer.
pub fn check_max_turns(value: &Value) -> Result<u32, String> {
    value
        .as_u64()
        .filter(|n| *n >= 1)
        .and_then(|n| u32::try_from(n).ok())
        .ok_or_else(|| format!("max_turns must be a positive integer (got {value})"))
}

/// The smallest budget: budgets reach the CLI to the millionth of a dollar.
pub const MIN_USD: f64 = 0.000001;

/// True for a budget a run can be given: finite, and at least [`MIN_USD`].
fn is_budget(usd: f64) -> bool {
    usd.is_finite() && usd >= MIN_USD
}

/// What a budget must be, said of `field`.
fn budget_rule(field: &str) -> String {
    format!("{field} must be a positive number of dollars, at least {MIN_USD:.6}")
}

/// Checks a dollar budget: a positive, finite number.
pub fn check_budget(value: &Value, field: &str) -> Result<f64, String> {
    value
        .as_f64()
        .filter(|x| is_budget(*x))
        .ok_or_else(|| format!("{} (got {value})", budget_rule(field)))
}

/// Checks an optional dollar budget of a typed body.
pub fn check_usd(field: &str, usd: Option<f64>) -> Result<(), String> {
    match usd {
        Some(x) if !is_budget(x) => Err(budget_rule(field)),
        _ => Ok(()),
    }
}

/// Parses a dollar budget given as text (a flag's value).
pub fn parse_budget(text: &str) -> Result<f64, String> {
    text.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| is_budget(*x))
        .ok_or_else(|| {
            format!(
                "'{text}' is not a positive number of dollars, at least {MIN_USD:.6} (e.g. 0.50)"
            )
        })
}

/// Everything a run may set; `None` leaves a field to the next source.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSettings {
    pub system_prompt: Option<String>,
    pub system_prompt_mode: Option<SystemPromptMode>,
    pub model: Option<String>,
    /// The only built-in tools offered (`--tools`); empty means none.
    pub tools: Option<Vec<String>>,
    /// Permission rules that pre-approve (`--allowedTools`).
    pub allowed_tools: Option<Vec<String>>,
    /// Permission rules that deny (`--disallowedTools`).
    pub disallowed_tools: Option<Vec<String>>,
    pub permission_mode: Option<PermissionMode>,
    pub max_turns: Option<u32>,
    /// Dollars the run may spend (the CLI's `--max-budget-usd`).
    pub max_budget_usd: Option<f64>,
    pub mcp_config: Option<McpConfig>,
    pub output_schema: Option<Value>,
    /// Run in a git worktree of its own.
    pub worktree: Option<bool>,
    /// Who answers permission requests.
    pub on_permission: Option<OnPermission>,
    /// Seconds a request waits for an answer (0: no limit).
    pub permission_timeout: Option<u64>,
}

impl RunSettings {
    /// These settings, with `base` filling in what they leave open.
    pub fn over(self, base: RunSettings) -> RunSettings {
        RunSettings {
            system_prompt: self.system_prompt.or(base.system_prompt),
            system_prompt_mode: self.system_prompt_mode.or(base.system_prompt_mode),
            model: self.model.or(base.model),
            tools: self.tools.or(base.tools),
            allowed_tools: self.allowed_tools.or(base.allowed_tools),
            disallowed_tools: self.disallowed_tools.or(base.disallowed_tools),
            permission_mode: self.permission_mode.or(base.permission_mode),
            max_turns: self.max_turns.or(base.max_turns),
            max_budget_usd: self.max_budget_usd.or(base.max_budget_usd),
            mcp_config: self.mcp_config.or(base.mcp_config),
            output_schema: self.output_schema.or(base.output_schema),
            worktree: self.worktree.or(base.worktree),
            on_permission: self.on_permission.or(base.on_permission),
            permission_timeout: self.permission_timeout.or(base.permission_timeout),
        }
    }
}

/// A list of tool names or rules: `Read, Grep` (Claude Code's subagent
/// form) or `["Read", "Grep"]`. Rules such as `Bash(git add, git commit)`
/// keep their inner commas.
pub fn split_tools(text: &str) -> Vec<String> {
    let mut tools = Vec::new();
    let mut current = String::new();
    let mut depth = 0usize;
    for c in text.chars() {
        match c {
            '(' => depth += 1,
            ')' => depth = depth.saturating_sub(1),
            ',' if depth == 0 => {
                push_tool(&mut tools, &mut current);
                continue;
            }
            _ => {}
        }
        current.push(c);
    }
    push_tool(&mut tools, &mut current);
    tools
}

fn push_tool(tools: &mut Vec<String>, current: &mut String) {
    let tool = current.trim();
    if !tool.is_empty() {
        tools.push(tool.to_owned());
    }
    current.clear();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permission_modes_parse_and_unknown_ones_list_the_choices() {
        assert_eq!(
            "bypassPermissions".parse::<PermissionMode>(),
            Ok(PermissionMode::BypassPermissions)
        );
        let err = "yolo".parse::<PermissionMode>().unwrap_err();
        assert!(
            err.contains("'yolo'") && err.contains("acceptEdits"),
            "{err}"
        );
    }

    #[test]
    fn tools_split_on_commas_outside_parentheses() {
        assert_eq!(split_tools("Read, Grep,Glob"), ["Read", "Grep", "Glob"]);
        assert_eq!(
            split_tools("Bash(git add, git commit), Edit"),
            ["Bash(git add, git commit)", "Edit"]
        );
        assert!(split_tools("  ").is_empty());
    }

    #[test]
    fn the_nearer_source_wins_field_by_field() {
        let flags = RunSettings {
            model: Some("flag".into()),
            ..Default::default()
        };
        let agent = RunSettings {
            model: Some("agent".into()),
            max_turns: Some(3),
            ..Default::default()
        };
        let merged = flags.over(agent);
        assert_eq!(merged.model.as_deref(), Some("flag"));
        assert_eq!(merged.max_turns, Some(3));
    }

    #[test]
    fn mcp_configs_need_an_mcp_servers_object() {
        let path = Path::new("a.json");
        assert!(McpConfig::from_value(serde_json::json!({"mcpServers": {}}), path).is_ok());
        let err = McpConfig::from_value(serde_json::json!({"servers": {}}), path).unwrap_err();
        assert!(err.contains("mcpServers"), "{err}");
        assert!(check_max_turns(&serde_json::json!(0)).is_err());
        assert!(check_max_turns(&serde_json::json!("3")).is_err());
        assert_eq!(check_max_turns(&serde_json::json!(3)), Ok(3));
        assert!(check_schema(serde_json::json!([1]), "x").is_err());
    }
}
