//! Settings for the commands: each resolved as flag > environment variable >
//! default, and each remembering where it came from so `ao-show-config` can
//! say so.

use std::path::{Path, PathBuf};

use clap::Args;
use serde::Serialize;

/// The session manager a fresh install talks to.
pub const DEFAULT_SESSION_MANAGER_URL: &str = "http://127.0.0.1:8765";
/// Where, under the project directory, backups go by default.
pub const DEFAULT_SESSIONS_SUBDIR: &str = ".agent-orchestrator/agent-sessions";

pub const ENV_SESSION_MANAGER_URL: &str = "AGENT_ORCHESTRATOR_SESSION_MANAGER_URL";
pub const ENV_PROJECT_DIR: &str = "AGENT_ORCHESTRATOR_PROJECT_DIR";
pub const ENV_SESSIONS_DIR: &str = "AGENT_ORCHESTRATOR_SESSIONS_DIR";
pub const ENV_CLAUDE_PATH: &str = "AGENT_ORCHESTRATOR_CLAUDE_PATH";
pub const ENV_MODEL: &str = "AGENT_ORCHESTRATOR_MODEL";
pub const ENV_LEGACY_EVENTS: &str = "AGENT_ORCHESTRATOR_LEGACY_EVENTS";
pub const ENV_AUTOSTART: &str = "AGENT_ORCHESTRATOR_AUTOSTART";
pub const ENV_AGENTS_DIR: &str = "AGENT_ORCHESTRATOR_AGENTS_DIR";
/// Set by a runner for its CLI: the path of its session's `.meta.json`, so
/// that a session started from inside that run (by `ao-new` in a tool
/// call, or through `ao-mcp`) records it as its parent.
pub const ENV_PARENT_META: &str = "AGENT_ORCHESTRATOR_PARENT_META";

/// Where a setting's value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    Flag,
    Env,
    Default,
}

impl Source {
    /// How `ao-show-config` names the source.
    pub fn describe(self) -> &'static str {
        match self {
            Source::Flag => "flag",
            Source::Env => "env",
            Source::Default => "default",
        }
    }
}

/// A resolved value and its source.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Setting<T> {
    pub value: T,
    pub source: Source,
}

/// Flags every command shares.
#[derive(Debug, Clone, Default, Args)]
pub struct CommonArgs {
    /// Project directory the session belongs to [env: AGENT_ORCHESTRATOR_PROJECT_DIR] [default: current directory]
    #[arg(long, value_name = "DIR")]
    pub project_dir: Option<PathBuf>,

    /// Folder for the .jsonl/.meta.json backups [env: AGENT_ORCHESTRATOR_SESSIONS_DIR] [default: <project-dir>/.agent-orchestrator/agent-sessions]
    #[arg(long, value_name = "DIR")]
    pub sessions_dir: Option<PathBuf>,

    /// Session manager API [env: AGENT_ORCHESTRATOR_SESSION_MANAGER_URL] [default: http://127.0.0.1:8765]
    #[arg(long, value_name = "URL")]
    pub session_manager_url: Option<String>,
}

/// Flags of the runner (`ao-new`, `ao-resume`).
#[derive(Debug, Clone, Default, Args)]
pub struct RunnerArgs {
    /// The claude executable [env: AGENT_ORCHESTRATOR_CLAUDE_PATH] [default: claude on PATH]
    #[arg(long, value_name = "PATH")]
    pub claude_path: Option<PathBuf>,

    /// Model for the CLI's --model [env: AGENT_ORCHESTRATOR_MODEL] [default: the CLI's own]
    #[arg(long, value_name = "MODEL")]
    pub model: Option<String>,

    /// Send session_stop instead of run_completed, and no run_start, for session managers that predate the rename [env: AGENT_ORCHESTRATOR_LEGACY_EVENTS=1]
    #[arg(long)]
    pub legacy_events: bool,
}

/// The flag of the commands that read agent definitions (`ao-new`,
/// `ao-resume`, `ao-list-agents`, `ao-show-config`).
#[derive(Debug, Clone, Default, Args)]
pub struct AgentsArgs {
    /// A folder of agent definitions (NAME/agent.json) searched before the project's and the user's [env: AGENT_ORCHESTRATOR_AGENTS_DIR]
    #[arg(long, value_name = "DIR")]
    pub agents_dir: Option<PathBuf>,
}

/// Every setting, resolved.
#[derive(Debug, Clone, Serialize)]
pub struct Config {
    pub session_manager_url: Setting<String>,
    pub project_dir: Setting<PathBuf>,
    pub sessions_dir: Setting<PathBuf>,
    pub claude_path: Setting<PathBuf>,
    pub model: Setting<Option<String>>,
    pub legacy_events: Setting<bool>,
    pub autostart: Setting<bool>,
    /// Searched for agent definitions before the project's and the user's.
    pub agents_dir: Setting<Option<PathBuf>>,
    /// Whether `AGENT_ORCHESTRATOR_TOKEN` is set (its value is never shown).
    pub token_set: Setting<bool>,
}

/// A setting that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("project directory {path}: {reason}")]
    ProjectDir { path: PathBuf, reason: String },
    #[error("cannot read the current directory: {0}")]
    Cwd(std::io::Error),
    #[error("{var}={value:?} is not a yes/no value (use 1/0, true/false, yes/no, on/off)")]
    Bool { var: &'static str, value: String },
    #[error("session manager URL {0:?} must start with http:// or https://")]
    Url(String),
}

fn pick<T>(flag: Option<T>, env: Option<T>, default: impl FnOnce() -> T) -> Setting<T> {
    match (flag, env) {
        (Some(value), _) => Setting {
            value,
            source: Source::Flag,
        },
        (None, Some(value)) => Setting {
            value,
            source: Source::Env,
        },
        (None, None) => Setting {
            value: default(),
            source: Source::Default,
        },
    }
}

fn parse_bool(var: &'static str, value: String) -> Result<bool, ConfigError> {
    match value.trim().to_ascii_lowercase().as_str() {
        "1" | "true" | "yes" | "on" => Ok(true),
        "0" | "false" | "no" | "off" => Ok(false),
        _ => Err(ConfigError::Bool { var, value }),
    }
}

fn absolute(base: &Path, path: PathBuf) -> PathBuf {
    if path.is_absolute() {
        path
    } else {
        base.join(path)
    }
}

impl Config {
    /// Resolves from the process's flags, environment and current directory.
    pub fn load(common: &CommonArgs, runner: Option<&RunnerArgs>) -> Result<Config, ConfigError> {
        let cwd = std::env::current_dir().map_err(ConfigError::Cwd)?;
        Config::resolve(common, runner, |key| std::env::var(key).ok(), &cwd)
    }

    /// Resolves with an explicit environment lookup and working directory.
    /// Empty environment values count as unset.
    pub fn resolve(
        common: &CommonArgs,
        runner: Option<&RunnerArgs>,
        env: impl Fn(&str) -> Option<String>,
        cwd: &Path,
    ) -> Result<Config, ConfigError> {
        let env = |key: &str| env(key).filter(|v| !v.trim().is_empty());

        let url = pick(
            common.session_manager_url.clone(),
            env(ENV_SESSION_MANAGER_URL),
            || DEFAULT_SESSION_MANAGER_URL.to_owned(),
        );
        let lower = url.value.to_ascii_lowercase();
        if !lower.starts_with("http://") && !lower.starts_with("https://") {
            return Err(ConfigError::Url(url.value));
        }

        let mut project_dir = pick(
            common.project_dir.clone(),
            env(ENV_PROJECT_DIR).map(PathBuf::from),
            || cwd.to_owned(),
        );
        let raw = absolute(cwd, project_dir.value.clone());
        project_dir.value = raw.canonicalize().map_err(|e| ConfigError::ProjectDir {
            path: raw.clone(),
            reason: e.to_string(),
        })?;
        if !project_dir.value.is_dir() {
            return Err(ConfigError::ProjectDir {
                path: raw,
                reason: "not a directory".to_owned(),
            });
        }

        let mut sessions_dir = pick(
            common.sessions_dir.clone(),
            env(ENV_SESSIONS_DIR).map(PathBuf::from),
            || project_dir.value.join(DEFAULT_SESSIONS_SUBDIR),
        );
        sessions_dir.value = absolute(cwd, sessions_dir.value);

        let runner = runner.cloned().unwrap_or_default();
        let claude_path = pick(
            runner.claude_path,
            env(ENV_CLAUDE_PATH).map(PathBuf::from),
            || PathBuf::from("claude"),
        );
        let model = pick(runner.model.map(Some), env(ENV_MODEL).map(Some), || None);
        let legacy_events = match (runner.legacy_events, env(ENV_LEGACY_EVENTS)) {
            (true, _) => Setting {
                value: true,
                source: Source::Flag,
            },
            (false, Some(v)) => Setting {
                value: parse_bool(ENV_LEGACY_EVENTS, v)?,
                source: Source::Env,
            },
            (false, None) => Setting {
                value: false,
                source: Source::Default,
            },
        };
        let autostart = match env(ENV_AUTOSTART) {
            Some(v) => Setting {
                value: parse_bool(ENV_AUTOSTART, v)?,
                source: Source::Env,
            },
            None => Setting {
                value: true,
                source: Source::Default,
            },
        };
        let mut agents_dir = pick(
            None,
            env(ENV_AGENTS_DIR).map(|d| Some(PathBuf::from(d))),
            || None,
        );
        agents_dir.value = agents_dir.value.map(|d| absolute(cwd, d));
        let token_set = match env(crate::token::ENV_TOKEN) {
            Some(_) => Setting {
                value: true,
                source: Source::Env,
            },
            None => Setting {
                value: false,
                source: Source::Default,
            },
        };
        Ok(Config {
            token_set,
            agents_dir,
            session_manager_url: url,
            project_dir,
            sessions_dir,
            claude_path,
            model,
            legacy_events,
            autostart,
        })
    }

    /// Applies `--agents-dir`, which beats the environment variable.
    pub fn with_agents_args(mut self, args: &AgentsArgs) -> Config {
        if let Some(dir) = &args.agents_dir {
            let dir = match std::env::current_dir() {
                Ok(cwd) => absolute(&cwd, dir.clone()),
                Err(_) => dir.clone(),
            };
            self.agents_dir = Setting {
                value: Some(dir),
                source: Source::Flag,
            };
        }
        self
    }

    /// The project directory as the text the API stores.
    pub fn project_dir_text(&self) -> String {
        self.project_dir.value.to_string_lossy().into_owned()
    }

    /// True when the URL is the default loopback address, the only case in
    /// which the runner may start a session manager itself.
    pub fn is_default_url(&self) -> bool {
        self.session_manager_url.value.trim_end_matches('/') == DEFAULT_SESSION_MANAGER_URL
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn resolve(
        common: CommonArgs,
        runner: Option<RunnerArgs>,
        env: &[(&str, &str)],
    ) -> Result<Config, ConfigError> {
        let env: HashMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let cwd = std::env::temp_dir();
        Config::resolve(&common, runner.as_ref(), |k| env.get(k).cloned(), &cwd)
    }

    #[test]
    fn defaults_when_nothing_is_set() {
        let c = resolve(CommonArgs::default(), None, &[]).unwrap();
        assert_eq!(c.session_manager_url.value, DEFAULT_SESSION_MANAGER_URL);
        assert_eq!(c.session_manager_url.source, Source::Default);
        let tmp = std::env::temp_dir().canonicalize().unwrap();
        assert_eq!(c.project_dir.value, tmp);
        assert_eq!(c.sessions_dir.value, tmp.join(DEFAULT_SESSIONS_SUBDIR));
        assert_eq!(c.claude_path.value, PathBuf::from("claude"));
        assert_eq!(c.model.value, None);
        assert!(!c.legacy_events.value);
        assert!(c.autostart.value);
        assert!(c.is_default_url());
    }

    #[test]
    fn flag_beats_env_beats_default() {
        let env = [
            (ENV_SESSION_MANAGER_URL, "http://env:1"),
            (ENV_MODEL, "env-model"),
            (ENV_SESSIONS_DIR, "rel/sessions"),
        ];
        let c = resolve(
            CommonArgs {
                session_manager_url: Some("http://flag:2".into()),
                ..Default::default()
            },
            Some(RunnerArgs::default()),
            &env,
        )
        .unwrap();
        assert_eq!(c.session_manager_url.value, "http://flag:2");
        assert_eq!(c.session_manager_url.source, Source::Flag);
        assert_eq!(c.model.value.as_deref(), Some("env-model"));
        assert_eq!(c.model.source, Source::Env);
        assert_eq!(
            c.sessions_dir.value,
            std::env::temp_dir().join("rel/sessions")
        );
        assert_eq!(c.sessions_dir.source, Source::Env);
        assert!(!c.is_default_url());
    }

    #[test]
    fn empty_env_values_count_as_unset() {
        let c = resolve(
            CommonArgs::default(),
            None,
            &[(ENV_SESSION_MANAGER_URL, " ")],
        )
        .unwrap();
        assert_eq!(c.session_manager_url.source, Source::Default);
    }

    #[test]
    fn booleans_from_env() {
        let c = resolve(
            CommonArgs::default(),
            None,
            &[(ENV_LEGACY_EVENTS, "yes"), (ENV_AUTOSTART, "0")],
        )
        .unwrap();
        assert!(c.legacy_events.value);
        assert!(!c.autostart.value);
        let err = resolve(CommonArgs::default(), None, &[(ENV_AUTOSTART, "maybe")]).unwrap_err();
        assert!(
            err.to_string().contains("AGENT_ORCHESTRATOR_AUTOSTART"),
            "{err}"
        );
    }

    #[test]
    fn bad_values_are_refused_with_a_reason() {
        let err = resolve(
            CommonArgs {
                project_dir: Some("/definitely/not/here".into()),
                ..Default::default()
            },
            None,
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("/definitely/not/here"), "{err}");
        let err = resolve(
            CommonArgs {
                session_manager_url: Some("localhost:8765".into()),
                ..Default::default()
            },
            None,
            &[],
        )
        .unwrap_err();
        assert!(err.to_string().contains("http://"), "{err}");
    }
}
