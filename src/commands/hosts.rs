//! `ao-hosts`: the machines that run sessions for the session manager (its
//! own, and each `ao-host`), whether each is online, and how full.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::wire::{Host, HostsAnswer};

use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-hosts";

/// The hosts that run sessions: name, online, runs running of its capacity, labels and folders.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "One line per host. `local` is the session manager's own host (any folder of its machine); the others are ao-host processes. ",
        "Send a run to one with `ao-new NAME --on HOST_OR_LABEL`.\n\n",
        "Examples:\n  ao-hosts\n  ao-hosts --json | jq '.hosts[] | select(.online) | .name'\n\n",
        exit_codes!(),
    ),
)]
struct HostsArgs {
    /// Print {"hosts":[{name,labels,projects,capacity,running,claude_version,last_seen,online,embedded}]}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-hosts`.
pub fn main() -> ExitCode {
    main_with::<HostsArgs>(PROGRAM, run)
}

fn run(args: &HostsArgs, diag: Diag) -> Result<(), CommandError> {
    let ctx = Ctx::load(&args.common, diag)?;
    let hosts = block_on(ctx.client.list_hosts())??;
    if args.json {
        return print_json(&HostsAnswer { hosts });
    }
    if hosts.is_empty() {
        return print_line(
            "no host: start ao-host on a machine, or run the session manager without --no-local-runs",
        );
    }
    for line in table(&hosts) {
        print_line(&line)?;
    }
    Ok(())
}

/// The hosts as aligned lines, a header first.
fn table(hosts: &[Host]) -> Vec<String> {
    let rows: Vec<[String; 6]> = hosts
        .iter()
        .map(|h| {
            [
                h.name.clone(),
                if h.online { "online" } else { "offline" }.to_owned(),
                format!("{}/{}", h.running, h.capacity),
                if h.labels.is_empty() {
                    "-".to_owned()
                } else {
                    h.labels.join(",")
                },
                if h.embedded {
                    "(any folder)".to_owned()
                } else {
                    h.projects.join(",")
                },
                h.claude_version.clone().unwrap_or_else(|| "-".to_owned()),
            ]
        })
        .collect();
    super::columns(
        ["HOST", "STATUS", "RUNS", "LABELS", "FOLDERS", "CLAUDE"],
        &rows,
    )
}
