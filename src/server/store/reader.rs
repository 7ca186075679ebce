//! Reads, on a small pool of connections that WAL lets run beside the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension, Row};
use tokio::sync::Semaphore;

use super::ops::with_id;
use super::{StoreError, Synchronous, open_connection};
use crate::wire::{Event, Session, SessionStatus};

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

const SESSION_COLUMNS: &str =
    "session_id, session_name, status, created_at, project_dir, agent_name, last_resumed_at";

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
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_id = ?1"
        ))?
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
        .prepare_cached(&format!(
            "SELECT {SESSION_COLUMNS} FROM sessions
             WHERE session_name = ?1 AND IFNULL(project_dir, '') = IFNULL(?2, '')"
        ))?
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
        (Some(name), None) => collect(
            conn,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE session_name = ?1 ORDER BY seq DESC"
            ),
            [name],
        ),
        (None, Some(dir)) => collect(
            conn,
            &format!(
                "SELECT {SESSION_COLUMNS} FROM sessions WHERE IFNULL(project_dir, '') = ?1 ORDER BY seq DESC"
            ),
            [dir],
        ),
        (None, None) => collect(
            conn,
            &format!("SELECT {SESSION_COLUMNS} FROM sessions ORDER BY seq DESC"),
            [],
        ),
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
    Found(String),
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
        .prepare_cached(
            "SELECT body FROM events
             WHERE session_id = ?1 AND event_type = 'message' AND role = 'assistant'
             ORDER BY id DESC LIMIT 1",
        )?
        .query_row([id], |r| r.get(0))
        .optional()?;
    let Some(body) = body else {
        return Ok(ResultLookup::NoResult);
    };
    let event: Event = serde_json::from_str(&body)
        .map_err(|e| StoreError::Unavailable(format!("stored event is unreadable: {e}")))?;
    Ok(ResultLookup::Found(event.text()))
}

pub(super) fn events_page(
    conn: &Connection,
    id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, String)>, StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT id, body FROM events WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3",
    )?;
    let rows = stmt.query_map(rusqlite::params![id, after, limit], |r| {
        let id: i64 = r.get(0)?;
        Ok((id, with_id(id, &r.get::<_, String>(1)?)))
    })?;
    Ok(rows.collect::<Result<_, _>>()?)
}
