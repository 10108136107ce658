//! One channel's local subscribers and presence members.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use super::Frame;
use bytes::Bytes;
use parking_lot::{Mutex, RwLock};
use tokio::time::Instant;

use super::conn_handle::ConnHandle;
use super::fanout::Delivery;
use super::outbox::Push;
use super::presence_view::{MemberEvent, PresenceViews, Verdict};
use crate::protocol::{ChannelName, CloseCode, SocketId};

/// Most frames one new subscriber's hold keeps (the hold lasts at most one engine round
/// trip, bounded by the engine): past it the socket is closed with 4100, as a full queue.
const HELD_MAX: usize = 1024;

/// One subscriber of a channel.
pub struct Subscriber {
    /// The connection.
    pub conn: Arc<ConnHandle>,
    /// For presence channels, the user id from the signed channel data.
    pub user_id: Option<Arc<str>>,
    /// Frames held back, in order, while the cluster engine is not yet receiving the
    /// channel's events from the other nodes ([`crate::port::ClusterPort::receiving`]);
    /// `None` once released (and always, on every engine but the sharded one).
    held: Option<Box<Mutex<Vec<Bytes>>>>,
}

impl Subscriber {
    /// A subscriber whose frames are held until [`Subscriber::release`] when `hold`.
    pub fn new(conn: Arc<ConnHandle>, user_id: Option<Arc<str>>, hold: bool) -> Self {
        Subscriber { conn, user_id, held: hold.then(Box::default) }
    }

    /// Sends a frame about this channel to this subscriber (held while its hold lasts).
    pub fn send(&self, frame: Frame) -> Push {
        match &self.held {
            Some(_) => self.send_wire(crate::protocol::frame::ws_text_frame(frame.as_str().as_bytes())),
            None => self.conn.push(frame),
        }
    }

    /// As [`Subscriber::send`] for a frame already encoded for WebSocket.
    pub fn send_wire(&self, wire: Bytes) -> Push {
        let Some(held) = &self.held else {
            return self.conn.push_wire(wire);
        };
        let mut held = held.lock();
        if held.len() >= HELD_MAX {
            self.conn.close(CloseCode::OverCapacity, CloseCode::OverCapacity.reason());
            return Push::Overflowed;
        }
        held.push(wire);
        Push::Queued
    }

    /// Whether its frames are still held.
    pub fn is_held(&self) -> bool {
        self.held.is_some()
    }

    /// Ends the hold: sends what it kept, in order (the caller holds the channel's
    /// subscriber lock for writing, so no fan-out slips in between).
    pub fn release(&mut self) {
        if let Some(held) = self.held.take() {
            for wire in held.into_inner() {
                self.conn.push_wire(wire);
            }
        }
    }
}

/// A presence member on this node: their info and how many of their sockets are in.
pub struct Member {
    /// Raw JSON of `user_info` (or `null`).
    pub info: Arc<str>,
    /// Sockets of this user subscribed here.
    pub sockets: u32,
}

/// A channel with at least one local subscriber.
pub struct Channel {
    /// Its name.
    pub name: ChannelName,
    /// Subscribers by socket id. Fan-out holds the read lock while queueing frames.
    pub subs: RwLock<HashMap<SocketId, Subscriber>>,
    /// Presence members by user id (presence channels only).
    pub members: Mutex<HashMap<Arc<str>, Member>>,
    /// When `subscription_count` was last sent, and whether a send is scheduled.
    pub count_sent: Mutex<(Option<Instant>, bool)>,
    /// Frames queued to this channel's subscribers (for the console's top channels).
    pub frames_out: AtomicU64,
    /// What sockets around their cluster member list know (presence channels in a
    /// cluster; see [`super::presence_view`]). Locked after `subs`.
    pub views: Mutex<PresenceViews>,
}

impl Channel {
    /// An empty channel.
    pub fn new(name: ChannelName) -> Self {
        Channel {
            name,
            subs: RwLock::new(HashMap::new()),
            members: Mutex::new(HashMap::new()),
            count_sent: Mutex::new((None, false)),
            frames_out: AtomicU64::new(0),
            views: Mutex::new(PresenceViews::default()),
        }
    }

    /// Number of local subscribers.
    pub fn subscriber_count(&self) -> usize {
        self.subs.read().len()
    }

    /// Number of distinct presence users.
    pub fn user_count(&self) -> usize {
        self.members.lock().len()
    }

    /// Sends `frame` to every subscriber except `except` (written at once to idle
    /// sockets, queued behind busy ones); returns how many got it.
    pub fn fan_out(&self, frame: &Frame, except: Option<SocketId>) -> usize {
        self.fan_out_counted(frame, except).delivered
    }

    /// As [`Channel::fan_out`], also counting the subscribers whose queue held a backlog.
    pub fn fan_out_counted(&self, frame: &Frame, except: Option<SocketId>) -> Delivery {
        let subs = self.subs.read();
        self.deliver(subs.values(), frame, except)
    }

    /// As [`Channel::fan_out`] over subscribers the caller already holds locked.
    pub fn fan_out_to<'a>(
        &self,
        subs: impl Iterator<Item = &'a Subscriber>,
        frame: &Frame,
        except: Option<SocketId>,
    ) -> usize {
        self.deliver(subs, frame, except).delivered
    }

    /// Queues a `member_added`/`member_removed` frame about `user_id` to every
    /// subscriber except `except`, minus what contradicts or repeats the member list a
    /// socket just got ([`super::presence_view`]); returns how many got it.
    pub fn fan_out_member(&self, event: MemberEvent, user_id: &str, frame: &Frame, except: Option<SocketId>) -> usize {
        let subs = self.subs.read();
        let mut views = self.views.lock();
        if views.is_empty() {
            drop(views);
            return self.deliver(subs.values(), frame, except).delivered;
        }
        views.expire(Instant::now());
        let key = views.key(user_id);
        let admitted = subs.values().filter(|s| {
            Some(s.conn.socket_id) != except && views.admit(s.conn.socket_id, event, key, frame) == Verdict::Send
        });
        self.deliver(admitted, frame, except).delivered
    }

    fn deliver<'a>(
        &self,
        subs: impl Iterator<Item = &'a Subscriber>,
        frame: &Frame,
        except: Option<SocketId>,
    ) -> Delivery {
        let mut d = Delivery::default();
        // Framed for WebSocket once; every subscriber shares the bytes.
        let mut wire = None;
        for sub in subs {
            if Some(sub.conn.socket_id) == except {
                continue;
            }
            let wire = wire.get_or_insert_with(|| crate::protocol::frame::ws_text_frame(frame.as_str().as_bytes()));
            if sub.send_wire(wire.clone()) == Push::Backlogged {
                d.backlogged += 1;
            }
            d.delivered += 1;
        }
        self.frames_out.fetch_add(d.delivered as u64, Ordering::Relaxed);
        d
    }
}
