//! The collector: polls the source every interval and sends immutable
//! [`ClusterSnapshot`]s over an `mpsc` channel (vector top's updater, bottom's
//! collection thread). It owns all I/O; the screen never waits on the network.

use std::path::PathBuf;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use futures_util::future::join_all;
use tokio::sync::{mpsc, watch};
use tokio::task::JoinHandle;

use crate::client::{AdminClient, RegistryReader};
use crate::known::{self, KnownNode, KnownNodes};
use crate::snapshot::{ClusterSnapshot, NodeProblem, NodeSample, RestartMark};

/// How long a noticed restart stays marked on the node's row (and as an info alert).
pub const RESTART_MARK_MS: u64 = 10 * 60 * 1000;

/// Where the figures come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// A cluster's registry, on the engine its URL names (`redis://`,
    /// `redis-cluster://`, `nats://`: see [`crate::registry`]).
    Cluster {
        /// The engine URL, `--bus` or `--redis-url` (may hold a password: never print
        /// it unredacted).
        url: String,
        /// Cluster name (as `rtc serve --cluster`).
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
    /// Every node seen, for polling them directly while Redis is down.
    known: KnownNodes,
    /// The cache file `known` is loaded from and saved to (one-shot commands).
    cache: Option<PathBuf>,
    /// When the current Redis outage began (console clock, unix ms).
    redis_down_since_ms: Option<u64>,
    /// Admin URLs from the command line or config, polled while Redis is down even if
    /// the registry never listed them.
    seeds: Vec<String>,
}

enum Kind {
    Cluster(Box<RegistryReader>),
    /// Each URL with the node id it last reported.
    Nodes(Vec<(String, Option<String>)>),
}

impl Collector {
    /// A collector for `source`, sending `token` to admin endpoints.
    ///
    /// # Errors
    /// A malformed engine URL or an HTTP stack that cannot start.
    pub fn new(source: &Source, token: Option<String>) -> Result<Self, String> {
        let kind = match source {
            Source::Cluster { url, cluster } => {
                Kind::Cluster(Box::new(RegistryReader::new(url, cluster)?.verifying(token.clone())))
            }
            Source::Nodes { urls } => Kind::Nodes(urls.iter().map(|u| (u.clone(), None)).collect()),
        };
        Ok(Collector {
            admin: AdminClient::new(token)?,
            kind,
            known: KnownNodes::default(),
            cache: None,
            redis_down_since_ms: None,
            seeds: Vec::new(),
        })
    }

    /// Admin URLs to poll directly while Redis is down, besides the nodes seen in the
    /// registry (`--node` with a cluster, the cluster table's `nodes`).
    #[must_use]
    pub fn with_seeds(mut self, seeds: &[String]) -> Self {
        self.seeds = seeds.to_vec();
        self
    }

    /// Keeps the nodes seen in the per-cluster cache file ([`known::cache_path`]) as
    /// well as in memory, so that the next run during a Redis outage still knows them.
    /// A `--node` source has no cache (its nodes are on the command line).
    #[must_use]
    pub fn with_cache(mut self, source: &Source) -> Self {
        if let Source::Cluster { url, cluster } = source {
            self.cache = known::cache_path(url, cluster);
            if let Some(p) = &self.cache {
                self.known = KnownNodes::load(p);
            }
        }
        self
    }

    /// The admin client (for drain requests).
    pub fn admin(&self) -> &AdminClient {
        &self.admin
    }

    /// One poll of every source, bounded by the client timeouts; then the nodes seen
    /// are remembered (see [`Self::remember`]).
    pub async fn collect_once(&mut self) -> ClusterSnapshot {
        let mut snap = self.poll().await;
        self.remember(&mut snap);
        snap
    }

    async fn poll(&mut self) -> ClusterSnapshot {
        match &mut self.kind {
            Kind::Cluster(reader) => {
                let started = now_ms();
                let admin = &self.admin;
                let (nodes, mut redis) = if self.redis_down_since_ms.is_some() {
                    // During an outage the nodes are polled while Redis is tried again,
                    // so a silent Redis does not delay the figures.
                    let (read, direct) = tokio::join!(reader.read(), poll_direct(admin, &self.known, &self.seeds));
                    if read.1.error.is_none() {
                        read
                    } else {
                        (direct, read.1)
                    }
                } else {
                    let read = reader.read().await;
                    if read.1.error.is_none() {
                        read
                    } else {
                        (poll_direct(admin, &self.known, &self.seeds).await, read.1)
                    }
                };
                if redis.error.is_some() {
                    redis.down_since_ms = Some(*self.redis_down_since_ms.get_or_insert(started));
                } else {
                    self.redis_down_since_ms = None;
                }
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
                        NodeSample { id, url: Some(url.clone()), stats, problem, ..NodeSample::default() }
                    })
                    .collect();
                nodes.sort_by(|a, b| a.id.cmp(&b.id));
                ClusterSnapshot { taken_ms: now_ms(), nodes, redis: None }
            }
        }
    }
}

impl Collector {
    /// Folds a poll into the set of known nodes and marks the samples with what that
    /// set knew: the URL of a node whose registry entry expired, the buffer an earlier
    /// poll saw, a restart (a new boot id, or uptime that went back). A good registry
    /// read forgets the nodes that left it. One-shot commands save the set to their cache.
    fn remember(&mut self, snap: &mut ClusterSnapshot) {
        let now = snap.taken_ms;
        let before = self.known.clone();
        for sample in &mut snap.nodes {
            let k = self.known.nodes.entry(sample.id.clone()).or_default();
            note_sample(k, sample, now);
        }
        let registry_read = snap.redis.as_ref().is_some_and(|r| r.error.is_none());
        if registry_read {
            self.known.nodes.retain(|id, _| snap.nodes.iter().any(|n| &n.id == id));
        }
        self.known.forget_old(now);
        if let Some(path) = &self.cache {
            if self.known != before {
                self.known.save(path);
            }
        }
    }
}

/// Updates one known node from a sample and marks the sample (see [`Collector::remember`]).
fn note_sample(k: &mut KnownNode, sample: &mut NodeSample, now: u64) {
    sample.omem_before = k.buffer;
    if sample.url.is_none() {
        sample.url.clone_from(&k.url);
    }
    if let Some(s) = &sample.stats {
        let new_boot = !k.boot_id.is_empty() && !s.boot_id.is_empty() && k.boot_id != s.boot_id;
        let uptime_back = k.seen_ms > 0 && s.boot_id.is_empty() && s.uptime_secs < k.uptime_secs;
        if new_boot || uptime_back {
            k.restarted = Some((now, k.boot_id.clone()));
        }
        if !s.advertise_url.is_empty() {
            k.url = Some(s.advertise_url.clone());
        } else if sample.url.is_some() {
            k.url.clone_from(&sample.url);
        }
        k.boot_id.clone_from(&s.boot_id);
        k.uptime_secs = s.uptime_secs;
        k.seen_ms = now;
    } else if k.seen_ms == 0 {
        k.seen_ms = now;
    }
    if let Some(b) = sample.pubsub_omem {
        k.buffer = Some((b, now));
    }
    sample.restart = k
        .restarted
        .as_ref()
        .filter(|(at, _)| now.saturating_sub(*at) < RESTART_MARK_MS)
        .map(|(at, prev)| RestartMark { noticed_ms: *at, previous_boot_id: prev.clone() });
}

/// Polls every known node's admin endpoint, and every seed URL no known node has: the
/// registry cannot be read. A seed is named by the id it reports, else its address.
async fn poll_direct(admin: &AdminClient, known: &KnownNodes, seeds: &[String]) -> Vec<NodeSample> {
    let mut samples = poll_known(admin, known).await;
    let known_urls: Vec<&str> = known.nodes.values().filter_map(|k| k.url.as_deref()).collect();
    let extra: Vec<&String> = seeds.iter().filter(|u| !known_urls.contains(&u.as_str())).collect();
    let polls = extra.iter().map(|url| async move {
        let (stats, problem) = match admin.fetch_stats(url).await {
            Ok(s) => (Some(s), None),
            Err(NodeProblem::Unreachable(e)) => (None, Some(NodeProblem::Unreachable(format!("{url}: {e}")))),
            Err(p) => (None, Some(p)),
        };
        let id =
            stats.as_ref().map(|s| s.node_id.clone()).filter(|id| !id.is_empty()).unwrap_or_else(|| url_label(url));
        NodeSample { id, url: Some((*url).clone()), stats, problem, direct: true, ..NodeSample::default() }
    });
    for s in join_all(polls).await {
        if !samples.iter().any(|k| k.id == s.id) {
            samples.push(s);
        }
    }
    samples.sort_by(|a, b| a.id.cmp(&b.id));
    samples
}

/// Polls every known node's admin endpoint.
async fn poll_known(admin: &AdminClient, known: &KnownNodes) -> Vec<NodeSample> {
    let polls = known.nodes.iter().map(|(id, k)| async move {
        let (stats, problem) = match &k.url {
            Some(url) => match admin.fetch_stats(url).await {
                Ok(s) => (Some(s), None),
                Err(NodeProblem::Unreachable(e)) => (None, Some(NodeProblem::Unreachable(format!("{url}: {e}")))),
                Err(p) => (None, Some(p)),
            },
            None => (None, Some(NodeProblem::Unreachable("no admin URL known (it never reported one)".to_string()))),
        };
        NodeSample { id: id.clone(), url: k.url.clone(), stats, problem, direct: true, ..NodeSample::default() }
    });
    join_all(polls).await
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
