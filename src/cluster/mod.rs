//! Cluster mode: N nodes joined over Redis behave as one server. These are the Redis
//! engines behind [`crate::port`], one Redis or a Redis Cluster: [`Cluster`] implements
//! [`ClusterPort`] and reports what it receives and decides to the server's [`Inbox`];
//! it never sees a server object. Both engines share every module below; they differ
//! in the command connection (`conn`), the key prefix ([`Keys::hash_tagged`]) and the
//! bus (one channel, or sharded pub/sub in `shard`).
//!
//! * [`bus`]: the versioned message every node publishes once per event on the
//!   cluster channel and every other node fans out to its own sockets.
//! * `link`: the Redis connections (a named subscriber, a command connection), the
//!   publisher and the dispatcher of received messages, with reconnects.
//! * `conn`: the command connection of either engine, as one `ConnectionLike`.
//! * `shard`: the Redis Cluster engine's sharded bus (`SPUBLISH`/`SSUBSCRIBE` per
//!   channel, subscribed while the node has local subscribers there).
//! * `registry`: heartbeats of [`rtc_model::NodeStats`] with a TTL, the live-node
//!   view, the reaper of dead nodes and the node-id clash check.
//! * `state`: shared state kept per node in Redis (subscriber counts, presence
//!   members, signed-in users, cache channels) and the ordered task that maintains it.
//! * `query`: the other nodes' share of that state, for the HTTP API's queries.
//!
//! Every key and channel starts with `rtc:{cluster}:` ([`Keys`]), so clusters can share
//! one Redis. Each node writes only its own per-node keys; readers sum or union over
//! the live nodes, so a dead node's entries stop counting the moment its registration
//! expires and a Redis restart is repaired by each node rewriting its own state.

pub mod budget;
pub mod bus;
mod conn;
mod link;
pub mod query;
mod registry;
mod shard;
mod state;
mod timeline;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rtc_model::PubSubStats;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

pub use crate::port::{ClusterError, LiveView, StateOp};
pub use bus::{BusMessage, Envelope};
pub use registry::registry_sig;

use crate::config::ClusterConfig;
use crate::metrics::Metrics;
use crate::port::loopback::Loopback;
use crate::port::{Answer, BoxFuture, Claims, ClusterPort, Inbox, LocalDelivery, Query, Unreachable};
use crate::protocol::ChannelName;
use crate::secret::Secret;
use budget::ByteBudget;
use conn::Con;
use shard::Interest;
use state::Queued;

/// How often a node heartbeats into the registry.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Messages waiting to be published before new ones are dropped (and counted).
const PUBLISH_QUEUE: usize = 65_536;
/// Bytes of messages waiting to be published before new ones are dropped (and counted):
/// the memory a slow or paused Redis can make a publishing node hold.
pub const PUBLISH_QUEUE_BYTES: usize = 32 << 20;
/// Received messages waiting to be fanned out before new ones are dropped (counted);
/// bounds the node's memory when it cannot keep up, as Redis's own output-buffer limit
/// bounds Redis's.
const RECEIVE_QUEUE: usize = 65_536;
/// Bytes of received messages waiting to be fanned out before new ones are dropped.
pub const RECEIVE_QUEUE_BYTES: usize = 64 << 20;
/// State operations waiting for the state task.
const OPS_QUEUE: usize = 262_144;
/// Timeout of every Redis command: a paused Redis must not hang the node.
pub const REDIS_TIMEOUT: Duration = Duration::from_secs(2);

/// Names of every key and channel of one cluster.
#[derive(Debug, Clone)]
pub struct Keys {
    prefix: String,
    name: String,
}

impl Keys {
    /// Keys of cluster `name`.
    pub fn new(name: &str) -> Self {
        Keys { prefix: rtc_model::cluster_prefix(name), name: name.to_string() }
    }

    /// Keys of cluster `name` on a Redis Cluster: the cluster name is the hash tag of
    /// every key (`rtc:{name}:…`), so all of them live in one slot and every script
    /// and pipeline of the one-Redis engine runs unchanged (the bus is what is spread
    /// over the masters, see `shard`).
    pub fn hash_tagged(name: &str) -> Self {
        Keys { prefix: format!("rtc:{{{name}}}:"), name: name.to_string() }
    }

    /// Redis Cluster: the shard channel of an app's channel. Its hash tag is the app
    /// and channel, so the channels spread over the slots (and masters).
    pub fn shard_bus(&self, app: &str, channel: &str) -> String {
        format!("rtc:bus:{}:{{{app}:{channel}}}", self.name)
    }

    /// Redis Cluster: the shard channel every node subscribes to, for the messages
    /// that are not about one channel (terminate, watchlist, `sendToUser`).
    pub fn control_bus(&self) -> String {
        format!("rtc:ctl:{{{}}}", self.name)
    }

    /// The pub/sub channel every node subscribes to.
    pub fn bus(&self) -> String {
        format!("{}bus", self.prefix)
    }
    /// A node's registry entry.
    pub fn node(&self, node: &str) -> String {
        format!("{}node:{node}", self.prefix)
    }
    /// The set of registered node ids.
    pub fn nodes(&self) -> String {
        format!("{}nodes", self.prefix)
    }
    /// A node's subscriber counts per channel of an app.
    pub fn subs(&self, app: &str, node: &str) -> String {
        format!("{}subs:{app}:{node}", self.prefix)
    }
    /// A node's presence members (user id → info) of a channel.
    pub fn presence(&self, app: &str, channel: &str, node: &str) -> String {
        format!("{}pres:{app}:{channel}:{node}", self.prefix)
    }
    /// Index of the presence channels a node has members in (`app\nchannel`).
    pub fn presence_index(&self, node: &str) -> String {
        format!("{}presidx:{node}", self.prefix)
    }
    /// A node's signed-in users of an app.
    pub fn online(&self, app: &str, node: &str) -> String {
        format!("{}online:{app}:{node}", self.prefix)
    }
    /// The last event of a cache channel.
    pub fn cache(&self, app: &str, channel: &str) -> String {
        format!("{}cache:{app}:{channel}", self.prefix)
    }
    /// A once-per-cluster claim (see [`Claims`]); the webhook departures' claims are
    /// named `{app}:{what}`, so their keys read `whpend:{app}:{what}`.
    pub fn claim(&self, name: &str) -> String {
        format!("{}whpend:{name}", self.prefix)
    }
    /// The lock on a node id: the boot id of the process that holds it, refreshed by
    /// its heartbeat (see `registry`).
    pub fn id_lock(&self, node: &str) -> String {
        format!("{}idlock:{node}", self.prefix)
    }
    /// Lock taken by the node that reaps a dead node.
    pub fn reap_lock(&self, node: &str) -> String {
        format!("{}reap:{node}", self.prefix)
    }
    /// When a dead node was reaped (unix seconds): it is reaped once, and listed as
    /// down for a while before it is forgotten.
    pub fn reaped_at(&self, node: &str) -> String {
        format!("{}reapedat:{node}", self.prefix)
    }
    /// Marker left after a node was reaped, so a node that comes back knows its
    /// members were removed and announces them again.
    pub fn reaped(&self, node: &str, boot: &str) -> String {
        format!("{}reaped:{node}:{boot}", self.prefix)
    }
    /// The incident timeline (one Redis: [`rtc_model::timeline_key`], which the console
    /// reads; a Redis Cluster: hash-tagged like every other key).
    pub fn timeline(&self) -> String {
        format!("{}timeline", self.prefix)
    }
    /// A node's exit marker (one Redis: [`rtc_model::exit_marker_key`]).
    pub fn exit_marker(&self, node: &str) -> String {
        format!("{}exit:{node}", self.prefix)
    }
    /// The client name of a node's subscriber connection (`CLIENT LIST`).
    pub fn sub_client_name(&self, node: &str) -> String {
        format!("{}{node}:sub", self.prefix)
    }
    /// The client name of a node's command connection.
    pub fn cmd_client_name(&self, node: &str) -> String {
        format!("{}{node}:cmd", self.prefix)
    }
}

/// Bus counters, read by the admin stats.
#[derive(Default)]
pub struct BusCounters {
    /// Messages published.
    pub published: AtomicU64,
    /// Messages dropped before publishing (queue full or Redis down).
    pub publish_dropped: AtomicU64,
    /// Messages received from other nodes.
    pub received: AtomicU64,
    /// Messages received and fanned out.
    pub processed: AtomicU64,
    /// Messages skipped (undecodable, unknown version, or receive queue full).
    pub skipped: AtomicU64,
    /// Subscriber reconnections.
    pub reconnects: AtomicU64,
    /// Messages dropped because their MAC was missing or wrong (cluster secret set).
    pub unauthenticated: AtomicU64,
    lag: Mutex<LagWindow>,
}

#[derive(Default)]
struct LagWindow {
    start_ms: u64,
    sum: f64,
    n: u64,
    max: f64,
    last_mean: f64,
    last_max: f64,
}

impl BusCounters {
    /// Records one message's publish-to-receipt lag.
    pub fn record_lag(&self, now_ms: u64, lag_ms: f64) {
        let mut w = self.lag.lock();
        if now_ms.saturating_sub(w.start_ms) >= 1000 {
            w.last_mean = if w.n > 0 { w.sum / w.n as f64 } else { 0.0 };
            w.last_max = w.max;
            *w = LagWindow { start_ms: now_ms, last_mean: w.last_mean, last_max: w.last_max, ..Default::default() };
        }
        w.sum += lag_ms;
        w.n += 1;
        w.max = w.max.max(lag_ms);
    }

    /// Mean and max lag of the last complete second (or of the current one).
    pub fn lag(&self) -> (f64, f64) {
        let w = self.lag.lock();
        if w.n > 0 && w.last_mean == 0.0 {
            (w.sum / w.n as f64, w.max)
        } else {
            (w.last_mean, w.last_max)
        }
    }
}

/// A node's membership in a cluster.
pub struct Cluster {
    /// Its configuration.
    pub config: ClusterConfig,
    /// This node's id.
    pub node_id: String,
    /// This process's boot id.
    pub boot_id: String,
    /// Key names.
    pub keys: Keys,
    backend: Backend,
    cmd: RwLock<Option<Con>>,
    publish_tx: mpsc::Sender<Outgoing>,
    /// The bus channels this node wants to receive (Redis Cluster: the shard channels
    /// of the channels it has local subscribers in).
    interest: Interest,
    /// This node's own HTTP API publishes, delivered locally when they come back.
    loopback: Arc<Loopback>,
    ops_tx: mpsc::Sender<Queued>,
    /// The queues' receiving ends until [`ClusterPort::start`] hands them to the tasks.
    receivers: Mutex<Option<Receivers>>,
    /// The node's metrics (bus lag, unauthenticated messages).
    metrics: Arc<Metrics>,
    /// Signs this node's registry entry (see `registry`).
    admin_token: Secret,
    receive_backlog: AtomicU64,
    /// Bytes queued for the publisher.
    publish_bytes: ByteBudget,
    /// Bytes received and not yet fanned out.
    receive_bytes: ByteBudget,
    /// Bus counters.
    pub counters: BusCounters,
    sub_connected: AtomicBool,
    cmd_ok: AtomicBool,
    live: RwLock<LiveView>,
    /// Stops the cluster's tasks (after the sockets are closed, so their last
    /// presence leaves are still written and published).
    stop: CancellationToken,
    tasks: TaskTracker,
}

/// How the node reaches Redis.
enum Backend {
    /// One Redis.
    Single(redis::Client),
    /// A Redis Cluster, by its seed nodes.
    Cluster(Vec<redis::ConnectionInfo>),
}

/// A sealed bus message and the pub/sub channel it goes to (`None`: the one-Redis
/// engine's bus channel).
struct Outgoing {
    channel: Option<String>,
    msg: String,
    /// Sent to once the message's batch was published, dropped unused if the message
    /// was dropped: what [`ClusterPort::publish_confirmed`] waits for.
    sent: Option<tokio::sync::oneshot::Sender<()>>,
}

/// The receiving ends of the cluster's queues, handed to its tasks.
struct Receivers {
    publish_rx: mpsc::Receiver<Outgoing>,
    ops_rx: mpsc::Receiver<Queued>,
}

impl Cluster {
    /// Prepares cluster membership (no connection is made until [`ClusterPort::start`]).
    /// `admin_token` signs the registry entry; `metrics` are the node's.
    ///
    /// # Errors
    /// The Redis URL does not parse.
    pub fn new(
        config: ClusterConfig,
        node_id: &str,
        boot_id: &str,
        admin_token: Secret,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Cluster>, ClusterError> {
        let bad = || ClusterError::BadUrl(config.redis_url_redacted());
        let (backend, keys) = match config.engine {
            crate::config::Engine::RedisCluster => {
                let seeds = shard::seeds(config.redis_url.expose()).ok_or_else(bad)?;
                (Backend::Cluster(seeds), Keys::hash_tagged(&config.name))
            }
            _ => {
                use redis::IntoConnectionInfo;
                let mut info = config.redis_url.expose().into_connection_info().map_err(|_| bad())?;
                info.redis.protocol = redis::ProtocolVersion::RESP3;
                let client = redis::Client::open(info).map_err(|_| bad())?;
                (Backend::Single(client), Keys::new(&config.name))
            }
        };
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (ops_tx, ops_rx) = mpsc::channel(OPS_QUEUE);
        let cluster = Arc::new(Cluster {
            config,
            node_id: node_id.to_string(),
            boot_id: boot_id.to_string(),
            keys,
            backend,
            cmd: RwLock::new(None),
            publish_tx,
            interest: Interest::default(),
            loopback: Arc::default(),
            ops_tx,
            receivers: Mutex::new(Some(Receivers { publish_rx, ops_rx })),
            metrics,
            admin_token,
            receive_backlog: AtomicU64::new(0),
            publish_bytes: ByteBudget::new(PUBLISH_QUEUE_BYTES),
            receive_bytes: ByteBudget::new(RECEIVE_QUEUE_BYTES),
            counters: BusCounters::default(),
            sub_connected: AtomicBool::new(false),
            cmd_ok: AtomicBool::new(false),
            live: RwLock::new(LiveView::default()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        });
        Ok(cluster)
    }

    /// Publishes a message to the other nodes (never blocks; a full queue drops it and
    /// counts the drop).
    pub fn publish(&self, app: &str, msg: BusMessage) {
        self.enqueue(app, msg, None, None);
    }

    /// Queues a message for the publisher; `sent` is dropped once it is published or
    /// dropped.
    fn enqueue(&self, app: &str, msg: BusMessage, looped: Option<u64>, sent: Option<tokio::sync::oneshot::Sender<()>>) {
        let mut env = Envelope::now(&self.node_id, &self.boot_id, app, msg);
        env.looped = looped;
        let channel = self.is_sharded().then(|| shard::channel_of(&self.keys, &env.app, &env.msg));
        let msg = bus::seal(bus::encode(&env), self.config.secret.as_ref());
        let len = msg.len();
        if !self.publish_bytes.try_take(len) {
            self.counters.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.publish_tx.try_send(Outgoing { channel, msg, sent }).is_err() {
            self.publish_bytes.give_back(len);
            self.counters.publish_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Queues a shared-state operation for the state task.
    fn op(&self, op: Queued) {
        if let Err(e) = self.ops_tx.try_send(op) {
            tracing::warn!(error = %e, "Cluster state queue full; an update was dropped.");
        }
    }

    /// Whether the bus is sharded (a Redis Cluster).
    fn is_sharded(&self) -> bool {
        matches!(self.backend, Backend::Cluster(_))
    }

    /// The command connection, when Redis is reachable.
    fn cmd(&self) -> Option<Con> {
        if self.cmd_ok.load(Ordering::Acquire) {
            self.cmd.read().clone()
        } else {
            None
        }
    }

    /// Whether the node is cut off from the cluster.
    pub fn is_degraded(&self) -> bool {
        !(self.sub_connected.load(Ordering::Acquire) && self.cmd_ok.load(Ordering::Acquire))
    }

    /// The latest view of the other live nodes.
    pub fn live(&self) -> LiveView {
        self.live.read().clone()
    }

    /// The key of a once-per-cluster claim.
    fn claim_key(&self, name: &str) -> String {
        self.keys.claim(name)
    }

    /// Bus health for the admin stats.
    pub fn pubsub_stats(&self) -> PubSubStats {
        let c = &self.counters;
        let (lag_ms, lag_max_ms) = c.lag();
        PubSubStats {
            connected: self.sub_connected.load(Ordering::Acquire),
            lag_ms,
            lag_max_ms,
            backlog: self.receive_backlog.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            unauthenticated: c.unauthenticated.load(Ordering::Relaxed),
            client_name: self.keys.sub_client_name(&self.node_id),
        }
    }
}

impl Claims for Cluster {
    fn claim(&self, name: String, ttl: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Some(mut con) = self.cmd() else { return false };
            let set: Result<(), _> = redis::cmd("SET")
                .arg(self.claim_key(&name))
                .arg(1)
                .arg("PX")
                .arg(ttl.as_millis() as u64)
                .query_async(&mut con)
                .await;
            set.is_ok()
        })
    }

    fn take(&self, name: String) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async move {
            let mut con = self.cmd()?;
            let deleted: Result<u64, _> = redis::cmd("DEL").arg(self.claim_key(&name)).query_async(&mut con).await;
            deleted.ok().map(|n| n > 0)
        })
    }
}

impl ClusterPort for Cluster {
    fn start(self: Arc<Self>, inbox: Arc<dyn Inbox>) {
        let Some(rx) = self.receivers.lock().take() else { return };
        if self.config.secret.is_none() {
            tracing::warn!(
                cluster = %self.config.name,
                "The cluster bus is unauthenticated: anyone who can publish to this Redis can forge events. Set --cluster-secret (RTC_CLUSTER_SECRET) on every node."
            );
        }
        link::spawn(self.clone(), inbox.clone(), rx.publish_rx);
        state::spawn(self.clone(), inbox.clone(), rx.ops_rx);
        registry::spawn(self, inbox);
    }

    fn shutdown(&self) -> BoxFuture<'_, ()> {
        Box::pin(async move {
            self.stop.cancel();
            self.tasks.close();
            let _ = tokio::time::timeout(Duration::from_secs(5), self.tasks.wait()).await;
        })
    }

    fn publish(&self, app: &str, msg: BusMessage) {
        Cluster::publish(self, app, msg);
    }

    fn publish_confirmed(&self, app: &str, msg: BusMessage) -> BoxFuture<'static, ()> {
        crate::port::confirmed(|sent| self.enqueue(app, msg, None, Some(sent)))
    }

    fn publish_looped(&self, app: &str, msg: BusMessage, deliver: LocalDelivery) -> BoxFuture<'static, ()> {
        // The copy comes back only on a live subscription, and on a Redis Cluster only
        // if this node has the event's shard channel subscribed.
        let comes_back = self.sub_connected.load(Ordering::Acquire)
            && (!self.is_sharded() || self.interest.is_subscribed(&shard::channel_of(&self.keys, app, &msg)));
        if !comes_back {
            deliver();
            return self.publish_confirmed(app, msg);
        }
        self.loopback.looped(deliver, |seq, sent| self.enqueue(app, msg, Some(seq), Some(sent)))
    }

    fn receiving(&self, app: &str, channel: &ChannelName) -> Option<BoxFuture<'static, bool>> {
        // A lost subscription is being rebuilt: waiting would only delay the socket.
        if !self.is_sharded() || !self.sub_connected.load(Ordering::Acquire) {
            return None;
        }
        let shard = shard::channel_of_channel(&self.keys, app, channel.as_str());
        if shard == self.keys.control_bus() {
            return None;
        }
        let rx = self.interest.when_subscribed(&shard)?;
        Some(Box::pin(async move { matches!(tokio::time::timeout(shard::SUBSCRIBE_WAIT, rx).await, Ok(Ok(()))) }))
    }

    fn submit(&self, op: StateOp) {
        if let (true, StateOp::SubsCount { app, channel, local, .. }) = (self.is_sharded(), &op) {
            self.interest.set(shard::channel_of_channel(&self.keys, app, channel.as_str()), *local > 0);
        }
        self.op(Queued::Op(op));
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Answer, Unreachable>> {
        Box::pin(async move { query::answer(self, query).await.map_err(|e| Unreachable(e.to_string())) })
    }

    fn is_degraded(&self) -> bool {
        Cluster::is_degraded(self)
    }

    fn pubsub_stats(&self) -> PubSubStats {
        Cluster::pubsub_stats(self)
    }

    fn live(&self) -> LiveView {
        Cluster::live(self)
    }

    fn record_event(self: Arc<Self>, kind: &'static str, detail: String) {
        timeline::record_event(self, kind, detail);
    }

    fn describe(&self) -> String {
        let what = if self.is_sharded() { "Redis Cluster" } else { "Redis" };
        format!("cluster '{}', node '{}', {what} {}", self.config.name, self.node_id, self.config.redis_url_redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Arc<Cluster> {
        let config = ClusterConfig {
            name: "t".into(),
            // Never connected: no task is started, so nothing drains the publish queue.
            engine: crate::config::Engine::Redis,
            redis_url: crate::secret::Secret::new("redis://127.0.0.1:1".to_string()),
            advertise_url: String::new(),
            planning_line: rtc_model::DEFAULT_PLANNING_LINE,
            node_ttl: Duration::from_secs(5),
            secret: None,
        };
        let metrics = Arc::new(Metrics::new());
        Cluster::new(config, "n1", "boot", Secret::new("t".to_string()), metrics).expect("valid url")
    }

    #[test]
    fn the_timeline_and_exit_marker_are_the_console_s_keys_on_one_redis_and_tagged_on_a_cluster() {
        let k = Keys::new("c");
        assert_eq!(k.timeline(), rtc_model::timeline_key("c"));
        assert_eq!(k.exit_marker("n1"), rtc_model::exit_marker_key("c", "n1"));
        let k = Keys::hash_tagged("c");
        assert_eq!(k.timeline(), "rtc:{c}:timeline");
        assert_eq!(k.exit_marker("n1"), "rtc:{c}:exit:n1");
    }

    #[test]
    fn a_publish_queue_that_nobody_drains_stops_at_its_byte_budget() {
        // The receivers are kept (an open queue) but never read.
        let c = cluster();
        let data = "x".repeat(10_000);
        let event = || BusMessage::Event {
            channel: "c".into(),
            event: "e".into(),
            data: data.clone(),
            except: None,
            user_id: None,
        };
        // 5,000 events of 10 KB: ~50 MB offered, far under the 65,536-message bound.
        for _ in 0..5_000 {
            c.publish("app", event());
        }
        let queued = c.publish_bytes.used();
        assert!(queued <= PUBLISH_QUEUE_BYTES, "{queued} bytes queued");
        assert!(queued > PUBLISH_QUEUE_BYTES - 20_000, "the budget is used up to its last message: {queued}");
        let dropped = c.counters.publish_dropped.load(Ordering::Relaxed);
        let held = (queued
            / bus::encode(&Envelope {
                v: bus::BUS_VERSION,
                origin: "n1".into(),
                boot: "boot".into(),
                ts_ms: rtc_model::unix_ms(),
                app: "app".into(),
                looped: None,
                msg: event(),
            })
            .len()) as u64;
        assert_eq!(dropped + held, 5_000, "every message is either queued or counted as dropped");
    }
}
