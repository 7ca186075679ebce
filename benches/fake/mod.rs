//! The fake `claude` the process benchmarks drive.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// The fake `claude` (the workspace's `ao-fake-claude` package), built in
/// this profile first (once per process): `cargo bench` builds only this
/// package's targets.
pub fn fake_claude() -> &'static Path {
    static PATH: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
    PATH.get_or_init(build_fake_claude)
}

fn build_fake_claude() -> PathBuf {
    let profile = Path::new(env!("CARGO_BIN_EXE_ao-new"))
        .parent()
        .expect("target/<profile>");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let built = Command::new(cargo)
        .args(["build", "--quiet", "--release", "-p", "ao-fake-claude"])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .status()
        .expect("run cargo build -p ao-fake-claude");
    assert!(built.success(), "cargo build -p ao-fake-claude failed");
    let path = profile.join("ao-fake-claude");
    assert!(path.is_file(), "{} is missing", path.display());
    path
}

/// Spawning the fake CLI until it answers `initialize`: the baseline of a
/// run's start.
#[allow(dead_code)] // not every benchmark times the CLI's bare start
pub fn cli_start() -> Duration {
    let start = Instant::now();
    let mut child = Command::new(fake_claude())
        .args(agent_orchestrator::claude::process::STREAM_JSON_ARGS)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn fake");
    let mut stdin = child.stdin.take().expect("stdin");
    stdin
        .write_all(b"{\"type\":\"control_request\",\"request_id\":\"r\",\"request\":{\"subtype\":\"initialize\",\"hooks\":{}}}\n")
        .expect("write");
    let mut line = String::new();
    BufReader::new(child.stdout.take().expect("stdout"))
        .read_line(&mut line)
        .expect("answer");
    let took = start.elapsed();
    drop(stdin);
    let _ = child.wait();
    took
}
