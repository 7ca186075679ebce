//! Runs launched through the API (`/runs`) and the hosts that run them
//! (`/hosts`): what a caller asks for, what it is told, and what a host
//! says when it registers, beats, claims a run and reports its runner's exit.

use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

/// Where a launched run is. `queued`, `starting` and `running` are open;
/// the others are final.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum RunStatus {
    /// Waiting for a host with free capacity.
    Queued,
    /// Given to a host, whose runner has not begun the conversation yet.
    Starting,
    Running,
    Completed,
    Error,
    Stopped,
    /// Its runner or its host went away before the run ended.
    Interrupted,
    /// Its runner refused or failed before the conversation began (the
    /// run's `error` is the runner's line), or no host took it in time.
    FailedToStart,
}

impl RunStatus {
    pub const ALL: [RunStatus; 8] = [
        RunStatus::Queued,
        RunStatus::Starting,
        RunStatus::Running,
        RunStatus::Completed,
        RunStatus::Error,
        RunStatus::Stopped,
        RunStatus::Interrupted,
        RunStatus::FailedToStart,
    ];

    /// The name stored and sent.
    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Queued => "queued",
            RunStatus::Starting => "starting",
            RunStatus::Running => "running",
            RunStatus::Completed => "completed",
            RunStatus::Error => "error",
            RunStatus::Stopped => "stopped",
            RunStatus::Interrupted => "interrupted",
            RunStatus::FailedToStart => "failed_to_start",
        }
    }

    /// Parses a stored or given name.
    pub fn parse(text: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|s| s.as_str() == text)
    }

    /// True while the run may still change.
    pub fn is_open(self) -> bool {
        matches!(
            self,
            RunStatus::Queued | RunStatus::Starting | RunStatus::Running
        )
    }

    /// The final status of a run that ended with `reason` (`run_completed`).
    pub fn of_reason(reason: Option<&str>) -> RunStatus {
        match reason {
            Some("completed") => RunStatus::Completed,
            Some("stopped") => RunStatus::Stopped,
            Some("interrupted") => RunStatus::Interrupted,
            _ => RunStatus::Error,
        }
    }
}

/// The settings a run may be given through the API: the per-run flags of
/// `ao-new` that take a value. Never a command line: no MCP servers, no
/// CLI path, no extra arguments (unknown fields are refused).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LaunchSettings {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    /// The only built-in tools offered (`[]`: none).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub allowed_tools: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub disallowed_tools: Option<Vec<String>>,
    /// A Claude Code permission mode, e.g. `bypassPermissions`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub permission_mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_turns: Option<u32>,
    /// Dollars the run may spend (the CLI's `--max-budget-usd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_budget_usd: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt: Option<String>,
    /// `append` (the default) or `replace`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_prompt_mode: Option<String>,
    /// A JSON Schema object the answer must follow.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub output_schema: Option<Value>,
    /// The session that started this one (`ao-new --parent`, or the run
    /// it was started from): the child is in its tree and its budgets.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    /// Resume the parent with this run's result when it ends (`--callback`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub callback: bool,
    /// A budget for the session and its descendants (`--budget-usd`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

impl LaunchSettings {
    /// True when nothing is set.
    pub fn is_empty(&self) -> bool {
        *self == LaunchSettings::default()
    }
}

/// Body of `POST /runs`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunCreate {
    pub session_name: String,
    pub prompt: String,
    /// The folder on the host to run in (a new session needs one); a
    /// resume runs where its session lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project_dir: Option<String>,
    /// Continue the session `session_name` instead of starting it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub resume: bool,
    /// An agent defined on the host.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Run in a git worktree of its own (`ao-new --worktree`).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub worktree: bool,
    /// With `worktree`: the commit the branch starts from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The host to run on.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub host: Option<String>,
    /// Without `host`: every label a host must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<LaunchSettings>,
}

/// A run launched through the API. Its `run_id` is the run's id
/// everywhere: in its backup's opening line and on its events.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Run {
    pub run_id: String,
    pub status: RunStatus,
    pub session_name: String,
    pub project_dir: Option<String>,
    #[serde(default)]
    pub resume: bool,
    pub agent: Option<String>,
    #[serde(default)]
    pub worktree: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
    /// The host it was given to (while queued: the one asked for, if any).
    pub host: Option<String>,
    /// The labels asked for.
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub settings: Option<LaunchSettings>,
    /// The session, once its runner began the conversation.
    pub session_id: Option<String>,
    /// While queued: its place in the queue (1 = next).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<u64>,
    /// Why it failed, in one line (the runner's own line when it failed to start).
    pub error: Option<String>,
    /// The runner's exit code, when its host reported it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub runner_exit_code: Option<i64>,
    pub created_at: String,
    pub started_at: Option<String>,
    pub ended_at: Option<String>,
    /// The prompt: in `GET /runs/{run_id}` and a host's claim, not in lists.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub prompt: Option<String>,
}

/// `POST /runs`, `GET /runs/{run_id}` and the host routes on one run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunAnswer {
    pub run: Run,
}

/// `GET /runs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct RunsAnswer {
    pub runs: Vec<Run>,
}

/// A machine that runs sessions: the session manager's own (`embedded`)
/// or an `ao-host`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct Host {
    pub name: String,
    pub labels: Vec<String>,
    /// The folders it runs sessions in; empty for the session manager's
    /// own host, which runs in any folder of its machine.
    pub projects: Vec<String>,
    /// Runs it takes at once.
    pub capacity: u32,
    /// Its runs starting or running now.
    pub running: u32,
    pub claude_version: Option<String>,
    pub last_seen: String,
    pub online: bool,
    /// The session manager's own host (`--no-local-runs` turns it off).
    #[serde(default)]
    pub embedded: bool,
}

/// `GET /hosts`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct HostsAnswer {
    pub hosts: Vec<Host>,
}

/// Body of `POST /hosts`: a host says who it is and what it runs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostRegister {
    pub name: String,
    /// This process of the host: a host started again registers anew.
    pub instance: String,
    #[serde(default)]
    pub labels: Vec<String>,
    #[serde(default)]
    pub projects: Vec<String>,
    pub capacity: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub claude_version: Option<String>,
}

/// `POST /hosts` and `POST /hosts/{name}/heartbeat`: the host as stored,
/// and how often it must beat to stay online.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct HostAnswer {
    pub host: Host,
    pub heartbeat_seconds: f64,
}

/// Body of `POST /hosts/{name}/heartbeat`, and of a host's claim.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct HostBeat {
    pub instance: String,
}

/// Body of `POST /runs/{run_id}/claim`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunClaim {
    pub host: String,
    pub instance: String,
}

/// Body of `POST /runs/{run_id}/exited`: the runner ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RunExited {
    pub host: String,
    pub instance: String,
    /// `None` when it was killed by a signal.
    #[serde(default)]
    pub exit_code: Option<i64>,
    /// Its last line on stderr.
    #[serde(default)]
    pub error: Option<String>,
}

/// The longest host name or label.
pub const MAX_HOST_NAME: usize = 64;

/// Checks a host name or a label: 1-64 letters, digits, '.', '-' or '_',
/// not starting with '.' or '-' (it appears in URLs and on command lines).
pub fn check_host_name(field: &str, value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= MAX_HOST_NAME
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !value.starts_with(['.', '-']);
    if ok {
        Ok(())
    } else {
        Err(format!(
            "{field} '{value}' must be 1-{MAX_HOST_NAME} letters, digits, '.', '-' or '_', not starting with '.' or '-'"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn host_names_are_checked() {
        for ok in ["gpu-1", "build.box", "a_b", "M1"] {
            assert!(check_host_name("host", ok).is_ok(), "{ok}");
        }
        for bad in ["", "-x", ".x", "a/b", "a b", &"x".repeat(65)] {
            assert!(check_host_name("host", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn statuses_round_trip_and_reasons_map() {
        for status in RunStatus::ALL {
            assert_eq!(RunStatus::parse(status.as_str()), Some(status));
            let json = serde_json::to_string(&status).unwrap();
            assert_eq!(json, format!("\"{}\"", status.as_str()));
        }
        assert_eq!(RunStatus::of_reason(Some("stopped")), RunStatus::Stopped);
        assert_eq!(RunStatus::of_reason(None), RunStatus::Error);
        assert!(RunStatus::Starting.is_open() && !RunStatus::FailedToStart.is_open());
    }

    #[test]
    fn a_command_line_is_no_setting() {
        let refused = serde_json::from_str::<RunCreate>(
            r#"{"session_name":"a","prompt":"p","settings":{"mcp_config":{"mcpServers":{}}}}"#,
        );
        assert!(refused.is_err());
        let refused =
            serde_json::from_str::<RunCreate>(r#"{"session_name":"a","prompt":"p","command":"x"}"#);
        assert!(refused.is_err());
    }
}
