//! The runner behind `ao-new` and `ao-resume` (DESIGN.md, "One run, step by
//! step"): check the name and the session, take the session's lock, write
//! the backups, drive the CLI, report every step to the session manager
//! through one ordered queue, and say how the run ended.

mod changed;
pub mod cli;
mod detach;
mod drive;
pub mod flags;
pub mod prompt;
mod remote;
mod reporter;
mod requests;
pub mod setup;
mod stream;

use std::time::Duration;

use nix::sys::signal::Signal;

use crate::agents::{AgentError, Catalog, RunSettings};
use crate::autostart::{self, Availability};
use crate::backup::{
    BackupError, BackupLine, LockState, LogWriter, Meta, RunCompletedLine, SessionFiles,
    UserMessageLine,
};
use crate::claude::launch::PARTIAL_MESSAGES_FLAG;
use crate::claude::process::{ClaudeProcess, SpawnError, locate};
use crate::client::{ClientError, SessionClient};
use crate::config::{Config, Source};
use crate::diag::{Diag, shell_word};
use crate::name::SessionName;
use crate::record::Recorder;
use crate::recover::close_last_run;
use crate::wire::{RunEndReason, Session, StatusValue, now_rfc3339};
use crate::worktree::{self, Worktree, WorktreeError};

use changed::ChangeWatch;
use reporter::{Reporter, Tally};
use setup::SetupError;

/// The session id of the run this runner was started from, if any (never
/// the session of `own_meta` itself).
pub(crate) fn parent_session_id(own_meta: Option<&std::path::Path>) -> Option<String> {
    let path = std::path::PathBuf::from(std::env::var_os(crate::config::ENV_PARENT_META)?);
    if Some(path.as_path()) == own_meta {
        return None;
    }
    let text = crate::bounded::read(&path, crate::bounded::SETTINGS).ok()?;
    serde_json::from_slice::<Meta>(&text).ok()?.session_id
}

/// How long, after the CLI exits, the queue may take to deliver the rest.
const DRAIN_WAIT: Duration = Duration::from_secs(3);

/// New session or continuation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    New,
    Resume,
}

/// Why a run did not start.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error(
        "a session named '{name}' already exists in {project}; continue it with `ao-resume {name}`, or remove it with `ao-clean {name}`"
    )]
    Exists { name: String, project: String },
    #[error(
        "there is no session named '{name}' in {project}{}; start one with `ao-new {name}`",
        crate::suggest::did_you_mean(near)
    )]
    Unknown {
        name: String,
        project: String,
        /// The project's session with the nearest name.
        near: Option<String>,
    },
    #[error(
        "session '{name}' is running (runner pid {pid}); {}",
        if *mode == Mode::New {
            format!("give the new session another name, or wait for this one with `ao-wait {name}` and continue it with `ao-resume {name}`")
        } else {
            format!("wait for its run to end with `ao-wait {name}`, then resume it")
        }
    )]
    Running {
        name: String,
        pid: String,
        mode: Mode,
    },
    #[error(transparent)]
    Agent(#[from] AgentError),
    #[error(
        "session '{name}' runs agent '{agent}', which {}; pass the folder that defines it with --agents-dir DIR",
        match dir {
            Some(dir) => format!("is no longer in {}, where it was found", shell_word(&dir.to_string_lossy())),
            None => "is not defined here".to_owned(),
        }
    )]
    AgentGone {
        name: String,
        agent: String,
        dir: Option<std::path::PathBuf>,
    },
    #[error(transparent)]
    Setup(#[from] SetupError),
    #[error(transparent)]
    Worktree(#[from] WorktreeError),
    #[error("--base needs --worktree (or an agent with \"worktree\": true)")]
    BaseWithoutWorktree,
    #[error(
        "ao-resume runs session '{name}' where it ran before (its own worktree, if it has one); --worktree and --base belong to ao-new"
    )]
    WorktreeOnResume { name: String },
    #[error(
        "there is no session named '{name}' in {project} to fork{}",
        crate::suggest::did_you_mean(near)
    )]
    ForkUnknown {
        name: String,
        project: String,
        near: Option<String>,
    },
    #[error(
        "session '{name}' is running (runner pid {pid}); a fork copies a conversation at rest: wait for its run to end with `ao-wait {name}`, then fork it"
    )]
    ForkRunning { name: String, pid: String },
    #[error(
        "there is no session named '{name}' in {project} to be the parent{}; name a session of this project with --parent",
        crate::suggest::did_you_mean(near)
    )]
    ParentUnknown {
        name: String,
        project: String,
        near: Option<String>,
    },
    #[error("the parent session {id} is not known to the session manager (deleted?)")]
    ParentGone { id: String },
    #[error(
        "--callback needs a parent: run it from inside a session's run, or name the parent with --parent NAME"
    )]
    CallbackWithoutParent,
    #[error(
        "{what} needs the session manager, which cannot be reached at {url}; start it (ao-session-manager) and try again"
    )]
    NeedsApi { what: &'static str, url: String },
    /// A budget the run falls under is spent (the session manager's line).
    #[error("{0}")]
    OverBudget(String),
    #[error(transparent)]
    Feature(#[from] crate::claude::features::Missing),
    #[error(transparent)]
    Spawn(#[from] SpawnError),
    #[error("backup: {0}")]
    Backup(#[from] BackupError),
    #[error(transparent)]
    Client(#[from] ClientError),
    #[error("cannot drive claude: {0}")]
    Io(#[from] std::io::Error),
}

impl RunError {
    /// The exit code: 2 for bad input (the agent or the settings), else 1.
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Worktree(e) if e.is_usage() => crate::diag::exit::USAGE,
            RunError::Backup(e) if e.is_too_large() => crate::diag::exit::USAGE,
            RunError::Agent(_)
            | RunError::AgentGone { .. }
            | RunError::BaseWithoutWorktree
            | RunError::WorktreeOnResume { .. }
            | RunError::ForkUnknown { .. }
            | RunError::ParentUnknown { .. }
            | RunError::ParentGone { .. }
            | RunError::CallbackWithoutParent
            | RunError::Setup(SetupError::AgentSwitch { .. })
            | RunError::Setup(SetupError::SystemPromptTooLong(_)) => crate::diag::exit::USAGE,
            _ => crate::diag::exit::FAILED,
        }
    }
}

/// One run to make.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub mode: Mode,
    pub name: SessionName,
    pub prompt: String,
    /// `--agent`: the agent to run (on a resume, only the session's own).
    pub agent: Option<String>,
    /// The per-run flags, which win over the agent's settings.
    pub flags: RunSettings,
    /// `--base`: where a new worktree's branch starts.
    pub base: Option<String>,
    /// `--run-id`: the id the host that starts this run gave it (a run
    /// launched through `POST /runs`); else a new one.
    pub run_id: Option<String>,
    /// `ao-fork ORIGIN NAME`: the session whose conversation the new one copies.
    pub fork: Option<SessionName>,
    /// `--parent NAME`: the parent, for a session started outside any run.
    pub parent: Option<SessionName>,
    /// The parent's id, for a run launched through the API with one.
    pub parent_id: Option<String>,
    /// `--callback`: resume the parent with this run's result when it ends.
    pub callback: bool,
    /// `--budget-usd`: the session's budget for itself and its descendants.
    pub budget_usd: Option<f64>,
}

/// How a run that started ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The CLI answered and exited 0; with an output schema, `structured`
    /// is the document.
    Success {
        result: String,
        structured: Option<serde_json::Value>,
    },
    /// The CLI reported an error result (e.g. the model API refused).
    ErrorResult { message: String },
    /// The CLI ended without a good result: crashed, killed, or non-zero exit.
    Failed { message: String },
    /// We were told to stop and passed the signal on.
    Interrupted { signal: Signal },
    /// A stop was requested (`ao-stop`, the API) and the CLI ended its turn.
    Stopped,
    /// The run ran out of money (the CLI's `--max-budget-usd`, or its
    /// tree's budget).
    Budget { message: String },
}

/// A finished run.
#[derive(Debug)]
pub struct Report {
    pub session_id: Option<String>,
    pub outcome: Outcome,
}

/// What a caller may hear of a run while it goes on.
#[derive(Default)]
pub struct Hooks {
    /// Called once the run holds the session's lock and the CLI has
    /// started, with the CLI's pid.
    pub on_started: Option<Box<dyn FnOnce(u32) + Send>>,
}

/// A run checked and ready: nothing has been written yet.
pub struct Checked {
    claude: std::path::PathBuf,
    files: SessionFiles,
    project: String,
    client: SessionClient,
    api_up: bool,
    known: Option<Session>,
    agent_name: Option<String>,
    /// The `--agents-dir` folder the agent came from.
    agents_dir: Option<std::path::PathBuf>,
    prepared: setup::Prepared,
    worktree: Option<PlannedWorktree>,
    fork: Option<ForkOrigin>,
    /// The parent session's id: `--parent`, the recorded one, or the run
    /// this one was started from.
    parent: Option<String>,
    now: String,
}

/// The session a fork copies: its conversation, and what it has spent.
struct ForkOrigin {
    session_id: String,
    conversation: String,
    spent: crate::claude::figures::Spent,
}

/// The session `origin` of a fork, which must be at rest in this project's
/// sessions folder (the CLI keeps its conversation on this machine).
fn fork_origin(
    origin: &SessionName,
    config: &Config,
    project: &str,
) -> Result<(ForkOrigin, Meta), RunError> {
    let files = SessionFiles::new(&config.sessions_dir.value, origin);
    if let state @ LockState::Held(_) = files.lock_state()? {
        return Err(RunError::ForkRunning {
            name: origin.to_string(),
            pid: state.holder(),
        });
    }
    let meta = files
        .read_meta()?
        .filter(|m| m.session_id.is_some())
        .ok_or_else(|| RunError::ForkUnknown {
            name: origin.to_string(),
            project: project.to_owned(),
            near: None,
        })?;
    let session_id = meta.session_id.clone().unwrap_or_default();
    let conversation = meta.conversation().unwrap_or(&session_id).to_owned();
    let lines = crate::backup::read_log(&files.log_path())?;
    let mut recorder = Recorder::new(origin.as_str(), config.legacy_events.value);
    recorder.catch_up(&lines);
    Ok((
        ForkOrigin {
            session_id,
            conversation,
            spent: recorder.spent().clone(),
        },
        meta,
    ))
}

/// The worktree a run runs in, and whether the run makes it.
struct PlannedWorktree {
    worktree: Worktree,
    create: bool,
}

/// Checks everything that can refuse a run, without writing anything: the
/// CLI is there, the session exists (resume) or not (new) and is not
/// running, the agent and the settings are usable.
pub async fn check(request: &RunRequest, config: &Config, diag: Diag) -> Result<Checked, RunError> {
    let RunRequest { mode, name, .. } = request;
    let claude = locate(&config.claude_path.value)?;
    let files = SessionFiles::new(&config.sessions_dir.value, name);
    let project = config.project_dir_text();
    let client = SessionClient::new(&config.session_manager_url.value)?;
    let api_up = match autostart::ensure_up(config, &client).await {
        Availability::Up => true,
        Availability::Started { log } => {
            diag.note(format!(
                "started the session manager at {} (log: {})",
                client.base_url(),
                shell_word(&log.to_string_lossy())
            ));
            true
        }
        Availability::Down { reason } => {
            diag.warn(format!(
                "{reason}; this run is kept in the backup files only (run `ao-sync {name}` once the session manager is back)"
            ));
            false
        }
    };
    let known = if api_up {
        client
            .get_session_by_name(name.as_str(), Some(&project))
            .await?
    } else {
        None
    };
    let now = now_rfc3339();
    // A running session first: its run decides what can be done next.
    if let state @ LockState::Held(_) = files.lock_state()? {
        return Err(RunError::Running {
            name: name.to_string(),
            pid: state.holder(),
            mode: *mode,
        });
    }
    // The session meant by a name that matches none, to suggest.
    let near = async |project: &str, name: &str| {
        crate::suggest::near_session(&client, project, &config.sessions_dir.value, name, api_up)
            .await
    };
    let stored = files.read_meta()?;
    let stored_worktree = stored.as_ref().and_then(|m| m.worktree.clone());
    let (resume_id, _) = match plan(*mode, name, &project, known.as_ref(), stored.clone(), &now) {
        Err(RunError::Unknown { name, project, .. }) => {
            let near = near(&project, &name).await;
            return Err(RunError::Unknown {
                name,
                project,
                near,
            });
        }
        planned => planned?,
    };
    // A resume not given --agents-dir searches the folder the agent came from.
    let agents_dir = config.agents_dir.value.clone().or_else(|| {
        stored
            .as_ref()
            .and_then(|m| m.agents_dir.clone())
            .filter(|_| *mode == Mode::Resume)
    });
    let recorded_parent = stored.as_ref().and_then(|m| m.parent_session_id.clone());
    let recorded_agent = stored
        .and_then(|m| m.agent_name)
        .or_else(|| known.as_ref().and_then(|s| s.agent_name.clone()));
    let agent_name = setup::agent_name(
        name.as_str(),
        *mode == Mode::Resume,
        request.agent.as_deref(),
        recorded_agent.as_deref(),
    )?;
    let agent = agent_name
        .as_deref()
        .map(|agent| {
            Catalog::for_project(&config.project_dir.value, agents_dir.as_deref())
                .find(agent)
                .map_err(|e| match e {
                    AgentError::Unknown { .. } if *mode == Mode::Resume => RunError::AgentGone {
                        name: name.to_string(),
                        agent: agent.to_owned(),
                        dir: agents_dir.clone(),
                    },
                    e => e.into(),
                })
        })
        .transpose()?;
    let agents_dir = agents_dir.filter(|_| {
        agent
            .as_ref()
            .is_some_and(|a| a.level == crate::agents::Level::AgentsDir)
    });
    let env_model = (config.model.source == Source::Env)
        .then(|| config.model.value.clone())
        .flatten();
    let mut flags = request.flags.clone();
    if config.model.source == Source::Flag {
        flags.model = config.model.value.clone();
    }
    let (fork, fork_worktree) = match &request.fork {
        Some(origin) => {
            let (origin, meta) = match fork_origin(origin, config, &project) {
                Err(RunError::ForkUnknown { name, project, .. }) => {
                    let near = near(&project, &name).await;
                    return Err(RunError::ForkUnknown {
                        name,
                        project,
                        near,
                    });
                }
                found => found?,
            };
            (Some(origin), meta.worktree)
        }
        None => (None, None),
    };
    let parent = match &request.parent {
        Some(parent) => {
            if !api_up {
                return Err(RunError::NeedsApi {
                    what: "--parent",
                    url: client.base_url().to_string(),
                });
            }
            match client
                .get_session_by_name(parent.as_str(), Some(&project))
                .await?
            {
                Some(session) => Some(session.session_id),
                None => {
                    let near = crate::suggest::near_session(
                        &client,
                        &project,
                        &config.sessions_dir.value,
                        parent.as_str(),
                        api_up,
                    )
                    .await;
                    return Err(RunError::ParentUnknown {
                        name: parent.to_string(),
                        project: project.clone(),
                        near,
                    });
                }
            }
        }
        None => match &request.parent_id {
            Some(id) => match client.session_if_any(id).await? {
                Some(_) => Some(id.clone()),
                None => return Err(RunError::ParentGone { id: id.clone() }),
            },
            None => recorded_parent
                .filter(|_| *mode == Mode::Resume)
                .or_else(|| parent_session_id(Some(&files.meta_path()))),
        },
    };
    if request.callback {
        if parent.is_none() {
            return Err(RunError::CallbackWithoutParent);
        }
        if !api_up {
            return Err(RunError::NeedsApi {
                what: "--callback",
                url: client.base_url().to_string(),
            });
        }
    }
    if request.budget_usd.is_some() && !api_up {
        return Err(RunError::NeedsApi {
            what: "--budget-usd",
            url: client.base_url().to_string(),
        });
    }
    let mut prepared = setup::prepare(agent.as_ref(), flags, env_model, resume_id)?;
    // What is left of every budget above the run bounds what it may spend.
    if api_up {
        let own = known.as_ref().map(|s| s.session_id.as_str());
        // `ao-resume NAME --budget-usd X` gives the session a new budget first.
        if let (Mode::Resume, Some(id), Some(usd)) = (mode, own, request.budget_usd) {
            let patch = crate::wire::SessionPatch {
                budget_usd: Some(usd),
                ..Default::default()
            };
            client.update_session(id, &patch).await?;
        }
        let asked = match (mode, own) {
            (Mode::Resume, Some(id)) => client.budget(Some(id), None, Some(&project)).await,
            _ => client.budget(None, parent.as_deref(), Some(&project)).await,
        };
        let left = match asked {
            Ok(answer) => answer.max_budget_usd,
            Err(ClientError::Api {
                status: 409,
                detail,
            }) => {
                return Err(RunError::OverBudget(detail));
            }
            // An older session manager has no budgets.
            Err(_) => None,
        };
        let own_budget = request.budget_usd.filter(|_| *mode == Mode::New);
        prepared.launch.max_budget_usd = [prepared.launch.max_budget_usd, left, own_budget]
            .into_iter()
            .flatten()
            .reduce(f64::min);
    }
    let mut features = Vec::new();
    if fork.is_some() {
        features.push(crate::claude::features::Feature::Fork);
    }
    if prepared.launch.max_budget_usd.is_some() {
        features.push(crate::claude::features::Feature::Budget);
    }
    crate::claude::features::require(&claude, &features).await?;
    let worktree = match fork_worktree {
        // A fork of a worktree session gets a worktree of its own,
        // branched from the origin's branch.
        Some(origin) => Some(PlannedWorktree {
            worktree: worktree::plan(&config.project_dir.value, name, Some(&origin.branch))?,
            create: true,
        }),
        None => plan_worktree(request, config, &prepared, stored_worktree, known.as_ref())?,
    };
    Ok(Checked {
        claude,
        files,
        project,
        client,
        api_up,
        known,
        agent_name,
        agents_dir,
        prepared,
        worktree,
        fork,
        parent,
        now,
    })
}

/// The worktree of a run: on a new session, the one `--worktree` (or the
/// agent) asks for, checked but not made yet; on a resume, the session's own,
/// which must still be there.
fn plan_worktree(
    request: &RunRequest,
    config: &Config,
    prepared: &setup::Prepared,
    stored: Option<Worktree>,
    known: Option<&Session>,
) -> Result<Option<PlannedWorktree>, RunError> {
    let name = &request.name;
    match request.mode {
        Mode::New => {
            if prepared.settings.worktree != Some(true) {
                return match &request.base {
                    Some(_) => Err(RunError::BaseWithoutWorktree),
                    None => Ok(None),
                };
            }
            // A first run whose CLI never started left its worktree: reuse it,
            // unless git never finished making it.
            if let Some(worktree) = stored.filter(|w| w.path.is_dir()) {
                worktree.check_whole(name)?;
                return Ok(Some(PlannedWorktree {
                    worktree,
                    create: false,
                }));
            }
            let worktree =
                worktree::plan(&config.project_dir.value, name, request.base.as_deref())?;
            Ok(Some(PlannedWorktree {
                worktree,
                create: true,
            }))
        }
        Mode::Resume => {
            if request.flags.worktree.is_some() || request.base.is_some() {
                return Err(RunError::WorktreeOnResume {
                    name: name.to_string(),
                });
            }
            let Some(worktree) = stored.or_else(|| known.and_then(Worktree::of_session)) else {
                return Ok(None);
            };
            worktree.check_present()?;
            Ok(Some(PlannedWorktree {
                worktree,
                create: false,
            }))
        }
    }
}

/// Runs one prompt in a session.
pub async fn run(
    request: &RunRequest,
    config: &Config,
    diag: Diag,
    hooks: Hooks,
) -> Result<Report, RunError> {
    // Before anything else, so that no signal ends the runner by its default action.
    let mut signals = drive::Signals::install()?;
    let checked = check(request, config, diag).await?;
    let RunRequest {
        mode, name, prompt, ..
    } = request;
    let Checked {
        claude,
        files,
        project,
        client,
        api_up,
        known,
        agent_name,
        agents_dir,
        prepared,
        worktree,
        fork,
        parent,
        now,
    } = checked;
    let mut lock = match files.try_lock()? {
        Ok(lock) => lock,
        Err(state) => {
            return Err(RunError::Running {
                name: name.to_string(),
                pid: state.holder(),
                mode: *mode,
            });
        }
    };
    lock.end_left_behind();
    // Decide again under the lock, which no other runner of this session
    // can hold at the same time.
    let stored = files.read_meta()?;
    let had_meta = stored.is_some();
    let (resume_id, mut meta) = plan(*mode, name, &project, known.as_ref(), stored, &now)?;
    meta.agent_name = agent_name.clone();
    meta.agents_dir = agents_dir;
    if *mode == Mode::New {
        meta.parent_session_id = parent.clone();
        meta.forked_from = fork.as_ref().map(|f| f.session_id.clone());
    }
    if let Some(planned) = worktree {
        meta.worktree = Some(planned.worktree);
        if planned.create
            && let Some(planned) = &meta.worktree
        {
            // Recorded first: a runner killed while git makes the worktree
            // leaves a session the commands know, which `ao-clean` clears.
            files.write_meta(&meta)?;
            if let Err(e) = worktree::create(&config.project_dir.value, planned) {
                if !had_meta {
                    let _ = std::fs::remove_file(files.meta_path());
                }
                return Err(e.into());
            }
        }
    }

    // A run left open by a runner that died is closed first (we hold the
    // lock, so no runner is alive): the backup gets its closing line, and the
    // API its run_completed, ahead of this run's events.
    let reporter = Reporter::start(api_up.then(|| client.clone()));
    let (mut log, mut lines) = LogWriter::open(&files.log_path())?;
    let stale = close_last_run(
        name.as_str(),
        &mut log,
        &mut lines,
        config.legacy_events.value,
    )?;
    let mut recorder = Recorder::new(name.as_str(), config.legacy_events.value);
    recorder.catch_up(&lines);
    drop(lines);
    let api_says_running = known
        .as_ref()
        .is_some_and(|s| StatusValue::from(s.status) == StatusValue::Running);
    if stale.was_open || api_says_running {
        reporter.send(stale.for_api(known.is_some(), config.legacy_events.value));
    }
    files.write_meta(&meta)?;
    // The id of a run launched through the API is its host's; else a new one.
    let run_id = request
        .run_id
        .clone()
        .unwrap_or_else(crate::record::new_run_id);
    if request.callback
        && let Some(parent) = &parent
    {
        let create = crate::wire::CallbackCreate {
            child_run_id: run_id.clone(),
            child_session_name: name.to_string(),
            parent_session_id: parent.clone(),
        };
        if let Err(e) = client.register_callback(&create).await {
            finish_reporting(reporter, &diag, name, api_up).await;
            return Err(e.into());
        }
    }
    let opening = UserMessageLine {
        run_id: Some(run_id.clone()),
        timestamp: now,
        content: prompt.to_owned(),
        project_dir: project.clone(),
        resume_session_id: resume_id.clone(),
        // The identity, when the CLI knows the conversation by another id.
        session_id: meta
            .session_id
            .clone()
            .filter(|id| resume_id.as_ref() != Some(id)),
        agent_name,
        worktree: meta
            .worktree
            .as_ref()
            .map(|w| w.path.to_string_lossy().into_owned()),
        branch: meta.worktree.as_ref().map(|w| w.branch.clone()),
        parent_session_id: meta.parent_session_id.clone(),
        forked_from: fork.as_ref().map(|f| f.session_id.clone()),
        spent_before: fork.as_ref().map(|f| Box::new(f.spent.clone())),
        budget_usd: request.budget_usd.filter(|_| *mode == Mode::New),
    };
    let index = log.append(&opening.to_line())?;
    reporter.send(recorder.feed(index, &BackupLine::UserMessage(opening)));

    let mut launch = prepared.launch.clone();
    launch.resume = resume_id.clone();
    if let Some(origin) = &fork {
        launch.resume = Some(origin.conversation.clone());
        launch.fork_session = true;
    }
    launch.env.push((
        crate::config::ENV_PARENT_META.to_owned(),
        files.meta_path().to_string_lossy().into_owned(),
    ));
    let cwd = meta
        .worktree
        .as_ref()
        .map_or(config.project_dir.value.clone(), |w| w.cwd.clone());
    let base = meta
        .worktree
        .as_ref()
        .map(|w| w.base.clone())
        .filter(|b| !b.is_empty());
    launch.partial_messages = crate::claude::takes_partial_messages(&claude);
    let mut changes = ChangeWatch::start(&cwd, base);
    let mut on_started = hooks.on_started;
    let conversation = loop {
        let cli = match ClaudeProcess::spawn(&claude, &cwd, &launch) {
            Ok(cli) => cli,
            Err(e) => {
                let end = RunCompletedLine {
                    timestamp: now_rfc3339(),
                    exit_code: None,
                    reason: RunEndReason::Error,
                    error: Some(e.to_string()),
                };
                close_run(&mut log, &mut recorder, &reporter, end)?;
                finish_reporting(reporter, &diag, name, api_up).await;
                if request.callback {
                    end_unborn_callback(&client, &run_id, &e.to_string(), &diag).await;
                }
                return Err(e.into());
            }
        };
        if let Err(e) = lock.record_cli(cli.pid()) {
            diag.warn(format!("cannot write {}: {e}", files.lock_path().display()));
        }
        if let Some(pid) = cli.pid()
            && let Some(started) = on_started.take()
        {
            started(pid);
        }
        let conversation = drive::converse(
            cli,
            prompt,
            &mut signals,
            drive::Sinks {
                log: &mut log,
                recorder: &mut recorder,
                reporter: &reporter,
                files: &files,
                meta: &mut meta,
                diag,
                feed: api_up.then(|| client.clone()),
                changes: &mut changes,
                run_id: Some(run_id.clone()),
                policy: requests::Policy::new(
                    launch.permission_mode,
                    prepared.settings.on_permission,
                    prepared.settings.permission_timeout,
                    api_up,
                ),
            },
        )
        .await?;
        // A release that does not know the flag refuses it before it
        // reads anything: run it again without.
        if launch.partial_messages && conversation.refused(PARTIAL_MESSAGES_FLAG) {
            launch.partial_messages = false;
            continue;
        }
        break conversation;
    };
    let _ = lock.record_cli(None);
    drop(prepared);

    let mut outcome = judge(&conversation);
    // A CLI that refused initialize or never said init may speak another
    // protocol: name the version found (asked only now, on failure).
    if conversation.protocol_failed {
        let note = crate::claude::version_note(&claude).await;
        if let Outcome::ErrorResult { message } | Outcome::Failed { message } = &mut outcome {
            message.push_str(&format!(" ({note})"));
        }
    }
    let (reason, error) = match &outcome {
        Outcome::Success { .. } => (RunEndReason::Completed, None),
        Outcome::Interrupted { .. } => (RunEndReason::Interrupted, None),
        Outcome::Stopped => (RunEndReason::Stopped, None),
        Outcome::Budget { message } => (RunEndReason::Budget, Some(message.clone())),
        Outcome::ErrorResult { message } | Outcome::Failed { message } => {
            (RunEndReason::Error, Some(message.clone()))
        }
    };
    if let Some(line) = changes.finish(&diag).await {
        let index = log.append(&line.to_line())?;
        reporter.send(recorder.feed(index, &BackupLine::Changes(line)));
    }
    let end = RunCompletedLine {
        timestamp: now_rfc3339(),
        exit_code: Some(conversation.exit.code()),
        reason,
        error,
    };
    let unborn = recorder.session_id().is_none();
    let why = end.error.clone();
    close_run(&mut log, &mut recorder, &reporter, end)?;
    finish_reporting(reporter, &diag, name, api_up).await;
    if request.callback && unborn {
        let why = why.unwrap_or_else(|| "the run ended before the CLI began".to_owned());
        end_unborn_callback(&client, &run_id, &why, &diag).await;
    }
    Ok(Report {
        session_id: recorder.session_id().map(str::to_owned),
        outcome,
    })
}

/// A run whose CLI never named its conversation has no session the
/// session manager knows, so no stored end: its callback is told so.
async fn end_unborn_callback(client: &SessionClient, run_id: &str, why: &str, diag: &Diag) {
    if let Err(e) = client.end_callback(run_id, why).await {
        diag.warn(format!(
            "the parent could not be told that this run ended: {e}"
        ));
    }
}

/// The session this run belongs to and its metadata, or why it may not run.
fn plan(
    mode: Mode,
    name: &SessionName,
    project: &str,
    known: Option<&Session>,
    stored: Option<Meta>,
    now: &str,
) -> Result<(Option<String>, Meta), RunError> {
    match mode {
        Mode::New => {
            // A meta without a session id is a run whose CLI never started:
            // the name is still free.
            let started_before = stored.as_ref().is_some_and(|m| m.session_id.is_some());
            if known.is_some() || started_before {
                return Err(RunError::Exists {
                    name: name.to_string(),
                    project: project.to_owned(),
                });
            }
            let meta = Meta {
                session_name: name.to_string(),
                session_id: None,
                project_dir: project.to_owned(),
                created_at: now.to_owned(),
                last_resumed_at: None,
                ..Meta::default()
            };
            Ok((None, meta))
        }
        Mode::Resume => {
            let id = known
                .map(|s| s.session_id.clone())
                .or_else(|| stored.as_ref().and_then(|m| m.session_id.clone()));
            let Some(id) = id else {
                return Err(RunError::Unknown {
                    name: name.to_string(),
                    project: project.to_owned(),
                    near: None,
                });
            };
            // The backups know what the CLI calls the conversation now.
            let mut meta = stored
                .filter(|m| m.session_id.as_deref() == Some(&id))
                .unwrap_or_else(|| Meta {
                    session_name: name.to_string(),
                    session_id: Some(id.clone()),
                    project_dir: project.to_owned(),
                    created_at: known.map_or_else(|| now.to_owned(), |s| s.created_at.clone()),
                    last_resumed_at: None,
                    agent_name: known.and_then(|s| s.agent_name.clone()),
                    worktree: known.and_then(Worktree::of_session),
                    ..Meta::default()
                });
            meta.last_resumed_at = Some(now.to_owned());
            let conversation = meta.conversation().map(str::to_owned);
            Ok((conversation, meta))
        }
    }
}

fn close_run(
    log: &mut LogWriter,
    recorder: &mut Recorder,
    reporter: &Reporter,
    end: RunCompletedLine,
) -> Result<(), BackupError> {
    let index = log.append(&end.to_line())?;
    reporter.send(recorder.feed(index, &BackupLine::RunCompleted(end)));
    Ok(())
}

/// Waits (bounded) for the queue, and says in one line what did not arrive.
async fn finish_reporting(reporter: Reporter, diag: &Diag, name: &SessionName, api_up: bool) {
    let tally: Tally = reporter.finish(DRAIN_WAIT).await;
    let missing = tally.undelivered();
    // When the API was down from the start, the one warning was given then.
    if missing > 0 && api_up {
        diag.warn(format!(
            "{missing} updates did not reach the session manager in time; they are in the backup: run `ao-sync {name}`"
        ));
    }
    if let Some(first) = tally.first_refusal {
        diag.warn(format!(
            "the session manager refused {} updates (first: {first})",
            tally.refused
        ));
    }
}

/// What the CLI's exit and result say about the run.
fn judge(c: &drive::Conversation) -> Outcome {
    if let Some(signal) = c.interrupted {
        return Outcome::Interrupted { signal };
    }
    if c.stopped && c.budget_stop {
        return Outcome::Budget {
            message: "its tree's budget is spent; the session manager stopped it".to_owned(),
        };
    }
    if c.stopped {
        return Outcome::Stopped;
    }
    if let Some(why) = &c.unreadable {
        return Outcome::Failed {
            message: format!("{why}; the run was ended"),
        };
    }
    let code = c.exit.code();
    let tail = c.exit.stderr_summary();
    let with_tail = |msg: String| {
        if tail.is_empty() {
            msg
        } else {
            format!("{msg}: {tail}")
        }
    };
    match &c.result {
        Some(result) if result.subtype.as_deref() == Some("error_max_budget_usd") => {
            Outcome::Budget {
                message: result.error_text(),
            }
        }
        Some(result) if result.is_error => Outcome::ErrorResult {
            message: result.error_text(),
        },
        Some(result) if code == 0 => Outcome::Success {
            result: result.result.clone().unwrap_or_default(),
            structured: result.structured_output.clone(),
        },
        Some(_) => Outcome::Failed {
            message: with_tail(format!("claude exited with code {code} after its answer")),
        },
        None => Outcome::Failed {
            message: with_tail(match c.exit.signal() {
                Some(sig) => format!(
                    "claude was killed by {} before it answered",
                    Signal::try_from(sig)
                        .map_or_else(|_| format!("signal {sig}"), |s| s.as_str().to_owned())
                ),
                None if code == 0 => "claude exited without an answer".to_owned(),
                None => format!("claude exited with code {code} before it answered"),
            }),
        },
    }
}
