//! The hosts that run launched runs, as SQLite's `hosts` keeps them (see
//! there): registration, heartbeats, going offline, written inside the
//! writer's transaction with the host's row locked, so that replicas
//! registering or sweeping one host at once take turns.

use super::{Db, exec, launches, row, rows};
use crate::server::changes::Change;
use crate::server::store::StoreError;
use crate::server::store::launch_rules;
use crate::server::store::placement::{HostRow, host_from_row, stamp};
use crate::wire::{Host, HostRegister, now_rfc3339};

/// `SELECT <every host column>, its runs begun FROM hosts <rest>`.
macro_rules! select_hosts {
    ($rest:literal) => {
        concat!(
            "SELECT name, labels, projects, capacity, claude_version, last_seen, online, embedded, instance, \
             (SELECT count(*) FROM launches l WHERE l.host = hosts.name AND l.status IN ('starting', 'running')) \
             FROM hosts ",
            $rest
        )
    };
}

/// Every host, by name (`COLLATE "C"`: byte order, as SQLite's).
pub(super) async fn all(db: &impl Db) -> Result<Vec<HostRow>, StoreError> {
    let sql = select_hosts!("ORDER BY name COLLATE \"C\"");
    rows(db, sql, &[])
        .await?
        .iter()
        .map(host_from_row)
        .collect()
}

/// Every host, locked until the commit: the dispatcher counts their room.
pub(super) async fn all_locked(db: &impl Db) -> Result<Vec<HostRow>, StoreError> {
    exec(
        db,
        "SELECT name FROM hosts ORDER BY name COLLATE \"C\" FOR UPDATE",
        &[],
    )
    .await?;
    all(db).await
}

/// One host, if it is known.
pub(super) async fn get(db: &impl Db, name: &str) -> Result<Option<HostRow>, StoreError> {
    let sql = select_hosts!("WHERE name = $1");
    row(db, sql, &[&name])
        .await?
        .as_ref()
        .map(host_from_row)
        .transpose()
}

async fn lock(db: &impl Db, name: &str) -> Result<(), StoreError> {
    exec(
        db,
        "SELECT 1 FROM hosts WHERE name = $1 FOR UPDATE",
        &[&name],
    )
    .await?;
    Ok(())
}

fn vanished() -> StoreError {
    StoreError::Unavailable("the host row vanished".to_owned())
}

/// `POST /hosts`.
pub(super) async fn register(
    db: &impl Db,
    r: &HostRegister,
    embedded: bool,
    timeout_seconds: f64,
    changes: &mut Vec<Change>,
) -> Result<Host, StoreError> {
    lock(db, &r.name).await?;
    let old = get(db, &r.name).await?;
    if let Some(old) = &old
        && old.instance != r.instance
    {
        if old.host.online && !embedded {
            return Err(StoreError::Conflict(format!(
                "a host named '{}' is online already (last seen {}); give this one another --name, or stop the other first (a host that died is offline {} s after its last heartbeat)",
                r.name, old.host.last_seen, timeout_seconds
            )));
        }
        let why = format!("host '{}' was started again", r.name);
        launches::retire_instance(db, &r.name, &old.instance, &why, changes).await?;
    }
    let labels = serde_json::to_string(&r.labels).unwrap_or_else(|_| "[]".to_owned());
    let projects = serde_json::to_string(&r.projects).unwrap_or_else(|_| "[]".to_owned());
    exec(
        db,
        "INSERT INTO hosts (name, instance, labels, projects, capacity, claude_version, embedded, online, last_seen)
         VALUES ($1, $2, $3, $4, $5, $6, $7, TRUE, $8)
         ON CONFLICT (name) DO UPDATE SET instance = $2, labels = $3, projects = $4, capacity = $5,
             claude_version = $6, embedded = $7, online = TRUE, last_seen = $8",
        &[
            &r.name,
            &r.instance,
            &labels,
            &projects,
            &i64::from(r.capacity),
            &r.claude_version,
            &embedded,
            &now_rfc3339(),
        ],
    )
    .await?;
    let host = get(db, &r.name).await?.ok_or_else(vanished)?.host;
    let same = old.is_some_and(|o| {
        o.instance == r.instance
            && o.host.online
            && o.host.labels == host.labels
            && o.host.projects == host.projects
            && o.host.capacity == host.capacity
    });
    if !same {
        changes.push(Change::Host(host.clone()));
    }
    Ok(host)
}

/// Checks that `instance` is the process that holds `name` now.
pub(super) async fn current(
    db: &impl Db,
    name: &str,
    instance: &str,
) -> Result<HostRow, StoreError> {
    let row = get(db, name).await?.ok_or_else(|| {
        StoreError::NotFound(format!(
            "host '{name}' is not registered; register it first (POST /hosts)"
        ))
    })?;
    if row.instance != instance {
        return Err(StoreError::Conflict(format!(
            "host '{name}' is held by another process now; this one must register again"
        )));
    }
    Ok(row)
}

/// `POST /hosts/{name}/heartbeat`.
pub(super) async fn heartbeat(
    db: &impl Db,
    name: &str,
    instance: &str,
    changes: &mut Vec<Change>,
) -> Result<Host, StoreError> {
    let row = current(db, name, instance).await?;
    exec(
        db,
        "UPDATE hosts SET last_seen = $1, online = TRUE WHERE name = $2",
        &[&now_rfc3339(), &name],
    )
    .await?;
    let host = get(db, name).await?.map_or(row.host.clone(), |r| r.host);
    if !row.host.online {
        changes.push(Change::Host(host.clone()));
    }
    Ok(host)
}

/// `DELETE /hosts/{name}`.
pub(super) async fn leave(
    db: &impl Db,
    name: &str,
    instance: &str,
    changes: &mut Vec<Change>,
) -> Result<Host, StoreError> {
    lock(db, name).await?;
    current(db, name, instance).await?;
    go_offline(db, name, &format!("host '{name}' stopped"), changes).await
}

/// Marks `name` offline: what it had begun is interrupted, what it had not
/// claimed yet goes back to the queue.
async fn go_offline(
    db: &impl Db,
    name: &str,
    why: &str,
    changes: &mut Vec<Change>,
) -> Result<Host, StoreError> {
    exec(
        db,
        "UPDATE hosts SET online = FALSE WHERE name = $1",
        &[&name],
    )
    .await?;
    let instance: String = row(db, "SELECT instance FROM hosts WHERE name = $1", &[&name])
        .await?
        .ok_or_else(vanished)?
        .try_get(0)?;
    launches::retire_instance(db, name, &instance, why, changes).await?;
    launches::requeue_unclaimed(db, name, changes).await?;
    let host = get(db, name).await?.ok_or_else(vanished)?.host;
    changes.push(Change::Host(host.clone()));
    Ok(host)
}

/// Hosts silent for `timeout_ms` go offline; queued runs older than
/// `queue_timeout_ms` fail. Every replica sweeps; the rows it takes are
/// locked, and one another replica holds is left to it (`SKIP LOCKED`).
pub(super) async fn sweep(
    db: &impl Db,
    timeout_ms: u64,
    queue_timeout_ms: Option<u64>,
    changes: &mut Vec<Change>,
) -> Result<(), StoreError> {
    let now = chrono::Utc::now();
    let cutoff = stamp(now - chrono::Duration::milliseconds(timeout_ms as i64));
    let late: Vec<String> = rows(
        db,
        "SELECT name FROM hosts WHERE online AND last_seen < $1 FOR UPDATE SKIP LOCKED",
        &[&cutoff],
    )
    .await?
    .iter()
    .map(|r| r.try_get(0))
    .collect::<Result<_, _>>()?;
    let seconds = timeout_ms as f64 / 1000.0;
    for name in late {
        let why = launch_rules::silent(&name, seconds);
        go_offline(db, &name, &why, changes).await?;
    }
    if let Some(limit) = queue_timeout_ms {
        let before = stamp(now - chrono::Duration::milliseconds(limit as i64));
        launches::expire_queued(db, &before, limit as f64 / 1000.0, changes).await?;
    }
    Ok(())
}

/// At a replica's start: every host online counts as seen now.
pub(super) async fn grace(db: &impl Db) -> Result<(), StoreError> {
    exec(
        db,
        "UPDATE hosts SET last_seen = $1 WHERE online",
        &[&now_rfc3339()],
    )
    .await?;
    Ok(())
}
