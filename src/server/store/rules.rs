//! What both engines decide alike, apart from their SQL: how a session's
//! row reads, what a run end adds to its session, and what
//! `GET /sessions/{id}/result` answers.

use super::row::StoredRow;
use super::{ResultLookup, StoreError};
use crate::wire::{
    Event, EventType, LastRunSummary, ResultAnswer, RunFigures, Session, SessionCreate,
    SessionPatch, SessionStatus, Usage, parse_timestamp, round_usd,
};

/// The refusal of a session id that is taken.
pub(super) fn session_exists(session_id: &str) -> StoreError {
    StoreError::Conflict(format!("session '{session_id}' already exists"))
}

/// The refusal of an unknown session.
pub(super) fn no_session(session_id: &str) -> StoreError {
    StoreError::NotFound(format!("session '{session_id}' not found"))
}

/// The refusal of a name taken in a project directory by `other`.
pub(super) fn name_taken(name: &str, project_dir: Option<&str>, other: &str) -> StoreError {
    StoreError::Conflict(match project_dir {
        Some(dir) => format!(
            "a session named '{name}' already exists in project_dir '{dir}' (session_id {other})"
        ),
        None => format!(
            "a session named '{name}' without a project_dir already exists (session_id {other})"
        ),
    })
}

/// A session as its row is read (`SELECT <every session column>`, in the
/// engines' order): counts below 0 read as 0, an unknown status as finished.
pub(super) fn session_from_row<R: StoredRow>(row: &R) -> Result<Session, R::Error> {
    let status: String = row.column(2)?;
    let count = |i: usize| -> Result<u64, R::Error> { Ok(row.column::<i64>(i)?.max(0) as u64) };
    let ended_at: Option<String> = row.column(16)?;
    Ok(Session {
        session_id: row.column(0)?,
        session_name: row.column(1)?,
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Finished),
        created_at: row.column(3)?,
        project_dir: row.column(4)?,
        agent_name: row.column(5)?,
        last_resumed_at: row.column(6)?,
        worktree: row.column(17)?,
        branch: row.column(18)?,
        parent_session_id: row.column(19)?,
        pending_requests: count(20)?,
        host: row.column(21)?,
        forked_from: row.column(22)?,
        budget_usd: row.column(23)?,
        num_runs: count(7)?,
        cost_usd: row.column(8)?,
        usage: Usage {
            input_tokens: count(9)?,
            output_tokens: count(10)?,
            cache_creation_input_tokens: count(11)?,
            cache_read_input_tokens: count(12)?,
        },
        last_run: match ended_at {
            Some(ended_at) => Some(LastRunSummary {
                reason: row.column(13)?,
                exit_code: row.column(14)?,
                duration_ms: row.column::<Option<i64>>(15)?.map(|d| d.max(0) as u64),
                ended_at,
            }),
            None => None,
        },
    })
}

/// A session as it is created: running, without runs.
pub(super) fn new_session(create: SessionCreate, created_at: String) -> Session {
    Session {
        session_id: create.session_id,
        session_name: create.session_name,
        status: SessionStatus::Running,
        created_at,
        project_dir: create.project_dir,
        agent_name: create.agent_name,
        last_resumed_at: None,
        worktree: create.worktree,
        branch: create.branch,
        parent_session_id: create.parent_session_id,
        forked_from: create.forked_from,
        budget_usd: create.budget_usd,
        pending_requests: 0,
        host: None,
        num_runs: 0,
        cost_usd: None,
        usage: Default::default(),
        last_run: None,
    }
}

/// Applies `patch` to `session`; answers whether its name or project
/// changed (its name must then be free there) and whether its project or
/// agent changed (its runs, grouped by them, must follow).
pub(super) fn apply_patch(session: &mut Session, patch: SessionPatch) -> (bool, bool) {
    let renamed = patch.session_name.is_some() || patch.project_dir.is_some();
    let regrouped = patch.project_dir.is_some() || patch.agent_name.is_some();
    if let Some(name) = patch.session_name {
        session.session_name = name;
    }
    if let Some(dir) = patch.project_dir {
        session.project_dir = Some(dir);
    }
    if let Some(agent) = patch.agent_name {
        session.agent_name = Some(agent);
    }
    if let Some(at) = patch.last_resumed_at {
        session.last_resumed_at = Some(at);
    }
    if let Some(budget) = patch.budget_usd {
        session.budget_usd = Some(budget);
    }
    (renamed, regrouped)
}

/// True for the events that end a run.
pub(super) fn ends_run(event: &Event) -> bool {
    matches!(
        event.event_type,
        EventType::RunCompleted | EventType::SessionStop
    )
}

/// True for the events stored with others in one statement (PostgreSQL's
/// `plain`): those that end no run, and touch neither a request nor a
/// launched run, so that only their session's status may follow them.
pub(super) fn is_plain(event: &Event) -> bool {
    !ends_run(event)
        && event.request_id.is_none()
        && !(event.run_id.is_some()
            && matches!(
                event.event_type,
                EventType::RunStart | EventType::SessionStart
            ))
}

/// The time as stored: RFC 3339 UTC with milliseconds, so that text order
/// is time order.
pub(in crate::server::store) fn normalize(timestamp: &str) -> String {
    parse_timestamp(timestamp)
        .map(|t| t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true))
        .unwrap_or_else(|_| timestamp.to_owned())
}

/// A count as a database integer.
pub(super) fn signed(n: Option<u64>) -> Option<i64> {
    n.map(|n| i64::try_from(n).unwrap_or(i64::MAX))
}

/// A run's figures as the `runs` table keeps them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub(super) struct RunColumns {
    pub cost_usd: Option<f64>,
    pub input_tokens: Option<i64>,
    pub output_tokens: Option<i64>,
    pub cache_creation_input_tokens: Option<i64>,
    pub cache_read_input_tokens: Option<i64>,
    pub num_turns: Option<i64>,
    pub duration_ms: Option<i64>,
    pub duration_api_ms: Option<i64>,
}

impl RunColumns {
    pub(super) fn of(f: &RunFigures) -> RunColumns {
        let usage = f.usage;
        RunColumns {
            cost_usd: f.cost_usd,
            input_tokens: signed(usage.map(|u| u.input_tokens)),
            output_tokens: signed(usage.map(|u| u.output_tokens)),
            cache_creation_input_tokens: signed(usage.map(|u| u.cache_creation_input_tokens)),
            cache_read_input_tokens: signed(usage.map(|u| u.cache_read_input_tokens)),
            num_turns: signed(f.num_turns),
            duration_ms: signed(f.duration_ms),
            duration_api_ms: signed(f.duration_api_ms),
        }
    }
}

/// Adds the run that `event` ends to `session` (whose status becomes
/// `status`); answers the run's end time as stored and its figures.
pub(super) fn add_run(
    session: &mut Session,
    event: &Event,
    status: SessionStatus,
) -> (String, RunColumns) {
    let f = event.figures();
    let ended_at = normalize(&event.timestamp);
    session.status = status;
    session.num_runs += 1;
    if let Some(cost) = f.cost_usd {
        session.cost_usd = Some(round_usd(session.cost_usd.unwrap_or(0.0) + cost));
    }
    if let Some(usage) = f.usage {
        session.usage = session.usage.plus(usage);
    }
    session.last_run = Some(LastRunSummary {
        reason: event.reason.clone(),
        exit_code: event.exit_code,
        duration_ms: f.duration_ms,
        ended_at: ended_at.clone(),
    });
    (ended_at, RunColumns::of(&f))
}

/// A stored event body, read back.
pub(super) fn parse_stored(body: &str) -> Result<Event, StoreError> {
    serde_json::from_str(body)
        .map_err(|e| StoreError::Unavailable(format!("stored event is unreadable: {e}")))
}

/// What `GET /sessions/{id}/result` answers for a finished session, from
/// the end of its last run and the last answer within that run.
pub(super) fn result_of(end: Option<&Event>, answer: Option<&Event>) -> ResultLookup {
    let reason = end.and_then(|e| e.reason.as_deref());
    if let (Some(end), Some("error")) = (end, reason) {
        let why = match (&end.error, end.exit_code) {
            (Some(error), _) if !error.trim().is_empty() => error.clone(),
            (_, Some(code)) => format!("the last run failed (exit code {code})"),
            _ => "the last run failed".to_owned(),
        };
        return ResultLookup::Failed(why);
    }
    match (answer, reason) {
        (Some(event), _) => ResultLookup::Found(ResultAnswer {
            result: event.text(),
            structured_output: event.structured_output.clone(),
        }),
        (None, Some(reason @ ("interrupted" | "stopped"))) => ResultLookup::Failed(format!(
            "the last run was {reason} before it produced a result"
        )),
        (None, _) => ResultLookup::NoResult,
    }
}
