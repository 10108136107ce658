//! The NATS connection, the subscription to the cluster's subjects with the dispatcher
//! of what arrives, and the publisher. The client reconnects by itself and resubscribes
//! on reconnect; while it is disconnected the node is degraded and publishes are
//! dropped (counted), as with Redis.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Nats;
use crate::cluster::bus;
use crate::port::{ClusterPort, Inbox};

/// Messages taken per publish batch.
const PUBLISH_BATCH: usize = 256;
/// Messages a subscription holds before the client drops (a slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 65_536;
/// Commands (publishes, requests) the client queues for its connection. This bounds
/// what a stalled server makes the node hold beyond its own publish queue: the client's
/// default (2,048) held 16 MB of 8 KB events while the server was paused.
const CLIENT_CAPACITY: usize = 256;

/// A message waiting for the publisher.
pub(super) struct Outgoing {
    /// Its subject.
    pub(super) subject: String,
    /// The sealed envelope.
    pub(super) payload: String,
    /// Sent to once the message's batch has been handed to the server, dropped unused
    /// if the message was dropped: what [`crate::port::ClusterPort::publish_confirmed`]
    /// waits for.
    pub(super) sent: Option<tokio::sync::oneshot::Sender<()>>,
}

pub(super) fn spawn(nats: Arc<Nats>, inbox: Arc<dyn Inbox>, publish_rx: mpsc::Receiver<Outgoing>) {
    let tasks = nats.tasks.clone();
    tasks.spawn(async move {
        let Some(client) = connect(&nats).await else { return };
        *nats.client.write() = Some(client.clone());
        nats.tasks.spawn(publisher(nats.clone(), client.clone(), publish_rx));
        subscriber(nats, inbox, client).await;
    });
}

/// Connects (retrying in the background until NATS answers).
async fn connect(nats: &Arc<Nats>) -> Option<async_nats::Client> {
    let counters = Arc::downgrade(nats);
    let options = async_nats::ConnectOptions::new()
        .name(nats.client_name())
        .retry_on_initial_connect()
        .connection_timeout(super::NATS_TIMEOUT)
        .request_timeout(Some(super::NATS_TIMEOUT))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
        .client_capacity(CLIENT_CAPACITY)
        .reconnect_delay_callback(|attempt| Duration::from_millis((100 * attempt as u64).min(2_000)))
        .event_callback(move |event| {
            let counters = counters.clone();
            async move {
                let Some(nats) = counters.upgrade() else { return };
                match event {
                    async_nats::Event::Connected => {
                        tracing::info!("Connected to the cluster's NATS.");
                    }
                    async_nats::Event::Disconnected => {
                        nats.counters.reconnects.fetch_add(1, Ordering::Relaxed);
                        // Held local deliveries would wait for copies that may never come.
                        nats.loopback.release_all();
                        tracing::warn!("Lost the cluster's NATS; cross-node delivery paused, reconnecting.");
                    }
                    async_nats::Event::SlowConsumer(_) => {
                        nats.counters.skipped.fetch_add(1, Ordering::Relaxed);
                    }
                    other => tracing::debug!(event = %other, "NATS event."),
                }
            }
        });
    let url = nats.config.redis_url.expose().to_string();
    tokio::select! {
        () = nats.stop.cancelled() => None,
        r = options.connect(url) => match r {
            Ok(c) => Some(c),
            Err(e) => {
                tracing::error!(nats = %nats.config.redis_url_redacted(), error = %e, "Cannot use the NATS URL; serving local sockets only.");
                None
            }
        },
    }
}

async fn subscriber(nats: Arc<Nats>, inbox: Arc<dyn Inbox>, client: async_nats::Client) {
    let mut sub = loop {
        match client.subscribe(nats.subjects.all()).await {
            Ok(s) => break s,
            Err(e) => {
                tracing::warn!(error = %e, "Cannot subscribe to the cluster's subjects yet.");
                tokio::select! {
                    () = nats.stop.cancelled() => return,
                    () = tokio::time::sleep(Duration::from_millis(500)) => {}
                }
            }
        }
    };
    loop {
        let msg = tokio::select! {
            () = nats.stop.cancelled() => return,
            m = sub.next() => match m { Some(m) => m, None => return },
        };
        let arrival = std::time::Instant::now();
        let env = match bus::open(&msg.payload, nats.config.secret.as_ref()).and_then(bus::decode) {
            Ok(env) => env,
            Err(e) if e.is_unauthenticated() => {
                nats.counters.unauthenticated.fetch_add(1, Ordering::Relaxed);
                nats.metrics.bus_unauthenticated.inc();
                tracing::debug!(error = %e, "Dropped an unauthenticated bus message.");
                continue;
            }
            Err(e) => {
                nats.counters.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(error = %e, "Skipped a bus message.");
                continue;
            }
        };
        if env.origin == nats.node_id && env.boot == nats.boot_id {
            // Our own publish (the connection echoes them): delivered locally already,
            // or now if it was held for this copy.
            if let Some(seq) = env.looped {
                nats.loopback.release(seq);
            }
            continue;
        }
        nats.counters.received.fetch_add(1, Ordering::Relaxed);
        let now = rtc_model::unix_ms();
        let lag_ms = now.saturating_sub(env.ts_ms);
        nats.counters.record_lag(now, lag_ms as f64);
        nats.metrics.timing.bus_lag.observe(lag_ms as f64 / 1000.0);
        inbox.deliver(&env.app, env.msg, arrival);
        nats.counters.processed.fetch_add(1, Ordering::Relaxed);
    }
}

async fn publisher(nats: Arc<Nats>, client: async_nats::Client, mut rx: mpsc::Receiver<Outgoing>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
    let stall = Stall::default();
    loop {
        batch.clear();
        let n = tokio::select! {
            biased;
            n = rx.recv_many(&mut batch, PUBLISH_BATCH) => n,
            () = nats.stop.cancelled() => {
                rx.close();
                rx.recv_many(&mut batch, PUBLISH_BATCH).await
            }
        };
        if n == 0 {
            let _ = tokio::time::timeout(super::NATS_TIMEOUT, client.flush()).await;
            return;
        }
        nats.publish_bytes.give_back(batch.iter().map(|o| o.payload.len()).sum());
        // Cut off (no heartbeat answered: `is_degraded`), the API no longer waits for
        // the bus, so what it offers must be dropped at once, as the Redis engine does
        // while its command connection is down, not queued behind a publish waiting out
        // its timeout until the stall is noticed (a paused server filled the 32 MiB
        // queue that way).
        if ClusterPort::is_degraded(nats.as_ref()) || stall.is_stalled(&client) {
            nats.counters.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        let mut sent = 0u64;
        let mut handed = Vec::new();
        for o in batch.iter_mut() {
            let payload = std::mem::take(&mut o.payload);
            let r = tokio::time::timeout(super::NATS_TIMEOUT, client.publish(o.subject.clone(), payload.into())).await;
            if !matches!(r, Ok(Ok(()))) {
                // The client's queue stays full: the server is not reading. Drop the rest
                // of the batch at once instead of waiting for each message in turn.
                break;
            }
            sent += 1;
            handed.extend(o.sent.take());
        }
        nats.counters.publish_dropped.fetch_add(n as u64 - sent, Ordering::Relaxed);
        if sent < n as u64 || (sent > 0 && !round_trip(&client).await) {
            stall.set();
        }
        nats.counters.published.fetch_add(sent, Ordering::Relaxed);
        for s in handed {
            let _ = s.send(());
        }
        // Dropping the batch resolves the rest of its publishers' confirmations.
        batch.clear();
    }
}

/// Waits (bounded) until the server has processed everything this connection sent so
/// far: a request to a subject nobody subscribes to is answered "no responders" by the
/// server itself, after it has routed the publishes before it (a server reads each
/// connection in order). A flush only writes them to the socket. False when the server
/// did not answer in time.
async fn round_trip(client: &async_nats::Client) -> bool {
    let subject = client.new_inbox();
    tokio::time::timeout(super::NATS_TIMEOUT, client.request(subject, bytes::Bytes::new())).await.is_ok()
}

/// A server that stopped answering while the connection stays open (paused, or its
/// link stalled; the client notices a dead connection only at its next ping): the
/// publisher drops what comes meanwhile at once, as the Redis engine does while its
/// command connection is down, instead of waiting out a timeout per batch while the
/// publish queue fills. One probe at a time finds out when the server answers again.
#[derive(Default, Clone)]
struct Stall {
    stalled: Arc<AtomicBool>,
    probing: Arc<AtomicBool>,
}

impl Stall {
    fn set(&self) {
        if !self.stalled.swap(true, Ordering::AcqRel) {
            tracing::warn!("The cluster's NATS does not answer; dropping bus messages until it does.");
        }
    }

    /// Whether to drop; starts a probe when none is running.
    fn is_stalled(&self, client: &async_nats::Client) -> bool {
        if !self.stalled.load(Ordering::Acquire) {
            return false;
        }
        if !self.probing.swap(true, Ordering::AcqRel) {
            let (me, client) = (self.clone(), client.clone());
            tokio::spawn(async move {
                if round_trip(&client).await {
                    me.stalled.store(false, Ordering::Release);
                    tracing::info!("The cluster's NATS answers again.");
                }
                me.probing.store(false, Ordering::Release);
            });
        }
        true
    }
}
