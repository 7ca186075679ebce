//! Every input has a ceiling: a prompt, a system prompt file, a schema, an
//! MCP config, an agent file, a line of the CLI's output or of a backup.
//! Past it: one line, exit 2 (a line of the CLI's output: the run fails),
//! and nothing started. Each command runs under a 4 GiB address-space
//! limit, so that a read without a ceiling fails the test rather than the
//! machine.

use std::fs::File;
use std::process::{Command, Stdio};

use crate::support::{Output, Project};

/// `program args` of `env`, with its stdin from `stdin` (a path) or empty,
/// under the memory limit.
fn limited(env: &Project, program: &str, args: &[&str], stdin: Option<&str>) -> Output {
    let inner = env.command(program);
    let mut cmd = Command::new("sh");
    cmd.arg("-c")
        .arg(r#"ulimit -v 4194304 && exec "$0" "$@""#)
        .arg(inner.get_program())
        .args(args)
        .current_dir(inner.get_current_dir().expect("cwd"));
    cmd.env_clear();
    for (key, value) in inner.get_envs() {
        if let Some(value) = value {
            cmd.env(key, value);
        }
    }
    if !inner.get_envs().any(|(k, _)| k == "PATH") {
        cmd.env("PATH", std::env::var_os("PATH").unwrap_or_default());
    }
    cmd.stdin(match stdin {
        Some(path) => Stdio::from(File::open(path).unwrap()),
        None => Stdio::null(),
    });
    let out = cmd.output().expect("run");
    Output {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

#[test]
fn endless_inputs_are_refused_in_one_line_and_nothing_starts() {
    let env = Project::offline();
    for (args, stdin, what) in [
        (
            vec!["x", "--system-prompt-file", "/dev/zero", "-p", "hi"],
            None,
            "--system-prompt-file /dev/zero: larger than 8 MiB",
        ),
        (
            vec!["x", "--mcp-config", "/dev/zero", "-p", "hi"],
            None,
            "/dev/zero: larger than 4 MiB",
        ),
        (
            vec!["x", "--output-schema", "/dev/zero", "-p", "hi"],
            None,
            "/dev/zero: larger than 4 MiB",
        ),
        (
            vec!["x"],
            Some("/dev/zero"),
            "cannot read the prompt from stdin: larger than 8 MiB",
        ),
        (
            vec!["x", "--detach"],
            Some("/dev/zero"),
            "larger than 8 MiB",
        ),
    ] {
        let out = limited(&env, "ao-new", &args, stdin);
        let line = out.fails(2);
        assert!(line.contains(what), "{args:?}: {line}");
    }
    assert!(env.fake_log().is_empty(), "no CLI started");
    assert!(!env.backup("x", "jsonl").exists(), "nothing written");
}

#[test]
fn an_endless_agent_file_is_refused_and_listed_as_a_problem() {
    let env = Project::with_server();
    let agents = env.dir.join(".agent-orchestrator/agents");
    std::fs::create_dir_all(agents.join("big")).unwrap();
    std::os::unix::fs::symlink("/dev/zero", agents.join("big/agent.json")).unwrap();
    let subagents = env.dir.join(".claude/agents");
    std::fs::create_dir_all(&subagents).unwrap();
    // A regular file of 100 GiB (sparse: it takes no disk).
    File::create(subagents.join("endless.md"))
        .unwrap()
        .set_len(100 << 30)
        .unwrap();
    for agent in ["big", "endless"] {
        let out = limited(&env, "ao-new", &["x", "--agent", agent, "-p", "hi"], None);
        let line = out.fails(2);
        assert!(line.contains("larger than"), "{agent}: {line}");
    }
    let out = limited(&env, "ao-list-agents", &["--json"], None);
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stdout.contains("larger than"), "{out:?}");
    assert!(env.fake_log().is_empty());
}

#[test]
fn an_endless_backup_line_is_refused_by_sync_and_resume() {
    let env = Project::with_server();
    assert_eq!(env.run("ao-new", &["w"], "hi", "plain").code, Some(0));
    let log = env.backup("w", "jsonl");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink("/dev/zero", &log).unwrap();
    let out = limited(&env, "ao-sync", &["w"], None);
    let line = out.fails(2);
    assert!(line.contains("line 1 is longer than 64 MiB"), "{line}");
    let out = limited(&env, "ao-resume", &["w", "-p", "again"], None);
    let line = out.fails(2);
    assert!(line.contains("line 1 is longer than 64 MiB"), "{line}");
}

#[test]
fn a_cli_line_past_the_ceiling_ends_the_run_as_an_error() {
    let env = Project::with_server();
    // 65 MiB of answer: the assistant line alone is past 64 MiB.
    let out = env.run("ao-new", &["w"], "hi", "bigline:68157440");
    let line = out.fails(1);
    assert!(
        line.contains("claude printed a line longer than 64 MiB"),
        "{line}"
    );
    let backup = env.backup_lines("w");
    let end = backup.last().unwrap();
    assert_eq!(end["type"], "run_completed");
    assert_eq!(end["reason"], "error");
}
