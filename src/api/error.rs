//! The one place where typed errors become HTTP answers:
//! status + `{"error": "<kebab-code>", "detail": "..."}`.

use crate::pool::PoolError;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

/// An HTTP error answer.
#[derive(Debug, Clone)]
pub struct ApiError {
    /// HTTP status.
    pub status: StatusCode,
    /// Stable kebab-case code.
    pub code: &'static str,
    /// Human text; never contains secrets.
    pub detail: String,
}

impl ApiError {
    /// Build an error answer.
    pub fn new(status: StatusCode, code: &'static str, detail: impl Into<String>) -> Self {
        ApiError {
            status,
            code,
            detail: detail.into(),
        }
    }

    /// The JSON body.
    pub fn body(&self) -> serde_json::Value {
        json!({"error": self.code, "detail": self.detail})
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (self.status, Json(self.body())).into_response()
    }
}

impl From<PoolError> for ApiError {
    fn from(e: PoolError) -> Self {
        use StatusCode as S;
        let detail = e.to_string();
        let (status, code) = match &e {
            PoolError::UnsupportedPool(_) => (S::UNPROCESSABLE_ENTITY, "unsupported-pool"),
            PoolError::InvalidFormat(_) => (S::UNPROCESSABLE_ENTITY, "invalid-format"),
            PoolError::ReservedName(_) => (S::CONFLICT, "reserved"),
            PoolError::Conflict => (S::CONFLICT, "conflict"),
            PoolError::NotFound(_) => (S::NOT_FOUND, "not-found"),
            PoolError::TokenMismatch => (S::FORBIDDEN, "token-mismatch"),
            PoolError::Expired(_) => (S::GONE, "reservation-expired"),
            PoolError::MissingLbIp => (S::UNPROCESSABLE_ENTITY, "missing-lb-ip"),
            PoolError::InvalidLbIp(_) => (S::UNPROCESSABLE_ENTITY, "invalid-lb-ip"),
            PoolError::InvalidConsoleLbIp(_) => (S::UNPROCESSABLE_ENTITY, "invalid-console-lb-ip"),
            PoolError::FqdnMismatch { .. } => (S::UNPROCESSABLE_ENTITY, "fqdn-mismatch"),
            PoolError::Template(_) | PoolError::Store(_) | PoolError::Backend(_) => {
                // Internal detail goes to the log, not to the caller.
                tracing::error!(error = %e, "internal error");
                return ApiError::new(
                    S::INTERNAL_SERVER_ERROR,
                    "internal-error",
                    "internal error; see pdm logs",
                );
            }
        };
        ApiError::new(status, code, detail)
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(e: crate::store::StoreError) -> Self {
        PoolError::Store(e).into()
    }
}
