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
        .route("/admin/drain", axum::routing::post(drain))
        .route("/admin/cordon", axum::routing::post(cordon))
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
    ([("content-type", "application/openmetrics-text; version=1.0.0; charset=utf-8")], node.metrics.render())
        .into_response()
}

async fn stats(State(node): State<Arc<Node>>, headers: HeaderMap) -> Response {
    if let Some(r) = refuse_unauthorized(&node, &headers) {
        return r;
    }
    axum::Json(crate::server::stats::snapshot(&node)).into_response()
}

/// `POST /admin/drain`: starts the paced drain (the same as SIGTERM). The optional JSON
/// body overrides `window_secs`, `rate`, `timeout_secs`, `pre_delay_secs`. 202 when
/// started, 409 when already draining, 400 for a bad body.
async fn drain(State(node): State<Arc<Node>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_unauthorized(&node, &headers) {
        return r;
    }
    let request: crate::server::drain::DrainRequest = if body.iter().all(u8::is_ascii_whitespace) {
        Default::default()
    } else {
        match serde_json::from_slice(&body) {
            Ok(r) => r,
            Err(e) => {
                return (
                    StatusCode::BAD_REQUEST,
                    axum::Json(serde_json::json!({"error": format!("bad drain request: {e}"), "code": 400})),
                )
                    .into_response()
            }
        }
    };
    match crate::server::drain::start(&node, &request) {
        Ok(p) => (
            StatusCode::ACCEPTED,
            axum::Json(serde_json::json!({
                "state": "draining",
                "sockets": p.at_start,
                "window_secs": p.config.window.as_secs_f64(),
                "timeout_secs": p.config.timeout.as_secs_f64(),
            })),
        )
            .into_response(),
        Err(e @ crate::server::drain::DrainError::AlreadyDraining) => {
            (StatusCode::CONFLICT, axum::Json(serde_json::json!({"error": e.to_string(), "code": 409}))).into_response()
        }
        Err(e) => (StatusCode::BAD_REQUEST, axum::Json(serde_json::json!({"error": e.to_string(), "code": 400})))
            .into_response(),
    }
}

/// `POST /admin/cordon` with `{"cordon": true|false}`: refuse new sockets (health 503)
/// while keeping the existing ones, or take them again. 200 with the new state; 409
/// while draining.
async fn cordon(State(node): State<Arc<Node>>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    if let Some(r) = refuse_unauthorized(&node, &headers) {
        return r;
    }
    let on = match serde_json::from_slice::<serde_json::Value>(&body).ok().and_then(|v| v["cordon"].as_bool()) {
        Some(on) => on,
        None => {
            return (
                StatusCode::BAD_REQUEST,
                axum::Json(serde_json::json!({"error": "expected {\"cordon\": true|false}", "code": 400})),
            )
                .into_response()
        }
    };
    if node.health.set_cordon(on) {
        tracing::info!(cordon = on, "Cordon changed by the admin API.");
        if let Some(cluster) = &node.cluster {
            let kind = if on { "cordoned" } else { "uncordoned" };
            cluster.clone().record_event(kind, format!("{} sockets kept", node.connection_count()));
        }
        axum::Json(serde_json::json!({"state": node.health.state().as_str()})).into_response()
    } else {
        (StatusCode::CONFLICT, axum::Json(serde_json::json!({"error": "the node is draining", "code": 409})))
            .into_response()
    }
}
