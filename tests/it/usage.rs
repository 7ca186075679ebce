//! What runs cost: figures from the CLI's result line reach `run_completed`,
//! the session's totals, `GET /usage` and `ao-usage`; bad figures never fail
//! a run; a database of the previous release migrates and `ao-sync --all`
//! fills in the costs of its old runs; the real CLI's own cost is recorded.

use std::path::Path;

use serde_json::{Value, json};

use crate::support::http::url_encode;
use crate::support::real_claude::RealClaude;
use crate::support::{Output, Project, Running, SessionManager};

/// Runs `ao-new`/`ao-resume NAME` with the fake's result line carrying `figures`.
fn run_costing(
    env: &Project,
    program: &str,
    name: &str,
    figures: &Value,
    scenario: &str,
) -> Output {
    let mut cmd = env.command(program);
    cmd.arg(name)
        .env("FAKE_CLAUDE_SCENARIO", scenario)
        .env("FAKE_CLAUDE_RESULT", figures.to_string());
    Running::start(cmd, Some("do the thing")).wait()
}

fn figures(cost: f64, input: u64, output: u64, turns: u64) -> Value {
    json!({
        "total_cost_usd": cost,
        "num_turns": turns,
        "duration_ms": 1500,
        "duration_api_ms": 900,
        "usage": {"input_tokens": input, "output_tokens": output,
                  "cache_creation_input_tokens": 3, "cache_read_input_tokens": 4},
        "modelUsage": {"claude-test": {"inputTokens": input, "outputTokens": output, "costUSD": cost}},
    })
}

#[tokio::test]
async fn a_runs_figures_reach_the_event_the_totals_usage_and_ao_usage() {
    let env = Project::with_server();
    let out = run_costing(&env, "ao-new", "a", &figures(0.25, 100, 40, 3), "tools:1");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("a").await;
    let end = events.last().unwrap();
    assert_eq!(end["event_type"], "run_completed");
    assert_eq!(end["cost_usd"], 0.25);
    assert_eq!(end["num_turns"], 3);
    assert_eq!(end["duration_ms"], 1500);
    assert_eq!(end["duration_api_ms"], 900);
    assert_eq!(
        end["usage"],
        json!({"input_tokens": 100, "output_tokens": 40, "cache_creation_input_tokens": 3, "cache_read_input_tokens": 4})
    );
    assert_eq!(end["model_usage"]["claude-test"]["costUSD"], 0.25);

    // A second run adds up. The CLI (2.1.329) reports the conversation's
    // cost and per-model figures as sums; the run's own are 0.5 and 10/4.
    let mut second = figures(0.75, 10, 4, 1);
    second["modelUsage"] =
        json!({"claude-test": {"inputTokens": 110, "outputTokens": 44, "costUSD": 0.75}});
    let out = run_costing(&env, "ao-resume", "a", &second, "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("a").await;
    let end = events.last().unwrap();
    assert_eq!(end["cost_usd"], 0.5);
    assert_eq!(
        end["model_usage"],
        json!({"claude-test": {"inputTokens": 10, "outputTokens": 4, "costUSD": 0.5}})
    );
    let session = env.session("a").await.unwrap();
    assert_eq!(session.num_runs, 2);
    assert_eq!(session.cost_usd, Some(0.75));
    assert_eq!(session.usage.input_tokens, 110);
    assert_eq!(session.usage.output_tokens, 44);
    assert_eq!(session.usage.cache_creation_input_tokens, 6);
    assert_eq!(session.usage.cache_read_input_tokens, 8);
    let last = session.last_run.unwrap();
    assert_eq!(
        (last.reason.as_deref(), last.exit_code, last.duration_ms),
        (Some("completed"), Some(0), Some(1500))
    );

    // Another session of the project, another agent-less one elsewhere.
    let out = run_costing(&env, "ao-new", "b", &figures(1.0, 1, 1, 1), "plain");
    assert_eq!(out.code, Some(0));
    let other = Project::new(env.url());
    let out = run_costing(&other, "ao-new", "c", &figures(2.0, 5, 5, 1), "plain");
    assert_eq!(out.code, Some(0));

    let (status, usage) = env.http().get("/usage?group_by=project").await;
    assert_eq!(status, 200, "{usage}");
    assert_eq!(usage["group_by"], "project");
    let groups = usage["groups"].as_array().unwrap();
    assert_eq!(groups.len(), 2);
    assert_eq!(groups[0]["key"], other.dir_text(), "most expensive first");
    assert_eq!(groups[1]["key"], env.dir_text());
    assert_eq!(groups[1]["runs"], 3);
    assert_eq!(groups[1]["cost_usd"], 1.75);
    assert_eq!(groups[1]["input_tokens"], 111);
    assert_eq!(usage["total"]["runs"], 4);
    assert_eq!(usage["total"]["cost_usd"], 3.75);
    let (_, by_session) = env
        .http()
        .get(&format!(
            "/usage?group_by=session&project_dir={}",
            url_encode(&env.dir_text())
        ))
        .await;
    let names: Vec<&str> = by_session["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| g["session_name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["b", "a"]);
    let (_, by_day) = env.http().get("/usage?group_by=day").await;
    let today = chrono::Utc::now().format("%Y-%m-%d").to_string();
    assert_eq!(by_day["groups"][0]["key"], today);
    let (_, future) = env
        .http()
        .get("/usage?group_by=agent&since=2999-01-01T00:00:00Z")
        .await;
    assert_eq!(future["total"]["runs"], 0);
    for bad in ["/usage?group_by=color", "/usage?since=yesterday"] {
        let (status, body) = env.http().get(bad).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }

    // ao-usage: the same figures, as a table with a total line, and as JSON.
    let out = env.ao("ao-usage", &["--by", "session", "--project"], None);
    let text = out.ok();
    let lines: Vec<&str> = text.lines().collect();
    assert!(lines[0].starts_with("SESSION"), "{text}");
    assert!(
        lines[1].starts_with("b (") && lines[1].contains("$1.0000"),
        "{text}"
    );
    assert!(
        lines[3].starts_with("TOTAL") && lines[3].contains("$1.7500"),
        "{text}"
    );
    let out = env.ao("ao-usage", &["--json", "--since", "7d"], None);
    let report: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(report["total"]["cost_usd"], 3.75);
    assert_eq!(report["source"], "api");
    let out = env.ao("ao-usage", &["--since", "last tuesday"], None);
    assert!(out.fails(2).contains("neither a span"), "{out:?}");

    // ao-status and ao-list-sessions carry the totals.
    let status = env.status_json("a");
    assert_eq!(
        (status["num_runs"].as_u64(), status["cost_usd"].as_f64()),
        (Some(2), Some(0.75))
    );
    assert_eq!(status["last_run"]["reason"], "completed");
    let out = env.ao("ao-list-sessions", &["--json", "--project"], None);
    let list: Value = serde_json::from_str(out.ok()).unwrap();
    assert_eq!(list["sessions"][1]["usage"]["input_tokens"], 110);
}

#[tokio::test]
async fn bad_figures_never_fail_a_run_and_a_bad_post_names_the_field() {
    let env = Project::with_server();
    let broken = json!({"total_cost_usd": -3, "num_turns": "many", "duration_ms": null,
        "usage": {"input_tokens": "x", "output_tokens": 2}, "modelUsage": "nope"});
    let out = run_costing(&env, "ao-new", "odd", &broken, "plain");
    assert_eq!(out.ok(), "fake answer to: do the thing");
    let events = env.events("odd").await;
    let end = events.last().unwrap();
    assert_eq!(end["reason"], "completed");
    for absent in ["cost_usd", "num_turns", "usage", "model_usage"] {
        assert!(end.get(absent).is_none(), "{absent}: {end}");
    }
    let session = env.session("odd").await.unwrap();
    assert_eq!((session.num_runs, session.cost_usd), (1, None));

    let http = env.http();
    let id = session.session_id;
    let end = |extra: Value| {
        let mut e = json!({"event_type": "run_completed", "session_id": id, "session_name": "odd",
            "timestamp": "2026-01-01T00:00:00Z", "reason": "completed"});
        for (k, v) in extra.as_object().unwrap() {
            e[k] = v.clone();
        }
        e
    };
    for (extra, field) in [
        (json!({"cost_usd": "cheap"}), "cost_usd"),
        (
            json!({"usage": {"input_tokens": -1, "output_tokens": 1}}),
            "usage.input_tokens",
        ),
        (json!({"num_turns": 1.5}), "num_turns"),
        (json!({"cost_usd": -0.5}), "cost_usd"),
    ] {
        let (status, body) = http
            .post(&format!("/sessions/{id}/events"), end(extra.clone()))
            .await;
        assert_eq!(status, 422, "{extra}: {body}");
        assert!(
            body["detail"].as_str().unwrap().contains(field),
            "{extra}: {body}"
        );
    }
}

#[tokio::test]
async fn ao_usage_adds_up_the_backups_when_the_session_manager_is_down() {
    let env = Project::offline();
    for (name, cost) in [("x", 0.125), ("y", 0.5)] {
        let out = run_costing(&env, "ao-new", name, &figures(cost, 10, 5, 2), "plain");
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let out = env.ao("ao-usage", &["--json"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stderr_lines().len(), 1, "one warning: {out:?}");
    let report: Value = serde_json::from_str(out.stdout.trim()).unwrap();
    assert_eq!(report["source"], "backup");
    assert_eq!(report["total"]["runs"], 2);
    assert_eq!(report["total"]["cost_usd"], 0.625);
    assert_eq!(report["groups"][0]["key"], env.dir_text());
    let out = env.ao("ao-usage", &["--by", "session"], None);
    assert!(out.stdout.contains("y ("), "{out:?}");
    let status = {
        let out = env.ao("ao-status", &["y", "--json"], None);
        serde_json::from_str::<Value>(out.stdout.trim()).unwrap()
    };
    assert_eq!(status["cost_usd"], 0.5);
}

#[tokio::test]
async fn a_database_of_the_previous_release_migrates_and_sync_fills_in_its_costs() {
    let old = crate::support::fixtures::copy_release("release-0.1.0");
    let version = |db: &Path| -> i64 {
        rusqlite::Connection::open(db)
            .unwrap()
            .query_row("PRAGMA user_version", [], |r| r.get(0))
            .unwrap()
    };
    assert_eq!(version(&old.db), 2, "the fixture is the previous release's");
    // SQLite only: the fixture is a SQLite file of an older release.
    let mut sm = SessionManager::spawn_sqlite(&old.db, &[], None).unwrap();
    let http = sm.http();
    let (_, list) = http.get("/sessions").await;
    let sessions = list["sessions"].as_array().unwrap().clone();
    assert_eq!(sessions.len(), 3, "every session kept");
    let alpha = sessions
        .iter()
        .find(|s| s["session_name"] == "alpha")
        .unwrap();
    assert_eq!(alpha["num_runs"], 2, "old runs are counted");
    assert_eq!(
        alpha["cost_usd"],
        Value::Null,
        "their costs are not known yet"
    );
    assert_eq!(alpha["last_run"]["reason"], "completed");
    for key in ["worktree", "branch", "parent_session_id"] {
        assert_eq!(
            alpha[key],
            Value::Null,
            "{key}: a new column, empty for old sessions"
        );
    }
    assert_eq!(
        version(&old.db),
        agent_orchestrator::server::SCHEMA_VERSION,
        "migrated to this build's schema"
    );
    let (_, usage) = http.get("/usage").await;
    assert_eq!(usage["total"]["runs"], 4);
    assert_eq!(usage["total"]["cost_usd"], 0.0);

    // ao-sync --all fills in the costs from the backups, adding no event.
    let id = alpha["session_id"].as_str().unwrap().to_owned();
    let before = http.events(&id).await.len();
    let mut project = Project::new(&sm.url);
    project.set_env(
        "AGENT_ORCHESTRATOR_SESSIONS_DIR",
        old.sessions.to_str().unwrap(),
    );
    let out = project.ao("ao-sync", &["--all"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(
        out.stdout
            .contains("filled in or corrected the figures of 2 runs"),
        "{out:?}"
    );
    assert!(out.stdout.contains("added 0 events"), "{out:?}");
    assert_eq!(http.events(&id).await.len(), before, "no event twice");
    let (_, session) = http.get(&format!("/sessions/{id}")).await;
    let cost = session["session"]["cost_usd"].as_f64().unwrap();
    // The old fake charged 0.000188 per turn: 3 turns, then 2.
    assert!((cost - 0.000188 * 5.0).abs() < 1e-9, "{session}");
    assert_eq!(session["session"]["usage"]["input_tokens"], 60);
    let (_, usage) = http.get("/usage?group_by=session").await;
    assert_eq!(usage["total"]["runs"], 4);
    assert!(usage["total"]["cost_usd"].as_f64().unwrap() > cost);
    let out = project.ao("ao-sync", &["--all"], None);
    assert!(
        !out.stdout.contains("filled"),
        "a second sync fills nothing: {out:?}"
    );

    // The migrated file reopens as the current version.
    sm.stop();
    assert_eq!(version(&old.db), agent_orchestrator::server::SCHEMA_VERSION);
    sm.restart();
    let (_, again) = sm.http().get(&format!("/sessions/{id}")).await;
    assert_eq!(again["session"]["cost_usd"].as_f64(), Some(cost));
}

#[tokio::test]
async fn a_real_run_records_the_cost_the_cli_computed() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    let out = env.ao("ao-new", &["priced"], Some("Please USE_TOOL now"));
    assert_eq!(out.code, Some(0), "{out:?}");
    let result = env
        .backup_lines("priced")
        .into_iter()
        .find(|l| l["type"] == "result")
        .unwrap();
    let computed = result["total_cost_usd"].as_f64().expect("the CLI's cost");
    assert!(computed > 0.0);
    let events = env.events("priced").await;
    let end = events.last().unwrap();
    assert_eq!(end["cost_usd"].as_f64(), Some(computed));
    assert_eq!(end["num_turns"], result["num_turns"]);
    assert_eq!(
        end["usage"]["input_tokens"],
        result["usage"]["input_tokens"]
    );
    // Per model figures came with the CLI's modelUsage (newer than 1.0.100).
    assert_eq!(end["model_usage"], result["modelUsage"]);
    let session = env.session("priced").await.unwrap();
    assert_eq!(session.cost_usd, Some(computed));
}

#[tokio::test]
async fn a_real_resumed_conversation_is_charged_run_by_run() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut env = Project::with_server();
    env.use_real_claude(&claude, mock.base_url());
    for (program, prompt) in [
        ("ao-new", "hello"),
        ("ao-resume", "again"),
        ("ao-resume", "again"),
    ] {
        let out = env.ao(program, &["charged"], Some(prompt));
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    let reported: Vec<f64> = env
        .backup_lines("charged")
        .iter()
        .filter(|l| l["type"] == "result")
        .map(|l| l["total_cost_usd"].as_f64().unwrap())
        .collect();
    let events = env.events("charged").await;
    let ends: Vec<&Value> = events
        .iter()
        .filter(|e| e["event_type"] == "run_completed")
        .collect();
    let own: Vec<(f64, u64)> = ends
        .iter()
        .map(|e| {
            (
                e["cost_usd"].as_f64().unwrap(),
                e["num_turns"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(own.len(), 3);
    // The two resumes did the same work: each is charged the same, whatever
    // the release reports (the run's own figures, or sums so far).
    assert!(
        (own[1].0 - own[2].0).abs() < 1e-12,
        "{own:?} (reported {reported:?})"
    );
    assert_eq!(own[1].1, own[2].1, "turns: {own:?}");
    for ((cost, _), reported) in own.iter().zip(&reported) {
        assert!(
            *cost > 0.0 && *cost <= reported + 1e-12,
            "{own:?} {reported:?}"
        );
    }
    let total: f64 = own.iter().map(|(c, _)| c).sum();
    let session = env.session("charged").await.unwrap();
    assert!(
        (session.cost_usd.unwrap() - total).abs() < 1e-12,
        "{session:?}"
    );
}

#[tokio::test]
async fn costs_are_written_without_float_noise() {
    let env = Project::with_server();
    let http = env.http();
    http.create("noisy-1", "noisy", Some(&env.dir_text())).await;
    // 0.1 + 0.2 is 0.30000000000000004 in binary floating point.
    assert_ne!(0.1_f64 + 0.2, 0.3);
    for cost in [0.1, 0.2] {
        let mut end = crate::support::http::event("noisy-1", "run_completed");
        end["session_name"] = "noisy".into();
        end["reason"] = "completed".into();
        end["exit_code"] = 0.into();
        end["cost_usd"] = cost.into();
        http.event("noisy-1", end).await;
    }
    let three = json!(0.3);
    let (_, one) = http.get("/sessions/noisy-1").await;
    assert_eq!(one["session"]["cost_usd"], three, "{one}");
    let (_, all) = http.get("/sessions").await;
    assert_eq!(all["sessions"][0]["cost_usd"], three, "{all}");
    let (_, usage) = http.get("/usage?group_by=session").await;
    assert_eq!(usage["total"]["cost_usd"], three, "{usage}");
    assert_eq!(usage["groups"][0]["cost_usd"], three, "{usage}");
    let parse = |out: Output| -> Value { serde_json::from_str(out.ok()).unwrap() };
    let status = parse(env.ao("ao-status", &["noisy", "--json"], None));
    assert_eq!(status["cost_usd"], three, "{status}");
    let list = parse(env.ao("ao-list-sessions", &["--json"], None));
    assert_eq!(list["sessions"][0]["cost_usd"], three, "{list}");
    let report = parse(env.ao("ao-usage", &["--json"], None));
    assert_eq!(report["total"]["cost_usd"], three, "{report}");
}
