//! `ao-dashboard`: the link that opens the dashboard logged in,
//! `http://HOST:PORT/?token=TOKEN`, for the session manager the commands
//! use. The token is the configured one (`AGENT_ORCHESTRATOR_TOKEN`) when
//! set, else this user's local token. The link is tried before it is
//! printed, so a token the session manager does not take is an error here,
//! not a 401 in the browser.

use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use clap::Parser;
use serde::Serialize;

use crate::client::is_loopback_host;
use crate::config::CommonArgs;
use crate::diag::Diag;
use crate::token::{ENV_LOCAL_TOKEN_FILE, ENV_TOKEN, Token, local_token_path};

use super::{CommandError, Ctx, block_on, main_with, print_json, print_line};

const PROGRAM: &str = "ao-dashboard";
/// How long a browser opener may take to say whether it worked; one still
/// running then is taken to have started the browser.
const OPENER_WAIT: Duration = Duration::from_secs(5);
/// How long the session manager may take to answer the login.
const LOGIN_TIMEOUT: Duration = Duration::from_secs(5);

/// Print the link that opens the session manager's dashboard, logged in.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = concat!(
        "Prints http://HOST:PORT/?token=TOKEN for the session manager the commands use (--session-manager-url). ",
        "The token is AGENT_ORCHESTRATOR_TOKEN when set, else this user's local token, which the session manager made on its first start. ",
        "Opened once, the link leaves the token in a cookie and the address bar shows / again; with it the dashboard can answer permission requests. ",
        "Anyone with the link can act as you: keep it out of shared places. ",
        "A session manager that does not answer, or does not take the token: exit 1. ",
        "--open also opens it in the browser (xdg-open, open on macOS); without one the link is printed and a note says so (exit 0).\n\n",
        "Examples:\n  ao-dashboard --open\n  ao-dashboard --json | jq -r .url\n\n",
        exit_codes!(),
    ),
)]
struct DashboardArgs {
    /// Open the link in the browser too
    #[arg(long)]
    open: bool,

    /// Print {"url","dashboard_url","token_source":"configured"|"local","opened"} instead of the link
    #[arg(long)]
    json: bool,

    #[command(flatten)]
    common: CommonArgs,
}

/// Which token the link carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenSource {
    /// `AGENT_ORCHESTRATOR_TOKEN`.
    Configured,
    /// This user's local token.
    Local,
}

/// The `--json` answer.
#[derive(Debug, Clone, Serialize)]
pub struct DashboardLink {
    /// The link with the token.
    pub url: String,
    /// The dashboard without it.
    pub dashboard_url: String,
    pub token_source: TokenSource,
    /// Whether `--open` opened it.
    pub opened: bool,
}

/// Why there is no link to print.
#[derive(Debug, thiserror::Error)]
pub enum DashboardError {
    #[error(
        "no session manager answers at {url} ({reason}); start one (`ao-session-manager`, or any ao-new starts one by itself), then run ao-dashboard again"
    )]
    Down { url: String, reason: String },
    #[error(
        "no token to log in with: {ENV_TOKEN} is not set and there is no local token at {path} (a session manager makes it on its first start; for one started with --local-token-file FILE, set {ENV_LOCAL_TOKEN_FILE}=FILE)"
    )]
    NoLocalToken { path: String },
    #[error(
        "no token to log in with: the session manager at {url} is on another machine, so this user's local token is not its; set {ENV_TOKEN} to its token"
    )]
    Remote { url: String },
    #[error("the session manager at {url} refused the {which}: {detail}")]
    Refused {
        url: String,
        which: &'static str,
        detail: String,
    },
}

/// `main` of `ao-dashboard`.
pub fn main() -> ExitCode {
    main_with::<DashboardArgs>(PROGRAM, run)
}

fn run(args: &DashboardArgs, diag: Diag) -> Result<(), CommandError> {
    let ctx = Ctx::load(&args.common, diag)?;
    let mut link = block_on(link(&ctx))??;
    if !args.json {
        print_line(&link.url)?;
    }
    if args.open {
        match open_in_browser(&link.url) {
            Ok(()) => link.opened = true,
            Err(why) => diag.warn(format!(
                "cannot open a browser ({why}); open the link yourself"
            )),
        }
    }
    if args.json {
        print_json(&link)?;
    }
    Ok(())
}

/// The link, once the session manager has taken its token.
async fn link(ctx: &Ctx) -> Result<DashboardLink, CommandError> {
    let base = ctx.client.base_url().to_owned();
    let url =
        reqwest::Url::parse(&base).map_err(|_| crate::client::ClientError::BadUrl(base.clone()))?;
    let configured = Token::from_env()
        .transpose()
        .map_err(crate::client::ClientError::from)?;
    let found = match configured {
        Some(token) => Some((token, TokenSource::Configured)),
        None if is_loopback_host(&url) => Token::local().map(|t| (t, TokenSource::Local)),
        None => None,
    };
    let Some((token, source)) = found else {
        if let Err(e) = ctx.client.health().await {
            return Err(down(&base, e).into());
        }
        let missing = if is_loopback_host(&url) {
            DashboardError::NoLocalToken {
                path: local_token_path()
                    .map(|p| crate::diag::shell_word(&p.to_string_lossy()))
                    .unwrap_or_else(|| "(no data folder)".to_owned()),
            }
        } else {
            DashboardError::Remote { url: base }
        };
        return Err(missing.into());
    };
    let query: String = form_urlencoded::Serializer::new(String::new())
        .append_pair("token", token.expose())
        .finish();
    let link = format!("{base}/?{query}");
    log_in(&url, &link, source).await?;
    Ok(DashboardLink {
        url: link,
        dashboard_url: format!("{base}/"),
        token_source: source,
        opened: false,
    })
}

fn down(base: &str, err: impl std::fmt::Display) -> DashboardError {
    DashboardError::Down {
        url: base.to_owned(),
        reason: err.to_string(),
    }
}

/// Opens `link` as a browser would, without following the redirect: the
/// session manager answers 303 with the cookie when it takes the token,
/// 200 when it needs none, 401 otherwise.
async fn log_in(url: &reqwest::Url, link: &str, source: TokenSource) -> Result<(), DashboardError> {
    let base = url.as_str().trim_end_matches('/');
    let mut builder = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(LOGIN_TIMEOUT);
    if is_loopback_host(url) {
        builder = builder.no_proxy();
    }
    let client = builder.build().map_err(|e| down(base, e.without_url()))?;
    let response = client.get(link).send().await.map_err(|e| {
        down(
            base,
            if e.is_connect() {
                "connection refused or failed".to_owned()
            } else {
                e.without_url().to_string()
            },
        )
    })?;
    let status = response.status();
    if status == reqwest::StatusCode::SEE_OTHER || status.is_success() {
        return Ok(());
    }
    let detail = response
        .json::<serde_json::Value>()
        .await
        .ok()
        .and_then(|v| v["detail"].as_str().map(str::to_owned))
        .unwrap_or_else(|| format!("it answered {status}"));
    Err(DashboardError::Refused {
        url: base.to_owned(),
        which: match source {
            TokenSource::Configured => "token in AGENT_ORCHESTRATOR_TOKEN",
            TokenSource::Local => {
                "local token of this user (is it another user's session manager, or one started with another --local-token-file?)"
            }
        },
        detail,
    })
}

/// Hands `link` to the system's opener and waits, a little, for its word.
fn open_in_browser(link: &str) -> Result<(), String> {
    let program = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let mut child = std::process::Command::new(program)
        .arg(link)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| match e.kind() {
            std::io::ErrorKind::NotFound => format!("there is no {program} here"),
            _ => format!("cannot start {program}: {e}"),
        })?;
    let deadline = Instant::now() + OPENER_WAIT;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("{program} failed ({status})")),
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(25)),
            // Still at work: some openers wait for the browser they start.
            Ok(None) => return Ok(()),
            Err(e) => return Err(format!("{program}: {e}")),
        }
    }
}
