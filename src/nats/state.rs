//! Shared state in the `state` bucket and the one ordered task that maintains it.
//!
//! Keys (every name segment hex, see [`super::token`]):
//! * `p.{app}.{channel}`: the channel's presence members, user → (info, the nodes
//!   holding the user);
//! * `s.{app}.{channel}`: the channel's subscribers, node → count;
//! * `o.{app}.{user}`: the nodes a user is signed in on;
//! * `c.{app}.{channel}`: a cache channel's last event with its expiry;
//! * `k.{node}`: the nodes ever registered (the reaper's list), → boot id.
//!
//! Every change is a compare-and-set on the key ([`kv::cas`]): a node adds or removes
//! itself and, in the same step, sees whether any other live node holds the user (or
//! how many subscribers the others have), so exactly one node reports each first/last
//! socket anywhere and each occupancy edge. The member cap is checked in the same step.
//! A node listed in a value but not live does not count; the reaper removes it.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use tokio::sync::mpsc;

use super::kv::{self, Buckets, KvError};
use super::{token, untoken, Nats};
use crate::port::{Answer, Inbox, Outcome, Query, StateOp};
use crate::protocol::channel::ChannelKind;
use crate::protocol::{ChannelName, SocketId};

/// Operations taken per batch (subscriber-count updates in a batch are coalesced).
const OPS_BATCH: usize = 512;

/// One presence member: their info and the nodes holding them.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub(super) struct Member {
    /// Raw user info JSON.
    pub i: String,
    /// Node ids.
    pub n: BTreeSet<String>,
}

/// A presence channel's members.
pub(super) type Members = BTreeMap<String, Member>;
/// A channel's subscribers per node.
pub(super) type Subs = BTreeMap<String, u64>;
/// The nodes a user is signed in on.
pub(super) type Nodes = BTreeSet<String>;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
struct Cached {
    event: String,
    data: String,
    until_ms: u64,
}

pub(super) fn presence_key(app: &str, channel: &str) -> String {
    format!("p.{}.{}", token(app), token(channel))
}
pub(super) fn subs_key(app: &str, channel: &str) -> String {
    format!("s.{}.{}", token(app), token(channel))
}
pub(super) fn online_key(app: &str, user: &str) -> String {
    format!("o.{}.{}", token(app), token(user))
}
fn cache_key(app: &str, channel: &str) -> String {
    format!("c.{}.{}", token(app), token(channel))
}
pub(super) fn known_key(node: &str) -> String {
    format!("k.{}", token(node))
}

/// The two names of a `{kind}.{a}.{b}` key.
pub(super) fn split_key(key: &str) -> Option<(String, String)> {
    let mut parts = key.split('.');
    let (_, a, b) = (parts.next()?, parts.next()?, parts.next()?);
    Some((untoken(a)?, untoken(b)?))
}

/// What the state task works through, in order.
pub(super) enum Queued {
    /// An operation submitted by the server.
    Op(StateOp),
    /// Rewrite this node's share of the state (after NATS lost it, or this node was
    /// reaped: then `reannounce` reports members no other node has as added).
    Resync {
        /// Announce members again.
        reannounce: bool,
    },
}

pub(super) fn spawn(nats: Arc<Nats>, inbox: Arc<dyn Inbox>, rx: mpsc::Receiver<Queued>) {
    let tasks = nats.tasks.clone();
    let stop = nats.stop.clone();
    let task = Arc::new(StateTask { nats, inbox });
    tasks.spawn(crate::port::run_batches(rx, stop, OPS_BATCH, move |ops| {
        let task = task.clone();
        async move { task.run_batch(ops).await }
    }));
}

struct StateTask {
    nats: Arc<Nats>,
    inbox: Arc<dyn Inbox>,
}

/// A channel's coalesced count updates in a batch: last, peak, emit.
#[derive(Debug, Clone, Copy)]
struct CountChange {
    local: usize,
    peak: usize,
    emit: bool,
    occupancy: bool,
}

fn unreachable() -> KvError {
    KvError::Nats("NATS unreachable".into())
}

impl StateTask {
    fn kv(&self) -> Result<Buckets, KvError> {
        self.nats.kv().ok_or_else(unreachable)
    }

    fn failed(&self, what: &str, e: &KvError) {
        tracing::warn!(error = %e, "Cluster state update failed ({what}); using local state until NATS answers.");
    }

    async fn run_batch(&self, ops: Vec<Queued>) {
        let mut counts: HashMap<(String, ChannelName), CountChange> = HashMap::new();
        for op in ops {
            let op = match op {
                Queued::Op(op) => op,
                Queued::Resync { reannounce } => {
                    self.resync(reannounce).await;
                    continue;
                }
            };
            match op {
                StateOp::SubsCount { app, channel, local, emit, occupancy } => {
                    let c = counts.entry((app, channel)).or_insert(CountChange { local, peak: 0, emit, occupancy });
                    c.local = local;
                    c.peak = c.peak.max(local);
                    c.emit |= emit;
                }
                StateOp::PresenceJoin { app, channel, user_id, info, socket, local_first, cap } => {
                    self.presence_join(app, channel, &user_id, &info, socket, local_first, cap).await
                }
                StateOp::PresenceLeave { app, channel, user_id, capped } => {
                    self.presence_leave(app, channel, &user_id, capped).await
                }
                StateOp::CacheSet { app, channel, event, data, ttl_secs } => {
                    let cached = Cached { event, data, until_ms: rtc_model::unix_ms() + ttl_secs * 1000 };
                    let value = bytes::Bytes::from(serde_json::to_vec(&cached).unwrap_or_default());
                    let r = match self.kv() {
                        Ok(kv) => kv::timed(kv.state.put(cache_key(&app, channel.as_str()), value)).await.map(|_| ()),
                        Err(e) => Err(e),
                    };
                    if let Err(e) = r {
                        self.failed("cache channel", &e);
                    }
                }
                StateOp::CacheReplay { app, channel, socket } => {
                    let cached = match self.kv() {
                        Ok(kv) => cached(&kv, &app, &channel).await.ok().map(|c| c.map(|(e, d, _)| (e, d))),
                        Err(_) => None,
                    };
                    self.inbox.outcome(Outcome::CacheReplay { app, channel, socket, cached }).await;
                }
                StateOp::OnlineJoin { app, user_id } => self.online(app, user_id, true, false).await,
                StateOp::OnlineLeave { app, user_id } => self.online(app, user_id, false, false).await,
                StateOp::WatchStatus { app, socket, ids } => {
                    let online = match self.kv() {
                        Ok(kv) => {
                            let live = self.nats.live_ids();
                            let mut flags = Vec::with_capacity(ids.len());
                            let mut ok = true;
                            for id in &ids {
                                match kv::read::<Nodes>(&kv.state, &online_key(&app, id)).await {
                                    Ok((v, _)) => flags.push(v.is_some_and(|n| n.iter().any(|n| live.contains(n)))),
                                    Err(e) => {
                                        self.failed("watchlist", &e);
                                        ok = false;
                                        break;
                                    }
                                }
                            }
                            ok.then_some(flags)
                        }
                        Err(_) => None,
                    };
                    self.inbox.outcome(Outcome::WatchStatus { app, socket, ids, online }).await;
                }
            }
        }
        for ((app, channel), change) in counts {
            self.count(app, channel, change).await;
        }
    }

    #[allow(clippy::too_many_arguments)]
    async fn presence_join(
        &self,
        app: String,
        channel: ChannelName,
        user_id: &str,
        info: &str,
        socket: SocketId,
        local_first: bool,
        cap: usize,
    ) {
        let me = self.nats.node_id.clone();
        let live = self.nats.live_ids();
        let key = presence_key(&app, channel.as_str());
        let write = local_first || cap > 0;
        let result = match self.kv() {
            Ok(kv) => {
                kv::cas(&kv.js, &kv.state, &key, BTreeMap::is_empty, |m: &mut Members| {
                    let lives = |mem: &Member| mem.n.iter().any(|n| live.contains(n));
                    let (here, elsewhere) = m
                        .get(user_id)
                        .map(|mem| (mem.n.contains(&me), mem.n.iter().any(|n| *n != me && live.contains(n))))
                        .unwrap_or((false, false));
                    if write {
                        if cap > 0 && !here && !elsewhere && m.values().filter(|mem| lives(mem)).count() >= cap {
                            return None;
                        }
                        let mem = m.entry(user_id.to_string()).or_default();
                        if mem.i.is_empty() || !elsewhere {
                            mem.i = info.to_string();
                        }
                        mem.n.insert(me.clone());
                    }
                    let members: Vec<(String, String)> =
                        m.iter().filter(|(_, mem)| lives(mem)).map(|(u, mem)| (u.clone(), mem.i.clone())).collect();
                    Some((here, elsewhere, members))
                })
                .await
            }
            Err(e) => Err(e),
        };
        let (first, members) = match result {
            Ok(None) => {
                let refused = Outcome::PresenceRefused { app, channel, user_id: user_id.to_string(), socket };
                self.inbox.outcome(refused).await;
                return;
            }
            Ok(Some((here, elsewhere, members))) => (write && !elsewhere && (local_first || !here), Some(members)),
            Err(e) => {
                self.failed("presence join", &e);
                (local_first, None)
            }
        };
        let list = Outcome::MemberList { app: app.clone(), channel: channel.clone(), socket, members };
        self.inbox.outcome(list).await;
        if first {
            let added = Outcome::MemberAdded {
                app,
                channel,
                user_id: user_id.to_string(),
                info: info.to_string(),
                except: Some(socket),
            };
            self.inbox.outcome(added).await;
        }
    }

    async fn presence_leave(&self, app: String, channel: ChannelName, user_id: &str, capped: bool) {
        let me = self.nats.node_id.clone();
        let live = self.nats.live_ids();
        let key = presence_key(&app, channel.as_str());
        let result = match self.kv() {
            Ok(kv) => {
                kv::cas(&kv.js, &kv.state, &key, BTreeMap::is_empty, |m: &mut Members| {
                    let Some(mem) = m.get_mut(user_id) else { return !capped };
                    let had = mem.n.remove(&me);
                    let left = mem.n.iter().any(|n| live.contains(n));
                    if mem.n.is_empty() {
                        m.remove(user_id);
                    }
                    (had || !capped) && !left
                })
                .await
            }
            Err(e) => Err(e),
        };
        let last = result.unwrap_or_else(|e| {
            self.failed("presence leave", &e);
            true
        });
        if last {
            self.inbox.outcome(Outcome::MemberRemoved { app, channel, user_id: user_id.to_string() }).await;
        }
    }

    async fn count(&self, app: String, channel: ChannelName, change: CountChange) {
        let me = self.nats.node_id.clone();
        let live = self.nats.live_ids();
        let key = subs_key(&app, channel.as_str());
        let local = change.local as u64;
        let result = match self.kv() {
            Ok(kv) => {
                kv::cas(&kv.js, &kv.state, &key, BTreeMap::is_empty, |m: &mut Subs| {
                    let old = m.get(&me).copied().unwrap_or(0);
                    let others: u64 = m.iter().filter(|(n, _)| **n != me && live.contains(n)).map(|(_, c)| *c).sum();
                    if local == 0 {
                        m.remove(&me);
                    } else {
                        m.insert(me.clone(), local);
                    }
                    (old, others)
                })
                .await
            }
            Err(e) => Err(e),
        };
        let (before, peak, after) = match result {
            Ok((old, others)) => (old + others, change.peak as u64 + others, local + others),
            Err(e) => {
                self.failed("subscriber counts", &e);
                (local, local, local)
            }
        };
        if change.occupancy {
            let edge = |occupied| Outcome::Occupancy { app: app.clone(), channel: channel.clone(), occupied };
            match (before > 0, peak > 0, after > 0) {
                (false, _, true) => self.inbox.outcome(edge(true)).await,
                (true, _, false) => self.inbox.outcome(edge(false)).await,
                (false, true, false) => {
                    self.inbox.outcome(edge(true)).await;
                    self.inbox.outcome(edge(false)).await;
                }
                _ => {}
            }
        }
        if change.emit {
            self.inbox.outcome(Outcome::SubscriptionCount { app, channel, total: after }).await;
        }
    }

    /// Signs a user in (`join`) or out on this node; reports their first/last socket
    /// anywhere. `quiet_unless_alone`: a resync, reporting only users no other node has.
    async fn online(&self, app: String, user_id: String, join: bool, quiet_unless_alone: bool) {
        let me = self.nats.node_id.clone();
        let live = self.nats.live_ids();
        let key = online_key(&app, &user_id);
        let result = match self.kv() {
            Ok(kv) => {
                kv::cas(&kv.js, &kv.state, &key, BTreeSet::is_empty, |n: &mut Nodes| {
                    let elsewhere = n.iter().any(|x| *x != me && live.contains(x));
                    if join {
                        n.insert(me.clone());
                    } else {
                        n.remove(&me);
                    }
                    !elsewhere
                })
                .await
            }
            Err(e) => Err(e),
        };
        let edge = result.unwrap_or_else(|e| {
            self.failed(if join { "sign-in" } else { "sign-out" }, &e);
            !quiet_unless_alone
        });
        if edge {
            self.inbox.outcome(Outcome::Online { app, user_id, online: join }).await;
        }
    }

    /// Rewrites this node's share of every key from its local state.
    async fn resync(&self, reannounce: bool) {
        let Ok(kv) = self.kv() else { return };
        let me = self.nats.node_id.clone();
        let live = self.nats.live_ids();
        let apps = self.inbox.snapshot();
        let mut presence: BTreeMap<String, BTreeMap<String, String>> = BTreeMap::new();
        let mut subs: BTreeMap<String, u64> = BTreeMap::new();
        let mut online: BTreeSet<String> = BTreeSet::new();
        let mut names: HashMap<String, (String, ChannelName)> = HashMap::new();
        for app in &apps {
            for (channel, members) in &app.presence {
                let key = presence_key(&app.id, channel.as_str());
                names.insert(key.clone(), (app.id.clone(), channel.clone()));
                presence.insert(key, members.iter().cloned().collect());
            }
            for (channel, count) in &app.channel_counts {
                subs.insert(subs_key(&app.id, channel.as_str()), *count as u64);
            }
            for user in &app.online {
                online.insert(online_key(&app.id, user));
            }
        }
        let listed = async {
            Ok::<_, KvError>((
                Buckets::keys(&kv.state, "p").await?,
                Buckets::keys(&kv.state, "s").await?,
                Buckets::keys(&kv.state, "o").await?,
            ))
        };
        let (p_keys, s_keys, o_keys) = match listed.await {
            Ok(k) => k,
            Err(e) => return self.failed("resync", &e),
        };
        let mut added: Vec<(String, ChannelName, String, String)> = Vec::new();
        let p_all: BTreeSet<String> = p_keys.into_iter().chain(presence.keys().cloned()).collect();
        for key in p_all {
            let mine = presence.get(&key).cloned().unwrap_or_default();
            let r = kv::cas(&kv.js, &kv.state, &key, BTreeMap::is_empty, |m: &mut Members| {
                let mut fresh = Vec::new();
                m.retain(|user, mem| {
                    if !mine.contains_key(user) {
                        mem.n.remove(&me);
                    }
                    !mem.n.is_empty()
                });
                for (user, info) in &mine {
                    let mem = m.entry(user.clone()).or_default();
                    let elsewhere = mem.n.iter().any(|n| *n != me && live.contains(n));
                    if !elsewhere {
                        mem.i = info.clone();
                        if !mem.n.contains(&me) {
                            fresh.push((user.clone(), info.clone()));
                        }
                    }
                    mem.n.insert(me.clone());
                }
                fresh
            })
            .await;
            match r {
                Ok(fresh) if reannounce => {
                    if let Some((app, channel)) = names.get(&key) {
                        for (user, info) in fresh {
                            added.push((app.clone(), channel.clone(), user, info));
                        }
                    }
                }
                Ok(_) => {}
                Err(e) => return self.failed("resync", &e),
            }
        }
        let s_all: BTreeSet<String> = s_keys.into_iter().chain(subs.keys().cloned()).collect();
        for key in s_all {
            let n = subs.get(&key).copied().unwrap_or(0);
            let r = kv::cas(&kv.js, &kv.state, &key, BTreeMap::is_empty, |m: &mut Subs| {
                if n == 0 {
                    m.remove(&me);
                } else {
                    m.insert(me.clone(), n);
                }
            })
            .await;
            if let Err(e) = r {
                return self.failed("resync", &e);
            }
        }
        for key in o_keys {
            if online.contains(&key) {
                continue;
            }
            let r = kv::cas(&kv.js, &kv.state, &key, BTreeSet::is_empty, |n: &mut Nodes| {
                n.remove(&me);
            })
            .await;
            if let Err(e) = r {
                return self.failed("resync", &e);
            }
        }
        for (app, channel, user_id, info) in added {
            self.inbox.outcome(Outcome::MemberAdded { app, channel, user_id, info, except: None }).await;
        }
        for app in apps {
            for user in app.online {
                if reannounce {
                    self.online(app.id.clone(), user, true, true).await;
                } else {
                    let r =
                        kv::cas(&kv.js, &kv.state, &online_key(&app.id, &user), BTreeSet::is_empty, |n: &mut Nodes| {
                            n.insert(me.clone());
                        })
                        .await;
                    if let Err(e) = r {
                        return self.failed("resync", &e);
                    }
                }
            }
        }
        tracing::info!(reannounce, "Rewrote this node's cluster state.");
    }
}

/// A cache channel's stored event: (event, data, seconds left).
async fn cached(kv: &Buckets, app: &str, channel: &ChannelName) -> Result<Option<(String, String, u64)>, KvError> {
    let (value, _) = kv::read::<Cached>(&kv.state, &cache_key(app, channel.as_str())).await?;
    let now = rtc_model::unix_ms();
    Ok(value.filter(|c| c.until_ms > now).map(|c| (c.event, c.data, (c.until_ms - now).div_ceil(1000))))
}

/// Answers a query about the nodes `others` from the shared state.
pub(super) async fn answer(kv: &Buckets, others: &[String], query: Query) -> Result<Answer, KvError> {
    let counts = |m: Subs| m.iter().filter(|(n, _)| others.contains(n)).map(|(_, c)| *c).sum::<u64>();
    match query {
        Query::Subscriptions { app, channel } => {
            let (m, _) = kv::read::<Subs>(&kv.state, &subs_key(&app, channel.as_str())).await?;
            Ok(Answer::Subscriptions(m.map(counts).unwrap_or(0)))
        }
        Query::Channels { app, prefix } => {
            let mut out = BTreeMap::new();
            if others.is_empty() {
                return Ok(Answer::Channels(out));
            }
            for key in Buckets::keys(&kv.state, &format!("s.{}", token(&app))).await? {
                let Some((_, name)) = split_key(&key) else { continue };
                if !name.starts_with(&prefix) {
                    continue;
                }
                let Ok(channel) = ChannelName::parse(&name) else { continue };
                if channel.kind() == ChannelKind::ServerToUser {
                    continue;
                }
                let (m, _) = kv::read::<Subs>(&kv.state, &key).await?;
                let n = m.map(counts).unwrap_or(0);
                if n > 0 {
                    out.insert(channel, n);
                }
            }
            Ok(Answer::Channels(out))
        }
        Query::Users { app, channels } => {
            let mut out: BTreeMap<ChannelName, BTreeSet<String>> = BTreeMap::new();
            if others.is_empty() {
                return Ok(Answer::Users(out));
            }
            for channel in channels {
                let (m, _) = kv::read::<Members>(&kv.state, &presence_key(&app, channel.as_str())).await?;
                let users: BTreeSet<String> = m
                    .unwrap_or_default()
                    .into_iter()
                    .filter(|(_, mem)| mem.n.iter().any(|n| others.contains(n)))
                    .map(|(u, _)| u)
                    .collect();
                out.insert(channel, users);
            }
            Ok(Answer::Users(out))
        }
        Query::Cached { app, channel } => cached(kv, &app, &channel).await.map(Answer::Cached),
    }
}
