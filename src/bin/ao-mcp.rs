//! `ao-mcp`: see `agent_orchestrator::mcp`.

use std::process::ExitCode;

use clap::{CommandFactory, Parser};

use agent_orchestrator::config::CommonArgs;
use agent_orchestrator::diag::{Diag, parse_args};

/// An MCP server over stdio: start, resume, inspect, wait for, stop and
/// delete Claude Code sessions as tools (the ao-* commands for agents that
/// call tools).
#[derive(Debug, Parser)]
#[command(
    name = "ao-mcp",
    version,
    after_help = "Speaks MCP (JSON-RPC) on stdin and stdout; logs go to stderr (RUST_LOG=debug for more). \
Tools: list_agent_definitions, list_agent_sessions, start_agent_session, resume_agent_session, \
get_agent_session_status, get_agent_session_result, wait_for_agent_sessions, stop_agent_session, \
delete_agent_session, delete_all_agent_sessions. Settings come from the same flags and \
AGENT_ORCHESTRATOR_* variables as the other commands; a tool's project_dir overrides the project.\n\n\
Examples:\n  claude mcp add agent-orchestrator -- ao-mcp\n  claude mcp add agent-orchestrator -- ao-mcp --project-dir /work/repo"
)]
struct McpArgs {
    #[command(flatten)]
    common: CommonArgs,
}

fn main() -> ExitCode {
    agent_orchestrator::diag::log_to_stderr("warn");
    let args: McpArgs = match parse_args(McpArgs::command(), Diag::new("ao-mcp")) {
        Ok(args) => args,
        Err(code) => return code,
    };
    // One thread serves the connection (tool calls wait on I/O); queries
    // run on short-lived blocking threads, so an idle server stays small.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .thread_keep_alive(std::time::Duration::from_secs(2))
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("ao-mcp: error: cannot start: {e}");
            return ExitCode::FAILURE;
        }
    };
    let served = runtime.block_on(agent_orchestrator::mcp::serve(args.common));
    // Waits still open for a client that left are not waited for.
    runtime.shutdown_background();
    match served {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("ao-mcp: error: {e}");
            ExitCode::FAILURE
        }
    }
}
