//! Drain accounting for `rtc bench drain`: on a clock that starts at the trigger, the
//! closes node A sends, the arrivals at each survivor and the auth signatures of the
//! resubscriptions, counted per 100 ms bucket; where every socket is (on A, away, back on
//! a survivor, given up); and the busiest-second peaks of those curves.

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use tokio::time::Instant;

use super::histogram::Histogram;
use super::swarm::Tally;

/// Width of one bucket of the timeline.
pub(crate) const BUCKET: Duration = Duration::from_millis(100);
/// Buckets in the one-second window the peaks are taken over.
const BUCKETS_PER_SECOND: usize = 10;
/// Most buckets kept (a day); later events land in the last one.
const MAX_BUCKETS: usize = 864_000;

/// One curve: counts per bucket since the trigger.
#[derive(Debug)]
struct Curve(Box<[AtomicU32]>);

impl Curve {
    fn new(buckets: usize) -> Self {
        Curve((0..buckets).map(|_| AtomicU32::new(0)).collect())
    }

    fn add(&self, bucket: usize, n: u32) {
        if let Some(b) = self.0.get(bucket.min(self.0.len().saturating_sub(1))) {
            b.fetch_add(n, Ordering::Relaxed);
        }
    }

    fn snapshot(&self) -> Vec<u32> {
        self.0.iter().map(|b| b.load(Ordering::Relaxed)).collect()
    }
}

/// The drain's accounting, shared by every socket of the run.
#[derive(Debug)]
pub(crate) struct DrainBook {
    /// When the drain was triggered (zero of the timeline).
    trigger: OnceLock<Instant>,
    closes: Curve,
    arrivals: Box<[Curve]>,
    auth: Curve,
    backs: Curve,
    first_close_us: AtomicU64,
    last_close_us: AtomicU64,
    last_back_us: AtomicU64,
    /// Sockets that became ready on node A.
    pub home_ready: AtomicU64,
    /// Sockets on node A now.
    pub on_home: AtomicU64,
    /// Sockets between a close and their resubscription on a survivor.
    pub away: AtomicU64,
    /// Sockets resubscribed on a survivor now.
    pub back: AtomicU64,
    /// Sockets that stopped reconnecting (a close code pusher-js gives up on).
    pub gave_up: AtomicU64,
    /// Closes by node A with a reconnect hint (4200–4299).
    pub hinted: AtomicU64,
    /// Closes by node A without one: reset, no close frame, any other code.
    pub forced: AtomicU64,
    /// Closes by node A before the trigger.
    pub before_trigger: AtomicU64,
    /// Node A's closes by code and reason.
    pub close_codes: Tally,
    /// Closes of sockets already back on a survivor (a cascade), by code and reason.
    pub reclosed: Tally,
    /// Failed reconnect attempts, by reason.
    pub failed_attempts: Tally,
    /// From a socket's close to its resubscription on a survivor.
    pub away_time: Histogram,
}

/// The curves at the end of a run, trimmed after the last non-empty bucket.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub(crate) struct Curves {
    /// Node A's closes per bucket.
    pub closes: Vec<u32>,
    /// Arrivals (`connection_established`) per survivor per bucket.
    pub arrivals: Vec<Vec<u32>>,
    /// Private-channel signatures (auth requests an app would answer) per bucket.
    pub auth_requests: Vec<u32>,
    /// Sockets fully back (every channel resubscribed) per bucket.
    pub back: Vec<u32>,
}

/// The busiest one-second window of a curve.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub(crate) struct Peak {
    /// Count in that window: a rate per second.
    pub per_second: u64,
    /// Where the window starts, seconds after the trigger.
    pub from_s: f64,
    /// The largest single bucket, scaled to a rate per second.
    pub bucket_per_second: u64,
}

fn micros(d: Duration) -> u64 {
    u64::try_from(d.as_micros()).unwrap_or(u64::MAX)
}

impl DrainBook {
    /// A book for `survivors` survivors and a run of at most `span`.
    pub(crate) fn new(survivors: usize, span: Duration) -> Self {
        let buckets = ((span.as_millis() / BUCKET.as_millis()) as usize + 1).clamp(BUCKETS_PER_SECOND, MAX_BUCKETS);
        DrainBook {
            trigger: OnceLock::new(),
            closes: Curve::new(buckets),
            arrivals: (0..survivors).map(|_| Curve::new(buckets)).collect(),
            auth: Curve::new(buckets),
            backs: Curve::new(buckets),
            first_close_us: AtomicU64::new(u64::MAX),
            last_close_us: AtomicU64::new(0),
            last_back_us: AtomicU64::new(0),
            home_ready: AtomicU64::new(0),
            on_home: AtomicU64::new(0),
            away: AtomicU64::new(0),
            back: AtomicU64::new(0),
            gave_up: AtomicU64::new(0),
            hinted: AtomicU64::new(0),
            forced: AtomicU64::new(0),
            before_trigger: AtomicU64::new(0),
            close_codes: Tally::default(),
            reclosed: Tally::default(),
            failed_attempts: Tally::default(),
            away_time: Histogram::new(),
        }
    }

    /// Starts the timeline.
    pub(crate) fn mark_trigger(&self, at: Instant) {
        let _ = self.trigger.set(at);
    }

    /// Time from the trigger to `at`; `None` before the trigger.
    pub(crate) fn since_trigger(&self, at: Instant) -> Option<Duration> {
        let t = *self.trigger.get()?;
        (at >= t).then(|| at - t)
    }

    fn bucket(&self, at: Instant) -> Option<usize> {
        self.since_trigger(at).map(|d| (d.as_millis() / BUCKET.as_millis()) as usize)
    }

    /// A socket became ready on node A.
    pub(crate) fn ready_on_home(&self) {
        self.home_ready.fetch_add(1, Ordering::Relaxed);
        self.on_home.fetch_add(1, Ordering::Relaxed);
    }

    /// Node A closed a socket at `at`; `hint` when the code was 4200–4299.
    pub(crate) fn closed_by_home(&self, label: String, hint: bool, at: Instant) {
        self.on_home.fetch_sub(1, Ordering::Relaxed);
        self.away.fetch_add(1, Ordering::Relaxed);
        self.close_codes.add(label);
        (if hint { &self.hinted } else { &self.forced }).fetch_add(1, Ordering::Relaxed);
        match (self.bucket(at), self.since_trigger(at)) {
            (Some(b), Some(t)) => {
                self.closes.add(b, 1);
                self.first_close_us.fetch_min(micros(t), Ordering::Relaxed);
                self.last_close_us.fetch_max(micros(t), Ordering::Relaxed);
            }
            _ => {
                self.before_trigger.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// A survivor closed a socket that was back.
    pub(crate) fn closed_by_survivor(&self, label: String) {
        self.back.fetch_sub(1, Ordering::Relaxed);
        self.away.fetch_add(1, Ordering::Relaxed);
        self.reclosed.add(label);
    }

    /// A socket stopped reconnecting.
    pub(crate) fn give_up(&self) {
        self.away.fetch_sub(1, Ordering::Relaxed);
        self.gave_up.fetch_add(1, Ordering::Relaxed);
    }

    /// A socket's upgrade to survivor `survivor` succeeded at `at`.
    pub(crate) fn arrived(&self, survivor: usize, at: Instant) {
        if let (Some(b), Some(curve)) = (self.bucket(at), self.arrivals.get(survivor)) {
            curve.add(b, 1);
        }
    }

    /// `n` channel signatures were made at `at`.
    pub(crate) fn signed(&self, n: usize, at: Instant) {
        if let (Some(b), true) = (self.bucket(at), n > 0) {
            self.auth.add(b, u32::try_from(n).unwrap_or(u32::MAX));
        }
    }

    /// A socket closed at `closed` is back, every channel resubscribed, at `at`.
    pub(crate) fn came_back(&self, closed: Instant, at: Instant) {
        self.away.fetch_sub(1, Ordering::Relaxed);
        self.back.fetch_add(1, Ordering::Relaxed);
        self.away_time.record(at.saturating_duration_since(closed));
        if let (Some(b), Some(t)) = (self.bucket(at), self.since_trigger(at)) {
            self.backs.add(b, 1);
            self.last_back_us.fetch_max(micros(t), Ordering::Relaxed);
        }
    }

    /// Whether every socket that was ready on node A is back or has given up.
    pub(crate) fn all_settled(&self) -> bool {
        let ready = self.home_ready.load(Ordering::Relaxed);
        ready > 0
            && self.on_home.load(Ordering::Relaxed) == 0
            && self.away.load(Ordering::Relaxed) == 0
            && self.back.load(Ordering::Relaxed) + self.gave_up.load(Ordering::Relaxed) >= ready
    }

    /// First and last close by node A after the trigger (s), if any.
    pub(crate) fn close_span(&self) -> Option<(f64, f64)> {
        let first = self.first_close_us.load(Ordering::Relaxed);
        (first != u64::MAX).then(|| (first as f64 / 1e6, self.last_close_us.load(Ordering::Relaxed) as f64 / 1e6))
    }

    /// The last time a socket came back (s after the trigger), if any did.
    pub(crate) fn last_back_s(&self) -> Option<f64> {
        let last = self.last_back_us.load(Ordering::Relaxed);
        (last > 0).then(|| last as f64 / 1e6)
    }

    /// The curves, trimmed after the last bucket with anything in it.
    pub(crate) fn curves(&self) -> Curves {
        let mut c = Curves {
            closes: self.closes.snapshot(),
            arrivals: self.arrivals.iter().map(Curve::snapshot).collect(),
            auth_requests: self.auth.snapshot(),
            back: self.backs.snapshot(),
        };
        let used = |v: &Vec<u32>| v.iter().rposition(|&n| n > 0).map_or(0, |i| i + 1);
        let len = c.arrivals.iter().map(used).chain([used(&c.closes), used(&c.auth_requests), used(&c.back)]).max();
        let len = len.unwrap_or(0);
        for v in c.arrivals.iter_mut().chain([&mut c.closes, &mut c.auth_requests, &mut c.back]) {
            v.truncate(len);
        }
        c
    }
}

/// The busiest one-second window (ten consecutive buckets) of a curve.
pub(crate) fn peak(curve: &[u32]) -> Peak {
    let per_bucket = (Duration::from_secs(1).as_millis() / BUCKET.as_millis()) as u64;
    let bucket_per_second = curve.iter().map(|&n| u64::from(n) * per_bucket).max().unwrap_or(0);
    let window = BUCKETS_PER_SECOND.min(curve.len());
    let mut best = (0u64, 0usize);
    let mut sum: u64 = curve.iter().take(window).map(|&n| u64::from(n)).sum();
    if window > 0 {
        best = (sum, 0);
        for start in 1..=curve.len() - window {
            sum = sum + u64::from(curve[start + window - 1]) - u64::from(curve[start - 1]);
            if sum > best.0 {
                best = (sum, start);
            }
        }
    }
    Peak { per_second: best.0, from_s: best.1 as f64 * BUCKET.as_secs_f64(), bucket_per_second }
}

/// The element-wise sum of several curves.
pub(crate) fn sum(curves: &[Vec<u32>]) -> Vec<u32> {
    let len = curves.iter().map(Vec::len).max().unwrap_or(0);
    (0..len).map(|i| curves.iter().filter_map(|c| c.get(i)).sum()).collect()
}

/// A curve regrouped per whole second (for the human table).
pub(crate) fn per_second(curve: &[u32]) -> Vec<u32> {
    curve.chunks(BUCKETS_PER_SECOND).map(|c| c.iter().sum()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn peak_is_the_busiest_second() {
        assert_eq!(peak(&[]), Peak::default());
        let p = peak(&[5, 0, 0]);
        assert_eq!((p.per_second, p.bucket_per_second), (5, 50));
        let mut curve = vec![1u32; 30];
        curve[12] = 20;
        curve[13] = 20;
        let p = peak(&curve);
        assert_eq!(p.per_second, 8 + 40);
        assert!(p.from_s <= 1.2 && p.from_s >= 0.4, "{p:?}");
        assert_eq!(p.bucket_per_second, 200);
    }

    #[test]
    fn sums_and_seconds() {
        assert_eq!(sum(&[vec![1, 2], vec![3]]), vec![4, 2]);
        assert_eq!(per_second(&[1; 25]), vec![10, 10, 5]);
    }

    #[test]
    fn book_tracks_where_sockets_are() {
        let b = DrainBook::new(2, Duration::from_secs(5));
        b.ready_on_home();
        b.ready_on_home();
        let t0 = Instant::now();
        b.closed_by_home("4200 early".into(), true, t0);
        assert_eq!(b.before_trigger.load(Ordering::Relaxed), 1);
        b.mark_trigger(t0);
        let later = t0 + Duration::from_millis(250);
        b.closed_by_home("1006 reset".into(), false, later);
        b.arrived(1, later);
        b.signed(2, later);
        b.came_back(t0, later);
        assert!(!b.all_settled());
        b.came_back(later, later);
        assert!(b.all_settled());
        let c = b.curves();
        assert_eq!(c.closes, vec![0, 0, 1]);
        assert_eq!(c.arrivals, vec![vec![0, 0, 0], vec![0, 0, 1]]);
        assert_eq!(c.auth_requests, vec![0, 0, 2]);
        assert_eq!(b.close_span(), Some((0.25, 0.25)));
        assert_eq!((b.hinted.load(Ordering::Relaxed), b.forced.load(Ordering::Relaxed)), (1, 1));
    }
}
