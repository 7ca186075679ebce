//! Reads, on a small pool of connections that WAL lets run beside the writer.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::{Connection, OptionalExtension};
use tokio::sync::Semaphore;

use super::{Synchronous, open_connection};
use crate::server::changes::with_id;
use crate::server::store::rules::{self, session_from_row};
use crate::server::store::{GroupBy, ResultLookup, StoreError};
use crate::wire::{Session, SessionStatus, UsageAnswer, UsageFigures, UsageGroup, round_usd};

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
            "SELECT session_id, session_name, status, created_at, project_dir, agent_name, last_resumed_at, \
             num_runs, cost_usd, input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens, \
             last_reason, last_exit_code, last_duration_ms, last_ended_at, worktree, branch, parent_session_id, \
             pending_requests, host, forked_from, budget_usd FROM sessions ",
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
/// The last two run ends: the last run's, and the one before it (where a
/// legacy sender's last run, without a run_start, began).
const LAST_RUN_ENDS: &str = "SELECT id, body FROM events
    WHERE session_id = ?1 AND event_type IN ('run_completed', 'session_stop')
    ORDER BY id DESC LIMIT 2";
const LAST_RUN_START: &str = "SELECT id FROM events
    WHERE session_id = ?1 AND event_type IN ('run_start', 'session_start') AND id <= ?2
    ORDER BY id DESC LIMIT 1";
/// The last answer between two event ids (the last run).
const LAST_ANSWER: &str = "SELECT body FROM events
    WHERE session_id = ?1 AND event_type = 'message' AND role = 'assistant' AND id > ?2 AND id <= ?3
      AND json_extract(body, '$.final') IS NOT 0
    ORDER BY id DESC LIMIT 1";
/// The base commit the last `changes` event of a worktree session names.
const LAST_BASE: &str = "SELECT json_extract(body, '$.base') FROM events
    WHERE session_id = ?1 AND event_type = 'changes' AND json_extract(body, '$.base') IS NOT NULL
    ORDER BY id DESC LIMIT 1";
const EVENTS_PAGE: &str =
    "SELECT id, body FROM events WHERE session_id = ?1 AND id > ?2 ORDER BY id LIMIT ?3";

/// Every session, newest first, as the JSON array `GET /sessions` serves:
/// written straight from the rows (no `Session` per row, no string copies),
/// the same bytes as encoding [`list_sessions`]'s answer.
pub(super) fn sessions_json(conn: &Connection) -> Result<Vec<u8>, StoreError> {
    use rusqlite::types::ValueRef;
    fn text(out: &mut Vec<u8>, value: ValueRef<'_>) -> rusqlite::Result<()> {
        let written = match value {
            ValueRef::Null => {
                out.extend_from_slice(b"null");
                Ok(())
            }
            ValueRef::Text(bytes) => {
                serde_json::to_writer(&mut *out, &String::from_utf8_lossy(bytes))
            }
            ValueRef::Integer(n) => serde_json::to_writer(&mut *out, &n),
            ValueRef::Real(f) => serde_json::to_writer(&mut *out, &f),
            ValueRef::Blob(_) => {
                out.extend_from_slice(b"null");
                Ok(())
            }
        };
        written.map_err(|e| rusqlite::Error::ToSqlConversionFailure(Box::new(e)))
    }
    fn count(out: &mut Vec<u8>, value: ValueRef<'_>) {
        let n = match value {
            ValueRef::Integer(n) => n.max(0),
            _ => 0,
        };
        out.extend_from_slice(n.to_string().as_bytes());
    }
    let mut out = Vec::with_capacity(64 * 1024);
    out.push(b'[');
    let mut stmt = conn.prepare_cached(ALL_SESSIONS)?;
    let mut rows = stmt.query([])?;
    let mut first = true;
    while let Some(r) = rows.next()? {
        if !first {
            out.push(b',');
        }
        first = false;
        let status = match r.get_ref(2)? {
            ValueRef::Text(b"running") => "running",
            _ => "finished",
        };
        out.extend_from_slice(b"{\"session_id\":");
        text(&mut out, r.get_ref(0)?)?;
        out.extend_from_slice(b",\"session_name\":");
        text(&mut out, r.get_ref(1)?)?;
        out.extend_from_slice(b",\"status\":\"");
        out.extend_from_slice(status.as_bytes());
        out.extend_from_slice(b"\",\"created_at\":");
        text(&mut out, r.get_ref(3)?)?;
        out.extend_from_slice(b",\"project_dir\":");
        text(&mut out, r.get_ref(4)?)?;
        out.extend_from_slice(b",\"agent_name\":");
        text(&mut out, r.get_ref(5)?)?;
        out.extend_from_slice(b",\"last_resumed_at\":");
        text(&mut out, r.get_ref(6)?)?;
        out.extend_from_slice(b",\"worktree\":");
        text(&mut out, r.get_ref(17)?)?;
        out.extend_from_slice(b",\"branch\":");
        text(&mut out, r.get_ref(18)?)?;
        out.extend_from_slice(b",\"parent_session_id\":");
        text(&mut out, r.get_ref(19)?)?;
        out.extend_from_slice(b",\"forked_from\":");
        text(&mut out, r.get_ref(22)?)?;
        out.extend_from_slice(b",\"budget_usd\":");
        match r.get_ref(23)? {
            ValueRef::Real(usd) => text(&mut out, ValueRef::Real(round_usd(usd)))?,
            other => text(&mut out, other)?,
        }
        out.extend_from_slice(b",\"pending_requests\":");
        count(&mut out, r.get_ref(20)?);
        out.extend_from_slice(b",\"host\":");
        text(&mut out, r.get_ref(21)?)?;
        out.extend_from_slice(b",\"num_runs\":");
        count(&mut out, r.get_ref(7)?);
        out.extend_from_slice(b",\"cost_usd\":");
        match r.get_ref(8)? {
            ValueRef::Real(cost) => text(&mut out, ValueRef::Real(round_usd(cost)))?,
            other => text(&mut out, other)?,
        }
        out.extend_from_slice(b",\"usage\":{\"input_tokens\":");
        count(&mut out, r.get_ref(9)?);
        out.extend_from_slice(b",\"output_tokens\":");
        count(&mut out, r.get_ref(10)?);
        out.extend_from_slice(b",\"cache_creation_input_tokens\":");
        count(&mut out, r.get_ref(11)?);
        out.extend_from_slice(b",\"cache_read_input_tokens\":");
        count(&mut out, r.get_ref(12)?);
        out.extend_from_slice(b"},\"last_run\":");
        if let ValueRef::Null = r.get_ref(16)? {
            out.extend_from_slice(b"null}");
            continue;
        }
        out.extend_from_slice(b"{\"reason\":");
        text(&mut out, r.get_ref(13)?)?;
        out.extend_from_slice(b",\"exit_code\":");
        text(&mut out, r.get_ref(14)?)?;
        out.extend_from_slice(b",\"duration_ms\":");
        match r.get_ref(15)? {
            ValueRef::Integer(n) => out.extend_from_slice(n.max(0).to_string().as_bytes()),
            _ => out.extend_from_slice(b"null"),
        }
        out.extend_from_slice(b",\"ended_at\":");
        text(&mut out, r.get_ref(16)?)?;
        out.extend_from_slice(b"}}");
    }
    out.push(b']');
    Ok(out)
}

pub(super) fn get_session(conn: &Connection, id: &str) -> Result<Option<Session>, StoreError> {
    Ok(conn
        .prepare_cached(SESSION_BY_ID)?
        .query_row([id], |r| session_from_row(r))
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
        .query_row(rusqlite::params![name, project_dir], |r| {
            session_from_row(r)
        })
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
    let rows = stmt.query_map(params, |r| session_from_row(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

pub(super) fn result(conn: &Connection, id: &str) -> Result<ResultLookup, StoreError> {
    let tx = conn.unchecked_transaction()?;
    let Some(session) = get_session(&tx, id)? else {
        return Ok(ResultLookup::UnknownSession);
    };
    if session.status == SessionStatus::Running {
        return Ok(ResultLookup::Running);
    }
    let parse = rules::parse_stored;
    // The last run: from its run_start (or the end of the run before it)
    // to its end. Only its own answer counts.
    let ends: Vec<(i64, String)> = tx
        .prepare_cached(LAST_RUN_ENDS)?
        .query_map([id], |r| Ok((r.get(0)?, r.get(1)?)))?
        .collect::<Result<_, _>>()?;
    let (to, end) = match ends.first() {
        Some((end_id, body)) => (*end_id, Some(parse(body)?)),
        None => (i64::MAX, None),
    };
    let start: Option<i64> = tx
        .prepare_cached(LAST_RUN_START)?
        .query_row(rusqlite::params![id, to], |r| r.get(0))
        .optional()?;
    let from = start.max(ends.get(1).map(|(id, _)| *id)).unwrap_or(0);
    let answer: Option<String> = tx
        .prepare_cached(LAST_ANSWER)?
        .query_row(rusqlite::params![id, from, to], |r| r.get(0))
        .optional()?;
    let answer = answer.as_deref().map(parse).transpose()?;
    Ok(rules::result_of(end.as_ref(), answer.as_ref()))
}

/// The SQL expression of a group's key.
fn group_key(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::Project => "IFNULL(project_dir, '')",
        GroupBy::Agent => "IFNULL(agent_name, '')",
        GroupBy::Day => "substr(ended_at, 1, 10)",
        GroupBy::Session => "session_id",
    }
}

/// Totals per group over the runs that ended at or after `since` (a
/// normalized UTC timestamp) in project `project`, added up by SQLite;
/// with `then`, per group and second key (`day,project`: each day's runs
/// per project).
pub(super) fn usage(
    conn: &Connection,
    group_by: GroupBy,
    then: Option<GroupBy>,
    since: Option<&str>,
    project: Option<&str>,
) -> Result<UsageAnswer, StoreError> {
    // Without a time limit, the sessions' own totals add up to the same
    // figures as their runs, from one row per session instead of one per run.
    let sql = match (since, group_by, then) {
        (None, GroupBy::Project | GroupBy::Agent | GroupBy::Session, None) => format!(
            "SELECT {key}, NULL, sum(num_runs), total(cost_usd), sum(input_tokens), sum(output_tokens), \
             sum(cache_creation_input_tokens), sum(cache_read_input_tokens), max(session_name) \
             FROM sessions WHERE num_runs > 0 AND (?1 IS NULL OR 1) AND (?2 IS NULL OR IFNULL(project_dir, '') = ?2) \
             GROUP BY 1 ORDER BY 4 DESC, 1",
            key = group_key(group_by)
        ),
        _ => format!(
            "SELECT {key}, {sub}, count(*), total(cost_usd), IFNULL(sum(input_tokens), 0), IFNULL(sum(output_tokens), 0), \
             IFNULL(sum(cache_creation_input_tokens), 0), IFNULL(sum(cache_read_input_tokens), 0), NULL \
             FROM runs WHERE (?1 IS NULL OR ended_at >= ?1) AND (?2 IS NULL OR IFNULL(project_dir, '') = ?2) \
             GROUP BY 1, 2 ORDER BY {order}",
            key = group_key(group_by),
            sub = then.map_or("NULL", group_key),
            order = if then.is_some() {
                "1, 4 DESC, 2"
            } else {
                "4 DESC, 1"
            },
        ),
    };
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows = stmt.query_map(rusqlite::params![since, project], |r| {
        let count = |i: usize| -> rusqlite::Result<u64> { Ok(r.get::<_, i64>(i)?.max(0) as u64) };
        Ok(UsageGroup {
            key: r.get(0)?,
            sub_key: r.get(1)?,
            session_name: r.get(8)?,
            figures: UsageFigures {
                runs: count(2)?,
                cost_usd: r.get(3)?,
                input_tokens: count(4)?,
                output_tokens: count(5)?,
                cache_creation_input_tokens: count(6)?,
                cache_read_input_tokens: count(7)?,
            },
        })
    })?;
    let mut groups: Vec<UsageGroup> = rows.collect::<Result<_, _>>()?;
    let mut total = UsageFigures::default();
    for group in &mut groups {
        total.merge(&group.figures);
        if group_by != GroupBy::Session {
            group.session_name = None;
        } else if group.session_name.is_none() {
            group.session_name = get_session(conn, &group.key)?.map(|s| s.session_name);
        }
    }
    let name = match then {
        Some(then) => format!("{},{}", group_by.as_str(), then.as_str()),
        None => group_by.as_str().to_owned(),
    };
    Ok(UsageAnswer {
        group_by: name,
        groups,
        total,
        budgets: Vec::new(),
    })
}

/// The commit a worktree session's branch started from, as its runs reported it.
pub(super) fn branch_base(conn: &Connection, id: &str) -> Result<Option<String>, StoreError> {
    Ok(conn
        .prepare_cached(LAST_BASE)?
        .query_row([id], |r| r.get(0))
        .optional()?)
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

    /// The list written straight from the rows is what encoding the
    /// sessions gives, byte for byte, totals and odd values included.
    #[test]
    fn the_session_list_json_equals_the_encoded_sessions() {
        let mut conn = Connection::open_in_memory().unwrap();
        super::super::schema::migrate(&mut conn).unwrap();
        conn.execute_batch(
            r#"INSERT INTO sessions (session_id, session_name, status, created_at, project_dir, agent_name)
                 VALUES ('a', 'n"1', 'running', 't1', NULL, 'ag\ent');
               INSERT INTO sessions (session_id, session_name, status, created_at, project_dir, last_resumed_at,
                   num_runs, cost_usd, input_tokens, output_tokens, cache_creation_input_tokens,
                   cache_read_input_tokens, last_reason, last_exit_code, last_duration_ms, last_ended_at)
                 VALUES ('b', 'é ☃', 'finished', 't2', '/p', 't3', 3, 0.125, 10, 20, 30, 40, 'completed', 0, 1500, 't4');
               INSERT INTO sessions (session_id, session_name, status, created_at, num_runs, cost_usd, last_ended_at)
                 VALUES ('c', 'x', 'finished', 't5', 1, NULL, 't6');"#,
        )
        .unwrap();
        let encoded = serde_json::to_vec(&list_sessions(&conn, None, None).unwrap()).unwrap();
        assert_eq!(
            String::from_utf8(sessions_json(&conn).unwrap()).unwrap(),
            String::from_utf8(encoded).unwrap()
        );
    }

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
            LAST_RUN_ENDS,
            LAST_RUN_START,
            LAST_ANSWER,
            LAST_BASE,
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
