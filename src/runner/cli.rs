//! The command line shared by `ao-new` and `ao-resume`: parse, read the
//! prompt, run, and turn the outcome into stdout, stderr and an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nix::sys::signal::Signal;

use super::flags::RunFlags;
use super::{Mode, Outcome, RunError, RunRequest, run};
use crate::config::{AgentsArgs, CommonArgs, Config, RunnerArgs};
use crate::diag::{Diag, exit, parse_args};
use crate::name::SessionName;
use crate::runner::prompt::read_prompt;

#[derive(Debug, Parser)]
struct RunnerCli {
    /// Session name: 1-60 letters, digits, '-' or '_' (it becomes a file name)
    name: String,

    /// The prompt; joined with stdin when both are given. Prefer stdin: a
    /// prompt on a command line is visible to other users in `ps`.
    #[arg(short, long, value_name = "TEXT")]
    prompt: Option<String>,

    #[command(flatten)]
    common: CommonArgs,

    #[command(flatten)]
    runner: RunnerArgs,

    #[command(flatten)]
    agents: AgentsArgs,

    #[command(flatten)]
    flags: RunFlags,
}

const NEW_ABOUT: &str =
    "Start a new Claude Code session NAME with a prompt from stdin (or -p), and print its answer";
const RESUME_ABOUT: &str =
    "Continue session NAME with a prompt from stdin (or -p), and print its answer";
const AFTER_HELP: &str = "\
stdout carries only the answer. Exit codes: 0 success; 1 the run failed or could not start \
(reason on stderr); 2 bad usage or input; 130/143 interrupted by SIGINT/SIGTERM.

Examples:
  echo \"Summarise README.md\" | ao-new reader
  ao-resume reader -p \"Now list its open questions\"
  ao-new review-1 --agent reviewer < task.md
  ao-new facts --output-schema facts.schema.json -p \"List three facts about Rust\"";

/// `main` of `ao-new` (`Mode::New`) and `ao-resume` (`Mode::Resume`).
pub fn main(mode: Mode) -> ExitCode {
    let (program, about) = match mode {
        Mode::New => ("ao-new", NEW_ABOUT),
        Mode::Resume => ("ao-resume", RESUME_ABOUT),
    };
    let diag = Diag::new(program);
    let command = RunnerCli::command()
        .name(program)
        .bin_name(program)
        .about(about)
        .after_help(AFTER_HELP);
    let args: RunnerCli = match parse_args(command, diag) {
        Ok(args) => args,
        Err(code) => return code,
    };
    let name = match SessionName::parse(&args.name) {
        Ok(name) => name,
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
    };
    let config = match Config::load(&args.common, Some(&args.runner)) {
        Ok(config) => config.with_agents_args(&args.agents),
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
    };
    let flags = match args.flags.settings() {
        Ok(flags) => flags,
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
    };
    if let Some(agent) = &args.flags.agent
        && let Err(e) = crate::name::AgentName::parse(agent)
    {
        diag.error(e);
        return ExitCode::from(exit::USAGE);
    }
    let prompt = match read_prompt(args.prompt) {
        Ok(prompt) => prompt,
        Err(e) => {
            diag.error(e);
            return ExitCode::from(exit::USAGE);
        }
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
    let request = RunRequest {
        mode,
        name,
        prompt,
        agent: args.flags.agent,
        flags,
    };
    let report = runtime.block_on(run(&request, &config, diag));
    ExitCode::from(respond(report, diag))
}

fn respond(report: Result<super::Report, RunError>, diag: Diag) -> u8 {
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            diag.error(&e);
            return e.exit_code();
        }
    };
    match report.outcome {
        Outcome::Success { result, structured } => {
            let text = structured.map_or(result, |doc| doc.to_string());
            let mut stdout = std::io::stdout().lock();
            // A reader that went away is not our failure.
            let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
            exit::OK
        }
        Outcome::ErrorResult { message } => {
            diag.error(format!("the run failed: {message}"));
            exit::FAILED
        }
        Outcome::Failed { message } => {
            diag.error(message);
            exit::FAILED
        }
        Outcome::Interrupted { signal } => {
            diag.error(format!(
                "interrupted by {}; the run is recorded as interrupted",
                signal.as_str()
            ));
            if signal == Signal::SIGTERM {
                exit::SIGTERM
            } else {
                exit::SIGINT
            }
        }
    }
}
