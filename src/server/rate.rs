//! A token-bucket rate limiter shared by tasks: admission control on new sockets and
//! the HTTP API's per-app request rate.

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

#[cfg(test)]
mod tests {
    use super::*;

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
