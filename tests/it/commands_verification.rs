//! The "Verification" sequence of seeds/phase-3-command-migration.md,
//! against the real session manager: a session made with curl-style posts,
//! then the four commands.

use serde_json::json;

use crate::support::Project;

#[tokio::test]
async fn phase_3_verification_sequence() {
    // Commands run from some other project: the session's is /tmp.
    let p = Project::with_server();
    let http = p.http();

    let (status, _) = http
        .post(
            "/sessions",
            json!({"session_id": "test-789", "session_name": "test-session", "project_dir": "/tmp"}),
        )
        .await;
    assert_eq!(status, 200);
    http.event(
        "test-789",
        json!({"event_type": "message", "session_id": "test-789", "session_name": "test-session",
               "timestamp": "2024-01-01T00:00:00Z", "role": "assistant",
               "content": [{"type": "text", "text": "Test result"}]}),
    )
    .await;
    http.event(
        "test-789",
        json!({"event_type": "session_stop", "session_id": "test-789", "session_name": "test-session",
               "timestamp": "2024-01-01T00:00:01Z", "exit_code": 0, "reason": "completed"}),
    )
    .await;

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
