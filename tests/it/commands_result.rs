//! `ao-get-result`: the answer of the last run, and every way there is none.

use serde_json::{Value, json};

use crate::support::Project;
use crate::support::http::{assistant, event};

#[test]
fn prints_the_answer_and_json() {
    let p = Project::with_server();
    let id = p.new_session("w1", "what is 2+2?");
    assert_eq!(
        p.ao("ao-get-result", &["w1"], None).ok(),
        "fake answer to: what is 2+2?"
    );
    let out = p.ao("ao-get-result", &["w1", "--json"], None);
    let answer: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(
        answer,
        json!({"session_name": "w1", "session_id": id, "result": "fake answer to: what is 2+2?", "structured_output": null, "source": "api"})
    );
}

#[test]
fn an_unknown_session_is_an_error() {
    let p = Project::with_server();
    let out = p.ao("ao-get-result", &["ghost", "--json"], None);
    assert_eq!(
        out.fails(1),
        format!(
            "ao-get-result: error: no session named 'ghost' in {}",
            p.dir_text()
        )
    );
}

#[test]
fn an_error_result_fails_with_its_text() {
    let p = Project::with_server();
    let out = p.ao("ao-new", &["e1"], Some("SCENARIO=error"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let out = p.ao("ao-get-result", &["e1", "--json"], None);
    assert_eq!(
        out.fails(1),
        "ao-get-result: error: the last run of session 'e1' failed: API Error: 400 fake: prompt rejected"
    );
    // A crash before any answer fails with the runner's reason.
    p.ao("ao-new", &["c1"], Some("SCENARIO=crash"));
    let line = p.ao("ao-get-result", &["c1"], None).fails(1).to_owned();
    assert!(
        line.contains("claude exited with code 2 before it answered"),
        "{line}"
    );
}

#[test]
fn only_the_last_run_counts() {
    let p = Project::with_server();
    p.new_session("w", "first");
    let out = p.ao("ao-resume", &["w"], Some("SCENARIO=error"));
    assert_eq!(out.code, Some(1), "{out:?}");
    let line = p.ao("ao-get-result", &["w"], None).fails(1).to_owned();
    assert!(line.contains("API Error: 400"), "{line}");
    let out = p.ao("ao-resume", &["w"], Some("third"));
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        p.ao("ao-get-result", &["w"], None).ok(),
        "fake answer to: third"
    );
}

#[tokio::test]
async fn no_result_yet_and_still_running_from_the_api_alone() {
    let p = Project::with_server();
    let http = p.http();
    let dir = p.dir_text();
    // A session with a finished run but no answer.
    http.create("s-quiet", "quiet", Some(&dir)).await;
    http.event("s-quiet", event("s-quiet", "run_start")).await;
    http.event("s-quiet", event("s-quiet", "run_completed"))
        .await;
    assert_eq!(
        p.ao("ao-get-result", &["quiet"], None).fails(1),
        "ao-get-result: error: session 'quiet' has no result yet"
    );
    // A session the API calls running, with no runner known here.
    http.create("s-busy", "busy", Some(&dir)).await;
    http.event("s-busy", event("s-busy", "run_start")).await;
    assert_eq!(p.ao("ao-status", &["busy"], None).ok(), "running");
    let line = p.ao("ao-get-result", &["busy"], None).fails(1).to_owned();
    assert!(line.contains("is still running"), "{line}");
    // A failed run recorded only by the API.
    http.event("s-busy", assistant("s-busy", "half an answer"))
        .await;
    let mut end = event("s-busy", "run_completed");
    end["reason"] = "error".into();
    end["error"] = "boom".into();
    http.event("s-busy", end).await;
    assert_eq!(
        p.ao("ao-get-result", &["busy"], None).fails(1),
        "ao-get-result: error: the last run of session 'busy' failed: boom"
    );
    // The next run answers.
    http.event("s-busy", event("s-busy", "run_start")).await;
    http.event("s-busy", assistant("s-busy", "all done")).await;
    http.event("s-busy", event("s-busy", "run_completed")).await;
    assert_eq!(p.ao("ao-get-result", &["busy"], None).ok(), "all done");
}

#[tokio::test]
async fn a_result_cut_for_the_api_is_printed_whole_from_the_backup() {
    let p = Project::with_server();
    let size = 800_000;
    let out = p.ao(
        "ao-new",
        &["big"],
        Some(&format!("SCENARIO=bigline:{size}")),
    );
    assert_eq!(out.code, Some(0), "ao-new: {:?}", out.stderr);
    let full = out.stdout.trim_end_matches('\n').to_owned();
    assert_eq!(full.len(), size);
    let id = p.session_id("big");
    let (_, api) = p.http().get(&format!("/sessions/{id}/result")).await;
    let cut = api["result"].as_str().expect("result");
    assert!(
        cut.len() < size && cut.ends_with("backup]"),
        "the API's copy is cut"
    );

    let out = p.ao("ao-get-result", &["big"], None);
    assert_eq!(out.ok(), full);
    let out = p.ao("ao-get-result", &["big", "--json"], None);
    let answer: Value = serde_json::from_str(out.ok()).expect("json");
    assert_eq!(answer["result"], full.as_str());
    assert_eq!(answer["source"], "backup");
}
