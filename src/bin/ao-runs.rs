//! `ao-runs`: see `agent_orchestrator::commands::runs`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::runs::main()
}
