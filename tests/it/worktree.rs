//! `ao-new --worktree`: a git worktree and branch per session, on real git
//! repositories made in temporary folders; the fake CLI edits files there
//! (and, as the real CLI, finds a conversation only from the directory it
//! began in), and the real CLI proves a resume continues the conversation.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

use crate::support::real_claude::RealClaude;
use crate::support::{Project, Running};

/// Runs git in `dir`; answers its stdout.
#[track_caller]
pub(crate) fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .output()
        .expect("git");
    assert!(
        out.status.success(),
        "git {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Makes the project a repository with one commit of `shared.txt`.
pub(crate) fn repository(p: &Project) {
    git(&p.dir, &["init", "--quiet", "-b", "main"]);
    git(&p.dir, &["config", "user.email", "test@example.com"]);
    git(&p.dir, &["config", "user.name", "test"]);
    std::fs::write(p.dir.join("shared.txt"), "base\n").unwrap();
    git(&p.dir, &["add", "shared.txt"]);
    git(&p.dir, &["commit", "--quiet", "-m", "base"]);
}

fn worktree_of(p: &Project, name: &str) -> std::path::PathBuf {
    p.dir.join(".agent-orchestrator/worktrees").join(name)
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// What `git status` says of the main checkout (the backups folder ignores
/// itself, so it is never in it).
fn main_status(p: &Project) -> String {
    git(&p.dir, &["status", "--porcelain", "--untracked-files=all"])
        .trim_end()
        .to_owned()
}

#[tokio::test]
async fn parallel_runs_edit_the_same_file_each_on_its_own_branch() {
    let p = Project::with_server();
    repository(&p);
    for name in ["alpha", "beta"] {
        let out = p.run(
            "ao-new",
            &[name, "--worktree", "--detach"],
            &format!("line from {name}"),
            "edit:shared.txt,slow:100",
        );
        assert_eq!(out.ok(), name);
    }
    assert_eq!(
        p.ao("ao-wait", &["alpha", "beta"], None).ok(),
        "alpha: completed\nbeta: completed"
    );

    assert_eq!(read(&p.dir.join("shared.txt")), "base\n", "main untouched");
    assert_eq!(
        main_status(&p),
        "",
        "the worktrees do not show in the main checkout"
    );
    for name in ["alpha", "beta"] {
        let wt = worktree_of(&p, name);
        assert_eq!(
            read(&wt.join("shared.txt")),
            format!("base\nline from {name}\n")
        );
        assert_eq!(
            git(&wt, &["branch", "--show-current"]).trim(),
            format!("ao/{name}")
        );

        let status = p.status_json(name);
        let w = &status["worktree"];
        assert_eq!(w["branch"], format!("ao/{name}"), "{status}");
        assert_eq!(w["path"], wt.to_str().unwrap());
        assert_eq!(
            (w["ahead"].as_u64(), w["dirty"].as_bool()),
            (Some(0), Some(true))
        );
        assert_eq!(w["changed_files"], serde_json::json!(["shared.txt"]));

        git(&wt, &["commit", "--quiet", "-am", &format!("{name} edits")]);
        let w = p.status_json(name)["worktree"].clone();
        assert_eq!(
            (w["ahead"].as_u64(), w["dirty"].as_bool()),
            (Some(1), Some(false))
        );
        assert_eq!(
            git(&p.dir, &["show", &format!("ao/{name}:shared.txt")]),
            format!("base\nline from {name}\n"),
            "the edit is on its branch"
        );

        // The API and the backups know where the session runs.
        let session = p.session(name).await.expect("session");
        assert_eq!(
            session.branch.as_deref(),
            Some(format!("ao/{name}").as_str())
        );
        assert_eq!(session.worktree.as_deref(), wt.to_str());
        assert_eq!(p.meta(name)["worktree"]["branch"], format!("ao/{name}"));
        let fake = p.fake_log();
        assert!(
            fake.iter().any(|l| l["cwd"].as_str() == wt.to_str()),
            "the CLI ran in the worktree: {fake:?}"
        );
    }
    let list: Value =
        serde_json::from_str(p.ao("ao-list-sessions", &["--json"], None).ok()).unwrap();
    let branches: Vec<&str> = list["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|s| s["branch"].as_str())
        .collect();
    assert_eq!(branches.len(), 2, "{list}");
}

#[tokio::test]
async fn a_resume_runs_in_the_worktree_without_being_told() {
    let p = Project::with_server();
    repository(&p);
    let out = p.run(
        "ao-new",
        &["w", "--worktree"],
        "first edit",
        "edit:notes.txt",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    // The fake, as the real CLI, resumes only from the directory the
    // conversation began in: a resume elsewhere would fail.
    let out = p.run("ao-resume", &["w"], "second edit", "edit:notes.txt");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        read(&worktree_of(&p, "w").join("notes.txt")),
        "first edit\nsecond edit\n"
    );
    assert!(!p.dir.join("notes.txt").exists());

    for flags in [&["w", "--worktree"][..], &["w", "--base", "HEAD"][..]] {
        let out = p.run("ao-resume", flags, "again", "plain");
        let line = out.fails(2);
        assert!(line.contains("belong to ao-new"), "{line}");
    }

    // An agent can ask for a worktree of its own.
    let agent = p.dir.join(".agent-orchestrator/agents/editor");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(
        agent.join("agent.json"),
        r#"{"name": "editor", "description": "edits in a worktree", "worktree": true}"#,
    )
    .unwrap();
    let out = p.run(
        "ao-new",
        &["by-agent", "--agent", "editor"],
        "agent edit",
        "edit:notes.txt",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        read(&worktree_of(&p, "by-agent").join("notes.txt")),
        "agent edit\n"
    );
    assert_eq!(
        p.status_json("by-agent")["worktree"]["branch"],
        "ao/by-agent"
    );
}

#[tokio::test]
async fn clean_removes_the_worktree_keeps_the_branch_and_refuses_uncommitted_work() {
    let p = Project::with_server();
    repository(&p);
    for name in ["dirty", "done", "forced"] {
        let out = p.run("ao-new", &[name, "--worktree"], name, "edit:shared.txt");
        assert_eq!(out.code, Some(0), "{out:?}");
    }
    git(
        &worktree_of(&p, "done"),
        &["commit", "--quiet", "-am", "done"],
    );

    let line = p.ao("ao-clean", &["dirty"], None).fails(1).to_owned();
    assert!(
        line.contains("uncommitted changes (shared.txt)") && line.contains("--force"),
        "{line}"
    );
    assert!(worktree_of(&p, "dirty").join("shared.txt").exists(), "kept");
    assert!(p.session("dirty").await.is_some(), "nothing was deleted");
    assert!(p.backup("dirty", "jsonl").exists());

    let out = p.ao("ao-clean", &["done"], None);
    assert!(
        out.ok().contains("worktree removed, branch ao/done kept"),
        "{out:?}"
    );
    assert!(!worktree_of(&p, "done").exists());
    assert_eq!(
        git(&p.dir, &["show", "ao/done:shared.txt"]),
        "base\ndone\n",
        "the work stays reachable"
    );

    let out = p.ao("ao-clean", &["forced", "--force"], None);
    assert!(out.ok().contains("worktree removed"), "{out:?}");
    assert!(!worktree_of(&p, "forced").exists());

    // --all: the dirty one is refused, the exit code says so.
    let out = p.ao("ao-clean", &["--all"], None);
    assert_eq!(out.code, Some(1), "{out:?}");
    assert!(out.stderr.contains("uncommitted changes"), "{out:?}");
    assert!(worktree_of(&p, "dirty").exists());
    assert!(
        p.ao("ao-clean", &["--all", "--force"], None)
            .ok()
            .contains("Deleted session dirty")
    );
    assert!(!worktree_of(&p, "dirty").exists());
    assert_eq!(
        git(&p.dir, &["worktree", "list"]).lines().count(),
        1,
        "only main is left"
    );
    assert_eq!(read(&p.dir.join("shared.txt")), "base\n");
}

#[tokio::test]
async fn a_worktree_deleted_by_hand_is_named_and_cleaned() {
    let p = Project::with_server();
    repository(&p);
    assert_eq!(
        p.run("ao-new", &["gone", "--worktree"], "x", "plain").code,
        Some(0)
    );
    std::fs::remove_dir_all(worktree_of(&p, "gone")).unwrap();
    let line = p
        .run("ao-resume", &["gone"], "y", "plain")
        .fails(1)
        .to_owned();
    assert!(
        line.contains("is gone") && line.contains("git worktree prune"),
        "{line}"
    );
    let out = p.ao("ao-clean", &["gone"], None);
    assert!(
        out.ok()
            .contains("worktree was already gone, branch ao/gone kept"),
        "{out:?}"
    );
    assert!(p.session("gone").await.is_none());
    assert_eq!(
        git(&p.dir, &["worktree", "list"]).lines().count(),
        1,
        "pruned"
    );
}

#[tokio::test]
async fn paths_in_advice_are_quoted_and_the_advice_runs_as_given() {
    let p = Project::with_server();
    // Two projects with spaces in their paths, each with a session "dup".
    let mut dirs = Vec::new();
    for project in ["my repo", "other one"] {
        let dir = p.scratch().join(project);
        std::fs::create_dir_all(&dir).unwrap();
        let dir = dir.canonicalize().unwrap();
        git(&dir, &["init", "--quiet", "-b", "main"]);
        git(&dir, &["config", "user.email", "test@example.com"]);
        git(&dir, &["config", "user.name", "test"]);
        git(&dir, &["commit", "--quiet", "--allow-empty", "-m", "base"]);
        let at = dir.to_str().unwrap();
        let out = p.run(
            "ao-new",
            &["dup", "--worktree", "--project-dir", at],
            "x",
            "plain",
        );
        assert_eq!(out.code, Some(0), "{out:?}");
        dirs.push(dir);
    }
    let line = p.ao("ao-status", &["dup"], None).fails(1).to_owned();
    for dir in &dirs {
        assert!(line.contains(&format!("'{}'", dir.display())), "{line}");
    }
    // A worktree deleted by hand: the command that restores it, pasted into a shell, works.
    let repo = &dirs[0];
    std::fs::remove_dir_all(repo.join(".agent-orchestrator/worktrees/dup")).unwrap();
    let at = repo.to_str().unwrap();
    let line = p
        .run("ao-resume", &["dup", "--project-dir", at], "y", "plain")
        .fails(1)
        .to_owned();
    let restore = line
        .split('`')
        .find(|part| part.starts_with("git worktree add"))
        .unwrap_or_else(|| panic!("{line}"));
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!("git worktree prune && {restore}"))
        .current_dir(repo)
        .output()
        .unwrap();
    assert!(out.status.success(), "{restore}: {out:?}");
    let out = p.run("ao-resume", &["dup", "--project-dir", at], "y", "plain");
    assert_eq!(out.ok(), "fake answer to: y");
}

#[tokio::test]
async fn bad_worktree_requests_are_refused_before_anything_is_made() {
    let p = Project::with_server();
    // Not a repository.
    let line = p
        .run("ao-new", &["a", "--worktree"], "x", "plain")
        .fails(2)
        .to_owned();
    assert!(
        line.contains("not in one") && line.contains("git init"),
        "{line}"
    );
    // A repository without a commit.
    git(&p.dir, &["init", "--quiet", "-b", "main"]);
    let line = p
        .run("ao-new", &["a", "--worktree"], "x", "plain")
        .fails(2)
        .to_owned();
    assert!(line.contains("no commit yet"), "{line}");

    repository(&p);
    git(&p.dir, &["branch", "ao/taken"]);
    let cases: [(&[&str], &str); 3] = [
        (
            &["taken", "--worktree"],
            "a branch 'ao/taken' already exists",
        ),
        (
            &["b", "--worktree", "--base", "no-such-ref"],
            "--base 'no-such-ref' is not a commit",
        ),
        (&["c", "--base", "HEAD"], "--base needs --worktree"),
    ];
    for (args, needle) in cases {
        let line = p.run("ao-new", args, "x", "plain").fails(2).to_owned();
        assert!(line.contains(needle), "{args:?}: {line}");
    }
    // --detach checks in the foreground too.
    let line = p
        .run(
            "ao-new",
            &["d", "--worktree", "--detach", "--base", "nope"],
            "x",
            "plain",
        )
        .fails(2)
        .to_owned();
    assert!(line.contains("is not a commit"), "{line}");

    // git missing from PATH.
    let empty = tempfile::tempdir().unwrap();
    let mut cmd = p.command("ao-new");
    cmd.env("PATH", empty.path())
        .env("FAKE_CLAUDE_SCENARIO", "plain")
        .args(["e", "--worktree", "-p", "x"]);
    let out = Running::start(cmd, None).wait();
    let line = out.fails(2);
    assert!(line.contains("no git on PATH"), "{line}");

    // Nothing was made for any of them.
    assert!(!p.dir.join(".agent-orchestrator/worktrees").exists());
    assert_eq!(git(&p.dir, &["worktree", "list"]).lines().count(), 1);
    let list: Value =
        serde_json::from_str(p.ao("ao-list-sessions", &["--json"], None).ok()).unwrap();
    assert_eq!(list["sessions"], serde_json::json!([]));

    // A base other than HEAD.
    std::fs::write(p.dir.join("shared.txt"), "newer\n").unwrap();
    git(&p.dir, &["commit", "--quiet", "-am", "newer"]);
    let out = p.run(
        "ao-new",
        &["old", "--worktree", "--base", "HEAD~1"],
        "x",
        "plain",
    );
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(read(&worktree_of(&p, "old").join("shared.txt")), "base\n");
}

/// The real CLI runs in the worktree, and its conversation continues there
/// on `ao-resume` (Claude Code keys conversations by directory).
#[tokio::test]
async fn a_real_cli_resumes_its_conversation_in_the_worktree() {
    let Some((claude, mock)) = RealClaude::with_mock() else {
        return;
    };
    let mut p = Project::with_server();
    repository(&p);
    p.use_real_claude(&claude, mock.base_url());
    let out = p.ao(
        "ao-new",
        &["real-wt", "--worktree"],
        Some("RUN_BASH: echo from-the-real-cli >> shared.txt && pwd"),
    );
    let wt = worktree_of(&p, "real-wt");
    assert_eq!(
        out.ok(),
        format!("The command printed {}. Final answer: 4", wt.display())
    );
    assert_eq!(read(&wt.join("shared.txt")), "base\nfrom-the-real-cli\n");
    assert_eq!(read(&p.dir.join("shared.txt")), "base\n");

    let out = p.ao("ao-resume", &["real-wt"], Some("What did I ask before?"));
    assert!(
        out.ok().starts_with("mock answer: What did I ask before?"),
        "{out:?}"
    );
    let history = mock.last_history();
    assert!(
        history.contains("RUN_BASH") && history.contains("from-the-real-cli"),
        "the resumed request carries the first run: {history}"
    );
    let session = p.session("real-wt").await.unwrap();
    assert_eq!(session.branch.as_deref(), Some("ao/real-wt"));
    drop(mock);
}

#[tokio::test]
async fn an_mcp_start_with_worktree_edits_on_its_own_branch() {
    let p = Project::with_server();
    repository(&p);
    let (session, _) = crate::mcp::connect(&p, "edit:shared.txt").await;
    let (failed, answer) = crate::mcp::call(
        &session,
        "start_agent_session",
        serde_json::json!({"session_name": "tool-edit", "prompt": "from a tool", "worktree": true}),
    )
    .await;
    assert!(!failed, "{answer}");
    let wt = worktree_of(&p, "tool-edit");
    assert_eq!(read(&wt.join("shared.txt")), "base\nfrom a tool\n");
    assert_eq!(
        git(&wt, &["branch", "--show-current"]).trim(),
        "ao/tool-edit"
    );
    assert_eq!(read(&p.dir.join("shared.txt")), "base\n", "main untouched");
    assert_eq!(p.meta("tool-edit")["worktree"]["branch"], "ao/tool-edit");

    // Refused as ao-new refuses it: one line, nothing made.
    let (failed, answer) = crate::mcp::call(
        &session,
        "start_agent_session",
        serde_json::json!({"session_name": "bad-base", "prompt": "p", "worktree": true, "base": "no-such-ref"}),
    )
    .await;
    assert!(failed && answer.contains("no-such-ref"), "{answer}");
    assert!(!worktree_of(&p, "bad-base").exists());
    session.cancel().await.unwrap();
}

#[tokio::test]
async fn backups_and_worktrees_ignore_themselves_and_agents_stay_visible() {
    let p = Project::with_server();
    repository(&p);
    assert_eq!(p.run("ao-new", &["plain"], "hi", "plain").code, Some(0));
    let out = p.run("ao-new", &["apart", "--worktree"], "hi", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(
        main_status(&p),
        "",
        "nothing of ours is one `git add -A` away"
    );
    // Even where the repository's own exclude file lacks the worktrees
    // (another clone of the project, a user who reset it).
    let exclude = p.dir.join(".git/info/exclude");
    std::fs::write(&exclude, "").unwrap();
    assert_eq!(main_status(&p), "");
    // Agent definitions are the project's, for git to see.
    let agent = p.dir.join(".agent-orchestrator/agents/reviewer");
    std::fs::create_dir_all(&agent).unwrap();
    std::fs::write(agent.join("agent.json"), r#"{"name":"reviewer"}"#).unwrap();
    assert_eq!(
        main_status(&p),
        "?? .agent-orchestrator/agents/reviewer/agent.json"
    );
    // A backups folder of an earlier release gets its ignore file on the next run.
    let ignore = p.sessions_dir().join(".gitignore");
    std::fs::remove_file(&ignore).unwrap();
    assert!(main_status(&p).contains("agent-sessions/plain.jsonl"));
    assert_eq!(
        p.run("ao-resume", &["plain"], "again", "plain").code,
        Some(0)
    );
    assert!(ignore.is_file());
    assert!(!main_status(&p).contains("agent-sessions"));
}

#[tokio::test]
async fn a_bare_repository_is_named_as_one() {
    let p = Project::with_server();
    git(&p.dir, &["init", "--quiet", "--bare"]);
    let line = p
        .run("ao-new", &["a", "--worktree"], "x", "plain")
        .fails(2)
        .to_owned();
    assert!(
        line.contains("is a bare git repository")
            && line.contains("no work tree")
            && line.contains("git clone"),
        "{line}"
    );
    assert!(!p.dir.join(".agent-orchestrator/worktrees").exists());
}

/// The commands in backquotes of an advice line, run one after the other
/// in the project directory with the project's settings (our binaries on
/// PATH); each must succeed.
#[track_caller]
fn follow_advice(p: &Project, line: &str) {
    let commands: Vec<&str> = line.split('`').skip(1).step_by(2).collect();
    assert!(!commands.is_empty(), "no command in: {line}");
    let template = p.command("ao-clean");
    let bins = crate::support::bin("ao-clean").parent().unwrap().to_owned();
    let path = format!(
        "{}:{}",
        bins.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    for command in commands {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(command).current_dir(&p.dir);
        for (key, value) in template.get_envs() {
            match value {
                Some(value) => cmd.env(key, value),
                None => cmd.env_remove(key),
            };
        }
        let out = cmd.env("PATH", &path).output().unwrap();
        assert!(
            out.status.success(),
            "`{command}` (advised in: {line}): {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[tokio::test]
async fn a_run_killed_while_making_its_worktree_is_recoverable() {
    let p = Project::with_server();
    repository(&p);
    // A git that, inside `worktree add`, leaves what an add cut short
    // leaves (the new worktree locked as "initializing"), then sleeps: the
    // runner is killed there.
    let wrapper = p.scratch().join("slow-git");
    std::fs::create_dir_all(&wrapper).unwrap();
    let real = String::from_utf8(
        Command::new("sh")
            .args(["-c", "command -v git"])
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let pid_file = p.scratch().join("git-wrapper.pid");
    let script = format!(
        "#!/bin/sh\n\
         if [ \"$3 $4\" = \"worktree add\" ]; then\n\
           {real} \"$@\" && {real} -C \"$2\" worktree lock --reason initializing \"$8\" || exit 1\n\
           echo $$ > '{pids}.part' && mv '{pids}.part' '{pids}'\n\
           exec sleep 60\n\
         fi\n\
         exec {real} \"$@\"\n",
        real = real.trim(),
        pids = pid_file.display()
    );
    std::fs::write(wrapper.join("git"), script).unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(wrapper.join("git"), std::fs::Permissions::from_mode(0o755)).unwrap();
    let mut cmd = p.command("ao-new");
    cmd.env(
        "PATH",
        format!("{}:{}", wrapper.display(), std::env::var("PATH").unwrap()),
    )
    .env("FAKE_CLAUDE_SCENARIO", "plain")
    .args(["cut", "--worktree", "-p", "x"]);
    let runner = Running::start(cmd, None);
    let mut leftovers = crate::support::procs::Leftovers::default();
    crate::support::project::eventually("git inside worktree add", async || pid_file.exists())
        .await;
    let sleeping: i32 = read(&pid_file).trim().parse().unwrap();
    leftovers.watch([sleeping]);
    assert_eq!(runner.stop(nix::sys::signal::Signal::SIGKILL).code, None);
    drop(leftovers);
    let wt = worktree_of(&p, "cut");
    assert!(wt.exists());

    // Known to the commands, though its CLI never started.
    assert_eq!(p.ao("ao-status", &["cut"], None).ok(), "finished");
    let status = p.status_json("cut");
    assert_eq!(status["worktree"]["branch"], "ao/cut", "{status}");
    assert_eq!(status["worktree"]["exists"], true, "{status}");
    // ao-new says what is left and how to clear it, and that works.
    let line = p
        .run("ao-new", &["cut", "--worktree"], "x", "plain")
        .fails(1)
        .to_owned();
    assert!(line.contains("`ao-clean cut`"), "{line}");
    follow_advice(&p, &line);
    assert!(!wt.exists());
    assert_eq!(git(&p.dir, &["worktree", "list"]).lines().count(), 1);
    assert_eq!(
        git(&p.dir, &["branch", "--list", "ao/cut"]),
        "",
        "a branch without a commit of its own goes too"
    );
    assert!(!p.backup("cut", "meta.json").exists());
    assert!(!p.backup("cut", "lock").exists());
    let out = p.run("ao-new", &["cut", "--worktree"], "again", "edit:shared.txt");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(read(&wt.join("shared.txt")), "base\nagain\n");

    // What such a run left before its session was recorded first (or a
    // branch checked out elsewhere by hand): the advice clears it too.
    let left = p.dir.join(".agent-orchestrator/worktrees/old");
    git(
        &p.dir,
        &[
            "worktree",
            "add",
            "--quiet",
            "--lock",
            "--reason",
            "initializing",
            "-b",
            "ao/old",
            &left.to_string_lossy(),
        ],
    );
    let line = p
        .run("ao-new", &["old", "--worktree"], "x", "plain")
        .fails(2)
        .to_owned();
    assert!(
        line.contains("already exists") && line.contains("git branch -D ao/old"),
        "{line}"
    );
    follow_advice(&p, &line);
    let out = p.run("ao-new", &["old", "--worktree"], "x", "plain");
    assert_eq!(out.code, Some(0), "{out:?}");
}

#[tokio::test]
async fn clean_all_force_stops_each_run_before_its_worktree_goes() {
    let p = Project::with_server();
    repository(&p);
    let runner = p.spawn(
        "ao-new",
        &["live", "--worktree"],
        "x",
        "edit:shared.txt,hang",
    );
    crate::support::project::eventually("the run to be under way", async || {
        p.backup_text("live").contains("\"subtype\":\"init\"")
    })
    .await;
    let cli = p.cli_pid("live");
    let out = p.ao("ao-clean", &["--all", "--force"], None);
    assert!(
        out.ok().starts_with("Deleted session live (") && out.stdout.contains("worktree removed"),
        "{out:?}"
    );
    // Stopped first: the CLI was gone before its folder went.
    assert!(!crate::support::procs::alive(cli), "the CLI runs on");
    assert_eq!(runner.wait().code, Some(143));
    assert!(!worktree_of(&p, "live").exists());
    assert_eq!(git(&p.dir, &["worktree", "list"]).lines().count(), 1);
}
