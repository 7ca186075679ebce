//! The command line of `ao-session-manager`.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::Parser;

use super::guard::Guard;
use super::live::Budget;
use super::notify::NotifySettings;
use super::store::postgres::Target;
use super::{
    DEFAULT_LIVE_BUFFER, DEFAULT_LIVE_BUFFER_BYTES, DEFAULT_MAX_BODY_BYTES, Database,
    DatabaseError, ServerConfig, Synchronous,
};
use crate::paths;
use crate::token::{ENV_TOKEN, Token, TokenError};

/// The session manager: the HTTP API every ao-* command and dashboard talks
/// to, on an embedded SQLite database (or a PostgreSQL database that several
/// replicas share), with live updates over /ws and /sse.
///
/// Prints `listening on http://HOST:PORT` as its first line on stdout; logs go
/// to stderr (set RUST_LOG=debug for more).
#[derive(Debug, Parser)]
#[command(
    name = "ao-session-manager",
    version,
    after_help = "Security: only loopback Host names and the server's own Origin are served, unless allowed; \
request bodies must be JSON. With a token (--token-file, or AGENT_ORCHESTRATOR_TOKEN, which the ao-* commands also send), \
every route but /health needs Authorization: Bearer <token>; open the dashboard once as http://HOST:PORT/?token=<token>. \
Listening on a non-loopback address needs a token.\n\n\
Notifications: when a run starts waiting for someone (needs_input) or ends (run_completed), --notify-command gets one JSON object on stdin \
and --notify-url is POSTed it; its `text` is one readable line. Only events stamped within 10 minutes of now notify (not ao-sync's replays of old runs). \
A failure (an exit status but 0, no connection, an answer 5xx, 408 or 429) is retried twice, after 1 s then 3 s; \
a hook still busy after 10 s is killed and not retried (it may have done its work); each failure is one line in the log, and none of it slows the API.\n\n\
Examples:\n  ao-session-manager\n  ao-session-manager --port 0 --db /tmp/ao.db\n  \
AGENT_ORCHESTRATOR_TOKEN=$(openssl rand -hex 32) ao-session-manager --host 0.0.0.0 --allowed-host ao.team.example\n  \
ao-session-manager --notify-url https://hooks.slack.com/services/T000/B000/XXXX\n  \
ao-session-manager --notify-command 'notify-send agent-orchestrator \"$(jq -r .text)\"'\n  \
PGPASSWORD=... ao-session-manager --db postgres://ao@db.internal:5432/ao\n  \
PGPASSWORD=... ao-session-manager --db postgres://ao@db.internal:5432/ao --import sqlite:$HOME/.local/share/agent-orchestrator/session-manager.db"
)]
pub struct ServerArgs {
    /// Address to listen on. Only loopback is private to this machine.
    #[arg(long, env = "AGENT_ORCHESTRATOR_HOST", default_value = "127.0.0.1")]
    pub host: String,

    /// Port to listen on; 0 picks a free one.
    #[arg(long, env = "AGENT_ORCHESTRATOR_PORT", default_value_t = 8765)]
    pub port: u16,

    /// Database: a SQLite file, or postgres://USER@HOST:PORT/DB for a database several replicas share (its password in PGPASSWORD, or in the URL) [default: <data dir>/agent-orchestrator/session-manager.db]
    #[arg(long, value_name = "PATH|URL", env = "AGENT_ORCHESTRATOR_DB")]
    pub db: Option<String>,

    /// Copy this SQLite database (sqlite:PATH) into the PostgreSQL database of --db, print what was copied per table, and exit. Sessions already copied are skipped, so it can be run again.
    #[arg(long, value_name = "sqlite:PATH")]
    pub import: Option<String>,

    /// With --import: add the file's sessions to a database that already holds others.
    #[arg(long, requires = "import")]
    pub merge: bool,

    /// Largest request body accepted, in bytes.
    #[arg(long, env = "AGENT_ORCHESTRATOR_MAX_BODY_BYTES", default_value_t = DEFAULT_MAX_BODY_BYTES)]
    pub max_body_bytes: usize,

    /// Durability of each SQLite commit: `full` survives a power cut, `normal` only a crash of the server (PostgreSQL keeps its own settings).
    #[arg(
        long,
        value_enum,
        env = "AGENT_ORCHESTRATOR_SYNCHRONOUS",
        default_value = "full"
    )]
    pub synchronous: Synchronous,

    /// A host name (as in the Host header) to serve besides loopback ones; repeatable, or comma-separated in the variable.
    #[arg(
        long = "allowed-host",
        value_name = "NAME",
        env = "AGENT_ORCHESTRATOR_ALLOWED_HOSTS",
        value_delimiter = ','
    )]
    pub allowed_hosts: Vec<String>,

    /// An origin (scheme://host[:port]) whose pages may use the API, with CORS; repeatable, or comma-separated in the variable.
    #[arg(
        long = "allowed-origin",
        value_name = "URL",
        env = "AGENT_ORCHESTRATOR_ALLOWED_ORIGINS",
        value_delimiter = ','
    )]
    pub allowed_origins: Vec<String>,

    /// File whose first line is the token every route but /health needs [default: AGENT_ORCHESTRATOR_TOKEN, else none]
    #[arg(long, value_name = "PATH")]
    pub token_file: Option<PathBuf>,

    /// Listen on a non-loopback address without a token (anyone who can reach it can read and delete every session).
    #[arg(long)]
    pub no_auth: bool,

    /// The local token's file, made on the first start: what makes this machine act (answering a permission request) needs it, and the same user's ao-* commands read it by themselves [default: <data dir>/agent-orchestrator/local-token]
    #[arg(long, value_name = "PATH", env = crate::token::ENV_LOCAL_TOKEN_FILE)]
    pub local_token_file: Option<PathBuf>,

    /// Run no sessions on this machine (the session manager's own host is on by default when it listens on loopback or has a token); runs then go to ao-host processes only.
    #[arg(long, env = "AGENT_ORCHESTRATOR_NO_LOCAL_RUNS")]
    pub no_local_runs: bool,

    /// The name of the session manager's own host (in ao-hosts, POST /runs "host", ao-new --on). Replicas of one PostgreSQL database that each run sessions need names of their own.
    #[arg(long, value_name = "NAME", env = "AGENT_ORCHESTRATOR_LOCAL_HOST_NAME", default_value = crate::server::EMBEDDED_HOST, value_parser = parse_host_name)]
    pub local_host_name: String,

    /// Runs the session manager's own host takes at once; more wait in the queue.
    #[arg(long, value_name = "RUNS", env = "AGENT_ORCHESTRATOR_LOCAL_CAPACITY", default_value_t = 4, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub local_capacity: u32,

    /// A host without heartbeat for this long is offline: its runs are interrupted, its queued ones wait for another.
    #[arg(long, value_name = "SECONDS", env = "AGENT_ORCHESTRATOR_HOST_TIMEOUT", default_value_t = 30.0, value_parser = parse_seconds)]
    pub host_timeout: f64,

    /// A run no host has taken after this long fails with the reason (0: it waits for ever).
    #[arg(long, value_name = "SECONDS", env = "AGENT_ORCHESTRATOR_QUEUE_TIMEOUT", default_value_t = 1800.0, value_parser = parse_seconds)]
    pub queue_timeout: f64,

    /// Dollars a project may spend per UTC day: past it, new runs in it are refused (409, with what was spent today). Each project on its own, unless --daily-budget-project names one
    #[arg(long, value_name = "USD", env = ENV_DAILY_BUDGET, allow_hyphen_values = true, value_parser = crate::agents::settings::parse_budget)]
    pub daily_budget_usd: Option<f64>,

    /// With --daily-budget-usd: the one project (its folder) the daily budget is for
    #[arg(long, value_name = "DIR", env = ENV_DAILY_BUDGET_PROJECT, requires = "daily_budget_usd")]
    pub daily_budget_project: Option<PathBuf>,

    /// Messages kept for live clients that fall behind (one backlog shared by all); a client that falls further behind is sent `resync`.
    #[arg(long, value_name = "MESSAGES", env = "AGENT_ORCHESTRATOR_LIVE_BUFFER", default_value_t = DEFAULT_LIVE_BUFFER)]
    pub live_buffer: usize,

    /// Bytes of messages kept for live clients that fall behind, at most (the same backlog, bounded in size too).
    #[arg(long, value_name = "BYTES", env = "AGENT_ORCHESTRATOR_LIVE_BUFFER_BYTES", default_value_t = DEFAULT_LIVE_BUFFER_BYTES)]
    pub live_buffer_bytes: usize,

    /// A command run by `sh -c` for each notification (a run waits for someone: needs_input; a run ended: run_completed), with the notification's JSON on its stdin; killed after 10 s.
    #[arg(long, value_name = "CMD", env = ENV_NOTIFY_COMMAND, hide_env_values = true)]
    pub notify_command: Option<String>,

    /// A URL POSTed each notification's JSON, whose `text` (Slack) and `content` (Discord) are one readable line; for ntfy add ?tpl=1&m={{.text}}.
    #[arg(long, value_name = "URL", env = ENV_NOTIFY_URL, hide_env_values = true)]
    pub notify_url: Option<String>,
}

/// The variable of `--notify-command`.
pub const ENV_NOTIFY_COMMAND: &str = "AGENT_ORCHESTRATOR_NOTIFY_COMMAND";
/// The variable of `--notify-url`.
pub const ENV_NOTIFY_URL: &str = "AGENT_ORCHESTRATOR_NOTIFY_URL";

/// Arguments the server cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum ArgsError {
    #[error(transparent)]
    NoDataDir(#[from] paths::NoDataDir),
    #[error(transparent)]
    Token(#[from] TokenError),
    #[error(transparent)]
    Database(#[from] DatabaseError),
    #[error("--import {0}: write sqlite:PATH, the SQLite file to copy")]
    ImportSource(String),
    #[error(
        "--import copies into a PostgreSQL database: pass --db postgres://USER@HOST:PORT/DB too"
    )]
    ImportTarget,
    #[error(
        "--allowed-origin '{0}' is not an origin: write scheme://host[:port], as in http://localhost:3000"
    )]
    Origin(String),
    #[error("--allowed-host '{0}' is not a host name")]
    Host(String),
    #[error("--notify-url (or {ENV_NOTIFY_URL}) is not an http:// or https:// URL with a host")]
    NotifyUrl,
    #[error(
        "refusing to listen on {0} without a token: anyone who reaches it could read and delete every session. \
Set one (export {ENV_TOKEN}=$(openssl rand -hex 32), or --token-file PATH), or pass --no-auth to accept the risk"
    )]
    PublicWithoutToken(SocketAddr),
}

impl ServerArgs {
    /// The server settings these arguments ask for.
    pub fn config(&self) -> Result<ServerConfig, ArgsError> {
        let db = match &self.db {
            Some(text) => Database::parse(text, self.synchronous)?,
            None => Database::Sqlite {
                path: paths::default_db_path()?,
                synchronous: self.synchronous,
            },
        };
        let token = match &self.token_file {
            Some(path) => Some(Token::read_file(path)?),
            None => Token::from_env().transpose()?,
        };
        Ok(ServerConfig {
            db,
            max_body_bytes: self.max_body_bytes,
            live_budget: Budget {
                messages: self.live_buffer.max(1),
                bytes: self.live_buffer_bytes.max(1),
            },
            local_token_file: self
                .local_token_file
                .clone()
                .or_else(crate::token::local_token_path),
            guard: Guard {
                allowed_hosts: self
                    .allowed_hosts
                    .iter()
                    .map(|h| host(h))
                    .collect::<Result<_, _>>()?,
                allowed_origins: self
                    .allowed_origins
                    .iter()
                    .map(|o| origin(o))
                    .collect::<Result<_, _>>()?,
                token,
                local_token: None,
            },
            notify: NotifySettings {
                command: self.notify_command.clone().filter(|c| !c.trim().is_empty()),
                url: self
                    .notify_url
                    .as_deref()
                    .filter(|u| !u.trim().is_empty())
                    .map(notify_url)
                    .transpose()?,
            },
            daily_budget: self
                .daily_budget_usd
                .map(|usd| crate::server::store::DailyBudget {
                    usd,
                    project: self
                        .daily_budget_project
                        .as_ref()
                        .map(|p| p.to_string_lossy().trim_end_matches('/').to_owned()),
                }),
            local_runs: !self.no_local_runs,
            local_capacity: self.local_capacity,
            local_host_name: self.local_host_name.clone(),
            host_timeout: Duration::from_secs_f64(self.host_timeout.max(0.1)),
            queue_timeout: (self.queue_timeout > 0.0)
                .then(|| Duration::from_secs_f64(self.queue_timeout)),
        })
    }

    /// With `--import`: the PostgreSQL database to copy into and the SQLite
    /// file to copy.
    pub fn import(&self, config: &ServerConfig) -> Result<Option<(Target, PathBuf)>, ArgsError> {
        let Some(source) = &self.import else {
            return Ok(None);
        };
        let path = source
            .strip_prefix("sqlite:")
            .filter(|p| !p.is_empty())
            .ok_or_else(|| ArgsError::ImportSource(source.clone()))?;
        match &config.db {
            Database::Postgres(target) => Ok(Some(((**target).clone(), PathBuf::from(path)))),
            Database::Sqlite { .. } => Err(ArgsError::ImportTarget),
        }
    }

    /// Refuses a non-loopback address without a token; answers a warning
    /// when `--no-auth` lets one through.
    pub fn check_exposure(
        &self,
        config: &ServerConfig,
        addr: SocketAddr,
    ) -> Result<Option<String>, ArgsError> {
        if addr.ip().is_loopback() || config.guard.token.is_some() {
            return Ok(None);
        }
        if !self.no_auth {
            return Err(ArgsError::PublicWithoutToken(addr));
        }
        Ok(Some(format!(
            "listening on {addr} without a token (--no-auth): anyone who reaches it can read and delete every session"
        )))
    }
}

/// The environment variables of the daily budget's flags.
pub const ENV_DAILY_BUDGET: &str = "AGENT_ORCHESTRATOR_DAILY_BUDGET_USD";
pub const ENV_DAILY_BUDGET_PROJECT: &str = "AGENT_ORCHESTRATOR_DAILY_BUDGET_PROJECT";

fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.trim().parse::<f64>() {
        Ok(s) if (0.0..1e7).contains(&s) => Ok(s),
        _ => Err(format!("'{text}' is not a number of seconds (0 or more)")),
    }
}

fn parse_host_name(text: &str) -> Result<String, String> {
    crate::wire::check_host_name("the host name", text)?;
    Ok(text.to_owned())
}

fn host(text: &str) -> Result<String, ArgsError> {
    let name = text.trim();
    if name.is_empty() || name.contains(['/', ' ', '@']) {
        return Err(ArgsError::Host(text.to_owned()));
    }
    Ok(name.to_owned())
}

/// The webhook URL, checked; the error does not repeat it (it may hold a
/// secret).
fn notify_url(text: &str) -> Result<reqwest::Url, ArgsError> {
    match reqwest::Url::parse(text.trim()) {
        Ok(url) if matches!(url.scheme(), "http" | "https") && url.host_str().is_some() => Ok(url),
        _ => Err(ArgsError::NotifyUrl),
    }
}

/// `http://localhost:3000` of `http://localhost:3000/`.
fn origin(text: &str) -> Result<String, ArgsError> {
    let trimmed = text.trim().trim_end_matches('/');
    let bad = || ArgsError::Origin(text.to_owned());
    let url = reqwest::Url::parse(trimmed).map_err(|_| bad())?;
    if !matches!(url.scheme(), "http" | "https")
        || url.host_str().is_none()
        || url.path() != "/"
        || url.query().is_some()
        || !url.username().is_empty()
    {
        return Err(bad());
    }
    Ok(trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn origins_are_scheme_host_and_port_only() {
        assert_eq!(
            origin("http://localhost:3000/").unwrap(),
            "http://localhost:3000"
        );
        assert!(origin("https://ao.team.example").is_ok());
        for bad in ["localhost:3000", "ftp://x", "http://x/path", "*", ""] {
            assert!(origin(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_notify_url_is_checked_and_not_repeated() {
        let parse = |url: &str| {
            ServerArgs::parse_from(["ao-session-manager", "--db", "/x", "--notify-url", url])
                .config()
                .map(|c| c.notify.url.map(|u| u.to_string()))
        };
        assert_eq!(
            parse("https://hooks.slack.com/services/T/B/k").unwrap(),
            Some("https://hooks.slack.com/services/T/B/k".to_owned())
        );
        assert_eq!(parse(" ").unwrap(), None, "empty is unset");
        for bad in [
            "hooks.slack.com/s3cret",
            "ftp://x/s3cret",
            "mailto:s3cret@x",
        ] {
            let err = parse(bad).unwrap_err().to_string();
            assert!(
                err.contains("--notify-url") && !err.contains("s3cret"),
                "{err}"
            );
        }
    }

    #[test]
    fn a_public_address_needs_a_token_or_no_auth() {
        let args = ServerArgs::parse_from(["ao-session-manager", "--db", "/tmp/x.db"]);
        let mut config = args.config().unwrap();
        config.guard.token = None;
        let public: SocketAddr = "0.0.0.0:8765".parse().unwrap();
        let local: SocketAddr = "127.0.0.1:8765".parse().unwrap();
        assert!(args.check_exposure(&config, local).unwrap().is_none());
        let err = args
            .check_exposure(&config, public)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("AGENT_ORCHESTRATOR_TOKEN") && err.contains("--no-auth"),
            "{err}"
        );
        let no_auth = ServerArgs::parse_from(["ao-session-manager", "--db", "/x", "--no-auth"]);
        assert!(no_auth.check_exposure(&config, public).unwrap().is_some());
        config.guard.token = Token::new("t", "test").ok();
        assert!(args.check_exposure(&config, public).unwrap().is_none());
    }
}
