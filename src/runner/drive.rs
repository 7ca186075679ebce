//! One conversation with the CLI: send `initialize`, then the prompt once it
//! is answered; for every stdout line, answer at once what needs an answer,
//! append the line to the backup, and queue what it means for the API.
//! SIGINT and SIGTERM to the runner are passed on to the CLI. A stop
//! request (SIGUSR1 from `ao-stop`, or `stop_requested` on the session's
//! live feed) asks the CLI to interrupt its turn, and escalates to SIGTERM
//! and SIGKILL if it does not end. A `can_use_tool` request waits for its
//! decision ([`super::requests`]), which arrives on the same feed
//! (`request_answered`); each decision passed on is a backup line of its own.

use std::time::Duration;

use nix::sys::signal::Signal;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::changed::ChangeWatch;
use super::reporter::Reporter;
use super::requests::{self, Waiting};
use super::stream::Streamer;
use crate::backup::{BackupLine, LogWriter, Meta, PermissionDecisionLine, SessionFiles};
use crate::claude::process::{ClaudeProcess, Exit, Group};
use crate::claude::protocol::{
    CliLine, INIT_REQUEST_ID, ResultLine, ToolPermission, initialize_request, interrupt_request,
    permission_answer, user_message,
};
use crate::client::SessionClient;
use crate::diag::Diag;
use crate::feed::Feed;
use crate::record::Recorder;
use crate::wire::{DecisionBody, LiveMessage, RequestStatus, now_rfc3339};

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
    /// The API to follow for stop requests and decisions, when it is up.
    pub feed: Option<SessionClient>,
    /// What the run changes in its checkout.
    pub changes: &'a mut ChangeWatch,
    /// The run's id, which its decision lines carry.
    pub run_id: Option<String>,
    /// How the CLI's requests are decided.
    pub policy: requests::Policy,
}

/// What the session's live feed brings the run.
enum FromFeed {
    /// The feed is (again) open: decisions taken while it was not are asked for.
    Connected,
    /// `budget`: its tree's budget is spent.
    Stop { budget: bool },
    Answered {
        request_id: String,
        decision: DecisionBody,
    },
}

/// How a conversation ended.
pub struct Conversation {
    pub exit: Exit,
    pub result: Option<ResultLine>,
    pub interrupted: Option<Signal>,
    /// A stop was requested before the CLI answered.
    pub stopped: bool,
    /// That stop came because the run's tree spent its budget.
    pub budget_stop: bool,
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
    let mut waiting = Waiting::new(sinks.policy);
    let mut state = State {
        prompt_sent: false,
        init_seen: false,
        initialize_refused: false,
        result: None,
        interrupted: None,
        stopped: false,
        budget_stop: false,
        backup_failed: false,
        deadline: None,
        unreadable: None,
        streamer: Streamer::default(),
    };
    let (feed_tx, mut feed_rx) = mpsc::unbounded_channel::<FromFeed>();
    let mut follower: Option<JoinHandle<()>> = None;
    let far = || Instant::now() + Duration::from_secs(86_400 * 365);
    cli.send(&initialize_request()).await;
    let mut buf = Vec::new();
    let mut printed = false;
    loop {
        let (until, escalate) = state.deadline.unwrap_or((far(), Signal::SIGKILL));
        let request_due = waiting.next_deadline().unwrap_or_else(far);
        tokio::select! {
            line = cli.next_line(&mut buf) => match line {
                Ok(true) => {
                    printed = true;
                    let had_result = state.result.is_some();
                    state.handle(&mut cli, &buf, &mut sinks, prompt, &mut waiting).await;
                    if !had_result && state.result.is_some() {
                        cli.close_stdin();
                        if state.deadline.is_none() {
                            state.deadline = Some((Instant::now() + EXIT_GRACE, Signal::SIGKILL));
                        }
                    }
                    if follower.is_none()
                        && let (Some(client), Some(id)) = (&sinks.feed, sinks.recorder.session_id())
                    {
                        follower = Some(tokio::spawn(follow(client.clone(), id.to_owned(), feed_tx.clone())));
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
            _ = signals.stop.recv() => state.stop(&mut cli, &mut sinks, &mut waiting).await,
            Some(message) = feed_rx.recv() => match message {
                FromFeed::Stop { budget } => {
                    state.budget_stop |= budget && !state.stopped && state.result.is_none();
                    state.stop(&mut cli, &mut sinks, &mut waiting).await
                }
                FromFeed::Answered { request_id, decision } => {
                    if let Some(request) = waiting.take(&request_id) {
                        state.decide(&mut cli, &mut sinks, &request_id, &request, decision).await;
                    }
                }
                FromFeed::Connected => {
                    if let (Some(client), Some(id)) = (&sinks.feed, sinks.recorder.session_id()) {
                        tokio::spawn(recheck(client.clone(), id.to_owned(), waiting.ids(), feed_tx.clone()));
                    }
                }
            },
            _ = tokio::time::sleep_until(request_due) => {
                for (id, request, decision) in waiting.expired(Instant::now()) {
                    state.decide(&mut cli, &mut sinks, &id, &request, decision).await;
                }
            }
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
    // What nobody answered before the CLI ended is recorded as denied.
    for (id, _) in waiting.drain() {
        state.record_decision(&mut sinks, &id, requests::run_ended());
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
        budget_stop: state.budget_stop,
        protocol_failed: state.initialize_refused || !state.init_seen,
        unreadable: state.unreadable,
        printed,
    })
}

/// Follows the session's live feed as its runner: stop requests and
/// decisions, and each (re)connection (after which decisions taken in the
/// meantime are asked for). Reconnects (quietly, backing off) when the
/// feed drops.
async fn follow(client: SessionClient, session_id: String, tx: mpsc::UnboundedSender<FromFeed>) {
    let mut delay = Duration::from_millis(100);
    loop {
        if let Ok(mut feed) = Feed::open(&client, std::slice::from_ref(&session_id), true).await {
            delay = Duration::from_millis(100);
            while let Some(message) = feed.next().await {
                let forward = match message {
                    LiveMessage::Init { .. } => FromFeed::Connected,
                    LiveMessage::StopRequested {
                        session_id: id,
                        reason,
                    } if id == session_id => FromFeed::Stop {
                        budget: reason.as_deref() == Some("budget"),
                    },
                    LiveMessage::RequestAnswered {
                        session_id: id,
                        request_id,
                        decision,
                    } if id == session_id => FromFeed::Answered {
                        request_id,
                        decision,
                    },
                    _ => continue,
                };
                if tx.send(forward).is_err() {
                    return;
                }
            }
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(FEED_RETRY_MAX);
    }
}

/// Asks the API about requests that still wait, and passes on the
/// decisions it took for them while the feed was not open.
async fn recheck(
    client: SessionClient,
    session_id: String,
    request_ids: Vec<String>,
    tx: mpsc::UnboundedSender<FromFeed>,
) {
    for request_id in request_ids {
        let Ok(record) = client.get_request(&session_id, &request_id).await else {
            continue;
        };
        if let (RequestStatus::Answered, Some(decision)) = (record.status, record.decision) {
            let _ = tx.send(FromFeed::Answered {
                request_id,
                decision,
            });
        }
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
    budget_stop: bool,
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

    /// Asks the CLI to end its turn (the conversation stays resumable),
    /// after denying what it waits for; SIGTERM follows if it has not
    /// exited in time. A run that has already answered, or is being
    /// stopped, is left to end as it is.
    async fn stop(
        &mut self,
        cli: &mut ClaudeProcess,
        sinks: &mut Sinks<'_>,
        waiting: &mut Waiting,
    ) {
        if self.stopped || self.result.is_some() || self.interrupted.is_some() {
            return;
        }
        self.stopped = true;
        for (id, request) in waiting.drain() {
            self.decide(cli, sinks, &id, &request, requests::stopped())
                .await;
        }
        cli.send(&interrupt_request()).await;
        self.deadline = Some((Instant::now() + STOP_GRACE, Signal::SIGTERM));
    }

    /// Passes a decision on to the CLI and records it.
    async fn decide(
        &mut self,
        cli: &mut ClaudeProcess,
        sinks: &mut Sinks<'_>,
        request_id: &str,
        request: &ToolPermission,
        decision: DecisionBody,
    ) {
        cli.send(&permission_answer(request_id, request, &decision))
            .await;
        self.record_decision(sinks, request_id, decision);
    }

    /// Appends the decision's line to the backup, and queues its event.
    fn record_decision(&mut self, sinks: &mut Sinks<'_>, request_id: &str, decision: DecisionBody) {
        let line = PermissionDecisionLine {
            run_id: sinks.run_id.clone(),
            timestamp: now_rfc3339(),
            request_id: request_id.to_owned(),
            decision,
        };
        let index = self.append(sinks, &line.to_line());
        let actions = sinks
            .recorder
            .feed(index, &BackupLine::PermissionDecision(line));
        sinks.reporter.send(actions);
    }

    /// Appends a line to the backup; answers its index (a backup that cannot
    /// be written is said once, and the run goes on).
    fn append(&mut self, sinks: &mut Sinks<'_>, raw: &[u8]) -> u64 {
        match sinks.log.append(raw) {
            Ok(index) => index,
            Err(e) => {
                if !self.backup_failed {
                    self.backup_failed = true;
                    sinks.diag.warn(format!("cannot write the backup: {e}"));
                }
                sinks.log.next_index() - 1
            }
        }
    }

    async fn handle(
        &mut self,
        cli: &mut ClaudeProcess,
        raw: &[u8],
        sinks: &mut Sinks<'_>,
        prompt: &str,
        waiting: &mut Waiting,
    ) {
        let line = BackupLine::parse(raw);
        let permission = match &line {
            BackupLine::Cli(CliLine::ControlRequest(request), _) => request
                .tool_permission()
                .map(|p| (request.request_id.clone(), p)),
            _ => None,
        };
        // Answers first: the CLI waits for them (a request for permission
        // waits for its decision, below).
        match &line {
            BackupLine::Cli(CliLine::ControlRequest(request), _) if permission.is_none() => {
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
        let index = self.append(sinks, raw);
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
        if let Some((id, request)) = permission {
            match waiting.arrive(&id, request.clone()) {
                Some(decision) => self.decide(cli, sinks, &id, &request, decision).await,
                None => sinks.diag.note(requests::waiting_note(
                    sinks.files.name().as_str(),
                    &id,
                    &request,
                )),
            }
        }
    }
}
