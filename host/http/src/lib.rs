//! Granted outbound HTTP for plugins (docs/design.md, "Sandbox and grants").
//!
//! A pipeline grants named connections (`grants.http = { hr = { url = "https://…/api/", … } }`);
//! extractors and loaders reach them through `wasi:http/outgoing-handler`, and every request
//! goes through weir's own hook ([`HttpHooks`]), never wasmtime's default sender:
//!
//! - the plugin addresses `http://hr/…` (the grant's name as host, scheme ignored) or the base
//!   URL itself; the host maps it onto the real URL and keeps the path under the base path
//!   (`target`); anything else is refused with a message naming the grant;
//! - the host adds the credentials (bearer, basic, OAuth2 client credentials) and refuses a
//!   plugin's own `Authorization` (`auth`);
//! - names are resolved once and every address checked: private, loopback, link-local, … ones
//!   only with `allow_private = true`; the checked address is the one connected to (`ip`,
//!   `send`);
//! - TLS through rustls (ring) with webpki's roots plus the grant's `ca_file`; HTTP/1.1; the
//!   grant's timeouts (the plugin's own are clamped to them) and body cap (`send`);
//! - `requests_per_second` spaces the requests of every instance sharing the grant (`rate`);
//! - everything is counted per grant and per instance (`counters`), and a 429/503's
//!   `Retry-After` is kept for the engine ([`HttpHooks::take_retry_after`]).
//!
//! The plugin only ever sees `wasi:http` error codes: a refusal is
//! `internal-error("weir: http grant \"hr\" refuses GET http://hr/…: …")`, and each refusal or
//! failure is also explained through the instance's [`Reporter`] (its log).

mod auth;
mod counters;
mod grant;
mod hooks;
mod ip;
mod rate;
mod send;
mod target;

pub use counters::{HttpCounters, HttpCountersSnapshot};
pub use grant::{
    ClientAuth, DEFAULT_MAX_BODY_BYTES, HttpAuth, HttpGrant, HttpGrantSpec, HttpTimeouts, OAuth2,
    Secret,
};
pub use hooks::{
    HttpHooks, HttpMeter, InstanceHttpStats, MAX_RETRY_AFTER, Reporter, parse_retry_after,
};
pub use ip::non_public_range;
/// What the runtime links and implements (`WasiHttpView`, `add_only_http_to_linker_async`).
pub use wasmtime_wasi_http;

#[cfg(test)]
mod test_servers;
