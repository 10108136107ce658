//! What a socket of a clustered presence channel has been told about the members,
//! kept only around its `subscription_succeeded` so bus messages cannot contradict
//! the member list it got.
//!
//! In a cluster the member list comes from Redis, read by the state task a moment after
//! the socket subscribed, while `member_added`/`member_removed` from other nodes come
//! over the bus on another connection: the two are not ordered. A user who joined on
//! node A just before a socket subscribed on node B is in the socket's list, and A's
//! `member_added` for that user can still arrive at B afterwards. So, per socket:
//!
//! * between the subscribe and the list (pending), member events are held back, not
//!   sent ahead of `subscription_succeeded`;
//! * the list then seeds a set of the members the socket knows, the held-back events
//!   are replayed through it, and for [`VIEW_WINDOW`] every member event is checked
//!   against it: `member_added` for a user it already lists and `member_removed` for
//!   one it does not list are skipped; the others are sent and update the set.
//!
//! Memory is bounded: at most [`MAX_READY_VIEWS`] sets per channel (the oldest goes
//! first), none for a list above [`MAX_VIEW_MEMBERS`] members (those sockets get
//! events unfiltered, as before), at most [`MAX_HELD`] held-back events per pending
//! socket, and user ids are kept as 64-bit hashes. A channel without views pays one
//! uncontended lock per member event.

use std::collections::hash_map::RandomState;
use std::collections::{HashMap, HashSet};
use std::hash::BuildHasher;
use std::time::Duration;

use tokio::time::Instant;

use super::Frame;
use crate::protocol::SocketId;

/// How long after its member list a socket's set is kept: far above any bus lag a
/// healthy cluster shows (the console alerts at 500 ms).
pub const VIEW_WINDOW: Duration = Duration::from_secs(10);
/// Member sets kept per channel; a burst of joins beyond it drops the oldest.
pub const MAX_READY_VIEWS: usize = 256;
/// Largest member list that gets a set.
pub const MAX_VIEW_MEMBERS: usize = 4096;
/// Member events held back per socket waiting for its list.
pub const MAX_HELD: usize = 128;

/// A presence member event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemberEvent {
    /// `pusher_internal:member_added`.
    Added,
    /// `pusher_internal:member_removed`.
    Removed,
}

/// What to do with a member event for one socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Send it.
    Send,
    /// Do not send it now (held back for the list, or redundant).
    Withhold,
}

enum View {
    /// Subscribed; the member list is not sent yet.
    Pending { held: Vec<(MemberEvent, u64, Frame)> },
    /// The list was sent at `since`; `members` is what the socket knows now.
    Ready { since: Instant, members: HashSet<u64> },
}

/// The views of one channel's sockets (see the module doc).
#[derive(Default)]
pub struct PresenceViews {
    views: HashMap<SocketId, View>,
    hasher: RandomState,
}

impl PresenceViews {
    /// Whether no socket has a view (member events go to every subscriber).
    pub fn is_empty(&self) -> bool {
        self.views.is_empty()
    }

    /// The hash a user id is kept as.
    pub fn key(&self, user_id: &str) -> u64 {
        self.hasher.hash_one(user_id)
    }

    /// A socket subscribed and waits for its member list.
    pub fn pending(&mut self, socket: SocketId) {
        self.views.insert(socket, View::Pending { held: Vec::new() });
    }

    /// A socket left the channel.
    pub fn forget(&mut self, socket: SocketId) {
        self.views.remove(&socket);
    }

    /// Drops the sets older than [`VIEW_WINDOW`].
    pub fn expire(&mut self, now: Instant) {
        self.views.retain(|_, v| match v {
            View::Pending { .. } => true,
            View::Ready { since, .. } => now.duration_since(*since) < VIEW_WINDOW,
        });
    }

    /// Decides a member event (`key` from [`PresenceViews::key`]) for one socket; a
    /// pending socket keeps it for [`PresenceViews::ready`].
    pub fn admit(&mut self, socket: SocketId, event: MemberEvent, key: u64, frame: &Frame) -> Verdict {
        match self.views.get_mut(&socket) {
            None => Verdict::Send,
            Some(View::Pending { held }) => {
                if held.len() < MAX_HELD {
                    held.push((event, key, frame.clone()));
                } else {
                    tracing::debug!(%socket, "Too many presence events before the member list; dropped one.");
                }
                Verdict::Withhold
            }
            Some(View::Ready { members, .. }) => apply(members, event, key),
        }
    }

    /// The socket was sent a member list with `ids`: returns the held-back events it
    /// should get after it, in order, and keeps its set for [`VIEW_WINDOW`].
    pub fn ready<'a>(
        &mut self,
        socket: SocketId,
        ids: impl ExactSizeIterator<Item = &'a str>,
        now: Instant,
    ) -> Vec<Frame> {
        let held = match self.views.remove(&socket) {
            Some(View::Pending { held }) => held,
            _ => Vec::new(),
        };
        if ids.len() > MAX_VIEW_MEMBERS {
            return held.into_iter().map(|(_, _, f)| f).collect();
        }
        let mut members: HashSet<u64> = ids.map(|id| self.key(id)).collect();
        let replay = held
            .into_iter()
            .filter(|(e, k, _)| apply(&mut members, *e, *k) == Verdict::Send)
            .map(|(_, _, f)| f)
            .collect();
        self.expire(now);
        let ready = self.views.values().filter(|v| matches!(v, View::Ready { .. })).count();
        if ready >= MAX_READY_VIEWS {
            let oldest = self
                .views
                .iter()
                .filter_map(|(s, v)| match v {
                    View::Ready { since, .. } => Some((*since, *s)),
                    View::Pending { .. } => None,
                })
                .min()
                .map(|(_, s)| s);
            if let Some(s) = oldest {
                self.views.remove(&s);
            }
        }
        self.views.insert(socket, View::Ready { since: now, members });
        replay
    }
}

/// Checks an event against what a socket knows, updating it when the event is sent.
fn apply(members: &mut HashSet<u64>, event: MemberEvent, key: u64) -> Verdict {
    let news = match event {
        MemberEvent::Added => members.insert(key),
        MemberEvent::Removed => members.remove(&key),
    };
    if news {
        Verdict::Send
    } else {
        Verdict::Withhold
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sid(n: u64) -> SocketId {
        format!("{n}.{n}").parse().unwrap_or_else(|_| unreachable!())
    }

    #[test]
    fn a_listed_member_is_not_added_again_and_an_unlisted_one_not_removed() {
        let mut v = PresenceViews::default();
        let now = Instant::now();
        let (s, other) = (sid(1), sid(2));
        let f = Frame::from("x");
        v.pending(s);
        assert!(v.ready(s, ["alice", "bob"].into_iter(), now).is_empty());
        let alice = v.key("alice");
        let carol = v.key("carol");
        assert_eq!(v.admit(s, MemberEvent::Added, alice, &f), Verdict::Withhold);
        assert_eq!(v.admit(s, MemberEvent::Removed, carol, &f), Verdict::Withhold);
        assert_eq!(v.admit(s, MemberEvent::Added, carol, &f), Verdict::Send);
        assert_eq!(v.admit(s, MemberEvent::Added, carol, &f), Verdict::Withhold);
        assert_eq!(v.admit(s, MemberEvent::Removed, alice, &f), Verdict::Send);
        assert_eq!(v.admit(s, MemberEvent::Added, alice, &f), Verdict::Send);
        // A socket without a view gets everything.
        assert_eq!(v.admit(other, MemberEvent::Added, alice, &f), Verdict::Send);
        // After the window the set is gone.
        v.expire(now + VIEW_WINDOW);
        assert!(v.is_empty());
        assert_eq!(v.admit(s, MemberEvent::Added, alice, &f), Verdict::Send);
    }

    #[test]
    fn events_before_the_list_are_held_and_replayed_against_it() {
        let mut v = PresenceViews::default();
        let s = sid(1);
        let (a, b, c) = (Frame::from("add alice"), Frame::from("add carol"), Frame::from("remove dave"));
        v.pending(s);
        assert_eq!(v.admit(s, MemberEvent::Added, v.key("alice"), &a), Verdict::Withhold);
        assert_eq!(v.admit(s, MemberEvent::Added, v.key("carol"), &b), Verdict::Withhold);
        assert_eq!(v.admit(s, MemberEvent::Removed, v.key("dave"), &c), Verdict::Withhold);
        // The list (read after alice's join, before carol's) has alice: only carol follows.
        assert_eq!(v.ready(s, ["alice", "bob"].into_iter(), Instant::now()), vec![b]);
    }

    #[test]
    fn sets_are_bounded_per_channel_and_by_list_size() {
        let mut v = PresenceViews::default();
        let now = Instant::now();
        for n in 0..(MAX_READY_VIEWS as u64 + 10) {
            v.pending(sid(n + 1));
            v.ready(sid(n + 1), ["a"].into_iter(), now + Duration::from_millis(n));
        }
        assert_eq!(v.views.len(), MAX_READY_VIEWS);
        assert!(!v.views.contains_key(&sid(1)), "the oldest set goes first");
        let big: Vec<String> = (0..=MAX_VIEW_MEMBERS).map(|i| i.to_string()).collect();
        let s = sid(100_000);
        v.pending(s);
        v.ready(s, big.iter().map(String::as_str), now);
        assert!(!v.views.contains_key(&s));
    }
}
