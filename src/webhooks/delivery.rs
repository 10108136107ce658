//! Delivery to one endpoint: a bounded queue drained by one task that batches events
//! and POSTs them in order; a failed POST is retried by its own task with capped,
//! jittered exponential backoff for up to the app's retry window, so a slow or failing
//! endpoint never holds up the events behind it for long.
//!
//! Memory per endpoint is bounded by [`QUEUE`] queued events plus [`RETRY_SLOTS`]
//! retried bodies of at most [`BATCH_MAX`] events each. Past those, events are dropped
//! and counted (`rtc_webhook_events_dropped_total{kind=…}`), with one warning per
//! [`DROP_LOG_EVERY`] at most, giving the count; the socket path never waits.
//!
//! The last [`MEMBER_RESERVE`] places of the queue take only `member_added` and
//! `member_removed`, so a storm of other events (occupancy, counts, client events)
//! cannot crowd out the member events: the queue keeps one order for all of them.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::event::{self, WebhookEvent};
use crate::config::webhook::shown_url;
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Events waiting per endpoint before new ones are dropped.
pub const QUEUE: usize = 4_096;
/// Places of [`QUEUE`] only member events may take.
pub const MEMBER_RESERVE: usize = 1_024;
/// At most one "webhook events dropped" warning per endpoint this often.
pub const DROP_LOG_EVERY: Duration = Duration::from_secs(10);
/// Most events in one POST when batching.
pub const BATCH_MAX: usize = 50;
/// How long a batch collects events after its first one.
pub const BATCH_WINDOW: Duration = Duration::from_millis(50);
/// Timeout of one POST (connect, send, response).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Failed batches being retried at once per endpoint; a failure past this is dropped.
pub const RETRY_SLOTS: usize = 32;
/// First retry after about this long (jittered to between half and all of it).
const RETRY_BASE: Duration = Duration::from_secs(1);
/// Longest wait between two retries.
const RETRY_MAX: Duration = Duration::from_secs(60);
/// At shutdown: the budget for the in-flight POST, then again for the queued events.
pub const FLUSH_TIMEOUT: Duration = Duration::from_millis(1500);
/// At shutdown the queue is considered drained once it stays empty this long.
const FLUSH_IDLE: Duration = Duration::from_millis(250);
/// Response bytes read (and discarded) so the connection can be reused.
const MAX_RESPONSE_BYTES: usize = 64 * 1024;

/// Why a POST failed. Never carries the URL (it may hold a token).
#[derive(Debug, thiserror::Error)]
pub enum PostError {
    /// The endpoint answered, but not with 2xx.
    #[error("HTTP status {0}")]
    Status(u16),
    /// No complete answer within the timeout.
    #[error("timed out")]
    Timeout,
    /// Connection or protocol failure.
    #[error("request failed: {0}")]
    Transport(#[source] reqwest::Error),
}

/// One endpoint of one app.
pub struct Endpoint {
    url: reqwest::Url,
    /// The URL for logs: scheme, host and port only.
    shown: String,
    http: reqwest::Client,
    key: String,
    secret: Secret,
    batch: bool,
    retry_for: Duration,
    retry_slots: Arc<Semaphore>,
    metrics: Arc<Metrics>,
    failing: AtomicBool,
    drops: DropLog,
}

/// Dropped events not yet reported in a warning, and when the last warning went out.
struct DropLog {
    unreported: AtomicU64,
    last: parking_lot::Mutex<Option<Instant>>,
}

/// Why a [`Queue::push`] failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PushError {
    /// No room (for this kind of event).
    Full,
    /// The delivery task has stopped.
    Closed,
}

/// The sending side of an endpoint's queue: order-preserving, bounded at [`QUEUE`]
/// events of which the last [`MEMBER_RESERVE`] are kept for member events.
pub struct Queue {
    tx: mpsc::UnboundedSender<Arc<WebhookEvent>>,
    len: Arc<AtomicUsize>,
}

/// The receiving side of a [`Queue`].
pub struct QueueRx {
    rx: mpsc::UnboundedReceiver<Arc<WebhookEvent>>,
    len: Arc<AtomicUsize>,
}

/// A new endpoint queue.
pub fn queue() -> (Queue, QueueRx) {
    let (tx, rx) = mpsc::unbounded_channel();
    let len = Arc::new(AtomicUsize::new(0));
    (Queue { tx, len: len.clone() }, QueueRx { rx, len })
}

impl Queue {
    /// Queues an event if there is room for its kind; never waits.
    ///
    /// # Errors
    /// [`PushError::Full`] past the event's share of the queue, [`PushError::Closed`]
    /// once the delivery task has gone.
    pub fn push(&self, event: Arc<WebhookEvent>) -> Result<(), PushError> {
        let limit = if event.name.is_member() { QUEUE } else { QUEUE - MEMBER_RESERVE };
        let before = self.len.fetch_add(1, Ordering::AcqRel);
        if before >= limit {
            self.len.fetch_sub(1, Ordering::AcqRel);
            return Err(PushError::Full);
        }
        self.tx.send(event).map_err(|_| {
            self.len.fetch_sub(1, Ordering::AcqRel);
            PushError::Closed
        })
    }
}

impl QueueRx {
    async fn recv_many(&mut self, into: &mut Vec<Arc<WebhookEvent>>, max: usize) -> usize {
        let n = self.rx.recv_many(into, max).await;
        self.len.fetch_sub(n, Ordering::AcqRel);
        n
    }

    fn close(&mut self) {
        self.rx.close();
    }

    fn try_recv(&mut self) -> bool {
        let got = self.rx.try_recv().is_ok();
        if got {
            self.len.fetch_sub(1, Ordering::AcqRel);
        }
        got
    }
}

/// Capped exponential backoff before retry number `attempt` (1-based), with jitter
/// (between half and all of the step) so many nodes do not retry in step.
fn backoff(attempt: u32) -> Duration {
    use rand::Rng;
    let step = RETRY_BASE.saturating_mul(1 << attempt.saturating_sub(1).min(16)).min(RETRY_MAX);
    let ms = step.as_millis() as u64;
    Duration::from_millis(rand::thread_rng().gen_range(ms / 2..=ms))
}

impl Endpoint {
    /// An endpoint; `http` is shared by the app's endpoints.
    pub fn new(
        url: reqwest::Url,
        http: reqwest::Client,
        key: &str,
        secret: &Secret,
        batch: bool,
        retry_for: Duration,
        metrics: Arc<Metrics>,
    ) -> Self {
        Endpoint {
            shown: shown_url(&url),
            url,
            http,
            key: key.to_string(),
            secret: secret.clone(),
            batch,
            retry_for,
            retry_slots: Arc::new(Semaphore::new(RETRY_SLOTS)),
            metrics,
            failing: AtomicBool::new(false),
            drops: DropLog { unreported: AtomicU64::new(0), last: parking_lot::Mutex::new(None) },
        }
    }

    fn delivered(&self, n: u64) {
        self.metrics.webhook_events_sent.inc_by(n);
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(endpoint = %self.shown, "Webhook endpoint answers again.");
        }
        self.report_drops(false);
    }

    fn attempt_failed(&self, e: &PostError) {
        self.metrics.webhook_attempts_failed.inc();
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(endpoint = %self.shown, error = %e, "Webhook delivery failed; retrying with backoff.");
        } else {
            tracing::debug!(endpoint = %self.shown, error = %e, "Webhook delivery failed again.");
        }
    }

    /// Counts dropped events (metrics at once; the log at most every
    /// [`DROP_LOG_EVERY`], with the count since the last warning).
    pub fn dropped(&self, kind: &str, n: u64) {
        self.metrics.webhook_dropped(kind, n);
        self.drops.unreported.fetch_add(n, Ordering::AcqRel);
        self.report_drops(true);
    }

    /// Logs the drops not yet reported if the last warning is old enough (also called
    /// after each delivery, so a burst's count is reported once it is over).
    fn report_drops(&self, dropping: bool) {
        if !dropping && self.drops.unreported.load(Ordering::Acquire) == 0 {
            return;
        }
        let now = Instant::now();
        {
            let mut last = self.drops.last.lock();
            if last.is_some_and(|at| now.duration_since(at) < DROP_LOG_EVERY) {
                return;
            }
            *last = Some(now);
        }
        let n = self.drops.unreported.swap(0, Ordering::AcqRel);
        if n > 0 {
            tracing::warn!(
                endpoint = %self.shown,
                events = n,
                "Webhook events dropped (queue full, retries exhausted or shutdown); see rtc_webhook_events_dropped_total. At most one such warning per {} s.",
                DROP_LOG_EVERY.as_secs()
            );
        }
    }

    /// One POST of a signed body.
    async fn post(&self, body: &Bytes, signature: &str) -> Result<(), PostError> {
        let sent = self
            .http
            .post(self.url.clone())
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header("X-Pusher-Key", &self.key)
            .header("X-Pusher-Signature", signature)
            .body(body.clone())
            .send()
            .await;
        let mut res = match sent {
            Ok(r) => r,
            Err(e) if e.is_timeout() => return Err(PostError::Timeout),
            Err(e) => return Err(PostError::Transport(e.without_url())),
        };
        let status = res.status();
        // Read a bounded amount of the answer so the connection can be reused.
        let mut read = 0;
        while read < MAX_RESPONSE_BYTES {
            match res.chunk().await {
                Ok(Some(c)) => read += c.len(),
                Ok(None) | Err(_) => break,
            }
        }
        if status.is_success() {
            Ok(())
        } else {
            Err(PostError::Status(status.as_u16()))
        }
    }

    fn sign(&self, events: &[Arc<WebhookEvent>]) -> (Bytes, String) {
        let body = Bytes::from(event::body(rtc_model::unix_ms(), events));
        let sig = event::signature(self.secret.expose(), &body);
        (body, sig)
    }

    /// First attempt at a batch; on failure hands it to a retry task (if a slot is free).
    async fn deliver(self: &Arc<Self>, events: &[Arc<WebhookEvent>], tasks: &TaskTracker, stop: &CancellationToken) {
        let n = events.len() as u64;
        let (body, sig) = self.sign(events);
        let started = Instant::now();
        let result = {
            let attempt = self.post(&body, &sig);
            tokio::pin!(attempt);
            let first = tokio::select! {
                r = &mut attempt => Some(r),
                () = stop.cancelled() => None,
            };
            match first {
                Some(r) => r,
                // Stopping: give the request in flight a bounded moment to finish.
                None => tokio::time::timeout(FLUSH_TIMEOUT, attempt).await.unwrap_or(Err(PostError::Timeout)),
            }
        };
        let e = match result {
            Ok(()) => return self.delivered(n),
            Err(e) => e,
        };
        self.attempt_failed(&e);
        if stop.is_cancelled() {
            return self.dropped("shutdown", n);
        }
        if self.retry_for.is_zero() {
            return self.dropped("expired", n);
        }
        match self.retry_slots.clone().try_acquire_owned() {
            Ok(permit) => {
                tasks.spawn(self.clone().retry(body, sig, n, started, stop.clone(), permit));
            }
            Err(_) => self.dropped("retry_full", n),
        }
    }

    /// Retries one body until it is accepted, the retry window has passed, or the node
    /// stops. The body (and its `time_ms`) stays the same across attempts.
    async fn retry(
        self: Arc<Self>,
        body: Bytes,
        sig: String,
        n: u64,
        started: Instant,
        stop: CancellationToken,
        _slot: OwnedSemaphorePermit,
    ) {
        let mut attempt = 1;
        loop {
            let wait = backoff(attempt);
            if started.elapsed() + wait > self.retry_for {
                return self.dropped("expired", n);
            }
            let result = tokio::select! {
                () = stop.cancelled() => return self.dropped("shutdown", n),
                r = async {
                    tokio::time::sleep(wait).await;
                    self.post(&body, &sig).await
                } => r,
            };
            match result {
                Ok(()) => return self.delivered(n),
                Err(e) => self.attempt_failed(&e),
            }
            attempt += 1;
        }
    }

    /// The endpoint's queue task: batches in order until the node stops, then a bounded
    /// flush of what is queued (one attempt each, no retries).
    pub async fn run(self: Arc<Self>, mut rx: QueueRx, tasks: TaskTracker, stop: CancellationToken) {
        let max = if self.batch { BATCH_MAX } else { 1 };
        let mut batch = Vec::with_capacity(max);
        loop {
            batch.clear();
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                n = rx.recv_many(&mut batch, max) => if n == 0 { return },
            }
            if batch.len() < max {
                let until = Instant::now() + BATCH_WINDOW;
                while batch.len() < max {
                    let want = max - batch.len();
                    tokio::select! {
                        biased;
                        n = rx.recv_many(&mut batch, want) => if n == 0 { break },
                        () = tokio::time::sleep_until(until) => break,
                    }
                }
            }
            self.deliver(&batch, &tasks, &stop).await;
        }
        self.flush(rx).await;
    }

    async fn flush(&self, mut rx: QueueRx) {
        let deadline = Instant::now() + FLUSH_TIMEOUT;
        let max = if self.batch { BATCH_MAX } else { 1 };
        let mut batch = Vec::with_capacity(max);
        while Instant::now() < deadline {
            batch.clear();
            let idle = (Instant::now() + FLUSH_IDLE).min(deadline);
            match tokio::time::timeout_at(idle, rx.recv_many(&mut batch, max)).await {
                Ok(n) if n > 0 => {}
                _ => break,
            }
            let n = batch.len() as u64;
            let (body, sig) = self.sign(&batch);
            match tokio::time::timeout_at(deadline, self.post(&body, &sig)).await {
                Ok(Ok(())) => self.delivered(n),
                Ok(Err(e)) => {
                    self.attempt_failed(&e);
                    self.dropped("shutdown", n);
                }
                Err(_) => {
                    self.attempt_failed(&PostError::Timeout);
                    self.dropped("shutdown", n);
                }
            }
        }
        rx.close();
        let mut left = 0;
        while rx.try_recv() {
            left += 1;
        }
        if left > 0 {
            self.dropped("shutdown", left);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_with_jitter_and_is_capped() {
        for _ in 0..50 {
            let first = backoff(1);
            assert!(first >= RETRY_BASE / 2 && first <= RETRY_BASE, "{first:?}");
            let third = backoff(3);
            assert!(third >= RETRY_BASE * 2 && third <= RETRY_BASE * 4, "{third:?}");
            assert!(backoff(40) <= RETRY_MAX && backoff(40) >= RETRY_MAX / 2);
        }
    }

    #[tokio::test]
    async fn the_reserve_takes_only_member_events_and_the_queue_keeps_one_order() {
        use super::super::event::WebhookKind;
        let (q, mut rx) = queue();
        let occupied = || Arc::new(WebhookEvent::channel(WebhookKind::ChannelOccupied, "c"));
        let added = || Arc::new(WebhookEvent::member(WebhookKind::MemberAdded, "presence-a", "u"));
        for _ in 0..QUEUE - MEMBER_RESERVE {
            q.push(occupied()).unwrap();
        }
        assert_eq!(q.push(occupied()), Err(PushError::Full));
        for _ in 0..MEMBER_RESERVE {
            q.push(added()).unwrap();
        }
        assert_eq!(q.push(added()), Err(PushError::Full));
        let mut got = Vec::new();
        assert_eq!(rx.recv_many(&mut got, QUEUE - MEMBER_RESERVE + 1).await, QUEUE - MEMBER_RESERVE + 1);
        assert_eq!(got.last().unwrap().name, WebhookKind::MemberAdded, "in order");
        // Room again for both kinds; a closed queue refuses.
        q.push(occupied()).unwrap();
        q.push(added()).unwrap();
        rx.close();
        assert_eq!(q.push(added()), Err(PushError::Closed));
    }

    #[test]
    fn logged_urls_hide_credentials_paths_and_queries() {
        let u = reqwest::Url::parse("https://user:pw@hooks.example.com:8443/p/SECRET?token=t").unwrap();
        assert_eq!(shown_url(&u), "https://hooks.example.com:8443");
        let u = reqwest::Url::parse("http://127.0.0.1/x").unwrap();
        assert_eq!(shown_url(&u), "http://127.0.0.1");
    }
}
