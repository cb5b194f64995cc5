//! weir's `wasi:http` hook: every outgoing request of a plugin goes through
//! [`HttpHooks::send`], which maps it onto a grant or refuses it, adds the grant's credentials,
//! waits for the grant's rate, sends it within the grant's limits, and counts it.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use http::{HeaderMap, Method, Request, Response, StatusCode, Version};
use http_body_util::BodyExt;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use crate::auth;
use crate::counters::{Count, HttpCounters, HttpCountersSnapshot, Tally};
use crate::grant::{Granted, HttpAuth, HttpGrant};
use crate::send::{self, CappedBody, IoFuture, Limits, SendFailure};
use crate::target;

/// The longest `Retry-After` honoured: a server asking for more still gets its worker
/// restarted after this long.
pub const MAX_RETRY_AFTER: Duration = Duration::from_secs(15 * 60);

/// Request bodies up to this size are kept so an OAuth2 request can be sent again after a 401
/// with a refreshed token; larger ones are streamed and the 401 goes to the plugin.
const MAX_REPLAY_BODY: u64 = 1 << 20;

/// Where the host's explanations go (the instance's log: a refused request, a TLS failure, a
/// body past its cap), with their level.
pub type Reporter = Arc<dyn Fn(tracing::Level, &str) + Send + Sync>;

/// What one instance did over HTTP.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct InstanceHttpStats {
    /// Per grant name.
    pub by_grant: BTreeMap<String, HttpCountersSnapshot>,
    /// Requests refused because no grant matched them.
    pub unmatched_refusals: u64,
}

/// One instance's own record: its counters and the `Retry-After` of its throttled responses
/// (the longest asked for, and when the latest of them arrived).
#[derive(Default)]
struct InstanceRecord {
    counters: BTreeMap<String, Arc<HttpCounters>>,
    unmatched: AtomicU64,
    retry_after: Mutex<Option<(Duration, Instant)>>,
}

/// Reads one instance's HTTP counters (see [`HttpHooks::meter`]).
#[derive(Clone)]
pub struct HttpMeter(Arc<InstanceRecord>);

impl HttpMeter {
    /// The instance's counters so far.
    pub fn stats(&self) -> InstanceHttpStats {
        InstanceHttpStats {
            by_grant: self
                .0
                .counters
                .iter()
                .map(|(name, c)| (name.clone(), c.snapshot()))
                .collect(),
            unmatched_refusals: self.0.unmatched.load(Ordering::Relaxed),
        }
    }
}

/// The `wasi:http` hooks of one plugin instance: its pipeline's grants (shared state) and its
/// own record.
#[derive(Clone)]
pub struct HttpHooks {
    grants: Arc<[HttpGrant]>,
    record: Arc<InstanceRecord>,
    report: Option<Reporter>,
}

impl HttpHooks {
    /// Hooks for an instance given `grants`; `report` receives the host's explanations.
    pub fn new<'a>(
        grants: impl IntoIterator<Item = &'a HttpGrant>,
        report: Option<Reporter>,
    ) -> Self {
        let grants: Vec<HttpGrant> = grants.into_iter().cloned().collect();
        let record = InstanceRecord {
            counters: grants
                .iter()
                .map(|g| (g.name().to_owned(), Arc::default()))
                .collect(),
            ..InstanceRecord::default()
        };
        Self {
            grants: grants.into(),
            record: Arc::new(record),
            report,
        }
    }

    /// This instance's counters so far.
    pub fn stats(&self) -> InstanceHttpStats {
        self.meter().stats()
    }

    /// A read-only view of this instance's counters that outlives the instance: what a
    /// failed attempt's requests cost is still known after its store is dropped.
    pub fn meter(&self) -> HttpMeter {
        HttpMeter(self.record.clone())
    }

    /// The delay the 429s/503s asked for (the longest, capped at [`MAX_RETRY_AFTER`]), cleared.
    pub fn take_retry_after(&self) -> Option<Duration> {
        self.retry_after_slot().take().map(|(delay, _)| delay)
    }

    /// Forget a `Retry-After` whose response arrived before `instant`. A plugin may send a
    /// request in one call and read its answer in the next (http-extract asks for the next
    /// page ahead), so the engine keeps what arrived since the previous call began.
    pub fn forget_retry_after_before(&self, instant: Instant) {
        let mut slot = self.retry_after_slot();
        if slot.is_some_and(|(_, arrived)| arrived < instant) {
            *slot = None;
        }
    }

    fn retry_after_slot(&self) -> std::sync::MutexGuard<'_, Option<(Duration, Instant)>> {
        self.record
            .retry_after
            .lock()
            .unwrap_or_else(|p| p.into_inner())
    }

    /// Send one request of the plugin: the whole of weir's policy. Errors are what the plugin
    /// sees (`internal-error("weir: …")` for a refusal, the precise code otherwise); the
    /// explanation goes to the reporter too.
    pub fn send(
        &self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> impl Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send + 'static {
        let this = self.clone();
        async move { this.send_inner(request, options).await }
    }

    /// Explain something to the reporter (which logs it), or to the host log without one.
    fn say(&self, level: tracing::Level, message: &str) {
        match &self.report {
            Some(report) => report(level, message),
            None if level == tracing::Level::WARN => {
                tracing::warn!(target: "weir::http", "{message}")
            }
            None => tracing::debug!(target: "weir::http", "{message}"),
        }
    }

    async fn send_inner(
        &self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(Response<WasiBody>, IoFuture), Error> {
        let (parts, body) = request.into_parts();
        let what = target::describe(&parts.method, &parts.uri);
        let target = match target::resolve(&self.grants, &parts.method, &parts.uri, &parts.headers)
        {
            Ok(t) => t,
            Err(refusal) => {
                match refusal.grant.as_deref().and_then(|name| self.tally(name)) {
                    Some(tally) => tally.add(Count::Refused),
                    None => {
                        self.record.unmatched.fetch_add(1, Ordering::Relaxed);
                    }
                }
                self.say(tracing::Level::WARN, &refusal.message);
                return Err(Error::InternalError(Some(refusal.message)));
            }
        };
        let grant = target.grant.inner.clone();
        let tally = self
            .tally(&grant.name)
            .expect("the target's grant is one of ours");
        let failed =
            |explain: &str| format!("weir: http grant \"{}\": {what}: {explain}", grant.name);
        if let Some(limiter) = &grant.limiter {
            limiter.acquire().await;
        }
        let limits = clamp(&grant, options);
        let oauth2 = matches!(grant.spec.auth, HttpAuth::OAuth2(_));
        let mut body = Some(RequestBody::new(body, &parts.headers, oauth2).await?);
        let mut retried = false;
        let (response, io) = loop {
            let credentials = match auth::credentials(&grant, &limits, &tally).await {
                Ok(c) => c,
                Err(e) => {
                    let message = failed(&format!("no credentials: {e}"));
                    self.say(tracing::Level::WARN, &message);
                    return Err(Error::InternalError(Some(message)));
                }
            };
            let this_body = body.as_mut().expect("a body for every attempt").take();
            let outgoing = build(
                &parts.method,
                parts.version,
                &parts.headers,
                &target.endpoint,
                credentials.header,
                this_body,
            )?;
            let (response, io) =
                match send::send_once(&grant, &target.endpoint, outgoing, &limits, &what).await {
                    Ok(sent) => {
                        tally.add(Count::Request);
                        sent
                    }
                    Err(SendFailure::Refused(message)) => {
                        tally.add(Count::Refused);
                        self.say(tracing::Level::WARN, &message);
                        return Err(Error::InternalError(Some(message)));
                    }
                    Err(SendFailure::Failed { error, explain }) => {
                        tally.add(Count::Request);
                        tally.add(Count::Error);
                        self.say(tracing::Level::WARN, &failed(&explain));
                        return Err(error);
                    }
                };
            let stale_token = response.status() == StatusCode::UNAUTHORIZED
                && !retried
                && body.as_ref().is_some_and(RequestBody::replayable);
            match credentials.cached_generation {
                Some(generation) if stale_token => {
                    let cache = grant.tokens.as_ref().expect("oauth2 grant");
                    cache.invalidate(generation).await;
                    tally.add(Count::AuthRetry);
                    tally.add(Count::Status(401));
                    self.say(
                        tracing::Level::DEBUG,
                        &failed("401 with a cached OAuth2 token; fetching a new token and sending again"),
                    );
                    retried = true;
                    drop(response);
                    drop(io);
                }
                _ => break (response, io),
            }
        };
        let status = response.status();
        tally.add(Count::Status(status.as_u16()));
        if matches!(
            status,
            StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE
        ) && let Some(delay) = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| parse_retry_after(v, SystemTime::now()))
        {
            tally.add(Count::Throttled);
            let mut slot = self.retry_after_slot();
            let longest = slot.map_or(delay, |(d, _)| d.max(delay));
            *slot = Some((longest, Instant::now()));
            self.say(
                tracing::Level::INFO,
                &format!(
                    "weir: http grant \"{}\": {what}: {status} with Retry-After {} s; if the plugin reports it as unavailable, its worker waits at least that long",
                    grant.name,
                    delay.as_secs()
                ),
            );
        }
        let notice: send::Notice = {
            let this = self.clone();
            let prefix = failed("");
            Arc::new(move |explain: String| {
                this.say(tracing::Level::WARN, &format!("{prefix}{explain}"))
            })
        };
        let response = response
            .map(|incoming| CappedBody::new(incoming, &limits, tally, notice).boxed_unsync());
        Ok((response, io))
    }

    /// The counters a request of grant `name` adds to: the grant's and this instance's.
    fn tally(&self, name: &str) -> Option<Tally> {
        let grant = self.grants.iter().find(|g| g.name() == name)?;
        Some(Tally {
            shared: grant.inner.counters.clone(),
            instance: self.record.counters.get(name)?.clone(),
        })
    }
}

/// A request body, kept whole when it may have to be sent twice.
enum RequestBody {
    Kept(Bytes),
    Streamed(Option<WasiBody>),
}

impl RequestBody {
    async fn new(body: WasiBody, headers: &HeaderMap, keep: bool) -> Result<Self, Error> {
        use http_body::Body as _;
        let small = headers
            .get(http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .is_some_and(|n| n <= MAX_REPLAY_BODY);
        if keep && (body.is_end_stream() || small) {
            let bytes = body.collect().await?.to_bytes();
            return Ok(Self::Kept(bytes));
        }
        Ok(Self::Streamed(Some(body)))
    }

    fn replayable(&self) -> bool {
        matches!(self, Self::Kept(_))
    }

    fn take(&mut self) -> WasiBody {
        match self {
            Self::Kept(bytes) => http_body_util::Full::new(bytes.clone())
                .map_err(|never| match never {})
                .boxed_unsync(),
            Self::Streamed(body) => body.take().unwrap_or_else(|| {
                http_body_util::Empty::new()
                    .map_err(|never| match never {})
                    .boxed_unsync()
            }),
        }
    }
}

/// The request as the server gets it: origin-form target, the plugin's headers, `Host` and the
/// grant's `Authorization`.
fn build(
    method: &Method,
    version: Version,
    headers: &HeaderMap,
    endpoint: &crate::grant::Endpoint,
    authorization: Option<http::HeaderValue>,
    body: WasiBody,
) -> Result<Request<WasiBody>, Error> {
    let mut request = Request::builder()
        .method(method.clone())
        .version(if version == Version::HTTP_10 {
            version
        } else {
            Version::HTTP_11
        })
        .uri(format!("{}{}", endpoint.path, endpoint.query))
        .body(body)
        .map_err(|e| Error::InternalError(Some(format!("weir: building the request: {e}"))))?;
    let out = request.headers_mut();
    for (name, value) in headers {
        out.append(name, value.clone());
    }
    let host = http::HeaderValue::from_str(&endpoint.authority())
        .map_err(|_| Error::HttpRequestUriInvalid)?;
    out.insert(http::header::HOST, host);
    if let Some(value) = authorization {
        out.insert(http::header::AUTHORIZATION, value);
    }
    Ok(request)
}

/// The grant's limits, lowered by the plugin's own options where those are shorter.
fn clamp(grant: &Granted, options: Option<RequestOptions>) -> Limits {
    let grant_timeouts = grant.spec.timeouts;
    let pick = |asked: Option<Duration>, max: Duration| asked.map_or(max, |a| a.min(max));
    let options = options.unwrap_or_default();
    Limits {
        connect: pick(options.connect_timeout, grant_timeouts.connect),
        first_byte: pick(options.first_byte_timeout, grant_timeouts.first_byte),
        between_bytes: pick(options.between_bytes_timeout, grant_timeouts.between_bytes),
        max_body_bytes: grant.spec.max_body_bytes,
    }
}

/// `Retry-After`: delay-seconds or an HTTP date, capped at [`MAX_RETRY_AFTER`].
pub fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    let delay = if value.bytes().all(|b| b.is_ascii_digit()) && !value.is_empty() {
        Duration::from_secs(value.parse::<u64>().unwrap_or(u64::MAX))
    } else {
        let when = httpdate::parse_http_date(value).ok()?;
        when.duration_since(now).unwrap_or(Duration::ZERO)
    };
    Some(delay.min(MAX_RETRY_AFTER))
}

impl WasiHttpHooks for HttpHooks {
    /// wasmtime's list, less `Proxy-Authorization`: a plugin that sets it reaches
    /// [`HttpHooks::send`] and is refused there with a message naming the grant.
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| {
            name != http::header::PROXY_AUTHORIZATION && DEFAULT_FORBIDDEN_HEADERS.contains(name)
        })
    }

    /// The host sets `Host` to the real authority, not the grant name the plugin wrote.
    fn set_host_header(&mut self) -> bool {
        false
    }

    fn send_request(
        &mut self,
        request: Request<WasiBody>,
        options: Option<RequestOptions>,
        _request_errors: Box<dyn Future<Output = Result<(), Error>> + Send>,
    ) -> Box<dyn Future<Output = Result<(Response<WasiBody>, IoFuture), Error>> + Send> {
        Box::new(self.send(request, options))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn retry_after_is_seconds_or_a_date_and_capped() {
        let now = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        assert_eq!(parse_retry_after("2", now), Some(Duration::from_secs(2)));
        assert_eq!(
            parse_retry_after(" 120 ", now),
            Some(Duration::from_secs(120))
        );
        assert_eq!(
            parse_retry_after("999999999999999999999", now),
            Some(MAX_RETRY_AFTER)
        );
        let later = httpdate::fmt_http_date(now + Duration::from_secs(30));
        assert_eq!(
            parse_retry_after(&later, now),
            Some(Duration::from_secs(30))
        );
        let past = httpdate::fmt_http_date(now - Duration::from_secs(30));
        assert_eq!(parse_retry_after(&past, now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("soon", now), None);
        assert_eq!(parse_retry_after("-1", now), None);
    }
}

#[cfg(test)]
#[path = "hooks_tests.rs"]
mod integration;
