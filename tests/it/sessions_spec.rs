//! `sessions/README.md` specifies the backup format, and `sessions/example/`
//! holds a real session's files. Both are read here with the project's own
//! reader, and the fields each table of the specification names are the
//! fields the project writes, so that the specification cannot drift.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

use agent_orchestrator::backup::{
    BackupLine, ChangesLine, Meta, PermissionDecisionLine, RunCompletedLine, SessionFiles,
    UserMessageLine, read_log,
};
use agent_orchestrator::name::SessionName;
use agent_orchestrator::record::{Action, replay};
use agent_orchestrator::wire::{ChangedFile, DecidedBy, Decision, DecisionBody, RunEndReason};
use agent_orchestrator::worktree::Worktree;
use serde_json::Value;

fn sessions() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("sessions")
}

/// The names in the first column of the table under `heading`.
fn documented(heading: &str) -> BTreeSet<String> {
    let spec = std::fs::read_to_string(sessions().join("README.md")).unwrap();
    let start = spec
        .find(heading)
        .unwrap_or_else(|| panic!("no section {heading}"));
    spec[start..]
        .lines()
        .skip_while(|l| !l.starts_with('|'))
        .take_while(|l| l.starts_with('|'))
        .skip(2)
        .filter_map(|row| {
            let cell = row.split('|').nth(1)?.trim();
            Some(cell.trim_matches('`').to_owned())
        })
        .collect()
}

/// The keys of `value`'s JSON object.
fn keys(value: &impl serde::Serialize) -> BTreeSet<String> {
    match serde_json::to_value(value).unwrap() {
        Value::Object(map) => map.keys().cloned().collect(),
        other => panic!("not an object: {other}"),
    }
}

fn line_keys(line: &[u8]) -> BTreeSet<String> {
    let value: Value = serde_json::from_slice(line).unwrap();
    value.as_object().unwrap().keys().cloned().collect()
}

#[test]
fn every_field_the_runner_writes_is_specified_and_no_other() {
    // Every field set (no `..Default::default()`): a new field fails to
    // compile here until it is specified.
    let opening = UserMessageLine {
        run_id: Some("r".into()),
        timestamp: "t".into(),
        content: "c".into(),
        project_dir: "p".into(),
        resume_session_id: Some("s".into()),
        session_id: Some("s".into()),
        agent_name: Some("a".into()),
        worktree: Some("w".into()),
        branch: Some("b".into()),
        parent_session_id: Some("p".into()),
        forked_from: Some("f".into()),
        spent_before: Some(Default::default()),
        budget_usd: Some(1.0),
    };
    assert_eq!(
        line_keys(&opening.to_line()),
        documented("### `user_message`")
    );
    let closing = RunCompletedLine {
        timestamp: "t".into(),
        exit_code: Some(0),
        reason: RunEndReason::Completed,
        error: Some("e".into()),
    };
    assert_eq!(
        line_keys(&closing.to_line()),
        documented("### `run_completed`")
    );
    let changes = ChangesLine {
        timestamp: "t".into(),
        files: vec![ChangedFile {
            path: "p".into(),
            added: Some(1),
            removed: Some(0),
        }],
        diff: "d".into(),
        diff_truncated: true,
        base: Some("b".into()),
    };
    assert_eq!(line_keys(&changes.to_line()), documented("### `changes`"));
    let spec = std::fs::read_to_string(sessions().join("README.md")).unwrap();
    for field in keys(&changes.files[0]) {
        assert!(spec.contains(&format!("\"{field}\"")), "files[].{field}");
    }
    let decision = PermissionDecisionLine {
        run_id: Some("r".into()),
        timestamp: "t".into(),
        request_id: "q".into(),
        decision: DecisionBody {
            decision: Decision::Allow,
            decided_by: Some(DecidedBy::Person),
            message: Some("m".into()),
            always: Some(true),
            answers: Some([("q".to_owned(), "a".to_owned())].into()),
        },
    };
    assert_eq!(
        line_keys(&decision.to_line()),
        documented("### `permission_decision`")
    );
    let meta = Meta {
        session_name: "n".into(),
        session_id: Some("s".into()),
        project_dir: "p".into(),
        created_at: "t".into(),
        last_resumed_at: Some("t".into()),
        agent_name: Some("a".into()),
        agents_dir: Some("d".into()),
        conversation_id: Some("c".into()),
        worktree: Some(Worktree {
            path: "w".into(),
            branch: "b".into(),
            base: "c".into(),
            cwd: "w".into(),
        }),
        parent_session_id: Some("p".into()),
        forked_from: Some("f".into()),
    };
    assert_eq!(keys(&meta), documented("## `NAME.meta.json`"));
    for field in keys(meta.worktree.as_ref().unwrap()) {
        assert!(spec.contains(&format!("`{field}`")), "worktree.{field}");
    }
}

#[test]
fn the_example_session_reads_as_specified() {
    let dir = sessions().join("example");
    let files = SessionFiles::new(&dir, &SessionName::parse("example").unwrap());
    let meta = files.read_meta().unwrap().expect("example.meta.json");
    assert_eq!(meta.session_name, "example");
    let lines = read_log(&files.log_path()).unwrap();
    let mut runs = Vec::new();
    for (index, line) in &lines {
        match BackupLine::parse(line) {
            BackupLine::Unreadable => panic!("line {index} is not understood"),
            BackupLine::UserMessage(m) => {
                assert!(m.run_id.is_some(), "version 2 runs have ids");
                assert!(line_keys(line).is_subset(&documented("### `user_message`")));
                runs.push(m);
            }
            BackupLine::RunCompleted(_) => {
                assert!(line_keys(line).is_subset(&documented("### `run_completed`")));
            }
            BackupLine::Changes(_) => {
                assert!(line_keys(line).is_subset(&documented("### `changes`")));
            }
            BackupLine::PermissionDecision(_) => {
                assert!(line_keys(line).is_subset(&documented("### `permission_decision`")));
            }
            BackupLine::Cli(..) => {}
        }
    }
    assert_eq!(runs.len(), 2, "a new run and a resume");
    assert_eq!(runs[1].resume_session_id, meta.session_id);
    let (recorder, actions) = replay("example", false, &lines);
    assert_eq!(recorder.session_id(), meta.session_id.as_deref());
    let kinds: Vec<String> = actions
        .iter()
        .map(|a| match a {
            Action::Create(_) => "create".to_owned(),
            Action::Resume { .. } => "resume".to_owned(),
            Action::Event(e) => e.event_type.as_str().to_owned(),
        })
        .collect();
    assert_eq!(
        kinds,
        [
            "create",
            "run_start",
            "message",
            "pre_tool",
            "post_tool",
            "message",
            "run_completed",
            "resume",
            "run_start",
            "message",
            "message",
            "run_completed"
        ]
    );
}
