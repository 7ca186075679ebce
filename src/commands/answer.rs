//! `ao-answer NAME [REQUEST_ID] --choice LABEL`: answers a question a run
//! asked (`AskUserQuestion`); the model reads the choice.

use std::process::ExitCode;

use clap::Parser;

use crate::diag::Diag;

use super::decide::{Answer, Target};
use super::{CommandError, main_with};

const PROGRAM: &str = "ao-answer";

/// Answer the question session NAME waits on
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Without REQUEST_ID: the only request waiting (several: exit 2, listing them; none: exit 1). ",
        "One --choice per question, in order; a question that takes several answers takes several --choice. ",
        "A choice is one of the question's option labels (ao-requests NAME shows them; any case). ",
        "Prints NAME: answered REQUEST_ID.\n\n",
        "Examples:\n  ao-answer worker-1 --choice blue\n  ao-answer worker-1 8f1c2a4e-... --choice PostgreSQL --choice \"No cache\"\n\n",
        exit_codes!(),
    ),
)]
struct AnswerArgs {
    #[command(flatten)]
    target: Target,

    /// The option chosen (its label); repeat for several questions, or several answers to one
    #[arg(long, required = true, value_name = "LABEL")]
    choice: Vec<String>,
}

/// `main` of `ao-answer`.
pub fn main() -> ExitCode {
    main_with::<AnswerArgs>(PROGRAM, run)
}

fn run(args: &AnswerArgs, diag: Diag) -> Result<(), CommandError> {
    args.target.decide(
        PROGRAM,
        Answer::Choose {
            choices: args.choice.clone(),
        },
        diag,
    )
}
