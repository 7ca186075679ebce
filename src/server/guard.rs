//! Who may use the session manager. It holds prompts, tool outputs and
//! answers, and can delete them, so it refuses what a web page or another
//! machine could send it uninvited (the defences of Jupyter and the Docker
//! engine):
//!
//! - a `Host` that is not a loopback name or address, unless allowed
//!   (DNS rebinding): 403;
//! - a POST or PATCH whose body is not JSON (a "simple" cross-site
//!   request needs no preflight): 415;
//! - an `Origin` other than the server's own, unless allowed (a page's
//!   fetch, WebSocket or EventSource): 403; allowed origins get CORS
//!   headers, preflights included;
//! - with a token, any request but `GET /health` without it
//!   (`Authorization: Bearer`, or the dashboard's cookie): 401.
//!
//! Every answer says `X-Content-Type-Options: nosniff`.

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;
use crate::token::Token;

/// The dashboard's cookie, set from `/?token=...`.
pub const TOKEN_COOKIE: &str = "ao_token";

/// What the guard lets in.
#[derive(Debug, Clone, Default)]
pub struct Guard {
    /// Host names allowed besides loopback ones (`--allowed-host`).
    pub allowed_hosts: Vec<String>,
    /// Origins allowed besides the server's own (`--allowed-origin`),
    /// without a trailing slash.
    pub allowed_origins: Vec<String>,
    /// Needed on every route but `/health`, when set.
    pub token: Option<Token>,
    /// This machine's local token: what makes the machine act needs it,
    /// when no token is configured.
    pub local_token: Option<Token>,
}

impl Guard {
    /// True for a `Host` value (`name[:port]`) that is a loopback name or
    /// address, or an allowed name.
    fn host_allowed(&self, host: &str) -> bool {
        let name = host_name(host);
        if crate::client::is_loopback_name(name) {
            return true;
        }
        self.allowed_hosts
            .iter()
            .any(|allowed| host_name(allowed).eq_ignore_ascii_case(name))
    }

    fn origin_allowed(&self, origin: &str) -> bool {
        self.allowed_origins
            .iter()
            .any(|allowed| allowed.eq_ignore_ascii_case(origin))
    }

    fn token_given(&self, headers: &HeaderMap) -> bool {
        match &self.token {
            Some(token) => given_tokens(headers).any(|given| token.matches(given)),
            None => true,
        }
    }

    /// Whether the request may make this machine act (answer a permission
    /// request, launch a run): it carries the configured token, or, when
    /// none is configured, the local token.
    pub fn may_act(&self, headers: &HeaderMap) -> bool {
        match (&self.token, &self.local_token) {
            (Some(_), _) => self.token_given(headers),
            (None, Some(local)) => given_tokens(headers).any(|given| local.matches(given)),
            (None, None) => false,
        }
    }

    /// What a client that may not act must send to be allowed.
    pub fn how_to_act(&self) -> &'static str {
        if self.token.is_some() {
            "send the session manager's token (Authorization: Bearer; the ao-* commands send AGENT_ORCHESTRATOR_TOKEN)"
        } else {
            "send this machine's local token (Authorization: Bearer): the ao-* commands of the user who runs the session manager send it by themselves; a browser gets it once through the link `ao-dashboard` prints"
        }
    }

    /// The token a browser may log in with (`/?token=`).
    fn login_token(&self) -> Option<&Token> {
        self.token.as_ref().or(self.local_token.as_ref())
    }
}

/// The tokens a request carries: `Authorization: Bearer`, and the
/// dashboard's cookie.
fn given_tokens(headers: &HeaderMap) -> impl Iterator<Item = &str> {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let cookie = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().strip_prefix(TOKEN_COOKIE)?.strip_prefix('='));
    bearer.into_iter().chain(cookie)
}

/// A handler's proof that its request may make this machine act; refused
/// with 401 and how to get the token otherwise.
pub struct Actor;

impl axum::extract::FromRequestParts<AppState> for Actor {
    type Rejection = ApiError;

    async fn from_request_parts(
        parts: &mut axum::http::request::Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        if state.guard.may_act(&parts.headers) {
            return Ok(Actor);
        }
        let how = state.guard.how_to_act();
        Err(ApiError::new(
            StatusCode::UNAUTHORIZED,
            format!(
                "this makes the machine act, so it needs proof that it comes from its user: {how}"
            ),
        ))
    }
}

/// `example.org` of `example.org:8765`, `::1` of `[::1]:8765`.
fn host_name(host: &str) -> &str {
    let host = host.trim();
    if let Some(rest) = host.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest);
    }
    match host.rsplit_once(':') {
        Some((name, port)) if port.bytes().all(|b| b.is_ascii_digit()) => name,
        _ => host,
    }
}

fn refuse(status: StatusCode, detail: String) -> Response {
    ApiError::new(status, detail).into_response()
}

/// The middleware: the checks in the order above (the body's type before
/// the origin, so that each check is seen at work on its own), then the
/// route, then the headers.
pub async fn guard(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let guard = &state.guard;
    let host = header_text(request.headers(), header::HOST);
    let origin =
        header_text(request.headers(), header::ORIGIN).map(|o| o.trim_end_matches('/').to_owned());
    let cors = origin.clone().filter(|o| guard.origin_allowed(o));
    let answer = |response: Response| {
        finish(match &cors {
            Some(origin) => with_cors(response, origin, false),
            None => response,
        })
    };
    if let Some(host) = &host
        && !guard.host_allowed(host)
    {
        return answer(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "host '{host}' is not allowed: the session manager answers loopback names only (start it with --allowed-host NAME to add one)"
            ),
        ));
    }
    if let Some(refusal) = not_json(&request) {
        return answer(refusal);
    }
    if let Some(origin) = &origin
        && cors.is_none()
        && !is_own(origin, host.as_deref())
    {
        return answer(refuse(
            StatusCode::FORBIDDEN,
            format!(
                "origin '{origin}' is not allowed (start the session manager with --allowed-origin {origin} to let its pages in)"
            ),
        ));
    }
    if request.method() == Method::OPTIONS
        && let Some(origin) = &cors
    {
        return finish(with_cors(
            StatusCode::NO_CONTENT.into_response(),
            origin,
            true,
        ));
    }
    let get = request.method() == Method::GET;
    if get
        && request.uri().path() == "/"
        && let Some(response) = dashboard_login(guard, request.uri().query())
    {
        return answer(response);
    }
    let public = get && request.uri().path() == "/health";
    if !public && !guard.token_given(request.headers()) {
        return answer(refuse(
            StatusCode::UNAUTHORIZED,
            "this session manager needs its token: send Authorization: Bearer <token> (the ao-* commands send AGENT_ORCHESTRATOR_TOKEN), or open the dashboard once as /?token=<token>".to_owned(),
        ));
    }
    answer(next.run(request).await)
}

fn header_text(headers: &HeaderMap, name: header::HeaderName) -> Option<String> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

/// True when `origin` is the server's own, as the browser names it.
fn is_own(origin: &str, host: Option<&str>) -> bool {
    host.is_some_and(|h| {
        ["http", "https"]
            .iter()
            .any(|scheme| origin.eq_ignore_ascii_case(&format!("{scheme}://{h}")))
    })
}

/// The 415 for a POST or PATCH whose body is not JSON.
fn not_json(request: &Request) -> Option<Response> {
    if !matches!(*request.method(), Method::POST | Method::PATCH) || !has_body(request.headers()) {
        return None;
    }
    let json = request
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|c| c.to_str().ok())
        .map(|c| {
            c.split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase()
        })
        .is_some_and(|c| c == "application/json" || c.ends_with("+json"));
    (!json).then(|| {
        refuse(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "a request body must be JSON: send Content-Type: application/json".to_owned(),
        )
    })
}

/// True when the request carries a body.
fn has_body(headers: &HeaderMap) -> bool {
    let length = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|l| l.to_str().ok())
        .and_then(|l| l.trim().parse::<u64>().ok());
    length.is_some_and(|l| l > 0) || headers.contains_key(header::TRANSFER_ENCODING)
}

fn finish(mut response: Response) -> Response {
    response.headers_mut().insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    response
}

fn with_cors(mut response: Response, origin: &str, preflight: bool) -> Response {
    let headers = response.headers_mut();
    if let Ok(origin) = HeaderValue::from_str(origin) {
        headers.insert(header::ACCESS_CONTROL_ALLOW_ORIGIN, origin);
    }
    headers.insert(header::VARY, HeaderValue::from_static("Origin"));
    headers.insert(
        header::ACCESS_CONTROL_ALLOW_CREDENTIALS,
        HeaderValue::from_static("true"),
    );
    if preflight {
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_METHODS,
            HeaderValue::from_static("GET, POST, PATCH, DELETE, OPTIONS"),
        );
        headers.insert(
            header::ACCESS_CONTROL_ALLOW_HEADERS,
            HeaderValue::from_static("content-type, authorization"),
        );
        headers.insert(
            header::ACCESS_CONTROL_MAX_AGE,
            HeaderValue::from_static("600"),
        );
    }
    response
}

/// `GET /?token=...`: checks the token, sets it as an HttpOnly,
/// SameSite=Strict cookie, and sends the browser to `/` without it in the
/// address bar (as Jupyter does).
fn dashboard_login(guard: &Guard, query: Option<&str>) -> Option<Response> {
    let token = guard.login_token()?;
    let given = form_urlencoded::parse(query.unwrap_or("").as_bytes())
        .find(|(k, _)| k == "token")
        .map(|(_, v)| v.into_owned())?;
    if !token.matches(&given) {
        return Some(refuse(StatusCode::UNAUTHORIZED, "wrong token".to_owned()));
    }
    let cookie = format!("{TOKEN_COOKIE}={given}; HttpOnly; SameSite=Strict; Path=/");
    let mut response = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, "/")
        .body(Body::empty())
        .unwrap_or_default();
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    Some(response)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_pass_and_others_need_allowing() {
        let guard = Guard {
            allowed_hosts: vec!["team.example".into()],
            ..Guard::default()
        };
        for ok in [
            "localhost",
            "localhost:8765",
            "127.0.0.1:1",
            "[::1]:8765",
            "127.0.0.2",
            "TEAM.example:80",
        ] {
            assert!(guard.host_allowed(ok), "{ok}");
        }
        for bad in [
            "attacker.example:8765",
            "localhost.attacker.example",
            "10.0.0.1",
            "[::2]:1",
            "",
        ] {
            assert!(!guard.host_allowed(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_come_as_bearer_or_cookie() {
        let guard = Guard {
            token: Token::new("s3cret", "test").ok(),
            ..Guard::default()
        };
        let mut headers = HeaderMap::new();
        assert!(!guard.token_given(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(guard.token_given(&headers));
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(!guard.token_given(&headers));
        headers.insert(
            header::COOKIE,
            HeaderValue::from_static("a=b; ao_token=s3cret"),
        );
        assert!(guard.token_given(&headers));
    }
}
