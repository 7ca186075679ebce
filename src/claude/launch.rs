//! The CLI's command line for one run: stream-json mode, the permission
//! mode, the conversation to resume, and what an agent or the per-run flags
//! ask for. The prompt is never here (it goes on stdin), nor is an MCP
//! config (it may hold tokens; the CLI reads it from a private file).

use std::ffi::OsString;
use std::path::PathBuf;

use crate::agents::settings::{PermissionMode, SystemPromptMode};

/// The largest system prompt passed on the command line: Linux refuses a
/// single argument over 128 KiB.
pub const MAX_SYSTEM_PROMPT_BYTES: usize = 120 * 1024;

/// What the CLI is started with, besides its executable and directory.
#[derive(Debug, Clone, PartialEq)]
pub struct Launch {
    pub resume: Option<String>,
    pub permission_mode: PermissionMode,
    pub model: Option<String>,
    /// `--tools`: the only built-in tools offered (empty: none).
    pub tools: Option<Vec<String>>,
    /// `--allowedTools`: rules that pre-approve (they limit nothing).
    pub allowed_tools: Vec<String>,
    pub disallowed_tools: Vec<String>,
    pub max_turns: Option<u32>,
    /// `--max-budget-usd`: dollars the run may spend.
    pub max_budget_usd: Option<f64>,
    /// `--fork-session`: continue `resume`'s conversation under a new id.
    pub fork_session: bool,
    pub system_prompt: Option<(String, SystemPromptMode)>,
    /// A file holding `{"mcpServers": ...}`.
    pub mcp_config: Option<PathBuf>,
    /// A JSON Schema, as JSON text.
    pub json_schema: Option<String>,
    /// Variables set for the CLI, and so for its tools, hooks and MCP servers.
    pub env: Vec<(String, String)>,
    /// `--include-partial-messages`: the model's stream as it arrives.
    pub partial_messages: bool,
}

/// The flag that makes the CLI print the model's stream as it arrives.
pub const PARTIAL_MESSAGES_FLAG: &str = "--include-partial-messages";

impl Default for Launch {
    fn default() -> Self {
        Launch {
            resume: None,
            permission_mode: PermissionMode::BypassPermissions,
            model: None,
            tools: None,
            allowed_tools: Vec::new(),
            disallowed_tools: Vec::new(),
            max_turns: None,
            max_budget_usd: None,
            fork_session: false,
            system_prompt: None,
            mcp_config: None,
            json_schema: None,
            env: Vec::new(),
            partial_messages: false,
        }
    }
}

impl Launch {
    /// The arguments, in a fixed order: `--output-format stream-json
    /// --verbose --input-format stream-json --permission-mode MODE` (with
    /// `--permission-prompt-tool stdio` for any mode but
    /// bypassPermissions, so that the CLI asks us rather than deny), then
    /// each setting that is given. Lists go as one comma-separated
    /// argument, as Claude Code's SDKs pass them.
    pub fn args(&self) -> Vec<OsString> {
        let mut args: Vec<OsString> = super::process::STREAM_JSON_ARGS[..5]
            .iter()
            .map(OsString::from)
            .collect();
        let mut push = |flag: &str, value: OsString| {
            args.push(flag.into());
            args.push(value);
        };
        push("--permission-mode", self.permission_mode.as_str().into());
        if self.permission_mode != PermissionMode::BypassPermissions {
            push("--permission-prompt-tool", "stdio".into());
        }
        if let Some(id) = &self.resume {
            push("--resume", id.into());
        }
        if let Some(model) = &self.model {
            push("--model", model.into());
        }
        if let Some(tools) = &self.tools {
            push("--tools", tools.join(",").into());
        }
        if !self.allowed_tools.is_empty() {
            push("--allowedTools", self.allowed_tools.join(",").into());
        }
        if !self.disallowed_tools.is_empty() {
            push("--disallowedTools", self.disallowed_tools.join(",").into());
        }
        if let Some(n) = self.max_turns {
            push("--max-turns", n.to_string().into());
        }
        if let Some(usd) = self.max_budget_usd {
            push("--max-budget-usd", format_usd(usd).into());
        }
        if let Some((text, mode)) = &self.system_prompt {
            let flag = match mode {
                SystemPromptMode::Append => "--append-system-prompt",
                SystemPromptMode::Replace => "--system-prompt",
            };
            push(flag, text.into());
        }
        if let Some(path) = &self.mcp_config {
            push("--mcp-config", path.into());
        }
        if let Some(schema) = &self.json_schema {
            push("--json-schema", schema.into());
        }
        if self.fork_session && self.resume.is_some() {
            args.push("--fork-session".into());
        }
        if self.partial_messages {
            args.push(PARTIAL_MESSAGES_FLAG.into());
        }
        args
    }
}

/// A dollar amount for the CLI: at most 6 decimals, no binary noise.
pub fn format_usd(usd: f64) -> String {
    let text = format!("{usd:.6}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    text.to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(args: Vec<OsString>) -> Vec<String> {
        args.into_iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    #[test]
    fn the_default_is_the_documented_stream_json_command_line() {
        assert_eq!(
            text(Launch::default().args()),
            super::super::process::STREAM_JSON_ARGS
        );
    }

    #[test]
    fn every_setting_has_its_flag() {
        let launch = Launch {
            resume: Some("id".into()),
            permission_mode: PermissionMode::Plan,
            model: Some("m".into()),
            tools: Some(vec![]),
            allowed_tools: vec!["Bash(git *)".into(), "Edit".into()],
            disallowed_tools: vec!["Write".into()],
            max_turns: Some(4),
            max_budget_usd: Some(0.25),
            fork_session: true,
            system_prompt: Some(("be brief".into(), SystemPromptMode::Replace)),
            mcp_config: Some("/tmp/m.json".into()),
            json_schema: Some("{}".into()),
            env: vec![("A".into(), "b".into())],
            partial_messages: true,
        };
        let args = text(launch.args());
        assert_eq!(
            args[5..],
            [
                "--permission-mode",
                "plan",
                "--permission-prompt-tool",
                "stdio",
                "--resume",
                "id",
                "--model",
                "m",
                "--tools",
                "",
                "--allowedTools",
                "Bash(git *),Edit",
                "--disallowedTools",
                "Write",
                "--max-turns",
                "4",
                "--max-budget-usd",
                "0.25",
                "--system-prompt",
                "be brief",
                "--mcp-config",
                "/tmp/m.json",
                "--json-schema",
                "{}",
                "--fork-session",
                "--include-partial-messages"
            ]
        );
    }

    #[test]
    fn dollars_go_without_noise() {
        assert_eq!(format_usd(0.1 + 0.2), "0.3");
        assert_eq!(format_usd(2.0), "2");
        assert_eq!(format_usd(0.000188), "0.000188");
    }
}
