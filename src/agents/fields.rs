//! The optional fields both definition formats share (`agent.json` keys,
//! subagent front matter keys), read the same way and checked once. Front
//! matter may use Claude Code's camelCase spellings (`permissionMode`).

use std::path::Path;

use serde::Deserialize;
use serde_json::Value;

use super::settings::{
    OnPermission, PermissionMode, RunSettings, SystemPromptMode, check_budget, check_max_turns,
    check_permission_timeout, check_schema, split_tools,
};

/// `Read, Grep` or `["Read", "Grep"]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub(super) enum ToolList {
    Text(String),
    List(Vec<String>),
}

impl ToolList {
    fn into_vec(self) -> Vec<String> {
        match self {
            ToolList::Text(text) => split_tools(&text),
            ToolList::List(list) => list
                .into_iter()
                .map(|t| t.trim().to_owned())
                .filter(|t| !t.is_empty())
                .collect(),
        }
    }
}

/// The shared optional fields, as written.
#[derive(Debug, Default, Deserialize)]
pub(super) struct Fields {
    #[serde(default)]
    pub model: Option<String>,
    #[serde(default)]
    pub tools: Option<ToolList>,
    #[serde(default, alias = "allowedTools")]
    pub allowed_tools: Option<ToolList>,
    #[serde(default, alias = "disallowedTools")]
    pub disallowed_tools: Option<ToolList>,
    #[serde(default, alias = "permissionMode")]
    pub permission_mode: Option<String>,
    #[serde(default, alias = "maxTurns")]
    pub max_turns: Option<Value>,
    #[serde(default, alias = "maxBudgetUsd")]
    pub max_budget_usd: Option<Value>,
    #[serde(default, alias = "outputSchema")]
    pub output_schema: Option<Value>,
    #[serde(default, alias = "systemPromptMode")]
    pub system_prompt_mode: Option<String>,
    #[serde(default)]
    pub status: Option<String>,
    #[serde(default)]
    pub worktree: Option<bool>,
    #[serde(default, alias = "onPermission")]
    pub on_permission: Option<String>,
    #[serde(default, alias = "permissionTimeout")]
    pub permission_timeout: Option<Value>,
}

/// A checked definition's settings and whether it may run.
pub(super) struct Checked {
    pub settings: RunSettings,
    pub active: bool,
}

impl Fields {
    /// Checks every field; a problem names `file` and the line of its key in `text`.
    pub fn check(self, file: &Path, text: &str) -> Result<Checked, String> {
        let at = |key: &str, problem: String| -> String {
            match line_of(text, key) {
                Some(line) => format!("{}:{line}: {problem}", file.display()),
                None => format!("{}: {problem}", file.display()),
            }
        };
        let permission_mode = self
            .permission_mode
            .map(|m| m.parse::<PermissionMode>())
            .transpose()
            .map_err(|e| at("permission_mode", e))?;
        let max_turns = self
            .max_turns
            .as_ref()
            .map(check_max_turns)
            .transpose()
            .map_err(|e| at("max_turns", e))?;
        let max_budget_usd = self
            .max_budget_usd
            .as_ref()
            .map(|v| check_budget(v, "max_budget_usd"))
            .transpose()
            .map_err(|e| at("max_budget_usd", e))?;
        let output_schema = self
            .output_schema
            .map(|s| check_schema(s, "output_schema"))
            .transpose()
            .map_err(|e| at("output_schema", e))?;
        let system_prompt_mode = self
            .system_prompt_mode
            .map(|m| m.parse::<SystemPromptMode>())
            .transpose()
            .map_err(|e| at("system_prompt_mode", e))?;
        let on_permission = self
            .on_permission
            .map(|p| p.parse::<OnPermission>())
            .transpose()
            .map_err(|e| at("on_permission", e))?;
        let permission_timeout = self
            .permission_timeout
            .as_ref()
            .map(check_permission_timeout)
            .transpose()
            .map_err(|e| at("permission_timeout", e))?;
        let active = match self.status.as_deref() {
            None | Some("active") => true,
            Some("inactive") => false,
            Some(other) => {
                return Err(at(
                    "status",
                    format!("unknown status '{other}' (use active or inactive)"),
                ));
            }
        };
        // Claude Code's `model: inherit` means the session's own model.
        let model = self
            .model
            .map(|m| m.trim().to_owned())
            .filter(|m| !m.is_empty() && m != "inherit");
        Ok(Checked {
            settings: RunSettings {
                system_prompt: None,
                system_prompt_mode,
                model,
                tools: self.tools.map(ToolList::into_vec),
                allowed_tools: self.allowed_tools.map(ToolList::into_vec),
                disallowed_tools: self.disallowed_tools.map(ToolList::into_vec),
                permission_mode,
                max_turns,
                max_budget_usd,
                mcp_config: None,
                output_schema,
                worktree: self.worktree,
                on_permission,
                permission_timeout,
            },
            active,
        })
    }
}

/// The 1-based line on which a key starting with `prefix` (in either
/// spelling: `"permission_mode"`, `permissionMode:`) is written.
fn line_of(text: &str, prefix: &str) -> Option<usize> {
    let plain = |s: &str| -> String {
        s.chars()
            .filter(|c| *c != '_')
            .flat_map(char::to_lowercase)
            .collect()
    };
    let prefix = plain(prefix);
    text.lines()
        .position(|line| plain(line.trim_start().trim_start_matches('"')).starts_with(&prefix))
        .map(|i| i + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_field_is_reported_on_its_line() {
        let text = "{\n  \"name\": \"a\",\n  \"permission_mode\": \"yolo\"\n}";
        let fields: Fields = serde_json::from_str(text).unwrap();
        let err = fields.check(Path::new("agent.json"), text).err().unwrap();
        assert!(
            err.starts_with("agent.json:3: unknown permission mode 'yolo'"),
            "{err}"
        );
    }

    #[test]
    fn permission_fields_are_read_in_either_spelling_and_checked() {
        let text = "onPermission: deny\npermissionTimeout: 60";
        let fields: Fields = serde_norway::from_str(text).unwrap();
        let checked = fields.check(Path::new("a.md"), text).unwrap();
        assert_eq!(checked.settings.on_permission, Some(OnPermission::Deny));
        assert_eq!(checked.settings.permission_timeout, Some(60));
        let text = "{\n  \"permission_mode\": \"default\",\n  \"permission_timeout\": -1\n}";
        let fields: Fields = serde_json::from_str(text).unwrap();
        let err = fields.check(Path::new("agent.json"), text).err().unwrap();
        assert!(err.starts_with("agent.json:3: permission_timeout"), "{err}");
        let text = "on_permission: maybe";
        let fields: Fields = serde_norway::from_str(text).unwrap();
        let err = fields.check(Path::new("a.md"), text).err().unwrap();
        assert!(
            err.contains("a.md:1: unknown on_permission 'maybe'"),
            "{err}"
        );
    }

    #[test]
    fn inherit_is_no_model_and_lists_take_both_forms() {
        let text = "model: inherit\ntools: Read, Grep\ndisallowedTools: [Write]\nstatus: inactive";
        let fields: Fields = serde_norway::from_str(text).unwrap();
        let checked = fields.check(Path::new("a.md"), text).unwrap();
        assert_eq!(checked.settings.model, None);
        assert_eq!(checked.settings.tools.unwrap(), ["Read", "Grep"]);
        assert_eq!(checked.settings.disallowed_tools.unwrap(), ["Write"]);
        assert!(!checked.active);
    }
}
