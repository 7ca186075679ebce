//! `ao-deny NAME [REQUEST_ID] [--message TEXT]`: refuses a waiting tool
//! call (or question); the model reads the message.

use std::process::ExitCode;

use clap::Parser;

use crate::diag::Diag;

use super::decide::{Answer, Target};
use super::{CommandError, main_with};

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
    #[command(flatten)]
    target: Target,

    /// Why, and what to do instead: the model reads it
    #[arg(long, short, value_name = "TEXT")]
    message: Option<String>,
}

/// `main` of `ao-deny`.
pub fn main() -> ExitCode {
    main_with::<DenyArgs>(PROGRAM, run)
}

fn run(args: &DenyArgs, diag: Diag) -> Result<(), CommandError> {
    args.target.decide(
        PROGRAM,
        Answer::Deny {
            message: args.message.clone(),
        },
        diag,
    )
}
