//! Cluster-wide answers for the HTTP API's channel queries, read from the shared
//! state (this node's own figures from memory, the other live nodes' from Redis):
//! never by asking the other nodes.

use std::collections::{BTreeMap, BTreeSet};

use super::Cluster;
use crate::protocol::channel::ChannelKind;
use crate::protocol::ChannelName;
use crate::server::app::{App, ChannelCounts};

fn unreachable_err() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "Redis unreachable"))
}

/// Distinct presence users of channels across the live nodes.
async fn users_of(
    cluster: &Cluster,
    app: &App,
    channels: &[ChannelName],
) -> Result<BTreeMap<ChannelName, BTreeSet<String>>, redis::RedisError> {
    let mut out: BTreeMap<ChannelName, BTreeSet<String>> = BTreeMap::new();
    for c in channels {
        out.insert(c.clone(), app.presence_users(c).into_iter().collect());
    }
    let others = cluster.live().other_ids();
    if others.is_empty() || channels.is_empty() {
        return Ok(out);
    }
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let mut pipe = redis::pipe();
    for c in channels {
        for n in &others {
            pipe.hkeys(cluster.keys.presence(&app.config.id, c.as_str(), n));
        }
    }
    let lists: Vec<Vec<String>> = pipe.query_async(&mut con).await?;
    for (i, users) in lists.into_iter().enumerate() {
        if let Some(set) = out.get_mut(&channels[i / others.len()]) {
            set.extend(users);
        }
    }
    Ok(out)
}

/// Subscriptions and users of one channel across the cluster.
///
/// # Errors
/// Redis is unreachable.
pub async fn channel_counts(
    cluster: &Cluster,
    app: &App,
    channel: &ChannelName,
) -> Result<ChannelCounts, redis::RedisError> {
    let local = app.channel_counts(channel);
    let others = cluster.live().other_ids();
    let mut subscriptions = local.subscriptions as u64;
    if !others.is_empty() {
        let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
        let mut pipe = redis::pipe();
        for n in &others {
            pipe.hget(cluster.keys.subs(&app.config.id, n), channel.as_str());
        }
        let counts: Vec<Option<u64>> = pipe.query_async(&mut con).await?;
        subscriptions += counts.into_iter().flatten().sum::<u64>();
    }
    let users = if channel.kind() == ChannelKind::Presence {
        users_of(cluster, app, std::slice::from_ref(channel)).await?.values().next().map_or(0, BTreeSet::len)
    } else {
        0
    };
    Ok(ChannelCounts { subscriptions: subscriptions as usize, users })
}

/// Occupied channels (prefix-filtered) across the cluster, with counts.
///
/// # Errors
/// Redis is unreachable.
pub async fn channels(
    cluster: &Cluster,
    app: &App,
    prefix: &str,
) -> Result<Vec<(ChannelName, ChannelCounts)>, redis::RedisError> {
    let mut subs: BTreeMap<ChannelName, u64> = BTreeMap::new();
    for (name, c) in app.channels(prefix) {
        subs.insert(name, c.subscriptions as u64);
    }
    let others = cluster.live().other_ids();
    if !others.is_empty() {
        let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
        let mut pipe = redis::pipe();
        for n in &others {
            pipe.hgetall(cluster.keys.subs(&app.config.id, n));
        }
        let maps: Vec<Vec<(String, u64)>> = pipe.query_async(&mut con).await?;
        for (name, count) in maps.into_iter().flatten() {
            if !name.starts_with(prefix) || count == 0 {
                continue;
            }
            if let Ok(c) = ChannelName::parse(&name) {
                if c.kind() != ChannelKind::ServerToUser {
                    *subs.entry(c).or_default() += count;
                }
            }
        }
    }
    let presence: Vec<ChannelName> = subs.keys().filter(|c| c.kind() == ChannelKind::Presence).cloned().collect();
    let users = users_of(cluster, app, &presence).await?;
    Ok(subs
        .into_iter()
        .map(|(name, s)| {
            let u = users.get(&name).map_or(0, BTreeSet::len);
            (name, ChannelCounts { subscriptions: s as usize, users: u })
        })
        .collect())
}

/// Presence user ids of a channel across the cluster.
///
/// # Errors
/// Redis is unreachable.
pub async fn presence_users(
    cluster: &Cluster,
    app: &App,
    channel: &ChannelName,
) -> Result<Vec<String>, redis::RedisError> {
    let users = users_of(cluster, app, std::slice::from_ref(channel)).await?;
    Ok(users.into_values().next().unwrap_or_default().into_iter().collect())
}

/// The cached event of a cache channel: (event, data, seconds left).
///
/// # Errors
/// Redis is unreachable.
pub async fn cached(
    cluster: &Cluster,
    app: &App,
    channel: &ChannelName,
) -> Result<Option<(String, String, u64)>, redis::RedisError> {
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let key = cluster.keys.cache(&app.config.id, channel.as_str());
    let (value, ttl): (Option<String>, i64) = redis::pipe().get(&key).ttl(&key).query_async(&mut con).await?;
    Ok(value.and_then(|v| {
        let j: serde_json::Value = serde_json::from_str(&v).ok()?;
        Some((j["event"].as_str()?.to_string(), j["data"].as_str()?.to_string(), ttl.max(0) as u64))
    }))
}

/// Connections of an app across the cluster (others as of their last heartbeat).
pub fn connections(cluster: &Cluster, app: &App) -> u64 {
    app.connection_count() + cluster.live().app_connections(&app.config.id)
}
