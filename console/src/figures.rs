//! The view model: per-node and cluster figures derived from consecutive snapshots.
//!
//! [`Tracker::ingest`] is a pure function of the snapshots it has seen: counters become
//! rates over the nodes' own `ts_ms`, buffers get a trend, nodes that vanished keep their
//! last known figures marked stale, and [`crate::alerts`] judges the result. `rtc top`
//! feeds it a stream, `rtc status` feeds it two polls; both print the same figures.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;

use crate::alerts::{self, Alert, Severity};
use crate::model::{NodeState, NodeStats};
use crate::snapshot::{BufferLimit, ClusterSnapshot, NodeProblem, RedisSample, RestartMark};

/// Milliseconds of buffer samples the trend and growth rate are measured over.
const GROWTH_WINDOW_MS: u64 = 30_000;

/// The planning line when neither the operator nor the node sets one (defined once, in
/// rtc-model, for the node and the console).
pub use rtc_model::DEFAULT_PLANNING_LINE;

/// How long a drained node stays listed after it exited (milliseconds).
pub const DRAINED_LISTED_MS: u64 = 120_000;

/// The judgement calls behind the alerts (defaults: [`Thresholds::default`]).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Thresholds {
    /// Planning line for every node; `None` uses each node's own, else the default.
    pub planning_line: Option<u64>,
    /// Warn when a node is at this fraction of its line.
    pub near_fraction: f64,
    /// Warn when the current net connect rate would cross the line within this many seconds.
    pub projection_secs: f64,
    /// Warn when a pub/sub buffer passes this fraction of Redis's limit.
    pub buffer_fraction: f64,
    /// Warn when a pub/sub buffer has kept growing for longer than this.
    pub buffer_growing_secs: f64,
    /// Warn when the event loop is this late (ms).
    pub loop_lag_ms: f64,
    /// Warn when publish-to-receipt lag on the bus is this high (ms).
    pub pubsub_lag_ms: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            planning_line: None,
            near_fraction: 0.9,
            projection_secs: 60.0,
            buffer_fraction: 0.5,
            buffer_growing_secs: 10.0,
            loop_lag_ms: 50.0,
            pubsub_lag_ms: 500.0,
        }
    }
}

/// A node's condition as the console sees it (its own state plus reachability).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Health {
    /// Accepting sockets.
    Serving,
    /// Starting up.
    Starting,
    /// Draining (refusing new sockets, shedding).
    Draining,
    /// Cordoned by a roll: keeping its sockets, refusing new ones.
    Cordoned,
    /// Serving locally but cut off from the cluster bus.
    Degraded,
    /// Exited at the end of a drain (its exit marker says so): expected, not a failure.
    /// Listed for [`DRAINED_LISTED_MS`] after it exited, then dropped.
    Drained,
    /// Registered but no longer heartbeating, without having drained: down until it is
    /// reaped or comes back.
    #[serde(rename = "down")]
    Stale,
    /// Its admin endpoint does not answer.
    Unreachable,
    /// Its registry entry failed the trust check: never acted on.
    Untrusted,
    /// It did not say.
    #[default]
    Unknown,
}

impl Health {
    /// A glyph that tells the state apart without colour.
    pub fn glyph(self) -> &'static str {
        match self {
            Health::Serving => "●",
            Health::Starting => "○",
            Health::Draining => "◐",
            Health::Cordoned => "◑",
            Health::Degraded => "◆",
            Health::Drained => "◌",
            Health::Stale | Health::Unreachable => "✖",
            Health::Untrusted => "⚠",
            Health::Unknown => "?",
        }
    }

    /// A short word for the state.
    pub fn label(self) -> &'static str {
        match self {
            Health::Serving => "serving",
            Health::Starting => "starting",
            Health::Draining => "draining",
            Health::Cordoned => "cordoned",
            Health::Degraded => "degraded",
            Health::Drained => "drained",
            Health::Stale => "down",
            Health::Unreachable => "down",
            Health::Untrusted => "untrusted",
            Health::Unknown => "unknown",
        }
    }

    /// Whether the figures shown are a live reading (not last-known values).
    pub fn is_live(self) -> bool {
        !matches!(self, Health::Stale | Health::Unreachable | Health::Drained)
    }
}

/// Direction of a buffer over the recent samples.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Trend {
    /// Larger than the poll before.
    Rising,
    /// Smaller than the poll before.
    Falling,
    /// Unchanged, or no earlier poll.
    #[default]
    Steady,
}

impl Trend {
    /// `↑`, `↓` or a space.
    pub fn arrow(self) -> &'static str {
        match self {
            Trend::Rising => "↑",
            Trend::Falling => "↓",
            Trend::Steady => " ",
        }
    }
}

/// The cluster bus as seen from one node and from Redis.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct PubSubFigures {
    /// Whether the node's subscriber is connected.
    pub connected: bool,
    /// Output buffer Redis holds for the node's subscriber (`omem`), bytes. Read from
    /// `CLIENT LIST` whether or not the node itself answers.
    pub buffer_bytes: Option<u64>,
    /// Whether the engine has such a buffer figure at all (one Redis); false on a Redis
    /// Cluster or NATS, where the cell reads `n/a` rather than unknown.
    #[serde(skip)]
    pub buffer_known: bool,
    /// The limit the buffer is judged against: Redis's pub/sub soft limit, else the
    /// hard one, bytes; `None` when unknown (`CONFIG GET` not allowed).
    pub limit_bytes: Option<u64>,
    /// `buffer_bytes / limit_bytes`.
    pub buffer_fraction: Option<f64>,
    /// Redis's pub/sub soft limit (bytes) and how many seconds above it Redis allows.
    pub soft_limit_bytes: Option<u64>,
    /// Seconds above the soft limit before Redis disconnects the subscriber.
    pub soft_limit_secs: Option<u64>,
    /// Redis's pub/sub hard limit (disconnect at once), bytes.
    pub hard_limit_bytes: Option<u64>,
    /// Buffer growth over the last samples (up to 30 s), bytes per second; `None` with
    /// fewer than two samples.
    pub growth_bytes_per_s: Option<f64>,
    /// Seconds until Redis would disconnect the subscriber at the current growth rate
    /// (the soft limit held for its seconds, or the hard limit); `None` when not heading
    /// for a limit.
    pub secs_to_cut: Option<f64>,
    /// Buffer direction over the last 30 s of samples (Redis's `omem`, else the node's
    /// backlog).
    pub trend: Trend,
    /// Seconds the buffer has grown without a pause (0 when not growing).
    pub growing_secs: f64,
    /// Publish-to-receipt lag, mean over the node's last second, ms.
    pub lag_ms: f64,
    /// Largest lag in the node's last second, ms.
    pub lag_max_ms: f64,
    /// Messages received but not yet fanned out.
    pub backlog: u64,
    /// Reconnections to Redis since start.
    pub reconnects: u64,
}

/// Progress of a drain.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct DrainFigures {
    /// Fraction of the sockets at the start that are gone (0..=1).
    pub progress: f64,
    /// Sockets at the start of the drain.
    pub sockets_at_start: u64,
    /// Sockets still open.
    pub sockets_left: u64,
    /// Reconnect hints sent.
    pub hints_sent: u64,
    /// Seconds since the drain began.
    pub elapsed_secs: f64,
    /// Seconds of the pacing window.
    pub window_secs: f64,
    /// Seconds until the deadline.
    pub deadline_secs: f64,
    /// Sockets closed at the deadline.
    pub forced: u64,
}

/// Fan-out time as the node measures it (arrival to the last local subscriber's frame
/// queued), over the node's recent window.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct FanoutFigures {
    /// Median over the node's window, ms; `None` without broadcasts in it.
    pub p50_ms: Option<f64>,
    /// 99th percentile over the node's window, ms.
    pub p99_ms: Option<f64>,
    /// The node's fan-out budget, ms.
    pub budget_ms: f64,
    /// Whether `p99_ms` is over the budget.
    pub over_budget: bool,
    /// Sockets one broadcast reaches within the budget at the node's cost per delivery;
    /// `None` until the node has enough samples.
    pub measured_line: Option<u64>,
    /// Fan-out time per socket reached, µs.
    pub cost_per_delivery_us: Option<f64>,
    /// Deliveries queued behind a slow socket's backlog, per second.
    pub backlogged_per_s: Option<f64>,
}

/// One node's row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeFigures {
    /// Node id.
    pub id: String,
    /// Admin base URL, when known.
    pub url: Option<String>,
    /// Condition.
    pub health: Health,
    /// Why the node is stale or down.
    pub problem: Option<String>,
    /// Seconds since the figures were read from the node (0 when live).
    pub age_secs: f64,
    /// rtc version.
    pub version: String,
    /// Seconds since the node started.
    pub uptime_secs: u64,
    /// Open sockets.
    pub connections: u64,
    /// The line the node is judged against.
    pub planning_line: u64,
    /// `connections / planning_line`.
    pub line_fraction: f64,
    /// Sockets opened per second.
    pub connects_per_s: Option<f64>,
    /// Sockets closed per second.
    pub disconnects_per_s: Option<f64>,
    /// Process CPU, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Frames queued to clients per second.
    pub frames_out_per_s: Option<f64>,
    /// Events published per second (before fan-out).
    pub broadcasts_per_s: Option<f64>,
    /// Occupied channels.
    pub channels: u64,
    /// Subscriptions.
    pub subscriptions: u64,
    /// Presence channels.
    pub presence_channels: u64,
    /// Presence members.
    pub presence_members: u64,
    /// Presence frames per second.
    pub presence_frames_per_s: Option<f64>,
    /// Presence frames as a share of all frames out.
    pub presence_share: Option<f64>,
    /// Private/presence subscribes per second (the app's auth endpoint load).
    pub auth_requests_per_s: Option<f64>,
    /// Signature failures per second.
    pub auth_failures_per_s: Option<f64>,
    /// Pongs and pings received per second.
    pub pongs_per_s: Option<f64>,
    /// Requests refused by a limit, per second.
    pub limit_hits_per_s: Option<f64>,
    /// Sockets closed as slow consumers (4100), per second.
    pub slow_consumers_per_s: Option<f64>,
    /// WebSocket upgrades refused (draining, admission control), per second.
    pub upgrades_refused_per_s: Option<f64>,
    /// Bus messages not published (queue full or Redis unreachable), per second.
    pub publish_dropped_per_s: Option<f64>,
    /// Webhook events dropped (queue full, retries exhausted, shutdown), per second.
    pub webhook_dropped_per_s: Option<f64>,
    /// Event-loop lag, ms.
    pub loop_lag_ms: f64,
    /// Open-file limit (the real ceiling on sockets).
    pub open_files_limit: u64,
    /// Cluster bus figures (cluster mode).
    pub pubsub: Option<PubSubFigures>,
    /// Drain progress while draining.
    pub drain: Option<DrainFigures>,
    /// Fan-out time; `None` from a node that does not measure it.
    pub fanout: Option<FanoutFigures>,
    /// Whether these figures were read from the node directly because Redis was down.
    pub direct: bool,
    /// A restart the console noticed recently (new boot id or uptime reset).
    pub restart: Option<RestartMark>,
}

/// The cluster totals row.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Totals {
    /// Nodes known.
    pub nodes_total: u64,
    /// Nodes with a live reading.
    pub nodes_up: u64,
    /// Open sockets on live nodes.
    pub connections: u64,
    /// Sum of the live nodes' planning lines.
    pub planning_line: u64,
    /// `connections / planning_line`.
    pub line_fraction: f64,
    /// Sum over live nodes.
    pub connects_per_s: Option<f64>,
    /// Sum over live nodes.
    pub disconnects_per_s: Option<f64>,
    /// Mean over live nodes.
    pub cpu_percent: f64,
    /// Sum over live nodes.
    pub rss_bytes: u64,
    /// Sum over live nodes.
    pub frames_out_per_s: Option<f64>,
    /// Sum over live nodes.
    pub broadcasts_per_s: Option<f64>,
    /// Sum over live nodes.
    pub presence_channels: u64,
    /// Sum over live nodes.
    pub presence_members: u64,
    /// Sum over live nodes.
    pub presence_frames_per_s: Option<f64>,
    /// Presence frames as a share of all frames out.
    pub presence_share: Option<f64>,
    /// Sum over live nodes.
    pub auth_requests_per_s: Option<f64>,
    /// Sum over live nodes.
    pub auth_failures_per_s: Option<f64>,
    /// Sum over live nodes.
    pub pongs_per_s: Option<f64>,
    /// Sum over live nodes.
    pub limit_hits_per_s: Option<f64>,
    /// Sum over live nodes.
    pub slow_consumers_per_s: Option<f64>,
    /// Sum over live nodes.
    pub upgrades_refused_per_s: Option<f64>,
    /// Sum over live nodes.
    pub publish_dropped_per_s: Option<f64>,
    /// Sum over live nodes.
    pub webhook_dropped_per_s: Option<f64>,
    /// Worst over live nodes, ms.
    pub loop_lag_ms: f64,
    /// Largest pub/sub buffer among all nodes (a hung node's too), bytes.
    pub max_buffer_bytes: Option<u64>,
}

/// One channel, merged over the nodes that report it among their top channels.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ChannelFigures {
    /// App id.
    pub app: String,
    /// Channel name.
    pub name: String,
    /// Channel type as the node reports it.
    pub kind: String,
    /// Subscribers (sum over nodes).
    pub subscribers: u64,
    /// Presence members: distinct users across the cluster (as the HTTP API's
    /// `user_count`) when Redis was read, else the sum of each node's local members.
    pub members: u64,
    /// Frames out per second (sum over nodes).
    pub frames_out_per_s: Option<f64>,
    /// Nodes reporting it.
    pub nodes: u64,
}

/// Everything a screen or a status report shows.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ClusterFigures {
    /// When the snapshot was taken, unix ms (console clock).
    pub taken_ms: u64,
    /// Whether the source answered at all.
    pub source_reachable: bool,
    /// Per node, by id.
    pub nodes: Vec<NodeFigures>,
    /// Cluster totals.
    pub totals: Totals,
    /// Most expensive channels, by frames out per second.
    pub channels: Vec<ChannelFigures>,
    /// Redis's own view (cluster mode).
    pub redis: Option<RedisSample>,
    /// Seconds Redis has been unreadable (the current outage); `None` while it answers.
    pub redis_down_secs: Option<f64>,
    /// Alerts, worst first.
    pub alerts: Vec<Alert>,
}

impl ClusterFigures {
    /// The worst alert severity, if any alert fired.
    pub fn worst(&self) -> Option<Severity> {
        self.alerts.iter().map(|a| a.severity).max()
    }

    /// A node by id.
    pub fn node(&self, id: &str) -> Option<&NodeFigures> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

/// What the tracker remembers about one node between snapshots.
#[derive(Debug, Clone, Default)]
struct Memory {
    /// Latest stats that differ from the previous ones (by `ts_ms`).
    last: Option<NodeStats>,
    /// Console time when `last` was read.
    seen_ms: u64,
    /// Rates computed when `last` arrived; reused while the node's report is unchanged.
    rates: Rates,
    /// Buffer metric at the previous poll, when that poll was, and when it started rising.
    buffer: Option<u64>,
    buffer_ms: u64,
    growing_since_ms: Option<u64>,
    trend: Trend,
    /// Recent buffer samples (unix ms, bytes), for the growth rate.
    buffer_samples: VecDeque<(u64, u64)>,
    /// When the buffer went above Redis's soft limit.
    above_soft_since_ms: Option<u64>,
    /// Per-channel rates keyed by (app, name).
    channel_rates: BTreeMap<(String, String), f64>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq)]
struct Rates {
    known: bool,
    connects: f64,
    disconnects: f64,
    frames_out: f64,
    broadcasts: f64,
    presence_frames: f64,
    auth_requests: f64,
    auth_failures: f64,
    pongs: f64,
    backlogged: Option<f64>,
    limit_hits: f64,
    slow_consumers: f64,
    upgrades_refused: f64,
    publish_dropped: f64,
    webhook_dropped: f64,
}

impl Rates {
    fn between(prev: &NodeStats, cur: &NodeStats) -> Rates {
        let secs = cur.ts_ms.saturating_sub(prev.ts_ms) as f64 / 1000.0;
        let (p, c) = (&prev.counters, &cur.counters);
        let per = |a: u64, b: u64| b.saturating_sub(a) as f64 / secs;
        Rates {
            known: true,
            connects: per(p.connections_opened, c.connections_opened),
            disconnects: per(p.connections_closed, c.connections_closed),
            frames_out: per(p.frames_out, c.frames_out),
            broadcasts: per(p.broadcasts, c.broadcasts),
            presence_frames: per(p.presence_frames, c.presence_frames),
            auth_requests: per(p.auth_requests, c.auth_requests),
            auth_failures: per(p.auth_failures, c.auth_failures),
            pongs: per(p.pongs, c.pongs),
            backlogged: prev.fanout.as_ref().zip(cur.fanout.as_ref()).map(|(p, c)| per(p.backlogged, c.backlogged)),
            limit_hits: per(p.limit_hits, c.limit_hits),
            slow_consumers: per(p.slow_consumers, c.slow_consumers),
            upgrades_refused: per(p.upgrades_refused, c.upgrades_refused),
            publish_dropped: per(
                prev.pubsub.as_ref().map_or(0, |b| b.publish_dropped),
                cur.pubsub.as_ref().map_or(0, |b| b.publish_dropped),
            ),
            webhook_dropped: per(p.webhook_dropped, c.webhook_dropped),
        }
    }

    fn get(&self, v: f64) -> Option<f64> {
        self.known.then_some(v)
    }
}

/// Turns a sequence of snapshots into figures. Deterministic: same snapshots in, same
/// figures out (no clock reads, no I/O).
#[derive(Debug, Clone, Default)]
pub struct Tracker {
    thresholds: Thresholds,
    nodes: BTreeMap<String, Memory>,
}

impl Tracker {
    /// A tracker judging with these thresholds.
    pub fn new(thresholds: Thresholds) -> Self {
        Tracker { thresholds, nodes: BTreeMap::new() }
    }

    /// The thresholds in force.
    pub fn thresholds(&self) -> &Thresholds {
        &self.thresholds
    }

    /// Feeds the next snapshot and returns its figures.
    pub fn ingest(&mut self, snap: &ClusterSnapshot) -> ClusterFigures {
        let limit = snap.redis.as_ref().and_then(|r| r.pubsub_limit);
        // CLIENT LIST is read on one Redis only (and in --node mode there is none to read).
        let buffers_read = snap.redis.as_ref().is_none_or(|r| r.has("pubsub_buffers"));
        let mut nodes = Vec::with_capacity(snap.nodes.len());
        for sample in &snap.nodes {
            let drained = drained_marker(sample);
            if drained.is_some_and(|m| snap.taken_ms.saturating_sub(m.at_ms) > DRAINED_LISTED_MS) {
                // Drained and gone a while: no longer part of the picture.
                continue;
            }
            let mem = self.nodes.entry(sample.id.clone()).or_default();
            let (health, problem) = match (&sample.stats, &sample.problem) {
                (Some(cur), _) if cur.ts_ms == 0 => {
                    // A node that does not stamp its report: the poll time stands in.
                    let stamped = NodeStats { ts_ms: snap.taken_ms, ..cur.clone() };
                    observe(mem, &stamped, snap.taken_ms);
                    (health_of(cur), None)
                }
                (Some(cur), _) => {
                    observe(mem, cur, snap.taken_ms);
                    (health_of(cur), None)
                }
                (None, Some(NodeProblem::Expired)) => match (&drained, &sample.exit) {
                    (Some(m), _) => (
                        Health::Drained,
                        Some(format!("drained and exited {}s ago", snap.taken_ms.saturating_sub(m.at_ms) / 1000)),
                    ),
                    (None, Some(_)) => (Health::Stale, Some("stopped without a drain".to_string())),
                    (None, None) => (Health::Stale, Some("registry key expired".to_string())),
                },
                (None, Some(NodeProblem::Unreachable(e))) => (Health::Unreachable, Some(e.clone())),
                (None, Some(NodeProblem::Undecodable(e))) => (Health::Unknown, Some(e.clone())),
                (None, Some(NodeProblem::Untrusted(e))) => (Health::Untrusted, Some(e.clone())),
                (None, None) => (Health::Unknown, None),
            };
            if mem.buffer.is_none() {
                // An earlier run's sample (the cache file) starts the trend.
                if let Some((b, at)) = sample.omem_before.filter(|(_, at)| *at < snap.taken_ms) {
                    mem.buffer = Some(b);
                    mem.buffer_ms = at;
                    mem.buffer_samples.push_back((at, b));
                }
            }
            if !health.is_live() || sample.stats.is_none() {
                mem.rates = Rates::default();
            }
            // Redis's figure for the subscriber counts whether or not the node answers:
            // a hung node is exactly when its buffer grows.
            let metric = sample
                .pubsub_omem
                .or_else(|| sample.stats.as_ref().filter(|_| health.is_live())?.pubsub.as_ref().map(|p| p.backlog));
            let redis_down = snap.redis.as_ref().is_some_and(|r| r.error.is_some());
            if redis_down {
                // Redis's figure is unknown for now: keep the buffer's history as it was.
            } else if metric.is_none() {
                mem.trend = Trend::Steady;
                mem.growing_since_ms = None;
                mem.buffer = None;
                mem.buffer_samples.clear();
                mem.above_soft_since_ms = None;
            } else {
                track_buffer(mem, metric, snap.taken_ms);
                track_soft_limit(mem, sample.pubsub_omem, limit, snap.taken_ms);
            }
            let mut fig = node_figures(sample, mem, health, problem, snap.taken_ms, limit, &self.thresholds);
            if let (Some(p), false) = (fig.pubsub.as_mut(), buffers_read) {
                p.buffer_known = false;
            }
            nodes.push(fig);
        }
        // Forget nodes that left the registry.
        self.nodes.retain(|id, _| snap.nodes.iter().any(|n| &n.id == id));

        let channels = self.channels(snap);
        let totals = totals(&nodes);
        let redis_down_secs = snap
            .redis
            .as_ref()
            .filter(|r| r.error.is_some())
            .map(|r| r.down_since_ms.map_or(0.0, |since| snap.taken_ms.saturating_sub(since) as f64 / 1000.0));
        let alerts = alerts::evaluate(&nodes, snap, &self.thresholds);
        ClusterFigures {
            taken_ms: snap.taken_ms,
            source_reachable: snap.source_reachable(),
            nodes,
            totals,
            channels,
            redis: snap.redis.clone(),
            redis_down_secs,
            alerts,
        }
    }

    fn channels(&self, snap: &ClusterSnapshot) -> Vec<ChannelFigures> {
        let mut merged: BTreeMap<(String, String), ChannelFigures> = BTreeMap::new();
        for sample in &snap.nodes {
            let Some(stats) = &sample.stats else { continue };
            let mem = self.nodes.get(&sample.id);
            for ch in &stats.top_channels {
                let key = (ch.app.clone(), ch.name.clone());
                let rate = mem.and_then(|m| m.channel_rates.get(&key).copied());
                let entry = merged.entry(key).or_insert_with(|| ChannelFigures {
                    app: ch.app.clone(),
                    name: ch.name.clone(),
                    kind: ch.kind.clone(),
                    ..ChannelFigures::default()
                });
                entry.subscribers += ch.subscribers;
                entry.members += ch.members;
                entry.nodes += 1;
                if let Some(r) = rate {
                    entry.frames_out_per_s = Some(entry.frames_out_per_s.unwrap_or(0.0) + r);
                }
            }
        }
        // Distinct users, counted in Redis over every node's member hash: a user
        // connected to two nodes is one member.
        if let Some(r) = snap.redis.as_ref().filter(|r| r.error.is_none()) {
            for (key, users) in &r.presence_users {
                if let Some(c) = merged.get_mut(key) {
                    c.members = *users;
                }
            }
        }
        let mut out: Vec<ChannelFigures> = merged.into_values().collect();
        out.sort_by(|a, b| {
            let ra = a.frames_out_per_s.unwrap_or(-1.0);
            let rb = b.frames_out_per_s.unwrap_or(-1.0);
            rb.total_cmp(&ra).then(b.subscribers.cmp(&a.subscribers)).then(a.name.cmp(&b.name))
        });
        out
    }
}

/// The sample's exit marker when it says the node drained and exited.
fn drained_marker(sample: &crate::snapshot::NodeSample) -> Option<&crate::model::ExitMarker> {
    if sample.stats.is_some() {
        return None;
    }
    sample.exit.as_ref().filter(|m| m.drained)
}

/// Records fresh stats: rates against the previous report of the same process.
fn observe(mem: &mut Memory, cur: &NodeStats, now_ms: u64) {
    match &mem.last {
        // Same report read twice (the node writes once a second): keep the rates.
        Some(prev) if prev.boot_id == cur.boot_id && prev.ts_ms == cur.ts_ms => {}
        Some(prev) if prev.boot_id == cur.boot_id && prev.ts_ms < cur.ts_ms => {
            mem.rates = Rates::between(prev, cur);
            let secs = cur.ts_ms.saturating_sub(prev.ts_ms) as f64 / 1000.0;
            mem.channel_rates = cur
                .top_channels
                .iter()
                .filter_map(|c| {
                    let p = prev.top_channels.iter().find(|p| p.app == c.app && p.name == c.name)?;
                    let r = c.frames_out.saturating_sub(p.frames_out) as f64 / secs;
                    Some(((c.app.clone(), c.name.clone()), r))
                })
                .collect();
            mem.last = Some(cur.clone());
        }
        // First sight, a restart (new boot id) or a clock step back: no rates yet.
        _ => {
            mem.rates = Rates::default();
            mem.channel_rates.clear();
            mem.last = Some(cur.clone());
        }
    }
    mem.seen_ms = now_ms;
}

fn track_buffer(mem: &mut Memory, metric: Option<u64>, now_ms: u64) {
    match (mem.buffer, metric) {
        (Some(prev), Some(cur)) if cur > prev => {
            // It started rising at the previous poll.
            mem.growing_since_ms.get_or_insert(mem.buffer_ms);
        }
        (Some(prev), Some(cur)) if cur < prev => mem.growing_since_ms = None,
        // Unchanged between two polls (a hung node's buffer grows in bursts, as events
        // are published): the window below decides.
        (Some(_), Some(_)) => {}
        _ => mem.growing_since_ms = None,
    }
    mem.buffer = metric;
    mem.buffer_ms = now_ms;
    if let Some(b) = metric {
        mem.buffer_samples.push_back((now_ms, b));
    }
    while mem.buffer_samples.len() > 2
        && mem.buffer_samples.front().is_some_and(|(at, _)| now_ms.saturating_sub(*at) > GROWTH_WINDOW_MS)
    {
        mem.buffer_samples.pop_front();
    }
    // The direction over the window, not just since the last poll.
    mem.trend = match (mem.buffer_samples.front(), mem.buffer_samples.back()) {
        (Some(first), Some(last)) if last.1 > first.1 => Trend::Rising,
        (Some(first), Some(last)) if last.1 < first.1 => Trend::Falling,
        _ => Trend::Steady,
    };
    if mem.trend != Trend::Rising {
        mem.growing_since_ms = None;
    }
}

fn track_soft_limit(mem: &mut Memory, omem: Option<u64>, limit: Option<BufferLimit>, now_ms: u64) {
    let soft = limit.map_or(0, |l| l.soft_bytes);
    match omem {
        Some(b) if soft > 0 && b > soft => {
            mem.above_soft_since_ms.get_or_insert(now_ms);
        }
        _ => mem.above_soft_since_ms = None,
    }
}

/// Growth of the buffer over the samples kept, bytes per second.
fn growth_rate(mem: &Memory) -> Option<f64> {
    let (first, last) = (mem.buffer_samples.front()?, mem.buffer_samples.back()?);
    let secs = last.0.saturating_sub(first.0) as f64 / 1000.0;
    (secs > 0.0).then(|| (last.1 as f64 - first.1 as f64) / secs)
}

/// Seconds until Redis disconnects a subscriber holding `bytes` and growing at `rate`
/// bytes/s: above the soft limit for its seconds (`above_secs` already spent), or over
/// the hard limit, whichever comes first. `None` when neither is in sight.
pub fn secs_to_cut(bytes: u64, rate: Option<f64>, limit: BufferLimit, above_secs: Option<f64>) -> Option<f64> {
    let rate = rate.filter(|r| *r > 0.0);
    let b = bytes as f64;
    let hard = (limit.hard_bytes > 0).then_some(limit.hard_bytes as f64);
    let soft = (limit.soft_bytes > 0).then_some(limit.soft_bytes as f64);
    let by_hard = hard.and_then(|h| if b >= h { Some(0.0) } else { rate.map(|r| (h - b) / r) });
    let by_soft = soft.and_then(|s| {
        let hold = limit.soft_secs as f64;
        if b > s {
            Some((hold - above_secs.unwrap_or(0.0)).max(0.0))
        } else {
            rate.map(|r| (s - b) / r + hold)
        }
    });
    match (by_hard, by_soft) {
        (Some(h), Some(s)) => Some(h.min(s)),
        (h, s) => h.or(s),
    }
}

fn health_of(s: &NodeStats) -> Health {
    let cut_off = s.pubsub.as_ref().is_some_and(|p| !p.connected);
    match s.state {
        Some(NodeState::Degraded) => Health::Degraded,
        Some(NodeState::Draining) => Health::Draining,
        Some(NodeState::Cordoned) => Health::Cordoned,
        _ if cut_off => Health::Degraded,
        Some(NodeState::Serving) => Health::Serving,
        Some(NodeState::Starting) => Health::Starting,
        Some(NodeState::Unknown) | None => Health::Unknown,
    }
}

fn node_figures(
    sample: &crate::snapshot::NodeSample,
    mem: &Memory,
    health: Health,
    problem: Option<String>,
    now_ms: u64,
    limit: Option<BufferLimit>,
    t: &Thresholds,
) -> NodeFigures {
    let fallback = NodeStats::default();
    let s = sample.stats.as_ref().or(mem.last.as_ref()).unwrap_or(&fallback);
    let r = mem.rates;
    let line = t.planning_line.or((s.planning_line > 0).then_some(s.planning_line)).unwrap_or(DEFAULT_PLANNING_LINE);
    let frames_out = r.get(r.frames_out);
    let presence_share = match (r.get(r.presence_frames), frames_out) {
        (Some(p), Some(f)) if f > 0.0 => Some(p / f),
        _ => None,
    };
    let fallback_pubsub = crate::model::PubSubStats::default();
    let pubsub = s.pubsub.as_ref().or(sample.pubsub_omem.map(|_| &fallback_pubsub)).map(|p| {
        let buffer = sample.pubsub_omem;
        let judged = limit.and_then(|l| l.effective());
        let growth = if buffer.is_some() { growth_rate(mem) } else { None };
        let above_secs = mem.above_soft_since_ms.map(|since| now_ms.saturating_sub(since) as f64 / 1000.0);
        PubSubFigures {
            connected: p.connected,
            buffer_bytes: buffer,
            buffer_known: true,
            limit_bytes: judged,
            buffer_fraction: match (buffer, judged) {
                (Some(b), Some(l)) if l > 0 => Some(b as f64 / l as f64),
                _ => None,
            },
            soft_limit_bytes: limit.map(|l| l.soft_bytes).filter(|b| *b > 0),
            soft_limit_secs: limit.filter(|l| l.soft_bytes > 0).map(|l| l.soft_secs),
            hard_limit_bytes: limit.map(|l| l.hard_bytes).filter(|b| *b > 0),
            growth_bytes_per_s: growth,
            secs_to_cut: buffer.zip(limit).and_then(|(b, l)| secs_to_cut(b, growth, l, above_secs)),
            trend: mem.trend,
            growing_secs: mem.growing_since_ms.map_or(0.0, |since| now_ms.saturating_sub(since) as f64 / 1000.0),
            lag_ms: p.lag_ms,
            lag_max_ms: p.lag_max_ms,
            backlog: p.backlog,
            reconnects: p.reconnects,
        }
    });
    let drain = s.drain.as_ref().map(|d| DrainFigures {
        progress: if d.sockets_at_start > 0 {
            1.0 - d.sockets_left.min(d.sockets_at_start) as f64 / d.sockets_at_start as f64
        } else {
            1.0
        },
        sockets_at_start: d.sockets_at_start,
        sockets_left: d.sockets_left,
        hints_sent: d.hints_sent,
        elapsed_secs: d.elapsed_secs,
        window_secs: d.window_secs,
        deadline_secs: d.deadline_secs,
        forced: d.forced,
    });
    let fanout = s.fanout.as_ref().map(|f| FanoutFigures {
        p50_ms: f.p50_ms,
        p99_ms: f.p99_ms,
        budget_ms: f.budget_ms,
        over_budget: f.budget_ms > 0.0 && f.p99_ms.is_some_and(|p| p > f.budget_ms),
        measured_line: s.measured_line,
        cost_per_delivery_us: f.cost_per_delivery_us,
        backlogged_per_s: r.backlogged.filter(|_| r.known),
    });
    let url = sample.url.clone().or_else(|| (!s.advertise_url.is_empty()).then(|| s.advertise_url.clone()));
    NodeFigures {
        id: sample.id.clone(),
        url,
        health,
        problem,
        age_secs: if sample.stats.is_some() || mem.last.is_none() {
            0.0
        } else {
            now_ms.saturating_sub(mem.seen_ms) as f64 / 1000.0
        },
        version: s.version.clone(),
        uptime_secs: s.uptime_secs,
        connections: s.connections,
        planning_line: line,
        line_fraction: s.connections as f64 / line.max(1) as f64,
        connects_per_s: r.get(r.connects),
        disconnects_per_s: r.get(r.disconnects),
        cpu_percent: s.cpu_percent,
        rss_bytes: s.rss_bytes,
        frames_out_per_s: frames_out,
        broadcasts_per_s: r.get(r.broadcasts),
        channels: s.channels,
        subscriptions: s.subscriptions,
        presence_channels: s.presence_channels,
        presence_members: s.presence_members,
        presence_frames_per_s: r.get(r.presence_frames),
        presence_share,
        auth_requests_per_s: r.get(r.auth_requests),
        auth_failures_per_s: r.get(r.auth_failures),
        pongs_per_s: r.get(r.pongs),
        limit_hits_per_s: r.get(r.limit_hits),
        slow_consumers_per_s: r.get(r.slow_consumers),
        upgrades_refused_per_s: r.get(r.upgrades_refused),
        publish_dropped_per_s: r.get(r.publish_dropped),
        webhook_dropped_per_s: r.get(r.webhook_dropped),
        loop_lag_ms: s.loop_lag_ms,
        open_files_limit: s.open_files_limit,
        pubsub,
        drain,
        fanout,
        direct: sample.direct,
        restart: sample.restart.clone(),
    }
}

fn totals(nodes: &[NodeFigures]) -> Totals {
    let live: Vec<&NodeFigures> = nodes.iter().filter(|n| n.health.is_live()).collect();
    let sum = |f: fn(&NodeFigures) -> Option<f64>| -> Option<f64> {
        live.iter().filter_map(|n| f(n)).fold(None, |acc, v| Some(acc.unwrap_or(0.0) + v))
    };
    let connections: u64 = live.iter().map(|n| n.connections).sum();
    let planning_line: u64 = live.iter().map(|n| n.planning_line).sum();
    let frames_out = sum(|n| n.frames_out_per_s);
    let presence_frames = sum(|n| n.presence_frames_per_s);
    Totals {
        nodes_total: nodes.len() as u64,
        nodes_up: live.len() as u64,
        connections,
        planning_line,
        line_fraction: if planning_line > 0 { connections as f64 / planning_line as f64 } else { 0.0 },
        connects_per_s: sum(|n| n.connects_per_s),
        disconnects_per_s: sum(|n| n.disconnects_per_s),
        cpu_percent: if live.is_empty() {
            0.0
        } else {
            live.iter().map(|n| n.cpu_percent).sum::<f64>() / live.len() as f64
        },
        rss_bytes: live.iter().map(|n| n.rss_bytes).sum(),
        frames_out_per_s: frames_out,
        broadcasts_per_s: sum(|n| n.broadcasts_per_s),
        presence_channels: live.iter().map(|n| n.presence_channels).sum(),
        presence_members: live.iter().map(|n| n.presence_members).sum(),
        presence_frames_per_s: presence_frames,
        presence_share: match (presence_frames, frames_out) {
            (Some(p), Some(f)) if f > 0.0 => Some(p / f),
            _ => None,
        },
        auth_requests_per_s: sum(|n| n.auth_requests_per_s),
        auth_failures_per_s: sum(|n| n.auth_failures_per_s),
        pongs_per_s: sum(|n| n.pongs_per_s),
        limit_hits_per_s: sum(|n| n.limit_hits_per_s),
        slow_consumers_per_s: sum(|n| n.slow_consumers_per_s),
        upgrades_refused_per_s: sum(|n| n.upgrades_refused_per_s),
        publish_dropped_per_s: sum(|n| n.publish_dropped_per_s),
        webhook_dropped_per_s: sum(|n| n.webhook_dropped_per_s),
        loop_lag_ms: live.iter().map(|n| n.loop_lag_ms).fold(0.0, f64::max),
        max_buffer_bytes: nodes.iter().filter_map(|n| n.pubsub.as_ref()?.buffer_bytes).max(),
    }
}
