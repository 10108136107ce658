//! The NATS engine (`--bus nats://HOST:PORT`): the nodes of a cluster joined over one
//! NATS server (or NATS cluster) with JetStream. [`Nats`] implements [`ClusterPort`]
//! as the Redis engine in `cluster` does, and reports to the server's [`Inbox`].
//!
//! * Bus (`link`): core NATS subjects. An event of channel `C` of app `A` goes out on
//!   `rtc.{cluster}.ev.{A}.{C}`, every other message of the app on
//!   `rtc.{cluster}.ctl.{A}` (each name segment hex-encoded: channel names hold
//!   characters subjects do not allow). A node subscribes to `rtc.{cluster}.>`, so
//!   one broadcast costs one publish and N−1 deliveries, as with one Redis. The payload is
//!   `cluster::bus`'s envelope, sealed with the cluster secret's MAC.
//! * Shared state (`state`, `kv`): JetStream key-value buckets, created if missing, in
//!   memory (rebuilt by the nodes after a NATS restart, as after a Redis restart). One
//!   key per presence channel holds its members with the set of nodes holding each, one
//!   key per channel its subscriber count per node, one key per signed-in user the nodes
//!   holding them; every change is a compare-and-set on the key's revision, retried on
//!   a conflict, so exactly one node sees a user's first socket anywhere and exactly one
//!   their last, and each cluster-wide occupancy edge is seen once.
//! * Registry (`registry`): each node's [`rtc_model::NodeStats`] in a bucket whose
//!   `max_age` is the node TTL (an entry not rewritten in time expires), the node-id
//!   lock in the same bucket, and the reaper: a live node that wins the create of the
//!   dead node's reap marker removes its members (`member_removed` once) and counts.

mod kv;
mod link;
mod registry;
mod state;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::{Mutex, RwLock};
use rtc_model::PubSubStats;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::cluster::budget::ByteBudget;
use crate::cluster::bus::{self, BusMessage, Envelope};
use crate::cluster::BusCounters;
use crate::config::ClusterConfig;
use crate::metrics::Metrics;
use crate::port::loopback::Loopback;
use crate::port::{
    Answer, BoxFuture, Claims, ClusterError, ClusterPort, Inbox, LiveView, LocalDelivery, Query, StateOp, Unreachable,
};
use crate::secret::Secret;
use kv::Buckets;

/// How often a node heartbeats into the registry.
pub const HEARTBEAT: Duration = Duration::from_secs(1);
/// Messages waiting to be published before new ones are dropped (and counted).
const PUBLISH_QUEUE: usize = 65_536;
/// Bytes of messages waiting to be published before new ones are dropped.
const PUBLISH_QUEUE_BYTES: usize = 32 << 20;
/// State operations waiting for the state task.
const OPS_QUEUE: usize = 262_144;
/// Timeout of every NATS request: a stalled server must not hang the node.
pub const NATS_TIMEOUT: Duration = Duration::from_secs(2);

/// Lower-case hex of a name, so any app id, channel, user or node id is one valid
/// subject token and key segment (`[0-9a-f]+`).
pub(crate) fn token(name: &str) -> String {
    hex::encode(name.as_bytes())
}

/// The name a [`token`] encodes.
pub(crate) fn untoken(token: &str) -> Option<String> {
    hex::decode(token).ok().and_then(|b| String::from_utf8(b).ok())
}

/// Subjects of one cluster.
#[derive(Debug, Clone)]
pub struct Subjects {
    prefix: String,
}

impl Subjects {
    /// Subjects of cluster `name`.
    pub fn new(name: &str) -> Self {
        Subjects { prefix: format!("rtc.{}", token(name)) }
    }
    /// What a node subscribes to: every subject of the cluster.
    pub fn all(&self) -> String {
        format!("{}.>", self.prefix)
    }
    /// The subject of a message of `app`.
    pub fn of(&self, app: &str, msg: &BusMessage) -> String {
        match msg {
            BusMessage::Event { channel, .. } => format!("{}.ev.{}.{}", self.prefix, token(app), token(channel)),
            _ => format!("{}.ctl.{}", self.prefix, token(app)),
        }
    }
}

/// A node's membership in a cluster joined over NATS.
pub struct Nats {
    /// Its configuration.
    pub config: ClusterConfig,
    /// This node's id.
    pub node_id: String,
    /// This process's boot id.
    pub boot_id: String,
    subjects: Subjects,
    client: RwLock<Option<async_nats::Client>>,
    buckets: RwLock<Option<Buckets>>,
    publish_tx: mpsc::Sender<link::Outgoing>,
    ops_tx: mpsc::Sender<state::Queued>,
    receivers: Mutex<Option<Receivers>>,
    metrics: Arc<Metrics>,
    admin_token: Secret,
    publish_bytes: ByteBudget,
    /// This node's own HTTP API publishes, delivered locally when they come back.
    loopback: Arc<Loopback>,
    receive_backlog: AtomicU64,
    /// Bus counters.
    pub counters: BusCounters,
    /// The buckets answered the last heartbeat.
    kv_ok: AtomicBool,
    live: RwLock<LiveView>,
    stop: CancellationToken,
    tasks: TaskTracker,
}

struct Receivers {
    publish_rx: mpsc::Receiver<link::Outgoing>,
    ops_rx: mpsc::Receiver<state::Queued>,
}

impl Nats {
    /// Prepares cluster membership (no connection is made until [`ClusterPort::start`]).
    ///
    /// # Errors
    /// The URL is not `nats://HOST:PORT`.
    pub fn new(
        config: ClusterConfig,
        node_id: &str,
        boot_id: &str,
        admin_token: Secret,
        metrics: Arc<Metrics>,
    ) -> Result<Arc<Nats>, ClusterError> {
        use async_nats::ToServerAddrs;
        if config.redis_url.expose().to_server_addrs().is_err() {
            return Err(ClusterError::BadUrl(config.redis_url_redacted()));
        }
        let (publish_tx, publish_rx) = mpsc::channel(PUBLISH_QUEUE);
        let (ops_tx, ops_rx) = mpsc::channel(OPS_QUEUE);
        Ok(Arc::new(Nats {
            subjects: Subjects::new(&config.name),
            config,
            node_id: node_id.to_string(),
            boot_id: boot_id.to_string(),
            client: RwLock::new(None),
            buckets: RwLock::new(None),
            publish_tx,
            ops_tx,
            receivers: Mutex::new(Some(Receivers { publish_rx, ops_rx })),
            metrics,
            admin_token,
            publish_bytes: ByteBudget::new(PUBLISH_QUEUE_BYTES),
            loopback: Arc::default(),
            receive_backlog: AtomicU64::new(0),
            counters: BusCounters::default(),
            kv_ok: AtomicBool::new(false),
            live: RwLock::new(LiveView::default()),
            stop: CancellationToken::new(),
            tasks: TaskTracker::new(),
        }))
    }

    /// Whether the connection to NATS is up.
    fn connected(&self) -> bool {
        self.client.read().as_ref().is_some_and(|c| c.connection_state() == async_nats::connection::State::Connected)
    }

    /// The buckets, when NATS is reachable.
    fn kv(&self) -> Option<Buckets> {
        if self.connected() {
            self.buckets.read().clone()
        } else {
            None
        }
    }

    /// Ids of this node and the other live ones.
    fn live_ids(&self) -> Vec<String> {
        let mut ids = self.live.read().other_ids();
        ids.push(self.node_id.clone());
        ids
    }

    /// Queues a message for the publisher; `sent` is dropped once it has been handed to
    /// the server (or dropped, counted).
    fn enqueue(&self, app: &str, msg: BusMessage, looped: Option<u64>, sent: Option<tokio::sync::oneshot::Sender<()>>) {
        let subject = self.subjects.of(app, &msg);
        let mut env = Envelope::now(&self.node_id, &self.boot_id, app, msg);
        env.looped = looped;
        let payload = bus::seal(bus::encode(&env), self.config.secret.as_ref());
        let len = payload.len();
        if !self.publish_bytes.try_take(len) {
            self.counters.publish_dropped.fetch_add(1, Ordering::Relaxed);
            return;
        }
        if self.publish_tx.try_send(link::Outgoing { subject, payload, sent }).is_err() {
            self.publish_bytes.give_back(len);
            self.counters.publish_dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn op(&self, op: state::Queued) {
        if let Err(e) = self.ops_tx.try_send(op) {
            tracing::warn!(error = %e, "Cluster state queue full; an update was dropped.");
        }
    }
}

impl Claims for Nats {
    fn claim(&self, name: String, ttl: Duration) -> BoxFuture<'_, bool> {
        Box::pin(async move {
            let Some(kv) = self.kv() else { return false };
            kv.claim(&name, ttl).await.is_ok()
        })
    }

    fn take(&self, name: String) -> BoxFuture<'_, Option<bool>> {
        Box::pin(async move { self.kv()?.take(&name).await.ok() })
    }
}

impl ClusterPort for Nats {
    fn start(self: Arc<Self>, inbox: Arc<dyn Inbox>) {
        let Some(rx) = self.receivers.lock().take() else { return };
        if self.config.secret.is_none() {
            tracing::warn!(
                cluster = %self.config.name,
                "The cluster bus is unauthenticated: anyone who can publish to this NATS can forge events. Set --cluster-secret (RTC_CLUSTER_SECRET) on every node."
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
        self.enqueue(app, msg, None, None);
    }

    fn publish_confirmed(&self, app: &str, msg: BusMessage) -> BoxFuture<'static, ()> {
        crate::port::confirmed(|sent| self.enqueue(app, msg, None, Some(sent)))
    }

    fn publish_looped(&self, app: &str, msg: BusMessage, deliver: LocalDelivery) -> BoxFuture<'static, ()> {
        if !self.connected() {
            deliver();
            return self.publish_confirmed(app, msg);
        }
        self.loopback.looped(deliver, |seq, sent| self.enqueue(app, msg, Some(seq), Some(sent)))
    }

    fn submit(&self, op: StateOp) {
        self.op(state::Queued::Op(op));
    }

    fn query(&self, query: Query) -> BoxFuture<'_, Result<Answer, Unreachable>> {
        Box::pin(async move {
            let kv = self.kv().ok_or_else(|| Unreachable("NATS unreachable".into()))?;
            let others = self.live.read().other_ids();
            state::answer(&kv, &others, query).await.map_err(|e| Unreachable(e.to_string()))
        })
    }

    fn is_degraded(&self) -> bool {
        !(self.connected() && self.kv_ok.load(Ordering::Acquire))
    }

    fn pubsub_stats(&self) -> PubSubStats {
        let c = &self.counters;
        let (lag_ms, lag_max_ms) = c.lag();
        PubSubStats {
            connected: self.connected(),
            lag_ms,
            lag_max_ms,
            backlog: self.receive_backlog.load(Ordering::Relaxed),
            published: c.published.load(Ordering::Relaxed),
            received: c.received.load(Ordering::Relaxed),
            skipped: c.skipped.load(Ordering::Relaxed),
            publish_dropped: c.publish_dropped.load(Ordering::Relaxed),
            reconnects: c.reconnects.load(Ordering::Relaxed),
            unauthenticated: c.unauthenticated.load(Ordering::Relaxed),
            client_name: self.client_name(),
        }
    }

    fn live(&self) -> LiveView {
        self.live.read().clone()
    }

    fn record_event(self: Arc<Self>, kind: &'static str, detail: String) {
        // The incident timeline lives in Redis only; NATS nodes log the entry.
        tracing::info!(node = %self.node_id, kind, detail = %detail, "Cluster event.");
    }

    fn describe(&self) -> String {
        format!("cluster '{}', node '{}', NATS {}", self.config.name, self.node_id, self.config.redis_url_redacted())
    }
}

impl Nats {
    /// The NATS connection name of this node.
    fn client_name(&self) -> String {
        format!("{}{}", rtc_model::cluster_prefix(&self.config.name), self.node_id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subjects_and_keys_hold_only_valid_tokens_whatever_the_names() {
        let s = Subjects::new("prod.eu");
        let ev = BusMessage::Event {
            channel: "private-a.b*c>d e".into(),
            event: "e".into(),
            data: "{}".into(),
            except: None,
            user_id: None,
        };
        let subject = s.of("app 1", &ev);
        assert!(subject.starts_with("rtc."));
        assert!(subject.split('.').all(|t| !t.is_empty() && t.chars().all(|c| c.is_ascii_alphanumeric())), "{subject}");
        assert_eq!(subject.split('.').count(), 5);
        let ctl = s.of("app 1", &BusMessage::Terminate { user_id: "u".into() });
        assert_eq!(ctl.split('.').count(), 4);
        assert_eq!(untoken(&token("private-a.b*c>d e")).as_deref(), Some("private-a.b*c>d e"));
        assert_eq!(untoken("zz"), None);
    }
}
