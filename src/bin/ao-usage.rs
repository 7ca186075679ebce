//! `ao-usage`: see `agent_orchestrator::commands::usage`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::usage::main()
}
