//! Node metrics: Prometheus counters and gauges (served at `/metrics`) that the admin
//! stats endpoint also reads for the console.
//!
//! Fast-moving quantities are counter pairs (opened/closed) rather than gauges alone,
//! and hot paths add per fan-out, not per recipient. Labels are per app, never per
//! channel or socket.

pub mod window;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{exponential_buckets, Histogram};
use prometheus_client::registry::{Registry, Unit};

/// `app` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AppLabel {
    /// App id.
    pub app: String,
}

/// `kind` label (channel type, auth kind, limit name…).
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabel {
    /// The kind.
    pub kind: String,
}

/// `status` label for HTTP API calls.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct StatusLabel {
    /// HTTP status code.
    pub status: u16,
}

/// Every metric of a node.
pub struct Metrics {
    registry: Registry,
    /// Open connections per app.
    pub connections: Family<AppLabel, Gauge>,
    /// Connections accepted, per app.
    pub connections_opened: Family<AppLabel, Counter>,
    /// Connections closed, per app.
    pub connections_closed: Family<AppLabel, Counter>,
    /// Upgrades refused (503 draining, admission control).
    pub upgrades_refused: Family<KindLabel, Counter>,
    /// Current subscriptions by channel type.
    pub subscriptions: Family<KindLabel, Gauge>,
    /// Private/presence subscribe attempts (the load on the app's auth endpoint).
    pub auth_requests: Counter,
    /// Signature failures by kind (channel, user, http).
    pub auth_failures: Family<KindLabel, Counter>,
    /// Frames received from clients.
    pub frames_in: Counter,
    /// Bytes received from clients.
    pub bytes_in: Counter,
    /// Frames queued to clients.
    pub frames_out: Counter,
    /// Bytes queued to clients.
    pub bytes_out: Counter,
    /// Events published (HTTP API and client events), before fan-out.
    pub broadcasts: Counter,
    /// Client events accepted.
    pub client_events: Counter,
    /// Presence members (user, channel) on this node.
    pub presence_members: Gauge,
    /// Presence frames (member_added/removed, presence subscription_succeeded) queued.
    pub presence_frames: Counter,
    /// HTTP API requests by status.
    pub http_requests: Family<StatusLabel, Counter>,
    /// Rate-limit and size-limit hits by limit name.
    pub limit_hits: Family<KindLabel, Counter>,
    /// TLS handshakes by result (`completed`, `failed`, `timed_out`); TLS listeners only.
    pub tls_handshakes: Family<KindLabel, Counter>,
    /// Sockets closed as slow consumers (4100).
    pub slow_consumers: Counter,
    /// Pongs received (answers to server pings, and pusher:ping from clients).
    pub pongs: Counter,
    /// Protocol errors sent (pusher:error) by kind.
    pub protocol_errors: Family<KindLabel, Counter>,
    /// The open-file limit after raising it at start-up.
    pub open_files_limit: Gauge,
    /// Reconnect hints (4200 closes) sent by drains.
    pub drain_hints: Counter,
    /// Sockets closed at a drain's deadline (not paced).
    pub drain_forced: Counter,
    /// Webhook events queued for delivery (one per endpoint that wants it).
    pub webhook_events_queued: Counter,
    /// Webhook events delivered (their POST got a 2xx).
    pub webhook_events_sent: Counter,
    /// Webhook POSTs that failed (non-2xx, timeout, connection error); retried ones
    /// count once per attempt.
    pub webhook_attempts_failed: Counter,
    /// Webhook events dropped, by reason: `queue_full`, `retry_full`, `expired`
    /// (retried for the whole retry window), `shutdown`.
    pub webhook_events_dropped: Family<KindLabel, Counter>,
    /// Cluster bus messages dropped because their MAC was missing or wrong.
    pub bus_unauthenticated: Counter,
    /// Log lines dropped because stderr was full, stuck or closed (kept in step with
    /// [`crate::logging::dropped`] when rendered).
    pub log_lines_dropped: Counter,
    /// Totals of the labelled families above (for the admin stats).
    pub totals: Totals,
    /// Fan-out, HTTP API and bus-lag histograms.
    pub timing: Timing,
}

/// Unlabelled totals of the labelled counter families, read by the admin stats.
#[derive(Default)]
pub struct Totals {
    /// All auth failures.
    pub auth_failures: Counter,
    /// All HTTP API requests.
    pub http_requests: Counter,
    /// All limit hits.
    pub limit_hits: Counter,
    /// All refused upgrades.
    pub upgrades_refused: Counter,
    /// All dropped webhook events.
    pub webhook_events_dropped: Counter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// Registers every metric under the `rtc_` prefix.
    pub fn new() -> Self {
        let mut registry = Registry::with_prefix("rtc");
        let m = Metrics {
            connections: Family::default(),
            connections_opened: Family::default(),
            connections_closed: Family::default(),
            upgrades_refused: Family::default(),
            subscriptions: Family::default(),
            auth_requests: Counter::default(),
            auth_failures: Family::default(),
            frames_in: Counter::default(),
            bytes_in: Counter::default(),
            frames_out: Counter::default(),
            bytes_out: Counter::default(),
            broadcasts: Counter::default(),
            client_events: Counter::default(),
            presence_members: Gauge::default(),
            presence_frames: Counter::default(),
            http_requests: Family::default(),
            limit_hits: Family::default(),
            tls_handshakes: Family::default(),
            slow_consumers: Counter::default(),
            pongs: Counter::default(),
            protocol_errors: Family::default(),
            open_files_limit: Gauge::default(),
            drain_hints: Counter::default(),
            drain_forced: Counter::default(),
            webhook_events_queued: Counter::default(),
            webhook_events_sent: Counter::default(),
            webhook_attempts_failed: Counter::default(),
            webhook_events_dropped: Family::default(),
            bus_unauthenticated: Counter::default(),
            log_lines_dropped: Counter::default(),
            totals: Totals::default(),
            timing: Timing::new(),
            registry: Registry::default(),
        };
        registry.register("connections", "Open WebSocket connections", m.connections.clone());
        registry.register("connections_opened", "WebSocket connections accepted", m.connections_opened.clone());
        registry.register("connections_closed", "WebSocket connections closed", m.connections_closed.clone());
        registry.register(
            "upgrades_refused",
            "WebSocket upgrades refused before accepting",
            m.upgrades_refused.clone(),
        );
        registry.register("subscriptions", "Current channel subscriptions by channel type", m.subscriptions.clone());
        registry.register("auth_requests", "Private and presence subscribe attempts", m.auth_requests.clone());
        registry.register("auth_failures", "Signature checks that failed", m.auth_failures.clone());
        registry.register("frames_in", "Frames received from clients", m.frames_in.clone());
        registry.register("bytes_in", "Bytes received from clients", m.bytes_in.clone());
        registry.register("frames_out", "Frames queued to clients", m.frames_out.clone());
        registry.register("bytes_out", "Bytes queued to clients", m.bytes_out.clone());
        registry.register("broadcasts", "Events published before fan-out", m.broadcasts.clone());
        registry.register("client_events", "Client events accepted", m.client_events.clone());
        registry.register("presence_members", "Presence members on this node", m.presence_members.clone());
        registry.register("presence_frames", "Presence frames queued to clients", m.presence_frames.clone());
        registry.register("http_requests", "HTTP API requests by status", m.http_requests.clone());
        registry.register("limit_hits", "Requests refused by a limit", m.limit_hits.clone());
        registry.register("tls_handshakes", "TLS handshakes by result", m.tls_handshakes.clone());
        registry.register("slow_consumers", "Sockets closed for not reading (4100)", m.slow_consumers.clone());
        registry.register("pongs", "Pongs and pings received from clients", m.pongs.clone());
        registry.register("protocol_errors", "pusher:error frames sent", m.protocol_errors.clone());
        registry.register("open_files_limit", "Open-file limit of the process", m.open_files_limit.clone());
        registry.register(
            "webhook_events_queued",
            "Webhook events queued for delivery, per endpoint",
            m.webhook_events_queued.clone(),
        );
        registry.register("webhook_events_sent", "Webhook events delivered (2xx)", m.webhook_events_sent.clone());
        registry.register(
            "webhook_attempts_failed",
            "Webhook POSTs that failed (non-2xx, timeout, connection error)",
            m.webhook_attempts_failed.clone(),
        );
        registry.register(
            "webhook_events_dropped",
            "Webhook events dropped by reason",
            m.webhook_events_dropped.clone(),
        );
        registry.register(
            "bus_unauthenticated",
            "Cluster bus messages dropped: MAC missing or wrong (cluster secret set)",
            m.bus_unauthenticated.clone(),
        );
        m.timing.register(&mut registry);
        registry.register("drain_hints", "Reconnect hints (4200 closes) sent by drains", m.drain_hints.clone());
        registry.register(
            "drain_forced",
            "Sockets closed at a drain's deadline instead of being paced",
            m.drain_forced.clone(),
        );
        registry.register(
            "log_lines_dropped",
            "Log lines dropped because stderr was full, stuck or closed",
            m.log_lines_dropped.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts `n` dropped webhook events (`queue_full`, `retry_full`, `expired`, `shutdown`).
    pub fn webhook_dropped(&self, kind: &str, n: u64) {
        self.webhook_events_dropped.get_or_create(&KindLabel { kind: kind.into() }).inc_by(n);
        self.totals.webhook_events_dropped.inc_by(n);
    }

    /// Counts one hit of a named limit.
    pub fn limit_hit(&self, kind: &str) {
        self.limit_hits.get_or_create(&KindLabel { kind: kind.into() }).inc();
        self.totals.limit_hits.inc();
    }

    /// Counts one failed signature check (`channel`, `user` or `http`).
    pub fn auth_failure(&self, kind: &str) {
        self.auth_failures.get_or_create(&KindLabel { kind: kind.into() }).inc();
        self.totals.auth_failures.inc();
    }

    /// Counts one HTTP API response.
    pub fn http_request(&self, status: u16) {
        self.http_requests.get_or_create(&StatusLabel { status }).inc();
        self.totals.http_requests.inc();
    }

    /// Counts one refused WebSocket upgrade.
    pub fn upgrade_refused(&self, kind: &str) {
        self.upgrades_refused.get_or_create(&KindLabel { kind: kind.into() }).inc();
        self.totals.upgrades_refused.inc();
    }

    /// Counts one protocol error sent.
    pub fn protocol_error(&self, kind: &str) {
        self.protocol_errors.get_or_create(&KindLabel { kind: kind.into() }).inc();
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let dropped = crate::logging::dropped();
        let shown = self.log_lines_dropped.get();
        if dropped > shown {
            self.log_lines_dropped.inc_by(dropped - shown);
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}

// ---- Timing histograms (issue 14): fan-out time, HTTP API duration, bus lag. ----

/// Where a broadcast came from: the `source` label of `rtc_fanout_seconds`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FanoutSource {
    /// The HTTP API (`/events`, `/batch_events`).
    Api,
    /// A client event from one of this node's sockets.
    Client,
    /// An event another node published on the cluster bus.
    Bus,
}

impl FanoutSource {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            FanoutSource::Api => "api",
            FanoutSource::Client => "client",
            FanoutSource::Bus => "bus",
        }
    }
}

/// `source` label.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabel {
    /// `api`, `client` or `bus`.
    pub source: &'static str,
}

/// `route` and `status` (class) labels of HTTP API durations.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabel {
    /// The route's name: `events`, `batch_events`, `channels`, `channel`, `users`,
    /// `terminate_connections`, `connections`.
    pub route: &'static str,
    /// `2xx`, `4xx`, `5xx` (or `1xx`/`3xx`).
    pub status: &'static str,
}

/// A histogram family with fixed buckets.
type HistogramFamily<L> = Family<L, Histogram, fn() -> Histogram>;

fn fanout_buckets() -> Histogram {
    // 10 µs … ~5 s, doubling.
    Histogram::new(exponential_buckets(0.000_01, 2.0, 20))
}

fn http_buckets() -> Histogram {
    // 50 µs … ~1.6 s, doubling.
    Histogram::new(exponential_buckets(0.000_05, 2.0, 16))
}

/// The node's timing histograms. The fan-out histograms are created up front and held
/// by source, so observing one is a bucket search and an increment, with no label hashing.
pub struct Timing {
    fanout: HistogramFamily<SourceLabel>,
    fanout_by_source: [Histogram; 3],
    /// Deliveries of broadcasts handed to a socket whose queue already held a backlog
    /// (at least a quarter of its limit): queued behind a slow reader.
    pub fanout_backlogged: Counter,
    /// HTTP API request durations by route and status class.
    pub http_api: HistogramFamily<RouteLabel>,
    /// Cluster bus lag: publish (sender's clock) to receipt (this node's clock).
    pub bus_lag: Histogram,
    /// The recent broadcasts behind the fan-out figures of the node's stats.
    pub window: window::FanoutWindow,
}

impl Timing {
    fn new() -> Self {
        let fanout: HistogramFamily<SourceLabel> = Family::new_with_constructor(fanout_buckets);
        let get = |s: FanoutSource| fanout.get_or_create(&SourceLabel { source: s.as_str() }).clone();
        let fanout_by_source = [get(FanoutSource::Api), get(FanoutSource::Client), get(FanoutSource::Bus)];
        Timing {
            fanout,
            fanout_by_source,
            fanout_backlogged: Counter::default(),
            http_api: Family::new_with_constructor(http_buckets),
            // Bus lag is measured in whole milliseconds: 1 ms … ~8 s, doubling.
            bus_lag: Histogram::new(exponential_buckets(0.001, 2.0, 14)),
            window: Default::default(),
        }
    }

    fn register(&self, registry: &mut Registry) {
        registry.register_with_unit(
            "fanout",
            "Broadcast fan-out time: arrival to the last local subscriber's frame written to the kernel or queued, by source",
            Unit::Seconds,
            self.fanout.clone(),
        );
        registry.register(
            "fanout_backlogged",
            "Broadcast deliveries queued behind a backlog (socket queue at least a quarter full)",
            self.fanout_backlogged.clone(),
        );
        registry.register_with_unit(
            "http_api_request",
            "HTTP API request duration by route and status class",
            Unit::Seconds,
            self.http_api.clone(),
        );
        registry.register_with_unit(
            "bus_lag",
            "Cluster bus lag: publish on another node to receipt here (wall clocks)",
            Unit::Seconds,
            self.bus_lag.clone(),
        );
    }

    /// Records one broadcast's fan-out time.
    pub fn fanout(&self, source: FanoutSource, seconds: f64) {
        let i = match source {
            FanoutSource::Api => 0,
            FanoutSource::Client => 1,
            FanoutSource::Bus => 2,
        };
        self.fanout_by_source[i].observe(seconds);
    }

    /// Records one HTTP API request's duration.
    pub fn http_api(&self, route: &'static str, status: u16, seconds: f64) {
        let status = match status {
            100..=199 => "1xx",
            200..=299 => "2xx",
            300..=399 => "3xx",
            400..=499 => "4xx",
            _ => "5xx",
        };
        self.http_api.get_or_create(&RouteLabel { route, status }).observe(seconds);
    }
}
