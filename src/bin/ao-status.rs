//! `ao-status`: see `agent_orchestrator::commands::status`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::status::main()
}
