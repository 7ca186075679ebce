//! The dispatcher's write on SQLite: queued runs, oldest first, go to the
//! hosts `store::placement` picks, in the one writer's transaction, so two
//! dispatches never give one run twice nor a host more than its capacity.

use rusqlite::{Connection, params};

use super::StoreError;
use super::hosts;
use super::launches;
use super::writer::Op;
use crate::server::changes::Change;
use crate::server::store::placement::{Want, pick};

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
