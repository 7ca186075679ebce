//! What a run runs: its agent (the one asked for, or the one the session
//! recorded), its settings (per-run flags over the agent's, over the
//! environment's model), and the CLI's command line built from them. An
//! MCP config is written to a file only the user can read, which lives as
//! long as the run.

use std::io::Write;

use tempfile::NamedTempFile;

use crate::agents::settings::{PermissionMode, SystemPromptMode};
use crate::agents::{Agent, RunSettings};
use crate::claude::launch::{Launch, MAX_SYSTEM_PROMPT_BYTES};

/// Why the settings cannot be used; bad input, so exit 2.
#[derive(Debug, thiserror::Error)]
pub enum SetupError {
    #[error(
        "session '{name}' runs {}; ao-resume cannot switch it to agent '{asked}' (start a new session: `ao-new NEW_NAME --agent {asked}`)",
        recorded.as_deref().map_or_else(|| "no agent".to_owned(), |a| format!("agent '{a}'"))
    )]
    AgentSwitch {
        name: String,
        recorded: Option<String>,
        asked: String,
    },
    #[error(
        "the system prompt is {0} bytes; at most {MAX_SYSTEM_PROMPT_BYTES} fit on the CLI's command line"
    )]
    SystemPromptTooLong(usize),
    #[error("cannot write the MCP config for the CLI: {0}")]
    McpFile(std::io::Error),
}

/// The agent of a run: on a resume, the session's own (asking for another
/// is refused); on a new session, the one asked for.
pub fn agent_name(
    session: &str,
    resume: bool,
    asked: Option<&str>,
    recorded: Option<&str>,
) -> Result<Option<String>, SetupError> {
    match (resume, asked) {
        (true, Some(asked)) if Some(asked) != recorded => Err(SetupError::AgentSwitch {
            name: session.to_owned(),
            recorded: recorded.map(str::to_owned),
            asked: asked.to_owned(),
        }),
        (true, _) => Ok(recorded.map(str::to_owned)),
        (false, asked) => Ok(asked.map(str::to_owned)),
    }
}

/// The CLI's command line for a run, and the private MCP file it names.
pub struct Prepared {
    pub launch: Launch,
    pub settings: RunSettings,
    /// Removed when dropped, after the run.
    _mcp_file: Option<NamedTempFile>,
}

/// Merges the settings (`flags` > the agent's > `env_model`) and builds
/// the command line.
pub fn prepare(
    agent: Option<&Agent>,
    flags: RunSettings,
    env_model: Option<String>,
    resume: Option<String>,
) -> Result<Prepared, SetupError> {
    let base = RunSettings {
        model: env_model,
        ..RunSettings::default()
    };
    let agent_settings = agent.map(|a| a.settings.clone()).unwrap_or_default();
    let settings = flags.over(agent_settings).over(base);
    if let Some(prompt) = &settings.system_prompt
        && prompt.len() > MAX_SYSTEM_PROMPT_BYTES
    {
        return Err(SetupError::SystemPromptTooLong(prompt.len()));
    }
    let mcp_file = settings
        .mcp_config
        .as_ref()
        .map(|config| private_file(&config.document().to_string()))
        .transpose()
        .map_err(SetupError::McpFile)?;
    let launch = Launch {
        resume,
        permission_mode: settings
            .permission_mode
            .unwrap_or(PermissionMode::BypassPermissions),
        model: settings.model.clone(),
        tools: settings.tools.clone(),
        allowed_tools: settings.allowed_tools.clone().unwrap_or_default(),
        disallowed_tools: settings.disallowed_tools.clone().unwrap_or_default(),
        max_turns: settings.max_turns,
        max_budget_usd: settings.max_budget_usd,
        fork_session: false,
        system_prompt: settings.system_prompt.clone().map(|text| {
            (
                text,
                settings
                    .system_prompt_mode
                    .unwrap_or(SystemPromptMode::Append),
            )
        }),
        mcp_config: mcp_file.as_ref().map(|f| f.path().to_owned()),
        json_schema: settings.output_schema.as_ref().map(|s| s.to_string()),
        env: Vec::new(),
        partial_messages: false,
    };
    Ok(Prepared {
        launch,
        settings,
        _mcp_file: mcp_file,
    })
}

/// A temporary file with `text`, readable by this user only (tempfile
/// creates it with mode 0600).
fn private_file(text: &str) -> std::io::Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix("ao-mcp-")
        .suffix(".json")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_resume_keeps_its_agent_and_refuses_another() {
        assert_eq!(
            agent_name("s", true, None, Some("a")).unwrap().as_deref(),
            Some("a")
        );
        assert_eq!(
            agent_name("s", true, Some("a"), Some("a"))
                .unwrap()
                .as_deref(),
            Some("a")
        );
        let err = agent_name("s", true, Some("b"), Some("a"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("agent 'a'") && err.contains("'b'"), "{err}");
        assert!(agent_name("s", true, Some("b"), None).is_err());
        assert_eq!(
            agent_name("s", false, Some("b"), None).unwrap().as_deref(),
            Some("b")
        );
    }

    #[test]
    fn the_mcp_config_goes_to_a_private_file() {
        use std::os::unix::fs::PermissionsExt;
        let flags = RunSettings {
            mcp_config: Some(crate::agents::settings::McpConfig {
                servers: serde_json::from_str(r#"{"s":{"command":"x","env":{"TOKEN":"t"}}}"#)
                    .unwrap(),
                source: "m.json".into(),
            }),
            ..RunSettings::default()
        };
        let prepared = prepare(None, flags, Some("env-model".into()), None).unwrap();
        let path = prepared.launch.mcp_config.clone().unwrap();
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.contains("TOKEN"));
        assert_eq!(prepared.launch.model.as_deref(), Some("env-model"));
        drop(prepared);
        assert!(!path.exists(), "removed after the run");
    }
}
