//! The swarm of bench sockets: the state they share, what each one is told to do, and
//! the paced ramp that opens them.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::mpsc;
use tokio::time::{sleep, sleep_until, Instant};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::args::ChannelKind;
use super::book::{EventBook, PresenceBook};
use super::client;
use super::histogram::Histogram;
use super::target::Target;
use super::timeline::DrainBook;

/// Counts per label (failure reasons, close codes). Few distinct labels; rare updates.
#[derive(Debug, Default)]
pub(crate) struct Tally(Mutex<BTreeMap<String, u64>>);

impl Tally {
    /// Adds one to `label`.
    pub(crate) fn add(&self, label: impl Into<String>) {
        *self.0.lock().entry(label.into()).or_insert(0) += 1;
    }

    /// The counts so far.
    pub(crate) fn snapshot(&self) -> BTreeMap<String, u64> {
        self.0.lock().clone()
    }
}

/// State every socket task, the publisher and the report read and update.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Zero of the bench clock that event timestamps use.
    epoch: Instant,
    /// Stops every task at the end of the run.
    pub cancel: CancellationToken,
    /// Set during the steady phase; presence frames count only then.
    pub measuring: AtomicBool,
    /// What the run is doing, for the progress line.
    pub phase: Mutex<&'static str>,
    /// Sockets whose WebSocket handshake and `connection_established` arrived.
    pub connected: AtomicU64,
    /// Sockets whose first subscriptions all succeeded (or that had none).
    pub ready: AtomicU64,
    /// Sockets that never became ready.
    pub failed: AtomicU64,
    /// Ready sockets that the server closed or lost later.
    pub dropped: AtomicU64,
    /// Why sockets failed.
    pub failures: Tally,
    /// Why ready sockets were dropped.
    pub drops: Tally,
    /// From TCP connect to `connection_established`.
    pub connect_latency: Histogram,
    /// From the first subscribe to the last `subscription_succeeded`.
    pub subscribe_latency: Histogram,
    /// Text frames received, all kinds.
    pub frames_in: AtomicU64,
    /// `pusher:ping` frames the sockets sent after an idle activity timeout.
    pub pings_sent: AtomicU64,
    /// Server pings answered with `pusher:pong`.
    pub pongs_sent: AtomicU64,
    /// Pings that got no message back within pusher-js's 30 s pong timeout.
    pub pongs_missing: AtomicU64,
    /// `pusher:error` frames received by ready sockets.
    pub server_errors: Tally,
    /// Published events and their deliveries (fanout, mixed).
    pub events: Option<EventBook>,
    /// The presence channel under churn (presence, mixed).
    pub presence: Option<PresenceBook>,
    /// Closes, arrivals and reconnects around a drain (drain).
    pub drain: Option<DrainBook>,
}

/// The books a scenario keeps besides the socket counters.
#[derive(Debug, Default)]
pub(crate) struct Books {
    /// Published events and their deliveries.
    pub events: Option<EventBook>,
    /// The presence channel under churn.
    pub presence: Option<PresenceBook>,
    /// The drain's timeline.
    pub drain: Option<DrainBook>,
}

impl Shared {
    /// Fresh state with the given books.
    pub(crate) fn new(books: Books) -> Self {
        let Books { events, presence, drain } = books;
        Shared {
            epoch: Instant::now(),
            cancel: CancellationToken::new(),
            measuring: AtomicBool::new(false),
            phase: Mutex::new("starting"),
            connected: AtomicU64::new(0),
            ready: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            dropped: AtomicU64::new(0),
            failures: Tally::default(),
            drops: Tally::default(),
            connect_latency: Histogram::new(),
            subscribe_latency: Histogram::new(),
            frames_in: AtomicU64::new(0),
            pings_sent: AtomicU64::new(0),
            pongs_sent: AtomicU64::new(0),
            pongs_missing: AtomicU64::new(0),
            server_errors: Tally::default(),
            events,
            presence,
            drain,
        }
    }

    /// Microseconds on the bench clock at `at`.
    pub(crate) fn micros_at(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.epoch).as_micros()).unwrap_or(u64::MAX)
    }

    /// Microseconds on the bench clock now.
    pub(crate) fn now_us(&self) -> u64 {
        self.micros_at(Instant::now())
    }

    /// Sets the phase shown on the progress line.
    pub(crate) fn set_phase(&self, phase: &'static str) {
        *self.phase.lock() = phase;
    }

    /// Whether the steady phase is on.
    pub(crate) fn is_measuring(&self) -> bool {
        self.measuring.load(Ordering::Relaxed)
    }

    /// Sockets that are settled: ready or failed.
    pub(crate) fn settled(&self) -> u64 {
        self.ready.load(Ordering::Relaxed) + self.failed.load(Ordering::Relaxed)
    }
}

/// A channel a socket joins at start.
#[derive(Debug, Clone)]
pub(crate) struct ChannelPlan {
    /// Channel name.
    pub name: String,
    /// Its type (decides the signature).
    pub kind: ChannelKind,
    /// Index of the channel in the event book, when its events are counted.
    pub tracked: Option<usize>,
}

/// A join or leave of the presence channel, sent by the churn controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PresenceCommand {
    /// Subscribe to the presence channel.
    Join,
    /// Unsubscribe from it.
    Leave,
}

/// A socket's part in the presence channel under churn.
#[derive(Debug)]
pub(crate) struct PresenceRole {
    /// User number (`u{n}`) and index in the presence book.
    pub user: usize,
    /// Join during the ramp (a member) or wait for a command (a spare).
    pub join_at_start: bool,
    /// Commands from the churn controller.
    pub commands: mpsc::Receiver<PresenceCommand>,
}

/// What one socket does.
#[derive(Debug)]
pub(crate) struct SocketPlan {
    /// Socket number, which also picks its source address.
    pub index: usize,
    /// The ordinary channel it joins, if any.
    pub channel: Option<ChannelPlan>,
    /// Its presence role, if any.
    pub presence: Option<PresenceRole>,
    /// Client activity timeout (pusher-js `activityTimeout`); `None` = never ping.
    pub activity_timeout: Option<Duration>,
}

/// How the ramp went.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RampOutcome {
    /// Sockets started.
    pub started: usize,
    /// From the first socket's start to the last one's.
    pub spawning: Duration,
    /// From the first socket's start to the last one settling (or giving up).
    pub elapsed: Duration,
    /// Every started socket settled before the ramp's deadline.
    pub settled: bool,
}

/// Extra wait after the last socket starts, for the slowest handshakes to settle.
const SETTLE_SLACK: Duration = Duration::from_secs(1);
/// How often the ramp checks whether every socket has settled.
const SETTLE_POLL: Duration = Duration::from_millis(20);

/// Opens `count` sockets at `rate` per second and waits until each is ready or failed,
/// bounded by `deadline`.
pub(crate) async fn ramp(
    shared: &Arc<Shared>,
    target: &Arc<Target>,
    tasks: &TaskTracker,
    count: usize,
    rate: f64,
    deadline: Instant,
    mut plan: impl FnMut(usize) -> SocketPlan,
) -> RampOutcome {
    let (s, t) = (shared.clone(), target.clone());
    let socket = move |i| client::run_socket(s.clone(), t.clone(), plan(i));
    ramp_with(shared, tasks, count, rate, deadline, target.connect_timeout, socket).await
}

/// [`ramp`] with any socket task: `socket(i)` is spawned for socket `i` and must count
/// it in [`Shared::ready`] or [`Shared::failed`] within `connect_timeout`.
pub(crate) async fn ramp_with<F>(
    shared: &Arc<Shared>,
    tasks: &TaskTracker,
    count: usize,
    rate: f64,
    deadline: Instant,
    connect_timeout: Duration,
    mut socket: impl FnMut(usize) -> F,
) -> RampOutcome
where
    F: std::future::Future<Output = ()> + Send + 'static,
{
    shared.set_phase("ramp");
    let start = Instant::now();
    let mut started = 0;
    for i in 0..count {
        let at = start + Duration::from_secs_f64(i as f64 / rate);
        if at >= deadline {
            break;
        }
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            () = sleep_until(at) => {}
        }
        tasks.spawn(socket(i));
        started += 1;
    }
    let spawning = start.elapsed();
    let settle_by = deadline.min(Instant::now() + connect_timeout + SETTLE_SLACK);
    let mut settled = false;
    while Instant::now() < settle_by && !shared.cancel.is_cancelled() {
        if shared.settled() >= started as u64 {
            settled = true;
            break;
        }
        sleep(SETTLE_POLL).await;
    }
    RampOutcome { started, spawning, elapsed: start.elapsed(), settled }
}

/// pusher-js's default `activityTimeout`: a socket pings after this long without a
/// message (or the server's advertised timeout, if shorter).
pub(crate) const PUSHER_JS_ACTIVITY_TIMEOUT: Duration = Duration::from_secs(120);

/// The name of channel `n` of a scenario, with the prefix its type needs.
pub(crate) fn channel_name(kind: ChannelKind, scenario: &str, n: usize) -> String {
    match kind {
        ChannelKind::Public => format!("bench-{scenario}-{n}"),
        ChannelKind::Private => format!("private-bench-{scenario}-{n}"),
        ChannelKind::Presence => format!("presence-bench-{scenario}-{n}"),
    }
}
