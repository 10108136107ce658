//! The collector: polls the source every interval and sends immutable
//! [`ClusterSnapshot`]s over an `mpsc` channel (vector top's updater, bottom's
//! collection thread). It owns all I/O; the screen never waits on the network.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{AdminClient, RegistryReader};
use crate::snapshot::{ClusterSnapshot, NodeSample};

/// Where the figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A cluster's registry in Redis.
    Cluster {
        /// Redis URL (may hold a password: never print it unredacted).
        redis_url: String,
        /// Cluster name (the `rtc:{cluster}:` prefix).
        cluster: String,
    },
    /// Standalone nodes' admin endpoints.
    Nodes {
        /// Base URLs, e.g. `http://127.0.0.1:6001`.
        urls: Vec<String>,
    },
}

impl Source {
    /// A short description for headers: `cluster prod`, `2 standalone nodes` or the URL.
    pub fn label(&self) -> String {
        match self {
            Source::Cluster { cluster, .. } => format!("cluster {cluster}"),
            Source::Nodes { urls } if urls.len() == 1 => urls[0].clone(),
            Source::Nodes { urls } => format!("{} standalone nodes", urls.len()),
        }
    }
}

/// Reads one source on demand.
pub struct Collector {
    admin: AdminClient,
    kind: Kind,
}

enum Kind {
    Cluster(RegistryReader),
    /// Each URL with the node id it last reported.
    Nodes(Vec<(String, Option<String>)>),
}

impl Collector {
    /// A collector for `source`, sending `token` to admin endpoints.
    ///
    /// # Errors
    /// A malformed Redis URL or an HTTP stack that cannot start.
    pub fn new(source: &Source, token: Option<String>) -> Result<Self, String> {
        let kind = match source {
            Source::Cluster { redis_url, cluster } => {
                Kind::Cluster(RegistryReader::new(redis_url, cluster)?.verifying(token.clone()))
            }
            Source::Nodes { urls } => Kind::Nodes(urls.iter().map(|u| (u.clone(), None)).collect()),
        };
        Ok(Collector { admin: AdminClient::new(token)?, kind })
    }

    /// The admin client (for drain requests).
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// One poll of every source, bounded by the client timeouts.
    pub async fn collect_once(&mut self) -> ClusterSnapshot {
        match &mut self.kind {
            Kind::Cluster(reader) => {
                let (nodes, redis) = reader.read().await;
                ClusterSnapshot { taken_ms: now_ms(), nodes, redis: Some(redis) }
            }
            Kind::Nodes(urls) => {
                let admin = &self.admin;
                let results = join_all(urls.iter().map(|(u, _)| admin.fetch_stats(u))).await;
                let mut nodes: Vec<NodeSample> = urls
                    .iter_mut()
                    .zip(results)
                    .map(|((url, known_id), r)| {
                        let (stats, problem) = match r {
                            Ok(s) => (Some(s), None),
                            Err(p) => (None, Some(p)),
                        };
                        // The URL names a node until it says its id; a node that then
                        // goes down keeps that id so its row and history stay put.
                        if let Some(s) = stats.as_ref().filter(|s| !s.node_id.is_empty()) {
                            *known_id = Some(s.node_id.clone());
                        }
                        let id = known_id.clone().unwrap_or_else(|| url_label(url));
                        NodeSample { id, url: Some(url.clone()), stats, problem, pubsub_omem: None }
                    })
                    .collect();
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                ClusterSnapshot { taken_ms: now_ms(), nodes, redis: None }
            }
        }
    }
}

/// `http://10.0.0.5:6001/` → `10.0.0.5:6001`: the row label of a `--node`.
pub fn url_label(url: &str) -> String {
    let rest = url.split_once("://").map_or(url, |(_, r)| r);
    rest.trim_end_matches('/').to_string()
}

/// The console's clock, unix milliseconds.
pub fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// Runs `collector` until `tx` is closed: one snapshot at once, then one per interval.
/// A new value on `interval` takes effect immediately and triggers a poll.
pub fn spawn(
    mut collector: Collector,
    mut interval: watch::Receiver<Duration>,
    tx: mpsc::Sender<ClusterSnapshot>,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        loop {
            let snap = collector.collect_once().await;
            if tx.send(snap).await.is_err() {
                return;
            }
            let wait = *interval.borrow_and_update();
            tokio::select! {
                () = tokio::time::sleep(wait) => {}
                changed = interval.changed() => if changed.is_err() { return },
                () = tx.closed() => return,
            }
        }
    })
}
