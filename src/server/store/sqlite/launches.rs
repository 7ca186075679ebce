//! Runs launched through the API: one `launches` row per `POST /runs`,
//! served as `/runs`. A launch is created queued, given to a host by the
//! dispatcher (`starting`), claimed by that host once (a compare-and-set of
//! its row), and moved on by its own run's events (`run_start`,
//! `run_completed`, which carry its id) or by its host's reports.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::hosts;
use super::ops::add_event;
use super::reader::{get_session, session_by_name};
use super::writer::Op;
use crate::server::changes::Change;
use crate::server::store::RunFilter;
use crate::server::store::launch_rules::{self as rules, LaunchRow, StopAction, launch_from_row};
use crate::server::store::placement::{Want, check_reachable};
use crate::wire::{Event, EventType, Run, RunCreate, RunExited, RunStatus, Session, now_rfc3339};

const SELECT_LAUNCH: &str = "SELECT run_id, status, session_name, project_dir, resume, agent, worktree, base,
        settings, want_host, labels, host, session_id, error, runner_exit_code, created_at, started_at,
        ended_at, seq, claimed_by, prompt
     FROM launches";

/// One launch, with its place in the queue; with its prompt if asked.
pub(super) fn get(
    conn: &Connection,
    run_id: &str,
    with_prompt: bool,
) -> Result<Option<LaunchRow>, StoreError> {
    let row = conn
        .prepare_cached(&format!("{SELECT_LAUNCH} WHERE run_id = ?1"))?
        .query_row([run_id], |r| launch_from_row(r, with_prompt))
        .optional()?;
    let Some(mut row) = row else { return Ok(None) };
    if row.run.status == RunStatus::Queued {
        let ahead: i64 = conn
            .prepare_cached("SELECT count(*) FROM launches WHERE status = 'queued' AND seq < ?1")?
            .query_row([row.seq], |r| r.get(0))?;
        row.run.queue_position = Some(ahead as u64 + 1);
    }
    Ok(Some(row))
}

/// Queued launches, oldest first.
pub(super) fn queued(conn: &Connection) -> Result<Vec<LaunchRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!(
        "{SELECT_LAUNCH} WHERE status = 'queued' ORDER BY seq"
    ))?;
    let rows = stmt.query_map([], |r| launch_from_row(r, false))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// `GET /runs`: newest first, queued ones with their place in the queue.
pub(super) fn list(conn: &Connection, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let mut clauses = Vec::new();
    let mut values: Vec<String> = Vec::new();
    if let Some(status) = filter.status {
        values.push(status.as_str().to_owned());
        clauses.push(format!("status = ?{}", values.len()));
    }
    if let Some(host) = &filter.host {
        values.push(host.clone());
        let n = values.len();
        clauses.push(format!(
            "(host = ?{n} OR (host IS NULL AND want_host = ?{n}))"
        ));
    }
    if let Some(name) = &filter.session_name {
        values.push(name.clone());
        clauses.push(format!("session_name = ?{}", values.len()));
    }
    let filter_sql = if clauses.is_empty() {
        String::new()
    } else {
        format!("WHERE {}", clauses.join(" AND "))
    };
    let sql = format!(
        "{SELECT_LAUNCH} {filter_sql} ORDER BY seq DESC LIMIT {}",
        filter.limit
    );
    let mut stmt = conn.prepare_cached(&sql)?;
    let rows: Vec<LaunchRow> = stmt
        .query_map(rusqlite::params_from_iter(values.iter()), |r| {
            launch_from_row(r, false)
        })?
        .collect::<Result<_, _>>()?;
    let queue: Vec<i64> = if rows.iter().any(|r| r.run.status == RunStatus::Queued) {
        conn.prepare_cached("SELECT seq FROM launches WHERE status = 'queued' ORDER BY seq")?
            .query_map([], |r| r.get(0))?
            .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(rows
        .into_iter()
        .map(|mut row| {
            if row.run.status == RunStatus::Queued {
                row.run.queue_position = Some(queue.partition_point(|s| *s < row.seq) as u64 + 1);
            }
            row.run
        })
        .collect())
}

/// `POST /runs`: checks the run against the sessions, the other launches
/// and the hosts, then queues it.
pub(super) struct Create {
    pub create: RunCreate,
    pub run_id: String,
}

impl Op for Create {
    type Out = Run;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Run, StoreError> {
        let c = self.create;
        let name = c.session_name.as_str();
        let (project_dir, want_host) = if c.resume {
            let found = match c.project_dir.as_deref() {
                Some(dir) => session_by_name(conn, name, Some(dir))?
                    .into_iter()
                    .collect(),
                None => super::reader::list_sessions(conn, Some(name), None)?,
            };
            let session = rules::session_to_resume(name, c.project_dir.as_deref(), found)?;
            rules::check_resume(&c, &session, &hosts::all(conn)?)?;
            (session.project_dir, session.host)
        } else {
            let Some(dir) = c.project_dir.clone() else {
                return Err(rules::needs_project_dir());
            };
            if let Some(other) = session_by_name(conn, name, Some(&dir))? {
                return Err(rules::name_taken(name, &dir, &other));
            }
            let all = hosts::all(conn)?;
            check_reachable(&all, Want::of(c.host.as_deref(), &c.labels), Some(&dir))?;
            (Some(dir), c.host.clone())
        };
        let open: Option<(String, String)> = conn
            .prepare_cached(
                "SELECT run_id, status FROM launches WHERE session_name = ?1
                 AND IFNULL(project_dir, '') = IFNULL(?2, '') AND status IN ('queued', 'starting', 'running')",
            )?
            .query_row(params![name, project_dir], |r| Ok((r.get(0)?, r.get(1)?)))
            .optional()?;
        if let Some((run_id, status)) = open {
            return Err(rules::run_open(name, &run_id, &status));
        }
        let settings = c
            .settings
            .as_ref()
            .filter(|s| !s.is_empty())
            .map(|s| serde_json::to_string(s).unwrap_or_default());
        let labels = serde_json::to_string(&c.labels).unwrap_or_else(|_| "[]".to_owned());
        conn.prepare_cached(
            "INSERT INTO launches (run_id, session_name, project_dir, resume, prompt, agent, worktree, base,
                 settings, want_host, labels, status, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, 'queued', ?12)",
        )?
        .execute(params![
            self.run_id,
            name,
            project_dir,
            c.resume,
            c.prompt,
            c.agent,
            c.worktree,
            c.base,
            settings,
            want_host,
            labels,
            now_rfc3339(),
        ])?;
        frames.push(Change::Run(Box::new(
            get(conn, &self.run_id, false)?
                .ok_or_else(|| StoreError::Unavailable("the new run vanished".to_owned()))?
                .run,
        )));
        // A host with room takes it in the same write.
        super::dispatch::assign(conn, frames)?;
        let row = get(conn, &self.run_id, false)?
            .ok_or_else(|| StoreError::Unavailable("the new run vanished".to_owned()))?;
        Ok(row.run)
    }
}

/// A stored event of a launched run moves the launch on: `run_start` makes
/// it running and records its host on the session; a run end gives it its
/// final status. Answers whether `session` changed.
pub(super) fn on_event(
    conn: &Connection,
    event: &Event,
    session: &mut Session,
    frames: &mut Vec<Change>,
) -> Result<bool, StoreError> {
    let Some(run_id) = &event.run_id else {
        return Ok(false);
    };
    let now = now_rfc3339();
    let changed = match event.event_type {
        EventType::RunStart | EventType::SessionStart => conn
            .prepare_cached(
                "UPDATE launches SET status = 'running', session_id = ?1, started_at = ?2
                 WHERE run_id = ?3 AND status IN ('queued', 'starting')",
            )?
            .execute(params![event.session_id, now, run_id])?,
        EventType::RunCompleted | EventType::SessionStop => conn
            .prepare_cached(
                "UPDATE launches SET status = ?1, error = ?2, ended_at = ?3, session_id = IFNULL(session_id, ?4)
                 WHERE run_id = ?5 AND status IN ('queued', 'starting', 'running')",
            )?
            .execute(params![
                RunStatus::of_reason(event.reason.as_deref()).as_str(),
                event.error,
                now,
                event.session_id,
                run_id
            ])?,
        _ => 0,
    };
    if changed == 0 {
        return Ok(false);
    }
    let Some(row) = get(conn, run_id, false)? else {
        return Ok(false);
    };
    let host = row.run.host.clone();
    frames.push(Change::Run(Box::new(row.run)));
    if host.is_some() && session.host != host {
        conn.prepare_cached("UPDATE sessions SET host = ?1 WHERE session_id = ?2")?
            .execute(params![host, session.session_id])?;
        session.host = host;
        return Ok(true);
    }
    Ok(false)
}

/// `POST /runs/{run_id}/claim`: the host the run was given to takes it,
/// once. Answers the run with its prompt.
pub(super) struct Claim {
    pub run_id: String,
    pub host: String,
    pub instance: String,
}

impl Op for Claim {
    type Out = Run;

    fn apply(self, conn: &Connection, _frames: &mut Vec<Change>) -> Result<Run, StoreError> {
        hosts::current(conn, &self.host, &self.instance)?;
        let taken = conn
            .prepare_cached(
                "UPDATE launches SET claimed_by = ?1
                 WHERE run_id = ?2 AND host = ?3 AND status = 'starting' AND claimed_by IS NULL",
            )?
            .execute(params![self.instance, self.run_id, self.host])?;
        let row = get(conn, &self.run_id, true)?.ok_or_else(|| rules::no_run(&self.run_id))?;
        if taken == 0 {
            return Err(rules::not_yours(
                &self.run_id,
                &row.run,
                row.claimed_by.is_some(),
                &self.host,
            ));
        }
        Ok(row.run)
    }
}

/// `POST /runs/{run_id}/exited`: the run's runner ended. One that ended
/// before its run began fails the run with its own line.
pub(super) struct Exited {
    pub run_id: String,
    pub exited: RunExited,
}

impl Op for Exited {
    type Out = Run;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Run, StoreError> {
        let e = self.exited;
        hosts::current(conn, &e.host, &e.instance)?;
        let row = get(conn, &self.run_id, false)?.ok_or_else(|| rules::no_run(&self.run_id))?;
        if row.claimed_by.as_deref() != Some(e.instance.as_str()) {
            return Err(rules::not_started_here(&self.run_id));
        }
        let (status, error) = rules::exited(&row.run, &e);
        conn.prepare_cached(
            "UPDATE launches SET status = ?1, error = ?2, runner_exit_code = ?3,
                 ended_at = IFNULL(ended_at, ?4) WHERE run_id = ?5",
        )?
        .execute(params![
            status.as_str(),
            error,
            e.exit_code,
            now_rfc3339(),
            self.run_id
        ])?;
        if row.run.status == RunStatus::Running {
            close_session_run(conn, &row.run, error.as_deref().unwrap_or(""), frames)?;
        }
        let run = get(conn, &self.run_id, false)?.map_or(row.run, |r| r.run);
        frames.push(Change::Run(Box::new(run.clone())));
        Ok(run)
    }
}

/// `POST /runs/{run_id}/stop`: a queued run is stopped at once; a run on a
/// host is stopped by that host. Answers the run and whether its host was
/// asked.
pub(super) struct Stop {
    pub run_id: String,
}

impl Op for Stop {
    type Out = (Run, bool);

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<(Run, bool), StoreError> {
        let row = get(conn, &self.run_id, false)?.ok_or_else(|| rules::no_run(&self.run_id))?;
        match rules::stop(&row.run, row.claimed_by.is_some())? {
            StopAction::Cancel => {
                conn.prepare_cached(
                    "UPDATE launches SET status = 'stopped', error = ?1, ended_at = ?2 WHERE run_id = ?3",
                )?
                .execute(params![rules::STOPPED_UNTAKEN, now_rfc3339(), self.run_id])?;
                let run = get(conn, &self.run_id, false)?.map_or(row.run, |r| r.run);
                frames.push(Change::Run(Box::new(run.clone())));
                Ok((run, false))
            }
            StopAction::AskHost(host) => {
                frames.push(Change::RunStopRequested {
                    run_id: self.run_id.clone(),
                    host,
                });
                Ok((row.run, true))
            }
        }
    }
}

/// The runs a process of `host` had begun end as interrupted, with `why`,
/// and their sessions' runs are closed (its runners are gone with it).
pub(super) fn retire_instance(
    conn: &Connection,
    host: &str,
    instance: &str,
    why: &str,
    frames: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT run_id FROM launches WHERE host = ?1 AND claimed_by = ?2
             AND status IN ('starting', 'running')",
        )?
        .query_map(params![host, instance], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for run_id in ids {
        conn.prepare_cached(
            "UPDATE launches SET status = 'interrupted', error = ?1, ended_at = ?2 WHERE run_id = ?3",
        )?
        .execute(params![why, now_rfc3339(), run_id])?;
        if let Some(row) = get(conn, &run_id, false)? {
            close_session_run(conn, &row.run, why, frames)?;
            frames.push(Change::Run(Box::new(row.run)));
        }
    }
    Ok(())
}

/// Runs given to `host` that it had not claimed go back to the queue.
pub(super) fn requeue_unclaimed(
    conn: &Connection,
    host: &str,
    frames: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT run_id FROM launches WHERE host = ?1 AND status = 'starting' AND claimed_by IS NULL",
        )?
        .query_map([host], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for run_id in ids {
        conn.prepare_cached(
            "UPDATE launches SET status = 'queued', host = NULL WHERE run_id = ?1",
        )?
        .execute([&run_id])?;
        if let Some(row) = get(conn, &run_id, false)? {
            frames.push(Change::Run(Box::new(row.run)));
        }
    }
    Ok(())
}

/// Queued runs created before `before` fail: no host took them in time.
pub(super) fn expire_queued(
    conn: &Connection,
    before: &str,
    seconds: f64,
    frames: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids: Vec<String> = conn
        .prepare_cached(
            "SELECT run_id FROM launches WHERE status = 'queued' AND created_at < ?1 ORDER BY seq",
        )?
        .query_map([before], |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for run_id in ids {
        let why = rules::expired(seconds);
        conn.prepare_cached(
            "UPDATE launches SET status = 'failed_to_start', error = ?1, ended_at = ?2 WHERE run_id = ?3",
        )?
        .execute(params![why, now_rfc3339(), run_id])?;
        if let Some(row) = get(conn, &run_id, false)? {
            frames.push(Change::Run(Box::new(row.run)));
        }
    }
    Ok(())
}

/// Closes the session's run of `run` as interrupted, when the session
/// still shows it running: with the event id the runner's own end would
/// have, so that end, should it come later, is taken for a repeat.
fn close_session_run(
    conn: &Connection,
    run: &Run,
    why: &str,
    frames: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let Some(session_id) = &run.session_id else {
        return Ok(());
    };
    let Some(session) = get_session(conn, session_id)? else {
        return Ok(());
    };
    if let Some((end, body)) = rules::interrupted_end(&session, run, why)? {
        add_event(conn, &end, &body, false, frames)?;
    }
    Ok(())
}
