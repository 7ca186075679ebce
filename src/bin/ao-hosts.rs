//! `ao-hosts`: see `agent_orchestrator::commands::hosts`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::hosts::main()
}
