//! The real Claude Code CLI as `ao-mcp`'s client: a parent session whose
//! model (the mock) calls `start_agent_session`; the child runs on a
//! second real CLI against the same mock, its answer comes back into the
//! parent's, and the session manager links the child to its parent. Once
//! through an MCP config given to `ao-new`, once through this checkout as
//! a plugin (`--plugin-dir`).

use serde_json::{Value, json};

use crate::real_cli_protocol::drive_with_args;
use crate::support::real_claude::RealClaude;
use crate::support::{Project, bin};

const CHECKOUT: &str = env!("CARGO_MANIFEST_DIR");

/// The prompt that makes the mock call `tool` to start session `child`.
fn start_child(tool: &str, child: &str) -> String {
    let input =
        json!({"session_name": child, "prompt": format!("{child} task"), "agent_name": null});
    format!("CALL_MCP:{tool} {input}")
}

/// PATH with our binaries first, as after `cargo install`.
fn path_with_our_binaries() -> String {
    let ours = bin("ao-mcp").parent().unwrap().to_owned();
    format!(
        "{}:{}",
        ours.display(),
        std::env::var("PATH").unwrap_or_default()
    )
}

#[tokio::test]
async fn the_real_cli_starts_a_child_session_through_ao_mcp() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut p = Project::with_server();
    p.use_real_claude(&claude, mock.base_url());
    p.set_env("PATH", &path_with_our_binaries());
    let config = p.scratch().join("mcp.json");
    std::fs::write(
        &config,
        json!({"mcpServers": {"agent-orchestrator": {"command": bin("ao-mcp"), "args": []}}})
            .to_string(),
    )
    .unwrap();

    let prompt = start_child("mcp__agent-orchestrator__start_agent_session", "child");
    let out = p.ao(
        "ao-new",
        &["parent", "--mcp-config", config.to_str().unwrap()],
        Some(&prompt),
    );
    let answer = out.ok();
    assert!(
        answer.contains("mock answer: child task"),
        "the child's answer came back into the parent's: {answer}"
    );

    let parent = p.session("parent").await.expect("the parent session");
    let child = p.session("child").await.expect("the child session");
    assert_eq!(
        child.parent_session_id.as_deref(),
        Some(parent.session_id.as_str())
    );
    assert_eq!(parent.parent_session_id, None);
    assert_eq!(child.status.as_str(), "finished");
    assert_eq!(
        p.meta("child")["parent_session_id"],
        parent.session_id.as_str()
    );
    let events = p.events("parent").await;
    assert!(
        events.iter().any(|e| e["event_type"] == "post_tool"
            && e["tool_name"] == "mcp__agent-orchestrator__start_agent_session"),
        "the parent's tool call is recorded: {events:?}"
    );
    // The child's own request reached the mock as a new conversation.
    assert!(mock.message_requests().iter().any(|r| {
        Value::Array(r.messages().to_vec())
            .to_string()
            .contains("child task")
    }),);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_checkout_is_a_plugin_with_the_skill_the_hooks_and_the_tools() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let p = Project::with_server();
    let path = path_with_our_binaries();
    let claude_path = claude.path.to_string_lossy().into_owned();
    let env = [
        ("PATH", path.as_str()),
        ("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL", p.url()),
        ("AGENT_ORCHESTRATOR_CLAUDE_PATH", claude_path.as_str()),
        ("AGENT_ORCHESTRATOR_AUTOSTART", "0"),
    ];
    let tool = "mcp__plugin_agent-orchestrator_agent-orchestrator__start_agent_session";
    let transcript = drive_with_args(
        &claude,
        &mock,
        &p.dir,
        None,
        &start_child(tool, "plugin-child"),
        &env,
        &["--plugin-dir", CHECKOUT],
    );
    eprintln!("plugin run stderr: {}", transcript.stderr);
    let lines = &transcript.lines;
    let init = lines
        .iter()
        .find(|l| l["type"] == "system" && l["subtype"] == "init")
        .expect("an init line");
    assert!(
        init["mcp_servers"]
            .as_array()
            .expect("mcp_servers")
            .contains(&json!({"name": "plugin:agent-orchestrator:agent-orchestrator", "status": "connected", "source": "plugin"})),
        "the plugin's MCP server is connected: {}",
        init["mcp_servers"]
    );
    assert!(
        init["skills"]
            .as_array()
            .expect("skills")
            .contains(&json!("agent-orchestrator:agent-orchestrator")),
        "the plugin's skill: {}",
        init["skills"]
    );
    assert!(
        init["plugins"]
            .as_array()
            .expect("plugins")
            .iter()
            .any(|p| p["name"] == "agent-orchestrator" && p["path"] == CHECKOUT),
        "{}",
        init["plugins"]
    );
    assert!(init["tools"].as_array().unwrap().contains(&json!(tool)));
    // The plugin's SessionStart hook ran ao-hook.
    assert!(
        lines
            .iter()
            .any(|l| l["subtype"] == "hook_response" && l["outcome"] != "error"),
        "{:?}",
        lines
            .iter()
            .filter(|l| l["type"] == "system")
            .collect::<Vec<_>>()
    );
    let result = lines
        .iter()
        .find(|l| l["type"] == "result")
        .expect("a result");
    assert!(
        result["result"]
            .as_str()
            .unwrap_or_default()
            .contains("mock answer: plugin-child task"),
        "{result}"
    );
    let child = p.session("plugin-child").await.expect("the child session");
    assert_eq!(child.status.as_str(), "finished");
    // The plugin's hooks reported the parent session itself.
    let (_, list) = p.http().get("/sessions").await;
    assert!(
        list["sessions"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["agent_name"] == "claude-code"),
        "{list}"
    );
}
