//! `ao-answer`: see `agent_orchestrator::commands::answer`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::answer::main()
}
