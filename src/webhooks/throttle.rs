//! The `subscription_count` webhook throttle: at most one per channel per
//! [`COUNT_WEBHOOK_EVERY`], carrying the latest count.
//!
//! A channel's first change is sent at once and opens a window; changes inside the
//! window only update the latest count, which is sent when the window ends if it
//! differs from the last one sent (and is not 0: counts of 0 are never sent). A window
//! with changes opens the next one, so a channel churning without pause sends one count
//! per window; a quiet window closes the channel's entry. The windows are all the same
//! length, so they end in the order they opened and a FIFO queue is the whole timer.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use crate::protocol::ChannelName;

/// The `subscription_count` webhook of a channel is sent at most this often.
pub const COUNT_WEBHOOK_EVERY: Duration = Duration::from_secs(1);
/// Channels with an open window at once per app; a count for another channel past this
/// is not sent (and is counted as suppressed), so a storm of channels stays bounded.
pub const MAX_COUNT_WINDOWS: usize = 65_536;

struct Window {
    /// The last count sent.
    sent: u64,
    /// The latest count seen inside the window, if it changed.
    latest: Option<u64>,
}

/// What [`CountThrottle::offer`] decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offer {
    /// Send this count now.
    Send(u64),
    /// Held for the end of the window (or not worth sending).
    Held,
    /// Too many open windows: not sent.
    Full,
}

/// What the timer should do next.
#[derive(Debug, PartialEq, Eq)]
pub enum Tick {
    /// A window ended: send this count for this channel (if any).
    Ended(ChannelName, Option<u64>),
    /// Sleep until then.
    Wait(Instant),
    /// No window is open.
    Empty,
}

#[derive(Default)]
struct State {
    windows: HashMap<ChannelName, Window>,
    ends: VecDeque<(Instant, ChannelName)>,
}

/// The throttle of one app.
#[derive(Default)]
pub struct CountThrottle {
    state: Mutex<State>,
    /// Woken when the first window opens.
    pub wake: Notify,
}

impl CountThrottle {
    /// A channel's count changed at `now`.
    pub fn offer(&self, channel: &ChannelName, count: u64, now: Instant) -> Offer {
        let mut s = self.state.lock();
        if let Some(w) = s.windows.get_mut(channel) {
            w.latest = Some(count);
            return Offer::Held;
        }
        if count == 0 {
            return Offer::Held;
        }
        if s.windows.len() >= MAX_COUNT_WINDOWS {
            return Offer::Full;
        }
        s.windows.insert(channel.clone(), Window { sent: count, latest: None });
        let was_empty = s.ends.is_empty();
        s.ends.push_back((now + COUNT_WEBHOOK_EVERY, channel.clone()));
        drop(s);
        if was_empty {
            self.wake.notify_one();
        }
        Offer::Send(count)
    }

    /// The next window end if it is due at `now`, else when to look again.
    pub fn tick(&self, now: Instant) -> Tick {
        let mut s = self.state.lock();
        let Some((at, _)) = s.ends.front() else {
            return Tick::Empty;
        };
        if *at > now {
            return Tick::Wait(*at);
        }
        let Some((_, channel)) = s.ends.pop_front() else {
            return Tick::Empty;
        };
        let Some(w) = s.windows.get_mut(&channel) else {
            return Tick::Ended(channel, None);
        };
        let Some(latest) = w.latest.take() else {
            // A quiet window: the next change is sent at once.
            s.windows.remove(&channel);
            return Tick::Ended(channel, None);
        };
        let send = (latest != 0 && latest != w.sent).then_some(latest);
        if let Some(c) = send {
            w.sent = c;
        }
        s.ends.push_back((now + COUNT_WEBHOOK_EVERY, channel.clone()));
        Tick::Ended(channel, send)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    #[test]
    fn the_first_change_goes_at_once_and_churn_sends_one_latest_count_per_window() {
        let t = CountThrottle::default();
        let t0 = Instant::now();
        let a = ch("a");
        assert_eq!(t.offer(&a, 1, t0), Offer::Send(1));
        assert_eq!(t.offer(&a, 2, t0), Offer::Held);
        assert_eq!(t.offer(&a, 3, t0), Offer::Held);
        assert_eq!(t.tick(t0), Tick::Wait(t0 + COUNT_WEBHOOK_EVERY));
        let t1 = t0 + COUNT_WEBHOOK_EVERY;
        assert_eq!(t.tick(t1), Tick::Ended(a.clone(), Some(3)));
        // Flip-flops that end where they started send nothing.
        for _ in 0..100 {
            assert_eq!(t.offer(&a, 2, t1), Offer::Held);
            assert_eq!(t.offer(&a, 3, t1), Offer::Held);
        }
        let t2 = t1 + COUNT_WEBHOOK_EVERY;
        assert_eq!(t.tick(t2), Tick::Ended(a.clone(), None));
        // Ending at 0 sends nothing either.
        assert_eq!(t.offer(&a, 0, t2), Offer::Held);
        let t3 = t2 + COUNT_WEBHOOK_EVERY;
        assert_eq!(t.tick(t3), Tick::Ended(a.clone(), None));
        // A quiet window closes the entry: the next change is sent at once.
        assert_eq!(t.tick(t3 + COUNT_WEBHOOK_EVERY), Tick::Ended(a.clone(), None));
        assert_eq!(t.tick(t3 + COUNT_WEBHOOK_EVERY), Tick::Empty);
        assert_eq!(t.offer(&a, 0, t3), Offer::Held, "0 is never sent");
        assert_eq!(t.offer(&a, 1, t3), Offer::Send(1));
    }

    #[test]
    fn open_windows_are_bounded() {
        let t = CountThrottle::default();
        let t0 = Instant::now();
        for i in 0..MAX_COUNT_WINDOWS {
            assert_eq!(t.offer(&ch(&format!("c{i}")), 1, t0), Offer::Send(1));
        }
        assert_eq!(t.offer(&ch("x"), 1, t0), Offer::Full);
        assert_eq!(t.offer(&ch("c0"), 2, t0), Offer::Held);
    }
}
