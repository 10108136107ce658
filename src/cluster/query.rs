//! Answers to the HTTP API's channel queries about the other live nodes, read from the
//! shared state in Redis (never by asking the other nodes). The server adds its own
//! figures from memory.

use std::collections::{BTreeMap, BTreeSet};

use super::Cluster;
use crate::port::{Answer, Query};
use crate::protocol::channel::ChannelKind;
use crate::protocol::ChannelName;

fn unreachable_err() -> redis::RedisError {
    redis::RedisError::from((redis::ErrorKind::IoError, "Redis unreachable"))
}

/// Answers `query` from the other live nodes' entries.
///
/// # Errors
/// Redis is unreachable.
pub(super) async fn answer(cluster: &Cluster, query: Query) -> Result<Answer, redis::RedisError> {
    match query {
        Query::Subscriptions { app, channel } => {
            subscriptions(cluster, &app, &channel).await.map(Answer::Subscriptions)
        }
        Query::Channels { app, prefix } => channels(cluster, &app, &prefix).await.map(Answer::Channels),
        Query::Users { app, channels } => users_of(cluster, &app, &channels).await.map(Answer::Users),
        Query::Cached { app, channel } => cached(cluster, &app, &channel).await.map(Answer::Cached),
    }
}

/// Distinct presence users of channels on the other live nodes.
async fn users_of(
    cluster: &Cluster,
    app: &str,
    channels: &[ChannelName],
) -> Result<BTreeMap<ChannelName, BTreeSet<String>>, redis::RedisError> {
    let mut out: BTreeMap<ChannelName, BTreeSet<String>> = BTreeMap::new();
    let others = cluster.live().other_ids();
    if others.is_empty() || channels.is_empty() {
        return Ok(out);
    }
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let mut pipe = redis::pipe();
    for c in channels {
        for n in &others {
            pipe.hkeys(cluster.keys.presence(app, c.as_str(), n));
        }
    }
    let lists: Vec<Vec<String>> = pipe.query_async(&mut con).await?;
    for (i, users) in lists.into_iter().enumerate() {
        out.entry(channels[i / others.len()].clone()).or_default().extend(users);
    }
    Ok(out)
}

/// Subscribers of one channel on the other live nodes.
async fn subscriptions(cluster: &Cluster, app: &str, channel: &ChannelName) -> Result<u64, redis::RedisError> {
    let others = cluster.live().other_ids();
    if others.is_empty() {
        return Ok(0);
    }
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let mut pipe = redis::pipe();
    for n in &others {
        pipe.hget(cluster.keys.subs(app, n), channel.as_str());
    }
    let counts: Vec<Option<u64>> = pipe.query_async(&mut con).await?;
    Ok(counts.into_iter().flatten().sum::<u64>())
}

/// Occupied channels (prefix-filtered, no user channels) on the other live nodes.
async fn channels(cluster: &Cluster, app: &str, prefix: &str) -> Result<BTreeMap<ChannelName, u64>, redis::RedisError> {
    let mut subs: BTreeMap<ChannelName, u64> = BTreeMap::new();
    let others = cluster.live().other_ids();
    if others.is_empty() {
        return Ok(subs);
    }
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let mut pipe = redis::pipe();
    for n in &others {
        pipe.hgetall(cluster.keys.subs(app, n));
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
    Ok(subs)
}

/// The cached event of a cache channel: (event, data, seconds left).
async fn cached(
    cluster: &Cluster,
    app: &str,
    channel: &ChannelName,
) -> Result<Option<(String, String, u64)>, redis::RedisError> {
    let mut con = cluster.cmd().ok_or_else(unreachable_err)?;
    let key = cluster.keys.cache(app, channel.as_str());
    let (value, ttl): (Option<String>, i64) = redis::pipe().get(&key).ttl(&key).query_async(&mut con).await?;
    Ok(value.and_then(|v| {
        let j: serde_json::Value = serde_json::from_str(&v).ok()?;
        Some((j["event"].as_str()?.to_string(), j["data"].as_str()?.to_string(), ttl.max(0) as u64))
    }))
}

/// The cached event of a cache channel, for the state task's replay: (event, data).
pub(super) async fn cached_event(
    cluster: &Cluster,
    app: &str,
    channel: &ChannelName,
) -> Result<Option<(String, String)>, redis::RedisError> {
    Ok(cached(cluster, app, channel).await?.map(|(event, data, _)| (event, data)))
}
