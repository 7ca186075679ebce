//! What the dashboard asks before it offers to act: whether this browser
//! may, and which agents a project has on this machine.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

/// `GET /access`: whether the request's credentials may make the machine
/// act (answer requests, launch runs), and how to get them if not.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AccessAnswer {
    pub may_act: bool,
    /// What to do to be allowed; absent when allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub how: Option<String>,
}

/// One agent `ao-new --agent NAME` can run in a project here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentInfo {
    pub name: String,
    pub description: String,
}

/// `GET /agents?project_dir=P`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct AgentsAnswer {
    pub agents: Vec<AgentInfo>,
}
