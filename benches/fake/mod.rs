//! The fake `claude` the process benchmarks drive.

use std::path::{Path, PathBuf};
use std::process::Command;

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
