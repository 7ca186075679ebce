//! `ao-resume NAME`: continue a session; see `agent_orchestrator::runner`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::runner::cli::main(agent_orchestrator::runner::Mode::Resume)
}
