//! Ops endpoints: `/metrics` (Prometheus text) and `/admin/stats` (JSON the console
//! reads). Both require `Authorization: Bearer <admin token>`, compared in constant time.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;

use crate::server::Node;

/// The ops routes.
pub fn routes() -> Router<Arc<Node>> {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/admin/stats", get(stats))
}

/// Checks the bearer token; returns the 401 response when it is missing or wrong.
pub fn refuse_unauthorized(node: &Node, headers: &HeaderMap) -> Option<Response> {
    let presented = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(t) if node.config.admin_token.matches(t) => None,
        _ => Some((
            StatusCode::UNAUTHORIZED,
            [("www-authenticate", "Bearer")],
            axum::Json(
                serde_json::json!({"error": "Admin token required: send 'Authorization: Bearer <token>'", "code": 401}),
            ),
        )
            .into_response()),
    }
}

async fn metrics(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&node, &headers) {
        return r;
    }
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics.render(),
    )
        .into_response()
}

async fn stats(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&node, &headers) {
        return r;
    }
    axum::Json(crate::server::stats::snapshot(&node)).into_response()
}
