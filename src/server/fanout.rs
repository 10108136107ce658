//! Fan-out time as the node measures it. The recent window behind the figures in
//! `NodeStats` (p50/p99 and the measured line) is `metrics::window`, re-exported here.
//!
//! **Fan-out time** of a broadcast is the time from its arrival on this node to the moment
//! the frame has been handed to the last local subscriber: on a plain TCP socket that is
//! idle, written to the kernel directly from the fan-out; otherwise pushed into that
//! socket's outbound queue ([`super::outbox::Outbox`]), which the socket's own task then
//! writes (that later write is not part of the figure). A socket whose queue already held
//! a backlog (a quarter of its limit or more) when the frame was pushed is counted apart
//! (`rtc_fanout_backlogged_total`): that frame waits behind a slow reader, whatever the
//! fan-out time says.
//!
//! Arrival is: for the HTTP API, when the request reaches the route (before the body is
//! read and the signature checked); for a client event, when the node starts handling the
//! parsed `client-*` frame; for the bus, when the node's dispatcher takes the message off
//! its receive queue. Only broadcasts of events that reach at least one local subscriber
//! are timed (a broadcast to nobody has no fan-out). Two clock reads per broadcast, none
//! per subscriber.

use std::time::Instant;

pub use crate::metrics::window::{FanoutFigures, FanoutWindow, WINDOW};
use crate::metrics::{FanoutSource, Metrics};

/// What one fan-out reached.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Delivery {
    /// Sockets the frame was handed to.
    pub delivered: usize,
    /// Of those, sockets whose queue already held a backlog.
    pub backlogged: usize,
}

/// Ends a broadcast's fan-out that began at `arrival`: observes the histogram of its
/// source, counts the backlogged deliveries and feeds the window. No-op when the
/// broadcast reached nobody here.
pub fn finish(metrics: &Metrics, source: FanoutSource, arrival: Instant, d: Delivery) {
    if d.delivered == 0 {
        return;
    }
    let end = Instant::now();
    let took = end.saturating_duration_since(arrival);
    metrics.timing.fanout(source, took.as_secs_f64());
    if d.backlogged > 0 {
        metrics.timing.fanout_backlogged.inc_by(d.backlogged as u64);
    }
    metrics.timing.window.record(end, took, d.delivered);
}
