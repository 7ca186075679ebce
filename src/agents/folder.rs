//! The original system's agent folders: `<dir>/<name>/agent.json`
//! (`{"name", "description", ...}`), `agent.system-prompt.md` (the system
//! prompt) and `agent.mcp.json` (`{"mcpServers": {...}}`), all optional but
//! the first.

use std::path::Path;

use serde::Deserialize;

use super::fields::Fields;
use super::settings::{McpConfig, read_json, strip_position};
use super::{Agent, AgentFormat, Level};

pub(super) const AGENT_JSON: &str = "agent.json";
const SYSTEM_PROMPT: &str = "agent.system-prompt.md";
const MCP_JSON: &str = "agent.mcp.json";

#[derive(Deserialize)]
struct AgentJson {
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    description: String,
    #[serde(flatten)]
    fields: Fields,
}

/// Reads the agent in folder `dir`; `None` when it holds no `agent.json`.
pub(super) fn read(dir: &Path, level: Level) -> Option<Result<Agent, String>> {
    let file = dir.join(AGENT_JSON);
    let text = match crate::bounded::read_to_string(&file, crate::bounded::SETTINGS) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return None,
        Err(e) => return Some(Err(format!("{}: {e}", file.display()))),
    };
    Some(parse(dir, &file, &text, level))
}

fn parse(dir: &Path, file: &Path, text: &str, level: Level) -> Result<Agent, String> {
    let json: AgentJson = serde_json::from_str(text).map_err(|e| {
        format!(
            "{}:{}: {}",
            file.display(),
            e.line(),
            strip_position(&e.to_string())
        )
    })?;
    let folder = dir
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name = json.name.unwrap_or_else(|| folder.clone());
    if name != folder {
        return Err(format!(
            "{}: the name '{name}' differs from its folder's name '{folder}'",
            file.display()
        ));
    }
    let checked = json.fields.check(file, text)?;
    let mut settings = checked.settings;
    let prompt_file = dir.join(SYSTEM_PROMPT);
    settings.system_prompt =
        match crate::bounded::read_to_string(&prompt_file, crate::bounded::PROMPT) {
            Ok(prompt) => Some(prompt.trim().to_owned()).filter(|p| !p.is_empty()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(format!("{}: {e}", prompt_file.display())),
        };
    let mcp_file = dir.join(MCP_JSON);
    if mcp_file.exists() {
        settings.mcp_config = Some(McpConfig::from_value(read_json(&mcp_file)?, &mcp_file)?);
    }
    Ok(Agent {
        name,
        description: json.description.trim().to_owned(),
        format: AgentFormat::Folder,
        file: file.to_owned(),
        level,
        active: checked.active,
        settings,
    })
}
