//! Starting a claimed run: the runner's own program (`ao-new` or
//! `ao-resume` beside this one) with the run's id, its settings as flags
//! and its prompt on stdin, so every check, backup, lock and event is the
//! runner's. A host never runs anything else.
//!
//! Runners are forked from one thread that lives as long as the host, and
//! get SIGTERM when the host dies (SIGKILL included): each ends its run as
//! interrupted and takes its CLI along (the CLI's guardian).

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::OnceLock;
use std::sync::mpsc;

use tempfile::NamedTempFile;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::oneshot;

use crate::token::Token;
use crate::wire::{LaunchSettings, Run};

/// What every runner of a host is started with besides its run.
#[derive(Debug, Clone)]
pub struct RunnerEnv {
    /// The session manager, as the host reaches it.
    pub url: String,
    /// The token the host presents, which its runners present too.
    pub token: Option<Token>,
    /// The claude executable, when not the one on PATH.
    pub claude_path: Option<PathBuf>,
}

/// A runner started for a run.
pub struct Runner {
    child: Child,
    /// The files its flags name (system prompt, output schema), removed
    /// once it has ended.
    _files: Vec<NamedTempFile>,
}

/// How a runner ended: its exit code (`None`: a signal) and its last line
/// on stderr, without its program's prefix.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ended {
    pub exit_code: Option<i64>,
    pub last_line: Option<String>,
}

/// A command and where to send the started child.
struct Job {
    cmd: Command,
    runtime: tokio::runtime::Handle,
    reply: oneshot::Sender<std::io::Result<Child>>,
}

/// The thread every runner is forked from: it never exits before the
/// process does, so the parent-death signal only comes with the host's end.
fn launcher() -> &'static std::sync::Mutex<mpsc::Sender<Job>> {
    static LAUNCHER: OnceLock<std::sync::Mutex<mpsc::Sender<Job>>> = OnceLock::new();
    LAUNCHER.get_or_init(|| {
        let (tx, rx) = mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("runner-launcher".to_owned())
            .spawn(move || {
                for mut job in rx {
                    let _entered = job.runtime.enter();
                    let _ = job.reply.send(job.cmd.spawn());
                }
            });
        if let Err(e) = spawned {
            tracing::error!("cannot start the runner launcher thread: {e}");
        }
        std::sync::Mutex::new(tx)
    })
}

/// Forks `cmd` from the launcher thread.
async fn launch(cmd: Command) -> std::io::Result<Child> {
    let (reply, answer) = oneshot::channel();
    let job = Job {
        cmd,
        runtime: tokio::runtime::Handle::current(),
        reply,
    };
    let sent = launcher()
        .lock()
        .map_err(|_| std::io::Error::other("the launcher is gone"))?
        .send(job);
    sent.map_err(|_| std::io::Error::other("the launcher thread is gone"))?;
    answer
        .await
        .map_err(|_| std::io::Error::other("the launcher thread is gone"))?
}

/// A file only this user can read, holding `text`, for a flag that takes a file.
fn private_file(prefix: &str, text: &str) -> std::io::Result<NamedTempFile> {
    let mut file = tempfile::Builder::new()
        .prefix(prefix)
        .suffix(".txt")
        .tempfile()?;
    file.write_all(text.as_bytes())?;
    file.flush()?;
    Ok(file)
}

/// The runner's flags for `settings`, each as `--flag=value` so that no
/// value is ever read as a flag; the files they name.
fn setting_flags(settings: &LaunchSettings) -> std::io::Result<(Vec<String>, Vec<NamedTempFile>)> {
    let mut args = Vec::new();
    let mut files = Vec::new();
    let mut flag = |name: &str, value: &str| args.push(format!("--{name}={value}"));
    if let Some(model) = &settings.model {
        flag("model", model);
    }
    for (name, list) in [
        ("tools", &settings.tools),
        ("allowed-tools", &settings.allowed_tools),
        ("disallowed-tools", &settings.disallowed_tools),
    ] {
        if let Some(list) = list {
            flag(name, &list.join(","));
        }
    }
    if let Some(mode) = &settings.permission_mode {
        flag("permission-mode", mode);
    }
    if let Some(turns) = settings.max_turns {
        flag("max-turns", &turns.to_string());
    }
    if let Some(usd) = settings.max_budget_usd {
        flag("max-budget-usd", &crate::claude::launch::format_usd(usd));
    }
    if let Some(mode) = &settings.system_prompt_mode {
        flag("system-prompt-mode", mode);
    }
    if let Some(prompt) = &settings.system_prompt {
        let file = private_file("ao-system-prompt-", prompt)?;
        flag("system-prompt-file", &file.path().to_string_lossy());
        files.push(file);
    }
    if let Some(schema) = &settings.output_schema {
        let file = private_file("ao-output-schema-", &schema.to_string())?;
        flag("output-schema", &file.path().to_string_lossy());
        files.push(file);
    }
    if let Some(parent) = &settings.parent_session_id {
        flag("parent-id", parent);
    }
    if let Some(usd) = settings.budget_usd {
        flag("budget-usd", &crate::claude::launch::format_usd(usd));
    }
    if settings.callback {
        args.push("--callback".to_owned());
    }
    Ok((args, files))
}

/// Starts the runner of `run` in `project` (the folder the host's
/// allow-list let through), its prompt on its stdin.
pub async fn start(run: &Run, project: &Path, env: &RunnerEnv) -> std::io::Result<Runner> {
    let program = if run.resume { "ao-resume" } else { "ao-new" };
    let mut cmd = Command::new(crate::paths::sibling_program(program));
    cmd.arg(format!("--run-id={}", run.run_id))
        .arg("--project-dir")
        .arg(project);
    if let Some(agent) = &run.agent {
        cmd.arg(format!("--agent={agent}"));
    }
    if run.worktree {
        cmd.arg("--worktree");
    }
    if let Some(base) = &run.base {
        cmd.arg(format!("--base={base}"));
    }
    let (flags, files) = match &run.settings {
        Some(settings) => setting_flags(settings)?,
        None => (Vec::new(), Vec::new()),
    };
    cmd.args(flags).arg("--").arg(&run.session_name);
    // A run's parent is the one it was launched with, never the session
    // whose run happened to start this host.
    for key in [
        crate::config::ENV_PROJECT_DIR,
        crate::config::ENV_SESSIONS_DIR,
        crate::config::ENV_PARENT_META,
    ] {
        cmd.env_remove(key);
    }
    cmd.env(crate::config::ENV_SESSION_MANAGER_URL, &env.url)
        .env(crate::config::ENV_AUTOSTART, "0");
    if let Some(token) = &env.token {
        cmd.env(crate::token::ENV_TOKEN, token.expose());
    }
    if let Some(claude) = &env.claude_path {
        cmd.env(crate::config::ENV_CLAUDE_PATH, claude);
    }
    cmd.current_dir(project)
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        // Its own group: a Ctrl-C meant for the host does not reach it; the
        // host passes its end on as SIGTERM.
        .process_group(0)
        .kill_on_drop(false);
    crate::claude::guard::signal_parent_death(cmd.as_std_mut(), nix::sys::signal::Signal::SIGTERM);
    let mut child = launch(cmd).await?;
    if let Some(mut stdin) = child.stdin.take() {
        let prompt = run.prompt.clone().unwrap_or_default();
        tokio::spawn(async move {
            // A runner that refused at once may not read it: its exit says why.
            let _ = stdin.write_all(prompt.as_bytes()).await;
        });
    }
    Ok(Runner {
        child,
        _files: files,
    })
}

impl Runner {
    /// The runner's process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Waits for the runner to end; each line it writes on stderr goes to
    /// the host's log, under the run's id.
    pub async fn wait(mut self, run_id: &str) -> Ended {
        let mut last_line = None;
        if let Some(stderr) = self.child.stderr.take() {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                if line.trim().is_empty() {
                    continue;
                }
                tracing::info!("run {run_id}: {line}");
                last_line = Some(without_prefix(&line).to_owned());
            }
        }
        let status = self.child.wait().await;
        Ended {
            exit_code: status.ok().and_then(|s| s.code()).map(i64::from),
            last_line,
        }
    }
}

/// `unknown agent 'x'` of `ao-new: error: unknown agent 'x'`.
fn without_prefix(line: &str) -> &str {
    for program in ["ao-new: ", "ao-resume: "] {
        if let Some(rest) = line.strip_prefix(program) {
            return rest
                .strip_prefix("error: ")
                .or_else(|| rest.strip_prefix("warning: "))
                .unwrap_or(rest)
                .trim();
        }
    }
    line.trim()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_become_flags_with_their_values_attached() {
        let settings = LaunchSettings {
            model: Some("sonnet".into()),
            tools: Some(vec![]),
            allowed_tools: Some(vec!["Bash(git add, git commit)".into(), "Edit".into()]),
            max_turns: Some(3),
            system_prompt: Some("be brief".into()),
            parent_session_id: Some("p-1".into()),
            callback: true,
            budget_usd: Some(0.25),
            ..LaunchSettings::default()
        };
        let (args, files) = setting_flags(&settings).unwrap();
        assert_eq!(args[0], "--model=sonnet");
        assert_eq!(args[1], "--tools=");
        assert_eq!(args[2], "--allowed-tools=Bash(git add, git commit),Edit");
        assert_eq!(args[3], "--max-turns=3");
        let prompt_file = args[4].strip_prefix("--system-prompt-file=").unwrap();
        assert_eq!(std::fs::read_to_string(prompt_file).unwrap(), "be brief");
        assert_eq!(
            args[5..],
            ["--parent-id=p-1", "--budget-usd=0.25", "--callback"]
        );
        drop(files);
        assert!(!Path::new(prompt_file).exists());
    }

    #[test]
    fn the_last_line_loses_its_program() {
        assert_eq!(
            without_prefix("ao-new: error: unknown agent 'x'"),
            "unknown agent 'x'"
        );
        assert_eq!(without_prefix("plain"), "plain");
    }
}
