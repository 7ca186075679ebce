//! Which host runs a run: the one named, else one with every label asked
//! for that serves the run's folder, else the session manager's own host;
//! among those online, the one with the most free capacity. A run no host
//! can take now stays queued, in order of arrival.
//!
//! The assignment is one write in the writer's transaction, so two
//! dispatches never give one run twice nor a host more than its capacity.
//! On a database with several writers (PostgreSQL, issue 23) the same
//! statements run as `SELECT ... FROM launches WHERE status = 'queued'
//! ORDER BY seq FOR UPDATE SKIP LOCKED` with the hosts' rows locked
//! (`FOR UPDATE`) for the capacity count, and the claim of a run by its
//! host stays a compare-and-set of its row.

use rusqlite::{Connection, params};

use super::StoreError;
use super::hosts::{self, HostRow};
use super::launches;
use super::writer::Op;
use crate::server::live::Change;
use crate::wire::Host;

/// What a run asks of its host.
#[derive(Debug, Clone, Copy)]
pub(super) enum Want<'a> {
    Host(&'a str),
    Labels(&'a [String]),
    /// The session manager's own host.
    Local,
}

impl<'a> Want<'a> {
    pub fn of(host: Option<&'a str>, labels: &'a [String]) -> Want<'a> {
        match host {
            Some(host) => Want::Host(host),
            None if !labels.is_empty() => Want::Labels(labels),
            None => Want::Local,
        }
    }

    /// Whether `host` fits, online or not. A named host is taken at its
    /// word for the folder: the host checks its own allow-list.
    pub fn fits(&self, host: &Host, project_dir: Option<&str>) -> bool {
        match self {
            Want::Host(name) => host.name == *name,
            Want::Labels(labels) => {
                labels.iter().all(|l| host.labels.contains(l)) && serves(host, project_dir)
            }
            Want::Local => host.embedded,
        }
    }
}

/// Whether `host` says it runs sessions in `dir`.
fn serves(host: &Host, dir: Option<&str>) -> bool {
    host.projects.is_empty() || dir.is_some_and(|d| host.projects.iter().any(|p| p == d))
}

/// At `POST /runs`: refuses a run no host could ever take now, saying why
/// (422: no such host or label; 409: none of them is online). A run that
/// some online host fits is accepted, even if that host is full.
pub(super) fn check_reachable(
    all: &[HostRow],
    want: Want<'_>,
    project_dir: Option<&str>,
) -> Result<(), StoreError> {
    let listed = || hosts::describe(all);
    match want {
        Want::Host(name) => match all.iter().find(|r| r.host.name == name) {
            None => Err(StoreError::Invalid(format!(
                "there is no host named '{name}'; {}",
                listed()
            ))),
            Some(r) if !r.host.online => Err(StoreError::Conflict(format!(
                "host '{name}' is offline (last seen {}); start its ao-host again, or choose another ({})",
                r.host.last_seen,
                listed()
            ))),
            Some(_) => Ok(()),
        },
        Want::Labels(labels) => {
            let with: Vec<&HostRow> = all
                .iter()
                .filter(|r| labels.iter().all(|l| r.host.labels.contains(l)))
                .collect();
            let asked = labels.join(", ");
            if with.is_empty() {
                return Err(StoreError::Invalid(format!(
                    "no host has the labels [{asked}]; {}",
                    listed()
                )));
            }
            if !with.iter().any(|r| r.host.online) {
                return Err(StoreError::Conflict(format!(
                    "no host with the labels [{asked}] is online; {}",
                    listed()
                )));
            }
            if !with
                .iter()
                .any(|r| r.host.online && serves(&r.host, project_dir))
            {
                return Err(StoreError::Invalid(format!(
                    "no online host with the labels [{asked}] serves {}; {}",
                    project_dir.unwrap_or("(no folder given)"),
                    listed()
                )));
            }
            Ok(())
        }
        Want::Local => match all.iter().find(|r| r.host.embedded) {
            Some(r) if r.host.online => Ok(()),
            _ => Err(StoreError::Conflict(format!(
                "no host online to run it: this session manager runs no sessions itself (it was started with --no-local-runs, or is not on loopback and has no token); name a host or labels; {}",
                listed()
            ))),
        },
    }
}

/// The host for a run among `hosts`: fitting, online, with room, the
/// most room first (then by name).
fn pick<'h>(
    hosts: &'h mut [HostRow],
    want: Want<'_>,
    project_dir: Option<&str>,
) -> Option<&'h mut HostRow> {
    hosts
        .iter_mut()
        .filter(|r| r.host.online && r.free() > 0 && want.fits(&r.host, project_dir))
        .max_by(|a, b| a.free().cmp(&b.free()).then(b.host.name.cmp(&a.host.name)))
}

/// Gives queued runs, oldest first, to hosts with room.
pub(super) struct Dispatch;

impl Op for Dispatch {
    type Out = usize;

    fn apply(self, conn: &Connection, frames: &mut Vec<Change>) -> Result<usize, StoreError> {
        super::callbacks::deliver(conn, frames)?;
        assign(conn, frames)
    }
}

/// Gives queued runs, oldest first, to hosts with room; answers how many.
pub(super) fn assign(conn: &Connection, frames: &mut Vec<Change>) -> Result<usize, StoreError> {
    let queued = launches::queued(conn)?;
    if queued.is_empty() {
        return Ok(0);
    }
    let mut all = hosts::all(conn)?;
    let mut given = 0;
    for launch in queued {
        let want = Want::of(launch.want_host.as_deref(), &launch.run.labels);
        let Some(host) = pick(&mut all, want, launch.run.project_dir.as_deref()) else {
            continue;
        };
        let changed = conn
            .prepare_cached(
                "UPDATE launches SET status = 'starting', host = ?1 WHERE run_id = ?2 AND status = 'queued'",
            )?
            .execute(params![host.host.name, launch.run.run_id])?;
        if changed == 0 {
            continue;
        }
        host.host.running += 1;
        given += 1;
        let name = host.host.name.clone();
        if let Some(run) = launches::get(conn, &launch.run.run_id, false)? {
            frames.push(Change::Run(Box::new(run.run)));
        }
        frames.push(Change::RunAssigned {
            run_id: launch.run.run_id,
            host: name,
        });
    }
    Ok(given)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn host(
        name: &str,
        labels: &[&str],
        projects: &[&str],
        capacity: u32,
        running: u32,
    ) -> HostRow {
        HostRow {
            host: Host {
                name: name.into(),
                labels: labels.iter().map(|s| s.to_string()).collect(),
                projects: projects.iter().map(|s| s.to_string()).collect(),
                capacity,
                running,
                claude_version: None,
                last_seen: "t".into(),
                online: true,
                embedded: false,
            },
            instance: "i".into(),
        }
    }

    #[test]
    fn the_host_with_most_room_among_those_that_fit_is_picked() {
        let gpu = ["gpu".to_owned()];
        let mut all = vec![
            host("a", &["gpu"], &["/p"], 4, 3),
            host("b", &["gpu", "linux"], &["/p"], 4, 1),
            host("c", &["mac"], &["/p"], 8, 0),
            host("d", &["gpu"], &["/q"], 8, 0),
        ];
        let picked = pick(&mut all, Want::Labels(&gpu), Some("/p")).unwrap();
        assert_eq!(
            picked.host.name, "b",
            "most room among a and b; d serves /q"
        );
        let picked = pick(&mut all, Want::Host("a"), Some("/elsewhere")).unwrap();
        assert_eq!(
            picked.host.name, "a",
            "a named host checks its folders itself"
        );
        all[1].host.running = 4;
        all[0].host.running = 4;
        assert!(
            pick(&mut all, Want::Labels(&gpu), Some("/p")).is_none(),
            "full"
        );
        assert!(pick(&mut all, Want::Local, Some("/p")).is_none());
    }

    #[test]
    fn refusals_say_which_hosts_there_are() {
        let mut all = vec![host("a", &["gpu"], &["/p"], 1, 0)];
        let e = check_reachable(&all, Want::Host("zz"), None).unwrap_err();
        assert!(
            matches!(&e, StoreError::Invalid(m) if m.contains("a (online; labels gpu; serves /p)")),
            "{e}"
        );
        let mac = ["mac".to_owned()];
        assert!(matches!(
            check_reachable(&all, Want::Labels(&mac), None),
            Err(StoreError::Invalid(_))
        ));
        let gpu = ["gpu".to_owned()];
        assert!(
            matches!(check_reachable(&all, Want::Labels(&gpu), Some("/q")), Err(StoreError::Invalid(m)) if m.contains("serves /q"))
        );
        all[0].host.online = false;
        assert!(matches!(
            check_reachable(&all, Want::Labels(&gpu), Some("/p")),
            Err(StoreError::Conflict(_))
        ));
        assert!(matches!(
            check_reachable(&all, Want::Local, None),
            Err(StoreError::Conflict(_))
        ));
    }
}
