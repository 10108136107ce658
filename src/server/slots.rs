//! Every open connection holds a [`Slot`] in the node's [`ConnTable`], from the TCP
//! accept until its file descriptor is closed (a WebSocket keeps the slot of the HTTP
//! connection it was upgraded from).
//!
//! The table enforces the connection cap, kept below the open-file limit so the node
//! always has descriptors for health checks, admin requests and Redis. At the cap, the
//! oldest connection that is between requests (a TLS handshake, a request head not yet
//! complete, keep-alive idle), preferring those that never completed a request, is
//! closed to make room: silent connections cannot lock out real clients. Only when every
//! connection is busy (in a request, or a WebSocket) is the new one refused.

use std::collections::{BTreeMap, HashMap};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicU8, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;
use tokio_util::sync::CancellationToken;

/// Between requests: may be evicted at the cap.
const IDLE: u8 = 0;
/// Serving a request.
const BUSY: u8 = 1;
/// Upgraded to a WebSocket.
const UPGRADED: u8 = 2;

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The node holds its connection cap and every connection is busy.
    Full,
    /// The peer address holds its per-address cap.
    PerAddress,
}

impl Refusal {
    /// The limit's name, for `rtc_limit_hits_total`.
    pub fn limit(self) -> &'static str {
        match self {
            Refusal::Full => "connection_limit",
            Refusal::PerAddress => "max_connections_per_address",
        }
    }
}

/// The state one connection shares with the table.
#[derive(Debug)]
pub struct SlotState {
    id: u64,
    ip: IpAddr,
    state: AtomicU8,
    served: AtomicBool,
    removed: AtomicBool,
    evict: CancellationToken,
}

#[derive(Default)]
struct Inner {
    slots: BTreeMap<u64, Arc<SlotState>>,
    per_ip: HashMap<IpAddr, usize>,
}

/// The node's open connections.
pub struct ConnTable {
    cap: Option<usize>,
    per_address: usize,
    exempt: Box<dyn Fn(IpAddr) -> bool + Send + Sync>,
    inner: Mutex<Inner>,
    next_id: AtomicU64,
    upgraded: AtomicU64,
    evicted: AtomicU64,
}

impl ConnTable {
    /// A table of at most `cap` connections (`None`: no cap) and `per_address` per peer
    /// address (0: no cap); `exempt` peers (trusted proxies) have no per-address cap.
    pub fn new(
        cap: Option<usize>,
        per_address: usize,
        exempt: impl Fn(IpAddr) -> bool + Send + Sync + 'static,
    ) -> Arc<Self> {
        Arc::new(ConnTable {
            cap,
            per_address,
            exempt: Box::new(exempt),
            inner: Mutex::new(Inner::default()),
            next_id: AtomicU64::new(0),
            upgraded: AtomicU64::new(0),
            evicted: AtomicU64::new(0),
        })
    }

    /// The connection cap (`None`: none).
    pub fn cap(&self) -> Option<usize> {
        self.cap
    }

    /// Open connections.
    pub fn len(&self) -> usize {
        self.inner.lock().slots.len()
    }

    /// Whether no connection is open.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Open WebSockets.
    pub fn upgraded(&self) -> u64 {
        self.upgraded.load(Ordering::Relaxed)
    }

    /// Connections closed to make room so far.
    pub fn evicted(&self) -> u64 {
        self.evicted.load(Ordering::Relaxed)
    }

    /// Whether one more WebSocket may be taken: the last sixteenth of the cap (at least
    /// 4 connections) is kept for plain HTTP (health checks, the API, admin).
    pub fn room_for_websocket(&self) -> bool {
        match self.cap {
            None => true,
            Some(cap) => {
                let keep = (cap / 16).max(4);
                (self.upgraded() as usize) < cap.saturating_sub(keep)
            }
        }
    }

    /// Takes a slot for a new connection from `ip`, closing an idle one at the cap.
    ///
    /// # Errors
    /// The refusal when the address or the node is full.
    pub fn admit(self: &Arc<Self>, ip: IpAddr) -> Result<Slot, Refusal> {
        let mut g = self.inner.lock();
        if self.per_address > 0 && !(self.exempt)(ip) && g.per_ip.get(&ip).copied().unwrap_or(0) >= self.per_address {
            return Err(Refusal::PerAddress);
        }
        if self.cap.is_some_and(|cap| g.slots.len() >= cap) && !self.evict_one(&mut g) {
            return Err(Refusal::Full);
        }
        let state = Arc::new(SlotState {
            id: self.next_id.fetch_add(1, Ordering::Relaxed),
            ip,
            state: AtomicU8::new(IDLE),
            served: AtomicBool::new(false),
            removed: AtomicBool::new(false),
            evict: CancellationToken::new(),
        });
        g.slots.insert(state.id, state.clone());
        *g.per_ip.entry(ip).or_insert(0) += 1;
        Ok(Slot { state, table: self.clone() })
    }

    /// Closes an idle connection to free a descriptor (out of files at accept).
    pub fn evict_idle(&self) -> bool {
        let mut g = self.inner.lock();
        self.evict_one(&mut g)
    }

    /// Evicts the oldest idle connection that never completed a request, else the oldest
    /// idle one. Its slot leaves the table now; its task closes the socket.
    fn evict_one(&self, g: &mut Inner) -> bool {
        let idle = |s: &&Arc<SlotState>| s.state.load(Ordering::Acquire) == IDLE;
        let victim = g
            .slots
            .values()
            .filter(idle)
            .find(|s| !s.served.load(Ordering::Relaxed))
            .or_else(|| g.slots.values().find(idle))
            .cloned();
        let Some(victim) = victim else { return false };
        Self::remove(g, &victim);
        victim.evict.cancel();
        self.evicted.fetch_add(1, Ordering::Relaxed);
        true
    }

    fn remove(g: &mut Inner, s: &SlotState) {
        if s.removed.swap(true, Ordering::AcqRel) {
            return;
        }
        g.slots.remove(&s.id);
        if let Some(n) = g.per_ip.get_mut(&s.ip) {
            *n -= 1;
            if *n == 0 {
                g.per_ip.remove(&s.ip);
            }
        }
    }
}

/// One connection's place in the table; dropping it (with the connection's IO) frees it.
pub struct Slot {
    state: Arc<SlotState>,
    table: Arc<ConnTable>,
}

impl Slot {
    /// A request head arrived: not evictable until the response is written.
    pub fn begin_request(&self) {
        let _ = self.state.state.compare_exchange(IDLE, BUSY, Ordering::AcqRel, Ordering::Acquire);
    }

    /// The response is ready; `upgraded` when it switched to a WebSocket.
    pub fn end_request(&self, upgraded: bool) {
        self.state.served.store(true, Ordering::Relaxed);
        if upgraded {
            if self.state.state.swap(UPGRADED, Ordering::AcqRel) != UPGRADED {
                self.table.upgraded.fetch_add(1, Ordering::Relaxed);
            }
        } else {
            let _ = self.state.state.compare_exchange(BUSY, IDLE, Ordering::AcqRel, Ordering::Acquire);
        }
    }

    /// Resolves when the table evicted this connection.
    pub fn evicted(&self) -> tokio_util::sync::WaitForCancellationFuture<'_> {
        self.state.evict.cancelled()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        if self.state.state.load(Ordering::Acquire) == UPGRADED {
            self.table.upgraded.fetch_sub(1, Ordering::Relaxed);
        }
        let mut g = self.table.inner.lock();
        ConnTable::remove(&mut g, &self.state);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn at_the_cap_the_oldest_idle_connection_makes_room() {
        let t = ConnTable::new(Some(2), 0, |_| false);
        let a = t.admit(ip("10.0.0.1")).unwrap();
        let b = t.admit(ip("10.0.0.2")).unwrap();
        // `a` served a request and is idle again; `b` never sent one: `b` goes first.
        a.begin_request();
        a.end_request(false);
        let c = t.admit(ip("10.0.0.3")).unwrap();
        assert!(b.state.evict.is_cancelled() && !a.state.evict.is_cancelled());
        assert_eq!(t.len(), 2);
        drop(b);
        assert_eq!(t.len(), 2, "an evicted slot is not removed twice");
        // Busy connections are never evicted.
        a.begin_request();
        c.begin_request();
        assert_eq!(t.admit(ip("10.0.0.4")).err(), Some(Refusal::Full));
        c.end_request(true);
        assert_eq!(t.upgraded(), 1);
        drop(c);
        assert_eq!(t.upgraded(), 0);
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn per_address_caps_exempt_trusted_peers() {
        let t = ConnTable::new(None, 1, |ip| ip == "10.9.9.9".parse::<IpAddr>().unwrap());
        let _a = t.admit(ip("10.0.0.1")).unwrap();
        assert_eq!(t.admit(ip("10.0.0.1")).err(), Some(Refusal::PerAddress));
        let _b = t.admit(ip("10.0.0.2")).unwrap();
        let _p1 = t.admit(ip("10.9.9.9")).unwrap();
        let _p2 = t.admit(ip("10.9.9.9")).unwrap();
    }
}
