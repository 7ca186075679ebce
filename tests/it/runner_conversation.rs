//! The runner and the whole conversation, with the fake CLI: the model's
//! text forwarded live as it is written (and never stored), what it says
//! between tool calls recorded, and what a run changed in its git checkout.

use serde_json::Value;

use crate::support::Project;
use crate::support::git::{git, repository};
use crate::support::http::kinds;
use crate::support::live::SseClient;

/// The live messages about `session_id`'s runs until its run ends.
async fn live_until_the_end(feed: &mut SseClient, name: &str) -> Vec<Value> {
    let mut seen = Vec::new();
    loop {
        let (kind, message) = feed.next().await.expect("the feed is open");
        let ended = kind == "event"
            && message["data"]["session_name"] == name
            && message["data"]["event_type"] == "run_completed";
        seen.push(message);
        if ended {
            return seen;
        }
    }
}

#[tokio::test]
async fn the_models_text_goes_live_as_it_is_written_and_what_it_said_is_recorded() {
    let env = Project::with_server();
    let mut feed = SseClient::connect(env.url()).await;
    let runner = env.spawn("ao-new", &["talk"], "hello", "narrate,tools:1,slow:150");
    let live = live_until_the_end(&mut feed, "talk").await;
    let out = runner.wait();
    assert_eq!(out.ok(), "fake answer to: hello");
    assert!(
        env.fake_log()[0]["argv"]
            .as_array()
            .unwrap()
            .contains(&"--include-partial-messages".into()),
        "the runner asks for the stream"
    );
    // Each text came in its pieces (the fake writes three, 150 ms apart),
    // numbered per block, and adds up to what was said.
    let deltas: Vec<&Value> = live.iter().filter(|m| m["type"] == "text_delta").collect();
    let mut texts: Vec<(String, Vec<u64>)> = Vec::new();
    for delta in &deltas {
        let key = format!("{}/{}", delta["message_id"], delta["index"]);
        if texts.last().is_none_or(|(k, _)| *k != key) {
            texts.push((key.clone(), Vec::new()));
        }
        let (_, seqs) = texts.last_mut().unwrap();
        seqs.push(delta["seq"].as_u64().unwrap());
    }
    assert_eq!(texts.len(), 2, "narration and answer: {deltas:?}");
    for (_, seqs) in &texts {
        assert_eq!(seqs[0], 1);
        assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    }
    let said: String = deltas.iter().map(|d| d["text"].as_str().unwrap()).collect();
    assert_eq!(said, "I will run tool 1.fake answer to: hello");
    // Each text's event comes after its pieces, and the answer once.
    let events = env.events("talk").await;
    assert_eq!(
        kinds(&events),
        [
            "run_start",
            "message:user",
            "message:assistant",
            "pre_tool",
            "post_tool",
            "message:assistant",
            "run_completed"
        ]
    );
    assert_eq!(events[2]["final"], false);
    assert_eq!(events[2]["content"][0]["text"], "I will run tool 1.");
    assert!(events[5].get("final").is_none(), "the answer as before");
    assert_eq!(
        env.ao("ao-get-result", &["talk"], None).ok(),
        "fake answer to: hello"
    );
    // Nothing live is stored, and the backup keeps the CLI's stream.
    assert!(!events.iter().any(|e| e["event_type"] == "text_delta"));
    assert!(
        env.backup_lines("talk")
            .iter()
            .any(|l| l["type"] == "stream_event")
    );
    // ao-sync rebuilds the same record from the backup alone.
    let (status, _) = env
        .http()
        .delete(&format!("/sessions/{}", env.session_id("talk")))
        .await;
    assert_eq!(status, 200);
    assert_eq!(env.ao("ao-sync", &["talk"], None).code, Some(0));
    let rebuilt = env.events("talk").await;
    let strip = |events: &[Value]| -> Vec<Value> {
        events
            .iter()
            .map(|e| {
                let mut e = e.clone();
                e.as_object_mut().unwrap().remove("id");
                e
            })
            .collect()
    };
    assert_eq!(strip(&rebuilt), strip(&events));
}

#[tokio::test]
async fn text_written_faster_than_ten_times_a_second_is_joined() {
    let env = Project::with_server();
    let mut feed = SseClient::connect(env.url()).await;
    // Three pieces at once per text: the first goes, the others wait and
    // are dropped when the text's own line arrives with all of it.
    let runner = env.spawn("ao-new", &["quick"], "hi", "narrate,tools:2");
    let live = live_until_the_end(&mut feed, "quick").await;
    assert_eq!(runner.wait().code, Some(0));
    let deltas = live.iter().filter(|m| m["type"] == "text_delta").count();
    assert!((1..=3).contains(&deltas), "{deltas} deltas for 9 pieces");
}

#[tokio::test]
async fn a_cli_that_refuses_partial_messages_still_runs() {
    let mut env = Project::with_server();
    env.set_env("FAKE_CLAUDE_NO_PARTIAL_MESSAGES", "1");
    let out = env.run("ao-new", &["old"], "hello", "tools:1");
    assert_eq!(out.ok(), "fake answer to: hello");
    assert!(out.stderr.is_empty(), "nothing to say: {out:?}");
    let log = env.fake_log();
    let argv = log.last().unwrap()["argv"].as_array().unwrap().clone();
    assert!(!argv.contains(&"--include-partial-messages".into()));
    let lines = env.backup_lines("old");
    assert!(!lines.iter().any(|l| l["type"] == "stream_event"));
    assert_eq!(
        lines.iter().filter(|l| l["type"] == "user_message").count(),
        1,
        "one run"
    );
}

fn changes(events: &[Value]) -> Vec<&Value> {
    events
        .iter()
        .filter(|e| e["event_type"] == "changes")
        .collect()
}

#[tokio::test]
async fn a_run_in_a_git_checkout_records_what_it_changed_and_leaves_the_index_alone() {
    let env = Project::with_server();
    repository(&env.dir, "notes.txt", "base\n");
    std::fs::write(env.dir.join("staged.txt"), "staged\n").unwrap();
    git(&env.dir, &["add", "staged.txt"]);
    let index = std::fs::read(env.dir.join(".git/index")).unwrap();

    let out = env.run("ao-new", &["edit"], "first line", "edit:notes.txt,tools:1");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("edit").await;
    let found = changes(&events);
    assert_eq!(found.len(), 1, "{:?}", kinds(&events));
    let change = found[0];
    assert_eq!(
        change["files"],
        serde_json::json!([{"path": "notes.txt", "added": 1, "removed": 0}])
    );
    assert!(
        change["diff"].as_str().unwrap().contains("+first line"),
        "{change}"
    );
    assert!(change.get("base").is_none(), "no worktree");
    let kinds = kinds(&events);
    assert_eq!(kinds[kinds.len() - 2..], ["changes", "run_completed"]);
    let lines = env.backup_lines("edit");
    assert_eq!(lines[lines.len() - 2]["type"], "changes");
    assert_eq!(
        std::fs::read(env.dir.join(".git/index")).unwrap(),
        index,
        "the user's index is as it was"
    );

    // The next run's changes are its own; a run that changes nothing has none.
    let out = env.run("ao-resume", &["edit"], "second line", "edit:notes.txt");
    assert_eq!(out.code, Some(0), "{out:?}");
    let out = env.run("ao-resume", &["edit"], "just talk", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("edit").await;
    let found = changes(&events);
    assert_eq!(found.len(), 2);
    assert_eq!(found[1]["files"][0]["added"], 1);
    assert!(!found[1]["diff"].as_str().unwrap().contains("+first line"));
}

#[tokio::test]
async fn a_worktree_runs_changes_name_its_base_and_a_plain_folder_has_none() {
    let env = Project::with_server();
    repository(&env.dir, "notes.txt", "base\n");
    let out = env.run(
        "ao-new",
        &["wt", "--worktree"],
        "in the worktree",
        "edit:notes.txt",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    let events = env.events("wt").await;
    let found = changes(&events);
    assert_eq!(found.len(), 1);
    assert_eq!(found[0]["base"], env.meta("wt")["worktree"]["base"]);

    let plain = Project::with_server();
    let out = plain.run("ao-new", &["p"], "no git here", "edit:notes.txt");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(changes(&plain.events("p").await).is_empty());
}
