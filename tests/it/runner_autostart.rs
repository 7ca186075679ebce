//! Zero set-up: with the default URL and nothing listening, `ao-new` starts
//! `ao-session-manager` itself; `AGENT_ORCHESTRATOR_AUTOSTART=0` turns it off.
//! The server it starts takes the same token as the runner, and keeps its
//! files private.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::security::TOKEN;

use crate::support::http::{kinds, run_kinds};
use crate::support::{Http, Project, Running, bin};

const DEFAULT_URL: &str = "http://127.0.0.1:8765";

/// Pids of our `ao-session-manager` processes listening on the default port.
fn autostarted_servers() -> Vec<i32> {
    let ours = bin("ao-session-manager");
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|pid| {
            let cmdline = std::fs::read(format!("/proc/{pid}/cmdline")).unwrap_or_default();
            let args: Vec<String> = cmdline
                .split(|&b| b == 0)
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
            args.first().is_some_and(|a| Path::new(a) == ours) && args.iter().any(|a| a == "8765")
        })
        .collect()
}

#[tokio::test]
async fn the_runner_starts_a_session_manager_when_none_answers() {
    if std::net::TcpStream::connect("127.0.0.1:8765").is_ok() {
        eprintln!("skipping: something already listens on 127.0.0.1:8765");
        return;
    }
    let mut env = Project::offline();
    env.set_env("AGENT_ORCHESTRATOR_TOKEN", TOKEN);
    let run = |auto: Option<&str>, name: &str| {
        let mut cmd = env.command("ao-new");
        cmd.env_remove("AGENT_ORCHESTRATOR_SESSION_MANAGER_URL")
            .env("FAKE_CLAUDE_SCENARIO", "tools:1")
            .args([name, "-p", "x"]);
        match auto {
            Some(v) => cmd.env("AGENT_ORCHESTRATOR_AUTOSTART", v),
            None => cmd.env_remove("AGENT_ORCHESTRATOR_AUTOSTART"),
        };
        Running::start(cmd, None).wait()
    };

    // Turned off: the run still succeeds, with one warning, and nothing is started.
    let out = run(Some("0"), "manual");
    assert_eq!(out.code, Some(0), "{out:?}");
    assert!(out.stderr.contains("warning"), "{out:?}");
    assert!(autostarted_servers().is_empty());

    let out = run(None, "auto");
    let started = autostarted_servers();
    let _stop = StopOnDrop(started.clone());
    assert_eq!(out.code, Some(0), "{out:?}");
    assert_eq!(out.stdout, "fake answer to: x\n");
    assert!(
        out.stderr.contains("started the session manager"),
        "{out:?}"
    );
    assert_eq!(started.len(), 1, "exactly one server started");
    let data = env.data_home().join("agent-orchestrator");
    assert!(
        data.join("session-manager.db").exists(),
        "its database is in the data dir"
    );
    assert!(data.join("session-manager.log").exists(), "and its log");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&data), 0o700);
    for file in ["session-manager.db", "session-manager.log"] {
        assert_eq!(mode(&data.join(file)), 0o600, "{file}");
    }
    assert_eq!(
        Http::new(DEFAULT_URL).get("/sessions").await.0,
        401,
        "the server took the runner's token"
    );
    let http = Http::new(DEFAULT_URL).with_token(TOKEN);
    let (status, body) = http.get("/sessions?name=auto").await;
    assert_eq!(status, 200);
    let id = body["sessions"][0]["session_id"]
        .as_str()
        .unwrap()
        .to_owned();
    let events = http.events(&id).await;
    assert_eq!(kinds(&events), run_kinds(1));
}

/// Stops the servers when the test ends, pass or fail.
struct StopOnDrop(Vec<i32>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        for &pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
}
