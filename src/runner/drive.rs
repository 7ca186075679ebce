//! One conversation with the CLI: send `initialize`, then the prompt once it
//! is answered; for every stdout line, answer at once what needs an answer,
//! append the line to the backup, and queue what it means for the API.
//! Signals to the runner are passed on to the CLI.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::time::Instant;

use super::reporter::Reporter;
use crate::backup::{BackupLine, LogWriter, Meta, SessionFiles};
use crate::claude::process::{ClaudeProcess, Exit, Group};
use crate::claude::protocol::{
    CliLine, INIT_REQUEST_ID, ResultLine, initialize_request, user_message,
};
use crate::diag::Diag;
use crate::record::Recorder;

/// How long the CLI may take to exit after its result or after a signal,
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);

/// The files and queue a conversation writes to.
pub struct Sinks<'a> {
    pub log: &'a mut LogWriter,
    pub recorder: &'a mut Recorder,
    pub reporter: &'a Reporter,
    pub files: &'a SessionFiles,
    pub meta: &'a mut Meta,
    pub diag: Diag,
}

/// How a conversation ended.
pub struct Conversation {
    pub exit: Exit,
    pub result: Option<ResultLine>,
    pub interrupted: Option<Signal>,
}

/// Drives the CLI until it exits.
pub async fn converse(
    mut cli: ClaudeProcess,
    prompt: &str,
    mut sinks: Sinks<'_>,
) -> std::io::Result<Conversation> {
    let mut sigint = signal(SignalKind::interrupt())?;
    let mut sigterm = signal(SignalKind::terminate())?;
    let group = cli.group();
    let mut state = State {
        prompt_sent: false,
        result: None,
        interrupted: None,
        backup_failed: false,
    };
    let mut deadline: Option<Instant> = None;
    cli.send(&initialize_request()).await;
    let mut buf = Vec::new();
    loop {
        let until = deadline.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400 * 365));
        tokio::select! {
            line = cli.next_line(&mut buf) => match line {
                Ok(true) => {
                    let had_result = state.result.is_some();
                    state.handle(&mut cli, &buf, &mut sinks, prompt).await;
                    if !had_result && state.result.is_some() {
                        cli.close_stdin();
                        deadline.get_or_insert(Instant::now() + EXIT_GRACE);
                    }
                }
                Ok(false) | Err(_) => break,
            },
            _ = sigint.recv() => state.interrupt(Signal::SIGINT, group, &mut deadline),
            _ = sigterm.recv() => state.interrupt(Signal::SIGTERM, group, &mut deadline),
            _ = tokio::time::sleep_until(until) => {
                group.signal(Signal::SIGKILL);
                deadline = None;
            }
        }
    }
    let exit = match tokio::time::timeout(EXIT_GRACE, cli.wait()).await {
        Ok(exit) => exit?,
        Err(_) => {
            group.signal(Signal::SIGKILL);
            cli.wait().await?
        }
    };
    Ok(Conversation {
        exit,
        result: state.result,
        interrupted: state.interrupted,
    })
}

struct State {
    prompt_sent: bool,
    result: Option<ResultLine>,
    interrupted: Option<Signal>,
    backup_failed: bool,
}

impl State {
    fn interrupt(&mut self, sig: Signal, group: Group, deadline: &mut Option<Instant>) {
        if self.interrupted.is_some() {
            // A second signal: stop waiting.
            group.signal(Signal::SIGKILL);
            return;
        }
        self.interrupted = Some(sig);
        group.signal(sig);
        *deadline = Some(Instant::now() + EXIT_GRACE);
    }

    async fn handle(
        &mut self,
        cli: &mut ClaudeProcess,
        raw: &[u8],
        sinks: &mut Sinks<'_>,
        prompt: &str,
    ) {
        let line = BackupLine::parse(raw);
        // Answers first: the CLI waits for them.
        match &line {
            BackupLine::Cli(CliLine::ControlRequest(request), _) => {
                cli.send(&request.answer()).await
            }
            BackupLine::Cli(CliLine::ControlResponse(response), _)
                if response.request_id() == Some(INIT_REQUEST_ID) && !self.prompt_sent =>
            {
                self.prompt_sent = true;
                cli.send(&user_message(prompt)).await;
            }
            _ => {}
        }
        let index = match sinks.log.append(raw) {
            Ok(index) => index,
            Err(e) => {
                if !self.backup_failed {
                    self.backup_failed = true;
                    sinks.diag.warn(format!("cannot write the backup: {e}"));
                }
                sinks.log.next_index() - 1
            }
        };
        match &line {
            BackupLine::Cli(CliLine::System(system), _) => {
                if let Some(id) = system.init_session_id()
                    && sinks.meta.session_id.as_deref() != Some(id)
                {
                    sinks.meta.session_id = Some(id.to_owned());
                    if let Err(e) = sinks.files.write_meta(sinks.meta) {
                        sinks.diag.warn(format!("cannot write the backup: {e}"));
                    }
                }
            }
            BackupLine::Cli(CliLine::Result(result), _) => self.result = Some(result.clone()),
            _ => {}
        }
        sinks.reporter.send(sinks.recorder.feed(index, &line));
    }
}
