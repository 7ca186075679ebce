//! Which database `--db` names: a SQLite file (a path), or a PostgreSQL
//! database (a `postgres://` URL).

use std::path::PathBuf;

use super::postgres::Target;
use super::sqlite::Synchronous;

/// Where the store keeps its data.
#[derive(Debug, Clone)]
pub enum Database {
    Sqlite {
        path: PathBuf,
        synchronous: Synchronous,
    },
    Postgres(Box<Target>),
}

/// A `--db` that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum DatabaseError {
    #[error(
        "--db {0}: not a PostgreSQL URL ({1}); write postgres://USER@HOST:PORT/DB (the password in PGPASSWORD)"
    )]
    Url(String, String),
}

impl Database {
    /// A `postgres://` or `postgresql://` URL names a PostgreSQL database;
    /// anything else is the path of a SQLite file (`sqlite:PATH` too).
    pub fn parse(text: &str, synchronous: Synchronous) -> Result<Database, DatabaseError> {
        if text.starts_with("postgres://") || text.starts_with("postgresql://") {
            return Target::parse(text).map(|t| Database::Postgres(Box::new(t)));
        }
        let path = text.strip_prefix("sqlite:").unwrap_or(text);
        Ok(Database::Sqlite {
            path: PathBuf::from(path),
            synchronous,
        })
    }

    /// The database as logs and messages name it: a path, or the URL
    /// without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite { path, .. } => path.display().to_string(),
            Database::Postgres(target) => target.to_string(),
        }
    }
}
