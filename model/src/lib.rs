//! The wire contract between nodes and the console: what a node reports about itself.
//!
//! A node serves one [`NodeStats`] at `GET /admin/stats` (bearer admin token) and, in
//! cluster mode, writes the same JSON every second to its registry key in Redis
//! ([`registry_key`]) with a TTL. The console reads only these; it never links the
//! server. Counters are monotonic since the node started: rates are derived by the
//! reader from two snapshots (`ts_ms` apart). Field names are stable snake_case; new
//! fields are added with `#[serde(default)]` so adjacent versions interoperate.

use serde::{Deserialize, Serialize};

pub mod bus;
pub use bus::Engine;

/// Version of this schema, bumped on incompatible changes.
pub const STATS_SCHEMA: u32 = 1;

/// The planning line when neither the operator nor the node sets one: the connections
/// one Reverb process is known to hold before its event loop falls behind.
pub const DEFAULT_PLANNING_LINE: u64 = 12_000;

/// Milliseconds since the Unix epoch (0 if the clock is before it): the timestamps
/// nodes and the console write (`ts_ms`, markers, timeline entries).
pub fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Registry key prefix for a cluster: every key rtc writes to Redis starts with it.
pub fn cluster_prefix(cluster: &str) -> String {
    format!("rtc:{cluster}:")
}

/// Key holding one node's latest [`NodeStats`] JSON (expires when the node stops
/// heartbeating).
pub fn registry_key(cluster: &str, node_id: &str) -> String {
    format!("rtc:{cluster}:node:{node_id}")
}

/// Set of node ids that have registered in a cluster (members whose registry key has
/// expired are dead or gone).
pub fn registry_set_key(cluster: &str) -> String {
    format!("rtc:{cluster}:nodes")
}

/// A node's lifecycle state.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Starting up (not yet accepting sockets).
    Starting,
    /// Accepting sockets.
    Serving,
    /// Draining: refusing new sockets, shedding existing ones.
    Draining,
    /// Serving local sockets but cut off from the cluster (Redis down).
    Degraded,
    /// Keeping its sockets but refusing new ones (set by `rtc roll`).
    Cordoned,
    /// A state this version does not know (written by a newer node).
    #[serde(other)]
    Unknown,
}

/// Monotonic counters since the node started.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Counters {
    /// WebSocket connections accepted.
    pub connections_opened: u64,
    /// WebSocket connections closed.
    pub connections_closed: u64,
    /// Upgrades refused (draining, admission control).
    pub upgrades_refused: u64,
    /// Frames received from clients.
    pub frames_in: u64,
    /// Frames queued to clients.
    pub frames_out: u64,
    /// Bytes queued to clients.
    pub bytes_out: u64,
    /// Events published (HTTP API, client events) before fan-out.
    pub broadcasts: u64,
    /// Presence frames (member_added/removed, presence subscription_succeeded).
    pub presence_frames: u64,
    /// Private/presence subscribe attempts: the load on the app's auth endpoint.
    pub auth_requests: u64,
    /// Signature failures (channel, user and HTTP API).
    pub auth_failures: u64,
    /// Pongs and pings received from clients.
    pub pongs: u64,
    /// Client events accepted.
    pub client_events: u64,
    /// Sockets closed as slow consumers (4100).
    pub slow_consumers: u64,
    /// HTTP API requests served.
    pub http_requests: u64,
    /// Requests refused by a limit.
    pub limit_hits: u64,
    /// Webhook events dropped (queue full, retries exhausted, shutdown, throttle full):
    /// the sum of `rtc_webhook_events_dropped_total` over its kinds.
    pub webhook_dropped: u64,
}

/// Cluster bus (Redis pub/sub) health as measured by the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct PubSubStats {
    /// Whether the node's subscriber connection is up.
    pub connected: bool,
    /// Publish-to-receipt lag of recent messages, milliseconds (mean over the last second).
    pub lag_ms: f64,
    /// Largest lag seen in the last second, milliseconds.
    pub lag_max_ms: f64,
    /// Messages received but not yet fanned out.
    pub backlog: u64,
    /// Messages published (monotonic).
    pub published: u64,
    /// Messages received (monotonic).
    pub received: u64,
    /// Messages skipped (unknown version, undecodable, or the receive queue full),
    /// monotonic.
    pub skipped: u64,
    /// Messages not published (the publish queue full, or Redis unreachable), monotonic.
    pub publish_dropped: u64,
    /// Reconnections to Redis, monotonic.
    pub reconnects: u64,
    /// The name the subscriber connection set with `CLIENT SETNAME` (for `CLIENT LIST`).
    pub client_name: String,
    /// Messages dropped because their MAC was missing or did not verify with the
    /// cluster secret (a forged or misconfigured publisher), monotonic.
    pub unauthenticated: u64,
}

/// Progress of a drain.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct DrainStats {
    /// Sockets at the start of the drain.
    pub sockets_at_start: u64,
    /// Sockets still open.
    pub sockets_left: u64,
    /// Reconnect hints (4200 closes) sent.
    pub hints_sent: u64,
    /// Seconds since the drain began.
    pub elapsed_secs: f64,
    /// Seconds of the pacing window.
    pub window_secs: f64,
    /// Seconds until the drain deadline forces the rest closed.
    pub deadline_secs: f64,
    /// Sockets closed at the deadline (not paced).
    pub forced: u64,
}

/// One channel among the node's most expensive.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ChannelStats {
    /// App id.
    pub app: String,
    /// Channel name.
    pub name: String,
    /// `public`, `private`, `encrypted`, `presence` or `user`.
    pub kind: String,
    /// Local subscribers.
    pub subscribers: u64,
    /// Local presence members (distinct users).
    pub members: u64,
    /// Frames queued for this channel's subscribers (monotonic).
    pub frames_out: u64,
}

/// Fan-out time as the node measures it: from a broadcast's arrival (HTTP API request,
/// client event, bus message) to its frame handed to the last local subscriber's
/// outbound queue. Only broadcasts reaching at least one local subscriber count.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FanoutStats {
    /// Median fan-out time over the last `window_secs`, milliseconds; `None` without
    /// broadcasts in the window.
    pub p50_ms: Option<f64>,
    /// 99th percentile over the last `window_secs`, milliseconds.
    pub p99_ms: Option<f64>,
    /// Broadcasts timed in the window.
    pub broadcasts: u64,
    /// Length of the window, seconds.
    pub window_secs: f64,
    /// The node's fan-out budget (its `fanout_budget_ms` option), milliseconds.
    pub budget_ms: f64,
    /// Fan-out time per socket reached over the last 1024 broadcasts (total time / total
    /// sockets), microseconds; `None` until enough samples.
    pub cost_per_delivery_us: Option<f64>,
    /// Deliveries queued behind a backlog (the socket's queue at least a quarter full),
    /// monotonic.
    pub backlogged: u64,
}

/// Per-app figures on the node.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct AppStats {
    /// App id.
    pub id: String,
    /// Open connections.
    pub connections: u64,
    /// Occupied channels.
    pub channels: u64,
    /// Connection quota (0 = unlimited).
    pub max_connections: u64,
}

/// Everything a node reports about itself.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct NodeStats {
    /// [`STATS_SCHEMA`] of the writer.
    pub schema: u32,
    /// When the snapshot was taken, unix milliseconds.
    pub ts_ms: u64,
    /// Node id (unique among live nodes of a cluster).
    pub node_id: String,
    /// Random id of this process; changes on every restart.
    pub boot_id: String,
    /// rtc version string.
    pub version: String,
    /// Cluster name, empty for a standalone node.
    pub cluster: String,
    /// Base URL others reach the node at (admin API), e.g. `http://10.0.0.5:8080`.
    pub advertise_url: String,
    /// Host name of the machine running the node.
    pub hostname: String,
    /// Process id of the node on that host.
    pub pid: u32,
    /// Lifecycle state; `None` when unknown.
    pub state: Option<NodeState>,
    /// Seconds since start.
    pub uptime_secs: u64,
    /// Live nodes of the cluster as this node sees them (itself included; 1 standalone).
    pub live_nodes: u64,
    /// Open sockets.
    pub connections: u64,
    /// The planning line for this node (connections).
    pub planning_line: u64,
    /// The measured line: sockets one broadcast could reach within the fan-out budget at
    /// the node's current cost per delivery; `None` until enough samples (or from a node
    /// that does not measure it).
    pub measured_line: Option<u64>,
    /// The process's open-file limit (the real ceiling on sockets).
    pub open_files_limit: u64,
    /// Occupied channels (all apps).
    pub channels: u64,
    /// Subscriptions (all apps).
    pub subscriptions: u64,
    /// Presence channels.
    pub presence_channels: u64,
    /// Presence members (user, channel pairs).
    pub presence_members: u64,
    /// Process CPU, percent of one core.
    pub cpu_percent: f64,
    /// Resident memory, bytes.
    pub rss_bytes: u64,
    /// Event-loop lag: how late a 100 ms timer fired, milliseconds (max over the last second).
    pub loop_lag_ms: f64,
    /// Monotonic counters.
    pub counters: Counters,
    /// Cluster bus health (cluster mode only).
    pub pubsub: Option<PubSubStats>,
    /// Drain progress while draining.
    pub drain: Option<DrainStats>,
    /// The most expensive channels (by frames out), at most 20.
    pub top_channels: Vec<ChannelStats>,
    /// Per-app figures.
    pub apps: Vec<AppStats>,
    /// Registry entries only: hex HMAC-SHA256, keyed by the node's admin token, over
    /// the entry's cluster, node id, boot id and advertise URL, so the console can tell
    /// a real node from an entry forged by whoever can write to Redis. Empty in
    /// `/admin/stats`.
    pub registry_sig: String,
    /// Fan-out time figures; `None` from a node that does not measure them.
    pub fanout: Option<FanoutStats>,
}

/// Key of a node's exit marker ([`ExitMarker`] JSON): written by a node that stops
/// cleanly, so the console can tell a drained node from a dead one.
pub fn exit_marker_key(cluster: &str, node_id: &str) -> String {
    format!("rtc:{cluster}:exit:{node_id}")
}

/// Key of the cluster's incident timeline: a capped Redis stream of [`TimelineEntry`]
/// fields written by the nodes (`XADD ... MAXLEN ~ N`).
pub fn timeline_key(cluster: &str) -> String {
    format!("rtc:{cluster}:timeline")
}

/// What a node leaves behind when it stops cleanly.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ExitMarker {
    /// Boot id of the process that exited.
    pub boot_id: String,
    /// Whether it exited at the end of a drain (else a plain clean stop).
    pub drained: bool,
    /// When it exited, unix milliseconds.
    pub at_ms: u64,
}

/// One entry of the incident timeline (the stream's fields, plus its id's time).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct TimelineEntry {
    /// When it was written, unix milliseconds (from the stream id).
    pub ts_ms: u64,
    /// The node it is about.
    pub node: String,
    /// What happened: `started`, `restarted`, `drain_begun`, `drain_finished`, `stopped`,
    /// `cordoned`, `uncordoned`, `node_reaped`, `redis_restored` (new kinds may appear).
    pub kind: String,
    /// Details for the operator (version, previous boot id, durations, counts).
    pub detail: String,
}

/// Key of one node's presence members of a channel (a hash: user id → user info). The
/// console unions these over the nodes to count distinct users, as the HTTP API does.
pub fn presence_key(cluster: &str, app: &str, channel: &str, node_id: &str) -> String {
    format!("rtc:{cluster}:pres:{app}:{channel}:{node_id}")
}
