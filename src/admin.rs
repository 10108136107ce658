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
    let apps: Vec<serde_json::Value> = node
        .apps()
        .map(|a| {
            serde_json::json!({
                "id": a.config.id,
                "connections": a.connection_count(),
                "channels": a.channels("").len(),
            })
        })
        .collect();
    axum::Json(serde_json::json!({
        "node_id": node.config.node_id,
        "boot_id": node.boot_id,
        "version": crate::VERSION,
        "state": node.health.state().as_str(),
        "uptime_secs": node.started.elapsed().as_secs(),
        "connections": node.connection_count(),
        "apps": apps,
    }))
    .into_response()
}
