//! One error type for every handler. 4xx messages are passed to the client as they are (they
//! say what to fix); 5xx details are logged and hidden behind a generic message.

use axum::Json;
use axum::http::StatusCode;
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
            | ServiceError::Locked(weir_engine::lock::LockError::Held { .. }) => {
                Self::Conflict(e.to_string())
            }
            ServiceError::Locked(e) => Self::Internal(anyhow::Error::new(e)),
            ServiceError::ShuttingDown => Self::Unavailable(e.to_string()),
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
        error_response(status, &message)
    }
}

/// The JSON body every error has.
pub fn error_response(status: StatusCode, message: &str) -> Response {
    let mut response = Json(json!({ "error": message, "status": status.as_u16() })).into_response();
    *response.status_mut() = status;
    response
}
