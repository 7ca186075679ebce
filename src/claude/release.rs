//! What a CLI can do, read from its installed files without starting it
//! (a process start costs a run more than reading a file).

use std::path::Path;

use super::launch::PARTIAL_MESSAGES_FLAG;

/// Whether the CLI at `program` takes `--include-partial-messages`. An npm
/// install whose package runs `cli.js` (the 1.x and 2.0 releases) is asked
/// its code (1.0.100 does not know the flag); any other CLI is given the
/// flag, and a run whose CLI refuses it is run again without
/// (`runner::run`).
pub fn takes_partial_messages(program: &Path) -> bool {
    package_code(program).is_none_or(|code| code.contains(PARTIAL_MESSAGES_FLAG))
}

/// The code of `program`'s `cli.js`, when it is an npm release that runs
/// one (the 1.x and 2.0 releases), which names every flag it takes.
pub fn package_code(program: &Path) -> Option<String> {
    std::fs::read_to_string(package_script(program)?).ok()
}

/// The `cli.js` of the `@anthropic-ai/claude-code` package `program` is
/// part of, if it is one that runs it.
fn package_script(program: &Path) -> Option<std::path::PathBuf> {
    let real = std::fs::canonicalize(program).ok()?;
    for dir in real.ancestors().skip(1).take(3) {
        let Ok(text) = std::fs::read_to_string(dir.join("package.json")) else {
            continue;
        };
        let package: serde_json::Value = serde_json::from_str(&text).ok()?;
        if package["name"] != "@anthropic-ai/claude-code" {
            return None;
        }
        let script = dir.join("cli.js");
        return script.is_file().then_some(script);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(code: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let pkg = dir.path().join("node_modules/@anthropic-ai/claude-code");
        std::fs::create_dir_all(&pkg).unwrap();
        std::fs::write(
            pkg.join("package.json"),
            r#"{"name": "@anthropic-ai/claude-code", "version": "1.0.100"}"#,
        )
        .unwrap();
        std::fs::write(pkg.join("cli.js"), code).unwrap();
        let bin = dir.path().join("node_modules/.bin");
        std::fs::create_dir_all(&bin).unwrap();
        std::os::unix::fs::symlink("../@anthropic-ai/claude-code/cli.js", bin.join("claude"))
            .unwrap();
        dir
    }

    #[test]
    fn an_npm_release_is_asked_its_code_and_any_other_cli_gets_the_flag() {
        let old = package("program.option('--print')");
        assert!(!takes_partial_messages(
            &old.path().join("node_modules/.bin/claude")
        ));
        let new = package("program.option('--include-partial-messages')");
        assert!(takes_partial_messages(
            &new.path().join("node_modules/.bin/claude")
        ));
        let other = tempfile::tempdir().unwrap();
        std::fs::write(other.path().join("claude"), "#!/bin/sh\n").unwrap();
        assert!(takes_partial_messages(&other.path().join("claude")));
    }
}
