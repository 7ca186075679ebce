//! `ao-requests [NAME]`: what runs wait for (a tool call's permission, a
//! question), with the id each decision names: one session's, or every
//! session's of the project. Only the session manager holds requests, so
//! there is no answer from the backups.

use std::process::ExitCode;

use clap::Parser;

use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{PendingRequest, RequestKind, Session};

use super::lookup::{in_api, unknown};
use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-requests";

/// List the requests runs wait for: permissions to use a tool, and questions.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Prints one line per request, oldest first: NAME REQUEST_ID KIND TOOL: what it asks ",
        "(the command for Bash, the file for an edit, the questions and their options), or `No requests are waiting`. ",
        "Answer with ao-approve NAME [REQUEST_ID] [--always], ao-deny NAME [REQUEST_ID] [--message TEXT] ",
        "or ao-answer NAME [REQUEST_ID] --choice LABEL.\n\n",
        "Examples:\n  ao-requests\n  ao-requests worker-1 --json\n\n",
        exit_codes!(),
    ),
)]
struct RequestsArgs {
    /// Only this session's requests [default: every session of the project]
    name: Option<String>,

    /// Print a JSON array of {request_id, session_id, session_name, kind, tool_name, input, suggestions, tool_use_id, blocked_path, created_at}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// `main` of `ao-requests`.
pub fn main() -> ExitCode {
    main_with::<RequestsArgs>(PROGRAM, run)
}

fn run(args: &RequestsArgs, diag: Diag) -> Result<(), CommandError> {
    let name = args.name.as_deref().map(SessionName::parse).transpose()?;
    let ctx = Ctx::load(&args.common, diag)?;
    let requests = block_on(list(&ctx, name.as_ref()))??;
    if args.json {
        return print_json(&requests);
    }
    if requests.is_empty() {
        return print_line("No requests are waiting");
    }
    for request in &requests {
        print_line(&line(request))?;
    }
    Ok(())
}

/// One request on one line.
fn line(request: &PendingRequest) -> String {
    format!(
        "{} {} {} {}: {}",
        request.session_name,
        request.request_id,
        request.kind.as_str(),
        request.tool_name,
        request.summary()
    )
}

/// The pending requests of `name`, or of every session of the project.
pub(crate) async fn list(
    ctx: &Ctx,
    name: Option<&SessionName>,
) -> Result<Vec<PendingRequest>, CommandError> {
    if let Some(name) = name {
        return Ok(pending_of(ctx, name).await?.1);
    }
    let mut requests = Vec::new();
    for session in ctx.client.list_project_sessions(ctx.project()).await? {
        if session.pending_requests > 0 {
            requests.extend(ctx.client.pending_requests(&session.session_id).await?);
        }
    }
    requests.sort_by(|a, b| a.created_at.cmp(&b.created_at));
    Ok(requests)
}

/// The session `name` and its pending requests, oldest first.
pub(crate) async fn pending_of(
    ctx: &Ctx,
    name: &SessionName,
) -> Result<(Session, Vec<PendingRequest>), CommandError> {
    let Some(session) = in_api(ctx, name).await? else {
        return Err(unknown(ctx, name).await);
    };
    let requests = ctx.client.pending_requests(&session.session_id).await?;
    Ok((session, requests))
}

/// A request named in a message: its id and what it asks.
pub(crate) fn described(request: &PendingRequest) -> String {
    let what = match request.kind {
        RequestKind::Question => format!("question: {}", request.summary()),
        RequestKind::Permission => format!("{}: {}", request.tool_name, request.summary()),
    };
    format!("{} ({what})", request.request_id)
}
