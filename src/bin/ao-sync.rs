//! `ao-sync [NAME | --all]`: see `agent_orchestrator::sync`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::sync::cli::main()
}
