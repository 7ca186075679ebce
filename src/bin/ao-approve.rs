//! `ao-approve`: see `agent_orchestrator::commands::approve`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::approve::main()
}
