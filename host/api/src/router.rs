//! Every route, and the middleware stack in one place.

use std::sync::Arc;

use axum::Router;
use axum::extract::Request;
use axum::http::header::CONTENT_TYPE;
use axum::http::{Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::{get, post};
use tower_http::limit::RequestBodyLimitLayer;
use tower_http::timeout::TimeoutLayer;

use crate::error::error_response;
use crate::{AppState, handlers, hosts, sse};

/// The whole API. Reads take [`crate::auth::Reader`], changes take [`crate::auth::Writer`];
/// see `auth.rs` for what each needs.
pub fn app(state: AppState) -> Router {
    let options = state.options().clone();
    let allowed_hosts = Arc::new(options.allowed_hosts.clone());
    Router::new()
        .route("/api/health", get(handlers::health))
        .route("/api/pipelines", get(handlers::pipelines))
        .route("/api/pipelines/{name}", get(handlers::pipeline))
        .route("/api/pipelines/{name}/runs", post(handlers::trigger))
        .route(
            "/api/pipelines/{name}/checkpoints",
            get(handlers::checkpoints).delete(handlers::reset_checkpoints),
        )
        .route("/api/runs", get(handlers::runs))
        .route("/api/runs/{id}", get(handlers::run))
        .route("/api/runs/{id}/cancel", post(handlers::cancel))
        .route("/api/runs/{id}/rejects", get(handlers::rejects))
        .route("/api/plugins", get(handlers::plugins))
        .route("/api/cluster", get(handlers::cluster))
        .route("/api/events", get(sse::events))
        .route("/api/login", post(handlers::login))
        .route("/api/logout", post(handlers::logout))
        .route("/api/session", get(handlers::session))
        .route("/metrics", get(handlers::metrics))
        .merge(crate::dashboard::routes())
        .fallback(not_found)
        .with_state(state)
        // Layers run outside-in in the reverse order of these calls (the last one first):
        // - `check_host` is outermost: a request for a host that is not ours (DNS rebinding) is
        //   refused before anything else looks at it — no route, body, token check or login
        //   count — on every route, the dashboard's files and the fallback included. Its answer
        //   is JSON already.
        // - `json_errors` sees every other response, including the timeout's and the body
        //   limit's, and turns them into JSON.
        // - The timeout covers producing the response head only, so event streams are not cut.
        .layer(RequestBodyLimitLayer::new(options.body_limit))
        .layer(TimeoutLayer::with_status_code(
            StatusCode::REQUEST_TIMEOUT,
            options.request_timeout,
        ))
        .layer(middleware::from_fn(json_errors))
        .layer(middleware::from_fn_with_state(
            allowed_hosts,
            hosts::check_host,
        ))
}

async fn not_found(method: Method, uri: axum::http::Uri) -> Response {
    error_response(
        StatusCode::NOT_FOUND,
        &format!("no route for {method} {}", uri.path()),
    )
}

/// Errors from axum and tower-http (bad JSON, wrong method, body too large, timeout) come as
/// plain text or empty bodies; give them the same JSON shape as ours.
async fn json_errors(request: Request, next: Next) -> Response {
    let response = next.run(request).await;
    let status = response.status();
    let is_json = response
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json"));
    if !(status.is_client_error() || status.is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, 16 * 1024)
        .await
        .map(|b| String::from_utf8_lossy(&b).trim().to_owned())
        .unwrap_or_default();
    let message = match status {
        StatusCode::REQUEST_TIMEOUT => "the request took too long and was abandoned".to_owned(),
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_owned(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed on this route".to_owned(),
        s if s.is_server_error() => {
            tracing::error!(status = s.as_u16(), "internal error: {text}");
            "internal error (details are in the weir log)".to_owned()
        }
        _ if text.is_empty() => status.canonical_reason().unwrap_or("error").to_owned(),
        _ => text,
    };
    let mut json = error_response(status, &message);
    // Keep headers such as `Allow` on a 405.
    for (name, value) in parts.headers.iter() {
        if name != CONTENT_TYPE && name != axum::http::header::CONTENT_LENGTH {
            json.headers_mut().insert(name.clone(), value.clone());
        }
    }
    json
}
