//! `ao-hook`: see `agent_orchestrator::hook`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::hook::cli::main()
}
