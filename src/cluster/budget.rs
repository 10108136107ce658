//! A byte budget for a queue bounded in messages: a message is queued only when its
//! bytes fit, so a burst of large messages (10 KB events while Redis is slow or paused)
//! cannot hold hundreds of megabytes before the message-count bound is reached.

use std::sync::atomic::{AtomicUsize, Ordering};

/// Bytes queued now against a fixed limit; shared by the producer and the consumer.
#[derive(Debug)]
pub struct ByteBudget {
    used: AtomicUsize,
    limit: usize,
}

impl ByteBudget {
    /// A budget of `limit` bytes.
    pub const fn new(limit: usize) -> Self {
        ByteBudget { used: AtomicUsize::new(0), limit }
    }

    /// Takes `n` bytes if they fit; false (nothing taken) if they do not.
    pub fn try_take(&self, n: usize) -> bool {
        self.used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(n).filter(|&total| total <= self.limit)
            })
            .is_ok()
    }

    /// Gives back `n` bytes taken earlier (the message left the queue).
    pub fn give_back(&self, n: usize) {
        let _ = self.used.fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| Some(used.saturating_sub(n)));
    }

    /// Bytes taken now.
    #[cfg(test)]
    pub fn used(&self) -> usize {
        self.used.load(Ordering::Acquire)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_what_does_not_fit_and_recovers_when_given_back() {
        let b = ByteBudget::new(100);
        assert!(b.try_take(60));
        assert!(!b.try_take(41), "60 + 41 is over the limit");
        assert_eq!(b.used(), 60, "a refused take takes nothing");
        assert!(b.try_take(40));
        assert!(!b.try_take(1));
        b.give_back(60);
        assert!(b.try_take(50));
        assert_eq!(b.used(), 90);
        assert!(!b.try_take(usize::MAX), "no overflow");
    }
}
