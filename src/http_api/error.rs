//! HTTP API errors: status plus `{"error": "..."}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};

/// An HTTP API error, mapped to its status.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiError {
    /// 400: the request is malformed or breaks a rule.
    #[error("{0}")]
    BadRequest(String),
    /// 401: bad key, signature, body_md5 or stale timestamp.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: the app is disabled.
    #[error("{0}")]
    Forbidden(String),
    /// 404: unknown app or route.
    #[error("{0}")]
    NotFound(String),
    /// 413: a payload over its limit.
    #[error("{0}")]
    TooLarge(String),
    /// 429: over the request rate.
    #[error("{0}")]
    TooManyRequests(String),
}

impl ApiError {
    /// The HTTP status.
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::BadRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::Forbidden(_) => StatusCode::FORBIDDEN,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::TooManyRequests(_) => StatusCode::TOO_MANY_REQUESTS,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = self.status();
        let body = axum::Json(serde_json::json!({"error": self.to_string(), "code": status.as_u16()}));
        if status == StatusCode::TOO_MANY_REQUESTS {
            (status, [("retry-after", "1")], body).into_response()
        } else {
            (status, body).into_response()
        }
    }
}
