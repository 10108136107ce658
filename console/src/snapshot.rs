//! What the collector produces: one immutable [`ClusterSnapshot`] per poll, exactly as
//! read from the wire. No rates, no judgement: [`crate::figures`] derives those.

use serde::Serialize;

use crate::model::NodeStats;

/// One poll of every source.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ClusterSnapshot {
    /// When the console took it (its own clock), unix milliseconds.
    pub taken_ms: u64,
    /// Every node the source knows about, in a stable order (by id).
    pub nodes: Vec<NodeSample>,
    /// Redis's own view; `None` when the source has no Redis (`--node` mode).
    pub redis: Option<RedisSample>,
}

/// One node as seen in one poll.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct NodeSample {
    /// Node id (registry id, or the URL in `--node` mode until the node answers).
    pub id: String,
    /// Admin base URL (the `--node` URL, or the node's `advertise_url`).
    pub url: Option<String>,
    /// The node's report; `None` when it could not be read.
    pub stats: Option<NodeStats>,
    /// Why `stats` is missing.
    pub problem: Option<NodeProblem>,
    /// Output buffer of the node's subscriber connection as Redis reports it (`omem`),
    /// bytes; `None` when unknown (no Redis, or the connection is not listed).
    pub pubsub_omem: Option<u64>,
    /// Whether `stats` was read from the node's own admin endpoint because the registry
    /// could not be read (Redis down): the console polls every node it has seen.
    pub direct: bool,
    /// The subscriber buffer an earlier poll or run saw: (bytes, unix ms). Lets a
    /// one-shot command tell a growing buffer from a large one.
    pub omem_before: Option<(u64, u64)>,
    /// Set when this node's process changed (new boot id, or uptime went back) since
    /// the console last saw it.
    pub restart: Option<RestartMark>,
    /// The marker the node left when it stopped cleanly (registry entry expired).
    pub exit: Option<crate::model::ExitMarker>,
}

/// A restart the console noticed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RestartMark {
    /// When it was noticed, unix ms (console clock).
    pub noticed_ms: u64,
    /// The boot id before the restart.
    pub previous_boot_id: String,
}

/// Why a node's stats are missing from a snapshot.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "kind", content = "detail", rename_all = "snake_case")]
pub enum NodeProblem {
    /// Its id is registered but its registry key expired: it stopped heartbeating.
    Expired,
    /// Its admin endpoint did not answer (or answered with an error).
    Unreachable(String),
    /// What it wrote could not be decoded.
    Undecodable(String),
    /// Its registry entry failed the trust check (bad id or URL, missing or wrong
    /// signature): shown, never acted on, never sent the admin token.
    Untrusted(String),
}

/// `not_available` entry: Redis's own figures (`INFO`), its pub/sub clients and
/// buffers (`CLIENT LIST`) and the keyspace sample, read on one Redis only.
pub const NOT_AVAILABLE_REDIS_FIGURES: [&str; 3] = ["redis_figures", "pubsub_buffers", "keyspace"];
/// `not_available` entry: the incident timeline (the NATS engine keeps none).
pub const NOT_AVAILABLE_TIMELINE: &str = "timeline";

/// What the registry's engine showed in one poll (in JSON `redis`, its historical name):
/// on one Redis also Redis's own figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedisSample {
    /// The engine read (`redis`, `redis-cluster`, `nats`), from the source's URL.
    pub engine: crate::model::Engine,
    /// Set when the engine could not be read; the other fields are then empty.
    pub error: Option<String>,
    /// Figures this engine does not have, so the console shows them as not available
    /// rather than as zero: [`NOT_AVAILABLE_REDIS_FIGURES`] on a Redis Cluster and on
    /// NATS, [`NOT_AVAILABLE_TIMELINE`] on NATS.
    pub not_available: Vec<&'static str>,
    /// `redis_version` from `INFO server`.
    pub version: String,
    /// `used_memory` from `INFO memory`, bytes.
    pub used_memory: u64,
    /// Clients in pub/sub mode (`CLIENT LIST TYPE pubsub`).
    pub pubsub_clients: u64,
    /// The `pubsub` class of `client-output-buffer-limit`; `None` when `CONFIG GET` is
    /// not allowed (managed Redis).
    pub pubsub_limit: Option<BufferLimit>,
    /// A bounded sample of the keyspace.
    pub keyspace: KeySample,
    /// When the console first failed to read Redis in the current outage, unix ms;
    /// `None` while Redis answers.
    pub down_since_ms: Option<u64>,
    /// Pub/sub subscribers whose connection name matches no registered node (a node of
    /// another version, a leftover process), with their output buffers.
    pub other_subscribers: Vec<Subscriber>,
    /// The latest entries of the cluster's incident timeline, newest first (in JSON at
    /// the top level, `timeline`).
    #[serde(skip)]
    pub timeline: Vec<crate::model::TimelineEntry>,
    /// Distinct presence users per presence channel among the nodes' top channels,
    /// counted over every node's member hash: ((app, channel), users).
    #[serde(skip)]
    pub presence_users: Vec<((String, String), u64)>,
    /// When no node is registered under this cluster name: the cluster names that do
    /// have nodes in this Redis.
    pub other_clusters: Vec<String>,
}

/// A pub/sub client as Redis lists it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Subscriber {
    /// `CLIENT SETNAME` of the connection (empty when unnamed).
    pub name: String,
    /// `addr=`: the client's address.
    pub addr: String,
    /// Output buffer, bytes (`omem`).
    pub omem: u64,
}

/// Redis's `client-output-buffer-limit` for one client class.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct BufferLimit {
    /// Disconnect at once above this many bytes (0 = no limit).
    pub hard_bytes: u64,
    /// Disconnect when above this for `soft_secs` (0 = no limit).
    pub soft_bytes: u64,
    /// Seconds above the soft limit before disconnecting.
    pub soft_secs: u64,
}

impl RedisSample {
    /// Whether this engine has `what` (one of the `not_available` names).
    pub fn has(&self, what: &str) -> bool {
        !self.not_available.contains(&what)
    }

    /// The state shown for a figure the engine does not have.
    pub fn not_available_text(&self) -> String {
        format!("not available with the {} engine", self.engine.as_str())
    }
}

impl BufferLimit {
    /// The limit a buffer is judged against: the soft one (Redis disconnects a subscriber
    /// that stays above it for `soft_secs`), else the hard one.
    pub fn effective(&self) -> Option<u64> {
        [self.soft_bytes, self.hard_bytes].into_iter().find(|&b| b > 0)
    }
}

/// Whether Redis holds keys that are not rtc's (a `SCAN` bounded in calls and keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct KeySample {
    /// Keys looked at.
    pub scanned: u64,
    /// Of those, keys outside the `rtc:` prefix.
    pub foreign: u64,
    /// Up to three foreign key names, for the operator to recognise the tenant.
    pub examples: Vec<String>,
    /// Whether the scan covered the whole keyspace.
    pub complete: bool,
}

impl ClusterSnapshot {
    /// Whether the source itself answered: Redis was readable, or at least one node
    /// returned stats (a `--node`, or a known node polled directly while Redis is down).
    /// `false` means the console sees nothing (exit 69).
    pub fn source_reachable(&self) -> bool {
        self.redis.as_ref().is_some_and(|r| r.error.is_none()) || self.nodes.iter().any(|n| n.stats.is_some())
    }
}
