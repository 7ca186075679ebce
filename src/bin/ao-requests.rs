//! `ao-requests`: see `agent_orchestrator::commands::requests`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::requests::main()
}
