//! What `benches/postgres.rs` needs to measure PostgreSQL's own insert
//! limit with the server's schema and statements, without copying them.
//! Not part of the API; it may change with the benchmark.

use super::writer::Conn;
use super::{Target, ops, plain, schema};
use crate::server::store::StoreError;
use crate::wire::Event;

/// A connection to a migrated database, its statements prepared once.
pub struct BenchConnection(Conn);

impl BenchConnection {
    /// Connects to `url` and migrates the database as the server does.
    pub async fn open(url: &str) -> Result<BenchConnection, StoreError> {
        let target = Target::parse(url).map_err(|e| StoreError::Invalid(e.to_string()))?;
        let mut client = target.connect().await?;
        schema::migrate(&mut client).await?;
        Ok(BenchConnection(Conn::new(client)))
    }

    /// Runs `sql` (BEGIN, COMMIT, ...).
    pub async fn execute(&self, sql: &str) -> Result<(), StoreError> {
        Ok(super::Db::client(&self.0).batch_execute(sql).await?)
    }

    /// Inserts one event row as the server stores a lone event.
    pub async fn insert_event(&self, event: &Event, body: &str) -> Result<(), StoreError> {
        ops::insert_event_row(&self.0, event, body).await.map(drop)
    }

    /// Stores events as the server stores a batch of plain events that
    /// change no status: one statement for all, its own transaction (their
    /// session must exist).
    pub async fn store_events(&self, rows: &[(Event, String)]) -> Result<(), StoreError> {
        let rows: Vec<(&Event, &str)> = rows.iter().map(|(e, b)| (e, b.as_str())).collect();
        let outcomes = plain::store(&self.0, "bench", 0, &rows).await?;
        outcomes.into_iter().try_for_each(|o| o.map(drop))
    }
}
