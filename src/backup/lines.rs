//! The lines of a `.jsonl` backup: the CLI's own lines, unchanged, and the
//! lines the runner adds so that the file alone describes every run: its
//! opening, the decisions it passed on to the CLI, and its end.

use serde::{Deserialize, Serialize};

use crate::claude::protocol::{CliLine, parse_value};
use crate::wire::{ChangedFile, DecisionBody, RunEndReason};

/// Opens each run: the prompt and what is needed to replay the run.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct UserMessageLine {
    /// The run's own id, from which its events' ids derive, so that they
    /// survive edits of the file. Lines written before it existed have none;
    /// their events keep ids derived from line positions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub timestamp: String,
    pub content: String,
    pub project_dir: String,
    /// Set for `ao-resume`: the conversation this run continues (the id
    /// given to the CLI's `--resume`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resume_session_id: Option<String>,
    /// The session's identity, when it differs from `resume_session_id`
    /// (a CLI that renamed the conversation on an earlier resume).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session_id: Option<String>,
    /// The agent the run runs, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent_name: Option<String>,
    /// The git worktree the run runs in, and its branch.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worktree: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub branch: Option<String>,
    /// The session whose run started this session.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub parent_session_id: Option<String>,
    /// A fork's first run: the session whose conversation it copies
    /// (`--resume ID --fork-session`); the CLI names the fork's own id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub forked_from: Option<String>,
    /// A fork's first run: what the origin's conversation had spent, which
    /// the CLI counts in the fork's first result (releases that report
    /// sums), so that the fork's own figures can be told apart.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub spent_before: Option<Box<crate::claude::figures::Spent>>,
    /// `ao-new --budget-usd`: dollars the session and its descendants may spend.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub budget_usd: Option<f64>,
}

/// Closes each run: how the CLI ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunCompletedLine {
    pub timestamp: String,
    /// The CLI's exit code; `128 + n` when it died of signal `n`; absent
    /// when the run was recovered after its runner died.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_code: Option<i64>,
    pub reason: RunEndReason,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Before `run_completed`, in a git checkout: what the run changed there
/// (files committed by the run included), when it changed anything.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangesLine {
    pub timestamp: String,
    pub files: Vec<ChangedFile>,
    /// The unified diff, cut at [`crate::wire::MAX_DIFF`] bytes.
    pub diff: String,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub diff_truncated: bool,
    /// In a worktree session: the commit its branch started from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub base: Option<String>,
}

/// A decision the runner passed on to the CLI, for the request (the CLI's
/// `can_use_tool` control request) with the same id: `decision`,
/// `decided_by`, and as they apply `message` (the deny's reason, which the
/// model read, or why it was decided so), `always` and `answers`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PermissionDecisionLine {
    /// The run's id (as on its opening line), when it has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub run_id: Option<String>,
    pub timestamp: String,
    pub request_id: String,
    #[serde(flatten)]
    pub decision: DecisionBody,
}

#[derive(Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum OwnLine {
    UserMessage(UserMessageLine),
    RunCompleted(RunCompletedLine),
    Changes(ChangesLine),
    PermissionDecision(PermissionDecisionLine),
}

/// One backup line, understood.
#[derive(Debug, Clone)]
pub enum BackupLine {
    UserMessage(UserMessageLine),
    RunCompleted(RunCompletedLine),
    Changes(ChangesLine),
    PermissionDecision(PermissionDecisionLine),
    /// A line of the CLI, with its `timestamp` if it has one.
    Cli(CliLine, Option<String>),
    /// Not JSON, or not a line we know: kept, never acted on.
    Unreadable,
}

impl BackupLine {
    /// Reads one line (without its newline).
    pub fn parse(line: &[u8]) -> BackupLine {
        let Ok(value) = serde_json::from_slice::<serde_json::Value>(line) else {
            return BackupLine::Unreadable;
        };
        match value.get("type").and_then(serde_json::Value::as_str) {
            Some("user_message" | "run_completed" | "changes" | "permission_decision") => {
                match OwnLine::deserialize(value) {
                    Ok(OwnLine::UserMessage(m)) => BackupLine::UserMessage(m),
                    Ok(OwnLine::RunCompleted(m)) => BackupLine::RunCompleted(m),
                    Ok(OwnLine::Changes(m)) => BackupLine::Changes(m),
                    Ok(OwnLine::PermissionDecision(m)) => BackupLine::PermissionDecision(m),
                    Err(_) => BackupLine::Unreadable,
                }
            }
            _ => match parse_value(value) {
                Some((cli, stamp)) => BackupLine::Cli(cli, stamp),
                None => BackupLine::Unreadable,
            },
        }
    }

    /// The timestamp the line carries, if any.
    pub fn timestamp(&self) -> Option<&str> {
        match self {
            BackupLine::UserMessage(m) => Some(&m.timestamp),
            BackupLine::RunCompleted(m) => Some(&m.timestamp),
            BackupLine::Changes(m) => Some(&m.timestamp),
            BackupLine::PermissionDecision(m) => Some(&m.timestamp),
            BackupLine::Cli(_, stamp) => stamp.as_deref(),
            BackupLine::Unreadable => None,
        }
    }
}

impl UserMessageLine {
    /// The line as written to the backup (without newline).
    pub fn to_line(&self) -> Vec<u8> {
        to_line(&OwnLine::UserMessage(self.clone()))
    }
}

impl RunCompletedLine {
    /// The line as written to the backup (without newline).
    pub fn to_line(&self) -> Vec<u8> {
        to_line(&OwnLine::RunCompleted(self.clone()))
    }
}

impl ChangesLine {
    /// The line as written to the backup (without newline).
    pub fn to_line(&self) -> Vec<u8> {
        to_line(&OwnLine::Changes(self.clone()))
    }
}

impl PermissionDecisionLine {
    /// The line as written to the backup (without newline).
    pub fn to_line(&self) -> Vec<u8> {
        to_line(&OwnLine::PermissionDecision(self.clone()))
    }
}

fn to_line(line: &OwnLine) -> Vec<u8> {
    // Plain structs of strings and numbers always serialize.
    serde_json::to_vec(line).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_lines_round_trip() {
        let m = UserMessageLine {
            timestamp: "2026-01-01T00:00:00.000Z".into(),
            content: "hi\nthere".into(),
            project_dir: "/p".into(),
            resume_session_id: Some("abc".into()),
            agent_name: Some("reviewer".into()),
            worktree: Some("/p/.agent-orchestrator/worktrees/w".into()),
            branch: Some("ao/w".into()),
            ..UserMessageLine::default()
        };
        let line = m.to_line();
        assert!(line.starts_with(br#"{"type":"user_message""#));
        assert!(!line.contains(&b'\n'));
        assert!(matches!(BackupLine::parse(&line), BackupLine::UserMessage(back) if back == m));
        let c = RunCompletedLine {
            timestamp: "2026-01-01T00:00:01.000Z".into(),
            exit_code: Some(1),
            reason: RunEndReason::Error,
            error: Some("boom".into()),
        };
        assert!(
            matches!(BackupLine::parse(&c.to_line()), BackupLine::RunCompleted(back) if back == c)
        );
        let d = PermissionDecisionLine {
            run_id: Some("r".into()),
            timestamp: "2026-01-01T00:00:02.000Z".into(),
            request_id: "q1".into(),
            decision: crate::wire::DecisionBody {
                decision: crate::wire::Decision::Allow,
                message: None,
                always: None,
                answers: Some([("Which?".to_owned(), "blue".to_owned())].into()),
                decided_by: Some(crate::wire::DecidedBy::Person),
            },
        };
        let line = d.to_line();
        assert!(line.starts_with(br#"{"type":"permission_decision""#));
        assert!(
            matches!(BackupLine::parse(&line), BackupLine::PermissionDecision(back) if back == d)
        );
    }

    #[test]
    fn cli_lines_and_garbage() {
        assert!(matches!(
            BackupLine::parse(br#"{"type":"system","subtype":"init","session_id":"s"}"#),
            BackupLine::Cli(CliLine::System(_), None)
        ));
        let line = BackupLine::parse(br#"{"type":"assistant","timestamp":"2026-01-01T00:00:00Z"}"#);
        assert_eq!(line.timestamp(), Some("2026-01-01T00:00:00Z"));
        assert!(matches!(
            BackupLine::parse(b"not json {"),
            BackupLine::Unreadable
        ));
        assert!(matches!(BackupLine::parse(b""), BackupLine::Unreadable));
    }
}
