//! A named connection a pipeline grants (`grants.http`): what the operator wrote, checked, and
//! the state every instance of the pipeline shares through it (TLS roots, rate limit, OAuth2
//! token, counters).

use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use crate::auth::TokenCache;
use crate::counters::HttpCounters;
use crate::rate::RateLimiter;

/// Response bodies larger than this are cut off with `HttpResponseBodySize` unless the grant
/// says otherwise (`max_body_bytes`).
pub const DEFAULT_MAX_BODY_BYTES: u64 = 64 << 20;

/// A secret from `weir.toml` (a token, a password): never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Self {
        Self(value.into())
    }

    /// The secret itself, for the request that carries it.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(***)")
    }
}

/// How the host authenticates the requests of a grant. The plugin never sees any of it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum HttpAuth {
    /// No credentials.
    #[default]
    None,
    /// `Authorization: Bearer <token>`.
    Bearer(Secret),
    /// `Authorization: Basic base64(user:password)`.
    Basic { user: String, password: Secret },
    /// An OAuth2 client-credentials token, fetched, cached and refreshed by the host.
    OAuth2(OAuth2),
}

impl HttpAuth {
    /// The key under `auth` that chose it, for messages.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::None => "none",
            Self::Bearer(_) => "bearer",
            Self::Basic { .. } => "basic",
            Self::OAuth2(_) => "oauth2",
        }
    }
}

/// How the client authenticates to the token endpoint (RFC 6749 §2.3.1).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ClientAuth {
    /// HTTP Basic with `client_id:client_secret` (every server must support it).
    #[default]
    Basic,
    /// `client_id` and `client_secret` in the form body.
    Post,
}

/// OAuth2 client-credentials settings (`auth = { oauth2 = { … } }`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OAuth2 {
    pub token_url: String,
    pub client_id: String,
    pub client_secret: Secret,
    pub scope: Option<String>,
    pub client_auth: ClientAuth,
}

/// The longest a grant lets a request wait; a plugin's own `request-options` are clamped to
/// these.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct HttpTimeouts {
    /// Name resolution, TCP connect, TLS and HTTP handshake together.
    pub connect: Duration,
    /// From the request sent to the response's status line and headers.
    pub first_byte: Duration,
    /// Between two chunks of the response body.
    pub between_bytes: Duration,
}

impl Default for HttpTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(30),
            between_bytes: Duration::from_secs(30),
        }
    }
}

/// One `grants.http` entry as the operator wrote it (secrets already interpolated).
#[derive(Debug, Clone, PartialEq)]
pub struct HttpGrantSpec {
    /// The base URL: requests must stay under its path.
    pub url: String,
    pub auth: HttpAuth,
    /// Whether private, loopback, link-local, … addresses may be reached.
    pub allow_private: bool,
    /// An extra PEM bundle trusted besides the webpki roots.
    pub ca_file: Option<PathBuf>,
    pub timeouts: HttpTimeouts,
    pub max_body_bytes: u64,
    /// Requests per second over every instance of the pipeline in this process.
    pub requests_per_second: Option<f64>,
}

impl HttpGrantSpec {
    /// A grant of `url` with every default: no auth, public addresses only, webpki roots,
    /// 10/30/30 s timeouts, 64 MiB bodies, no rate limit.
    pub fn new(url: impl Into<String>) -> Self {
        Self {
            url: url.into(),
            auth: HttpAuth::None,
            allow_private: false,
            ca_file: None,
            timeouts: HttpTimeouts::default(),
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            requests_per_second: None,
        }
    }
}

/// `http` or `https`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub(crate) fn as_str(self) -> &'static str {
        match self {
            Self::Http => "http",
            Self::Https => "https",
        }
    }

    pub(crate) fn default_port(self) -> u16 {
        match self {
            Self::Http => 80,
            Self::Https => 443,
        }
    }
}

/// An absolute `http(s)` URL split the way the host checks and connects: no user info, no
/// fragment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Endpoint {
    pub scheme: Scheme,
    /// Lowercase; an IPv6 address keeps its brackets.
    pub host: String,
    pub port: u16,
    /// The path as written (`/` when empty).
    pub path: String,
    /// `?…` as written, or empty.
    pub query: String,
}

impl Endpoint {
    pub(crate) fn parse(url: &str) -> Result<Self, String> {
        if url.contains('#') {
            return Err(format!("URL {url} has a fragment (#…)"));
        }
        let uri: http::Uri = url
            .parse()
            .map_err(|e| format!("URL {url:?} is not a valid URL: {e}"))?;
        let scheme = match uri.scheme_str() {
            Some(s) if s.eq_ignore_ascii_case("https") => Scheme::Https,
            Some(s) if s.eq_ignore_ascii_case("http") => Scheme::Http,
            Some(s) => return Err(format!("URL {url} is {s}:, not http: or https:")),
            None => return Err(format!("URL {url:?} needs http:// or https://")),
        };
        let authority = uri
            .authority()
            .ok_or_else(|| format!("URL {url} has no host"))?;
        if authority.as_str().contains('@') {
            return Err(format!(
                "URL {url} has credentials in it; use auth = {{ basic = {{ … }} }}"
            ));
        }
        let host = authority.host().to_ascii_lowercase();
        if host.is_empty() {
            return Err(format!("URL {url} has no host"));
        }
        let port = authority.port_u16().unwrap_or(scheme.default_port());
        let path = match uri.path() {
            "" => "/".to_owned(),
            p => p.to_owned(),
        };
        let query = uri.query().map(|q| format!("?{q}")).unwrap_or_default();
        Ok(Self {
            scheme,
            host,
            port,
            path,
            query,
        })
    }

    /// `host` or `host:port` when the port is not the scheme's default (a `Host` header).
    pub(crate) fn authority(&self) -> String {
        if self.port == self.scheme.default_port() {
            self.host.clone()
        } else {
            format!("{}:{}", self.host, self.port)
        }
    }

    /// The host without IPv6 brackets, for name resolution and TLS.
    pub(crate) fn bare_host(&self) -> &str {
        self.host
            .strip_prefix('[')
            .and_then(|h| h.strip_suffix(']'))
            .unwrap_or(&self.host)
    }
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}://{}{}{}",
            self.scheme.as_str(),
            self.authority(),
            self.path,
            self.query
        )
    }
}

/// A checked, shareable `grants.http` entry. Clones share the rate limit, the OAuth2 token and
/// the counters: every instance of a pipeline in the process holds a clone.
#[derive(Clone)]
pub struct HttpGrant {
    pub(crate) inner: Arc<Granted>,
}

/// What a grant holds.
pub(crate) struct Granted {
    pub name: String,
    pub spec: HttpGrantSpec,
    pub base: Endpoint,
    /// The base path's segments (no trailing empty one): requests must start with them.
    pub base_segments: Vec<String>,
    pub tls: Arc<rustls::ClientConfig>,
    pub limiter: Option<RateLimiter>,
    pub tokens: Option<TokenCache>,
    pub counters: Arc<HttpCounters>,
}

impl HttpGrant {
    /// Check a grant and set up what its instances share: the URL, the name (usable as a URL
    /// host: letters, digits, `-`, `_`), the limits, and the CA file, which is read here.
    pub fn new(name: &str, spec: HttpGrantSpec) -> Result<Self, String> {
        check_name(name)?;
        let base = Endpoint::parse(&spec.url)?;
        if !base.query.is_empty() {
            return Err(format!("URL {} has a query; give a base URL", spec.url));
        }
        let base_segments = crate::target::base_segments(&base.path)
            .map_err(|why| format!("URL {}: {why}", spec.url))?;
        if spec.max_body_bytes == 0 {
            return Err("max_body_bytes must be at least 1".into());
        }
        for (key, value) in [
            ("connect_timeout_seconds", spec.timeouts.connect),
            ("first_byte_timeout_seconds", spec.timeouts.first_byte),
            ("between_bytes_timeout_seconds", spec.timeouts.between_bytes),
        ] {
            if value.is_zero() {
                return Err(format!("{key} must be more than 0"));
            }
        }
        let limiter = match spec.requests_per_second {
            None => None,
            Some(rps) if rps.is_finite() && rps > 0.0 => Some(RateLimiter::per_second(rps)),
            Some(rps) => {
                return Err(format!(
                    "requests_per_second must be a positive number, not {rps}"
                ));
            }
        };
        let tokens = match &spec.auth {
            HttpAuth::OAuth2(o) => {
                let endpoint = Endpoint::parse(&o.token_url)
                    .map_err(|e| format!("auth.oauth2.token_url: {e}"))?;
                Some(TokenCache::new(o.clone(), endpoint))
            }
            HttpAuth::Basic { user, .. } if user.contains(':') => {
                return Err("auth.basic.user must not contain ':'".into());
            }
            _ => None,
        };
        let tls = crate::send::tls_config(spec.ca_file.as_deref())?;
        Ok(Self {
            inner: Arc::new(Granted {
                name: name.to_owned(),
                spec,
                base,
                base_segments,
                tls,
                limiter,
                tokens,
                counters: Arc::default(),
            }),
        })
    }

    /// The grant's name (the key under `grants.http`).
    pub fn name(&self) -> &str {
        &self.inner.name
    }

    /// What the operator wrote.
    pub fn spec(&self) -> &HttpGrantSpec {
        &self.inner.spec
    }

    /// The base URL, normalised (`https://hr.example.com/api/`).
    pub fn base_url(&self) -> String {
        self.inner.base.to_string()
    }

    /// The counters of every request made through this grant, by every instance that shares
    /// it.
    pub fn counters(&self) -> crate::HttpCountersSnapshot {
        self.inner.counters.snapshot()
    }
}

impl std::fmt::Debug for HttpGrant {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HttpGrant")
            .field("name", &self.inner.name)
            .field("spec", &self.inner.spec)
            .finish_non_exhaustive()
    }
}

/// Grants are equal when the operator wrote the same thing; their shared state is not compared.
impl PartialEq for HttpGrant {
    fn eq(&self, other: &Self) -> bool {
        self.inner.name == other.inner.name && self.inner.spec == other.inner.spec
    }
}

/// `requests_per_second` is never NaN (checked in [`HttpGrant::new`]), so equality is total.
impl Eq for HttpGrant {}

/// A grant name is what a plugin writes as the host of `http://<name>/…`: letters, digits,
/// `-` and `_`, no dot (so it never looks like a real host name).
pub(crate) fn check_name(name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name.len() <= 63
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "http grant name \"{name}\" must be 1 to 63 letters, digits, '-' or '_' (plugins use it as the host of http://{name}/…)"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_parse_with_default_ports_and_lowercase_hosts() {
        let e = Endpoint::parse("https://HR.example.com/api/").unwrap();
        assert_eq!(
            (e.scheme, e.host.as_str(), e.port, e.path.as_str()),
            (Scheme::Https, "hr.example.com", 443, "/api/")
        );
        assert_eq!(e.to_string(), "https://hr.example.com/api/");
        let e = Endpoint::parse("http://[::1]:8080").unwrap();
        assert_eq!((e.bare_host(), e.port, e.path.as_str()), ("::1", 8080, "/"));
        assert_eq!(e.authority(), "[::1]:8080");
        for bad in [
            "ftp://x/",
            "hr.example.com/api",
            "https://user:pw@hr.example.com/",
            "https://hr.example.com/#top",
        ] {
            assert!(Endpoint::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn a_grant_is_checked_and_shows_no_secret() {
        let mut spec = HttpGrantSpec::new("https://hr.example.com/api/");
        spec.auth = HttpAuth::Bearer(Secret::new("s3cret"));
        let grant = HttpGrant::new("hr", spec.clone()).unwrap();
        assert_eq!(grant.base_url(), "https://hr.example.com/api/");
        assert!(!format!("{grant:?}").contains("s3cret"));
        assert!(HttpGrant::new("hr.example", spec.clone()).is_err());
        assert!(HttpGrant::new("", spec.clone()).is_err());
        let mut bad = spec.clone();
        bad.url = "https://hr.example.com/api/?x=1".into();
        assert!(HttpGrant::new("hr", bad).unwrap_err().contains("query"));
        let mut bad = spec.clone();
        bad.requests_per_second = Some(f64::NAN);
        assert!(HttpGrant::new("hr", bad).is_err());
        let mut bad = spec;
        bad.url = "https://hr.example.com/api/../admin/".into();
        assert!(HttpGrant::new("hr", bad).is_err());
    }
}
