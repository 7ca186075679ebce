//! The command line of `ao-hook`.

use std::io::Read;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser, Subcommand};

use super::{DEADLINE, HookInput, RUNNER_ENV, install, report};
use crate::config::{DEFAULT_SESSION_MANAGER_URL, ENV_SESSION_MANAGER_URL};
use crate::diag::{Diag, exit, parse_args};

/// Report any Claude Code session to the session manager. Claude Code runs
/// `ao-hook` (no arguments) as a command hook with the hook's JSON on stdin;
/// it prints nothing, never fails, and gives up after 2 seconds.
#[derive(Debug, Parser)]
#[command(
    name = "ao-hook",
    version,
    after_help = "Install for every session of this user:   ao-hook install\n\
Install for one project:                    ao-hook install --settings <project>/.claude/settings.json\n\
The session manager URL comes from AGENT_ORCHESTRATOR_SESSION_MANAGER_URL (default http://127.0.0.1:8765), \
its token (if it needs one) from AGENT_ORCHESTRATOR_TOKEN."
)]
struct HookCli {
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Add the hooks to a Claude Code settings file (others are kept; a .bak copy is made)
    Install {
        /// The settings file [default: ~/.claude/settings.json]
        #[arg(long, value_name = "PATH")]
        settings: Option<PathBuf>,
    },
    /// Remove the hooks from a Claude Code settings file
    Uninstall {
        /// The settings file [default: ~/.claude/settings.json]
        #[arg(long, value_name = "PATH")]
        settings: Option<PathBuf>,
    },
    /// Print the hooks settings to add by hand
    PrintSettings,
}

/// `main` of `ao-hook`.
pub fn main() -> ExitCode {
    let diag = Diag::new("ao-hook");
    let args: HookCli = match parse_args(HookCli::command(), diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match args.command {
        None => {
            run_hook();
            ExitCode::SUCCESS
        }
        Some(Command::PrintSettings) => {
            let settings = install::settings(&own_path());
            println!(
                "{}",
                serde_json::to_string_pretty(&settings).unwrap_or_default()
            );
            ExitCode::SUCCESS
        }
        Some(Command::Install { settings }) => {
            let Some(path) = settings.or_else(user_settings) else {
                diag.error("cannot find the home directory; pass --settings PATH");
                return ExitCode::from(exit::USAGE);
            };
            match install::install(&path, &own_path()) {
                Ok(added) if added.is_empty() => {
                    println!("{}: ao-hook is already installed", path.display());
                    ExitCode::SUCCESS
                }
                Ok(added) => {
                    println!("{}: added ao-hook for {}", path.display(), added.join(", "));
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    diag.error(e);
                    ExitCode::from(exit::FAILED)
                }
            }
        }
        Some(Command::Uninstall { settings }) => {
            let Some(path) = settings.or_else(user_settings) else {
                diag.error("cannot find the home directory; pass --settings PATH");
                return ExitCode::from(exit::USAGE);
            };
            match install::uninstall(&path) {
                Ok(n) => {
                    println!("{}: removed {n} ao-hook entries", path.display());
                    ExitCode::SUCCESS
                }
                Err(e) => {
                    diag.error(e);
                    ExitCode::from(exit::FAILED)
                }
            }
        }
    }
}

/// What Claude Code runs: read the hook input, report it, stay silent.
fn run_hook() {
    if std::env::var_os(RUNNER_ENV).is_some() {
        return; // ao-new / ao-resume report their own runs
    }
    let mut raw = Vec::new();
    if std::io::stdin()
        .take(16 * 1024 * 1024)
        .read_to_end(&mut raw)
        .is_err()
    {
        return;
    }
    let Ok(input) = serde_json::from_slice::<HookInput>(&raw) else {
        return;
    };
    let url = std::env::var(ENV_SESSION_MANAGER_URL)
        .ok()
        .filter(|u| !u.trim().is_empty())
        .unwrap_or_else(|| DEFAULT_SESSION_MANAGER_URL.to_owned());
    let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    else {
        return;
    };
    let outcome =
        runtime.block_on(async { tokio::time::timeout(DEADLINE, report(&input, &url)).await });
    if std::env::var_os("AO_HOOK_DEBUG").is_some() {
        eprintln!("ao-hook: {} -> {outcome:?}", input.hook_event_name);
    }
}

/// This executable's absolute path, so the settings work whatever PATH
/// Claude Code runs hooks with.
fn own_path() -> String {
    std::env::current_exe()
        .ok()
        .and_then(|p| p.canonicalize().ok())
        .map_or_else(
            || "ao-hook".to_owned(),
            |p| p.to_string_lossy().into_owned(),
        )
}

fn user_settings() -> Option<PathBuf> {
    directories::BaseDirs::new().map(|d| d.home_dir().join(".claude/settings.json"))
}
