//! `ao-session-manager`: the HTTP API over the embedded database, and the
//! live feed that pushes every change to `/ws` and `/sse` clients.
//!
//! [`Server::open`] opens the database; [`Server::run`] serves a listener
//! until a shutdown future resolves. The binary and the tests go through
//! the same two calls.

mod args;
mod dashboard;
mod drafts;
mod error;
mod extract;
pub mod guard;
mod live;
mod routes;
mod snapshot;
mod store;

use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

pub use args::ServerArgs;
/// For `benches/session_manager.rs` only; not part of the API.
#[doc(hidden)]
pub use store::bench_support;
pub use store::{SCHEMA_VERSION, StoreError, Synchronous};

use live::Hub;
use snapshot::Snapshots;
use store::{Store, WriterThread};

/// The default cap on a request body.
pub const DEFAULT_MAX_BODY_BYTES: usize = 1024 * 1024;
/// The default number of messages kept for live clients that fall behind.
pub const DEFAULT_LIVE_BUFFER: usize = 4096;
/// The default size those messages may take at most: a client that does
/// not read costs the server no more than this, however large the events.
pub const DEFAULT_LIVE_BUFFER_BYTES: usize = 16 * 1024 * 1024;

/// What the server needs to start.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub db_path: PathBuf,
    pub synchronous: Synchronous,
    pub max_body_bytes: usize,
    /// What is kept for live clients that fall behind.
    pub live_budget: live::Budget,
    /// Where the local token is (made there on the first start); `None`:
    /// no local token (only the configured token lets anyone act).
    pub local_token_file: Option<PathBuf>,
    /// Hosts, origins and the token the server lets in.
    pub guard: guard::Guard,
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
    writer: WriterThread,
}

/// Why the server could not start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error("cannot open the database {path}: {source}")]
    Open { path: PathBuf, source: StoreError },
    #[error("the server failed: {0}")]
    Serve(#[from] std::io::Error),
}

impl Server {
    /// Opens (or creates and migrates) the database.
    pub fn open(config: &ServerConfig) -> Result<Server, ServerError> {
        let hub = Hub::new(config.live_budget);
        let (store, writer) = Store::open(&config.db_path, config.synchronous, hub.clone())
            .map_err(|source| ServerError::Open {
                path: config.db_path.clone(),
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
        Ok(Server {
            state: AppState {
                store,
                hub,
                snapshots: Arc::default(),
                drafts: Arc::default(),
                max_body_bytes: config.max_body_bytes,
                shutdown: CancellationToken::new(),
                guard: Arc::new(guard),
            },
            writer,
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
            token.cancel();
        })
        .await;
        self.writer.close().await;
        served.map_err(ServerError::Serve)
    }
}
