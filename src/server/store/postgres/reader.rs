//! Reads, on pooled connections or inside the writer's transaction. Text
//! is ordered byte-wise (`COLLATE "C"`), as SQLite orders it, whatever the
//! database's locale.

use tokio_postgres::Row;

use super::{Db, row, rows};
use crate::server::changes::with_id;
use crate::server::store::rules::{self, session_from_row};
use crate::server::store::{GroupBy, ResultLookup, StoreError};
use crate::wire::{Session, SessionStatus, UsageAnswer, UsageFigures, UsageGroup};

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
pub(super) use select_sessions;

const SESSION_BY_ID: &str = select_sessions!("WHERE session_id = $1");
const SESSION_BY_NAME_IN_PROJECT: &str =
    select_sessions!("WHERE session_name = $1 AND COALESCE(project_dir, '') = COALESCE($2, '')");
const SESSIONS_BY_NAME: &str = select_sessions!("WHERE session_name = $1 ORDER BY seq DESC");
const SESSIONS_IN_PROJECT: &str =
    select_sessions!("WHERE COALESCE(project_dir, '') = $1 ORDER BY seq DESC");
const ALL_SESSIONS: &str = select_sessions!("ORDER BY seq DESC");
/// The sessions with these ids, for a batch of writes.
pub(super) const SESSIONS_BY_IDS: &str =
    select_sessions!("WHERE session_id = ANY($1) FOR KEY SHARE");
const LAST_RUN_ENDS: &str = "SELECT id, body FROM events
    WHERE session_id = $1 AND event_type IN ('run_completed', 'session_stop')
    ORDER BY id DESC LIMIT 2";
const LAST_RUN_START: &str = "SELECT id FROM events
    WHERE session_id = $1 AND event_type IN ('run_start', 'session_start') AND id <= $2
    ORDER BY id DESC LIMIT 1";
const LAST_ANSWER: &str = "SELECT body FROM events
    WHERE session_id = $1 AND event_type = 'message' AND role = 'assistant' AND id > $2 AND id <= $3
      AND (body::jsonb -> 'final') IS DISTINCT FROM 'false'::jsonb
    ORDER BY id DESC LIMIT 1";
/// The base commit the last `changes` event of a worktree session names.
const LAST_BASE: &str = "SELECT body::jsonb ->> 'base' FROM events
    WHERE session_id = $1 AND event_type = 'changes' AND body::jsonb ->> 'base' IS NOT NULL
    ORDER BY id DESC LIMIT 1";
const EVENTS_PAGE: &str =
    "SELECT id, body FROM events WHERE session_id = $1 AND id > $2 ORDER BY id LIMIT $3";

fn sessions(rows: &[Row]) -> Result<Vec<Session>, StoreError> {
    rows.iter().map(session_from_row).collect()
}

pub(super) async fn get_session(db: &impl Db, id: &str) -> Result<Option<Session>, StoreError> {
    row(db, SESSION_BY_ID, &[&id])
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
}

/// The session with this name in this project directory (`None` = no directory).
pub(super) async fn session_by_name(
    db: &impl Db,
    name: &str,
    project_dir: Option<&str>,
) -> Result<Option<Session>, StoreError> {
    row(db, SESSION_BY_NAME_IN_PROJECT, &[&name, &project_dir])
        .await?
        .as_ref()
        .map(session_from_row)
        .transpose()
}

pub(super) async fn list_sessions(
    db: &impl Db,
    name: Option<&str>,
    project_dir: Option<&str>,
) -> Result<Vec<Session>, StoreError> {
    match (name, project_dir) {
        (Some(name), Some(dir)) => Ok(session_by_name(db, name, Some(dir))
            .await?
            .into_iter()
            .collect()),
        (Some(name), None) => sessions(&rows(db, SESSIONS_BY_NAME, &[&name]).await?),
        (None, Some(dir)) => sessions(&rows(db, SESSIONS_IN_PROJECT, &[&dir]).await?),
        (None, None) => sessions(&rows(db, ALL_SESSIONS, &[]).await?),
    }
}

/// The last run's answer, read in one snapshot of the database.
pub(super) async fn result(
    db: &mut deadpool_postgres::Object,
    id: &str,
) -> Result<ResultLookup, StoreError> {
    let tx = db
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let Some(session) = tx
        .query_opt(&tx.prepare_cached(SESSION_BY_ID).await?, &[&id])
        .await?
    else {
        return Ok(ResultLookup::UnknownSession);
    };
    if session_from_row(&session)?.status == SessionStatus::Running {
        return Ok(ResultLookup::Running);
    }
    let ends: Vec<(i64, String)> = tx
        .query(&tx.prepare_cached(LAST_RUN_ENDS).await?, &[&id])
        .await?
        .iter()
        .map(|r| Ok((r.try_get(0)?, r.try_get(1)?)))
        .collect::<Result<_, StoreError>>()?;
    let (to, end) = match ends.first() {
        Some((end_id, body)) => (*end_id, Some(rules::parse_stored(body)?)),
        None => (i64::MAX, None),
    };
    let start: Option<i64> = tx
        .query_opt(&tx.prepare_cached(LAST_RUN_START).await?, &[&id, &to])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    let from = start.max(ends.get(1).map(|(id, _)| *id)).unwrap_or(0);
    let answer: Option<String> = tx
        .query_opt(&tx.prepare_cached(LAST_ANSWER).await?, &[&id, &from, &to])
        .await?
        .map(|r| r.try_get(0))
        .transpose()?;
    tx.commit().await?;
    let answer = answer.as_deref().map(rules::parse_stored).transpose()?;
    Ok(rules::result_of(end.as_ref(), answer.as_ref()))
}

/// The SQL expression of a group's key.
fn group_key(group_by: GroupBy) -> &'static str {
    match group_by {
        GroupBy::Project => "COALESCE(project_dir, '')",
        GroupBy::Agent => "COALESCE(agent_name, '')",
        GroupBy::Day => "substr(ended_at, 1, 10)",
        GroupBy::Session => "session_id",
    }
}

/// Totals per group over the runs that ended at or after `since` in
/// project `project`, added up by PostgreSQL as SQLite adds them.
pub(super) async fn usage(
    db: &impl Db,
    group_by: GroupBy,
    then: Option<GroupBy>,
    since: Option<&str>,
    project: Option<&str>,
) -> Result<UsageAnswer, StoreError> {
    let sql = match (since, group_by, then) {
        (None, GroupBy::Project | GroupBy::Agent | GroupBy::Session, None) => format!(
            "SELECT {key} AS key, NULL::TEXT, sum(num_runs)::BIGINT, COALESCE(sum(cost_usd), 0)::DOUBLE PRECISION AS cost, \
             sum(input_tokens)::BIGINT, sum(output_tokens)::BIGINT, \
             sum(cache_creation_input_tokens)::BIGINT, sum(cache_read_input_tokens)::BIGINT, \
             max(session_name COLLATE \"C\") \
             FROM sessions WHERE num_runs > 0 AND ($1::TEXT IS NULL OR true) \
             AND ($2::TEXT IS NULL OR COALESCE(project_dir, '') = $2) \
             GROUP BY 1 ORDER BY 4 DESC, {key} COLLATE \"C\"",
            key = group_key(group_by)
        ),
        _ => format!(
            "SELECT {key} AS key, {sub} AS sub, count(*), COALESCE(sum(cost_usd), 0)::DOUBLE PRECISION AS cost, \
             COALESCE(sum(input_tokens), 0)::BIGINT, COALESCE(sum(output_tokens), 0)::BIGINT, \
             COALESCE(sum(cache_creation_input_tokens), 0)::BIGINT, COALESCE(sum(cache_read_input_tokens), 0)::BIGINT, \
             NULL::TEXT \
             FROM runs WHERE ($1::TEXT IS NULL OR ended_at >= $1) \
             AND ($2::TEXT IS NULL OR COALESCE(project_dir, '') = $2) \
             GROUP BY 1, 2 ORDER BY {order}",
            key = group_key(group_by),
            sub = then.map_or("NULL::TEXT", group_key),
            order = match then {
                Some(then) => format!(
                    "{} COLLATE \"C\", 4 DESC, {} COLLATE \"C\"",
                    group_key(group_by),
                    group_key(then)
                ),
                None => format!("4 DESC, {} COLLATE \"C\"", group_key(group_by)),
            },
        ),
    };
    let found = rows(db, &sql, &[&since, &project]).await?;
    let mut groups = Vec::with_capacity(found.len());
    for r in &found {
        let count =
            |i: usize| -> Result<u64, StoreError> { Ok(r.try_get::<_, i64>(i)?.max(0) as u64) };
        groups.push(UsageGroup {
            key: r.try_get(0)?,
            sub_key: r.try_get(1)?,
            session_name: r.try_get(8)?,
            figures: UsageFigures {
                runs: count(2)?,
                cost_usd: r.try_get(3)?,
                input_tokens: count(4)?,
                output_tokens: count(5)?,
                cache_creation_input_tokens: count(6)?,
                cache_read_input_tokens: count(7)?,
            },
        });
    }
    let mut total = UsageFigures::default();
    for group in &mut groups {
        total.merge(&group.figures);
        if group_by != GroupBy::Session {
            group.session_name = None;
        } else if group.session_name.is_none() {
            group.session_name = get_session(db, &group.key).await?.map(|s| s.session_name);
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
pub(super) async fn branch_base(db: &impl Db, id: &str) -> Result<Option<String>, StoreError> {
    row(db, LAST_BASE, &[&id])
        .await?
        .map(|r| r.try_get(0))
        .transpose()
        .map_err(StoreError::from)
}

pub(super) async fn events_page(
    db: &impl Db,
    id: &str,
    after: i64,
    limit: u32,
) -> Result<Vec<(i64, String)>, StoreError> {
    let limit = i64::from(limit);
    rows(db, EVENTS_PAGE, &[&id, &after, &limit])
        .await?
        .iter()
        .map(|r| {
            let id: i64 = r.try_get(0)?;
            Ok((id, with_id(id, r.try_get::<_, &str>(1)?)))
        })
        .collect()
}
