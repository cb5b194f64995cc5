//! The HTTP API of `weir serve` (docs/design.md, "Service mode"): pipelines, runs, rejects, checkpoints, plugins,
//! health, Prometheus metrics and the live event stream, over the engine's [`Service`].
//!
//! [`app`] builds the whole router, so handlers are tested with `oneshot` and no socket.

mod auth;
mod dashboard;
mod error;
mod handlers;
mod hosts;
mod metrics;
mod router;
mod sse;
mod throttle;

use std::sync::Arc;
use std::time::Duration;

use weir_engine::service::Service;

pub use auth::{
    Auth, COOKIE_NAME, MIN_TOKEN_CHARS, TokenSource, TokenTooShort, random_hex, resolve_token,
};
pub use error::ApiError;
pub use hosts::AllowedHosts;
pub use metrics::Metrics;
pub use router::app;
pub use throttle::{Clock, LoginLimit};

/// Limits and intervals of the API.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// SSE keep-alive comment interval.
    pub keep_alive: Duration,
    /// Time a handler may take to answer (not counting an event stream's body).
    pub request_timeout: Duration,
    /// Largest request body accepted.
    pub body_limit: usize,
    /// The `Host` names served; any other gets `421` (DNS rebinding protection).
    pub allowed_hosts: AllowedHosts,
    /// Clients come through a TLS proxy: the session cookie is `Secure`.
    pub behind_tls: bool,
}

impl Default for ApiOptions {
    fn default() -> Self {
        Self {
            keep_alive: Duration::from_secs(15),
            request_timeout: Duration::from_secs(30),
            body_limit: 64 * 1024,
            allowed_hosts: AllowedHosts::default(),
            behind_tls: false,
        }
    }
}

/// What every handler gets.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

struct Inner {
    service: Arc<Service>,
    auth: Auth,
    metrics: Arc<Metrics>,
    options: ApiOptions,
}

impl AppState {
    pub fn new(
        service: Arc<Service>,
        auth: Auth,
        metrics: Arc<Metrics>,
        options: ApiOptions,
    ) -> Self {
        Self(Arc::new(Inner {
            service,
            auth,
            metrics,
            options,
        }))
    }

    pub fn service(&self) -> &Arc<Service> {
        &self.0.service
    }

    pub fn auth(&self) -> &Auth {
        &self.0.auth
    }

    pub fn metrics(&self) -> &Metrics {
        &self.0.metrics
    }

    pub fn options(&self) -> &ApiOptions {
        &self.0.options
    }
}

#[cfg(test)]
mod tests;
