//! Agents with the real Claude Code CLI against the mock model API: the
//! model sees what the agent asks for (its system prompt, its model, only
//! its tools, its MCP server's tools), and an output schema comes back as
//! a JSON document.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::Project;
use crate::support::http::kinds;
use crate::support::real_claude::RealClaude;

fn mcp_server() -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/mcp_notes_server.py")
        .to_string_lossy()
        .into_owned()
}

#[tokio::test]
async fn the_model_sees_the_agents_prompt_model_tools_and_mcp_server() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    if !claude.supports("--tools") {
        return;
    }
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let dir = env.dir.join(".agent-orchestrator/agents/notes-agent");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.json"),
        json!({"name": "notes-agent", "description": "Keeps notes", "model": "agent-model-x", "tools": ["Read", "Grep"]}).to_string(),
    )
    .unwrap();
    std::fs::write(
        dir.join("agent.system-prompt.md"),
        "AGENT-PROMPT-MARKER: you keep notes.\n",
    )
    .unwrap();
    std::fs::write(
        dir.join("agent.mcp.json"),
        json!({"mcpServers": {"notes": {"command": "python3", "args": [mcp_server()]}}})
            .to_string(),
    )
    .unwrap();

    let out = env.ao(
        "ao-new",
        &["n1", "--agent", "notes-agent"],
        Some("Please CALL_MCP:mcp__notes__echo now"),
    );
    assert_eq!(
        out.ok(),
        "The command printed notes-echo: from-the-mock. Final answer: 4"
    );

    let first = mock
        .message_requests()
        .into_iter()
        .next()
        .expect("a request");
    assert_eq!(first.body["model"], "agent-model-x");
    assert!(
        first.body["system"]
            .to_string()
            .contains("AGENT-PROMPT-MARKER")
    );
    let tools: Vec<&str> = first.body["tools"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["name"].as_str())
        .collect();
    assert!(
        tools.contains(&"Read") && tools.contains(&"Grep"),
        "{tools:?}"
    );
    for absent in ["Bash", "Edit", "Write", "WebFetch"] {
        assert!(!tools.contains(&absent), "{absent} offered: {tools:?}");
    }
    assert!(
        first.body.to_string().contains("mcp__notes__echo"),
        "the MCP server's tool is named to the model"
    );

    // The MCP server was connected, and its tool ran.
    let init = env
        .backup_lines("n1")
        .into_iter()
        .find(|l| l["subtype"] == "init")
        .unwrap();
    assert!(
        init["mcp_servers"]
            .as_array()
            .unwrap()
            .iter()
            .any(|s| s["name"] == "notes" && s["status"] == "connected"),
        "{init}"
    );
    let events = env.events("n1").await;
    assert!(kinds(&events).contains(&"post_tool".to_owned()));
    let call = events
        .iter()
        .find(|e| e["tool_name"] == "mcp__notes__echo" && e["event_type"] == "post_tool")
        .expect("the MCP tool call");
    assert!(
        call["tool_output"]
            .to_string()
            .contains("notes-echo: from-the-mock")
    );
    let session = env.session("n1").await.unwrap();
    assert_eq!(session.agent_name.as_deref(), Some("notes-agent"));
}

#[tokio::test]
async fn an_output_schema_returns_the_document() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    if !claude.supports("--json-schema") {
        return;
    }
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let schema = env.scratch().join("facts.json");
    std::fs::write(
        &schema,
        json!({"type": "object", "properties": {"fact": {"type": "string"}, "count": {"type": "integer"}}, "required": ["fact", "count"]}).to_string(),
    )
    .unwrap();
    let out = env.ao(
        "ao-new",
        &["facts", "--output-schema", schema.to_str().unwrap()],
        Some("Give me a fact"),
    );
    let doc: Value = serde_json::from_str(out.ok()).expect("JSON on stdout");
    assert_eq!(doc, json!({"fact": "mock", "count": 2}));
    let got: Value =
        serde_json::from_str(env.ao("ao-get-result", &["facts", "--json"], None).ok()).unwrap();
    assert_eq!(got["structured_output"], doc);
    let events = env.events("facts").await;
    let answer = events.iter().find(|e| e["role"] == "assistant").unwrap();
    assert_eq!(answer["structured_output"], doc);
}
