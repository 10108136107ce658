//! The listener's defences (`[server]`): HTTP timeouts, the connection cap, per-address
//! caps and the proxies whose `X-Forwarded-For` is believed.

use std::net::IpAddr;
use std::time::Duration;

use super::{file::ServerSection, Resolver};
use crate::cli::ServeArgs;

/// Default [`EdgeConfig::header_timeout`].
pub const DEFAULT_HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Default [`EdgeConfig::body_timeout`].
pub const DEFAULT_BODY_TIMEOUT: Duration = Duration::from_secs(30);

/// Connection handling on the listener.
#[derive(Debug, Clone, PartialEq)]
pub struct EdgeConfig {
    /// A request head must be complete this long after the connection opened or after
    /// the previous response (so this is also the keep-alive idle timeout).
    pub header_timeout: Duration,
    /// A request body must be complete this long after its head.
    pub body_timeout: Duration,
    /// Open connections held: `None` = the open-file limit minus a reserve, `Some(0)` =
    /// no cap.
    pub connection_limit: Option<usize>,
    /// Open connections per peer address (0 = no cap; trusted proxies are exempt).
    pub max_connections_per_address: usize,
    /// New WebSocket connections per client address per second (0 = no limit).
    pub max_new_connections_per_address_per_sec: u32,
    /// Peers whose `X-Forwarded-For` names the client.
    pub trusted_proxies: Vec<IpRange>,
}

impl Default for EdgeConfig {
    fn default() -> Self {
        EdgeConfig {
            header_timeout: DEFAULT_HEADER_TIMEOUT,
            body_timeout: DEFAULT_BODY_TIMEOUT,
            connection_limit: None,
            max_connections_per_address: 0,
            max_new_connections_per_address_per_sec: 0,
            trusted_proxies: Vec::new(),
        }
    }
}

impl EdgeConfig {
    /// Whether `ip` is a trusted proxy.
    pub fn is_trusted_proxy(&self, ip: IpAddr) -> bool {
        self.trusted_proxies.iter().any(|r| r.contains(ip))
    }

    /// The client's address: the peer, or, when the peer is a trusted proxy, the
    /// right-most `X-Forwarded-For` entry that is not itself a trusted proxy.
    pub fn client_address(&self, peer: IpAddr, forwarded_for: Option<&str>) -> IpAddr {
        if !self.is_trusted_proxy(peer) {
            return peer;
        }
        let Some(xff) = forwarded_for else { return peer };
        let mut client = peer;
        for entry in xff.rsplit(',') {
            match entry.trim().parse::<IpAddr>() {
                Ok(ip) => {
                    client = ip;
                    if !self.is_trusted_proxy(ip) {
                        break;
                    }
                }
                // Garbage from the left of the header cannot be trusted: stop at the
                // last address the proxies vouched for.
                Err(_) => break,
            }
        }
        client
    }

    /// The connection cap for an open-file limit of `files` (soft limit): the
    /// configured value, or `files` minus a reserve of an eighth (at least 16, at most
    /// 1024) for health checks, admin requests, Redis and log files. `None`: no cap.
    pub fn effective_connection_limit(&self, files: u64) -> Option<usize> {
        match self.connection_limit {
            Some(0) => None,
            Some(n) => Some(n),
            None if files == 0 || files == u64::MAX => None,
            None => {
                let files = usize::try_from(files).unwrap_or(usize::MAX);
                let reserve = (files / 8).clamp(16, 1024);
                Some(files.saturating_sub(reserve).max(1))
            }
        }
    }
}

/// An IP address or a CIDR range (`10.0.0.0/8`, `fd00::/8`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct IpRange {
    addr: IpAddr,
    prefix: u8,
}

impl IpRange {
    /// Parses `addr` or `addr/prefix`.
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(s: &str) -> Result<IpRange, String> {
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a, Some(p)),
            None => (s, None),
        };
        let addr: IpAddr = a.trim().parse().map_err(|_| format!("'{s}' is not an IP address or CIDR range"))?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            None => max,
            Some(p) => match p.trim().parse::<u8>() {
                Ok(n) if n <= max => n,
                _ => return Err(format!("'{s}': the prefix length must be 0..={max}")),
            },
        };
        Ok(IpRange { addr, prefix })
    }

    /// Whether `ip` is inside the range (an IPv4-mapped IPv6 address counts as IPv4).
    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX.checked_shl(32 - u32::from(self.prefix)).unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX.checked_shl(128 - u32::from(self.prefix)).unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            _ => false,
        }
    }
}

pub(super) fn resolve_edge(r: &mut Resolver<'_>, args: &ServeArgs, s: &ServerSection) -> EdgeConfig {
    let d = EdgeConfig::default();
    let mut secs = |name: &str, v: Option<f64>, default: Duration| {
        let Some(v) = v else { return default };
        if v.is_nan() || !(0.1..=3600.0).contains(&v) {
            r.err(format!("server.{name}"), format!("{v} is out of range 0.1..=3600 seconds"));
            return default;
        }
        Duration::from_secs_f64(v)
    };
    let header_timeout = secs("header_timeout", args.header_timeout.or(s.header_timeout), d.header_timeout);
    let body_timeout = secs("body_timeout", args.body_timeout.or(s.body_timeout), d.body_timeout);
    let mut trusted_proxies = Vec::new();
    for p in args.trusted_proxies.clone().or_else(|| s.trusted_proxies.clone()).unwrap_or_default() {
        let p = p.trim();
        if p.is_empty() {
            continue;
        }
        match IpRange::parse(p) {
            Ok(range) => trusted_proxies.push(range),
            Err(e) => r.err("server.trusted_proxies", e),
        }
    }
    EdgeConfig {
        header_timeout,
        body_timeout,
        connection_limit: args.connection_limit.or(s.connection_limit),
        max_connections_per_address: args.max_connections_per_address.or(s.max_connections_per_address).unwrap_or(0),
        max_new_connections_per_address_per_sec: args
            .max_new_connections_per_address_per_sec
            .or(s.max_new_connections_per_address_per_sec)
            .unwrap_or(0),
        trusted_proxies,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ranges_match_addresses_and_prefixes() {
        let r = IpRange::parse("10.1.0.0/16").unwrap();
        assert!(r.contains("10.1.2.3".parse().unwrap()));
        assert!(!r.contains("10.2.0.1".parse().unwrap()));
        assert!(r.contains("::ffff:10.1.9.9".parse().unwrap()));
        assert!(IpRange::parse("0.0.0.0/0").unwrap().contains("8.8.8.8".parse().unwrap()));
        assert!(IpRange::parse("fd00::/8").unwrap().contains("fd12::1".parse().unwrap()));
        assert!(IpRange::parse("127.0.0.1").unwrap().contains("127.0.0.1".parse().unwrap()));
        assert!(IpRange::parse("10.0.0.0/33").is_err());
        assert!(IpRange::parse("nope").is_err());
    }

    #[test]
    fn forwarded_for_is_believed_from_trusted_proxies_only() {
        let e = EdgeConfig { trusted_proxies: vec![IpRange::parse("10.0.0.0/8").unwrap()], ..Default::default() };
        let proxy: IpAddr = "10.0.0.5".parse().unwrap();
        let stranger: IpAddr = "203.0.113.9".parse().unwrap();
        assert_eq!(e.client_address(stranger, Some("1.2.3.4")), stranger);
        assert_eq!(e.client_address(proxy, Some("1.2.3.4")), "1.2.3.4".parse::<IpAddr>().unwrap());
        // A client cannot hide behind a spoofed left-most entry.
        assert_eq!(e.client_address(proxy, Some("6.6.6.6, 1.2.3.4, 10.0.0.7")), "1.2.3.4".parse::<IpAddr>().unwrap());
        assert_eq!(e.client_address(proxy, None), proxy);
        assert_eq!(e.client_address(proxy, Some("junk")), proxy);
    }

    #[test]
    fn the_automatic_cap_leaves_a_reserve() {
        let e = EdgeConfig::default();
        assert_eq!(e.effective_connection_limit(1024), Some(896));
        assert_eq!(e.effective_connection_limit(64), Some(48));
        assert_eq!(e.effective_connection_limit(1_048_576), Some(1_047_552));
        assert_eq!(EdgeConfig { connection_limit: Some(0), ..e.clone() }.effective_connection_limit(64), None);
        assert_eq!(EdgeConfig { connection_limit: Some(10), ..e }.effective_connection_limit(64), Some(10));
    }
}
