//! `ao-get-result`: see `agent_orchestrator::commands::get_result`.

fn main() -> std::process::ExitCode {
    agent_orchestrator::commands::get_result::main()
}
