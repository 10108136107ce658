//! Shared state in Redis, written by each node for itself and read across the live
//! nodes, and the one ordered task that maintains it.
//!
//! Per node: `subs:{app}:{node}` (channel → local subscribers), `pres:{app}:{channel}:{node}`
//! (user → info), `online:{app}:{node}` (signed-in users), and `presidx:{node}`. A user
//! is a presence member while any live node lists them; the join/leave scripts update
//! this node's entry and look at the others' in one atomic step, so exactly one node
//! sees "first socket anywhere" and exactly one sees "last socket anywhere".
//!
//! A presence channel's member cap (`max_presence_members`) is checked in the same join
//! script, so it holds cluster-wide: the script counts the distinct users across the
//! live nodes' hashes and refuses a new user when the cap is reached; the state task
//! then reports the refusal ([`Outcome::PresenceRefused`]) and the server undoes the
//! socket's local subscription and sends it the presence-full error.
//! Over-admission is bounded: the script is atomic, so concurrent joins cannot both
//! take the last place; what it cannot see is a node that this node does not yet list
//! as live (its members are missed for at most a heartbeat) and joins decided while
//! Redis is unreachable (each node then applies the cap to its own members only).
//!
//! Operations run in order on one task, so the Redis round trips never sit on a
//! socket's path; what they decide goes to the server's [`Inbox`] as [`Outcome`]s, in
//! the same order. When Redis is unreachable they fall back to local decisions (the node
//! is degraded), and the next heartbeat rewrites this node's state.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::sync::Arc;

use super::conn::Con;
use tokio::sync::mpsc;

use super::Cluster;
use crate::port::{Inbox, Outcome, StateOp};
use crate::protocol::{ChannelName, SocketId};

/// Operations taken per batch (subscriber-count updates in a batch are coalesced).
const OPS_BATCH: usize = 512;

/// Adds `ARGV[1]` (info `ARGV[2]`) to this node's hash `KEYS[1]` and returns
/// `1 * (another live node's hash, KEYS[2..], has it) + 2 * (this node's had it)`.
/// With a cap `ARGV[3]` > 0, a user no hash has yet is refused (-1, nothing written)
/// when the hashes already hold `cap` distinct users (counted exactly only when the
/// sum of their sizes reaches the cap).
const JOIN: &str = r"
local here = redis.call('HEXISTS', KEYS[1], ARGV[1])
local elsewhere = 0
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then
    elsewhere = 1
    break
  end
end
local cap = tonumber(ARGV[3] or '0')
if cap > 0 and here == 0 and elsewhere == 0 then
  local total = 0
  for i = 1, #KEYS do total = total + redis.call('HLEN', KEYS[i]) end
  if total >= cap then
    local seen, n = {}, 0
    for i = 1, #KEYS do
      for _, id in ipairs(redis.call('HKEYS', KEYS[i])) do
        if not seen[id] then
          seen[id] = true
          n = n + 1
        end
      end
    end
    if n >= cap then return -1 end
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return elsewhere + 2 * here
";

/// Removes `ARGV[1]` from this node's hash; returns {1 when no other live node has
/// it (the last socket anywhere), entries left in this node's hash}. With `ARGV[2]`
/// = 1 a member this node's hash did not have is never the last (a join the cap
/// refused, left before the refusal was applied).
const LEAVE: &str = r"
local had = redis.call('HDEL', KEYS[1], ARGV[1])
local left = redis.call('HLEN', KEYS[1])
if had == 0 and ARGV[2] == '1' then return {0, left} end
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then return {0, left} end
end
return {1, left}
";

/// Sets this node's subscriber count of each channel (`ARGV`: channel, count, …) in
/// `KEYS[1]` and returns, per channel, this node's previous count and the sum over the
/// other live nodes (`KEYS[2..]`), in one atomic step: each cluster-wide 0 → n and
/// n → 0 change is then seen by exactly one node (for `channel_occupied`/`vacated`).
const COUNTS: &str = r"
local out = {}
for j = 1, #ARGV, 2 do
  local ch = ARGV[j]
  local n = tonumber(ARGV[j + 1])
  local old = tonumber(redis.call('HGET', KEYS[1], ch) or '0')
  if n == 0 then redis.call('HDEL', KEYS[1], ch) else redis.call('HSET', KEYS[1], ch, n) end
  local others = 0
  for i = 2, #KEYS do
    others = others + tonumber(redis.call('HGET', KEYS[i], ch) or '0')
  end
  out[#out + 1] = old
  out[#out + 1] = others
end
return out
";

static JOIN_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(JOIN));
static COUNTS_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(COUNTS));
static LEAVE_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(LEAVE));

/// What the join script did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Joined {
    /// The member cap was reached: not added.
    Refused,
    /// Added (or already there).
    In {
        /// This node's hash had the user already.
        here: bool,
        /// Another live node's hash has the user.
        elsewhere: bool,
    },
}

/// What the state task works through, in order: the server's operations and the
/// registry's requests to rewrite this node's state.
pub(super) enum Queued {
    /// An operation submitted by the server.
    Op(StateOp),
    /// Rewrite this node's whole state (after Redis lost it or this node was reaped);
    /// `reannounce` reports member/online edges for users no other node has.
    Resync {
        /// Announce members again (this node had been reaped).
        reannounce: bool,
    },
}

pub(super) fn spawn(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>, rx: mpsc::Receiver<Queued>) {
    let tasks = cluster.tasks.clone();
    let stop = cluster.stop.clone();
    let task = Arc::new(StateTask { cluster, inbox });
    tasks.spawn(crate::port::run_batches(rx, stop, OPS_BATCH, move |ops| {
        let task = task.clone();
        async move { task.run_batch(ops).await }
    }));
}

struct StateTask {
    cluster: Arc<Cluster>,
    inbox: Arc<dyn Inbox>,
}

/// A channel's subscriber-count updates in one batch, coalesced: the last count, the
/// highest one on the way and whether any asked for `subscription_count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct CountChange {
    /// Local subscribers after the batch.
    local: usize,
    /// The most local subscribers any update of the batch reported: a subscribe and an
    /// unsubscribe coalesced into "0 → 0" still took the channel through 1.
    peak: usize,
    /// Send `subscription_count`.
    emit: bool,
}

impl CountChange {
    fn new(local: usize, emit: bool) -> Self {
        CountChange { local, peak: local, emit }
    }

    /// A later update of the same channel in the batch.
    fn update(&mut self, local: usize, emit: bool) {
        self.local = local;
        self.peak = self.peak.max(local);
        self.emit |= emit;
    }
}

/// The occupancy webhooks a node sends for a channel whose cluster-wide subscriber
/// count went from `before` through at most `peak` to `after` in one batch (`peak`
/// counts the other nodes too).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Occupancy {
    /// No edge (or a vacate-and-return, which the vacate delay swallows anyway).
    Unchanged,
    /// 0 → n: `channel_occupied`.
    Occupied,
    /// n → 0: `channel_vacated` (after the delay).
    Vacated,
    /// 0 → n → 0 within the batch: `channel_occupied` now and `channel_vacated` after
    /// the delay, as a single node sends for a quick subscribe and unsubscribe.
    OccupiedThenVacated,
}

impl Occupancy {
    fn of(before: u64, peak: u64, after: u64) -> Self {
        match (before > 0, peak > 0, after > 0) {
            (false, _, true) => Occupancy::Occupied,
            (true, _, false) => Occupancy::Vacated,
            (false, true, false) => Occupancy::OccupiedThenVacated,
            // Still empty, or occupied throughout (a dip to 0 and back within the batch is
            // a departure its return cancels: a single node sends neither).
            _ => Occupancy::Unchanged,
        }
    }
}

/// Count changes by (app, channel), with whether the app tracks occupancy.
type Counts = HashMap<(String, ChannelName), (bool, CountChange)>;

impl StateTask {
    fn con(&self) -> Option<Con> {
        self.cluster.cmd()
    }

    fn failed(&self, what: &str, e: &redis::RedisError) {
        tracing::warn!(error = %e, "Cluster state update failed ({what}); using local state until Redis answers.");
    }

    async fn run_batch(&self, ops: Vec<Queued>) {
        let mut counts: Counts = HashMap::new();
        for op in ops {
            let op = match op {
                Queued::Op(op) => op,
                Queued::Resync { reannounce } => {
                    self.resync(reannounce).await;
                    continue;
                }
            };
            match op {
                StateOp::SubsCount { app, channel, local, emit, occupancy } => match counts.entry((app, channel)) {
                    std::collections::hash_map::Entry::Occupied(mut e) => e.get_mut().1.update(local, emit),
                    std::collections::hash_map::Entry::Vacant(e) => {
                        e.insert((occupancy, CountChange::new(local, emit)));
                    }
                },
                StateOp::PresenceJoin { app, channel, user_id, info, socket, local_first, cap } => {
                    self.presence_join(app, channel, &user_id, &info, socket, local_first, cap).await
                }
                StateOp::PresenceLeave { app, channel, user_id, capped } => {
                    self.presence_leave(app, channel, &user_id, capped).await
                }
                StateOp::CacheSet { app, channel, event, data, ttl_secs } => {
                    self.cache_set(&app, &channel, &event, &data, ttl_secs).await
                }
                StateOp::CacheReplay { app, channel, socket } => self.cache_replay(app, channel, socket).await,
                StateOp::OnlineJoin { app, user_id } => self.online_join(app, user_id).await,
                StateOp::OnlineLeave { app, user_id } => self.online_leave(app, user_id).await,
                StateOp::WatchStatus { app, socket, ids } => self.watch_status(app, socket, ids).await,
            }
        }
        if !counts.is_empty() {
            self.flush_counts(counts).await;
        }
    }

    /// This node's key and the other live nodes' keys for a per-node structure.
    fn keys_for(&self, key: impl Fn(&str) -> String) -> Vec<String> {
        let mut keys = vec![key(&self.cluster.node_id)];
        keys.extend(self.cluster.live().other_ids().iter().map(|id| key(id)));
        keys
    }

    /// Runs [`JOIN`]; `cap` 0 = no member cap.
    async fn join_script(
        &self,
        keys: &[String],
        member: &str,
        value: &str,
        cap: usize,
    ) -> Result<Joined, redis::RedisError> {
        let Some(mut con) = self.con() else {
            return Err(unreachable_err());
        };
        let mut inv = JOIN_SCRIPT.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        let r: i64 = inv.arg(member).arg(value).arg(cap).invoke_async(&mut con).await?;
        Ok(if r < 0 { Joined::Refused } else { Joined::In { here: r & 2 != 0, elsewhere: r & 1 != 0 } })
    }

    /// Runs [`LEAVE`]; `strict`: a member not in this node's hash is not the last.
    async fn leave_script(
        &self,
        keys: &[String],
        member: &str,
        strict: bool,
    ) -> Result<(bool, i64), redis::RedisError> {
        let Some(mut con) = self.con() else {
            return Err(unreachable_err());
        };
        let mut inv = LEAVE_SCRIPT.prepare_invoke();
        for k in keys {
            inv.key(k);
        }
        let (last, left): (i64, i64) = inv.arg(member).arg(u8::from(strict)).invoke_async(&mut con).await?;
        Ok((last == 1, left))
    }

    /// Every member of a presence channel across the live nodes (first info wins).
    async fn members(&self, app: &str, channel: &ChannelName) -> Result<Vec<(String, String)>, redis::RedisError> {
        let Some(mut con) = self.con() else {
            return Err(unreachable_err());
        };
        let keys = self.keys_for(|n| self.cluster.keys.presence(app, channel.as_str(), n));
        let mut pipe = redis::pipe();
        for k in &keys {
            pipe.hgetall(k);
        }
        let maps: Vec<Vec<(String, String)>> = pipe.query_async(&mut con).await?;
        let mut seen = std::collections::HashSet::new();
        let mut out = Vec::new();
        for m in maps {
            for (id, info) in m {
                if seen.insert(id.clone()) {
                    out.push((id, info));
                }
            }
        }
        Ok(out)
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
        let keys = self.keys_for(|n| self.cluster.keys.presence(&app, channel.as_str(), n));
        // With a cap every join goes through the script: a second socket of a user whose
        // first join was refused must not slip in unannounced.
        let cluster_first = if local_first || cap > 0 {
            match self.join_script(&keys, user_id, info, cap).await {
                Ok(Joined::Refused) => {
                    let refused = Outcome::PresenceRefused { app, channel, user_id: user_id.to_string(), socket };
                    self.inbox.outcome(refused).await;
                    return;
                }
                Ok(Joined::In { here, elsewhere }) => {
                    if let Some(mut con) = self.con() {
                        let idx = format!("{app}\n{channel}");
                        let _: Result<(), _> = redis::cmd("SADD")
                            .arg(self.cluster.keys.presence_index(&self.cluster.node_id))
                            .arg(idx)
                            .query_async(&mut con)
                            .await;
                    }
                    // A first local socket is the first anywhere unless another node has
                    // the user; a later one only if even this node's hash lacked it.
                    !elsewhere && (local_first || !here)
                }
                Err(e) => {
                    self.failed("presence join", &e);
                    local_first
                }
            }
        } else {
            false
        };
        let members = match self.members(&app, &channel).await {
            Ok(m) => Some(m),
            Err(e) => {
                self.failed("presence members", &e);
                None
            }
        };
        let list = Outcome::MemberList { app: app.clone(), channel: channel.clone(), socket, members };
        self.inbox.outcome(list).await;
        if cluster_first {
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
        let keys = self.keys_for(|n| self.cluster.keys.presence(&app, channel.as_str(), n));
        let last = match self.leave_script(&keys, user_id, capped).await {
            Ok((last, left)) => {
                if left == 0 {
                    if let Some(mut con) = self.con() {
                        let idx = format!("{app}\n{channel}");
                        let _: Result<(), _> = redis::cmd("SREM")
                            .arg(self.cluster.keys.presence_index(&self.cluster.node_id))
                            .arg(idx)
                            .query_async(&mut con)
                            .await;
                    }
                }
                last
            }
            Err(e) => {
                self.failed("presence leave", &e);
                true
            }
        };
        if last {
            self.inbox.outcome(Outcome::MemberRemoved { app, channel, user_id: user_id.to_string() }).await;
        }
    }

    async fn flush_counts(&self, counts: Counts) {
        // Apps with occupancy webhooks need cluster-wide edges: the atomic script.
        let (tracked, counts): (Counts, Counts) = counts.into_iter().partition(|(_, (occupancy, _))| *occupancy);
        if !tracked.is_empty() {
            self.flush_tracked_counts(tracked).await;
        }
        let me = self.cluster.node_id.clone();
        if let Some(mut con) = self.con() {
            let mut pipe = redis::pipe();
            for ((app_id, channel), (_, change)) in &counts {
                let key = self.cluster.keys.subs(app_id, &me);
                if change.local == 0 {
                    pipe.hdel(key, channel.as_str()).ignore();
                } else {
                    pipe.hset(key, channel.as_str(), change.local).ignore();
                }
            }
            if let Err(e) = pipe.query_async::<()>(&mut con).await {
                self.failed("subscriber counts", &e);
            }
        }
        for ((app, channel), (_, change)) in counts {
            if !change.emit {
                continue;
            }
            let total = change.local as u64 + self.other_subs(&app, &channel).await;
            self.inbox.outcome(Outcome::SubscriptionCount { app, channel, total }).await;
        }
    }

    /// Writes the counts of apps with occupancy webhooks through [`COUNTS`] and reports
    /// the cluster-wide edges this node caused, including a 0 → n → 0 that one batch
    /// coalesced into 0 → 0 (see [`Occupancy`]). Without Redis no edge is known and
    /// none is reported (the node is degraded).
    async fn flush_tracked_counts(&self, counts: Counts) {
        let mut by_app: HashMap<String, Vec<(ChannelName, CountChange)>> = HashMap::new();
        for ((app_id, channel), (_, change)) in counts {
            by_app.entry(app_id).or_default().push((channel, change));
        }
        for (app, rows) in by_app {
            let keys = self.keys_for(|n| self.cluster.keys.subs(&app, n));
            let result = match self.con() {
                Some(mut con) => {
                    let mut inv = COUNTS_SCRIPT.prepare_invoke();
                    for k in &keys {
                        inv.key(k);
                    }
                    for (channel, change) in &rows {
                        inv.arg(channel.as_str()).arg(change.local);
                    }
                    inv.invoke_async::<Vec<u64>>(&mut con).await
                }
                None => Err(unreachable_err()),
            };
            let pairs = match result {
                Ok(v) if v.len() == rows.len() * 2 => Some(v),
                Ok(_) => None,
                Err(e) => {
                    self.failed("subscriber counts", &e);
                    None
                }
            };
            for (i, (channel, change)) in rows.into_iter().enumerate() {
                let (local, peak) = (change.local as u64, change.peak as u64);
                let (before, peak, after) = match &pairs {
                    Some(v) => (v[2 * i] + v[2 * i + 1], peak + v[2 * i + 1], local + v[2 * i + 1]),
                    None => (local, local, local),
                };
                let edge = |occupied| Outcome::Occupancy { app: app.clone(), channel: channel.clone(), occupied };
                match Occupancy::of(before, peak, after) {
                    Occupancy::Unchanged => {}
                    Occupancy::Occupied => self.inbox.outcome(edge(true)).await,
                    Occupancy::Vacated => self.inbox.outcome(edge(false)).await,
                    Occupancy::OccupiedThenVacated => {
                        // Two claims' round trips: the arrival must take a pending
                        // departure's claim before this departure sets its own, or a
                        // departure firing meanwhile would be sent twice.
                        self.inbox.outcome(edge(true)).await;
                        self.inbox.outcome(edge(false)).await;
                    }
                }
                if change.emit {
                    let total = Outcome::SubscriptionCount { app: app.clone(), channel, total: after };
                    self.inbox.outcome(total).await;
                }
            }
        }
    }

    /// Subscribers of a channel on the other live nodes.
    async fn other_subs(&self, app: &str, channel: &ChannelName) -> u64 {
        let others = self.cluster.live().other_ids();
        if others.is_empty() {
            return 0;
        }
        let Some(mut con) = self.con() else { return 0 };
        let mut pipe = redis::pipe();
        for id in &others {
            pipe.hget(self.cluster.keys.subs(app, id), channel.as_str());
        }
        let counts: Vec<Option<u64>> = pipe.query_async(&mut con).await.unwrap_or_default();
        counts.into_iter().flatten().sum()
    }

    async fn cache_set(&self, app: &str, channel: &ChannelName, event: &str, data: &str, ttl_secs: u64) {
        let Some(mut con) = self.con() else { return };
        let value = serde_json::json!({"event": event, "data": data}).to_string();
        let r: Result<(), _> = redis::cmd("SET")
            .arg(self.cluster.keys.cache(app, channel.as_str()))
            .arg(value)
            .arg("EX")
            .arg(ttl_secs)
            .query_async(&mut con)
            .await;
        if let Err(e) = r {
            self.failed("cache channel", &e);
        }
    }

    async fn cache_replay(&self, app: String, channel: ChannelName, socket: SocketId) {
        let cached = super::query::cached_event(&self.cluster, &app, &channel).await.ok();
        self.inbox.outcome(Outcome::CacheReplay { app, channel, socket, cached }).await;
    }

    async fn online_join(&self, app: String, user_id: String) {
        let keys = self.keys_for(|n| self.cluster.keys.online(&app, n));
        let first = match self.join_script(&keys, &user_id, "1", 0).await {
            Ok(j) => matches!(j, Joined::In { elsewhere: false, .. }),
            Err(e) => {
                self.failed("sign-in", &e);
                true
            }
        };
        if first {
            self.inbox.outcome(Outcome::Online { app, user_id, online: true }).await;
        }
    }

    async fn online_leave(&self, app: String, user_id: String) {
        let keys = self.keys_for(|n| self.cluster.keys.online(&app, n));
        let last = match self.leave_script(&keys, &user_id, false).await {
            Ok((last, _)) => last,
            Err(e) => {
                self.failed("sign-out", &e);
                true
            }
        };
        if last {
            self.inbox.outcome(Outcome::Online { app, user_id, online: false }).await;
        }
    }

    async fn watch_status(&self, app: String, socket: SocketId, ids: Vec<String>) {
        let online: Option<Vec<bool>> = match self.con() {
            Some(mut con) => {
                let keys = self.keys_for(|n| self.cluster.keys.online(&app, n));
                let mut pipe = redis::pipe();
                for id in &ids {
                    for k in &keys {
                        pipe.hexists(k, id);
                    }
                }
                match pipe.query_async::<Vec<bool>>(&mut con).await {
                    Ok(flags) => Some(flags.chunks(keys.len().max(1)).map(|c| c.iter().any(|b| *b)).collect()),
                    Err(e) => {
                        self.failed("watchlist", &e);
                        None
                    }
                }
            }
            None => None,
        };
        self.inbox.outcome(Outcome::WatchStatus { app, socket, ids, online }).await;
    }

    /// Rewrites this node's entries from its local state.
    async fn resync(&self, reannounce: bool) {
        let Some(mut con) = self.con() else { return };
        let me = self.cluster.node_id.clone();
        let keys = &self.cluster.keys;
        let apps = self.inbox.snapshot();
        // Drop what this node had written, then write what it has now.
        let old_index: Vec<String> =
            redis::cmd("SMEMBERS").arg(keys.presence_index(&me)).query_async(&mut con).await.unwrap_or_default();
        let mut pipe = redis::pipe();
        for entry in &old_index {
            if let Some((app, channel)) = entry.split_once('\n') {
                pipe.del(keys.presence(app, channel, &me)).ignore();
            }
        }
        pipe.del(keys.presence_index(&me)).ignore();
        for app in &apps {
            let id = &app.id;
            pipe.del(keys.subs(id, &me)).ignore();
            pipe.del(keys.online(id, &me)).ignore();
            for (channel, count) in &app.channel_counts {
                pipe.hset(keys.subs(id, &me), channel.as_str(), count).ignore();
            }
            if !reannounce {
                for (channel, members) in &app.presence {
                    for (user, info) in members {
                        pipe.hset(keys.presence(id, channel.as_str(), &me), user, info).ignore();
                    }
                    pipe.sadd(keys.presence_index(&me), format!("{id}\n{channel}")).ignore();
                }
                for user in &app.online {
                    pipe.hset(keys.online(id, &me), user, "1").ignore();
                }
            }
        }
        if let Err(e) = pipe.query_async::<()>(&mut con).await {
            self.failed("resync", &e);
            return;
        }
        if reannounce {
            // Announce again what the reaper removed, as if these users had just joined.
            for app in apps {
                for (channel, members) in app.presence {
                    let keys_for = self.keys_for(|n| keys.presence(&app.id, channel.as_str(), n));
                    for (user, info) in members {
                        if let Ok(Joined::In { elsewhere: false, .. }) =
                            self.join_script(&keys_for, &user, &info, 0).await
                        {
                            let added = Outcome::MemberAdded {
                                app: app.id.clone(),
                                channel: channel.clone(),
                                user_id: user,
                                info,
                                except: None,
                            };
                            self.inbox.outcome(added).await;
                        }
                    }
                    let _: Result<(), _> = redis::cmd("SADD")
                        .arg(keys.presence_index(&me))
                        .arg(format!("{}\n{}", app.id, channel))
                        .query_async(&mut con)
                        .await;
                }
                for user in app.online {
                    self.online_join(app.id.clone(), user).await;
                }
            }
        }
        self.cluster.cmd_ok.store(true, Ordering::Release);
        tracing::info!(reannounce, "Rewrote this node's cluster state.");
    }
}

fn unreachable_err() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "Redis unreachable"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The coalesced change of a sequence of local counts, and the webhooks a node with
    /// `old` subscribers stored and `others` on the other nodes sends for it.
    fn occupancy(old: u64, others: u64, updates: &[usize]) -> Occupancy {
        let (first, rest) = updates.split_first().expect("an update");
        let mut c = CountChange::new(*first, false);
        for u in rest {
            c.update(*u, false);
        }
        Occupancy::of(old + others, c.peak as u64 + others, c.local as u64 + others)
    }

    #[test]
    fn a_subscribe_and_unsubscribe_in_one_batch_still_occupy_then_vacate_an_empty_channel() {
        assert_eq!(occupancy(0, 0, &[1, 0]), Occupancy::OccupiedThenVacated);
        assert_eq!(occupancy(0, 0, &[1, 2, 1, 0, 1, 0]), Occupancy::OccupiedThenVacated);
        // Somebody else keeps it occupied: no edge.
        assert_eq!(occupancy(0, 1, &[1, 0]), Occupancy::Unchanged);
    }

    #[test]
    fn a_batch_sends_what_a_single_node_would_for_the_same_changes() {
        assert_eq!(occupancy(0, 0, &[1]), Occupancy::Occupied);
        assert_eq!(occupancy(0, 0, &[1, 0, 1]), Occupancy::Occupied, "the quick return swallows the vacate");
        assert_eq!(occupancy(1, 0, &[0]), Occupancy::Vacated);
        assert_eq!(occupancy(1, 0, &[0, 1, 0]), Occupancy::Vacated);
        assert_eq!(occupancy(1, 0, &[0, 1]), Occupancy::Unchanged, "left and came back within the delay");
        assert_eq!(occupancy(2, 0, &[1, 3]), Occupancy::Unchanged);
        assert_eq!(occupancy(0, 0, &[0]), Occupancy::Unchanged);
    }

    #[test]
    fn coalescing_keeps_the_last_count_the_peak_and_any_emit() {
        let mut c = CountChange::new(1, false);
        c.update(3, true);
        c.update(0, false);
        assert_eq!(c, CountChange { local: 0, peak: 3, emit: true });
    }
}
