//! What `cargo install --path .` installs: the user's commands, one per
//! `src/bin/*.rs`, and never the tests' stand-in for the CLI.

use std::path::Path;
use std::process::Command;

use serde_json::Value;

#[test]
fn cargo_install_installs_the_commands_and_not_the_fake_cli() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let out = Command::new(cargo)
        .args([
            "metadata",
            "--no-deps",
            "--offline",
            "--format-version",
            "1",
        ])
        .current_dir(root)
        .output()
        .expect("cargo metadata");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let metadata: Value = serde_json::from_slice(&out.stdout).unwrap();
    let package = metadata["packages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "agent-orchestrator")
        .expect("the tools' package");
    let mut installed: Vec<String> = package["targets"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|t| t["kind"].as_array().unwrap().iter().any(|k| k == "bin"))
        .map(|t| t["name"].as_str().unwrap().to_owned())
        .collect();
    installed.sort();
    let mut commands: Vec<String> = std::fs::read_dir(root.join("src/bin"))
        .unwrap()
        .map(|e| {
            e.unwrap()
                .path()
                .file_stem()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    commands.sort();
    assert_eq!(installed, commands);
    assert!(!installed.iter().any(|b| b == "ao-fake-claude"));
}
