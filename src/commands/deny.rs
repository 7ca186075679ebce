//! `ao-deny NAME [REQUEST_ID] [--message TEXT]`: refuses a waiting tool
//! call (or question); the model reads the message.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;

use super::decide::{Answer, decide, who};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-deny";

/// Deny the tool call (or question) session NAME waits for
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Without REQUEST_ID: the only request waiting (several: exit 2, listing them; none: exit 1). ",
        "The run goes on: the model reads the message as the tool's result. Prints NAME: denied REQUEST_ID.\n\n",
        "Examples:\n  ao-deny worker-1 --message \"not on main; write to a branch\"\n\n",
        exit_codes!(),
    ),
)]
struct DenyArgs {
    /// Session name
    name: String,

    /// The request to deny (see ao-requests) [default: the only one waiting]
    request_id: Option<String>,

    /// Why, and what to do instead: the model reads it
    #[arg(long, short, value_name = "TEXT")]
    message: Option<String>,

    /// Print {"session_name","session_id","request_id","decision","message","decided_by"}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-deny`.
pub fn main() -> ExitCode {
    main_with::<DenyArgs>(PROGRAM, run)
}

fn run(args: &DenyArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let answer = Answer::Deny {
        message: args.message.clone(),
    };
    let id = args.request_id.as_deref();
    let decided = block_on(decide(&ctx, &name, id, answer, who(), PROGRAM))??;
    if args.json {
        print_json(&decided)
    } else {
        print_line(&decided.line())
    }
}
