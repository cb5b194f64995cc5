//! Credentials the host adds to a grant's requests: a static bearer token or basic password,
//! or an OAuth2 client-credentials token the host fetches, caches until shortly before it
//! expires, and refreshes (once more after a 401). No secret ever reaches the plugin.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use base64::Engine as _;
use http::{HeaderValue, Method, Request};

use crate::counters::{Count, Tally};
use crate::grant::{ClientAuth, Endpoint, Granted, HttpAuth, OAuth2, Secret};
use crate::send::{self, Limits, SendFailure};

/// Largest token endpoint answer read.
const MAX_TOKEN_RESPONSE: usize = 1 << 20;

/// A token is refreshed this long before it expires (at most half its lifetime).
const REFRESH_MARGIN: Duration = Duration::from_secs(60);

/// The `Authorization` value to send, and whether it came from the cache (a 401 then means the
/// token may be stale, worth one refresh).
pub(crate) struct Credentials {
    pub header: Option<HeaderValue>,
    /// The OAuth2 token's generation, when it was taken from the cache.
    pub cached_generation: Option<u64>,
}

/// The OAuth2 token of one grant, shared by its instances.
pub(crate) struct TokenCache {
    spec: OAuth2,
    endpoint: Endpoint,
    /// Held across a fetch, so concurrent requests wait for one token request.
    state: tokio::sync::Mutex<Option<Cached>>,
    generation: AtomicU64,
    clock: Clock,
}

struct Cached {
    token: Secret,
    /// When to fetch a new one (`None`: the server gave no lifetime; until a 401).
    refresh_at: Option<Instant>,
    generation: u64,
}

/// `Instant::now()` plus an offset tests can advance (tokio's paused clock would also fire the
/// network timeouts of the token request).
#[derive(Default)]
pub(crate) struct Clock {
    offset_ms: AtomicU64,
}

impl Clock {
    fn now(&self) -> Instant {
        Instant::now() + Duration::from_millis(self.offset_ms.load(Ordering::Relaxed))
    }

    #[cfg(test)]
    pub(crate) fn advance(&self, by: Duration) {
        self.offset_ms
            .fetch_add(by.as_millis() as u64, Ordering::Relaxed);
    }
}

impl TokenCache {
    pub(crate) fn new(spec: OAuth2, endpoint: Endpoint) -> Self {
        Self {
            spec,
            endpoint,
            state: tokio::sync::Mutex::new(None),
            generation: AtomicU64::new(0),
            clock: Clock::default(),
        }
    }

    #[cfg(test)]
    pub(crate) fn clock(&self) -> &Clock {
        &self.clock
    }

    /// Forget the token of `generation` (a 401 said it is no good), unless a newer one is
    /// already cached.
    pub(crate) async fn invalidate(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.as_ref().is_some_and(|c| c.generation == generation) {
            *state = None;
        }
    }

    /// A valid token: the cached one, or a new one from the token endpoint.
    async fn token(
        &self,
        grant: &Granted,
        limits: &Limits,
        tally: &Tally,
    ) -> Result<(Secret, Option<u64>), String> {
        let mut state = self.state.lock().await;
        if let Some(cached) = state.as_ref()
            && cached.refresh_at.is_none_or(|at| self.clock.now() < at)
        {
            return Ok((cached.token.clone(), Some(cached.generation)));
        }
        tally.add(Count::TokenRequest);
        let fetched = self.fetch(grant, limits).await;
        let (token, lifetime) = match fetched {
            Ok(t) => t,
            Err(e) => {
                tally.add(Count::Error);
                return Err(e);
            }
        };
        let generation = self.generation.fetch_add(1, Ordering::Relaxed) + 1;
        let refresh_at =
            lifetime.map(|life| self.clock.now() + life - REFRESH_MARGIN.min(life / 2));
        *state = Some(Cached {
            token: token.clone(),
            refresh_at,
            generation,
        });
        Ok((token, None))
    }

    /// One client-credentials token request (RFC 6749 §4.4).
    async fn fetch(
        &self,
        grant: &Granted,
        limits: &Limits,
    ) -> Result<(Secret, Option<Duration>), String> {
        let o = &self.spec;
        let mut form = vec![("grant_type", "client_credentials")];
        if let Some(scope) = &o.scope {
            form.push(("scope", scope));
        }
        let mut request = Request::builder()
            .method(Method::POST)
            .uri(format!("{}{}", self.endpoint.path, self.endpoint.query))
            .header(http::header::HOST, self.endpoint.authority())
            .header(
                http::header::CONTENT_TYPE,
                "application/x-www-form-urlencoded",
            )
            .header(http::header::ACCEPT, "application/json");
        match o.client_auth {
            ClientAuth::Basic => {
                let header = basic(
                    &form_encode(&o.client_id),
                    &form_encode(o.client_secret.expose()),
                );
                request = request.header(http::header::AUTHORIZATION, header);
            }
            ClientAuth::Post => {
                form.push(("client_id", &o.client_id));
                form.push(("client_secret", o.client_secret.expose()));
            }
        }
        let body: String = form
            .iter()
            .map(|(k, v)| format!("{k}={}", form_encode(v)))
            .collect::<Vec<_>>()
            .join("&");
        let body = http_body_util::BodyExt::boxed_unsync(http_body_util::BodyExt::map_err(
            http_body_util::Full::new(bytes::Bytes::from(body)),
            |never| match never {},
        ));
        let request = request
            .body(body)
            .map_err(|e| format!("building the token request: {e}"))?;
        let what = format!("POST {}", self.endpoint);
        let (response, io) = send::send_once(grant, &self.endpoint, request, limits, &what)
            .await
            .map_err(|failure| match failure {
                SendFailure::Refused(message) => message,
                SendFailure::Failed { explain, .. } => {
                    format!("token request to {}: {explain}", self.endpoint)
                }
            })?;
        tokio::spawn(async move {
            let _ = Box::into_pin(io).await;
        });
        let status = response.status();
        let body = send::read_to_end(response.into_body(), MAX_TOKEN_RESPONSE, limits.first_byte)
            .await
            .map_err(|e| format!("token request to {}: {e}", self.endpoint))?;
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            let text: String = text.chars().take(300).collect();
            return Err(format!(
                "token request to {} answered {status}: {text}",
                self.endpoint
            ));
        }
        parse_token(&body).map_err(|e| format!("token response from {}: {e}", self.endpoint))
    }
}

/// `access_token`, checked `token_type`, and `expires_in` (a number, or a numeric string as
/// some servers send it).
fn parse_token(body: &[u8]) -> Result<(Secret, Option<Duration>), String> {
    let value: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| format!("not JSON: {e}"))?;
    let token = value
        .get("access_token")
        .and_then(|t| t.as_str())
        .filter(|t| !t.is_empty())
        .ok_or("no access_token")?;
    if let Some(kind) = value.get("token_type").and_then(|t| t.as_str())
        && !kind.eq_ignore_ascii_case("bearer")
    {
        return Err(format!("token_type is {kind:?}, not Bearer"));
    }
    let expires_in = match value.get("expires_in") {
        Some(serde_json::Value::Number(n)) => n.as_f64(),
        Some(serde_json::Value::String(s)) => s.trim().parse::<f64>().ok(),
        _ => None,
    };
    let lifetime = expires_in
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(|s| Duration::from_secs_f64(s.min(1e9)));
    HeaderValue::from_str(&format!("Bearer {token}"))
        .map_err(|_| "access_token has characters a header cannot carry".to_owned())?;
    Ok((Secret::new(token), lifetime))
}

/// The `Authorization` header for a grant's next request.
pub(crate) async fn credentials(
    grant: &Granted,
    limits: &Limits,
    tally: &Tally,
) -> Result<Credentials, String> {
    let (header, cached_generation) = match &grant.spec.auth {
        HttpAuth::None => {
            return Ok(Credentials {
                header: None,
                cached_generation: None,
            });
        }
        HttpAuth::Bearer(token) => (format!("Bearer {}", token.expose()), None),
        HttpAuth::Basic { user, password } => (basic(user, password.expose()), None),
        HttpAuth::OAuth2(_) => {
            let cache = grant
                .tokens
                .as_ref()
                .expect("an oauth2 grant has a token cache");
            let (token, generation) = cache.token(grant, limits, tally).await?;
            (format!("Bearer {}", token.expose()), generation)
        }
    };
    let mut header = HeaderValue::from_str(&header).map_err(|_| {
        format!(
            "the {} credentials have characters a header cannot carry",
            grant.spec.auth.kind()
        )
    })?;
    header.set_sensitive(true);
    Ok(Credentials {
        header: Some(header),
        cached_generation,
    })
}

fn basic(user: &str, password: &str) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"));
    format!("Basic {encoded}")
}

/// `application/x-www-form-urlencoded` of one value.
fn form_encode(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        match byte {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'*' => {
                out.push(byte as char)
            }
            b' ' => out.push('+'),
            _ => out.push_str(&format!("%{byte:02X}")),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_responses_are_checked() {
        let (t, life) =
            parse_token(br#"{"access_token":"abc","token_type":"bearer","expires_in":3600}"#)
                .unwrap();
        assert_eq!((t.expose(), life), ("abc", Some(Duration::from_secs(3600))));
        let (_, life) = parse_token(br#"{"access_token":"abc","expires_in":"60"}"#).unwrap();
        assert_eq!(life, Some(Duration::from_secs(60)));
        let (_, life) = parse_token(br#"{"access_token":"abc"}"#).unwrap();
        assert_eq!(life, None);
        assert!(
            parse_token(br#"{"access_token":"abc","token_type":"mac"}"#)
                .unwrap_err()
                .contains("mac")
        );
        assert!(parse_token(br#"{"error":"invalid_client"}"#).is_err());
        assert!(parse_token(b"<html>").is_err());
        assert!(parse_token(br#"{"access_token":"a\nb"}"#).is_err());
    }

    #[test]
    fn form_values_and_basic_credentials_are_encoded() {
        assert_eq!(form_encode("a b&c=d/é"), "a+b%26c%3Dd%2F%C3%A9");
        assert_eq!(basic("user", "pa:ss"), "Basic dXNlcjpwYTpzcw==");
    }
}
