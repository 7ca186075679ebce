//! The API behind the dashboard's conversation view: live-only text as the
//! model writes it and the text so far, the answer apart from narration,
//! search, cost per day and project, and a worktree branch's diff.

use serde_json::{Value, json};

use crate::support::SessionManager;
use crate::support::git::{git, repository};
use crate::support::http::{Http, event};
use crate::support::live::SseClient;

async fn session(http: &Http, id: &str, project: &str) {
    let (status, body) = http
        .post(
            "/sessions",
            json!({"session_id": id, "session_name": format!("n-{id}"), "project_dir": project}),
        )
        .await;
    assert_eq!(status, 200, "{body}");
}

fn delta(text: &str, seq: u64) -> Value {
    json!({"type": "text_delta", "text": text, "message_id": "m1", "index": 0, "seq": seq})
}

fn narration(id: &str, text: &str) -> Value {
    let mut e = event(id, "message");
    e["content"] = json!([{"type": "text", "text": text}]);
    e["final"] = false.into();
    e
}

/// The next message of type `kind` from `feed`.
async fn next_of(feed: &mut SseClient, kind: &str) -> Value {
    loop {
        let (name, message) = feed.next().await.expect("the feed is open");
        if name == kind {
            return message;
        }
    }
}

#[tokio::test]
async fn text_deltas_go_live_only_and_a_late_reader_starts_from_the_text_so_far() {
    let sm = SessionManager::start();
    let http = sm.http();
    session(&http, "s1", "/p").await;
    let mut everything = SseClient::connect(&sm.url).await;
    let mut one = SseClient::connect_to(&sm.url, "/sse?session_id=s1").await;
    for (seq, text) in [(1, "Hel"), (2, "lo, wor")] {
        let (status, body) = http.post("/sessions/s1/live", delta(text, seq)).await;
        assert_eq!((status, body), (200, json!({"ok": true})));
    }
    for feed in [&mut everything, &mut one] {
        let first = next_of(feed, "text_delta").await;
        assert_eq!(
            first,
            json!({"type": "text_delta", "session_id": "s1", "text": "Hel", "message_id": "m1", "index": 0, "seq": 1})
        );
        assert_eq!(next_of(feed, "text_delta").await["text"], "lo, wor");
    }
    let (status, draft) = http.get("/sessions/s1/draft").await;
    assert_eq!(status, 200);
    assert_eq!(
        draft,
        json!({"draft": {"message_id": "m1", "index": 0, "seq": 2, "text": "Hello, wor"}})
    );
    // Nothing of it is stored.
    assert!(http.events("s1").await.is_empty());
    // The message's event ends the draft.
    http.event("s1", narration("s1", "Hello, world")).await;
    assert_eq!(
        http.get("/sessions/s1/draft").await,
        (200, json!({"draft": null}))
    );
    // Bounded, and only for known sessions and known types.
    let (status, _) = http
        .post("/sessions/s1/live", delta(&"x".repeat(64 * 1024 + 1), 3))
        .await;
    assert_eq!(status, 422);
    let (status, _) = http.post("/sessions/nope/live", delta("x", 1)).await;
    assert_eq!(status, 404);
    let (status, _) = http
        .post("/sessions/s1/live", json!({"type": "mystery", "text": "x"}))
        .await;
    assert_eq!(status, 422);
    assert_eq!(http.get("/sessions/nope/draft").await.0, 404);
}

#[tokio::test]
async fn the_result_is_the_answer_never_the_narration() {
    let sm = SessionManager::start();
    let http = sm.http();
    session(&http, "s1", "/p").await;
    http.event("s1", event("s1", "run_start")).await;
    http.event("s1", narration("s1", "Let me look first")).await;
    let mut answer = event("s1", "message");
    answer["content"] = json!([{"type": "text", "text": "The answer"}]);
    http.event("s1", answer).await;
    http.event("s1", narration("s1", "(an afterthought)")).await;
    http.event("s1", event("s1", "run_completed")).await;
    assert_eq!(
        http.get("/sessions/s1/result").await,
        (200, json!({"result": "The answer"}))
    );
    // A stopped run said something but never answered.
    http.event("s1", event("s1", "run_start")).await;
    http.event("s1", narration("s1", "Working on it")).await;
    let mut end = event("s1", "run_completed");
    end["reason"] = "stopped".into();
    http.event("s1", end).await;
    let (status, body) = http.get("/sessions/s1/result").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["detail"].as_str().unwrap().contains("stopped"),
        "{body}"
    );
}

#[tokio::test]
async fn search_finds_prompts_answers_narration_and_tool_input() {
    let sm = SessionManager::start();
    let http = sm.http();
    session(&http, "a", "/alpha").await;
    session(&http, "b", "/beta").await;
    let mut prompt = event("a", "message");
    prompt["role"] = "user".into();
    prompt["content"] = json!([{"type": "text", "text": "Please refactor the parser"}]);
    http.event("a", prompt).await;
    http.event("a", narration("a", "Reading the tokenizer first"))
        .await;
    let mut tool = event("a", "pre_tool");
    tool["tool_input"] = json!({"command": "cargo test --package zebrafish"});
    http.event("a", tool.clone()).await;
    tool["event_type"] = "post_tool".into();
    http.event("a", tool).await;
    let mut answer = event("b", "message");
    answer["content"] = json!([{"type": "text", "text": "The parser is fine"}]);
    http.event("b", answer).await;
    let mut thinking = event("b", "message");
    thinking["content"] = json!([{"type": "thinking", "text": "secret musings"}]);
    thinking["final"] = false.into();
    http.event("b", thinking).await;

    let hits = |q: &str| {
        let http = http.clone();
        let q = q.to_owned();
        async move {
            let (status, body) = http.get(&format!("/search?q={q}")).await;
            assert_eq!(status, 200, "{body}");
            body["hits"].as_array().unwrap().clone()
        }
    };
    let parser = hits("parser").await;
    assert_eq!(parser.len(), 2, "{parser:?}");
    let names: Vec<&str> = parser
        .iter()
        .map(|h| h["session_name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"n-a") && names.contains(&"n-b"));
    let hit = parser.iter().find(|h| h["session_id"] == "a").unwrap();
    assert_eq!(hit["event_type"], "message");
    assert_eq!(hit["role"], "user");
    assert_eq!(hit["snippet"], "Please refactor the \u{2}parser\u{3}");
    assert!(hit["id"].is_i64());
    // Narration, and a tool call once (its input, from pre_tool), by prefix.
    assert_eq!(hits("tokeniz").await[0]["final"], false);
    let tool = hits("zebra").await;
    assert_eq!(tool.len(), 1, "{tool:?}");
    assert_eq!(tool[0]["event_type"], "pre_tool");
    assert!(hits("musings").await.is_empty(), "thinking is not searched");
    // One project; words that must all be there; odd input is words only.
    let (_, only) = http.get("/search?q=parser&project_dir=/beta").await;
    assert_eq!(only["hits"].as_array().unwrap().len(), 1);
    assert_eq!(hits("parser%20fine").await.len(), 1);
    assert_eq!(hits("%22parser%22%20OR").await.len(), 0);
    let (status, body) = http.get("/search?q=%22%20*").await;
    assert_eq!(status, 400, "{body}");
    // A deleted session's events are no longer found.
    http.delete("/sessions/a").await;
    assert_eq!(hits("parser").await.len(), 1);
}

#[tokio::test]
async fn an_old_database_gets_its_events_indexed_when_it_migrates() {
    let old = crate::support::fixtures::copy_release("release-schema-4");
    let sm = SessionManager::spawn_sqlite(&old.db, &[], None).unwrap();
    let (status, body) = sm.http().get("/search?q=again").await;
    assert_eq!(status, 200, "{body}");
    let hits = body["hits"].as_array().unwrap();
    // "again" and "and again", asked and answered: two prompts, two answers.
    assert_eq!(hits.len(), 4, "{hits:?}");
    assert!(hits.iter().all(|h| h["session_name"] == "delta"));
    let (_, tool) = sm.http().get("/search?q=tool%201").await;
    assert!(
        tool["hits"]
            .as_array()
            .unwrap()
            .iter()
            .any(|h| h["event_type"] == "pre_tool"),
        "{tool}"
    );
}

#[tokio::test]
async fn usage_per_day_and_project_or_agent() {
    let sm = SessionManager::start();
    let http = sm.http();
    session(&http, "a", "/alpha").await;
    session(&http, "b", "/beta").await;
    for (id, day, cost) in [
        ("a", "2026-03-01", 1.0),
        ("a", "2026-03-01", 0.5),
        ("b", "2026-03-01", 0.25),
        ("a", "2026-03-02", 2.0),
    ] {
        let mut end = event(id, "run_completed");
        end["timestamp"] = format!("{day}T12:00:00Z").into();
        end["cost_usd"] = cost.into();
        end["event_id"] = uuid::Uuid::new_v4().to_string().into();
        http.event(id, end).await;
    }
    let (status, body) = http
        .get("/usage?group_by=day,project&since=2026-03-01T00:00:00Z")
        .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["group_by"], "day,project");
    let groups: Vec<(String, String, f64, u64)> = body["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            (
                g["key"].as_str().unwrap().to_owned(),
                g["sub_key"].as_str().unwrap().to_owned(),
                g["cost_usd"].as_f64().unwrap(),
                g["runs"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        groups,
        [
            ("2026-03-01".into(), "/alpha".into(), 1.5, 2),
            ("2026-03-01".into(), "/beta".into(), 0.25, 1),
            ("2026-03-02".into(), "/alpha".into(), 2.0, 1),
        ]
    );
    assert_eq!(body["total"]["cost_usd"], 3.75);
    let (status, body) = http.get("/usage?group_by=day,agent").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["groups"][0]["sub_key"], "");
    // One key as before: no sub_key.
    let (_, body) = http.get("/usage?group_by=day").await;
    assert!(body["groups"][0].get("sub_key").is_none(), "{body}");
    for bad in ["project,day", "day,session", "day,day", "day,"] {
        assert_eq!(
            http.get(&format!("/usage?group_by={bad}")).await.0,
            400,
            "{bad}"
        );
    }
}

#[tokio::test]
async fn a_worktree_sessions_branch_against_its_base_with_the_local_token() {
    let repo = tempfile::tempdir().unwrap();
    let dir = repo.path();
    repository(dir, "a.txt", "one\n");
    let base = git(dir, &["rev-parse", "HEAD"]);
    let tree = dir.join("wt");
    git(
        dir,
        &[
            "worktree",
            "add",
            "-q",
            "-b",
            "ao/w",
            tree.to_str().unwrap(),
        ],
    );
    std::fs::write(tree.join("a.txt"), "one\ntwo\n").unwrap();
    git(&tree, &["commit", "-qam", "more"]);

    let sm = SessionManager::start();
    let http = sm.http();
    let (status, _) = http
        .post(
            "/sessions",
            json!({"session_id": "w1", "session_name": "w", "project_dir": dir.to_str().unwrap(),
                   "worktree": tree.to_str().unwrap(), "branch": "ao/w"}),
        )
        .await;
    assert_eq!(status, 200);
    let token = std::fs::read_to_string(sm.local_token_file()).unwrap();
    let owner = http.clone().with_token(token.trim());
    assert_eq!(owner.get("/sessions/w1/diff").await.0, 404, "no base yet");
    let mut changes = event("w1", "changes");
    changes["files"] = json!([]);
    changes["diff"] = "".into();
    changes["base"] = base.clone().into();
    http.event("w1", changes).await;

    let (status, body) = http.get("/sessions/w1/diff").await;
    assert_eq!(status, 401, "git runs only for this machine's user: {body}");
    let (status, body) = owner.get("/sessions/w1/diff").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["branch"], "ao/w");
    assert_eq!(body["base"], base.as_str());
    assert_eq!(
        body["files"],
        json!([{"path": "a.txt", "added": 1, "removed": 0}])
    );
    assert!(body["diff"].as_str().unwrap().contains("+two"), "{body}");
    // Once the worktree is gone, the project's checkout still has the branch.
    git(
        dir,
        &["worktree", "remove", "--force", tree.to_str().unwrap()],
    );
    let (status, body) = owner.get("/sessions/w1/diff").await;
    assert_eq!(
        (status, body["files"][0]["path"].clone()),
        (200, json!("a.txt"))
    );
    // A session without a worktree has no branch to show.
    session(&http, "plain", "/p").await;
    assert_eq!(owner.get("/sessions/plain/diff").await.0, 404);
}

/// A run as the previous release's runner posts it, read as its clients
/// read it: the session list, the events and the live messages have the
/// same shapes as before, with fields added only where there is something
/// new to say.
#[tokio::test]
async fn old_clients_see_the_shapes_they_know() {
    let sm = SessionManager::start();
    let http = sm.http();
    let mut feed = SseClient::connect(&sm.url).await;
    session(&http, "old", "/p").await;
    let mut posted = Vec::new();
    for kind in [
        "run_start",
        "pre_tool",
        "post_tool",
        "message",
        "run_completed",
    ] {
        let mut e = event("old", kind);
        e["event_id"] = uuid::Uuid::new_v4().to_string().into();
        http.event("old", e.clone()).await;
        posted.push(e);
    }
    let (_, list) = http.get("/sessions").await;
    let keys: Vec<&str> = list["sessions"][0]
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    // The previous release's keys, in its order; since then only
    // `pending_requests` (a person in the loop), `host` (runs anywhere),
    // `forked_from` and `budget_usd` (orchestration).
    let before = [
        "session_id",
        "session_name",
        "status",
        "created_at",
        "project_dir",
        "agent_name",
        "last_resumed_at",
        "worktree",
        "branch",
        "parent_session_id",
        "num_runs",
        "cost_usd",
        "usage",
        "last_run",
    ];
    let kept: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| before.contains(k))
        .collect();
    assert_eq!(kept, before, "{keys:?}");
    let added: Vec<&str> = keys
        .iter()
        .copied()
        .filter(|k| !before.contains(k))
        .collect();
    assert_eq!(
        added,
        ["forked_from", "budget_usd", "pending_requests", "host"],
        "{keys:?}"
    );
    // Each event is what was sent, and its id.
    for (stored, sent) in http.events("old").await.iter().zip(&posted) {
        let mut stored = stored.clone();
        assert!(stored.as_object_mut().unwrap().remove("id").is_some());
        assert_eq!(&stored, sent);
    }
    let mut kinds = Vec::new();
    while kinds.len() < 7 {
        let (kind, message) = feed.next().await.unwrap();
        let fields: Vec<&str> = message
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        let expected: &[&str] = match kind.as_str() {
            "init" | "session_created" | "session_updated" => &["type", "session"][..],
            "event" => &["type", "data"][..],
            other => panic!("an old client would not know {other}: {message}"),
        };
        if kind != "init" {
            assert_eq!(fields, expected, "{kind}");
            kinds.push(kind);
        } else {
            assert_eq!(fields, ["type", "sessions"]);
        }
    }
    // Created, each event, and the end's update: nothing an old client would not know.
    assert_eq!(
        kinds.iter().filter(|k| *k == "event").count(),
        5,
        "{kinds:?}"
    );
}

/// Events stored by a session manager killed before it indexed them are
/// found by the next one's first search.
#[tokio::test]
async fn events_stored_before_a_kill_are_found_after_the_restart() {
    let mut sm = SessionManager::start();
    let http = sm.http();
    session(&http, "k", "/p").await;
    http.event("k", narration("k", "Reading the quokka module"))
        .await;
    sm.kill9();
    sm.restart();
    let (status, body) = sm.http().get("/search?q=quokka").await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["hits"].as_array().unwrap().len(), 1, "{body}");
}
