//! Cluster-wide answers for the HTTP API's channel queries: this node's figures from
//! memory plus the other nodes' from the engine ([`Query`]). Standalone, or when the
//! engine cannot answer, the node's own figures.

use std::collections::{BTreeMap, BTreeSet};

use super::app::{App, ChannelCounts};
use super::Node;
use crate::port::{Answer, ClusterPort, Query, Unreachable};
use crate::protocol::channel::ChannelKind;
use crate::protocol::ChannelName;

/// Presence users of `channels` here and on the other nodes.
async fn users_of(
    cluster: &dyn ClusterPort,
    app: &App,
    channels: &[ChannelName],
) -> Result<BTreeMap<ChannelName, BTreeSet<String>>, Unreachable> {
    let mut out: BTreeMap<ChannelName, BTreeSet<String>> = BTreeMap::new();
    for c in channels {
        out.insert(c.clone(), app.presence_users(c).into_iter().collect());
    }
    let query = Query::Users { app: app.config.id.clone(), channels: channels.to_vec() };
    if let Answer::Users(others) = cluster.query(query).await? {
        for (c, users) in others {
            out.entry(c).or_default().extend(users);
        }
    }
    Ok(out)
}

async fn channel_counts(
    cluster: &dyn ClusterPort,
    app: &App,
    channel: &ChannelName,
) -> Result<ChannelCounts, Unreachable> {
    let local = app.channel_counts(channel);
    let query = Query::Subscriptions { app: app.config.id.clone(), channel: channel.clone() };
    let others = match cluster.query(query).await? {
        Answer::Subscriptions(n) => n,
        _ => 0,
    };
    let users = if channel.kind() == ChannelKind::Presence {
        users_of(cluster, app, std::slice::from_ref(channel)).await?.values().next().map_or(0, BTreeSet::len)
    } else {
        0
    };
    Ok(ChannelCounts { subscriptions: local.subscriptions + others as usize, users })
}

async fn channels(
    cluster: &dyn ClusterPort,
    app: &App,
    prefix: &str,
) -> Result<Vec<(ChannelName, ChannelCounts)>, Unreachable> {
    let mut subs: BTreeMap<ChannelName, u64> = BTreeMap::new();
    for (name, c) in app.channels(prefix) {
        subs.insert(name, c.subscriptions as u64);
    }
    let query = Query::Channels { app: app.config.id.clone(), prefix: prefix.to_string() };
    if let Answer::Channels(others) = cluster.query(query).await? {
        for (name, n) in others {
            *subs.entry(name).or_default() += n;
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

impl Node {
    /// Subscriptions and users of one channel (cluster-wide in a cluster; this node's
    /// own if the engine cannot answer).
    pub async fn channel_counts(&self, app: &App, channel: &ChannelName) -> ChannelCounts {
        match &self.cluster {
            Some(c) => channel_counts(c.as_ref(), app, channel).await.unwrap_or_else(|_| app.channel_counts(channel)),
            None => app.channel_counts(channel),
        }
    }

    /// Occupied channels (prefix-filtered) with counts (cluster-wide in a cluster).
    pub async fn channels(&self, app: &App, prefix: &str) -> Vec<(ChannelName, ChannelCounts)> {
        match &self.cluster {
            Some(c) => channels(c.as_ref(), app, prefix).await.unwrap_or_else(|_| app.channels(prefix)),
            None => app.channels(prefix),
        }
    }

    /// Presence user ids of a channel, sorted (cluster-wide in a cluster).
    pub async fn presence_users(&self, app: &App, channel: &ChannelName) -> Vec<String> {
        match &self.cluster {
            Some(c) => match users_of(c.as_ref(), app, std::slice::from_ref(channel)).await {
                Ok(users) => users.into_values().next().unwrap_or_default().into_iter().collect(),
                Err(_) => app.presence_users(channel),
            },
            None => app.presence_users(channel),
        }
    }

    /// The stored event of a cache channel: (event, data, seconds left). In a cluster
    /// the shared store's (none when it cannot be read).
    pub async fn cached(&self, app: &App, channel: &ChannelName) -> Option<(String, String, u64)> {
        match &self.cluster {
            Some(c) => {
                let query = Query::Cached { app: app.config.id.clone(), channel: channel.clone() };
                match c.query(query).await {
                    Ok(Answer::Cached(v)) => v,
                    _ => None,
                }
            }
            None => app.cached(channel).map(|c| {
                let ttl = app.cache_ttl_left(&c);
                (c.event, c.data, ttl)
            }),
        }
    }

    /// Open connections of an app (in a cluster: every node, the others as of their
    /// last heartbeat).
    pub fn app_connections(&self, app: &App) -> u64 {
        let elsewhere = self.cluster.as_ref().map_or(0, |c| c.live().app_connections(&app.config.id));
        app.connection_count() + elsewhere
    }
}
