//! The Pusher HTTP API on the node's port: signed requests under `/apps/{id}/…`.
//!
//! Every request is verified (`auth_key`, `auth_timestamp` within ±600 s, `auth_version`,
//! `body_md5`, `auth_signature` in constant time) before anything else happens. Errors
//! are an HTTP status with `{"error": "..."}`.

mod channels;
mod error;
mod events;
mod signing;

use std::sync::Arc;

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use signing::{verify_request, MAX_CLOCK_SKEW_SECS};

use crate::server::Node;

/// The HTTP API routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/apps/{app_id}/events", post(events::trigger))
        .route("/apps/{app_id}/batch_events", post(events::trigger_batch))
        .route("/apps/{app_id}/channels", get(channels::list))
        .route("/apps/{app_id}/channels/{channel}", get(channels::info))
        .route("/apps/{app_id}/channels/{channel}/users", get(channels::users))
        .route("/apps/{app_id}/users/{user_id}/terminate_connections", post(channels::terminate_user))
        .route("/apps/{app_id}/connections", get(channels::connections))
}

/// The JSON response of an API call, counted by status.
pub(crate) fn respond(node: &Arc<Node>, result: Result<serde_json::Value, ApiError>) -> Response {
    let res = match result {
        Ok(v) => (StatusCode::OK, axum::Json(v)).into_response(),
        Err(e) => e.into_response(),
    };
    node.metrics.http_request(res.status().as_u16());
    res
}

/// Any other path: 404 with a JSON body.
pub async fn not_found() -> Response {
    ApiError::NotFound("Not found".into()).into_response()
}
