//! Runs left open: a runner that died (SIGKILL, power cut) leaves its last
//! run without a closing `run_completed` line and the API saying `running`.
//! Whoever next holds the session's lock closes the run in the backup
//! (reason `interrupted`) and gets the actions that tell the API.

use crate::backup::{BackupError, BackupLine, LogWriter, RunCompletedLine, SessionFiles, read_log};
use crate::record::{Action, replay};
use crate::wire::{RunEndReason, now_rfc3339};

/// What `close_last_run` found.
#[derive(Debug, Default)]
pub struct Closed {
    /// True when the last run had no closing line and got one now.
    pub was_open: bool,
    /// The last run's actions, closing included (safe to send again).
    pub actions: Vec<Action>,
}

/// The lines of the last run: from its `user_message` line to the end.
fn last_run(lines: &[(u64, Vec<u8>)]) -> &[(u64, Vec<u8>)] {
    let start = lines
        .iter()
        .rposition(|(_, l)| matches!(BackupLine::parse(l), BackupLine::UserMessage(_)));
    start.map_or(&[], |i| &lines[i..])
}

/// Closes the session's last run in the backup if it was left open. Call it
/// only while holding the session's lock (no runner is alive then).
pub fn close_last_run(files: &SessionFiles, legacy: bool) -> Result<Closed, BackupError> {
    let lines = read_log(&files.log_path())?;
    let mut run = last_run(&lines).to_vec();
    if run.is_empty() {
        return Ok(Closed::default());
    }
    let (recorder, _) = replay(files.name().as_str(), legacy, &run);
    let was_open = recorder.run_open();
    if was_open {
        let end = RunCompletedLine {
            timestamp: now_rfc3339(),
            exit_code: None,
            reason: RunEndReason::Interrupted,
            error: Some("the runner stopped before the run finished".to_owned()),
        };
        let line = end.to_line();
        let index = LogWriter::open(&files.log_path())?.append(&line)?;
        run.push((index, line));
    }
    let (_, actions) = replay(files.name().as_str(), legacy, &run);
    Ok(Closed { was_open, actions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::UserMessageLine;
    use crate::name::SessionName;

    fn files(dir: &std::path::Path) -> SessionFiles {
        SessionFiles::new(dir, &SessionName::parse("s").unwrap())
    }

    fn user() -> Vec<u8> {
        UserMessageLine {
            timestamp: "2026-01-01T00:00:00Z".into(),
            content: "p".into(),
            project_dir: "/p".into(),
            resume_session_id: None,
        }
        .to_line()
    }

    #[test]
    fn an_open_run_is_closed_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let mut log = LogWriter::open(&f.log_path()).unwrap();
        log.append(&user()).unwrap();
        log.append(br#"{"type":"system","subtype":"init","session_id":"sid"}"#)
            .unwrap();
        drop(log);
        let closed = close_last_run(&f, false).unwrap();
        assert!(closed.was_open);
        let Some(Action::Event(end)) = closed.actions.last() else {
            panic!()
        };
        assert_eq!(end.reason.as_deref(), Some("interrupted"));
        assert_eq!(end.exit_code, None);
        let again = close_last_run(&f, false).unwrap();
        assert!(!again.was_open);
        assert_eq!(
            again.actions, closed.actions,
            "the same actions, safe to resend"
        );
        assert_eq!(read_log(&f.log_path()).unwrap().len(), 3);
    }

    #[test]
    fn no_log_no_run() {
        let dir = tempfile::tempdir().unwrap();
        let closed = close_last_run(&files(dir.path()), false).unwrap();
        assert!(!closed.was_open && closed.actions.is_empty());
    }
}
