//! Runs launched through the API, as SQLite's `launches` keeps them (see
//! there), written inside the writer's transaction. With several replicas
//! writing at once: the dispatcher takes the queued runs `FOR UPDATE SKIP
//! LOCKED` (a run another replica is giving away is left to it) with every
//! host's row locked while it counts their room, and a host's claim is a
//! compare-and-set of the run's row, so no run is given or started twice.

use super::reader::{get_session, list_sessions, session_by_name};
use super::{Db, exec, hosts, ops, row, rows};
use crate::server::changes::Change;
use crate::server::store::launch_rules::{self as rules, LaunchRow, StopAction, launch_from_row};
use crate::server::store::placement::{Want, check_reachable, pick};
use crate::server::store::{RunFilter, StoreError};
use crate::wire::{Event, EventType, Run, RunCreate, RunExited, RunStatus, Session, now_rfc3339};

/// `SELECT <every launch column> FROM launches <rest>`.
macro_rules! select_launches {
    ($rest:literal) => {
        concat!(
            "SELECT run_id, status, session_name, project_dir, resume, agent, worktree, base, \
             settings, want_host, labels, host, session_id, error, runner_exit_code, created_at, started_at, \
             ended_at, seq, claimed_by, prompt FROM launches ",
            $rest
        )
    };
}

/// One launch, with its place in the queue; with its prompt if asked.
pub(super) async fn get(
    db: &impl Db,
    run_id: &str,
    with_prompt: bool,
) -> Result<Option<LaunchRow>, StoreError> {
    let found = row(db, select_launches!("WHERE run_id = $1"), &[&run_id]).await?;
    let Some(found) = found else { return Ok(None) };
    let mut launch = launch_from_row(&found, with_prompt)?;
    if launch.run.status == RunStatus::Queued {
        let ahead: i64 = row(
            db,
            "SELECT count(*) FROM launches WHERE status = 'queued' AND seq < $1",
            &[&launch.seq],
        )
        .await?
        .map_or(Ok(0), |r| r.try_get(0))?;
        launch.run.queue_position = Some(ahead as u64 + 1);
    }
    Ok(Some(launch))
}

async fn get_run(db: &impl Db, run_id: &str) -> Result<LaunchRow, StoreError> {
    get(db, run_id, false)
        .await?
        .ok_or_else(|| rules::no_run(run_id))
}

/// `GET /runs`: newest first, queued ones with their place in the queue.
pub(super) async fn list(db: &impl Db, filter: &RunFilter) -> Result<Vec<Run>, StoreError> {
    let status = filter.status.map(|s| s.as_str());
    let limit = i64::from(filter.limit);
    let found = rows(
        db,
        select_launches!(
            "WHERE ($1::TEXT IS NULL OR status = $1)
             AND ($2::TEXT IS NULL OR host = $2 OR (host IS NULL AND want_host = $2))
             AND ($3::TEXT IS NULL OR session_name = $3)
             ORDER BY seq DESC LIMIT $4"
        ),
        &[&status, &filter.host, &filter.session_name, &limit],
    )
    .await?;
    let launches: Vec<LaunchRow> = found
        .iter()
        .map(|r| launch_from_row(r, false))
        .collect::<Result<_, _>>()?;
    let queue: Vec<i64> = if launches.iter().any(|l| l.run.status == RunStatus::Queued) {
        rows(
            db,
            "SELECT seq FROM launches WHERE status = 'queued' ORDER BY seq",
            &[],
        )
        .await?
        .iter()
        .map(|r| r.try_get(0))
        .collect::<Result<_, _>>()?
    } else {
        Vec::new()
    };
    Ok(launches
        .into_iter()
        .map(|mut l| {
            if l.run.status == RunStatus::Queued {
                l.run.queue_position = Some(queue.partition_point(|s| *s < l.seq) as u64 + 1);
            }
            l.run
        })
        .collect())
}

/// `POST /runs`: checks the run against the sessions, the other launches
/// and the hosts, then queues it, and gives it to a host with room.
pub(super) async fn create(
    db: &impl Db,
    c: &RunCreate,
    run_id: &str,
    changes: &mut Vec<Change>,
) -> Result<Run, StoreError> {
    let name = c.session_name.as_str();
    let (project_dir, want_host) = if c.resume {
        let found = match c.project_dir.as_deref() {
            Some(dir) => session_by_name(db, name, Some(dir))
                .await?
                .into_iter()
                .collect(),
            None => list_sessions(db, Some(name), None).await?,
        };
        let session = rules::session_to_resume(name, c.project_dir.as_deref(), found)?;
        rules::check_resume(c, &session, &hosts::all(db).await?)?;
        (session.project_dir, session.host)
    } else {
        let Some(dir) = c.project_dir.clone() else {
            return Err(rules::needs_project_dir());
        };
        if let Some(other) = session_by_name(db, name, Some(&dir)).await? {
            return Err(rules::name_taken(name, &dir, &other));
        }
        let all = hosts::all(db).await?;
        check_reachable(&all, Want::of(c.host.as_deref(), &c.labels), Some(&dir))?;
        (Some(dir), c.host.clone())
    };
    // Two replicas creating a run of one session at once take turns here.
    exec(
        db,
        "SELECT pg_advisory_xact_lock(hashtext($1 || '/' || COALESCE($2, '')))",
        &[&name, &project_dir],
    )
    .await?;
    let open = row(
        db,
        "SELECT run_id, status FROM launches WHERE session_name = $1
         AND COALESCE(project_dir, '') = COALESCE($2, '') AND status IN ('queued', 'starting', 'running')",
        &[&name, &project_dir],
    )
    .await?;
    if let Some(open) = open {
        let (open_id, status): (String, String) = (open.try_get(0)?, open.try_get(1)?);
        return Err(rules::run_open(name, &open_id, &status));
    }
    let settings = c
        .settings
        .as_ref()
        .filter(|s| !s.is_empty())
        .map(|s| serde_json::to_string(s).unwrap_or_default());
    let labels = serde_json::to_string(&c.labels).unwrap_or_else(|_| "[]".to_owned());
    exec(
        db,
        "INSERT INTO launches (run_id, session_name, project_dir, resume, prompt, agent, worktree, base,
             settings, want_host, labels, status, created_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, 'queued', $12)",
        &[
            &run_id,
            &name,
            &project_dir,
            &c.resume,
            &c.prompt,
            &c.agent,
            &c.worktree,
            &c.base,
            &settings,
            &want_host,
            &labels,
            &now_rfc3339(),
        ],
    )
    .await?;
    changes.push(Change::Run(Box::new(get_run(db, run_id).await?.run)));
    assign(db, changes).await?;
    Ok(get_run(db, run_id).await?.run)
}

/// Gives queued runs, oldest first, to hosts with room; answers how many.
pub(super) async fn assign(db: &impl Db, changes: &mut Vec<Change>) -> Result<usize, StoreError> {
    let found = rows(
        db,
        select_launches!("WHERE status = 'queued' ORDER BY seq FOR UPDATE SKIP LOCKED"),
        &[],
    )
    .await?;
    if found.is_empty() {
        return Ok(0);
    }
    let queued: Vec<LaunchRow> = found
        .iter()
        .map(|r| launch_from_row(r, false))
        .collect::<Result<_, _>>()?;
    let mut all = hosts::all_locked(db).await?;
    let mut given = 0;
    for launch in queued {
        let want = Want::of(launch.want_host.as_deref(), &launch.run.labels);
        let Some(host) = pick(&mut all, want, launch.run.project_dir.as_deref()) else {
            continue;
        };
        let changed = exec(
            db,
            "UPDATE launches SET status = 'starting', host = $1 WHERE run_id = $2 AND status = 'queued'",
            &[&host.host.name, &launch.run.run_id],
        )
        .await?;
        if changed == 0 {
            continue;
        }
        host.host.running += 1;
        given += 1;
        let name = host.host.name.clone();
        if let Some(run) = get(db, &launch.run.run_id, false).await? {
            changes.push(Change::Run(Box::new(run.run)));
        }
        changes.push(Change::RunAssigned {
            run_id: launch.run.run_id,
            host: name,
        });
    }
    Ok(given)
}

/// A stored event of a launched run moves the launch on (see SQLite's).
pub(super) async fn on_event(
    db: &impl Db,
    event: &Event,
    session: &mut Session,
    changes: &mut Vec<Change>,
) -> Result<bool, StoreError> {
    let Some(run_id) = &event.run_id else {
        return Ok(false);
    };
    let now = now_rfc3339();
    let changed = match event.event_type {
        EventType::RunStart | EventType::SessionStart => {
            exec(
                db,
                "UPDATE launches SET status = 'running', session_id = $1, started_at = $2
                 WHERE run_id = $3 AND status IN ('queued', 'starting')",
                &[&event.session_id, &now, run_id],
            )
            .await?
        }
        EventType::RunCompleted | EventType::SessionStop => {
            exec(
                db,
                "UPDATE launches SET status = $1, error = $2, ended_at = $3, session_id = COALESCE(session_id, $4)
                 WHERE run_id = $5 AND status IN ('queued', 'starting', 'running')",
                &[
                    &RunStatus::of_reason(event.reason.as_deref()).as_str(),
                    &event.error,
                    &now,
                    &event.session_id,
                    run_id,
                ],
            )
            .await?
        }
        _ => 0,
    };
    if changed == 0 {
        return Ok(false);
    }
    let Some(launch) = get(db, run_id, false).await? else {
        return Ok(false);
    };
    let host = launch.run.host.clone();
    changes.push(Change::Run(Box::new(launch.run)));
    if host.is_some() && session.host != host {
        exec(
            db,
            "UPDATE sessions SET host = $1 WHERE session_id = $2",
            &[&host, &session.session_id],
        )
        .await?;
        session.host = host;
        return Ok(true);
    }
    Ok(false)
}

/// `POST /runs/{run_id}/claim`: the host the run was given to takes it,
/// once: a compare-and-set of its row, whichever replica is asked.
pub(super) async fn claim(
    db: &impl Db,
    run_id: &str,
    host: &str,
    instance: &str,
) -> Result<Run, StoreError> {
    hosts::current(db, host, instance).await?;
    let taken = exec(
        db,
        "UPDATE launches SET claimed_by = $1
         WHERE run_id = $2 AND host = $3 AND status = 'starting' AND claimed_by IS NULL",
        &[&instance, &run_id, &host],
    )
    .await?;
    let launch = get(db, run_id, true)
        .await?
        .ok_or_else(|| rules::no_run(run_id))?;
    if taken == 0 {
        return Err(rules::not_yours(
            run_id,
            &launch.run,
            launch.claimed_by.is_some(),
            host,
        ));
    }
    Ok(launch.run)
}

/// `POST /runs/{run_id}/exited`.
pub(super) async fn exited(
    db: &impl Db,
    run_id: &str,
    e: &RunExited,
    changes: &mut Vec<Change>,
) -> Result<Run, StoreError> {
    hosts::current(db, &e.host, &e.instance).await?;
    let launch = get_run(db, run_id).await?;
    if launch.claimed_by.as_deref() != Some(e.instance.as_str()) {
        return Err(rules::not_started_here(run_id));
    }
    let (status, error) = rules::exited(&launch.run, e);
    exec(
        db,
        "UPDATE launches SET status = $1, error = $2, runner_exit_code = $3,
             ended_at = COALESCE(ended_at, $4) WHERE run_id = $5",
        &[
            &status.as_str(),
            &error,
            &e.exit_code,
            &now_rfc3339(),
            &run_id,
        ],
    )
    .await?;
    if launch.run.status == RunStatus::Running {
        close_session_run(db, &launch.run, error.as_deref().unwrap_or(""), changes).await?;
    }
    let run = get(db, run_id, false).await?.map_or(launch.run, |l| l.run);
    changes.push(Change::Run(Box::new(run.clone())));
    Ok(run)
}

/// `POST /runs/{run_id}/stop`.
pub(super) async fn stop(
    db: &impl Db,
    run_id: &str,
    changes: &mut Vec<Change>,
) -> Result<(Run, bool), StoreError> {
    let launch = get_run(db, run_id).await?;
    match rules::stop(&launch.run, launch.claimed_by.is_some())? {
        StopAction::Cancel => {
            // The claim's compare-and-set sees `stopped`, and fails.
            exec(
                db,
                "UPDATE launches SET status = 'stopped', error = $1, ended_at = $2 WHERE run_id = $3",
                &[&rules::STOPPED_UNTAKEN, &now_rfc3339(), &run_id],
            )
            .await?;
            let run = get(db, run_id, false).await?.map_or(launch.run, |l| l.run);
            changes.push(Change::Run(Box::new(run.clone())));
            Ok((run, false))
        }
        StopAction::AskHost(host) => {
            changes.push(Change::RunStopRequested {
                run_id: run_id.to_owned(),
                host,
            });
            Ok((launch.run, true))
        }
    }
}

async fn run_ids(
    db: &impl Db,
    sql: &str,
    params: super::Params<'_>,
) -> Result<Vec<String>, StoreError> {
    rows(db, sql, params)
        .await?
        .iter()
        .map(|r| r.try_get(0).map_err(StoreError::from))
        .collect()
}

/// The runs a process of `host` had begun end as interrupted, with `why`.
pub(super) async fn retire_instance(
    db: &impl Db,
    host: &str,
    instance: &str,
    why: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids = run_ids(
        db,
        "SELECT run_id FROM launches WHERE host = $1 AND claimed_by = $2
         AND status IN ('starting', 'running') ORDER BY seq FOR UPDATE",
        &[&host, &instance],
    )
    .await?;
    for run_id in ids {
        exec(
            db,
            "UPDATE launches SET status = 'interrupted', error = $1, ended_at = $2 WHERE run_id = $3",
            &[&why, &now_rfc3339(), &run_id],
        )
        .await?;
        if let Some(launch) = get(db, &run_id, false).await? {
            close_session_run(db, &launch.run, why, changes).await?;
            changes.push(Change::Run(Box::new(launch.run)));
        }
    }
    Ok(())
}

/// Runs given to `host` that it had not claimed go back to the queue.
pub(super) async fn requeue_unclaimed(
    db: &impl Db,
    host: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids = run_ids(
        db,
        "SELECT run_id FROM launches WHERE host = $1 AND status = 'starting' AND claimed_by IS NULL
         ORDER BY seq FOR UPDATE",
        &[&host],
    )
    .await?;
    for run_id in ids {
        exec(
            db,
            "UPDATE launches SET status = 'queued', host = NULL WHERE run_id = $1",
            &[&run_id],
        )
        .await?;
        if let Some(launch) = get(db, &run_id, false).await? {
            changes.push(Change::Run(Box::new(launch.run)));
        }
    }
    Ok(())
}

/// Queued runs created before `before` fail.
pub(super) async fn expire_queued(
    db: &impl Db,
    before: &str,
    seconds: f64,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let ids = run_ids(
        db,
        "SELECT run_id FROM launches WHERE status = 'queued' AND created_at < $1
         ORDER BY seq FOR UPDATE SKIP LOCKED",
        &[&before],
    )
    .await?;
    let why = rules::expired(seconds);
    for run_id in ids {
        exec(
            db,
            "UPDATE launches SET status = 'failed_to_start', error = $1, ended_at = $2 WHERE run_id = $3",
            &[&why, &now_rfc3339(), &run_id],
        )
        .await?;
        if let Some(launch) = get(db, &run_id, false).await? {
            changes.push(Change::Run(Box::new(launch.run)));
        }
    }
    Ok(())
}

/// Closes the session's run of `run` as interrupted (see SQLite's).
async fn close_session_run(
    db: &impl Db,
    run: &Run,
    why: &str,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let Some(session_id) = &run.session_id else {
        return Ok(());
    };
    let Some(session) = get_session(db, session_id).await? else {
        return Ok(());
    };
    if let Some((end, body)) = rules::interrupted_end(&session, run, why)? {
        Box::pin(ops::add_event(db, &end, &body, false, changes)).await?;
    }
    Ok(())
}
