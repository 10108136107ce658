//! One app's live state on this node: channels and their subscribers, signed-in users,
//! watchlists and the cache-channel store. All fan-out goes through here.
//!
//! Locking: a channel is created, joined and removed under its `channels` shard lock
//! (a `DashMap` entry), then its own `subs` lock; fan-out clones the channel's `Arc`
//! under a brief shard read lock and iterates `subs` under a read lock. No lock is held
//! across an `.await`.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use dashmap::mapref::entry::Entry;
use dashmap::DashMap;
use tokio::time::Instant;
use tokio_util::task::TaskTracker;

use super::channel::{Channel, Member, Subscriber};
use super::conn_handle::ConnHandle;
use super::drain::DrainSignal;
use super::fanout::Delivery;
use super::outbox::Push;
use super::presence_view::MemberEvent;
use super::Frame;
use crate::config::AppConfig;
use crate::metrics::{AppLabel, FanoutSource, KindLabel, Metrics};
use crate::port::{BusMessage, Claims, ClusterPort, StateOp};
use crate::protocol::channel::ChannelKind;
use crate::protocol::close::CloseCode;
use crate::protocol::frame;
use crate::protocol::{ChannelName, SocketId};
use crate::webhooks::{WebhookKind, Webhooks};

/// Channels above this many subscribers get `subscription_count` at most every
/// [`COUNT_THROTTLE`] (Pusher's rule).
const COUNT_THROTTLE_ABOVE: usize = 100;
/// Minimum interval between `subscription_count` events on a large channel.
const COUNT_THROTTLE: Duration = Duration::from_secs(5);

/// The last event published to a cache channel.
#[derive(Clone)]
pub struct CachedEvent {
    /// The frame, replayed as is to new subscribers.
    pub frame: Frame,
    /// Event name.
    pub event: String,
    /// Event data.
    pub data: String,
    /// When it was stored.
    pub stored: Instant,
}

/// A presence identity for a subscription: user id and raw `user_info` JSON.
#[derive(Clone)]
pub struct PresenceIdentity {
    /// The user id (string form).
    pub user_id: Arc<str>,
    /// Raw JSON of `user_info`.
    pub info: Arc<str>,
}

/// Who published an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin<'a> {
    /// The HTTP API (cached on cache channels).
    Server,
    /// A client event; on presence channels it carries the sender's user id.
    Client {
        /// The sender's presence user id.
        user_id: Option<&'a str>,
    },
}

/// Why a subscription was refused after its signature checked out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SubscribeError {
    /// The presence channel has its maximum of distinct members.
    #[error("Presence channel is full ({0} members)")]
    PresenceFull(usize),
}

/// Aggregates about one channel for the HTTP API.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ChannelCounts {
    /// Subscribed sockets.
    pub subscriptions: usize,
    /// Distinct presence users.
    pub users: usize,
}

/// What [`App::publish`] did.
#[must_use = "the HTTP API must wait for `sent` before answering"]
pub struct Published {
    /// Local sockets reached; 0 when the local fan-out waits for the cluster bus (an
    /// HTTP API publish in a cluster; see `ClusterPort::publish_looped`).
    pub delivered: usize,
    /// In a cluster: resolves once the event is on the bus (or was dropped). An HTTP API
    /// publish is answered only then, so events a client sends one after another,
    /// through any nodes, reach every subscriber in that order.
    pub sent: Option<crate::port::BoxFuture<'static, ()>>,
}

/// One app's state.
pub struct App {
    /// Its configuration.
    pub config: AppConfig,
    label: AppLabel,
    channels: DashMap<ChannelName, Arc<Channel>>,
    sockets: DashMap<SocketId, Arc<ConnHandle>>,
    users: DashMap<String, Vec<Arc<ConnHandle>>>,
    watchers: DashMap<String, Vec<Arc<ConnHandle>>>,
    cache: DashMap<ChannelName, CachedEvent>,
    connections: AtomicU64,
    opened: AtomicU64,
    closed: AtomicU64,
    metrics: Arc<Metrics>,
    tasks: TaskTracker,
    cluster: Option<Arc<dyn ClusterPort>>,
    drain: Arc<DrainSignal>,
    webhooks: Arc<Webhooks>,
    /// HTTP API requests per second.
    pub api_rate: Option<super::rate::RateLimiter>,
}

impl App {
    /// A new app with no connections.
    pub fn new(
        config: AppConfig,
        metrics: Arc<Metrics>,
        tasks: TaskTracker,
        cluster: Option<Arc<dyn ClusterPort>>,
        drain: Arc<DrainSignal>,
    ) -> Self {
        let label = AppLabel { app: config.id.clone() };
        let claims = cluster.clone().map(|c| c as Arc<dyn Claims>);
        let webhooks = Arc::new(Webhooks::new(&config, metrics.clone(), claims));
        let api_rate = super::rate::RateLimiter::new(config.max_api_requests_per_sec);
        App {
            api_rate,
            config,
            label,
            channels: DashMap::new(),
            sockets: DashMap::new(),
            users: DashMap::new(),
            watchers: DashMap::new(),
            cache: DashMap::new(),
            connections: AtomicU64::new(0),
            opened: AtomicU64::new(0),
            closed: AtomicU64::new(0),
            metrics,
            tasks,
            cluster,
            drain,
            webhooks,
        }
    }

    /// The app's webhooks (a no-op when it has no endpoint).
    pub fn webhooks(&self) -> &Arc<Webhooks> {
        &self.webhooks
    }

    /// Queues a leave for the shared state; during a drain it waits out the presence
    /// grace first, so a user whose client moves to another node within it causes no
    /// `member_removed` + `member_added` flap there (the other node sees this node's entry
    /// and treats the join as a second socket; this leave then finds the user elsewhere).
    fn queue_leave(&self, op: StateOp) {
        let Some(cluster) = self.cluster.clone() else { return };
        let grace = self.drain.grace();
        if grace.is_zero() {
            cluster.submit(op);
            return;
        }
        let flush = self.drain.flush.clone();
        self.tasks.spawn(async move {
            tokio::select! {
                () = tokio::time::sleep(grace) => {}
                () = flush.cancelled() => {}
            }
            cluster.submit(op);
        });
    }

    /// Takes one connection slot; false when the app is at its quota. In a cluster the
    /// quota counts every node (the others as of their last heartbeat).
    pub fn try_admit(&self) -> bool {
        let max = self.config.max_connections;
        let elsewhere = match (&self.cluster, max) {
            (Some(c), m) if m > 0 => c.live().app_connections(&self.config.id),
            _ => 0,
        };
        let prev = self.connections.fetch_add(1, Ordering::AcqRel);
        if max > 0 && prev + elsewhere >= max {
            self.connections.fetch_sub(1, Ordering::AcqRel);
            return false;
        }
        true
    }

    /// Gives back a slot taken by [`App::try_admit`].
    pub fn release(&self) {
        self.connections.fetch_sub(1, Ordering::AcqRel);
    }

    /// Open connections on this node.
    pub fn connection_count(&self) -> u64 {
        self.connections.load(Ordering::Acquire)
    }

    /// Records a live connection (for `socket_id` lookups).
    pub fn register(&self, conn: Arc<ConnHandle>) {
        self.metrics.connections.get_or_create(&self.label).inc();
        self.metrics.connections_opened.get_or_create(&self.label).inc();
        self.opened.fetch_add(1, Ordering::Relaxed);
        self.sockets.insert(conn.socket_id, conn);
    }

    /// Forgets a connection: leaves its channels (members and watchers are told) and
    /// frees its slot. `channels` are the ones it was subscribed to.
    pub fn unregister(self: &Arc<Self>, conn: &Arc<ConnHandle>, channels: Vec<(ChannelName, Option<Arc<str>>)>) {
        for (name, user) in channels {
            self.unsubscribe(conn, &name, user.as_ref());
        }
        if let Some(user_id) = conn.user_id.get() {
            self.sign_out(conn, user_id);
        }
        self.sockets.remove(&conn.socket_id);
        self.metrics.connections.get_or_create(&self.label).dec();
        self.metrics.connections_closed.get_or_create(&self.label).inc();
        self.closed.fetch_add(1, Ordering::Relaxed);
        self.release();
    }

    fn sub_gauge(&self, kind: ChannelKind, delta: i64) {
        self.metrics.subscriptions.get_or_create(&KindLabel { kind: kind.as_str().into() }).inc_by(delta);
    }

    /// Subscribes `conn`. Queues `subscription_succeeded` (with members for presence)
    /// to it before any later event of the channel, then the cached event or
    /// `cache_miss` for cache channels. Returns false if it was already subscribed.
    ///
    /// In a cluster, presence members and cache entries live in Redis: the state task
    /// sends `subscription_succeeded` with every member of the cluster, decides whether
    /// this is the user's first socket anywhere, and replays cache channels.
    pub fn subscribe(
        self: &Arc<Self>,
        conn: &Arc<ConnHandle>,
        name: &ChannelName,
        presence: Option<PresenceIdentity>,
    ) -> Result<bool, SubscribeError> {
        let kind = name.kind();
        // The shard lock (guard) is held until the subscriber is in, so a concurrent
        // unsubscribe cannot remove the channel from the map under us.
        let guard = self.channels.entry(name.clone()).or_insert_with(|| Arc::new(Channel::new(name.clone())));
        let channel = guard.value().clone();
        let mut subs = channel.subs.write();
        if subs.contains_key(&conn.socket_id) {
            return Ok(false);
        }
        // On a sharded engine, a channel's first subscribers here get their frames (from
        // `subscription_succeeded` on) only once this node receives the channel's events
        // from the other nodes.
        let receiving = self.cluster.as_ref().and_then(|c| c.receiving(&self.config.id, name));
        let sub = Subscriber::new(conn.clone(), presence.as_ref().map(|p| p.user_id.clone()), receiving.is_some());
        let mut cluster_op = None;
        let mut added_user = None;
        if let Some(p) = &presence {
            let mut members = channel.members.lock();
            let is_new_user = !members.contains_key(&p.user_id);
            // This node's members are a lower bound of the cluster's: a quick local
            // refusal. In a cluster the join script checks the cap across the nodes.
            let cap = self.config.max_presence_members;
            if is_new_user && cap > 0 && members.len() >= cap {
                return Err(SubscribeError::PresenceFull(cap));
            }
            let m = members.entry(p.user_id.clone()).or_insert_with(|| Member { info: p.info.clone(), sockets: 0 });
            m.sockets += 1;
            if is_new_user {
                self.metrics.presence_members.inc();
            }
            if self.cluster.is_some() {
                cluster_op = Some(is_new_user);
            } else {
                if is_new_user {
                    added_user = Some(p.user_id.clone());
                    let added = Frame::from(frame::member_added(name.as_str(), &p.user_id, &p.info));
                    let n = channel.fan_out_to(subs.values(), &added, None);
                    self.count_out(n, added.len());
                    self.metrics.presence_frames.inc_by(n as u64);
                }
                let ok = Frame::from(frame::presence_subscription_succeeded(
                    name.as_str(),
                    members.iter().map(|(id, m)| (&**id, &*m.info)),
                ));
                self.metrics.presence_frames.inc();
                self.push_counted(conn, ok);
            }
        } else {
            let ok = Frame::from(frame::subscription_succeeded(name.as_str()));
            self.count_out(1, ok.len());
            sub.send(ok);
        }
        if cluster_op.is_some() {
            // Member events wait for the member list the state task sends.
            channel.views.lock().pending(conn.socket_id);
        }
        subs.insert(conn.socket_id, sub);
        let replay_here = name.is_cache() && self.cluster.is_none();
        let mut missed = false;
        if replay_here {
            let f = match self.cached(name) {
                Some(c) => c.frame,
                None => {
                    missed = true;
                    Frame::from(frame::cache_miss(name.as_str()))
                }
            };
            self.push_counted(conn, f);
        }
        let count = subs.len();
        if self.cluster.is_none() && kind != ChannelKind::ServerToUser {
            // Under the channel's locks, so webhooks follow the order of the changes.
            if count == 1 {
                self.webhooks.channel_occupied(name);
            }
            if let Some(user_id) = added_user {
                self.webhooks.member_added(name, &user_id);
            }
            if missed {
                self.webhooks.cache_miss(name);
            }
        }
        drop(subs);
        drop(guard);
        self.sub_gauge(kind, 1);
        if let Some(cluster) = &self.cluster {
            if let (Some(local_first), Some(p)) = (cluster_op, presence) {
                cluster.submit(StateOp::PresenceJoin {
                    app: self.config.id.clone(),
                    channel: name.clone(),
                    user_id: p.user_id,
                    info: p.info,
                    socket: conn.socket_id,
                    local_first,
                    cap: self.config.max_presence_members,
                });
            }
            if name.is_cache() {
                cluster.submit(StateOp::CacheReplay {
                    app: self.config.id.clone(),
                    channel: name.clone(),
                    socket: conn.socket_id,
                });
            }
        }
        self.after_count_change(&channel, count);
        if let Some(receiving) = receiving {
            let app = self.clone();
            let (name, socket) = (name.clone(), conn.socket_id);
            self.tasks.spawn(async move {
                if receiving.await {
                    app.release_held(&name, socket);
                } else {
                    app.refuse_unreceived(&name, socket);
                }
            });
        }
        Ok(true)
    }

    /// Ends a new subscriber's hold ([`Subscriber::release`]) if it is still subscribed.
    fn release_held(&self, name: &ChannelName, socket: SocketId) {
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        let mut subs = channel.subs.write();
        if let Some(sub) = subs.get_mut(&socket) {
            sub.release();
        }
    }

    /// Sends a frame about channel `name` to one of its subscribers (after what a hold
    /// keeps, [`Subscriber::send`]); to the socket directly if it is not subscribed.
    pub fn send_to_subscriber(&self, name: &ChannelName, conn: &ConnHandle, frame: Frame) {
        let channel = self.channels.get(name).map(|c| c.value().clone());
        let subs = channel.as_ref().map(|c| c.subs.read());
        match subs.as_ref().and_then(|s| s.get(&conn.socket_id)) {
            Some(sub) => sub.send(frame),
            None => conn.push(frame),
        };
    }

    /// Removes `conn` from a channel; tells the other members when the user's last
    /// socket leaves a presence channel (in a cluster: the last socket anywhere);
    /// drops the channel when it empties.
    pub fn unsubscribe(self: &Arc<Self>, conn: &ConnHandle, name: &ChannelName, user: Option<&Arc<str>>) {
        let left = self.remove_subscriber(conn, name, |channel, subs| {
            let mut left_node = None;
            if let Some(user_id) = user {
                let mut members = channel.members.lock();
                let gone = match members.get_mut(user_id) {
                    Some(m) if m.sockets > 1 => {
                        m.sockets -= 1;
                        false
                    }
                    Some(_) => true,
                    None => false,
                };
                if gone {
                    members.remove(user_id);
                    self.metrics.presence_members.dec();
                    if self.cluster.is_some() {
                        left_node = Some(user_id.clone());
                    } else {
                        self.webhooks.member_removed(name, user_id);
                        let removed = Frame::from(frame::member_removed(name.as_str(), user_id));
                        let n = channel.fan_out_to(subs.values(), &removed, None);
                        self.count_out(n, removed.len());
                        self.metrics.presence_frames.inc_by(n as u64);
                    }
                }
            }
            if subs.is_empty() && self.cluster.is_none() && name.kind() != ChannelKind::ServerToUser {
                self.webhooks.channel_vacated(name);
            }
            left_node
        });
        let Some((channel, count, left_node)) = left else {
            return;
        };
        if let Some(user_id) = left_node {
            self.queue_leave(StateOp::PresenceLeave {
                app: self.config.id.clone(),
                channel: name.clone(),
                user_id,
                capped: self.config.max_presence_members > 0,
            });
        }
        self.after_count_change(&channel, count);
    }

    /// Undoes a held subscription whose channel this node could not start receiving
    /// from the other nodes in time ([`ClusterPort::receiving`] gave up): the socket
    /// leaves the channel as by an unsubscribe, what its hold kept (its
    /// `subscription_succeeded` first) is dropped, and it gets `pusher:subscription_error`
    /// 503 instead, so no client is told it is subscribed while it would miss events.
    /// Nothing happens if the socket has left the channel or was released meanwhile.
    fn refuse_unreceived(self: &Arc<Self>, name: &ChannelName, socket: SocketId) {
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        let (conn, user) = {
            let subs = channel.subs.read();
            match subs.get(&socket) {
                Some(sub) if sub.is_held() => (sub.conn.clone(), sub.user_id.clone()),
                _ => return,
            }
        };
        self.unsubscribe(&conn, name, user.as_ref());
        self.metrics.protocol_error("subscribe_unavailable");
        tracing::warn!(
            channel = %name,
            "The cluster did not start sending this channel's events to this node in time; the subscription was refused (503)."
        );
        let f = Frame::from(frame::subscription_unavailable(
            name.as_str(),
            "This node could not start receiving the channel's events from the cluster in time; subscribe again",
        ));
        self.push_counted(&conn, f);
    }

    /// Undoes a presence subscription that the cluster-wide member cap refused (the
    /// join script found `max_presence_members` other users across the nodes): the
    /// socket leaves the channel here without a `member_removed` (it was never
    /// announced) and gets `pusher:error` + `pusher:subscription_error` 4100, as for a
    /// local refusal. Nothing happens if the socket has left the channel meanwhile.
    pub fn refuse_presence(self: &Arc<Self>, conn: &ConnHandle, name: &ChannelName, user_id: &str) {
        let left = self.remove_subscriber(conn, name, |channel, _| {
            let mut members = channel.members.lock();
            if let Some(m) = members.get_mut(user_id) {
                m.sockets = m.sockets.saturating_sub(1);
                if m.sockets == 0 {
                    members.remove(user_id);
                    self.metrics.presence_members.dec();
                }
            }
        });
        let Some((channel, count, ())) = left else {
            return;
        };
        let e = SubscribeError::PresenceFull(self.config.max_presence_members);
        self.metrics.limit_hit("max_presence_members");
        self.metrics.protocol_error("presence_full");
        for f in
            [frame::error_frame(None, &e.to_string()), frame::subscription_error(name.as_str(), &e.to_string(), 4100)]
        {
            let f = Frame::from(f);
            self.push_counted(conn, f);
        }
        self.after_count_change(&channel, count);
    }

    /// Takes `conn` out of channel `name`'s subscribers (counting the subscription gauge
    /// down) and runs `with` on the channel and the remaining subscribers while their
    /// lock is held; then drops the channel from the app if it emptied. Returns the
    /// channel, its subscriber count and what `with` returned; `None` (and `with` is not
    /// run) if the socket was not subscribed.
    fn remove_subscriber<R>(
        &self,
        conn: &ConnHandle,
        name: &ChannelName,
        with: impl FnOnce(&Channel, &HashMap<SocketId, Subscriber>) -> R,
    ) -> Option<(Arc<Channel>, usize, R)> {
        let Entry::Occupied(entry) = self.channels.entry(name.clone()) else {
            return None;
        };
        let channel = entry.get().clone();
        let mut subs = channel.subs.write();
        subs.remove(&conn.socket_id)?;
        if name.kind() == ChannelKind::Presence {
            channel.views.lock().forget(conn.socket_id);
        }
        self.sub_gauge(name.kind(), -1);
        let out = with(&channel, &subs);
        let count = subs.len();
        drop(subs);
        if count == 0 {
            entry.remove();
        } else {
            drop(entry);
        }
        Some((channel, count, out))
    }

    /// Pushes one frame to `conn`, counted in the node's frames and bytes out.
    fn push_counted(&self, conn: &ConnHandle, f: Frame) {
        self.count_out(1, f.len());
        conn.push(f);
    }

    fn count_out(&self, frames: usize, len: usize) {
        self.metrics.frames_out.inc_by(frames as u64);
        self.metrics.bytes_out.inc_by((frames * len) as u64);
    }

    /// After a subscriber count change: keeps the cluster's per-node count current and
    /// sends `subscription_count` (throttled on large channels).
    fn after_count_change(self: &Arc<Self>, channel: &Arc<Channel>, count: usize) {
        let kind = channel.name.kind();
        let counted = (self.config.subscription_count || self.webhooks.wants(WebhookKind::SubscriptionCount))
            && !matches!(kind, ChannelKind::Presence | ChannelKind::ServerToUser);
        let emit = counted && self.count_due(channel, count);
        if let Some(cluster) = &self.cluster {
            cluster.submit(self.subs_count(&channel.name, count, emit));
        } else if emit {
            self.count_changed(&channel.name, count as u64);
        }
    }

    /// Whether a `subscription_count` event is due now; on a large channel inside the
    /// throttle window, schedules one for the end of the window instead.
    fn count_due(self: &Arc<Self>, channel: &Arc<Channel>, count: usize) -> bool {
        if count <= COUNT_THROTTLE_ABOVE {
            *channel.count_sent.lock() = (Some(Instant::now()), false);
            return true;
        }
        let mut g = channel.count_sent.lock();
        let now = Instant::now();
        match g.0 {
            Some(last) if now.duration_since(last) < COUNT_THROTTLE => {
                if !g.1 {
                    g.1 = true;
                    let at = last + COUNT_THROTTLE;
                    let app = self.clone();
                    let ch = channel.clone();
                    self.tasks.spawn(async move {
                        tokio::time::sleep_until(at).await;
                        *ch.count_sent.lock() = (Some(Instant::now()), false);
                        let local = ch.subscriber_count();
                        match &app.cluster {
                            Some(c) => c.submit(app.subs_count(&ch.name, local, true)),
                            None => app.count_changed(&ch.name, local as u64),
                        }
                    });
                }
                false
            }
            _ => {
                *g = (Some(now), false);
                true
            }
        }
    }

    /// The shared-state update of a channel's local subscriber count (occupancy edges are
    /// tracked for apps with occupancy webhooks; user channels have none).
    fn subs_count(&self, channel: &ChannelName, local: usize, emit: bool) -> StateOp {
        StateOp::SubsCount {
            app: self.config.id.clone(),
            channel: channel.clone(),
            local,
            emit,
            occupancy: self.webhooks.wants_occupancy() && channel.kind() != ChannelKind::ServerToUser,
        }
    }

    /// Sends `pusher_internal:subscription_count` with `count` to the channel's local
    /// subscribers.
    pub fn send_count_frame(&self, name: &ChannelName, count: u64) {
        if !self.config.subscription_count || count == 0 {
            return;
        }
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        let f = Frame::from(frame::subscription_count(name.as_str(), count as usize));
        let n = channel.fan_out(&f, None);
        self.count_out(n, f.len());
    }

    /// The live cache entry of a cache channel, if not expired.
    pub fn cached(&self, name: &ChannelName) -> Option<CachedEvent> {
        let ttl = Duration::from_secs(self.config.cache_ttl);
        let hit = self.cache.get(name).map(|c| c.clone());
        match hit {
            Some(c) if c.stored.elapsed() < ttl => Some(c),
            Some(_) => {
                self.cache.remove(name);
                None
            }
            None => None,
        }
    }

    /// Seconds left before a cache entry expires.
    pub fn cache_ttl_left(&self, c: &CachedEvent) -> u64 {
        self.config.cache_ttl.saturating_sub(c.stored.elapsed().as_secs())
    }

    /// Publishes an event: fans it out to this node's subscribers and, in a cluster,
    /// publishes it once on the bus for the other nodes. Cache channels keep it (server
    /// events only: client events are never cached). Returns the local recipients.
    /// `arrival` starts the broadcast's fan-out time (see [`super::fanout`]).
    pub fn publish(
        self: &Arc<Self>,
        channel: &ChannelName,
        event: &str,
        data: &str,
        except: Option<SocketId>,
        origin: Origin<'_>,
        arrival: std::time::Instant,
    ) -> Published {
        let (user_id, source) = match origin {
            Origin::Client { user_id } => (user_id, FanoutSource::Client),
            Origin::Server => (None, FanoutSource::Api),
        };
        self.metrics.broadcasts.inc();
        // Encoded once: the same bytes go to every local subscriber and, on cache
        // channels, into the cache.
        let f = Frame::from(frame::event_frame(event, Some(channel.as_str()), Some(data), user_id));
        if channel.is_cache() && origin == Origin::Server {
            self.cache.insert(
                channel.clone(),
                CachedEvent { frame: f.clone(), event: event.into(), data: data.into(), stored: Instant::now() },
            );
            self.webhooks.cache_filled(channel);
            if let Some(cluster) = &self.cluster {
                cluster.submit(StateOp::CacheSet {
                    app: self.config.id.clone(),
                    channel: channel.clone(),
                    event: event.into(),
                    data: data.into(),
                    ttl_secs: self.config.cache_ttl,
                });
            }
        }
        let mut deliver_now = true;
        let sent = self.cluster.as_ref().map(|cluster| {
            let msg = BusMessage::Event {
                channel: channel.to_string(),
                event: event.to_string(),
                data: data.to_string(),
                except: except.map(|s| s.to_string()),
                user_id: user_id.map(str::to_string),
            };
            // The HTTP API waits for the bus before answering (see `Published::sent`); a
            // socket's client events are ordered by its own connection and need not.
            // Not while the bus is down or stuck: waiting would only stall the API.
            // Its local fan-out waits its turn behind the other nodes' events this node
            // has not read yet (see `port::loopback`); with nobody here to reach, nothing
            // is held.
            if origin == Origin::Server && !cluster.is_degraded() {
                if !self.reaches_anyone_here(channel) {
                    return cluster.publish_confirmed(&self.config.id, msg);
                }
                deliver_now = false;
                let (app, channel, f) = (self.clone(), channel.clone(), f.clone());
                let deliver = Box::new(move || {
                    app.deliver_frame(&channel, &f, except, source, arrival);
                });
                cluster.publish_looped(&self.config.id, msg, deliver)
            } else {
                cluster.publish(&self.config.id, msg);
                Box::pin(std::future::ready(()))
            }
        });
        let delivered = if deliver_now { self.deliver_frame(channel, &f, except, source, arrival) } else { 0 };
        Published { delivered, sent }
    }

    /// Whether an event on `channel` has a socket to reach on this node: a subscriber,
    /// or on a `#server-to-user-` channel the user signed in here.
    fn reaches_anyone_here(&self, channel: &ChannelName) -> bool {
        match channel.server_to_user_id() {
            Some(uid) => self.is_signed_in_locally(uid),
            None => self.channels.get(channel).is_some_and(|c| !c.subs.read().is_empty()),
        }
    }

    /// Fans an event from another node (received at `arrival`) out to this node's
    /// subscribers only; `#server-to-user-` channels go to the user's signed-in sockets.
    pub fn deliver_local(
        &self,
        channel: &ChannelName,
        event: &str,
        data: &str,
        except: Option<SocketId>,
        user_id: Option<&str>,
        arrival: std::time::Instant,
    ) -> usize {
        let f = Frame::from(frame::event_frame(event, Some(channel.as_str()), Some(data), user_id));
        self.deliver_frame(channel, &f, except, FanoutSource::Bus, arrival)
    }

    fn deliver_frame(
        &self,
        channel: &ChannelName,
        f: &Frame,
        except: Option<SocketId>,
        source: FanoutSource,
        arrival: std::time::Instant,
    ) -> usize {
        let d = if let Some(uid) = channel.server_to_user_id() {
            self.send_to_user(uid, f, except)
        } else {
            let ch = self.channels.get(channel).map(|c| c.value().clone());
            ch.map(|c| c.fan_out_counted(f, except)).unwrap_or_default()
        };
        self.count_out(d.delivered, f.len());
        super::fanout::finish(&self.metrics, source, arrival, d);
        d.delivered
    }

    /// Sends `member_added` to a presence channel's local subscribers (but `except`).
    pub fn fan_out_member_added(&self, name: &ChannelName, user_id: &str, info: &str, except: Option<SocketId>) {
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        let f = Frame::from(frame::member_added(name.as_str(), user_id, info));
        let n = channel.fan_out_member(MemberEvent::Added, user_id, &f, except);
        self.count_out(n, f.len());
        self.metrics.presence_frames.inc_by(n as u64);
    }

    /// Sends `member_removed` to a presence channel's local subscribers, unless the
    /// user is (again) present here.
    pub fn fan_out_member_removed(&self, name: &ChannelName, user_id: &str) {
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        if channel.members.lock().contains_key(user_id) {
            return;
        }
        let f = Frame::from(frame::member_removed(name.as_str(), user_id));
        let n = channel.fan_out_member(MemberEvent::Removed, user_id, &f, None);
        self.count_out(n, f.len());
        self.metrics.presence_frames.inc_by(n as u64);
    }

    /// Sends a clustered presence subscriber its `subscription_succeeded` with the
    /// cluster's `members` (user id, raw info), then the member events held back while
    /// they were read (those the list does not already reflect). Nothing is sent if the
    /// socket has left the channel meanwhile.
    pub fn send_presence_list(&self, name: &ChannelName, conn: &ConnHandle, members: &[(String, String)]) {
        let Some(channel) = self.channels.get(name).map(|c| c.value().clone()) else {
            return;
        };
        let subs = channel.subs.read();
        let Some(sub) = subs.get(&conn.socket_id) else {
            return;
        };
        let ok = Frame::from(frame::presence_subscription_succeeded(
            name.as_str(),
            members.iter().map(|(id, i)| (id.as_str(), i.as_str())),
        ));
        // Under the views lock: no member event can slip between the list and the
        // replay, and each later one is checked against the list.
        let mut views = channel.views.lock();
        self.count_out(1, ok.len());
        self.metrics.presence_frames.inc();
        sub.send(ok);
        for f in views.ready(conn.socket_id, members.iter().map(|(id, _)| id.as_str()), Instant::now()) {
            self.count_out(1, f.len());
            self.metrics.presence_frames.inc();
            sub.send(f);
        }
    }

    /// Whether a socket is subscribed to a channel on this node.
    pub fn is_subscribed(&self, name: &ChannelName, socket: SocketId) -> bool {
        self.channels.get(name).is_some_and(|c| c.subs.read().contains_key(&socket))
    }

    /// This node's members of a presence channel: (user id, raw info).
    pub fn local_members(&self, name: &ChannelName) -> Vec<(String, String)> {
        self.channels
            .get(name)
            .map(|c| c.members.lock().iter().map(|(id, m)| (id.to_string(), m.info.to_string())).collect())
            .unwrap_or_default()
    }

    /// Every presence channel on this node with its members.
    pub fn local_presence(&self) -> Vec<(ChannelName, Vec<(String, String)>)> {
        self.channels
            .iter()
            .filter(|e| e.key().kind() == ChannelKind::Presence)
            .map(|e| {
                let members =
                    e.value().members.lock().iter().map(|(id, m)| (id.to_string(), m.info.to_string())).collect();
                (e.key().clone(), members)
            })
            .collect()
    }

    /// Every channel on this node with its subscriber count.
    pub fn local_channel_counts(&self) -> Vec<(ChannelName, usize)> {
        self.channels.iter().map(|e| (e.key().clone(), e.value().subscriber_count())).collect()
    }

    /// Users signed in on this node.
    pub fn local_online_users(&self) -> Vec<String> {
        self.users.iter().map(|e| e.key().clone()).collect()
    }

    /// Whether a user is signed in on this node.
    pub fn is_signed_in_locally(&self, user_id: &str) -> bool {
        self.users.contains_key(user_id)
    }

    fn send_to_user(&self, user_id: &str, f: &Frame, except: Option<SocketId>) -> Delivery {
        let conns: Vec<Arc<ConnHandle>> = self.users.get(user_id).map(|v| v.clone()).unwrap_or_default();
        let mut d = Delivery::default();
        if conns.is_empty() {
            return d;
        }
        // Framed for WebSocket once, shared by the user's sockets.
        let wire = frame::ws_text_frame(f.as_str().as_bytes());
        for c in conns.iter().filter(|c| Some(c.socket_id) != except) {
            if c.push_wire(wire.clone()) == Push::Backlogged {
                d.backlogged += 1;
            }
            d.delivered += 1;
        }
        d
    }

    /// Records a successful sign-in; sends the watchlist status to the socket and
    /// `online` to the user's watchers when this is their first socket (in a cluster:
    /// first anywhere).
    pub fn sign_in(self: &Arc<Self>, conn: &Arc<ConnHandle>, user_id: &str, watchlist: &[String]) {
        let first = {
            let mut e = self.users.entry(user_id.to_string()).or_default();
            let first = e.is_empty();
            if !e.iter().any(|c| c.socket_id == conn.socket_id) {
                e.push(conn.clone());
            }
            first
        };
        if self.config.watchlist && !watchlist.is_empty() && conn.watching.set(watchlist.to_vec()).is_ok() {
            for w in watchlist {
                self.watchers.entry(w.clone()).or_default().push(conn.clone());
            }
            match &self.cluster {
                Some(c) => c.submit(StateOp::WatchStatus {
                    app: self.config.id.clone(),
                    socket: conn.socket_id,
                    ids: watchlist.to_vec(),
                }),
                None => {
                    let (online, offline): (Vec<&str>, Vec<&str>) =
                        watchlist.iter().map(String::as_str).partition(|w| self.users.contains_key(*w));
                    let f = Frame::from(frame::watchlist_events(&online, &offline));
                    self.push_counted(conn, f);
                }
            }
        }
        if first {
            match &self.cluster {
                Some(c) => c.submit(StateOp::OnlineJoin { app: self.config.id.clone(), user_id: user_id.to_string() }),
                None => self.online_changed(user_id, true),
            }
        }
    }

    /// Tells this node's watchers of `user_id` that it came online or went offline.
    pub fn notify_watchers(&self, user_id: &str, online: bool) {
        let conns: Vec<Arc<ConnHandle>> = self.watchers.get(user_id).map(|v| v.clone()).unwrap_or_default();
        if conns.is_empty() {
            return;
        }
        let ids = [user_id];
        let f = if online {
            Frame::from(frame::watchlist_events(&ids, &[]))
        } else {
            Frame::from(frame::watchlist_events(&[], &ids))
        };
        let wire = frame::ws_text_frame(f.as_str().as_bytes());
        for c in &conns {
            c.push_wire(wire.clone());
        }
        self.count_out(conns.len(), f.len());
    }

    fn sign_out(self: &Arc<Self>, conn: &ConnHandle, user_id: &str) {
        let last = match self.users.entry(user_id.to_string()) {
            Entry::Occupied(mut e) => {
                e.get_mut().retain(|c| c.socket_id != conn.socket_id);
                if e.get().is_empty() {
                    e.remove();
                    true
                } else {
                    false
                }
            }
            Entry::Vacant(_) => false,
        };
        // Drop this socket from the watcher lists it joined (not a scan of them all).
        for w in conn.watching.get().map(Vec::as_slice).unwrap_or_default() {
            if let Entry::Occupied(mut e) = self.watchers.entry(w.clone()) {
                e.get_mut().retain(|c| c.socket_id != conn.socket_id);
                if e.get().is_empty() {
                    e.remove();
                }
            }
        }
        if last {
            match &self.cluster {
                Some(_) => {
                    self.queue_leave(StateOp::OnlineLeave { app: self.config.id.clone(), user_id: user_id.to_string() })
                }
                None => self.online_changed(user_id, false),
            }
        }
    }

    /// Closes every socket signed in as `user_id` (4009), on every node; returns how
    /// many were on this one.
    pub fn terminate_user(&self, user_id: &str) -> usize {
        self.publish_to_cluster(BusMessage::Terminate { user_id: user_id.to_string() });
        self.terminate_user_local(user_id)
    }

    /// Closes this node's sockets signed in as `user_id`.
    pub fn terminate_user_local(&self, user_id: &str) -> usize {
        let conns: Vec<Arc<ConnHandle>> = self.users.get(user_id).map(|v| v.clone()).unwrap_or_default();
        for c in &conns {
            c.close(CloseCode::Unauthorized, "Connection terminated by the app");
        }
        conns.len()
    }

    /// Subscriptions and presence users of one channel on this node.
    pub fn channel_counts(&self, name: &ChannelName) -> ChannelCounts {
        match self.channels.get(name).map(|c| c.value().clone()) {
            Some(c) => ChannelCounts { subscriptions: c.subscriber_count(), users: c.user_count() },
            None => ChannelCounts::default(),
        }
    }

    /// Occupied channels (not user channels) whose name starts with `prefix`.
    pub fn channels(&self, prefix: &str) -> Vec<(ChannelName, ChannelCounts)> {
        let mut out: Vec<_> = self
            .channels
            .iter()
            .filter(|e| e.key().kind() != ChannelKind::ServerToUser && e.key().as_str().starts_with(prefix))
            .map(|e| {
                let c = e.value();
                (e.key().clone(), ChannelCounts { subscriptions: c.subscriber_count(), users: c.user_count() })
            })
            .filter(|(_, c)| c.subscriptions > 0)
            .collect();
        out.sort_by(|a, b| a.0.cmp(&b.0));
        out
    }

    /// User ids present in a presence channel on this node.
    pub fn presence_users(&self, name: &ChannelName) -> Vec<String> {
        let Some(c) = self.channels.get(name).map(|c| c.value().clone()) else {
            return Vec::new();
        };
        let mut ids: Vec<String> = c.members.lock().keys().map(|k| k.to_string()).collect();
        ids.sort();
        ids
    }

    /// Every channel with its subscriber count, for the admin stats' top channels.
    pub fn channel_sizes(&self) -> HashMap<ChannelName, ChannelCounts> {
        self.channels
            .iter()
            .map(|e| {
                let c = e.value();
                (e.key().clone(), ChannelCounts { subscriptions: c.subscriber_count(), users: c.user_count() })
            })
            .collect()
    }

    /// Connections accepted since start.
    pub fn opened(&self) -> u64 {
        self.opened.load(Ordering::Relaxed)
    }

    /// Connections closed since start.
    pub fn closed(&self) -> u64 {
        self.closed.load(Ordering::Relaxed)
    }

    /// Occupied channels on this node.
    pub fn channel_count(&self) -> usize {
        self.channels.len()
    }

    /// Per-channel figures for the admin stats.
    pub fn channel_stats(&self) -> Vec<rtc_model::ChannelStats> {
        self.channels
            .iter()
            .map(|e| {
                let c = e.value();
                rtc_model::ChannelStats {
                    app: self.config.id.clone(),
                    name: e.key().to_string(),
                    kind: e.key().kind().as_str().to_string(),
                    subscribers: c.subscriber_count() as u64,
                    members: c.user_count() as u64,
                    frames_out: c.frames_out.load(Ordering::Relaxed),
                }
            })
            .collect()
    }

    /// Every live connection handle (for shutdown and drain).
    pub fn connection_handles(&self) -> Vec<Arc<ConnHandle>> {
        self.sockets.iter().map(|e| e.value().clone()).collect()
    }

    /// Whether a socket id is live on this node.
    pub fn has_socket(&self, id: &SocketId) -> bool {
        self.sockets.contains_key(id)
    }

    /// The live connection with this socket id.
    pub fn socket(&self, id: SocketId) -> Option<Arc<ConnHandle>> {
        self.sockets.get(&id).map(|c| c.value().clone())
    }

    /// Sends a message to the other nodes (cluster mode; nothing otherwise).
    pub fn publish_to_cluster(&self, msg: BusMessage) {
        if let Some(c) = &self.cluster {
            c.publish(&self.config.id, msg);
        }
    }
}
