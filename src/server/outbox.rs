//! A socket's bounded outbound queue.
//!
//! Fan-out pushes shared frame bytes (a reference-count increment, no copy) and wakes
//! the connection's task, which writes them in batches. The queue is bounded in bytes:
//! a socket that cannot keep up is closed with 4100 instead of growing memory. An idle
//! socket's queue allocates nothing. A push behind a queue already a quarter full is
//! [`Push::Backlogged`]: still queued, and counted by fan-out as waiting behind a slow
//! reader (`rtc_fanout_backlogged_total`).

use std::collections::VecDeque;

use super::Frame;
use parking_lot::Mutex;
use tokio::sync::Notify;

use crate::protocol::CloseCode;

/// A request to close the socket, queued behind nothing: it wins over pending frames.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CloseRequest {
    /// The close code.
    pub code: CloseCode,
    /// The reason text.
    pub reason: String,
    /// Send `pusher:error` with the same code before the close frame.
    pub with_error: bool,
}

#[derive(Default)]
struct Inner {
    frames: VecDeque<Frame>,
    bytes: usize,
    close: Option<CloseRequest>,
}

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Queued.
    Queued,
    /// Queued behind a backlog: the queue already held at least a quarter of its limit
    /// (the socket's reader is not keeping up).
    Backlogged,
    /// The queue was full: the socket is now being closed as a slow consumer.
    Overflowed,
    /// The socket is already closing; the frame was dropped.
    Closing,
}

/// The queue. Shared between fan-out (producers) and the connection task (consumer).
pub struct Outbox {
    inner: Mutex<Inner>,
    notify: Notify,
    /// Signalled on close requests only, so a task blocked writing to a clogged socket
    /// can give up at once.
    close_notify: Notify,
    limit: usize,
}

/// A queue holding at least `limit / BACKLOG_DIVISOR` bytes is backlogged.
const BACKLOG_DIVISOR: usize = 4;

impl Outbox {
    /// A queue holding at most `limit_bytes` of frames.
    pub fn new(limit_bytes: usize) -> Self {
        Outbox {
            inner: Mutex::new(Inner::default()),
            notify: Notify::new(),
            close_notify: Notify::new(),
            limit: limit_bytes,
        }
    }

    /// Queues a frame for the socket.
    pub fn push(&self, frame: Frame) -> Push {
        let mut g = self.inner.lock();
        if g.close.is_some() {
            return Push::Closing;
        }
        if g.bytes + frame.len() > self.limit {
            g.frames.clear();
            g.frames.shrink_to_fit();
            g.bytes = 0;
            g.close = Some(CloseRequest {
                code: CloseCode::OverCapacity,
                reason: "Over capacity: the client is not reading fast enough".into(),
                with_error: false,
            });
            drop(g);
            self.notify.notify_one();
            self.close_notify.notify_one();
            return Push::Overflowed;
        }
        let behind = g.bytes >= self.limit / BACKLOG_DIVISOR;
        g.bytes += frame.len();
        g.frames.push_back(frame);
        let first = g.frames.len() == 1;
        drop(g);
        if first {
            self.notify.notify_one();
        }
        if behind {
            Push::Backlogged
        } else {
            Push::Queued
        }
    }

    /// Asks the connection to close with `code`. The first request wins.
    pub fn close(&self, code: CloseCode, reason: impl Into<String>, with_error: bool) {
        let mut g = self.inner.lock();
        if g.close.is_none() {
            g.close = Some(CloseRequest { code, reason: reason.into(), with_error });
        }
        drop(g);
        self.notify.notify_one();
        self.close_notify.notify_one();
    }

    /// Whether a close has been requested.
    pub fn is_closing(&self) -> bool {
        self.inner.lock().close.is_some()
    }

    /// Waits until there is something to do.
    pub async fn ready(&self) {
        self.notify.notified().await
    }

    /// Waits for a close request (used while blocked writing).
    pub async fn close_requested(&self) {
        self.close_notify.notified().await
    }

    /// Moves up to `max` queued frames into `out`; returns a pending close request, if
    /// any (frames queued before it are still returned so the client gets them first).
    pub fn take(&self, out: &mut Vec<Frame>, max: usize) -> Option<CloseRequest> {
        let mut g = self.inner.lock();
        let n = g.frames.len().min(max);
        let mut taken = 0;
        for f in g.frames.drain(..n) {
            taken += f.len();
            out.push(f);
        }
        g.bytes = g.bytes.saturating_sub(taken);
        if g.frames.is_empty() && g.frames.capacity() > 64 {
            // Give back memory after a burst so idle sockets stay small.
            g.frames.shrink_to(0);
        }
        let more = !g.frames.is_empty();
        let close = g.close.clone();
        drop(g);
        if more {
            // Leave a permit so the task comes back for the rest.
            self.notify.notify_one();
        }
        close
    }

    /// Bytes queued now.
    pub fn queued_bytes(&self) -> usize {
        self.inner.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_turns_into_a_4100_close_and_frees_the_queue() {
        let o = Outbox::new(10);
        assert_eq!(o.push(Frame::from_static("12345")), Push::Queued);
        // Queued too, behind a queue already a quarter full.
        assert_eq!(o.push(Frame::from_static("12345")), Push::Backlogged);
        assert_eq!(o.push(Frame::from_static("1")), Push::Overflowed);
        assert_eq!(o.queued_bytes(), 0);
        assert_eq!(o.push(Frame::from_static("1")), Push::Closing);
        let mut out = Vec::new();
        let close = o.take(&mut out, 10).unwrap();
        assert_eq!(close.code, CloseCode::OverCapacity);
        assert!(out.is_empty());
    }

    #[test]
    fn pushes_behind_a_quarter_full_queue_are_backlogged() {
        let o = Outbox::new(40);
        assert_eq!(o.push(Frame::from_static("123456789")), Push::Queued);
        // 9 of 40 bytes queued: under a quarter.
        assert_eq!(o.push(Frame::from_static("1")), Push::Queued);
        // 10 of 40: a quarter.
        assert_eq!(o.push(Frame::from_static("1")), Push::Backlogged);
        let mut out = Vec::new();
        o.take(&mut out, 10);
        assert_eq!(o.push(Frame::from_static("1")), Push::Queued);
    }

    #[test]
    fn take_returns_frames_in_order_in_batches() {
        let o = Outbox::new(1000);
        for i in 0..5u8 {
            o.push(Frame::from(i.to_string()));
        }
        let mut out = Vec::new();
        assert!(o.take(&mut out, 3).is_none());
        assert_eq!(out.iter().map(|b| b.as_str()).collect::<Vec<_>>(), vec!["0", "1", "2"]);
        assert_eq!(o.queued_bytes(), 2);
        out.clear();
        o.take(&mut out, 10);
        assert_eq!(out.len(), 2);
        assert_eq!(o.queued_bytes(), 0);
    }
}
