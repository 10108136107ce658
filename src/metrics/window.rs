//! The recent window of timed broadcasts behind the fan-out figures in `NodeStats`
//! (p50/p99 and the measured line). What is timed, and when, is `server::fanout`.

use std::time::{Duration, Instant};

use parking_lot::Mutex;

/// Broadcasts kept for the window figures (the most recent ones).
const RING: usize = 1024;
/// The percentiles cover the broadcasts of this last stretch of time.
pub const WINDOW: Duration = Duration::from_secs(10);
/// The measured line needs at least this many broadcasts in the ring …
const MIN_BROADCASTS: usize = 10;
/// … reaching at least this many sockets in all.
const MIN_DELIVERIES: u64 = 100;

#[derive(Clone, Copy)]
struct Sample {
    end: Instant,
    nanos: u64,
    deliveries: u32,
}

/// The last [`RING`] timed broadcasts: bounded memory (32 KiB), one short lock per
/// broadcast.
#[derive(Default)]
pub struct FanoutWindow {
    ring: Mutex<Ring>,
}

#[derive(Default)]
struct Ring {
    samples: Vec<Sample>,
    next: usize,
}

/// The window's figures.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FanoutFigures {
    /// Median fan-out time over the last [`WINDOW`]; `None` without broadcasts in it.
    pub p50: Option<Duration>,
    /// 99th percentile over the last [`WINDOW`].
    pub p99: Option<Duration>,
    /// Timed broadcasts in the last [`WINDOW`].
    pub broadcasts: u64,
    /// Fan-out time per socket reached, over the ring (total time / total sockets, so
    /// large broadcasts weigh most); `None` until enough samples.
    pub cost_per_delivery: Option<Duration>,
}

impl FanoutFigures {
    /// The socket count at which one broadcast to all of them would take `budget` at the
    /// current cost per delivery; `None` until enough samples.
    pub fn measured_line(&self, budget: Duration) -> Option<u64> {
        let cost = self.cost_per_delivery?.as_nanos().max(1);
        Some((budget.as_nanos() / cost).min(u128::from(u64::MAX)) as u64)
    }
}

impl FanoutWindow {
    /// Records one broadcast that ended at `end`.
    pub fn record(&self, end: Instant, took: Duration, deliveries: usize) {
        let s = Sample {
            end,
            nanos: took.as_nanos().min(u128::from(u64::MAX)) as u64,
            deliveries: deliveries.min(u32::MAX as usize) as u32,
        };
        let mut r = self.ring.lock();
        if r.samples.len() < RING {
            r.samples.push(s);
        } else {
            let i = r.next;
            r.samples[i] = s;
        }
        r.next = (r.next + 1) % RING;
    }

    /// The figures as of `now`.
    pub fn figures(&self, now: Instant) -> FanoutFigures {
        let samples: Vec<Sample> = self.ring.lock().samples.clone();
        let mut recent: Vec<u64> =
            samples.iter().filter(|s| now.saturating_duration_since(s.end) <= WINDOW).map(|s| s.nanos).collect();
        recent.sort_unstable();
        let deliveries: u64 = samples.iter().map(|s| u64::from(s.deliveries)).sum();
        let nanos: u128 = samples.iter().map(|s| u128::from(s.nanos)).sum();
        let cost_per_delivery = (samples.len() >= MIN_BROADCASTS && deliveries >= MIN_DELIVERIES)
            .then(|| Duration::from_nanos((nanos / u128::from(deliveries)).min(u128::from(u64::MAX)) as u64));
        FanoutFigures {
            p50: percentile(&recent, 0.50),
            p99: percentile(&recent, 0.99),
            broadcasts: recent.len() as u64,
            cost_per_delivery,
        }
    }
}

/// Nearest-rank percentile of sorted nanoseconds.
fn percentile(sorted: &[u64], p: f64) -> Option<Duration> {
    if sorted.is_empty() {
        return None;
    }
    let rank = (p * sorted.len() as f64).ceil() as usize;
    Some(Duration::from_nanos(sorted[rank.clamp(1, sorted.len()) - 1]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_cover_only_the_recent_window() {
        let w = FanoutWindow::default();
        let t0 = Instant::now();
        for ms in 1..=100u64 {
            w.record(t0, Duration::from_millis(ms), 10);
        }
        let f = w.figures(t0);
        assert_eq!(f.p50, Some(Duration::from_millis(50)));
        assert_eq!(f.p99, Some(Duration::from_millis(99)));
        assert_eq!(f.broadcasts, 100);
        let later = w.figures(t0 + WINDOW + Duration::from_secs(1));
        assert_eq!(later.p99, None);
        // The cost per delivery (and so the line) outlives the window.
        assert!(later.cost_per_delivery.is_some());
    }

    #[test]
    fn measured_line_is_budget_over_cost_and_needs_samples() {
        let w = FanoutWindow::default();
        let t0 = Instant::now();
        for _ in 0..MIN_BROADCASTS - 1 {
            w.record(t0, Duration::from_micros(1000), 1000);
        }
        assert_eq!(w.figures(t0).measured_line(Duration::from_millis(50)), None);
        w.record(t0, Duration::from_micros(1000), 1000);
        // 1 µs per delivery: 50 ms reaches 50,000 sockets.
        assert_eq!(w.figures(t0).measured_line(Duration::from_millis(50)), Some(50_000));
    }

    #[test]
    fn the_ring_keeps_the_most_recent_broadcasts() {
        let w = FanoutWindow::default();
        let t0 = Instant::now();
        for _ in 0..RING {
            w.record(t0, Duration::from_millis(100), 1);
        }
        for _ in 0..RING {
            w.record(t0, Duration::from_millis(1), 1);
        }
        let f = w.figures(t0);
        assert_eq!(f.p99, Some(Duration::from_millis(1)));
        assert_eq!(w.ring.lock().samples.len(), RING);
    }
}
