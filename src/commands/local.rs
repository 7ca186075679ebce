//! What the backup files say about a session's last run, and the closing of
//! a run whose runner died. The runner holds `<name>.lock` for the whole
//! run and the kernel drops it when the runner dies, so a free lock on an
//! open run means the run will never end by itself.

use crate::backup::{
    BackupError, BackupLine, LockState, LogWriter, RunCompletedLine, SessionFiles, read_log,
};
use crate::claude::protocol::{CliLine, ResultLine};
use crate::recover::{Closed, close_last_run};
use crate::report::apply;
use crate::wire::{EventType, RunEndReason, StoredEvent};

use serde::Serialize;

use super::Ctx;

/// The last run of a session as its `.jsonl` records it.
#[derive(Debug, Default)]
pub struct LastRun {
    /// Begun (`user_message`) and not closed (`run_completed`).
    pub open: bool,
    /// The last `result` line of the run.
    pub result: Option<ResultLine>,
    /// The closing line, once the run ended.
    pub end: Option<RunCompletedLine>,
}

/// A run's answer: its text and, with an output schema, the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub text: String,
    pub structured: Option<serde_json::Value>,
}

impl From<&str> for Answer {
    fn from(text: &str) -> Self {
        Answer {
            text: text.to_owned(),
            structured: None,
        }
    }
}

/// How a session's last run ended, as far as `ao-get-result` cares.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RunOutcome {
    /// The run's answer.
    Answer(Answer),
    /// The run failed; why, in one line.
    Failed(String),
    /// The run was stopped before it answered.
    Interrupted,
    /// The run was stopped on request (`ao-stop`) before it answered.
    Stopped,
    /// No run ever answered.
    NoResult,
}

impl LastRun {
    /// Reads the last run: the lines from the last `user_message` on, each
    /// parsed once, walking back from the end of the file.
    pub fn read(files: &SessionFiles) -> Result<LastRun, BackupError> {
        Ok(LastRun::from_lines(&read_log(&files.log_path())?))
    }

    /// The last run of a log's lines.
    pub fn from_lines(lines: &[(u64, Vec<u8>)]) -> LastRun {
        let mut run = Vec::new();
        for (_, raw) in lines.iter().rev() {
            let line = BackupLine::parse(raw);
            let start = matches!(line, BackupLine::UserMessage(_));
            run.push(line);
            if start {
                break;
            }
        }
        let mut last = LastRun::default();
        for line in run.into_iter().rev() {
            match line {
                BackupLine::UserMessage(_) => last.open = true,
                BackupLine::Cli(CliLine::Result(result), _) => last.result = Some(*result),
                BackupLine::RunCompleted(end) => {
                    last.open = false;
                    last.end = Some(end);
                }
                BackupLine::Cli(..)
                | BackupLine::Changes(_)
                | BackupLine::PermissionDecision(_)
                | BackupLine::Unreadable => {}
            }
        }
        last
    }

    /// How the run ended. An error result (the CLI said `is_error`) and a
    /// run closed with reason `error` are failures, even with text.
    pub fn outcome(&self) -> RunOutcome {
        // A stopped turn ends with an error result of its own; it is no failure.
        if self
            .end
            .as_ref()
            .is_some_and(|e| e.reason == RunEndReason::Stopped)
        {
            return RunOutcome::Stopped;
        }
        if let Some(result) = self.result.as_ref().filter(|r| r.is_error) {
            return RunOutcome::Failed(result.error_text());
        }
        if let Some(end) = self
            .end
            .as_ref()
            .filter(|e| matches!(e.reason, RunEndReason::Error | RunEndReason::Budget))
        {
            return RunOutcome::Failed(end_error(end.error.as_deref(), end.exit_code));
        }
        if let Some(result) = &self.result
            && let Some(text) = &result.result
        {
            return RunOutcome::Answer(Answer {
                text: text.clone(),
                structured: result.structured_output.clone(),
            });
        }
        match self.end.as_ref().map(|e| e.reason) {
            Some(RunEndReason::Interrupted) => RunOutcome::Interrupted,
            _ => RunOutcome::NoResult,
        }
    }
}

/// How a run ended, as `ao-wait` and `ao-stop` report it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RunEnd {
    /// `completed`, `error`, `budget`, `interrupted` or `stopped`.
    pub status: String,
    /// The reason its closing record gives, as recorded.
    pub reason: Option<String>,
    /// The CLI's exit code as the closing record gives it (1 after an
    /// interrupt we asked for; 128 + N when signal N killed it).
    pub exit_code: Option<i64>,
    /// What the runner (`ao-new`, `ao-resume`) exited with, or would have:
    /// 0 completed, 1 error, 143 stopped, 130 / 143 interrupted by SIGINT /
    /// SIGTERM; `None` while running, or when the record cannot tell (a
    /// runner that was killed).
    pub runner_exit_code: Option<i64>,
    /// The answer of a completed run (its JSON document, with an output schema).
    pub result: Option<String>,
    /// What went wrong, for a run that did not complete.
    pub error: Option<String>,
}

impl RunEnd {
    fn new(outcome: RunOutcome, reason: Option<String>, exit_code: Option<i64>) -> RunEnd {
        let (status, result, error) = match outcome {
            RunOutcome::Answer(answer) => {
                let text = answer.structured.map_or(answer.text, |doc| doc.to_string());
                let status = reason.clone().unwrap_or_else(|| "completed".to_owned());
                (status, Some(text), None)
            }
            // A run that ran out of money says so.
            RunOutcome::Failed(error) => (
                reason
                    .clone()
                    .filter(|r| r == "budget")
                    .unwrap_or_else(|| "error".to_owned()),
                None,
                Some(error),
            ),
            RunOutcome::Interrupted => ("interrupted".to_owned(), None, None),
            RunOutcome::Stopped => ("stopped".to_owned(), None, None),
            RunOutcome::NoResult => (
                reason.clone().unwrap_or_else(|| "error".to_owned()),
                None,
                Some("the run produced no result".to_owned()),
            ),
        };
        RunEnd {
            runner_exit_code: runner_exit_code(&status, exit_code),
            status,
            reason,
            exit_code,
            result,
            error,
        }
    }

    /// A run that had not ended when the wait did.
    pub fn running() -> RunEnd {
        RunEnd {
            status: "running".to_owned(),
            reason: None,
            exit_code: None,
            runner_exit_code: None,
            result: None,
            error: None,
        }
    }

    /// A run that waits for someone to answer a request (it has not ended).
    pub fn needs_input() -> RunEnd {
        RunEnd {
            status: "needs_input".to_owned(),
            ..RunEnd::running()
        }
    }

    /// The end of the last run the backup records.
    pub fn from_last_run(last: &LastRun) -> RunEnd {
        let reason = last.end.as_ref().map(|e| e.reason.as_str().to_owned());
        RunEnd::new(
            last.outcome(),
            reason,
            last.end.as_ref().and_then(|e| e.exit_code),
        )
    }

    /// The end of the last run the API's events record.
    pub fn from_events(events: &[StoredEvent]) -> RunEnd {
        let end = events.iter().rev().map(|s| &s.event).find(|e| {
            matches!(
                e.event_type,
                EventType::RunCompleted | EventType::SessionStop
            )
        });
        RunEnd::new(
            outcome_from_events(events),
            end.and_then(|e| e.reason.clone()),
            end.and_then(|e| e.exit_code),
        )
    }

    /// True for a run that answered.
    pub fn completed(&self) -> bool {
        self.status == "completed"
    }
}

/// The runner's exit code for a run that ended with `status`, the CLI
/// having exited with `cli`. An interrupted runner passed its signal on to
/// the CLI, which died of it (128 + N) unless it chose its own exit.
fn runner_exit_code(status: &str, cli: Option<i64>) -> Option<i64> {
    use crate::diag::exit;
    match status {
        "completed" => Some(exit::OK.into()),
        "error" | "budget" => Some(exit::FAILED.into()),
        "stopped" => Some(exit::SIGTERM.into()),
        "interrupted" => cli.filter(|c| [exit::SIGINT, exit::SIGTERM].map(i64::from).contains(c)),
        _ => None,
    }
}

/// The same judgement from the API's events, for a session whose backups
/// are elsewhere. A run starts at `run_start` (or, for legacy senders that
/// have none, at the first event after the previous run's end).
pub fn outcome_from_events(events: &[StoredEvent]) -> RunOutcome {
    let mut answer: Option<Answer> = None;
    let mut end: Option<&crate::wire::Event> = None;
    for stored in events {
        let event = &stored.event;
        let ends = matches!(
            event.event_type,
            EventType::RunCompleted | EventType::SessionStop
        );
        let starts = matches!(
            event.event_type,
            EventType::RunStart | EventType::SessionStart
        );
        if starts || (end.is_some() && !ends) {
            answer = None;
            end = None;
        }
        if ends {
            end = Some(event);
        } else if event.is_answer() {
            answer = Some(Answer {
                text: event.text(),
                structured: event.structured_output.clone(),
            });
        }
    }
    let reason = end.and_then(|e| e.reason.as_deref());
    if let (Some(e), Some("error" | "budget")) = (end, reason) {
        return RunOutcome::Failed(end_error(e.error.as_deref(), e.exit_code));
    }
    match (answer, reason) {
        (Some(answer), _) => RunOutcome::Answer(answer),
        (None, Some("interrupted")) => RunOutcome::Interrupted,
        (None, Some("stopped")) => RunOutcome::Stopped,
        (None, _) => RunOutcome::NoResult,
    }
}

fn end_error(error: Option<&str>, exit_code: Option<i64>) -> String {
    match (error.filter(|e| !e.trim().is_empty()), exit_code) {
        (Some(error), _) => error.to_owned(),
        (None, Some(code)) => format!("claude exited with code {code}"),
        (None, None) => "no reason was recorded".to_owned(),
    }
}

/// The backups' verdict on a session, after closing a dead run.
#[derive(Debug)]
pub enum Settled {
    /// A runner holds the lock.
    Running,
    /// No runner is alive. `closed` is set when this process took the lock
    /// to close the last run; its actions tell the API the same.
    Done {
        last: Box<LastRun>,
        closed: Option<Closed>,
    },
}

/// Decides whether the session is running, closing its last run first when
/// the run is open (or `api_running` says the API thinks so) and its
/// runner is gone.
pub fn settle(
    files: &SessionFiles,
    legacy: bool,
    api_running: bool,
) -> Result<Settled, BackupError> {
    if let LockState::Held(_) = files.lock_state()? {
        return Ok(Settled::Running);
    }
    let last = LastRun::read(files)?;
    if !last.open && !api_running {
        return Ok(Settled::Done {
            last: Box::new(last),
            closed: None,
        });
    }
    let Ok(mut lock) = files.try_lock()? else {
        // A runner took the lock a moment ago: a new run has begun.
        return Ok(Settled::Running);
    };
    lock.end_left_behind();
    // Read again under the lock: a run may have ended in between.
    let (mut log, mut lines) = LogWriter::open(&files.log_path())?;
    let closed = close_last_run(files.name().as_str(), &mut log, &mut lines, legacy)?;
    let last = LastRun::from_lines(&lines);
    drop(lock);
    Ok(Settled::Done {
        last: Box::new(last),
        closed: Some(closed),
    })
}

/// Sends a recovered run's actions to the API in order. Recovery has
/// already happened in the backup, so a failure here costs one warning
/// line and nothing else (`ao-sync` can send them later).
pub async fn tell_api(ctx: &Ctx, name: &str, closed: &Closed) {
    let known = match closed.actions.first() {
        Some(action) => ctx.client.get_session(action.session_id()).await.is_ok(),
        None => return,
    };
    for action in &closed.for_api(known, ctx.legacy()) {
        if let Err(e) = apply(&ctx.client, action).await {
            ctx.diag.warn(format!(
                "closed the interrupted run of '{name}' in its backup, but could not tell the session manager ({e}); `ao-sync {name}` sends it later"
            ));
            return;
        }
    }
}

/// Resolves once no runner holds the session's lock. The kernel wakes a
/// plain thread blocked on the lock (a blocking task would hold the runtime
/// at exit), so nothing is polled.
pub async fn lock_freed(files: &SessionFiles) -> Result<(), BackupError> {
    let files = files.clone();
    let (tx, rx) = tokio::sync::oneshot::channel();
    std::thread::spawn(move || {
        let _ = tx.send(files.wait_free());
    });
    // A thread that could not report (it cannot panic) leaves the lock as it was.
    rx.await.unwrap_or(Ok(()))
}

/// How the backup's last run ended, once its runner is gone (a run left
/// open by a runner that died is closed here, and the API told).
pub async fn settled_end(
    ctx: &Ctx,
    name: &crate::name::SessionName,
    files: &SessionFiles,
) -> Result<RunEnd, super::CommandError> {
    match settle(files, ctx.legacy(), false)? {
        Settled::Done { last, closed } => {
            if let Some(closed) = closed.filter(|c| c.was_open) {
                tell_api(ctx, name.as_str(), &closed).await;
            }
            Ok(RunEnd::from_last_run(&last))
        }
        // A new run began at once; the one waited for is over all the same.
        Settled::Running => Ok(RunEnd::from_last_run(&LastRun::read(files)?)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backup::fixtures::{end_line, files, user_line};
    use crate::wire::{ContentBlock, Event, Role};

    fn user() -> Vec<u8> {
        user_line("2026-01-01T00:00:00Z", None)
    }

    fn end(reason: RunEndReason, error: Option<&str>) -> Vec<u8> {
        end_line("2026-01-01T00:00:01Z", Some(1), reason, error)
    }

    fn result(text: &str, is_error: bool) -> Vec<u8> {
        serde_json::json!({"type": "result", "subtype": "success", "is_error": is_error, "result": text, "session_id": "sid"})
            .to_string()
            .into_bytes()
    }

    fn write(dir: &std::path::Path, lines: &[Vec<u8>]) -> SessionFiles {
        let f = files(dir);
        f.ensure_dir().unwrap();
        let (mut log, _) = LogWriter::open(&f.log_path()).unwrap();
        for line in lines {
            log.append(line).unwrap();
        }
        f
    }

    #[test]
    fn only_the_last_run_counts() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            &[
                user(),
                result("first", false),
                end(RunEndReason::Completed, None),
                user(),
                end(RunEndReason::Error, Some("claude exited with code 2")),
            ],
        );
        let last = LastRun::read(&f).unwrap();
        assert!(!last.open);
        assert_eq!(
            last.outcome(),
            RunOutcome::Failed("claude exited with code 2".into())
        );
    }

    #[test]
    fn an_error_result_is_a_failure_and_a_good_one_an_answer() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            &[
                user(),
                result("API Error: 400", true),
                end(RunEndReason::Error, None),
            ],
        );
        assert_eq!(
            LastRun::read(&f).unwrap().outcome(),
            RunOutcome::Failed("API Error: 400".into())
        );
        let dir = tempfile::tempdir().unwrap();
        let f = write(
            dir.path(),
            &[
                user(),
                result("4", false),
                end(RunEndReason::Completed, None),
            ],
        );
        assert_eq!(
            LastRun::read(&f).unwrap().outcome(),
            RunOutcome::Answer("4".into())
        );
    }

    #[test]
    fn a_dead_open_run_is_closed_as_interrupted() {
        let dir = tempfile::tempdir().unwrap();
        let f = write(dir.path(), &[user()]);
        assert!(LastRun::read(&f).unwrap().open);
        let Settled::Done { last, closed } = settle(&f, false, false).unwrap() else {
            panic!("nobody holds the lock")
        };
        assert!(closed.unwrap().was_open);
        assert_eq!(last.outcome(), RunOutcome::Interrupted);
        let held = f.try_lock().unwrap().ok().unwrap();
        assert!(matches!(settle(&f, false, true).unwrap(), Settled::Running));
        drop(held);
    }

    #[test]
    fn no_log_no_result() {
        let dir = tempfile::tempdir().unwrap();
        let last = LastRun::read(&files(dir.path())).unwrap();
        assert!(!last.open);
        assert_eq!(last.outcome(), RunOutcome::NoResult);
    }

    fn stored(id: i64, event_type: EventType, f: impl FnOnce(&mut Event)) -> StoredEvent {
        let mut event = Event::new(event_type, "sid", "s", "2024-01-01T00:00:00Z");
        f(&mut event);
        StoredEvent { id, event }
    }

    fn said(text: &str) -> impl FnOnce(&mut Event) {
        let text = text.to_owned();
        move |e| {
            e.role = Some(Role::Assistant);
            e.content = Some(vec![ContentBlock::text(text)]);
        }
    }

    #[test]
    fn events_judge_the_last_run() {
        let ok = |e: &mut Event| e.reason = Some("completed".into());
        // The seeds' verification sequence: no run_start, legacy stop.
        let events = vec![
            stored(1, EventType::Message, said("Test result")),
            stored(2, EventType::SessionStop, ok),
        ];
        assert_eq!(
            outcome_from_events(&events),
            RunOutcome::Answer("Test result".into())
        );
        let events = vec![
            stored(1, EventType::RunStart, |_| {}),
            stored(2, EventType::Message, said("old")),
            stored(3, EventType::RunCompleted, ok),
            stored(4, EventType::RunStart, |_| {}),
            stored(5, EventType::RunCompleted, |e| {
                e.reason = Some("error".into());
                e.error = Some("boom".into());
            }),
        ];
        assert_eq!(
            outcome_from_events(&events),
            RunOutcome::Failed("boom".into())
        );
        let events = vec![
            stored(1, EventType::Message, said("old")),
            stored(2, EventType::SessionStop, ok),
            stored(3, EventType::PostTool, |e| {
                e.tool_name = Some("Bash".into())
            }),
            stored(4, EventType::SessionStop, |e| {
                e.reason = Some("interrupted".into())
            }),
        ];
        assert_eq!(outcome_from_events(&events), RunOutcome::Interrupted);
        assert_eq!(outcome_from_events(&[]), RunOutcome::NoResult);
    }
}
