//! `ao-show-config`: every resolved setting and where it came from (flag,
//! env, default), so a surprising answer from another command can be
//! traced to its cause. Never contacts the session manager.

use std::process::ExitCode;

use clap::Parser;

use crate::config::{CommonArgs, Config, RunnerArgs, Setting};

use super::{CommandError, main_with, print_json, print_line};

const PROGRAM: &str = "ao-show-config";

/// Print every setting the ao-* commands would use here, and where each came from.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "One line per setting: NAME = VALUE (flag|env|default). A flag beats an AGENT_ORCHESTRATOR_* environment variable, ",
        "which beats the default. The runner's flags (--claude-path, --model, --legacy-events) are accepted so that their effect can be seen.\n\n",
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
}

/// `main` of `ao-show-config`.
pub fn main() -> ExitCode {
    main_with::<ShowConfigArgs>(PROGRAM, |args, _| run(args))
}

fn run(args: &ShowConfigArgs) -> Result<(), CommandError> {
    let config = Config::load(&args.common, Some(&args.runner))?;
    if args.json {
        print_json(&config)
    } else {
        print_line(&lines(&config))
    }
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
        assert_eq!(lines.len(), 7);
        assert_eq!(lines[0], "session_manager_url = http://127.0.0.1:9 (flag)");
        assert_eq!(lines[4], "model = m1 (env)");
        assert_eq!(lines[6], "autostart = true (default)");
    }
}
