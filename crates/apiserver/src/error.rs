//! The API server's one error type, and the only place an error becomes an
//! HTTP response: a Kubernetes `Status` body with its code.

use api::status::{StatusDetails, StatusError};
use axum::http::{header, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// A failure Kubernetes names with a reason and code (NotFound,
    /// Conflict, Invalid, ...); its message is the Status message.
    #[error("{0}")]
    Status(Box<StatusError>),
    /// "storage failed: {0}": the store could not do its job; HTTP 500.
    #[error("storage failed: {0}")]
    Storage(StoreError),
    /// "internal error: {0}": a bug or a lost task; HTTP 500.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<StatusError> for ApiError {
    fn from(e: StatusError) -> Self {
        ApiError::Status(Box::new(e))
    }
}

/// 404 for a path that names nothing the API serves, with Kubernetes' body.
pub fn no_such_path() -> StatusError {
    StatusError {
        code: 404,
        reason: "NotFound".into(),
        message: "the server could not find the requested resource".into(),
        details: Some(StatusDetails::default()),
    }
}

/// 405 for a verb the path does not serve.
pub fn method_not_allowed() -> StatusError {
    StatusError {
        code: 405,
        reason: "MethodNotAllowed".into(),
        message: "the server does not allow this method on the requested resource".into(),
        details: Some(StatusDetails::default()),
    }
}

impl ApiError {
    /// A 409 Conflict: the object changed since the request read it.
    pub fn is_conflict(&self) -> bool {
        matches!(self, ApiError::Status(s) if s.is_conflict())
    }

    /// The Status this error is reported as.
    pub fn to_status(&self) -> StatusError {
        match self {
            ApiError::Status(s) => (**s).clone(),
            ApiError::Storage(e) => StatusError::internal(e),
            ApiError::Internal(m) => StatusError::internal(m),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.to_status();
        if status.code >= 500 {
            tracing::warn!(error = %self, "request failed");
        }
        let code = StatusCode::from_u16(status.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let body = serde_json::to_vec(&status.to_json()).unwrap_or_default();
        (
            code,
            [(
                header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            )],
            body,
        )
            .into_response()
    }
}
