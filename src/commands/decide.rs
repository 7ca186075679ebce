//! What `ao-approve`, `ao-deny`, `ao-answer` and `ao-mcp`'s
//! `answer_request` share: find the request (the one named, or the only one
//! waiting), check that the answer fits it, and post the decision. A
//! command run inside a run (an agent answering its child) decides as the
//! parent, any other as a person.

use serde::Serialize;

use crate::client::ClientError;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::{Answers, DecidedBy, Decision, DecisionBody, PendingRequest, RequestKind};

use super::requests::{described, pending_of};
use super::{CommandError, Ctx, block_on, print_json, print_line};

/// What to answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Allow; `always` accepts the CLI's suggestions so that it does not ask again.
    Allow { always: bool },
    /// Deny, with the reason the model reads.
    Deny { message: Option<String> },
    /// Answer a question: one label per question, in order (several
    /// labels for a single question that takes several).
    Choose { choices: Vec<String> },
}

/// A decision taken, as the commands print it with `--json`.
#[derive(Debug, Clone, Serialize)]
pub struct Decided {
    pub session_name: String,
    pub session_id: String,
    pub request_id: String,
    #[serde(flatten)]
    pub decision: DecisionBody,
}

impl Decided {
    /// `NAME: allowed REQUEST_ID` (or denied, answered).
    pub fn line(&self) -> String {
        let done = match (self.decision.decision, &self.decision.answers) {
            (Decision::Allow, Some(_)) => "answered",
            (Decision::Allow, None) => "allowed",
            (Decision::Deny, _) => "denied",
        };
        format!("{}: {done} {}", self.session_name, self.request_id)
    }
}

/// Who decides when a command decides: the parent agent when the command
/// runs inside a run (its CLI's tools have the runner's variable), else a person.
pub fn who() -> DecidedBy {
    if std::env::var_os(crate::config::ENV_PARENT_META).is_some() {
        DecidedBy::Parent
    } else {
        DecidedBy::Person
    }
}

/// What `ao-approve`, `ao-deny` and `ao-answer` take besides their answer.
#[derive(Debug, clap::Args)]
pub struct Target {
    /// Session name
    name: String,

    /// The request (see ao-requests) [default: the only one waiting]
    request_id: Option<String>,

    /// Print the decision taken: {"session_name","session_id","request_id","decision","message","always","answers","decided_by"} (those that apply)
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

impl Target {
    /// The whole of a decision command once parsed: decide, and print
    /// `NAME: allowed|denied|answered ID` (or the JSON).
    pub(crate) fn decide(
        &self,
        program: &'static str,
        answer: Answer,
        diag: Diag,
    ) -> Result<(), CommandError> {
        let name = SessionName::parse(&self.name)?;
        let ctx = Ctx::load(&self.common, diag)?;
        let id = self.request_id.as_deref();
        let decided = block_on(decide(&ctx, &name, id, answer, who(), program))??;
        if self.json {
            print_json(&decided)
        } else {
            print_line(&decided.line())
        }
    }
}

/// Decides request `request_id` of session `name` (without an id: the only
/// one waiting). `program` is the command to name in advice.
pub(crate) async fn decide(
    ctx: &Ctx,
    name: &SessionName,
    request_id: Option<&str>,
    answer: Answer,
    decided_by: DecidedBy,
    program: &'static str,
) -> Result<Decided, CommandError> {
    let (session, pending) = pending_of(ctx, name).await?;
    let request = match request_id {
        Some(id) => pending.iter().find(|r| r.request_id == id),
        None => match pending.as_slice() {
            [] => {
                return Err(CommandError::NothingWaiting {
                    name: name.to_string(),
                });
            }
            [only] => Some(only),
            several => {
                return Err(CommandError::SeveralWaiting {
                    name: name.to_string(),
                    program,
                    requests: several.iter().map(described).collect(),
                });
            }
        },
    };
    // A request that waits no more: the session manager says why.
    let request_id = request.map_or(request_id.unwrap_or_default(), |r| &r.request_id);
    let mut decision = match request {
        Some(request) => body(name, request, answer).map_err(CommandError::BadDecision)?,
        None => loose_body(answer),
    };
    decision.decided_by = Some(decided_by);
    match ctx
        .client
        .decide(&session.session_id, request_id, &decision)
        .await
    {
        Ok(()) => Ok(Decided {
            session_name: session.session_name,
            session_id: session.session_id,
            request_id: request_id.to_owned(),
            decision,
        }),
        Err(ClientError::Api {
            status: 422,
            detail,
        }) => Err(CommandError::BadDecision(detail)),
        Err(e) => Err(e.into()),
    }
}

/// The decision `answer` makes for `request`, or how to give one that fits.
fn body(
    name: &SessionName,
    request: &PendingRequest,
    answer: Answer,
) -> Result<DecisionBody, String> {
    let id = &request.request_id;
    let options = || request.options();
    match (answer, request.kind) {
        (Answer::Allow { .. }, RequestKind::Question) => Err(format!(
            "request {id} is a question; answer it with `ao-answer {name} {id} --choice LABEL` ({})",
            options()
        )),
        (Answer::Choose { .. }, RequestKind::Permission) => Err(format!(
            "request {id} asks permission to use {}; allow it with `ao-approve {name} {id}` or deny it with `ao-deny {name} {id}`",
            request.tool_name
        )),
        (Answer::Allow { always: true }, _) if !request.has_suggestions() => Err(format!(
            "request {id} has no suggestion to accept always (the CLI sent none); allow it without --always"
        )),
        (Answer::Choose { choices }, RequestKind::Question) => {
            let answers = choose(request, &choices).map_err(|e| format!("{e} ({})", options()))?;
            Ok(allow(false, Some(answers)))
        }
        (answer, _) => Ok(loose_body(answer)),
    }
}

/// The decision `answer` makes, unchecked (for a request that waits no more).
fn loose_body(answer: Answer) -> DecisionBody {
    match answer {
        Answer::Allow { always } => allow(always, None),
        Answer::Deny { message } => DecisionBody {
            decision: Decision::Deny,
            message,
            always: None,
            answers: None,
            decided_by: None,
        },
        Answer::Choose { choices } => allow(
            false,
            Some([(String::new(), choices.join(", "))].into_iter().collect()),
        ),
    }
}

fn allow(always: bool, answers: Option<Answers>) -> DecisionBody {
    DecisionBody {
        decision: Decision::Allow,
        message: None,
        always: always.then_some(true),
        answers,
        decided_by: None,
    }
}

/// The answers that `choices` give `request`'s questions: one label per
/// question in order, or several for a single question that takes several.
/// Labels are matched to the options whatever their case.
fn choose(request: &PendingRequest, choices: &[String]) -> Result<Answers, String> {
    let questions = request.questions();
    let multiple = request.input["questions"][0]["multiSelect"] == true;
    let groups: Vec<Vec<&String>> = match (questions.len(), choices.len()) {
        (_, 0) => return Err("give a --choice".to_owned()),
        (1, n) if n > 1 && !multiple => {
            return Err(format!("'{}' takes one choice, not {n}", questions[0].0));
        }
        (1, _) => vec![choices.iter().collect()],
        (q, n) if q == n => choices.iter().map(|c| vec![c]).collect(),
        (q, n) => {
            return Err(format!(
                "the request asks {q} questions: give one --choice per question, in order (got {n})"
            ));
        }
    };
    let mut answers = Answers::new();
    for ((question, labels), group) in questions.iter().zip(groups) {
        let mut chosen = Vec::new();
        for choice in group {
            let label = labels
                .iter()
                .find(|l| l.eq_ignore_ascii_case(choice.trim()))
                .ok_or_else(|| format!("'{choice}' is not an option of '{question}'"))?;
            chosen.push(label.clone());
        }
        answers.insert(question.clone(), chosen.join(", "));
    }
    Ok(answers)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn question(multi: bool, count: usize) -> PendingRequest {
        let questions: Vec<serde_json::Value> = (0..count)
            .map(|i| {
                serde_json::json!({"question": format!("Q{i}?"), "multiSelect": multi,
                    "options": [{"label": "Blue"}, {"label": "red"}]})
            })
            .collect();
        PendingRequest {
            request_id: "r".into(),
            session_id: "s".into(),
            session_name: "n".into(),
            kind: RequestKind::Question,
            tool_name: "AskUserQuestion".into(),
            input: serde_json::json!({ "questions": questions }),
            suggestions: serde_json::Value::Null,
            tool_use_id: None,
            blocked_path: None,
            created_at: "t".into(),
        }
    }

    fn labels(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn choices_are_matched_to_the_options_question_by_question() {
        let answers = choose(&question(false, 1), &labels(&["blue"])).unwrap();
        assert_eq!(answers["Q0?"], "Blue");
        let err = choose(&question(false, 1), &labels(&["purple"])).unwrap_err();
        assert!(err.contains("'purple' is not an option of 'Q0?'"), "{err}");
        assert!(choose(&question(false, 1), &labels(&["blue", "red"])).is_err());
        let answers = choose(&question(true, 1), &labels(&["red", "blue"])).unwrap();
        assert_eq!(answers["Q0?"], "red, Blue");
        let answers = choose(&question(false, 2), &labels(&["red", "blue"])).unwrap();
        assert_eq!((&answers["Q0?"][..], &answers["Q1?"][..]), ("red", "Blue"));
        let err = choose(&question(false, 2), &labels(&["red"])).unwrap_err();
        assert!(err.contains("one --choice per question"), "{err}");
    }

    #[test]
    fn an_answer_that_does_not_fit_says_which_command_does() {
        let name = SessionName::parse("w").unwrap();
        let err = body(&name, &question(false, 1), Answer::Allow { always: false }).unwrap_err();
        assert!(err.contains("ao-answer w r --choice LABEL"), "{err}");
        let mut permission = question(false, 1);
        permission.kind = RequestKind::Permission;
        permission.tool_name = "Bash".into();
        let err = body(
            &name,
            &permission,
            Answer::Choose {
                choices: labels(&["x"]),
            },
        )
        .unwrap_err();
        assert!(err.contains("ao-approve w r"), "{err}");
        let err = body(&name, &permission, Answer::Allow { always: true }).unwrap_err();
        assert!(err.contains("no suggestion"), "{err}");
    }
}
