//! `ao-fork NAME NEW`: a new session from a copy of NAME's conversation;
//! see `agent_orchestrator::runner`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::runner::cli::main_fork()
}
