//! `ao-show-config`: see `agent_orchestrator::commands::show_config`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::show_config::main()
}
