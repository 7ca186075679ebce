//! Which host runs a run, as both engines decide it: the one named, else
//! one with every label asked for that serves the run's folder, else the
//! session manager's own host; among those online, the one with the most
//! free capacity. A run no host can take now stays queued, in order of
//! arrival. The engines read the hosts and write the assignment (SQLite in
//! its one writer's transaction; PostgreSQL with the queued rows taken
//! `FOR UPDATE SKIP LOCKED` and the hosts' rows locked for the count), each
//! host's row read by [`host_from_row`].

use super::StoreError;
use super::row::StoredRow;
use crate::wire::Host;

/// A host as stored, with the process that holds its name.
#[derive(Debug, Clone)]
pub(in crate::server::store) struct HostRow {
    pub host: Host,
    pub instance: String,
}

impl HostRow {
    /// Runs it may still take.
    pub fn free(&self) -> u32 {
        self.host.capacity.saturating_sub(self.host.running)
    }
}

/// A host as its row is read (`SELECT <every host column>, its runs
/// begun`, in the engines' order): a capacity or count out of `u32`'s
/// range is clamped into it.
pub(in crate::server::store) fn host_from_row<R: StoredRow>(r: &R) -> Result<HostRow, R::Error> {
    Ok(HostRow {
        host: Host {
            name: r.column(0)?,
            labels: json_list(r.column(1)?),
            projects: json_list(r.column(2)?),
            capacity: r.column::<i64>(3)?.clamp(0, u32::MAX as i64) as u32,
            claude_version: r.column(4)?,
            last_seen: r.column(5)?,
            online: r.column(6)?,
            embedded: r.column(7)?,
            running: r.column::<i64>(9)?.clamp(0, u32::MAX as i64) as u32,
        },
        instance: r.column(8)?,
    })
}

/// A list of labels or folders as stored (JSON text).
fn json_list(text: String) -> Vec<String> {
    serde_json::from_str(&text).unwrap_or_default()
}

/// One line per host, for refusals that must say which hosts exist.
pub(in crate::server::store) fn describe(hosts: &[HostRow]) -> String {
    if hosts.is_empty() {
        return "no host is registered".to_owned();
    }
    let each: Vec<String> = hosts
        .iter()
        .map(|r| {
            let h = &r.host;
            let mut parts = vec![if h.online { "online" } else { "offline" }.to_owned()];
            if h.embedded {
                parts.push("this machine, any folder".to_owned());
            }
            if !h.labels.is_empty() {
                parts.push(format!("labels {}", h.labels.join(",")));
            }
            if !h.projects.is_empty() {
                parts.push(format!("serves {}", h.projects.join(", ")));
            }
            format!("{} ({})", h.name, parts.join("; "))
        })
        .collect();
    format!("hosts: {}", each.join("; "))
}

/// What a run asks of its host.
#[derive(Debug, Clone, Copy)]
pub(in crate::server::store) enum Want<'a> {
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
pub(in crate::server::store) fn check_reachable(
    all: &[HostRow],
    want: Want<'_>,
    project_dir: Option<&str>,
) -> Result<(), StoreError> {
    let listed = || describe(all);
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
        Want::Local if all.iter().any(|r| r.host.embedded && r.host.online) => Ok(()),
        Want::Local => Err(StoreError::Conflict(format!(
            "no host online to run it: this session manager runs no sessions itself (it was started with --no-local-runs, or is not on loopback and has no token); name a host or labels; {}",
            listed()
        ))),
    }
}

/// The host for a run among `hosts`: fitting, online, with room, the
/// most room first (then by name).
pub(in crate::server::store) fn pick<'h>(
    hosts: &'h mut [HostRow],
    want: Want<'_>,
    project_dir: Option<&str>,
) -> Option<&'h mut HostRow> {
    hosts
        .iter_mut()
        .filter(|r| r.host.online && r.free() > 0 && want.fits(&r.host, project_dir))
        .max_by(|a, b| a.free().cmp(&b.free()).then(b.host.name.cmp(&a.host.name)))
}

/// A time as stored: RFC 3339 UTC with milliseconds, so that text order is
/// time order.
pub(in crate::server::store) fn stamp(t: chrono::DateTime<chrono::Utc>) -> String {
    t.to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
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
