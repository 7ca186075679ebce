//! `ao-mcp`: every capability as MCP tools over stdio, for agents that call
//! tools rather than shell out. A thin face: the queries call the same
//! library code as the `ao-*` commands (the same name checks, fallbacks and
//! answers), and runs are made by the runner's own programs (see
//! [`runs`]). Tool names and arguments are the original system's, so
//! existing prompts keep working.

mod hints;
mod params;
mod runs;
mod stdio;

use std::path::PathBuf;

use rmcp::handler::server::router::tool::ToolRouter;
use rmcp::handler::server::wrapper::Parameters;
use rmcp::model::{CallToolResult, ContentBlock, ServerCapabilities, ServerConfig};
use rmcp::service::RequestContext;
use rmcp::{ErrorData, RoleServer, ServerHandler, tool, tool_handler, tool_router};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use crate::commands::decide::Answer;
use crate::commands::{self, CommandError, Ctx};
use crate::config::{CommonArgs, Config};
use crate::diag::Diag;
use crate::name::SessionName;
use crate::wire::DecidedBy;
use params::{
    AnswerParams, DecisionParam, ForkParams, ListParams, ProjectParams, RequestsParams,
    ResumeParams, SessionParams, StartParams, StatusParams, WaitParams,
};
use runs::{Progress, RunAnswer, RunSpec};

/// `--on` values for a run's `host` or `labels` (one host, or labels).
fn on_hosts(host: Option<String>, labels: Vec<String>) -> Result<Vec<String>, String> {
    match host {
        Some(_) if !labels.is_empty() => {
            Err("give host or labels, not both: a named host is the one that runs it".to_owned())
        }
        Some(host) => Ok(vec![host]),
        None => Ok(labels),
    }
}

/// What `wait_for_agent_sessions` waits at most, unless told otherwise.
const DEFAULT_WAIT_SECONDS: f64 = 1800.0;
const MAX_WAIT_SECONDS: f64 = 86_400.0;
const MAX_STATUS_WAIT_SECONDS: u32 = 3600;

/// What every client reads first: when to use which tool.
const INSTRUCTIONS: &str = "Hand work to Claude Code sessions with names. \
start_agent_session runs a task in a new session and returns its answer; resume_agent_session \
sends a follow-up to a session that remembers its conversation. To work in parallel, start \
several sessions with async=true, then call wait_for_agent_sessions with their names, then \
get_agent_session_result for each; or pass callback=true with async=true and end your turn: you are \
resumed with every result as <agent-callback> messages. fork_agent_session copies a session's conversation to try \
another approach from the same point. budget_usd bounds what a session and all it starts may spend. Sessions that edit files in parallel should each get \
worktree=true (a git worktree and branch of their own). list_agent_definitions shows specialised agents to pass as agent_name. \
list_hosts shows the machines that can run sessions; pass host or labels to run on one. \
A session whose run waits for a decision (a tool call that needs permission, or a question it asks) shows as \
needs_input in wait_for_agent_sessions: read it with list_pending_requests and answer with answer_request. \
Errors say what to do next.";

/// The MCP server.
#[derive(Clone)]
pub struct AoMcp {
    tool_router: ToolRouter<Self>,
    /// The flags ao-mcp was started with; a tool's `project_dir` overrides.
    base: CommonArgs,
    /// Cancelled when stdin ends: a clean shutdown, which leaves runs to
    /// finish (rmcp then cancels every request, as a client's
    /// cancellation would).
    closed: CancellationToken,
}

/// A tool's answer: text, or an error the model reads.
type ToolResult = Result<CallToolResult, ErrorData>;

fn text(answer: impl Into<String>) -> ToolResult {
    Ok(CallToolResult::success(vec![ContentBlock::text(answer)]))
}

fn json(answer: &impl Serialize) -> ToolResult {
    match serde_json::to_string_pretty(answer) {
        Ok(answer) => text(answer),
        Err(e) => failure(format!("cannot encode the answer: {e}")),
    }
}

/// A tool error; a command's advice names the tool to call instead.
fn failure(message: impl Into<String>) -> ToolResult {
    let message = hints::for_tools(&message.into());
    Ok(CallToolResult::error(vec![ContentBlock::text(message)]))
}

impl AoMcp {
    pub fn new(base: CommonArgs) -> Self {
        AoMcp {
            tool_router: Self::tool_router(),
            base,
            closed: CancellationToken::new(),
        }
    }

    fn common(&self, project_dir: Option<String>) -> CommonArgs {
        let mut common = self.base.clone();
        if let Some(dir) = project_dir {
            common.project_dir = Some(PathBuf::from(dir));
        }
        common
    }

    /// Runs a query of the commands' library code on a thread of its own
    /// (their context is single-threaded); its error is the command's line.
    async fn query<T: Send + 'static>(
        &self,
        project_dir: Option<String>,
        work: impl AsyncFnOnce(&Ctx) -> Result<T, CommandError> + Send + 'static,
    ) -> Result<T, String> {
        let common = self.common(project_dir);
        let joined = tokio::task::spawn_blocking(move || {
            let ctx = Ctx::load(&common, Diag::new("ao-mcp"))?;
            commands::block_on(work(&ctx))?
        })
        .await;
        match joined {
            Ok(answer) => answer.map_err(|e| e.to_string()),
            Err(e) => Err(format!("the tool failed: {e}")),
        }
    }

    async fn make_run(&self, spec: RunSpec, context: RequestContext<RoleServer>) -> ToolResult {
        if let Err(e) = SessionName::parse(&spec.name) {
            return failure(e.to_string());
        }
        if spec.prompt.trim().is_empty() {
            return failure("the prompt is empty: say what the session should do");
        }
        if spec.callback && !spec.detach {
            return failure(
                "callback=true needs async=true: a callback wakes you when a session you did not wait for ends",
            );
        }
        let detach = spec.detach;
        let name = spec.name.clone();
        let progress = context.meta.get_progress_token().map(|token| Progress {
            peer: context.peer.clone(),
            token,
        });
        match runs::run(spec, progress, context.ct.clone(), self.closed.clone()).await {
            RunAnswer::Done(out) if detach => {
                let pid = serde_json::from_str::<serde_json::Value>(&out)
                    .ok()
                    .and_then(|v| v["pid"].as_u64());
                text(format!(
                    "Session '{name}' is running in the background{}. Collect it with wait_for_agent_sessions([\"{name}\"]), then get_agent_session_result.",
                    pid.map(|p| format!(" (runner pid {p})"))
                        .unwrap_or_default()
                ))
            }
            RunAnswer::Done(answer) => text(answer),
            RunAnswer::Failed(reason) => failure(reason),
            RunAnswer::Cancelled => failure(format!(
                "cancelled: the run of session '{name}' was stopped; resume_agent_session continues it"
            )),
            RunAnswer::Left => failure(format!(
                "ao-mcp is shutting down (its stdin closed); the run of session '{name}' goes on and is recorded: collect it with wait_for_agent_sessions"
            )),
        }
    }
}

#[tool_router]
impl AoMcp {
    #[tool(
        description = "List the agent definitions (specialists with their own instructions, model and tools) that start_agent_session can run as agent_name. Answers JSON: agents (name, description, active, format, level), problems, and the folders searched."
    )]
    async fn list_agent_definitions(&self, Parameters(p): Parameters<ProjectParams>) -> ToolResult {
        let common = self.common(p.project_dir);
        match Config::load(&common, None) {
            Ok(config) => json(&commands::list_agents::list_agents(&config)),
            Err(e) => failure(e.to_string()),
        }
    }

    #[tool(
        description = "List sessions, newest first: name, id, status (running or finished), project, agent, branch, parent and costs. Answers JSON {sessions, source}; source is \"backup\" when the session manager could not be reached."
    )]
    async fn list_agent_sessions(&self, Parameters(p): Parameters<ListParams>) -> ToolResult {
        let project_only = p.project_dir.is_some();
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                commands::list_sessions::list(ctx, project_only, true).await
            })
            .await;
        answer.map_or_else(failure, |report| json(&report))
    }

    #[tool(
        description = "Start a new session that works on `prompt` and return its final answer (or, with an output schema, its JSON document). The session does not see your conversation: put the whole task in the prompt. With host or labels it runs on that machine (see list_hosts), in project_dir there. With async=true it returns at once and runs in the background: start several that way to work in parallel, then wait_for_agent_sessions and get_agent_session_result. Sessions that edit files in parallel should each get worktree=true (in a git repository: a worktree and branch ao/<session_name> of their own). A long synchronous run reports each tool call it makes as progress, and stops if you cancel the call."
    )]
    async fn start_agent_session(
        &self,
        Parameters(p): Parameters<StartParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let spec = RunSpec {
            resume: false,
            name: p.session_name,
            prompt: p.prompt,
            agent: p.agent_name,
            common: self.common(p.project_dir),
            detach: p.run_async,
            worktree: p.worktree,
            base: p.base,
            on: match on_hosts(p.host, p.labels) {
                Ok(on) => on,
                Err(reason) => return failure(reason),
            },
            fork: None,
            callback: p.callback,
            max_budget_usd: p.max_budget_usd,
            budget_usd: p.budget_usd,
        };
        self.make_run(spec, context).await
    }

    #[tool(
        description = "Start a new session as a copy of an existing session's conversation (which must not be running, and stays as it is), continued with `prompt`: try another approach from the same point, then compare. A fork of a session in a git worktree gets a worktree and branch of its own from the origin's branch. Returns the fork's answer; async=true (and callback=true) as for start_agent_session."
    )]
    async fn fork_agent_session(
        &self,
        Parameters(p): Parameters<ForkParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        if let Err(e) = SessionName::parse(&p.session_name) {
            return failure(e.to_string());
        }
        let spec = RunSpec {
            resume: false,
            name: p.new_session_name,
            prompt: p.prompt,
            agent: None,
            common: self.common(p.project_dir),
            detach: p.run_async,
            worktree: false,
            base: None,
            on: Vec::new(),
            fork: Some(p.session_name),
            callback: p.callback,
            max_budget_usd: None,
            budget_usd: None,
        };
        self.make_run(spec, context).await
    }

    #[tool(
        description = "Send a follow-up prompt to an existing session that is not running; it remembers its earlier conversation (and runs with its own agent). Returns the answer; async=true returns at once, as for start_agent_session."
    )]
    async fn resume_agent_session(
        &self,
        Parameters(p): Parameters<ResumeParams>,
        context: RequestContext<RoleServer>,
    ) -> ToolResult {
        let spec = RunSpec {
            resume: true,
            name: p.session_name,
            prompt: p.prompt,
            agent: None,
            common: self.common(p.project_dir),
            detach: p.run_async,
            worktree: false,
            base: None,
            on: match on_hosts(p.host, p.labels) {
                Ok(on) => on,
                Err(reason) => return failure(reason),
            },
            fork: None,
            callback: false,
            max_budget_usd: None,
            budget_usd: None,
        };
        self.make_run(spec, context).await
    }

    #[tool(
        description = "The machines that run sessions: this session manager's own host (`local`) and each ao-host, with name, labels, project folders, capacity, runs running, online. Pass a name as host (or labels) to start_agent_session to run there. Answers JSON {hosts}."
    )]
    async fn list_hosts(&self) -> ToolResult {
        let answer = self
            .query(None, async move |ctx: &Ctx| {
                Ok(ctx.client.list_hosts().await?)
            })
            .await;
        answer.map_or_else(failure, |hosts| json(&crate::wire::HostsAnswer { hosts }))
    }

    #[tool(
        description = "Whether a session is running, finished, or not_existent, with its costs and (for a worktree session) its branch. With wait_seconds, waits up to that long for a running session to finish first. Answers JSON {session_name, session_id, status, source, ...}."
    )]
    async fn get_agent_session_status(
        &self,
        Parameters(p): Parameters<StatusParams>,
    ) -> ToolResult {
        let session_name = p.session_name;
        let wait = p.wait_seconds.min(MAX_STATUS_WAIT_SECONDS);
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = SessionName::parse(&session_name)?;
                let report = commands::status::status(ctx, &name, true).await?;
                if wait == 0 || report.status != crate::wire::StatusValue::Running {
                    return Ok(report);
                }
                commands::wait::wait(
                    ctx,
                    std::slice::from_ref(&name),
                    false,
                    Some(f64::from(wait)),
                    |_| {},
                )
                .await?;
                commands::status::status(ctx, &name, true).await
            })
            .await;
        answer.map_or_else(failure, |report| json(&report))
    }

    #[tool(
        description = "The answer of a session's last run (its JSON document, for a run with an output schema). Fails while the session runs, or when its last run failed or was stopped, saying why."
    )]
    async fn get_agent_session_result(
        &self,
        Parameters(p): Parameters<SessionParams>,
    ) -> ToolResult {
        let session_name = p.session_name;
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = SessionName::parse(&session_name)?;
                commands::get_result::result(ctx, &name).await
            })
            .await;
        match answer {
            Ok(report) => match report.structured_output {
                Some(doc) => text(doc.to_string()),
                None => text(report.result),
            },
            Err(reason) => failure(reason),
        }
    }

    #[tool(
        description = "Wait until the named sessions' runs end (any=true: the first one) or timeout_seconds pass (default 1800), or one of them waits for a decision. The way to collect sessions started with async=true. Answers JSON: one entry per session {session_name, session_id, status (completed, error, interrupted, stopped; needs_input when its run waits for a permission or an answer: see list_pending_requests and answer_request, then wait again; running if still going), reason, exit_code (the CLI's), runner_exit_code (the run's: 0 completed, 1 error, 143 stopped), result, error}, needs_input (the names), and timed_out."
    )]
    async fn wait_for_agent_sessions(&self, Parameters(p): Parameters<WaitParams>) -> ToolResult {
        let names = match p
            .session_names
            .iter()
            .map(|n| SessionName::parse(n))
            .collect::<Result<Vec<_>, _>>()
        {
            Ok(names) if !names.is_empty() => names,
            Ok(_) => return failure("session_names is empty: name the sessions to wait for"),
            Err(e) => return failure(e.to_string()),
        };
        let timeout = match p.timeout_seconds {
            Some(t) if !(t.is_finite() && t >= 0.0) => {
                return failure(format!(
                    "timeout_seconds {t} is not a number of seconds (0 or more)"
                ));
            }
            Some(t) => t.min(MAX_WAIT_SECONDS),
            None => DEFAULT_WAIT_SECONDS,
        };
        let any = p.any;
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                commands::wait::wait(ctx, &names, any, Some(timeout), |_| {}).await
            })
            .await;
        match answer {
            Ok((entries, waited)) => {
                let needs_input: Vec<&str> = entries
                    .iter()
                    .filter(|e| e.end.status == "needs_input")
                    .map(|e| e.session_name.as_str())
                    .collect();
                let ended = entries.iter().filter(|e| e.end.status != "running").count();
                json(&serde_json::json!({
                    "sessions": entries,
                    "needs_input": needs_input,
                    "timed_out": ended < waited && needs_input.is_empty(),
                }))
            }
            Err(reason) => failure(reason),
        }
    }

    #[tool(
        description = "What sessions' runs wait for: tool calls that need your permission (the Bash command, the file and change for an edit) and questions with their options. Answers JSON {requests: [{request_id, session_name, kind (permission or question), tool_name, input, suggestions, created_at, ...}]}, oldest first. Answer each with answer_request."
    )]
    async fn list_pending_requests(&self, Parameters(p): Parameters<RequestsParams>) -> ToolResult {
        let session_name = p.session_name;
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = session_name
                    .as_deref()
                    .map(SessionName::parse)
                    .transpose()?;
                commands::requests::list(ctx, name.as_ref()).await
            })
            .await;
        answer.map_or_else(failure, |requests| {
            json(&serde_json::json!({ "requests": requests }))
        })
    }

    #[tool(
        description = "Answer what a session's run waits for (see list_pending_requests): allow or deny a tool call (deny with a message that says why and what to do instead: the session's model reads it), or answer a question with allow and choice (an option's label). The run goes on at once. Without request_id: the only request waiting."
    )]
    async fn answer_request(&self, Parameters(p): Parameters<AnswerParams>) -> ToolResult {
        let decision = match (p.decision, p.choice) {
            (DecisionParam::Deny, _) => Answer::Deny { message: p.message },
            (DecisionParam::Allow, Some(choice)) => Answer::Choose {
                choices: choice.into_vec(),
            },
            (DecisionParam::Allow, None) => Answer::Allow { always: p.always },
        };
        let (session_name, request_id) = (p.session_name, p.request_id);
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = SessionName::parse(&session_name)?;
                commands::decide::decide(
                    ctx,
                    &name,
                    request_id.as_deref(),
                    decision,
                    DecidedBy::Parent,
                    "ao-approve",
                )
                .await
            })
            .await;
        answer.map_or_else(failure, |decided| json(&decided))
    }

    #[tool(
        description = "Stop a running session: its current turn ends, the run is recorded as stopped, and the session stays resumable. Returns once it has stopped. Answers JSON {session_name, session_id, via, status, ...}."
    )]
    async fn stop_agent_session(&self, Parameters(p): Parameters<SessionParams>) -> ToolResult {
        let session_name = p.session_name;
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = SessionName::parse(&session_name)?;
                commands::stop::stop(ctx, &name).await
            })
            .await;
        answer.map_or_else(failure, |report| json(&report))
    }

    #[tool(
        description = "Delete a session that is not running: its record, events and backup files (and its git worktree, keeping the branch). Refused while it runs, or while its worktree has uncommitted changes."
    )]
    async fn delete_agent_session(&self, Parameters(p): Parameters<SessionParams>) -> ToolResult {
        let session_name = p.session_name;
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let name = SessionName::parse(&session_name)?;
                commands::clean::clean_one(ctx, &name, false).await
            })
            .await;
        answer.map_or_else(failure, text)
    }

    #[tool(
        description = "Delete every session of the current project (or project_dir) that is not running. Answers one line per session deleted or kept (and why)."
    )]
    async fn delete_all_agent_sessions(
        &self,
        Parameters(p): Parameters<ProjectParams>,
    ) -> ToolResult {
        let answer = self
            .query(p.project_dir, async move |ctx: &Ctx| {
                let mut lines = Vec::new();
                let outcome = commands::clean::clean_all(ctx, false, |line| {
                    lines.push(match line {
                        Ok(deleted) => deleted.to_owned(),
                        Err(kept) => format!(
                            "Kept session {}",
                            kept.strip_prefix("skipped ").unwrap_or(kept)
                        ),
                    })
                })
                .await;
                Ok((lines, outcome.err().map(|e| e.to_string())))
            })
            .await;
        match answer {
            Ok((lines, None)) => text(lines.join("\n")),
            Ok((mut lines, Some(reason))) => {
                lines.push(reason);
                failure(lines.join("\n"))
            }
            Err(reason) => failure(reason),
        }
    }
}

#[tool_handler(router = self.tool_router)]
impl ServerHandler for AoMcp {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(ServerCapabilities::builder().enable_tools().build())
            .with_server_info(rmcp::model::Implementation::new(
                "agent-orchestrator",
                env!("CARGO_PKG_VERSION"),
            ))
            .with_instructions(INSTRUCTIONS)
    }
}

/// How long the last answers may take to reach stdout at the end.
const FLUSH_WAIT: std::time::Duration = std::time::Duration::from_secs(2);

/// Serves MCP on stdin/stdout until the client closes it.
pub async fn serve(base: CommonArgs) -> Result<(), String> {
    use rmcp::ServiceExt;
    let server = AoMcp::new(base);
    let io = stdio::filter(
        tokio::io::stdin(),
        tokio::io::stdout(),
        server.closed.clone(),
    );
    let served = async {
        let service = server
            .serve((io.read, io.write))
            .await
            .map_err(|e| format!("the MCP handshake failed: {e}"))?;
        service
            .waiting()
            .await
            .map_err(|e| format!("the MCP connection failed: {e}"))
    }
    .await;
    // rmcp has let go of its side: its last answers are on their way out.
    let _ = tokio::time::timeout(FLUSH_WAIT, io.flushed).await;
    served.map(|_| ())
}
