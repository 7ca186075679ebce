//! The query commands: `ao-status`, `ao-get-result`, `ao-list-sessions`,
//! `ao-clean` and `ao-show-config`, `ao-sync`, and `ao-dashboard`; and the
//! decisions on what runs wait for: `ao-requests`, `ao-approve`, `ao-deny`,
//! `ao-answer`. Orchestrating agents poll them in loops,
//! so each is one short process: one current-thread runtime, as few requests
//! as the answer needs, stdout for the answer only, one line on stderr for
//! anything else.
//!
//! The session manager's API answers first; when it cannot be reached, the
//! backup files of the current sessions directory answer instead, after one
//! warning line. A session whose runner died mid-run (its lock is free while
//! the API still says `running`) is closed here, so pollers never wait for a
//! run that will not end.
//!
//! Each command is one file with its clap definition and a `main` that the
//! thin binary in `src/bin/` calls.

/// The exit-code paragraph every command's `--help` ends with (a macro so
/// that `concat!` can join it to each command's own text).
macro_rules! exit_codes {
    () => {
        "Exit codes: 0 the command did what was asked; 1 it could not (one-line reason on stderr); \
         2 bad usage or input (invalid name, unknown flag, unusable setting). stdout carries only the answer."
    };
}

pub mod answer;
pub mod approve;
pub mod clean;
pub mod dashboard;
pub mod decide;
pub mod deny;
mod error;
pub mod get_result;
pub mod hosts;
pub mod list_agents;
pub mod list_sessions;
mod local;
mod lookup;
pub mod requests;
pub mod runs;
pub mod show_config;
pub mod status;
pub mod stop;
pub mod sync;
pub mod usage;
pub mod wait;

use std::cell::Cell;
use std::future::Future;
use std::io::Write;
use std::process::ExitCode;

use serde::Serialize;

use crate::backup::SessionFiles;
use crate::client::{ClientError, SessionClient};
use crate::config::{CommonArgs, Config, RunnerArgs};
use crate::diag::Diag;
use crate::name::SessionName;

pub use error::CommandError;

/// Where an answer came from, as the `source` field of `--json` output.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AnswerSource {
    /// The session manager's API.
    Api,
    /// The `.jsonl` / `.meta.json` backups in the sessions directory.
    Backup,
}

/// What every command that talks to the API needs, built once per process.
pub(crate) struct Ctx {
    pub config: Config,
    pub client: SessionClient,
    pub diag: Diag,
    project: String,
    fallback_note: &'static str,
    warned: Cell<bool>,
}

impl Ctx {
    /// Resolves the settings and builds the client (no request is sent).
    pub fn load(common: &CommonArgs, diag: Diag) -> Result<Ctx, CommandError> {
        Ctx::load_with(common, None, diag)
    }

    /// Like [`Ctx::load`], for a command that also takes runner flags.
    pub fn load_with(
        common: &CommonArgs,
        runner: Option<&RunnerArgs>,
        diag: Diag,
    ) -> Result<Ctx, CommandError> {
        let config = Config::load(common, runner)?;
        let client = SessionClient::new(&config.session_manager_url.value)?;
        let project = config.project_dir_text();
        Ok(Ctx {
            config,
            client,
            diag,
            project,
            fallback_note: "answering from the backup files",
            warned: Cell::new(false),
        })
    }

    /// The project directory as the API stores it.
    pub fn project(&self) -> &str {
        &self.project
    }

    /// The backup files of `name` in the current sessions directory.
    pub fn files(&self, name: &SessionName) -> SessionFiles {
        SessionFiles::new(&self.config.sessions_dir.value, name)
    }

    /// Whether the runner should send legacy event names; recovery sends
    /// the closing event the same way the runner would have.
    pub fn legacy(&self) -> bool {
        self.config.legacy_events.value
    }

    /// Replaces what the unreachable-API warning says happens instead.
    pub fn set_fallback_note(&mut self, note: &'static str) {
        self.fallback_note = note;
    }

    /// Says, once per process, that the API is unreachable and the backups
    /// answer instead.
    pub fn fall_back(&self, err: &ClientError) {
        if self.warned.replace(true) {
            return;
        }
        let reason = match err {
            ClientError::Unreachable { url, reason } => format!("{url}: {reason}"),
            other => other.to_string(),
        };
        self.diag.warn(format!(
            "session manager unreachable ({reason}); {}",
            self.fallback_note
        ));
    }

    /// True once `fall_back` has warned.
    pub fn fell_back(&self) -> bool {
        self.warned.get()
    }
}

/// Runs `future` to completion on a current-thread runtime: a query needs
/// no more, and a multi-threaded one costs start-up time on every poll.
pub(crate) fn block_on<F: Future>(future: F) -> Result<F::Output, CommandError> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(CommandError::Runtime)?;
    Ok(runtime.block_on(future))
}

/// Parses a command line; a usage error is one line on stderr (exit 2),
/// as for every `ao-*` command.
pub(crate) fn parse<T: clap::Parser>(diag: Diag) -> Result<T, ExitCode> {
    crate::diag::parse_args(T::command(), diag)
}

/// The whole `main` of a command: parse its arguments (a usage error is
/// one line, exit 2), run it, and turn the result into the exit code.
pub(crate) fn main_with<A: clap::Parser>(
    program: &'static str,
    run: impl FnOnce(&A, Diag) -> Result<(), CommandError>,
) -> ExitCode {
    let diag = Diag::new(program);
    match parse::<A>(diag) {
        Ok(args) => finish(diag, run(&args, diag)),
        Err(code) => code,
    }
}

/// Turns a command's result into its exit code, writing the reason of a
/// failure as one line on stderr.
pub(crate) fn finish(diag: Diag, result: Result<(), CommandError>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            diag.error(&e);
            ExitCode::from(e.exit_code())
        }
    }
}

/// Writes one answer line on stdout. A reader that went away (`| head`) is
/// not a failure of the command.
pub(crate) fn print_line(text: &str) -> Result<(), CommandError> {
    let mut stdout = std::io::stdout().lock();
    match writeln!(stdout, "{text}").and_then(|()| stdout.flush()) {
        Ok(()) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => Ok(()),
        Err(e) => Err(CommandError::Output(e.to_string())),
    }
}

/// Writes `value` as one line of JSON on stdout.
pub(crate) fn print_json(value: &impl Serialize) -> Result<(), CommandError> {
    let text = serde_json::to_string(value).map_err(|e| CommandError::Output(e.to_string()))?;
    print_line(&text)
}

/// Rows under a header, each column as wide as its widest cell (the last
/// one left as it is).
pub(crate) fn columns<const N: usize>(header: [&str; N], rows: &[[String; N]]) -> Vec<String> {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let mut out = String::new();
        for (i, cell) in cells.iter().enumerate() {
            if i + 1 == N {
                out.push_str(cell);
            } else {
                out.push_str(&format!("{cell:<width$}  ", width = widths[i]));
            }
        }
        out.trim_end().to_owned()
    };
    let mut lines = vec![line(header.to_vec())];
    lines.extend(
        rows.iter()
            .map(|r| line(r.iter().map(String::as_str).collect())),
    );
    lines
}
