//! `ao-show-config`: every resolved setting and where it came from (flag,
//! env, default), so a surprising answer from another command can be
//! traced to its cause. Never contacts the session manager.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use serde::Serialize;

use crate::agents::{Catalog, SearchDir};
use crate::config::{AgentsArgs, CommonArgs, Config, RunnerArgs, Setting, Source};
use crate::paths;
use crate::private::{self, WideMode};
use crate::server::notify::redact_url;

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
        "Then come the folders searched for agent definitions, in order, and the folder of the sessions' git worktrees. token_set says whether AGENT_ORCHESTRATOR_TOKEN is set, never its value. ",
        "notify_command, notify_url, daily_budget_usd and daily_budget_project are the session manager's (--notify-command, --notify-url, --daily-budget-usd, --daily-budget-project), as it takes them from this environment when started from here (ao-new starts one by itself); ",
        "a session manager already running keeps what it was started with, which no command can see. Their secrets are not shown: the command's first word, the URL's scheme and host. ",
        "A warning on stderr names each of our files or folders (database, backups, logs) that other users may read, with the chmod that fixes it.\n\n",
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

/// The `--json` answer: every setting, the agent folders searched, and
/// the files other users may read.
#[derive(Serialize)]
struct ShowConfig<'a> {
    #[serde(flatten)]
    config: &'a Config,
    #[serde(flatten)]
    notify: &'a NotifyShown,
    agent_folders: Vec<SearchDir>,
    worktrees_dir: PathBuf,
    wide_modes: &'a [WideMode],
}

/// `main` of `ao-show-config`.
pub fn main() -> ExitCode {
    main_with::<ShowConfigArgs>(PROGRAM, |args, _| run(args))
}

fn run(args: &ShowConfigArgs) -> Result<(), CommandError> {
    let config = Config::load(&args.common, Some(&args.runner))?.with_agents_args(&args.agents);
    let notify = notify_shown(|key| std::env::var(key).ok());
    let folders = agent_folders(&config);
    let wide = wide_modes(&config);
    for w in &wide {
        eprintln!("{PROGRAM}: warning: {}", w.warning());
    }
    if args.json {
        print_json(&ShowConfig {
            config: &config,
            notify: &notify,
            agent_folders: folders,
            worktrees_dir: worktrees_dir(&config),
            wide_modes: &wide,
        })
    } else {
        print_line(&format!(
            "{}\n{}\n{}\nworktrees_dir = {} (ao-new --worktree: NAME/ there, on branch ao/NAME)",
            lines(&config),
            notify_lines(&notify),
            folders_line(&folders),
            worktrees_dir(&config).display()
        ))
    }
}

fn worktrees_dir(config: &Config) -> PathBuf {
    config
        .project_dir
        .value
        .join(crate::worktree::WORKTREES_SUBDIR)
}

fn agent_folders(config: &Config) -> Vec<SearchDir> {
    Catalog::for_project(
        &config.project_dir.value,
        config.agents_dir.value.as_deref(),
    )
    .dirs()
    .to_vec()
}

/// Our files and folders that other users may read: the data folder with
/// the database, its WAL files and the server's log, and the backups.
fn wide_modes(config: &Config) -> Vec<WideMode> {
    let mut found = Vec::new();
    let db = match std::env::var_os("AGENT_ORCHESTRATOR_DB").filter(|v| !v.is_empty()) {
        // A PostgreSQL database has no files here.
        Some(url) if url.to_string_lossy().starts_with("postgres") => None,
        Some(path) => Some(PathBuf::from(
            path.to_string_lossy().trim_start_matches("sqlite:"),
        )),
        None => paths::default_db_path().ok(),
    };
    if let Some(db) = db {
        let name = db.file_name().map(|n| n.to_string_lossy().into_owned());
        if let (Some(dir), Some(name)) = (db.parent(), name) {
            let wal = format!("{name}-wal");
            let shm = format!("{name}-shm");
            found.extend(private::wide_in(
                dir,
                &[&name, &wal, &shm, "session-manager.log"],
            ));
        }
    }
    found.extend(private::wide_in(
        &config.sessions_dir.value,
        &[".jsonl", ".meta.json", ".lock", ".log"],
    ));
    found
}

/// The session manager's notification settings as the environment gives
/// them to one started from here; `ao-show-config` asks no running one.
#[derive(Serialize)]
struct NotifyShown {
    notify_command: Setting<Option<String>>,
    notify_url: Setting<Option<String>>,
    daily_budget_usd: Setting<Option<String>>,
    daily_budget_project: Setting<Option<String>>,
}

fn notify_shown(env: impl Fn(&str) -> Option<String>) -> NotifyShown {
    let setting = |key: &str, show: &dyn Fn(&str) -> String| match env(key)
        .filter(|v| !v.trim().is_empty())
    {
        Some(value) => Setting {
            value: Some(show(value.trim())),
            source: Source::Env,
        },
        None => Setting {
            value: None,
            source: Source::Default,
        },
    };
    NotifyShown {
        notify_command: setting(crate::server::ENV_NOTIFY_COMMAND, &|command| match command
            .split_once(char::is_whitespace)
        {
            Some((program, _)) => format!("{program} …"),
            None => command.to_owned(),
        }),
        notify_url: setting(crate::server::ENV_NOTIFY_URL, &|url| {
            reqwest::Url::parse(url).map_or_else(
                |_| "(not a URL: ao-session-manager refuses it)".to_owned(),
                |url| redact_url(&url),
            )
        }),
        daily_budget_usd: setting(crate::server::ENV_DAILY_BUDGET, &|usd| {
            match crate::agents::settings::parse_budget(usd) {
                Ok(usd) => crate::claude::launch::format_usd(usd),
                Err(_) => format!("{usd} (not a positive number: ao-session-manager refuses it)"),
            }
        }),
        daily_budget_project: setting(crate::server::ENV_DAILY_BUDGET_PROJECT, &|dir| {
            dir.to_owned()
        }),
    }
}

/// `notify_command = VALUE (source; whose setting it is)`, and the URL's.
fn notify_lines(n: &NotifyShown) -> String {
    let line = |name: &str, flag: &str, var: &str, setting: &Setting<Option<String>>| {
        format!(
            "{name} = {} ({}; ao-session-manager's {flag}, from {var} when started from here)",
            setting.value.as_deref().unwrap_or("(none)"),
            setting.source.describe()
        )
    };
    [
        line(
            "notify_command",
            "--notify-command",
            crate::server::ENV_NOTIFY_COMMAND,
            &n.notify_command,
        ),
        line(
            "notify_url",
            "--notify-url",
            crate::server::ENV_NOTIFY_URL,
            &n.notify_url,
        ),
        line(
            "daily_budget_usd",
            "--daily-budget-usd",
            crate::server::ENV_DAILY_BUDGET,
            &n.daily_budget_usd,
        ),
        line(
            "daily_budget_project",
            "--daily-budget-project",
            crate::server::ENV_DAILY_BUDGET_PROJECT,
            &n.daily_budget_project,
        ),
    ]
    .join("\n")
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
        line("token_set", &c.token_set, c.token_set.value.to_string()),
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
        assert_eq!(lines.len(), 9);
        assert_eq!(lines[8], "token_set = false (default)");
        assert_eq!(lines[0], "session_manager_url = http://127.0.0.1:9 (flag)");
        assert_eq!(lines[4], "model = m1 (env)");
        assert_eq!(lines[6], "autostart = true (default)");
    }
}
