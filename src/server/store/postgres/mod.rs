//! The shared engine: one PostgreSQL database that several replicas of the
//! session manager use at once. Each replica writes through one connection
//! of its own that commits the requests waiting together (`writer`), reads
//! through a pool, and hears of the changes other replicas commit through
//! LISTEN/NOTIFY (`notify`), which it publishes to its own live clients.
//! Which replica a session's runner follows its feed on is in the database
//! too (`presence`), so that a stop posted to any replica reaches it.

pub mod bench_support;
mod budgets;
mod callbacks;
mod hosts;
mod import;
mod launches;
mod notify;
mod ops;
mod plain;
mod presence;
mod reader;
mod requests;
mod schema;
mod search;
mod writer;

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio::sync::Notify;
use tokio_postgres::types::ToSql;
use tokio_postgres::{Client, NoTls, Row, Statement};
use tokio_util::sync::CancellationToken;

use super::{Added, DailyBudget, DatabaseError, GroupBy, ResultLookup, RunFilter, StoreError};
use crate::server::changes::{Change, Publish};
use crate::wire::{
    Budget, BudgetAnswer, Callback, CallbackCreate, DecisionBody, DeletedCounts, Event, Host,
    HostRegister, PendingRequest, RequestRecord, Run, RunCreate, RunExited, Session, SessionCreate,
    SessionPatch, TextDelta, UsageAnswer,
};

pub use import::{ImportReport, import_sqlite};
pub use presence::Lease;

/// How long connecting may take before the database counts as unreachable.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Connections the readers of one replica use at most.
const POOL_SIZE: usize = 16;
/// How long a request waits for a pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

/// A PostgreSQL database to connect to, as `--db` named it.
#[derive(Clone)]
pub struct Target {
    config: tokio_postgres::Config,
    /// `postgres://USER@HOST:PORT/DB`: never the password.
    shown: String,
    /// `HOST:PORT`, for messages about reaching it.
    address: String,
}

impl fmt::Debug for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.shown)
    }
}

impl Target {
    /// Parses `postgres://USER[:PASSWORD]@HOST[:PORT]/DB[?...]`. Without a
    /// password in the URL, `PGPASSWORD` is used if set (a URL on a
    /// command line is visible to every user of the machine).
    pub fn parse(url: &str) -> Result<Target, DatabaseError> {
        let mut config: tokio_postgres::Config =
            url.parse().map_err(|e: tokio_postgres::Error| {
                // The error may quote the URL: say only what kind of mistake.
                let why = e.to_string();
                let why = if why.contains(url) {
                    "it cannot be parsed".to_owned()
                } else {
                    why
                };
                DatabaseError::Url(redact(url), why)
            })?;
        if config.get_hosts().is_empty() {
            return Err(DatabaseError::Url(redact(url), "no host".to_owned()));
        }
        if config.get_password().is_none()
            && let Some(password) = std::env::var_os("PGPASSWORD").filter(|p| !p.is_empty())
        {
            config.password(password.as_encoded_bytes());
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        config.keepalives_idle(Duration::from_secs(30));
        config.application_name("ao-session-manager");
        let host = match &config.get_hosts()[0] {
            tokio_postgres::config::Host::Tcp(name) => name.clone(),
            tokio_postgres::config::Host::Unix(path) => path.display().to_string(),
        };
        let port = config.get_ports().first().copied().unwrap_or(5432);
        let address = format!("{host}:{port}");
        let user = config.get_user().unwrap_or("").to_owned();
        let db = config.get_dbname().unwrap_or(&user).to_owned();
        let at = if user.is_empty() {
            String::new()
        } else {
            format!("{user}@")
        };
        Ok(Target {
            shown: format!("postgres://{at}{address}/{db}"),
            address,
            config,
        })
    }

    /// One new connection and the future that drives it; a failure in one
    /// line that names the host and port and never the password.
    pub(super) async fn open(
        &self,
    ) -> Result<
        (
            Client,
            tokio_postgres::Connection<tokio_postgres::Socket, tokio_postgres::tls::NoTlsStream>,
        ),
        StoreError,
    > {
        // The connect timeout covers reaching the host; this covers the
        // rest (something that accepts but never answers the handshake).
        let limit = CONNECT_TIMEOUT * 2;
        match tokio::time::timeout(limit, self.config.connect(NoTls)).await {
            Ok(connected) => connected.map_err(|e| self.unreachable(&e)),
            Err(_) => Err(StoreError::Down(format!(
                "the database at {} did not answer within {} s",
                self.address,
                limit.as_secs()
            ))),
        }
    }

    /// One new connection, its driver spawned.
    pub(super) async fn connect(&self) -> Result<Client, StoreError> {
        let (client, connection) = self.open().await?;
        tokio::spawn(async move {
            if let Err(e) = connection.await {
                tracing::debug!("database connection ended: {e}");
            }
        });
        Ok(client)
    }

    /// Why connecting failed, said for a person.
    fn unreachable(&self, e: &tokio_postgres::Error) -> StoreError {
        if let Some(db) = e.as_db_error() {
            let user = self.config.get_user().unwrap_or("");
            return StoreError::Down(format!(
                "the database at {} refused user '{user}': {}",
                self.address,
                db.message()
            ));
        }
        let mut why = e.to_string();
        let mut source = std::error::Error::source(e);
        while let Some(cause) = source {
            why = cause.to_string();
            source = cause.source();
        }
        StoreError::Down(format!(
            "cannot reach the database at {}: {why}",
            self.address
        ))
    }
}

/// A URL with the password (if any) replaced.
fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "(the URL)".to_owned();
    };
    let (authority, tail) = rest.split_at(rest.find(['/', '?']).unwrap_or(rest.len()));
    match authority.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}{tail}")
        }
        None => url.to_owned(),
    }
}

impl From<tokio_postgres::Error> for StoreError {
    fn from(e: tokio_postgres::Error) -> Self {
        use tokio_postgres::error::SqlState;
        if let Some(db) = e.as_db_error() {
            let code = db.code();
            if [
                SqlState::ADMIN_SHUTDOWN,
                SqlState::CRASH_SHUTDOWN,
                SqlState::CANNOT_CONNECT_NOW,
                SqlState::CONNECTION_FAILURE,
                SqlState::CONNECTION_EXCEPTION,
                SqlState::TOO_MANY_CONNECTIONS,
                SqlState::READ_ONLY_SQL_TRANSACTION,
            ]
            .contains(code)
            {
                return StoreError::Down(format!("the database is unavailable: {}", db.message()));
            }
            if [
                SqlState::T_R_DEADLOCK_DETECTED,
                SqlState::T_R_SERIALIZATION_FAILURE,
            ]
            .contains(code)
            {
                return StoreError::Contention(format!("the database was busy: {}", db.message()));
            }
            if *code == SqlState::UNIQUE_VIOLATION {
                return StoreError::Conflict(db.message().to_owned());
            }
            return StoreError::Postgres(format!("{} ({})", db.message(), code.code()));
        }
        let io = std::error::Error::source(&e).is_some_and(|s| s.is::<std::io::Error>());
        if e.is_closed() || io {
            return StoreError::Down(format!("the connection to the database was lost: {e}"));
        }
        StoreError::Postgres(e.to_string())
    }
}

impl From<deadpool_postgres::PoolError> for StoreError {
    fn from(e: deadpool_postgres::PoolError) -> Self {
        match e {
            deadpool_postgres::PoolError::Backend(e) => e.into(),
            deadpool_postgres::PoolError::Closed => StoreError::Closed,
            other => StoreError::Down(format!("no connection to the database: {other}")),
        }
    }
}

/// A connection that prepares each statement once.
pub(super) trait Db: Sync {
    fn client(&self) -> &Client;
    fn prepare(
        &self,
        sql: &str,
    ) -> impl Future<Output = Result<Statement, tokio_postgres::Error>> + Send;
}

impl Db for deadpool_postgres::Object {
    fn client(&self) -> &Client {
        self
    }

    async fn prepare(&self, sql: &str) -> Result<Statement, tokio_postgres::Error> {
        self.prepare_cached(sql).await
    }
}

pub(super) type Params<'a> = &'a [&'a (dyn ToSql + Sync)];

/// Every row `sql` answers.
pub(super) async fn rows(
    db: &impl Db,
    sql: &str,
    params: Params<'_>,
) -> Result<Vec<Row>, StoreError> {
    let stmt = db.prepare(sql).await?;
    Ok(db.client().query(&stmt, params).await?)
}

/// The row `sql` answers, if any.
pub(super) async fn row(
    db: &impl Db,
    sql: &str,
    params: Params<'_>,
) -> Result<Option<Row>, StoreError> {
    let stmt = db.prepare(sql).await?;
    Ok(db.client().query_opt(&stmt, params).await?)
}

/// Runs `sql`; answers the rows it changed.
pub(super) async fn exec(db: &impl Db, sql: &str, params: Params<'_>) -> Result<u64, StoreError> {
    let stmt = db.prepare(sql).await?;
    Ok(db.client().execute(&stmt, params).await?)
}

/// What this replica shares with its tasks.
pub(super) struct Replica {
    /// Names this replica in notifications and runner leases.
    id: String,
    target: Target,
    pool: Pool,
    publish: Arc<dyn Publish>,
    /// This replica's committed changes until their notification is back.
    own: notify::Own,
    stop: CancellationToken,
}

/// A handle to the PostgreSQL store; cheap to clone.
#[derive(Clone)]
pub struct PgStore {
    replica: Arc<Replica>,
    writer: writer::WriterHandle,
    presence: presence::Presence,
    /// Notified after a commit (here or elsewhere) that changed a run or a host.
    dispatch: Arc<Notify>,
}

/// Stops this replica's tasks at shutdown.
pub struct PgCloser {
    replica: Arc<Replica>,
    writer: writer::WriterTask,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl PgCloser {
    /// Commits what is queued, withdraws this replica's runner leases and
    /// closes its connections.
    pub async fn close(self) {
        self.writer.close().await;
        self.replica.stop.cancel();
        for task in self.tasks {
            let _ = tokio::time::timeout(Duration::from_secs(3), task).await;
        }
        self.replica.pool.close();
    }
}

/// A pool of reading connections to `target`.
fn pool(target: &Target) -> Result<Pool, StoreError> {
    let manager = Manager::from_config(
        target.config.clone(),
        NoTls,
        ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        },
    );
    Pool::builder(manager)
        .max_size(POOL_SIZE)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(POOL_WAIT))
        .create_timeout(Some(CONNECT_TIMEOUT))
        .recycle_timeout(Some(CONNECT_TIMEOUT))
        .build()
        .map_err(|e| StoreError::Unavailable(format!("cannot set up the connection pool: {e}")))
}

impl PgStore {
    /// Connects (once: an unreachable database is an error at once, not a
    /// loop of retries), migrates, and starts this replica's writer, its
    /// listener for other replicas' changes, and its heartbeat.
    pub async fn open(
        target: &Target,
        publish: Arc<dyn Publish>,
        dispatch: Arc<Notify>,
    ) -> Result<(PgStore, PgCloser), StoreError> {
        let mut client = target.connect().await?;
        schema::migrate(&mut client).await?;
        let replica = Arc::new(Replica {
            id: uuid::Uuid::new_v4().simple().to_string()[..16].to_owned(),
            target: target.clone(),
            pool: pool(target)?,
            publish,
            own: notify::Own::default(),
            stop: CancellationToken::new(),
        });
        // Listening before serving: no change committed after this start is missed.
        let listener = notify::Listener::start(&replica).await?;
        let (presence, presence_task) = presence::start(&replica).await?;
        let (writer, writer_task) = writer::start(Arc::clone(&replica), client);
        let closer = PgCloser {
            replica: Arc::clone(&replica),
            writer: writer_task,
            tasks: vec![listener, presence_task],
        };
        Ok((
            PgStore {
                replica,
                writer,
                presence,
                dispatch,
            },
            closer,
        ))
    }

    async fn reader(&self) -> Result<deadpool_postgres::Object, StoreError> {
        Ok(self.replica.pool.get().await?)
    }

    /// Creates a session; `created_at` is used unless the request carries one.
    pub async fn create_session(
        &self,
        create: SessionCreate,
        created_at: String,
    ) -> Result<Session, StoreError> {
        let write = ops::Write::CreateSession { create, created_at };
        self.writer.run(write).await?.session()
    }

    /// Tells the other replicas' live clients of text a model is writing
    /// (see `Store::share_delta`).
    pub async fn share_delta(&self, session_id: &str, delta: &TextDelta) -> Result<(), StoreError> {
        let db = self.reader().await?;
        notify::send_delta(&db, &self.replica.id, session_id, delta).await
    }

    /// Stores an event (see `Store::add_event`).
    pub async fn add_event(
        &self,
        event: Event,
        body: String,
        create_if_missing: bool,
    ) -> Result<Added, StoreError> {
        let write = ops::Write::AddEvent {
            event: Box::new(event),
            body,
            create_if_missing,
        };
        self.writer.run(write).await?.added()
    }

    /// Changes a session's metadata.
    pub async fn update_session(
        &self,
        session_id: String,
        patch: SessionPatch,
    ) -> Result<Session, StoreError> {
        let write = ops::Write::UpdateSession { session_id, patch };
        self.writer.run(write).await?.session()
    }

    /// Deletes a session and all its events.
    pub async fn delete_session(&self, session_id: String) -> Result<DeletedCounts, StoreError> {
        let write = ops::Write::DeleteSession { session_id };
        self.writer.run(write).await?.deleted()
    }

    /// Sessions, newest first, optionally only those with this name (and
    /// project directory).
    pub async fn list_sessions(
        &self,
        name: Option<String>,
        project_dir: Option<String>,
    ) -> Result<Vec<Session>, StoreError> {
        let db = self.reader().await?;
        reader::list_sessions(&db, name.as_deref(), project_dir.as_deref()).await
    }

    /// Every session, newest first, as the JSON array `GET /sessions` serves.
    pub async fn sessions_json(&self) -> Result<Vec<u8>, StoreError> {
        let sessions = self.list_sessions(None, None).await?;
        serde_json::to_vec(&sessions)
            .map_err(|e| StoreError::Unavailable(format!("cannot encode the sessions: {e}")))
    }

    /// One session, if it exists.
    pub async fn get_session(&self, session_id: String) -> Result<Option<Session>, StoreError> {
        let db = self.reader().await?;
        reader::get_session(&db, &session_id).await
    }

    /// The answer of the session's last run, if it can be had.
    pub async fn result(&self, session_id: String) -> Result<ResultLookup, StoreError> {
        let mut db = self.reader().await?;
        reader::result(&mut db, &session_id).await
    }

    /// Totals per group of the runs that ended at or after `since`.
    pub async fn usage(
        &self,
        group_by: GroupBy,
        then: Option<GroupBy>,
        since: Option<String>,
        project: Option<String>,
    ) -> Result<UsageAnswer, StoreError> {
        let db = self.reader().await?;
        reader::usage(&db, group_by, then, since.as_deref(), project.as_deref()).await
    }

    /// Up to `limit` events with an id above `after`, in id order.
    pub async fn events_page(
        &self,
        session_id: String,
        after: i64,
        limit: u32,
    ) -> Result<Vec<(i64, String)>, StoreError> {
        let db = self.reader().await?;
        reader::events_page(&db, &session_id, after, limit).await
    }

    /// See [`Store::check_budget`](super::Store::check_budget).
    pub async fn check_budget(
        &self,
        session_id: Option<String>,
        parent: Option<String>,
        project: Option<String>,
        daily: Option<DailyBudget>,
    ) -> Result<BudgetAnswer, StoreError> {
        let db = self.reader().await?;
        budgets::check(
            &db,
            session_id.as_deref(),
            parent.as_deref(),
            project.as_deref(),
            daily.as_ref(),
        )
        .await
    }

    /// Every budget and what is left of it.
    pub async fn budgets(&self, daily: Option<DailyBudget>) -> Result<Vec<Budget>, StoreError> {
        let db = self.reader().await?;
        budgets::all(&db, daily.as_ref()).await
    }

    /// Registers a child's callback to its parent.
    pub async fn register_callback(&self, create: CallbackCreate) -> Result<Callback, StoreError> {
        self.writer
            .run(ops::Write::RegisterCallback { create })
            .await?
            .callback()
    }

    /// A child's run that ended before its session existed calls back.
    pub async fn end_callback(
        &self,
        child_run_id: String,
        error: String,
    ) -> Result<Callback, StoreError> {
        let write = ops::Write::EndCallback {
            child_run_id,
            error,
        };
        self.writer.run(write).await?.callback()
    }

    /// The callbacks owed to a session that are not delivered yet.
    pub async fn callbacks(&self, parent: String) -> Result<Vec<Callback>, StoreError> {
        callbacks::owed_to(&self.reader().await?, &parent).await
    }

    /// Publishes the stop request here and notifies every other replica,
    /// one of which may have the session's runner.
    pub async fn request_stop(&self, session_id: String) -> Result<(), StoreError> {
        let change = Change::StopRequested(session_id);
        let db = self.reader().await?;
        notify::send(&db, &self.replica.id, None, std::slice::from_ref(&change)).await?;
        self.replica.publish.publish_change(&change);
        Ok(())
    }

    /// Whether a runner of `session_id` follows its feed on another live replica.
    pub async fn runner_elsewhere(&self, session_id: &str) -> Result<bool, StoreError> {
        let db = self.reader().await?;
        presence::runner_elsewhere(&db, &self.replica.id, session_id).await
    }

    /// Records that runners of `sessions` follow their feed here.
    pub fn lease_runners(&self, sessions: &HashSet<String>) -> Lease {
        self.presence.lease(sessions)
    }

    /// Resolves once this replica's answered writes are published here.
    pub async fn settled(&self) {
        self.replica.own.settled().await;
    }

    /// What wakes the dispatcher.
    pub fn dispatch_wanted(&self) -> &Notify {
        &self.dispatch
    }

    /// Takes a decision for a pending request (see `Store::decide`).
    pub async fn decide(
        &self,
        session_id: String,
        request_id: String,
        body: DecisionBody,
    ) -> Result<(), StoreError> {
        let write = ops::Write::Decide {
            session_id,
            request_id,
            body,
        };
        self.writer.run(write).await?.nothing()
    }

    /// The session's pending requests, oldest first; `None` for an unknown session.
    pub async fn pending_requests(
        &self,
        session_id: String,
    ) -> Result<Option<Vec<PendingRequest>>, StoreError> {
        requests::pending(&self.reader().await?, &session_id).await
    }

    /// One request of the session, whatever its status.
    pub async fn request(
        &self,
        session_id: String,
        request_id: String,
    ) -> Result<Option<RequestRecord>, StoreError> {
        requests::one(&self.reader().await?, &session_id, &request_id).await
    }

    /// The best hits of what a person typed (`Store::search`): each event
    /// is indexed as it is stored, so every one stored before is seen.
    pub async fn search(
        &self,
        text: String,
        project: Option<String>,
        limit: u32,
    ) -> Result<Vec<crate::wire::SearchHit>, StoreError> {
        search::search(&self.reader().await?, &text, project.as_deref(), limit).await
    }

    /// The commit a worktree session's branch started from, if a run said.
    pub async fn branch_base(&self, session_id: String) -> Result<Option<String>, StoreError> {
        reader::branch_base(&self.reader().await?, &session_id).await
    }

    /// Gives queued runs to hosts with room; answers how many.
    pub async fn dispatch(&self) -> Result<usize, StoreError> {
        self.writer.run(ops::Write::Dispatch).await?.count()
    }

    /// Queues a run (see `Store::create_run`).
    pub async fn create_run(&self, create: RunCreate, run_id: String) -> Result<Run, StoreError> {
        let write = ops::Write::CreateRun {
            create: Box::new(create),
            run_id,
        };
        self.writer.run(write).await?.run()
    }

    /// One run, with its prompt if asked.
    pub async fn run(&self, run_id: String, with_prompt: bool) -> Result<Option<Run>, StoreError> {
        let launch = launches::get(&self.reader().await?, &run_id, with_prompt).await?;
        Ok(launch.map(|l| l.run))
    }

    /// Runs, newest first.
    pub async fn runs(&self, filter: RunFilter) -> Result<Vec<Run>, StoreError> {
        launches::list(&self.reader().await?, &filter).await
    }

    /// A host takes the run it was given, once.
    pub async fn claim_run(
        &self,
        run_id: String,
        host: String,
        instance: String,
    ) -> Result<Run, StoreError> {
        let write = ops::Write::Claim {
            run_id,
            host,
            instance,
        };
        self.writer.run(write).await?.run()
    }

    /// A host says the run's runner ended.
    pub async fn run_exited(&self, run_id: String, exited: RunExited) -> Result<Run, StoreError> {
        let write = ops::Write::Exited { run_id, exited };
        self.writer.run(write).await?.run()
    }

    /// Stops a queued run, or asks its host to stop it.
    pub async fn stop_run(&self, run_id: String) -> Result<(Run, bool), StoreError> {
        let write = ops::Write::StopRun { run_id };
        self.writer.run(write).await?.stopped()
    }

    /// Registers a host.
    pub async fn register_host(
        &self,
        register: HostRegister,
        embedded: bool,
        timeout_seconds: f64,
    ) -> Result<Host, StoreError> {
        let write = ops::Write::Register {
            register,
            embedded,
            timeout_seconds,
        };
        self.writer.run(write).await?.host()
    }

    /// A host's heartbeat.
    pub async fn heartbeat(&self, name: String, instance: String) -> Result<Host, StoreError> {
        let write = ops::Write::Heartbeat { name, instance };
        self.writer.run(write).await?.host()
    }

    /// A host that stops.
    pub async fn leave(&self, name: String, instance: String) -> Result<Host, StoreError> {
        let write = ops::Write::Leave { name, instance };
        self.writer.run(write).await?.host()
    }

    /// Every host, by name.
    pub async fn hosts(&self) -> Result<Vec<Host>, StoreError> {
        let all = hosts::all(&self.reader().await?).await?;
        Ok(all.into_iter().map(|r| r.host).collect())
    }

    /// Counts every online host as seen now (at this replica's start).
    pub async fn grace_hosts(&self) -> Result<(), StoreError> {
        self.writer.run(ops::Write::Grace).await?.nothing()
    }

    /// Takes silent hosts offline and fails runs queued too long.
    pub async fn sweep(
        &self,
        timeout_ms: u64,
        queue_timeout_ms: Option<u64>,
    ) -> Result<(), StoreError> {
        let write = ops::Write::Sweep {
            timeout_ms,
            queue_timeout_ms,
        };
        self.writer.run(write).await?.nothing()
    }
}
