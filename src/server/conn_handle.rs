//! The shared face of one connection: what fan-out and the HTTP API may touch.

use std::sync::OnceLock;

use super::Frame;

use super::outbox::{Outbox, Push};
use crate::protocol::{CloseCode, SocketId};

/// Shared handle of a live connection.
pub struct ConnHandle {
    /// Its socket id.
    pub socket_id: SocketId,
    /// Its outbound queue.
    pub outbox: Outbox,
    /// The user id after a successful `pusher:signin` (set once).
    pub user_id: OnceLock<String>,
    /// The user ids this socket watches (set at sign-in), so leaving touches only
    /// those watcher lists.
    pub watching: OnceLock<Vec<String>>,
}

impl ConnHandle {
    /// A handle with an outbound queue of `queue_bytes`.
    pub fn new(socket_id: SocketId, queue_bytes: usize) -> Self {
        ConnHandle { socket_id, outbox: Outbox::new(queue_bytes), user_id: OnceLock::new(), watching: OnceLock::new() }
    }

    /// Sends a frame (written at once when the socket is idle and takes it, else
    /// queued); a full queue closes the socket with 4100.
    pub fn push(&self, frame: Frame) -> Push {
        self.outbox.push(frame)
    }

    /// As [`ConnHandle::push`], for a frame already encoded for WebSocket
    /// ([`crate::protocol::frame::ws_text_frame`]) and shared between recipients.
    pub fn push_wire(&self, wire: bytes::Bytes) -> Push {
        self.outbox.push_wire(wire)
    }

    /// Asks the socket to close.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>) {
        self.outbox.close(code, reason, true)
    }
}
