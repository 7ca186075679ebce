//! The "Verification" sequence of seeds/phase-3-command-migration.md,
//! against the real session manager: the seed's session made through the API,
//! then the four commands.

use crate::support::Project;

#[tokio::test]
async fn phase_3_verification_sequence() {
    // Commands run from some other project: the session's is /tmp.
    let p = Project::with_server();
    let http = p.http();
    http.create_phase_3_session().await;

    // ./ao-list-sessions  -> shows test-session
    assert_eq!(
        p.ao("ao-list-sessions", &[], None).ok(),
        "test-session (session-id: test-789, project-dir: /tmp)"
    );
    // ./ao-status test-session  -> finished
    assert_eq!(p.ao("ao-status", &["test-session"], None).ok(), "finished");
    // ./ao-get-result test-session  -> Test result
    assert_eq!(
        p.ao("ao-get-result", &["test-session"], None).ok(),
        "Test result"
    );
    // ./ao-clean test-session  -> deletes. ao-clean acts only within the
    // current project, so it is told which one.
    let line = p
        .ao("ao-clean", &["test-session"], None)
        .fails(1)
        .to_owned();
    assert!(line.contains("no session named 'test-session'"), "{line}");
    assert_eq!(
        p.ao("ao-clean", &["test-session", "--project-dir", "/tmp"], None)
            .ok(),
        "Deleted session test-session (session-id: test-789, 2 events)"
    );
    assert_eq!(http.get("/sessions/test-789").await.0, 404);
    assert_eq!(
        p.ao("ao-status", &["test-session"], None).ok(),
        "not_existent"
    );
    assert_eq!(
        p.ao("ao-list-sessions", &[], None).ok(),
        "No sessions found"
    );
}
