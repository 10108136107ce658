//! The paced drain (SIGTERM, SIGINT, `rtc drain`, `POST /admin/drain`).
//!
//! 1. At once: readiness and `/up` answer 503 "draining", new upgrades get 503 with
//!    `Retry-After` (never an accepted upgrade closed with 4200, which pusher-js would
//!    retry in a tight loop), the registry says `draining`.
//! 2. After the pre-drain delay (time for the load balancer to notice), every socket gets
//!    a close frame 4200 — pusher-js reconnects at once, to another node — in shuffled
//!    order, paced in 100 ms ticks over the window: each tick closes the sockets left
//!    divided by the ticks left, rounded up (so fewer sockets than ticks go one per tick
//!    from the start), optionally capped per second. A signal with no socket open skips
//!    the pre-drain delay (see `serve::handle_signals`).
//!    Never a code the client gives up on (4000–4099, ≥ 4300).
//! 3. Sockets still open keep receiving every event until they are closed.
//! 4. The process exits when no socket is left, or at the drain timeout, closing what
//!    is left (counted as forced). A second signal stops at once.
//!
//! pusher-js adds no jitter to its reconnects, so the reconnect rate the other nodes see
//! is this close rate: the pacing is what removes the reconnect storm.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use rand::seq::SliceRandom;
use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::Node;
use crate::config::DrainConfig;
use crate::protocol::CloseCode;

/// Length of one pacing tick.
const TICK: Duration = Duration::from_millis(100);

/// Per-drain overrides (the body of `POST /admin/drain`, flags of `rtc drain`).
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DrainRequest {
    /// Seconds over which hints are spread.
    pub window_secs: Option<f64>,
    /// Hints per second cap.
    pub rate: Option<u64>,
    /// Seconds until the forced close.
    pub timeout_secs: Option<f64>,
    /// Seconds before the first hint.
    pub pre_delay_secs: Option<f64>,
}

/// Why a drain was not started.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DrainError {
    /// The node is draining already.
    #[error("the node is already draining")]
    AlreadyDraining,
    /// An override is out of range.
    #[error("{0}")]
    Invalid(String),
}

/// What the apps need to know about a drain: whether one runs (presence leaves then
/// wait out the grace so migrating users do not flap) and a token that ends the grace
/// early at exit.
#[derive(Default)]
pub struct DrainSignal {
    draining: AtomicBool,
    /// Grace for presence leaves during a drain, milliseconds.
    grace_ms: AtomicU64,
    /// Cancelled at the end of the drain: pending leaves are written at once.
    pub flush: CancellationToken,
}

impl DrainSignal {
    /// The presence grace to apply now (zero when not draining).
    pub fn grace(&self) -> Duration {
        if self.draining.load(Ordering::Acquire) && !self.flush.is_cancelled() {
            Duration::from_millis(self.grace_ms.load(Ordering::Relaxed))
        } else {
            Duration::ZERO
        }
    }
}

/// Progress of the running drain.
pub struct DrainProgress {
    /// When the drain began.
    pub started: Instant,
    /// The settings in force.
    pub config: DrainConfig,
    /// Sockets when it began.
    pub at_start: u64,
    /// Hints (4200 closes) sent.
    pub hints: AtomicU64,
    /// Sockets closed at the deadline.
    pub forced: AtomicU64,
}

impl DrainProgress {
    /// The wire form for the admin stats.
    pub fn stats(&self, sockets_left: u64) -> rtc_model::DrainStats {
        let elapsed = self.started.elapsed();
        rtc_model::DrainStats {
            sockets_at_start: self.at_start,
            sockets_left,
            hints_sent: self.hints.load(Ordering::Relaxed),
            elapsed_secs: elapsed.as_secs_f64(),
            window_secs: self.config.window.as_secs_f64(),
            deadline_secs: self.config.timeout.saturating_sub(elapsed).as_secs_f64(),
            forced: self.forced.load(Ordering::Relaxed),
        }
    }
}

fn apply(mut c: DrainConfig, r: &DrainRequest) -> Result<DrainConfig, DrainError> {
    let secs = |name: &str, v: Option<f64>, cur: Duration| -> Result<Duration, DrainError> {
        match v {
            None => Ok(cur),
            Some(x) if (0.0..=3600.0).contains(&x) => Ok(Duration::from_secs_f64(x)),
            Some(x) => Err(DrainError::Invalid(format!("{name} {x} is out of range 0..=3600"))),
        }
    };
    c.window = secs("window_secs", r.window_secs, c.window)?;
    c.timeout = secs("timeout_secs", r.timeout_secs, c.timeout)?;
    c.pre_delay = secs("pre_delay_secs", r.pre_delay_secs, c.pre_delay)?;
    if let Some(rate) = r.rate {
        c.rate = rate;
    }
    if c.pre_delay + c.window > c.timeout {
        c.timeout = c.pre_delay + c.window + Duration::from_secs(2);
    }
    Ok(c)
}

/// Starts draining the node.
///
/// # Errors
/// The node is already draining, or an override is out of range.
pub fn start(node: &Arc<Node>, request: &DrainRequest) -> Result<Arc<DrainProgress>, DrainError> {
    let config = apply(node.config.drain.clone(), request)?;
    if !node.health.start_draining() {
        return Err(DrainError::AlreadyDraining);
    }
    node.drain_signal.grace_ms.store(config.presence_grace.as_millis() as u64, Ordering::Relaxed);
    node.drain_signal.draining.store(true, Ordering::Release);
    let progress = Arc::new(DrainProgress {
        started: Instant::now(),
        config,
        at_start: node.connection_count(),
        hints: AtomicU64::new(0),
        forced: AtomicU64::new(0),
    });
    *node.drain.lock() = Some(progress.clone());
    if let Some(cluster) = &node.cluster {
        let c = &progress.config;
        cluster.clone().record_event(
            "drain_begun",
            format!(
                "{} sockets, window {:.0}s, deadline {:.0}s",
                progress.at_start,
                c.window.as_secs_f64(),
                c.timeout.as_secs_f64()
            ),
        );
    }
    tracing::info!(
        sockets = progress.at_start,
        pre_delay_s = progress.config.pre_delay.as_secs_f64(),
        window_s = progress.config.window.as_secs_f64(),
        timeout_s = progress.config.timeout.as_secs_f64(),
        rate = progress.config.rate,
        "Draining: health is now 503 and new sockets are refused."
    );
    let n = node.clone();
    let p = progress.clone();
    node.tasks.spawn(async move { run(n, p).await });
    Ok(progress)
}

async fn run(node: Arc<Node>, p: Arc<DrainProgress>) {
    let deadline = p.started + p.config.timeout;
    let stop = node.shutdown.clone();
    let wait_until = |t: Instant| {
        let stop = stop.clone();
        async move {
            tokio::select! {
                () = stop.cancelled() => false,
                () = tokio::time::sleep_until(t.min(deadline)) => t <= deadline,
            }
        }
    };
    if !wait_until(p.started + p.config.pre_delay).await {
        return;
    }
    let mut handles: Vec<_> = node.apps().flat_map(|a| a.connection_handles()).collect();
    handles.shuffle(&mut rand::thread_rng());
    let ticks = (p.config.window.as_secs_f64() / TICK.as_secs_f64()).ceil().max(1.0) as u64;
    let per_tick_cap = if p.config.rate > 0 { p.config.rate as f64 * TICK.as_secs_f64() } else { f64::INFINITY };
    let mut allowance = 0.0f64;
    let mut next = 0usize;
    let mut tick = 0u64;
    let mut last_log = Instant::now();
    let send_error = p.config.send_error;
    while next < handles.len() {
        let remaining = handles.len() - next;
        let ticks_left = ticks.saturating_sub(tick).max(1);
        let mut k = remaining.div_ceil(ticks_left as usize);
        if per_tick_cap.is_finite() {
            allowance += per_tick_cap;
            k = k.min(allowance.floor() as usize);
            allowance -= k as f64;
        }
        for h in &handles[next..next + k] {
            if !h.outbox.is_closing() {
                h.outbox.close(CloseCode::Reconnect, "Server is draining; reconnect", send_error);
                p.hints.fetch_add(1, Ordering::Relaxed);
                node.metrics.drain_hints.inc();
            }
        }
        next += k;
        tick += 1;
        if last_log.elapsed() >= Duration::from_secs(1) {
            last_log = Instant::now();
            tracing::info!(
                sockets_left = node.connection_count(),
                hints_sent = p.hints.load(Ordering::Relaxed),
                elapsed_s = format!("{:.1}", p.started.elapsed().as_secs_f64()),
                "Drain progress."
            );
        }
        if !wait_until(p.started + p.config.pre_delay + TICK * tick as u32).await {
            break;
        }
    }
    // Wait for the hinted sockets to go, until the deadline.
    while node.connection_count() > 0 && Instant::now() < deadline && !stop.is_cancelled() {
        tokio::select! {
            () = stop.cancelled() => break,
            () = tokio::time::sleep(TICK) => {}
        }
    }
    let left = node.connection_count();
    if left > 0 && !stop.is_cancelled() {
        p.forced.store(left, Ordering::Relaxed);
        node.metrics.drain_forced.inc_by(left);
        tracing::warn!(sockets = left, "Drain deadline reached; closing the remaining sockets now.");
    }
    tracing::info!(
        hints_sent = p.hints.load(Ordering::Relaxed),
        forced = left,
        elapsed_s = format!("{:.1}", p.started.elapsed().as_secs_f64()),
        "Drain finished; stopping."
    );
    node.drain_signal.flush.cancel();
    node.shutdown.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_are_checked_and_keep_the_timeout_after_the_window() {
        let base = DrainConfig::default();
        let c = apply(base.clone(), &DrainRequest { window_secs: Some(40.0), ..Default::default() }).unwrap();
        assert!(c.timeout >= c.pre_delay + c.window);
        assert!(apply(base.clone(), &DrainRequest { window_secs: Some(-1.0), ..Default::default() }).is_err());
        assert!(apply(base, &DrainRequest { timeout_secs: Some(1e9), ..Default::default() }).is_err());
    }
}
