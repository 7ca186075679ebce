//! What both engines decide alike about requests a run waits on: how a
//! request's row reads, which decision may be posted for one, whether it is
//! still open to one, and the decision a run's own `permission_decision`
//! records.

use serde_json::Value;

use super::StoreError;
use super::row::StoredRow;
use crate::wire::{
    DecidedBy, Decision, DecisionBody, Event, PendingRequest, RequestKind, RequestRecord,
    RequestStatus,
};

/// The longest decision message taken: the model reads it.
const MAX_MESSAGE: usize = 16 * 1024;

/// A request as its row is read (`SELECT <every request column>, the
/// session's name`, in the engines' order): an unknown kind reads as a
/// permission, an unknown status as closed, an unreadable decision as none.
pub(super) fn record_from_row<R: StoredRow>(row: &R) -> Result<RequestRecord, R::Error> {
    let kind: String = row.column(3)?;
    let status: String = row.column(10)?;
    Ok(RequestRecord {
        request: PendingRequest {
            request_id: row.column(0)?,
            session_id: row.column(1)?,
            session_name: row.column(2)?,
            kind: RequestKind::parse(&kind).unwrap_or(RequestKind::Permission),
            tool_name: row.column(4)?,
            input: json_column(row.column(5)?),
            suggestions: json_column(row.column(6)?),
            tool_use_id: row.column(7)?,
            blocked_path: row.column(8)?,
            created_at: row.column(9)?,
        },
        status: RequestStatus::parse(&status).unwrap_or(RequestStatus::Closed),
        decision: row
            .column::<Option<String>>(11)?
            .and_then(|d| serde_json::from_str(&d).ok()),
    })
}

/// A JSON column as stored (text), `null` when absent or unreadable.
fn json_column(text: Option<String>) -> Value {
    text.and_then(|t| serde_json::from_str(&t).ok())
        .unwrap_or(Value::Null)
}

/// A request of the session that is not stored.
pub(super) fn no_request(session_id: &str, request_id: &str) -> StoreError {
    StoreError::NotFound(format!(
        "session '{session_id}' has no request '{request_id}'"
    ))
}

/// Checks that `body` may decide `record` now (once, and only what fits the
/// request), and stamps who decided; the decision to store.
pub(super) fn decision(
    record: &RequestRecord,
    mut body: DecisionBody,
) -> Result<DecisionBody, StoreError> {
    let request_id = &record.request.request_id;
    match (record.status, &record.decision) {
        (RequestStatus::Pending, _) => {}
        (_, Some(taken)) => {
            return Err(StoreError::Conflict(format!(
                "request '{request_id}' was already decided: {} by {}",
                taken.decision.as_str(),
                taken.decided_by.map_or("someone", DecidedBy::as_str)
            )));
        }
        (_, None) => {
            return Err(StoreError::Conflict(format!(
                "the run of request '{request_id}' ended before anyone answered it"
            )));
        }
    }
    check(&record.request, &body).map_err(StoreError::Invalid)?;
    body.decided_by = Some(body.decided_by.unwrap_or(DecidedBy::Person));
    Ok(body)
}

/// The decision a run's `permission_decision` says it acted on: the one
/// that stands.
pub(super) fn acted_on(event: &Event) -> DecisionBody {
    DecisionBody {
        decision: event.decision.unwrap_or(Decision::Deny),
        message: event.message.clone(),
        always: event.always,
        answers: event.answers.clone(),
        decided_by: event.decided_by,
    }
}

/// What a decision may carry for this request; the message says what is wrong.
fn check(request: &PendingRequest, body: &DecisionBody) -> Result<(), String> {
    if matches!(
        body.decided_by,
        Some(DecidedBy::Policy | DecidedBy::Timeout)
    ) {
        return Err(
            "decided_by must be person or parent (policy and timeout are the run's own)".to_owned(),
        );
    }
    if body.message.as_ref().is_some_and(|m| m.len() > MAX_MESSAGE) {
        return Err(format!("message is longer than {MAX_MESSAGE} bytes"));
    }
    let allow = body.decision == Decision::Allow;
    if body.always == Some(true) {
        if request.kind != RequestKind::Permission || !allow {
            return Err("always goes with allow, for a permission request".to_owned());
        }
        if !request.has_suggestions() {
            return Err(format!(
                "request '{}' has no suggestion to accept always; allow it without always",
                request.request_id
            ));
        }
    }
    match (&body.answers, request.kind) {
        (Some(_), RequestKind::Permission) => {
            Err("answers go with a question; this is a permission request".to_owned())
        }
        (Some(_), RequestKind::Question) if !allow => {
            Err("answers go with allow; a deny answers nothing".to_owned())
        }
        (None, RequestKind::Question) if allow => Err(format!(
            "a question is answered with allow and answers: {{\"<question>\": \"<label>\"}} (questions: {})",
            request.options()
        )),
        (Some(answers), RequestKind::Question) => {
            let questions = request.questions();
            if answers.is_empty() {
                return Err("answers is empty".to_owned());
            }
            for (question, label) in answers {
                if !questions.iter().any(|(q, _)| q == question) {
                    return Err(format!(
                        "'{question}' is not a question of this request (questions: {})",
                        request.options()
                    ));
                }
                if label.trim().is_empty() {
                    return Err(format!("the answer to '{question}' is empty"));
                }
            }
            Ok(())
        }
        _ => Ok(()),
    }
}
