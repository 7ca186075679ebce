//! `ao-list-sessions`: see `agent_orchestrator::commands::list_sessions`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::list_sessions::main()
}
