//! `ao-session-manager`: see `agent_orchestrator::server`.

use std::io::Write;
use std::process::ExitCode;

use clap::CommandFactory;
use tokio::net::TcpListener;

use agent_orchestrator::diag::{Diag, parse_args};
use agent_orchestrator::server::{Server, ServerArgs, import_sqlite};

#[tokio::main]
async fn main() -> ExitCode {
    agent_orchestrator::diag::log_to_stderr("info");
    let args = match parse_args(ServerArgs::command(), Diag::new("ao-session-manager")) {
        Ok(args) => args,
        Err(code) => return code,
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // Each error's own line already names its cause: no chain.
            eprintln!("ao-session-manager: {e}");
            ExitCode::FAILURE
        }
    }
}

async fn run(args: ServerArgs) -> anyhow::Result<()> {
    let mut config = args.config()?;
    if let Some((target, path)) = args.import(&config)? {
        let report = import_sqlite(&target, &path, args.merge)
            .await
            .map_err(|e| anyhow::anyhow!("cannot import {} into {target}: {e}", path.display()))?;
        print!("{report}");
        tracing::info!("imported {} into {target}", path.display());
        return Ok(());
    }
    // Bind first: a second server started by accident stops here, before
    // it touches the database.
    let listener = TcpListener::bind((args.host.as_str(), args.port))
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}:{}: {e}", args.host, args.port))?;
    let addr = listener.local_addr()?;
    if let Some(warning) = args.check_exposure(&config, addr)? {
        tracing::warn!("{warning}");
    }
    // Launching runs is running code as this user: only where nobody else
    // could ask for it without a token.
    config.local_runs &= addr.ip().is_loopback() || config.guard.token.is_some();
    let server = Server::open(&config).await?;
    if config.guard.token.is_some() {
        tracing::info!("a token is needed on every route but /health");
    }
    tracing::info!("database {}", config.db.describe());
    let shutdown = shutdown_signal();
    let mut stdout = std::io::stdout();
    writeln!(stdout, "listening on http://{addr}")?;
    stdout.flush()?;
    server.run(listener, shutdown).await?;
    tracing::info!("stopped");
    Ok(())
}

/// Resolves on the first SIGINT or SIGTERM. The handlers are in place when
/// this returns (before `listening on` is printed), so that a signal sent
/// the moment the server says it is up still shuts it down cleanly.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let handlers = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    );
    async move {
        let (Ok(mut int), Ok(mut term)) = handlers else {
            // Without signal handlers, Ctrl-C still ends the process by default.
            return std::future::pending().await;
        };
        tokio::select! {
            _ = int.recv() => {}
            _ = term.recv() => {}
        }
    }
}
