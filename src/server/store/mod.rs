//! The session manager's storage: one interface over two engines. SQLite
//! (`sqlite`) is embedded and needs nothing set up; PostgreSQL (`postgres`)
//! lets several replicas share one database. Both answer every call the
//! same way, hand each committed change to a [`Publish`] in commit order
//! (on PostgreSQL, changes committed by other replicas too), and know
//! nothing of HTTP.

mod budget_rules;
mod callback_rules;
mod database;
mod launch_rules;
mod placement;
pub mod postgres;
mod requests_rules;
mod row;
mod rules;
mod search_words;
pub mod sqlite;

use std::collections::HashSet;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::Notify;

use crate::server::changes::{Change, Publish};
use crate::wire::{
    Budget, BudgetAnswer, Callback, CallbackCreate, DecisionBody, DeletedCounts, Event, Host,
    HostRegister, PendingRequest, RequestRecord, ResultAnswer, Run, RunCreate, RunExited,
    RunStatus, Session, SessionCreate, SessionPatch, TextDelta,
};

pub use budget_rules::DailyBudget;
pub use database::{Database, DatabaseError};
pub use search_words::{MAX_HITS, words};
pub use sqlite::Synchronous;

/// The schema version this build writes, on either engine (their
/// migrations are numbered alike).
pub const SCHEMA_VERSION: i64 = sqlite::SCHEMA_VERSION;

/// What can go wrong in the store. The first three are the caller's doing;
/// `Down` means the database cannot be reached now (retry later); the
/// others are ours.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Invalid(String),
    #[error("{0}")]
    Incompatible(String),
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("database error: {0}")]
    Postgres(String),
    #[error("{0}")]
    Down(String),
    /// Another replica's transaction got in the way (a deadlock): the
    /// write was not stored, and may be sent again.
    #[error("{0}")]
    Contention(String),
    #[error("cannot create {path}: {source}")]
    Folder {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{0}")]
    Unavailable(String),
    #[error("the store is shutting down")]
    Closed,
}

/// What storing an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Added {
    /// Its `event_id` was already stored.
    pub duplicate: bool,
    /// A repeated run end brought the figures its stored copy lacked.
    pub filled: bool,
}

/// What `GET /sessions/{id}/result` can find.
#[derive(Debug)]
pub enum ResultLookup {
    UnknownSession,
    Running,
    NoResult,
    Found(ResultAnswer),
    /// The last run failed, was interrupted or was stopped: why.
    Failed(String),
}

/// How `GET /usage` groups runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GroupBy {
    Project,
    Agent,
    Day,
    Session,
}

impl GroupBy {
    /// Parses `project`, `agent`, `day` or `session`.
    pub fn parse(text: &str) -> Option<GroupBy> {
        match text {
            "project" => Some(GroupBy::Project),
            "agent" => Some(GroupBy::Agent),
            "day" => Some(GroupBy::Day),
            "session" => Some(GroupBy::Session),
            _ => None,
        }
    }

    /// The name `GET /usage` answers with.
    pub fn as_str(self) -> &'static str {
        match self {
            GroupBy::Project => "project",
            GroupBy::Agent => "agent",
            GroupBy::Day => "day",
            GroupBy::Session => "session",
        }
    }
}

/// What `GET /runs` filters on.
#[derive(Debug, Clone, Default)]
pub struct RunFilter {
    pub status: Option<RunStatus>,
    pub host: Option<String>,
    pub session_name: Option<String>,
    pub limit: u32,
}

/// A handle to the store; cheap to clone.
#[derive(Clone)]
pub enum Store {
    Sqlite(sqlite::SqliteStore),
    Postgres(postgres::PgStore),
}

/// Hands changes on, and wakes the dispatcher after a change to a run or a
/// host (committed here or, on PostgreSQL, by another replica).
struct Waking {
    publish: Arc<dyn Publish>,
    dispatch: Arc<Notify>,
}

impl Waking {
    fn wake(&self, change: &Change) {
        if change.wakes_dispatch() {
            self.dispatch.notify_one();
        }
    }
}

impl Publish for Waking {
    fn publish_change(&self, change: &Change) {
        self.publish.publish_change(change);
        self.wake(change);
    }

    fn publish_others(&self, change: &Change) {
        self.publish.publish_others(change);
        self.wake(change);
    }
}

/// What closes the store at shutdown: commits what is queued, then lets go
/// of the database.
pub enum Closer {
    Sqlite(sqlite::WriterThread),
    Postgres(postgres::PgCloser),
}

impl Closer {
    pub async fn close(self) {
        match self {
            Closer::Sqlite(writer) => writer.close().await,
            Closer::Postgres(closer) => closer.close().await,
        }
    }
}

/// Says while a replica's runners follow some sessions' feeds: dropped when
/// the feed closes (which is what withdraws it).
pub enum RunnerLease {
    /// One process: the live hub alone knows its runners.
    Local,
    #[allow(dead_code)] // held for its `Drop`
    Postgres(postgres::Lease),
}

/// Calls the same method on either engine.
macro_rules! each {
    ($store:expr, $s:ident => $call:expr) => {
        match $store {
            Store::Sqlite($s) => $call,
            Store::Postgres($s) => $call,
        }
    };
}

impl Store {
    /// Opens (creating and migrating if needed) the database; every change
    /// committed from now on goes to `publish`.
    pub async fn open(
        db: &Database,
        publish: Arc<dyn Publish>,
    ) -> Result<(Store, Closer), StoreError> {
        // A committed change to a run or a host may let a queued run go.
        let dispatch = Arc::new(Notify::new());
        let publish: Arc<dyn Publish> = Arc::new(Waking {
            publish,
            dispatch: Arc::clone(&dispatch),
        });
        match db {
            Database::Sqlite { path, synchronous } => {
                let (store, writer) =
                    sqlite::SqliteStore::open(path, *synchronous, publish, dispatch)?;
                Ok((Store::Sqlite(store), Closer::Sqlite(writer)))
            }
            Database::Postgres(target) => {
                let (store, closer) = postgres::PgStore::open(target, publish, dispatch).await?;
                Ok((Store::Postgres(store), Closer::Postgres(closer)))
            }
        }
    }

    /// Whether other processes write the same database: then a replica
    /// cannot keep a copy of what it read, as it learns of others' changes
    /// only a moment after they are committed.
    pub fn is_shared(&self) -> bool {
        matches!(self, Store::Postgres(_))
    }

    /// Creates a session; `created_at` is used unless the request carries one.
    pub async fn create_session(
        &self,
        create: SessionCreate,
        created_at: String,
    ) -> Result<Session, StoreError> {
        each!(self, s => s.create_session(create, created_at).await)
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
        each!(self, s => s.add_event(event, body, create_if_missing).await)
    }

    /// The budgets a run of `session_id` (or, for a new session, a child
    /// of `parent`) in `project` falls under, and the most it may spend;
    /// `Conflict` with the one line that says which is spent.
    pub async fn check_budget(
        &self,
        session_id: Option<String>,
        parent: Option<String>,
        project: Option<String>,
        daily: Option<DailyBudget>,
    ) -> Result<BudgetAnswer, StoreError> {
        each!(self, s => s.check_budget(session_id, parent, project, daily).await)
    }

    /// Every budget (each tree's, each project's today) and what is left of it.
    pub async fn budgets(&self, daily: Option<DailyBudget>) -> Result<Vec<Budget>, StoreError> {
        each!(self, s => s.budgets(daily).await)
    }

    /// Registers a child's callback to its parent (`POST /callbacks`).
    pub async fn register_callback(&self, create: CallbackCreate) -> Result<Callback, StoreError> {
        each!(self, s => s.register_callback(create).await)
    }

    /// A child's run that ended before its session existed calls back.
    pub async fn end_callback(
        &self,
        child_run_id: String,
        error: String,
    ) -> Result<Callback, StoreError> {
        each!(self, s => s.end_callback(child_run_id, error).await)
    }

    /// The callbacks owed to a session that are not delivered yet.
    pub async fn callbacks(&self, parent: String) -> Result<Vec<Callback>, StoreError> {
        each!(self, s => s.callbacks(parent).await)
    }

    /// Changes a session's metadata.
    pub async fn update_session(
        &self,
        session_id: String,
        patch: SessionPatch,
    ) -> Result<Session, StoreError> {
        each!(self, s => s.update_session(session_id, patch).await)
    }

    /// Deletes a session and all its events.
    pub async fn delete_session(&self, session_id: String) -> Result<DeletedCounts, StoreError> {
        each!(self, s => s.delete_session(session_id).await)
    }

    /// Sessions, newest first, optionally only those with this name (and
    /// project directory).
    pub async fn list_sessions(
        &self,
        name: Option<String>,
        project_dir: Option<String>,
    ) -> Result<Vec<Session>, StoreError> {
        each!(self, s => s.list_sessions(name, project_dir).await)
    }

    /// Every session, newest first, as the JSON array `GET /sessions` serves.
    pub async fn sessions_json(&self) -> Result<Vec<u8>, StoreError> {
        each!(self, s => s.sessions_json().await)
    }

    /// Hands text a model is writing to the live clients of the other
    /// replicas of a shared database (this one's the caller serves);
    /// nothing on SQLite. Live only: a failure is logged, never stored.
    pub async fn share_delta(&self, session_id: &str, delta: &TextDelta) {
        if let Store::Postgres(s) = self
            && let Err(e) = s.share_delta(session_id, delta).await
        {
            tracing::debug!("a text delta was not shared with the other replicas: {e}");
        }
    }

    /// One session, if it exists.
    pub async fn get_session(&self, session_id: String) -> Result<Option<Session>, StoreError> {
        each!(self, s => s.get_session(session_id).await)
    }

    /// The text of the session's last assistant message, if it can be had.
    pub async fn result(&self, session_id: String) -> Result<ResultLookup, StoreError> {
        each!(self, s => s.result(session_id).await)
    }

    /// Totals per group (and second key) of the runs that ended at or after `since`.
    pub async fn usage(
        &self,
        group_by: GroupBy,
        then: Option<GroupBy>,
        since: Option<String>,
        project: Option<String>,
    ) -> Result<crate::wire::UsageAnswer, StoreError> {
        each!(self, s => s.usage(group_by, then, since, project).await)
    }

    /// The commit a worktree session's branch started from, if a run said.
    pub async fn branch_base(&self, session_id: String) -> Result<Option<String>, StoreError> {
        each!(self, s => s.branch_base(session_id).await)
    }

    /// Indexes for search the events stored since the last time, if any
    /// (SQLite; PostgreSQL indexes each event as it is stored).
    pub async fn index_new_events(&self) -> Result<(), StoreError> {
        match self {
            Store::Sqlite(s) => s.index_new_events().await,
            Store::Postgres(_) => Ok(()),
        }
    }

    /// The best hits for the words of `text` (every word, the last as a
    /// prefix) in `project` (or every project), among every event stored
    /// before the call.
    pub async fn search(
        &self,
        text: String,
        project: Option<String>,
        limit: u32,
    ) -> Result<Vec<crate::wire::SearchHit>, StoreError> {
        each!(self, s => s.search(text, project, limit).await)
    }

    /// Up to `limit` events with an id above `after`, in insertion order,
    /// each as its id and its stored JSON with `id` included.
    pub async fn events_page(
        &self,
        session_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        each!(self, s => s.events_page(session_id, after, limit).await)
    }

    /// Takes a decision for a pending request: once (a second is a
    /// conflict), and only what fits the request (else `Invalid`).
    pub async fn decide(
        &self,
        session_id: String,
        request_id: String,
        body: DecisionBody,
    ) -> Result<(), StoreError> {
        each!(self, s => s.decide(session_id, request_id, body).await)
    }

    /// The session's pending requests, oldest first; `None` for an unknown session.
    pub async fn pending_requests(
        &self,
        session_id: String,
    ) -> Result<Option<Vec<PendingRequest>>, StoreError> {
        each!(self, s => s.pending_requests(session_id).await)
    }

    /// One request of the session, whatever its status.
    pub async fn request(
        &self,
        session_id: String,
        request_id: String,
    ) -> Result<Option<RequestRecord>, StoreError> {
        each!(self, s => s.request(session_id, request_id).await)
    }

    /// Resolves after a commit that changed a run or a host (at once if
    /// one came since the last call): when a queued run may go to a host.
    pub async fn dispatch_wanted(&self) {
        each!(self, s => s.dispatch_wanted().notified().await)
    }

    /// Gives queued runs to hosts with room; answers how many.
    pub async fn dispatch(&self) -> Result<usize, StoreError> {
        each!(self, s => s.dispatch().await)
    }

    /// Queues a run (`POST /runs`), refused with the reason when no host
    /// could take it, or its session cannot run now.
    pub async fn create_run(&self, create: RunCreate, run_id: String) -> Result<Run, StoreError> {
        each!(self, s => s.create_run(create, run_id).await)
    }

    /// One run, with its prompt if asked.
    pub async fn run(&self, run_id: String, with_prompt: bool) -> Result<Option<Run>, StoreError> {
        each!(self, s => s.run(run_id, with_prompt).await)
    }

    /// Runs, newest first.
    pub async fn runs(&self, filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        each!(self, s => s.runs(filter).await)
    }

    /// A host takes the run it was given, once (however many replicas are asked).
    pub async fn claim_run(
        &self,
        run_id: String,
        host: String,
        instance: String,
    ) -> Result<Run, StoreError> {
        each!(self, s => s.claim_run(run_id, host, instance).await)
    }

    /// A host says the run's runner ended.
    pub async fn run_exited(&self, run_id: String, exited: RunExited) -> Result<Run, StoreError> {
        each!(self, s => s.run_exited(run_id, exited).await)
    }

    /// Stops a queued run, or asks its host to stop it; answers whether a
    /// host was asked.
    pub async fn stop_run(&self, run_id: String) -> Result<(Run, bool), StoreError> {
        each!(self, s => s.stop_run(run_id).await)
    }

    /// Registers a host (`embedded`: the session manager's own).
    pub async fn register_host(
        &self,
        register: HostRegister,
        embedded: bool,
        timeout_seconds: f64,
    ) -> Result<Host, StoreError> {
        each!(self, s => s.register_host(register, embedded, timeout_seconds).await)
    }

    /// A host's heartbeat.
    pub async fn heartbeat(&self, name: String, instance: String) -> Result<Host, StoreError> {
        each!(self, s => s.heartbeat(name, instance).await)
    }

    /// A host that stops.
    pub async fn leave(&self, name: String, instance: String) -> Result<Host, StoreError> {
        each!(self, s => s.leave(name, instance).await)
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        each!(self, s => s.hosts().await)
    }

    /// Counts every online host as seen now (at the server's start).
    pub async fn grace_hosts(&self) -> Result<(), StoreError> {
        each!(self, s => s.grace_hosts().await)
    }

    /// Takes hosts silent for `timeout_ms` offline, and fails runs queued
    /// longer than `queue_timeout_ms`.
    pub async fn sweep(
        &self,
        timeout_ms: u64,
        queue_timeout_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        each!(self, s => s.sweep(timeout_ms, queue_timeout_ms).await)
    }

    /// Asks the session's runner to stop, on whichever replica it follows
    /// its feed (here: the live hub; on PostgreSQL: every replica's).
    pub async fn request_stop(&self, session_id: String) -> Result<(), StoreError> {
        each!(self, s => s.request_stop(session_id).await)
    }

    /// Resolves once what this replica answered so far is on its live
    /// feed (SQLite publishes before it answers; a PostgreSQL replica a
    /// moment after): a new live client subscribes then.
    pub async fn settled(&self) {
        if let Store::Postgres(s) = self {
            s.settled().await;
        }
    }

    /// Whether a runner follows `session_id`'s feed on another replica.
    pub async fn runner_elsewhere(&self, session_id: &str) -> Result<bool, StoreError> {
        match self {
            Store::Sqlite(_) => Ok(false),
            Store::Postgres(s) => s.runner_elsewhere(session_id).await,
        }
    }

    /// Tells the other replicas that a runner of `sessions` follows its
    /// feed here, until the lease is dropped.
    pub fn lease_runners(&self, sessions: &HashSet<String>) -> RunnerLease {
        match self {
            Store::Sqlite(_) => RunnerLease::Local,
            Store::Postgres(s) => RunnerLease::Postgres(s.lease_runners(sessions)),
        }
    }
}
