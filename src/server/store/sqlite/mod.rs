//! The embedded engine: one SQLite file in WAL mode, written by a single
//! thread that commits concurrent requests together (group commit) and read
//! through a small pool of connections.
//!
//! No request is answered before its change is committed, and broadcasts go
//! out after the commit, in commit order.

pub mod bench_support;
mod budgets;
mod callbacks;
mod dispatch;
mod hosts;
mod launches;
mod ops;
mod reader;
mod requests;
mod runs;
mod schema;
mod search;
mod writer;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use rusqlite::Connection;
use tokio::sync::Notify;

use super::{Added, GroupBy, ResultLookup, RunFilter, StoreError};
use crate::server::changes::Publish;
use crate::server::store::DailyBudget;
use crate::wire::{
    Budget, BudgetAnswer, Callback, CallbackCreate, DecisionBody, DeletedCounts, Event, EventType,
    Host, HostRegister, PendingRequest, RequestRecord, Run, RunCreate, RunExited, Session,
    SessionCreate, SessionPatch,
};

pub use schema::SCHEMA_VERSION;
pub use writer::WriterThread;

/// How hard SQLite works to make a commit durable (`PRAGMA synchronous`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Synchronous {
    /// Every commit is on disk before it is acknowledged, even across a
    /// power cut. The default.
    Full,
    /// Commits survive a crash of the server, not of the machine.
    Normal,
}

impl Synchronous {
    fn pragma(self) -> &'static str {
        match self {
            Synchronous::Full => "FULL",
            Synchronous::Normal => "NORMAL",
        }
    }
}

/// A handle to the SQLite store; cheap to clone.
#[derive(Clone)]
pub struct SqliteStore {
    writer: writer::WriterHandle,
    readers: Arc<reader::ReaderPool>,
    publish: Arc<dyn Publish>,
    /// Events that search should see were stored since the index last
    /// caught up (`search`).
    unindexed: Arc<AtomicBool>,
    /// Notified after a commit that changed a run or a host.
    dispatch: Arc<Notify>,
}

/// Opens one connection with the settings every connection shares.
fn open_connection(path: &Path, sync: Synchronous) -> Result<Connection, StoreError> {
    let conn = Connection::open(path)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let mode: String = conn.query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") && !mode.eq_ignore_ascii_case("memory") {
        return Err(StoreError::Incompatible(format!(
            "cannot switch the database to WAL mode (it stays in {mode} mode)"
        )));
    }
    conn.pragma_update(None, "synchronous", sync.pragma())?;
    Ok(conn)
}

/// Opens the file at `path` to be read as this build's schema has it,
/// without changing it: a file of an older release is copied into `scratch`
/// and the copy migrated.
pub(in crate::server::store) fn open_to_read(
    path: &Path,
    scratch: &Path,
) -> Result<Connection, StoreError> {
    if !path.is_file() {
        return Err(StoreError::NotFound(format!(
            "{} does not exist (or is not a file)",
            path.display()
        )));
    }
    let conn = Connection::open_with_flags(path, rusqlite::OpenFlags::SQLITE_OPEN_READ_ONLY)?;
    conn.busy_timeout(Duration::from_secs(30))?;
    let version = schema::version_of(&conn)?;
    if version > SCHEMA_VERSION {
        return Err(StoreError::Incompatible(format!(
            "{} has schema version {version}, newer than this build's {SCHEMA_VERSION}; upgrade ao-session-manager",
            path.display()
        )));
    }
    if version == SCHEMA_VERSION {
        return Ok(conn);
    }
    let copy = scratch.join("import.db");
    conn.execute("VACUUM INTO ?1", [copy.to_string_lossy()])?;
    let mut copy = Connection::open(&copy)?;
    schema::migrate(&mut copy)?;
    Ok(copy)
}

impl SqliteStore {
    /// Opens (creating if needed) the database at `path`, migrates it, and
    /// starts the writer thread, which publishes every committed change.
    pub fn open(
        path: &Path,
        sync: Synchronous,
        publish: Arc<dyn Publish>,
        dispatch: Arc<Notify>,
    ) -> Result<(SqliteStore, WriterThread), StoreError> {
        if let Some(parent) = path.parent().filter(|p| !p.as_os_str().is_empty()) {
            crate::private::create_dir_all(parent).map_err(|source| StoreError::Folder {
                path: parent.to_owned(),
                source,
            })?;
        }
        // SQLite gives the WAL and shared-memory files the database's mode.
        match crate::private::open_options()
            .create_new(true)
            .write(true)
            .open(path)
        {
            Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
                return Err(StoreError::Folder {
                    path: path.to_owned(),
                    source: e,
                });
            }
            _ => {}
        }
        let mut conn = open_connection(path, sync)?;
        schema::migrate(&mut conn)?;
        let readers = Arc::new(reader::ReaderPool::new(path.to_owned(), sync));
        // Open one reader now so that a bad path fails at start, not later.
        readers.check()?;
        let (writer, thread) = writer::start(conn, Arc::clone(&publish))?;
        Ok((
            SqliteStore {
                writer,
                readers,
                publish,
                // A session manager killed between storing events and
                // indexing them left some behind: the first search catches up.
                unindexed: Arc::new(AtomicBool::new(true)),
                dispatch,
            },
            thread,
        ))
    }

    /// Creates a session; `created_at` is used unless the request carries one.
    pub async fn create_session(
        &self,
        create: SessionCreate,
        created_at: String,
    ) -> Result<Session, StoreError> {
        self.writer
            .run(ops::CreateSession { create, created_at })
            .await
    }

    /// Stores an event (a repeated run end may fill in figures its stored
    /// copy lacks). With `create_if_missing` (legacy `session_start`), an
    /// unknown session is created from the event.
    pub async fn add_event(
        &self,
        event: Event,
        body: String,
        create_if_missing: bool,
    ) -> Result<Added, StoreError> {
        let searched = matches!(event.event_type, EventType::Message | EventType::PreTool);
        let added = self
            .writer
            .run(ops::AddEvent {
                event,
                body,
                create_if_missing,
            })
            .await?;
        if searched && !added.duplicate {
            self.unindexed.store(true, Ordering::SeqCst);
        }
        Ok(added)
    }

    /// Indexes for search the events stored since the last time, if any:
    /// in one batch, far cheaper than each event as it comes.
    pub async fn index_new_events(&self) -> Result<(), StoreError> {
        if self.unindexed.swap(false, Ordering::SeqCst) {
            let done = self.writer.run(ops::IndexNewEvents).await;
            if done.is_err() {
                self.unindexed.store(true, Ordering::SeqCst);
            }
            done?;
        }
        Ok(())
    }

    /// The best hits of what a person typed, among every event stored
    /// before the call (`Store::search`).
    pub async fn search(
        &self,
        text: String,
        project: Option<String>,
        limit: u32,
    ) -> Result<Vec<crate::wire::SearchHit>, StoreError> {
        let Some(query) = search::fts_query(&text) else {
            return Ok(Vec::new());
        };
        self.index_new_events().await?;
        self.readers
            .run(move |c| search::search(c, &query, project.as_deref(), limit))
            .await
    }

    /// The commit a worktree session's branch started from, if a run said.
    pub async fn branch_base(&self, session_id: String) -> Result<Option<String>, StoreError> {
        self.readers
            .run(move |c| reader::branch_base(c, &session_id))
            .await
    }

    /// Changes a session's metadata.
    pub async fn update_session(
        &self,
        session_id: String,
        patch: SessionPatch,
    ) -> Result<Session, StoreError> {
        self.writer
            .run(ops::UpdateSession { session_id, patch })
            .await
    }

    /// Deletes a session and all its events.
    pub async fn delete_session(&self, session_id: String) -> Result<DeletedCounts, StoreError> {
        self.writer.run(ops::DeleteSession { session_id }).await
    }

    /// Sessions, newest first, optionally only those with this name (and
    /// project directory).
    pub async fn list_sessions(
        &self,
        name: Option<String>,
        project_dir: Option<String>,
    ) -> Result<Vec<Session>, StoreError> {
        self.readers
            .run(move |c| reader::list_sessions(c, name.as_deref(), project_dir.as_deref()))
            .await
    }

    /// Every session, newest first, as the JSON array `GET /sessions` serves.
    pub async fn sessions_json(&self) -> Result<Vec<u8>, StoreError> {
        self.readers.run(reader::sessions_json).await
    }

    /// One session, if it exists.
    pub async fn get_session(&self, session_id: String) -> Result<Option<Session>, StoreError> {
        self.readers
            .run(move |c| reader::get_session(c, &session_id))
            .await
    }

    /// The text of the session's last assistant message, if it can be had.
    pub async fn result(&self, session_id: String) -> Result<ResultLookup, StoreError> {
        self.readers
            .run(move |c| reader::result(c, &session_id))
            .await
    }

    /// Totals per group of the runs that ended at or after `since`.
    pub async fn usage(
        &self,
        group_by: GroupBy,
        then: Option<GroupBy>,
        since: Option<String>,
        project: Option<String>,
    ) -> Result<crate::wire::UsageAnswer, StoreError> {
        self.readers
            .run(move |c| reader::usage(c, group_by, then, since.as_deref(), project.as_deref()))
            .await
    }

    /// Up to `limit` events with an id above `after`, in insertion order,
    /// each as its id and its stored JSON with `id` included.
    pub async fn events_page(
        &self,
        session_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        self.readers
            .run(move |c| reader::events_page(c, &session_id, after, limit))
            .await
    }

    /// See [`Store::check_budget`](super::Store::check_budget).
    pub async fn check_budget(
        &self,
        session_id: Option<String>,
        parent: Option<String>,
        project: Option<String>,
        daily: Option<DailyBudget>,
    ) -> Result<BudgetAnswer, StoreError> {
        self.readers
            .run(move |c| {
                budgets::check(
                    c,
                    session_id.as_deref(),
                    parent.as_deref(),
                    project.as_deref(),
                    daily.as_ref(),
                )
            })
            .await
    }

    /// Every budget and what is left of it.
    pub async fn budgets(&self, daily: Option<DailyBudget>) -> Result<Vec<Budget>, StoreError> {
        self.readers
            .run(move |c| budgets::all(c, daily.as_ref()))
            .await
    }

    /// Registers a child's callback to its parent.
    pub async fn register_callback(&self, create: CallbackCreate) -> Result<Callback, StoreError> {
        self.writer.run(callbacks::Register { create }).await
    }

    /// A child's run that ended before its session existed calls back.
    pub async fn end_callback(
        &self,
        child_run_id: String,
        error: String,
    ) -> Result<Callback, StoreError> {
        self.writer
            .run(callbacks::End {
                child_run_id,
                error,
            })
            .await
    }

    /// The callbacks owed to a session that are not delivered yet.
    pub async fn callbacks(&self, parent: String) -> Result<Vec<Callback>, StoreError> {
        self.readers
            .run(move |c| callbacks::owed_to(c, &parent))
            .await
    }

    /// Asks the session's runner to stop: one process, one live hub.
    pub async fn request_stop(&self, session_id: String) -> Result<(), StoreError> {
        self.publish
            .publish_change(&crate::server::changes::Change::StopRequested(session_id));
        Ok(())
    }

    /// Takes a decision for a pending request: once (a second is a
    /// conflict), and only what fits the request (else `Invalid`).
    pub async fn decide(
        &self,
        session_id: String,
        request_id: String,
        body: DecisionBody,
    ) -> Result<(), StoreError> {
        self.writer
            .run(requests::Decide {
                session_id,
                request_id,
                body,
            })
            .await
    }

    /// The session's pending requests, oldest first; `None` for an unknown session.
    pub async fn pending_requests(
        &self,
        session_id: String,
    ) -> Result<Option<Vec<PendingRequest>>, StoreError> {
        self.readers
            .run(move |c| requests::pending(c, &session_id))
            .await
    }

    /// One request of the session, whatever its status.
    pub async fn request(
        &self,
        session_id: String,
        request_id: String,
    ) -> Result<Option<RequestRecord>, StoreError> {
        self.readers
            .run(move |c| requests::one(c, &session_id, &request_id))
            .await
    }

    /// What wakes the dispatcher.
    pub fn dispatch_wanted(&self) -> &Notify {
        &self.dispatch
    }

    /// Gives queued runs to hosts with room; answers how many.
    pub async fn dispatch(&self) -> Result<usize, StoreError> {
        self.writer.run(dispatch::Dispatch).await
    }

    /// Queues a run (`POST /runs`), refused with the reason when no host
    /// could take it, or its session cannot run now.
    pub async fn create_run(&self, create: RunCreate, run_id: String) -> Result<Run, StoreError> {
        self.writer.run(launches::Create { create, run_id }).await
    }

    /// One run, with its prompt if asked.
    pub async fn run(&self, run_id: String, with_prompt: bool) -> Result<Option<Run>, StoreError> {
        self.readers
            .run(move |c| Ok(launches::get(c, &run_id, with_prompt)?.map(|r| r.run)))
            .await
    }

    /// Runs, newest first.
    pub async fn runs(&self, filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        self.readers.run(move |c| launches::list(c, &filter)).await
    }

    /// A host takes the run it was given, once.
    pub async fn claim_run(
        &self,
        run_id: String,
        host: String,
        instance: String,
    ) -> Result<Run, StoreError> {
        self.writer
            .run(launches::Claim {
                run_id,
                host,
                instance,
            })
            .await
    }

    /// A host says the run's runner ended.
    pub async fn run_exited(&self, run_id: String, exited: RunExited) -> Result<Run, StoreError> {
        self.writer.run(launches::Exited { run_id, exited }).await
    }

    /// Stops a queued run, or asks its host to stop it; answers whether a
    /// host was asked.
    pub async fn stop_run(&self, run_id: String) -> Result<(Run, bool), StoreError> {
        self.writer.run(launches::Stop { run_id }).await
    }

    /// Registers a host (`embedded`: the session manager's own).
    pub async fn register_host(
        &self,
        register: HostRegister,
        embedded: bool,
        timeout_seconds: f64,
    ) -> Result<Host, StoreError> {
        self.writer
            .run(hosts::Register {
                register,
                embedded,
                timeout_seconds,
            })
            .await
    }

    /// A host's heartbeat.
    pub async fn heartbeat(&self, name: String, instance: String) -> Result<Host, StoreError> {
        self.writer.run(hosts::Heartbeat { name, instance }).await
    }

    /// A host that stops.
    pub async fn leave(&self, name: String, instance: String) -> Result<Host, StoreError> {
        self.writer.run(hosts::Leave { name, instance }).await
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        self.readers.run(hosts::list).await
    }

    /// Counts every online host as seen now (at the server's start).
    pub async fn grace_hosts(&self) -> Result<(), StoreError> {
        self.writer.run(hosts::Grace).await
    }

    /// Takes hosts silent for `timeout_ms` offline, and fails runs queued
    /// longer than `queue_timeout_ms`.
    pub async fn sweep(
        &self,
        timeout_ms: u64,
        queue_timeout_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        self.writer
            .run(hosts::Sweep {
                timeout_ms,
                queue_timeout_ms,
            })
            .await
    }
}
