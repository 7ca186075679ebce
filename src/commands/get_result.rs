//! `ao-get-result NAME`: the answer of the session's last run, exactly as
//! the CLI gave it. A run that failed, was interrupted, or is still going
//! is an error with its reason, never an older run's answer.

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use crate::backup::SessionFiles;
use crate::client::ClientError;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::record::TRUNCATION_MARK;
use crate::wire::{Session, SessionStatus};

use super::local::{Answer, LastRun, RunOutcome, Settled, outcome_from_events, settle, tell_api};
use super::lookup::{Found, Scope, find, unknown, warn_if_unsynced};
use super::{AnswerSource, CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-get-result";

/// Print the answer of the last run of session NAME.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Fails (exit 1, reason on stderr) when the session is unknown, still running, has no result yet, ",
        "or its last run failed or was interrupted; the error text of a failed run is the reason. ",
        "The name is looked up in the current project directory first, then in any project that has exactly one session of that name. ",
        "When the session manager cannot be reached, the backup files answer, after one warning line on stderr.\n\n",
        "Examples:\n  ao-get-result architect\n  ao-get-result worker-1 --json | jq -r .result\n\n",
        exit_codes!(),
    ),
)]
struct GetResultArgs {
    /// Session name: 1-60 letters, digits, '-' or '_'
    name: String,

    /// Print {"session_name","session_id","result","source"} instead of the bare text
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// The `--json` answer of `ao-get-result`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ResultReport {
    pub session_name: String,
    pub session_id: Option<String>,
    pub result: String,
    /// The JSON document of a run with an output schema, else `null`.
    pub structured_output: Option<serde_json::Value>,
    /// Where the text came from: the backup when the API's copy was cut to
    /// fit its request limit, or the API could not be asked.
    pub source: AnswerSource,
}

/// `main` of `ao-get-result`.
pub fn main() -> ExitCode {
    main_with::<GetResultArgs>(PROGRAM, run)
}

fn run(args: &GetResultArgs, diag: Diag) -> Result<(), CommandError> {
    let name = SessionName::parse(&args.name)?;
    let ctx = Ctx::load(&args.common, diag)?;
    let report = block_on(result(&ctx, &name))??;
    if args.json {
        print_json(&report)
    } else if let Some(doc) = &report.structured_output {
        print_line(&doc.to_string())
    } else {
        print_line(&report.result)
    }
}

/// Answers the result of `name`'s last run.
pub(crate) async fn result(ctx: &Ctx, name: &SessionName) -> Result<ResultReport, CommandError> {
    let found = find(ctx, name, Scope::AnyProject).await?;
    warn_if_unsynced(ctx, name, &found);
    match found {
        None => Err(unknown(ctx, name).await),
        Some(Found::Api {
            session,
            files: Some(files),
        }) => from_api_with_backup(ctx, name, session, &files).await,
        Some(Found::Api {
            session,
            files: None,
        }) => from_api(ctx, name, session).await,
        Some(Found::Backup { files, meta }) => {
            let session_id = meta.and_then(|m| m.session_id);
            // The API has no record to update (or cannot be asked).
            let last = settled(ctx, name, &files, false, false).await?;
            let text = answer(name, last.outcome(), session_id.is_some())?;
            Ok(report(name, session_id, text, AnswerSource::Backup))
        }
    }
}

/// A session whose backups are here: the backup's last run says whether
/// it failed (the API keeps no `is_error`), the API gives the text, and the
/// backup the whole text when the API's copy was cut.
async fn from_api_with_backup(
    ctx: &Ctx,
    name: &SessionName,
    session: Session,
    files: &SessionFiles,
) -> Result<ResultReport, CommandError> {
    let api_running = session.status == SessionStatus::Running;
    let last = settled(ctx, name, files, api_running, true).await?;
    let full = answer(name, last.outcome(), true)?;
    let id = Some(session.session_id.clone());
    match ctx.client.get_result(&session.session_id).await {
        Ok(text) if !text.ends_with(TRUNCATION_MARK) => {
            let answer = Answer {
                text,
                structured: full.structured,
            };
            Ok(report(name, id, answer, AnswerSource::Api))
        }
        Ok(_) => Ok(report(name, id, full, AnswerSource::Backup)),
        Err(ClientError::Api { status: 400, .. }) => Err(CommandError::Running {
            name: name.to_string(),
        }),
        Err(e @ ClientError::NotFound(_)) => {
            // The backup has the answer the API never received.
            ctx.diag.warn(format!(
                "the session manager has no result for '{name}' ({e}); answering from the backup files (`ao-sync {name}` sends it)"
            ));
            Ok(report(name, id, full, AnswerSource::Backup))
        }
        Err(e) if e.is_unreachable() => {
            ctx.fall_back(&e);
            Ok(report(name, id, full, AnswerSource::Backup))
        }
        Err(e) => Err(e.into()),
    }
}

/// A session whose backups are elsewhere: its events show how the last run
/// ended and what it answered.
async fn from_api(
    ctx: &Ctx,
    name: &SessionName,
    session: Session,
) -> Result<ResultReport, CommandError> {
    if session.status == SessionStatus::Running {
        return Err(CommandError::Running {
            name: name.to_string(),
        });
    }
    let events = ctx.client.list_events(&session.session_id).await?;
    let text = answer(name, outcome_from_events(&events), true)?;
    Ok(report(
        name,
        Some(session.session_id),
        text,
        AnswerSource::Api,
    ))
}

/// The backup's last run, once no runner holds it; a dead run is closed
/// first and, when `tell`, the API told.
async fn settled(
    ctx: &Ctx,
    name: &SessionName,
    files: &SessionFiles,
    api_running: bool,
    tell: bool,
) -> Result<LastRun, CommandError> {
    match settle(files, ctx.legacy(), api_running)? {
        Settled::Running => Err(CommandError::Running {
            name: name.to_string(),
        }),
        Settled::Done { last, closed } => {
            if let Some(closed) = closed
                && tell
            {
                tell_api(ctx, name.as_str(), &closed).await;
            }
            Ok(*last)
        }
    }
}

/// The answer, or why there is none. `started`: the CLI began the
/// session's conversation (it has an id), so a stopped run can be resumed.
fn answer(name: &SessionName, outcome: RunOutcome, started: bool) -> Result<Answer, CommandError> {
    let name = name.to_string();
    match outcome {
        RunOutcome::Answer(answer) => Ok(answer),
        RunOutcome::Failed(error) => Err(CommandError::RunFailed { name, error }),
        RunOutcome::Interrupted => Err(CommandError::Interrupted { name }),
        RunOutcome::Stopped if started => Err(CommandError::Stopped { name }),
        RunOutcome::Stopped => Err(CommandError::StoppedBeforeStart { name }),
        RunOutcome::NoResult => Err(CommandError::NoResult { name }),
    }
}

fn report(
    name: &SessionName,
    session_id: Option<String>,
    answer: Answer,
    source: AnswerSource,
) -> ResultReport {
    ResultReport {
        session_name: name.to_string(),
        session_id,
        result: answer.text,
        structured_output: answer.structured,
        source,
    }
}
