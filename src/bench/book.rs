//! Delivery accounting: which events were published to how many subscribers, how many
//! copies arrived and how late, and the same for presence joins and leaves.
//!
//! Every published event carries `MICROS:SEQ:ID` in its data: its send time on the bench's
//! clock, its sequence number on its channel (for duplicate detection per subscriber) and
//! its global id (for the time to its last subscriber).

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8, Ordering};

use super::histogram::{percentiles_of, Histogram, Percentiles};

/// Largest number of events one run may publish (32 bytes of bookkeeping each).
pub(crate) const MAX_EVENTS: usize = 1_000_000;
/// Per-subscriber duplicate detection covers sequence numbers below this.
const MAX_TRACKED_SEQ: u32 = 1 << 20;

const UNUSED: u8 = 0;
const IN_FLIGHT: u8 = 1;
const PUBLISHED: u8 = 2;
const FAILED: u8 = 3;

#[derive(Debug, Default)]
struct EventSlot {
    state: AtomicU8,
    expected: AtomicU32,
    received: AtomicU32,
    /// Latency of the slowest copy so far (µs).
    last_us: AtomicU64,
    /// When the HTTP API answered its publish, on the bench's clock (µs; 0 = not yet).
    answered_us: AtomicU64,
}

/// The events of a run, indexed by global id, and the subscriber count of each channel.
#[derive(Debug)]
pub(crate) struct EventBook {
    slots: Box<[EventSlot]>,
    /// Sockets whose subscription to channel `i` succeeded.
    pub subscribers: Box<[AtomicU32]>,
    /// Latency of every delivery.
    pub latency: Histogram,
    /// Copies received.
    pub delivered: AtomicU64,
    /// Copies a subscriber had already received.
    pub duplicates: AtomicU64,
    /// Copies that arrived after a later event of the same channel had reached the same
    /// subscriber, the later event published only after this one was accepted.
    pub reordered: AtomicU64,
    /// The same, where the two publishes were in flight together (the server may take
    /// them in either order).
    pub reordered_overlapping: AtomicU64,
    /// Event frames whose data was not a bench header.
    pub foreign: AtomicU64,
}

/// Delivery figures of a run.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub(crate) struct DeliverySummary {
    /// Events accepted by the HTTP API.
    pub events_published: u64,
    /// Deliveries the accepted events owed (subscribers of their channel at send time).
    pub expected: u64,
    /// Copies of accepted events received.
    pub received: u64,
    /// `expected − received` (never below 0).
    pub lost: u64,
    /// Copies received twice by the same subscriber.
    pub duplicates: u64,
    /// Copies a subscriber received after a later event of the same channel that was
    /// published only once this one had been accepted: out of order, a server fault.
    pub reordered: u64,
    /// Copies received after a later event whose publish overlapped this one's in flight
    /// (both requests open at once: the server may take them in either order).
    pub reordered_overlapping: u64,
    /// Latency of each delivery, from the publish request's start to the frame's arrival.
    pub latency: Percentiles,
    /// Per event: latency of its last copy, over events that reached every subscriber.
    pub time_to_last: Percentiles,
    /// Events that missed at least one subscriber.
    pub incomplete_events: u64,
}

impl EventBook {
    /// Room for `events` events over `channels` channels.
    pub(crate) fn new(events: usize, channels: usize) -> Self {
        EventBook {
            slots: (0..events.min(MAX_EVENTS)).map(|_| EventSlot::default()).collect(),
            subscribers: (0..channels).map(|_| AtomicU32::new(0)).collect(),
            latency: Histogram::new(),
            delivered: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            reordered: AtomicU64::new(0),
            reordered_overlapping: AtomicU64::new(0),
            foreign: AtomicU64::new(0),
        }
    }

    /// Events the book can hold.
    pub(crate) fn capacity(&self) -> usize {
        self.slots.len()
    }

    /// Marks event `id` as sent to `channel`, owing a copy to each current subscriber.
    pub(crate) fn start(&self, id: usize, channel: usize) {
        let expected = self.subscribers.get(channel).map_or(0, |s| s.load(Ordering::Relaxed));
        if let Some(slot) = self.slots.get(id) {
            slot.expected.store(expected, Ordering::Relaxed);
            slot.state.store(IN_FLIGHT, Ordering::Release);
        }
    }

    /// Records the HTTP API's answer for event `id`, received at `at_us`.
    pub(crate) fn finish(&self, id: usize, accepted: bool, at_us: u64) {
        if let Some(slot) = self.slots.get(id) {
            slot.answered_us.store(at_us.max(1), Ordering::Release);
            slot.state.store(if accepted { PUBLISHED } else { FAILED }, Ordering::Release);
        }
    }

    /// Counts a copy of event `id` that arrived after a later event of its channel, sent
    /// at `later_sent_us`: a true reordering when `id` had been answered before that send,
    /// an overlapping pair otherwise.
    pub(crate) fn out_of_order(&self, id: usize, later_sent_us: u64) {
        let answered = self.slots.get(id).map_or(0, |s| s.answered_us.load(Ordering::Acquire));
        if answered != 0 && answered <= later_sent_us {
            self.reordered.fetch_add(1, Ordering::Relaxed);
        } else {
            self.reordered_overlapping.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Records one copy of event `id`, `latency_us` after it was sent.
    pub(crate) fn deliver(&self, id: usize, latency_us: u64) {
        self.latency.record_us(latency_us);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if let Some(slot) = self.slots.get(id) {
            slot.received.fetch_add(1, Ordering::Relaxed);
            slot.last_us.fetch_max(latency_us, Ordering::Relaxed);
        }
    }

    /// Copies still owed by accepted events.
    pub(crate) fn outstanding(&self) -> u64 {
        self.slots
            .iter()
            .filter(|s| s.state.load(Ordering::Acquire) == PUBLISHED)
            .map(|s| u64::from(s.expected.load(Ordering::Relaxed).saturating_sub(s.received.load(Ordering::Relaxed))))
            .sum()
    }

    /// Events whose request has not been answered yet.
    pub(crate) fn in_flight(&self) -> usize {
        self.slots.iter().filter(|s| s.state.load(Ordering::Acquire) == IN_FLIGHT).count()
    }

    /// The figures so far.
    pub(crate) fn summary(&self) -> DeliverySummary {
        let mut out = DeliverySummary::default();
        let mut last = Vec::new();
        for s in self.slots.iter() {
            let state = s.state.load(Ordering::Acquire);
            if state == UNUSED || state == FAILED {
                continue;
            }
            let (expected, received) = (s.expected.load(Ordering::Relaxed), s.received.load(Ordering::Relaxed));
            if state == PUBLISHED {
                out.events_published += 1;
                out.expected += u64::from(expected);
                out.received += u64::from(received.min(expected));
            }
            if received >= expected && expected > 0 {
                last.push(s.last_us.load(Ordering::Relaxed));
            } else if expected > 0 {
                out.incomplete_events += 1;
            }
        }
        out.lost = out.expected - out.received;
        out.duplicates = self.duplicates.load(Ordering::Relaxed);
        out.reordered = self.reordered.load(Ordering::Relaxed);
        out.reordered_overlapping = self.reordered_overlapping.load(Ordering::Relaxed);
        out.latency = self.latency.percentiles();
        out.time_to_last = percentiles_of(last);
        out
    }
}

/// One subscriber's record of the sequence numbers it received on its channel.
#[derive(Debug, Default)]
pub(crate) struct SeqSet {
    bits: Vec<u64>,
    /// The highest sequence number received so far, and its event's send time (µs).
    highest: Option<(u32, u64)>,
}

impl SeqSet {
    /// When `seq` (sent at `sent_us`) arrives after a higher one did: the send time of
    /// that higher one. Records `seq`.
    pub(crate) fn out_of_order(&mut self, seq: u32, sent_us: u64) -> Option<u64> {
        match self.highest {
            Some((h, h_sent)) if seq < h => Some(h_sent),
            _ => {
                self.highest = Some((seq, sent_us));
                None
            }
        }
    }

    /// Marks `seq`; returns false when it was already there (a duplicate).
    pub(crate) fn insert(&mut self, seq: u32) -> bool {
        if seq >= MAX_TRACKED_SEQ {
            return true;
        }
        let (word, bit) = ((seq / 64) as usize, seq % 64);
        if word >= self.bits.len() {
            self.bits.resize(word + 1, 0);
        }
        let fresh = self.bits[word] & (1 << bit) == 0;
        self.bits[word] |= 1 << bit;
        fresh
    }
}

/// Parses an event's `MICROS:SEQ:ID[:padding]` header.
pub(crate) fn parse_header(data: &str) -> Option<(u64, u32, usize)> {
    let mut it = data.splitn(4, ':');
    let t = it.next()?.parse().ok()?;
    let seq = it.next()?.parse().ok()?;
    let id = it.next()?.parse().ok()?;
    Some((t, seq, id))
}

/// Builds event data: the header, then `:` and dots up to `payload` bytes in all.
pub(crate) fn event_data(sent_us: u64, seq: u32, id: usize, payload: usize) -> String {
    let mut s = format!("{sent_us}:{seq}:{id}");
    if s.len() + 1 < payload {
        s.push(':');
        s.extend(std::iter::repeat_n('.', payload - s.len()));
    }
    s
}

/// Presence accounting: when each user last joined or left, and the frames that followed.
#[derive(Debug)]
pub(crate) struct PresenceBook {
    /// The channel's name.
    pub channel: String,
    /// Per user: bench-clock time (µs) of the latest join or leave command.
    action_us: Box<[AtomicU64]>,
    /// Per user: whether its socket is connected and subscribed (set by the socket).
    pub member: Box<[AtomicBool]>,
    /// Latency of `member_added`/`member_removed` frames after their command.
    pub latency: Histogram,
    /// Member frames received while measuring.
    pub frames: AtomicU64,
    /// Member frames the joins and leaves owed (other members at the time).
    pub expected: AtomicU64,
    /// Joins commanded.
    pub joins: AtomicU64,
    /// Leaves commanded.
    pub leaves: AtomicU64,
}

impl PresenceBook {
    /// A book for users `0..users` of `channel`.
    pub(crate) fn new(channel: String, users: usize) -> Self {
        PresenceBook {
            channel,
            action_us: (0..users).map(|_| AtomicU64::new(0)).collect(),
            member: (0..users).map(|_| AtomicBool::new(false)).collect(),
            latency: Histogram::new(),
            frames: AtomicU64::new(0),
            expected: AtomicU64::new(0),
            joins: AtomicU64::new(0),
            leaves: AtomicU64::new(0),
        }
    }

    /// The presence user id of user `n`.
    pub(crate) fn user_id(n: usize) -> String {
        format!("u{n}")
    }

    /// Stamps a join or leave of user `n` at `now_us`.
    pub(crate) fn stamp(&self, n: usize, now_us: u64) {
        if let Some(a) = self.action_us.get(n) {
            a.store(now_us, Ordering::Relaxed);
        }
    }

    /// Records a member frame about `user_id` arriving at `now_us`.
    /// Frames about users the churn has not touched yet (left over from the ramp's
    /// joins) are not counted.
    pub(crate) fn observe(&self, user_id: &str, now_us: u64) {
        let n = user_id.strip_prefix('u').and_then(|n| n.parse::<usize>().ok());
        let Some(at) = n.and_then(|n| self.action_us.get(n)).map(|a| a.load(Ordering::Relaxed)) else {
            return;
        };
        if at > 0 {
            self.frames.fetch_add(1, Ordering::Relaxed);
            self.latency.record_us(now_us.saturating_sub(at));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_round_trip() {
        let d = event_data(123_456, 7, 42, 100);
        assert_eq!(d.len(), 100);
        assert_eq!(parse_header(&d), Some((123_456, 7, 42)));
        assert_eq!(parse_header(&event_data(1, 2, 3, 0)), Some((1, 2, 3)));
        assert_eq!(parse_header("hello"), None);
    }

    #[test]
    fn seq_set_finds_arrivals_out_of_publish_order() {
        let mut s = SeqSet::default();
        assert_eq!(s.out_of_order(0, 10), None);
        assert_eq!(s.out_of_order(2, 30), None);
        assert_eq!(s.out_of_order(1, 20), Some(30));
        assert_eq!(s.out_of_order(3, 40), None);
    }

    #[test]
    fn a_late_copy_is_a_reordering_only_when_the_later_event_was_sent_after_its_answer() {
        let b = EventBook::new(4, 1);
        b.start(0, 0);
        b.finish(0, true, 100);
        // Event 1 sent at 150, after event 0 was answered: a late copy of 0 is a fault.
        b.out_of_order(0, 150);
        // Event 1 sent at 50, while event 0 was in flight: overlapping.
        b.out_of_order(0, 50);
        // Event 2 not answered yet: overlapping.
        b.out_of_order(2, 500);
        let s = b.summary();
        assert_eq!((s.reordered, s.reordered_overlapping), (1, 2));
    }

    #[test]
    fn seq_set_finds_duplicates() {
        let mut s = SeqSet::default();
        assert!(s.insert(0));
        assert!(s.insert(130));
        assert!(!s.insert(130));
        assert!(s.insert(MAX_TRACKED_SEQ));
        assert!(s.insert(MAX_TRACKED_SEQ));
    }

    #[test]
    fn book_counts_losses_and_time_to_last() {
        let b = EventBook::new(4, 1);
        b.subscribers[0].store(2, Ordering::Relaxed);
        b.start(0, 0);
        b.finish(0, true, 100);
        b.deliver(0, 1_000);
        b.deliver(0, 3_000);
        b.start(1, 0);
        b.finish(1, true, 200);
        b.deliver(1, 500);
        b.start(2, 0);
        b.finish(2, false, 300);
        let s = b.summary();
        assert_eq!((s.events_published, s.expected, s.received, s.lost), (2, 4, 3, 1));
        assert_eq!((s.time_to_last.count, s.time_to_last.max_ms, s.incomplete_events), (1, 3.0, 1));
        assert_eq!(b.outstanding(), 1);
    }
}
