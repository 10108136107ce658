//! `rtc serve`: the node, its listener and its routes.
//!
//! * [`Node`]: everything a node holds (config, apps, metrics, health, shutdown).
//! * `ws`: the WebSocket upgrade at `/app/{key}`; `conn` and `session`: one task per
//!   socket and the protocol logic it runs.
//! * `app`, `channel`: per-app channels, presence, users and fan-out.
//! * `outbox`: the bounded per-socket queue that makes slow readers harmless.
//! * `listen`: the accept loop and HTTP/1.1 connections (header and body timeouts);
//!   `slots`: the connection cap and per-address caps.
//! * `tls`: optional TLS on the listener, handshakes run concurrently and bounded.
//! * `outcome`: the node's side of the cluster port: what it does with what the
//!   engine decides or receives; `query`: cluster-wide answers for the HTTP API.
//!
//! The server never imports an engine, the HTTP API or the admin routes: `serve` picks
//! the engine (a [`ClusterPort`], or none) and assembles the routes.

pub mod app;
pub mod channel;
pub mod conn;
pub mod conn_handle;
pub mod drain;
pub mod fanout;
pub mod health;
pub mod listen;
pub mod outbox;
pub mod outcome;
pub mod presence_view;
pub mod query;
pub mod rate;
pub mod session;
pub mod slots;
pub mod stats;
pub mod tls;
pub mod ws;

use std::collections::HashMap;
use std::future::Future;
use std::sync::Arc;

use axum::Router;
use tokio::net::TcpListener;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::config::ServeConfig;
use crate::metrics::Metrics;
use crate::port::{ClusterError, ClusterPort};
pub use app::App;
pub use health::{Health, NodeState};

/// A frame as queued to sockets: UTF-8 text validated once, shared by every recipient.
pub type Frame = axum::extract::ws::Utf8Bytes;

/// Everything one node holds.
pub struct Node {
    /// Resolved configuration.
    pub config: ServeConfig,
    apps_by_id: HashMap<String, Arc<App>>,
    apps_by_key: HashMap<String, Arc<App>>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Serving / draining state.
    pub health: Health,
    /// Cancelled when the node stops: every socket task watches it.
    pub shutdown: CancellationToken,
    /// Every task the node spawns, so shutdown can wait for them.
    pub tasks: TaskTracker,
    /// When the node started.
    pub started: Instant,
    /// Random id of this process (changes on every restart).
    pub boot_id: String,
    /// CPU, RSS and loop lag, kept current by the samplers.
    pub process: stats::ProcessFigures,
    /// The cluster engine (cluster mode only).
    pub cluster: Option<Arc<dyn ClusterPort>>,
    /// Set when the node had to stop (node-id clash): the reason.
    pub fatal: parking_lot::Mutex<Option<ClusterError>>,
    /// The running drain, if any.
    pub drain: parking_lot::Mutex<Option<Arc<drain::DrainProgress>>>,
    /// Drain state the apps read (presence grace).
    pub drain_signal: Arc<drain::DrainSignal>,
    /// Admission control: new sockets per second.
    pub admission: Option<rate::RateLimiter>,
    /// Admission control: new sockets per second per client address.
    pub admission_per_address: Option<rate::KeyedRateLimiter<std::net::IpAddr>>,
    /// Open connections (the connection cap and per-address caps).
    pub connections: Arc<slots::ConnTable>,
}

impl Node {
    /// Builds a standalone node from a validated config.
    pub fn new(config: ServeConfig) -> Arc<Self> {
        Node::with_cluster(config, crate::secret::random_token(12), Arc::new(Metrics::new()), None)
    }

    /// Builds a node: `boot_id` is this process's random id and `cluster` the engine
    /// (both made by `serve`, which gives the engine the same `metrics`).
    pub fn with_cluster(
        config: ServeConfig,
        boot_id: String,
        metrics: Arc<Metrics>,
        cluster: Option<Arc<dyn ClusterPort>>,
    ) -> Arc<Self> {
        let tasks = TaskTracker::new();
        let mut apps_by_id = HashMap::new();
        let mut apps_by_key = HashMap::new();
        let drain_signal = Arc::new(drain::DrainSignal::default());
        for a in &config.apps {
            let app =
                Arc::new(App::new(a.clone(), metrics.clone(), tasks.clone(), cluster.clone(), drain_signal.clone()));
            apps_by_id.insert(a.id.clone(), app.clone());
            apps_by_key.insert(a.key.clone(), app);
        }
        let admission = rate::RateLimiter::new(config.max_new_connections_per_sec);
        let admission_per_address = rate::KeyedRateLimiter::new(config.edge.max_new_connections_per_address_per_sec);
        // The soft limit as it is now: `rtc serve` raises it before building the node.
        let files = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(soft, _)| soft).unwrap_or(0);
        let connections = listen::connection_table(&config.edge, files);
        Arc::new(Node {
            admission,
            admission_per_address,
            connections,
            config,
            apps_by_id,
            apps_by_key,
            metrics,
            health: Health::new(),
            shutdown: CancellationToken::new(),
            tasks,
            started: Instant::now(),
            boot_id,
            process: stats::ProcessFigures::default(),
            cluster,
            fatal: parking_lot::Mutex::new(None),
            drain: parking_lot::Mutex::new(None),
            drain_signal,
        })
    }

    /// The app with this id.
    pub fn app_by_id(&self, id: &str) -> Option<&Arc<App>> {
        self.apps_by_id.get(id)
    }

    /// The app with this key.
    pub fn app_by_key(&self, key: &str) -> Option<&Arc<App>> {
        self.apps_by_key.get(key)
    }

    /// Every app.
    pub fn apps(&self) -> impl Iterator<Item = &Arc<App>> {
        self.apps_by_id.values()
    }

    /// Whether the node is cut off from its cluster.
    pub fn is_degraded(&self) -> bool {
        self.cluster.as_ref().is_some_and(|c| c.is_degraded())
    }

    /// The URL the console reaches this node at.
    pub fn advertise_url(&self) -> String {
        match &self.config.cluster {
            Some(c) => c.advertise_url.clone(),
            None => {
                let h = if self.config.host == "0.0.0.0" { "127.0.0.1" } else { self.config.host.as_str() };
                let scheme = if self.config.tls.is_some() { "https" } else { "http" };
                format!("{scheme}://{h}:{}", self.config.port)
            }
        }
    }

    /// Cluster bus figures (cluster mode only).
    pub fn pubsub_stats(&self) -> Option<rtc_model::PubSubStats> {
        self.cluster.as_ref().map(|c| c.pubsub_stats())
    }

    /// Drain progress (while draining).
    pub fn drain_stats(&self) -> Option<rtc_model::DrainStats> {
        self.drain.lock().as_ref().map(|d| d.stats(self.connection_count()))
    }

    /// Open sockets on this node, all apps.
    pub fn connection_count(&self) -> u64 {
        self.apps().map(|a| a.connection_count()).sum()
    }
}

/// Longest a cluster node waits for its engine before it accepts anything (see
/// [`until_joined`]).
pub const JOIN_WAIT: std::time::Duration = std::time::Duration::from_secs(5);

/// How often [`until_joined`] looks at the engine.
const JOIN_POLL: std::time::Duration = std::time::Duration::from_millis(5);

/// Waits until `cluster` is connected (bus subscription and shared state), at most
/// [`JOIN_WAIT`] or until `stop`. A node that took sockets or API publishes before
/// then would fan events out to its own sockets only: its subscribers would miss the
/// other nodes' events and its publishes would never reach them, while the API answered
/// 200 (a rolled node restarting under traffic did exactly that). Meanwhile the bound
/// listener holds incoming connections in its backlog. An engine still unreachable at
/// the deadline leaves the node serving degraded, as after losing it later.
async fn until_joined(cluster: &dyn ClusterPort, stop: &CancellationToken) {
    let deadline = Instant::now() + JOIN_WAIT;
    while cluster.is_degraded() {
        if Instant::now() >= deadline {
            tracing::warn!(
                wait_s = JOIN_WAIT.as_secs(),
                "The cluster engine is not reachable yet; serving degraded (this node's sockets only) until it is."
            );
            return;
        }
        tokio::select! {
            () = stop.cancelled() => return,
            () = tokio::time::sleep(JOIN_POLL) => {}
        }
    }
}

/// Serves `routes` on `listener` (over TLS when the config has `tls`) until `shutdown`
/// resolves, then closes every socket and waits (bounded) for their tasks; the cluster
/// engine starts first and stops last.
pub async fn run(
    listener: TcpListener,
    node: Arc<Node>,
    routes: Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    stats::spawn_samplers(&node);
    for app in node.apps() {
        app.webhooks().start(&node.tasks, &node.shutdown);
    }
    if let Some(cluster) = &node.cluster {
        tracing::info!(engine = %cluster.describe(), "Cluster mode.");
        cluster.clone().start(node.clone());
        until_joined(cluster.as_ref(), &node.shutdown).await;
    }
    let stop = node.shutdown.clone();
    if let Some(cap) = node.connections.cap() {
        tracing::info!(
            connection_limit = cap,
            header_timeout_ms = node.config.edge.header_timeout.as_millis() as u64,
            "Connection cap: the oldest idle connection is closed to make room."
        );
    }
    let serve = listen::serve(listener, node.clone(), routes, stop.clone());
    let trigger = {
        let stop = stop.clone();
        async move {
            shutdown.await;
            stop.cancel();
        }
    };
    let trigger = tokio::spawn(trigger);
    serve.await;
    trigger.abort();
    node.tasks.close();
    // Socket tasks see the cancelled token and close their sockets; bound the wait.
    let _ = tokio::time::timeout(std::time::Duration::from_secs(5), node.tasks.wait()).await;
    // Only then stop the cluster tasks, so the closed sockets' leaves are published.
    if let Some(cluster) = &node.cluster {
        cluster.shutdown().await;
    }
    Ok(())
}
