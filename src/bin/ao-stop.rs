//! `ao-stop`: see `agent_orchestrator::commands::stop`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::stop::main()
}
