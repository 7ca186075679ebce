//! Sending one notification to one hook: the notify command (run by
//! `sh -c`, the JSON on its stdin) or the notify URL (POSTed the JSON),
//! each attempt bounded by [`TIMEOUT`], failures retried a few times with
//! backoff, each failure logged as one line that names no secret.

use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::process::Command;

use super::notice::Notice;

/// How long one attempt may take; a command still running then is killed
/// with everything it started.
pub const TIMEOUT: Duration = Duration::from_secs(10);
/// Attempts per notification and hook, at most.
pub const ATTEMPTS: usize = 3;
/// The waits before the second and the third attempt.
const BACKOFF: [Duration; ATTEMPTS - 1] = [Duration::from_secs(1), Duration::from_secs(3)];

/// Where notifications go.
pub enum Hook {
    /// A shell command line, as the user gave it.
    Command(String),
    /// A webhook, and the client that posts to it.
    Url(reqwest::Url, reqwest::Client),
}

/// Why an attempt failed, and whether another may succeed.
enum Failure {
    /// Not delivered: worth another attempt.
    Retry(String),
    /// Another attempt would not help, or might deliver twice (a hook that
    /// timed out may have done its work).
    Final(String),
}

/// What the notify URL receives: the notification, and its line again as
/// `content`, the field Discord's webhooks show (Slack's show `text`).
#[derive(Serialize)]
struct WebhookBody<'a> {
    #[serde(flatten)]
    notice: &'a Notice,
    content: &'a str,
}

impl Hook {
    /// The hook as the log names it: never the command line (it may hold
    /// a secret) nor the URL's path, query or credentials (Slack's and
    /// Discord's webhook secrets are in the path).
    pub fn describe(&self) -> String {
        match self {
            Hook::Command(_) => "notify command".to_owned(),
            Hook::Url(url, _) => format!("notify URL {}", redact_url(url)),
        }
    }

    /// Delivers `notice`, retrying a failure up to [`ATTEMPTS`] in all;
    /// each failure is one line in the log.
    pub async fn deliver(&self, notice: &Notice) {
        for attempt in 1..=ATTEMPTS {
            let failure = match self.attempt(notice).await {
                Ok(()) => {
                    tracing::debug!(
                        "{}: {} of session '{}' delivered",
                        self.describe(),
                        notice.kind.as_str(),
                        notice.session_name
                    );
                    return;
                }
                Err(failure) => failure,
            };
            let (why, next, wait) = match failure {
                Failure::Final(why) => (why, "not retried".to_owned(), None),
                Failure::Retry(why) => match BACKOFF.get(attempt - 1) {
                    Some(&wait) => (
                        why,
                        format!(
                            "attempt {attempt} of {ATTEMPTS}, retrying in {} s",
                            wait.as_secs()
                        ),
                        Some(wait),
                    ),
                    None => (
                        why,
                        format!("attempt {attempt} of {ATTEMPTS}, giving up"),
                        None,
                    ),
                },
            };
            tracing::warn!(
                "{}: {} of session '{}' not delivered: {why} ({next})",
                self.describe(),
                notice.kind.as_str(),
                notice.session_name
            );
            match wait {
                Some(wait) => tokio::time::sleep(wait).await,
                None => return,
            }
        }
    }

    async fn attempt(&self, notice: &Notice) -> Result<(), Failure> {
        match self {
            Hook::Command(command) => run_command(command, notice).await,
            Hook::Url(url, client) => post(url, client, notice).await,
        }
    }
}

/// Kills a process group when dropped while armed: a hook that timed out,
/// or whose delivery was cancelled (the server stopping), leaves nothing.
struct GroupGuard(Option<Pid>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if let Some(group) = self.0.take() {
            let _ = killpg(group, Signal::SIGKILL);
        }
    }
}

async fn run_command(command: &str, notice: &Notice) -> Result<(), Failure> {
    let mut json = serde_json::to_vec(notice).map_err(|e| Failure::Final(e.to_string()))?;
    json.push(b'\n');
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .process_group(0)
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| Failure::Retry(format!("cannot start sh: {e}")))?;
    let mut guard = GroupGuard(
        child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .map(Pid::from_raw),
    );
    let stdin = child.stdin.take();
    let finished = tokio::time::timeout(TIMEOUT, async {
        if let Some(mut stdin) = stdin {
            // A command that does not read its stdin is its own business:
            // its exit status says whether it worked.
            let _ = stdin.write_all(&json).await;
        }
        child.wait().await
    })
    .await;
    match finished {
        Err(_) => {
            drop(guard);
            let _ = child.wait().await;
            Err(Failure::Final(format!(
                "still running after {} s, killed",
                TIMEOUT.as_secs()
            )))
        }
        Ok(status) => {
            // Ended by itself: what it left running in the background is
            // the user's to keep.
            guard.0 = None;
            match status {
                Ok(status) if status.success() => Ok(()),
                Ok(status) => Err(Failure::Retry(match status.code() {
                    Some(code) => format!("exited with status {code}"),
                    None => format!("ended by {status}"),
                })),
                Err(e) => Err(Failure::Retry(format!("cannot wait for it: {e}"))),
            }
        }
    }
}

async fn post(
    url: &reqwest::Url,
    client: &reqwest::Client,
    notice: &Notice,
) -> Result<(), Failure> {
    let body = WebhookBody {
        notice,
        content: &notice.text,
    };
    let response = client.post(url.clone()).json(&body).send().await;
    let status = match response {
        Ok(response) => response.status(),
        Err(e) if e.is_timeout() => {
            return Err(Failure::Final(format!(
                "no answer within {} s",
                TIMEOUT.as_secs()
            )));
        }
        Err(e) => return Err(Failure::Retry(transport(e))),
    };
    if status.is_success() {
        Ok(())
    } else if status.is_server_error() || matches!(status.as_u16(), 408 | 429) {
        Err(Failure::Retry(format!("answered {status}")))
    } else {
        Err(Failure::Final(format!("answered {status}")))
    }
}

/// The innermost cause of a failed request, without its URL.
fn transport(err: reqwest::Error) -> String {
    if err.is_connect() {
        return "cannot connect".to_owned();
    }
    let err = err.without_url();
    let mut source: &dyn std::error::Error = &err;
    while let Some(next) = source.source() {
        source = next;
    }
    source.to_string()
}

/// `https://hooks.slack.com/…` of a webhook URL: its scheme, host and port,
/// and an ellipsis for whatever else it has (path, query, credentials),
/// which is where webhooks keep their secrets.
pub fn redact_url(url: &reqwest::Url) -> String {
    let host = url.host_str().unwrap_or("");
    let port = url.port().map(|p| format!(":{p}")).unwrap_or_default();
    let more = url.path() != "/"
        || url.query().is_some()
        || url.fragment().is_some()
        || !url.username().is_empty()
        || url.password().is_some();
    format!(
        "{}://{host}{port}/{}",
        url.scheme(),
        if more { "…" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_logged_without_their_secrets() {
        let url = |text: &str| redact_url(&reqwest::Url::parse(text).unwrap());
        assert_eq!(
            url("https://hooks.slack.com/services/T0/B0/s3cret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(
            url("https://user:pw@ntfy.example:8443/topic?auth=s3cret"),
            "https://ntfy.example:8443/…"
        );
        assert_eq!(url("http://127.0.0.1:9000"), "http://127.0.0.1:9000/");
        assert_eq!(
            url("http://127.0.0.1:9000/?k=s3cret"),
            "http://127.0.0.1:9000/…"
        );
    }
}
