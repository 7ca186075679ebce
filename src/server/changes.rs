//! What the live feed publishes, as the store hands it over: the store
//! names each committed change and gives it to a [`Publish`] (the live hub),
//! without knowing who listens. Neither side imports the other; both import
//! this.

use crate::wire::{DecisionBody, Host, Run, Session, TextDelta};

/// A change every live client should hear of: committed by the store (on
/// any replica of a shared database), or a stop request for a session's
/// runner. Turned into a message only when some live client is connected.
#[derive(Debug, Clone)]
pub enum Change {
    SessionCreated(Session),
    SessionUpdated(Session),
    SessionDeleted(String),
    /// A stored event: its row id and stored JSON (without the id).
    Event {
        session_id: String,
        id: i64,
        body: String,
    },
    /// A decision taken for a request.
    RequestAnswered {
        session_id: String,
        request_id: String,
        decision: DecisionBody,
    },
    Run(Box<Run>),
    RunAssigned {
        run_id: String,
        host: String,
    },
    RunStopRequested {
        run_id: String,
        host: String,
    },
    Host(Host),
    /// The session's runner, wherever it follows its feed, should stop.
    StopRequested(String),
    /// The session's tree spent its budget: its runner stops its run,
    /// which ends with reason `budget`.
    BudgetStop(String),
    /// Changes may have been missed (a replica lost its link to the
    /// database for a while): clients should read the state again.
    Resync,
    /// Text as the model writes it, posted to another replica: live only,
    /// never stored (the message's event is the record).
    TextDelta {
        session_id: String,
        delta: TextDelta,
    },
}

impl Change {
    /// Whether it changes the session list (which cached copies must follow).
    pub fn changes_sessions(&self) -> bool {
        matches!(
            self,
            Change::SessionCreated(_) | Change::SessionUpdated(_) | Change::SessionDeleted(_)
        )
    }

    /// Whether it may let a queued run go to a host: a run or a host changed.
    pub fn wakes_dispatch(&self) -> bool {
        // A session whose run ended may be owed callbacks.
        matches!(self, Change::Run(_) | Change::Host(_))
            || matches!(self, Change::SessionUpdated(s) if s.status == crate::wire::SessionStatus::Finished)
    }
}

/// Sees every committed change after the live hub (the notifications): it
/// must only hand work on, never wait.
pub type Observer = Box<dyn Fn(&Change) + Send + Sync>;

/// Where the store publishes what it committed, in commit order.
pub trait Publish: Send + Sync + 'static {
    fn publish_change(&self, change: &Change);

    /// A change another replica committed (and answered for): its live
    /// clients are told, but what follows a commit once (a notification)
    /// is that replica's to do.
    fn publish_others(&self, change: &Change) {
        self.publish_change(change);
    }
}

/// Puts the server's `id` first in a stored event body (a JSON object that
/// has no `id` of its own).
pub fn with_id(id: i64, body: &str) -> String {
    let rest = body.strip_prefix('{').unwrap_or(body);
    let sep = if rest.trim_start().starts_with('}') {
        ""
    } else {
        ","
    };
    format!("{{\"id\":{id}{sep}{rest}")
}

#[cfg(test)]
mod tests {
    use super::with_id;

    #[test]
    fn with_id_puts_the_id_first() {
        assert_eq!(with_id(7, r#"{"a":1}"#), r#"{"id":7,"a":1}"#);
        assert_eq!(with_id(7, "{}"), r#"{"id":7}"#);
    }
}
