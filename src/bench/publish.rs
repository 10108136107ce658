//! The app backend's side: events published at a steady rate through the signed HTTP
//! API (`POST /apps/{id}/events`), each carrying its send time.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::sync::Semaphore;
use tokio::time::{sleep_until, timeout, Instant};
use tokio_util::task::TaskTracker;

use super::book::event_data;
use super::histogram::{Histogram, Percentiles};
use super::swarm::{Shared, Tally};
use super::target::Target;
use super::BenchError;
use crate::protocol::auth::sign_request;

/// Requests in flight at once. Past it the publisher skips events and says so: the
/// server (or the generator) is not keeping up with the asked rate.
const MAX_IN_FLIGHT: usize = 64;
/// One request's bound.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// The event name every bench event uses.
const EVENT_NAME: &str = "bench-event";

/// What to publish.
#[derive(Debug, Clone)]
pub(crate) struct PublishPlan {
    /// Events per second.
    pub rate: f64,
    /// Events in all (bounded by the event book's capacity).
    pub count: usize,
    /// Channels, used round-robin; event `i` goes to channel `i % len`.
    pub channels: Vec<String>,
    /// Bytes of data per event.
    pub payload: usize,
}

/// How publishing went.
#[derive(Debug, Clone, serde::Serialize)]
pub(crate) struct PublishOutcome {
    /// Events asked per second.
    pub rate_target: f64,
    /// Requests sent per second.
    pub rate_achieved: f64,
    /// Requests sent.
    pub attempted: u64,
    /// Requests answered 2xx.
    pub accepted: u64,
    /// Requests refused or failed.
    pub failed: u64,
    /// Events not sent because `MAX_IN_FLIGHT` requests were pending.
    pub skipped: u64,
    /// Why requests failed.
    pub failures: BTreeMap<String, u64>,
    /// Round trip of each request.
    pub request_latency: Percentiles,
    /// Seconds spent publishing.
    pub seconds: f64,
}

#[derive(Debug)]
struct Counters {
    accepted: AtomicU64,
    failed: AtomicU64,
    failures: Tally,
    latency: Histogram,
}

/// Publishes `plan` until it is done, `until` passes or the run is cancelled; then waits
/// (bounded) for the requests still in flight.
///
/// # Errors
/// The HTTP client cannot be built.
pub(crate) async fn publish(
    shared: &Arc<Shared>,
    target: &Arc<Target>,
    plan: PublishPlan,
    until: Instant,
) -> Result<PublishOutcome, BenchError> {
    let client = reqwest::Client::builder()
        .pool_max_idle_per_host(MAX_IN_FLIGHT)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(BenchError::HttpClient)?;
    let Some(book) = shared.events.as_ref() else {
        return Err(BenchError::NoEventBook);
    };
    let counters = Arc::new(Counters {
        accepted: AtomicU64::new(0),
        failed: AtomicU64::new(0),
        failures: Tally::default(),
        latency: Histogram::new(),
    });
    let permits = Arc::new(Semaphore::new(MAX_IN_FLIGHT));
    let tasks = TaskTracker::new();
    let mut seqs = vec![0u32; plan.channels.len().max(1)];
    let (mut attempted, mut skipped) = (0u64, 0u64);
    let path = target.events_path();
    let start = Instant::now();
    for id in 0..plan.count.min(book.capacity()) {
        let at = start + Duration::from_secs_f64(id as f64 / plan.rate);
        if at >= until {
            break;
        }
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            () = sleep_until(at) => {}
        }
        let Ok(permit) = permits.clone().try_acquire_owned() else {
            skipped += 1;
            continue;
        };
        let ch = id % plan.channels.len().max(1);
        let seq = seqs[ch];
        seqs[ch] += 1;
        let sent = Instant::now();
        let data = event_data(shared.micros_at(sent), seq, id, plan.payload);
        let body = serde_json::json!({ "name": EVENT_NAME, "channels": [plan.channels[ch]], "data": data }).to_string();
        book.start(id, ch);
        attempted += 1;
        let (client, shared, target, counters, path) =
            (client.clone(), shared.clone(), target.clone(), counters.clone(), path.clone());
        tasks.spawn(async move {
            let unix = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
            let query = sign_request(&target.key, &target.secret, "POST", &path, body.as_bytes(), unix, &[]);
            let url = format!("{}{path}?{query}", target.http_base);
            let result = client.post(url).header("content-type", "application/json").body(body).send().await;
            counters.latency.record(sent.elapsed());
            let ok = match result {
                Ok(r) if r.status().is_success() => true,
                Ok(r) => {
                    counters.failures.add(format!("HTTP {}", r.status()));
                    false
                }
                Err(e) if e.is_timeout() => {
                    counters.failures.add("request timed out");
                    false
                }
                Err(e) if e.is_connect() => {
                    counters.failures.add("connect failed");
                    false
                }
                Err(_) => {
                    counters.failures.add("request failed");
                    false
                }
            };
            let counter = if ok { &counters.accepted } else { &counters.failed };
            counter.fetch_add(1, Ordering::Relaxed);
            if let Some(book) = shared.events.as_ref() {
                book.finish(id, ok, shared.now_us());
            }
            drop(permit);
        });
    }
    // The last event owns one period of the schedule too.
    let seconds = start.elapsed().as_secs_f64() + 1.0 / plan.rate;
    tasks.close();
    let _ = timeout(REQUEST_TIMEOUT, tasks.wait()).await;
    Ok(PublishOutcome {
        rate_target: plan.rate,
        rate_achieved: if seconds > 0.0 { attempted as f64 / seconds } else { 0.0 },
        attempted,
        accepted: counters.accepted.load(Ordering::Relaxed),
        failed: counters.failed.load(Ordering::Relaxed),
        skipped,
        failures: counters.failures.snapshot(),
        request_latency: counters.latency.percentiles(),
        seconds,
    })
}
