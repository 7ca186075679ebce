//! What the session manager must be told about a session, derived from its
//! backup lines alone. The runner feeds each line as it writes it and posts
//! what comes out; `ao-sync` feeds the whole file later and gets exactly the
//! same actions: same content, same timestamps, same `event_id`s, so the
//! server can drop what it already has and a replay adds only what is missing.
//!
//! An event's id derives from what the lines carry, so that it survives
//! edits of the file (a line inserted, a last line cut): the run's own id
//! (`run_id` on its opening line) and, for a tool call, the CLI's
//! `tool_use_id`. Runs written before runs had ids keep the ids they were
//! stored with then, from line positions. Timestamps come from the lines: a
//! line's own `timestamp`, else the last one seen before it.
//!
//! What the model says between tool calls (and its thinking) becomes
//! `message` events marked `"final": false`, each with an id from the
//! assistant line's `uuid` and the block's place in it. The last text of
//! the main conversation waits for the next line: if the turn's `result`
//! follows with the same text, it is the answer (the final `message`), not
//! narration, and is sent once.
//!
//! A run's figures are its own: where a release reports sums over the
//! conversation ([`crate::claude::figures`]), what the runs before it spent
//! is taken off.

use serde_json::Value;
use uuid::Uuid;

use std::collections::HashMap;

use crate::backup::{
    BackupLine, ChangesLine, PermissionDecisionLine, RunCompletedLine, UserMessageLine,
};
use crate::claude::figures::Spent;
use crate::claude::protocol::{AssistantLine, Block, CliLine, ResultLine};
use crate::wire::{
    ContentBlock, DecidedBy, Event, EventType, MAX_DIFF, RequestKind, Role, RunEndReason,
    RunFigures, SessionCreate, parse_timestamp,
};

/// The namespace of every derived event id.
const EVENT_ID_NAMESPACE: Uuid = Uuid::from_u128(0x5f1c_0a7e_93d2_4c59_8b6e_2a4d_7c31_e9b0);

/// Tool input and output larger than this (as JSON text) are cut to fit
/// the API's request limit; the backup keeps them whole.
pub const MAX_TOOL_FIELD: usize = 256 * 1024;
/// Message text larger than this is cut the same way.
pub const MAX_TEXT: usize = 768 * 1024;
/// Marks text that was cut; `ao-get-result` then reads the backup instead.
pub const TRUNCATION_MARK: &str =
    "\n[truncated by agent-orchestrator; the full text is in the session's .jsonl backup]";

/// One thing to tell the session manager.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// `POST /sessions`; a 409 for the same id means it is already there.
    Create(SessionCreate),
    /// `PATCH /sessions/{id}` with `last_resumed_at`; if the API has no such
    /// session, `create` it first.
    Resume {
        session_id: String,
        at: String,
        create: SessionCreate,
    },
    /// `POST /sessions/{id}/events` (boxed: an event is much larger than
    /// the other actions).
    Event(Box<Event>),
}

impl Action {
    /// The session the action is about.
    pub fn session_id(&self) -> &str {
        match self {
            Action::Create(c) => &c.session_id,
            Action::Resume { session_id, .. } => session_id,
            Action::Event(e) => &e.session_id,
        }
    }
}

/// A new run's id, for its opening line.
pub fn new_run_id() -> String {
    Uuid::new_v4().to_string()
}

/// The id of run `run_id`'s event of `kind` (`what`: the thing it is
/// about, such as a tool call's id). The session manager derives the same
/// id when it closes a run itself (its host went away), so that the
/// runner's own end, should it arrive later, is taken for a repeat.
pub fn run_event_id(session_id: &str, run_id: &str, kind: &str, what: Option<&str>) -> Uuid {
    let name = match what {
        Some(what) => format!("{session_id}/run/{run_id}/{kind}/{what}"),
        None => format!("{session_id}/run/{run_id}/{kind}"),
    };
    Uuid::new_v5(&EVENT_ID_NAMESPACE, name.as_bytes())
}

/// The id of an event of `kind` caused by line `index` of `session_id`'s
/// backup, in a run written before runs had ids.
fn line_event_id(session_id: &str, index: u64, kind: &str) -> Uuid {
    Uuid::new_v5(
        &EVENT_ID_NAMESPACE,
        format!("{session_id}/{index}/{kind}").as_bytes(),
    )
}

/// What tells a run's events apart from those of every other run.
#[derive(Debug, Clone, PartialEq, Eq)]
enum RunKey {
    /// The run's own id.
    Id(String),
    /// None: the positions of the lines (a run written before runs had ids).
    Lines,
}

struct Run {
    index: u64,
    key: RunKey,
    message: UserMessageLine,
    session_id: Option<String>,
    started: bool,
    /// Its own figures, from its last `result` line.
    figures: RunFigures,
    /// What the conversation had spent when the run began.
    spent_before: Spent,
    /// Tool calls of subagents: the tool call that started each one's
    /// subagent, from the assistant lines that made them.
    parents: HashMap<String, String>,
    /// Subagents by id (`task_started` lines): the tool call that started each.
    agents: HashMap<String, String>,
    /// The requests the CLI made in this run: their kind and tool, which
    /// their decisions carry too.
    requests: HashMap<String, (RequestKind, String)>,
}

impl Run {
    /// The run's own id, when it has one.
    fn id(&self) -> Option<String> {
        match &self.key {
            RunKey::Id(id) => Some(id.clone()),
            RunKey::Lines => None,
        }
    }

    /// The id of the run's event of `kind` (`what`: the thing it is about,
    /// such as a tool call's id), caused by line `index`.
    fn event_id(&self, session_id: &str, index: u64, kind: &str, what: Option<&str>) -> Uuid {
        match &self.key {
            RunKey::Id(run) => run_event_id(session_id, run, kind, what),
            RunKey::Lines => line_event_id(session_id, index, kind),
        }
    }
}

/// Turns backup lines into actions, one line at a time.
pub struct Recorder {
    name: String,
    legacy: bool,
    last_timestamp: Option<String>,
    run: Option<Run>,
    session_id: Option<String>,
    last_result: Option<ResultLine>,
    /// The CLI release the last init line named.
    version: Option<String>,
    /// What the conversation has spent, summed over its runs.
    spent: Spent,
    /// The last text of the main conversation, until the next line tells
    /// whether it was the answer.
    held: Option<Event>,
}

impl Recorder {
    /// A recorder for the session `name`; `legacy` sends `session_stop`
    /// instead of `run_completed` and no `run_start`.
    pub fn new(name: &str, legacy: bool) -> Self {
        Recorder {
            name: name.to_owned(),
            legacy,
            last_timestamp: None,
            run: None,
            session_id: None,
            last_result: None,
            version: None,
            spent: Spent::default(),
            held: None,
        }
    }

    /// Learns what the lines already in the backup say (the session, the
    /// CLI release, what the conversation has spent) without acting on
    /// them, before a new run's lines are fed. Only the lines that carry
    /// those are parsed.
    pub fn catch_up(&mut self, lines: &[(u64, Vec<u8>)]) {
        const MARKS: [&[u8]; 4] = [
            br#""type":"user_message""#,
            br#""type":"run_completed""#,
            br#""type":"result""#,
            br#""subtype":"init""#,
        ];
        let relevant = |line: &[u8]| {
            MARKS
                .iter()
                .any(|mark| line.windows(mark.len()).any(|w| w == *mark))
        };
        for (index, line) in lines {
            if relevant(line) {
                self.feed(*index, &BackupLine::parse(line));
            }
        }
    }

    /// The session id, once a line has named it.
    pub fn session_id(&self) -> Option<&str> {
        self.session_id.as_deref()
    }

    /// What the conversation has spent, as far as the lines fed tell.
    pub fn spent(&self) -> &Spent {
        &self.spent
    }

    /// The last `result` line seen.
    pub fn last_result(&self) -> Option<&ResultLine> {
        self.last_result.as_ref()
    }

    /// True while a run has begun (a `user_message`) and not ended.
    pub fn run_open(&self) -> bool {
        self.run.is_some()
    }

    /// What line `index` means for the API.
    pub fn feed(&mut self, index: u64, line: &BackupLine) -> Vec<Action> {
        if let Some(ts) = line.timestamp() {
            self.last_timestamp = Some(ts.to_owned());
        }
        let mut actions = Vec::new();
        if ends_narration(line) {
            self.release_held(&mut actions);
        }
        match line {
            BackupLine::UserMessage(message) => {
                if self.run.is_some() {
                    // The previous run never got its closing line.
                    let end = RunCompletedLine {
                        timestamp: self.timestamp(),
                        exit_code: None,
                        reason: RunEndReason::Interrupted,
                        error: None,
                    };
                    self.close(&mut actions, index, "previous_run_end", &end);
                }
                self.run = Some(Run {
                    index,
                    key: match &message.run_id {
                        Some(id) => RunKey::Id(id.clone()),
                        None => RunKey::Lines,
                    },
                    // A resume's identity is the session's, whatever the CLI
                    // calls the conversation now.
                    session_id: message
                        .session_id
                        .clone()
                        .or_else(|| message.resume_session_id.clone()),
                    message: message.clone(),
                    started: false,
                    figures: RunFigures::default(),
                    // A fork's first run starts from what its origin spent.
                    spent_before: message
                        .spent_before
                        .as_deref()
                        .cloned()
                        .unwrap_or_else(|| self.spent.clone()),
                    parents: HashMap::new(),
                    agents: HashMap::new(),
                    requests: HashMap::new(),
                });
            }
            BackupLine::Cli(CliLine::System(system), _) => {
                if let (Some((agent, call)), Some(run)) = (system.task_started(), &mut self.run) {
                    run.agents.insert(agent.to_owned(), call.to_owned());
                }
                if let Some(id) = system.init_session_id() {
                    self.version = system.claude_code_version.clone();
                    if let Some(run) = &mut self.run
                        && !run.started
                        && run.session_id.is_none()
                    {
                        run.session_id = Some(id.to_owned());
                    }
                    self.start(&mut actions);
                }
            }
            BackupLine::Cli(CliLine::ControlRequest(request), _) => {
                if let Some(hook) = request.tool_hook() {
                    self.start(&mut actions);
                    if let Some(session_id) = self.started_session() {
                        let pre = hook.hook_event_name == "PreToolUse";
                        let (event_type, kind) = if pre {
                            (EventType::PreTool, "pre_tool")
                        } else {
                            (EventType::PostTool, "post_tool")
                        };
                        let call = hook.tool_use_id.as_deref().unwrap_or(&request.request_id);
                        let mut event =
                            self.event(event_type, &session_id, index, kind, Some(call));
                        // A subagent's hook may come before the line of its call.
                        event.parent_tool_use_id = self.run.as_ref().and_then(|run| {
                            let by_call = hook
                                .tool_use_id
                                .as_deref()
                                .and_then(|id| run.parents.get(id));
                            let by_agent =
                                hook.agent_id.as_deref().and_then(|id| run.agents.get(id));
                            by_call.or(by_agent).cloned()
                        });
                        event.tool_name =
                            Some(hook.tool_name.unwrap_or_else(|| "unknown".to_owned()));
                        event.tool_use_id = hook.tool_use_id;
                        event.tool_input = hook.tool_input.map(fit_value);
                        if !pre {
                            event.tool_output = hook.tool_response.map(fit_value);
                            event.error = hook.error.and_then(|e| match e {
                                Value::Null => None,
                                Value::String(s) => Some(fit_text(s, MAX_TOOL_FIELD)),
                                other => Some(fit_text(other.to_string(), MAX_TOOL_FIELD)),
                            });
                        }
                        actions.push(Action::Event(Box::new(event)));
                    }
                } else if let Some(permission) = request.tool_permission() {
                    self.start(&mut actions);
                    if let Some(session_id) = self.started_session() {
                        let id = &request.request_id;
                        let kind = permission.kind();
                        let mut event = self.event(
                            EventType::PermissionRequest,
                            &session_id,
                            index,
                            "permission_request",
                            Some(id),
                        );
                        event.request_id = Some(id.clone());
                        event.kind = Some(kind);
                        event.tool_name = Some(permission.tool_name.clone());
                        event.tool_input = Some(fit_value(permission.input));
                        event.suggestions = permission.permission_suggestions.map(fit_value);
                        event.blocked_path = permission.blocked_path;
                        event.tool_use_id = permission.tool_use_id;
                        if let Some(run) = &mut self.run {
                            run.requests
                                .insert(id.clone(), (kind, permission.tool_name));
                        }
                        actions.push(Action::Event(Box::new(event)));
                    }
                }
            }
            BackupLine::PermissionDecision(decision) => {
                if let Some(event) = self.decision_event(index, decision) {
                    actions.push(Action::Event(Box::new(event)));
                }
            }
            BackupLine::Cli(CliLine::Assistant(assistant), _) => {
                self.start(&mut actions);
                self.said(&mut actions, index, assistant);
            }
            BackupLine::Cli(CliLine::Result(result), _) => {
                self.start(&mut actions);
                // The text just before the result is its answer: sent once,
                // as the answer.
                if let Some(held) = self.held.take() {
                    let answer = result.result.clone().map(|t| fit_text(t, MAX_TEXT));
                    if answer.as_deref() != Some(held.text().as_str()) {
                        actions.push(Action::Event(Box::new(held)));
                    }
                }
                // An error result's text is the CLI's error, not an answer:
                // it goes with the run's end, never as an assistant message.
                if let Some(session_id) = self.started_session()
                    && let Some(text) = result.result.as_ref().filter(|_| !result.is_error)
                {
                    let mut event =
                        self.event(EventType::Message, &session_id, index, "message", None);
                    event.role = Some(Role::Assistant);
                    event.content =
                        Some(vec![ContentBlock::text(fit_text(text.clone(), MAX_TEXT))]);
                    event.structured_output = result.structured_output.clone().map(fit_value);
                    actions.push(Action::Event(Box::new(event)));
                }
                if let Some(run) = &mut self.run {
                    let (own, spent) = run
                        .spent_before
                        .own(result.figures(), self.version.as_deref());
                    run.figures = own;
                    self.spent = spent;
                }
                self.last_result = Some((**result).clone());
            }
            BackupLine::RunCompleted(done) => {
                self.start(&mut actions);
                self.close(&mut actions, index, "run_end", done);
            }
            BackupLine::Changes(changes) => {
                self.start(&mut actions);
                if let Some(session_id) = self.started_session() {
                    actions.push(Action::Event(Box::new(self.changes_event(
                        &session_id,
                        index,
                        changes,
                    ))));
                }
            }
            BackupLine::Cli(_, _) | BackupLine::Unreadable => {}
        }
        actions
    }

    /// What an assistant line says: thinking and text as events (the last
    /// text of the main conversation held back), and which tool calls a
    /// subagent made.
    fn said(&mut self, actions: &mut Vec<Action>, index: u64, line: &AssistantLine) {
        let Some(session_id) = self.started_session() else {
            return;
        };
        if line.is_synthetic() {
            return; // the CLI's own text for an error, which the run's end carries
        }
        let blocks = line.blocks();
        let parent = line.parent_tool_use_id.clone();
        let place = line.uuid.clone().unwrap_or_else(|| format!("line-{index}"));
        for (at, block) in blocks.iter().enumerate() {
            let (kind, text) = match block {
                Block::ToolUse { id } => {
                    if let (Some(parent), Some(run)) = (&parent, &mut self.run) {
                        run.parents.insert((*id).to_owned(), parent.clone());
                    }
                    continue;
                }
                Block::Text(text) => ("text", *text),
                Block::Thinking(text) => ("thinking", *text),
                Block::Other => continue,
            };
            if text.trim().is_empty() {
                continue;
            }
            let mut event = self.event(
                EventType::Message,
                &session_id,
                index,
                &format!("{kind}/{at}"),
                Some(&place),
            );
            event.role = Some(Role::Assistant);
            event.is_final = Some(false);
            event.parent_tool_use_id = parent.clone();
            event.content = Some(vec![ContentBlock {
                kind: kind.to_owned(),
                text: Some(fit_text(text.to_owned(), MAX_TEXT)),
            }]);
            if kind == "text" && parent.is_none() && at + 1 == blocks.len() {
                self.held = Some(event);
            } else {
                actions.push(Action::Event(Box::new(event)));
            }
        }
    }

    /// Sends the held text as what it turned out to be: narration.
    fn release_held(&mut self, actions: &mut Vec<Action>) {
        if let Some(held) = self.held.take() {
            actions.push(Action::Event(Box::new(held)));
        }
    }

    /// The `changes` event of a changes line.
    fn changes_event(&self, session_id: &str, index: u64, changes: &ChangesLine) -> Event {
        let mut event = self.event(EventType::Changes, session_id, index, "changes", None);
        event.files = Some(changes.files.clone());
        let truncated = changes.diff_truncated || changes.diff.len() > MAX_DIFF;
        event.diff = Some(if changes.diff.len() > MAX_DIFF {
            fit_text(changes.diff.clone(), MAX_DIFF)
        } else {
            changes.diff.clone()
        });
        event.diff_truncated = truncated.then_some(true);
        event.base = changes.base.clone();
        event
    }

    fn timestamp(&self) -> String {
        self.last_timestamp.clone().unwrap_or_default()
    }

    fn started_session(&self) -> Option<String> {
        let run = self.run.as_ref()?;
        if run.started {
            run.session_id.clone()
        } else {
            None
        }
    }

    /// An event of the open run.
    fn event(
        &self,
        event_type: EventType,
        session_id: &str,
        index: u64,
        kind: &str,
        what: Option<&str>,
    ) -> Event {
        let mut event = Event::new(event_type, session_id, &self.name, self.timestamp());
        if let Some(run) = &self.run {
            event.event_id = Some(run.event_id(session_id, index, kind, what));
            event.run_id = run.id();
        }
        event
    }

    /// The `permission_decision` event of a decision line of the open run.
    fn decision_event(&self, index: u64, line: &PermissionDecisionLine) -> Option<Event> {
        let session_id = self.started_session()?;
        let id = &line.request_id;
        let mut event = self.event(
            EventType::PermissionDecision,
            &session_id,
            index,
            "permission_decision",
            Some(id),
        );
        event.request_id = Some(id.clone());
        if let Some((kind, tool)) = self.run.as_ref().and_then(|r| r.requests.get(id)) {
            event.kind = Some(*kind);
            event.tool_name = Some(tool.clone());
        }
        let decision = &line.decision;
        event.decision = Some(decision.decision);
        event.decided_by = Some(decision.decided_by.unwrap_or(DecidedBy::Policy));
        event.message = decision
            .message
            .clone()
            .map(|m| fit_text(m, MAX_TOOL_FIELD));
        event.always = decision.always;
        event.answers = decision.answers.clone();
        Some(event)
    }

    /// Opens the run with the API once its session id is known (from the
    /// init line, or the session being resumed): create or resume the
    /// session, then `run_start` and the prompt. A new run whose CLI never
    /// printed init has no session to tell the API about.
    fn start(&mut self, actions: &mut Vec<Action>) {
        let Some(run) = &mut self.run else { return };
        if run.started {
            return;
        }
        let Some(session_id) = run.session_id.clone() else {
            return;
        };
        run.started = true;
        self.session_id = Some(session_id.clone());
        let message = &run.message;
        let create = SessionCreate {
            session_id: session_id.clone(),
            session_name: self.name.clone(),
            project_dir: Some(message.project_dir.clone()),
            agent_name: message.agent_name.clone(),
            created_at: Some(message.timestamp.clone()),
            worktree: message.worktree.clone(),
            branch: message.branch.clone(),
            parent_session_id: message.parent_session_id.clone(),
            forked_from: message.forked_from.clone(),
            budget_usd: message.budget_usd,
        };
        actions.push(match &message.resume_session_id {
            Some(_) => Action::Resume {
                session_id: session_id.clone(),
                at: message.timestamp.clone(),
                create,
            },
            None => Action::Create(create),
        });
        let index = run.index;
        let ts = message.timestamp.clone();
        let prompt = message.content.clone();
        if !self.legacy {
            let mut start = Event::new(EventType::RunStart, &session_id, &self.name, &ts);
            start.event_id = Some(run.event_id(&session_id, index, "run_start", None));
            start.run_id = run.id();
            actions.push(Action::Event(Box::new(start)));
        }
        let mut user = Event::new(EventType::Message, &session_id, &self.name, &ts);
        user.event_id = Some(run.event_id(&session_id, index, "prompt", None));
        user.run_id = run.id();
        user.role = Some(Role::User);
        user.content = Some(vec![ContentBlock::text(fit_text(prompt, MAX_TEXT))]);
        actions.push(Action::Event(Box::new(user)));
    }

    /// Ends the open run with `run_completed` (or `session_stop`), if the
    /// API ever heard of it. A run with an id has one end, however it was
    /// found to end; `kind` names it for a run without.
    fn close(&mut self, actions: &mut Vec<Action>, index: u64, kind: &str, end: &RunCompletedLine) {
        let Some(run) = self.run.take() else { return };
        let (true, Some(session_id)) = (run.started, run.session_id.clone()) else {
            return;
        };
        let event_type = if self.legacy {
            EventType::SessionStop
        } else {
            EventType::RunCompleted
        };
        let mut event = Event::new(event_type, &session_id, &self.name, &end.timestamp);
        let kind = match run.key {
            RunKey::Id(_) => "run_end",
            RunKey::Lines => kind,
        };
        event.event_id = Some(run.event_id(&session_id, index, kind, None));
        event.run_id = run.id();
        event.exit_code = end.exit_code;
        event.reason = Some(end.reason.as_str().to_owned());
        event.error = end.error.clone().map(|e| fit_text(e, MAX_TOOL_FIELD));
        let mut figures = run.figures;
        // Without the CLI's own figure, the run lasted from its prompt to its end.
        if figures.duration_ms.is_none()
            && let (Ok(from), Ok(to)) = (
                parse_timestamp(&run.message.timestamp),
                parse_timestamp(&end.timestamp),
            )
        {
            figures.duration_ms = u64::try_from((to - from).num_milliseconds()).ok();
        }
        event.set_figures(&figures);
        actions.push(Action::Event(Box::new(event)));
    }
}

/// Keys that tell a session's events apart by what they are about, whatever
/// their ids: the run (its start time), the kind, and the rank among its
/// kind in the run (releases before 0.2 stored no tool call ids). `ao-sync` recognises by them the stored
/// events of a run written before runs had ids, whose ids came from line
/// positions that an edit of the file (a line inserted, a last line cut and
/// closed again) has moved.
pub fn natural_keys<'a>(events: impl IntoIterator<Item = &'a Event>) -> Vec<String> {
    let mut run = String::new();
    let mut ranks: std::collections::HashMap<&'static str, usize> = Default::default();
    let mut keys = Vec::new();
    for event in events {
        let at = parse_timestamp(&event.timestamp)
            .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
            .unwrap_or_else(|_| event.timestamp.clone());
        let starts_run = match event.event_type {
            EventType::RunStart | EventType::SessionStart => true,
            EventType::Message => event.role == Some(Role::User) && at != run,
            _ => false,
        };
        if starts_run {
            run = at;
            ranks.clear();
        }
        let kind = match (event.event_type, event.role) {
            (EventType::RunStart | EventType::SessionStart, _) => "start",
            (EventType::RunCompleted | EventType::SessionStop, _) => "end",
            (EventType::PreTool, _) => "pre_tool",
            (EventType::PostTool, _) => "post_tool",
            (EventType::Message, Some(Role::User)) => "prompt",
            (EventType::Message, _) if event.is_final == Some(false) => {
                match event.content.iter().flatten().next() {
                    Some(block) if block.kind == "thinking" => "thinking",
                    _ => "narration",
                }
            }
            (EventType::Message, _) => "message",
            (EventType::Changes, _) => "changes",
            (EventType::PermissionRequest, _) => "permission_request",
            (EventType::PermissionDecision, _) => "permission_decision",
        };
        let rank = ranks.entry(kind).or_default();
        *rank += 1;
        keys.push(format!("{run}/{kind}#{rank}"));
    }
    keys
}

/// Whether a line shows that the text held before it was narration, not
/// the answer: anything the model or the CLI does next, but the stream's
/// end of that text, status lines, and the result (which decides itself).
fn ends_narration(line: &BackupLine) -> bool {
    match line {
        BackupLine::Cli(CliLine::StreamEvent(event), _) => event.starts_block(),
        BackupLine::Cli(
            CliLine::Assistant(_) | CliLine::User {} | CliLine::ControlRequest(_),
            _,
        ) => true,
        BackupLine::Cli(_, _) | BackupLine::Unreadable => false,
        BackupLine::UserMessage(_)
        | BackupLine::RunCompleted(_)
        | BackupLine::Changes(_)
        | BackupLine::PermissionDecision(_) => true,
    }
}

/// Cuts `text` to at most `max` bytes (on a character boundary) and marks it.
pub fn fit_text(text: String, max: usize) -> String {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}{TRUNCATION_MARK}", &text[..end])
}

/// Replaces a JSON value too large for the API by the start of its text, marked.
fn fit_value(value: Value) -> Value {
    let text = value.to_string();
    if text.len() <= MAX_TOOL_FIELD {
        value
    } else {
        Value::String(fit_text(text, MAX_TOOL_FIELD))
    }
}

/// Everything a whole backup file means for the API, in order.
pub fn replay(name: &str, legacy: bool, lines: &[(u64, Vec<u8>)]) -> (Recorder, Vec<Action>) {
    let mut recorder = Recorder::new(name, legacy);
    let mut actions = Vec::new();
    for (index, line) in lines {
        actions.extend(recorder.feed(*index, &BackupLine::parse(line)));
    }
    (recorder, actions)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::fixtures::{end_line, user_line as user};

    fn done(ts: &str, code: i64, reason: RunEndReason) -> Vec<u8> {
        end_line(ts, Some(code), reason, None)
    }

    /// The real transcript of a new run, with the runner's own lines around it.
    fn new_run_lines() -> Vec<(u64, Vec<u8>)> {
        let text = std::fs::read_to_string(format!(
            "{}/tests/fixtures/protocol/new_run.txt",
            env!("CARGO_MANIFEST_DIR")
        ))
        .unwrap();
        let mut lines = vec![user("2026-11-20T22:21:21.000Z", None)];
        lines.extend(
            text.lines()
                .filter_map(|l| l.strip_prefix("STDOUT "))
                .map(|l| l.as_bytes().to_vec()),
        );
        lines.push(done("2026-11-20T22:21:22.000Z", 0, RunEndReason::Completed));
        lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect()
    }

    fn kinds(actions: &[Action]) -> Vec<String> {
        actions
            .iter()
            .map(|a| match a {
                Action::Create(_) => "create".to_owned(),
                Action::Resume { .. } => "resume".to_owned(),
                Action::Event(e) => match e.role {
                    Some(r) => format!("message:{}", r.as_str()),
                    None => e.event_type.as_str().to_owned(),
                },
            })
            .collect()
    }

    #[test]
    fn a_real_new_run_becomes_the_documented_events() {
        let (recorder, actions) = replay("w1", false, &new_run_lines());
        assert_eq!(
            kinds(&actions),
            [
                "create",
                "run_start",
                "message:user",
                "post_tool",
                "message:assistant",
                "run_completed"
            ]
        );
        let sid = "0d8df837-37ba-475d-923b-58be339b3251";
        assert_eq!(recorder.session_id(), Some(sid));
        let Action::Create(create) = &actions[0] else {
            panic!()
        };
        assert_eq!(create.session_name, "w1");
        assert_eq!(create.project_dir.as_deref(), Some("/p"));
        assert_eq!(
            create.created_at.as_deref(),
            Some("2026-11-20T22:21:21.000Z")
        );
        let Action::Event(tool) = &actions[3] else {
            panic!()
        };
        assert_eq!(tool.tool_name.as_deref(), Some("Bash"));
        assert_eq!(
            tool.tool_output.as_ref().unwrap()["stdout"],
            "hello-from-tool"
        );
        assert_eq!(
            tool.timestamp, "2026-11-20T22:21:21.453Z",
            "from the assistant line before it"
        );
        let Action::Event(answer) = &actions[4] else {
            panic!()
        };
        assert_eq!(
            answer.text(),
            "The command printed hello-from-tool. Final answer: 4"
        );
        let Action::Event(end) = &actions[5] else {
            panic!()
        };
        assert_eq!(
            (end.exit_code, end.reason.as_deref()),
            (Some(0), Some("completed"))
        );
        for a in &actions {
            if let Action::Event(e) = a {
                assert_eq!(e.session_id, sid);
                assert!(e.validate().is_ok(), "{e:?}");
            }
        }
    }

    #[test]
    fn replaying_twice_gives_identical_actions_and_ids() {
        let lines = new_run_lines();
        let (_, a) = replay("w1", false, &lines);
        let (_, b) = replay("w1", false, &lines);
        assert_eq!(a, b);
        let ids: std::collections::HashSet<_> = a
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => e.event_id,
                _ => None,
            })
            .collect();
        assert_eq!(ids.len(), 5, "every event has its own id");
    }

    #[test]
    fn feeding_line_by_line_equals_replaying_the_file() {
        let lines = new_run_lines();
        let mut live = Recorder::new("w1", false);
        let mut fed = Vec::new();
        for (i, l) in &lines {
            fed.extend(live.feed(*i, &BackupLine::parse(l)));
        }
        assert_eq!(fed, replay("w1", false, &lines).1);
    }

    #[test]
    fn legacy_mode_sends_session_stop_and_no_run_start() {
        let (_, actions) = replay("w1", true, &new_run_lines());
        let k = kinds(&actions);
        assert!(!k.contains(&"run_start".to_owned()));
        assert_eq!(k.last().unwrap(), "session_stop");
    }

    #[test]
    fn a_resume_patches_and_keeps_the_session_id() {
        let sid = "11111111-2222-3333-4444-555555555555";
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (7, user("2026-01-01T00:00:00Z", Some(sid))),
            (8, format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#).into_bytes()),
            (9, format!(r#"{{"type":"result","subtype":"success","is_error":false,"result":"again","session_id":"{sid}"}}"#).into_bytes()),
            (10, done("2026-01-01T00:00:05Z", 0, RunEndReason::Completed)),
        ];
        let (_, actions) = replay("w1", false, &lines);
        assert_eq!(
            kinds(&actions),
            [
                "resume",
                "run_start",
                "message:user",
                "message:assistant",
                "run_completed"
            ]
        );
        let Action::Resume { session_id, at, .. } = &actions[0] else {
            panic!()
        };
        assert_eq!(
            (session_id.as_str(), at.as_str()),
            (sid, "2026-01-01T00:00:00Z")
        );
    }

    #[test]
    fn a_resume_without_init_is_still_recorded() {
        let sid = "00000000-0000-0000-0000-000000000000";
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", Some(sid))),
            (1, format!(r#"{{"type":"result","subtype":"error_during_execution","is_error":true,"session_id":"{sid}","errors":["No conversation found"]}}"#).into_bytes()),
            (2, done("2026-01-01T00:00:01Z", 1, RunEndReason::Error)),
        ];
        let (recorder, actions) = replay("w1", false, &lines);
        assert_eq!(
            kinds(&actions),
            ["resume", "run_start", "message:user", "run_completed"]
        );
        assert!(recorder.last_result().unwrap().is_error);
    }

    #[test]
    fn a_new_run_that_never_named_its_session_tells_the_api_nothing() {
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (1, br#"{"type":"result","subtype":"error_during_execution","is_error":true,"session_id":"00000000-0000-0000-0000-000000000000"}"#.to_vec()),
            (2, done("2026-01-01T00:00:01Z", 2, RunEndReason::Error)),
        ];
        let (recorder, actions) = replay("w1", false, &lines);
        assert!(actions.is_empty());
        assert!(!recorder.run_open());
    }

    #[test]
    fn a_run_left_open_is_closed_as_interrupted_by_the_next() {
        let sid = "s-1";
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (
                1,
                format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#)
                    .into_bytes(),
            ),
            (2, user("2026-01-01T00:01:00Z", Some(sid))),
        ];
        let (recorder, actions) = replay("w1", false, &lines);
        assert_eq!(
            kinds(&actions),
            ["create", "run_start", "message:user", "run_completed"]
        );
        let Action::Event(end) = &actions[3] else {
            panic!()
        };
        assert_eq!(end.reason.as_deref(), Some("interrupted"));
        assert!(recorder.run_open(), "the second run is open");
    }

    /// The real transcript's lines, its run opened with an id.
    fn new_run_lines_with_id() -> Vec<(u64, Vec<u8>)> {
        let mut lines = new_run_lines();
        let mut first: Value = serde_json::from_slice(&lines[0].1).unwrap();
        first["run_id"] = "run-1".into();
        lines[0].1 = serde_json::to_vec(&first).unwrap();
        lines
    }

    fn ids(actions: &[Action]) -> Vec<Uuid> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => e.event_id,
                _ => None,
            })
            .collect()
    }

    /// The lines with `line` inserted at position `at`, renumbered.
    fn insert(lines: &[(u64, Vec<u8>)], at: usize, line: &[u8]) -> Vec<(u64, Vec<u8>)> {
        let mut texts: Vec<Vec<u8>> = lines.iter().map(|(_, l)| l.clone()).collect();
        texts.insert(at, line.to_vec());
        texts
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect()
    }

    #[test]
    fn a_runs_event_ids_survive_an_inserted_line() {
        let lines = new_run_lines_with_id();
        let (_, before) = replay("w1", false, &lines);
        for at in [1, 3, lines.len() - 1] {
            let (_, after) = replay("w1", false, &insert(&lines, at, b"garbage {"));
            assert_eq!(ids(&after), ids(&before), "a line inserted at {at}");
            assert_eq!(after, before, "and the same events");
        }
    }

    #[test]
    fn a_cut_closing_line_closes_the_run_with_the_same_id() {
        let lines = new_run_lines_with_id();
        let (_, whole) = replay("w1", false, &lines);
        let closing = &lines.last().unwrap().1;
        let mut cut = lines[..lines.len() - 1].to_vec();
        cut.push((cut.len() as u64, closing[..closing.len() / 2].to_vec()));
        let mut recorder = Recorder::new("w1", false);
        for (i, l) in &cut {
            recorder.feed(*i, &BackupLine::parse(l));
        }
        assert!(recorder.run_open(), "the cut line closes nothing");
        let closed = recorder.feed(
            cut.len() as u64,
            &BackupLine::parse(&done(
                "2026-11-20T23:00:00.000Z",
                0,
                RunEndReason::Interrupted,
            )),
        );
        assert_eq!(
            ids(&closed),
            ids(&whole[whole.len() - 1..]),
            "one run, one end"
        );
    }

    #[test]
    fn runs_without_ids_keep_the_ids_they_were_stored_with() {
        // What the previous release derived: the line's position and the kind.
        let (_, actions) = replay("w1", false, &new_run_lines());
        let sid = "0d8df837-37ba-475d-923b-58be339b3251";
        let old = |index: u64, kind: &str| {
            Uuid::new_v5(
                &EVENT_ID_NAMESPACE,
                format!("{sid}/{index}/{kind}").as_bytes(),
            )
        };
        let last = new_run_lines().len() as u64 - 1;
        assert_eq!(ids(&actions)[0], old(0, "run_start"));
        assert_eq!(ids(&actions)[1], old(0, "prompt"));
        assert_eq!(*ids(&actions).last().unwrap(), old(last, "run_end"));
    }

    #[test]
    fn natural_keys_match_what_an_inserted_line_renumbered() {
        let lines = new_run_lines();
        let events = |lines: &[(u64, Vec<u8>)]| -> Vec<Event> {
            replay("w1", false, lines)
                .1
                .into_iter()
                .filter_map(|a| match a {
                    Action::Event(e) => Some(*e),
                    _ => None,
                })
                .collect()
        };
        let before = events(&lines);
        let after = events(&insert(&lines, 3, b"garbage {"));
        assert_ne!(
            before.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            after.iter().map(|e| e.event_id).collect::<Vec<_>>(),
            "line positions moved"
        );
        let keys = natural_keys(&before);
        assert_eq!(keys, natural_keys(&after));
        let unique: std::collections::HashSet<_> = keys.iter().collect();
        assert_eq!(unique.len(), keys.len(), "{keys:?}");
    }

    #[test]
    fn a_resumed_runs_figures_are_its_own() {
        let sid = "11111111-2222-3333-4444-555555555555";
        let result = |cost: f64, input: u64| {
            format!(r#"{{"type":"result","subtype":"success","is_error":false,"result":"ok","session_id":"{sid}","total_cost_usd":{cost},"num_turns":1,"usage":{{"input_tokens":12,"output_tokens":7}},"modelUsage":{{"m":{{"inputTokens":{input},"costUSD":{cost}}}}}}}"#).into_bytes()
        };
        let init = format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}","claude_code_version":"2.1.329"}}"#).into_bytes();
        let mut lines = Vec::new();
        for (n, (cost, input)) in [(0.000188, 12), (0.000376, 24), (0.0005639999999999999, 36)]
            .into_iter()
            .enumerate()
        {
            let ts = format!("2026-01-01T00:0{n}:00Z");
            lines.push(user(&ts, (n > 0).then_some(sid)));
            lines.push(init.clone());
            lines.push(result(cost, input));
            lines.push(done(&ts, 0, RunEndReason::Completed));
        }
        let lines: Vec<(u64, Vec<u8>)> = lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect();
        let ends: Vec<Event> = replay("w1", false, &lines)
            .1
            .into_iter()
            .filter_map(|a| match a {
                Action::Event(e) if e.event_type == EventType::RunCompleted => Some(*e),
                _ => None,
            })
            .collect();
        let costs: Vec<f64> = ends.iter().map(|e| e.cost_usd.unwrap()).collect();
        assert_eq!(costs, [0.000188, 0.000188, 0.000188]);
        assert_eq!(
            ends[2].model_usage.as_ref().unwrap()["m"]["inputTokens"],
            12
        );
        // The runner knows only the lines before its run, and learns them.
        let mut live = Recorder::new("w1", false);
        live.catch_up(&lines[..8]);
        let mut fed = Vec::new();
        for (i, l) in &lines[8..] {
            fed.extend(live.feed(*i, &BackupLine::parse(l)));
        }
        let Some(Action::Event(end)) = fed.last() else {
            panic!()
        };
        assert_eq!(end.cost_usd, Some(0.000188));
    }

    /// A run whose model thinks, narrates, calls a subagent that calls a
    /// tool, and answers; streamed (`stream_event` lines) as the CLI prints
    /// with `--include-partial-messages`.
    fn conversation_lines() -> Vec<(u64, Vec<u8>)> {
        let sid = "s-talk";
        let assistant = |uuid: &str, parent: Option<&str>, block: Value| {
            serde_json::json!({"type": "assistant", "uuid": uuid, "parent_tool_use_id": parent,
                "message": {"id": "m", "model": "claude", "content": [block]}, "session_id": sid,
                "timestamp": "2026-01-01T00:00:01Z"})
            .to_string()
            .into_bytes()
        };
        let stream = |event: Value| {
            serde_json::json!({"type": "stream_event", "event": event, "session_id": sid})
                .to_string()
                .into_bytes()
        };
        let hook = |name: &str, id: &str| {
            serde_json::json!({"type": "control_request", "request_id": format!("r-{id}-{name}"),
                "request": {"subtype": "hook_callback", "input": {"hook_event_name": name,
                "tool_name": "Bash", "tool_use_id": id, "tool_input": {"command": "ls"}}}})
            .to_string()
            .into_bytes()
        };
        let text = |t: &str| serde_json::json!({"type": "text", "text": t});
        let lines = vec![
            user("2026-01-01T00:00:00Z", None),
            format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#).into_bytes(),
            stream(serde_json::json!({"type": "message_start", "message": {"id": "m"}})),
            assistant("u1", None, serde_json::json!({"type": "thinking", "thinking": "Hmm."})),
            stream(serde_json::json!({"type": "content_block_start", "index": 1})),
            stream(serde_json::json!({"type": "content_block_delta", "index": 1, "delta": {"type": "text_delta", "text": "I will ask a helper."}})),
            assistant("u2", None, text("I will ask a helper.")),
            stream(serde_json::json!({"type": "content_block_stop", "index": 1})),
            stream(serde_json::json!({"type": "content_block_start", "index": 2})),
            assistant("u3", None, serde_json::json!({"type": "tool_use", "id": "task-1", "name": "Task", "input": {}})),
            hook("PreToolUse", "task-1"),
            assistant("u4", Some("task-1"), text("Helper here.")),
            assistant("u5", Some("task-1"), serde_json::json!({"type": "tool_use", "id": "sub-1", "name": "Bash", "input": {}})),
            hook("PreToolUse", "sub-1"),
            hook("PostToolUse", "sub-1"),
            hook("PostToolUse", "task-1"),
            br#"{"type":"user","message":{"content":[]}}"#.to_vec(),
            stream(serde_json::json!({"type": "message_start", "message": {"id": "m2"}})),
            assistant("u6", None, text("All done: 4")),
            stream(serde_json::json!({"type": "content_block_stop", "index": 0})),
            stream(serde_json::json!({"type": "message_stop"})),
            format!(r#"{{"type":"result","subtype":"success","is_error":false,"result":"All done: 4","session_id":"{sid}"}}"#).into_bytes(),
            done("2026-01-01T00:00:02Z", 0, RunEndReason::Completed),
        ];
        lines
            .into_iter()
            .enumerate()
            .map(|(i, l)| (i as u64, l))
            .collect()
    }

    fn events(actions: &[Action]) -> Vec<Event> {
        actions
            .iter()
            .filter_map(|a| match a {
                Action::Event(e) => Some((**e).clone()),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn narration_thinking_and_a_subagents_calls_become_events_and_the_answer_comes_once() {
        let (_, actions) = replay("w1", false, &conversation_lines());
        let shown: Vec<String> = events(&actions)
            .iter()
            .map(|e| {
                let kind = match (e.event_type, e.is_final) {
                    (EventType::Message, Some(false)) => {
                        let block = &e.content.as_ref().unwrap()[0];
                        format!("{}:{}", block.kind, block.text.as_deref().unwrap())
                    }
                    (EventType::Message, _) => format!("{}:{}", e.role.unwrap().as_str(), e.text()),
                    (t, _) => t.as_str().to_owned(),
                };
                match &e.parent_tool_use_id {
                    Some(parent) => format!("{kind} (in {parent})"),
                    None => kind,
                }
            })
            .collect();
        assert_eq!(
            shown,
            [
                "run_start",
                "user:do it",
                "thinking:Hmm.",
                "text:I will ask a helper.",
                "pre_tool",
                "text:Helper here. (in task-1)",
                "pre_tool (in task-1)",
                "post_tool (in task-1)",
                "post_tool",
                "assistant:All done: 4",
                "run_completed",
            ]
        );
        let all = events(&actions);
        assert!(
            all.iter().filter(|e| e.is_answer()).count() == 1,
            "one answer"
        );
        for e in &all {
            assert!(e.validate().is_ok(), "{e:?}");
        }
        // Line by line as the runner feeds them: the same events.
        let mut live = Recorder::new("w1", false);
        let mut fed = Vec::new();
        for (i, l) in &conversation_lines() {
            fed.extend(live.feed(*i, &BackupLine::parse(l)));
        }
        assert_eq!(fed, actions);
    }

    #[test]
    fn narration_ids_come_from_the_lines_uuid_and_keys_tell_kinds_apart() {
        let lines = conversation_lines();
        let (_, before) = replay("w1", false, &lines);
        let after = replay("w1", false, &insert(&lines, 5, b"garbage {")).1;
        // Runs without ids derive ids from positions; with one they survive.
        let with_id = |lines: &[(u64, Vec<u8>)]| {
            let mut lines = lines.to_vec();
            let mut first: Value = serde_json::from_slice(&lines[0].1).unwrap();
            first["run_id"] = "run-9".into();
            lines[0].1 = serde_json::to_vec(&first).unwrap();
            ids(&replay("w1", false, &lines).1)
        };
        assert_eq!(with_id(&lines), with_id(&insert(&lines, 5, b"garbage {")));
        let unique: std::collections::HashSet<_> = with_id(&lines).into_iter().collect();
        assert_eq!(unique.len(), events(&before).len());
        let keys = natural_keys(&events(&before));
        assert_eq!(keys, natural_keys(&events(&after)));
        assert!(keys.iter().any(|k| k.ends_with("/narration#2")), "{keys:?}");
        assert!(keys.iter().any(|k| k.ends_with("/thinking#1")), "{keys:?}");
        assert!(keys.iter().any(|k| k.ends_with("/message#1")), "{keys:?}");
    }

    #[test]
    fn a_subagents_hook_before_its_calls_line_is_nested_by_the_agents_id() {
        let sid = "s-1";
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (1, format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#).into_bytes()),
            (2, br#"{"type":"system","subtype":"task_started","task_id":"agent-7","tool_use_id":"task-1"}"#.to_vec()),
            (3, br#"{"type":"control_request","request_id":"r","request":{"subtype":"hook_callback","input":{"hook_event_name":"PreToolUse","tool_name":"Bash","tool_use_id":"sub-1","agent_id":"agent-7"}}}"#.to_vec()),
        ];
        let got = events(&replay("w1", false, &lines).1);
        assert_eq!(got[2].parent_tool_use_id.as_deref(), Some("task-1"));
    }

    #[test]
    fn text_that_is_not_the_answer_stays_narration() {
        let sid = "s-1";
        let said = |t: &str| {
            format!(r#"{{"type":"assistant","uuid":"u","message":{{"content":[{{"type":"text","text":"{t}"}}]}}}}"#).into_bytes()
        };
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (
                1,
                format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#)
                    .into_bytes(),
            ),
            (2, said("Working on it")),
            // A stopped run: no result; its last words are narration.
            (3, done("2026-01-01T00:00:05Z", 143, RunEndReason::Stopped)),
        ];
        let got = events(&replay("w1", false, &lines).1);
        let narration: Vec<_> = got.iter().filter(|e| e.is_final == Some(false)).collect();
        assert_eq!(narration.len(), 1);
        assert_eq!(narration[0].text(), "Working on it");
        assert!(!got.iter().any(Event::is_answer));
        // The CLI's own text for an API error is no narration.
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (1, format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#).into_bytes()),
            (2, br#"{"type":"assistant","message":{"model":"<synthetic>","content":[{"type":"text","text":"API Error"}]}}"#.to_vec()),
            (3, format!(r#"{{"type":"result","subtype":"success","is_error":true,"result":"API Error","session_id":"{sid}"}}"#).into_bytes()),
            (4, done("2026-01-01T00:00:05Z", 1, RunEndReason::Error)),
        ];
        let got = events(&replay("w1", false, &lines).1);
        assert!(
            !got.iter()
                .any(|e| e.event_type == EventType::Message && e.role == Some(Role::Assistant))
        );
    }

    #[test]
    fn a_changes_line_becomes_one_changes_event() {
        let sid = "s-1";
        let changes = ChangesLine {
            timestamp: "2026-01-01T00:00:04Z".into(),
            files: vec![crate::wire::ChangedFile {
                path: "a.txt".into(),
                added: Some(2),
                removed: Some(1),
            }],
            diff: "diff --git a/a.txt b/a.txt\n".into(),
            diff_truncated: false,
            base: None,
        };
        let lines: Vec<(u64, Vec<u8>)> = vec![
            (0, user("2026-01-01T00:00:00Z", None)),
            (
                1,
                format!(r#"{{"type":"system","subtype":"init","session_id":"{sid}"}}"#)
                    .into_bytes(),
            ),
            (2, changes.to_line()),
            (3, done("2026-01-01T00:00:05Z", 0, RunEndReason::Completed)),
        ];
        let got = events(&replay("w1", false, &lines).1);
        let change = got
            .iter()
            .find(|e| e.event_type == EventType::Changes)
            .unwrap();
        assert_eq!(change.files.as_ref().unwrap()[0].added, Some(2));
        assert_eq!(change.timestamp, "2026-01-01T00:00:04Z");
        assert_eq!(change.diff_truncated, None);
        assert!(change.validate().is_ok());
    }

    #[test]
    fn huge_fields_are_cut_to_fit_the_api() {
        assert_eq!(fit_text("short".into(), 10), "short");
        let cut = fit_text("é".repeat(10), 5);
        assert!(cut.starts_with("éé") && cut.ends_with(TRUNCATION_MARK));
        let big = serde_json::json!({"stdout": "x".repeat(MAX_TOOL_FIELD)});
        let Value::String(s) = fit_value(big) else {
            panic!()
        };
        assert!(s.len() < MAX_TOOL_FIELD + 200);
    }
}
