//! The command line of `ao-sync`.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use super::{SyncReport, sync_session};
use crate::backup::{SessionFiles, list_metas};
use crate::client::SessionClient;
use crate::config::{CommonArgs, Config};
use crate::diag::{Diag, exit, parse_args};
use crate::name::SessionName;

/// Send the session manager what the backup files hold and it lacks: the
/// session record and every event a run would have posted. Safe to repeat.
#[derive(Debug, Parser)]
#[command(
    name = "ao-sync",
    version,
    after_help = "Use it after the session manager was down or lost its database.\n\
Exit codes: 0 everything synced; 1 something could not be (reason on stderr); 2 bad usage.\n\n\
Examples:\n  ao-sync worker-1\n  ao-sync --all --json"
)]
struct SyncCli {
    /// The session to sync
    #[arg(required_unless_present = "all", conflicts_with = "all")]
    name: Option<String>,

    /// Every session with backups in the sessions folder
    #[arg(long)]
    all: bool,

    /// One JSON object per session on stdout
    #[arg(long)]
    json: bool,

    /// Post session_stop instead of run_completed, and no run_start [env: AGENT_ORCHESTRATOR_LEGACY_EVENTS=1]
    #[arg(long)]
    legacy_events: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-sync`.
pub fn main() -> ExitCode {
    let diag = Diag::new("ao-sync");
    let args: SyncCli = match parse_args(SyncCli::command(), diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let names = match &args.name {
        Some(name) => match SessionName::parse(name) {
            Ok(name) => vec![name],
            Err(e) => {
                diag.error(e);
                return ExitCode::from(exit::USAGE);
            }
        },
        None => Vec::new(),
    };
    let runner = crate::config::RunnerArgs {
        legacy_events: args.legacy_events,
        ..Default::default()
    };
    let config = match Config::load(&args.common, Some(&runner)) {
        Ok(config) => config,
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
    };
    let names = if args.all {
        match backed_up_names(&config, diag) {
            Ok(names) => names,
            Err(code) => return code,
        }
    } else {
        names
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            diag.error(format!("cannot start: {e}"));
            return ExitCode::from(exit::FAILED);
        }
    };
    ExitCode::from(runtime.block_on(sync_all(&config, &names, args.json, diag)))
}

/// The sessions with a `.meta.json` in the sessions folder.
fn backed_up_names(config: &Config, diag: Diag) -> Result<Vec<SessionName>, ExitCode> {
    let metas = list_metas(&config.sessions_dir.value).map_err(|e| {
        diag.error(e);
        ExitCode::from(exit::FAILED)
    })?;
    let mut names = Vec::new();
    for meta in metas {
        match meta.map(|m| SessionName::parse(&m.session_name)) {
            Ok(Ok(name)) => names.push(name),
            Ok(Err(e)) => diag.warn(format!("skipping a backup with a bad name: {e}")),
            Err(e) => diag.warn(format!("skipping an unreadable backup: {e}")),
        }
    }
    Ok(names)
}

async fn sync_all(config: &Config, names: &[SessionName], json: bool, diag: Diag) -> u8 {
    let client = match SessionClient::new(&config.session_manager_url.value) {
        Ok(client) => client,
        Err(e) => {
            diag.error(e);
            return exit::USAGE;
        }
    };
    if let Err(e) = client.health().await {
        diag.error(e);
        return exit::FAILED;
    }
    if names.is_empty() {
        diag.note(format!(
            "no sessions with backups in {}",
            config.sessions_dir.value.display()
        ));
    }
    let mut code = exit::OK;
    let mut stdout = std::io::stdout().lock();
    for name in names {
        let files = SessionFiles::new(&config.sessions_dir.value, name);
        match sync_session(&files, &client, config.legacy_events.value).await {
            Ok(report) => {
                let line = if json {
                    serde_json::to_string(&report).unwrap_or_default()
                } else {
                    describe(&report)
                };
                let _ = writeln!(stdout, "{line}");
            }
            Err(e) => {
                diag.error(e);
                code = exit::FAILED;
            }
        }
    }
    code
}

fn describe(r: &SyncReport) -> String {
    let Some(id) = &r.session_id else {
        return format!(
            "{}: nothing to send (no run of it ever started a session)",
            r.session_name
        );
    };
    let mut parts = Vec::new();
    if r.closed_stale_run {
        parts.push("closed a run whose runner had died".to_owned());
    }
    if r.created_session {
        parts.push("created the session".to_owned());
    } else if r.updated_session {
        parts.push("updated the session".to_owned());
    }
    parts.push(format!(
        "added {} event{} ({} already there)",
        r.events_added,
        if r.events_added == 1 { "" } else { "s" },
        r.events_present
    ));
    format!(
        "{} (session-id: {id}): {}",
        r.session_name,
        parts.join(", ")
    )
}
