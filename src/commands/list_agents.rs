//! `ao-list-agents`: the agents that `ao-new --agent NAME` can run here,
//! from every folder searched (see [`crate::agents`]), one entry each as the
//! original system printed them: `NAME:`, the description, then `---`
//! between entries. Definitions that cannot be used are named on stderr.

use std::process::ExitCode;

use clap::Parser;
use serde::Serialize;

use crate::agents::{Agent, Catalog, SearchDir};
use crate::config::{AgentsArgs, CommonArgs, Config};
use crate::diag::Diag;

use super::{CommandError, main_with, print_json, print_line};

const PROGRAM: &str = "ao-list-agents";

/// List the agents `ao-new NAME --agent AGENT` can run in this project.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Agents are read from, in order: --agents-dir (or AGENT_ORCHESTRATOR_AGENTS_DIR), ",
        "<project>/.agent-orchestrator/agents/NAME/agent.json, <project>/.claude/agents/NAME.md, ",
        "$XDG_CONFIG_HOME/agent-orchestrator/agents/NAME/agent.json and ~/.claude/agents/NAME.md; ",
        "the first folder that defines a name wins. Each agent prints as NAME:, its description, ",
        "and --- between agents; `No agent definitions found` when there are none. ",
        "A definition that cannot be used is named on stderr with its file and line.\n\n",
        "Examples:\n  ao-list-agents\n  ao-list-agents --json | jq -r '.agents[] | select(.active) | .name'\n\n",
        exit_codes!(),
    ),
)]
struct ListAgentsArgs {
    /// Print {"agents":[{name,description,format,file,level,active}],"problems":[...],"searched":[...]}
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    agents: AgentsArgs,

    #[command(flatten)]
    common: CommonArgs,
}

/// The `--json` answer of `ao-list-agents`.
#[derive(Debug, Clone, Serialize)]
pub struct AgentsReport {
    pub agents: Vec<Agent>,
    pub problems: Vec<String>,
    pub searched: Vec<SearchDir>,
}

/// `main` of `ao-list-agents`.
pub fn main() -> ExitCode {
    main_with::<ListAgentsArgs>(PROGRAM, run)
}

fn run(args: &ListAgentsArgs, diag: Diag) -> Result<(), CommandError> {
    let config = Config::load(&args.common, None)?.with_agents_args(&args.agents);
    let report = list_agents(&config);
    if args.json {
        return print_json(&report);
    }
    for problem in &report.problems {
        diag.warn(format!("skipped: {problem}"));
    }
    if report.agents.is_empty() {
        return print_line("No agent definitions found");
    }
    let entries: Vec<String> = report
        .agents
        .iter()
        .map(|a| {
            let inactive = if a.active { "" } else { " (inactive)" };
            format!("{}{inactive}:\n{}", a.name, a.description)
        })
        .collect();
    print_line(&entries.join("\n\n---\n\n"))
}

/// Every agent visible with `config`, and what could not be read.
pub fn list_agents(config: &Config) -> AgentsReport {
    let catalog = Catalog::for_project(
        &config.project_dir.value,
        config.agents_dir.value.as_deref(),
    );
    let listing = catalog.list();
    AgentsReport {
        agents: listing.agents,
        problems: listing.problems,
        searched: catalog.dirs().to_vec(),
    }
}
