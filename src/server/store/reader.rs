//! Reads, on a small pool of connections that WAL lets run beside the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row};
use tokio::sync::Semaphore;

use super::ops::with_id;
use super::{StoreError, Synchronous, open_connection};
use crate::wire::{Event, ResultAnswer, Session, SessionStatus};

/// Readers open at once, at most.
const MAX_READERS: usize = 8;

pub(super) struct ReaderPool {
    path: PathBuf,
    sync: Synchronous,
    idle: Mutex<Vec<Connection>>,
    permits: Arc<Semaphore>,
}

impl ReaderPool {
    pub(super) fn new(path: PathBuf, sync: Synchronous) -> Self {
        ReaderPool {
            path,
            sync,
            idle: Mutex::new(Vec::new()),
            permits: Arc::new(Semaphore::new(MAX_READERS)),
        }
    }

    fn checkout(&self) -> Result<Connection, StoreError> {
        let idle = self.idle.lock().ok().and_then(|mut idle| idle.pop());
        match idle {
            Some(conn) => Ok(conn),
            None => {
                let conn = open_connection(&self.path, self.sync)?;
                conn.pragma_update(None, "query_only", true)?;
                Ok(conn)
            }
        }
    }

    fn checkin(&self, conn: Connection) {
        if let Ok(mut idle) = self.idle.lock() {
            idle.push(conn);
        }
    }

    /// Opens a connection and keeps it, failing if the file cannot be read.
    pub(super) fn check(&self) -> Result<(), StoreError> {
        let conn = self.checkout()?;
        conn.query_row("SELECT count(*) FROM sessions", [], |_| Ok(()))?;
        self.checkin(conn);
        Ok(())
    }

    /// Runs `f` on a pooled connection on the blocking thread pool.
    pub(super) async fn run<R, F>(self: &Arc<Self>, f: F) -> Result<R, StoreError>
    where
        R: Send + 'static,
        F: FnOnce(&Connection) -> Result<R, StoreError> + Send + 'static,
    {
        let _permit = self
            .permits
            .clone()
            .acquire_owned()
            .await
            .map_err(|_| StoreError::Closed)?;
        let pool = Arc::clone(self);
        tokio::task::spawn_blocking(move || {
            let conn = pool.checkout()?;
            let result = f(&conn);
            pool.checkin(conn);
            result
        })
        .await
        .map_err(|e| StoreError::Unavailable(format!("read task failed: {e}")))?
    }
}

/// `SELECT <every session column> FROM sessions <rest>`.
macro_rules! select_sessions {
    ($rest:literal) => {
        concat!(
            "SELECT session_id, session_name, status, created_at, project_dir, agent_name, last_resumed_at FROM sessions ",
            $rest
        )
    };
}

const SESSION_BY_ID: &str = select_sessions!("WHERE session_id = ?1");
const SESSION_BY_NAME_IN_PROJECT: &str =
    select_sessions!("WHERE session_name = ?1 AND IFNULL(project_dir, '') = IFNULL(?2, '')");
const SESSIONS_BY_NAME: &str = select_sessions!("WHERE session_name = ?1 ORDER BY seq DESC");
const SESSIONS_IN_PROJECT: &str =
    select_sessions!("WHERE IFNULL(project_dir, '') = ?1 ORDER BY seq DESC");
const ALL_SESSIONS: &str = select_sessions!("ORDER BY seq DESC");
const LAST_ANSWER: &str = "SELECT body FROM events
    WHERE session_id = ?1 AND event_type = 'message' AND role = 'assistant'
    ORDER BY id DESC LIMIT 1";
const EVENTS_PAGE: &str =
    "SELECT id, body FROM events WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

fn session_from_row(row: &Row<'_>) -> rusqlite::Result<Session> {
    let status: String = row.get(2)?;
    Ok(Session {
        session_id: row.get(0)?,
        session_name: row.get(1)?,
        status: SessionStatus::parse(&status).unwrap_or(SessionStatus::Finished),
        created_at: row.get(3)?,
        project_dir: row.get(4)?,
        agent_name: row.get(5)?,
        last_resumed_at: row.get(6)?,
    })
}

pub(super) fn get_session(conn: &Connection, id: &str) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .prepare_cached(SESSION_BY_ID)?
        .query_row([id], session_from_row)
        .optional()?)
}

/// The session with this name in this project directory (`None` = no directory).
pub(super) fn session_by_name(
    conn: &Connection,
    name: &str,
    project_dir: Option<&str>,
) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .prepare_cached(SESSION_BY_NAME_IN_PROJECT)?
        .query_row(rusqlite::params![name, project_dir], session_from_row)
        .optional()?)
}

pub(super) fn list_sessions(
    conn: &Connection,
    name: Option<&str>,
    project_dir: Option<&str>,
) -> Result<Vec<Session>, StoreError> {
    match (name, project_dir) {
        (Some(name), Some(dir)) => Ok(session_by_name(conn, name, Some(dir))?
            .into_iter()
            .collect()),
        (Some(name), None) => collect(conn, SESSIONS_BY_NAME, [name]),
        (None, Some(dir)) => collect(conn, SESSIONS_IN_PROJECT, [dir]),
        (None, None) => collect(conn, ALL_SESSIONS, []),
    }
}

fn collect<P: rusqlite::Params>(
    conn: &Connection,
    sql: &str,
    params: P,
) -> Result<Vec<Session>, StoreError> {
    let mut stmt = conn.prepare_cached(sql)?;
    let rows = stmt.query_map(params, session_from_row)?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// What `GET /sessions/{id}/result` can find.
#[derive(Debug)]
pub enum ResultLookup {
    UnknownSession,
    Running,
    NoResult,
    Found(ResultAnswer),
}

pub(super) fn result(conn: &Connection, id: &str) -> Result<ResultLookup, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let Some(session) = get_session(&tx, id)? else {
        return Ok(ResultLookup::UnknownSession);
    };
    if session.status == SessionStatus::Running {
        return Ok(ResultLookup::Running);
    }
    let body: Option<String> = tx
        .prepare_cached(LAST_ANSWER)?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(body) = body else {
        return Ok(ResultLookup::NoResult);
    };
    let event: Event = serde_json::from_str(&body)
        .map_err(|e| StoreError::Unavailable(format!("stored event is unreadable: {e}")))?;
    Ok(ResultLookup::Found(ResultAnswer {
        result: event.text(),
        structured_output: event.structured_output,
    }))
}

pub(super) fn events_page(
    conn: &Connection,
    id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(EVENTS_PAGE)?;
    let rows = stmt.query_map(rusqlite::params![id, after, limit], |r| {
        let id: i64 = r.get(0)?;
        Ok((id, with_id(id, &r.get::<_, String>(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every lookup the API serves by name, project, id or session uses an
    /// index: none reads the whole table.
    #[test]
    fn lookups_use_an_index_not_a_scan() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        for sql in [
            SESSION_BY_ID,
            SESSION_BY_NAME_IN_PROJECT,
            SESSIONS_BY_NAME,
            SESSIONS_IN_PROJECT,
            LAST_ANSWER,
            EVENTS_PAGE,
        ] {
            let mut stmt = conn.prepare(&format!("EXPLAIN QUERY PLAN {sql}")).unwrap();
            let nulls = vec![rusqlite::types::Null; stmt.parameter_count()];
            let plan: Vec<String> = stmt
                .query_map(rusqlite::params_from_iter(nulls), |r| r.get::<_, String>(3))
                .unwrap()
                .map(Result::unwrap)
                .collect();
            assert!(
                plan.iter().any(|step| step.contains("USING")),
                "no index for {sql}: {plan:?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "a full scan for {sql}: {plan:?}"
            );
        }
    }
}
