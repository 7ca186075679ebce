//! `ao-hook`: the command hook that lets any Claude Code session, even an
//! interactive one started by hand (the seeds' "standalone mode"), report to
//! the session manager. Claude Code runs it on SessionStart,
//! UserPromptSubmit, PreToolUse, PostToolUse and Stop with the hook's JSON
//! on stdin.
//!
//! A hook must never slow or break the user's session: everything happens
//! within a short deadline, nothing is printed (hook stdout would reach the
//! model), and every failure, an API that is down included, is silent.

pub mod cli;
pub mod install;

use std::time::Duration;

use serde_json::Value;
use uuid::Uuid;

pub use crate::claude::protocol::HookInput;
use crate::client::{ClientError, SessionClient};
use crate::record::{MAX_TEXT, fit_text};
use crate::wire::{ContentBlock, Event, EventType, Role, SessionCreate, SessionPatch, now_rfc3339};

/// Set by the runner for the CLI it drives: those sessions are reported by
/// the runner itself, so the hook stays out of them.
pub const RUNNER_ENV: &str = "AGENT_ORCHESTRATOR_RUNNER";
/// The whole hook's time budget.
pub const DEADLINE: Duration = Duration::from_secs(2);
/// One request's time budget.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(800);

/// The name a hook-reported session gets: short, and valid as a session
/// name for the `ao-*` commands.
pub fn session_name(session_id: &str) -> String {
    let short: String = session_id
        .chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .take(8)
        .collect();
    format!("claude-{short}")
}

/// Posts what one hook call means. Errors are the caller's to swallow.
pub async fn report(input: &HookInput, base_url: &str) -> Result<(), ClientError> {
    if input.session_id.is_empty() {
        return Ok(());
    }
    let client = SessionClient::with_timeout(base_url, REQUEST_TIMEOUT)?;
    let hook = Hook {
        input,
        client,
        name: session_name(&input.session_id),
        now: now_rfc3339(),
    };
    match input.hook_event_name.as_str() {
        "SessionStart" => hook.session_start().await,
        "UserPromptSubmit" => hook.prompt().await,
        "PreToolUse" | "PostToolUse" => hook.tool().await,
        "Stop" => hook.stop().await,
        _ => Ok(()),
    }
}

struct Hook<'a> {
    input: &'a HookInput,
    client: SessionClient,
    name: String,
    now: String,
}

impl Hook<'_> {
    fn id(&self) -> &str {
        &self.input.session_id
    }

    /// Creates the session unless it exists (a taken name gets the full id).
    async fn ensure_session(&self) -> Result<(), ClientError> {
        let mut create = SessionCreate {
            session_id: self.id().to_owned(),
            session_name: self.name.clone(),
            project_dir: self.input.cwd.clone(),
            agent_name: Some("claude-code".to_owned()),
            ..SessionCreate::default()
        };
        match self.client.create_session(&create).await {
            Ok(_) => Ok(()),
            Err(ClientError::Api { status: 409, .. }) => {
                match self.client.get_session(self.id()).await {
                    Ok(_) => Ok(()),
                    Err(ClientError::NotFound(_)) => {
                        create.session_name = format!("claude-{}", self.id());
                        self.client.create_session(&create).await.map(|_| ())
                    }
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        }
    }

    /// Posts events in order, creating the session first if the API lacks it.
    async fn post(&self, events: &[Event]) -> Result<(), ClientError> {
        for (i, event) in events.iter().enumerate() {
            match self.client.add_event(self.id(), event).await {
                Ok(_) => {}
                Err(ClientError::NotFound(_)) if i == 0 => {
                    self.ensure_session().await?;
                    self.client.add_event(self.id(), event).await?;
                }
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    fn event(&self, event_type: EventType) -> Event {
        Event::new(event_type, self.id(), &self.name, &self.now)
    }

    async fn session_start(&self) -> Result<(), ClientError> {
        self.ensure_session().await?;
        if self.input.source.as_deref() == Some("resume") {
            let patch = SessionPatch {
                last_resumed_at: Some(self.now.clone()),
                ..SessionPatch::default()
            };
            self.client.update_session(self.id(), &patch).await?;
        }
        Ok(())
    }

    async fn prompt(&self) -> Result<(), ClientError> {
        let mut message = self.event(EventType::Message);
        message.role = Some(Role::User);
        message.content = Some(vec![ContentBlock::text(fit_text(
            self.input.prompt.clone().unwrap_or_default(),
            MAX_TEXT,
        ))]);
        self.post(&[self.event(EventType::RunStart), message]).await
    }

    async fn tool(&self) -> Result<(), ClientError> {
        let pre = self.input.hook_event_name == "PreToolUse";
        let mut event = self.event(if pre {
            EventType::PreTool
        } else {
            EventType::PostTool
        });
        event.tool_name = Some(
            self.input
                .tool_name
                .clone()
                .unwrap_or_else(|| "unknown".to_owned()),
        );
        event.tool_input = self.input.tool_input.clone();
        event.tool_use_id = self.input.tool_use_id.clone();
        if !pre {
            event.tool_output = self.input.tool_response.clone();
        }
        // Claude Code may run a hook twice for one call; the id makes that harmless.
        event.event_id = self.input.tool_use_id.as_deref().map(|t| {
            let key = if pre {
                format!("{}/{t}/pre", self.id())
            } else {
                format!("{}/{t}", self.id())
            };
            Uuid::new_v5(&Uuid::NAMESPACE_OID, key.as_bytes())
        });
        self.post(&[event]).await
    }

    async fn stop(&self) -> Result<(), ClientError> {
        let mut events = Vec::new();
        let answer = self.input.last_assistant_message.clone().or_else(|| {
            self.input
                .transcript_path
                .as_deref()
                .and_then(last_assistant_text)
        });
        if let Some(text) = answer {
            let mut message = self.event(EventType::Message);
            message.role = Some(Role::Assistant);
            message.content = Some(vec![ContentBlock::text(fit_text(text, MAX_TEXT))]);
            events.push(message);
        }
        let mut end = self.event(EventType::RunCompleted);
        end.exit_code = Some(0);
        end.reason = Some("completed".to_owned());
        events.push(end);
        self.post(&events).await
    }
}

/// The text of the last assistant message in a Claude Code transcript
/// (a `.jsonl` of the same lines as stream-json output).
pub fn last_assistant_text(path: &str) -> Option<String> {
    let text = std::fs::read_to_string(path).ok()?;
    text.lines().rev().find_map(|line| {
        let value: Value = serde_json::from_str(line).ok()?;
        if value.get("type")?.as_str()? != "assistant" {
            return None;
        }
        let parts: Vec<&str> = value
            .pointer("/message/content")?
            .as_array()?
            .iter()
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("text"))
            .filter_map(|b| b.get("text").and_then(Value::as_str))
            .collect();
        (!parts.is_empty()).then(|| parts.join(""))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_valid_session_names() {
        let name = session_name("0d8df837-37ba-475d-923b-58be339b3251");
        assert_eq!(name, "claude-0d8df837");
        assert!(crate::name::SessionName::parse(&name).is_ok());
        assert!(crate::name::SessionName::parse(&session_name("../../x")).is_ok());
    }

    #[test]
    fn finds_the_last_assistant_text_of_a_transcript() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.jsonl");
        std::fs::write(
            &path,
            concat!(
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"first"}]}}"#, "\n",
                r#"{"type":"assistant","message":{"content":[{"type":"tool_use","id":"x"}]}}"#, "\n",
                r#"{"type":"assistant","message":{"content":[{"type":"text","text":"second"},{"type":"text","text":" part"}]}}"#, "\n",
                r#"{"type":"user","message":{"content":"later"}}"#, "\n",
                "not json\n",
            ),
        )
        .unwrap();
        assert_eq!(
            last_assistant_text(path.to_str().unwrap()).as_deref(),
            Some("second part")
        );
        assert_eq!(last_assistant_text("/nonexistent"), None);
    }
}
