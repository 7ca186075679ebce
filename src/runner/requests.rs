//! The requests a run's CLI waits on (`can_use_tool`: a tool call that needs
//! permission, or a question) and who decides them: the run's policy at once
//! (`--on-permission allow|deny`, a session manager nobody can reach), else
//! a person or the parent agent through the session manager, else the
//! timeout (`--permission-timeout`). A stop, or the run's end, denies what
//! is left.

use std::collections::HashMap;
use std::time::Duration;

use tokio::time::Instant;

use crate::agents::settings::{DEFAULT_PERMISSION_TIMEOUT, OnPermission, PermissionMode};
use crate::claude::protocol::ToolPermission;
use crate::wire::{DecidedBy, Decision, DecisionBody, RequestKind};

/// How a run's requests are decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Policy {
    pub on: OnPermission,
    /// `None`: wait for ever.
    pub timeout: Option<Duration>,
    /// Whether anyone can answer: the session manager was reachable when
    /// the run started (its feed brings the answers).
    pub reachable: bool,
}

impl Policy {
    /// The policy of a run with these settings. A run that bypasses
    /// permissions is not asked; should its CLI ask all the same, it allows.
    pub fn new(
        mode: PermissionMode,
        on: Option<OnPermission>,
        timeout_secs: Option<u64>,
        reachable: bool,
    ) -> Policy {
        let on = match (mode, on) {
            (PermissionMode::BypassPermissions, None) => OnPermission::Allow,
            (_, on) => on.unwrap_or_default(),
        };
        let secs = timeout_secs.unwrap_or(DEFAULT_PERMISSION_TIMEOUT);
        Policy {
            on,
            timeout: (secs > 0).then(|| Duration::from_secs(secs)),
            reachable,
        }
    }

    /// The decision taken at once for a request of `kind`, if the run does
    /// not wait for one.
    fn at_once(&self, kind: RequestKind) -> Option<DecisionBody> {
        let deny = |message: String| Some(policy(Decision::Deny, message));
        match (self.on, kind) {
            (OnPermission::Allow, RequestKind::Permission) => Some(policy(
                Decision::Allow,
                "allowed by the run's policy (--on-permission allow)".to_owned(),
            )),
            (OnPermission::Deny, RequestKind::Permission) => deny(
                "Denied by the run's policy (--on-permission deny): this run may not use this tool. Go on without it."
                    .to_owned(),
            ),
            (OnPermission::Allow | OnPermission::Deny, RequestKind::Question) => deny(format!(
                "Nobody is there to answer questions in this run (--on-permission {}). Decide yourself and go on.",
                self.on.as_str()
            )),
            (OnPermission::Ask, _) if !self.reachable => deny(
                "Denied: nobody can answer (the session manager could not be reached when the run started)."
                    .to_owned(),
            ),
            (OnPermission::Ask, _) => None,
        }
    }
}

/// A decision of the run itself.
fn policy(decision: Decision, message: String) -> DecisionBody {
    DecisionBody {
        decision,
        message: Some(message),
        always: None,
        answers: None,
        decided_by: Some(DecidedBy::Policy),
    }
}

/// What a stop (`ao-stop`, the API) answers to what is pending.
pub fn stopped() -> DecisionBody {
    policy(Decision::Deny, "Denied: the run was stopped.".to_owned())
}

/// What is recorded for a request still pending when the run ended.
pub fn run_ended() -> DecisionBody {
    policy(
        Decision::Deny,
        "the run ended before anyone answered".to_owned(),
    )
}

/// One request the CLI waits on.
pub struct Pending {
    pub request: ToolPermission,
    deadline: Option<Instant>,
}

/// The requests the CLI waits on, by request id.
pub struct Waiting {
    policy: Policy,
    pending: HashMap<String, Pending>,
}

impl Waiting {
    pub fn new(policy: Policy) -> Waiting {
        Waiting {
            policy,
            pending: HashMap::new(),
        }
    }

    /// A new request: the decision to send at once, or `None` when it now
    /// waits for one.
    pub fn arrive(&mut self, request_id: &str, request: ToolPermission) -> Option<DecisionBody> {
        if let Some(decision) = self.policy.at_once(request.kind()) {
            return Some(decision);
        }
        let deadline = self.policy.timeout.map(|t| Instant::now() + t);
        self.pending
            .insert(request_id.to_owned(), Pending { request, deadline });
        None
    }

    /// The request `request_id`, if it still waits: it waits no more.
    pub fn take(&mut self, request_id: &str) -> Option<ToolPermission> {
        self.pending.remove(request_id).map(|p| p.request)
    }

    /// The ids of the requests that wait.
    pub fn ids(&self) -> Vec<String> {
        self.pending.keys().cloned().collect()
    }

    /// When the next request runs out of time, if one can.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().filter_map(|p| p.deadline).min()
    }

    /// The requests whose time has run out, with the timeout's decision.
    pub fn expired(&mut self, now: Instant) -> Vec<(String, ToolPermission, DecisionBody)> {
        let ids: Vec<String> = self
            .pending
            .iter()
            .filter(|(_, p)| p.deadline.is_some_and(|d| d <= now))
            .map(|(id, _)| id.clone())
            .collect();
        let secs = self.policy.timeout.map_or(0, |t| t.as_secs());
        ids.into_iter()
            .filter_map(|id| {
                let request = self.take(&id)?;
                let decision = DecisionBody {
                    decision: Decision::Deny,
                    message: Some(format!(
                        "Denied: nobody answered within {secs} s (--permission-timeout). Go on without it, or say what you need."
                    )),
                    always: None,
                    answers: None,
                    decided_by: Some(DecidedBy::Timeout),
                };
                Some((id, request, decision))
            })
            .collect()
    }

    /// Every request that still waits, in no set order; none waits after.
    pub fn drain(&mut self) -> Vec<(String, ToolPermission)> {
        self.pending
            .drain()
            .map(|(id, p)| (id, p.request))
            .collect()
    }
}

/// The one line on stderr that says what the run waits for and how to answer.
pub fn waiting_note(name: &str, request_id: &str, request: &ToolPermission) -> String {
    let what = match request.kind() {
        RequestKind::Question => {
            let questions: Vec<&str> = request.input["questions"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|q| q["question"].as_str())
                .collect();
            format!("a question ({})", questions.join("; "))
        }
        RequestKind::Permission => {
            let detail = ["command", "file_path", "path", "url"]
                .iter()
                .find_map(|k| request.input[*k].as_str())
                .map(|d| format!(": {}", d.replace(['\n', '\r'], " ")))
                .unwrap_or_default();
            format!("permission to run {}{detail}", request.tool_name)
        }
    };
    let how = match request.kind() {
        RequestKind::Question => format!("answer with `ao-answer {name} --choice LABEL`"),
        RequestKind::Permission => {
            format!("answer with `ao-approve {name}` or `ao-deny {name} --message TEXT`")
        }
    };
    format!("session '{name}' waits for {what} (request {request_id}); {how}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(tool: &str) -> ToolPermission {
        serde_json::from_value(serde_json::json!({"tool_name": tool, "input": {"command": "ls"}}))
            .unwrap()
    }

    #[test]
    fn the_policy_decides_at_once_or_leaves_it_to_someone() {
        let ask = Policy::new(PermissionMode::Default, None, None, true);
        assert_eq!(ask.on, OnPermission::Ask);
        assert_eq!(ask.timeout, Some(Duration::from_secs(1800)));
        let mut waiting = Waiting::new(ask);
        assert!(waiting.arrive("r1", request("Bash")).is_none());
        assert_eq!(waiting.ids(), ["r1"]);
        assert!(waiting.take("r1").is_some());
        assert!(waiting.take("r1").is_none(), "taken once");

        let bypass = Policy::new(PermissionMode::BypassPermissions, None, Some(0), true);
        assert_eq!((bypass.on, bypass.timeout), (OnPermission::Allow, None));
        let decided = Waiting::new(bypass).arrive("r", request("Bash")).unwrap();
        assert_eq!(decided.decision, Decision::Allow);

        let deny = Policy::new(
            PermissionMode::Default,
            Some(OnPermission::Deny),
            None,
            true,
        );
        let decided = Waiting::new(deny).arrive("r", request("Bash")).unwrap();
        assert_eq!(
            (decided.decision, decided.decided_by),
            (Decision::Deny, Some(DecidedBy::Policy))
        );
        let allow = Policy::new(
            PermissionMode::Default,
            Some(OnPermission::Allow),
            None,
            true,
        );
        let decided = Waiting::new(allow)
            .arrive("q", request("AskUserQuestion"))
            .unwrap();
        assert_eq!(decided.decision, Decision::Deny, "nobody answers questions");
        let unreachable = Policy::new(PermissionMode::Default, None, None, false);
        let decided = Waiting::new(unreachable)
            .arrive("r", request("Bash"))
            .unwrap();
        assert!(decided.message.unwrap().contains("could not be reached"));
    }

    #[test]
    fn a_request_nobody_answers_in_time_is_denied_by_the_timeout() {
        let policy = Policy::new(PermissionMode::Default, None, Some(5), true);
        let mut waiting = Waiting::new(policy);
        waiting.arrive("r1", request("Bash"));
        let deadline = waiting.next_deadline().unwrap();
        assert!(
            waiting
                .expired(deadline - Duration::from_secs(1))
                .is_empty()
        );
        let expired = waiting.expired(deadline);
        assert_eq!(expired.len(), 1);
        let (id, _, decision) = &expired[0];
        assert_eq!(id, "r1");
        assert_eq!(decision.decided_by, Some(DecidedBy::Timeout));
        assert!(decision.message.as_ref().unwrap().contains("within 5 s"));
        assert!(waiting.next_deadline().is_none());
    }
}
