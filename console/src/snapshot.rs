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
#[derive(Debug, Clone, PartialEq, Serialize)]
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

/// Redis's own figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RedisSample {
    /// Set when Redis could not be read; the other fields are then empty.
    pub error: Option<String>,
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

impl BufferLimit {
    /// The limit a buffer is judged against: the hard limit, else the soft one.
    pub fn effective(&self) -> Option<u64> {
        [self.hard_bytes, self.soft_bytes].into_iter().find(|&b| b > 0)
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
    /// Whether the source itself answered: Redis was readable, or at least one
    /// `--node` returned stats. `false` means the console sees nothing (exit 69).
    pub fn source_reachable(&self) -> bool {
        match &self.redis {
            Some(r) => r.error.is_none(),
            None => self.nodes.iter().any(|n| n.stats.is_some()),
        }
    }
}
