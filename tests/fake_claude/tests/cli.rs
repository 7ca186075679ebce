//! The fake CLI as a driver meets it: its version, a refused command line,
//! and one plain conversation over stdin.

use std::io::{BufRead, BufReader, Write};
use std::process::{Command, Stdio};

use serde_json::{Value, json};

fn fake() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_ao-fake-claude"));
    for var in [
        "FAKE_CLAUDE_SCENARIO",
        "FAKE_CLAUDE_STATE_DIR",
        "FAKE_CLAUDE_LOG",
    ] {
        cmd.env_remove(var);
    }
    cmd
}

#[test]
fn it_names_the_release_it_imitates() {
    let out = fake().arg("--version").output().unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "2.1.329 (Claude Code fake)\n"
    );
    let out = fake()
        .arg("--version")
        .env("FAKE_CLAUDE_VERSION", "1.0.100")
        .output()
        .unwrap();
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "1.0.100 (Claude Code fake)\n"
    );
}

#[test]
fn a_prompt_on_the_command_line_is_refused() {
    let out = fake().args(["-p", "hello there"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1), "{out:?}");
    assert!(out.stdout.is_empty());
}

#[test]
fn a_plain_conversation_over_stdin() {
    let mut child = fake()
        .args([
            "--output-format",
            "stream-json",
            "--verbose",
            "--input-format",
            "stream-json",
        ])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let mut send = |v: Value| writeln!(stdin, "{v}").unwrap();
    send(json!({"type": "control_request", "request_id": "r1",
        "request": {"subtype": "initialize", "hooks": {}}}));
    let answer: Value = serde_json::from_str(&lines.next().unwrap().unwrap()).unwrap();
    assert_eq!(answer["response"]["request_id"], "r1");
    send(
        json!({"type": "user", "message": {"role": "user", "content": "hi"},
        "parent_tool_use_id": null, "session_id": ""}),
    );
    let mut types = Vec::new();
    let mut result = Value::Null;
    for line in lines.by_ref() {
        let line: Value = serde_json::from_str(&line.unwrap()).unwrap();
        types.push(line["type"].as_str().unwrap().to_owned());
        if line["type"] == "result" {
            result = line;
            break;
        }
    }
    assert_eq!(types, ["system", "assistant", "result"]);
    assert_eq!(result["result"], "fake answer to: hi");
    drop(stdin);
    assert!(child.wait().unwrap().success());
}
