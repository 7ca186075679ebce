//! `ao-show-config`: every resolved setting and where it came from (flag,
//! env, default), so a surprising answer from another command can be
//! traced to its cause. Never contacts the session manager.

use std::process::ExitCode;

use clap::Parser;

use serde::Serialize;

use crate::agents::{Catalog, SearchDir};
use crate::config::{AgentsArgs, CommonArgs, Config, RunnerArgs, Setting};

use super::{CommandError, main_with, print_json, print_line};

const PROGRAM: &str = "ao-show-config";

/// Print every setting the ao-* commands would use here, and where each came from.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "One line per setting: NAME = VALUE (flag|env|default). A flag beats an AGENT_ORCHESTRATOR_* environment variable, ",
        "which beats the default. The runner's flags (--claude-path, --model, --legacy-events, --agents-dir) are accepted so that their effect can be seen. ",
        "The last line lists the folders searched for agent definitions, in order.\n\n",
        "Examples:\n  ao-show-config\n  ao-show-config --json | jq -r .session_manager_url.value\n  AGENT_ORCHESTRATOR_SESSION_MANAGER_URL=http://127.0.0.1:9000 ao-show-config\n\n",
        exit_codes!(),
    ),
)]
struct ShowConfigArgs {
    /// Print {"SETTING":{"value":..,"source":"flag"|"env"|"default"},...} instead of lines
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    runner: RunnerArgs,

    #[command(flatten)]
    agents: AgentsArgs,
}

/// The `--json` answer: every setting, and the agent folders searched.
#[derive(Serialize)]
struct ShowConfig<'a> {
    #[serde(flatten)]
    config: &'a Config,
    agent_folders: Vec<SearchDir>,
}

/// `main` of `ao-show-config`.
pub fn main() -> ExitCode {
    main_with::<ShowConfigArgs>(PROGRAM, |args, _| run(args))
}

fn run(args: &ShowConfigArgs) -> Result<(), CommandError> {
    let config = Config::load(&args.common, Some(&args.runner))?.with_agents_args(&args.agents);
    let folders = agent_folders(&config);
    if args.json {
        print_json(&ShowConfig {
            config: &config,
            agent_folders: folders,
        })
    } else {
        print_line(&format!(
            "{}
{}",
            lines(&config),
            folders_line(&folders)
        ))
    }
}

fn agent_folders(config: &Config) -> Vec<SearchDir> {
    Catalog::for_project(
        &config.project_dir.value,
        config.agents_dir.value.as_deref(),
    )
    .dirs()
    .to_vec()
}

/// `agent_folders = DIR (format), ... (searched in this order)`.
fn folders_line(folders: &[SearchDir]) -> String {
    let list: Vec<String> = folders
        .iter()
        .map(|d| {
            let format = match d.format {
                crate::agents::AgentFormat::Folder => "NAME/agent.json",
                crate::agents::AgentFormat::Subagent => "NAME.md",
            };
            format!("{} ({format})", d.path.display())
        })
        .collect();
    format!(
        "agent_folders = {} (searched in this order)",
        list.join(", ")
    )
}

/// `NAME = VALUE (source)` for every setting, in the order of `Config`.
fn lines(c: &Config) -> String {
    fn line<T>(name: &str, setting: &Setting<T>, value: String) -> String {
        format!("{name} = {value} ({})", setting.source.describe())
    }
    let path = |p: &std::path::Path| p.display().to_string();
    [
        line(
            "session_manager_url",
            &c.session_manager_url,
            c.session_manager_url.value.clone(),
        ),
        line("project_dir", &c.project_dir, path(&c.project_dir.value)),
        line("sessions_dir", &c.sessions_dir, path(&c.sessions_dir.value)),
        line("claude_path", &c.claude_path, path(&c.claude_path.value)),
        line(
            "model",
            &c.model,
            c.model
                .value
                .clone()
                .unwrap_or_else(|| "(the CLI's own)".to_owned()),
        ),
        line(
            "legacy_events",
            &c.legacy_events,
            c.legacy_events.value.to_string(),
        ),
        line("autostart", &c.autostart, c.autostart.value.to_string()),
        line(
            "agents_dir",
            &c.agents_dir,
            c.agents_dir
                .value
                .as_deref()
                .map_or_else(|| "(none)".to_owned(), path),
        ),
    ]
    .join("\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_line_per_setting_with_its_source() {
        let cwd = std::env::temp_dir();
        let env = |k: &str| (k == crate::config::ENV_MODEL).then(|| "m1".to_owned());
        let common = CommonArgs {
            session_manager_url: Some("http://127.0.0.1:9".into()),
            ..Default::default()
        };
        let config = Config::resolve(&common, None, env, &cwd).unwrap();
        let text = lines(&config);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 8);
        assert_eq!(lines[0], "session_manager_url = http://127.0.0.1:9 (flag)");
        assert_eq!(lines[4], "model = m1 (env)");
        assert_eq!(lines[6], "autostart = true (default)");
    }
}
