//! The command line shared by `ao-new` and `ao-resume`: parse, read the
//! prompt, run (here, or detached), and turn the outcome into stdout,
//! stderr and an exit code.

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, Parser};
use nix::sys::signal::Signal;
use serde::Serialize;

use super::detach::{self, CHILD_FLAG};
use super::flags::RunFlags;
use super::{Hooks, Mode, Outcome, RunError, RunRequest, check, run};
use crate::backup::SessionFiles;
use crate::config::{AgentsArgs, CommonArgs, Config, RunnerArgs};
use crate::diag::{Diag, exit, parse_args};
use crate::name::{AgentName, SessionName};
use crate::runner::prompt::read_prompt;

#[derive(Debug, Parser)]
struct RunnerCli {
    /// Session name: 1-60 letters, digits, '-' or '_' (it becomes a file name)
    name: String,

    /// The prompt; joined with stdin when both are given. Prefer stdin: a
    /// prompt on a command line is visible to other users in `ps`
    #[arg(short, long, value_name = "TEXT")]
    prompt: Option<String>,

    /// Run in the background: return once the run has started (stdout: the
    /// session name), its stderr in <sessions-dir>/NAME.log. Collect it with
    /// ao-wait and ao-get-result; stop it with ao-stop
    #[arg(long)]
    detach: bool,

    /// With --detach: print {"session_name","pid"} instead of the name
    #[arg(long, requires = "detach")]
    json: bool,

    /// The detached process itself (internal)
    #[arg(long = &CHILD_FLAG[2..], hide = true)]
    detached_child: bool,

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
stdout carries only the answer (with --detach: the session name). Exit codes: 0 success; 1 the \
run failed or could not start (reason on stderr); 2 bad usage or input; 130/143 interrupted by \
SIGINT/SIGTERM, 143 also when stopped by ao-stop.

Examples:
  echo \"Summarise README.md\" | ao-new reader
  ao-resume reader -p \"Now list its open questions\"
  ao-new review-1 --agent reviewer < task.md
  ao-new facts --output-schema facts.schema.json -p \"List three facts about Rust\"
  for i in 1 2 3; do ao-new worker-$i --detach < task-$i.md; done; ao-wait worker-1 worker-2 worker-3";

/// What `--detach --json` prints.
#[derive(Serialize)]
struct DetachedReport<'a> {
    session_name: &'a str,
    pid: u32,
}

/// `main` of `ao-new` (`Mode::New`) and `ao-resume` (`Mode::Resume`).
pub fn main(mode: Mode) -> ExitCode {
    // Started again as its own CLI's guardian?
    if let Some(code) = crate::claude::guard::dispatch() {
        return code;
    }
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
    match request(mode, &args) {
        Ok((request, config)) => ExitCode::from(start(&args, &request, &config, diag)),
        Err(message) => {
            diag.error(message);
            ExitCode::from(exit::USAGE)
        }
    }
}

/// The run asked for, or why it is bad input (exit 2).
fn request(mode: Mode, args: &RunnerCli) -> Result<(RunRequest, Config), String> {
    let name = SessionName::parse(&args.name).map_err(|e| e.to_string())?;
    let config = Config::load(&args.common, Some(&args.runner))
        .map_err(|e| e.to_string())?
        .with_agents_args(&args.agents);
    let flags = args.flags.settings()?;
    if let Some(agent) = &args.flags.agent {
        AgentName::parse(agent).map_err(|e| e.to_string())?;
    }
    let prompt = if args.detached_child {
        // The whole prompt, as the caller read it (its -p included).
        let bytes = crate::bounded::read_all(std::io::stdin().lock(), crate::bounded::PROMPT)
            .map_err(|e| format!("cannot read the prompt: {e}"))?;
        String::from_utf8(bytes).map_err(|_| "the prompt is not valid UTF-8".to_owned())?
    } else {
        read_prompt(args.prompt.clone()).map_err(|e| e.to_string())?
    };
    let request = RunRequest {
        mode,
        name,
        prompt,
        agent: args.flags.agent.clone(),
        flags,
        base: args.flags.base.clone(),
    };
    Ok((request, config))
}

/// Runs (or detaches) and answers the exit code.
fn start(args: &RunnerCli, request: &RunRequest, config: &Config, diag: Diag) -> u8 {
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            diag.error(format!("cannot start: {e}"));
            return exit::FAILED;
        }
    };
    if args.detach && !args.detached_child {
        return detach_run(args, request, config, diag, &runtime);
    }
    let hooks = Hooks {
        on_started: args
            .detached_child
            .then(|| Box::new(|_cli_pid| detach::say_started(std::process::id())) as _),
    };
    let report = runtime.block_on(run(request, config, diag, hooks));
    respond(report, diag, &request.name)
}

/// Checks in the foreground what can be refused, then starts the run
/// detached and prints its name (or `{"session_name","pid"}`).
fn detach_run(
    args: &RunnerCli,
    request: &RunRequest,
    config: &Config,
    diag: Diag,
    runtime: &tokio::runtime::Runtime,
) -> u8 {
    if let Err(e) = runtime.block_on(check(request, config, diag)) {
        diag.error(&e);
        return e.exit_code();
    }
    let files = SessionFiles::new(&config.sessions_dir.value, &request.name);
    if let Err(e) = files.ensure_dir() {
        diag.error(e);
        return exit::FAILED;
    }
    match detach::start(&request.prompt, &files.run_log_path()) {
        Ok(pid) => {
            let name = request.name.as_str();
            let line = if args.json {
                serde_json::to_string(&DetachedReport {
                    session_name: name,
                    pid,
                })
                .unwrap_or_default()
            } else {
                name.to_owned()
            };
            let mut stdout = std::io::stdout().lock();
            let _ = writeln!(stdout, "{line}").and_then(|()| stdout.flush());
            exit::OK
        }
        Err(detach::DetachError::Failed { code, message }) => {
            diag.error(message);
            code
        }
        Err(e) => {
            diag.error(e);
            exit::FAILED
        }
    }
}

fn respond(report: Result<super::Report, RunError>, diag: Diag, name: &SessionName) -> u8 {
    let report = match report {
        Ok(report) => report,
        Err(e) => {
            diag.error(&e);
            return e.exit_code();
        }
    };
    let started = report.session_id.is_some();
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
        Outcome::Stopped if started => {
            diag.error(format!(
                "stopped on request; the run is recorded as stopped (continue it with `ao-resume {name}`)"
            ));
            exit::SIGTERM
        }
        Outcome::Stopped => {
            diag.error(format!(
                "stopped on request before the CLI began the conversation; the run is recorded as stopped (start it again with `ao-new {name}`)"
            ));
            exit::SIGTERM
        }
    }
}
