//! The registry over NATS: every second each node puts its [`NodeStats`] at `n.{node}`
//! in the `reg` bucket, whose `max_age` is the node TTL, and lists the others. A node
//! in the `k.{node}` list of the state bucket with no registry entry is dead: the live
//! node that creates its reap marker (`r.{node}.{boot}` in the `once` bucket; exactly
//! one create succeeds) removes it from every presence, count and sign-in key and
//! reports `member_removed` for the users no live node still has.
//!
//! The node-id lock `l.{node}` (same bucket, same expiry) is held by a boot id and
//! refreshed by the heartbeat: a second live process with the same id is refused, a
//! restarted one takes its id back from a dead previous run (whose state it reaps).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rtc_model::NodeStats;
use tokio::time::Instant;

use super::kv::{self, Buckets, KvError};
use super::state::{self, Members, Nodes, Queued, Subs};
use super::{token, Nats, HEARTBEAT};
use crate::port::{ClusterError, Inbox, LiveView, Outcome};
use crate::protocol::ChannelName;

/// How many times a check waits for a lock holder that has not registered yet.
const ID_CHECK_ATTEMPTS: u32 = 3;

fn node_key(node: &str) -> String {
    format!("n.{}", token(node))
}
fn lock_key(node: &str) -> String {
    format!("l.{}", token(node))
}
fn reaped_key(node: &str, boot: &str) -> String {
    format!("r.{}.{}", token(node), token(boot))
}

pub(super) fn spawn(nats: Arc<Nats>, inbox: Arc<dyn Inbox>) {
    let tasks = nats.tasks.clone();
    tasks.spawn(run(nats, inbox));
}

/// A string as the JSON value [`kv::read`] reads back.
fn json_string(s: &str) -> Bytes {
    Bytes::from(serde_json::to_vec(s).unwrap_or_default())
}

fn pid_alive(pid: u32) -> bool {
    std::path::Path::new(&format!("/proc/{pid}")).exists()
}

/// Claims (or keeps) this boot's lock on the node id, taking it from `dead` if that boot
/// holds it; refreshes it when held. Returns the holder.
async fn claim_id(nats: &Nats, kv: &Buckets, dead: &str) -> Result<String, KvError> {
    let me = nats.boot_id.clone();
    let holder = kv::cas(&kv.js, &kv.reg, &lock_key(&nats.node_id), String::is_empty, |cur: &mut String| {
        if cur.is_empty() || *cur == me || (!dead.is_empty() && *cur == dead) {
            cur.clone_from(&me);
        }
        cur.clone()
    })
    .await?;
    if holder == me {
        kv::timed(kv.reg.put(lock_key(&nats.node_id), json_string(&me))).await?;
    }
    Ok(holder)
}

async fn read_entry(kv: &Buckets, node: &str) -> Result<Option<NodeStats>, KvError> {
    Ok(kv::read::<NodeStats>(&kv.reg, &node_key(node)).await?.0)
}

enum IdCheck {
    Free,
    Previous(Box<NodeStats>),
    Clash(String),
}

async fn still_alive(nats: &Nats, inbox: &dyn Inbox, kv: &Buckets, prev: &NodeStats) -> Result<bool, KvError> {
    if prev.hostname == inbox.node_stats().hostname {
        return Ok(prev.pid != std::process::id() && pid_alive(prev.pid));
    }
    tokio::time::sleep(HEARTBEAT * 2 + Duration::from_millis(200)).await;
    Ok(
        matches!(read_entry(kv, &nats.node_id).await?, Some(now) if now.boot_id == prev.boot_id && now.ts_ms > prev.ts_ms),
    )
}

fn who(prev: &NodeStats) -> String {
    format!("host '{}', pid {}, {}", prev.hostname, prev.pid, prev.advertise_url)
}

async fn check_id(nats: &Nats, inbox: &dyn Inbox, kv: &Buckets) -> Result<IdCheck, KvError> {
    let mut attempt = 0;
    loop {
        attempt += 1;
        let holder = claim_id(nats, kv, "").await?;
        let prev = read_entry(kv, &nats.node_id).await?;
        if holder == nats.boot_id {
            return Ok(match prev {
                Some(prev) if prev.boot_id != nats.boot_id => {
                    if still_alive(nats, inbox, kv, &prev).await? {
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
                if still_alive(nats, inbox, kv, &prev).await? {
                    return Ok(IdCheck::Clash(who(&prev)));
                }
                if claim_id(nats, kv, &holder).await? == nats.boot_id {
                    return Ok(IdCheck::Previous(Box::new(prev)));
                }
                return Ok(IdCheck::Clash(format!("boot {holder}, which took the id over first")));
            }
            _ if attempt < ID_CHECK_ATTEMPTS => {
                tracing::info!(node = %nats.node_id, holder = %holder, "This node id is claimed by another boot with no registry entry yet; waiting before checking again.");
                tokio::time::sleep(nats.config.node_ttl.max(HEARTBEAT * 2)).await
            }
            _ => return Ok(IdCheck::Clash(format!("boot {holder}, starting"))),
        }
    }
}

/// Opens the buckets once the connection is up.
async fn buckets(nats: &Nats) -> Option<Buckets> {
    let client = nats.client.read().clone()?;
    if client.connection_state() != async_nats::connection::State::Connected {
        return None;
    }
    let js = async_nats::jetstream::new(client);
    match Buckets::open(&js, &nats.config.name, nats.config.node_ttl).await {
        Ok(b) => Some(b),
        Err(e) => {
            tracing::warn!(error = %e, "Cannot open the cluster's JetStream buckets (is JetStream enabled: nats-server -js?).");
            None
        }
    }
}

async fn run(nats: Arc<Nats>, inbox: Arc<dyn Inbox>) {
    let mut tick = tokio::time::interval(HEARTBEAT);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut id_checked = false;
    let mut id_lost = false;
    let mut healthy = false;
    // A node that never gets healthy says why once (later failures of a healthy node
    // are told as they happen).
    let mut told_first_failure = false;
    let mut reap_after = Instant::now() + nats.config.node_ttl + HEARTBEAT;
    let mut last_seen: std::collections::HashMap<String, String> = Default::default();
    loop {
        tokio::select! {
            () = nats.stop.cancelled() => {
                if let Some(kv) = nats.kv() {
                    let _ = kv::timed(kv.reg.delete(node_key(&nats.node_id))).await;
                    let _ = kv::timed(kv.reg.delete(lock_key(&nats.node_id))).await;
                }
                return;
            }
            _ = tick.tick() => {}
        }
        if !healthy || nats.buckets.read().is_none() {
            match buckets(&nats).await {
                Some(b) => *nats.buckets.write() = Some(b),
                None => {
                    nats.kv_ok.store(false, Ordering::Release);
                    continue;
                }
            }
        }
        let Some(kv) = nats.kv() else {
            healthy = false;
            nats.kv_ok.store(false, Ordering::Release);
            continue;
        };
        if !id_checked {
            match check_id(&nats, inbox.as_ref(), &kv).await {
                Ok(IdCheck::Free) => id_checked = true,
                Ok(IdCheck::Previous(prev)) => {
                    tracing::info!(node = %nats.node_id, old_boot = %prev.boot_id, "Taking back this node id from a previous run.");
                    reap(&nats, inbox.as_ref(), &kv, &nats.node_id, &prev.boot_id, true).await;
                    id_checked = true;
                }
                Ok(IdCheck::Clash(who)) => {
                    let clash = ClusterError::IdClash(nats.node_id.clone(), who);
                    tracing::error!("{clash}");
                    inbox.fatal(clash);
                    return;
                }
                Err(e) => {
                    if !told_first_failure {
                        told_first_failure = true;
                        tracing::warn!(error = %e, "Cannot check this node's id in the registry yet; retrying.");
                    }
                    continue;
                }
            }
        }
        match heartbeat(&nats, inbox.as_ref(), &kv).await {
            Ok((prev_missing, others, dead)) => {
                match claim_id(&nats, &kv, "").await {
                    Ok(holder) if holder != nats.boot_id && !id_lost => {
                        id_lost = true;
                        tracing::error!(node = %nats.node_id, holder = %holder, "Another process took over this node id (this node was unreachable past the registry TTL).");
                    }
                    _ => {}
                }
                let reconnected = !healthy;
                healthy = true;
                nats.kv_ok.store(true, Ordering::Release);
                if reconnected {
                    reap_after = reap_after.max(Instant::now() + nats.config.node_ttl + HEARTBEAT);
                }
                for n in &others {
                    last_seen.insert(n.node_id.clone(), n.boot_id.clone());
                }
                *nats.live.write() = LiveView { others };
                if prev_missing || reconnected {
                    let _ = kv::timed(kv.state.put(state::known_key(&nats.node_id), json_string(&nats.boot_id))).await;
                    let marker = kv.once_exists(&reaped_key(&nats.node_id, &nats.boot_id)).await.unwrap_or(false);
                    nats.op(Queued::Resync { reannounce: marker });
                }
                if Instant::now() >= reap_after {
                    for (id, boot) in dead {
                        let boot = if boot.is_empty() { last_seen.remove(&id).unwrap_or_default() } else { boot };
                        reap(&nats, inbox.as_ref(), &kv, &id, &boot, false).await;
                    }
                }
            }
            Err(e) => {
                if healthy || !told_first_failure {
                    told_first_failure = true;
                    tracing::warn!(error = %e, "Registry heartbeat failed; this node is degraded until NATS answers.");
                }
                healthy = false;
                nats.kv_ok.store(false, Ordering::Release);
            }
        }
    }
}

/// Writes this node's entry and reads the others'. Returns whether this node's entry
/// had been missing, the other live nodes, and the dead nodes (id, boot).
async fn heartbeat(
    nats: &Nats,
    inbox: &dyn Inbox,
    kv: &Buckets,
) -> Result<(bool, Vec<NodeStats>, Vec<(String, String)>), KvError> {
    let mut snapshot = inbox.node_stats();
    snapshot.registry_sig = crate::cluster::registry_sig(&nats.admin_token, &snapshot);
    let json = serde_json::to_vec(&snapshot).unwrap_or_default();
    let prev = kv::timed(kv.reg.entry(node_key(&nats.node_id))).await?;
    let prev_missing = !prev.is_some_and(|e| e.operation == async_nats::jetstream::kv::Operation::Put);
    kv::timed(kv.reg.put(node_key(&nats.node_id), Bytes::from(json))).await?;
    let mut live = Vec::new();
    for key in Buckets::keys(&kv.reg, "n").await? {
        let Some(stats) = kv::read::<NodeStats>(&kv.reg, &key).await?.0 else { continue };
        if stats.node_id != nats.node_id {
            live.push(stats);
        }
    }
    live.sort_by(|a, b| a.node_id.cmp(&b.node_id));
    let mut dead = Vec::new();
    for key in Buckets::keys(&kv.state, "k").await? {
        let Some(id) = key.strip_prefix("k.").and_then(super::untoken) else { continue };
        if id == nats.node_id || live.iter().any(|n| n.node_id == id) {
            continue;
        }
        if let (Some(boot), _) = kv::read::<String>(&kv.state, &key).await.unwrap_or((None, None)) {
            dead.push((id, boot));
        }
    }
    Ok((prev_missing, live, dead))
}

/// Removes dead node `dead` (boot `dead_boot`) from the shared state once per cluster:
/// members no live node still has get `member_removed`, its signed-in users no live node
/// has go offline, its counts stop counting. `own`: this node's previous run.
pub(super) async fn reap(nats: &Nats, inbox: &dyn Inbox, kv: &Buckets, dead: &str, dead_boot: &str, own: bool) {
    match kv.create_once(&reaped_key(dead, dead_boot)).await {
        Ok(true) => {}
        Ok(false) => {
            // Reaped already (by another node): forget it unless it came back.
            if !own {
                forget(kv, dead, dead_boot).await;
            }
            return;
        }
        Err(_) => return,
    }
    tracing::info!(node = %dead, "Removing a dead node's state from the cluster.");
    let mut live = nats.live.read().other_ids();
    live.retain(|id| id != dead);
    if !own {
        live.push(nats.node_id.clone());
    }
    let mut removed = 0usize;
    let listed = async {
        Ok::<_, KvError>((
            Buckets::keys(&kv.state, "p").await?,
            Buckets::keys(&kv.state, "s").await?,
            Buckets::keys(&kv.state, "o").await?,
        ))
    };
    let Ok((p_keys, s_keys, o_keys)) = listed.await else { return };
    for key in p_keys {
        let gone = kv::cas(&kv.js, &kv.state, &key, std::collections::BTreeMap::is_empty, |m: &mut Members| {
            let mut gone = Vec::new();
            m.retain(|user, mem| {
                if mem.n.remove(dead) && !mem.n.iter().any(|n| live.contains(n)) {
                    gone.push(user.clone());
                }
                !mem.n.is_empty()
            });
            gone
        })
        .await
        .unwrap_or_default();
        let Some((app, channel)) = state::split_key(&key) else { continue };
        let Ok(channel) = ChannelName::parse(&channel) else { continue };
        for user_id in gone {
            removed += 1;
            inbox.outcome(Outcome::MemberRemoved { app: app.clone(), channel: channel.clone(), user_id }).await;
        }
    }
    for key in s_keys {
        let _ = kv::cas(&kv.js, &kv.state, &key, std::collections::BTreeMap::is_empty, |m: &mut Subs| {
            m.remove(dead);
        })
        .await;
    }
    for key in o_keys {
        let offline = kv::cas(&kv.js, &kv.state, &key, std::collections::BTreeSet::is_empty, |n: &mut Nodes| {
            n.remove(dead) && !n.iter().any(|x| live.contains(x))
        })
        .await
        .unwrap_or(false);
        if offline {
            if let Some((app, user_id)) = state::split_key(&key) {
                inbox.outcome(Outcome::Online { app, user_id, online: false }).await;
            }
        }
    }
    if !own {
        forget(kv, dead, dead_boot).await;
    }
    tracing::info!(node = %dead, members_removed = removed, "Reaped a dead node.");
}

/// Drops a reaped node from the list of known nodes (unless it registered again with
/// another boot meanwhile).
async fn forget(kv: &Buckets, dead: &str, dead_boot: &str) {
    let _ = kv::cas(&kv.js, &kv.state, &state::known_key(dead), String::is_empty, |boot: &mut String| {
        if boot == dead_boot {
            boot.clear();
        }
    })
    .await;
}
