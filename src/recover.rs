//! Runs left open: a runner that died (SIGKILL, power cut) leaves its last
//! run without a closing `run_completed` line and the API saying `running`.
//! Whoever next holds the session's lock closes the run in the backup
//! (reason `interrupted`) and gets the actions that tell the API.

use crate::backup::{BackupError, BackupLine, LogLines, LogWriter, RunCompletedLine};
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

impl Closed {
    /// What to send the API about the closed run. A session the API knows
    /// is never created again (the original system's server wedges on
    /// that), and a legacy server, which stores repeats twice, gets only
    /// the closing event.
    pub fn for_api(&self, known: bool, legacy: bool) -> Vec<Action> {
        if !known {
            return self.actions.clone();
        }
        let mut events = self
            .actions
            .iter()
            .filter(|a| matches!(a, Action::Event(_)))
            .cloned();
        if legacy {
            events.next_back().into_iter().collect()
        } else {
            events.collect()
        }
    }
}

/// The lines of the last run: from its `user_message` line to the end.
fn last_run(lines: &[(u64, Vec<u8>)]) -> &[(u64, Vec<u8>)] {
    let start = lines
        .iter()
        .rposition(|(_, l)| matches!(BackupLine::parse(l), BackupLine::UserMessage(_)));
    start.map_or(&[], |i| &lines[i..])
}

/// Closes session `name`'s last run in its backup if it was left open:
/// appends the closing line through `log` and to `lines` (the log's lines,
/// as [`LogWriter::open`] read them). Call it only while holding the
/// session's lock (no runner is alive then).
pub fn close_last_run(
    name: &str,
    log: &mut LogWriter,
    lines: &mut LogLines,
    legacy: bool,
) -> Result<Closed, BackupError> {
    let run = last_run(lines);
    if run.is_empty() {
        return Ok(Closed::default());
    }
    let (mut recorder, mut actions) = replay(name, legacy, run);
    let was_open = recorder.run_open();
    if was_open {
        let end = RunCompletedLine {
            timestamp: now_rfc3339(),
            exit_code: None,
            reason: RunEndReason::Interrupted,
            error: Some("the runner stopped before the run finished".to_owned()),
        };
        let line = end.to_line();
        let index = log.append(&line)?;
        actions.extend(recorder.feed(index, &BackupLine::RunCompleted(end)));
        lines.push((index, line));
    }
    Ok(Closed { was_open, actions })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::fixtures::{files, user_line};
    use crate::backup::{SessionFiles, read_log};

    fn close(f: &SessionFiles) -> Closed {
        let (mut log, mut lines) = LogWriter::open(&f.log_path()).unwrap();
        let closed = close_last_run("s", &mut log, &mut lines, false).unwrap();
        assert_eq!(
            lines,
            read_log(&f.log_path()).unwrap(),
            "lines follow the file"
        );
        closed
    }

    #[test]
    fn an_open_run_is_closed_once() {
        let dir = tempfile::tempdir().unwrap();
        let f = files(dir.path());
        let (mut log, _) = LogWriter::open(&f.log_path()).unwrap();
        log.append(&user_line("2026-01-01T00:00:00Z", None))
            .unwrap();
        log.append(br#"{"type":"system","subtype":"init","session_id":"sid"}"#)
            .unwrap();
        drop(log);
        let closed = close(&f);
        assert!(closed.was_open);
        let Some(Action::Event(end)) = closed.actions.last() else {
            panic!()
        };
        assert_eq!(end.reason.as_deref(), Some("interrupted"));
        assert_eq!(end.exit_code, None);
        let again = close(&f);
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
        let closed = close(&files(dir.path()));
        assert!(!closed.was_open && closed.actions.is_empty());
    }
}
