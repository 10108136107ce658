//! The server under test: where to connect, which app to use, and which local source
//! addresses to spread the sockets over.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::Duration;

use tokio_tungstenite::tungstenite::protocol::WebSocketConfig;

use super::args::CommonArgs;
use super::BenchError;

/// Bytes of each socket's read buffer. tungstenite allocates it eagerly (128 KiB by
/// default); 4 KiB keeps 19,000 sockets in ~100 MiB of generator memory. Larger messages
/// (a presence `subscription_succeeded` with 1,000 members) still arrive: the buffer grows.
const READ_BUFFER_BYTES: usize = 4 * 1024;
/// Largest message a bench socket accepts.
const MAX_MESSAGE_BYTES: usize = 16 << 20;
/// Fraction of one source address's ephemeral ports the bench uses before it adds
/// another address, leaving room for TIME_WAIT leftovers of the previous run.
const PORT_BUDGET: f64 = 0.8;

/// A resolved target and the app's credentials.
#[derive(Debug)]
pub(crate) struct Target {
    /// The server's address.
    pub addr: SocketAddr,
    /// `ws://host:port/prefix/app/key?protocol=7&...`, as pusher-js builds it.
    pub ws_url: String,
    /// `http://host:port`.
    pub http_base: String,
    /// Route prefix (`""` or `/ws`).
    pub prefix: String,
    /// App id.
    pub app_id: String,
    /// App key.
    pub key: String,
    /// App secret.
    pub secret: String,
    /// Source addresses to bind, used round-robin; empty = let the kernel choose.
    pub sources: Vec<IpAddr>,
    /// Bound on one socket's connect, handshake and first subscriptions.
    pub connect_timeout: Duration,
    /// Client WebSocket buffers.
    pub ws_config: WebSocketConfig,
}

impl Target {
    /// Parses `--url`, resolves it, and picks source addresses for `sockets` sockets.
    ///
    /// # Errors
    /// A URL that is not `ws://` or `http://` with a host, or a host that does not resolve.
    pub(crate) async fn resolve(common: &CommonArgs, sockets: u32, ports: Option<u32>) -> Result<Self, BenchError> {
        let bad = |why: &'static str| BenchError::BadUrl { url: common.url.clone(), why };
        let url = reqwest::Url::parse(&common.url).map_err(|_| bad("not a URL"))?;
        match url.scheme() {
            "ws" | "http" => {}
            "wss" | "https" => return Err(bad("TLS is not supported; point it at the server's plain port")),
            _ => return Err(bad("expected ws://HOST:PORT")),
        }
        let host = url.host_str().ok_or_else(|| bad("no host"))?.to_string();
        let port = url.port().unwrap_or(80);
        if url.query().is_some() {
            return Err(bad("give the base URL only; the bench adds /app/KEY?protocol=7"));
        }
        let prefix = url.path().trim_end_matches('/').to_string();
        let lookup_host = host.trim_start_matches('[').trim_end_matches(']').to_string();
        let addrs: Vec<SocketAddr> = tokio::net::lookup_host((lookup_host.as_str(), port))
            .await
            .map_err(|source| BenchError::Resolve { host: host.clone(), source })?
            .collect();
        let addr = addrs
            .iter()
            .find(|a| a.is_ipv4())
            .or(addrs.first())
            .copied()
            .ok_or_else(|| bad("the host resolves to no address"))?;
        let host_port = format!("{host}:{port}");
        Ok(Target {
            addr,
            ws_url: format!(
                "ws://{host_port}{prefix}/app/{}?protocol=7&client=js&version=8.4.0&flash=false",
                common.key
            ),
            http_base: format!("http://{host_port}"),
            prefix,
            app_id: common.app_id.clone(),
            key: common.key.clone(),
            secret: common.secret.clone(),
            sources: source_addresses(addr, sockets, common.source_addrs, ports),
            connect_timeout: common.connect_timeout,
            ws_config: WebSocketConfig::default()
                .read_buffer_size(READ_BUFFER_BYTES)
                .write_buffer_size(0)
                .max_message_size(Some(MAX_MESSAGE_BYTES))
                .max_frame_size(Some(MAX_MESSAGE_BYTES)),
        })
    }

    /// The source address for socket `index`, if the bench picks one.
    pub(crate) fn source_for(&self, index: usize) -> Option<IpAddr> {
        if self.sources.is_empty() {
            None
        } else {
            Some(self.sources[index % self.sources.len()])
        }
    }

    /// Whether the server is on this machine's loopback.
    pub(crate) fn is_loopback(&self) -> bool {
        self.addr.ip().is_loopback()
    }

    /// The HTTP API path for publishing, with the prefix.
    pub(crate) fn events_path(&self) -> String {
        format!("{}/apps/{}/events", self.prefix, self.app_id)
    }
}

/// 127.0.0.1, .2, ... for an IPv4 loopback target when one address's ephemeral ports
/// would not hold `sockets`; nothing otherwise (the kernel picks, which reuses TIME_WAIT
/// ports on loopback).
fn source_addresses(target: SocketAddr, sockets: u32, requested: u8, ports: Option<u32>) -> Vec<IpAddr> {
    let IpAddr::V4(ip) = target.ip() else {
        return Vec::new();
    };
    if !ip.is_loopback() {
        return Vec::new();
    }
    let count = if requested > 0 {
        u32::from(requested)
    } else {
        let per_addr = (f64::from(ports.unwrap_or(28_232)) * PORT_BUDGET).max(1.0) as u32;
        sockets.div_ceil(per_addr).max(1)
    };
    if count <= 1 && requested == 0 {
        return Vec::new();
    }
    (1..=count.min(254)).map(|n| IpAddr::V4(Ipv4Addr::new(127, 0, 0, n as u8))).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(ip: [u8; 4]) -> SocketAddr {
        SocketAddr::from((ip, 8080))
    }

    #[test]
    fn sources_only_when_needed_on_loopback() {
        assert!(source_addresses(at([127, 0, 0, 1]), 19_000, 0, Some(28_232)).is_empty());
        let two = source_addresses(at([127, 0, 0, 1]), 40_000, 0, Some(28_232));
        assert_eq!(two.len(), 2);
        assert_eq!(two[1], IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2)));
        assert_eq!(source_addresses(at([127, 0, 0, 1]), 10, 3, None).len(), 3);
        assert!(source_addresses(at([10, 0, 0, 1]), 90_000, 4, None).is_empty());
    }
}
