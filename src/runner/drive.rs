//! One conversation with the CLI: send `initialize`, then the prompt once it
//! is answered; for every stdout line, answer at once what needs an answer,
//! append the line to the backup, and queue what it means for the API.
//! SIGINT and SIGTERM to the runner are passed on to the CLI. A stop
//! request (SIGUSR1 from `ao-stop`, or `stop_requested` on the session's
//! live feed) asks the CLI to interrupt its turn, and escalates to SIGTERM
//! and SIGKILL if it does not end.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::changed::ChangeWatch;
use super::reporter::Reporter;
use super::stream::Streamer;
use crate::backup::{BackupLine, LogWriter, Meta, SessionFiles};
use crate::claude::process::{ClaudeProcess, Exit, Group};
use crate::claude::protocol::{
    CliLine, INIT_REQUEST_ID, ResultLine, initialize_request, interrupt_request, user_message,
};
use crate::client::SessionClient;
use crate::diag::Diag;
use crate::feed::Feed;
use crate::record::Recorder;
use crate::wire::LiveMessage;

/// How long the CLI may take to exit after its result or after a signal,
/// before it is killed.
const EXIT_GRACE: Duration = Duration::from_secs(10);
/// How long the CLI may take to end after an interrupt request, before SIGTERM.
const STOP_GRACE: Duration = Duration::from_secs(5);
/// How long the CLI may take to end after SIGTERM, before SIGKILL: the
/// whole stop stays under 7 s.
const TERM_GRACE: Duration = Duration::from_millis(1500);
/// The longest wait between two attempts to reach the live feed.
const FEED_RETRY_MAX: Duration = Duration::from_secs(2);

/// The signals a runner handles, installed before it takes the session's
/// lock so that none of them can end it by its default action.
pub struct Signals {
    int: tokio::signal::unix::Signal,
    term: tokio::signal::unix::Signal,
    /// `ao-stop` on this machine.
    stop: tokio::signal::unix::Signal,
}

impl Signals {
    /// Installs the handlers.
    pub fn install() -> std::io::Result<Signals> {
        Ok(Signals {
            int: signal(SignalKind::interrupt())?,
            term: signal(SignalKind::terminate())?,
            stop: signal(SignalKind::user_defined1())?,
        })
    }
}

/// The files and queue a conversation writes to.
pub struct Sinks<'a> {
    pub log: &'a mut LogWriter,
    pub recorder: &'a mut Recorder,
    pub reporter: &'a Reporter,
    pub files: &'a SessionFiles,
    pub meta: &'a mut Meta,
    pub diag: Diag,
    /// The API to follow for stop requests, when it is up.
    pub feed: Option<SessionClient>,
    /// What the run changes in its checkout.
    pub changes: &'a mut ChangeWatch,
}

/// How a conversation ended.
pub struct Conversation {
    pub exit: Exit,
    pub result: Option<ResultLine>,
    pub interrupted: Option<Signal>,
    /// A stop was requested before the CLI answered.
    pub stopped: bool,
    /// The CLI refused `initialize`, or never printed its init line: it may
    /// not speak the protocol this release drives.
    pub protocol_failed: bool,
    /// Why its output could not be read to the end (the CLI was killed).
    pub unreadable: Option<String>,
    /// The CLI printed a line on stdout.
    printed: bool,
}

impl Conversation {
    /// Whether the CLI refused `flag` as an unknown option (and so did
    /// nothing else).
    pub fn refused(&self, flag: &str) -> bool {
        !self.printed
            && self
                .exit
                .stderr_summary()
                .contains(&format!("unknown option '{flag}'"))
    }
}

/// Drives the CLI until it exits.
pub async fn converse(
    mut cli: ClaudeProcess,
    prompt: &str,
    signals: &mut Signals,
    mut sinks: Sinks<'_>,
) -> std::io::Result<Conversation> {
    let group = cli.group();
    let mut state = State {
        prompt_sent: false,
        init_seen: false,
        initialize_refused: false,
        result: None,
        interrupted: None,
        stopped: false,
        backup_failed: false,
        deadline: None,
        unreadable: None,
        streamer: Streamer::default(),
    };
    let (stop_tx, mut stop_rx) = mpsc::unbounded_channel::<()>();
    let mut follower: Option<JoinHandle<()>> = None;
    cli.send(&initialize_request()).await;
    let mut buf = Vec::new();
    let mut printed = false;
    loop {
        let (until, escalate) = state.deadline.unwrap_or((
            Instant::now() + Duration::from_secs(86_400 * 365),
            Signal::SIGKILL,
        ));
        tokio::select! {
            line = cli.next_line(&mut buf) => match line {
                Ok(true) => {
                    printed = true;
                    let had_result = state.result.is_some();
                    state.handle(&mut cli, &buf, &mut sinks, prompt).await;
                    if !had_result && state.result.is_some() {
                        cli.close_stdin();
                        if state.deadline.is_none() {
                            state.deadline = Some((Instant::now() + EXIT_GRACE, Signal::SIGKILL));
                        }
                    }
                    if follower.is_none()
                        && let (Some(client), Some(id)) = (&sinks.feed, sinks.recorder.session_id())
                    {
                        follower = Some(tokio::spawn(follow(client.clone(), id.to_owned(), stop_tx.clone())));
                    }
                }
                Ok(false) => break,
                Err(e) => {
                    state.unreadable = Some(e.to_string());
                    group.signal(Signal::SIGKILL);
                    break;
                }
            },
            _ = tokio::time::sleep_until(state.streamer.due().unwrap_or(until)), if state.streamer.due().is_some() => {
                state.send_text(&sinks, Instant::now());
            }
            _ = signals.int.recv() => state.interrupt(Signal::SIGINT, &group),
            _ = signals.term.recv() => state.interrupt(Signal::SIGTERM, &group),
            _ = signals.stop.recv() => state.stop(&mut cli).await,
            Some(()) = stop_rx.recv() => state.stop(&mut cli).await,
            _ = tokio::time::sleep_until(until) => {
                group.signal(escalate);
                state.deadline = (escalate == Signal::SIGTERM)
                    .then(|| (Instant::now() + TERM_GRACE, Signal::SIGKILL));
            }
        }
    }
    if let Some(follower) = follower {
        follower.abort();
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
        stopped: state.stopped,
        protocol_failed: state.initialize_refused || !state.init_seen,
        unreadable: state.unreadable,
        printed,
    })
}

/// Follows the session's live feed as its runner, and says once when a
/// stop is requested. Reconnects (quietly, backing off) when the feed drops.
async fn follow(client: SessionClient, session_id: String, stop: mpsc::UnboundedSender<()>) {
    let mut delay = Duration::from_millis(100);
    loop {
        if let Ok(mut feed) = Feed::open(&client, std::slice::from_ref(&session_id), true).await {
            delay = Duration::from_millis(100);
            while let Some(message) = feed.next().await {
                if let LiveMessage::StopRequested { session_id: id } = message
                    && id == session_id
                {
                    let _ = stop.send(());
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(FEED_RETRY_MAX);
    }
}

struct State {
    prompt_sent: bool,
    /// The CLI printed its init line.
    init_seen: bool,
    /// The CLI answered `initialize` with an error.
    initialize_refused: bool,
    result: Option<ResultLine>,
    interrupted: Option<Signal>,
    stopped: bool,
    backup_failed: bool,
    /// When to signal the CLI's group next, and with what.
    deadline: Option<(Instant, Signal)>,
    /// Why the CLI's output could not be read on.
    unreadable: Option<String>,
    /// The text the model is writing, on its way to the API.
    streamer: Streamer,
}

impl State {
    /// Sends the text waiting to be sent, if any.
    fn send_text(&mut self, sinks: &Sinks<'_>, now: Instant) {
        let delta = self.streamer.flush(now);
        if let (Some(delta), Some(id)) = (delta, sinks.recorder.session_id()) {
            sinks.reporter.send_text(id, delta);
        }
    }

    fn interrupt(&mut self, sig: Signal, group: &Group) {
        if self.interrupted.is_some() {
            // A second signal: stop waiting.
            group.signal(Signal::SIGKILL);
            return;
        }
        self.interrupted = Some(sig);
        group.signal(sig);
        self.deadline = Some((Instant::now() + EXIT_GRACE, Signal::SIGKILL));
    }

    /// Asks the CLI to end its turn (the conversation stays resumable);
    /// SIGTERM follows if it has not exited in time. A run that has already
    /// answered, or is being stopped, is left to end as it is.
    async fn stop(&mut self, cli: &mut ClaudeProcess) {
        if self.stopped || self.result.is_some() || self.interrupted.is_some() {
            return;
        }
        self.stopped = true;
        cli.send(&interrupt_request()).await;
        self.deadline = Some((Instant::now() + STOP_GRACE, Signal::SIGTERM));
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
                if response.request_id() == Some(INIT_REQUEST_ID) && !response.is_success() =>
            {
                self.initialize_refused = true;
            }
            BackupLine::Cli(CliLine::ControlResponse(response), _)
                if response.request_id() == Some(INIT_REQUEST_ID) && !self.prompt_sent =>
            {
                self.prompt_sent = true;
                // A stop that came first: no turn to start.
                if self.stopped {
                    cli.close_stdin();
                } else {
                    // The checkout as it was before the CLI can change it.
                    sinks.changes.ready().await;
                    cli.send(&user_message(prompt)).await;
                }
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
                if let Some(id) = system.init_session_id() {
                    self.init_seen = true;
                    let meta = &mut *sinks.meta;
                    // A new session takes the CLI's id as its identity; a
                    // resumed one keeps its identity and notes what the CLI
                    // calls the conversation now, when that differs.
                    let mut changed = false;
                    if meta.session_id.is_none() {
                        meta.session_id = Some(id.to_owned());
                        changed = true;
                    }
                    let conversation =
                        (meta.session_id.as_deref() != Some(id)).then(|| id.to_owned());
                    if meta.conversation_id != conversation {
                        meta.conversation_id = conversation;
                        changed = true;
                    }
                    if changed && let Err(e) = sinks.files.write_meta(meta) {
                        sinks.diag.warn(format!("cannot write the backup: {e}"));
                    }
                }
            }
            BackupLine::Cli(CliLine::Result(result), _) => {
                self.result = Some((**result).clone());
                sinks.changes.answered();
            }
            _ => {}
        }
        sinks.reporter.send(sinks.recorder.feed(index, &line));
        match &line {
            BackupLine::Cli(CliLine::StreamEvent(event), _) => {
                if let (Some(delta), Some(id)) = (
                    self.streamer.read(event, Instant::now()),
                    sinks.recorder.session_id(),
                ) {
                    sinks.reporter.send_text(id, delta);
                }
            }
            BackupLine::Cli(CliLine::Assistant(_), _) => self.streamer.written(),
            _ => {}
        }
    }
}
