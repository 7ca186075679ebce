//! The tools' arguments, as the original system's MCP server named them.
//! Their doc comments become the JSON Schema descriptions a model reads.

use rmcp::schemars::{self, JsonSchema};
use serde::Deserialize;

/// Only a project.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ProjectParams {
    /// Absolute path of the project directory the sessions belong to. Leave it out to use the
    /// directory ao-mcp was started in; set it only when told to work in another project.
    #[serde(default)]
    pub project_dir: Option<String>,
}

/// `list_agent_sessions`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct ListParams {
    /// Absolute path of a project directory: only its sessions are listed. Leave it out to
    /// list every session the session manager knows.
    #[serde(default)]
    pub project_dir: Option<String>,
}

/// `start_agent_session`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StartParams {
    /// A new, unique session name: 1-60 letters, digits, '-' or '_' (e.g. "review-api").
    pub session_name: String,
    /// The complete task for the session. It does not see your conversation: include
    /// everything it needs, and say what its final answer should contain.
    pub prompt: String,
    /// An agent definition to run (see list_agent_definitions), e.g. "reviewer".
    #[serde(default)]
    pub agent_name: Option<String>,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
    /// true: return at once while the session runs in the background; collect it later with
    /// wait_for_agent_sessions and get_agent_session_result. Use it to run several sessions in
    /// parallel. false (the default): wait for the answer and return it.
    #[serde(default, rename = "async")]
    pub run_async: bool,
    /// true: run in a git worktree of its own on a new branch ao/<session_name>, so that
    /// sessions editing files in parallel never overwrite each other's work (the project must
    /// be a git repository). Resuming runs there again; the branch keeps the work.
    #[serde(default)]
    pub worktree: bool,
    /// With worktree: the git ref the branch starts from (default: the project's HEAD).
    #[serde(default)]
    pub base: Option<String>,
    /// Run on this host (see list_hosts) instead of here; project_dir is then a folder on that host.
    #[serde(default)]
    pub host: Option<String>,
    /// Run on a host that has every one of these labels (see list_hosts), the one with most room.
    #[serde(default)]
    pub labels: Vec<String>,
    /// With async=true: when the session's run ends, you (the session calling this tool) are
    /// resumed with a message <agent-callback session="NAME" status="completed|error|stopped">RESULT</agent-callback>;
    /// callbacks of sessions that end while you run come together in one message once your run
    /// ends. So you need not wait: end your turn, and you will be woken with the results.
    #[serde(default)]
    pub callback: bool,
    /// Dollars this run may spend; it ends with reason budget past it.
    #[serde(default)]
    pub max_budget_usd: Option<f64>,
    /// Dollars the new session and every session it starts may spend together; once spent,
    /// new runs in that tree are refused and running ones stopped.
    #[serde(default)]
    pub budget_usd: Option<f64>,
}

/// `fork_agent_session`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ForkParams {
    /// The session to copy: it must exist and not be running; it stays as it is.
    pub session_name: String,
    /// The new session's name: 1-60 letters, digits, '-' or '_', not taken.
    pub new_session_name: String,
    /// What the fork should do next; it remembers the origin's whole conversation.
    pub prompt: String,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
    /// true: return at once while the fork runs in the background (see start_agent_session).
    #[serde(default, rename = "async")]
    pub run_async: bool,
    /// With async=true: resume you with the fork's result when it ends (see start_agent_session).
    #[serde(default)]
    pub callback: bool,
}

/// `resume_agent_session`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct ResumeParams {
    /// The name of an existing session that is not running.
    pub session_name: String,
    /// The follow-up message; the session remembers its earlier conversation.
    pub prompt: String,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
    /// true: return at once and let the run go on in the background (see start_agent_session).
    #[serde(default, rename = "async")]
    pub run_async: bool,
    /// The host the session must be on. A resume always runs on the host that ran the session
    /// (wherever you are), so this only checks it; leave it out.
    #[serde(default)]
    pub host: Option<String>,
    /// Labels the session's host must have (a check, as for host); leave it out.
    #[serde(default)]
    pub labels: Vec<String>,
}

/// A tool about one session.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct SessionParams {
    /// The session's name.
    pub session_name: String,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
}

/// `get_agent_session_status`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct StatusParams {
    /// The session's name.
    pub session_name: String,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
    /// Wait up to this many seconds (0-3600) for a running session to finish before answering;
    /// 0 (the default) answers at once. Cheaper than asking again and again.
    #[serde(default)]
    pub wait_seconds: u32,
}

/// `wait_for_agent_sessions`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct WaitParams {
    /// The sessions to wait for.
    pub session_names: Vec<String>,
    /// true: return as soon as the first of them ends. false (the default): wait for all.
    #[serde(default)]
    pub any: bool,
    /// Give up after this many seconds (default 1800, at most 86400; 0: answer at once);
    /// sessions still running are listed with status "running". Sessions not running count
    /// as ended at once.
    #[serde(default)]
    pub timeout_seconds: Option<f64>,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
}

/// `list_pending_requests`.
#[derive(Debug, Default, Deserialize, JsonSchema)]
pub struct RequestsParams {
    /// Only this session's requests; leave it out for every session of the project.
    #[serde(default)]
    pub session_name: Option<String>,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
}

/// Allow or deny.
#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum DecisionParam {
    Allow,
    Deny,
}

/// One label, or one per question.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Choice {
    One(String),
    Several(Vec<String>),
}

impl Choice {
    pub fn into_vec(self) -> Vec<String> {
        match self {
            Choice::One(label) => vec![label],
            Choice::Several(labels) => labels,
        }
    }
}

/// `answer_request`.
#[derive(Debug, Deserialize, JsonSchema)]
pub struct AnswerParams {
    /// The session whose run waits.
    pub session_name: String,
    /// The request to answer (from list_pending_requests); leave it out when only one waits.
    #[serde(default)]
    pub request_id: Option<String>,
    /// "allow" lets the tool call run (or answers the question with choice); "deny" refuses it.
    pub decision: DecisionParam,
    /// With deny: why, and what to do instead. The session's model reads it.
    #[serde(default)]
    pub message: Option<String>,
    /// For a question, with allow: the label of the option chosen (one per question, in order,
    /// as a list when there are several; several labels for a question that takes several).
    #[serde(default)]
    pub choice: Option<Choice>,
    /// With allow, for a permission: also accept the CLI's suggestion, so that it does not ask
    /// again for the like.
    #[serde(default)]
    pub always: bool,
    /// Absolute path of the project directory; leave it out to use ao-mcp's.
    #[serde(default)]
    pub project_dir: Option<String>,
}
