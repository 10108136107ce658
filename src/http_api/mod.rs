//! The Pusher HTTP API on the node's port: signed requests under `/apps/{id}/…`.
//!
//! Every request is verified (`auth_key`, `auth_timestamp` within ±600 s, `auth_version`,
//! `body_md5`, `auth_signature` in constant time) before anything else happens. Errors
//! are an HTTP status with `{"error": "..."}`.

pub mod channels;
mod error;
mod events;
mod signing;

use std::sync::Arc;
use std::time::Instant;

use axum::extract::{Request, State};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;

pub use error::ApiError;
pub use signing::{verify_request, Signed, MAX_CLOCK_SKEW_SECS};

use crate::server::Node;

/// The HTTP API routes, each timed into `rtc_http_api_request_seconds` under its name.
pub fn routes(node: &Arc<Node>) -> Router<Arc<Node>> {
    let timed = |route: &'static str| middleware::from_fn_with_state((node.clone(), route), timed);
    Router::new()
        .route("/apps/{app_id}/events", post(events::trigger).layer(timed("events")))
        .route("/apps/{app_id}/batch_events", post(events::trigger_batch).layer(timed("batch_events")))
        .route("/apps/{app_id}/channels", get(channels::list).layer(timed("channels")))
        .route("/apps/{app_id}/channels/{channel}", get(channels::info).layer(timed("channel")))
        .route("/apps/{app_id}/channels/{channel}/users", get(channels::users).layer(timed("users")))
        .route(
            "/apps/{app_id}/users/{user_id}/terminate_connections",
            post(channels::terminate_user).layer(timed("terminate_connections")),
        )
        .route("/apps/{app_id}/connections", get(channels::connections).layer(timed("connections")))
}

/// When an HTTP API request reached its route: the arrival of the events it publishes.
#[derive(Debug, Clone, Copy)]
pub struct Arrival(pub Instant);

/// Times and counts (by status) one request, from reaching the route (before its body is read) to its response
/// being ready (before it is written), and hands the start to the handler as [`Arrival`].
async fn timed(State((node, route)): State<(Arc<Node>, &'static str)>, mut req: Request, next: Next) -> Response {
    let start = Instant::now();
    req.extensions_mut().insert(Arrival(start));
    let res = next.run(req).await;
    let status = res.status().as_u16();
    node.metrics.timing.http_api(route, status, start.elapsed().as_secs_f64());
    node.metrics.http_request(status);
    res
}

/// What every API handler answers: a JSON object, or an error with its status.
pub type ApiResult = Result<axum::Json<serde_json::Value>, ApiError>;

/// Any other path: 404 with a JSON body.
pub async fn not_found() -> Response {
    ApiError::NotFound("Not found".into()).into_response()
}
