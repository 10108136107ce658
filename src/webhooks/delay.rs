//! The vacate/removed delay (Pusher's rule): `channel_vacated` and `member_removed` are
//! held for [`DEPART_DELAY`]; if the channel is occupied again (the member added again)
//! within it, neither the departure nor the following arrival is sent.
//!
//! Entries are kept in order of scheduling (the delay is the same for every entry, so
//! that is also the order they fall due) in a map keyed by a sequence number, with an
//! index from key to sequence: a cancelled departure leaves the queue at once, so a
//! subscribe/unsubscribe churn keeps at most one entry per channel (or member) here and
//! cannot fill the [`MAX_PENDING`] cap. A pending departure is claimed either here
//! ([`Claim::Local`]) or, in a cluster, also by a Redis key ([`Claim::Shared`]) that
//! whichever node sees the arrival deletes first; a node that sees the arrival of its
//! own shared departure removes the entry here too.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::Notify;
use tokio::time::Instant;

use super::event::WebhookEvent;
use crate::protocol::ChannelName;

/// How long `channel_vacated` and `member_removed` wait (Pusher: 3 s).
pub const DEPART_DELAY: Duration = Duration::from_secs(3);
/// Departures waiting at once per app; past this they are sent without the delay, so a
/// storm of distinct channels cannot grow this queue without bound. Cancelled
/// departures do not count.
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
    /// Only this node, at this sequence number.
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
    seq: u64,
    /// Key → sequence of its entry in `due` (or, for a local claim handed to the timer,
    /// of the entry being fired: a cancellation then still wins).
    pending: HashMap<PendingKey, u64>,
    /// Entries by sequence: oldest first.
    due: BTreeMap<u64, Due>,
}

/// Pending departures of one app.
#[derive(Default)]
pub struct Delay {
    state: Mutex<State>,
    /// Woken when the queue goes from empty to non-empty.
    pub wake: Notify,
}

impl Delay {
    /// Cancels a pending departure and removes it from the queue. `None` when there was
    /// none (the arrival is then sent); otherwise its claim: for [`Claim::Shared`] the
    /// caller deletes the Redis key too.
    pub fn cancel(&self, key: &PendingKey) -> Option<Claim> {
        let mut s = self.state.lock();
        let seq = s.pending.remove(key)?;
        match s.due.remove(&seq) {
            Some(d) => Some(d.claim),
            // Already handed to the timer, which checks `still_pending` before sending.
            None => Some(Claim::Local(seq)),
        }
    }

    /// Holds a departure until `at`; claimed locally unless `shared` names a Redis key.
    /// A departure already pending for the same key is replaced.
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
        if let Some(old) = s.pending.remove(&key) {
            s.due.remove(&old);
        }
        if s.due.len() >= MAX_PENDING {
            return Err(event);
        }
        s.seq += 1;
        let seq = s.seq;
        let claim = match shared {
            Some(k) => Claim::Shared(k),
            None => Claim::Local(seq),
        };
        s.pending.insert(key.clone(), seq);
        let was_empty = s.due.is_empty();
        s.due.insert(seq, Due { at, key, claim, event });
        drop(s);
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// The next entry if it is due at `now`, else when to look again. A shared claim
    /// leaves the index here (Redis decides from now on); a local one stays until
    /// [`Delay::still_pending`].
    pub fn next(&self, now: Instant) -> Next {
        let mut s = self.state.lock();
        let Some(entry) = s.due.first_entry() else {
            return Next::Empty;
        };
        if entry.get().at > now {
            return Next::Wait(entry.get().at);
        }
        let seq = *entry.key();
        let due = entry.remove();
        if matches!(due.claim, Claim::Shared(_)) && s.pending.get(&due.key) == Some(&seq) {
            s.pending.remove(&due.key);
        }
        Next::Due(due)
    }

    /// For a local claim that fell due: true (and forgotten) when it was not cancelled
    /// nor replaced in the meantime.
    pub fn still_pending(&self, key: &PendingKey, seq: u64) -> bool {
        let mut s = self.state.lock();
        if s.pending.get(key) == Some(&seq) {
            s.pending.remove(key);
            true
        } else {
            false
        }
    }

    /// Departures waiting (cancelled ones are not counted: they have left).
    #[cfg(test)]
    pub fn len(&self) -> usize {
        self.state.lock().due.len()
    }

    /// Whether no departure waits.
    #[cfg(test)]
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Everything still queued (at shutdown).
    pub fn drain(&self) -> Vec<Due> {
        let mut s = self.state.lock();
        let due = std::mem::take(&mut s.due);
        // Local claims stay indexed so `still_pending` accepts them.
        s.pending.retain(|_, seq| due.get(seq).is_some_and(|d| matches!(d.claim, Claim::Local(_))));
        due.into_values().collect()
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
    fn a_cancelled_departure_leaves_the_queue_and_a_later_one_is_sent() {
        let d = Delay::default();
        let t0 = Instant::now();
        let key = PendingKey::Channel(ch("a"));
        d.schedule(key.clone(), vacated("a"), t0 + DEPART_DELAY, None).unwrap();
        assert!(matches!(d.next(t0), Next::Wait(at) if at == t0 + DEPART_DELAY));
        assert!(matches!(d.cancel(&key), Some(Claim::Local(_))), "re-occupied within the delay");
        assert!(d.cancel(&key).is_none(), "only once");
        assert!(d.is_empty(), "the cancelled entry left the queue");
        d.schedule(key.clone(), vacated("a"), t0 + DEPART_DELAY * 2, None).unwrap();
        assert_eq!(d.len(), 1);
        assert!(matches!(d.next(t0 + DEPART_DELAY), Next::Wait(_)));
        let Next::Due(due) = d.next(t0 + DEPART_DELAY * 2) else { panic!("entry due") };
        let Claim::Local(seq) = due.claim else { panic!("local claim") };
        assert!(d.still_pending(&due.key, seq));
        assert!(matches!(d.next(t0 + DEPART_DELAY * 3), Next::Empty));
    }

    #[test]
    fn an_arrival_while_the_timer_holds_the_entry_still_cancels_it() {
        let d = Delay::default();
        let t0 = Instant::now();
        let key = PendingKey::Member(ch("presence-a"), "u".into());
        d.schedule(key.clone(), vacated("presence-a"), t0, None).unwrap();
        let Next::Due(due) = d.next(t0) else { panic!("due") };
        let Claim::Local(seq) = due.claim else { panic!("local") };
        assert!(d.cancel(&key).is_some());
        assert!(!d.still_pending(&key, seq), "the arrival won");
    }

    #[test]
    fn churn_never_fills_the_queue() {
        let d = Delay::default();
        let t0 = Instant::now();
        for round in 0..(MAX_PENDING * 2) {
            let key = PendingKey::Channel(ch(&format!("c{}", round % 50)));
            d.cancel(&key);
            d.schedule(key, vacated("c"), t0 + DEPART_DELAY, None).unwrap();
        }
        assert_eq!(d.len(), 50);
    }

    #[test]
    fn shared_claims_are_cancelled_here_too_and_the_queue_is_bounded() {
        let d = Delay::default();
        let t0 = Instant::now();
        let key = PendingKey::Member(ch("presence-a"), "u".into());
        d.schedule(key.clone(), vacated("presence-a"), t0, Some("k".into())).unwrap();
        assert_eq!(d.cancel(&key), Some(Claim::Shared("k".into())));
        assert!(d.is_empty());
        assert_eq!(key.shared_suffix(), "mem\npresence-a\nu");
        d.schedule(key.clone(), vacated("presence-a"), t0, Some("k".into())).unwrap();
        let Next::Due(due) = d.next(t0) else { panic!("due") };
        assert_eq!(due.claim, Claim::Shared("k".into()));
        assert!(d.cancel(&key).is_none(), "past due, Redis decides");
        for i in 0..MAX_PENDING {
            d.schedule(PendingKey::Channel(ch(&format!("c{i}"))), vacated("c"), t0, None).unwrap();
        }
        assert!(d.schedule(PendingKey::Channel(ch("x")), vacated("x"), t0, None).is_err());
        // Replacing an existing key is not growth.
        assert!(d.schedule(PendingKey::Channel(ch("c0")), vacated("c"), t0, None).is_ok());
        assert_eq!(d.drain().len(), MAX_PENDING);
        assert!(matches!(d.next(t0), Next::Empty));
    }
}
