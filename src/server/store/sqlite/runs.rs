//! Run records: one `runs` row per run end (its `run_completed` or
//! `session_stop` event), with the run's figures in columns, and the totals
//! each session keeps. Written by the writer thread inside the event's
//! savepoint, so a run and its event are stored together or not at all.

use rusqlite::{Connection, OptionalExtension, params};

use crate::server::store::StoreError;
use crate::server::store::rules::{self, RunColumns, signed};
use crate::wire::{Event, Session, SessionStatus};

/// Records the run that `event` (stored as row `id`) ends in `session`,
/// and adds it to the session's totals, in the row and in `session` (whose
/// status becomes `status`): one insert and one update.
pub(super) fn insert(
    conn: &Connection,
    id: i64,
    event: &Event,
    session: &mut Session,
    status: SessionStatus,
) -> Result<(), StoreError> {
    let (ended_at, run) = rules::add_run(session, event, status);
    conn.prepare_cached(
        "INSERT INTO runs (id, session_id, project_dir, agent_name, ended_at, reason, exit_code, cost_usd,
             input_tokens, output_tokens, cache_creation_input_tokens, cache_read_input_tokens,
             num_turns, duration_ms, duration_api_ms)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?
    .execute(params![
        id,
        event.session_id,
        session.project_dir,
        session.agent_name,
        ended_at,
        event.reason,
        event.exit_code,
        run.cost_usd,
        run.input_tokens,
        run.output_tokens,
        run.cache_creation_input_tokens,
        run.cache_read_input_tokens,
        run.num_turns,
        run.duration_ms,
        run.duration_api_ms,
    ])?;
    let total = session.usage;
    let last = session.last_run.as_ref();
    conn.prepare_cached(
        "UPDATE sessions SET status = ?1, num_runs = ?2, cost_usd = ?3, input_tokens = ?4,
             output_tokens = ?5, cache_creation_input_tokens = ?6, cache_read_input_tokens = ?7,
             last_reason = ?8, last_exit_code = ?9, last_duration_ms = ?10, last_ended_at = ?11
         WHERE session_id = ?12",
    )?
    .execute(params![
        status.as_str(),
        signed(Some(session.num_runs)),
        session.cost_usd,
        signed(Some(total.input_tokens)),
        signed(Some(total.output_tokens)),
        signed(Some(total.cache_creation_input_tokens)),
        signed(Some(total.cache_read_input_tokens)),
        last.and_then(|l| l.reason.as_deref()),
        last.and_then(|l| l.exit_code),
        signed(last.and_then(|l| l.duration_ms)),
        last.map(|l| l.ended_at.as_str()),
        event.session_id,
    ])?;
    Ok(())
}

fn read_columns(r: &rusqlite::Row<'_>) -> rusqlite::Result<RunColumns> {
    Ok(RunColumns {
        cost_usd: r.get(1)?,
        input_tokens: r.get(2)?,
        output_tokens: r.get(3)?,
        cache_creation_input_tokens: r.get(4)?,
        cache_read_input_tokens: r.get(5)?,
        num_turns: r.get(6)?,
        duration_ms: r.get(7)?,
        duration_api_ms: r.get(8)?,
    })
}

/// A run end sent again with other figures than its stored copy's (a
/// replay by `ao-sync` of a run stored without figures, or with figures an
/// older release derived wrongly): the new figures replace the old, in the
/// run, its event and the session's totals. True when something changed.
pub(super) fn fill(conn: &Connection, event: &Event, body: &str) -> Result<bool, StoreError> {
    let f = event.figures();
    let Some(event_id) = event.event_id.filter(|_| !f.is_empty()) else {
        return Ok(false);
    };
    let stored = conn
        .prepare_cached(
            "SELECT r.id, r.cost_usd, r.input_tokens, r.output_tokens, r.cache_creation_input_tokens,
                    r.cache_read_input_tokens, r.num_turns, r.duration_ms, r.duration_api_ms
             FROM events e JOIN runs r ON r.id = e.id
             WHERE e.session_id = ?1 AND e.event_id = ?2",
        )?
        .query_row(params![event.session_id, event_id.to_string()], |r| {
            Ok((r.get::<_, i64>(0)?, read_columns(r)?))
        })
        .optional()?;
    let Some((id, old)) = stored else {
        return Ok(false);
    };
    let new = RunColumns::of(&f);
    if old == new {
        return Ok(false);
    }
    conn.prepare_cached(
        "UPDATE runs SET cost_usd = ?1, input_tokens = ?2, output_tokens = ?3,
             cache_creation_input_tokens = ?4, cache_read_input_tokens = ?5, num_turns = ?6,
             duration_ms = ?7, duration_api_ms = ?8 WHERE id = ?9",
    )?
    .execute(params![
        new.cost_usd,
        new.input_tokens,
        new.output_tokens,
        new.cache_creation_input_tokens,
        new.cache_read_input_tokens,
        new.num_turns,
        new.duration_ms,
        new.duration_api_ms,
        id,
    ])?;
    conn.prepare_cached("UPDATE events SET body = ?1 WHERE id = ?2")?
        .execute(params![body, id])?;
    // The session's last run may be this one.
    conn.prepare_cached(&format!(
        "UPDATE sessions SET last_duration_ms = ?1 WHERE session_id = ?2
             AND (SELECT max(id) FROM ({})) = ?3",
        RUNS_OF_SESSION.replace("?1", "?2")
    ))?
    .execute(params![new.duration_ms, event.session_id, id])?;
    conn.prepare_cached(
        "UPDATE sessions SET
             cost_usd = CASE WHEN ?1 IS NULL AND ?2 IS NULL THEN cost_usd
                             ELSE round(IFNULL(cost_usd, 0) - IFNULL(?1, 0) + IFNULL(?2, 0), 9) END,
             input_tokens = input_tokens - IFNULL(?3, 0) + IFNULL(?4, 0),
             output_tokens = output_tokens - IFNULL(?5, 0) + IFNULL(?6, 0),
             cache_creation_input_tokens = cache_creation_input_tokens - IFNULL(?7, 0) + IFNULL(?8, 0),
             cache_read_input_tokens = cache_read_input_tokens - IFNULL(?9, 0) + IFNULL(?10, 0)
         WHERE session_id = ?11",
    )?
    .execute(params![
        old.cost_usd,
        new.cost_usd,
        old.input_tokens,
        new.input_tokens,
        old.output_tokens,
        new.output_tokens,
        old.cache_creation_input_tokens,
        new.cache_creation_input_tokens,
        old.cache_read_input_tokens,
        new.cache_read_input_tokens,
        event.session_id,
    ])?;
    Ok(true)
}

/// The ids of a session's runs: those of its run-end events, found
/// through the events' index (runs share their event's id).
const RUNS_OF_SESSION: &str = "SELECT id FROM events WHERE session_id = ?1
     AND event_type IN ('run_completed', 'session_stop')";

/// Keeps the runs' copy of a session's project and agent in step.
pub(super) fn follow_session(
    conn: &Connection,
    session_id: &str,
    project_dir: Option<&str>,
    agent_name: Option<&str>,
) -> Result<(), StoreError> {
    conn.prepare_cached(&format!(
        "UPDATE runs SET project_dir = ?2, agent_name = ?3 WHERE id IN ({RUNS_OF_SESSION})"
    ))?
    .execute(params![session_id, project_dir, agent_name])?;
    Ok(())
}

/// Removes a session's runs (before its events, which find them).
pub(super) fn delete(conn: &Connection, session_id: &str) -> Result<(), StoreError> {
    conn.prepare_cached(&format!("DELETE FROM runs WHERE id IN ({RUNS_OF_SESSION})"))?
        .execute([session_id])?;
    Ok(())
}
