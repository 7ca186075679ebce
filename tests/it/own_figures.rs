//! Each run's figures are its own: a resumed conversation whose CLI reports
//! sums over the conversation (cost and per-model figures from 2.1.277 on,
//! turns before 2.0.30) is recorded run by run, in the API, `ao-usage` (from
//! the API or from the backups) and `ao-status`; and `ao-sync --all`
//! corrects what the previous release stored.

use serde_json::Value;

use crate::support::{Project, SessionManager};

/// Three runs of one conversation: a new one and two resumes.
fn three_runs(env: &Project, name: &str) {
    for (program, prompt) in [
        ("ao-new", "first"),
        ("ao-resume", "again"),
        ("ao-resume", "and again"),
    ] {
        let out = env.run(program, &[name], prompt, "plain");
        assert_eq!(out.code, Some(0), "{out:?}");
    }
}

fn json(out: &crate::support::Output) -> Value {
    assert_eq!(out.code, Some(0), "{out:?}");
    serde_json::from_str(out.stdout.trim()).unwrap()
}

fn run_ends(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "run_completed")
        .collect()
}

#[tokio::test]
async fn resumed_runs_cost_their_own_not_the_conversations_sum() {
    let env = Project::with_server();
    three_runs(&env, "w");
    // What the CLI (the fake, as 2.1.329) reported: sums over the conversation.
    let reported: Vec<f64> = env
        .backup_lines("w")
        .iter()
        .filter(|l| l["type"] == "result")
        .map(|l| l["total_cost_usd"].as_f64().unwrap())
        .collect();
    assert_eq!(reported, [0.000188, 0.000376, 0.0005639999999999999]);
    let events = env.events("w").await;
    let ends = run_ends(&events);
    let costs: Vec<f64> = ends
        .iter()
        .map(|e| e["cost_usd"].as_f64().unwrap())
        .collect();
    assert_eq!(costs, [0.000188, 0.000188, 0.000188]);
    for end in &ends {
        assert_eq!(end["model_usage"]["claude-fake-1"]["inputTokens"], 12);
        assert_eq!(end["model_usage"]["claude-fake-1"]["costUSD"], 0.000188);
        assert_eq!(end["usage"]["input_tokens"], 12);
    }
    let session = env.session("w").await.unwrap();
    assert_eq!(session.cost_usd, Some(0.000564), "not 0.001128");
    let usage = json(&env.ao("ao-usage", &["--json"], None));
    assert_eq!(usage["total"]["cost_usd"], 0.000564);
    assert_eq!(usage["total"]["runs"], 3);
    let status = json(&env.ao("ao-status", &["w", "--json"], None));
    assert_eq!(status["cost_usd"], 0.000564);
}

#[tokio::test]
async fn the_backups_add_up_each_runs_own_when_the_session_manager_is_down() {
    let env = Project::offline();
    three_runs(&env, "w");
    let out = env.ao("ao-usage", &["--json"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    let usage: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(usage["source"], "backup");
    assert_eq!(usage["total"]["cost_usd"], 0.000564);
    let out = env.ao("ao-status", &["w", "--json"], None);
    let status: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(status["cost_usd"], 0.000564, "{out:?}");
}

#[tokio::test]
async fn an_older_release_counts_turns_over_the_conversation_and_costs_per_run() {
    let mut env = Project::with_server();
    env.set_env("FAKE_CLAUDE_VERSION", "1.0.100");
    env.set_env("FAKE_CLAUDE_NEW_ID_ON_RESUME", "1");
    for (program, scenario) in [("ao-new", "tools:2"), ("ao-resume", "plain")] {
        let out = env.run(program, &["w"], "go", scenario);
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let turns: Vec<u64> = env
        .backup_lines("w")
        .iter()
        .filter(|l| l["type"] == "result")
        .map(|l| l["num_turns"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [3, 4], "as reported");
    let events = env.events("w").await;
    let ends = run_ends(&events);
    let own: Vec<(u64, f64)> = ends
        .iter()
        .map(|e| {
            (
                e["num_turns"].as_u64().unwrap(),
                e["cost_usd"].as_f64().unwrap(),
            )
        })
        .collect();
    assert_eq!(own, [(3, 0.000564), (1, 0.000188)]);
}

#[tokio::test]
async fn sync_corrects_the_figures_the_previous_release_stored() {
    let old = crate::support::fixtures::copy_release("release-schema-4");
    // SQLite only: the fixture is a SQLite file of an older release.
    let sm = SessionManager::spawn_sqlite(&old.db, &[], None).unwrap();
    let http = sm.http();
    let session = |name: &'static str| {
        let http = http.clone();
        async move {
            let (_, list) = http.get(&format!("/sessions?name={name}")).await;
            list["sessions"][0].clone()
        }
    };
    let delta = session("delta").await;
    let id = delta["session_id"].as_str().unwrap().to_owned();
    assert_eq!(delta["num_runs"], 3);
    assert_eq!(
        delta["cost_usd"], 0.001692,
        "the previous release added up the sums"
    );
    let events_before = http.events(&id).await.len();
    let mut project = Project::new(&sm.url);
    project.set_env(
        "AGENT_ORCHESTRATOR_SESSIONS_DIR",
        old.sessions.to_str().unwrap(),
    );
    let out = project.ao("ao-sync", &["--all"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout.contains("delta (session-id: ") && out.stdout.contains("added 0 events"),
        "{out:?}"
    );
    assert!(
        out.stdout.contains("corrected the figures of 2 runs"),
        "the first run was right: {out:?}"
    );
    let delta = session("delta").await;
    assert_eq!(delta["cost_usd"], 0.000752);
    assert_eq!(delta["num_runs"], 3);
    let events = http.events(&id).await;
    assert_eq!(events.len(), events_before, "no event added");
    let costs: Vec<f64> = run_ends(&events)
        .iter()
        .map(|e| e["cost_usd"].as_f64().unwrap())
        .collect();
    assert_eq!(costs, [0.000376, 0.000188, 0.000188]);
    let epsilon = session("epsilon").await;
    let epsilon_id = epsilon["session_id"].as_str().unwrap().to_owned();
    let turns: Vec<u64> = run_ends(&http.events(&epsilon_id).await)
        .iter()
        .map(|e| e["num_turns"].as_u64().unwrap())
        .collect();
    assert_eq!(turns, [3, 1]);
    let (_, usage) = http.get("/usage").await;
    assert_eq!(usage["total"]["runs"], 5);
    assert_eq!(usage["total"]["cost_usd"], 0.000752 + 0.000752);
    // A second sync finds nothing to correct.
    let out = project.ao("ao-sync", &["--all"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(!out.stdout.contains("corrected"), "{out:?}");
}
