//! `ao-dashboard`: see `agent_orchestrator::commands::dashboard`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::dashboard::main()
}
