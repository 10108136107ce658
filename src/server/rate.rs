//! Token-bucket rate limiters: [`RateLimiter`], shared by tasks (admission control on
//! new sockets, the HTTP API's per-app request rate); [`KeyedRateLimiter`], one bucket
//! per client address; [`Budget`], one socket's own frame budget.

use std::collections::HashMap;
use std::hash::Hash;

use parking_lot::Mutex;
use tokio::time::Instant;

/// At most `rate` takes per second, bursts up to `rate`.
pub struct RateLimiter {
    rate: f64,
    state: Mutex<(f64, Instant)>,
}

impl RateLimiter {
    /// A limiter of `per_sec`; `None` for 0 (no limit).
    pub fn new(per_sec: u32) -> Option<Self> {
        (per_sec > 0).then(|| RateLimiter { rate: per_sec as f64, state: Mutex::new((per_sec as f64, Instant::now())) })
    }

    /// Takes one token; false when the rate is exceeded.
    pub fn try_take(&self) -> bool {
        let mut g = self.state.lock();
        let now = Instant::now();
        let refill = now.duration_since(g.1).as_secs_f64() * self.rate;
        g.0 = (g.0 + refill).min(self.rate);
        g.1 = now;
        if g.0 >= 1.0 {
            g.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Buckets this many keys at most; beyond that, full (idle) buckets are forgotten, and
/// if none is, every bucket is (a flood of distinct addresses then costs a reset, not
/// memory).
const MAX_KEYS: usize = 65_536;

/// One token bucket per key (client address): at most `rate` takes per second per key,
/// bursts up to `rate`.
pub struct KeyedRateLimiter<K> {
    rate: f64,
    buckets: Mutex<HashMap<K, (f64, Instant)>>,
}

impl<K: Hash + Eq + Copy> KeyedRateLimiter<K> {
    /// A limiter of `per_sec` per key; `None` for 0 (no limit).
    pub fn new(per_sec: u32) -> Option<Self> {
        (per_sec > 0).then(|| KeyedRateLimiter { rate: per_sec as f64, buckets: Mutex::new(HashMap::new()) })
    }

    /// Takes one token from `key`'s bucket; false when its rate is exceeded.
    pub fn try_take(&self, key: K) -> bool {
        let mut g = self.buckets.lock();
        let now = Instant::now();
        if g.len() >= MAX_KEYS && !g.contains_key(&key) {
            let rate = self.rate;
            g.retain(|_, (tokens, last)| *tokens + now.duration_since(*last).as_secs_f64() * rate < rate);
            if g.len() >= MAX_KEYS {
                g.clear();
            }
        }
        let b = g.entry(key).or_insert((self.rate, now));
        b.0 = (b.0 + now.duration_since(b.1).as_secs_f64() * self.rate).min(self.rate);
        b.1 = now;
        if b.0 >= 1.0 {
            b.0 -= 1.0;
            true
        } else {
            false
        }
    }
}

/// What [`Budget::take`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// Within the budget.
    Ok,
    /// Over it: drop the frame; `notify` is true for the first refusal of a second.
    Refused {
        /// Tell the client (at most once per second).
        notify: bool,
    },
    /// Over it for long enough: close the socket.
    Exhausted,
}

/// One socket's budget: `rate` per second, bursts up to `burst`. Refusals are counted
/// until the bucket is full again; once they reach `burst` (the client sent twice its
/// allowance without pausing) the budget is exhausted.
#[derive(Debug)]
pub struct Budget {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: Instant,
    refused: u64,
    notified_at: Option<Instant>,
}

impl Budget {
    /// A budget of `rate` per second with bursts of `burst`; `None` for a rate of 0.
    pub fn new(rate: u32, burst: u32) -> Option<Self> {
        let burst = f64::from(burst.max(rate).max(1));
        (rate > 0).then(|| Budget {
            rate: f64::from(rate),
            burst,
            tokens: burst,
            last: Instant::now(),
            refused: 0,
            notified_at: None,
        })
    }

    /// The configured rate per second.
    pub fn rate(&self) -> f64 {
        self.rate
    }

    /// Spends one unit.
    pub fn take(&mut self) -> Spend {
        let now = Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= self.burst {
            self.refused = 0;
        }
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Spend::Ok;
        }
        self.refused += 1;
        if self.refused as f64 >= self.burst {
            return Spend::Exhausted;
        }
        let notify = self.notified_at.is_none_or(|t| now.duration_since(t).as_secs() >= 1);
        if notify {
            self.notified_at = Some(now);
        }
        Spend::Refused { notify }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn budgets_refuse_then_exhaust_and_forgive_a_pause() {
        let mut b = Budget::new(2, 4).unwrap();
        for _ in 0..4 {
            assert_eq!(b.take(), Spend::Ok);
        }
        assert_eq!(b.take(), Spend::Refused { notify: true });
        assert_eq!(b.take(), Spend::Refused { notify: false });
        // A pause long enough to fill the bucket forgives the refusals.
        tokio::time::advance(std::time::Duration::from_secs(3)).await;
        for _ in 0..4 {
            assert_eq!(b.take(), Spend::Ok);
        }
        assert_eq!(b.take(), Spend::Refused { notify: true });
        assert_eq!(b.take(), Spend::Refused { notify: false });
        assert_eq!(b.take(), Spend::Refused { notify: false });
        assert_eq!(b.take(), Spend::Exhausted);
        assert!(Budget::new(0, 10).is_none());
    }

    #[tokio::test(start_paused = true)]
    async fn keyed_buckets_are_independent() {
        let r = KeyedRateLimiter::new(2).unwrap();
        assert!(r.try_take(1) && r.try_take(1));
        assert!(!r.try_take(1));
        assert!(r.try_take(2));
        tokio::time::advance(std::time::Duration::from_millis(500)).await;
        assert!(r.try_take(1));
    }

    #[tokio::test(start_paused = true)]
    async fn refuses_past_the_rate_and_refills_with_time() {
        let r = RateLimiter::new(3).unwrap();
        assert!(r.try_take() && r.try_take() && r.try_take());
        assert!(!r.try_take());
        tokio::time::advance(std::time::Duration::from_millis(400)).await;
        assert!(r.try_take());
        assert!(!r.try_take());
        assert!(RateLimiter::new(0).is_none());
    }
}
