//! The cluster registry as each engine keeps it, behind one [`Registry`]: the console's
//! `top`, `status`, `drain` and `roll` read the nodes through it whatever `--bus` names.
//!
//! * One Redis (`redis://`): the id set `rtc:NAME:nodes` and the entries
//!   `rtc:NAME:node:ID` (see [`crate::model::registry_key`]), exit markers, the timeline
//!   stream and the presence hashes; [`crate::client`] adds Redis's own figures.
//! * A Redis Cluster (`redis-cluster://`): the same keys with the cluster name as hash tag
//!   (`rtc:{NAME}:node:ID`, `rtc:{NAME}:nodes`, `rtc:{NAME}:pres:…`), read through the
//!   cluster client; the nodes write exit markers and the timeline under the untagged
//!   names (`rtc:NAME:exit:ID`, `rtc:NAME:timeline`), each in its own slot.
//! * NATS (`nats://`): JetStream key-value buckets `rtc_{hex NAME}_reg` (entries at
//!   `n.{hex ID}`, expiring after the node TTL) and `rtc_{hex NAME}_state` (`k.{hex ID}`:
//!   every node registered and not yet reaped; `p.{hex app}.{hex channel}`: a presence
//!   channel's members with the nodes holding each). The NATS engine keeps no exit
//!   markers and no timeline.
//!
//! Every entry goes through [`crate::client::verify_entry`] before it is trusted, on
//! every engine. Reads never create anything; `rtc roll` alone writes (its lock and run
//! record, see [`Registry::lock`]).

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use redis::aio::{ConnectionLike, MultiplexedConnection};
use redis::cluster_async::ClusterConnection;
use redis::{Cmd, ConnectionInfo, IntoConnectionInfo, Pipeline, RedisFuture, Value};
use rtc_model::Engine;

use crate::client::{describe_redis, verify_entry};
use crate::model::{self, ExitMarker, NodeStats, TimelineEntry};
use crate::snapshot::{NodeProblem, NodeSample};

/// Longest wait for a connection or one request to the engine.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(2);
/// `SCAN` calls per node when looking for cluster names.
const SCAN_CALLS: usize = 4;
/// `COUNT` hint per `SCAN` call.
const SCAN_COUNT: usize = 1000;
/// Presence channels whose distinct users are counted per poll.
const PRESENCE_CHANNELS: usize = 20;

/// Every registered node id (sorted) with its entry or why there is none.
pub type Entries = Vec<(String, Result<NodeStats, NodeProblem>)>;

/// Why the registry could not be read or reached.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegistryError {
    /// The URL itself is wrong (a usage error, exit 2), rather than the engine unreachable.
    pub bad_url: bool,
    /// What happened, worded for the operator (no password).
    pub text: String,
}

impl std::fmt::Display for RegistryError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text)
    }
}

impl From<redis::RedisError> for RegistryError {
    fn from(e: redis::RedisError) -> Self {
        RegistryError { bad_url: false, text: describe_redis(&e) }
    }
}

fn unreachable(text: impl std::fmt::Display) -> RegistryError {
    RegistryError { bad_url: false, text: text.to_string() }
}

fn bad_url(text: String) -> RegistryError {
    RegistryError { bad_url: true, text }
}

/// Runs one engine request with [`CONNECT_TIMEOUT`].
async fn timed<T, E: std::fmt::Display>(
    what: &str,
    f: impl std::future::Future<Output = Result<T, E>>,
) -> Result<T, RegistryError> {
    match tokio::time::timeout(CONNECT_TIMEOUT, f).await {
        Ok(r) => r.map_err(|e| unreachable(format!("{what}: {e}"))),
        Err(_) => Err(unreachable(format!("{what}: no answer within {}s", CONNECT_TIMEOUT.as_secs()))),
    }
}

/// A command connection to one Redis or to a Redis Cluster, as one `ConnectionLike`
/// (the server's engines do the same), so the Redis reads are written once.
#[derive(Clone)]
pub enum RedisCon {
    /// One Redis.
    One(MultiplexedConnection),
    /// A Redis Cluster: the client follows `MOVED`/`ASK`.
    Cluster(ClusterConnection),
}

impl ConnectionLike for RedisCon {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            RedisCon::One(c) => c.req_packed_command(cmd),
            RedisCon::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        cmd: &'a Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            RedisCon::One(c) => c.req_packed_commands(cmd, offset, count),
            RedisCon::Cluster(c) => c.req_packed_commands(cmd, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            RedisCon::One(c) => c.get_db(),
            RedisCon::Cluster(c) => c.get_db(),
        }
    }
}

/// The seed nodes of a `redis-cluster://[user:pass@]HOST:PORT[,HOST:PORT…]` URL, the
/// credentials applying to every node (as `rtc serve` reads it).
///
/// # Errors
/// The URL does not name `HOST:PORT` seeds.
pub fn cluster_seeds(url: &str) -> Result<Vec<ConnectionInfo>, String> {
    let redacted = rtc_model::bus::redact_url(url);
    let hosts =
        rtc_model::bus::host_ports(url).ok_or_else(|| format!("'{redacted}' must name HOST:PORT[,HOST:PORT…]"))?;
    let creds = rtc_model::bus::credentials(url).map(|c| format!("{c}@")).unwrap_or_default();
    hosts
        .iter()
        .map(|h| format!("redis://{creds}{h}").into_connection_info().map_err(|e| format!("'{redacted}': {e}")))
        .collect()
}

/// A connection to a cluster's registry, on the engine its URL names.
pub enum Registry {
    /// One Redis.
    Redis(MultiplexedConnection),
    /// A Redis Cluster, and its seeds (to look for cluster names on each).
    RedisCluster(ClusterConnection, Vec<ConnectionInfo>),
    /// NATS JetStream key-value.
    Nats(NatsRegistry),
}

impl Registry {
    /// Connects to the engine `url` names (within [`CONNECT_TIMEOUT`]).
    ///
    /// # Errors
    /// A malformed URL (`bad_url`), or the engine does not answer.
    pub async fn connect(url: &str) -> Result<Registry, RegistryError> {
        let engine = rtc_model::bus::check_url(url).map_err(bad_url)?;
        let redacted = rtc_model::bus::redact_url(url);
        match engine {
            Engine::Redis => {
                let client =
                    redis::Client::open(url).map_err(|e| bad_url(format!("'{redacted}' is not a Redis URL: {e}")))?;
                let con =
                    tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection()).await.map_err(
                        |_| unreachable(format!("Redis did not answer within {}s", CONNECT_TIMEOUT.as_secs())),
                    )??;
                Ok(Registry::Redis(con))
            }
            Engine::RedisCluster => {
                let seeds = cluster_seeds(url).map_err(bad_url)?;
                let client = redis::cluster::ClusterClientBuilder::new(seeds.clone())
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(CONNECT_TIMEOUT)
                    .retries(1)
                    .build()
                    .map_err(|e| bad_url(format!("'{redacted}': {e}")))?;
                let con = tokio::time::timeout(CONNECT_TIMEOUT * 2, client.get_async_connection())
                    .await
                    .map_err(|_| unreachable("the Redis Cluster did not answer".to_string()))??;
                Ok(Registry::RedisCluster(con, seeds))
            }
            Engine::Nats => {
                let options = async_nats::ConnectOptions::new()
                    .connection_timeout(CONNECT_TIMEOUT)
                    .request_timeout(Some(CONNECT_TIMEOUT))
                    .max_reconnects(Some(1));
                let client = timed("cannot reach NATS", options.connect(url)).await?;
                Ok(Registry::Nats(NatsRegistry { js: async_nats::jetstream::new(client), buckets: BTreeMap::new() }))
            }
        }
    }

    /// The engine behind this connection.
    pub fn engine(&self) -> Engine {
        match self {
            Registry::Redis(_) => Engine::Redis,
            Registry::RedisCluster(..) => Engine::RedisCluster,
            Registry::Nats(_) => Engine::Nats,
        }
    }

    /// The Redis commands connection (both Redis engines).
    fn redis(&self) -> Option<RedisCon> {
        match self {
            Registry::Redis(c) => Some(RedisCon::One(c.clone())),
            Registry::RedisCluster(c, _) => Some(RedisCon::Cluster(c.clone())),
            Registry::Nats(_) => None,
        }
    }

    /// The name the engine's registry keys carry for `cluster`: itself, or as the hash
    /// tag on a Redis Cluster (`{NAME}`, so `rtc:{NAME}:node:ID`).
    fn key_name(&self, cluster: &str) -> String {
        match self {
            Registry::RedisCluster(..) => format!("{{{cluster}}}"),
            _ => cluster.to_string(),
        }
    }

    /// Reads cluster `cluster`'s registry: every registered node id (sorted) with its
    /// latest stats when the entry is there, decodes and passes the trust check
    /// ([`verify_entry`], against `token` when there is one), or why not
    /// ([`NodeProblem::Expired`], [`NodeProblem::Undecodable`], [`NodeProblem::Untrusted`]).
    /// `rtc top`/`status`, `rtc drain` and `rtc roll` all read the registry through this.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn entries(&mut self, cluster: &str, token: Option<&str>) -> Result<Entries, RegistryError> {
        let raw: Vec<(String, Option<Vec<u8>>)> = match self {
            Registry::Nats(n) => n.entries(cluster).await?,
            _ => {
                let key_name = self.key_name(cluster);
                let mut con = self.redis().ok_or_else(|| unreachable("no Redis"))?;
                let mut ids: Vec<String> =
                    redis::cmd("SMEMBERS").arg(model::registry_set_key(&key_name)).query_async(&mut con).await?;
                ids.sort();
                ids.dedup();
                if ids.is_empty() {
                    return Ok(Vec::new());
                }
                let keys: Vec<String> = ids.iter().map(|id| model::registry_key(&key_name, id)).collect();
                // One slot on a Redis Cluster too: the keys share the cluster's hash tag.
                let values: Vec<Option<Vec<u8>>> = redis::cmd("MGET").arg(keys).query_async(&mut con).await?;
                ids.into_iter().zip(values).collect()
            }
        };
        Ok(raw
            .into_iter()
            .map(|(id, value)| {
                let entry = decode_entry(cluster, &id, value.as_deref(), token);
                (id, entry)
            })
            .collect())
    }

    /// Cluster names that have nodes registered on this engine (bounded look-up): what
    /// to suggest when a cluster name matches no node.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn find_clusters(&mut self) -> Result<Vec<String>, RegistryError> {
        match self {
            Registry::Redis(con) => Ok(scan_clusters(con, "rtc:*:nodes", "rtc:", ":nodes").await?),
            Registry::RedisCluster(_, seeds) => {
                // Each master holds the names whose hash tag is in its slots: ask every seed.
                let mut found = BTreeSet::new();
                for seed in seeds.clone() {
                    let Ok(client) = redis::Client::open(seed) else { continue };
                    let Ok(Ok(mut con)) =
                        tokio::time::timeout(CONNECT_TIMEOUT, client.get_multiplexed_async_connection()).await
                    else {
                        continue;
                    };
                    if let Ok(names) = scan_clusters(&mut con, "rtc:{*}:nodes", "rtc:{", "}:nodes").await {
                        found.extend(names);
                    }
                }
                Ok(found.into_iter().collect())
            }
            Registry::Nats(n) => n.find_clusters().await,
        }
    }

    /// The exit markers ([`ExitMarker`]) of `ids` (nodes whose entry expired). The NATS
    /// engine writes none: always empty there.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn exit_markers(
        &mut self,
        cluster: &str,
        ids: &[&String],
    ) -> Result<BTreeMap<String, ExitMarker>, RegistryError> {
        let Some(mut con) = self.redis() else { return Ok(BTreeMap::new()) };
        let name = self.key_name(cluster);
        let mut out = BTreeMap::new();
        for id in ids {
            let v: Option<String> =
                redis::cmd("GET").arg(model::exit_marker_key(&name, id)).query_async(&mut con).await?;
            if let Some(m) = v.and_then(|v| serde_json::from_str(&v).ok()) {
                out.insert((*id).clone(), m);
            }
        }
        Ok(out)
    }

    /// The latest `count` entries of the cluster's incident timeline, newest first;
    /// `None` on an engine that keeps no timeline (NATS).
    ///
    /// # Errors
    /// When the engine does not answer (a missing stream is an empty timeline).
    pub async fn timeline(&mut self, cluster: &str, count: usize) -> Result<Option<Vec<TimelineEntry>>, RegistryError> {
        let Some(mut con) = self.redis() else { return Ok(None) };
        let raw: Vec<(String, Vec<String>)> = redis::cmd("XREVRANGE")
            .arg(model::timeline_key(&self.key_name(cluster)))
            .arg("+")
            .arg("-")
            .arg("COUNT")
            .arg(count)
            .query_async(&mut con)
            .await?;
        Ok(Some(raw.into_iter().map(|(id, fields)| crate::client::timeline_entry(&id, &fields)).collect()))
    }

    /// Distinct users of the presence channels among the nodes' top channels (at most
    /// 20 channels), counted over every listed node's members, as the HTTP API's
    /// `user_count`: ((app, channel), users).
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn presence_users(
        &mut self,
        cluster: &str,
        nodes: &[NodeSample],
    ) -> Result<Vec<((String, String), u64)>, RegistryError> {
        let mut channels: Vec<(String, String)> = nodes
            .iter()
            .filter_map(|n| n.stats.as_ref())
            .flat_map(|s| {
                s.top_channels.iter().filter(|c| c.kind == "presence").map(|c| (c.app.clone(), c.name.clone()))
            })
            .collect();
        channels.sort();
        channels.dedup();
        channels.truncate(PRESENCE_CHANNELS);
        let ids: Vec<&str> = nodes.iter().map(|n| n.id.as_str()).collect();
        if let Registry::Nats(n) = self {
            return n.presence_users(cluster, channels, &ids).await;
        }
        let key_name = self.key_name(cluster);
        let Some(mut con) = self.redis() else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(channels.len());
        for (app, channel) in channels {
            let mut pipe = redis::pipe();
            for id in &ids {
                pipe.cmd("HKEYS").arg(model::presence_key(&key_name, &app, &channel, id));
            }
            let lists: Vec<Vec<String>> = pipe.query_async(&mut con).await?;
            let users: BTreeSet<String> = lists.into_iter().flatten().collect();
            out.push(((app, channel), users.len() as u64));
        }
        Ok(out)
    }
}

impl Registry {
    /// Where `rtc roll` keeps its lock and its run record for `cluster`: keys
    /// `rtc:NAME:roll:*` on one Redis (`rtc:{NAME}:roll:*` on a Redis Cluster), the
    /// bucket `rtc_{hex NAME}_roll` on NATS (created here when missing: the one thing
    /// the console writes).
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn roll_store(&mut self, cluster: &str) -> Result<RollStore, RegistryError> {
        let prefix = format!("{}roll:", model::cluster_prefix(&self.key_name(cluster)));
        match self {
            Registry::Nats(n) => {
                let name = nats_bucket(cluster, "roll");
                let config = async_nats::jetstream::stream::Config {
                    name: format!("KV_{name}"),
                    subjects: vec![format!("$KV.{name}.>")],
                    max_messages_per_subject: 1,
                    max_age: ROLL_RECORD_MAX_AGE,
                    storage: async_nats::jetstream::stream::StorageType::Memory,
                    allow_rollup: true,
                    deny_delete: true,
                    allow_direct: true,
                    num_replicas: 1,
                    discard: async_nats::jetstream::stream::DiscardPolicy::New,
                    ..Default::default()
                };
                // The stream is made with the key-value conventions, as the nodes make
                // theirs (`create_key_value` does not parse nats-server 2.9's answer).
                let _ = timed("NATS JetStream", n.js.get_or_create_stream(config)).await;
                let kv = timed("NATS key-value", n.js.get_key_value(name)).await?;
                Ok(RollStore::Nats(Box::new(kv)))
            }
            _ => Ok(RollStore::Redis(self.redis().ok_or_else(|| unreachable("no Redis"))?, prefix)),
        }
    }
}

/// How long an interrupted roll's record is kept for `--resume`.
const ROLL_RECORD_MAX_AGE: Duration = Duration::from_secs(86_400);

/// `rtc roll`'s lock (one roll at a time per cluster) and run record (for `--resume`),
/// on the cluster's engine. Cloned into the task that keeps the lock alive.
#[derive(Clone)]
pub enum RollStore {
    /// Redis keys under the prefix (`rtc:NAME:roll:` or `rtc:{NAME}:roll:`).
    Redis(RedisCon, String),
    /// The roll bucket on NATS (keys `lock` and `run`).
    Nats(Box<async_nats::jetstream::kv::Store>),
}

/// The roll lock's value on NATS: who holds it until when (an expired lock is free).
#[derive(serde::Serialize, serde::Deserialize)]
struct NatsLock {
    owner: String,
    until_ms: u64,
}

impl RollStore {
    /// Takes the lock for `owner` for `ttl`. `Ok(None)`: taken; `Ok(Some(holder))`:
    /// another roll holds it.
    ///
    /// # Errors
    /// When the engine does not answer.
    pub async fn acquire(&self, owner: &str, ttl: Duration) -> Result<Option<String>, RegistryError> {
        match self {
            RollStore::Redis(con, prefix) => {
                let mut con = con.clone();
                let lock = format!("{prefix}lock");
                let got: Option<String> = redis::cmd("SET")
                    .arg(&lock)
                    .arg(owner)
                    .arg("NX")
                    .arg("PX")
                    .arg(ttl.as_millis() as u64)
                    .query_async(&mut con)
                    .await?;
                if got.is_some() {
                    return Ok(None);
                }
                let holder: Option<String> = redis::cmd("GET").arg(&lock).query_async(&mut con).await?;
                Ok(Some(holder.unwrap_or_else(|| "someone".into())))
            }
            RollStore::Nats(kv) => {
                let value = serde_json::to_vec(&NatsLock {
                    owner: owner.to_string(),
                    until_ms: model::unix_ms() + ttl.as_millis() as u64,
                })
                .unwrap_or_default();
                let current = timed("NATS key-value", kv.entry("lock")).await?;
                let live = current.as_ref().filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
                let written = match live {
                    Some(e) => {
                        let held: Option<NatsLock> = serde_json::from_slice(&e.value).ok();
                        match held {
                            Some(h) if h.until_ms > model::unix_ms() => return Ok(Some(h.owner)),
                            // Expired: take it over unless another roll does first.
                            _ => tokio::time::timeout(CONNECT_TIMEOUT, kv.update("lock", value.into(), e.revision))
                                .await
                                .map(|r| r.is_ok()),
                        }
                    }
                    None => {
                        tokio::time::timeout(CONNECT_TIMEOUT, kv.create("lock", value.into())).await.map(|r| r.is_ok())
                    }
                };
                match written {
                    Ok(true) => Ok(None),
                    Ok(false) => Ok(Some("another roll, just now".to_string())),
                    Err(_) => Err(unreachable("NATS key-value: no answer")),
                }
            }
        }
    }

    /// Extends the lock for `owner` by `ttl` from now (best effort).
    pub async fn refresh(&self, owner: &str, ttl: Duration) {
        match self {
            RollStore::Redis(con, prefix) => {
                let mut con = con.clone();
                let _: Result<(), _> = redis::cmd("PEXPIRE")
                    .arg(format!("{prefix}lock"))
                    .arg(ttl.as_millis() as u64)
                    .query_async(&mut con)
                    .await;
            }
            RollStore::Nats(kv) => {
                let lock = NatsLock { owner: owner.to_string(), until_ms: model::unix_ms() + ttl.as_millis() as u64 };
                let value = serde_json::to_vec(&lock).unwrap_or_default();
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, kv.put("lock", value.into())).await;
            }
        }
    }

    /// Releases the lock (best effort).
    pub async fn release(&self) {
        self.delete("lock").await;
    }

    /// The interrupted roll's record (JSON), if any.
    pub async fn run_record(&self) -> Option<String> {
        match self {
            RollStore::Redis(con, prefix) => {
                let mut con = con.clone();
                redis::cmd("GET").arg(format!("{prefix}run")).query_async(&mut con).await.unwrap_or(None)
            }
            RollStore::Nats(kv) => {
                let e = tokio::time::timeout(CONNECT_TIMEOUT, kv.entry("run")).await.ok()?.ok()??;
                (e.operation == async_nats::jetstream::kv::Operation::Put)
                    .then(|| String::from_utf8_lossy(&e.value).into_owned())
            }
        }
    }

    /// Records the roll's progress for `--resume` (kept a day; best effort).
    pub async fn set_run_record(&self, record: &str) {
        match self {
            RollStore::Redis(con, prefix) => {
                let mut con = con.clone();
                let _: Result<(), _> = redis::cmd("SET")
                    .arg(format!("{prefix}run"))
                    .arg(record)
                    .arg("EX")
                    .arg(ROLL_RECORD_MAX_AGE.as_secs())
                    .query_async(&mut con)
                    .await;
            }
            RollStore::Nats(kv) => {
                let _ =
                    tokio::time::timeout(CONNECT_TIMEOUT, kv.put("run", record.to_string().into_bytes().into())).await;
            }
        }
    }

    /// Forgets the run record (the roll finished; best effort).
    pub async fn clear_run_record(&self) {
        self.delete("run").await;
    }

    async fn delete(&self, what: &str) {
        match self {
            RollStore::Redis(con, prefix) => {
                let mut con = con.clone();
                let _: Result<(), _> = redis::cmd("DEL").arg(format!("{prefix}{what}")).query_async(&mut con).await;
            }
            RollStore::Nats(kv) => {
                let _ = tokio::time::timeout(CONNECT_TIMEOUT, kv.delete(what)).await;
            }
        }
    }
}

/// Decodes and checks one registry value (`None`: the entry expired).
fn decode_entry(cluster: &str, id: &str, value: Option<&[u8]>, token: Option<&str>) -> Result<NodeStats, NodeProblem> {
    match value {
        None => Err(NodeProblem::Expired),
        Some(json) => match serde_json::from_slice::<NodeStats>(json) {
            Ok(s) => verify_entry(cluster, id, &s, token).map(|()| s).map_err(NodeProblem::Untrusted),
            Err(e) => Err(NodeProblem::Undecodable(format!("bad registry JSON: {e}"))),
        },
    }
}

/// Cluster names from a bounded `SCAN MATCH pattern` of one Redis: the keys between
/// `prefix` and `suffix`.
async fn scan_clusters(
    con: &mut MultiplexedConnection,
    pattern: &str,
    prefix: &str,
    suffix: &str,
) -> redis::RedisResult<Vec<String>> {
    let mut found = BTreeSet::new();
    let mut cursor: u64 = 0;
    for _ in 0..SCAN_CALLS {
        let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
            .arg(cursor)
            .arg("MATCH")
            .arg(pattern)
            .arg("COUNT")
            .arg(SCAN_COUNT)
            .query_async(con)
            .await?;
        found.extend(keys.iter().filter_map(|k| k.strip_prefix(prefix)?.strip_suffix(suffix)).map(str::to_string));
        cursor = next;
        if cursor == 0 {
            break;
        }
    }
    Ok(found.into_iter().collect())
}

/// Lower-case hex of a name, as the NATS engine writes every name in keys and bucket
/// names (any id or cluster name is then a valid token).
pub fn nats_token(name: &str) -> String {
    hex::encode(name.as_bytes())
}

/// The name a [`nats_token`] encodes.
pub fn nats_untoken(token: &str) -> Option<String> {
    hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}

/// The name of one of a cluster's NATS buckets: `rtc_{hex NAME}_{what}`.
pub fn nats_bucket(cluster: &str, what: &str) -> String {
    format!("rtc_{}_{what}", nats_token(cluster))
}

/// The NATS engine's registry, read from its key-value buckets (opened, never created).
pub struct NatsRegistry {
    js: async_nats::jetstream::Context,
    /// Buckets found so far, by name.
    buckets: BTreeMap<String, async_nats::jetstream::kv::Store>,
}

/// One presence member as the NATS engine stores it: the nodes holding the user.
#[derive(serde::Deserialize)]
struct NatsMember {
    #[serde(default)]
    n: BTreeSet<String>,
}

impl NatsRegistry {
    /// The JetStream context (the roll lock's bucket is created through it).
    pub fn jetstream(&self) -> &async_nats::jetstream::Context {
        &self.js
    }

    /// Opens bucket `name`; `None` when it does not exist (no node of that cluster has
    /// run on this NATS, or they all went long ago).
    async fn bucket(&mut self, name: &str) -> Result<Option<async_nats::jetstream::kv::Store>, RegistryError> {
        if let Some(b) = self.buckets.get(name) {
            return Ok(Some(b.clone()));
        }
        match tokio::time::timeout(CONNECT_TIMEOUT, self.js.get_stream(format!("KV_{name}"))).await {
            Err(_) => return Err(unreachable("NATS: no answer")),
            Ok(Err(e)) => {
                if let async_nats::jetstream::context::GetStreamErrorKind::JetStream(j) = e.kind() {
                    if j.error_code() == async_nats::jetstream::ErrorCode::STREAM_NOT_FOUND {
                        return Ok(None);
                    }
                }
                return Err(unreachable(format!("NATS JetStream: {e} (is JetStream enabled: nats-server -js?)")));
            }
            Ok(Ok(_)) => {}
        }
        let store = timed("NATS key-value", self.js.get_key_value(name.to_string())).await?;
        self.buckets.insert(name.to_string(), store.clone());
        Ok(Some(store))
    }

    /// The registry's raw entries: live ones (`n.*` of the `reg` bucket) and the known
    /// nodes without one (`k.*` of the `state` bucket: stopped, not yet reaped).
    async fn entries(&mut self, cluster: &str) -> Result<Vec<(String, Option<Vec<u8>>)>, RegistryError> {
        let mut out: BTreeMap<String, Option<Vec<u8>>> = BTreeMap::new();
        if let Some(reg) = self.bucket(&nats_bucket(cluster, "reg")).await? {
            for key in keys(&reg, "n").await? {
                let Some(entry) = timed("NATS key-value", reg.entry(key.clone())).await? else { continue };
                if entry.operation != async_nats::jetstream::kv::Operation::Put {
                    continue;
                }
                let id = key_id(&key, "n.");
                out.insert(id, Some(entry.value.to_vec()));
            }
        }
        if let Some(state) = self.bucket(&nats_bucket(cluster, "state")).await? {
            for key in keys(&state, "k").await? {
                let id = key_id(&key, "k.");
                if out.contains_key(&id) {
                    continue;
                }
                let Some(entry) = timed("NATS key-value", state.entry(key.clone())).await? else { continue };
                let booted = serde_json::from_slice::<String>(&entry.value).is_ok_and(|b| !b.is_empty());
                if entry.operation == async_nats::jetstream::kv::Operation::Put && booted {
                    out.insert(id, None);
                }
            }
        }
        Ok(out.into_iter().collect())
    }

    /// Cluster names with a registry bucket on this NATS (at most 1,000 streams looked at).
    async fn find_clusters(&mut self) -> Result<Vec<String>, RegistryError> {
        use futures_util::StreamExt;
        let mut names = self.js.stream_names();
        let mut found = BTreeSet::new();
        for _ in 0..1000 {
            match tokio::time::timeout(CONNECT_TIMEOUT, names.next()).await {
                Ok(Some(Ok(name))) => {
                    if let Some(c) =
                        name.strip_prefix("KV_rtc_").and_then(|r| r.strip_suffix("_reg")).and_then(nats_untoken)
                    {
                        found.insert(c);
                    }
                }
                Ok(Some(Err(e))) => return Err(unreachable(format!("NATS JetStream: {e}"))),
                Ok(None) => break,
                Err(_) => return Err(unreachable("NATS: no answer listing streams")),
            }
        }
        Ok(found.into_iter().collect())
    }

    /// Distinct users per presence channel among `ids`, from the channel's member key.
    async fn presence_users(
        &mut self,
        cluster: &str,
        channels: Vec<(String, String)>,
        ids: &[&str],
    ) -> Result<Vec<((String, String), u64)>, RegistryError> {
        let Some(state) = self.bucket(&nats_bucket(cluster, "state")).await? else { return Ok(Vec::new()) };
        let mut out = Vec::with_capacity(channels.len());
        for (app, channel) in channels {
            let key = format!("p.{}.{}", nats_token(&app), nats_token(&channel));
            let entry = timed("NATS key-value", state.entry(key)).await?;
            let members: BTreeMap<String, NatsMember> = entry
                .filter(|e| e.operation == async_nats::jetstream::kv::Operation::Put)
                .and_then(|e| serde_json::from_slice(&e.value).ok())
                .unwrap_or_default();
            let users = members.values().filter(|m| m.n.iter().any(|n| ids.contains(&n.as_str()))).count();
            out.push(((app, channel), users as u64));
        }
        Ok(out)
    }
}

/// The node id of a NATS key (`n.{hex}`); a key that does not decode is kept as written
/// (it then fails the id check and is shown escaped).
fn key_id(key: &str, prefix: &str) -> String {
    let token = key.strip_prefix(prefix).unwrap_or(key);
    nats_untoken(token).unwrap_or_else(|| key.to_string())
}

/// Keys of `store` under `prefix` (`n` lists `n.*`), deleted ones included, as the
/// engine lists them (the stream's subjects).
async fn keys(store: &async_nats::jetstream::kv::Store, prefix: &str) -> Result<Vec<String>, RegistryError> {
    use futures_util::StreamExt;
    let filter = format!("{}{prefix}.>", store.prefix);
    let mut subjects = timed("NATS key-value", store.stream.info_with_subjects(filter)).await?;
    let mut out = Vec::new();
    loop {
        match tokio::time::timeout(CONNECT_TIMEOUT, subjects.next()).await {
            Ok(Some(Ok((subject, _)))) => {
                if let Some(key) = subject.strip_prefix(store.prefix.as_str()) {
                    out.push(key.to_string());
                }
            }
            Ok(Some(Err(e))) => return Err(unreachable(format!("NATS key-value: {e}"))),
            Ok(None) => return Ok(out),
            Err(_) => return Err(unreachable("NATS key-value: no answer listing keys")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_tokens_and_bucket_names_match_what_the_engines_write() {
        let seeds = cluster_seeds("redis-cluster://u:pw@127.0.0.1:7000,127.0.0.1:7001").unwrap();
        assert_eq!(seeds.len(), 2);
        assert!(cluster_seeds("redis-cluster://127.0.0.1").is_err());
        assert_eq!(nats_bucket("prod", "reg"), "rtc_70726f64_reg");
        assert_eq!(nats_untoken(&nats_token("node-1")).as_deref(), Some("node-1"));
        assert_eq!(key_id("n.6e6f64652d31", "n."), "node-1");
        assert_eq!(key_id("n.zz", "n."), "n.zz");
        let entry = decode_entry("prod", "node-1", None, None);
        assert_eq!(entry, Err(NodeProblem::Expired));
        assert!(matches!(decode_entry("prod", "node-1", Some(b"{"), None), Err(NodeProblem::Undecodable(_))));
    }
}
