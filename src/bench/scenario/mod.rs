//! The scenarios, one file each. Every one runs in a [`super::runner::Run`]: ramp, steady
//! phase, report.

pub(crate) mod connections;
pub(crate) mod drain;
pub(crate) mod fanout;
pub(crate) mod mixed;
pub(crate) mod presence;

/// Events a steady phase of `hold` at `rate` per second publishes.
pub(crate) fn event_count(rate: f64, hold: std::time::Duration) -> usize {
    (rate * hold.as_secs_f64()).ceil() as usize
}
