//! A host at work: it registers with the session manager, beats, follows
//! its own feed (`/sse?host=NAME`) for the runs given to it, claims each
//! (once: the claim is a compare-and-set on the server), checks the run's
//! folder against its own allow-list, starts the runner, and says when the
//! runner ended. On stop it ends its runners (their runs end as
//! interrupted) and leaves. `ao-host` and the session manager's own host
//! are this same code.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use backon::{ExponentialBuilder, Retryable};
use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::allow::AllowList;
use super::spawn::{self, RunnerEnv};
use crate::client::{ClientError, SessionClient};
use crate::feed::Feed;
use crate::wire::{Host, HostRegister, LiveMessage, RunClaim, RunExited, RunStatus};

/// How long a host keeps trying to register at its start.
const REGISTER_WAIT: Duration = Duration::from_secs(30);
/// How long its runners get to end their runs when it stops.
const STOP_WAIT: Duration = Duration::from_secs(10);
/// The longest wait between two attempts to reach the feed.
const FEED_RETRY_MAX: Duration = Duration::from_secs(2);

/// Who a host is and what it runs.
#[derive(Debug, Clone)]
pub struct HostSpec {
    pub name: String,
    pub labels: Vec<String>,
    pub projects: AllowList,
    pub capacity: u32,
    pub claude_version: Option<String>,
    /// This process: the server tells it from an earlier one of the same name.
    pub instance: String,
    pub runner: RunnerEnv,
}

/// Why a host stopped serving.
#[derive(Debug, thiserror::Error)]
pub enum HostError {
    #[error("{0}")]
    Register(String),
    #[error(
        "another process registered as host '{0}' while this one ran; this one stops (give each host its own --name)"
    )]
    Displaced(String),
}

/// A runner of this host: `None` while its run is being claimed and started.
type Runners = Mutex<HashMap<String, Option<u32>>>;

struct Agent {
    client: SessionClient,
    spec: HostSpec,
    runners: Runners,
    /// Notified when a runner ends.
    ended: Notify,
}

impl HostSpec {
    /// What the host registers with.
    pub fn registration(&self) -> HostRegister {
        HostRegister {
            name: self.name.clone(),
            instance: self.instance.clone(),
            labels: self.labels.clone(),
            projects: self.projects.texts(),
            capacity: self.capacity,
            claude_version: self.claude_version.clone(),
        }
    }
}

impl Agent {
    fn runners(&self) -> std::sync::MutexGuard<'_, HashMap<String, Option<u32>>> {
        self.runners.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Registers, retrying while the session manager cannot be reached
    /// (bounded); answers the heartbeat interval.
    async fn register(&self, wait: Duration) -> Result<(Host, Duration), HostError> {
        let body = self.spec.registration();
        let deadline = tokio::time::Instant::now() + wait;
        loop {
            match self.client.register_host(&body).await {
                Ok(answer) => {
                    let beat =
                        Duration::from_secs_f64(answer.heartbeat_seconds.clamp(0.05, 3600.0));
                    return Ok((answer.host, beat));
                }
                Err(e) if transient(&e) && tokio::time::Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(250)).await;
                }
                Err(e) => return Err(HostError::Register(e.to_string())),
            }
        }
    }

    /// Beats until the name is taken by another process.
    async fn beat(self: Arc<Self>, mut every: Duration) -> HostError {
        let mut down = false;
        loop {
            tokio::time::sleep(every).await;
            match self
                .client
                .heartbeat(&self.spec.name, &self.spec.instance)
                .await
            {
                Ok(answer) => {
                    every = Duration::from_secs_f64(answer.heartbeat_seconds.clamp(0.05, 3600.0));
                    if down {
                        tracing::info!("the session manager answers again");
                        down = false;
                    }
                }
                Err(ClientError::NotFound(_)) => {
                    // A session manager that lost its record: say who we are again.
                    if let Ok((_, beat)) = self.register(Duration::ZERO).await {
                        every = beat;
                    }
                }
                Err(ClientError::Api { status: 409, .. }) => {
                    return HostError::Displaced(self.spec.name.clone());
                }
                Err(e) => {
                    if !down {
                        tracing::warn!("heartbeat failed: {e}; trying again");
                        down = true;
                    }
                }
            }
        }
    }

    /// Follows the host's feed for ever: each run given to it is started,
    /// each stop request passed to its runner. After every (re)connection
    /// the runs given while it was away are started too.
    async fn follow(self: Arc<Self>) {
        let mut delay = Duration::from_millis(100);
        let mut warned = false;
        loop {
            match Feed::for_host(&self.client, &self.spec.name).await {
                Ok(mut feed) => {
                    delay = Duration::from_millis(100);
                    warned = false;
                    while let Some(message) = feed.next().await {
                        self.on_message(message).await;
                    }
                }
                Err(e) if !warned => {
                    tracing::warn!("cannot follow the session manager's feed: {e}; trying again");
                    warned = true;
                }
                Err(_) => {}
            }
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(FEED_RETRY_MAX);
        }
    }

    async fn on_message(self: &Arc<Self>, message: LiveMessage) {
        match message {
            LiveMessage::Init { .. } => self.catch_up().await,
            LiveMessage::RunAssigned { run_id, host } if host == self.spec.name => {
                self.take(run_id);
            }
            LiveMessage::RunStopRequested { run_id, host } if host == self.spec.name => {
                let pid = self.runners().get(&run_id).copied().flatten();
                if let Some(pid) = pid {
                    // What ao-stop sends a runner: it asks its CLI to end its turn.
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGUSR1);
                }
            }
            _ => {}
        }
    }

    /// Starts the runs given to this host that it has not started yet.
    async fn catch_up(self: &Arc<Self>) {
        let given = self
            .client
            .list_runs(
                Some(RunStatus::Starting.as_str()),
                Some(&self.spec.name),
                None,
            )
            .await;
        match given {
            Ok(runs) => {
                for run in runs {
                    self.take(run.run_id);
                }
            }
            Err(e) => tracing::warn!("cannot list the runs given to this host: {e}"),
        }
    }

    /// Claims, checks and starts run `run_id` in a task of its own, unless
    /// it is started already.
    fn take(self: &Arc<Self>, run_id: String) {
        if self.runners().insert(run_id.clone(), None).is_some() {
            return;
        }
        let agent = Arc::clone(self);
        tokio::spawn(async move {
            agent.run(&run_id).await;
            agent.runners().remove(&run_id);
            agent.ended.notify_waiters();
        });
    }

    async fn run(&self, run_id: &str) {
        let claim = RunClaim {
            host: self.spec.name.clone(),
            instance: self.spec.instance.clone(),
        };
        let run = match self.client.claim_run(run_id, &claim).await {
            Ok(run) => run,
            // Claimed, but asking for what this release cannot read (a
            // setting of a newer one): the run fails with the reason.
            Err(ClientError::Decode(why)) => {
                let why = format!(
                    "host '{}' cannot read this run ({why}); it may need a newer ao-host",
                    self.spec.name
                );
                tracing::warn!("run {run_id} refused: {why}");
                self.exited(run_id, None, Some(why)).await;
                return;
            }
            // Claimed already (by this host, on an earlier message), or not ours.
            Err(e) => {
                tracing::debug!("run {run_id} not claimed: {e}");
                return;
            }
        };
        let folder = match self
            .spec
            .projects
            .check(&self.spec.name, run.project_dir.as_deref())
        {
            Ok(folder) => folder,
            Err(why) => {
                tracing::info!("run {run_id} refused: {why}");
                self.exited(run_id, None, Some(why)).await;
                return;
            }
        };
        let runner = match spawn::start(&run, &folder, &self.spec.runner).await {
            Ok(runner) => runner,
            Err(e) => {
                let why = format!("host '{}' cannot start the runner: {e}", self.spec.name);
                tracing::warn!("run {run_id}: {why}");
                self.exited(run_id, None, Some(why)).await;
                return;
            }
        };
        self.runners().insert(run_id.to_owned(), runner.pid());
        tracing::info!(
            "run {run_id}: session {} in {} (runner pid {})",
            run.session_name,
            folder.display(),
            runner.pid().unwrap_or_default()
        );
        let ended = runner.wait(run_id).await;
        self.exited(run_id, ended.exit_code, ended.last_line).await;
    }

    /// Tells the session manager that the run's runner ended (retried
    /// while it cannot be reached, for a while).
    async fn exited(&self, run_id: &str, exit_code: Option<i64>, error: Option<String>) {
        let report = RunExited {
            host: self.spec.name.clone(),
            instance: self.spec.instance.clone(),
            exit_code,
            error,
        };
        let backoff = ExponentialBuilder::default()
            .with_min_delay(Duration::from_millis(100))
            .with_max_delay(Duration::from_secs(2))
            .with_max_times(20);
        let sent = (|| self.client.run_exited(run_id, &report))
            .retry(backoff)
            .when(transient)
            .await;
        if let Err(e) = sent {
            tracing::warn!("cannot report the end of run {run_id}'s runner: {e}");
        }
    }

    /// Ends every runner (SIGTERM: each ends its run as interrupted) and
    /// waits, bounded, until they have gone.
    async fn stop_runners(&self) {
        let pids: Vec<u32> = self.runners().values().flatten().copied().collect();
        for pid in pids {
            let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
        }
        let deadline = tokio::time::Instant::now() + STOP_WAIT;
        loop {
            let ended = self.ended.notified();
            if self.runners().is_empty() {
                return;
            }
            if tokio::time::timeout_at(deadline, ended).await.is_err() {
                tracing::warn!(
                    "{} runs did not end within {} s",
                    self.runners().len(),
                    STOP_WAIT.as_secs()
                );
                return;
            }
        }
    }
}

/// Whether a failed request may pass later: no answer, or the server's own trouble.
fn transient(e: &ClientError) -> bool {
    e.is_unreachable() || e.status().is_some_and(|s| s >= 500)
}

/// Registers `spec` (`on_registered` hears of it), then serves until
/// `stop` is cancelled or another process takes the name; on the way out
/// ends its runners and leaves.
pub async fn serve(
    client: SessionClient,
    spec: HostSpec,
    stop: CancellationToken,
    on_registered: impl FnOnce(&Host),
) -> Result<(), HostError> {
    let agent = Arc::new(Agent {
        client,
        spec,
        runners: Mutex::default(),
        ended: Notify::new(),
    });
    let (host, every) = tokio::select! {
        registered = agent.register(REGISTER_WAIT) => registered?,
        () = stop.cancelled() => return Ok(()),
    };
    on_registered(&host);
    let mut beat = tokio::spawn(Arc::clone(&agent).beat(every));
    let follow = tokio::spawn(Arc::clone(&agent).follow());
    let result = tokio::select! {
        () = stop.cancelled() => Ok(()),
        displaced = &mut beat => match displaced {
            Ok(e) => Err(e),
            Err(_) => Ok(()),
        },
    };
    beat.abort();
    follow.abort();
    agent.stop_runners().await;
    if result.is_ok()
        && let Err(e) = agent
            .client
            .leave_host(&agent.spec.name, &agent.spec.instance)
            .await
    {
        tracing::warn!("cannot tell the session manager this host stops: {e}");
    }
    result
}

/// What `claude --version` says, asked once when a host starts.
pub async fn claude_version(program: &std::path::Path) -> Option<String> {
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        tokio::process::Command::new(program)
            .arg("--version")
            .stdin(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .ok()?
    .ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next()?.trim();
    (!line.is_empty()).then(|| line.chars().take(200).collect())
}
