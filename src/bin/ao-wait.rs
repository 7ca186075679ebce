//! `ao-wait`: see `agent_orchestrator::commands::wait`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::wait::main()
}
