//! The accept loop and the HTTP/1.1 connections behind it, plain or TLS.
//!
//! Each accepted socket first takes a [`Slot`] (the connection cap and per-address cap,
//! see [`super::slots`]), then runs in its own task: the TLS handshake (bounded by
//! [`tls::HANDSHAKE_TIMEOUT`]), then hyper's HTTP/1.1 server with a timer, so a request
//! head must be complete within `server.header_timeout` of the connection opening or of
//! the previous response (hyper starts the timer whenever it waits for a head, so the
//! same bound closes idle keep-alive connections), and a request body within
//! `server.body_timeout` of its head. WebSocket upgrades keep the slot until the socket
//! closes.

use std::convert::Infallible;
use std::future::Future as _;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use axum::body::Body;
use axum::http::{Request, Response, StatusCode};
use axum::Router;
use bytes::Bytes;
use hyper::body::{Frame, Incoming, SizeHint};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::slots::{ConnTable, Slot};
use super::{tls, Node};

/// Pause after an accept error that is not about one connection (EMFILE with nothing
/// idle to close, ENFILE, ENOBUFS), so a full descriptor table is not spun on.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);
/// Pause after closing an idle connection because the descriptor table was full.
const EVICT_PAUSE: Duration = Duration::from_millis(10);
/// How long stopping waits for HTTP connections to finish their current request.
const STOP_WAIT: Duration = Duration::from_secs(5);

/// The TCP peer of a request (a request extension).
#[derive(Debug, Clone, Copy)]
pub struct PeerAddr(pub SocketAddr);

/// A request body that fails once its deadline passes.
#[derive(Debug, thiserror::Error)]
#[error("request body not received within {0:?}")]
pub struct BodyTimeout(Duration);

struct TimedBody {
    inner: Incoming,
    deadline: Pin<Box<tokio::time::Sleep>>,
    timeout: Duration,
}

impl hyper::body::Body for TimedBody {
    type Data = Bytes;
    type Error = axum::BoxError;

    fn poll_frame(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let this = self.get_mut();
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(frame) => Poll::Ready(frame.map(|r| r.map_err(Into::into))),
            Poll::Pending if this.deadline.as_mut().poll(cx).is_ready() => {
                Poll::Ready(Some(Err(BodyTimeout(this.timeout).into())))
            }
            Poll::Pending => Poll::Pending,
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// A connection's IO with its slot: the slot is freed when the IO is dropped, whether
/// by the HTTP connection or by the WebSocket it was upgraded to.
pub struct SlotIo<T> {
    io: T,
    _slot: Arc<Slot>,
}

impl<T> SlotIo<T> {
    /// The IO and its slot, apart (a WebSocket upgrade takes the plain stream back).
    pub fn into_parts(self) -> (T, Arc<Slot>) {
        (self.io, self._slot)
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for SlotIo<T> {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for SlotIo<T> {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.get_mut().io).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> Poll<std::io::Result<usize>> {
        Pin::new(&mut self.get_mut().io).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }
}

/// Errors that concern one connection only; anything else (EMFILE…) means back off.
fn is_connection_error(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::ConnectionRefused
            | std::io::ErrorKind::ConnectionAborted
            | std::io::ErrorKind::ConnectionReset
    )
}

/// What every connection task needs.
#[derive(Clone)]
struct Shared {
    node: Arc<Node>,
    router: Router,
    tls: Option<tls::AlpnAcceptor>,
    handshakes: Arc<tls::HandshakeStats>,
    stop: CancellationToken,
}

/// Accepts on `listener` until `stop` is cancelled, then lets open HTTP connections
/// finish their current request (bounded); WebSockets are the node's to close.
pub async fn serve(listener: TcpListener, node: Arc<Node>, router: Router, stop: CancellationToken) {
    let table = node.connections.clone();
    let shared = Shared {
        tls: node.config.tls.as_ref().map(|t| tls::AlpnAcceptor::from(t.server_config.clone())),
        handshakes: Arc::default(),
        node,
        router,
        stop: stop.clone(),
    };
    let conns = TaskTracker::new();
    loop {
        let accepted = tokio::select! {
            () = stop.cancelled() => break,
            a = listener.accept() => a,
        };
        match accepted {
            Ok((tcp, peer)) => match table.admit(peer.ip()) {
                Ok(slot) => {
                    // Frames are small and written whole: Nagle would hold one back until
                    // the client's delayed ACK (40 ms) when the previous one is unacknowledged.
                    let _ = tcp.set_nodelay(true);
                    conns.spawn(connection(shared.clone(), tcp, peer, Arc::new(slot)));
                }
                Err(refusal) => {
                    shared.node.metrics.limit_hit(refusal.limit());
                    tracing::debug!(%peer, limit = refusal.limit(), "Connection refused at accept.");
                    drop(tcp);
                }
            },
            Err(e) if is_connection_error(&e) => {}
            Err(e) => {
                if table.evict_idle() {
                    // A descriptor is being freed by the evicted connection's task; give
                    // it a moment rather than evicting another on the next failure.
                    tokio::time::sleep(EVICT_PAUSE).await;
                    continue;
                }
                tracing::error!(error = %e, "Accept error; retrying in 1 s.");
                tokio::select! {
                    () = stop.cancelled() => break,
                    () = tokio::time::sleep(ACCEPT_ERROR_BACKOFF) => {}
                }
            }
        }
    }
    drop(listener);
    conns.close();
    let _ = tokio::time::timeout(STOP_WAIT, conns.wait()).await;
}

async fn connection(shared: Shared, tcp: TcpStream, peer: SocketAddr, slot: Arc<Slot>) {
    match shared.tls.clone() {
        None => serve_http(shared, SlotIo { io: tcp, _slot: slot.clone() }, peer, slot).await,
        Some(acceptor) => {
            let handshake = tls::handshake(
                &acceptor,
                tcp,
                peer,
                tls::HANDSHAKE_TIMEOUT,
                &shared.handshakes,
                Some(&shared.node.metrics),
            );
            let stream = tokio::select! {
                s = handshake => s,
                () = slot.evicted() => None,
                () = shared.stop.cancelled() => None,
            };
            if let Some(stream) = stream {
                serve_http(shared, SlotIo { io: stream, _slot: slot.clone() }, peer, slot).await;
            }
        }
    }
}

async fn serve_http<T>(shared: Shared, io: SlotIo<T>, peer: SocketAddr, slot: Arc<Slot>)
where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let edge = &shared.node.config.edge;
    let body_timeout = edge.body_timeout;
    let router = TowerToHyperService::new(shared.router.clone());
    let svc_slot = slot.clone();
    let service = hyper::service::service_fn(move |req: Request<Incoming>| {
        svc_slot.begin_request();
        let mut req = req.map(|b| {
            if hyper::body::Body::is_end_stream(&b) {
                Body::new(b)
            } else {
                Body::new(TimedBody {
                    inner: b,
                    deadline: Box::pin(tokio::time::sleep(body_timeout)),
                    timeout: body_timeout,
                })
            }
        });
        req.extensions_mut().insert(PeerAddr(peer));
        let response = hyper::service::Service::call(&router, req);
        let slot = svc_slot.clone();
        async move {
            let response: Response<Body> = match response.await {
                Ok(r) => r,
                Err(e) => match e {},
            };
            slot.end_request(response.status() == StatusCode::SWITCHING_PROTOCOLS);
            Ok::<_, Infallible>(response)
        }
    });
    let mut builder = hyper::server::conn::http1::Builder::new();
    builder.timer(TokioTimer::new()).header_read_timeout(edge.header_timeout).keep_alive(true);
    let conn = builder.serve_connection(TokioIo::new(io), service).with_upgrades();
    tokio::pin!(conn);
    tokio::select! {
        r = conn.as_mut() => {
            if let Err(e) = r {
                tracing::trace!(%peer, error = %e, "HTTP connection ended with an error.");
            }
        }
        () = slot.evicted() => {
            shared.node.metrics.limit_hit("connection_limit_evicted");
            tracing::debug!(%peer, "Idle connection closed to make room.");
        }
        () = shared.stop.cancelled() => {
            conn.as_mut().graceful_shutdown();
            let _ = conn.await;
        }
    }
}

/// The node's connection table for its config and open-file limit.
pub fn connection_table(edge: &crate::config::EdgeConfig, files: u64) -> Arc<ConnTable> {
    let trusted = edge.clone();
    ConnTable::new(edge.effective_connection_limit(files), edge.max_connections_per_address, move |ip| {
        trusted.is_trusted_proxy(ip)
    })
}
