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
