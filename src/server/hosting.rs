//! The session manager's side of running sessions: the dispatcher that
//! gives queued runs to hosts whenever a run or a host changes, the sweep
//! that takes silent hosts offline and fails runs queued too long, and
//! the session manager's own host for its machine (the same code as
//! `ao-host`, talking to this server over loopback).

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::store::{Store, StoreError};
use super::{Hosting, guard};
use crate::client::SessionClient;
use crate::hosts::agent::{self, HostSpec};
use crate::hosts::allow::AllowList;
use crate::hosts::spawn::RunnerEnv;

/// How often the dispatcher looks even when nothing changed: callbacks
/// whose resume is to be tried again wait for their time.
const DISPATCH_EVERY: Duration = Duration::from_secs(1);

/// Gives queued runs to hosts, and callbacks to their parents, each time a
/// run, a host or a session changed (and once at start, for what was left
/// before), until `stop`.
pub async fn dispatch(store: Store, stop: CancellationToken) {
    loop {
        match store.dispatch().await {
            Ok(_) | Err(StoreError::Closed) => {}
            Err(e) => tracing::warn!("dispatching queued runs failed: {e}"),
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = store.dispatch_wanted() => {}
            () = tokio::time::sleep(DISPATCH_EVERY) => {}
        }
    }
}

/// Takes hosts offline once they have been silent for the host timeout,
/// and fails runs queued past the queue timeout, until `stop`.
pub async fn sweep(store: Store, hosting: Arc<Hosting>, stop: CancellationToken) {
    let every = (hosting.host_timeout / 4).clamp(Duration::from_millis(50), Duration::from_secs(1));
    let timeout_ms = hosting.host_timeout.as_millis() as u64;
    let queue_ms = hosting.queue_timeout.map(|t| t.as_millis() as u64);
    if let Err(e) = store.grace_hosts().await {
        tracing::warn!("cannot count the hosts as seen at start: {e}");
    }
    loop {
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(every) => {}
        }
        match store.sweep(timeout_ms, queue_ms).await {
            Ok(()) | Err(StoreError::Closed) => {}
            Err(e) => tracing::warn!("checking hosts and the queue failed: {e}"),
        }
    }
}

/// The session manager's own host while it runs.
pub struct LocalHost {
    stop: CancellationToken,
    task: JoinHandle<()>,
}

impl LocalHost {
    /// Ends its runs (they are recorded as interrupted while the server
    /// still takes their ends) and waits for it to leave.
    pub async fn stop(self) {
        self.stop.cancel();
        let _ = tokio::time::timeout(Duration::from_secs(20), self.task).await;
    }
}

/// The session manager's own host: it reaches the server on loopback at
/// `addr`'s port, presenting the configured token or else the local one,
/// and runs sessions in any folder of this machine.
pub fn embedded_spec(
    guard: &guard::Guard,
    addr: SocketAddr,
    name: String,
    instance: String,
    capacity: u32,
) -> HostSpec {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    HostSpec {
        name,
        labels: Vec::new(),
        projects: AllowList::any(),
        capacity,
        claude_version: None,
        instance,
        runner: RunnerEnv {
            url: format!("http://{}", SocketAddr::new(ip, addr.port())),
            token: guard.token.clone().or_else(|| guard.local_token.clone()),
            claude_path: None,
        },
    }
}

/// Starts the session manager's own host (registered already, so that a
/// run asked for at once has somewhere to go); it registers again with
/// the version of its `claude` once it knows it.
pub fn embedded(mut spec: HostSpec) -> LocalHost {
    let claude = std::env::var_os(crate::config::ENV_CLAUDE_PATH)
        .filter(|v| !v.is_empty())
        .map(PathBuf::from);
    let stop = CancellationToken::new();
    let task = tokio::spawn({
        let stop = stop.clone();
        async move {
            let program = claude.unwrap_or_else(|| PathBuf::from("claude"));
            if let Ok(path) = crate::claude::process::locate(&program) {
                spec.claude_version = agent::claude_version(&path).await;
            }
            let client = match SessionClient::new(&spec.runner.url) {
                Ok(client) => client.with_token(spec.runner.token.clone()),
                Err(e) => {
                    tracing::error!("the session manager's own host cannot start: {e}");
                    return;
                }
            };
            let served = agent::serve(client, spec, stop, |host| {
                tracing::info!(
                    "runs sessions on this machine as host '{}' (capacity {})",
                    host.name,
                    host.capacity
                );
            })
            .await;
            if let Err(e) = served {
                tracing::error!("the session manager's own host stopped: {e}");
            }
        }
    });
    LocalHost { stop, task }
}
