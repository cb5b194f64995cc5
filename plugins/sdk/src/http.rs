//! Outgoing HTTP requests over `wasi:http/outgoing-handler`, blocking, for extractors and
//! loaders of contract 0.2.
//!
//! A plugin addresses a connection the pipeline granted by its name (`http://hr/employees`) or
//! by the granted base URL; the host maps the name to the real URL, checks the request against
//! the grant and adds the credentials itself. A plugin never sets `Authorization`: the host
//! refuses a request that does. [`get`] and [`post`] cover most calls; [`request`] takes any
//! [`Method`] and a body (sent with its `content-length`, written as the host sends it).
//! [`start`] sends a request and returns at once: the host receives the response while the
//! plugin works, and [`Pending::wait`] reads it (http-extract asks for the next page this way
//! while it converts the current one).
//!
//! ```no_run
//! use weir_sdk::{Error, http};
//!
//! fn employees(page: u32) -> Result<serde_json::Value, Error> {
//!     let url = format!("http://hr/employees?page={page}");
//!     let response = http::get(&url, &[("accept", "application/json")])?;
//!     response.check_status(&url)?; // 429/503 → unavailable (retried), 401/403 → access-denied
//!     serde_json::from_slice(&response.body)
//!         .map_err(|e| Error::BadData(format!("{url}: the body is not JSON: {e}")))
//! }
//! ```
//!
//! Natively (a plugin's unit tests) there is no host: every request fails with
//! [`HttpError::NoHost`]. Put the requests behind a trait and test the logic with a fake.

use std::fmt;
use std::time::Duration;

use crate::Error;

/// The default cap on a response body: larger bodies fail with [`HttpError::BodyTooLarge`]
/// instead of growing the plugin's memory until it hits its limit.
pub const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;

/// Options of one request; `Options::default()` suits most calls.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Options {
    /// The largest body read; see [`DEFAULT_MAX_BODY_BYTES`].
    pub max_body_bytes: usize,
    /// Time to connect (the host may clamp it).
    pub connect_timeout: Option<Duration>,
    /// Time from sending the request to the first byte of the response (the host may clamp it).
    pub first_byte_timeout: Option<Duration>,
    /// Longest pause between two chunks of the body (the host may clamp it).
    pub between_bytes_timeout: Option<Duration>,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
            connect_timeout: Some(Duration::from_secs(10)),
            first_byte_timeout: Some(Duration::from_secs(30)),
            between_bytes_timeout: Some(Duration::from_secs(30)),
        }
    }
}

/// A response: status, headers and the whole body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Response {
    /// The status code (`200`).
    pub status: u16,
    /// Header names (lowercase) and values, in the order received; a name may repeat.
    pub headers: Vec<(String, String)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// A response with `status` and `body` and no headers (for tests and fakes).
    pub fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body: body.into(),
        }
    }

    /// The same response with one more header.
    pub fn with_header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_owned()));
        self
    }

    /// The first value of header `name` (any case).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Every value of header `name` (any case), in order.
    pub fn header_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Whether the status is 2xx.
    pub fn is_success(&self) -> bool {
        (200..300).contains(&self.status)
    }

    /// The `Retry-After` header as the server sent it (seconds or an HTTP date).
    pub fn retry_after(&self) -> Option<&str> {
        self.header("retry-after").map(str::trim)
    }

    /// `Ok` for a 2xx status, else the error its status calls for (see [`status_error`]).
    pub fn check_status(&self, url: &str) -> Result<(), Error> {
        match status_error(url, self) {
            None => Ok(()),
            Some(e) => Err(e),
        }
    }
}

/// The error a non-2xx response calls for, naming the URL and the status, or `None` for 2xx:
///
/// | status | error | the host |
/// |---|---|---|
/// | 429, 503 | `unavailable`, with the `Retry-After` | waits that long, then restarts from the last checkpoint |
/// | 408, other 5xx | `unavailable` | retries with backoff |
/// | 401, 403 | `access-denied` | fails at once: the credentials or the grant are wrong |
/// | 3xx, other 4xx | `bad-data` | fails at once: retrying the same request will not help |
pub fn status_error(url: &str, response: &Response) -> Option<Error> {
    let status = response.status;
    if response.is_success() {
        return None;
    }
    let what = format!("{url}: HTTP {status}{}", reason_phrase(status));
    let snippet = body_snippet(&response.body);
    Some(match status {
        429 | 503 => {
            let wait = match response.retry_after() {
                Some(after) => format!("; retry after {after}"),
                None => String::new(),
            };
            Error::Unavailable(format!("{what}{wait}{snippet}"))
        }
        408 | 500..=599 => Error::Unavailable(format!("{what}{snippet}")),
        401 | 403 => Error::AccessDenied(format!(
            "{what}: the server refused the credentials the host sent for this connection \
             (check its auth in grants.http){snippet}"
        )),
        300..=399 => Error::BadData(format!(
            "{what}: redirected to {}",
            response
                .header("location")
                .unwrap_or("(no Location header)")
        )),
        _ => Error::BadData(format!("{what}{snippet}")),
    })
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        400 => " Bad Request",
        401 => " Unauthorized",
        403 => " Forbidden",
        404 => " Not Found",
        408 => " Request Timeout",
        429 => " Too Many Requests",
        500 => " Internal Server Error",
        502 => " Bad Gateway",
        503 => " Service Unavailable",
        504 => " Gateway Timeout",
        _ => "",
    }
}

/// The start of an error body, so the server's own explanation reaches the log.
fn body_snippet(body: &[u8]) -> String {
    const MAX: usize = 200;
    let text = String::from_utf8_lossy(&body[..body.len().min(MAX)]);
    let text = text.trim();
    if text.is_empty() {
        return String::new();
    }
    let more = if body.len() > MAX { "…" } else { "" };
    format!(": {text}{more}")
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not `http(s)://authority/path?query`.
    InvalidUrl {
        /// The URL.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host refused the request: outside every granted connection, a header the plugin
    /// may not set (`Authorization`), a private address without `allow_private`.
    Denied {
        /// The URL.
        url: String,
        /// The host's reason, when it gave one.
        reason: String,
    },
    /// Connecting, sending or receiving failed (DNS, refused, reset, TLS, timeouts).
    Transport {
        /// The URL.
        url: String,
        /// What failed.
        reason: String,
    },
    /// The body is larger than [`Options::max_body_bytes`].
    BodyTooLarge {
        /// The URL.
        url: String,
        /// The cap.
        limit: usize,
    },
    /// There is no host to send the request (natively, in unit tests).
    NoHost {
        /// The URL.
        url: String,
    },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::InvalidUrl { url, reason } => write!(f, "{url}: invalid URL: {reason}"),
            HttpError::Denied { url, reason } => {
                write!(f, "{url}: request refused by the host: {reason}")
            }
            HttpError::Transport { url, reason } => write!(f, "{url}: {reason}"),
            HttpError::BodyTooLarge { url, limit } => {
                write!(f, "{url}: the response body is larger than {limit} bytes")
            }
            HttpError::NoHost { url } => write!(
                f,
                "{url}: no weir host to send requests (natively, test with a fake fetcher)"
            ),
        }
    }
}

impl std::error::Error for HttpError {}

/// The contract's error for a failed request: a transport failure is `unavailable` (retried),
/// a refusal `access-denied`, a bad URL `invalid-config`, an oversized body `bad-data`.
impl From<HttpError> for Error {
    fn from(e: HttpError) -> Self {
        let message = e.to_string();
        match e {
            HttpError::InvalidUrl { .. } => Error::InvalidConfig(message),
            HttpError::Denied { .. } => Error::AccessDenied(message),
            HttpError::Transport { .. } => Error::Unavailable(message),
            HttpError::BodyTooLarge { .. } => Error::BadData(message),
            HttpError::NoHost { .. } => Error::Other(message),
        }
    }
}

/// The parts of an absolute URL a request is made of.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UrlParts<'a> {
    /// `true` for `https`.
    pub https: bool,
    /// `host[:port]`.
    pub authority: &'a str,
    /// `/path?query`, at least `/`.
    pub path_with_query: &'a str,
}

/// Split `http(s)://authority/path?query` (a fragment is dropped).
pub fn split_url(url: &str) -> Result<UrlParts<'_>, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidUrl {
        url: url.to_owned(),
        reason: reason.to_owned(),
    };
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| invalid("no scheme (expected http:// or https://)"))?;
    let https = if scheme.eq_ignore_ascii_case("https") {
        true
    } else if scheme.eq_ignore_ascii_case("http") {
        false
    } else {
        return Err(invalid("the scheme must be http or https"));
    };
    let rest = rest.split('#').next().unwrap_or_default();
    let path_start = rest.find(['/', '?']).unwrap_or(rest.len());
    let authority = &rest[..path_start];
    if authority.is_empty() {
        return Err(invalid("no host"));
    }
    if authority.contains('@') {
        return Err(invalid(
            "credentials in the URL; the host adds them from the grant",
        ));
    }
    if url.bytes().any(|b| b <= b' ' || b == 0x7f) {
        return Err(invalid(
            "spaces or control characters (percent-encode them)",
        ));
    }
    let path_with_query = match &rest[path_start..] {
        "" => "/",
        p => p,
    };
    Ok(UrlParts {
        https,
        authority,
        path_with_query,
    })
}

/// An HTTP method a plugin may use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// `GET`.
    Get,
    /// `HEAD`: the status and headers only.
    Head,
    /// `POST`.
    Post,
    /// `PUT`.
    Put,
    /// `DELETE`.
    Delete,
}

impl Method {
    /// The method as it appears in a request line (`POST`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Post => "POST",
            Method::Put => "PUT",
            Method::Delete => "DELETE",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `GET url` with extra request headers and the default [`Options`].
pub fn get(url: &str, headers: &[(&str, &str)]) -> Result<Response, HttpError> {
    get_with(url, headers, &Options::default())
}

/// `GET url` with extra request headers and `options`. Blocks until the whole body is read.
/// Any status is a response; see [`Response::check_status`].
pub fn get_with(
    url: &str,
    headers: &[(&str, &str)],
    options: &Options,
) -> Result<Response, HttpError> {
    request(Method::Get, url, headers, &[], options)
}

/// `POST url` with `body` (send its `content-type` in `headers`) and the default [`Options`].
pub fn post(url: &str, headers: &[(&str, &str)], body: &[u8]) -> Result<Response, HttpError> {
    request(Method::Post, url, headers, body, &Options::default())
}

/// Any request: `method url` with extra headers and `body` (empty: none; otherwise sent with
/// its `content-length`). Blocks until the body is sent and the whole response body is read.
/// Any status is a response; see [`Response::check_status`].
pub fn request(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    options: &Options,
) -> Result<Response, HttpError> {
    start(method, url, headers, body, options)?.wait()
}

/// A plugin sets neither `Authorization` (the host adds the grant's) nor `Content-Length`.
fn check_headers(url: &str, headers: &[(&str, &str)]) -> Result<(), HttpError> {
    if let Some((name, _)) = headers.iter().find(|(n, _)| {
        n.eq_ignore_ascii_case("authorization") || n.eq_ignore_ascii_case("content-length")
    }) {
        let why = if name.eq_ignore_ascii_case("content-length") {
            "the SDK sets it from the body"
        } else {
            "the host adds the grant's credentials"
        };
        return Err(HttpError::InvalidUrl {
            url: url.to_owned(),
            reason: format!("a plugin may not set `{name}`: {why}"),
        });
    }
    Ok(())
}

/// [`request`] without waiting for the response: the host sends the request and receives the
/// response while the plugin goes on (converting the page before, say); [`Pending::wait`]
/// then reads it. Dropping the [`Pending`] abandons the request.
pub fn start(
    method: Method,
    url: &str,
    headers: &[(&str, &str)],
    body: &[u8],
    options: &Options,
) -> Result<Pending, HttpError> {
    let parts = split_url(url)?;
    check_headers(url, headers)?;
    begin(method, url, &parts, headers, body, options)
}

/// A request the host is working on; see [`start`].
pub struct Pending {
    url: String,
    max_body_bytes: usize,
    #[cfg(target_arch = "wasm32")]
    future: wasi::http::types::FutureIncomingResponse,
}

impl fmt::Debug for Pending {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pending").field("url", &self.url).finish()
    }
}

impl Pending {
    /// The URL the request was sent to.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// Block until the whole response body is read. Any status is a response.
    pub fn wait(self) -> Result<Response, HttpError> {
        receive(self)
    }
}

#[cfg(not(target_arch = "wasm32"))]
fn begin(
    _method: Method,
    url: &str,
    _parts: &UrlParts<'_>,
    _headers: &[(&str, &str)],
    _body: &[u8],
    _options: &Options,
) -> Result<Pending, HttpError> {
    Err(HttpError::NoHost {
        url: url.to_owned(),
    })
}

#[cfg(not(target_arch = "wasm32"))]
fn receive(pending: Pending) -> Result<Response, HttpError> {
    Err(HttpError::NoHost { url: pending.url })
}

#[cfg(target_arch = "wasm32")]
fn begin(
    method: Method,
    url: &str,
    parts: &UrlParts<'_>,
    headers: &[(&str, &str)],
    body: &[u8],
    options: &Options,
) -> Result<Pending, HttpError> {
    use wasi::http::outgoing_handler;
    use wasi::http::types::{Fields, OutgoingBody, OutgoingRequest, RequestOptions, Scheme};

    let transport = |reason: String| HttpError::Transport {
        url: url.to_owned(),
        reason,
    };
    let invalid = |reason: String| HttpError::InvalidUrl {
        url: url.to_owned(),
        reason,
    };

    let mut entries: Vec<(String, Vec<u8>)> = headers
        .iter()
        .map(|(n, v)| (n.to_ascii_lowercase(), v.as_bytes().to_vec()))
        .collect();
    if !body.is_empty() {
        entries.push((
            "content-length".to_owned(),
            body.len().to_string().into_bytes(),
        ));
    }
    let fields = Fields::from_list(&entries)
        .map_err(|e| invalid(format!("request headers refused: {e:?}")))?;
    let request = OutgoingRequest::new(fields);
    let scheme = if parts.https {
        Scheme::Https
    } else {
        Scheme::Http
    };
    // Each setter fails only for a value that is not valid there.
    let wasi_method = match method {
        Method::Get => wasi::http::types::Method::Get,
        Method::Head => wasi::http::types::Method::Head,
        Method::Post => wasi::http::types::Method::Post,
        Method::Put => wasi::http::types::Method::Put,
        Method::Delete => wasi::http::types::Method::Delete,
    };
    request
        .set_method(&wasi_method)
        .and_then(|()| request.set_scheme(Some(&scheme)))
        .and_then(|()| request.set_authority(Some(parts.authority)))
        .and_then(|()| request.set_path_with_query(Some(parts.path_with_query)))
        .map_err(|()| invalid("the authority or path is not valid in a request".into()))?;
    let request_options = RequestOptions::new();
    let nanos = |d: Duration| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX);
    // A host that does not support a timeout refuses to set it; its own default applies then.
    if let Some(t) = options.connect_timeout {
        let _ = request_options.set_connect_timeout(Some(nanos(t)));
    }
    if let Some(t) = options.first_byte_timeout {
        let _ = request_options.set_first_byte_timeout(Some(nanos(t)));
    }
    if let Some(t) = options.between_bytes_timeout {
        let _ = request_options.set_between_bytes_timeout(Some(nanos(t)));
    }

    // No body: the body resource is never taken, and the host sends the request without one.
    // (Taking it and writing nothing races the host: the request may already be on its way,
    // and flushing the empty stream then fails with "closed".)
    let outgoing_body = if body.is_empty() {
        None
    } else {
        Some(
            request
                .body()
                .map_err(|()| transport("the request body was already taken".into()))?,
        )
    };
    let future = outgoing_handler::handle(request, Some(request_options))
        .map_err(|code| error_code(url, code))?;
    if let Some(outgoing_body) = outgoing_body {
        // The body is written after `handle`: the host sends it while it is written, so a
        // body larger than the host's buffer cannot block before anyone reads it.
        write_body(url, &outgoing_body, body)?;
        OutgoingBody::finish(outgoing_body, None).map_err(|code| error_code(url, code))?;
    }
    // The host works on the request from here on (wasmtime runs it as a task of its own).
    Ok(Pending {
        url: url.to_owned(),
        max_body_bytes: options.max_body_bytes,
        future,
    })
}

#[cfg(target_arch = "wasm32")]
fn receive(pending: Pending) -> Result<Response, HttpError> {
    use wasi::io::streams::StreamError;

    let Pending {
        url,
        max_body_bytes,
        future,
    } = pending;
    let url = url.as_str();
    let transport = |reason: String| HttpError::Transport {
        url: url.to_owned(),
        reason,
    };
    future.subscribe().block();
    let response = match future.get() {
        Some(Ok(Ok(response))) => response,
        Some(Ok(Err(code))) => return Err(error_code(url, code)),
        Some(Err(())) => return Err(transport("the response was already taken".into())),
        None => return Err(transport("no response after the wait".into())),
    };

    let status = response.status();
    let headers = response
        .headers()
        .entries()
        .into_iter()
        .map(|(n, v)| {
            (
                n.to_ascii_lowercase(),
                String::from_utf8_lossy(&v).into_owned(),
            )
        })
        .collect();
    let body = response
        .consume()
        .map_err(|()| transport("the response body was already taken".into()))?;
    let stream = body
        .stream()
        .map_err(|()| transport("the response body stream was already taken".into()))?;
    let mut bytes = Vec::new();
    loop {
        match stream.blocking_read(64 * 1024) {
            Ok(chunk) => {
                if bytes.len() + chunk.len() > max_body_bytes {
                    return Err(HttpError::BodyTooLarge {
                        url: url.to_owned(),
                        limit: max_body_bytes,
                    });
                }
                bytes.extend_from_slice(&chunk);
            }
            Err(StreamError::Closed) => break,
            Err(StreamError::LastOperationFailed(e)) => {
                let reason = match wasi::http::types::http_error_code(&e) {
                    Some(code) => describe_code(&code),
                    None => e.to_debug_string(),
                };
                return Err(transport(format!("reading the body failed: {reason}")));
            }
        }
    }
    // The stream is a child of the body: drop it before finishing the body.
    drop(stream);
    drop(wasi::http::types::IncomingBody::finish(body));
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

/// Write all of `body` into a request's body stream, as fast as the host takes it.
#[cfg(target_arch = "wasm32")]
fn write_body(
    url: &str,
    outgoing: &wasi::http::types::OutgoingBody,
    body: &[u8],
) -> Result<(), HttpError> {
    use wasi::io::streams::StreamError;
    let failed = |e: StreamError| {
        let reason = match e {
            StreamError::Closed => "the connection closed while the request body was sent".into(),
            StreamError::LastOperationFailed(e) => match wasi::http::types::http_error_code(&e) {
                Some(code) => describe_code(&code),
                None => e.to_debug_string(),
            },
        };
        HttpError::Transport {
            url: url.to_owned(),
            reason: format!("sending the body failed: {reason}"),
        }
    };
    let stream = outgoing.write().map_err(|()| HttpError::Transport {
        url: url.to_owned(),
        reason: "the request body stream was already taken".into(),
    })?;
    let mut rest = body;
    while !rest.is_empty() {
        let room = stream.check_write().map_err(failed)?;
        if room == 0 {
            stream.subscribe().block();
            continue;
        }
        let n = rest.len().min(usize::try_from(room).unwrap_or(usize::MAX));
        stream.write(&rest[..n]).map_err(failed)?;
        rest = &rest[n..];
    }
    stream.blocking_flush().map_err(failed)?;
    // The stream is a child of the body: it must go before the body is finished.
    drop(stream);
    Ok(())
}

#[cfg(target_arch = "wasm32")]
fn error_code(url: &str, code: wasi::http::types::ErrorCode) -> HttpError {
    use wasi::http::types::ErrorCode;
    match code {
        ErrorCode::HttpRequestDenied => HttpError::Denied {
            url: url.to_owned(),
            reason: "not inside a connection granted to this pipeline (grants.http)".into(),
        },
        ErrorCode::DestinationIpProhibited => HttpError::Denied {
            url: url.to_owned(),
            reason: "the address is private, loopback or link-local \
                     (the grant needs allow_private = true)"
                .into(),
        },
        ErrorCode::HttpRequestUriInvalid | ErrorCode::HttpRequestMethodInvalid => {
            HttpError::InvalidUrl {
                url: url.to_owned(),
                reason: describe_code(&code),
            }
        }
        ErrorCode::HttpResponseBodySize(limit) => HttpError::BodyTooLarge {
            url: url.to_owned(),
            limit: limit.map_or(0, |l| usize::try_from(l).unwrap_or(usize::MAX)),
        },
        code => HttpError::Transport {
            url: url.to_owned(),
            reason: describe_code(&code),
        },
    }
}

#[cfg(target_arch = "wasm32")]
fn describe_code(code: &wasi::http::types::ErrorCode) -> String {
    use wasi::http::types::ErrorCode;
    match code {
        ErrorCode::DnsTimeout => "DNS lookup timed out".into(),
        ErrorCode::DnsError(e) => format!(
            "DNS lookup failed: {}",
            e.rcode.as_deref().unwrap_or("no such host")
        ),
        ErrorCode::ConnectionRefused => "connection refused".into(),
        ErrorCode::ConnectionTerminated => "connection closed by the server".into(),
        ErrorCode::ConnectionTimeout => "connect timed out".into(),
        ErrorCode::ConnectionReadTimeout | ErrorCode::HttpResponseTimeout => {
            "timed out waiting for the response".into()
        }
        ErrorCode::TlsCertificateError => "TLS certificate not trusted".into(),
        ErrorCode::TlsProtocolError => "TLS handshake failed".into(),
        ErrorCode::HttpResponseIncomplete => "the response ended early".into(),
        ErrorCode::InternalError(Some(m)) => m.clone(),
        other => format!("{other:?}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_urls_into_request_parts() {
        let p = split_url("http://hr/employees?page=2").unwrap();
        assert_eq!(
            p,
            UrlParts {
                https: false,
                authority: "hr",
                path_with_query: "/employees?page=2"
            }
        );
        let p = split_url("HTTPS://hr.example.com:8443?x=1#frag").unwrap();
        assert!(p.https);
        assert_eq!(
            (p.authority, p.path_with_query),
            ("hr.example.com:8443", "?x=1")
        );
        assert_eq!(split_url("http://hr").unwrap().path_with_query, "/");
        for (bad, why) in [
            ("hr/employees", "no scheme"),
            ("ftp://hr/x", "http or https"),
            ("http:///x", "no host"),
            ("http://user:pw@hr/x", "credentials"),
            ("http://hr/a b", "spaces"),
        ] {
            let err = split_url(bad).unwrap_err().to_string();
            assert!(err.contains(why), "{bad}: {err}");
        }
    }

    #[test]
    fn statuses_map_to_the_errors_the_host_retries_or_not() {
        let url = "http://hr/employees";
        assert_eq!(status_error(url, &Response::new(200, "[]")), None);
        let limited = Response::new(429, "").with_header("Retry-After", "30");
        assert_eq!(
            status_error(url, &limited),
            Some(Error::Unavailable(
                "http://hr/employees: HTTP 429 Too Many Requests; retry after 30".into()
            ))
        );
        assert_eq!(limited.retry_after(), Some("30"));
        let busy = Response::new(503, "maintenance until 10:00");
        assert_eq!(
            status_error(url, &busy),
            Some(Error::Unavailable(
                "http://hr/employees: HTTP 503 Service Unavailable: maintenance until 10:00".into()
            ))
        );
        assert!(matches!(
            status_error(url, &Response::new(500, "")),
            Some(Error::Unavailable(_))
        ));
        let denied = status_error(url, &Response::new(401, "bad token")).unwrap();
        assert!(matches!(denied, Error::AccessDenied(_)), "{denied:?}");
        assert!(denied.message().contains("grants.http"));
        assert!(matches!(
            status_error(url, &Response::new(404, "")),
            Some(Error::BadData(m)) if m == "http://hr/employees: HTTP 404 Not Found"
        ));
        let moved = Response::new(302, "").with_header("location", "http://elsewhere/");
        assert!(matches!(
            status_error(url, &moved),
            Some(Error::BadData(m)) if m.ends_with("redirected to http://elsewhere/")
        ));
    }

    #[test]
    fn error_bodies_are_cut_short() {
        let long = "x".repeat(1000);
        let Some(Error::BadData(m)) = status_error("u", &Response::new(400, long)) else {
            panic!("400 is bad-data");
        };
        assert!(m.ends_with("x…") && m.len() < 260, "{m}");
    }

    #[test]
    fn headers_are_found_in_any_case() {
        let r = Response::new(200, "")
            .with_header("Link", "<a>; rel=\"next\"")
            .with_header("link", "<b>; rel=\"last\"");
        assert_eq!(r.header("LINK"), Some("<a>; rel=\"next\""));
        assert_eq!(r.header_values("link").count(), 2);
        assert_eq!(r.header("etag"), None);
    }

    #[test]
    fn http_errors_become_contract_errors() {
        let url = "http://hr/x".to_owned();
        let e: Error = HttpError::Transport {
            url: url.clone(),
            reason: "connection refused".into(),
        }
        .into();
        assert_eq!(
            e,
            Error::Unavailable("http://hr/x: connection refused".into())
        );
        let e: Error = HttpError::Denied {
            url: url.clone(),
            reason: "outside the grant".into(),
        }
        .into();
        assert!(matches!(e, Error::AccessDenied(_)));
        let e: Error = HttpError::BodyTooLarge { url, limit: 10 }.into();
        assert!(matches!(e, Error::BadData(_)));
    }

    #[test]
    fn a_plugin_may_not_send_credentials() {
        let err = get("http://hr/x", &[("Authorization", "Bearer x")]).unwrap_err();
        assert!(
            err.to_string().contains("may not set `Authorization`"),
            "{err}"
        );
        let err = post("http://hr/x", &[("Content-Length", "3")], b"abc").unwrap_err();
        assert!(
            err.to_string().contains("may not set `Content-Length`"),
            "{err}"
        );
    }

    #[test]
    fn methods_are_spelled_as_in_a_request_line() {
        let all = [
            Method::Get,
            Method::Head,
            Method::Post,
            Method::Put,
            Method::Delete,
        ];
        let names: Vec<String> = all.iter().map(ToString::to_string).collect();
        assert_eq!(names, ["GET", "HEAD", "POST", "PUT", "DELETE"]);
    }

    #[test]
    fn natively_there_is_no_host() {
        assert!(matches!(
            get("http://hr/x", &[]),
            Err(HttpError::NoHost { .. })
        ));
    }
}
