//! `--import sqlite:PATH`: copies a SQLite database into PostgreSQL in one
//! transaction. Sessions already in PostgreSQL with the same id are left as
//! they are (so importing twice copies nothing the second time); sessions of
//! PostgreSQL that the file does not have are other data, which the import
//! refuses to mix with unless told to (`merge`). Every row copied is counted
//! on both sides, table by table, before the commit.

use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};

use rusqlite::types::Value;
use tokio_postgres::types::ToSql;

use super::{Target, schema};
use crate::server::store::{StoreError, sqlite};

/// Rows read from the file at a time.
const CHUNK: i64 = 2000;

#[derive(Clone, Copy)]
enum Kind {
    Text,
    Int,
    Real,
    /// SQLite's 0 or 1.
    Bool,
}

/// A table copied row for row: its columns, the one that orders it (in
/// the file), the one (if any) whose numbers must not collide with rows
/// already there, and what makes a row new.
struct Table {
    name: &'static str,
    columns: &'static [(&'static str, Kind)],
    order: &'static str,
    /// Shifted past the rows already in PostgreSQL: `seq` of sessions and
    /// launches, the event id of events and runs (a run's id is its event's).
    shifted: Option<(&'static str, Shift)>,
    key: Key,
}

#[derive(Clone, Copy, PartialEq)]
enum Shift {
    Sessions,
    Events,
    Launches,
}

/// Which rows of a table are copied.
#[derive(Clone, Copy, PartialEq)]
enum Key {
    /// Those of the sessions PostgreSQL does not have yet.
    Session,
    /// Those whose value in this column PostgreSQL does not have yet.
    Own(&'static str),
}

use Kind::{Bool, Int, Real, Text};

/// Every table that holds a session's data, parents first. A table added
/// to the schema is added here too.
const TABLES: &[Table] = &[
    Table {
        name: "sessions",
        columns: &[
            ("seq", Int),
            ("session_id", Text),
            ("session_name", Text),
            ("status", Text),
            ("created_at", Text),
            ("project_dir", Text),
            ("agent_name", Text),
            ("last_resumed_at", Text),
            ("num_runs", Int),
            ("cost_usd", Real),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cache_creation_input_tokens", Int),
            ("cache_read_input_tokens", Int),
            ("last_reason", Text),
            ("last_exit_code", Int),
            ("last_duration_ms", Int),
            ("last_ended_at", Text),
            ("worktree", Text),
            ("branch", Text),
            ("parent_session_id", Text),
            ("pending_requests", Int),
            ("host", Text),
            ("forked_from", Text),
            ("budget_usd", Real),
        ],
        order: "seq",
        shifted: Some(("seq", Shift::Sessions)),
        key: Key::Session,
    },
    Table {
        name: "events",
        columns: &[
            ("id", Int),
            ("session_id", Text),
            ("event_id", Text),
            ("event_type", Text),
            ("role", Text),
            ("body", Text),
        ],
        order: "id",
        shifted: Some(("id", Shift::Events)),
        key: Key::Session,
    },
    Table {
        name: "runs",
        columns: &[
            ("id", Int),
            ("session_id", Text),
            ("project_dir", Text),
            ("agent_name", Text),
            ("ended_at", Text),
            ("reason", Text),
            ("exit_code", Int),
            ("cost_usd", Real),
            ("input_tokens", Int),
            ("output_tokens", Int),
            ("cache_creation_input_tokens", Int),
            ("cache_read_input_tokens", Int),
            ("num_turns", Int),
            ("duration_ms", Int),
            ("duration_api_ms", Int),
        ],
        order: "id",
        shifted: Some(("id", Shift::Events)),
        key: Key::Session,
    },
    // `seq` is drawn anew, in the file's order.
    Table {
        name: "requests",
        columns: &[
            ("session_id", Text),
            ("request_id", Text),
            ("kind", Text),
            ("tool_name", Text),
            ("input", Text),
            ("suggestions", Text),
            ("tool_use_id", Text),
            ("blocked_path", Text),
            ("created_at", Text),
            ("status", Text),
            ("decision", Text),
        ],
        order: "rowid",
        shifted: None,
        key: Key::Session,
    },
    Table {
        name: "hosts",
        columns: &[
            ("name", Text),
            ("instance", Text),
            ("labels", Text),
            ("projects", Text),
            ("capacity", Int),
            ("claude_version", Text),
            ("embedded", Bool),
            ("online", Bool),
            ("last_seen", Text),
        ],
        order: "rowid",
        shifted: None,
        key: Key::Own("name"),
    },
    Table {
        name: "launches",
        columns: &[
            ("seq", Int),
            ("run_id", Text),
            ("session_name", Text),
            ("project_dir", Text),
            ("resume", Bool),
            ("prompt", Text),
            ("agent", Text),
            ("worktree", Bool),
            ("base", Text),
            ("settings", Text),
            ("want_host", Text),
            ("labels", Text),
            ("host", Text),
            ("claimed_by", Text),
            ("status", Text),
            ("session_id", Text),
            ("error", Text),
            ("runner_exit_code", Int),
            ("created_at", Text),
            ("started_at", Text),
            ("ended_at", Text),
        ],
        order: "seq",
        shifted: Some(("seq", Shift::Launches)),
        key: Key::Own("run_id"),
    },
    // `seq` orders the callbacks as their children ended: the sequence
    // that numbers them goes on past the file's.
    Table {
        name: "callbacks",
        columns: &[
            ("child_run_id", Text),
            ("child_name", Text),
            ("child_session_id", Text),
            ("parent_session_id", Text),
            ("status", Text),
            ("child_status", Text),
            ("result", Text),
            ("seq", Int),
            ("run_id", Text),
            ("error", Text),
            ("attempts", Int),
            ("retry_at", Text),
            ("created_at", Text),
            ("ended_at", Text),
        ],
        order: "rowid",
        shifted: None,
        key: Key::Own("child_run_id"),
    },
];

/// What one table's import did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableCount {
    pub table: &'static str,
    /// Rows in the file.
    pub in_file: u64,
    /// Rows copied (and counted in PostgreSQL afterwards).
    pub copied: u64,
    /// Rows of sessions PostgreSQL already had, left as they were.
    pub already_there: u64,
}

/// What the import did, table by table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ImportReport {
    pub tables: Vec<TableCount>,
}

impl fmt::Display for ImportReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for t in &self.tables {
            writeln!(
                f,
                "{}: {} in the file, {} copied, {} already there",
                t.table, t.in_file, t.copied, t.already_there
            )?;
        }
        Ok(())
    }
}

/// Lets the file's connection be used from blocking tasks in turn.
type Source = Arc<Mutex<rusqlite::Connection>>;

async fn read<R: Send + 'static>(
    source: &Source,
    f: impl FnOnce(&rusqlite::Connection) -> Result<R, StoreError> + Send + 'static,
) -> Result<R, StoreError> {
    let source = Arc::clone(source);
    tokio::task::spawn_blocking(move || f(&source.lock().unwrap_or_else(PoisonError::into_inner)))
        .await
        .map_err(|e| StoreError::Unavailable(format!("reading the file failed: {e}")))?
}

/// Copies the SQLite database at `path` into `target` (see the module's
/// comment).
pub async fn import_sqlite(
    target: &Target,
    path: &Path,
    merge: bool,
) -> Result<ImportReport, StoreError> {
    let scratch = tempfile::tempdir().map_err(|source| StoreError::Folder {
        path: std::env::temp_dir(),
        source,
    })?;
    let source: Source = Arc::new(Mutex::new(sqlite::open_to_read(path, scratch.path())?));
    let mut client = target.connect().await?;
    schema::migrate(&mut client).await?;
    let tx = client.transaction().await?;
    // One import at a time into a database.
    tx.execute("SELECT pg_advisory_xact_lock($1)", &[&0x414F_5349_i64])
        .await?;
    let in_file: Vec<String> = read(&source, |c| {
        let mut stmt = c.prepare("SELECT session_id FROM sessions")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    })
    .await?;
    let file_ids: HashSet<&str> = in_file.iter().map(String::as_str).collect();
    let there: Vec<String> = tx
        .query("SELECT session_id FROM sessions", &[])
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?;
    let others = there
        .iter()
        .filter(|id| !file_ids.contains(id.as_str()))
        .count();
    if others > 0 && !merge {
        return Err(StoreError::Conflict(format!(
            "{target} already holds {others} sessions that are not in {}; \
             pass --merge to add the file's sessions to them",
            path.display()
        )));
    }
    // Runs launched there are other data too (hosts are not: every
    // replica registers its own on its start).
    let file_runs: HashSet<String> = read(&source, |c| {
        let mut stmt = c.prepare("SELECT run_id FROM launches")?;
        let ids = stmt.query_map([], |r| r.get(0))?;
        Ok(ids.collect::<Result<_, _>>()?)
    })
    .await?;
    let other_runs = tx
        .query("SELECT run_id FROM launches", &[])
        .await?
        .iter()
        .map(|r| r.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()?
        .into_iter()
        .filter(|id| !file_runs.contains(id))
        .count();
    if other_runs > 0 && !merge {
        return Err(StoreError::Conflict(format!(
            "{target} already holds {other_runs} runs that are not in {}; \
             pass --merge to add the file's to them",
            path.display()
        )));
    }
    let there: HashSet<String> = there.into_iter().collect();
    let new: Vec<String> = in_file
        .iter()
        .filter(|id| !there.contains(*id))
        .cloned()
        .collect();
    let seq_shift: i64 = tx
        .query_one("SELECT COALESCE(max(seq), 0) FROM sessions", &[])
        .await?
        .get(0);
    let event_shift: i64 = tx
        .query_one("SELECT COALESCE(max(id), 0) FROM events", &[])
        .await?
        .get(0);
    let launch_shift: i64 = tx
        .query_one("SELECT COALESCE(max(seq), 0) FROM launches", &[])
        .await?
        .get(0);
    let new_set: Arc<HashSet<String>> = Arc::new(new.iter().cloned().collect());
    let mut report = ImportReport { tables: Vec::new() };
    for table in TABLES {
        let shift = match table.shifted {
            Some((_, Shift::Sessions)) => seq_shift,
            Some((_, Shift::Events)) => event_shift,
            Some((_, Shift::Launches)) => launch_shift,
            None => 0,
        };
        let (counts, keys) = copy_table(&source, &tx, table, &new_set, shift).await?;
        let (column, keys) = match table.key {
            Key::Session => ("session_id", &new),
            Key::Own(column) => (column, &keys),
        };
        let stored: i64 = tx
            .query_one(
                &format!(
                    "SELECT count(*) FROM {} WHERE {column} = ANY($1)",
                    table.name
                ),
                &[keys],
            )
            .await?
            .get(0);
        if stored as u64 != counts.copied {
            return Err(StoreError::Unavailable(format!(
                "the import did not add up: {} rows of {} were copied but {stored} are there; nothing was imported",
                counts.copied, table.name
            )));
        }
        report.tables.push(counts);
    }
    tx.batch_execute(
        "SELECT setval('events_id_seq', GREATEST((SELECT max(id) FROM events), 1));
         SELECT setval('sessions_seq_seq', GREATEST((SELECT max(seq) FROM sessions), 1));
         SELECT setval('launches_seq_seq', GREATEST((SELECT max(seq) FROM launches), 1));
         SELECT setval('callbacks_ended', GREATEST((SELECT max(seq) FROM callbacks), 1));",
    )
    .await?;
    tx.commit().await?;
    Ok(report)
}

/// Copies the new rows of `table` (see [`Key`]); answers the counts, and
/// the keys of the rows copied (for a table with keys of its own).
async fn copy_table(
    source: &Source,
    tx: &tokio_postgres::Transaction<'_>,
    table: &'static Table,
    new: &Arc<HashSet<String>>,
    shift: i64,
) -> Result<(TableCount, Vec<String>), StoreError> {
    let names: Vec<&str> = table.columns.iter().map(|(name, _)| *name).collect();
    // Each row read is its order value, then its columns.
    let key_column = match table.key {
        Key::Session => "session_id",
        Key::Own(column) => column,
    };
    let key_at = 1 + names
        .iter()
        .position(|n| *n == key_column)
        .unwrap_or_default();
    let there: HashSet<String> = match table.key {
        Key::Session => HashSet::new(),
        Key::Own(column) => tx
            .query(&format!("SELECT {column} FROM {}", table.name), &[])
            .await?
            .iter()
            .map(|r| r.try_get(0))
            .collect::<Result<_, _>>()?,
    };
    let is_new = |key: &str| match table.key {
        Key::Session => new.contains(key),
        Key::Own(_) => !there.contains(key),
    };
    let mut keys = Vec::new();
    let select = format!(
        "SELECT {}, {} FROM {} WHERE {} > ?1 ORDER BY {} LIMIT {CHUNK}",
        table.order,
        names.join(", "),
        table.name,
        table.order,
        table.order
    );
    let casts: Vec<String> = table
        .columns
        .iter()
        .enumerate()
        .map(|(i, (_, kind))| {
            let ty = match kind {
                Text => "TEXT",
                Int => "BIGINT",
                Real => "DOUBLE PRECISION",
                Bool => "BOOLEAN",
            };
            format!("${}::{ty}[]", i + 1)
        })
        .collect();
    let insert = tx
        .prepare(&format!(
            "INSERT INTO {} ({}) SELECT * FROM unnest({})",
            table.name,
            names.join(", "),
            casts.join(", ")
        ))
        .await?;
    let shifted_at = table
        .shifted
        .and_then(|(column, _)| names.iter().position(|n| *n == column));
    let mut counts = TableCount {
        table: table.name,
        in_file: 0,
        copied: 0,
        already_there: 0,
    };
    let mut after = i64::MIN;
    loop {
        let select = select.clone();
        let width = names.len() + 1;
        let chunk: Vec<Vec<Value>> = read(source, move |c| {
            let mut stmt = c.prepare(&select)?;
            let rows = stmt.query_map([after], |r| {
                (0..width).map(|i| r.get::<_, Value>(i)).collect()
            })?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
        .await?;
        let Some(last) = chunk.last() else { break };
        after = match last[0] {
            Value::Integer(n) => n,
            _ => break,
        };
        counts.in_file += chunk.len() as u64;
        let mine: Vec<&Vec<Value>> = chunk
            .iter()
            .filter(|row| matches!(&row[key_at], Value::Text(key) if is_new(key)))
            .collect();
        if table.key != Key::Session {
            keys.extend(mine.iter().filter_map(|row| match &row[key_at] {
                Value::Text(key) => Some(key.clone()),
                _ => None,
            }));
        }
        counts.already_there += (chunk.len() - mine.len()) as u64;
        if mine.is_empty() {
            continue;
        }
        let columns: Vec<Box<dyn ToSql + Sync + Send>> = table
            .columns
            .iter()
            .enumerate()
            .map(|(i, (_, kind))| {
                column(
                    &mine,
                    i + 1,
                    *kind,
                    (shifted_at == Some(i)).then_some(shift),
                )
            })
            .collect();
        let params: Vec<&(dyn ToSql + Sync)> = columns
            .iter()
            .map(|c| &**c as &(dyn ToSql + Sync))
            .collect();
        tx.execute(&insert, &params).await.map_err(|e| {
            match StoreError::from(e) {
                StoreError::Conflict(why) => StoreError::Conflict(format!(
                    "a session of the file has the name and project of another session already there ({why}); \
                     rename one of them, then import again"
                )),
                other => other,
            }
        })?;
        counts.copied += mine.len() as u64;
    }
    Ok((counts, keys))
}

/// Column `i` of `rows` as a typed array, `shift` added to its numbers.
fn column(
    rows: &[&Vec<Value>],
    i: usize,
    kind: Kind,
    shift: Option<i64>,
) -> Box<dyn ToSql + Sync + Send> {
    match kind {
        Text => Box::new(
            rows.iter()
                .map(|r| match &r[i] {
                    Value::Text(t) => Some(t.clone()),
                    Value::Integer(n) => Some(n.to_string()),
                    Value::Real(x) => Some(x.to_string()),
                    _ => None,
                })
                .collect::<Vec<Option<String>>>(),
        ),
        Int => Box::new(
            rows.iter()
                .map(|r| match r[i] {
                    Value::Integer(n) => Some(n + shift.unwrap_or(0)),
                    Value::Real(x) => Some(x as i64),
                    _ => None,
                })
                .collect::<Vec<Option<i64>>>(),
        ),
        Bool => Box::new(
            rows.iter()
                .map(|r| match r[i] {
                    Value::Integer(n) => Some(n != 0),
                    _ => None,
                })
                .collect::<Vec<Option<bool>>>(),
        ),
        Real => Box::new(
            rows.iter()
                .map(|r| match r[i] {
                    Value::Real(x) => Some(x),
                    Value::Integer(n) => Some(n as f64),
                    _ => None,
                })
                .collect::<Vec<Option<f64>>>(),
        ),
    }
}
