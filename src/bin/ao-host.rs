//! `ao-host`: see `agent_orchestrator::hosts`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::diag::log_to_stderr("info");
    agent_orchestrator::hosts::cli::main()
}
