//! `ao-session-manager`: the HTTP API over its database (embedded SQLite,
//! or PostgreSQL shared by several replicas), and the live feed that pushes
//! every change to `/ws` and `/sse` clients.
//!
//! [`Server::open`] opens the database; [`Server::run`] serves a listener
//! until a shutdown future resolves. The binary and the tests go through
//! the same two calls. The layers: `routes` (HTTP) use the `store` and the
//! live hub (`live`); the store hands its changes to the hub through
//! `changes`, so that neither imports the other; `error` turns the store's
//! errors into HTTP answers.

mod args;
mod changes;
mod dashboard;
mod drafts;
mod error;
mod extract;
pub mod guard;
mod hosting;
mod live;
pub mod notify;
mod routes;
mod snapshot;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use args::{
    ENV_DAILY_BUDGET, ENV_DAILY_BUDGET_PROJECT, ENV_NOTIFY_COMMAND, ENV_NOTIFY_URL, ServerArgs,
};
/// For `benches/postgres.rs` only; not part of the API.
#[doc(hidden)]
pub use store::postgres::bench_support as pg_bench_support;
pub use store::postgres::{ImportReport, import_sqlite};
/// For `benches/session_manager.rs` only; not part of the API.
#[doc(hidden)]
pub use store::sqlite::bench_support;
pub use store::{Database, DatabaseError, SCHEMA_VERSION, StoreError, Synchronous};

use changes::{Change, Observer, Publish};
use live::Hub;
use notify::{Notifier, NotifySettings};
use snapshot::Snapshots;
use store::{Closer, Store};

/// The default cap on a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default number of messages kept for live clients that fall behind.
pub const DEFAULT_LIVE_BUFFER: usize = 4096;
/// The default size those messages may take at most: a client that does
/// not read costs the server no more than this, however large the events.
pub const DEFAULT_LIVE_BUFFER_BYTES: usize = 16 * 1024 * 1024;
/// How long notifications committed before a shutdown may still take to
/// go out; then the deliveries under way are cancelled.
const NOTIFY_GRACE: Duration = Duration::from_secs(2);

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub db: Database,
    pub max_body_bytes: usize,
    /// What is kept for live clients that fall behind.
    pub live_budget: live::Budget,
    /// Where the local token is (made there on the first start); `None`:
    /// no local token (only the configured token lets anyone act).
    pub local_token_file: Option<PathBuf>,
    /// Hosts, origins and the token the server lets in.
    pub guard: guard::Guard,
    /// Where notifications go, if anywhere.
    pub notify: NotifySettings,
    /// What a project may spend per day (`--daily-budget-usd`).
    pub daily_budget: Option<store::DailyBudget>,
    /// Whether the server runs sessions itself (its embedded host).
    pub local_runs: bool,
    /// Runs the embedded host takes at once.
    pub local_capacity: u32,
    /// The embedded host's name ([`EMBEDDED_HOST`] unless told).
    pub local_host_name: String,
    /// A host without heartbeat for this long is offline.
    pub host_timeout: Duration,
    /// A run queued for this long fails (`None`: it waits).
    pub queue_timeout: Option<Duration>,
}

/// The default time a host may go without heartbeat before it is offline.
pub const DEFAULT_HOST_TIMEOUT: Duration = Duration::from_secs(30);
/// The name of the session manager's own host, unless `--local-host-name`.
pub const EMBEDDED_HOST: &str = "local";

/// How the server has runs run: its own host, and the timeouts of hosts
/// and of the queue.
#[derive(Debug)]
pub struct Hosting {
    /// The process of the embedded host, when it runs: the one
    /// registration that takes its name over at once.
    embedded_instance: Option<String>,
    pub host_timeout: Duration,
    pub queue_timeout: Option<Duration>,
}

impl Hosting {
    /// How often a host beats: three beats fit in the timeout.
    pub fn heartbeat(&self) -> Duration {
        self.host_timeout / 3
    }

    fn is_embedded(&self, instance: &str) -> bool {
        self.embedded_instance.as_deref() == Some(instance)
    }
}

/// Shared by every handler.
#[derive(Clone)]
pub struct AppState {
    store: Store,
    hub: Hub,
    snapshots: Arc<Snapshots>,
    /// The text so far of the messages being written.
    drafts: Arc<drafts::Drafts>,
    max_body_bytes: usize,
    shutdown: CancellationToken,
    guard: Arc<guard::Guard>,
    hosting: Arc<Hosting>,
    daily_budget: Option<store::DailyBudget>,
}

/// How often events stored since are indexed for search.
const INDEX_EVERY: std::time::Duration = std::time::Duration::from_secs(1);

/// Indexes for search what was stored, once a second while events arrive.
async fn index_while_serving(store: Store, shutdown: CancellationToken) {
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(INDEX_EVERY) => {}
        }
        if let Err(e) = store.index_new_events().await {
            tracing::warn!("indexing for search failed (searches will try again): {e}");
        }
    }
}

/// An opened database, ready to serve.
pub struct Server {
    state: AppState,
    closer: Closer,
    /// What the store commits goes there: the live hub, the notifications.
    committed: Arc<Committed>,
    local_capacity: u32,
    local_host_name: String,
    notifier: Option<Notifier>,
}

/// Where the store hands each committed change: the live hub, then the
/// notifications' observer until the store is closed (which is what ends
/// the notifications' intake).
struct Committed {
    hub: Hub,
    /// Kept in step with what other replicas' runners post.
    drafts: Arc<drafts::Drafts>,
    observer: Mutex<Option<Observer>>,
}

impl Committed {
    fn close(&self) {
        drop(
            self.observer
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .take(),
        );
    }
}

impl Publish for Committed {
    fn publish_change(&self, change: &Change) {
        self.hub.publish_change(change);
        if let Some(observe) = self
            .observer
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .as_ref()
        {
            observe(change);
        }
    }

    fn publish_others(&self, change: &Change) {
        match change {
            Change::TextDelta { session_id, delta } => self.drafts.add(session_id, delta),
            Change::Event {
                session_id, body, ..
            } => self.drafts.end_with_stored(session_id, body),
            Change::SessionDeleted(id) => self.drafts.clear(id),
            _ => {}
        }
        self.hub.publish_change(change);
    }
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the database {db}: {source}")]
    Open { db: String, source: StoreError },
    #[error("the server failed: {0}")]
    Serve(#[from] std::io::Error),
}

impl Server {
    /// Opens (or creates and migrates) the database.
    pub async fn open(config: &ServerConfig) -> Result<Server, ServerError> {
        let hub = Hub::new(config.live_budget);
        let (notifier, observer) = Notifier::new(&config.notify).unzip();
        let drafts = Arc::<drafts::Drafts>::default();
        let committed = Arc::new(Committed {
            hub: hub.clone(),
            drafts: Arc::clone(&drafts),
            observer: Mutex::new(observer),
        });
        let publish: Arc<dyn Publish> = committed.clone();
        let (store, closer) =
            Store::open(&config.db, publish)
                .await
                .map_err(|source| ServerError::Open {
                    db: config.db.describe(),
                    source,
                })?;
        let mut guard = config.guard.clone();
        guard.local_token = config.local_token_file.as_deref().and_then(|path| {
            crate::token::Token::local_or_create(path)
                .map_err(|e| {
                    tracing::warn!("{e}; only the configured token can answer permission requests")
                })
                .ok()
        });
        let hosting = Hosting {
            embedded_instance: config.local_runs.then(|| uuid::Uuid::new_v4().to_string()),
            host_timeout: config.host_timeout,
            queue_timeout: config.queue_timeout,
        };
        Ok(Server {
            state: AppState {
                store,
                hub,
                snapshots: Arc::default(),
                drafts,
                max_body_bytes: config.max_body_bytes,
                shutdown: CancellationToken::new(),
                guard: Arc::new(guard),
                hosting: Arc::new(hosting),
                daily_budget: config.daily_budget.clone(),
            },
            closer,
            committed,
            local_capacity: config.local_capacity,
            local_host_name: config.local_host_name.clone(),
            notifier,
        })
    }

    /// Serves `listener` until `shutdown` resolves, then closes live
    /// connections, commits what is queued and closes the database.
    pub async fn run(
        self,
        listener: TcpListener,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> Result<(), ServerError> {
        let token = self.state.shutdown.clone();
        tokio::spawn(index_while_serving(self.state.store.clone(), token.clone()));
        let notifying = self
            .notifier
            .map(|notifier| tokio::spawn(notifier.run(self.state.store.clone())));
        let addr = listener.local_addr()?;
        let dispatcher = tokio::spawn(hosting::dispatch(self.state.store.clone(), token.clone()));
        let sweeper = tokio::spawn(hosting::sweep(
            self.state.store.clone(),
            Arc::clone(&self.state.hosting),
            token.clone(),
        ));
        let mut local_host = None;
        if let Some(instance) = self.state.hosting.embedded_instance.clone() {
            let spec = hosting::embedded_spec(
                &self.state.guard,
                addr,
                self.local_host_name.clone(),
                instance,
                self.local_capacity,
            );
            let timeout = self.state.hosting.host_timeout.as_secs_f64();
            if let Err(e) = self
                .state
                .store
                .register_host(spec.registration(), true, timeout)
                .await
            {
                tracing::error!("cannot register the session manager's own host: {e}");
            }
            local_host = Some(hosting::embedded(spec));
        }
        let app = routes::router(self.state);
        // Streamed answers (SSE, WebSocket messages, long lists) go out in
        // several small writes; with Nagle's algorithm a small write waits
        // for the client's delayed ACK, up to 40 ms.
        let listener = listener.tap_io(|tcp| {
            if let Err(e) = tcp.set_nodelay(true) {
                tracing::debug!("cannot set TCP_NODELAY: {e}");
            }
        });
        let served = axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .with_graceful_shutdown(async move {
            shutdown.await;
            // Its runs end first, while their ends can still be stored.
            if let Some(local_host) = local_host {
                local_host.stop().await;
            }
            token.cancel();
        })
        .await;
        let _ = dispatcher.await;
        let _ = sweeper.await;
        self.closer.close().await;
        // Nothing more is committed: the notifications drain and end.
        self.committed.close();
        if let Some(mut notifying) = notifying
            && tokio::time::timeout(NOTIFY_GRACE, &mut notifying)
                .await
                .is_err()
        {
            notifying.abort();
            let _ = notifying.await;
        }
        served.map_err(ServerError::Serve)
    }
}
