//! Who may do what.
//!
//! - Mutating routes (trigger, cancel, checkpoint reset) need the API token, either as
//!   `Authorization: Bearer <token>` (curl, scripts) or as the session cookie that
//!   `POST /api/login` sets after checking the token (the dashboard: `EventSource` cannot send
//!   headers, and a token kept in page JavaScript could be read by any injected script).
//! - Read routes and the event stream are open when the API listens on a loopback address
//!   (only local users can reach it); on any other address they need the token too.
//! - The token is at least [`MIN_TOKEN_CHARS`] characters; wrong tokens are rate-limited per
//!   client address (`throttle.rs`).
//!
//! The cookie is `HttpOnly` (page scripts cannot read it) and `SameSite=Strict` (the browser
//! sends it only on requests from the API's own origin, so another site cannot make a logged-in
//! browser trigger runs). As a second line against cross-site requests, a cookie-authenticated
//! request whose `Origin` differs from its `Host` is refused. There is no CORS layer at all: other
//! origins get no `Access-Control-Allow-Origin`. Behind a TLS proxy (`engine.behind_tls`) the
//! cookie is also `Secure`, so the browser never sends it over plain HTTP.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;

use crate::AppState;
use crate::error::ApiError;
use crate::throttle::{Clock, LoginLimit, LoginThrottle};

/// The session cookie's name.
pub const COOKIE_NAME: &str = "weir_session";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest is dropped past it (logins cannot grow memory).
const MAX_SESSIONS: usize = 256;
/// The shortest token `weir serve` accepts. Generated tokens are 64 hex characters; 16 is a floor
/// for chosen ones, which the login rate limit alone could not make safe if they were short.
pub const MIN_TOKEN_CHARS: usize = 16;

/// The token, the sessions created from it and the count of wrong tokens.
pub struct Auth {
    token: String,
    open_reads: bool,
    sessions: Mutex<(Sessions, u64)>,
    throttle: LoginThrottle,
}

/// Session id → (created, sequence number: the oldest is evicted first); plus the next number.
type Sessions = HashMap<String, (Instant, u64)>;

/// Where the token came from, for the startup message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenSource {
    Config,
    Environment,
    Generated,
}

impl std::fmt::Display for TokenSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Self::Config => "engine.token",
            Self::Environment => "the WEIR_TOKEN environment variable",
            Self::Generated => "the generator",
        })
    }
}

/// A chosen token too short to resist guessing.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the API token from {from} is {chars} characters long; it must be at least {MIN_TOKEN_CHARS} \
     (for example the output of `openssl rand -hex 32`), or leave engine.token and WEIR_TOKEN \
     unset and weir serve generates one"
)]
pub struct TokenTooShort {
    pub from: TokenSource,
    pub chars: usize,
}

/// The token to use: `engine.token` from the config, else `WEIR_TOKEN`, else a new random one.
/// A chosen token shorter than [`MIN_TOKEN_CHARS`] is refused.
pub fn resolve_token(
    configured: Option<&str>,
    env: Option<&str>,
) -> Result<(String, TokenSource), TokenTooShort> {
    let (token, from) = match (
        configured.filter(|t| !t.is_empty()),
        env.filter(|t| !t.is_empty()),
    ) {
        (Some(t), _) => (t.to_owned(), TokenSource::Config),
        (None, Some(t)) => (t.to_owned(), TokenSource::Environment),
        (None, None) => (random_hex(32), TokenSource::Generated),
    };
    let chars = token.chars().count();
    if chars < MIN_TOKEN_CHARS {
        return Err(TokenTooShort { from, chars });
    }
    Ok((token, from))
}

/// `bytes` random bytes from the OS, as hex.
pub fn random_hex(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    getrandom::fill(&mut buf).expect("the operating system has no random number source");
    buf.iter().map(|b| format!("{b:02x}")).collect()
}

/// Compare without an early exit, so response timing does not reveal a matching prefix.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

impl Auth {
    /// `open_reads`: whether read routes need no token (the API listens on loopback). Wrong
    /// tokens are limited as [`LoginLimit::default`] says.
    pub fn new(token: String, open_reads: bool) -> Self {
        Self {
            token,
            open_reads,
            sessions: Mutex::default(),
            throttle: LoginThrottle::new(LoginLimit::default(), Arc::new(Instant::now)),
        }
    }

    /// The same with another limit on wrong tokens, and a clock tests can move.
    pub fn with_login_limit(self, limit: LoginLimit, clock: Clock) -> Self {
        Self {
            throttle: LoginThrottle::new(limit, clock),
            ..self
        }
    }

    pub fn reads_are_open(&self) -> bool {
        self.open_reads
    }

    /// Whether `token` is the API token, counting a wrong one against `client`; refused
    /// unchecked while `client` is locked out.
    fn check_token(&self, client: Option<IpAddr>, token: &str) -> Result<(), ApiError> {
        self.throttle
            .check(client)
            .map_err(|retry_after| ApiError::TooManyAttempts { retry_after })?;
        if same(token, &self.token) {
            Ok(())
        } else {
            self.throttle.failed(client);
            Err(ApiError::Unauthorized)
        }
    }

    /// Start a session for a correct token from `client`; returns the cookie value.
    pub fn login(&self, client: Option<IpAddr>, token: &str) -> Result<String, ApiError> {
        self.check_token(client, token)?;
        let id = random_hex(32);
        let mut guard = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        let (sessions, next) = &mut *guard;
        let now = Instant::now();
        sessions.retain(|_, (created, _)| now.duration_since(*created) < SESSION_LIFETIME);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions
                .iter()
                .min_by_key(|(_, (_, seq))| *seq)
                .map(|(k, _)| k.clone())
        {
            sessions.remove(&oldest);
        }
        *next += 1;
        sessions.insert(id.clone(), (now, *next));
        Ok(id)
    }

    /// End the session in the request's cookie, if any.
    pub fn logout(&self, headers: &HeaderMap) {
        if let Some(id) = session_cookie(headers) {
            let mut guard = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
            guard.0.retain(|k, _| !same(k, &id));
        }
    }

    fn valid_session(&self, id: &str) -> bool {
        let guard = self.sessions.lock().unwrap_or_else(|p| p.into_inner());
        guard
            .0
            .iter()
            .any(|(k, (created, _))| same(k, id) && created.elapsed() < SESSION_LIFETIME)
    }

    /// Whether the request from `client` carries the token or a live session cookie. A
    /// cookie-carrying request from another origin is refused outright. Session ids are not
    /// rate-limited: they are 256 random bits, not something a person chose.
    pub fn authenticate(
        &self,
        client: Option<IpAddr>,
        headers: &HeaderMap,
    ) -> Result<(), ApiError> {
        if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            return match value.strip_prefix("Bearer ") {
                Some(token) => self.check_token(client, token.trim()),
                None => Err(ApiError::Unauthorized),
            };
        }
        match session_cookie(headers) {
            Some(id) if self.valid_session(&id) => {
                if cross_origin(headers) {
                    return Err(ApiError::Forbidden(
                        "cross-origin request refused: the session cookie only works from the weir page itself"
                            .into(),
                    ));
                }
                Ok(())
            }
            _ => Err(ApiError::Unauthorized),
        }
    }
}

/// The `weir_session` cookie's value.
fn session_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|pair| {
            let (name, value) = pair.trim().split_once('=')?;
            (name == COOKIE_NAME).then(|| value.to_owned())
        })
}

/// `Origin: http://host:port` that is not the `Host` the request was sent to.
fn cross_origin(headers: &HeaderMap) -> bool {
    let Some(origin) = headers.get(ORIGIN).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let authority = origin
        .split_once("://")
        .map(|(_, rest)| rest)
        .unwrap_or(origin);
    let host = headers.get(HOST).and_then(|v| v.to_str().ok());
    host != Some(authority)
}

/// The address the request came from, when the server knows it (`weir serve` records it for
/// every connection; requests built in tests have none).
pub struct ClientAddr(pub Option<IpAddr>);

impl<S: Send + Sync> FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        _: &S,
    ) -> Result<Self, std::convert::Infallible> {
        Ok(Self(client_addr(parts)))
    }
}

fn client_addr(parts: &Parts) -> Option<IpAddr> {
    parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|ConnectInfo(addr)| addr.ip())
}

/// Handlers that change something take this: the request carries the token or a session.
pub struct Writer;

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .auth()
            .authenticate(client_addr(parts), &parts.headers)?;
        Ok(Self)
    }
}

/// Handlers that only read take this: open on loopback, otherwise like [`Writer`].
pub struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth().reads_are_open() {
            state
                .auth()
                .authenticate(client_addr(parts), &parts.headers)?;
        }
        Ok(Self)
    }
}

/// The `Set-Cookie` value for a new session; `secure` behind a TLS proxy.
pub fn session_set_cookie(id: &str, secure: bool) -> String {
    format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}{}",
        SESSION_LIFETIME.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

/// The `Set-Cookie` value that removes the session cookie (with the same attributes, so the
/// browser matches it).
pub fn session_clear_cookie(secure: bool) -> String {
    format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0{}",
        if secure { "; Secure" } else { "" }
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(*k, v.parse().unwrap());
        }
        h
    }

    const CONFIGURED: &str = "configured-0123456789";
    const FROM_ENV: &str = "environment-0123456789";

    #[test]
    fn token_precedence_and_generation() {
        assert_eq!(
            resolve_token(Some(CONFIGURED), Some(FROM_ENV)).unwrap(),
            (CONFIGURED.into(), TokenSource::Config)
        );
        assert_eq!(
            resolve_token(None, Some(FROM_ENV)).unwrap(),
            (FROM_ENV.into(), TokenSource::Environment)
        );
        let (a, source) = resolve_token(Some(""), None).unwrap();
        let (b, _) = resolve_token(None, None).unwrap();
        assert_eq!(source, TokenSource::Generated);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn a_short_token_is_refused_naming_where_it_came_from() {
        let e = resolve_token(Some("s3cret"), Some(FROM_ENV)).unwrap_err();
        assert_eq!((e.from, e.chars), (TokenSource::Config, 6));
        let shown = e.to_string();
        assert!(
            shown.starts_with("the API token from engine.token is 6 characters long"),
            "{shown}"
        );
        assert!(shown.contains("at least 16"), "{shown}");
        let e = resolve_token(None, Some("fifteen-chars!!")).unwrap_err();
        assert!(
            e.to_string().starts_with(
                "the API token from the WEIR_TOKEN environment variable is 15 characters"
            ),
            "{e}"
        );
        // Characters, not bytes: 16 two-byte characters are 16.
        assert!(resolve_token(Some(&"é".repeat(16)), None).is_ok());
        assert!(resolve_token(Some(&"é".repeat(15)), None).is_err());
    }

    #[test]
    fn bearer_and_session_cookie_authenticate_and_cross_origin_is_refused() {
        let auth = Auth::new(CONFIGURED.into(), true);
        let authenticate = |h: &[(&'static str, &str)]| auth.authenticate(None, &headers(h));
        let bearer = format!("Bearer {CONFIGURED}");
        let wrong = format!("Bearer {}", &CONFIGURED[1..]);
        assert!(authenticate(&[]).is_err());
        assert!(authenticate(&[("authorization", &bearer)]).is_ok());
        assert!(authenticate(&[("authorization", &wrong)]).is_err());
        assert!(auth.login(None, "wrong").is_err());
        let id = auth.login(None, CONFIGURED).unwrap();
        let cookie = format!("other=1; {COOKIE_NAME}={id}");
        // A wrong bearer is not rescued by a good cookie: the header is what the client meant.
        assert!(authenticate(&[("authorization", &wrong), ("cookie", &cookie)]).is_err());
        assert!(authenticate(&[("cookie", &cookie)]).is_ok());
        let same_origin = [
            ("cookie", cookie.as_str()),
            ("host", "127.0.0.1:7878"),
            ("origin", "http://127.0.0.1:7878"),
        ];
        assert!(authenticate(&same_origin).is_ok());
        let evil = [
            ("cookie", cookie.as_str()),
            ("host", "127.0.0.1:7878"),
            ("origin", "https://evil.example"),
        ];
        assert!(matches!(authenticate(&evil), Err(ApiError::Forbidden(_))));
        auth.logout(&headers(&[("cookie", &cookie)]));
        assert!(authenticate(&[("cookie", &cookie)]).is_err());
    }

    #[test]
    fn the_session_cookie_is_secure_only_behind_tls() {
        assert!(!session_set_cookie("x", false).contains("Secure"));
        assert!(session_set_cookie("x", true).ends_with("; Secure"));
        assert!(session_clear_cookie(true).ends_with("Max-Age=0; Secure"));
    }

    #[test]
    fn sessions_are_bounded() {
        let auth = Auth::new(CONFIGURED.into(), true);
        let first = auth.login(None, CONFIGURED).unwrap();
        for _ in 0..MAX_SESSIONS {
            auth.login(None, CONFIGURED).unwrap();
        }
        assert!(!auth.valid_session(&first));
        assert_eq!(auth.sessions.lock().unwrap().0.len(), MAX_SESSIONS);
    }
}
