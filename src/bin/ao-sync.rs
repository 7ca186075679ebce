//! `ao-sync [NAME | --all]`: see `agent_orchestrator::commands::sync`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::sync::main()
}
