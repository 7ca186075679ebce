//! `ao-list-agents`: see `agent_orchestrator::commands::list_agents`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::list_agents::main()
}
