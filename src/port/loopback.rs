//! A node's own HTTP API publishes, delivered to its own sockets in the bus's order.
//!
//! Events from the other nodes reach a node's sockets when its subscription reads them;
//! under load that read can lag behind the broker by tens of milliseconds. A node that
//! fanned its own publishes out at once could then let a later event overtake an
//! earlier one a client had already been told was published (publish 1 through node A,
//! answered; publish 2 through node B: B's sockets saw 2 before 1 still queued in B's
//! subscription). So an engine whose subscription gets its own messages back holds the
//! local delivery ([`Loopback::hold`]) and runs it when the message comes back
//! ([`Loopback::release`]), after everything the broker ordered before it. If the copy
//! does not come back (the subscription was lost, the publish dropped), the delivery
//! runs anyway after at most [`LOOPBACK_WAIT`]: late, never lost, never twice.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;
use tokio::sync::oneshot;

use super::BoxFuture;

/// A held local delivery: fans the event out to this node's sockets.
pub type LocalDelivery = Box<dyn FnOnce() + Send>;

/// Longest a local delivery waits for its message to come back from the bus once the
/// broker has acknowledged it.
pub const LOOPBACK_WAIT: Duration = Duration::from_secs(2);

/// The local deliveries waiting for their messages to come back, by sequence number
/// (the number travels in the bus envelope).
#[derive(Default)]
pub struct Loopback {
    next: AtomicU64,
    held: Mutex<BTreeMap<u64, Held>>,
}

struct Held {
    deliver: LocalDelivery,
    /// Dropped when the delivery runs: wakes the waiter of [`Loopback::settle`].
    _released: oneshot::Sender<()>,
}

impl Loopback {
    /// Holds `deliver`; returns the number to send with the message and a receiver that
    /// completes once the delivery has run.
    pub fn hold(&self, deliver: LocalDelivery) -> (u64, oneshot::Receiver<()>) {
        let seq = self.next.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.held.lock().insert(seq, Held { deliver, _released: tx });
        (seq, rx)
    }

    /// The message numbered `seq` came back (or waiting for it ended): runs its
    /// delivery, unless it already ran.
    pub fn release(&self, seq: u64) {
        let held = self.held.lock().remove(&seq);
        if let Some(h) = held {
            (h.deliver)();
        }
    }

    /// Runs every held delivery, oldest first: the subscription was lost, so nothing
    /// held will come back on it.
    pub fn release_all(&self) {
        let held = std::mem::take(&mut *self.held.lock());
        for h in held.into_values() {
            (h.deliver)();
        }
    }

    /// How many deliveries are held.
    pub fn len(&self) -> usize {
        self.held.lock().len()
    }

    /// Whether none is held.
    pub fn is_empty(&self) -> bool {
        self.held.lock().is_empty()
    }

    /// Holds `deliver` and has `enqueue` queue the message with its number and the
    /// sender the engine sends to once the broker acknowledged it (dropped unused if
    /// the message was dropped); see [`Loopback::settle`] for the rest.
    pub fn looped(
        self: &Arc<Self>,
        deliver: LocalDelivery,
        enqueue: impl FnOnce(u64, oneshot::Sender<()>),
    ) -> BoxFuture<'static, ()> {
        let (seq, released) = self.hold(deliver);
        let (sent_tx, sent) = oneshot::channel();
        enqueue(seq, sent_tx);
        self.settle(seq, sent, released)
    }

    /// Sees a held publish through: `sent` completes with `Ok` once the broker has
    /// acknowledged the message, with an error if it was dropped. A dropped message
    /// is delivered locally at once; an acknowledged one when it comes back, or after
    /// [`LOOPBACK_WAIT`]. Returns what the HTTP API waits for: the acknowledgement (or
    /// the drop), never the local delivery. Runs on its own task, so an API request
    /// that gives up waiting cannot cancel the delivery.
    pub fn settle(
        self: &Arc<Self>,
        seq: u64,
        sent: oneshot::Receiver<()>,
        released: oneshot::Receiver<()>,
    ) -> BoxFuture<'static, ()> {
        let (done_tx, done_rx) = oneshot::channel::<()>();
        let this = self.clone();
        tokio::spawn(async move {
            let published = sent.await.is_ok();
            drop(done_tx);
            if published {
                let _ = tokio::time::timeout(LOOPBACK_WAIT, released).await;
            }
            this.release(seq);
        });
        Box::pin(async move {
            let _ = done_rx.await;
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Waits (bounded) until no delivery is held.
    async fn until_empty(lb: &Loopback) {
        tokio::time::timeout(Duration::from_secs(5), async {
            while !lb.is_empty() {
                tokio::task::yield_now().await;
            }
        })
        .await
        .expect("every delivery ran");
    }

    fn counter() -> (Arc<AtomicU64>, impl Fn(u64) -> LocalDelivery) {
        let log = Arc::new(AtomicU64::new(0));
        let l = log.clone();
        (log, move |digit: u64| {
            let l = l.clone();
            Box::new(move || {
                // Appends a digit: the value records the order the deliveries ran in.
                let v = l.load(Ordering::Relaxed);
                l.store(v * 10 + digit, Ordering::Relaxed);
            })
        })
    }

    #[test]
    fn a_delivery_runs_once_when_released_and_release_all_runs_the_rest_in_order() {
        let lb = Loopback::default();
        let (log, d) = counter();
        let (a, _) = lb.hold(d(1));
        let (_b, _) = lb.hold(d(2));
        let (_c, _) = lb.hold(d(3));
        lb.release(a);
        lb.release(a);
        assert_eq!(log.load(Ordering::Relaxed), 1);
        assert_eq!(lb.len(), 2);
        lb.release_all();
        assert_eq!(log.load(Ordering::Relaxed), 123);
        assert!(lb.is_empty());
    }

    #[tokio::test]
    async fn settle_answers_on_the_acknowledgement_and_delivers_a_dropped_message_at_once() {
        let lb = Arc::new(Loopback::default());
        let (log, d) = counter();
        // Dropped: the sender goes away unused; delivered without waiting for a copy.
        let (seq, released) = lb.hold(d(7));
        let (tx, rx) = oneshot::channel();
        drop(tx);
        lb.settle(seq, rx, released).await;
        until_empty(&lb).await;
        assert_eq!(log.load(Ordering::Relaxed), 7);

        // Acknowledged: the answer comes first; the delivery waits for the copy.
        let (seq, released) = lb.hold(d(8));
        let (tx, rx) = oneshot::channel();
        tx.send(()).unwrap();
        lb.settle(seq, rx, released).await;
        assert_eq!(lb.len(), 1, "held until the copy comes back");
        lb.release(seq);
        assert_eq!(log.load(Ordering::Relaxed), 78);
    }

    #[tokio::test(start_paused = true)]
    async fn a_copy_that_never_comes_back_is_delivered_after_the_wait() {
        let lb = Arc::new(Loopback::default());
        let (log, d) = counter();
        let (seq, released) = lb.hold(d(5));
        let (tx, rx) = oneshot::channel();
        tx.send(()).unwrap();
        lb.settle(seq, rx, released).await;
        tokio::time::sleep(LOOPBACK_WAIT + Duration::from_millis(10)).await;
        until_empty(&lb).await;
        assert_eq!(log.load(Ordering::Relaxed), 5);
    }
}
