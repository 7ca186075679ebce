//! A person in the loop from the dashboard, in headless Chromium
//! (tests/browser/requests.mjs), with the fake CLI's runs under
//! `--permission-mode default`: a page without the token shows what waits
//! and how to get the link; a signed-in phone-size page asks once to
//! notify, answers a question with its option buttons, denies with a
//! message, notifies from the background, and allows always. Its
//! screenshots of both cards (390x844) are the README's.

use serde_json::json;

use crate::dashboard_browser::{Artifacts, Script, browser_or_skip, screenshots_for_docs};
use crate::requests::{events_of, pending};
use crate::support::project::eventually;
use crate::support::{Project, Running};

/// Starts `ao-new NAME --permission-mode default` playing `scenario` and
/// waits until its request waits.
async fn asking(env: &Project, name: &str, scenario: &str) -> Running {
    let runner = env.spawn(
        "ao-new",
        &[name, "--permission-mode", "default"],
        "do it",
        scenario,
    );
    eventually(&format!("a request of {name}"), async || {
        pending(env, name).await.len() == 1
    })
    .await;
    runner
}

#[tokio::test]
async fn a_person_answers_from_the_dashboard_on_a_phone() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let env = Project::with_server();
    let ask = asking(&env, "ask", "permission:out.txt").await;
    let quiz = asking(&env, "quiz", "question").await;
    let work = env.scratch().to_owned();
    let names = [
        "request-390x844.png",
        "question-390x844.png",
        "requests-failure.png",
    ];
    let artifacts = Artifacts::new(&work, &names);
    let token = std::fs::read_to_string(env.sm().local_token_file()).unwrap();
    let mut script = Script::spawn(
        &chromium,
        "requests.mjs",
        &[
            format!("{}/", env.url()).as_ref(),
            work.as_os_str(),
            json!({"token": token.trim()}).to_string().as_ref(),
        ],
    );
    script.expect("NO_TOKEN");
    script.expect("ASKED_ONCE");
    script.expect("ANSWERED");
    let out = quiz.wait();
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("blue"), "{out:?}");
    script.expect("DENIED");
    let out = ask.wait();
    assert_eq!(
        out.stdout,
        "fake answer to: do it [permission: denied: not in this folder]\n"
    );
    assert!(!env.dir.join("out.txt").exists());
    let decided = &events_of(&env, "ask", "permission_decision").await[0];
    assert_eq!(decided["decided_by"], "person");

    let later = env.spawn(
        "ao-new",
        &["later", "--permission-mode", "default"],
        "do it",
        "permission:later.txt",
    );
    script.command("LATER", &json!({}));
    script.expect("ALWAYS");
    let out = later.wait();
    assert_eq!(
        out.stdout,
        "fake answer to: do it [permission: allowed always (2 suggestions)]\n"
    );
    assert!(env.dir.join("later.txt").exists());
    script.expect("PASS");
    assert_eq!(script.finish(), Some(0), "{}", script.transcript());
    screenshots_for_docs(&work, &names[..2]);
    drop(artifacts);
}
