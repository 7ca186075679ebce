//! What telling a run's changes costs (`agent_orchestrator::changes`) on a
//! repository of a few thousand files: the first snapshot (taken while the
//! CLI starts), the second (taken while it exits, from the first one's
//! index), and the diff between them (the only part after the CLI has
//! exited), next to `git status` in the same repository as a baseline.
//!
//! `cargo bench --bench changes` (AO_BENCH_FILES=N files, AO_BENCH_RUNS=N
//! runs of each; 5,000 and 15 by default).

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use agent_orchestrator::changes;

#[allow(dead_code)] // the process benchmarks use the rest
mod common;

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .arg("-C")
        .arg(dir)
        .args(args)
        .stdout(Stdio::null())
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn number(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

fn time<T>(f: impl FnOnce() -> T) -> (Duration, T) {
    let start = Instant::now();
    let out = f();
    (start.elapsed(), out)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        eprintln!("changes bench: run it with `cargo bench --bench changes`");
        return;
    }
    let files = number("AO_BENCH_FILES", 5000);
    let runs = number("AO_BENCH_RUNS", 15);
    let dir = tempfile::tempdir().expect("temp dir");
    let repo = dir.path();
    git(repo, &["init", "-q", "-b", "main"]);
    git(repo, &["config", "user.email", "bench@example.com"]);
    git(repo, &["config", "user.name", "bench"]);
    let body: String = (0..30)
        .map(|i| format!("line {i} of a source file\n"))
        .collect();
    for i in 0..files {
        let folder = repo.join(format!("src/m{}", i / 100));
        std::fs::create_dir_all(&folder).expect("folder");
        std::fs::write(folder.join(format!("f{i}.rs")), &body).expect("file");
    }
    git(repo, &["add", "-A"]);
    git(repo, &["commit", "-qm", "files"]);
    for i in 0..20 {
        std::fs::write(repo.join(format!("untracked-{i}.txt")), &body).expect("file");
    }
    let (mut status, mut first, mut second, mut diff) = (vec![], vec![], vec![], vec![]);
    for run in 0..runs {
        let (took, _) = time(|| git(repo, &["status", "--porcelain"]));
        status.push(took);
        let (took, before) = time(|| {
            changes::snapshot(repo)
                .expect("snapshot")
                .expect("a checkout")
        });
        first.push(took);
        for i in 0..3 {
            let file = repo.join(format!("src/m{i}/f{}.rs", i * 100));
            std::fs::write(file, format!("{body}changed in run {run}\n")).expect("edit");
        }
        let (took, after) = time(|| before.again().expect("second snapshot"));
        second.push(took);
        let (took, changed) =
            time(|| changes::diff(repo, &before.tree, &after.tree).expect("diff"));
        assert_eq!(changed.files.len(), 3);
        diff.push(took);
    }
    println!("changes benchmark: {files} committed files, 20 untracked, {runs} runs each");
    println!("{:<46} {:>10} {:>10} {:>10}", "", "median", "p90", "max");
    common::row("git status --porcelain (baseline)", 46, &status);
    common::row("first snapshot (beside the CLI's start)", 46, &first);
    common::row("second snapshot (beside the CLI's exit)", 46, &second);
    common::row("diff of 3 changed files (after the exit)", 46, &diff);
}
