//! The Redis Cluster engine's bus: sharded pub/sub (`SPUBLISH`/`SSUBSCRIBE`, Redis 7+).
//!
//! Every channel of every app has its own shard channel
//! (`rtc:bus:{cluster}:{app:channel}`, [`super::Keys::shard_bus`]); its hash tag spreads
//! the channels over the slots, so each master carries the traffic of its share of
//! the channels only. A node subscribes to the shard channel of a channel while it has
//! local subscribers in it (the server reports every local count change as a
//! `SubsCount` state operation; [`Interest`] keeps the latest wish per channel and the
//! subscriber task applies it). Messages that are not about one channel's subscribers
//! (terminate, watchlist, `sendToUser`) go on one control shard channel every node
//! subscribes to ([`super::Keys::control_bus`]).
//!
//! Cost per broadcast: one `SPUBLISH` to the channel's master, one delivery per node
//! that has local subscribers in the channel (the publishing node included when it has
//! some: it skips its own message), plus the master's replication of the message to
//! its own replicas. The one-Redis engine delivers every message to every node.
//!
//! The subscriber is a cluster connection with a push sender. The cluster client
//! follows `MOVED`/`ASK`, refreshes its slot map and resubscribes by itself after a
//! reconnect; on top of that, a failed ping rebuilds the connection and subscribes to
//! every wanted shard channel again (as the one-Redis engine resubscribes), so a
//! failover or a restarted Redis Cluster is recovered either way.
//!
//! A node that gets its first local subscriber in a channel subscribes to the channel's
//! shard one round trip later. So that an event another node publishes after the
//! socket's `subscription_succeeded` always reaches it, the server asks
//! [`crate::port::ClusterPort::receiving`] and holds the new subscriber's frames
//! (`subscription_succeeded` first) until this subscriber task has the `SSUBSCRIBE`
//! acknowledged ([`Interest::confirm`]), for at most [`SUBSCRIBE_WAIT`]; past that the
//! subscription is refused with `pusher:subscription_error` (status 503), never
//! confirmed to a socket that would miss the other nodes' events.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;

use parking_lot::Mutex;
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::{ConnectionInfo, IntoConnectionInfo};
use tokio::sync::{oneshot, Notify};

use super::link::{Forwarder, Subscription};
use super::{BusMessage, Cluster, Keys, REDIS_TIMEOUT};

/// The seed nodes of a `redis-cluster://[user:pass@]HOST:PORT[,HOST:PORT…]` URL, each
/// as a RESP3 connection (credentials apply to every node). `None` when it does not
/// parse.
pub(super) fn seeds(url: &str) -> Option<Vec<ConnectionInfo>> {
    if !url.starts_with("redis-cluster://") {
        return None;
    }
    let creds = rtc_model::bus::credentials(url).map(|c| format!("{c}@")).unwrap_or_default();
    let mut out = Vec::new();
    for host in rtc_model::bus::host_ports(url)? {
        let mut info = format!("redis://{creds}{host}").into_connection_info().ok()?;
        info.redis.protocol = redis::ProtocolVersion::RESP3;
        out.push(info);
    }
    Some(out)
}

/// The shard channel a bus message of `app` goes to.
pub(super) fn channel_of(keys: &Keys, app: &str, msg: &BusMessage) -> String {
    match msg {
        BusMessage::Event { channel, .. }
        | BusMessage::MemberAdded { channel, .. }
        | BusMessage::MemberRemoved { channel, .. }
        | BusMessage::SubscriptionCount { channel, .. } => channel_of_channel(keys, app, channel),
        BusMessage::Terminate { .. } | BusMessage::Watchlist { .. } => keys.control_bus(),
    }
}

/// The shard channel of an app's channel; `#server-to-user-` channels reach a user's
/// signed-in sockets, which every node may hold: they go on the control channel.
pub(super) fn channel_of_channel(keys: &Keys, app: &str, channel: &str) -> String {
    if channel.starts_with("#server-to-user-") {
        keys.control_bus()
    } else {
        keys.shard_bus(app, channel)
    }
}

/// Longest a new subscriber's frames wait for its channel's `SSUBSCRIBE` (one round
/// trip when healthy; seconds on a loaded machine); past it the subscription is refused
/// (a slow or failing Redis Cluster must not keep a socket waiting without an answer).
pub(super) const SUBSCRIBE_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// The shard channels this node wants, as changes not yet applied by the subscriber
/// task: the latest wish per shard channel (bounded by the node's channels); and which
/// of them the subscriber connection has acknowledged, with who waits for that.
#[derive(Default)]
pub(super) struct Interest {
    pending: Mutex<HashMap<String, bool>>,
    changed: Notify,
    subscribed: Mutex<Subscribed>,
}

/// The shard channels subscribed on the current connection, and the waiters of the
/// others (sent to when the channel is subscribed; dropped when it is no longer wanted).
#[derive(Default)]
struct Subscribed {
    channels: HashSet<String>,
    waiters: HashMap<String, Vec<oneshot::Sender<()>>>,
}

impl Interest {
    /// Wants (or no longer wants) a shard channel.
    pub(super) fn set(&self, channel: String, want: bool) {
        if !want {
            self.subscribed.lock().waiters.remove(&channel);
        }
        self.pending.lock().insert(channel, want);
        self.changed.notify_one();
    }

    fn take(&self) -> HashMap<String, bool> {
        std::mem::take(&mut *self.pending.lock())
    }

    /// `None` when `channel` is subscribed on the current connection; else a receiver
    /// that completes with `Ok` once it is, or with an error (its sender dropped) once
    /// it is no longer wanted.
    pub(super) fn when_subscribed(&self, channel: &str) -> Option<oneshot::Receiver<()>> {
        let mut s = self.subscribed.lock();
        if s.channels.contains(channel) {
            return None;
        }
        let (tx, rx) = oneshot::channel();
        s.waiters.entry(channel.to_string()).or_default().push(tx);
        Some(rx)
    }

    /// Whether `channel` is subscribed on the current connection.
    pub(super) fn is_subscribed(&self, channel: &str) -> bool {
        self.subscribed.lock().channels.contains(channel)
    }

    /// The subscriber connection has `channel` acknowledged: wakes its waiters.
    fn confirm(&self, channel: &str) {
        let mut s = self.subscribed.lock();
        s.channels.insert(channel.to_string());
        for waiter in s.waiters.remove(channel).unwrap_or_default() {
            let _ = waiter.send(());
        }
    }

    fn unconfirm(&self, channel: &str) {
        self.subscribed.lock().channels.remove(channel);
    }

    /// The subscriber connection is gone: nothing is subscribed until it is rebuilt.
    fn forget_all(&self) {
        self.subscribed.lock().channels.clear();
    }
}

/// Applies pending interest changes to `wanted`, subscribing and unsubscribing on
/// `con` when it is up.
async fn apply(cluster: &Cluster, wanted: &mut HashSet<String>, con: &mut ClusterConnection) -> redis::RedisResult<()> {
    let control = cluster.keys.control_bus();
    for (channel, want) in cluster.interest.take() {
        if channel == control {
            continue;
        }
        if want && wanted.insert(channel.clone()) {
            con.ssubscribe(&channel).await?;
            cluster.interest.confirm(&channel);
        } else if !want && wanted.remove(&channel) {
            cluster.interest.unconfirm(&channel);
            con.sunsubscribe(&channel).await?;
        }
    }
    Ok(())
}

/// The Redis Cluster engine's subscription: the control shard channel and the shard
/// channels of the channels with local subscribers, on a cluster connection.
pub(super) struct ShardSubscription {
    cluster: Arc<Cluster>,
    seeds: Vec<ConnectionInfo>,
    /// The shard channels wanted (kept across connections).
    wanted: HashSet<String>,
    con: Option<ClusterConnection>,
}

impl ShardSubscription {
    pub(super) fn new(cluster: Arc<Cluster>, seeds: Vec<ConnectionInfo>) -> Self {
        ShardSubscription { cluster, seeds, wanted: HashSet::new(), con: None }
    }
}

impl Subscription for ShardSubscription {
    async fn connect(&mut self, forwarder: Forwarder) -> redis::RedisResult<()> {
        self.cluster.interest.forget_all();
        let client = ClusterClientBuilder::new(self.seeds.clone())
            .use_protocol(redis::ProtocolVersion::RESP3)
            .connection_timeout(REDIS_TIMEOUT)
            .response_timeout(REDIS_TIMEOUT)
            .push_sender(forwarder)
            .build()?;
        let mut con = client.get_async_connection().await?;
        con.ssubscribe(self.cluster.keys.control_bus()).await?;
        // Pending changes first, then every wanted channel on this new connection.
        apply(&self.cluster, &mut self.wanted, &mut con).await?;
        for channel in &self.wanted {
            con.ssubscribe(channel).await?;
            self.cluster.interest.confirm(channel);
        }
        self.con = Some(con);
        Ok(())
    }

    async fn changed(&self) {
        self.cluster.interest.changed.notified().await;
    }

    async fn apply(&mut self) -> bool {
        match &mut self.con {
            Some(con) => apply(&self.cluster, &mut self.wanted, con).await.is_ok(),
            None => false,
        }
    }

    async fn ping(&mut self) -> bool {
        super::link::ping(self.con.as_mut()).await
    }

    fn close(&mut self) {
        self.con = None;
        self.cluster.interest.forget_all();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seeds_take_every_host_and_the_credentials() {
        let s = seeds("redis-cluster://u:p@10.0.0.1:7000,10.0.0.2:7001").expect("parses");
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].redis.password.as_deref(), Some("p"));
        assert_eq!(s[1].redis.username.as_deref(), Some("u"));
        assert!(seeds("redis-cluster://").is_none());
        assert!(seeds("redis://h:1").is_none());
    }

    #[test]
    fn channels_spread_by_app_and_channel_and_user_messages_go_to_control() {
        let k = Keys::hash_tagged("c");
        assert_eq!(channel_of_channel(&k, "a", "room"), "rtc:bus:c:{a:room}");
        assert_eq!(channel_of_channel(&k, "a", "#server-to-user-7"), k.control_bus());
        let t = BusMessage::Terminate { user_id: "7".into() };
        assert_eq!(channel_of(&k, "a", &t), "rtc:ctl:{c}");
        assert_eq!(k.node("n1"), "rtc:{c}:node:n1");
    }
}
