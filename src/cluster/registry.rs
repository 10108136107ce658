//! The node registry: every second each node writes its [`NodeStats`] to
//! `rtc:{cluster}:node:{id}` with a TTL and reads everyone else's. A node whose entry
//! has expired is dead: one live node (holding a lock) removes its presence members
//! (`member_removed` cluster-wide), its signed-in users and its counts.
//!
//! The registry also refuses a node id that another live node uses, while letting a
//! restarted node take its own id back, and asks the state task to rewrite this
//! node's state whenever its entry was missing (first start, Redis restart, or an
//! outage long enough to be reaped).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use super::conn::Con;
use rtc_model::NodeStats;
use tokio::time::Instant;

use super::state::Queued;
use super::{Cluster, LiveView, HEARTBEAT};
use crate::port::{Inbox, Outcome};
use crate::protocol::{ChannelKind, ChannelName};

/// How long the reaper lock is held.
const REAP_LOCK_MS: u64 = 30_000;
/// How long the "you were reaped" marker lives.
const REAPED_MARKER_SECS: u64 = 3_600;
/// How long a dead node stays listed in the registry set after it was reaped, so the
/// console can show it as down.
const DEAD_LISTED_SECS: u64 = 600;

fn unix_secs() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

pub(super) fn spawn(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>) {
    let tasks = cluster.tasks.clone();
    tasks.spawn(run(cluster, inbox));
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Claims the node-id lock `KEYS[1]` for boot id `ARGV[1]` for `ARGV[2]` ms when it is
/// free, already ours, or held by `ARGV[3]` (a holder found dead; `''` for none), in
/// one atomic step; returns the holder afterwards (`ARGV[1]` when the claim held).
const CLAIM_ID: &str = r"
local cur = redis.call('GET', KEYS[1])
if (not cur) or cur == ARGV[1] or (ARGV[3] ~= '' and cur == ARGV[3]) then
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
  return ARGV[1]
end
return cur
";

/// Deletes the node-id lock `KEYS[1]` if boot id `ARGV[1]` holds it.
const RELEASE_ID: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
";

/// Removes presence member `ARGV[1]` from a dead node's hash (`KEYS[1]`) and returns 1
/// when no live node's hash (`KEYS[2..]`) has them: they are gone from the channel. One
/// atomic step, like the leave script (`state.rs`), so when the member's last live
/// socket leaves while the reaper works, exactly one of the two sees the last copy go
/// and sends `member_removed`. (Checked first and deleted later, each could see the
/// other's copy and neither send it.) 0 when the hash no longer had the member.
const REAP_MEMBER: &str = r"
if redis.call('HDEL', KEYS[1], ARGV[1]) == 0 then return 0 end
for i = 2, #KEYS do
  if redis.call('HEXISTS', KEYS[i], ARGV[1]) == 1 then return 0 end
end
return 1
";

static REAP_MEMBER_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(REAP_MEMBER));

static CLAIM_ID_SCRIPT: std::sync::LazyLock<redis::Script> = std::sync::LazyLock::new(|| redis::Script::new(CLAIM_ID));
static RELEASE_ID_SCRIPT: std::sync::LazyLock<redis::Script> =
    std::sync::LazyLock::new(|| redis::Script::new(RELEASE_ID));

/// Claims (or refreshes) this process's lock on its node id, taking it over from
/// `dead` if that boot id holds it; returns the holder afterwards.
async fn claim_id(cluster: &Cluster, con: &mut Con, dead: &str) -> Result<String, redis::RedisError> {
    CLAIM_ID_SCRIPT
        .key(cluster.keys.id_lock(&cluster.node_id))
        .arg(&cluster.boot_id)
        .arg(cluster.config.node_ttl.as_millis() as u64)
        .arg(dead)
        .invoke_async(con)
        .await
}

/// Outcome of the node-id check.
enum IdCheck {
    Free,
    /// Our own previous run's entry (restarted process): its state must be reaped.
    Previous(Box<NodeStats>),
    Clash(String),
}

/// How many times a check waits for a lock holder that has not registered yet.
const ID_CHECK_ATTEMPTS: u32 = 3;

/// Whether the process that wrote registry entry `prev` still runs: on this host, its
/// pid; on another, whether its entry keeps being rewritten.
async fn still_alive(
    cluster: &Cluster,
    inbox: &dyn Inbox,
    con: &mut Con,
    prev: &NodeStats,
) -> Result<bool, redis::RedisError> {
    if prev.hostname == inbox.node_stats().hostname {
        return Ok(prev.pid != std::process::id() && pid_alive(prev.pid));
    }
    tokio::time::sleep(HEARTBEAT * 2 + Duration::from_millis(200)).await;
    Ok(matches!(read_entry(cluster, con).await?, Some(now) if now.boot_id == prev.boot_id && now.ts_ms > prev.ts_ms))
}

async fn read_entry(cluster: &Cluster, con: &mut Con) -> Result<Option<NodeStats>, redis::RedisError> {
    let s: Option<String> = redis::cmd("GET").arg(cluster.keys.node(&cluster.node_id)).query_async(con).await?;
    Ok(s.and_then(|s| serde_json::from_str::<NodeStats>(&s).ok()))
}

fn who(prev: &NodeStats) -> String {
    format!("host '{}', pid {}, {}", prev.hostname, prev.pid, prev.advertise_url)
}

/// Refuses a node id that another live process uses. The id is claimed atomically
/// (`SET`-if-free of `idlock:{id}` with this boot id, refreshed by every heartbeat), so
/// two processes starting together cannot both pass; a holder found dead (a crashed or
/// killed previous run) is taken over, and its registry entry reaped.
async fn check_id(cluster: &Cluster, inbox: &dyn Inbox, con: &mut Con) -> Result<IdCheck, redis::RedisError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let holder = claim_id(cluster, con, "").await?;
        let prev = read_entry(cluster, con).await?;
        if holder == cluster.boot_id {
            // Ours. An entry of another boot is a previous run, or a live node that
            // predates the lock (a rolling upgrade): the liveness check tells them apart.
            return Ok(match prev {
                Some(prev) if prev.boot_id != cluster.boot_id => {
                    if still_alive(cluster, inbox, con, &prev).await? {
                        IdCheck::Clash(who(&prev))
                    } else {
                        IdCheck::Previous(Box::new(prev))
                    }
                }
                _ => IdCheck::Free,
            });
        }
        match prev {
            Some(prev) if prev.boot_id == holder => {
                if still_alive(cluster, inbox, con, &prev).await? {
                    return Ok(IdCheck::Clash(who(&prev)));
                }
                // The holder is gone: take its lock over (unless a third process did).
                if claim_id(cluster, con, &holder).await? == cluster.boot_id {
                    return Ok(IdCheck::Previous(Box::new(prev)));
                }
                return Ok(IdCheck::Clash(format!("boot {holder}, which took the id over first")));
            }
            // The holder has not registered yet: it is starting (alive) or died right
            // after claiming (its lock then expires within the registry TTL).
            _ if attempt < ID_CHECK_ATTEMPTS => {
                tokio::time::sleep(cluster.config.node_ttl.max(HEARTBEAT * 2)).await;
            }
            _ => return Ok(IdCheck::Clash(format!("boot {holder}, starting"))),
        }
    }
}

async fn run(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut id_checked = false;
    // Set once another process holds this node's id lock (warned about once).
    let mut id_lost = false;
    let mut healthy = false;
    // No reaping until this node has itself been connected for a full TTL: after a
    // Redis pause every entry expires at once, and nodes must re-register first.
    let mut reap_after = Instant::now() + cluster.config.node_ttl + HEARTBEAT;
    let mut last_seen: std::collections::HashMap<String, NodeStats> = Default::default();
    // When the registry link was lost, for the timeline entry once it is back.
    let mut link_lost_at: Option<Instant> = None;
    loop {
        tokio::select! {
            () = cluster.stop.cancelled() => {
                let departure = inbox.departure();
                super::timeline::record_exit(&cluster, departure.drained, departure.detail).await;
                deregister(&cluster).await;
                return;
            }
            _ = tick.tick() => {}
        }
        let Some(mut con) = cluster.cmd.read().clone() else {
            continue;
        };
        if !id_checked {
            match check_id(&cluster, inbox.as_ref(), &mut con).await {
                Ok(IdCheck::Free) => {
                    super::timeline::record_start(&cluster, &mut con, None).await;
                    id_checked = true;
                }
                Ok(IdCheck::Previous(prev)) => {
                    tracing::info!(node = %cluster.node_id, old_boot = %prev.boot_id, "Taking back this node id from a previous run.");
                    super::timeline::record_start(&cluster, &mut con, Some(&prev)).await;
                    reap(&cluster, inbox.as_ref(), &mut con, &cluster.node_id, &prev.boot_id, true).await;
                    id_checked = true;
                }
                Ok(IdCheck::Clash(who)) => {
                    let clash = super::ClusterError::IdClash(cluster.node_id.clone(), who);
                    tracing::error!("{clash}");
                    inbox.fatal(clash);
                    return;
                }
                Err(_) => continue,
            }
        }
        match heartbeat(&cluster, inbox.as_ref(), &mut con).await {
            Ok((prev_missing, others, dead)) => {
                match claim_id(&cluster, &mut con, "").await {
                    Ok(holder) if holder != cluster.boot_id && !id_lost => {
                        id_lost = true;
                        tracing::error!(node = %cluster.node_id, holder = %holder, "Another process took over this node id (this node was unreachable past the registry TTL).");
                    }
                    _ => {}
                }
                let reconnected = !healthy;
                healthy = true;
                cluster.cmd_ok.store(true, Ordering::Release);
                if let Some(at) = link_lost_at.take() {
                    let detail = format!("registry link restored after {:.1}s", at.elapsed().as_secs_f64());
                    super::timeline::record(&cluster, &mut con, &cluster.node_id, "redis_restored", &detail).await;
                }
                if reconnected {
                    reap_after = reap_after.max(Instant::now() + cluster.config.node_ttl + HEARTBEAT);
                }
                for n in &others {
                    last_seen.insert(n.node_id.clone(), n.clone());
                }
                *cluster.live.write() = LiveView { others };
                if prev_missing {
                    let _: Result<(), _> =
                        redis::cmd("DEL").arg(cluster.keys.reaped_at(&cluster.node_id)).query_async(&mut con).await;
                }
                if prev_missing || reconnected {
                    let marker: bool = redis::cmd("EXISTS")
                        .arg(cluster.keys.reaped(&cluster.node_id, &cluster.boot_id))
                        .query_async(&mut con)
                        .await
                        .unwrap_or(false);
                    cluster.op(Queued::Resync { reannounce: marker });
                }
                if Instant::now() >= reap_after {
                    for id in dead {
                        // Reap once; keep the id listed (the console shows it down) for
                        // DEAD_LISTED_SECS, then forget it.
                        let reaped_at: Option<u64> = redis::cmd("GET")
                            .arg(cluster.keys.reaped_at(&id))
                            .query_async(&mut con)
                            .await
                            .unwrap_or(None);
                        match reaped_at {
                            None => {
                                let boot = last_seen.remove(&id).map(|s| s.boot_id).unwrap_or_default();
                                reap(&cluster, inbox.as_ref(), &mut con, &id, &boot, false).await;
                            }
                            Some(at) if unix_secs().saturating_sub(at) > DEAD_LISTED_SECS => {
                                let _: Result<(), _> = redis::pipe()
                                    .srem(cluster.keys.nodes(), &id)
                                    .del(cluster.keys.reaped_at(&id))
                                    .query_async(&mut con)
                                    .await;
                            }
                            Some(_) => {}
                        }
                    }
                }
            }
            Err(e) => {
                if healthy {
                    tracing::warn!(error = %e, "Registry heartbeat failed; this node is degraded until Redis answers.");
                    link_lost_at.get_or_insert_with(Instant::now);
                }
                healthy = false;
                cluster.cmd_ok.store(false, Ordering::Release);
            }
        }
    }
}

/// Writes this node's entry and reads the others'. Returns whether this node's entry
/// had been missing, the other live nodes, and the ids of dead nodes.
async fn heartbeat(
    cluster: &Cluster,
    inbox: &dyn Inbox,
    con: &mut Con,
) -> Result<(bool, Vec<NodeStats>, Vec<String>), redis::RedisError> {
    let mut snapshot = inbox.node_stats();
    snapshot.registry_sig = registry_sig(&cluster.admin_token, &snapshot);
    let json = serde_json::to_string(&snapshot).unwrap_or_default();
    let ttl_ms = cluster.config.node_ttl.as_millis() as u64;
    let (prev, (), ids): (Option<String>, (), Vec<String>) = redis::pipe()
        .cmd("SET")
        .arg(cluster.keys.node(&cluster.node_id))
        .arg(json)
        .arg("PX")
        .arg(ttl_ms)
        .arg("GET")
        .cmd("SADD")
        .arg(cluster.keys.nodes())
        .arg(&cluster.node_id)
        .ignore()
        .cmd("SMEMBERS")
        .arg(cluster.keys.nodes())
        .query_async(con)
        .await
        .map(|(p, ids): (Option<String>, Vec<String>)| (p, (), ids))?;
    let others: Vec<String> = ids.into_iter().filter(|id| *id != cluster.node_id).collect();
    let mut live = Vec::new();
    let mut dead = Vec::new();
    if !others.is_empty() {
        let keys: Vec<String> = others.iter().map(|id| cluster.keys.node(id)).collect();
        let values: Vec<Option<String>> = redis::cmd("MGET").arg(&keys).query_async(con).await?;
        for (id, v) in others.into_iter().zip(values) {
            match v.and_then(|s| serde_json::from_str::<NodeStats>(&s).ok()) {
                Some(stats) => live.push(stats),
                None => dead.push(id),
            }
        }
    }
    live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    Ok((prev.is_none(), live, dead))
}

/// The text a registry entry's signature covers: its cluster, node id, boot id and
/// advertise URL, each length-prefixed so no field can run into the next. The console
/// (`rtc-console`'s client) builds the same text; `tests/roll_trust.rs` checks that a
/// real node's entry verifies there.
fn registry_signed_text(s: &NodeStats) -> String {
    let mut text = String::from("rtc-registry-v1");
    for field in [&s.cluster, &s.node_id, &s.boot_id, &s.advertise_url] {
        text.push_str(&format!("\n{}:{field}", field.len()));
    }
    text
}

/// Signs a registry entry with the admin token (HMAC-SHA256, hex): the console, which
/// holds the token, sends it only to nodes whose entry verifies.
pub fn registry_sig(admin_token: &crate::secret::Secret, s: &NodeStats) -> String {
    use hmac::{Hmac, Mac};
    let mut mac =
        Hmac::<sha2::Sha256>::new_from_slice(admin_token.expose().as_bytes()).expect("HMAC takes keys of any size");
    mac.update(registry_signed_text(s).as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Removes a dead node's state: presence members no live node still has get
/// `member_removed`, its signed-in users go offline, its counts stop counting.
/// `own` is set when reaping this node's own previous run.
async fn reap(cluster: &Cluster, inbox: &dyn Inbox, con: &mut Con, dead: &str, dead_boot: &str, own: bool) {
    let keys = &cluster.keys;
    let locked: Option<String> = redis::cmd("SET")
        .arg(keys.reap_lock(dead))
        .arg(&cluster.node_id)
        .arg("NX")
        .arg("PX")
        .arg(REAP_LOCK_MS)
        .query_async(con)
        .await
        .unwrap_or(None);
    if locked.is_none() {
        return;
    }
    tracing::info!(node = %dead, "Removing a dead node's state from the cluster.");
    let live: Vec<String> = {
        let mut ids = cluster.live().other_ids();
        ids.retain(|id| id != dead);
        if !own {
            ids.push(cluster.node_id.clone());
        }
        ids
    };
    let index: Vec<String> =
        redis::cmd("SMEMBERS").arg(keys.presence_index(dead)).query_async(con).await.unwrap_or_default();
    let mut removed = 0usize;
    for entry in index {
        let Some((app_id, channel)) = entry.split_once('\n') else {
            continue;
        };
        let dead_key = keys.presence(app_id, channel, dead);
        let users: Vec<String> = redis::cmd("HKEYS").arg(&dead_key).query_async(con).await.unwrap_or_default();
        for user in users {
            let mut inv = REAP_MEMBER_SCRIPT.prepare_invoke();
            inv.key(&dead_key);
            for n in &live {
                inv.key(keys.presence(app_id, channel, n));
            }
            match inv.arg(&user).invoke_async::<i64>(con).await {
                Ok(1) => {}
                Ok(_) => continue,
                Err(e) => {
                    // Leave everything in place: the next reap, once the lock expires,
                    // decides the members still listed instead of dropping them unseen.
                    tracing::warn!(node = %dead, error = %e, "Reaping a dead node failed; retrying later.");
                    return;
                }
            }
            removed += 1;
            if let Ok(channel) = ChannelName::parse(channel) {
                inbox.outcome(Outcome::MemberRemoved { app: app_id.to_string(), channel, user_id: user }).await;
            }
        }
        let _: Result<(), _> = redis::cmd("DEL").arg(&dead_key).query_async(con).await;
    }
    for app in inbox.snapshot() {
        let id = &app.id;
        let users: Vec<String> =
            redis::cmd("HKEYS").arg(keys.online(id, dead)).query_async(con).await.unwrap_or_default();
        for user in users {
            let mut pipe = redis::pipe();
            for n in &live {
                pipe.hexists(keys.online(id, n), &user);
            }
            let present: Vec<bool> =
                if live.is_empty() { Vec::new() } else { pipe.query_async(con).await.unwrap_or_default() };
            if !present.iter().any(|p| *p) {
                inbox.outcome(Outcome::Online { app: id.clone(), user_id: user, online: false }).await;
            }
        }
        if app.occupancy {
            // The dead node's channels that no live node has: vacated (after the delay).
            let channels: Vec<String> =
                redis::cmd("HKEYS").arg(keys.subs(id, dead)).query_async(con).await.unwrap_or_default();
            for channel in channels {
                let mut pipe = redis::pipe();
                for n in &live {
                    pipe.hget(keys.subs(id, n), &channel);
                }
                let counts: Vec<Option<u64>> =
                    if live.is_empty() { Vec::new() } else { pipe.query_async(con).await.unwrap_or_default() };
                if counts.into_iter().flatten().sum::<u64>() == 0 {
                    if let Some(c) = ChannelName::parse(&channel).ok().filter(|c| c.kind() != ChannelKind::ServerToUser)
                    {
                        inbox.outcome(Outcome::Occupancy { app: id.clone(), channel: c, occupied: false }).await;
                    }
                }
            }
        }
        let _: Result<(), _> = redis::pipe().del(keys.online(id, dead)).del(keys.subs(id, dead)).query_async(con).await;
    }
    let mut pipe = redis::pipe();
    pipe.del(keys.presence_index(dead)).ignore();
    if !own {
        pipe.cmd("SET").arg(keys.reaped_at(dead)).arg(unix_secs()).arg("EX").arg(REAPED_MARKER_SECS).ignore();
        if !dead_boot.is_empty() {
            pipe.cmd("SET").arg(keys.reaped(dead, dead_boot)).arg(1).arg("EX").arg(REAPED_MARKER_SECS).ignore();
        }
    }
    pipe.del(keys.reap_lock(dead)).ignore();
    let _: Result<(), _> = pipe.query_async(con).await;
    tracing::info!(node = %dead, members_removed = removed, "Dead node removed.");
    if !own {
        let detail = format!("reaped by {}: {removed} presence members removed", cluster.node_id);
        super::timeline::record(cluster, con, dead, "node_reaped", &detail).await;
    }
}

/// On a clean stop: drop this node's registration at once so it stops counting. Its id
/// stays in the node set, so a live node reaps whatever state is left (normally
/// nothing: the closing sockets' leaves were written first).
async fn deregister(cluster: &Cluster) {
    let Some(mut con) = cluster.cmd.read().clone() else {
        return;
    };
    let _: Result<(), _> = redis::cmd("DEL").arg(cluster.keys.node(&cluster.node_id)).query_async(&mut con).await;
    let _: Result<i64, _> = RELEASE_ID_SCRIPT
        .key(cluster.keys.id_lock(&cluster.node_id))
        .arg(&cluster.boot_id)
        .invoke_async(&mut con)
        .await;
}
