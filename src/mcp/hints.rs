//! The commands' messages end with what to do next as a command line
//! (`` `ao-resume NAME` ``) or a flag; a model that calls tools is told
//! the tool, or the argument, instead.

/// Advice that names a flag the tools do not have, and what a model that
/// calls tools does instead.
const FLAG_ADVICE: [(&str, &str); 8] = [
    (
        "or pass --force to stop it and delete it",
        "or stop it with stop_agent_session, then delete it",
    ),
    (
        "wait for it, or pass --force to stop and delete it",
        "wait for it with wait_for_agent_sessions, or stop it with stop_agent_session, then delete it",
    ),
    (
        "wait for them, or pass --force to stop and delete them",
        "wait for them with wait_for_agent_sessions, or stop them with stop_agent_session, then delete them",
    ),
    (
        "pass --force to stop it (through the session manager) and delete it",
        "stop it with stop_agent_session, then delete it",
    ),
    (
        "commit them, or pass --force to discard them",
        "commit or discard them in the worktree, then delete the session again",
    ),
    (
        "choose one with --project-dir DIR",
        "choose one with project_dir",
    ),
    (
        "pass the folder that defines it with --agents-dir DIR",
        "start ao-mcp with AGENT_ORCHESTRATOR_AGENTS_DIR set to the folder that defines it",
    ),
    ("--base needs --worktree", "base needs worktree=true"),
];

/// `message` with every quoted `ao-*` command that has a tool replaced by
/// that tool's call, and advice to pass a flag by what a tool call does;
/// other text is kept as it is.
pub fn for_tools(message: &str) -> String {
    let mut message = message.to_owned();
    for (flag, tool) in FLAG_ADVICE {
        message = message.replace(flag, tool);
    }
    let mut out = String::with_capacity(message.len());
    let mut parts = message.split('`');
    if let Some(first) = parts.next() {
        out.push_str(first);
    }
    let mut rest: Vec<&str> = parts.collect();
    // An odd backtick out has no closing one: the text after it is prose.
    let unclosed = if rest.len() % 2 == 1 {
        rest.pop()
    } else {
        None
    };
    for pair in rest.chunks(2) {
        let (code, after) = (pair[0], pair[1]);
        match tool_call(code) {
            Some(call) => out.push_str(&call),
            None => {
                out.push('`');
                out.push_str(code);
                out.push('`');
            }
        }
        out.push_str(after);
    }
    if let Some(tail) = unclosed {
        out.push('`');
        out.push_str(tail);
    }
    out
}

/// The tool call that does what `command` does, when there is one.
fn tool_call(command: &str) -> Option<String> {
    let mut words = command.split_whitespace();
    let tool = match words.next()? {
        "ao-new" => "start_agent_session",
        "ao-resume" => "resume_agent_session",
        "ao-status" => "get_agent_session_status",
        "ao-get-result" => "get_agent_session_result",
        "ao-wait" => "wait_for_agent_sessions",
        "ao-stop" => "stop_agent_session",
        "ao-clean" => "delete_agent_session",
        "ao-list-agents" => "list_agent_definitions",
        "ao-list-sessions" => "list_agent_sessions",
        "ao-requests" => "list_pending_requests",
        "ao-approve" | "ao-deny" | "ao-answer" => "answer_request",
        _ => return None,
    };
    let program = command.split_whitespace().next().unwrap_or("");
    let words: Vec<&str> = words.collect();
    let name = words.first().filter(|w| !w.starts_with('-'));
    let mut call = match name {
        Some(name) if tool == "wait_for_agent_sessions" => {
            format!("{tool} with session_names [\"{name}\"]")
        }
        Some(name) => format!("{tool} with session_name \"{name}\""),
        None => tool.to_owned(),
    };
    if let Some(at) = words.iter().position(|w| *w == "--agent")
        && let Some(agent) = words.get(at + 1)
    {
        call.push_str(&format!(" and agent_name \"{agent}\""));
    }
    if tool == "answer_request" {
        if let Some(id) = words.get(1).filter(|w| !w.starts_with('-')) {
            call.push_str(&format!(", request_id \"{id}\""));
        }
        call.push_str(match program {
            "ao-deny" => " and decision \"deny\" (and a message)",
            "ao-answer" => " and decision \"allow\" with choice",
            _ => " and decision \"allow\"",
        });
    }
    Some(call)
}

#[cfg(test)]
mod tests {
    use super::for_tools;

    #[test]
    fn command_hints_become_tool_calls() {
        assert_eq!(
            for_tools(
                "a session named 'a' already exists in /p; continue it with `ao-resume a`, or remove it with `ao-clean a`"
            ),
            "a session named 'a' already exists in /p; continue it with resume_agent_session with session_name \"a\", or remove it with delete_agent_session with session_name \"a\""
        );
        assert_eq!(
            for_tools("unknown agent 'x' (see `ao-list-agents` and `ao-show-config`)"),
            "unknown agent 'x' (see list_agent_definitions and `ao-show-config`)"
        );
        assert_eq!(
            for_tools("start one with `ao-new NEW_NAME --agent b`"),
            "start one with start_agent_session with session_name \"NEW_NAME\" and agent_name \"b\""
        );
        assert_eq!(
            for_tools("answer with `ao-approve w` or `ao-deny w --message TEXT`"),
            "answer with answer_request with session_name \"w\" and decision \"allow\" or answer_request with session_name \"w\" and decision \"deny\" (and a message)"
        );
        assert_eq!(
            for_tools("answer it with `ao-answer w r1 --choice LABEL`"),
            "answer it with answer_request with session_name \"w\", request_id \"r1\" and decision \"allow\" with choice"
        );
        assert_eq!(
            for_tools("run `ao-sync a` once it is back"),
            "run `ao-sync a` once it is back"
        );
    }

    #[test]
    fn no_advice_names_a_flag_the_tools_lack() {
        use crate::commands::CommandError;
        use crate::runner::RunError;
        let name = || "x".to_owned();
        let messages = [
            CommandError::CleanRunning {
                name: name(),
                pid: Some(7),
            }
            .to_string(),
            CommandError::CleanRemoteRunning { name: name() }.to_string(),
            CommandError::SkippedRunning { count: 1 }.to_string(),
            CommandError::SkippedRunning { count: 2 }.to_string(),
            CommandError::Ambiguous {
                name: name(),
                project: "/p".into(),
                dirs: vec!["/a".into(), "/b".into()],
            }
            .to_string(),
            CommandError::CleanWorktree {
                name: name(),
                source: crate::worktree::WorktreeError::Dirty("/w".into(), "a.txt".into()),
            }
            .to_string(),
            RunError::AgentGone {
                name: name(),
                agent: "a".into(),
                dir: None,
            }
            .to_string(),
            RunError::BaseWithoutWorktree.to_string(),
        ];
        for message in messages {
            let advice = for_tools(&message);
            assert!(!advice.contains("--"), "{message} -> {advice}");
        }
    }

    #[test]
    fn other_text_is_kept() {
        for text in [
            "no hint at all",
            "an `unclosed quote",
            "",
            "``",
            "a ` b ` c `",
        ] {
            assert_eq!(for_tools(text), text);
        }
    }
}
