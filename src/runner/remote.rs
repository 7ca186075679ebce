//! A run on another host, which behaves for its caller exactly like a
//! local one: `ao-new NAME --on HOST_OR_LABEL`, and `ao-resume NAME` of a
//! session that lives on another host. The run goes through the session
//! manager (`POST /runs`); the caller follows it on its feed
//! (`/sse?run_id=ID`) and answers as the runner would have: the answer on
//! stdout, the same exit codes, `--detach` returning once it runs, a
//! signal stopping it.

use std::io::Write;
use std::time::Duration;

use serde::Serialize;
use tokio::signal::unix::{SignalKind, signal};

use crate::agents::RunSettings;
use crate::backup::SessionFiles;
use crate::client::{ClientError, SessionClient};
use crate::config::Config;
use crate::diag::{Diag, exit};
use crate::feed::Feed;
use crate::wire::{LaunchSettings, LiveMessage, Run, RunCreate, RunStatus, Session};

use super::RunRequest;

/// How long the session manager may stay out of reach while a run is
/// followed, before the caller gives up on it (the run goes on).
const LOST_WAIT: Duration = Duration::from_secs(60);
/// How long a stopped run may take to end before the caller exits anyway.
const STOP_WAIT: Duration = Duration::from_secs(15);

/// The settings a run sends to its host: those of the flags, which are
/// values, never a command line (an MCP config is one).
pub fn launch_settings(flags: &RunSettings) -> Result<Option<LaunchSettings>, String> {
    if flags.mcp_config.is_some() {
        return Err(
            "--mcp-config cannot go to another host: MCP servers are command lines, which a run launched through the session manager never takes; define them in an agent on that host (--agent)"
                .to_owned(),
        );
    }
    let settings = LaunchSettings {
        model: flags.model.clone(),
        tools: flags.tools.clone(),
        allowed_tools: flags.allowed_tools.clone(),
        disallowed_tools: flags.disallowed_tools.clone(),
        permission_mode: flags.permission_mode.map(|m| m.as_str().to_owned()),
        max_turns: flags.max_turns,
        max_budget_usd: flags.max_budget_usd,
        system_prompt: flags.system_prompt.clone(),
        system_prompt_mode: flags.system_prompt_mode.map(|m| {
            match m {
                crate::agents::settings::SystemPromptMode::Append => "append",
                crate::agents::settings::SystemPromptMode::Replace => "replace",
            }
            .to_owned()
        }),
        output_schema: flags.output_schema.clone(),
        ..LaunchSettings::default()
    };
    Ok((!settings.is_empty()).then_some(settings))
}

/// `--on` values: one host's name, or labels a host must all have.
pub async fn target(
    client: &SessionClient,
    on: &[String],
) -> Result<(Option<String>, Vec<String>), ClientError> {
    let hosts = client.list_hosts().await?;
    let named: Vec<&String> = on
        .iter()
        .filter(|v| hosts.iter().any(|h| &h.name == *v))
        .collect();
    match (named.as_slice(), on.len()) {
        ([host], 1) => Ok((Some((*host).clone()), Vec::new())),
        _ => Ok((None, on.to_vec())),
    }
}

/// The session a resume continues, when it lives on another host: the
/// backups of the current sessions folder do not hold it, and the session
/// manager records a host for it. Found as the query commands find a name:
/// the current project first, then the one session of that name anywhere.
pub async fn home_elsewhere(request: &RunRequest, config: &Config) -> Option<Session> {
    let name = request.name.as_str();
    if SessionFiles::new(&config.sessions_dir.value, &request.name).exist() {
        return None;
    }
    let client = SessionClient::new(&config.session_manager_url.value).ok()?;
    let project = config.project_dir_text();
    let mut found = client.find_sessions(name, Some(&project)).await.ok()?;
    if found.is_empty() {
        found = client.find_sessions(name, None).await.ok()?;
    }
    match found.as_slice() {
        [session] if session.host.is_some() => Some(session.clone()),
        _ => None,
    }
}

/// Why a run cannot be asked of another host: bad input (exit 2), or the
/// session manager could not be asked (exit 1).
#[derive(Debug)]
pub enum Refusal {
    Usage(String),
    Failed(String),
}

impl Refusal {
    /// Says why on stderr; answers the exit code.
    pub fn report(self, diag: Diag) -> u8 {
        match self {
            Refusal::Usage(line) => {
                diag.error(line);
                exit::USAGE
            }
            Refusal::Failed(line) => {
                diag.error(line);
                exit::FAILED
            }
        }
    }
}

/// The parent's session id a run on another host is given: `--parent NAME`
/// (found as the query commands find a name: this project first, then the
/// one session of that name anywhere); for a new session, else the run
/// this one was started from, if the session manager knows it. A resume
/// without `--parent` keeps the parent its session recorded (its host's
/// runner reads it). A new session's `--callback` needs a parent.
async fn parent(
    client: &SessionClient,
    request: &RunRequest,
    config: &Config,
) -> Result<Option<String>, Refusal> {
    let failed = |e: ClientError| Refusal::Failed(format!("cannot look up the parent: {e}"));
    let found = match &request.parent {
        Some(name) => {
            let project = config.project_dir_text();
            let mut found = client
                .find_sessions(name.as_str(), Some(&project))
                .await
                .map_err(failed)?;
            if found.is_empty() {
                found = client
                    .find_sessions(name.as_str(), None)
                    .await
                    .map_err(failed)?;
            }
            match found.as_slice() {
                [session] => Some(session.session_id.clone()),
                [] => {
                    return Err(Refusal::Usage(format!(
                        "there is no session named '{name}' to be the parent (none in {project}, none elsewhere); see ao-list --all"
                    )));
                }
                _ => {
                    return Err(Refusal::Usage(format!(
                        "sessions named '{name}' are in several projects, none in {project}: run this from the parent's project folder"
                    )));
                }
            }
        }
        None if request.mode == super::Mode::New => match super::parent_session_id(None) {
            // Its run was never recorded (or it was deleted): no parent.
            Some(id) => client
                .session_if_any(&id)
                .await
                .map_err(failed)?
                .map(|_| id),
            None => None,
        },
        None => None,
    };
    if request.callback && found.is_none() && request.mode == super::Mode::New {
        return Err(Refusal::Usage(
            super::RunError::CallbackWithoutParent.to_string(),
        ));
    }
    Ok(found)
}

/// The request for a run of `request` on another host.
pub async fn create(
    client: &SessionClient,
    request: &RunRequest,
    config: &Config,
    project_dir: Option<String>,
    host: Option<String>,
    labels: Vec<String>,
) -> Result<RunCreate, Refusal> {
    let mut settings = launch_settings(&request.flags)
        .map_err(Refusal::Usage)?
        .unwrap_or_default();
    settings.parent_session_id = parent(client, request, config).await?;
    settings.callback = request.callback;
    settings.budget_usd = request.budget_usd;
    Ok(RunCreate {
        session_name: request.name.to_string(),
        prompt: request.prompt.clone(),
        project_dir,
        resume: request.mode == super::Mode::Resume,
        agent: request.agent.clone(),
        worktree: request.flags.worktree == Some(true),
        base: request.base.clone(),
        host,
        labels,
        settings: (!settings.is_empty()).then_some(settings),
    })
}

/// What `--detach --json` prints for a run on another host.
#[derive(Serialize)]
struct DetachedRemote<'a> {
    session_name: &'a str,
    run_id: &'a str,
    host: Option<&'a str>,
}

/// Launches the run and follows it to its end (with `detach`, until it
/// runs); answers the exit code, having printed what a local run prints.
pub async fn run(
    client: &SessionClient,
    create: RunCreate,
    detach: bool,
    json: bool,
    diag: Diag,
) -> u8 {
    let name = create.session_name.clone();
    let (mut int, mut term) = match (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) {
        (Ok(int), Ok(term)) => (int, term),
        _ => {
            diag.error("cannot handle signals");
            return exit::FAILED;
        }
    };
    let launched = match client.create_run(&create).await {
        Ok(run) => run,
        Err(e) => return refused(&e, client, diag),
    };
    let id = launched.run_id.clone();
    let mut follower = Follower::new(client, &id);
    let mut said_queued = false;
    let mut stop_signal = None;
    let mut stop_deadline = None;
    let mut last = launched;
    loop {
        if last.status == RunStatus::Queued && !said_queued && stop_signal.is_none() {
            said_queued = true;
            diag.note(format!(
                "run {id} of session '{name}' is queued (place {} in the queue){}; waiting for a host",
                last.queue_position.unwrap_or(1),
                last.host.as_deref().map(|h| format!(" for host '{h}'")).unwrap_or_default()
            ));
        }
        if let Some(signal) = stop_signal {
            if !last.status.is_open() {
                return interrupted(&last, signal, diag, &name);
            }
        } else if detach && last.status != RunStatus::Queued && last.status != RunStatus::Starting {
            if last.status == RunStatus::FailedToStart {
                return ended(client, &last, diag, &name).await;
            }
            let line = if json {
                serde_json::to_string(&DetachedRemote {
                    session_name: &name,
                    run_id: &id,
                    host: last.host.as_deref(),
                })
                .unwrap_or_default()
            } else {
                name.clone()
            };
            print(&line);
            return exit::OK;
        } else if !last.status.is_open() {
            return ended(client, &last, diag, &name).await;
        }
        let deadline = stop_deadline
            .unwrap_or_else(|| tokio::time::Instant::now() + Duration::from_secs(86_400 * 365));
        tokio::select! {
            next = follower.next() => match next {
                Ok(run) => last = run,
                Err(why) => {
                    diag.error(format!("{why}; run {id} of session '{name}' goes on: ao-wait {name}, then ao-get-result {name}"));
                    return exit::FAILED;
                }
            },
            _ = int.recv(), if stop_signal.is_none() => {
                stop_signal = Some(exit::SIGINT);
                stop_deadline = Some(tokio::time::Instant::now() + STOP_WAIT);
                let _ = client.stop_run(&id).await;
            }
            _ = term.recv(), if stop_signal.is_none() => {
                stop_signal = Some(exit::SIGTERM);
                stop_deadline = Some(tokio::time::Instant::now() + STOP_WAIT);
                let _ = client.stop_run(&id).await;
            }
            () = tokio::time::sleep_until(deadline) => {
                return interrupted(&last, stop_signal.unwrap_or(exit::SIGINT), diag, &name);
            }
        }
    }
}

/// A refused `POST /runs`: 422 is bad input (exit 2), anything else 1.
fn refused(e: &ClientError, client: &SessionClient, diag: Diag) -> u8 {
    match e {
        ClientError::Api {
            status: 422,
            detail,
        } => {
            diag.error(detail);
            exit::USAGE
        }
        ClientError::Api { detail, .. } | ClientError::NotFound(detail) => {
            diag.error(detail);
            exit::FAILED
        }
        ClientError::Unreachable { reason, .. } => {
            diag.error(format!(
                "cannot reach the session manager at {} ({reason}): a run on another host goes through it",
                client.base_url()
            ));
            exit::FAILED
        }
        other => {
            diag.error(other);
            exit::FAILED
        }
    }
}

/// The run ended: what a local run of it would have printed and exited with.
async fn ended(client: &SessionClient, run: &Run, diag: Diag, name: &str) -> u8 {
    let error = run.error.clone().unwrap_or_default();
    match run.status {
        RunStatus::Completed => {
            let Some(session_id) = &run.session_id else {
                print("");
                return exit::OK;
            };
            match client.get_result_answer(session_id).await {
                Ok(answer) => {
                    let text = answer
                        .structured_output
                        .map_or(answer.result, |doc| doc.to_string());
                    print(&text);
                    exit::OK
                }
                Err(ClientError::NotFound(_)) => {
                    print("");
                    exit::OK
                }
                Err(e) => {
                    diag.error(format!(
                        "the run completed, but its answer could not be read: {e}"
                    ));
                    exit::FAILED
                }
            }
        }
        RunStatus::Stopped => {
            diag.error(format!(
                "stopped on request; the run is recorded as stopped (continue it with `ao-resume {name}`)"
            ));
            exit::SIGTERM
        }
        RunStatus::Interrupted => match run.runner_exit_code {
            Some(code @ (130 | 143)) => {
                diag.error(format!(
                    "interrupted by {} on host '{}'; the run is recorded as interrupted",
                    if code == 130 { "SIGINT" } else { "SIGTERM" },
                    run.host.as_deref().unwrap_or("?")
                ));
                code as u8
            }
            _ => {
                diag.error(format!("the run was interrupted: {error}"));
                exit::FAILED
            }
        },
        RunStatus::FailedToStart => {
            diag.error(error);
            match run.runner_exit_code {
                Some(2) => exit::USAGE,
                _ => exit::FAILED,
            }
        }
        _ => {
            diag.error(format!("the run failed: {error}"));
            exit::FAILED
        }
    }
}

/// The caller was told to stop: the run was asked to stop too.
fn interrupted(run: &Run, signal: u8, diag: Diag, name: &str) -> u8 {
    let sig = if signal == exit::SIGINT {
        "SIGINT"
    } else {
        "SIGTERM"
    };
    let what = if run.status.is_open() {
        "the run was asked to stop and has not ended yet".to_owned()
    } else {
        format!("the run is recorded as {}", run.status.as_str())
    };
    diag.error(format!(
        "interrupted by {sig}; {what} (continue it with `ao-resume {name}`)"
    ));
    signal
}

fn print(text: &str) {
    let mut stdout = std::io::stdout().lock();
    // A reader that went away is not our failure.
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// The run as it moves on: its feed, opened again when it breaks, and
/// its record read after each (re)connection so that nothing in between
/// is missed.
struct Follower<'a> {
    client: &'a SessionClient,
    run_id: &'a str,
    feed: Option<Feed>,
    /// Since when the session manager could not be reached.
    lost_since: Option<tokio::time::Instant>,
}

impl<'a> Follower<'a> {
    fn new(client: &'a SessionClient, run_id: &'a str) -> Self {
        Follower {
            client,
            run_id,
            feed: None,
            lost_since: None,
        }
    }

    /// The run's next state; an error when the session manager has been
    /// out of reach too long.
    async fn next(&mut self) -> Result<Run, String> {
        let mut delay = Duration::from_millis(50);
        loop {
            if let Some(feed) = &mut self.feed {
                match feed.next().await {
                    Some(LiveMessage::RunUpdated { run }) if run.run_id == self.run_id => {
                        return Ok(*run);
                    }
                    Some(LiveMessage::Init { .. }) => {
                        if let Ok(run) = self.client.get_run(self.run_id).await {
                            return Ok(run);
                        }
                    }
                    Some(_) => {}
                    None => self.feed = None,
                }
                continue;
            }
            match Feed::for_run(self.client, self.run_id).await {
                Ok(feed) => {
                    self.feed = Some(feed);
                    self.lost_since = None;
                }
                Err(e) => {
                    let since = *self
                        .lost_since
                        .get_or_insert_with(tokio::time::Instant::now);
                    if since.elapsed() > LOST_WAIT {
                        return Err(format!(
                            "lost the session manager for {} s ({e})",
                            LOST_WAIT.as_secs()
                        ));
                    }
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(2));
                }
            }
        }
    }
}
