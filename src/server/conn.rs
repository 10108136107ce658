//! One task per socket: reads client frames, writes what the outbox could not write at
//! once, pings silent clients and closes the socket when asked (drain, slow consumer,
//! terminate).
//!
//! On plain TCP the socket is split: the read half feeds tungstenite (which parses,
//! unmasks and checks client frames), the write half goes to the outbox, which writes
//! frames straight from the fan-out while the socket keeps up (see [`super::outbox`]).
//! The task only writes when a frame did not fit at once. Whatever tungstenite itself
//! writes (its pong and close replies, our close frame) also goes through the outbox, so
//! it stays in order with everything else. On TLS the task writes the whole queue.

use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use futures_util::{SinkExt, StreamExt};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf, WriteHalf};
use tokio::net::tcp::OwnedWriteHalf;
use tokio::net::TcpStream;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::protocol::{frame::CloseFrame, Role, WebSocketConfig};
use tokio_tungstenite::tungstenite::{Error as WsError, Message};
use tokio_tungstenite::WebSocketStream;

use super::app::App;
use super::conn_handle::ConnHandle;
use super::outbox::{CloseRequest, Outbox};
use super::session::Session;
use super::slots::Slot;
use super::{Frame, Node};
use crate::protocol::{frame, CloseCode, SocketId};

/// Frames taken from the outbox per write batch (TLS).
const BATCH: usize = 64;
/// A write that makes no progress this long means the client is gone or hopelessly slow.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// Time allowed for the final `pusher:error` and close frame, and for the client's
/// close reply.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(2);
/// How long a socket is held after a close that follows a read error, so the client
/// can read the close frame before the connection is torn down.
const LINGER: Duration = Duration::from_millis(500);

/// An upgraded WebSocket connection, before the task takes it.
pub enum Upgraded {
    /// Plain TCP: the stream, the bytes hyper read past the request head, and the
    /// connection's slot (held until the socket closes).
    Tcp {
        /// The stream.
        stream: TcpStream,
        /// Bytes already read after the upgrade request (the start of client frames).
        read_buf: Bytes,
        /// The connection's slot under the connection cap.
        slot: Arc<Slot>,
    },
    /// Anything else (TLS): hyper's upgraded IO, written by the task.
    Other(hyper::upgrade::Upgraded),
}

/// What tungstenite reads from and writes to: reads come from the socket; writes (pong
/// and close replies, the server's close frame) go into the outbox behind everything
/// queued before them.
struct Duplex<R> {
    read: R,
    handle: Arc<ConnHandle>,
}

impl<R: AsyncRead + Unpin> AsyncRead for Duplex<R> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().read).poll_read(cx, buf)
    }
}

impl<R: Unpin> AsyncWrite for Duplex<R> {
    fn poll_write(self: Pin<&mut Self>, _cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        self.handle.outbox.push_control(Bytes::copy_from_slice(buf));
        Poll::Ready(Ok(buf.len()))
    }

    fn poll_flush(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }
}

/// How the task writes what the outbox queued.
enum Writer {
    /// Plain TCP: the outbox writes; the task only waits for the socket to turn writable.
    Direct(Arc<OwnedWriteHalf>),
    /// TLS: the task takes frames from the queue and writes them.
    Queued(WriteHalf<TokioIo<hyper::upgrade::Upgraded>>, Vec<Bytes>),
}

impl Writer {
    /// Writes everything queued, waiting for the socket as needed.
    async fn flush(&mut self, outbox: &Outbox) -> io::Result<()> {
        match self {
            Writer::Direct(w) => loop {
                if outbox.write_queued()? {
                    return Ok(());
                }
                w.writable().await?;
            },
            Writer::Queued(w, batch) => loop {
                outbox.take(batch, BATCH);
                if batch.is_empty() {
                    return w.flush().await;
                }
                for b in batch.drain(..) {
                    w.write_all(&b).await?;
                }
            },
        }
    }
}

enum Exit {
    /// Close with a code (and maybe a `pusher:error` first).
    Close(CloseRequest),
    /// Close after a read error: the read side is unusable, so linger briefly instead
    /// of completing the handshake.
    CloseAfterReadError(CloseRequest),
    /// The client sent a close frame: write tungstenite's reply, then end.
    ClosedByPeer,
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
fn read_error_exit(e: WsError) -> Exit {
    let req = |code: CloseCode, with_error| {
        Exit::CloseAfterReadError(CloseRequest { code, reason: code.reason().into(), with_error })
    };
    match e {
        WsError::Utf8(_) => req(CloseCode::InvalidPayload, false),
        WsError::Capacity(_) => req(CloseCode::MessageTooBig, true),
        _ => Exit::Gone,
    }
}

/// Writes what is queued. Gives up (false) on a write error, after [`WRITE_TIMEOUT`]
/// without completing, or as soon as a close is requested while the socket is clogged
/// (the slow-consumer case).
async fn write_queued(writer: &mut Writer, handle: &ConnHandle) -> bool {
    tokio::select! {
        biased;
        () = handle.outbox.close_requested() => false,
        r = tokio::time::timeout(WRITE_TIMEOUT, writer.flush(&handle.outbox)) => matches!(r, Ok(Ok(()))),
    }
}

/// Completes the closing handshake: reads (and drops) until the client's close frame
/// or end of stream, so the kernel sends FIN rather than a reset that could destroy
/// the close frame before the client reads it.
async fn drain_until_closed<S: AsyncRead + AsyncWrite + Unpin>(socket: &mut WebSocketStream<S>) {
    let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
        while let Some(Ok(m)) = socket.next().await {
            if matches!(m, Message::Close(_)) {
                break;
            }
        }
    })
    .await;
}

/// Runs a socket that has been admitted to `app` until it closes.
pub async fn run(node: Arc<Node>, app: Arc<App>, socket: Upgraded, config: WebSocketConfig) {
    let socket_id = SocketId::random();
    let handle = Arc::new(ConnHandle::new(socket_id, node.config.outbound_queue_bytes));
    match socket {
        Upgraded::Tcp { stream, read_buf, slot } => {
            let (read, write) = stream.into_split();
            let writer = Writer::Direct(handle.outbox.attach(write));
            let duplex = Duplex { read, handle: handle.clone() };
            // `read_buf` shares hyper's whole read buffer (8 KiB): copy what it holds and
            // let the buffer go, or every idle socket keeps it.
            let part = read_buf.to_vec();
            drop(read_buf);
            let socket = WebSocketStream::from_partially_read(duplex, part, Role::Server, Some(config)).await;
            serve(node, app, handle, socket, writer).await;
            drop(slot);
        }
        Upgraded::Other(io) => {
            let (read, write) = tokio::io::split(TokioIo::new(io));
            let writer = Writer::Queued(write, Vec::new());
            let duplex = Duplex { read, handle: handle.clone() };
            let socket = WebSocketStream::from_raw_socket(duplex, Role::Server, Some(config)).await;
            serve(node, app, handle, socket, writer).await;
        }
    }
}

async fn serve<S: AsyncRead + AsyncWrite + Unpin>(
    node: Arc<Node>,
    app: Arc<App>,
    handle: Arc<ConnHandle>,
    mut socket: WebSocketStream<S>,
    mut writer: Writer,
) {
    let socket_id = handle.socket_id;
    let hello = frame::connection_established(&socket_id.to_string(), app.config.activity_timeout);
    node.metrics.frames_out.inc();
    handle.push(Frame::from(hello));
    app.register(handle.clone());
    let mut session = Session::new(node.clone(), app.clone(), handle.clone());

    let ping_interval = Duration::from_secs(app.config.ping_interval);
    let pong_timeout = Duration::from_secs(app.config.pong_timeout);
    let signin_within = app.config.require_signin_within;
    let signin_deadline = (signin_within > 0).then(|| Instant::now() + Duration::from_secs(signin_within));
    let mut last_seen = Instant::now();
    let mut ping_sent: Option<Instant> = None;
    let timer = tokio::time::sleep(ping_interval.min(signin_deadline.map_or(ping_interval, |d| d - last_seen)));
    tokio::pin!(timer);
    // Both waits are created once, not on every turn of the loop: each creation and drop
    // registers and unregisters a waiter under a lock.
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
                if !write_queued(&mut writer, &handle).await {
                    if let Some(c) = handle.outbox.close_request() {
                        if is_slow_consumer(&c) {
                            node.metrics.slow_consumers.inc();
                        }
                        break Exit::Close(c);
                    }
                    break Exit::Gone;
                }
                if let Some(c) = handle.outbox.close_request() {
                    if is_slow_consumer(&c) {
                        node.metrics.slow_consumers.inc();
                    }
                    break Exit::Close(c);
                }
            }
            msg = socket.next() => {
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
                    Message::Close(_) => break Exit::ClosedByPeer,
                    Message::Frame(_) => {}
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
        Exit::ClosedByPeer => {
            // tungstenite queued its close reply; have it written, briefly.
            let _ = tokio::time::timeout(CLOSE_TIMEOUT, async {
                socket.flush().await.map_err(io::Error::other)?;
                writer.flush(&handle.outbox).await
            })
            .await;
            (None, false)
        }
        Exit::Gone => (None, false),
    };
    if let Some(req) = req {
        let close = async {
            if req.with_error {
                let err = frame::error_frame(Some(req.code.code()), &req.reason);
                handle.outbox.push_control(frame::ws_text_frame(err.as_bytes()));
            }
            let reason: String = req.reason.chars().take(100).collect();
            let close = CloseFrame { code: req.code.code().into(), reason: reason.into() };
            socket.send(Message::Close(Some(close))).await.map_err(io::Error::other)?;
            writer.flush(&handle.outbox).await
        };
        let sent = matches!(tokio::time::timeout(CLOSE_TIMEOUT, close).await, Ok(Ok(())));
        if sent && after_read_error {
            tokio::time::sleep(LINGER).await;
        } else if sent {
            drain_until_closed(&mut socket).await;
        }
    }
    handle.outbox.detach();
    session.finish();
}
