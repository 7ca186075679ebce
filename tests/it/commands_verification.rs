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
    // ./ao-clean test-session  -> deletes, from /tmp, and says so on stderr.
    assert_ne!(p.dir_text(), "/tmp", "run from another directory");
    let out = p.ao("ao-clean", &["test-session"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        out.stdout,
        "Deleted session test-session (session-id: test-789, 2 events)\n"
    );
    assert_eq!(
        out.stderr,
        "ao-clean: session 'test-session' is not in the current project; deleting it from /tmp\n"
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
