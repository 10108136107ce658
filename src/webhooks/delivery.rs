//! Delivery to one endpoint: a bounded queue drained by one task that batches events
//! and POSTs them in order; a failed POST is retried by its own task with capped,
//! jittered exponential backoff for up to the app's retry window, so a slow or failing
//! endpoint never holds up the events behind it for long.
//!
//! Memory per endpoint is bounded by [`QUEUE`] queued events plus [`RETRY_SLOTS`]
//! retried bodies of at most [`BATCH_MAX`] events each. Past those, events are dropped
//! and counted (`rtc_webhook_events_dropped_total{kind=…}`); the socket path only ever
//! does a `try_send`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::{mpsc, OwnedSemaphorePermit, Semaphore};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::event::{self, WebhookEvent};
use crate::metrics::Metrics;
use crate::secret::Secret;

/// Events waiting per endpoint before new ones are dropped.
pub const QUEUE: usize = 4_096;
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
    dropping: AtomicBool,
}

/// The URL without credentials, path or query: safe to log.
pub fn shown_url(url: &reqwest::Url) -> String {
    match (url.host_str(), url.port()) {
        (Some(h), Some(p)) => format!("{}://{h}:{p}", url.scheme()),
        (Some(h), None) => format!("{}://{h}", url.scheme()),
        _ => url.scheme().to_string(),
    }
}

fn unix_ms() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_millis() as u64).unwrap_or(0)
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
            dropping: AtomicBool::new(false),
        }
    }

    fn delivered(&self, n: u64) {
        self.metrics.webhook_events_sent.inc_by(n);
        if self.failing.swap(false, Ordering::Relaxed) {
            tracing::info!(endpoint = %self.shown, "Webhook endpoint answers again.");
        }
        self.dropping.store(false, Ordering::Relaxed);
    }

    fn attempt_failed(&self, e: &PostError) {
        self.metrics.webhook_attempts_failed.inc();
        if !self.failing.swap(true, Ordering::Relaxed) {
            tracing::warn!(endpoint = %self.shown, error = %e, "Webhook delivery failed; retrying with backoff.");
        } else {
            tracing::debug!(endpoint = %self.shown, error = %e, "Webhook delivery failed again.");
        }
    }

    /// Counts dropped events; logs the first drop of a run of failures.
    pub fn dropped(&self, kind: &str, n: u64) {
        self.metrics.webhook_dropped(kind, n);
        if !self.dropping.swap(true, Ordering::Relaxed) {
            tracing::warn!(endpoint = %self.shown, reason = kind, events = n, "Webhook events dropped.");
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
        let body = Bytes::from(event::body(unix_ms(), events));
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
    pub async fn run(
        self: Arc<Self>,
        mut rx: mpsc::Receiver<Arc<WebhookEvent>>,
        tasks: TaskTracker,
        stop: CancellationToken,
    ) {
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

    async fn flush(&self, mut rx: mpsc::Receiver<Arc<WebhookEvent>>) {
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
        while rx.try_recv().is_ok() {
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

    #[test]
    fn logged_urls_hide_credentials_paths_and_queries() {
        let u = reqwest::Url::parse("https://user:pw@hooks.example.com:8443/p/SECRET?token=t").unwrap();
        assert_eq!(shown_url(&u), "https://hooks.example.com:8443");
        let u = reqwest::Url::parse("http://127.0.0.1/x").unwrap();
        assert_eq!(shown_url(&u), "http://127.0.0.1");
    }
}
