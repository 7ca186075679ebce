//! The writes, as the writer applies them inside its transaction. Plain
//! events (neither ending a run nor creating their session) that arrive
//! together are stored together: one read of their sessions, one insert,
//! one status update, whatever their number; every other write is applied
//! alone in a savepoint. Both ways take the same decisions as SQLite's
//! (`store::rules`), in arrival order.

use super::reader::{get_session, session_by_name};
use super::{Db, budgets, callbacks, exec, hosts, launches, plain, requests, row};
use crate::server::changes::Change;
use crate::server::store::rules::{self, RunColumns, session_from_row, signed};
use crate::server::store::{Added, StoreError};
use crate::wire::{
    Callback, CallbackCreate, DecisionBody, DeletedCounts, Event, Host, HostRegister, Run,
    RunCreate, RunExited, Session, SessionCreate, SessionPatch, SessionStatus,
};

/// One write, kept until its batch commits (a batch that meets a deadlock
/// with another replica is applied again).
pub(super) enum Write {
    CreateSession {
        create: SessionCreate,
        created_at: String,
    },
    AddEvent {
        event: Box<Event>,
        body: String,
        create_if_missing: bool,
    },
    UpdateSession {
        session_id: String,
        patch: SessionPatch,
    },
    DeleteSession {
        session_id: String,
    },
    Decide {
        session_id: String,
        request_id: String,
        body: DecisionBody,
    },
    CreateRun {
        create: Box<RunCreate>,
        run_id: String,
    },
    Dispatch,
    Claim {
        run_id: String,
        host: String,
        instance: String,
    },
    Exited {
        run_id: String,
        exited: RunExited,
    },
    StopRun {
        run_id: String,
    },
    Register {
        register: HostRegister,
        embedded: bool,
        timeout_seconds: f64,
    },
    Heartbeat {
        name: String,
        instance: String,
    },
    Leave {
        name: String,
        instance: String,
    },
    Sweep {
        timeout_ms: u64,
        queue_timeout_ms: Option<u64>,
    },
    Grace,
    RegisterCallback {
        create: CallbackCreate,
    },
    EndCallback {
        child_run_id: String,
        error: String,
    },
}

/// What a write answers.
pub(super) enum Done {
    Session(Box<Session>),
    Added(Added),
    Deleted(DeletedCounts),
    Nothing,
    Count(usize),
    Run(Box<Run>),
    Stopped(Box<Run>, bool),
    Host(Box<Host>),
    Callback(Box<Callback>),
}

fn unexpected() -> StoreError {
    StoreError::Unavailable("unexpected answer".to_owned())
}

impl Done {
    pub(super) fn session(self) -> Result<Session, StoreError> {
        match self {
            Done::Session(session) => Ok(*session),
            _ => Err(StoreError::Unavailable("unexpected answer".to_owned())),
        }
    }

    pub(super) fn added(self) -> Result<Added, StoreError> {
        match self {
            Done::Added(added) => Ok(added),
            _ => Err(StoreError::Unavailable("unexpected answer".to_owned())),
        }
    }

    pub(super) fn deleted(self) -> Result<DeletedCounts, StoreError> {
        match self {
            Done::Deleted(deleted) => Ok(deleted),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn nothing(self) -> Result<(), StoreError> {
        match self {
            Done::Nothing => Ok(()),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn count(self) -> Result<usize, StoreError> {
        match self {
            Done::Count(n) => Ok(n),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn run(self) -> Result<Run, StoreError> {
        match self {
            Done::Run(run) => Ok(*run),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn stopped(self) -> Result<(Run, bool), StoreError> {
        match self {
            Done::Stopped(run, asked) => Ok((*run, asked)),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn callback(self) -> Result<Callback, StoreError> {
        match self {
            Done::Callback(callback) => Ok(*callback),
            _ => Err(unexpected()),
        }
    }

    pub(super) fn host(self) -> Result<Host, StoreError> {
        match self {
            Done::Host(host) => Ok(*host),
            _ => Err(unexpected()),
        }
    }
}

/// A write's outcome: its answer and the changes to publish once committed,
/// or why it was refused (and undone alone).
pub(super) type Outcome = Result<(Done, Vec<Change>), StoreError>;

impl Write {
    /// A plain event: stored with the others that arrive with it.
    pub(super) fn plain_event(&self) -> Option<(&Event, &str)> {
        match self {
            Write::AddEvent {
                event,
                body,
                create_if_missing: false,
            } if rules::is_plain(event) => Some((event, body)),
            _ => None,
        }
    }
}

/// True for the errors that undo the whole batch rather than one write:
/// the database went away, or another replica's transaction got in the way.
pub(super) fn fails_batch(e: &StoreError) -> bool {
    matches!(e, StoreError::Down(_) | StoreError::Contention(_))
}

/// Applies `writes` in order inside the open transaction. `Err` when the
/// batch as a whole failed.
pub(super) async fn apply_all(db: &impl Db, writes: &[Write]) -> Result<Vec<Outcome>, StoreError> {
    let mut outcomes = Vec::with_capacity(writes.len());
    let mut i = 0;
    while i < writes.len() {
        let run = writes[i..]
            .iter()
            .take_while(|w| w.plain_event().is_some())
            .count();
        if run > 1 {
            let events: Vec<(&Event, &str)> = writes[i..i + run]
                .iter()
                .filter_map(Write::plain_event)
                .collect();
            match in_savepoint(db, plain::add_events(db, &events)).await? {
                Ok(each) => outcomes.extend(each),
                // Something in the set failed: each one alone says which.
                Err(_) => {
                    for write in &writes[i..i + run] {
                        outcomes.push(in_savepoint(db, apply(db, write)).await?);
                    }
                }
            }
            i += run;
        } else {
            outcomes.push(in_savepoint(db, apply(db, &writes[i])).await?);
            i += 1;
        }
    }
    Ok(outcomes)
}

/// Runs `work` in a savepoint, undone if it fails; the outer `Err` when the
/// batch cannot go on.
async fn in_savepoint<T>(
    db: &impl Db,
    work: impl Future<Output = Result<T, StoreError>>,
) -> Result<Result<T, StoreError>, StoreError> {
    exec(db, "SAVEPOINT job", &[]).await?;
    match work.await {
        Err(e) if fails_batch(&e) => Err(e),
        Err(e) => {
            exec(db, "ROLLBACK TO SAVEPOINT job", &[]).await?;
            exec(db, "RELEASE SAVEPOINT job", &[]).await?;
            Ok(Err(e))
        }
        Ok(done) => {
            exec(db, "RELEASE SAVEPOINT job", &[]).await?;
            Ok(Ok(done))
        }
    }
}

async fn apply(db: &impl Db, write: &Write) -> Outcome {
    let mut changes = Vec::new();
    let done = match write {
        Write::CreateSession { create, created_at } => {
            let created_at = create.created_at.clone().unwrap_or(created_at.clone());
            let session = insert_session(db, create.clone(), created_at).await?;
            changes.push(Change::SessionCreated(session.clone()));
            Done::Session(Box::new(session))
        }
        Write::AddEvent {
            event,
            body,
            create_if_missing,
        } => Done::Added(add_event(db, event, body, *create_if_missing, &mut changes).await?),
        Write::UpdateSession { session_id, patch } => {
            let session = update_session(db, session_id, patch.clone()).await?;
            changes.push(Change::SessionUpdated(session.clone()));
            Done::Session(Box::new(session))
        }
        Write::DeleteSession { session_id } => {
            let deleted = delete_session(db, session_id).await?;
            changes.push(Change::SessionDeleted(session_id.clone()));
            Done::Deleted(deleted)
        }
        Write::Decide {
            session_id,
            request_id,
            body,
        } => {
            requests::decide(db, session_id, request_id, body.clone(), &mut changes).await?;
            Done::Nothing
        }
        Write::CreateRun { create, run_id } => Done::Run(Box::new(
            launches::create(db, create, run_id, &mut changes).await?,
        )),
        Write::Dispatch => {
            callbacks::deliver(db, &mut changes).await?;
            Done::Count(launches::assign(db, &mut changes).await?)
        }
        Write::Claim {
            run_id,
            host,
            instance,
        } => Done::Run(Box::new(launches::claim(db, run_id, host, instance).await?)),
        Write::Exited { run_id, exited } => Done::Run(Box::new(
            launches::exited(db, run_id, exited, &mut changes).await?,
        )),
        Write::StopRun { run_id } => {
            let (run, asked) = launches::stop(db, run_id, &mut changes).await?;
            Done::Stopped(Box::new(run), asked)
        }
        Write::Register {
            register,
            embedded,
            timeout_seconds,
        } => Done::Host(Box::new(
            hosts::register(db, register, *embedded, *timeout_seconds, &mut changes).await?,
        )),
        Write::Heartbeat { name, instance } => Done::Host(Box::new(
            hosts::heartbeat(db, name, instance, &mut changes).await?,
        )),
        Write::Leave { name, instance } => Done::Host(Box::new(
            hosts::leave(db, name, instance, &mut changes).await?,
        )),
        Write::Sweep {
            timeout_ms,
            queue_timeout_ms,
        } => {
            hosts::sweep(db, *timeout_ms, *queue_timeout_ms, &mut changes).await?;
            Done::Nothing
        }
        Write::Grace => {
            hosts::grace(db).await?;
            Done::Nothing
        }
        Write::RegisterCallback { create } => {
            Done::Callback(Box::new(callbacks::register(db, create).await?))
        }
        Write::EndCallback {
            child_run_id,
            error,
        } => Done::Callback(Box::new(callbacks::end(db, child_run_id, error).await?)),
    };
    Ok((done, changes))
}

const SESSION_FOR_UPDATE: &str =
    super::reader::select_sessions!("WHERE session_id = $1 FOR UPDATE");

pub(super) async fn locked_session(db: &impl Db, id: &str) -> Result<Option<Session>, StoreError> {
    row(db, SESSION_FOR_UPDATE, &[&id])
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
}

pub(super) async fn insert_session(
    db: &impl Db,
    create: SessionCreate,
    created_at: String,
) -> Result<Session, StoreError> {
    if get_session(db, &create.session_id).await?.is_some() {
        return Err(rules::session_exists(&create.session_id));
    }
    check_name_free(
        db,
        &create.session_name,
        create.project_dir.as_deref(),
        None,
    )
    .await?;
    let inserted = exec(
        db,
        "INSERT INTO sessions (session_id, session_name, status, created_at, project_dir, agent_name,
                               worktree, branch, parent_session_id, forked_from, budget_usd)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        &[
            &create.session_id,
            &create.session_name,
            &SessionStatus::Running.as_str(),
            &created_at,
            &create.project_dir,
            &create.agent_name,
            &create.worktree,
            &create.branch,
            &create.parent_session_id,
            &create.forked_from,
            &create.budget_usd,
        ],
    )
    .await;
    match inserted {
        Ok(_) => Ok(rules::new_session(create, created_at)),
        // Another replica created it a moment ago: say what is taken.
        Err(StoreError::Conflict(_)) => {
            if get_session(db, &create.session_id).await?.is_some() {
                return Err(rules::session_exists(&create.session_id));
            }
            check_name_free(
                db,
                &create.session_name,
                create.project_dir.as_deref(),
                None,
            )
            .await?;
            Err(rules::session_exists(&create.session_id))
        }
        Err(e) => Err(e),
    }
}

async fn check_name_free(
    db: &impl Db,
    name: &str,
    project_dir: Option<&str>,
    except_id: Option<&str>,
) -> Result<(), StoreError> {
    match session_by_name(db, name, project_dir).await? {
        Some(other) if Some(other.session_id.as_str()) != except_id => {
            Err(rules::name_taken(name, project_dir, &other.session_id))
        }
        _ => Ok(()),
    }
}

/// Stores one event, as SQLite's `AddEvent` does.
pub(super) async fn add_event(
    db: &impl Db,
    event: &Event,
    body: &str,
    create_if_missing: bool,
    changes: &mut Vec<Change>,
) -> Result<Added, StoreError> {
    let mut session = match locked_session(db, &event.session_id).await? {
        Some(session) => session,
        None if create_if_missing => {
            let create = SessionCreate {
                session_id: event.session_id.clone(),
                session_name: event.session_name.clone(),
                ..SessionCreate::default()
            };
            let session = insert_session(db, create, crate::wire::now_rfc3339()).await?;
            changes.push(Change::SessionCreated(session.clone()));
            session
        }
        None => return Err(rules::no_session(&event.session_id)),
    };
    let ends_run = rules::ends_run(event);
    let Some(id) = insert_event_row(db, event, body).await? else {
        let filled = ends_run && fill_run(db, event, body).await?;
        if filled && let Some(session) = get_session(db, &event.session_id).await? {
            changes.push(Change::SessionUpdated(session));
        }
        return Ok(Added {
            duplicate: true,
            filled,
        });
    };
    changes.push(Change::Event {
        session_id: event.session_id.clone(),
        id,
        body: body.to_owned(),
    });
    let moved = launches::on_event(db, event, &mut session, changes).await?;
    if ends_run {
        // Nothing of the run is left waiting.
        insert_run(db, id, event, &mut session, SessionStatus::Finished).await?;
        requests::close_all(db, &mut session).await?;
        callbacks::on_run_end(db, event).await?;
        budgets::enforce(db, &event.session_id, changes).await?;
        changes.push(Change::SessionUpdated(session));
    } else if let Some(status) = event.event_type.status_effect()
        && status != session.status
    {
        exec(
            db,
            "UPDATE sessions SET status = $1 WHERE session_id = $2",
            &[&status.as_str(), &event.session_id],
        )
        .await?;
        session.status = status;
        changes.push(Change::SessionUpdated(session));
    } else if requests::on_event(db, event, &mut session).await? || moved {
        changes.push(Change::SessionUpdated(session));
    }
    Ok(Added {
        duplicate: false,
        filled: false,
    })
}

/// Inserts one event row; `None` when its `event_id` is already stored in
/// that session, else the row's `id`.
pub(super) async fn insert_event_row(
    db: &impl Db,
    event: &Event,
    body: &str,
) -> Result<Option<i64>, StoreError> {
    let event_id = event.event_id.map(|id| id.to_string());
    row(
        db,
        "INSERT INTO events (session_id, event_id, event_type, role, body)
         VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (session_id, event_id) WHERE event_id IS NOT NULL DO NOTHING
         RETURNING id",
        &[
            &event.session_id,
            &event_id,
            &event.event_type.as_str(),
            &event.role.map(|r| r.as_str()),
            &body,
        ],
    )
    .await?
    .map(|r| r.try_get(0))
    .transpose()
    .map_err(StoreError::from)
}

/// Records the run that `event` (row `id`) ends and adds it to the
/// session's totals, as SQLite's `runs::insert` does.
pub(super) async fn insert_run(
    db: &impl Db,
    id: i64,
    event: &Event,
    session: &mut Session,
    status: SessionStatus,
) -> Result<(), StoreError> {
    let (ended_at, run) = rules::add_run(session, event, status);
    exec(
        db,
        "INSERT INTO runs (id, session_id, project_dir, agent_name, ended_at, reason, exit_code, cost_usd,
             input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
             num_turns, duration_ms, duration_api_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)",
        &[
            &id,
            &event.session_id,
            &session.project_dir,
            &session.agent_name,
            &ended_at,
            &event.reason,
            &event.exit_code,
            &run.cost_usd,
            &run.input_tokens,
            &run.output_tokens,
            &run.cache_creation_input_tokens,
            &run.cache_read_input_tokens,
            &run.num_turns,
            &run.duration_ms,
            &run.duration_api_ms,
        ],
    )
    .await?;
    let total = session.usage;
    let last = session.last_run.as_ref();
    exec(
        db,
        "UPDATE sessions SET status = $1, num_runs = $2, cost_usd = $3, input_tokens = $4,
             output_tokens = $5, cache_creation_input_tokens = $6, cache_read_input_tokens = $7,
             last_reason = $8, last_exit_code = $9, last_duration_ms = $10, last_ended_at = $11
         WHERE session_id = $12",
        &[
            &status.as_str(),
            &signed(Some(session.num_runs)),
            &session.cost_usd,
            &signed(Some(total.input_tokens)),
            &signed(Some(total.output_tokens)),
            &signed(Some(total.cache_creation_input_tokens)),
            &signed(Some(total.cache_read_input_tokens)),
            &last.and_then(|l| l.reason.as_deref()),
            &last.and_then(|l| l.exit_code),
            &signed(last.and_then(|l| l.duration_ms)),
            &last.map(|l| l.ended_at.as_str()),
            &event.session_id,
        ],
    )
    .await?;
    Ok(())
}

/// A run end sent again with other figures: as SQLite's `runs::fill`.
async fn fill_run(db: &impl Db, event: &Event, body: &str) -> Result<bool, StoreError> {
    let f = event.figures();
    let Some(event_id) = event.event_id.filter(|_| !f.is_empty()) else {
        return Ok(false);
    };
    let stored = row(
        db,
        "SELECT r.id, r.cost_usd, r.input_tokens, r.output_tokens, r.cache_creation_input_tokens,
                r.cache_read_input_tokens, r.num_turns, r.duration_ms, r.duration_api_ms
         FROM events e JOIN runs r ON r.id = e.id
         WHERE e.session_id = $1 AND e.event_id = $2",
        &[&event.session_id, &event_id.to_string()],
    )
    .await?;
    let Some(stored) = stored else {
        return Ok(false);
    };
    let id: i64 = stored.try_get(0)?;
    let old = RunColumns {
        cost_usd: stored.try_get(1)?,
        input_tokens: stored.try_get(2)?,
        output_tokens: stored.try_get(3)?,
        cache_creation_input_tokens: stored.try_get(4)?,
        cache_read_input_tokens: stored.try_get(5)?,
        num_turns: stored.try_get(6)?,
        duration_ms: stored.try_get(7)?,
        duration_api_ms: stored.try_get(8)?,
    };
    let new = RunColumns::of(&f);
    if old == new {
        return Ok(false);
    }
    exec(
        db,
        "UPDATE runs SET cost_usd = $1, input_tokens = $2, output_tokens = $3,
             cache_creation_input_tokens = $4, cache_read_input_tokens = $5, num_turns = $6,
             duration_ms = $7, duration_api_ms = $8 WHERE id = $9",
        &[
            &new.cost_usd,
            &new.input_tokens,
            &new.output_tokens,
            &new.cache_creation_input_tokens,
            &new.cache_read_input_tokens,
            &new.num_turns,
            &new.duration_ms,
            &new.duration_api_ms,
            &id,
        ],
    )
    .await?;
    exec(
        db,
        "UPDATE events SET body = $1 WHERE id = $2",
        &[&body, &id],
    )
    .await?;
    // The session's last run may be this one.
    exec(
        db,
        &format!(
            "UPDATE sessions SET last_duration_ms = $1 WHERE session_id = $2
                 AND (SELECT max(id) FROM ({RUNS_OF_SESSION_2})) = $3"
        ),
        &[&new.duration_ms, &event.session_id, &id],
    )
    .await?;
    exec(
        db,
        "UPDATE sessions SET
             cost_usd = CASE WHEN $1::DOUBLE PRECISION IS NULL AND $2::DOUBLE PRECISION IS NULL THEN cost_usd
                             ELSE round((COALESCE(cost_usd, 0) - COALESCE($1, 0) + COALESCE($2, 0))::NUMERIC, 9)::DOUBLE PRECISION END,
             input_tokens = input_tokens - COALESCE($3, 0) + COALESCE($4, 0),
             output_tokens = output_tokens - COALESCE($5, 0) + COALESCE($6, 0),
             cache_creation_input_tokens = cache_creation_input_tokens - COALESCE($7, 0) + COALESCE($8, 0),
             cache_read_input_tokens = cache_read_input_tokens - COALESCE($9, 0) + COALESCE($10, 0)
         WHERE session_id = $11",
        &[
            &old.cost_usd,
            &new.cost_usd,
            &old.input_tokens,
            &new.input_tokens,
            &old.output_tokens,
            &new.output_tokens,
            &old.cache_creation_input_tokens,
            &new.cache_creation_input_tokens,
            &old.cache_read_input_tokens,
            &new.cache_read_input_tokens,
            &event.session_id,
        ],
    )
    .await?;
    Ok(true)
}

/// The ids of a session's runs (those of its run-end events), the session
/// being `$2`.
const RUNS_OF_SESSION_2: &str = "SELECT id FROM events WHERE session_id = $2
     AND event_type IN ('run_completed', 'session_stop')";

async fn update_session(
    db: &impl Db,
    session_id: &str,
    patch: SessionPatch,
) -> Result<Session, StoreError> {
    let mut session = locked_session(db, session_id)
        .await?
        .ok_or_else(|| rules::no_session(session_id))?;
    let (renamed, regrouped) = rules::apply_patch(&mut session, patch);
    if regrouped {
        exec(
            db,
            "UPDATE runs SET project_dir = $1, agent_name = $3 WHERE id IN (
                 SELECT id FROM events WHERE session_id = $2
                 AND event_type IN ('run_completed', 'session_stop'))",
            &[
                &session.project_dir,
                &session.session_id,
                &session.agent_name,
            ],
        )
        .await?;
    }
    if renamed {
        check_name_free(
            db,
            &session.session_name,
            session.project_dir.as_deref(),
            Some(&session.session_id),
        )
        .await?;
    }
    exec(
        db,
        "UPDATE sessions SET session_name = $1, project_dir = $2, agent_name = $3, last_resumed_at = $4,
         budget_usd = $6 WHERE session_id = $5",
        &[
            &session.session_name,
            &session.project_dir,
            &session.agent_name,
            &session.last_resumed_at,
            &session.session_id,
            &session.budget_usd,
        ],
    )
    .await?;
    Ok(session)
}

async fn delete_session(db: &impl Db, session_id: &str) -> Result<DeletedCounts, StoreError> {
    if locked_session(db, session_id).await?.is_none() {
        return Err(rules::no_session(session_id));
    }
    requests::delete(db, session_id).await?;
    exec(
        db,
        "DELETE FROM runs WHERE id IN (SELECT id FROM events WHERE session_id = $1
             AND event_type IN ('run_completed', 'session_stop'))",
        &[&session_id],
    )
    .await?;
    let events = exec(
        db,
        "DELETE FROM events WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    exec(
        db,
        "DELETE FROM sessions WHERE session_id = $1",
        &[&session_id],
    )
    .await?;
    Ok(DeletedCounts {
        session: true,
        events_count: events,
    })
}
