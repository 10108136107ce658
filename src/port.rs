//! The port between the server and a cluster engine: what a node asks of the cluster
//! ([`ClusterPort`], with [`Claims`] for once-per-cluster duties) and what the cluster
//! hands back ([`Inbox`], which the server implements).
//!
//! Everything that crosses is plain data: app ids, [`ChannelName`]s, [`SocketId`]s and
//! user id strings, never the server's objects. The server decides what its sockets see
//! and which webhooks go out (one outcome handler, `server::outcome`); an engine
//! decides only what is shared between nodes (first member anywhere, cluster-wide
//! occupancy edges, totals) and reports it as an [`Outcome`].
//!
//! This module sits below both `server` and `cluster`: it imports only `protocol`.

use std::collections::{BTreeMap, BTreeSet};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use rtc_model::{NodeStats, PubSubStats};
use serde::{Deserialize, Serialize};

use crate::protocol::{ChannelName, SocketId};

pub mod loopback;

pub use loopback::LocalDelivery;

/// A boxed future, so the traits stay usable as trait objects.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// The message kinds one node sends the others (the engine wraps them in its own
/// envelope; see `cluster::bus`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum BusMessage {
    /// An event to fan out to a channel's local subscribers (HTTP API publish, client
    /// event, or `#server-to-user-` send).
    Event {
        /// Channel name.
        channel: String,
        /// Event name.
        event: String,
        /// Event data (a string, forwarded as is).
        data: String,
        /// `socket_id` to skip, wherever it lives.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        except: Option<String>,
        /// Sender's user id on presence client events.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        user_id: Option<String>,
    },
    /// A user's first socket anywhere joined a presence channel.
    MemberAdded {
        /// Channel name.
        channel: String,
        /// User id.
        user_id: String,
        /// Raw JSON of the user's info.
        user_info: String,
    },
    /// A user's last socket anywhere left a presence channel.
    MemberRemoved {
        /// Channel name.
        channel: String,
        /// User id.
        user_id: String,
    },
    /// The cluster-wide subscriber count of a channel changed.
    SubscriptionCount {
        /// Channel name.
        channel: String,
        /// Subscribers across the cluster.
        count: u64,
    },
    /// Close every socket signed in as this user.
    Terminate {
        /// User id.
        user_id: String,
    },
    /// A watched user came online (first signed-in socket anywhere) or went offline.
    Watchlist {
        /// User id.
        user_id: String,
        /// True for online.
        online: bool,
    },
}

/// Why cluster mode could not start, or had to stop.
#[derive(Debug, Clone, thiserror::Error)]
pub enum ClusterError {
    /// The engine's URL does not parse.
    #[error("invalid Redis URL '{0}'")]
    BadUrl(String),
    /// Another live node uses this node id: (this id, who holds it).
    #[error("node id '{0}' is used by another live node ({1}); give this node another --node-id")]
    IdClash(String, String),
}

/// A change to the shared state, submitted by the server's socket paths. Operations
/// of one node are applied in the order they were submitted.
#[derive(Debug, Clone)]
pub enum StateOp {
    /// A socket joined a presence channel (after the server's own bookkeeping).
    PresenceJoin {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// User id.
        user_id: Arc<str>,
        /// Raw user info JSON.
        info: Arc<str>,
        /// The joining socket (gets the member list, [`Outcome::MemberList`]).
        socket: SocketId,
        /// The user had no other socket in the channel on this node.
        local_first: bool,
        /// The app's member cap (`max_presence_members`, 0 = none), checked
        /// cluster-wide.
        cap: usize,
    },
    /// A user's last socket on this node left a presence channel.
    PresenceLeave {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// User id.
        user_id: Arc<str>,
        /// The app has a member cap: a member this node never recorded is not the last.
        capped: bool,
    },
    /// A channel's local subscriber count changed.
    SubsCount {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// Local subscribers now.
        local: usize,
        /// Report the cluster total ([`Outcome::SubscriptionCount`]).
        emit: bool,
        /// Report cluster-wide occupancy edges ([`Outcome::Occupancy`]).
        occupancy: bool,
    },
    /// Store the last event of a cache channel.
    CacheSet {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// Event name.
        event: String,
        /// Event data.
        data: String,
        /// Seconds it is kept.
        ttl_secs: u64,
    },
    /// Read a cache channel's last event for a new subscriber ([`Outcome::CacheReplay`]).
    CacheReplay {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// The subscriber.
        socket: SocketId,
    },
    /// A user's first socket on this node signed in.
    OnlineJoin {
        /// App id.
        app: String,
        /// User id.
        user_id: String,
    },
    /// A user's last signed-in socket on this node went away.
    OnlineLeave {
        /// App id.
        app: String,
        /// User id.
        user_id: String,
    },
    /// Read the online status of a signed-in socket's watchlist ([`Outcome::WatchStatus`]).
    WatchStatus {
        /// App id.
        app: String,
        /// The socket.
        socket: SocketId,
        /// Watched user ids.
        ids: Vec<String>,
    },
}

/// What the engine decided, handed to [`Inbox::outcome`]. "Anywhere" means on any
/// live node of the cluster; exactly one node reports each such edge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The members of a presence channel for a socket that joined it; `None` when the
    /// shared state could not be read (the server then uses its own members).
    MemberList {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// The joining socket.
        socket: SocketId,
        /// (user id, raw info) across the cluster.
        members: Option<Vec<(String, String)>>,
    },
    /// The member cap refused the join: the socket leaves the channel and is told.
    PresenceRefused {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// User id.
        user_id: String,
        /// The refused socket.
        socket: SocketId,
    },
    /// A user's first socket anywhere joined a presence channel.
    MemberAdded {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// User id.
        user_id: String,
        /// Raw user info JSON.
        info: String,
        /// The joining socket (not told about itself), if on this node.
        except: Option<SocketId>,
    },
    /// A user's last socket anywhere left a presence channel.
    MemberRemoved {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// User id.
        user_id: String,
    },
    /// A channel went from no subscriber anywhere to some (`occupied`), or back.
    Occupancy {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// True for 0 → n, false for n → 0.
        occupied: bool,
    },
    /// A channel's subscriber count across the cluster.
    SubscriptionCount {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// Subscribers anywhere.
        total: u64,
    },
    /// A cache channel's stored event for a new subscriber: `Some(None)` when there is
    /// none (a miss), `None` when the shared store could not be read.
    CacheReplay {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
        /// The subscriber.
        socket: SocketId,
        /// (event, data).
        cached: Option<Option<(String, String)>>,
    },
    /// A user's first signed-in socket anywhere (`online`), or their last one left.
    Online {
        /// App id.
        app: String,
        /// User id.
        user_id: String,
        /// True for online.
        online: bool,
    },
    /// The online status of a socket's watchlist (`None`: not readable, use local).
    WatchStatus {
        /// App id.
        app: String,
        /// The socket.
        socket: SocketId,
        /// Watched user ids.
        ids: Vec<String>,
        /// Whether each is online anywhere.
        online: Option<Vec<bool>>,
    },
}

/// One app's local state, for an engine that rewrites this node's shared entries.
#[derive(Debug, Clone, Default)]
pub struct AppState {
    /// App id.
    pub id: String,
    /// Whether the app has occupancy webhooks (the engine then tracks occupancy edges).
    pub occupancy: bool,
    /// Every channel on this node with its subscriber count.
    pub channel_counts: Vec<(ChannelName, usize)>,
    /// Every presence channel on this node with its members (user id, raw info).
    pub presence: Vec<(ChannelName, Vec<(String, String)>)>,
    /// Users signed in on this node.
    pub online: Vec<String>,
}

/// How the node is leaving, for the engine's exit record.
#[derive(Debug, Clone, Default)]
pub struct Departure {
    /// The node drained before stopping.
    pub drained: bool,
    /// What the drain did, for people.
    pub detail: Option<String>,
}

/// What this node knows about the others, refreshed every heartbeat.
#[derive(Debug, Default, Clone)]
pub struct LiveView {
    /// Latest stats of every other live node.
    pub others: Vec<NodeStats>,
}

impl LiveView {
    /// Ids of the other live nodes.
    pub fn other_ids(&self) -> Vec<String> {
        self.others.iter().map(|n| n.node_id.clone()).collect()
    }

    /// Connections of an app on the other nodes (as of their last heartbeat).
    pub fn app_connections(&self, app: &str) -> u64 {
        self.others.iter().flat_map(|n| n.apps.iter()).filter(|a| a.id == app).map(|a| a.connections).sum()
    }
}

/// A question about the other nodes' share of the state, for the HTTP API. The answers
/// leave out this node's own figures: the server adds them.
#[derive(Debug, Clone)]
pub enum Query {
    /// Subscribers of a channel on the other nodes.
    Subscriptions {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
    },
    /// Occupied channels (name starting with `prefix`) on the other nodes.
    Channels {
        /// App id.
        app: String,
        /// Name prefix.
        prefix: String,
    },
    /// Presence users of channels on the other nodes.
    Users {
        /// App id.
        app: String,
        /// The presence channels.
        channels: Vec<ChannelName>,
    },
    /// The stored event of a cache channel.
    Cached {
        /// App id.
        app: String,
        /// Channel.
        channel: ChannelName,
    },
}

/// The answer to a [`Query`] (the variant of the same name).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer {
    /// Subscribers.
    Subscriptions(u64),
    /// Channel → subscribers.
    Channels(BTreeMap<ChannelName, u64>),
    /// Channel → user ids.
    Users(BTreeMap<ChannelName, BTreeSet<String>>),
    /// (event, data, seconds left), if any.
    Cached(Option<(String, String, u64)>),
}

/// Why a query has no answer.
#[derive(Debug, Clone, thiserror::Error)]
#[error("the cluster's shared state is unreachable: {0}")]
pub struct Unreachable(pub String);

/// Once-per-cluster duties: a claim set by one node that whichever node comes first
/// takes (the webhook departure delay uses this so that a return on any node cancels a
/// pending `channel_vacated`/`member_removed`).
pub trait Claims: Send + Sync {
    /// Sets claim `name` for `ttl`; false when the engine could not record it.
    fn claim(&self, name: String, ttl: Duration) -> BoxFuture<'_, bool>;
    /// Takes claim `name`: `Some(true)` if it was there (and is now gone),
    /// `Some(false)` if not, `None` when the engine could not tell.
    fn take(&self, name: String) -> BoxFuture<'_, Option<bool>>;
}

/// A cluster engine as the server uses it.
pub trait ClusterPort: Claims {
    /// Starts the engine's tasks; what arrives goes to `inbox`. Called once.
    fn start(self: Arc<Self>, inbox: Arc<dyn Inbox>);
    /// Stops the engine's tasks once the queued work is done (bounded wait), after the
    /// node's sockets are closed so their last leaves still go out.
    fn shutdown(&self) -> BoxFuture<'_, ()>;
    /// Sends a message to the other nodes (never blocks; a full queue drops it, counted).
    fn publish(&self, app: &str, msg: BusMessage);
    /// As [`ClusterPort::publish`], and resolves once the engine has handed the message
    /// on (its publish acknowledged by the broker) or given up on it (dropped, counted).
    /// The HTTP API answers only then, so events a client publishes one after another
    /// through different nodes reach subscribers in that order. The default resolves at
    /// once (an engine whose publish is already sent when it returns).
    fn publish_confirmed(&self, app: &str, msg: BusMessage) -> BoxFuture<'static, ()> {
        self.publish(app, msg);
        Box::pin(std::future::ready(()))
    }
    /// As [`ClusterPort::publish_confirmed`] for an HTTP API publish, with the event's
    /// fan-out to this node's own sockets: `deliver` runs in the bus's order with the
    /// other nodes' events (see [`loopback`]), so no event a client was told is
    /// published can be overtaken on this node by a later one. The default (an engine
    /// that does not get its own messages back) runs `deliver` at once.
    fn publish_looped(&self, app: &str, msg: BusMessage, deliver: LocalDelivery) -> BoxFuture<'static, ()> {
        deliver();
        self.publish_confirmed(app, msg)
    }
    /// `None` when this node already receives the other nodes' events of `channel`;
    /// else a future that completes with `true` once it does, or `false` once the
    /// engine gives up (bounded). Called on a channel's first local subscriber after
    /// its `SubsCount` is submitted: the server holds that socket's frames of the
    /// channel, `subscription_succeeded` first, until the future completes, so an event
    /// published on any node after the client saw its subscription succeed reaches it;
    /// on `false` the subscription is refused (`pusher:subscription_error` 503) rather
    /// than confirmed to a socket that would miss events. The default: every node
    /// receives every message.
    fn receiving(&self, _app: &str, _channel: &ChannelName) -> Option<BoxFuture<'static, bool>> {
        None
    }
    /// Queues a shared-state operation (never blocks).
    fn submit(&self, op: StateOp);
    /// Answers a question about the other nodes' state.
    fn query(&self, query: Query) -> BoxFuture<'_, Result<Answer, Unreachable>>;
    /// Whether the node is cut off from the cluster.
    fn is_degraded(&self) -> bool;
    /// Bus health for the admin stats.
    fn pubsub_stats(&self) -> PubSubStats;
    /// The latest view of the other live nodes.
    fn live(&self) -> LiveView;
    /// Appends an entry about this node to the cluster's incident timeline (best effort).
    fn record_event(self: Arc<Self>, kind: &'static str, detail: String);
    /// A line for the start-up log: cluster name, node id, engine address (redacted).
    fn describe(&self) -> String;
}

/// What the server does with what arrives from the cluster.
pub trait Inbox: Send + Sync + 'static {
    /// A message from another node (received at `arrival`): deliver it to local sockets.
    fn deliver(&self, app: &str, msg: BusMessage, arrival: std::time::Instant);
    /// A decision of the engine: tell the sockets, send the webhooks, publish.
    fn outcome(&self, outcome: Outcome) -> BoxFuture<'_, ()>;
    /// This node's local state, app by app.
    fn snapshot(&self) -> Vec<AppState>;
    /// This node's stats, for its registry entry.
    fn node_stats(&self) -> NodeStats;
    /// How the node is stopping (asked when the engine stops).
    fn departure(&self) -> Departure;
    /// The node cannot stay in the cluster: stop it.
    fn fatal(&self, error: ClusterError);
}

/// The loop of an engine's ordered state task: takes up to `max` queued operations at a
/// time and runs `batch` on them, in order, until `stop` is cancelled; then finishes what
/// is already queued (the closing sockets' last leaves) and returns.
pub async fn run_batches<T, F, Fut>(
    mut rx: tokio::sync::mpsc::Receiver<T>,
    stop: tokio_util::sync::CancellationToken,
    max: usize,
    mut batch: F,
) where
    F: FnMut(Vec<T>) -> Fut,
    Fut: Future<Output = ()>,
{
    let mut ops = Vec::with_capacity(max);
    let mut stopping = false;
    loop {
        ops.clear();
        let got = if stopping {
            rx.recv_many(&mut ops, max).await
        } else {
            tokio::select! {
                biased;
                got = rx.recv_many(&mut ops, max) => got,
                () = stop.cancelled() => {
                    stopping = true;
                    rx.close();
                    continue;
                }
            }
        };
        if got == 0 {
            return;
        }
        batch(std::mem::take(&mut ops)).await;
    }
}

/// An engine's [`ClusterPort::publish_confirmed`] over its publish queue: `enqueue`
/// queues the message with the sender it must send on (or drop) once the broker has
/// acknowledged the batch or the message was dropped; the future resolves then.
pub fn confirmed(enqueue: impl FnOnce(tokio::sync::oneshot::Sender<()>)) -> BoxFuture<'static, ()> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    enqueue(tx);
    Box::pin(async move {
        let _ = rx.await;
    })
}
