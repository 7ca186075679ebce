//! `ao-deny`: see `agent_orchestrator::commands::deny`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::deny::main()
}
