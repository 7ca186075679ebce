//! The server's layers import one way only (issue 23): the store knows
//! neither HTTP nor the live hub, the hub knows no store, and both meet in
//! `server/changes.rs`, which knows neither.

use std::path::{Path, PathBuf};

/// Every `.rs` file under `dir`.
fn sources(dir: &Path) -> Vec<PathBuf> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            found.extend(sources(&path));
        } else if path.extension().is_some_and(|e| e == "rs") {
            found.push(path);
        }
    }
    found
}

/// The lines of the files under `dir` (or the file `dir`) that mention any
/// of `forbidden`.
fn mentions(dir: &str, forbidden: &[&str]) -> Vec<String> {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join(dir);
    let files = if path.is_dir() {
        sources(&path)
    } else {
        vec![path]
    };
    let mut found = Vec::new();
    for file in files {
        let text = std::fs::read_to_string(&file).unwrap();
        for (n, line) in text.lines().enumerate() {
            let code = line.split("//").next().unwrap_or_default();
            if forbidden.iter().any(|f| code.contains(f)) {
                found.push(format!("{}:{}: {}", file.display(), n + 1, line.trim()));
            }
        }
    }
    found
}

#[test]
fn the_store_imports_neither_http_nor_the_live_hub() {
    let found = mentions(
        "src/server/store",
        &[
            "server::error",
            "ApiError",
            "server::live",
            "super::live",
            "server::routes",
            "axum",
            "hyper",
            "StatusCode",
        ],
    );
    assert!(found.is_empty(), "{found:#?}");
}

#[test]
fn the_live_hub_and_the_changes_import_no_store() {
    for dir in ["src/server/live", "src/server/changes.rs"] {
        let found = mentions(dir, &["server::store", "super::store", "server::error"]);
        assert!(found.is_empty(), "{found:#?}");
    }
}
