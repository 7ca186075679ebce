//! Named agents: a system prompt, model, tools, permissions, turn limit, MCP
//! servers and answer schema under one name, so that an orchestrator hands
//! a task to "the reviewer" rather than to a blank session.
//!
//! Definitions are files in two formats, read as they are: the original
//! system's folders ([`folder`]) and Claude Code's subagent files
//! ([`subagent`]). They are searched in order: the folder named by
//! `--agents-dir` / `AGENT_ORCHESTRATOR_AGENTS_DIR`, then the project
//! (`.agent-orchestrator/agents/`, `.claude/agents/`), then the user
//! (`$XDG_CONFIG_HOME/agent-orchestrator/agents/`, `~/.claude/agents/`).
//! The first level that defines a name wins; one name defined twice at one
//! level is an error that names both files.

mod fields;
mod folder;
pub mod settings;
mod subagent;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::name::{AgentName, NameError};
pub use settings::RunSettings;

/// Where, under a project, the original system keeps its agent folders.
pub const PROJECT_FOLDERS: &str = ".agent-orchestrator/agents";
/// Where, under a project, Claude Code keeps its subagent files.
pub const PROJECT_SUBAGENTS: &str = ".claude/agents";

/// The two definition formats.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AgentFormat {
    /// `NAME/agent.json` + `agent.system-prompt.md` + `agent.mcp.json`.
    Folder,
    /// `NAME.md` with YAML front matter.
    Subagent,
}

/// Which search level a definition comes from; earlier levels win.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Level {
    /// `--agents-dir` / `AGENT_ORCHESTRATOR_AGENTS_DIR`.
    AgentsDir,
    Project,
    User,
}

/// One agent definition, read and checked. Serialized (without its
/// settings) as `ao-list-agents --json` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct Agent {
    pub name: String,
    pub description: String,
    pub format: AgentFormat,
    /// `agent.json` or the `.md` file.
    pub file: PathBuf,
    pub level: Level,
    /// False for `status: inactive`: listed, but refused for runs.
    pub active: bool,
    #[serde(skip)]
    pub settings: RunSettings,
}

/// Why an agent cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum AgentError {
    #[error(transparent)]
    Name(#[from] NameError),
    #[error("unknown agent '{name}'; {}", known_agents(known))]
    Unknown { name: String, known: Vec<String> },
    #[error(
        "agent '{name}' is inactive ({}); set its status to active to run it",
        crate::diag::shell_word(&file.to_string_lossy())
    )]
    Inactive { name: String, file: PathBuf },
    /// A definition that cannot be read: the message names the file and line.
    #[error("{0}")]
    Invalid(String),
}

fn known_agents(known: &[String]) -> String {
    if known.is_empty() {
        "no agents are defined here (see `ao-list-agents` and `ao-show-config` for where they are looked for)".to_owned()
    } else {
        format!(
            "the agents are: {} (see `ao-list-agents`)",
            known.join(", ")
        )
    }
}

/// A folder searched for definitions.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SearchDir {
    pub path: PathBuf,
    pub format: AgentFormat,
    pub level: Level,
}

/// Every agent visible here, and what could not be read.
#[derive(Debug, Default)]
pub struct Listing {
    /// The winning definition of each name, by name.
    pub agents: Vec<Agent>,
    /// One line per definition that cannot be used (file, line, reason).
    pub problems: Vec<String>,
}

/// The folders searched, in order.
#[derive(Debug, Clone)]
pub struct Catalog {
    dirs: Vec<SearchDir>,
}

/// One definition read from a folder, or the file and why it cannot be used.
type Read = Result<Agent, (PathBuf, String)>;

enum Slot {
    Ready(Box<Agent>),
    Broken(String),
}

impl Catalog {
    /// The search order for `project`, with `extra` (the agents-dir
    /// setting) first, and the user's folders from `config_home` and `home`.
    pub fn new(
        project: &Path,
        extra: Option<&Path>,
        config_home: Option<&Path>,
        home: Option<&Path>,
    ) -> Catalog {
        let dir = |path: PathBuf, format, level| SearchDir {
            path,
            format,
            level,
        };
        let mut dirs = Vec::new();
        if let Some(extra) = extra {
            dirs.push(dir(extra.to_owned(), AgentFormat::Folder, Level::AgentsDir));
        }
        dirs.push(dir(
            project.join(PROJECT_FOLDERS),
            AgentFormat::Folder,
            Level::Project,
        ));
        dirs.push(dir(
            project.join(PROJECT_SUBAGENTS),
            AgentFormat::Subagent,
            Level::Project,
        ));
        if let Some(config) = config_home {
            dirs.push(dir(
                config.join("agent-orchestrator/agents"),
                AgentFormat::Folder,
                Level::User,
            ));
        }
        if let Some(home) = home {
            dirs.push(dir(
                home.join(".claude/agents"),
                AgentFormat::Subagent,
                Level::User,
            ));
        }
        Catalog { dirs }
    }

    /// The catalog for this process: the user's folders from the
    /// environment (`XDG_CONFIG_HOME`, `HOME`).
    pub fn for_project(project: &Path, extra: Option<&Path>) -> Catalog {
        let base = directories::BaseDirs::new();
        Catalog::new(
            project,
            extra,
            base.as_ref().map(|b| b.config_dir()),
            base.as_ref().map(|b| b.home_dir()),
        )
    }

    /// The folders searched, in order.
    pub fn dirs(&self) -> &[SearchDir] {
        &self.dirs
    }

    /// Every agent, by name, and the problems found on the way.
    pub fn list(&self) -> Listing {
        let mut listing = Listing::default();
        for (_, slot) in self.slots() {
            match slot {
                Slot::Ready(agent) => listing.agents.push(*agent),
                Slot::Broken(problem) => listing.problems.push(problem),
            }
        }
        listing
    }

    /// The agent `name`, ready to run.
    pub fn find(&self, name: &str) -> Result<Agent, AgentError> {
        let name = AgentName::parse(name)?;
        let mut slots = self.slots();
        match slots.remove(name.as_str()) {
            Some(Slot::Ready(agent)) if agent.active => Ok(*agent),
            Some(Slot::Ready(agent)) => Err(AgentError::Inactive {
                name: agent.name,
                file: agent.file,
            }),
            Some(Slot::Broken(problem)) => Err(AgentError::Invalid(problem)),
            None => Err(AgentError::Unknown {
                name: name.to_string(),
                known: slots
                    .into_iter()
                    .filter_map(|(name, slot)| matches!(slot, Slot::Ready(_)).then_some(name))
                    .collect(),
            }),
        }
    }

    /// The winning definition of each name: the first level that has it.
    fn slots(&self) -> BTreeMap<String, Slot> {
        let mut slots = BTreeMap::new();
        for level in [Level::AgentsDir, Level::Project, Level::User] {
            let mut found: BTreeMap<String, Vec<Read>> = BTreeMap::new();
            for dir in self.dirs.iter().filter(|d| d.level == level) {
                for (name, read) in scan(dir) {
                    found.entry(name).or_default().push(read);
                }
            }
            for (name, mut reads) in found {
                if slots.contains_key(&name) {
                    continue; // a nearer level defines it
                }
                let slot = if reads.len() > 1 {
                    let files: Vec<String> = reads
                        .iter()
                        .map(|r| match r {
                            Ok(agent) => agent.file.display().to_string(),
                            Err((file, _)) => file.display().to_string(),
                        })
                        .collect();
                    Slot::Broken(format!(
                        "agent '{name}' is defined twice: {}; remove or rename one",
                        files.join(" and ")
                    ))
                } else {
                    match reads.remove(0) {
                        Ok(agent) => Slot::Ready(Box::new(agent)),
                        Err((_, problem)) => Slot::Broken(problem),
                    }
                };
                slots.insert(name, slot);
            }
        }
        slots
    }
}

/// The definitions in one folder, each under the name it claims.
fn scan(dir: &SearchDir) -> Vec<(String, Read)> {
    let Ok(entries) = std::fs::read_dir(&dir.path) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries.filter_map(Result::ok).map(|e| e.path()).collect();
    paths.sort();
    let mut found = Vec::new();
    for path in paths {
        let stem = path
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        let (file, read) = match dir.format {
            AgentFormat::Folder if path.is_dir() => {
                let file = path.join(folder::AGENT_JSON);
                match folder::read(&path, dir.level) {
                    Some(read) => (file, read),
                    None => continue,
                }
            }
            AgentFormat::Subagent
                if path.is_file() && path.extension().is_some_and(|e| e == "md") =>
            {
                (path.clone(), subagent::read(&path, dir.level))
            }
            _ => continue,
        };
        let name = match &read {
            Ok(agent) => agent.name.clone(),
            Err(_) => stem,
        };
        let read = match read {
            Ok(agent) => match AgentName::parse(&agent.name) {
                Ok(_) => Ok(agent),
                Err(e) => Err(format!("{}: {e}", file.display())),
            },
            Err(problem) => Err(problem),
        };
        found.push((name, read.map_err(|problem| (file, problem))));
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder_agent(root: &Path, name: &str, json: &str) {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("agent.json"), json).unwrap();
    }

    fn subagent(root: &Path, name: &str, front: &str) {
        std::fs::create_dir_all(root).unwrap();
        std::fs::write(
            root.join(format!("{name}.md")),
            format!("---\n{front}\n---\nbody\n"),
        )
        .unwrap();
    }

    struct Dirs {
        _tmp: tempfile::TempDir,
        project: PathBuf,
        config: PathBuf,
        home: PathBuf,
    }

    fn dirs() -> Dirs {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path().to_owned();
        Dirs {
            _tmp: tmp,
            project: root.join("p"),
            config: root.join("config"),
            home: root.join("home"),
        }
    }

    fn catalog(d: &Dirs, extra: Option<&Path>) -> Catalog {
        Catalog::new(&d.project, extra, Some(&d.config), Some(&d.home))
    }

    #[test]
    fn project_wins_over_user_and_the_extra_folder_over_both() {
        let d = dirs();
        subagent(
            &d.home.join(".claude/agents"),
            "rev",
            "name: rev\ndescription: user",
        );
        let cat = catalog(&d, None);
        assert_eq!(cat.find("rev").unwrap().level, Level::User);
        folder_agent(
            &d.project.join(PROJECT_FOLDERS),
            "rev",
            r#"{"name":"rev","description":"project"}"#,
        );
        let rev = cat.find("rev").unwrap();
        assert_eq!(
            (rev.level, rev.description.as_str()),
            (Level::Project, "project")
        );
        let extra = d.project.join("extra");
        folder_agent(&extra, "rev", r#"{"name":"rev","description":"extra"}"#);
        let rev = catalog(&d, Some(&extra)).find("rev").unwrap();
        assert_eq!(rev.description, "extra");
    }

    #[test]
    fn one_name_in_both_formats_at_one_level_names_both_files() {
        let d = dirs();
        folder_agent(&d.project.join(PROJECT_FOLDERS), "dup", r#"{"name":"dup"}"#);
        subagent(
            &d.project.join(PROJECT_SUBAGENTS),
            "dup",
            "name: dup\ndescription: x",
        );
        let err = catalog(&d, None).find("dup").unwrap_err().to_string();
        assert!(
            err.contains("defined twice") && err.contains("agent.json") && err.contains("dup.md"),
            "{err}"
        );
        assert_eq!(catalog(&d, None).list().problems.len(), 1);
    }

    #[test]
    fn unknown_and_inactive_agents_are_refused_with_what_exists() {
        let d = dirs();
        subagent(
            &d.project.join(PROJECT_SUBAGENTS),
            "a",
            "name: a\ndescription: x",
        );
        subagent(
            &d.project.join(PROJECT_SUBAGENTS),
            "off",
            "name: off\ndescription: x\nstatus: inactive",
        );
        let cat = catalog(&d, None);
        let err = cat.find("zzz").unwrap_err().to_string();
        assert!(
            err.contains("unknown agent 'zzz'") && err.contains("a, off"),
            "{err}"
        );
        let err = cat.find("off").unwrap_err().to_string();
        assert!(err.contains("inactive"), "{err}");
        assert!(matches!(cat.find("../x"), Err(AgentError::Name(_))));
        let listing = cat.list();
        assert_eq!(listing.agents.len(), 2);
        assert!(!listing.agents[1].active);
    }

    #[test]
    fn folder_agents_read_their_prompt_and_mcp_files() {
        let d = dirs();
        let root = d.project.join(PROJECT_FOLDERS);
        folder_agent(
            &root,
            "w",
            r#"{"name":"w","description":"d","max_turns":2}"#,
        );
        std::fs::write(root.join("w/agent.system-prompt.md"), "Be brief.\n").unwrap();
        std::fs::write(
            root.join("w/agent.mcp.json"),
            r#"{"mcpServers":{"s":{"command":"x"}}}"#,
        )
        .unwrap();
        let w = catalog(&d, None).find("w").unwrap();
        assert_eq!(w.settings.system_prompt.as_deref(), Some("Be brief."));
        assert_eq!(w.settings.max_turns, Some(2));
        assert!(w.settings.mcp_config.unwrap().servers.contains_key("s"));
        std::fs::write(root.join("w/agent.mcp.json"), r#"{"servers":{}}"#).unwrap();
        let err = catalog(&d, None).find("w").unwrap_err().to_string();
        assert!(
            err.contains("agent.mcp.json") && err.contains("mcpServers"),
            "{err}"
        );
        folder_agent(&root, "x", "{\n\"name\": \"x\",\n\"max_turns\": \"two\"\n}");
        let err = catalog(&d, None).find("x").unwrap_err().to_string();
        assert!(err.contains("x/agent.json:3: max_turns"), "{err}");
        folder_agent(&root, "y", "{\"name\": \"y\",");
        let err = catalog(&d, None).find("y").unwrap_err().to_string();
        assert!(err.contains("y/agent.json:1:"), "{err}");
    }
}
