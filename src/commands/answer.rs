//! `ao-answer NAME [REQUEST_ID] --choice LABEL`: answers a question a run
//! asked (`AskUserQuestion`); the model reads the choice.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;

use super::decide::{Answer, decide, who};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

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
    /// Session name
    name: String,

    /// The question to answer (see ao-requests) [default: the only request waiting]
    request_id: Option<String>,

    /// The option chosen (its label); repeat for several questions, or several answers to one
    #[arg(long, required = true, value_name = "LABEL")]
    choice: Vec<String>,

    /// Print {"session_name","session_id","request_id","decision","answers","decided_by"}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-answer`.
pub fn main() -> ExitCode {
    main_with::<AnswerArgs>(PROGRAM, run)
}

fn run(args: &AnswerArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let answer = Answer::Choose {
        choices: args.choice.clone(),
    };
    let id = args.request_id.as_deref();
    let decided = block_on(decide(&ctx, &name, id, answer, who(), PROGRAM))??;
    if args.json {
        print_json(&decided)
    } else {
        print_line(&decided.line())
    }
}
