//! `ao-clean`: see `agent_orchestrator::commands::clean`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::clean::main()
}
