//! The hosts that run launched runs: registration (one process of a host
//! at a time, known by its `instance`), heartbeats, going offline, and the
//! reads `GET /hosts` and the dispatcher make.

use rusqlite::{Connection, OptionalExtension, params};

use super::StoreError;
use super::launches;
use super::writer::Op;
use crate::server::changes::Change;
use crate::server::store::placement::{HostRow, host_from_row, stamp};
use crate::wire::{Host, HostRegister, now_rfc3339};

const SELECT_HOSTS: &str = "SELECT name, labels, projects, capacity, claude_version, last_seen, online, embedded, instance,
        (SELECT count(*) FROM launches l WHERE l.host = hosts.name AND l.status IN ('starting', 'running'))
     FROM hosts";

/// Every host, by name.
pub(super) fn all(conn: &Connection) -> Result<Vec<HostRow>, StoreError> {
    let mut stmt = conn.prepare_cached(&format!("{SELECT_HOSTS} ORDER BY name"))?;
    let rows = stmt.query_map([], |r| host_from_row(r))?;
    Ok(rows.collect::<Result<_, _>>()?)
}

/// One host, if it is known.
pub(super) fn get(conn: &Connection, name: &str) -> Result<Option<HostRow>, StoreError> {
    Ok(conn
        .prepare_cached(&format!("{SELECT_HOSTS} WHERE name = ?1"))?
        .query_row([name], |r| host_from_row(r))
        .optional()?)
}

/// `GET /hosts`.
pub(super) fn list(conn: &Connection) -> Result<Vec<Host>, StoreError> {
    Ok(all(conn)?.into_iter().map(|r| r.host).collect())
}

/// `POST /hosts`.
pub(super) struct Register {
    pub register: HostRegister,
    /// The session manager's own host: it takes its name over from a
    /// previous process of the session manager at once.
    pub embedded: bool,
    /// How long a host without heartbeat stays online, for the refusal.
    pub timeout_seconds: f64,
}

impl Op for Register {
    type Out = Host;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Host, StoreError> {
        let r = self.register;
        let now = now_rfc3339();
        let old = get(conn, &r.name)?;
        if let Some(old) = &old
            && old.instance != r.instance
        {
            if old.host.online && !self.embedded {
                return Err(StoreError::Conflict(format!(
                    "a host named '{}' is online already (last seen {}); give this one another --name, or stop the other first (a host that died is offline {} s after its last heartbeat)",
                    r.name, old.host.last_seen, self.timeout_seconds
                )));
            }
            // Its previous process is gone, and the runs it had begun with it.
            launches::retire_instance(
                conn,
                &r.name,
                &old.instance,
                &format!("host '{}' was started again", r.name),
                frames,
            )?;
        }
        let labels = serde_json::to_string(&r.labels).unwrap_or_else(|_| "[]".to_owned());
        let projects = serde_json::to_string(&r.projects).unwrap_or_else(|_| "[]".to_owned());
        conn.prepare_cached(
            "INSERT INTO hosts (name, instance, labels, projects, capacity, claude_version, embedded, online, last_seen)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, 1, ?8)
             ON CONFLICT (name) DO UPDATE SET instance = ?2, labels = ?3, projects = ?4, capacity = ?5,
                 claude_version = ?6, embedded = ?7, online = 1, last_seen = ?8",
        )?
        .execute(params![
            r.name,
            r.instance,
            labels,
            projects,
            r.capacity,
            r.claude_version,
            self.embedded,
            now
        ])?;
        let host = get(conn, &r.name)?
            .ok_or_else(|| StoreError::Unavailable("the host row vanished".to_owned()))?
            .host;
        // The same process saying again what it is (with its CLI's version,
        // say) changes nothing a client or the dispatcher acts on.
        let same = old.is_some_and(|o| {
            o.instance == r.instance
                && o.host.online
                && o.host.labels == host.labels
                && o.host.projects == host.projects
                && o.host.capacity == host.capacity
        });
        if !same {
            frames.push(Change::Host(host.clone()));
        }
        Ok(host)
    }
}

/// Checks that `instance` is the process that holds `name` now.
pub(super) fn current(
    conn: &Connection,
    name: &str,
    instance: &str,
) -> Result<HostRow, StoreError> {
    let row = get(conn, name)?.ok_or_else(|| {
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

/// `POST /hosts/{name}/heartbeat`: the host is alive (and online again,
/// if it had been taken for dead).
pub(super) struct Heartbeat {
    pub name: String,
    pub instance: String,
}

impl Op for Heartbeat {
    type Out = Host;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Host, StoreError> {
        let row = current(conn, &self.name, &self.instance)?;
        conn.prepare_cached("UPDATE hosts SET last_seen = ?1, online = 1 WHERE name = ?2")?
            .execute(params![now_rfc3339(), self.name])?;
        let host = get(conn, &self.name)?.map_or(row.host.clone(), |r| r.host);
        if !row.host.online {
            frames.push(Change::Host(host.clone()));
        }
        Ok(host)
    }
}

/// `DELETE /hosts/{name}`: a host that stops says so, and is offline at once.
pub(super) struct Leave {
    pub name: String,
    pub instance: String,
}

impl Op for Leave {
    type Out = Host;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<Host, StoreError> {
        current(conn, &self.name, &self.instance)?;
        go_offline(
            conn,
            &self.name,
            &format!("host '{}' stopped", self.name),
            frames,
        )
    }
}

/// Marks `name` offline: what it had begun is interrupted, what it had not
/// claimed yet goes back to the queue.
fn go_offline(
    conn: &Connection,
    name: &str,
    why: &str,
    frames: &mut Vec<Change>,
) -> Result<Host, StoreError> {
    conn.prepare_cached("UPDATE hosts SET online = 0 WHERE name = ?1")?
        .execute([name])?;
    let instance: String = conn
        .prepare_cached("SELECT instance FROM hosts WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    launches::retire_instance(conn, name, &instance, why, frames)?;
    launches::requeue_unclaimed(conn, name, frames)?;
    let host = get(conn, name)?
        .ok_or_else(|| StoreError::Unavailable("the host row vanished".to_owned()))?
        .host;
    frames.push(Change::Host(host.clone()));
    Ok(host)
}

/// Every second or so: hosts whose last heartbeat is older than
/// `timeout_ms` go offline, and queued runs older than `queue_timeout_ms`
/// (when set) fail.
pub(super) struct Sweep {
    pub timeout_ms: u64,
    pub queue_timeout_ms: Option<u64>,
}

impl Op for Sweep {
    type Out = ();

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<(), StoreError> {
        let now = chrono::Utc::now();
        let cutoff = stamp(now - chrono::Duration::milliseconds(self.timeout_ms as i64));
        let late: Vec<String> = conn
            .prepare_cached("SELECT name FROM hosts WHERE online = 1 AND last_seen < ?1")?
            .query_map([&cutoff], |r| r.get(0))?
            .collect::<Result<_, _>>()?;
        let seconds = self.timeout_ms as f64 / 1000.0;
        for name in late {
            let why = crate::server::store::launch_rules::silent(&name, seconds);
            go_offline(conn, &name, &why, frames)?;
        }
        if let Some(limit) = self.queue_timeout_ms {
            let before = stamp(now - chrono::Duration::milliseconds(limit as i64));
            launches::expire_queued(conn, &before, limit as f64 / 1000.0, frames)?;
        }
        Ok(())
    }
}

/// At the session manager's start: every host online counts as seen now,
/// so that the time the session manager itself was away does not take
/// them for dead (their runs went on; their heartbeats come back).
pub(super) struct Grace;

impl Op for Grace {
    type Out = ();

    fn apply(self, conn: &Connection, _frames: &mut Vec<Change>) -> Result<(), StoreError> {
        conn.prepare_cached("UPDATE hosts SET last_seen = ?1 WHERE online = 1")?
            .execute([now_rfc3339()])?;
        Ok(())
    }
}
