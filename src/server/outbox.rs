//! A socket's bounded outbound queue, and on plain TCP its direct writer.
//!
//! Everything the server sends on a socket goes through here as complete WebSocket frames
//! ([`crate::protocol::frame::ws_text_frame`]): fan-out frames a broadcast once and pushes
//! the shared bytes (a reference-count increment, no copy) to every subscriber.
//!
//! **Direct writes.** On a plain TCP socket the outbox holds the socket's write half. A
//! push that finds the queue empty writes the frame at once with one non-blocking
//! `write()` from the pushing thread (the fan-out), and neither queues it nor wakes the
//! socket's task. Only when the kernel does not take all of it (partial write,
//! `WouldBlock`) is the rest queued and the task woken to finish the job when the socket
//! turns writable. Every write to the socket, direct or from the queue, happens under
//! the outbox's lock, and a direct write happens only when nothing is queued (not even
//! the tail of a partly written frame), so frames reach the socket exactly in push order.
//! On TLS the queue is always used and the socket's task writes it.
//!
//! **Bound.** The queue is bounded in bytes: a socket that cannot keep up is closed with
//! 4100 instead of growing memory. An idle socket's queue allocates nothing. A push
//! behind a queue already a quarter full is [`Push::Backlogged`]: still queued, and
//! counted by fan-out as waiting behind a slow reader (`rtc_fanout_backlogged_total`).

use std::collections::VecDeque;
use std::io::{self, IoSlice};
use std::sync::Arc;

use bytes::{Buf, Bytes};
use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;

use super::Frame;
use crate::protocol::{frame, CloseCode};

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
    /// Complete frames not yet (fully) written, oldest first.
    frames: VecDeque<Bytes>,
    /// Bytes of the front frame already written to the socket (direct mode).
    sent: usize,
    /// Bytes queued and not yet written.
    bytes: usize,
    close: Option<CloseRequest>,
    /// The socket's write half, when the outbox writes to it directly (plain TCP).
    writer: Option<Arc<OwnedWriteHalf>>,
}

/// Outcome of a push.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Push {
    /// Written to the socket at once: the kernel took all of it.
    Written,
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
/// Frames handed to one vectored write.
const IOV_MAX: usize = 64;
/// Room beyond the limit for the server's own control frames (the close frame and the
/// `pusher:error` before it, tungstenite's pong and close replies) once a socket is
/// closing; anything past it is dropped.
const CONTROL_ALLOWANCE: usize = 4096;

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

    /// Hands the outbox the socket's write half: from now on pushes that find the queue
    /// empty are written at once. Returns the shared half, for the task to wait on
    /// writability.
    pub fn attach(&self, writer: OwnedWriteHalf) -> Arc<OwnedWriteHalf> {
        let w = Arc::new(writer);
        self.inner.lock().writer = Some(w.clone());
        w
    }

    /// Takes the write half back (the socket is done): later pushes only queue.
    pub fn detach(&self) -> Option<Arc<OwnedWriteHalf>> {
        self.inner.lock().writer.take()
    }

    /// Queues a frame's text for the socket (framing it: one recipient).
    pub fn push(&self, text: Frame) -> Push {
        self.push_wire(frame::ws_text_frame(text.as_str().as_bytes()))
    }

    /// Queues a complete WebSocket frame (`wire`, shared between recipients).
    pub fn push_wire(&self, wire: Bytes) -> Push {
        let mut g = self.inner.lock();
        if g.close.is_some() {
            return Push::Closing;
        }
        if g.bytes + wire.len() > self.limit {
            let keep = usize::from(g.sent > 0);
            g.frames.truncate(keep);
            g.frames.shrink_to_fit();
            g.bytes = g.frames.front().map_or(0, |f| f.len() - g.sent);
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
        if Self::enqueue(&mut g, wire) {
            return Push::Written;
        }
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

    /// Queues a frame of the server's own (close, the error before it, a pong written by
    /// tungstenite): accepted while closing, dropped only past the limit plus a small
    /// allowance.
    pub fn push_control(&self, wire: Bytes) {
        let mut g = self.inner.lock();
        if g.bytes + wire.len() > self.limit + CONTROL_ALLOWANCE {
            return;
        }
        if !Self::enqueue(&mut g, wire) && g.frames.len() == 1 {
            drop(g);
            self.notify.notify_one();
        }
    }

    /// Writes `wire` at once when nothing is queued and the socket takes all of it
    /// (true); otherwise queues what is left of it (false).
    fn enqueue(g: &mut Inner, wire: Bytes) -> bool {
        if g.frames.is_empty() {
            let mut sent = 0;
            if let Some(w) = &g.writer {
                // A plain send() on the non-blocking descriptor rather than tokio's
                // `try_write`, which first reads the socket's readiness state (one more
                // cold cache line per subscriber) and clears it on WouldBlock. Leaving it
                // set is harmless: the task's `write_queued` writes through tokio, meets
                // the same WouldBlock, and only then waits for writability.
                let stream: &tokio::net::TcpStream = (**w).as_ref();
                match socket2::SockRef::from(stream).send(&wire) {
                    Ok(n) if n == wire.len() => return true,
                    Ok(n) => sent = n,
                    // WouldBlock, or an error the task will meet again and end on.
                    Err(_) => {}
                }
            }
            // The front frame: `sent` of it is on the wire already.
            g.sent = sent;
            g.bytes += wire.len() - sent;
        } else {
            g.bytes += wire.len();
        }
        g.frames.push_back(wire);
        false
    }

    /// Writes queued frames (direct mode) while the socket takes them: `Ok(true)` once
    /// the queue is empty, `Ok(false)` when the socket would block first.
    pub fn write_queued(&self) -> io::Result<bool> {
        let mut g = self.inner.lock();
        let Inner { frames, sent, bytes, writer, .. } = &mut *g;
        let Some(w) = writer else { return Ok(frames.is_empty()) };
        loop {
            if frames.is_empty() {
                if frames.capacity() > IOV_MAX {
                    frames.shrink_to(0);
                }
                return Ok(true);
            }
            let mut iov = [IoSlice::new(&[]); IOV_MAX];
            let mut n = 0;
            for (i, f) in frames.iter().take(IOV_MAX).enumerate() {
                iov[i] = IoSlice::new(if i == 0 { &f[*sent..] } else { f });
                n = i + 1;
            }
            let mut wrote = match w.try_write_vectored(&iov[..n]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(k) => k,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) => return Err(e),
            };
            *bytes = bytes.saturating_sub(wrote);
            while wrote > 0 {
                let Some(front) = frames.front() else { break };
                let left = front.len() - *sent;
                if wrote >= left {
                    wrote -= left;
                    *sent = 0;
                    frames.pop_front();
                } else {
                    *sent += wrote;
                    wrote = 0;
                }
            }
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

    /// The pending close request, if any.
    pub fn close_request(&self) -> Option<CloseRequest> {
        self.inner.lock().close.clone()
    }

    /// Waits until there is something to do.
    pub async fn ready(&self) {
        self.notify.notified().await
    }

    /// Waits for a close request (used while blocked writing).
    pub async fn close_requested(&self) {
        self.close_notify.notified().await
    }

    /// Moves up to `max` queued frames into `out` (queued mode: the task writes them);
    /// returns a pending close request, if any (frames queued before it are still
    /// returned so the client gets them first).
    pub fn take(&self, out: &mut Vec<Bytes>, max: usize) -> Option<CloseRequest> {
        let mut g = self.inner.lock();
        let n = g.frames.len().min(max);
        let mut taken = 0;
        let skip = std::mem::take(&mut g.sent);
        for (i, mut f) in g.frames.drain(..n).enumerate() {
            if i == 0 && skip > 0 {
                f.advance(skip);
            }
            taken += f.len();
            out.push(f);
        }
        g.bytes = g.bytes.saturating_sub(taken);
        if g.frames.is_empty() && g.frames.capacity() > IOV_MAX {
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

    fn text(b: &Bytes) -> &str {
        // Short test frames: a two-byte header.
        std::str::from_utf8(&b[2..]).unwrap()
    }

    #[test]
    fn overflow_turns_into_a_4100_close_and_frees_the_queue() {
        // Frames of 5 bytes of text are 7 bytes on the wire.
        let o = Outbox::new(20);
        assert_eq!(o.push(Frame::from_static("12345")), Push::Queued);
        // Queued too, behind a queue already a quarter full.
        assert_eq!(o.push(Frame::from_static("12345")), Push::Backlogged);
        assert_eq!(o.push(Frame::from_static("12345")), Push::Overflowed);
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
        assert_eq!(o.push(Frame::from_static("1234567")), Push::Queued);
        // 9 of 40 bytes queued: under a quarter.
        assert_eq!(o.push(Frame::from_static("")), Push::Queued);
        // 11 of 40: a quarter.
        assert_eq!(o.push(Frame::from_static("")), Push::Backlogged);
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
        assert_eq!(out.iter().map(text).collect::<Vec<_>>(), vec!["0", "1", "2"]);
        assert_eq!(o.queued_bytes(), 6);
        out.clear();
        o.take(&mut out, 10);
        assert_eq!(out.len(), 2);
        assert_eq!(o.queued_bytes(), 0);
    }

    #[test]
    fn control_frames_pass_a_closing_queue() {
        let o = Outbox::new(100);
        o.close(CloseCode::Reconnect, "bye", true);
        assert_eq!(o.push(Frame::from_static("x")), Push::Closing);
        o.push_control(Bytes::from_static(b"\x88\x00"));
        assert_eq!(o.queued_bytes(), 2);
    }
}
