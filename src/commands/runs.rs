//! `ao-runs`: the runs launched through the session manager (`POST /runs`,
//! `ao-new --on`, a resume on another host), newest first: where each is,
//! on which host, and why one failed.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::wire::{Run, RunStatus, RunsAnswer};

use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-runs";

/// Runs launched through the session manager: status, session, host, place in the queue, error.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Statuses: queued (with its place), starting, running, completed, error, stopped, interrupted, failed_to_start (with the runner's line). ",
        "Runs started by typing ao-new on a machine are sessions, not launched runs: see ao-list-sessions.\n\n",
        "Examples:\n  ao-runs\n  ao-runs --status queued\n  ao-runs --host gpu-box --json | jq '.runs[0].status'\n\n",
        exit_codes!(),
    ),
)]
struct RunsArgs {
    /// Only runs with this status
    #[arg(long, value_parser = parse_status)]
    status: Option<RunStatus>,

    /// Only the runs of this host
    #[arg(long, value_name = "HOST")]
    host: Option<String>,

    /// Only the runs of sessions with this name
    #[arg(long, value_name = "NAME")]
    session: Option<String>,

    /// Print {"runs":[{run_id,status,session_name,project_dir,host,labels,session_id,queue_position,error,runner_exit_code,created_at,...}]}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

fn parse_status(text: &str) -> Result<RunStatus, String> {
    RunStatus::parse(text).ok_or_else(|| {
        let all: Vec<&str> = RunStatus::ALL.iter().map(|s| s.as_str()).collect();
        format!("unknown status '{text}' (one of: {})", all.join(", "))
    })
}

/// `main` of `ao-runs`.
pub fn main() -> ExitCode {
    main_with::<RunsArgs>(PROGRAM, run)
}

fn run(args: &RunsArgs, diag: Diag) -> Result<(), CommandError> {
    let ctx = Ctx::load(&args.common, diag)?;
    let runs = block_on(ctx.client.list_runs(
        args.status.map(RunStatus::as_str),
        args.host.as_deref(),
        args.session.as_deref(),
    ))??;
    if args.json {
        return print_json(&RunsAnswer { runs });
    }
    if runs.is_empty() {
        return print_line("no launched run");
    }
    for line in table(&runs) {
        print_line(&line)?;
    }
    Ok(())
}

fn table(runs: &[Run]) -> Vec<String> {
    let rows: Vec<[String; 6]> = runs
        .iter()
        .map(|r| {
            let status = match r.queue_position {
                Some(place) => format!("queued #{place}"),
                None => r.status.as_str().to_owned(),
            };
            [
                r.run_id.clone(),
                status,
                r.session_name.clone(),
                r.host.clone().unwrap_or_else(|| "-".to_owned()),
                r.created_at.clone(),
                r.error.clone().unwrap_or_default(),
            ]
        })
        .collect();
    super::columns(
        ["RUN", "STATUS", "SESSION", "HOST", "CREATED", "ERROR"],
        &rows,
    )
}
