//! `ao-approve NAME [REQUEST_ID] [--always]`: lets a waiting tool call run.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;

use super::decide::{Answer, decide, who};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-approve";

/// Allow the tool call session NAME waits for
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Without REQUEST_ID: the only request waiting (several: exit 2, listing them; none: exit 1). ",
        "See them with ao-requests NAME. Prints NAME: allowed REQUEST_ID. A question is answered with ao-answer.\n\n",
        "Examples:\n  ao-approve worker-1\n  ao-approve worker-1 8f1c2a4e-... --always\n\n",
        exit_codes!(),
    ),
)]
struct ApproveArgs {
    /// Session name
    name: String,

    /// The request to allow (see ao-requests) [default: the only one waiting]
    request_id: Option<String>,

    /// Also accept the CLI's suggestion (a rule or a directory), so that it does not ask again for the like
    #[arg(long)]
    always: bool,

    /// Print {"session_name","session_id","request_id","decision","always","decided_by"}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-approve`.
pub fn main() -> ExitCode {
    main_with::<ApproveArgs>(PROGRAM, run)
}

fn run(args: &ApproveArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let answer = Answer::Allow {
        always: args.always,
    };
    let id = args.request_id.as_deref();
    let decided = block_on(decide(&ctx, &name, id, answer, who(), PROGRAM))??;
    if args.json {
        print_json(&decided)
    } else {
        print_line(&decided.line())
    }
}
