//! What `benches/session_manager.rs` needs to measure the storage limit
//! with the server's own settings and schema, without copying them: the
//! connection setup (WAL, `synchronous`, migrations), the write transaction,
//! and the very statement that stores an event. Not part of the API; it may
//! change with the benchmark.

use std::path::Path;

use rusqlite::{Connection, Transaction};

use super::{StoreError, Synchronous, open_connection, ops, schema, writer};
use crate::wire::Event;

/// Opens (creating and migrating if needed) a database file exactly as the
/// server's writer does.
pub fn open_store_connection(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let mut conn = open_connection(path, sync)?;
    schema::migrate(&mut conn)?;
    Ok(conn)
}

/// Begins a write transaction as the writer thread does for each batch.
pub fn begin_write(conn: &mut Connection) -> Result<Transaction<'_>, StoreError> {
    Ok(writer::begin_write(conn)?)
}

/// Inserts one event row as `POST /sessions/{id}/events` does, with `body`
/// being the JSON to store; `None` when its `event_id` was already stored.
pub fn insert_event_row(
    conn: &Connection,
    event: &Event,
    body: &str,
) -> Result<Option<i64>, StoreError> {
    ops::insert_event_row(conn, event, body)
}

/// Records the run a stored run end (row `id`) ends, with its figures, as
/// the writer does for a `run_completed` event.
pub fn record_run(conn: &Connection, id: i64, event: &Event) -> Result<(), StoreError> {
    let mut session = super::reader::get_session(conn, &event.session_id)?
        .ok_or_else(|| StoreError::NotFound(event.session_id.clone()))?;
    super::runs::insert(
        conn,
        id,
        event,
        &mut session,
        crate::wire::SessionStatus::Finished,
    )
}

/// Every session as the JSON array `GET /sessions` serves, read and
/// written as the server does.
pub fn sessions_json(conn: &Connection) -> Result<Vec<u8>, StoreError> {
    super::reader::sessions_json(conn)
}

/// Creates a session row as `POST /sessions` does.
pub fn create_session(
    conn: &Connection,
    create: crate::wire::SessionCreate,
    created_at: &str,
) -> Result<(), StoreError> {
    ops::insert_session(conn, create, created_at.to_owned()).map(|_| ())
}
