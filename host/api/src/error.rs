//! One error type for every handler. 4xx messages are passed to the client as they are (they
//! say what to fix); 5xx details are logged and hidden behind a generic message.

use std::time::Duration;

use axum::Json;
use axum::http::StatusCode;
use axum::http::header::RETRY_AFTER;
use axum::response::{IntoResponse, Response};
use serde_json::json;
use weir_engine::service::ServiceError;

/// An error response: `{"error": "...", "status": 404}`.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("{0}")]
    BadRequest(String),
    #[error(
        "missing or wrong token: send `Authorization: Bearer <token>` or log in with POST /api/login"
    )]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    /// Too many wrong tokens from this address; nothing is checked until `retry_after` passes.
    #[error(
        "too many wrong tokens from this address: token checks are refused for {} s",
        whole_seconds(*retry_after)
    )]
    TooManyAttempts { retry_after: Duration },
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::TooManyAttempts { .. } => StatusCode::TOO_MANY_REQUESTS,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<ServiceError> for ApiError {
    fn from(e: ServiceError) -> Self {
        match e {
            ServiceError::UnknownPipeline(_) => Self::NotFound(e.to_string()),
            ServiceError::InvalidPipeline { .. }
            | ServiceError::AlreadyRunning { .. }
            | ServiceError::RunningOnHost { .. }
            | ServiceError::Locked(weir_engine::lock::LockError::Held { .. }) => {
                Self::Conflict(e.to_string())
            }
            ServiceError::Locked(e) => Self::Internal(anyhow::Error::new(e)),
            ServiceError::ShuttingDown
            | ServiceError::Cluster(_)
            | ServiceError::Draining { .. } => Self::Unavailable(e.to_string()),
            ServiceError::Plugin(e) => Self::Internal(anyhow::Error::new(e)),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(e) => {
                tracing::error!(status = status.as_u16(), "internal error: {e:#}");
                "internal error (details are in the weir log)".to_owned()
            }
            e => e.to_string(),
        };
        let mut response = error_response(status, &message);
        if let Self::TooManyAttempts { retry_after } = self {
            response
                .headers_mut()
                .insert(RETRY_AFTER, whole_seconds(retry_after).into());
        }
        response
    }
}

/// Seconds, rounded up: a client that waits this long is not refused again.
fn whole_seconds(d: Duration) -> u64 {
    d.as_millis().div_ceil(1000).max(1) as u64
}

/// The JSON body every error has.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let mut response = Json(json!({ "error": message, "status": status.as_u16() })).into_response();
    *response.status_mut() = status;
    response
}
