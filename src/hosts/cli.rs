//! `ao-host`: makes this machine a host of a session manager (on this
//! machine or another): it runs the sessions given to it, in the folders
//! it declares and no others.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use tokio_util::sync::CancellationToken;

use super::agent::{self, HostSpec};
use super::allow::AllowList;
use super::spawn::RunnerEnv;
use crate::client::SessionClient;
use crate::config::{DEFAULT_SESSION_MANAGER_URL, ENV_CLAUDE_PATH, ENV_SESSION_MANAGER_URL};
use crate::diag::{Diag, exit, parse_args};
use crate::token::Token;
use crate::wire::{MAX_HOST_NAME, check_host_name};

const PROGRAM: &str = "ao-host";

/// Run Claude Code sessions on this machine for a session manager: register
/// with it, take the runs it gives this host, start each with ao-new or
/// ao-resume (prompt on stdin), and send heartbeats.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "Prints `host NAME registered at URL` once registered; logs go to stderr. SIGINT or SIGTERM \
ends its runs (recorded as interrupted) and takes it offline; a host without heartbeat for 30 s is offline anyway, \
and its runners end with it, however it ends. Runs reach it through POST /runs with \"host\" or \"labels\", \
`ao-new NAME --on HOST_OR_LABEL`, and `ao-resume` of its sessions from anywhere.\n\n\
Exit codes: 0 stopped on a signal; 1 it could not register, or another process took its name; 2 bad usage.\n\n\
Examples:\n  ao-host --name gpu-box --label gpu --project /srv/app --capacity 2\n  \
AGENT_ORCHESTRATOR_SESSION_MANAGER_URL=https://ao.team.example ao-host --token-file ~/.config/agent-orchestrator/token --label mac"
)]
struct HostArgs {
    /// This host's name (in ao-hosts, POST /runs "host", ao-new --on) [default: the machine's host name]
    #[arg(long)]
    name: Option<String>,

    /// A label runs may ask for (repeatable), e.g. gpu, mac, linux
    #[arg(long = "label", value_name = "LABEL")]
    labels: Vec<String>,

    /// A folder this host runs sessions in (repeatable); it runs in no other [default: the current folder]
    #[arg(long = "project", value_name = "DIR")]
    projects: Vec<PathBuf>,

    /// Runs it takes at once; more wait in the queue
    #[arg(long, default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    capacity: u32,

    /// Session manager API [env: AGENT_ORCHESTRATOR_SESSION_MANAGER_URL] [default: http://127.0.0.1:8765]
    #[arg(long, value_name = "URL")]
    session_manager_url: Option<String>,

    /// File whose first line is the token to present: the session manager's configured token, or the local token of its machine passed to this one [default: AGENT_ORCHESTRATOR_TOKEN, else this user's local token for a session manager on loopback]
    #[arg(long, value_name = "PATH")]
    token_file: Option<PathBuf>,

    /// The claude executable [env: AGENT_ORCHESTRATOR_CLAUDE_PATH] [default: claude on PATH]
    #[arg(long, value_name = "PATH")]
    claude_path: Option<PathBuf>,
}

/// The machine's host name as a host name this system takes.
fn machine_name() -> String {
    let raw = nix::unistd::gethostname()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let name: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '-'
            }
        })
        .take(MAX_HOST_NAME)
        .collect();
    let name = name.trim_start_matches(['.', '-']).to_owned();
    if name.is_empty() {
        "host".to_owned()
    } else {
        name
    }
}

/// What the arguments ask for, or why they cannot be used (exit 2).
fn spec(args: &HostArgs) -> Result<(String, Option<Token>, HostSpec, PathBuf), String> {
    let name = args.name.clone().unwrap_or_else(machine_name);
    check_host_name("--name", &name)?;
    for label in &args.labels {
        check_host_name("--label", label)?;
    }
    let projects = if args.projects.is_empty() {
        vec![std::env::current_dir().map_err(|e| format!("cannot read the current folder: {e}"))?]
    } else {
        args.projects.clone()
    };
    let projects = AllowList::of(&projects)?;
    let url = args
        .session_manager_url
        .clone()
        .or_else(|| {
            std::env::var(ENV_SESSION_MANAGER_URL)
                .ok()
                .filter(|v| !v.trim().is_empty())
        })
        .unwrap_or_else(|| DEFAULT_SESSION_MANAGER_URL.to_owned());
    let token = match &args.token_file {
        Some(path) => Some(Token::read_file(path).map_err(|e| e.to_string())?),
        None => Token::from_env().transpose().map_err(|e| e.to_string())?,
    };
    let claude = args
        .claude_path
        .clone()
        .or_else(|| {
            std::env::var_os(ENV_CLAUDE_PATH)
                .filter(|v| !v.is_empty())
                .map(PathBuf::from)
        })
        .unwrap_or_else(|| PathBuf::from("claude"));
    let spec = HostSpec {
        name,
        labels: args.labels.clone(),
        projects,
        capacity: args.capacity,
        claude_version: None,
        instance: uuid::Uuid::new_v4().to_string(),
        runner: RunnerEnv {
            url: url.clone(),
            token: token.clone(),
            claude_path: args.claude_path.clone(),
        },
    };
    Ok((url, token, spec, claude))
}

/// `main` of `ao-host`.
pub fn main() -> ExitCode {
    let diag = Diag::new(PROGRAM);
    let args: HostArgs = match parse_args(HostArgs::command(), diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let (url, token, mut spec, claude) = match spec(&args) {
        Ok(parts) => parts,
        Err(message) => {
            diag.error(message);
            return ExitCode::from(exit::USAGE);
        }
    };
    let client = match SessionClient::new(&url) {
        Ok(client) if token.is_some() => client.with_token(token),
        Ok(client) => client,
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
    };
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            diag.error(format!("cannot start: {e}"));
            return ExitCode::from(exit::FAILED);
        }
    };
    let served = runtime.block_on(async move {
        spec.claude_version = match crate::claude::process::locate(&claude) {
            Ok(path) => agent::claude_version(&path).await,
            Err(e) => {
                tracing::warn!("{e}; its runs will fail to start until it is there");
                None
            }
        };
        let stop = CancellationToken::new();
        tokio::spawn(stop_on_signal(stop.clone()));
        agent::serve(client, spec, stop, |host| {
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "host {} registered at {url}", host.name)
                .and_then(|()| stdout.flush());
        })
        .await
    });
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            diag.error(e);
            ExitCode::from(exit::FAILED)
        }
    }
}

/// Cancels `stop` on the first SIGINT or SIGTERM.
async fn stop_on_signal(stop: CancellationToken) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut int), Ok(mut term)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        return;
    };
    tokio::select! {
        _ = int.recv() => {}
        _ = term.recv() => {}
    }
    stop.cancel();
}
