//! The one typed HTTP client for the session manager (the seeds'
//! `SessionClient`). Every command talks to the API through it.

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::token::Token;
use crate::wire::{
    AddEventAnswer, DecisionAnswer, DecisionBody, DeleteAnswer, DeletedCounts, Event, EventsAnswer,
    Host, HostAnswer, HostBeat, HostRegister, HostsAnswer, LiveAnswer, LiveInput, PendingRequest,
    RequestAnswer, RequestRecord, RequestsAnswer, ResultAnswer, Run, RunAnswer, RunClaim,
    RunCreate, RunExited, RunsAnswer, Session, SessionAnswer, SessionCreate, SessionPatch,
    SessionsAnswer, StatusAnswer, StatusValue, StopAnswer, StoredEvent,
};

/// How long one request may take, unless the caller chooses otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a request failed. Callers branch on `NotFound` (the API has no such
/// thing) versus `Unreachable` (no API to ask: fall back to the backups)
/// versus the rest.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error("{0}")]
    NotFound(String),
    #[error("cannot reach the session manager at {url}: {reason}")]
    Unreachable { url: String, reason: String },
    #[error("the session manager answered {status}: {detail}")]
    Api { status: u16, detail: String },
    #[error("unexpected answer from the session manager: {0}")]
    Decode(String),
    #[error("invalid session manager URL '{0}'")]
    BadUrl(String),
    #[error(transparent)]
    Token(#[from] crate::token::TokenError),
}

impl ClientError {
    /// True when the API could not be asked at all (connection refused, timeout).
    pub fn is_unreachable(&self) -> bool {
        matches!(self, ClientError::Unreachable { .. })
    }

    /// The HTTP status, when the API answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            ClientError::NotFound(_) => Some(404),
            ClientError::Api { status, .. } => Some(*status),
            _ => None,
        }
    }
}

#[derive(serde::Deserialize)]
struct Detail {
    detail: String,
}

/// A client for one session manager.
#[derive(Debug, Clone)]
pub struct SessionClient {
    base: String,
    http: reqwest::Client,
    token: Option<Token>,
    /// For a session manager on this machine without a configured token:
    /// the user's local token, read once it exists (a session manager
    /// started after this client makes it).
    local: Option<std::sync::Arc<std::sync::OnceLock<Token>>>,
}

impl SessionClient {
    /// A client for `base_url` with the default 5 s timeout.
    pub fn new(base_url: &str) -> Result<Self, ClientError> {
        Self::with_timeout(base_url, DEFAULT_TIMEOUT)
    }

    /// A client whose every request gives up after `timeout`. It sends the
    /// token of `AGENT_ORCHESTRATOR_TOKEN`, when set.
    pub fn with_timeout(base_url: &str, timeout: Duration) -> Result<Self, ClientError> {
        let base = base_url.trim_end_matches('/').to_owned();
        let parsed =
            reqwest::Url::parse(&base).map_err(|_| ClientError::BadUrl(base_url.to_owned()))?;
        if !matches!(parsed.scheme(), "http" | "https") || parsed.host().is_none() {
            return Err(ClientError::BadUrl(base_url.to_owned()));
        }
        let http = http_client(&parsed, Some(timeout))
            .map_err(|e| ClientError::BadUrl(format!("{base_url} ({e})")))?;
        let token = Token::from_env().transpose()?;
        let loopback = parsed.host_str().is_some_and(is_loopback_name);
        let local = (token.is_none() && loopback).then(Default::default);
        Ok(SessionClient {
            base,
            http,
            token,
            local,
        })
    }

    /// The same client with another token (or none, and no local token).
    pub fn with_token(mut self, token: Option<Token>) -> Self {
        self.token = token;
        self.local = None;
        self
    }

    /// `request` with the token, when there is one: the configured one,
    /// else, to a session manager on this machine, the local one.
    pub(crate) fn authorize(&self, request: reqwest::RequestBuilder) -> reqwest::RequestBuilder {
        if let Some(token) = &self.token {
            return request.bearer_auth(token.expose());
        }
        let Some(local) = &self.local else {
            return request;
        };
        if local.get().is_none()
            && let Some(token) = Token::local()
        {
            let _ = local.set(token);
        }
        match local.get() {
            Some(token) => request.bearer_auth(token.expose()),
            None => request,
        }
    }

    /// The base URL this client talks to.
    pub fn base_url(&self) -> &str {
        &self.base
    }

    async fn call<T: DeserializeOwned>(
        &self,
        method: Method,
        path: &str,
        body: Option<&(impl Serialize + ?Sized)>,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let mut request = self.authorize(self.http.request(method, &url));
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| self.transport(e))?;
        let status = response.status();
        let bytes = response.bytes().await.map_err(|e| self.transport(e))?;
        if status.is_success() {
            return serde_json::from_slice(&bytes).map_err(|e| ClientError::Decode(e.to_string()));
        }
        let detail = serde_json::from_slice::<Detail>(&bytes)
            .map(|d| d.detail)
            .unwrap_or_else(|_| String::from_utf8_lossy(&bytes).trim().to_owned());
        if status == StatusCode::NOT_FOUND {
            Err(ClientError::NotFound(detail))
        } else {
            Err(ClientError::Api {
                status: status.as_u16(),
                detail,
            })
        }
    }

    fn transport(&self, err: reqwest::Error) -> ClientError {
        let reason = if err.is_timeout() {
            "timed out".to_owned()
        } else if err.is_connect() {
            "connection refused or failed".to_owned()
        } else {
            // The innermost cause is the readable one.
            let mut source: &dyn std::error::Error = &err;
            while let Some(next) = source.source() {
                source = next;
            }
            source.to_string()
        };
        ClientError::Unreachable {
            url: self.base.clone(),
            reason,
        }
    }

    /// `GET /health`: Ok when a session manager answers at all. Any HTTP
    /// answer counts (the original system's server has no `/health`).
    pub async fn health(&self) -> Result<(), ClientError> {
        match self
            .call::<serde_json::Value>(Method::GET, "/health", None::<&()>)
            .await
        {
            Ok(_) | Err(ClientError::NotFound(_) | ClientError::Api { .. }) => Ok(()),
            Err(ClientError::Decode(_)) => Ok(()),
            Err(e) => Err(e),
        }
    }

    /// `POST /sessions`.
    pub async fn create_session(&self, create: &SessionCreate) -> Result<Session, ClientError> {
        let answer: SessionAnswer = self.call(Method::POST, "/sessions", Some(create)).await?;
        Ok(answer.session)
    }

    /// `GET /sessions/{id}`.
    pub async fn get_session(&self, session_id: &str) -> Result<Session, ClientError> {
        let answer: SessionAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.session)
    }

    /// `GET /sessions/{id}`, or `None` when no session has that id.
    pub async fn session_if_any(&self, session_id: &str) -> Result<Option<Session>, ClientError> {
        match self.get_session(session_id).await {
            Ok(session) => Ok(Some(session)),
            Err(ClientError::NotFound(_)) => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// `GET /sessions/{id}/status`: `running`, `finished` or `not_existent`.
    pub async fn get_status(&self, session_id: &str) -> Result<StatusValue, ClientError> {
        let answer: StatusAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/status", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.status)
    }

    /// `GET /sessions/{id}/result`: the text of the last assistant message.
    /// `NotFound` for an unknown session or no result yet, `Api` (400) while running.
    pub async fn get_result(&self, session_id: &str) -> Result<String, ClientError> {
        let answer: ResultAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/result", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.result)
    }

    /// `GET /sessions`: every session, newest first.
    pub async fn list_sessions(&self) -> Result<Vec<Session>, ClientError> {
        let answer: SessionsAnswer = self.call(Method::GET, "/sessions", None::<&()>).await?;
        Ok(answer.sessions)
    }

    /// `GET /sessions?project_dir=P`: the sessions of one project directory,
    /// newest first, so a command scoped to a project never sees the others.
    pub async fn list_project_sessions(
        &self,
        project_dir: &str,
    ) -> Result<Vec<Session>, ClientError> {
        let path = format!("/sessions?project_dir={}", seg(project_dir));
        let answer: SessionsAnswer = self.call(Method::GET, &path, None::<&()>).await?;
        // Checked here too: an older server ignores the filter.
        Ok(answer
            .sessions
            .into_iter()
            .filter(|s| s.project_dir.as_deref().unwrap_or("") == project_dir)
            .collect())
    }

    /// `GET /sessions?name=N[&project_dir=P]`: sessions with this name,
    /// newest first (at most one when a project directory is given).
    pub async fn find_sessions(
        &self,
        name: &str,
        project_dir: Option<&str>,
    ) -> Result<Vec<Session>, ClientError> {
        let mut path = format!("/sessions?name={}", seg(name));
        if let Some(dir) = project_dir {
            path.push_str(&format!("&project_dir={}", seg(dir)));
        }
        let answer: SessionsAnswer = self.call(Method::GET, &path, None::<&()>).await?;
        // Checked here too: an older server ignores the filters.
        Ok(answer
            .sessions
            .into_iter()
            .filter(|s| {
                s.session_name == name
                    && project_dir.is_none_or(|dir| s.project_dir.as_deref().unwrap_or("") == dir)
            })
            .collect())
    }

    /// The session with this name in this project directory, if any.
    pub async fn get_session_by_name(
        &self,
        name: &str,
        project_dir: Option<&str>,
    ) -> Result<Option<Session>, ClientError> {
        Ok(self
            .find_sessions(name, project_dir)
            .await?
            .into_iter()
            .next())
    }

    /// `POST /sessions/{id}/events`; `Ok(true)` when the event's `event_id`
    /// had already been stored.
    pub async fn add_event(&self, session_id: &str, event: &Event) -> Result<bool, ClientError> {
        Ok(self.post_event(session_id, event).await?.duplicate)
    }

    /// `POST /sessions/{id}/events`, with the whole answer (`duplicate`, `filled`).
    pub async fn post_event(
        &self,
        session_id: &str,
        event: &Event,
    ) -> Result<AddEventAnswer, ClientError> {
        self.call(
            Method::POST,
            &format!("/sessions/{}/events", seg(session_id)),
            Some(event),
        )
        .await
    }

    /// `POST /sessions/{id}/live`: a live-only message (text as the model
    /// writes it), passed on to live clients and never stored.
    pub async fn post_live(
        &self,
        session_id: &str,
        message: &LiveInput,
    ) -> Result<(), ClientError> {
        let _: LiveAnswer = self
            .call(
                Method::POST,
                &format!("/sessions/{}/live", seg(session_id)),
                Some(message),
            )
            .await?;
        Ok(())
    }

    /// `GET /sessions/{id}/events`: every event, in the order stored.
    pub async fn list_events(&self, session_id: &str) -> Result<Vec<StoredEvent>, ClientError> {
        let answer: EventsAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/events", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.events)
    }

    /// `PATCH /sessions/{id}`, or `PATCH /sessions/{id}/metadata` where
    /// the first is not served (the original system's server).
    pub async fn update_session(
        &self,
        session_id: &str,
        patch: &SessionPatch,
    ) -> Result<Session, ClientError> {
        let path = format!("/sessions/{}", seg(session_id));
        let answer: SessionAnswer = match self.call(Method::PATCH, &path, Some(patch)).await {
            Err(ClientError::NotFound(_) | ClientError::Api { status: 405, .. }) => {
                self.call(Method::PATCH, &format!("{path}/metadata"), Some(patch))
                    .await?
            }
            other => other?,
        };
        Ok(answer.session)
    }

    /// `POST /sessions/{id}/stop`: asks the session's runner to stop (or,
    /// with no runner following it, closes its run as interrupted). `Api`
    /// 409 when it is not running.
    pub async fn stop_session(&self, session_id: &str) -> Result<StopAnswer, ClientError> {
        self.call(
            Method::POST,
            &format!("/sessions/{}/stop", seg(session_id)),
            None::<&()>,
        )
        .await
    }

    /// `GET /sessions/{id}/requests`: the pending requests, oldest first.
    pub async fn pending_requests(
        &self,
        session_id: &str,
    ) -> Result<Vec<PendingRequest>, ClientError> {
        let answer: RequestsAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/requests", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.requests)
    }

    /// `GET /sessions/{id}/requests/{request_id}`: one request, whatever its status.
    pub async fn get_request(
        &self,
        session_id: &str,
        request_id: &str,
    ) -> Result<RequestRecord, ClientError> {
        let answer: RequestAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/requests/{}", seg(session_id), seg(request_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.request)
    }

    /// `POST /sessions/{id}/requests/{request_id}`: decides a pending
    /// request (`Api` 409 when it was decided already or its run ended,
    /// 401 without the token, 422 for a decision that does not fit).
    pub async fn decide(
        &self,
        session_id: &str,
        request_id: &str,
        decision: &DecisionBody,
    ) -> Result<(), ClientError> {
        let _: DecisionAnswer = self
            .call(
                Method::POST,
                &format!("/sessions/{}/requests/{}", seg(session_id), seg(request_id)),
                Some(decision),
            )
            .await?;
        Ok(())
    }

    /// `GET /usage?group_by=G[&since=T][&project_dir=P]`.
    pub async fn usage(
        &self,
        group_by: &str,
        since: Option<&str>,
        project_dir: Option<&str>,
    ) -> Result<crate::wire::UsageAnswer, ClientError> {
        let mut path = format!("/usage?group_by={}", seg(group_by));
        if let Some(since) = since {
            path.push_str(&format!("&since={}", seg(since)));
        }
        if let Some(dir) = project_dir {
            path.push_str(&format!("&project_dir={}", seg(dir)));
        }
        self.call(Method::GET, &path, None::<&()>).await
    }

    /// `GET /sessions/{id}/result` with the document of an output schema.
    pub async fn get_result_answer(&self, session_id: &str) -> Result<ResultAnswer, ClientError> {
        self.call(
            Method::GET,
            &format!("/sessions/{}/result", seg(session_id)),
            None::<&()>,
        )
        .await
    }

    /// `POST /runs`: queues a run on a host (needs the local or the
    /// configured token).
    pub async fn create_run(&self, create: &RunCreate) -> Result<Run, ClientError> {
        let answer: RunAnswer = self.call(Method::POST, "/runs", Some(create)).await?;
        Ok(answer.run)
    }

    /// `POST /callbacks`: the parent is resumed with the child run's result
    /// when it ends.
    pub async fn register_callback(
        &self,
        create: &crate::wire::CallbackCreate,
    ) -> Result<crate::wire::Callback, ClientError> {
        let answer: crate::wire::CallbackAnswer =
            self.call(Method::POST, "/callbacks", Some(create)).await?;
        Ok(answer.callback)
    }

    /// `POST /callbacks/{child_run_id}/end`: the child's run ended before
    /// its session began; the parent hears of it with `error`.
    pub async fn end_callback(
        &self,
        child_run_id: &str,
        error: &str,
    ) -> Result<crate::wire::Callback, ClientError> {
        let answer: crate::wire::CallbackAnswer = self
            .call(
                Method::POST,
                &format!("/callbacks/{}/end", seg(child_run_id)),
                Some(&serde_json::json!({ "error": error })),
            )
            .await?;
        Ok(answer.callback)
    }

    /// `GET /sessions/{id}/callbacks`: what the session is still owed.
    pub async fn callbacks(
        &self,
        session_id: &str,
    ) -> Result<Vec<crate::wire::Callback>, ClientError> {
        let answer: crate::wire::CallbacksAnswer = self
            .call(
                Method::GET,
                &format!("/sessions/{}/callbacks", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.callbacks)
    }

    /// `GET /budget`: what a run of `session_id` (or a new child of
    /// `parent`) in `project_dir` may spend; `Api` 409 when a budget it
    /// falls under is spent.
    pub async fn budget(
        &self,
        session_id: Option<&str>,
        parent: Option<&str>,
        project_dir: Option<&str>,
    ) -> Result<crate::wire::BudgetAnswer, ClientError> {
        let query: Vec<String> = [
            ("session_id", session_id),
            ("parent_session_id", parent),
            ("project_dir", project_dir),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", seg(v?))))
        .collect();
        self.call(
            Method::GET,
            &format!("/budget?{}", query.join("&")),
            None::<&()>,
        )
        .await
    }

    /// `GET /runs/{run_id}`, with its prompt.
    pub async fn get_run(&self, run_id: &str) -> Result<Run, ClientError> {
        let answer: RunAnswer = self
            .call(Method::GET, &format!("/runs/{}", seg(run_id)), None::<&()>)
            .await?;
        Ok(answer.run)
    }

    /// `GET /runs[?status=S][&host=H][&session_name=N]`, newest first.
    pub async fn list_runs(
        &self,
        status: Option<&str>,
        host: Option<&str>,
        session_name: Option<&str>,
    ) -> Result<Vec<Run>, ClientError> {
        let query: Vec<String> = [
            ("status", status),
            ("host", host),
            ("session_name", session_name),
        ]
        .into_iter()
        .filter_map(|(k, v)| Some(format!("{k}={}", seg(v?))))
        .collect();
        let path = if query.is_empty() {
            "/runs".to_owned()
        } else {
            format!("/runs?{}", query.join("&"))
        };
        let answer: RunsAnswer = self.call(Method::GET, &path, None::<&()>).await?;
        Ok(answer.runs)
    }

    /// `POST /runs/{run_id}/stop`.
    pub async fn stop_run(&self, run_id: &str) -> Result<Run, ClientError> {
        let answer: RunAnswer = self
            .call(
                Method::POST,
                &format!("/runs/{}/stop", seg(run_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.run)
    }

    /// `GET /hosts`.
    pub async fn list_hosts(&self) -> Result<Vec<Host>, ClientError> {
        let answer: HostsAnswer = self.call(Method::GET, "/hosts", None::<&()>).await?;
        Ok(answer.hosts)
    }

    /// `POST /hosts`: registers this host.
    pub async fn register_host(&self, register: &HostRegister) -> Result<HostAnswer, ClientError> {
        self.call(Method::POST, "/hosts", Some(register)).await
    }

    /// `POST /hosts/{name}/heartbeat`.
    pub async fn heartbeat(&self, name: &str, instance: &str) -> Result<HostAnswer, ClientError> {
        let beat = HostBeat {
            instance: instance.to_owned(),
        };
        self.call(
            Method::POST,
            &format!("/hosts/{}/heartbeat", seg(name)),
            Some(&beat),
        )
        .await
    }

    /// `DELETE /hosts/{name}?instance=I`: this host stops.
    pub async fn leave_host(&self, name: &str, instance: &str) -> Result<HostAnswer, ClientError> {
        let path = format!("/hosts/{}?instance={}", seg(name), seg(instance));
        self.call(Method::DELETE, &path, None::<&()>).await
    }

    /// `POST /runs/{run_id}/claim`: the run given to this host, with its prompt.
    pub async fn claim_run(&self, run_id: &str, claim: &RunClaim) -> Result<Run, ClientError> {
        let answer: RunAnswer = self
            .call(
                Method::POST,
                &format!("/runs/{}/claim", seg(run_id)),
                Some(claim),
            )
            .await?;
        Ok(answer.run)
    }

    /// `POST /runs/{run_id}/exited`: the run's runner ended.
    pub async fn run_exited(&self, run_id: &str, exited: &RunExited) -> Result<Run, ClientError> {
        let answer: RunAnswer = self
            .call(
                Method::POST,
                &format!("/runs/{}/exited", seg(run_id)),
                Some(exited),
            )
            .await?;
        Ok(answer.run)
    }

    /// `DELETE /sessions/{id}`: the session and all its events.
    pub async fn delete_session(&self, session_id: &str) -> Result<DeletedCounts, ClientError> {
        let answer: DeleteAnswer = self
            .call(
                Method::DELETE,
                &format!("/sessions/{}", seg(session_id)),
                None::<&()>,
            )
            .await?;
        Ok(answer.deleted)
    }
}

/// An HTTP client for the session manager at `url`, whose requests give up
/// after `timeout` (`None`: a stream read for as long as it lasts).
pub(crate) fn http_client(
    url: &reqwest::Url,
    timeout: Option<Duration>,
) -> Result<reqwest::Client, reqwest::Error> {
    let connect = Duration::from_secs(2);
    let mut builder = reqwest::Client::builder();
    builder = match timeout {
        Some(timeout) => builder
            .timeout(timeout)
            .connect_timeout(timeout.min(connect)),
        None => builder.connect_timeout(connect),
    };
    if is_loopback_host(url) {
        // A proxy from the environment must not intercept a local API.
        builder = builder.no_proxy();
    }
    builder.build()
}

/// True for `localhost` and loopback addresses.
pub fn is_loopback_host(url: &reqwest::Url) -> bool {
    url.host_str().is_some_and(is_loopback_name)
}

/// True for `localhost` and a loopback address (an IPv6 one with or
/// without its brackets): the names the session manager serves by default.
pub fn is_loopback_name(name: &str) -> bool {
    name.eq_ignore_ascii_case("localhost")
        || name
            .trim_start_matches('[')
            .trim_end_matches(']')
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// Percent-encodes one path segment or query value.
fn seg(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encodes_segments() {
        assert_eq!(seg("a-b_c.d~"), "a-b_c.d~");
        assert_eq!(seg("/tmp/my dir"), "%2Ftmp%2Fmy%20dir");
        assert_eq!(seg("é"), "%C3%A9");
    }

    #[test]
    fn refuses_bad_urls() {
        assert!(matches!(
            SessionClient::new("not a url"),
            Err(ClientError::BadUrl(_))
        ));
        assert!(matches!(
            SessionClient::new("ftp://x"),
            Err(ClientError::BadUrl(_))
        ));
        assert!(SessionClient::new("http://127.0.0.1:8765/").is_ok());
    }
}
