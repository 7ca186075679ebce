//! `ao-approve NAME [REQUEST_ID] [--always]`: lets a waiting tool call run.

use std::process::ExitCode;

use clap::Parser;

use crate::diag::Diag;

use super::decide::{Answer, Target};
use super::{CommandError, main_with};

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
    #[command(flatten)]
    target: Target,

    /// Also accept the CLI's suggestion (a rule or a directory), so that it does not ask again for the like
    #[arg(long)]
    always: bool,
}

/// `main` of `ao-approve`.
pub fn main() -> ExitCode {
    main_with::<ApproveArgs>(PROGRAM, run)
}

fn run(args: &ApproveArgs, diag: Diag) -> Result<(), CommandError> {
    args.target.decide(
        PROGRAM,
        Answer::Allow {
            always: args.always,
        },
        diag,
    )
}
