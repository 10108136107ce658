//! One task per socket: reads client frames, writes queued frames in batches, pings
//! silent clients and closes the socket when asked (drain, slow consumer, terminate).

use std::sync::Arc;
use std::time::Duration;

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures_util::SinkExt;
use tokio::time::Instant;

use super::app::App;
use super::conn_handle::ConnHandle;
use super::outbox::CloseRequest;
use super::session::Session;
use super::{Frame, Node};
use crate::protocol::{frame, CloseCode, SocketId};

/// Frames taken from the outbox per write batch.
const BATCH: usize = 64;
/// A write that makes no progress this long means the client is gone or hopelessly slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the final `pusher:error` and close frame, and for the client's
/// close reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a socket is held after a close that follows a read error, so the client
/// can read the close frame before the connection is torn down.
const LINGER: Duration = Duration::from_millis(500);

enum Exit {
    /// Close with a code (and maybe a `pusher:error` first).
    Close(CloseRequest),
    /// Close after a read error: the read side is unusable, so linger briefly instead
    /// of completing the handshake.
    CloseAfterReadError(CloseRequest),
    /// The peer is gone or the stream failed: nothing more to send.
    Gone,
}

fn close_req(code: CloseCode, reason: impl Into<String>, with_error: bool) -> Exit {
    Exit::Close(CloseRequest { code, reason: reason.into(), with_error })
}

/// A full outbox closes with 4100 and no `pusher:error`; a socket over its frame or
/// subscribe budget also closes with 4100, after a `pusher:error`.
fn is_slow_consumer(c: &CloseRequest) -> bool {
    c.code == CloseCode::OverCapacity && !c.with_error
}

/// Classifies a read error: invalid UTF-8 → 1007, over the size cap → 1009.
fn read_error_exit(e: axum::Error) -> Exit {
    let inner = e.into_inner();
    let req = |code: CloseCode, with_error| {
        Exit::CloseAfterReadError(CloseRequest { code, reason: code.reason().into(), with_error })
    };
    match inner.downcast_ref::<tokio_tungstenite::tungstenite::Error>() {
        Some(tokio_tungstenite::tungstenite::Error::Utf8(_)) => req(CloseCode::InvalidPayload, false),
        Some(tokio_tungstenite::tungstenite::Error::Capacity(_)) => req(CloseCode::MessageTooBig, true),
        _ => Exit::Gone,
    }
}

/// Writes a batch and flushes. Gives up (false) on a write error, after
/// [`WRITE_TIMEOUT`] without completing, or as soon as a close is requested while the
/// socket is clogged (the slow-consumer case).
async fn write_batch(socket: &mut WebSocket, batch: &mut Vec<Frame>, handle: &ConnHandle) -> bool {
    let write = async {
        for f in batch.drain(..) {
            socket.feed(Message::Text(f)).await?;
        }
        socket.flush().await
    };
    tokio::select! {
        r = tokio::time::timeout(WRITE_TIMEOUT, write) => matches!(r, Ok(Ok(()))),
        () = handle.outbox.close_requested() => {
            batch.clear();
            false
        }
    }
}

/// Completes the closing handshake: reads (and drops) until the client's close frame
/// or end of stream, so the kernel sends FIN rather than a reset that could destroy
/// the close frame before the client reads it.
async fn drain_until_closed(socket: &mut WebSocket) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(m)) = socket.recv().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Runs a socket that has been admitted to `app` until it closes.
pub async fn run(node: Arc<Node>, app: Arc<App>, mut socket: WebSocket) {
    let socket_id = SocketId::random();
    let handle = Arc::new(ConnHandle::new(socket_id, node.config.outbound_queue_bytes));
    app.register(handle.clone());
    let mut session = Session::new(node.clone(), app.clone(), handle.clone());

    let hello = frame::connection_established(&socket_id.to_string(), app.config.activity_timeout);
    node.metrics.frames_out.inc();
    if socket.send(Message::Text(Frame::from(hello))).await.is_err() {
        session.finish();
        return;
    }

    let ping_interval = Duration::from_secs(app.config.ping_interval);
    let pong_timeout = Duration::from_secs(app.config.pong_timeout);
    let signin_within = app.config.require_signin_within;
    let signin_deadline = (signin_within > 0).then(|| Instant::now() + Duration::from_secs(signin_within));
    let mut last_seen = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let timer = tokio::time::sleep(ping_interval.min(signin_deadline.map_or(ping_interval, |d| d - last_seen)));
    tokio::pin!(timer);
    let mut batch: Vec<Frame> = Vec::new();
    // Both waits are created once, not on every turn of the loop: each creation and drop
    // registers and unregisters a waiter under a lock, and the loop turns once per frame.
    let shutdown = node.shutdown.cancelled();
    tokio::pin!(shutdown);
    let ready = handle.outbox.ready();
    tokio::pin!(ready);

    let exit = loop {
        tokio::select! {
            biased;
            () = &mut shutdown => {
                break close_req(CloseCode::Reconnect, "Server shutting down", true);
            }
            () = &mut ready => {
                ready.set(handle.outbox.ready());
                let close = handle.outbox.take(&mut batch, BATCH);
                if !batch.is_empty() && !write_batch(&mut socket, &mut batch, &handle).await {
                    if let Some(c) = handle.outbox.take(&mut batch, 0) {
                        if is_slow_consumer(&c) {
                            node.metrics.slow_consumers.inc();
                        }
                        break Exit::Close(c);
                    }
                    break Exit::Gone;
                }
                if let Some(c) = close {
                    if is_slow_consumer(&c) {
                        node.metrics.slow_consumers.inc();
                    }
                    break Exit::Close(c);
                }
            }
            msg = socket.recv() => {
                let Some(msg) = msg else { break Exit::Gone };
                let msg = match msg {
                    Ok(m) => m,
                    Err(e) => break read_error_exit(e),
                };
                last_seen = Instant::now();
                ping_sent = None;
                match msg {
                    Message::Text(t) => {
                        node.metrics.frames_in.inc();
                        node.metrics.bytes_in.inc_by(t.len() as u64);
                        session.handle_text(t.as_str());
                    }
                    Message::Binary(b) => {
                        node.metrics.frames_in.inc();
                        node.metrics.bytes_in.inc_by(b.len() as u64);
                        session.handle_binary();
                    }
                    Message::Ping(_) | Message::Pong(_) => session.handle_control(),
                    Message::Close(_) => break Exit::Gone,
                }
                // Push the wake-up past the new silence window. Moving a timer later is
                // one atomic store (the wheel re-files it without waking this task), so
                // a socket that pings every activity_timeout is never woken by its own
                // server-ping timer.
                let next = last_seen + ping_interval;
                timer.as_mut().reset(match signin_deadline {
                    Some(d) if !session.authorized() => next.min(d),
                    _ => next,
                });
            }
            () = &mut timer => {
                let now = Instant::now();
                if let Some(d) = signin_deadline {
                    if now >= d && !session.authorized() {
                        break close_req(
                            CloseCode::Unauthorized,
                            format!("Connection not authorized within {signin_within} seconds"),
                            true,
                        );
                    }
                }
                let next = match ping_sent {
                    Some(at) if now >= at + pong_timeout => {
                        break close_req(CloseCode::PongTimeout, CloseCode::PongTimeout.reason(), true);
                    }
                    Some(at) => at + pong_timeout,
                    None if now >= last_seen + ping_interval => {
                        handle.push(Frame::from_static(frame::PING));
                        node.metrics.frames_out.inc();
                        ping_sent = Some(now);
                        now + pong_timeout
                    }
                    None => last_seen + ping_interval,
                };
                let next = match signin_deadline {
                    Some(d) if d > now && !session.authorized() => next.min(d),
                    _ => next,
                };
                timer.as_mut().reset(next);
            }
        }
    };

    let (req, after_read_error) = match exit {
        Exit::Close(r) => (Some(r), false),
        Exit::CloseAfterReadError(r) => (Some(r), true),
        Exit::Gone => (None, false),
    };
    if let Some(req) = req {
        let close = async {
            if req.with_error {
                let err = frame::error_frame(Some(req.code.code()), &req.reason);
                socket.send(Message::Text(Frame::from(err))).await?;
            }
            let reason: String = req.reason.chars().take(100).collect();
            socket.send(Message::Close(Some(CloseFrame { code: req.code.code(), reason: reason.into() }))).await
        };
        let sent = matches!(tokio::time::timeout(CLOSE_TIMEOUT, close).await, Ok(Ok(())));
        if sent && after_read_error {
            tokio::time::sleep(LINGER).await;
        } else if sent {
            drain_until_closed(&mut socket).await;
        }
    }
    session.finish();
}
