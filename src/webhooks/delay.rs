//! The vacate/removed delay (Pusher's rule): `channel_vacated` and `member_removed` are
//! held for [`DEPART_DELAY`]; if the channel is occupied again (the member added again)
//! within it, neither the departure nor the following arrival is sent.
//!
//! The delay is the same for every entry, so entries fall due in insertion order and a
//! FIFO queue is all the timer needs. A pending departure is claimed either here
//! ([`Claim::Local`], a generation in the `pending` map) or, in a cluster, by a Redis
//! key ([`Claim::Shared`]) that whichever node sees the arrival deletes first.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::event::WebhookEvent;
use crate::protocol::ChannelName;

/// How long `channel_vacated` and `member_removed` wait (Pusher: 3 s).
pub const DEPART_DELAY: Duration = Duration::from_secs(3);
/// Departures waiting at once per app; past this they are sent without the delay, so a
/// churn storm cannot grow this queue without bound.
pub const MAX_PENDING: usize = 65_536;

/// What a departure is about: a channel, or one member of a presence channel.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum PendingKey {
    /// `channel_occupied` / `channel_vacated`.
    Channel(ChannelName),
    /// `member_added` / `member_removed`.
    Member(ChannelName, String),
}

impl PendingKey {
    /// The suffix of the cluster-wide claim key (channel names cannot hold a newline).
    pub fn shared_suffix(&self) -> String {
        match self {
            PendingKey::Channel(c) => format!("vac\n{c}"),
            PendingKey::Member(c, u) => format!("mem\n{c}\n{u}"),
        }
    }
}

/// Who may still cancel a pending departure.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Claim {
    /// This node's map, at this generation.
    Local(u64),
    /// A Redis key: the departure is sent only if the key still exists when it falls due.
    Shared(String),
}

/// A departure waiting for its time.
#[derive(Debug)]
pub struct Due {
    /// When it falls due.
    pub at: Instant,
    /// What it is about.
    pub key: PendingKey,
    /// Who may cancel it.
    pub claim: Claim,
    /// The event to send.
    pub event: Box<WebhookEvent>,
}

/// What the timer should do next.
#[derive(Debug)]
pub enum Next {
    /// This entry is due now.
    Due(Due),
    /// Sleep until then.
    Wait(Instant),
    /// Nothing is pending.
    Empty,
}

#[derive(Default)]
struct State {
    generation: u64,
    pending: HashMap<PendingKey, u64>,
    due: VecDeque<Due>,
}

/// Pending departures of one app.
#[derive(Default)]
pub struct Delay {
    state: Mutex<State>,
    /// Woken when the queue goes from empty to non-empty.
    pub wake: Notify,
}

impl Delay {
    /// Cancels a local pending departure: true when there was one (the arrival is then
    /// not sent either).
    pub fn cancel(&self, key: &PendingKey) -> bool {
        self.state.lock().pending.remove(key).is_some()
    }

    /// Holds a departure until `at`; claimed locally unless `shared` names a Redis key.
    ///
    /// # Errors
    /// Gives the event back when [`MAX_PENDING`] departures already wait: send it now.
    pub fn schedule(
        &self,
        key: PendingKey,
        event: Box<WebhookEvent>,
        at: Instant,
        shared: Option<String>,
    ) -> Result<(), Box<WebhookEvent>> {
        let mut s = self.state.lock();
        if s.due.len() >= MAX_PENDING {
            return Err(event);
        }
        let claim = match shared {
            Some(k) => Claim::Shared(k),
            None => {
                s.generation += 1;
                let g = s.generation;
                s.pending.insert(key.clone(), g);
                Claim::Local(g)
            }
        };
        let was_empty = s.due.is_empty();
        s.due.push_back(Due { at, key, claim, event });
        drop(s);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The next entry if it is due at `now`, else when to look again.
    pub fn next(&self, now: Instant) -> Next {
        let mut s = self.state.lock();
        match s.due.front().map(|d| d.at) {
            None => Next::Empty,
            Some(at) if at > now => Next::Wait(at),
            Some(_) => s.due.pop_front().map(Next::Due).unwrap_or(Next::Empty),
        }
    }

    /// For a local claim that fell due: true (and forgotten) when it was not cancelled
    /// nor replaced in the meantime.
    pub fn still_pending(&self, key: &PendingKey, generation: u64) -> bool {
        let mut s = self.state.lock();
        if s.pending.get(key) == Some(&generation) {
            s.pending.remove(key);
            true
        } else {
            false
        }
    }

    /// Everything still queued (at shutdown).
    pub fn drain(&self) -> Vec<Due> {
        self.state.lock().due.drain(..).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::super::event::WebhookKind;
    use super::*;

    fn ch(s: &str) -> ChannelName {
        ChannelName::parse(s).unwrap()
    }

    fn vacated(s: &str) -> Box<WebhookEvent> {
        Box::new(WebhookEvent::channel(WebhookKind::ChannelVacated, s))
    }

    #[test]
    fn a_cancelled_departure_is_not_sent_and_a_later_one_is() {
        let d = Delay::default();
        let t0 = Instant::now();
        let key = PendingKey::Channel(ch("a"));
        d.schedule(key.clone(), vacated("a"), t0 + DEPART_DELAY, None).unwrap();
        assert!(matches!(d.next(t0), Next::Wait(at) if at == t0 + DEPART_DELAY));
        assert!(d.cancel(&key), "re-occupied within the delay");
        assert!(!d.cancel(&key), "only once");
        // Vacated again: a new generation; the first entry is stale when it falls due.
        d.schedule(key.clone(), vacated("a"), t0 + DEPART_DELAY * 2, None).unwrap();
        let Next::Due(first) = d.next(t0 + DEPART_DELAY) else { panic!("first entry due") };
        let Claim::Local(g1) = first.claim else { panic!("local claim") };
        assert!(!d.still_pending(&first.key, g1));
        assert!(matches!(d.next(t0 + DEPART_DELAY), Next::Wait(_)));
        let Next::Due(second) = d.next(t0 + DEPART_DELAY * 2) else { panic!("second entry due") };
        let Claim::Local(g2) = second.claim else { panic!("local claim") };
        assert!(d.still_pending(&second.key, g2));
        assert!(matches!(d.next(t0 + DEPART_DELAY * 3), Next::Empty));
    }

    #[test]
    fn shared_claims_leave_the_local_map_alone_and_the_queue_is_bounded() {
        let d = Delay::default();
        let t0 = Instant::now();
        let key = PendingKey::Member(ch("presence-a"), "u".into());
        d.schedule(key.clone(), vacated("presence-a"), t0, Some("k".into())).unwrap();
        assert!(!d.cancel(&key));
        assert_eq!(key.shared_suffix(), "mem\npresence-a\nu");
        for i in 1..MAX_PENDING {
            d.schedule(PendingKey::Channel(ch(&format!("c{i}"))), vacated("c"), t0, None).unwrap();
        }
        assert!(d.schedule(PendingKey::Channel(ch("x")), vacated("x"), t0, None).is_err());
        assert_eq!(d.drain().len(), MAX_PENDING);
        assert!(matches!(d.next(t0), Next::Empty));
    }
}
