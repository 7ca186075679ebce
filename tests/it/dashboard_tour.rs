//! The dashboard's whole picture in headless Chromium
//! (tests/browser/tour.mjs): sessions in every state, a run's whole
//! conversation with readable tool calls and what it changed, a run stopped
//! in the middle of a tool call, a tree of sessions, the cost per day,
//! search, a deep link, a worktree branch's diff, the loading state and a
//! phone. The scene is posted through the API as runners post it; its
//! screenshots (1400x900 and 390x844) are the README's.

use std::path::Path;

use chrono::{Duration, SecondsFormat, Utc};
use serde_json::{Value, json};

use crate::dashboard_browser::{Artifacts, Script, browser_or_skip, screenshots_for_docs};
use crate::support::git::{git, repository};
use crate::support::{Http, SessionManager};

/// A session of the scene, posted through the API.
struct Scene {
    http: Http,
}

fn at(days_ago: i64, minutes: i64) -> String {
    (Utc::now() - Duration::days(days_ago) + Duration::minutes(minutes))
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

impl Scene {
    async fn session(&self, id: &str, name: &str, extra: Value) {
        let mut body = json!({"session_id": id, "session_name": name});
        for (k, v) in extra.as_object().unwrap() {
            body[k] = v.clone();
        }
        let (status, answer) = self.http.post("/sessions", body).await;
        assert_eq!(status, 200, "{answer}");
    }

    /// Posts an event of session `id` (`kind` with `fields`) at `when`.
    async fn event(&self, id: &str, kind: &str, when: &str, fields: Value) {
        let mut event = json!({"event_type": kind, "session_id": id, "session_name": "x",
            "timestamp": when, "event_id": uuid::Uuid::new_v4().to_string()});
        for (k, v) in fields.as_object().unwrap() {
            event[k] = v.clone();
        }
        let (status, answer) = self
            .http
            .post(&format!("/sessions/{id}/events"), event)
            .await;
        assert_eq!(status, 200, "{answer}");
    }

    async fn prompt(&self, id: &str, when: &str, text: &str) {
        self.event(id, "run_start", when, json!({})).await;
        self.event(
            id,
            "message",
            when,
            json!({"role": "user", "content": [{"type": "text", "text": text}]}),
        )
        .await;
    }

    async fn says(&self, id: &str, when: &str, text: &str, last: bool) {
        let mut fields = json!({"role": "assistant", "content": [{"type": "text", "text": text}]});
        if !last {
            fields["final"] = false.into();
        }
        self.event(id, "message", when, fields).await;
    }

    async fn tool(
        &self,
        id: &str,
        when: &str,
        call: &str,
        name: &str,
        input: Value,
        output: Option<Value>,
    ) {
        let fields = json!({"tool_name": name, "tool_use_id": call, "tool_input": input});
        self.event(id, "pre_tool", when, fields.clone()).await;
        if let Some(output) = output {
            let mut fields = fields;
            fields["tool_output"] = output;
            self.event(id, "post_tool", when, fields).await;
        }
    }

    async fn end(&self, id: &str, when: &str, reason: &str, cost: Option<f64>) {
        let mut fields = json!({"reason": reason, "exit_code": match reason {
            "completed" => 0, "stopped" => 143, "interrupted" => 130, _ => 1 }});
        if let Some(cost) = cost {
            fields["cost_usd"] = cost.into();
            fields["num_turns"] = 3.into();
            fields["duration_ms"] = 48_000.into();
            fields["usage"] = json!({"input_tokens": 5200, "output_tokens": 830});
        }
        if reason == "error" {
            fields["error"] = "API Error: 529 the model is overloaded; try again later".into();
        }
        self.event(id, "run_completed", when, fields).await;
    }
}

const SHOP: &str = "/home/user/shop";
const DOCS: &str = "/home/user/docs-site";

/// The diff a run that added a health route made.
const ROUTER_DIFF: &str = "diff --git a/src/router.rs b/src/router.rs\nindex 3b18e51..a9c2f0d 100644\n--- a/src/router.rs\n+++ b/src/router.rs\n@@ -10,6 +10,7 @@ pub fn routes() -> Router {\n     Router::new()\n         .route(\"/orders\", get(orders::list))\n+        .route(\"/health\", get(health))\n         .route(\"/orders/{id}\", get(orders::get))\n }\n-// TODO: health check\n+async fn health() -> &'static str { \"ok\" }\n";

/// Sessions in every state, as their runners would have posted them.
async fn build(scene: &Scene, repo: &Path, base: &str) {
    scene
        .session(
            "s-build",
            "build-api",
            json!({"project_dir": SHOP, "agent_name": "builder", "created_at": at(3, 0)}),
        )
        .await;
    let id = "s-build";
    scene
        .prompt(id, &at(3, 0), "Add a /health route to the API and test it")
        .await;
    scene
        .event(id, "message", &at(3, 1), json!({"role": "assistant", "final": false,
            "content": [{"type": "thinking", "text": "The router lives in src/router.rs; a plain text answer is enough."}]}))
        .await;
    scene
        .says(id, &at(3, 1), "I will look at the router first.", false)
        .await;
    scene
        .tool(id, &at(3, 1), "t-read", "Read", json!({"file_path": "/home/user/shop/src/router.rs"}),
            Some(json!({"type": "text", "file": {"filePath": "/home/user/shop/src/router.rs",
                "content": "pub fn routes() -> Router {\n    Router::new()\n        .route(\"/orders\", get(orders::list))\n}\n",
                "numLines": 4, "startLine": 1, "totalLines": 4}})))
        .await;
    scene
        .tool(id, &at(3, 2), "t-edit", "Edit",
            json!({"file_path": "/home/user/shop/src/router.rs", "old_string": "        .route(\"/orders\", get(orders::list))",
                   "new_string": "        .route(\"/orders\", get(orders::list))\n        .route(\"/health\", get(health))"}),
            Some(json!({"filePath": "/home/user/shop/src/router.rs", "structuredPatch": [{"oldStart": 10, "oldLines": 2, "newStart": 10, "newLines": 3,
                "lines": ["     Router::new()", "         .route(\"/orders\", get(orders::list))", "+        .route(\"/health\", get(health))"]}]})))
        .await;
    scene
        .tool(id, &at(3, 3), "t-test", "Bash", json!({"command": "cargo test health", "description": "Run the new test"}),
            Some(json!({"stdout": "running 1 test\ntest health_answers_ok ... ok\n\ntest result: ok. 1 passed",
                "stderr": "warning: unused import: `Json`", "interrupted": false})))
        .await;
    scene
        .event(
            id,
            "changes",
            &at(3, 4),
            json!({"files": [{"path": "src/router.rs", "added": 2, "removed": 1},
            {"path": "tests/health.rs", "added": 9, "removed": 0}], "diff": ROUTER_DIFF}),
        )
        .await;
    scene
        .says(
            id,
            &at(3, 4),
            "Added GET /health, which answers \"ok\"; its test passes.",
            true,
        )
        .await;
    scene.end(id, &at(3, 5), "completed", Some(0.42)).await;
    scene
        .prompt(id, &at(0, -30), "Now document the health route")
        .await;
    scene
        .tool(id, &at(0, -29), "t-write", "Write",
            json!({"file_path": "/home/user/shop/docs/health.md", "content": "# Health\n\n`GET /health` answers `ok` while the API is up.\n"}),
            Some(json!({"type": "create", "filePath": "/home/user/shop/docs/health.md"})))
        .await;
    scene
        .says(id, &at(0, -28), "Documented it in docs/health.md.", true)
        .await;
    scene.end(id, &at(0, -28), "completed", Some(0.18)).await;

    scene
        .session(
            "s-helper",
            "review-api",
            json!({"project_dir": SHOP, "agent_name": "reviewer",
            "parent_session_id": "s-build", "created_at": at(1, 0)}),
        )
        .await;
    scene
        .prompt("s-helper", &at(1, 0), "Review the health route")
        .await;
    scene
        .says("s-helper", &at(1, 1), "It looks right.", true)
        .await;
    scene
        .end("s-helper", &at(1, 2), "completed", Some(0.05))
        .await;
    scene
        .session(
            "s-grand",
            "check-tests",
            json!({"project_dir": SHOP, "parent_session_id": "s-helper", "created_at": at(1, 1)}),
        )
        .await;
    scene
        .prompt("s-grand", &at(1, 1), "Run the tests once more")
        .await;
    scene
        .end("s-grand", &at(1, 3), "completed", Some(0.02))
        .await;

    scene
        .session(
            "s-login",
            "fix-login",
            json!({"project_dir": DOCS, "agent_name": "builder", "created_at": at(2, 0)}),
        )
        .await;
    scene
        .prompt("s-login", &at(2, 0), "Fix the login redirect")
        .await;
    scene.end("s-login", &at(2, 1), "error", Some(0.07)).await;

    scene
        .session(
            "s-long",
            "long-task",
            json!({"project_dir": SHOP, "created_at": at(0, -90)}),
        )
        .await;
    scene
        .prompt("s-long", &at(0, -90), "Build the whole site")
        .await;
    scene
        .tool(
            "s-long",
            &at(0, -89),
            "t-build",
            "Bash",
            json!({"command": "npm run build", "description": "Build the site"}),
            None,
        )
        .await;
    scene
        .end("s-long", &at(0, -80), "stopped", Some(0.11))
        .await;

    scene
        .session(
            "s-flaky",
            "flaky",
            json!({"project_dir": DOCS, "created_at": at(5, 0)}),
        )
        .await;
    scene
        .prompt("s-flaky", &at(5, 0), "Update the changelog")
        .await;
    scene
        .end("s-flaky", &at(5, 3), "interrupted", Some(0.03))
        .await;

    scene
        .session(
            "s-live",
            "watching",
            json!({"project_dir": DOCS, "created_at": at(0, -2)}),
        )
        .await;
    scene.prompt("s-live", &at(0, -2), "Watch the deploy").await;
    scene
        .tool(
            "s-live",
            &at(0, -1),
            "t-watch",
            "Bash",
            json!({"command": "kubectl rollout status deploy/web"}),
            None,
        )
        .await;

    scene
        .session(
            "s-ask",
            "migrate-db",
            json!({"project_dir": SHOP, "agent_name": "builder", "created_at": at(0, -5)}),
        )
        .await;
    scene
        .prompt("s-ask", &at(0, -5), "Add the orders.total column")
        .await;
    scene
        .says("s-ask", &at(0, -4), "I will run the migration.", false)
        .await;
    scene
        .event("s-ask", "permission_request", &at(0, -4), json!({"request_id": "r-1",
            "kind": "permission", "tool_name": "Bash", "tool_use_id": "t-migrate",
            "tool_input": {"command": "sqlx migrate run", "description": "Apply the migration"},
            "suggestions": [{"type": "addRules", "rules": [{"toolName": "Bash", "ruleContent": "sqlx migrate run"}],
                             "behavior": "allow", "destination": "localSettings"}]}))
        .await;

    let tree = repo.join("wt");
    scene
        .session(
            "s-wt",
            "feature-x",
            json!({"project_dir": repo.to_str().unwrap(), "created_at": at(0, -60),
            "worktree": tree.to_str().unwrap(), "branch": "ao/feature-x"}),
        )
        .await;
    scene.prompt("s-wt", &at(0, -60), "Add a line").await;
    scene
        .event("s-wt", "changes", &at(0, -59), json!({"files": [{"path": "a.txt", "added": 1, "removed": 0}],
            "diff": "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1 +1,2 @@\n one\n+two\n", "base": base}))
        .await;
    scene
        .end("s-wt", &at(0, -58), "completed", Some(0.09))
        .await;
}

#[test]
fn the_dashboard_tour_in_chromium() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let sm = SessionManager::start();
    let scratch = tempfile::tempdir().unwrap();
    let repo = scratch.path().join("webapp");
    std::fs::create_dir(&repo).unwrap();
    repository(&repo, "a.txt", "one\n");
    let base = git(&repo, &["rev-parse", "HEAD"]);
    let tree = repo.join("wt");
    git(
        &repo,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "ao/feature-x",
            tree.to_str().unwrap(),
        ],
    );
    std::fs::write(tree.join("a.txt"), "one\ntwo\n").unwrap();
    git(&tree, &["commit", "-qam", "two"]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(build(&Scene { http: sm.http() }, &repo, &base));

    let work = tempfile::tempdir().unwrap();
    let names = [
        "dashboard-1400x900.png",
        "dashboard-390x844.png",
        "tour-failure.png",
    ];
    let artifacts = Artifacts::new(work.path(), &names);
    let token = std::fs::read_to_string(sm.local_token_file()).unwrap();
    let expect = json!({
        "states": {"build-api": "completed", "review-api": "completed", "check-tests": "completed",
                   "fix-login": "error", "long-task": "stopped", "flaky": "interrupted",
                   "watching": "running", "feature-x": "completed", "migrate-db": "needs_input"},
        "tree": [["review-api", "build-api", 1], ["check-tests", "review-api", 2]],
        "projects": ["shop", "docs-site", "webapp"],
        "agents": ["builder", "reviewer", "(no agent)"],
        "token": token.trim(),
    });
    let mut script = Script::spawn(
        &chromium,
        "tour.mjs",
        &[
            format!("{}/", sm.url).as_ref(),
            work.path().as_os_str(),
            expect.to_string().as_ref(),
        ],
    );
    script.expect("PASS");
    assert_eq!(script.finish(), Some(0), "{}", script.transcript());
    screenshots_for_docs(work.path(), &names[..2]);
    drop(artifacts);
}
