//! Health routes: `/up` (Reverb's), `/ready` (for load balancers) and `/live` (for
//! liveness probes: stays 200 while draining, so the orchestrator does not kill a
//! node that is shedding its sockets).

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;

use super::Node;

/// The node's serving state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeState {
    /// Accepting sockets.
    Serving,
    /// Refusing new sockets and shedding the existing ones.
    Draining,
    /// Refusing new sockets (health 503) but keeping the existing ones: set by
    /// `rtc roll` on nodes about to be drained, so clients moving off the node being
    /// drained land on nodes that will not be drained next.
    Cordoned,
}

impl NodeState {
    /// Lower-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Serving => "serving",
            NodeState::Draining => "draining",
            NodeState::Cordoned => "cordoned",
        }
    }
}

/// Shared serving state.
pub struct Health {
    state: AtomicU8,
}

impl Default for Health {
    fn default() -> Self {
        Self::new()
    }
}

impl Health {
    /// Serving.
    pub fn new() -> Self {
        Health { state: AtomicU8::new(0) }
    }

    /// The current state.
    pub fn state(&self) -> NodeState {
        match self.state.load(Ordering::Acquire) {
            0 => NodeState::Serving,
            2 => NodeState::Cordoned,
            _ => NodeState::Draining,
        }
    }

    /// Flips to draining (from serving or cordoned); returns false if it already was.
    pub fn start_draining(&self) -> bool {
        self.state.swap(1, Ordering::AcqRel) != 1
    }

    /// Cordons (true) or uncordons (false) a serving node; false when draining.
    pub fn set_cordon(&self, on: bool) -> bool {
        let (from, to) = if on { (0, 2) } else { (2, 0) };
        match self.state.compare_exchange(from, to, Ordering::AcqRel, Ordering::Acquire) {
            Ok(_) => true,
            Err(current) => current == to,
        }
    }
}

/// Readiness. A degraded node (cut off from its cluster's Redis) still answers 200:
/// it serves its own sockets, and failing readiness on every node at once when Redis
/// goes down would take the whole cluster out of the load balancer. The header and
/// body say "DEGRADED" for monitoring.
fn readiness(node: &Node) -> Response {
    match node.health.state() {
        NodeState::Serving if node.is_degraded() => {
            (StatusCode::OK, [("x-health-check", "DEGRADED")], Json(serde_json::json!({"health": "DEGRADED"})))
                .into_response()
        }
        NodeState::Serving => (StatusCode::OK, Json(serde_json::json!({"health": "OK"}))).into_response(),
        NodeState::Draining => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("x-health-check", "DRAINING")],
            Json(serde_json::json!({"health": "DRAINING"})),
        )
            .into_response(),
        NodeState::Cordoned => (
            StatusCode::SERVICE_UNAVAILABLE,
            [("x-health-check", "CORDONED")],
            Json(serde_json::json!({"health": "CORDONED"})),
        )
            .into_response(),
    }
}

/// `GET /up`: 200 `{"health":"OK"}` while serving, 503 while draining.
pub async fn up(State(node): State<Arc<Node>>) -> Response {
    readiness(&node)
}

/// `GET /ready`: as `/up`.
pub async fn ready(State(node): State<Arc<Node>>) -> Response {
    readiness(&node)
}

/// `GET /live`: 200 while the process runs, draining or not.
pub async fn live(State(node): State<Arc<Node>>) -> Response {
    Json(serde_json::json!({"live": true, "state": node.health.state().as_str()})).into_response()
}
