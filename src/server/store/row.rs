//! One way to read a column of either engine's rows, so that each row
//! decoder is written once for both: a SQLite row is read with
//! `rusqlite::Row::get`, a PostgreSQL row with `tokio_postgres::Row::try_get`,
//! each engine converting the column as it always did (a SQLite boolean is
//! an INTEGER, a PostgreSQL one a BOOLEAN).

use tokio_postgres::types::FromSqlOwned;

use super::StoreError;

/// A Rust type both engines can read a column as.
pub(super) trait Column: rusqlite::types::FromSql + FromSqlOwned {}

impl<T: rusqlite::types::FromSql + FromSqlOwned> Column for T {}

/// A row of either engine. The error stays each engine's own: a SQLite
/// decoder runs inside `query_map`, which wants `rusqlite::Error`.
pub(super) trait StoredRow {
    type Error;

    /// Column `i` (from 0) as a `T`.
    fn column<T: Column>(&self, i: usize) -> Result<T, Self::Error>;
}

impl StoredRow for rusqlite::Row<'_> {
    type Error = rusqlite::Error;

    fn column<T: Column>(&self, i: usize) -> Result<T, rusqlite::Error> {
        self.get(i)
    }
}

impl StoredRow for tokio_postgres::Row {
    type Error = StoreError;

    fn column<T: Column>(&self, i: usize) -> Result<T, StoreError> {
        Ok(self.try_get(i)?)
    }
}
