//! TLS on the listener (`server.tls_cert` + `server.tls_key`): the PEM files are loaded
//! into a rustls server config at start-up by [`server_config`] (in `config::tls`), and
//! [`TlsListener`], an [`axum::serve::Listener`] that yields TLS streams.
//!
//! Handshakes never run inside `accept()` one after another: each runs in its own task,
//! bounded by [`HANDSHAKE_TIMEOUT`], so a slow or silent client cannot stall everyone
//! else's accept. At most [`MAX_HANDSHAKES`] run at once; beyond that the kernel's accept
//! backlog holds new connections until one finishes. A failed handshake is logged at
//! debug and counted in [`HandshakeStats`]; it never stops the listener.
//!
//! The node itself runs [`handshake`] inside each connection's task (see
//! `server::listen`), under the connection cap; [`TlsListener`] is the same logic as an
//! [`axum::serve::Listener`] for embedding.

use std::io;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::rustls::{self, ServerConfig};
use tokio_rustls::server::TlsStream;
use tokio_rustls::LazyConfigAcceptor;

pub use crate::config::tls::{server_config, TlsFileError};
use crate::metrics::{KindLabel, Metrics};

/// A client that has not finished its handshake this long after the TCP accept is
/// dropped: long enough for a slow mobile link, short enough that silent sockets do not
/// pile up.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// Handshakes in flight at once. A reconnect storm over TLS is CPU-bound anyway; this
/// caps the memory and file descriptors that half-open clients can hold.
pub const MAX_HANDSHAKES: usize = 1024;

/// Pause after an accept error that is not about one connection (EMFILE, ENFILE,
/// ENOBUFS), as axum's own `TcpListener` does, so a full fd table is not spun on.
const ACCEPT_ERROR_BACKOFF: Duration = Duration::from_secs(1);

/// Handshake outcomes of one [`TlsListener`], for tests and diagnostics.
#[derive(Debug, Default)]
pub struct HandshakeStats {
    completed: AtomicU64,
    failed: AtomicU64,
    timed_out: AtomicU64,
}

impl HandshakeStats {
    /// Handshakes that completed (streams handed to the server).
    pub fn completed(&self) -> u64 {
        self.completed.load(Ordering::Relaxed)
    }

    /// Handshakes that failed (not TLS, bad protocol, peer closed).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }

    /// Handshakes dropped after [`HANDSHAKE_TIMEOUT`] (or the listener's own timeout).
    pub fn timed_out(&self) -> u64 {
        self.timed_out.load(Ordering::Relaxed)
    }
}

type Handshake = Option<(TlsStream<TcpStream>, SocketAddr)>;

/// Accepts TLS with ALPN answered per client: the config's protocol (`http/1.1`) when the
/// client offers it, no ALPN at all when it offers only others (say only `h2`), so that
/// client gets HTTP/1.1 instead of rustls's fatal `no_application_protocol` alert.
#[derive(Clone)]
pub struct AlpnAcceptor {
    with_alpn: Arc<ServerConfig>,
    without_alpn: Arc<ServerConfig>,
}

impl AlpnAcceptor {
    /// Wraps the listener's TLS config.
    pub fn from(config: Arc<ServerConfig>) -> Self {
        let mut without = (*config).clone();
        without.alpn_protocols.clear();
        AlpnAcceptor { with_alpn: config, without_alpn: Arc::new(without) }
    }

    /// Runs the server side of one handshake, answering ALPN as described above.
    pub async fn accept(&self, stream: TcpStream) -> io::Result<TlsStream<TcpStream>> {
        let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), stream).await?;
        let ours = &self.with_alpn.alpn_protocols;
        let overlap = start.client_hello().alpn().is_none_or(|mut theirs| theirs.any(|p| ours.iter().any(|o| o == p)));
        let config = if overlap { self.with_alpn.clone() } else { self.without_alpn.clone() };
        start.into_stream(config).await
    }
}

/// A TCP listener whose `accept()` yields TLS streams, handshaking concurrently.
///
/// `accept()` is cancel-safe (axum drops it on graceful shutdown): the state lives in
/// the listener, and dropping the listener aborts the handshakes in flight.
pub struct TlsListener {
    tcp: TcpListener,
    acceptor: AlpnAcceptor,
    timeout: Duration,
    max_in_flight: usize,
    handshakes: JoinSet<Handshake>,
    backoff_until: Option<Instant>,
    stats: Arc<HandshakeStats>,
    metrics: Option<Arc<Metrics>>,
}

impl TlsListener {
    /// Wraps a bound listener with [`HANDSHAKE_TIMEOUT`] and [`MAX_HANDSHAKES`].
    pub fn new(tcp: TcpListener, config: Arc<ServerConfig>) -> Self {
        TlsListener {
            tcp,
            acceptor: AlpnAcceptor::from(config),
            timeout: HANDSHAKE_TIMEOUT,
            max_in_flight: MAX_HANDSHAKES,
            handshakes: JoinSet::new(),
            backoff_until: None,
            stats: Arc::default(),
            metrics: None,
        }
    }

    /// Also counts handshakes in the node's metrics (`rtc_tls_handshakes_total`).
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Another handshake timeout (tests).
    pub fn with_handshake_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The handshake counters; they stay readable after the listener is gone.
    pub fn stats(&self) -> Arc<HandshakeStats> {
        self.stats.clone()
    }

    fn spawn_handshake(&mut self, stream: TcpStream, peer: SocketAddr) {
        let acceptor = self.acceptor.clone();
        let stats = self.stats.clone();
        let metrics = self.metrics.clone();
        let timeout = self.timeout;
        self.handshakes.spawn(async move {
            handshake(&acceptor, stream, peer, timeout, &stats, metrics.as_deref()).await.map(|tls| (tls, peer))
        });
    }
}

/// Runs one server handshake bounded by `timeout`, counting the outcome in `stats` and
/// in the node's metrics (`rtc_tls_handshakes_total`); `None` when it failed.
pub async fn handshake(
    acceptor: &AlpnAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
    timeout: Duration,
    stats: &HandshakeStats,
    metrics: Option<&Metrics>,
) -> Option<TlsStream<TcpStream>> {
    let count = |counter: &AtomicU64, kind: &str| {
        counter.fetch_add(1, Ordering::Relaxed);
        if let Some(m) = metrics {
            m.tls_handshakes.get_or_create(&KindLabel { kind: kind.into() }).inc();
        }
    };
    match tokio::time::timeout(timeout, acceptor.accept(stream)).await {
        Ok(Ok(tls)) => {
            count(&stats.completed, "completed");
            Some(tls)
        }
        Ok(Err(e)) => {
            count(&stats.failed, "failed");
            tracing::debug!(%peer, error = %e, "TLS handshake failed.");
            None
        }
        Err(_) => {
            count(&stats.timed_out, "timed_out");
            tracing::debug!(%peer, timeout_ms = timeout.as_millis() as u64, "TLS handshake timed out.");
            None
        }
    }
}

/// Errors that concern one connection only; anything else (EMFILE…) means back off.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionAborted | io::ErrorKind::ConnectionReset
    )
}

impl axum::serve::Listener for TlsListener {
    type Io = TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        loop {
            let room = self.handshakes.len() < self.max_in_flight;
            let backoff = self.backoff_until;
            tokio::select! {
                biased;
                Some(joined) = self.handshakes.join_next(), if !self.handshakes.is_empty() => {
                    match joined {
                        Ok(Some(done)) => return done,
                        Ok(None) => {}
                        Err(e) => tracing::warn!(error = %e, "TLS handshake task failed."),
                    }
                }
                () = tokio::time::sleep_until(backoff.unwrap_or_else(Instant::now)), if backoff.is_some() => {
                    self.backoff_until = None;
                }
                accepted = self.tcp.accept(), if room && backoff.is_none() => match accepted {
                    Ok((stream, peer)) => self.spawn_handshake(stream, peer),
                    Err(e) if is_connection_error(&e) => {}
                    Err(e) => {
                        tracing::error!(error = %e, "Accept error; retrying in 1 s.");
                        self.backoff_until = Some(Instant::now() + ACCEPT_ERROR_BACKOFF);
                    }
                },
            }
        }
    }

    fn local_addr(&self) -> io::Result<Self::Addr> {
        self.tcp.local_addr()
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;

    #[test]
    fn missing_files_name_the_field_and_path() {
        let e = server_config(Path::new("/nonexistent/cert.pem"), Path::new("/nonexistent/key.pem")).unwrap_err();
        assert_eq!(e.field, "server.tls_cert");
        assert!(e.message.contains("/nonexistent/cert.pem"), "{}", e.message);
    }

    #[test]
    fn a_file_without_pem_sections_has_no_certificate() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cert.pem");
        std::fs::write(&f, "not a certificate\n").unwrap();
        let e = server_config(&f, &f).unwrap_err();
        assert_eq!(e.field, "server.tls_cert");
        assert!(e.message.contains("holds no PEM certificate"), "{}", e.message);
    }

    #[test]
    fn bad_base64_is_reported_without_quoting_the_file() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("cert.pem");
        std::fs::write(&f, "-----BEGIN CERTIFICATE-----\nsecret!!!@@@\n-----END CERTIFICATE-----\n").unwrap();
        let e = server_config(&f, &f).unwrap_err();
        assert_eq!(e.field, "server.tls_cert");
        assert!(!e.message.contains("secret"), "{}", e.message);
    }
}
