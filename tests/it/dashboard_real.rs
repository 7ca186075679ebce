//! The real Claude Code CLI, against the mock model, writing slowly while
//! the dashboard watches in headless Chromium (tests/browser/stream.mjs):
//! what the model says before its tool call, and its answer growing in the
//! page as it is written, in a page that was open and in one opened in the
//! middle of it. A release without `--include-partial-messages` (1.0.100)
//! streams nothing: there the page shows the same conversation once each
//! text is complete.

use crate::dashboard_browser::{Artifacts, Script, browser_or_skip};
use crate::support::Project;
use crate::support::Running;
use crate::support::mock_anthropic::NARRATION;
use crate::support::real_claude::RealClaude;

#[test]
fn a_real_run_streams_its_narration_and_answer_into_the_page() {
    let Some(chromium) = browser_or_skip() else {
        return;
    };
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let streams = claude.supports("--include-partial-messages");
    let mut project = Project::with_server();
    project.use_real_claude(&claude, mock.base_url());
    let work = project.scratch().to_owned();
    let shot = work.join("stream.png");
    let artifacts = Artifacts::new(&work, &["stream.png", "stream-failure.png"]);
    let mut script = Script::spawn(
        &chromium,
        "stream.mjs",
        &[format!("{}/", project.url()).as_ref(), shot.as_os_str()],
    );
    script.expect("READY");
    let mut cmd = project.command("ao-new");
    cmd.arg("talk");
    let run = Running::start(cmd, Some("NARRATE STREAM_SLOWLY USE_TOOL"));
    let answer = "The command printed hello-from-tool. Final answer: 4";
    script.command(
        "GO",
        &serde_json::json!({"name": "talk", "narration": NARRATION, "answer": answer, "streams": streams}),
    );
    script.expect("OPENED");
    script.expect("PASS");
    assert_eq!(script.finish(), Some(0), "{}", script.transcript());
    assert_eq!(run.wait().ok(), answer);
    drop(artifacts);
}
