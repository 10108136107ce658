//! The NATS connection, the subscription to the cluster's subjects with the dispatcher
//! of what arrives, and the publisher. The client reconnects by itself and resubscribes
//! on reconnect; while it is disconnected the node is degraded and publishes are
//! dropped (counted), as with Redis.

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use futures_util::StreamExt;
use tokio::sync::mpsc;

use super::Nats;
use crate::cluster::bus;
use crate::port::Inbox;

/// Messages taken per publish batch.
const PUBLISH_BATCH: usize = 256;
/// Messages a subscription holds before the client drops (a slow consumer).
const SUBSCRIPTION_CAPACITY: usize = 65_536;

pub(super) fn spawn(nats: Arc<Nats>, inbox: Arc<dyn Inbox>, publish_rx: mpsc::Receiver<(String, String)>) {
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
        .no_echo()
        .retry_on_initial_connect()
        .connection_timeout(super::NATS_TIMEOUT)
        .request_timeout(Some(super::NATS_TIMEOUT))
        .subscription_capacity(SUBSCRIPTION_CAPACITY)
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

async fn publisher(nats: Arc<Nats>, client: async_nats::Client, mut rx: mpsc::Receiver<(String, String)>) {
    let mut batch = Vec::with_capacity(PUBLISH_BATCH);
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
        nats.publish_bytes.give_back(batch.iter().map(|(_, p)| p.len()).sum());
        if !nats.connected() {
            nats.counters.publish_dropped.fetch_add(n as u64, Ordering::Relaxed);
            continue;
        }
        let mut sent = 0u64;
        for (subject, payload) in batch.drain(..) {
            let r = tokio::time::timeout(super::NATS_TIMEOUT, client.publish(subject, payload.into())).await;
            if matches!(r, Ok(Ok(()))) {
                sent += 1;
            } else {
                nats.counters.publish_dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
        nats.counters.published.fetch_add(sent, Ordering::Relaxed);
    }
}
