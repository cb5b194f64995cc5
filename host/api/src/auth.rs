//! Who may do what.
//!
//! - Mutating routes (trigger, cancel, checkpoint reset) need the API token, either as
//!   `Authorization: Bearer <token>` (curl, scripts) or as the session cookie that
//!   `POST /api/login` sets after checking the token (the dashboard: `EventSource` cannot send
//!   headers, and a token kept in page JavaScript could be read by any injected script).
//! - Read routes and the event stream are open when the API listens on a loopback address
//!   (only local users can reach it); on any other address they need the token too.
//!
//! The cookie is `HttpOnly` (page scripts cannot read it) and `SameSite=Strict` (the browser
//! sends it only on requests from the API's own origin, so another site cannot make a logged-in
//! browser trigger runs). As a second line against cross-site requests, a cookie-authenticated
//! request whose `Origin` differs from its `Host` is refused. There is no CORS layer at all: other
//! origins get no `Access-Control-Allow-Origin`.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, COOKIE, HOST, ORIGIN};
use axum::http::request::Parts;

use crate::AppState;
use crate::error::ApiError;

/// The session cookie's name.
pub const COOKIE_NAME: &str = "weir_session";
/// How long a login lasts.
pub const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at most; the oldest is dropped past it (logins cannot grow memory).
const MAX_SESSIONS: usize = 256;

/// The token and the sessions created from it.
pub struct Auth {
    token: String,
    open_reads: bool,
    sessions: Mutex<(Sessions, u64)>,
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

/// The token to use: `engine.token` from the config, else `WEIR_TOKEN`, else a new random one.
pub fn resolve_token(configured: Option<&str>, env: Option<&str>) -> (String, TokenSource) {
    match (
        configured.filter(|t| !t.is_empty()),
        env.filter(|t| !t.is_empty()),
    ) {
        (Some(t), _) => (t.to_owned(), TokenSource::Config),
        (None, Some(t)) => (t.to_owned(), TokenSource::Environment),
        (None, None) => (random_hex(32), TokenSource::Generated),
    }
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
    /// `open_reads`: whether read routes need no token (the API listens on loopback).
    pub fn new(token: String, open_reads: bool) -> Self {
        Self {
            token,
            open_reads,
            sessions: Mutex::default(),
        }
    }

    pub fn reads_are_open(&self) -> bool {
        self.open_reads
    }

    /// Whether `token` is the API token.
    pub fn check_token(&self, token: &str) -> bool {
        same(token, &self.token)
    }

    /// Start a session for a correct token; returns the cookie value.
    pub fn login(&self, token: &str) -> Option<String> {
        if !self.check_token(token) {
            return None;
        }
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
        Some(id)
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

    /// Whether the request carries the token or a live session cookie. A cookie-carrying
    /// request from another origin is refused outright.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        if let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) {
            return match value.strip_prefix("Bearer ") {
                Some(token) if self.check_token(token.trim()) => Ok(()),
                _ => Err(ApiError::Unauthorized),
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

/// Handlers that change something take this: the request carries the token or a session.
pub struct Writer;

impl FromRequestParts<AppState> for Writer {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state.auth().authenticate(&parts.headers)?;
        Ok(Self)
    }
}

/// Handlers that only read take this: open on loopback, otherwise like [`Writer`].
pub struct Reader;

impl FromRequestParts<AppState> for Reader {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        if !state.auth().reads_are_open() {
            state.auth().authenticate(&parts.headers)?;
        }
        Ok(Self)
    }
}

/// The `Set-Cookie` value for a new session.
pub fn session_set_cookie(id: &str) -> String {
    format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}",
        SESSION_LIFETIME.as_secs()
    )
}

/// The `Set-Cookie` value that removes the session cookie.
pub fn session_clear_cookie() -> String {
    format!("{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
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

    #[test]
    fn token_precedence_and_generation() {
        assert_eq!(
            resolve_token(Some("c"), Some("e")),
            ("c".into(), TokenSource::Config)
        );
        assert_eq!(
            resolve_token(None, Some("e")),
            ("e".into(), TokenSource::Environment)
        );
        let (a, source) = resolve_token(Some(""), None);
        let (b, _) = resolve_token(None, None);
        assert_eq!(source, TokenSource::Generated);
        assert_eq!(a.len(), 64);
        assert_ne!(a, b);
    }

    #[test]
    fn bearer_and_session_cookie_authenticate_and_cross_origin_is_refused() {
        let auth = Auth::new("s3cret".into(), true);
        assert!(auth.authenticate(&headers(&[])).is_err());
        assert!(
            auth.authenticate(&headers(&[("authorization", "Bearer s3cret")]))
                .is_ok()
        );
        assert!(
            auth.authenticate(&headers(&[("authorization", "Bearer s3cre")]))
                .is_err()
        );
        // A wrong bearer is not rescued by a good cookie: the header is what the client meant.
        assert!(auth.login("wrong").is_none());
        let id = auth.login("s3cret").unwrap();
        let cookie = format!("other=1; {COOKIE_NAME}={id}");
        assert!(auth.authenticate(&headers(&[("cookie", &cookie)])).is_ok());
        let same_origin = [
            ("cookie", cookie.as_str()),
            ("host", "127.0.0.1:7878"),
            ("origin", "http://127.0.0.1:7878"),
        ];
        assert!(auth.authenticate(&headers(&same_origin)).is_ok());
        let evil = [
            ("cookie", cookie.as_str()),
            ("host", "127.0.0.1:7878"),
            ("origin", "https://evil.example"),
        ];
        assert!(matches!(
            auth.authenticate(&headers(&evil)),
            Err(ApiError::Forbidden(_))
        ));
        auth.logout(&headers(&[("cookie", &cookie)]));
        assert!(auth.authenticate(&headers(&[("cookie", &cookie)])).is_err());
    }

    #[test]
    fn sessions_are_bounded() {
        let auth = Auth::new("t".into(), true);
        let first = auth.login("t").unwrap();
        for _ in 0..MAX_SESSIONS {
            auth.login("t").unwrap();
        }
        assert!(!auth.valid_session(&first));
        assert_eq!(auth.sessions.lock().unwrap().0.len(), MAX_SESSIONS);
    }
}
