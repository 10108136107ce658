//! A lock-free log-linear histogram of microsecond values, shared by every socket task.
//!
//! Values below 64 µs are exact; above, each power of two is split into 64 buckets, so a
//! reported percentile is within 1/64 (1.6 %) of the true value. The exact maximum is
//! kept beside the buckets. 3,776 atomic counters (30 KiB) cover every `u64`.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

/// Sub-buckets per power of two, as a power of two.
const SUB_BITS: u32 = 6;
/// Values below this are counted exactly.
const EXACT: u64 = 1 << SUB_BITS;
/// Bucket count: the exact range plus 64 buckets for each exponent 6..=63.
const BUCKETS: usize = (EXACT as usize) * (64 - SUB_BITS as usize + 1);

/// Counts of microsecond values.
#[derive(Debug)]
pub(crate) struct Histogram {
    buckets: Box<[AtomicU64]>,
    sum: AtomicU64,
    max: AtomicU64,
}

/// Summary of a histogram in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Percentiles {
    /// Values recorded.
    pub count: u64,
    /// Mean (ms).
    pub mean_ms: f64,
    /// Median (ms).
    pub p50_ms: f64,
    /// 90th percentile (ms).
    pub p90_ms: f64,
    /// 99th percentile (ms).
    pub p99_ms: f64,
    /// Largest value (ms, exact).
    pub max_ms: f64,
}

fn index(v: u64) -> usize {
    if v < EXACT {
        return v as usize;
    }
    let exp = 63 - v.leading_zeros();
    let mantissa = (v >> (exp - SUB_BITS)) - EXACT;
    (EXACT + u64::from(exp - SUB_BITS) * EXACT + mantissa) as usize
}

/// The middle of bucket `i`'s range of values.
fn midpoint(i: usize) -> u64 {
    let i = i as u64;
    if i < EXACT {
        return i;
    }
    let shift = (i - EXACT) / EXACT;
    let mantissa = (i - EXACT) % EXACT;
    let low = (EXACT + mantissa) << shift;
    low + ((1u64 << shift) >> 1)
}

fn ms(us: u64) -> f64 {
    us as f64 / 1_000.0
}

impl Histogram {
    /// An empty histogram.
    pub(crate) fn new() -> Self {
        Histogram {
            buckets: (0..BUCKETS).map(|_| AtomicU64::new(0)).collect(),
            sum: AtomicU64::new(0),
            max: AtomicU64::new(0),
        }
    }

    /// Records one value in microseconds.
    pub(crate) fn record_us(&self, us: u64) {
        self.buckets[index(us)].fetch_add(1, Ordering::Relaxed);
        self.sum.fetch_add(us, Ordering::Relaxed);
        self.max.fetch_max(us, Ordering::Relaxed);
    }

    /// Records one duration.
    pub(crate) fn record(&self, d: Duration) {
        self.record_us(u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    }

    /// The value at quantile `q` (0..=1), in microseconds; 0 when empty.
    fn quantile_us(&self, counts: &[u64], total: u64, q: f64) -> u64 {
        if total == 0 {
            return 0;
        }
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut seen = 0;
        for (i, c) in counts.iter().enumerate() {
            seen += c;
            if seen >= rank {
                return midpoint(i).min(self.max.load(Ordering::Relaxed));
            }
        }
        self.max.load(Ordering::Relaxed)
    }

    /// Summarises the histogram.
    pub(crate) fn percentiles(&self) -> Percentiles {
        let counts: Vec<u64> = self.buckets.iter().map(|b| b.load(Ordering::Relaxed)).collect();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return Percentiles::default();
        }
        Percentiles {
            count: total,
            mean_ms: ms(self.sum.load(Ordering::Relaxed)) / total as f64,
            p50_ms: ms(self.quantile_us(&counts, total, 0.50)),
            p90_ms: ms(self.quantile_us(&counts, total, 0.90)),
            p99_ms: ms(self.quantile_us(&counts, total, 0.99)),
            max_ms: ms(self.max.load(Ordering::Relaxed)),
        }
    }
}

/// Percentiles of a plain list of microsecond values (for per-event figures).
pub(crate) fn percentiles_of(mut values: Vec<u64>) -> Percentiles {
    if values.is_empty() {
        return Percentiles::default();
    }
    values.sort_unstable();
    let n = values.len();
    let at = |q: f64| values[((q * n as f64).ceil() as usize).clamp(1, n) - 1];
    Percentiles {
        count: n as u64,
        mean_ms: ms(values.iter().sum::<u64>()) / n as f64,
        p50_ms: ms(at(0.50)),
        p90_ms: ms(at(0.90)),
        p99_ms: ms(at(0.99)),
        max_ms: ms(values[n - 1]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn index_and_midpoint_agree() {
        assert_eq!(index(0), 0);
        assert_eq!(index(63), 63);
        assert_eq!(index(64), 64);
        assert_eq!(index(127), 127);
        assert_eq!(index(128), 128);
        assert_eq!(index(u64::MAX), BUCKETS - 1);
        for v in [64u64, 100, 1_000, 12_345, 1_000_000, 987_654_321, u64::MAX / 3] {
            let mid = midpoint(index(v));
            let err = mid.abs_diff(v) as f64 / v as f64;
            assert!(err <= 1.0 / 64.0, "{v} -> {mid}");
        }
    }

    #[test]
    fn percentiles_are_close() {
        let h = Histogram::new();
        for v in 1..=10_000u64 {
            h.record_us(v * 10);
        }
        let p = h.percentiles();
        assert_eq!(p.count, 10_000);
        assert!((p.p50_ms - 50.0).abs() / 50.0 < 0.02, "{p:?}");
        assert!((p.p99_ms - 99.0).abs() / 99.0 < 0.02, "{p:?}");
        assert_eq!(p.max_ms, 100.0);
        assert!((p.mean_ms - 50.005).abs() < 1e-9);
    }

    #[test]
    fn empty_and_exact_lists() {
        assert_eq!(Histogram::new().percentiles(), Percentiles::default());
        let p = percentiles_of(vec![3_000, 1_000, 2_000]);
        assert_eq!((p.p50_ms, p.max_ms, p.count), (2.0, 3.0, 3));
        assert_eq!(percentiles_of(Vec::new()), Percentiles::default());
    }
}
