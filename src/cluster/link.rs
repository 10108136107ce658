//! The node's Redis connections: a command connection (publishes, shared state,
//! registry) and a subscriber connection named `rtc:{cluster}:{node}:sub` so operators
//! can find its output buffer in `CLIENT LIST`. Both reconnect by themselves with a
//! capped backoff; while either is down the node is degraded and serves its own sockets.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use redis::aio::{AsyncPushSender, ConnectionManager, ConnectionManagerConfig, SendError};
use redis::{AsyncConnectionConfig, PushInfo, PushKind, Value};
use tokio::sync::{mpsc, Notify};

use super::bus;
use super::conn::Con;
use super::{Backend, Cluster, Outgoing, RECEIVE_QUEUE, REDIS_TIMEOUT};
use crate::port::Inbox;

/// Longest wait between reconnection attempts.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// How often the subscriber connection is pinged to notice a silent failure.
const SUB_PING: Duration = Duration::from_secs(2);
/// Messages published per pipeline.
const PUBLISH_BATCH: usize = 256;

pub(super) fn spawn(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>, publish_rx: mpsc::Receiver<Outgoing>) {
    let (recv_tx, recv_rx) = mpsc::channel::<Vec<u8>>(RECEIVE_QUEUE);
    let tasks = cluster.tasks.clone();
    match &cluster.backend {
        Backend::Single(client) => {
            tasks.spawn(command_link(cluster.clone(), client.clone()));
            let sub = BusSubscription { cluster: cluster.clone(), client: client.clone(), con: None };
            tasks.spawn(resubscribing(cluster.clone(), recv_tx, sub, "the cluster bus"));
        }
        Backend::Cluster(seeds) => {
            tasks.spawn(cluster_command_link(cluster.clone(), seeds.clone()));
            let sub = super::shard::ShardSubscription::new(cluster.clone(), seeds.clone());
            tasks.spawn(resubscribing(cluster.clone(), recv_tx, sub, "the Redis Cluster's shard channels"));
        }
    }
    tasks.spawn(dispatcher(cluster.clone(), inbox, recv_rx));
    tasks.spawn(publisher(cluster, publish_rx));
}

fn backoff(attempt: u32) -> Duration {
    Duration::from_millis(100u64.saturating_mul(1 << attempt.min(6))).min(MAX_BACKOFF)
}

/// Creates the command connection (retrying until Redis answers); the connection
/// manager then reconnects by itself.
async fn command_link(cluster: Arc<Cluster>, client: redis::Client) {
    let config = ConnectionManagerConfig::new()
        .set_connection_timeout(REDIS_TIMEOUT)
        .set_response_timeout(REDIS_TIMEOUT)
        .set_number_of_retries(1)
        .set_max_delay(MAX_BACKOFF.as_millis() as u64);
    let mut attempt = 0;
    loop {
        let made = tokio::select! {
            () = cluster.stop.cancelled() => return,
            r = ConnectionManager::new_with_config(client.clone(), config.clone()) => r,
        };
        match made {
            Ok(mut con) => {
                let _: Result<(), _> = redis::cmd("CLIENT")
                    .arg("SETNAME")
                    .arg(cluster.keys.cmd_client_name(&cluster.node_id))
                    .query_async(&mut con)
                    .await;
                *cluster.cmd.write() = Some(Con::Single(con));
                cluster.cmd_ok.store(true, Ordering::Release);
                tracing::info!(redis = %cluster.config.redis_url_redacted(), "Connected to the cluster's Redis.");
                return;
            }
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(redis = %cluster.config.redis_url_redacted(), error = %e, "Redis unreachable; serving local sockets only (degraded) and retrying.");
                }
                attempt += 1;
                tokio::select! {
                    () = cluster.stop.cancelled() => return,
                    () = tokio::time::sleep(backoff(attempt)) => {}
                }
            }
        }
    }
}

/// Creates the Redis Cluster command connection (retrying until a seed answers); the
/// cluster client then follows redirections and reconnects by itself.
async fn cluster_command_link(cluster: Arc<Cluster>, seeds: Vec<redis::ConnectionInfo>) {
    let mut attempt = 0;
    loop {
        let made = async {
            redis::cluster::ClusterClientBuilder::new(seeds.clone())
                .use_protocol(redis::ProtocolVersion::RESP3)
                .connection_timeout(REDIS_TIMEOUT)
                .response_timeout(REDIS_TIMEOUT)
                .build()?
                .get_async_connection()
                .await
        };
        let made = tokio::select! {
            () = cluster.stop.cancelled() => return,
            r = made => r,
        };
        match made {
            Ok(con) => {
                *cluster.cmd.write() = Some(Con::Cluster(con));
                cluster.cmd_ok.store(true, Ordering::Release);
                tracing::info!(redis = %cluster.config.redis_url_redacted(), "Connected to the Redis Cluster.");
                return;
            }
            Err(e) => {
                if attempt == 0 {
                    tracing::warn!(redis = %cluster.config.redis_url_redacted(), error = %e, "Redis Cluster unreachable; serving local sockets only (degraded) and retrying.");
                }
                attempt += 1;
                tokio::select! {
                    () = cluster.stop.cancelled() => return,
                    () = tokio::time::sleep(backoff(attempt)) => {}
                }
            }
        }
    }
}

/// Hands pushed pub/sub messages to the dispatcher without blocking the connection;
/// a full queue drops (and counts) the message rather than grow memory.
pub(super) struct Forwarder {
    tx: mpsc::Sender<Vec<u8>>,
    cluster: Arc<Cluster>,
    disconnected: Arc<Notify>,
}

impl Forwarder {
    /// Forwards to `tx`; a lost connection is signalled on `disconnected`.
    pub(super) fn new(tx: mpsc::Sender<Vec<u8>>, cluster: Arc<Cluster>, disconnected: Arc<Notify>) -> Self {
        Forwarder { tx, cluster, disconnected }
    }
}

impl AsyncPushSender for Forwarder {
    fn send(&self, info: PushInfo) -> Result<(), SendError> {
        match info.kind {
            PushKind::Message | PushKind::SMessage => {
                if let Some(Value::BulkString(payload)) = info.data.into_iter().nth(1) {
                    let len = payload.len();
                    if !self.cluster.receive_bytes.try_take(len) {
                        self.cluster.counters.skipped.fetch_add(1, Ordering::Relaxed);
                    } else if self.tx.try_send(payload).is_err() {
                        self.cluster.receive_bytes.give_back(len);
                        self.cluster.counters.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                }
            }
            PushKind::Disconnection => self.disconnected.notify_one(),
            _ => {}
        }
        Ok(())
    }
}

/// A pub/sub subscription the [`resubscribing`] loop keeps up: one Redis's bus channel,
/// or a Redis Cluster's shard channels (`shard`).
pub(super) trait Subscription: Send {
    /// Connects (pushes go to `forwarder`) and subscribes to everything wanted.
    fn connect(&mut self, forwarder: Forwarder) -> impl std::future::Future<Output = redis::RedisResult<()>> + Send;
    /// Completes when what is wanted has changed. Cancel-safe: it only waits, so the
    /// keep-up loop may drop it for a ping or a stop.
    fn changed(&self) -> impl std::future::Future<Output = ()> + Send;
    /// Applies the changes of what is wanted; `false`: the connection failed. Never
    /// raced against anything: a change dropped half-applied (taken from the pending
    /// wishes, its `SSUBSCRIBE` sent but its acknowledgement never recorded) would leave
    /// the channel's new subscribers waiting for a confirmation that never comes.
    fn apply(&mut self) -> impl std::future::Future<Output = bool> + Send;
    /// Pings the connection; `false`: it failed.
    fn ping(&mut self) -> impl std::future::Future<Output = bool> + Send;
    /// Drops the connection.
    fn close(&mut self);
}

/// Keeps `sub` connected and subscribed until the cluster stops: reconnects with a
/// capped backoff when the connection reports a disconnection or a ping fails, and
/// marks the node's bus link down meanwhile. `what` names the subscription in logs.
pub(super) async fn resubscribing(
    cluster: Arc<Cluster>,
    tx: mpsc::Sender<Vec<u8>>,
    mut sub: impl Subscription,
    what: &str,
) {
    let mut attempt: u32 = 0;
    let mut ever_connected = false;
    loop {
        let disconnected = Arc::new(Notify::new());
        let forwarder = Forwarder::new(tx.clone(), cluster.clone(), disconnected.clone());
        let connected = tokio::select! {
            () = cluster.stop.cancelled() => return,
            r = sub.connect(forwarder) => r,
        };
        match connected {
            Ok(()) => {
                attempt = 0;
                if ever_connected {
                    cluster.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                    tracing::info!("Resubscribed to {what}.");
                }
                ever_connected = true;
                cluster.sub_connected.store(true, Ordering::Release);
                let mut ping = tokio::time::interval(SUB_PING);
                loop {
                    tokio::select! {
                        () = cluster.stop.cancelled() => return,
                        () = disconnected.notified() => break,
                        () = sub.changed() => if !sub.apply().await { break },
                        _ = ping.tick() => if !sub.ping().await { break },
                    }
                }
                sub.close();
                cluster.sub_connected.store(false, Ordering::Release);
                // Held local deliveries would now wait for copies that may never come.
                cluster.loopback.release_all();
                tracing::warn!("Lost the subscription to {what}; cross-node delivery paused, reconnecting.");
            }
            Err(e) => {
                if attempt == 0 && ever_connected {
                    tracing::warn!(error = %e, "Cannot resubscribe to {what} yet.");
                }
                attempt += 1;
                tokio::select! {
                    () = cluster.stop.cancelled() => return,
                    () = tokio::time::sleep(backoff(attempt)) => {}
                }
            }
        }
    }
}

/// The one-Redis engine's subscription: the bus channel on a named connection.
struct BusSubscription {
    cluster: Arc<Cluster>,
    client: redis::Client,
    con: Option<redis::aio::MultiplexedConnection>,
}

impl Subscription for BusSubscription {
    async fn connect(&mut self, forwarder: Forwarder) -> redis::RedisResult<()> {
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(REDIS_TIMEOUT)
            .set_response_timeout(REDIS_TIMEOUT)
            .set_push_sender(forwarder);
        let mut con = self.client.get_multiplexed_async_connection_with_config(&config).await?;
        redis::cmd("CLIENT")
            .arg("SETNAME")
            .arg(self.cluster.keys.sub_client_name(&self.cluster.node_id))
            .query_async::<()>(&mut con)
            .await?;
        con.subscribe(self.cluster.keys.bus()).await?;
        self.con = Some(con);
        Ok(())
    }

    async fn changed(&self) {
        std::future::pending().await
    }

    async fn apply(&mut self) -> bool {
        true
    }

    async fn ping(&mut self) -> bool {
        ping(self.con.as_mut()).await
    }

    fn close(&mut self) {
        self.con = None;
    }
}

/// Whether a subscription's connection answers a `PING` (false when there is none).
pub(super) async fn ping<C: redis::aio::ConnectionLike + Send>(con: Option<&mut C>) -> bool {
    match con {
        Some(con) => redis::cmd("PING").query_async::<Value>(con).await.is_ok(),
        None => false,
    }
}

async fn dispatcher(cluster: Arc<Cluster>, inbox: Arc<dyn Inbox>, mut rx: mpsc::Receiver<Vec<u8>>) {
    loop {
        let payload = tokio::select! {
            () = cluster.stop.cancelled() => return,
            p = rx.recv() => match p { Some(p) => p, None => return },
        };
        let arrival = std::time::Instant::now();
        cluster.receive_bytes.give_back(payload.len());
        cluster.receive_backlog.store(rx.len() as u64, Ordering::Relaxed);
        let env = match bus::open(&payload, cluster.config.secret.as_ref()).and_then(bus::decode) {
            Ok(env) => env,
            Err(e) if e.is_unauthenticated() => {
                cluster.counters.unauthenticated.fetch_add(1, Ordering::Relaxed);
                cluster.metrics.bus_unauthenticated.inc();
                tracing::debug!(error = %e, "Dropped an unauthenticated bus message.");
                continue;
            }
            Err(e) => {
                cluster.counters.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "Skipped a bus message.");
                continue;
            }
        };
        if env.origin == cluster.node_id && env.boot == cluster.boot_id {
            // Our own publish: delivered locally already, or now if it was held for
            // this copy (after everything the bus ordered before it).
            if let Some(seq) = env.looped {
                cluster.loopback.release(seq);
            }
            continue;
        }
        cluster.counters.received.fetch_add(1, Ordering::Relaxed);
        let now = rtc_model::unix_ms();
        let lag_ms = now.saturating_sub(env.ts_ms);
        cluster.counters.record_lag(now, lag_ms as f64);
        cluster.metrics.timing.bus_lag.observe(lag_ms as f64 / 1000.0);
        inbox.deliver(&env.app, env.msg, arrival);
        cluster.counters.processed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn publisher(cluster: Arc<Cluster>, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        batch.clear();
        let n = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, PUBLISH_BATCH) => n,
            () = cluster.stop.cancelled() => {
                // Publish what is already queued (the last leaves of a shutdown), then stop.
                rx.close();
                rx.recv_many(&mut batch, PUBLISH_BATCH).await
            }
        };
        if n == 0 {
            return;
        }
        cluster.publish_bytes.give_back(batch.iter().map(|o| o.msg.len()).sum());
        let Some(mut con) = cluster.cmd() else {
            cluster.counters.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
            continue;
        };
        let bus = cluster.keys.bus();
        let published = publish_batch(&mut con, &bus, &batch).await;
        if published.is_ok() {
            for o in &mut batch {
                if let Some(sent) = o.sent.take() {
                    let _ = sent.send(());
                }
            }
        }
        // Dropping the batch resolves the rest of its publishers' confirmations.
        batch.clear();
        match published {
            Ok(()) => {
                cluster.counters.published.fetch_add(n as u64, Ordering::Relaxed);
            }
            Err(e) => {
                cluster.counters.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
                cluster.cmd_ok.store(false, Ordering::Release);
                tracing::warn!(error = %e, dropped = n, "Publishing to the cluster bus failed.");
            }
        }
    }
}

/// Publishes a batch: one pipeline of `PUBLISH` on the one-Redis bus, or on a Redis
/// Cluster one pipeline of `SPUBLISH` per shard channel (a pipeline must stay in one
/// slot), the channels in the order of their first message.
async fn publish_batch(con: &mut Con, bus: &str, batch: &[Outgoing]) -> redis::RedisResult<()> {
    let mut order: Vec<&str> = Vec::new();
    let mut by_channel: std::collections::HashMap<&str, redis::Pipeline> = std::collections::HashMap::new();
    for o in batch {
        let (verb, channel) = match &o.channel {
            Some(c) => ("SPUBLISH", c.as_str()),
            None => ("PUBLISH", bus),
        };
        by_channel
            .entry(channel)
            .or_insert_with(|| {
                order.push(channel);
                redis::pipe()
            })
            .cmd(verb)
            .arg(channel)
            .arg(o.msg.as_bytes())
            .ignore();
    }
    for channel in order {
        if let Some(pipe) = by_channel.get(channel) {
            pipe.query_async::<()>(con).await?;
        }
    }
    Ok(())
}
