//! What a notification says: the JSON object a hook receives, with one
//! readable line in `text`, made from a stored event and its session.

use std::time::Duration;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::wire::{EventType, Session, parse_timestamp};

/// Events stamped further than this from the server's clock notify nobody:
/// `ao-sync` replaying last week's runs is history, not news. A runner's
/// own posts arrive within a second of their stamp.
pub const RECENT: Duration = Duration::from_secs(10 * 60);

/// Why someone is told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// A run waits for someone: a permission request or a question.
    NeedsInput,
    /// A run ended (its `reason` says how).
    RunCompleted,
}

impl NoticeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NoticeKind::NeedsInput => "needs_input",
            NoticeKind::RunCompleted => "run_completed",
        }
    }
}

/// The fields of a stored event a notification needs; the rest of the body
/// is skipped unread.
#[derive(Deserialize)]
struct Head {
    event_type: EventType,
    #[serde(default)]
    session_name: String,
    timestamp: String,
    reason: Option<String>,
    tool_name: Option<String>,
    request_id: Option<String>,
    /// `permission` or `question`, on a `permission_request`.
    kind: Option<String>,
}

/// A stored event that calls for a notification, before its session is
/// looked up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Candidate {
    pub kind: NoticeKind,
    pub session_id: String,
    pub session_name: String,
    pub reason: Option<String>,
    pub tool_name: Option<String>,
    pub request_id: Option<String>,
    question: bool,
}

impl Candidate {
    /// The notification an event stored just now calls for, if any. Called
    /// on the store's writer thread for every event: bodies that cannot be
    /// of a notifying type are passed over without parsing.
    pub fn of(session_id: &str, body: &str, now: DateTime<Utc>) -> Option<Candidate> {
        if !["permission_request", "run_completed", "session_stop"]
            .iter()
            .any(|word| body.contains(word))
        {
            return None;
        }
        let head: Head = serde_json::from_str(body).ok()?;
        let kind = match head.event_type {
            EventType::PermissionRequest => NoticeKind::NeedsInput,
            EventType::RunCompleted | EventType::SessionStop => NoticeKind::RunCompleted,
            _ => return None,
        };
        let at = parse_timestamp(&head.timestamp).ok()?;
        if (now - at).abs().to_std().ok()? > RECENT {
            tracing::debug!(
                "no {} notification for session '{}': its event is stamped {} (replayed, not news)",
                kind.as_str(),
                head.session_name,
                head.timestamp
            );
            return None;
        }
        Some(Candidate {
            kind,
            session_id: session_id.to_owned(),
            session_name: head.session_name,
            reason: head.reason.filter(|_| kind == NoticeKind::RunCompleted),
            tool_name: head.tool_name.filter(|_| kind == NoticeKind::NeedsInput),
            request_id: head.request_id.filter(|_| kind == NoticeKind::NeedsInput),
            question: head.kind.as_deref() == Some("question"),
        })
    }
}

/// One notification, as the notify command reads it on stdin and the
/// notify URL receives it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Notice {
    pub kind: NoticeKind,
    pub session_name: String,
    pub session_id: String,
    /// `null` for a session stored without one.
    pub project_dir: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_name: Option<String>,
    /// The request waiting for an answer (`ao-approve NAME REQUEST_ID`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// One line for a person, with none of the characters chat services
    /// read as markup or mentions (`& < > @` and back-ticks).
    pub text: String,
}

impl Notice {
    /// The notification of `candidate`, with the session's current name and
    /// project when the session could be read.
    pub fn new(candidate: Candidate, session: Option<&Session>) -> Notice {
        let session_name = session
            .map(|s| s.session_name.clone())
            .unwrap_or(candidate.session_name);
        let project_dir = session.and_then(|s| s.project_dir.clone());
        let what = match candidate.kind {
            NoticeKind::NeedsInput if candidate.question => {
                "needs input: it asks a question".to_owned()
            }
            NoticeKind::NeedsInput => match &candidate.tool_name {
                Some(tool) => format!("needs input: may it use {}?", plain(tool)),
                None => "needs input".to_owned(),
            },
            NoticeKind::RunCompleted => match &candidate.reason {
                Some(reason) => format!("finished: {}", plain(reason)),
                None => "finished".to_owned(),
            },
        };
        let project = project_dir
            .as_deref()
            .and_then(|dir| std::path::Path::new(dir).file_name())
            .map(|name| format!(" ({})", plain(&name.to_string_lossy())))
            .unwrap_or_default();
        Notice {
            kind: candidate.kind,
            text: format!("ao: {} {what}{project}", plain(&session_name)),
            session_name,
            session_id: candidate.session_id,
            project_dir,
            reason: candidate.reason,
            tool_name: candidate.tool_name,
            request_id: candidate.request_id,
        }
    }
}

/// `text` as it may appear in a notification's line: no markup or mention
/// characters, no control characters, at most 80 characters.
fn plain(text: &str) -> String {
    const MAX: usize = 80;
    let kept: String = text
        .chars()
        .filter(|c| !c.is_control() && !matches!(c, '&' | '<' | '>' | '@' | '`'))
        .collect();
    match kept.char_indices().nth(MAX) {
        Some((end, _)) => format!("{}…", &kept[..end]),
        None => kept,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn now() -> DateTime<Utc> {
        parse_timestamp("2025-06-01T12:00:00Z").unwrap()
    }

    fn candidate(event: serde_json::Value) -> Option<Candidate> {
        Candidate::of("s1", &event.to_string(), now())
    }

    #[test]
    fn requests_and_run_ends_notify_other_events_do_not() {
        let request = candidate(json!({"event_type":"permission_request","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T11:59:59Z","tool_name":"Bash",
            "request_id":"r1","kind":"permission","tool_input":{"command":"ls"}}))
        .unwrap();
        assert_eq!(request.kind, NoticeKind::NeedsInput);
        assert_eq!(request.tool_name.as_deref(), Some("Bash"));
        assert_eq!(request.request_id.as_deref(), Some("r1"));
        for end in ["run_completed", "session_stop"] {
            let ended = candidate(
                json!({"event_type":end,"session_id":"s1","session_name":"w1",
                "timestamp":"2025-06-01T12:00:01Z","reason":"error"}),
            )
            .unwrap();
            assert_eq!(ended.kind, NoticeKind::RunCompleted);
            assert_eq!(ended.reason.as_deref(), Some("error"));
        }
        let message = json!({"event_type":"message","session_id":"s1","session_name":"w1",
            "timestamp":"2025-06-01T12:00:00Z","role":"assistant",
            "content":[{"type":"text","text":"run_completed means the run ended"}]});
        assert_eq!(candidate(message), None);
        let decision = json!({"event_type":"permission_decision","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T12:00:00Z","request_id":"permission_request"});
        assert_eq!(candidate(decision), None);
    }

    #[test]
    fn events_far_from_now_are_history() {
        for at in [
            "2025-05-25T12:00:00Z",
            "2025-06-01T11:49:00Z",
            "2025-06-01T12:11:00Z",
        ] {
            let event = json!({"event_type":"run_completed","session_id":"s1",
                "session_name":"w1","timestamp":at,"reason":"completed"});
            assert_eq!(candidate(event), None, "{at}");
        }
        let event = json!({"event_type":"run_completed","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T11:51:00Z","reason":"completed"});
        assert!(candidate(event).is_some());
    }

    #[test]
    fn the_line_reads_well_and_carries_no_markup() {
        let request = candidate(json!({"event_type":"permission_request","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T12:00:00Z","tool_name":"<!channel> @everyone `x` & co"}))
        .unwrap();
        let session: Session = serde_json::from_value(json!({"session_id":"s1",
            "session_name":"worker-1","status":"running","created_at":"2025-06-01T11:00:00Z",
            "project_dir":"/home/me/shop"}))
        .unwrap();
        let notice = Notice::new(request, Some(&session));
        assert_eq!(
            notice.text,
            "ao: worker-1 needs input: may it use !channel everyone x  co? (shop)"
        );
        assert_eq!(notice.session_name, "worker-1");
        let question = candidate(json!({"event_type":"permission_request","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T12:00:00Z","tool_name":"AskUserQuestion",
            "kind":"question"}))
        .unwrap();
        let notice = Notice::new(question, None);
        assert_eq!(notice.text, "ao: w1 needs input: it asks a question");
        assert_eq!(notice.project_dir, None);
        let value = serde_json::to_value(&notice).unwrap();
        assert_eq!(value["kind"], "needs_input");
        assert!(value["project_dir"].is_null() && value.get("reason").is_none());
        let ended = candidate(json!({"event_type":"run_completed","session_id":"s1",
            "session_name":"w1","timestamp":"2025-06-01T12:00:00Z","reason":"completed"}))
        .unwrap();
        assert_eq!(Notice::new(ended, None).text, "ao: w1 finished: completed");
        assert_eq!(plain(&"x".repeat(100)).chars().count(), 81);
    }
}
