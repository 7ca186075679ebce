//! What the integration tests share: starting the real session manager,
//! temporary folders, plain HTTP helpers that see the raw JSON, projects in
//! which to run the `ao-*` binaries, and the real Claude Code CLI against a
//! mock Anthropic API.

pub mod fixtures;
pub mod fuzz;
pub mod git;
pub mod hosts;
pub mod http;
pub mod legacy_server;
pub mod live;
pub mod manager;
pub mod memory;
pub mod mock_anthropic;
pub mod postgres;
pub mod procs;
pub mod project;
pub mod real_claude;
pub mod stalled;
pub mod webhook;

pub use http::Http;
pub use manager::SessionManager;
pub use project::{Output, Project, Running};

use std::path::PathBuf;

/// The path of one of this package's binaries, built by cargo for the tests;
/// `ao-fake-claude` is the workspace's other package, which `cargo test`
/// builds beside them.
pub fn bin(name: &str) -> PathBuf {
    if name == FAKE_CLAUDE {
        return fake_claude();
    }
    let var = format!("CARGO_BIN_EXE_{name}");
    std::env::var_os(&var)
        .map(PathBuf::from)
        .unwrap_or_else(|| panic!("{var} is not set; run the tests through cargo"))
}

/// The scripted stand-in for the `claude` CLI.
pub const FAKE_CLAUDE: &str = "ao-fake-claude";

/// `ao-fake-claude` in the profile folder this test runs from (its parent's
/// parent: `target/debug/deps/it-...`).
fn fake_claude() -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let path = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(FAKE_CLAUDE))
        .expect("the test runs from target/<profile>/deps");
    assert!(
        path.is_file(),
        "{} is missing: `cargo test` builds it; after `cargo test --test it` alone, run `cargo build -p {FAKE_CLAUDE}` first",
        path.display()
    );
    path
}

/// A `Command` for one of our binaries with none of the user's
/// `AGENT_ORCHESTRATOR_*` settings leaking in.
pub fn command(name: &str) -> std::process::Command {
    let mut cmd = std::process::Command::new(bin(name));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("AGENT_ORCHESTRATOR_") {
            cmd.env_remove(key);
        }
    }
    cmd.env_remove("RUST_LOG");
    cmd
}

/// Serves `app` on a free loopback port from a thread of its own, as the
/// tests' stand-ins for other servers do; answers the address and the
/// sender that stops it (requests under way are dropped).
pub fn serve_on_thread(
    app: axum::Router,
) -> (std::net::SocketAddr, tokio::sync::oneshot::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.set_nonblocking(true).expect("non-blocking");
    let addr = listener.local_addr().expect("addr");
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(async move {
            let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
            tokio::select! {
                _ = axum::serve(listener, app) => {}
                _ = rx => {}
            }
        });
    });
    (addr, tx)
}
