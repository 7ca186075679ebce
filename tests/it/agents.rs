//! Agents against the scripted fake CLI: definitions in both formats reach
//! the CLI as its own flags (the exact argv is checked), flags win over the
//! agent, the project over the user, a resume runs the session's agent, and
//! every bad definition or flag is refused before anything is spawned.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::project::is_empty_dir;
use crate::support::{Output, Project};

/// Writes `<root>/<name>/agent.json` (and the prompt and MCP files when given).
fn folder_agent(root: &Path, name: &str, json: &Value, prompt: Option<&str>, mcp: Option<&str>) {
    let dir = root.join(name);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.json"),
        serde_json::to_string_pretty(json).unwrap(),
    )
    .unwrap();
    if let Some(prompt) = prompt {
        std::fs::write(dir.join("agent.system-prompt.md"), prompt).unwrap();
    }
    if let Some(mcp) = mcp {
        std::fs::write(dir.join("agent.mcp.json"), mcp).unwrap();
    }
}

/// Writes `<dir>/<name>.md`.
fn subagent(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir).unwrap();
    std::fs::write(dir.join(format!("{name}.md")), text).unwrap();
}

fn project_folders(env: &Project) -> std::path::PathBuf {
    env.dir.join(".agent-orchestrator/agents")
}

fn project_subagents(env: &Project) -> std::path::PathBuf {
    env.dir.join(".claude/agents")
}

/// The argv of the `n`th fake CLI process.
fn argv(env: &Project, n: usize) -> Vec<String> {
    env.fake_log()[n]["argv"]
        .as_array()
        .expect("argv")
        .iter()
        .map(|a| a.as_str().unwrap().to_owned())
        .collect()
}

/// The value after `flag` in `argv`, if the flag is there.
fn flag<'a>(argv: &'a [String], flag: &str) -> Option<&'a str> {
    argv.iter()
        .position(|a| a == flag)
        .map(|i| argv[i + 1].as_str())
}

const MCP: &str = r#"{"mcpServers": {"notes": {"command": "notes-server", "args": ["--x"], "env": {"TOKEN": "secret-token"}}}}"#;

fn full_agent(env: &Project) {
    folder_agent(
        &project_folders(env),
        "researcher",
        &json!({
            "name": "researcher",
            "description": "Finds things out",
            "model": "agent-model",
            "tools": ["Read", "Grep"],
            "allowed_tools": ["Bash(git *)", "Read"],
            "disallowed_tools": "Write, Bash(rm *)",
            "permission_mode": "plan",
            "max_turns": 7,
            "output_schema": {"type": "object", "properties": {"finding": {"type": "string"}}},
            "system_prompt_mode": "replace"
        }),
        Some("You are a careful researcher.\n"),
        Some(MCP),
    );
}

#[tokio::test]
async fn every_field_of_a_folder_agent_reaches_the_cli_as_its_flag() {
    let env = Project::with_server();
    full_agent(&env);
    let out = env.run(
        "ao-new",
        &["r1", "--agent", "researcher"],
        "look into it",
        "plain",
    );
    // With an output schema, stdout is the JSON document.
    let doc: Value = serde_json::from_str(out.ok()).expect("a JSON document on stdout");
    assert_eq!(doc, json!({"finding": "fake"}));

    let args = argv(&env, 0);
    assert_eq!(
        args[..5],
        [
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json"
        ]
    );
    assert_eq!(flag(&args, "--permission-mode"), Some("plan"));
    assert_eq!(flag(&args, "--model"), Some("agent-model"));
    assert_eq!(flag(&args, "--tools"), Some("Read,Grep"));
    assert_eq!(flag(&args, "--allowedTools"), Some("Bash(git *),Read"));
    assert_eq!(flag(&args, "--disallowedTools"), Some("Write,Bash(rm *)"));
    assert_eq!(flag(&args, "--max-turns"), Some("7"));
    assert_eq!(
        flag(&args, "--system-prompt"),
        Some("You are a careful researcher.")
    );
    assert_eq!(flag(&args, "--append-system-prompt"), None);
    let schema: Value = serde_json::from_str(flag(&args, "--json-schema").unwrap()).unwrap();
    assert_eq!(schema["properties"]["finding"]["type"], "string");
    // The MCP config (it holds a token) went through a private file, not argv.
    let joined = args.join(" ");
    assert!(!joined.contains("secret-token"), "{joined}");
    let mcp_path = flag(&args, "--mcp-config").expect("--mcp-config");
    assert!(!Path::new(mcp_path).exists(), "removed after the run");
    let read = &env.fake_log()[0]["mcp_config"];
    assert_eq!(read["mode"], "600");
    assert_eq!(
        read["content"]["mcpServers"]["notes"]["env"]["TOKEN"],
        "secret-token"
    );
    assert!(
        !joined.contains("look into it"),
        "the prompt stays off argv"
    );

    // The session records its agent, in the API and in the backup.
    let session = env.session("r1").await.unwrap();
    assert_eq!(session.agent_name.as_deref(), Some("researcher"));
    assert_eq!(env.meta("r1")["agent_name"], "researcher");
    // The answer's document is on the run's message event and in ao-get-result.
    let events = env.events("r1").await;
    let answer = events
        .iter()
        .find(|e| e["role"] == "assistant")
        .expect("the answer");
    assert_eq!(answer["structured_output"], json!({"finding": "fake"}));
    let got: Value =
        serde_json::from_str(env.ao("ao-get-result", &["r1", "--json"], None).ok()).unwrap();
    assert_eq!(got["structured_output"], json!({"finding": "fake"}));
    assert_eq!(got["result"], r#"{"finding":"fake"}"#);
    assert_eq!(
        env.ao("ao-get-result", &["r1"], None).ok(),
        r#"{"finding":"fake"}"#
    );

    // A resume runs the same agent without being told.
    let out = env.run("ao-resume", &["r1"], "more", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    let again = argv(&env, 1);
    assert_eq!(flag(&again, "--resume"), Some(session.session_id.as_str()));
    assert_eq!(flag(&again, "--model"), Some("agent-model"));
    assert_eq!(
        flag(&again, "--system-prompt"),
        Some("You are a careful researcher.")
    );
    assert_eq!(flag(&again, "--permission-mode"), Some("plan"));
    assert!(flag(&again, "--mcp-config").is_some());

    // ... and refuses to switch agents.
    folder_agent(
        &project_folders(&env),
        "other",
        &json!({"name": "other"}),
        None,
        None,
    );
    let out = env.run("ao-resume", &["r1", "--agent", "other"], "x", "plain");
    let line = out.fails(2);
    assert!(
        line.contains("agent 'researcher'") && line.contains("'other'"),
        "{line}"
    );
    assert_eq!(env.fake_log().len(), 2, "nothing spawned");
}

#[tokio::test]
async fn a_subagent_file_runs_with_its_front_matter_and_body() {
    let env = Project::with_server();
    subagent(
        &project_subagents(&env),
        "reviewer",
        "---\nname: reviewer\ndescription: Reviews code\ntools: Read, Grep, Glob\nmodel: sonnet\npermissionMode: acceptEdits\nmaxTurns: 3\n---\nYou review code.\nBe terse.\n",
    );
    let out = env.run("ao-new", &["rev", "--agent", "reviewer"], "review", "plain");
    assert_eq!(out.ok(), "fake answer to: review");
    let args = argv(&env, 0);
    assert_eq!(flag(&args, "--tools"), Some("Read,Grep,Glob"));
    assert_eq!(flag(&args, "--model"), Some("sonnet"));
    assert_eq!(flag(&args, "--permission-mode"), Some("acceptEdits"));
    assert_eq!(flag(&args, "--max-turns"), Some("3"));
    assert_eq!(
        flag(&args, "--append-system-prompt"),
        Some("You review code.\nBe terse.")
    );
    for absent in [
        "--system-prompt",
        "--mcp-config",
        "--json-schema",
        "--allowedTools",
    ] {
        assert_eq!(flag(&args, absent), None, "{absent}");
    }
}

#[tokio::test]
async fn flags_win_over_the_agent_and_the_project_over_the_user() {
    let env = Project::with_server();
    // The same name at user level (both formats) and at project level.
    subagent(
        &env.home().join(".claude/agents"),
        "w",
        "---\nname: w\ndescription: user level\nmodel: user-model\n---\nuser prompt\n",
    );
    let out = env.run("ao-new", &["u", "--agent", "w"], "x", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(flag(&argv(&env, 0), "--model"), Some("user-model"));
    folder_agent(
        &project_folders(&env),
        "w",
        &json!({"name": "w", "description": "project level", "model": "project-model", "tools": "Read", "max_turns": 5}),
        Some("project prompt"),
        None,
    );
    let out = env.run("ao-new", &["p", "--agent", "w"], "x", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    let args = argv(&env, 1);
    assert_eq!(flag(&args, "--model"), Some("project-model"));
    assert_eq!(
        flag(&args, "--append-system-prompt"),
        Some("project prompt")
    );

    // Every per-run flag beats the agent's field.
    let prompt_file = env.scratch().join("prompt.md");
    std::fs::write(&prompt_file, "flag prompt\n").unwrap();
    let schema_file = env.scratch().join("schema.json");
    std::fs::write(
        &schema_file,
        r#"{"type":"object","properties":{"n":{"type":"integer"}}}"#,
    )
    .unwrap();
    let mcp_file = env.scratch().join("mcp.json");
    std::fs::write(&mcp_file, MCP).unwrap();
    let prompt_path = prompt_file.to_str().unwrap();
    let schema_path = schema_file.to_str().unwrap();
    let mcp_path = mcp_file.to_str().unwrap();
    let out = env.run(
        "ao-new",
        &[
            "f",
            "--agent",
            "w",
            "--model",
            "flag-model",
            "--tools",
            "",
            "--allowed-tools",
            "Edit",
            "--disallowed-tools",
            "Bash",
            "--permission-mode",
            "dontAsk",
            "--max-turns",
            "2",
            "--system-prompt-file",
            prompt_path,
            "--system-prompt-mode",
            "replace",
            "--mcp-config",
            mcp_path,
            "--output-schema",
            schema_path,
        ],
        "x",
        "plain",
    );
    assert_eq!(out.ok(), r#"{"n":1}"#);
    let args = argv(&env, 2);
    assert_eq!(flag(&args, "--model"), Some("flag-model"));
    assert_eq!(flag(&args, "--tools"), Some(""));
    assert_eq!(flag(&args, "--allowedTools"), Some("Edit"));
    assert_eq!(flag(&args, "--disallowedTools"), Some("Bash"));
    assert_eq!(flag(&args, "--permission-mode"), Some("dontAsk"));
    assert_eq!(flag(&args, "--max-turns"), Some("2"));
    assert_eq!(flag(&args, "--system-prompt"), Some("flag prompt"));
    assert!(
        flag(&args, "--mcp-config").is_some_and(|p| p != mcp_path),
        "a private copy"
    );
    assert!(flag(&args, "--json-schema").unwrap().contains("integer"));

    // The environment's model is the default an agent overrides.
    let mut env = env;
    env.set_env("AGENT_ORCHESTRATOR_MODEL", "env-model");
    assert_eq!(
        env.run("ao-new", &["e1", "--agent", "w"], "x", "plain")
            .code,
        Some(0)
    );
    assert_eq!(flag(&argv(&env, 3), "--model"), Some("project-model"));
    assert_eq!(env.run("ao-new", &["e2"], "x", "plain").code, Some(0));
    assert_eq!(flag(&argv(&env, 4), "--model"), Some("env-model"));
}

#[tokio::test]
async fn the_agents_dir_comes_first() {
    let env = Project::with_server();
    folder_agent(
        &project_folders(&env),
        "a",
        &json!({"name": "a", "model": "project"}),
        None,
        None,
    );
    let extra = env.scratch().join("shared-agents");
    folder_agent(
        &extra,
        "a",
        &json!({"name": "a", "model": "shared"}),
        None,
        None,
    );
    let extra = extra.to_str().unwrap();
    let out = env.run(
        "ao-new",
        &["x1", "--agent", "a", "--agents-dir", extra],
        "x",
        "plain",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(flag(&argv(&env, 0), "--model"), Some("shared"));
    let mut env = env;
    env.set_env("AGENT_ORCHESTRATOR_AGENTS_DIR", extra);
    assert_eq!(
        env.run("ao-new", &["x2", "--agent", "a"], "x", "plain")
            .code,
        Some(0)
    );
    assert_eq!(flag(&argv(&env, 1), "--model"), Some("shared"));
}

#[tokio::test]
async fn a_resume_finds_the_agent_where_the_session_found_it() {
    let env = Project::with_server();
    let shared = env.scratch().join("shared-agents");
    folder_agent(
        &shared,
        "reviewer",
        &json!({"name": "reviewer", "model": "shared"}),
        None,
        None,
    );
    let out = env.run(
        "ao-new",
        &[
            "rev",
            "--agent",
            "reviewer",
            "--agents-dir",
            shared.to_str().unwrap(),
        ],
        "review",
        "plain",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // ao-resume without --agents-dir runs the same agent from the same folder.
    let out = env.run("ao-resume", &["rev"], "again", "plain");
    assert_eq!(out.ok(), "fake answer to: again");
    assert_eq!(flag(&argv(&env, 1), "--model"), Some("shared"));
    assert_eq!(env.meta("rev")["agents_dir"], shared.to_str().unwrap());
    // The folder moved: one line that says to pass --agents-dir again.
    let moved = env.scratch().join("moved-agents");
    std::fs::rename(&shared, &moved).unwrap();
    let out = env.run("ao-resume", &["rev"], "more", "plain");
    let line = out.fails(2);
    assert!(
        line.contains("agent 'reviewer'")
            && line.contains(shared.to_str().unwrap())
            && line.contains("--agents-dir"),
        "{line}"
    );
    // Given again, the folder wins, and is remembered.
    let out = env.run(
        "ao-resume",
        &["rev", "--agents-dir", moved.to_str().unwrap()],
        "more",
        "plain",
    );
    assert_eq!(out.ok(), "fake answer to: more");
    assert_eq!(env.meta("rev")["agents_dir"], moved.to_str().unwrap());
    // An agent of the project's own folders records none.
    folder_agent(
        &project_folders(&env),
        "local",
        &json!({"name": "local"}),
        None,
        None,
    );
    env.run("ao-new", &["loc", "--agent", "local"], "x", "plain")
        .ok();
    assert!(env.meta("loc").get("agents_dir").is_none());
}

/// Runs `ao-new NAME args` and asserts the refusal: exit 2, one line
/// containing every needle, nothing spawned and nothing written.
#[track_caller]
fn refused(env: &Project, args: &[&str], needles: &[&str]) -> Output {
    let mut all = vec!["bad"];
    all.extend_from_slice(args);
    let out = env.run("ao-new", &all, "task", "plain");
    let line = out.fails(2);
    for needle in needles {
        assert!(line.contains(needle), "{args:?}: {needle:?} not in {line}");
    }
    assert!(env.fake_log().is_empty(), "{args:?}: the CLI was spawned");
    assert!(
        is_empty_dir(&env.sessions_dir()),
        "{args:?}: something was written"
    );
    out
}

#[tokio::test]
async fn bad_agents_and_flags_are_refused_before_anything_happens() {
    let env = Project::with_server();
    let folders = project_folders(&env);
    folder_agent(
        &folders,
        "good",
        &json!({"name": "good", "description": "fine"}),
        None,
        None,
    );
    folder_agent(
        &folders,
        "off",
        &json!({"name": "off", "status": "inactive"}),
        None,
        None,
    );
    let dir = folders.join("broken");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(
        dir.join("agent.json"),
        "{\n  \"name\": \"broken\",\n  \"model\": \n}",
    )
    .unwrap();
    folder_agent(
        &folders,
        "nomcp",
        &json!({"name": "nomcp"}),
        None,
        Some(r#"{"servers": {}}"#),
    );
    folder_agent(
        &folders,
        "badmode",
        &json!({"name": "badmode", "permission_mode": "yolo"}),
        None,
        None,
    );
    folder_agent(
        &folders,
        "badturns",
        &json!({"name": "badturns", "max_turns": -1}),
        None,
        None,
    );
    folder_agent(
        &folders,
        "badschema",
        &json!({"name": "badschema", "output_schema": "string"}),
        None,
        None,
    );
    subagent(
        &project_subagents(&env),
        "yaml",
        "---\nname: yaml\ndescription: [oops\n---\nbody\n",
    );
    subagent(
        &project_subagents(&env),
        "good",
        "---\nname: good\ndescription: twin\n---\n",
    );

    refused(
        &env,
        &["--agent", "ghost"],
        &["unknown agent 'ghost'", "the agents are: off"],
    );
    refused(&env, &["--agent", "off"], &["inactive", "off/agent.json"]);
    refused(&env, &["--agent", "broken"], &["broken/agent.json:4"]);
    refused(
        &env,
        &["--agent", "yaml"],
        &["yaml.md:3", "malformed front matter"],
    );
    refused(
        &env,
        &["--agent", "nomcp"],
        &["agent.mcp.json", "mcpServers"],
    );
    refused(
        &env,
        &["--agent", "badmode"],
        &["agent.json:3", "unknown permission mode 'yolo'"],
    );
    refused(
        &env,
        &["--agent", "badturns"],
        &["agent.json:3", "max_turns must be a positive integer"],
    );
    refused(
        &env,
        &["--agent", "badschema"],
        &["output schema must be a JSON object"],
    );
    refused(
        &env,
        &["--agent", "good"],
        &["defined twice", "good/agent.json", "good.md"],
    );
    refused(
        &env,
        &["--agent", "../etc"],
        &["agent name", "letters, digits"],
    );
    refused(
        &env,
        &["--permission-mode", "yolo"],
        &["unknown permission mode 'yolo'"],
    );
    refused(&env, &["--max-turns", "0"], &["--max-turns"]);
    refused(&env, &["--max-turns", "x"], &["--max-turns"]);
    let schema = env.scratch().join("schema.json");
    std::fs::write(&schema, "{not json").unwrap();
    refused(
        &env,
        &["--output-schema", schema.to_str().unwrap()],
        &["schema.json:1", "not valid JSON"],
    );
    std::fs::write(&schema, "[1, 2]").unwrap();
    refused(
        &env,
        &["--output-schema", schema.to_str().unwrap()],
        &["must be a JSON object"],
    );
    let mcp = env.scratch().join("mcp.json");
    std::fs::write(&mcp, "{}").unwrap();
    refused(
        &env,
        &["--mcp-config", mcp.to_str().unwrap()],
        &["mcp.json", "mcpServers"],
    );
    refused(
        &env,
        &["--system-prompt-file", "/nonexistent/p.md"],
        &["/nonexistent/p.md"],
    );
}

#[tokio::test]
async fn a_run_that_hits_its_turn_limit_ends_as_an_error_with_the_clis_message() {
    let env = Project::with_server();
    folder_agent(
        &project_folders(&env),
        "short",
        &json!({"name": "short", "max_turns": 1}),
        None,
        None,
    );
    let out = env.run("ao-new", &["t", "--agent", "short"], "work", "tools:3");
    let line = out.fails(1);
    assert!(
        line.contains("Reached maximum number of turns (1)"),
        "{line}"
    );
    let events = env.events("t").await;
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "run_completed");
    assert_eq!(end["reason"], "error");
    assert!(
        end["error"]
            .as_str()
            .unwrap()
            .contains("maximum number of turns")
    );
}

#[tokio::test]
async fn ao_list_agents_prints_both_formats_as_the_original_did() {
    let env = Project::with_server();
    let out = env.ao("ao-list-agents", &[], None);
    assert_eq!(out.ok(), "No agent definitions found");
    folder_agent(
        &project_folders(&env),
        "alpha",
        &json!({"name": "alpha", "description": "First agent"}),
        None,
        None,
    );
    subagent(
        &project_subagents(&env),
        "beta",
        "---\nname: beta\ndescription: Second agent\n---\n",
    );
    subagent(
        &env.home().join(".claude/agents"),
        "gamma",
        "---\nname: gamma\ndescription: Third\nstatus: inactive\n---\n",
    );
    subagent(&project_subagents(&env), "broken", "no front matter\n");
    let out = env.ao("ao-list-agents", &[], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "alpha:\nFirst agent\n\n---\n\nbeta:\nSecond agent\n\n---\n\ngamma (inactive):\nThird\n"
    );
    assert_eq!(out.stderr_lines().len(), 1, "{out:?}");
    assert!(
        out.stderr.contains("broken.md:1: no front matter"),
        "{out:?}"
    );

    let out = env.ao("ao-list-agents", &["--json"], None);
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    let agents = report["agents"].as_array().unwrap();
    assert_eq!(agents.len(), 3);
    assert_eq!(agents[0]["format"], "folder");
    assert_eq!(agents[0]["level"], "project");
    assert!(
        agents[0]["file"]
            .as_str()
            .unwrap()
            .ends_with("alpha/agent.json")
    );
    assert_eq!(agents[1]["format"], "subagent");
    assert_eq!(agents[2]["active"], false);
    assert_eq!(agents[2]["level"], "user");
    assert_eq!(report["problems"].as_array().unwrap().len(), 1);
    assert_eq!(report["searched"].as_array().unwrap().len(), 4);

    let out = env.ao("ao-show-config", &[], None);
    let last = out
        .ok()
        .lines()
        .find(|l| l.starts_with("agent_folders = "))
        .unwrap()
        .to_owned();
    assert!(
        last.contains(".agent-orchestrator/agents (NAME/agent.json)"),
        "{last}"
    );
    assert!(last.contains(".claude/agents (NAME.md)"), "{last}");
}

#[tokio::test]
async fn the_shipped_examples_load() {
    let env = Project::with_server();
    let examples = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/agents");
    std::fs::create_dir_all(project_subagents(&env)).unwrap();
    std::fs::copy(
        examples.join("summarizer.md"),
        project_subagents(&env).join("summarizer.md"),
    )
    .unwrap();
    let out = env.ao(
        "ao-list-agents",
        &["--json", "--agents-dir", examples.to_str().unwrap()],
        None,
    );
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    let names: Vec<&str> = report["agents"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["reviewer", "summarizer"]);
    assert!(report["problems"].as_array().unwrap().is_empty());
    let out = env.run(
        "ao-new",
        &[
            "rev",
            "--agent",
            "reviewer",
            "--agents-dir",
            examples.to_str().unwrap(),
        ],
        "review",
        "plain",
    );
    let doc: Value = serde_json::from_str(out.ok()).unwrap();
    assert!(
        doc["verdict"].is_string() && doc["findings"].is_array(),
        "{doc}"
    );
}
