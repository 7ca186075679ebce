//! `ao-list-sessions` and `ao-show-config`.

use serde_json::{Value, json};

use crate::support::{Project, SessionManager};

#[test]
fn no_sessions_found() {
    let p = Project::with_server();
    assert_eq!(
        p.ao("ao-list-sessions", &[], None).ok(),
        "No sessions found"
    );
    let out = p.ao("ao-list-sessions", &["--json"], None);
    let list: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(list, json!({"sessions": [], "source": "api"}));
}

#[test]
fn every_session_newest_first_or_only_this_projects() {
    let sm = SessionManager::start();
    let a = Project::new(&sm.url);
    let b = Project::new(&sm.url);
    let first = a.new_session("first", "1");
    let other = b.new_session("other", "2");
    let last = a.new_session("last", "3");
    let (da, db) = (a.dir_text(), b.dir_text());
    let expected = format!(
        "last (session-id: {last}, project-dir: {da})\n\
         other (session-id: {other}, project-dir: {db})\n\
         first (session-id: {first}, project-dir: {da})"
    );
    assert_eq!(a.ao("ao-list-sessions", &[], None).ok(), expected);
    assert_eq!(
        a.ao("ao-list-sessions", &["--project"], None).ok(),
        format!(
            "last (session-id: {last}, project-dir: {da})\n\
             first (session-id: {first}, project-dir: {da})"
        )
    );
    let out = b.ao("ao-list-sessions", &["--json", "--project"], None);
    let list: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(list["source"], "api");
    let sessions = list["sessions"].as_array().expect("sessions");
    assert_eq!(sessions.len(), 1);
    let s = &sessions[0];
    assert_eq!(s["session_id"], other.as_str());
    assert_eq!(s["session_name"], "other");
    assert_eq!(s["status"], "finished");
    assert_eq!(s["project_dir"], db.as_str());
    for key in ["created_at", "agent_name", "last_resumed_at"] {
        assert!(s.get(key).is_some(), "the API's session object: {key}");
    }
}

#[test]
fn show_config_names_every_setting_and_its_source() {
    // Never contacts the API: a dead address is fine.
    let mut p = Project::new("http://127.0.0.1:9");
    p.set_env("AGENT_ORCHESTRATOR_MODEL", "env-model");
    let out = p.ao("ao-show-config", &["--claude-path", "/opt/claude"], None);
    let dir = p.dir_text();
    let fake = crate::support::bin("ao-fake-claude");
    let text = out.ok().to_owned();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(
        lines,
        [
            "session_manager_url = http://127.0.0.1:9 (env)".to_owned(),
            format!("project_dir = {dir} (default)"),
            format!("sessions_dir = {dir}/.agent-orchestrator/agent-sessions (default)"),
            "claude_path = /opt/claude (flag)".to_owned(),
            "model = env-model (env)".to_owned(),
            "legacy_events = false (default)".to_owned(),
            "autostart = false (env)".to_owned(),
            "agents_dir = (none) (default)".to_owned(),
            "token_set = false (default)".to_owned(),
            "notify_command = (none) (default; ao-session-manager's --notify-command, from AGENT_ORCHESTRATOR_NOTIFY_COMMAND when started from here)".to_owned(),
            "notify_url = (none) (default; ao-session-manager's --notify-url, from AGENT_ORCHESTRATOR_NOTIFY_URL when started from here)".to_owned(),
            "daily_budget_usd = (none) (default; ao-session-manager's --daily-budget-usd, from AGENT_ORCHESTRATOR_DAILY_BUDGET_USD when started from here)".to_owned(),
            "daily_budget_project = (none) (default; ao-session-manager's --daily-budget-project, from AGENT_ORCHESTRATOR_DAILY_BUDGET_PROJECT when started from here)".to_owned(),
            format!(
                "agent_folders = {dir}/.agent-orchestrator/agents (NAME/agent.json), {dir}/.claude/agents (NAME.md), {home}/.config/agent-orchestrator/agents (NAME/agent.json), {home}/.claude/agents (NAME.md) (searched in this order)",
                home = p.home().display()
            ),
            format!(
                "worktrees_dir = {dir}/.agent-orchestrator/worktrees (ao-new --worktree: NAME/ there, on branch ao/NAME)"
            ),
        ]
    );
    let out = p.ao("ao-show-config", &["--json"], None);
    let config: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(
        config["claude_path"],
        json!({"value": fake.to_string_lossy(), "source": "env"})
    );
    assert_eq!(
        config["model"],
        json!({"value": "env-model", "source": "env"})
    );
    assert_eq!(
        config["project_dir"],
        json!({"value": dir, "source": "default"})
    );
    let out = p.ao(
        "ao-show-config",
        &["--json", "--session-manager-url", "http://127.0.0.1:1"],
        None,
    );
    let config: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(
        config["session_manager_url"],
        json!({"value": "http://127.0.0.1:1", "source": "flag"})
    );
    assert_eq!(config.as_object().map(|o| o.len()), Some(16));
    assert_eq!(config["wide_modes"], json!([]), "what we create is private");
    assert_eq!(config["agent_folders"].as_array().map(Vec::len), Some(4));

    // The database's files are checked where --db names them, `sqlite:`
    // prefix or not; a PostgreSQL database has none here.
    let dir = p.scratch().join("team");
    std::fs::create_dir(&dir).unwrap();
    std::fs::set_permissions(&dir, std::os::unix::fs::PermissionsExt::from_mode(0o700)).unwrap();
    let db = dir.join("team.db");
    std::fs::write(&db, "").unwrap();
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o644)).unwrap();
    p.set_env("AGENT_ORCHESTRATOR_DB", &format!("sqlite:{}", db.display()));
    let out = p.ao("ao-show-config", &["--json"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let config: Value = serde_json::from_str(&out.stdout).expect("json");
    assert_eq!(config["wide_modes"][0]["path"], db.to_str().unwrap());
    std::fs::set_permissions(&db, std::os::unix::fs::PermissionsExt::from_mode(0o600)).unwrap();
    p.set_env("AGENT_ORCHESTRATOR_DB", "postgres://ao@db.internal:5432/ao");
    let out = p.ao("ao-show-config", &["--json"], None);
    let config: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(config["wide_modes"], json!([]));
    p.unset_env("AGENT_ORCHESTRATOR_DB");

    // An unusable setting is a usage error with its reason.
    p.set_env("AGENT_ORCHESTRATOR_AUTOSTART", "maybe");
    let line = p.ao("ao-show-config", &[], None).fails(2).to_owned();
    assert!(line.contains("AGENT_ORCHESTRATOR_AUTOSTART"), "{line}");
}
