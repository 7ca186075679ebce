//! Zero set-up: when the session manager URL is the default loopback
//! address and nothing answers there, start `ao-session-manager` in the
//! background and wait (bounded) until it answers `/health`.

use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::client::SessionClient;
use crate::config::Config;
use crate::paths;

/// How long to wait for a freshly started session manager.
const STARTUP_WAIT: Duration = Duration::from_secs(5);

/// Whether the API can be used for this command.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Availability {
    Up,
    /// Started by us just now; the note says where its log is.
    Started {
        log: PathBuf,
    },
    Down {
        reason: String,
    },
}

impl Availability {
    /// True when the API answered (or answers now).
    pub fn is_up(&self) -> bool {
        !matches!(self, Availability::Down { .. })
    }
}

/// Checks the API, starting a local session manager when allowed.
pub async fn ensure_up(config: &Config, client: &SessionClient) -> Availability {
    let reason = match client.health().await {
        Ok(()) => return Availability::Up,
        Err(e) => e.to_string(),
    };
    if !config.is_default_url() || !config.autostart.value {
        return Availability::Down { reason };
    }
    let log = match start_detached() {
        Ok(log) => log,
        Err(e) => {
            return Availability::Down {
                reason: format!("{reason}; starting ao-session-manager failed: {e}"),
            };
        }
    };
    let deadline = Instant::now() + STARTUP_WAIT;
    while Instant::now() < deadline {
        if client.health().await.is_ok() {
            return Availability::Started { log };
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    Availability::Down {
        reason: format!(
            "{reason}; a session manager was started but did not answer within {}s (see {})",
            STARTUP_WAIT.as_secs(),
            log.display()
        ),
    }
}

/// Starts the server in its own process group, detached from our stdio, its
/// log appended to the data directory. Answers the log's path.
fn start_detached() -> Result<PathBuf, String> {
    use std::os::unix::process::CommandExt;
    let log_path = paths::server_log_path().map_err(|e| e.to_string())?;
    if let Some(dir) = log_path.parent() {
        crate::private::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    }
    let log = crate::private::open_options()
        .create(true)
        .append(true)
        .open(&log_path)
        .map_err(|e| format!("{}: {e}", log_path.display()))?;
    let log_err = log.try_clone().map_err(|e| e.to_string())?;
    Command::new(paths::sibling_program("ao-session-manager"))
        .args(["--host", "127.0.0.1", "--port", "8765"])
        .env_remove("AGENT_ORCHESTRATOR_HOST")
        .env_remove("AGENT_ORCHESTRATOR_PORT")
        .env_remove(crate::config::ENV_PARENT_META)
        .stdin(Stdio::null())
        .stdout(log)
        .stderr(log_err)
        .process_group(0)
        .spawn()
        .map_err(|e| e.to_string())?;
    Ok(log_path)
}
