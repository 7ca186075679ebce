//! The write operations, each applied by the writer thread inside a savepoint.

use rusqlite::{Connection, OptionalExtension, params};

use super::reader::{get_session, session_by_name};
use super::search;
use super::writer::Op;
use super::{Added, StoreError, launches, requests, runs};
use crate::server::changes::Change;
use crate::server::store::rules;
use crate::wire::{DeletedCounts, Event, Session, SessionCreate, SessionPatch, SessionStatus};

pub(super) struct CreateSession {
    pub create: SessionCreate,
    pub created_at: String,
}

impl Op for CreateSession {
    type Out = Session;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Session, StoreError> {
        let created_at = self.create.created_at.clone().unwrap_or(self.created_at);
        let session = insert_session(conn, self.create, created_at)?;
        frames.push(Change::SessionCreated(session.clone()));
        Ok(session)
    }
}

pub(super) fn insert_session(
    conn: &Connection,
    create: SessionCreate,
    created_at: String,
) -> Result<Session, StoreError> {
    if get_session(conn, &create.session_id)?.is_some() {
        return Err(rules::session_exists(&create.session_id));
    }
    check_name_free(
        conn,
        &create.session_name,
        create.project_dir.as_deref(),
        None,
    )?;
    conn.prepare_cached(
        "INSERT INTO sessions (session_id, session_name, status, created_at, project_dir, agent_name,
                               worktree, branch, parent_session_id, forked_from, budget_usd)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11)",
    )?
    .execute(params![
        create.session_id,
        create.session_name,
        SessionStatus::Running.as_str(),
        created_at,
        create.project_dir,
        create.agent_name,
        create.worktree,
        create.branch,
        create.parent_session_id,
        create.forked_from,
        create.budget_usd,
    ])?;
    Ok(rules::new_session(create, created_at))
}

fn check_name_free(
    conn: &Connection,
    name: &str,
    project_dir: Option<&str>,
    except_id: Option<&str>,
) -> Result<(), StoreError> {
    match session_by_name(conn, name, project_dir)? {
        Some(other) if Some(other.session_id.as_str()) != except_id => {
            Err(rules::name_taken(name, project_dir, &other.session_id))
        }
        _ => Ok(()),
    }
}

pub(super) struct AddEvent {
    pub event: Event,
    pub body: String,
    pub create_if_missing: bool,
}

impl Op for AddEvent {
    type Out = Added;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Added, StoreError> {
        add_event(
            conn,
            &self.event,
            &self.body,
            self.create_if_missing,
            frames,
        )
    }
}

/// Stores an event (see [`AddEvent`]); also for the writes that close a
/// run themselves.
pub(super) fn add_event(
    conn: &Connection,
    event: &Event,
    body: &str,
    create_if_missing: bool,
    frames: &mut Vec<Change>,
) -> Result<Added, StoreError> {
    let mut session = match get_session(conn, &event.session_id)? {
        Some(session) => session,
        None if create_if_missing => {
            let session = insert_session(
                conn,
                SessionCreate {
                    session_id: event.session_id.clone(),
                    session_name: event.session_name.clone(),
                    ..SessionCreate::default()
                },
                crate::wire::now_rfc3339(),
            )?;
            frames.push(Change::SessionCreated(session.clone()));
            session
        }
        None => return Err(rules::no_session(&event.session_id)),
    };
    let ends_run = rules::ends_run(event);
    let Some(id) = insert_event_row(conn, event, body)? else {
        let filled = ends_run && runs::fill(conn, event, body)?;
        if filled && let Some(session) = get_session(conn, &event.session_id)? {
            frames.push(Change::SessionUpdated(session.clone()));
        }
        return Ok(Added {
            duplicate: true,
            filled,
        });
    };
    frames.push(Change::Event {
        session_id: event.session_id.clone(),
        id,
        body: body.to_owned(),
    });
    let moved = launches::on_event(conn, event, &mut session, frames)?;
    if ends_run {
        // The status (finished) is set with the run's totals; nothing
        // of the run is left waiting.
        runs::insert(conn, id, event, &mut session, SessionStatus::Finished)?;
        requests::close_all(conn, &mut session)?;
        super::callbacks::on_run_end(conn, event)?;
        super::budgets::enforce(conn, &event.session_id, frames)?;
        frames.push(Change::SessionUpdated(session.clone()));
    } else if let Some(status) = event.event_type.status_effect()
        && status != session.status
    {
        conn.prepare_cached("UPDATE sessions SET status = ?1 WHERE session_id = ?2")?
            .execute(params![status.as_str(), event.session_id])?;
        session.status = status;
        frames.push(Change::SessionUpdated(session.clone()));
    } else if requests::on_event(conn, event, &mut session)? || moved {
        frames.push(Change::SessionUpdated(session.clone()));
    }
    Ok(Added {
        duplicate: false,
        filled: false,
    })
}

/// Inserts one event row; `None` when an event with its `event_id` is
/// already stored in that session, else the row's `id`.
pub(super) fn insert_event_row(
    conn: &Connection,
    event: &Event,
    body: &str,
) -> Result<Option<i64>, StoreError> {
    let inserted = conn
        .prepare_cached(
            "INSERT OR IGNORE INTO events (session_id, event_id, event_type, role, body)
             VALUES (?1, ?2, ?3, ?4, ?5)",
        )?
        .execute(params![
            event.session_id,
            event.event_id.map(|id| id.to_string()),
            event.event_type.as_str(),
            event.role.map(|r| r.as_str()),
            body,
        ])?;
    Ok((inserted > 0).then(|| conn.last_insert_rowid()))
}

/// Indexes the events stored since the last time, for search.
pub(super) struct IndexNewEvents;

impl Op for IndexNewEvents {
    type Out = ();

    fn apply(self, conn: &Connection, _: &mut Vec<Change>) -> Result<(), StoreError> {
        search::index_new_events(conn)
    }
}

pub(super) struct UpdateSession {
    pub session_id: String,
    pub patch: SessionPatch,
}

impl Op for UpdateSession {
    type Out = Session;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Session, StoreError> {
        let mut session = get_session(conn, &self.session_id)?
            .ok_or_else(|| rules::no_session(&self.session_id))?;
        let (renamed, regrouped) = rules::apply_patch(&mut session, self.patch);
        if regrouped {
            runs::follow_session(
                conn,
                &session.session_id,
                session.project_dir.as_deref(),
                session.agent_name.as_deref(),
            )?;
        }
        if renamed {
            check_name_free(
                conn,
                &session.session_name,
                session.project_dir.as_deref(),
                Some(&session.session_id),
            )?;
        }
        conn.prepare_cached(
            "UPDATE sessions SET session_name = ?1, project_dir = ?2, agent_name = ?3, last_resumed_at = ?4,
             budget_usd = ?6 WHERE session_id = ?5",
        )?
        .execute(params![
            session.session_name,
            session.project_dir,
            session.agent_name,
            session.last_resumed_at,
            session.session_id,
            session.budget_usd,
        ])?;
        frames.push(Change::SessionUpdated(session.clone()));
        Ok(session)
    }
}

pub(super) struct DeleteSession {
    pub session_id: String,
}

impl Op for DeleteSession {
    type Out = DeletedCounts;

    fn apply(
        self,
        conn: &Connection,
        frames: &mut Vec<Change>,
    ) -> Result<DeletedCounts, StoreError> {
        let exists = conn
            .prepare_cached("SELECT 1 FROM sessions WHERE session_id = ?1")?
            .query_row([&self.session_id], |_| Ok(()))
            .optional()?
            .is_some();
        if !exists {
            return Err(rules::no_session(&self.session_id));
        }
        runs::delete(conn, &self.session_id)?;
        search::unindex_session(conn, &self.session_id)?;
        requests::delete(conn, &self.session_id)?;
        let events = conn
            .prepare_cached("DELETE FROM events WHERE session_id = ?1")?
            .execute([&self.session_id])?;

        conn.prepare_cached("DELETE FROM sessions WHERE session_id = ?1")?
            .execute([&self.session_id])?;
        frames.push(Change::SessionDeleted(self.session_id.clone()));
        Ok(DeletedCounts {
            session: true,
            events_count: events as u64,
        })
    }
}
