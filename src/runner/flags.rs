//! The per-run flags of `ao-new` and `ao-resume`: an agent to run, and the
//! settings that win over the agent's. Files named by flags are read here,
//! so a bad one is refused (exit 2) before anything else happens.

use std::path::PathBuf;

use clap::Args;

use crate::agents::RunSettings;
use crate::agents::settings::{
    McpConfig, OnPermission, PermissionMode, SystemPromptMode, check_schema, parse_budget,
    read_json, split_tools,
};

/// The flags; each overrides the agent's setting of the same name.
#[derive(Debug, Clone, Default, Args)]
pub struct RunFlags {
    /// Run the agent AGENT (its system prompt, model, tools, MCP servers...; see ao-list-agents). A resume runs the session's own agent
    #[arg(long, value_name = "AGENT", help_heading = "Agent")]
    pub agent: Option<String>,

    /// The only built-in tools offered, comma-separated ("" for none), e.g. Read,Grep
    #[arg(long, value_name = "TOOLS", help_heading = "Agent")]
    pub tools: Option<String>,

    /// Permission rules that pre-approve tools, comma-separated, e.g. "Bash(git *),Edit" (they limit nothing: see --tools)
    #[arg(long, value_name = "RULES", help_heading = "Agent")]
    pub allowed_tools: Option<String>,

    /// Permission rules that deny tools, comma-separated, e.g. "Bash(rm *)"
    #[arg(long, value_name = "RULES", help_heading = "Agent")]
    pub disallowed_tools: Option<String>,

    /// acceptEdits, auto, bypassPermissions (the default), default, dontAsk, manual or plan; any but bypassPermissions asks before tools run (see --on-permission)
    #[arg(long, value_name = "MODE", value_parser = parse_mode, help_heading = "Agent")]
    pub permission_mode: Option<PermissionMode>,

    /// Who answers permission requests (any mode but bypassPermissions): ask (the default: a person or the parent agent, through ao-approve/ao-deny/ao-answer, the dashboard or the API), allow or deny (at once, for unattended runs)
    #[arg(long, value_name = "POLICY", value_parser = parse_on_permission, help_heading = "Agent")]
    pub on_permission: Option<OnPermission>,

    /// Deny a permission request nobody answered within SECONDS [default: 1800; 0: wait for ever]
    #[arg(long, value_name = "SECONDS", help_heading = "Agent")]
    pub permission_timeout: Option<u64>,

    /// End the run with an error after N agentic turns
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..), help_heading = "Agent")]
    pub max_turns: Option<u32>,

    /// End the run (reason budget) once it has spent USD dollars (the CLI's --max-budget-usd)
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = parse_budget, help_heading = "Agent")]
    pub max_budget_usd: Option<f64>,

    /// Read the system prompt from FILE
    #[arg(long, value_name = "FILE", help_heading = "Agent")]
    pub system_prompt_file: Option<PathBuf>,

    /// append (the default: add to Claude Code's own system prompt) or replace
    #[arg(long, value_name = "MODE", value_parser = parse_prompt_mode, help_heading = "Agent")]
    pub system_prompt_mode: Option<SystemPromptMode>,

    /// MCP servers from FILE ({"mcpServers": {...}}, Claude Code's format)
    #[arg(long, value_name = "FILE", help_heading = "Agent")]
    pub mcp_config: Option<PathBuf>,

    /// A JSON Schema (FILE) the answer must follow; stdout is then the JSON document
    #[arg(long, value_name = "FILE", help_heading = "Agent")]
    pub output_schema: Option<PathBuf>,

    /// When this run ends, resume the parent session with its result (<agent-callback session="NAME" status="...">RESULT</agent-callback>); several that end while the parent runs come in one resume. The parent: the session whose run started this one, or --parent
    #[arg(long, help_heading = "Orchestration")]
    pub callback: bool,

    /// The parent session (in this project; with --on, else the one session of that name), for a session started from outside any run: its callbacks go there, and its runs count against the parent's tree budget
    #[arg(long, value_name = "NAME", help_heading = "Orchestration")]
    pub parent: Option<String>,

    /// A budget for this session and all its descendants: each of their runs starts with --max-budget-usd set to what is left of every budget above it; once it is spent, new runs in the tree are refused and running ones stopped (reason budget). On ao-resume: a new budget
    #[arg(long, value_name = "USD", allow_hyphen_values = true, value_parser = parse_budget, help_heading = "Orchestration")]
    pub budget_usd: Option<f64>,

    /// Run in a git worktree of its own, <project>/.agent-orchestrator/worktrees/NAME, on a new branch ao/NAME (for runs in parallel that edit files); ao-resume runs there again
    #[arg(long, help_heading = "Worktree")]
    pub worktree: bool,

    /// With --worktree: the commit the branch starts from [default: HEAD]
    #[arg(long, value_name = "REF", help_heading = "Worktree")]
    pub base: Option<String>,
}

fn parse_mode(text: &str) -> Result<PermissionMode, String> {
    text.parse()
}

fn parse_on_permission(text: &str) -> Result<OnPermission, String> {
    text.parse()
}

fn parse_prompt_mode(text: &str) -> Result<SystemPromptMode, String> {
    text.parse()
}

impl RunFlags {
    /// The settings these flags give, with the files they name read and checked.
    pub fn settings(&self) -> Result<RunSettings, String> {
        let system_prompt = self
            .system_prompt_file
            .as_ref()
            .map(|path| {
                crate::bounded::read_to_string(path, crate::bounded::PROMPT)
                    .map(|text| text.trim().to_owned())
                    .map_err(|e| format!("--system-prompt-file {}: {e}", path.display()))
            })
            .transpose()?;
        let mcp_config = self
            .mcp_config
            .as_deref()
            .map(McpConfig::read)
            .transpose()?;
        let output_schema = self
            .output_schema
            .as_ref()
            .map(|path| {
                check_schema(
                    read_json(path)?,
                    &format!("--output-schema {}", path.display()),
                )
            })
            .transpose()?;
        let list = |text: &Option<String>| text.as_deref().map(split_tools);
        Ok(RunSettings {
            system_prompt,
            system_prompt_mode: self.system_prompt_mode,
            model: None,
            tools: list(&self.tools),
            allowed_tools: list(&self.allowed_tools),
            disallowed_tools: list(&self.disallowed_tools),
            permission_mode: self.permission_mode,
            max_turns: self.max_turns,
            max_budget_usd: self.max_budget_usd,
            mcp_config,
            output_schema,
            worktree: self.worktree.then_some(true),
            on_permission: self.on_permission,
            permission_timeout: self.permission_timeout,
        })
    }
}
