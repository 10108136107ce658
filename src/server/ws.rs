//! The WebSocket upgrade at `/app/{key}`: refuse while draining (HTTP 503, never an
//! accepted upgrade followed by 4200, which makes pusher-js retry in a tight loop),
//! check the app, protocol version and origin, and only for a socket that passes them
//! charge the new-connection budgets (node-wide, then per client address), so a flood
//! with a bogus key cannot use up what real clients need. Then hand the socket to its
//! task.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Body;
use axum::extract::ws::{CloseFrame, Message, WebSocket, WebSocketUpgrade};
use axum::extract::{Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Extension;
use futures_util::SinkExt;
use hyper::upgrade::OnUpgrade;
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::{Role, WebSocketConfig};
use tokio_tungstenite::WebSocketStream;

use super::conn::Upgraded;
use super::listen::SlotIo;
use super::{conn, Frame, Node, NodeState};
use crate::protocol::{frame, CloseCode};

/// Read buffer per socket. tungstenite's default (128 KiB) would cost gigabytes at
/// 100k sockets. tungstenite zero-fills the whole buffer before each read, so a socket
/// that has read anything keeps this much resident: what pusher-js sends (a ping of
/// 30 bytes every activity timeout, a subscribe of a few hundred) fits in 512 bytes,
/// and a larger message (the default limit is 10 KB) simply takes several reads.
pub const READ_BUFFER_SIZE: usize = 512;
/// Frames are buffered up to this size before a write; every batch is flushed.
pub const WRITE_BUFFER_SIZE: usize = 8 * 1024;
/// Hard cap on tungstenite's write buffer (the outbox bounds the queue before it).
pub const MAX_WRITE_BUFFER_SIZE: usize = 1024 * 1024;
/// Seconds a client is told to wait before retrying a refused upgrade.
pub const RETRY_AFTER_SECS: u64 = 5;

/// Protocol versions accepted (pusher-js sends 7).
const PROTOCOLS: std::ops::RangeInclusive<u32> = 5..=7;

/// `GET /app/{key}`.
///
/// axum's [`WebSocketUpgrade`] checks the request (and answers a bad one), but the
/// upgrade itself is done here from hyper's [`OnUpgrade`] (taken before the extractor
/// consumes it), so the socket can be had back as the plain `TcpStream` it is: the
/// outbox then writes pre-framed broadcasts to it directly (see `conn` and `outbox`).
#[allow(clippy::too_many_arguments)]
pub async fn upgrade(
    State(node): State<Arc<Node>>,
    Path(key): Path<String>,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    peer: Option<axum::Extension<super::listen::PeerAddr>>,
    on_upgrade: Option<Extension<OnUpgrade>>,
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    if let Err(rejection) = ws {
        return rejection.into_response();
    }
    let (Some(Extension(on_upgrade)), Some(ws_key)) = (on_upgrade, headers.get(header::SEC_WEBSOCKET_KEY)) else {
        return (StatusCode::UPGRADE_REQUIRED, "This request cannot be upgraded to a WebSocket.\n").into_response();
    };
    let accept = derive_accept_key(ws_key.as_bytes());
    if node.health.state() != NodeState::Serving {
        node.metrics.upgrade_refused(node.health.state().as_str());
        return (
            StatusCode::SERVICE_UNAVAILABLE,
            [
                ("retry-after", RETRY_AFTER_SECS.to_string()),
                ("x-health-check", node.health.state().as_str().to_uppercase()),
            ],
            "Node is not taking new connections (draining or cordoned); connect to another node.\n",
        )
            .into_response();
    }
    let app = node.app_by_key(&key).cloned();
    let origin = headers.get("origin").and_then(|v| v.to_str().ok());
    let refusal = match (&app, params.get("protocol")) {
        (None, _) => Some(CloseCode::AppNotFound),
        (Some(a), _) if !a.config.enabled => Some(CloseCode::AppDisabled),
        (Some(_), None) => Some(CloseCode::NoProtocol),
        (Some(_), Some(p)) if !p.parse::<u32>().is_ok_and(|v| PROTOCOLS.contains(&v)) => {
            Some(CloseCode::UnsupportedProtocol)
        }
        (Some(a), _) if !a.config.origin_allowed(origin) => Some(CloseCode::Unauthorized),
        _ => None,
    };
    // Refused sockets are answered with their close code and cost no budget.
    if refusal.is_none() {
        if let Some(limit) = over_budget(&node, &headers, peer.map(|p| p.0 .0)) {
            node.metrics.upgrade_refused("admission");
            node.metrics.limit_hit(limit);
            return (
                StatusCode::SERVICE_UNAVAILABLE,
                [("retry-after", "1")],
                if limit == "connection_limit" {
                    "This node is at its connection limit; connect to another node or retry shortly.\n"
                } else {
                    "Too many new connections on this node right now; retry shortly.\n"
                },
            )
                .into_response();
        }
    }
    let max_message = app.as_ref().map(|a| a.config.max_message_size).unwrap_or(10_000);
    // Messages up to twice the app's limit are read and answered with pusher:error;
    // beyond that tungstenite refuses them and the socket closes with 1009.
    let hard_cap = (max_message * 2).max(4096);
    let config = WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER_SIZE)
        .write_buffer_size(WRITE_BUFFER_SIZE)
        .max_write_buffer_size(MAX_WRITE_BUFFER_SIZE)
        .max_message_size(Some(hard_cap))
        .max_frame_size(Some(hard_cap));
    let tasks = node.tasks.clone();
    tokio::spawn(tasks.track_future(async move {
        let Ok(io) = on_upgrade.await else { return };
        let socket = match io.downcast::<TokioIo<SlotIo<TcpStream>>>() {
            Ok(parts) => {
                let (stream, slot) = parts.io.into_inner().into_parts();
                Upgraded::Tcp { stream, read_buf: parts.read_buf, slot }
            }
            Err(io) => Upgraded::Other(io),
        };
        match (refusal, app) {
            (None, Some(app)) => {
                if app.try_admit() {
                    conn::run(node, app, socket, config).await;
                } else {
                    node.metrics.limit_hit("max_connections");
                    refuse_upgraded(socket, CloseCode::OverQuota, config).await;
                }
            }
            (code, _) => refuse_upgraded(socket, code.unwrap_or(CloseCode::AppNotFound), config).await,
        }
    }));
    Response::builder()
        .status(StatusCode::SWITCHING_PROTOCOLS)
        .header(header::CONNECTION, "upgrade")
        .header(header::UPGRADE, "websocket")
        .header(header::SEC_WEBSOCKET_ACCEPT, accept)
        .body(Body::empty())
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

/// [`refuse`] on a socket upgraded by [`upgrade`].
async fn refuse_upgraded(socket: Upgraded, code: CloseCode, config: WebSocketConfig) {
    use tokio_tungstenite::tungstenite::protocol::frame::CloseFrame as WsCloseFrame;
    use tokio_tungstenite::tungstenite::Message as WsMessage;
    // The slot is held until the refusal is sent.
    let (io, _slot): (Box<dyn IoStream>, _) = match socket {
        Upgraded::Tcp { stream, slot, .. } => (Box::new(stream), Some(slot)),
        Upgraded::Other(io) => (Box::new(TokioIo::new(io)), None),
    };
    let mut ws = WebSocketStream::from_raw_socket(io, Role::Server, Some(config)).await;
    let err = frame::error_frame(Some(code.code()), code.reason());
    let _ = ws.send(WsMessage::text(err)).await;
    let close = WsCloseFrame { code: code.code().into(), reason: code.reason().into() };
    let _ = ws.send(WsMessage::Close(Some(close))).await;
}

/// Any socket stream, boxed.
trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send {}
impl<T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send> IoStream for T {}

/// The budget a new socket would exceed, if any: the node's WebSocket share of the
/// connection cap, the node-wide rate, then the client address's rate (tokens are only
/// taken from the per-address bucket when the node-wide one allowed the socket).
fn over_budget(node: &Node, headers: &HeaderMap, peer: Option<std::net::SocketAddr>) -> Option<&'static str> {
    if !node.connections.room_for_websocket() {
        return Some("connection_limit");
    }
    if node.admission.as_ref().is_some_and(|a| !a.try_take()) {
        return Some("max_new_connections_per_sec");
    }
    if let (Some(limiter), Some(peer)) = (&node.admission_per_address, peer) {
        let forwarded = headers.get("x-forwarded-for").and_then(|v| v.to_str().ok());
        let client = node.config.edge.client_address(peer.ip(), forwarded);
        if !limiter.try_take(client) {
            return Some("max_new_connections_per_address_per_sec");
        }
    }
    None
}

/// `/app/` without a key: 4005 after the upgrade, as Pusher does.
pub async fn missing_key(
    ws: Result<WebSocketUpgrade, axum::extract::ws::rejection::WebSocketUpgradeRejection>,
) -> Response {
    match ws {
        Ok(ws) => ws.read_buffer_size(READ_BUFFER_SIZE).on_upgrade(|socket| refuse(socket, CloseCode::PathNotFound)),
        Err(_) => (StatusCode::NOT_FOUND, axum::Json(serde_json::json!({"error": "Not found"}))).into_response(),
    }
}

/// Sends `pusher:error` with the code, then the close frame, then drops the socket.
pub async fn refuse(mut socket: WebSocket, code: CloseCode) {
    let err = Frame::from(frame::error_frame(Some(code.code()), code.reason()));
    let _ = socket.send(Message::Text(err)).await;
    let _ = socket.send(Message::Close(Some(CloseFrame { code: code.code(), reason: code.reason().into() }))).await;
}
