//! Presence churn: members leave and spares join the presence channel at a steady rate,
//! as users opening and closing a page would.

use std::collections::VecDeque;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::sync::mpsc;
use tokio::time::{sleep_until, Instant};

use super::swarm::{PresenceCommand, PresenceRole, Shared};

/// Commands a socket may have queued; the controller never waits on a socket.
const COMMAND_QUEUE: usize = 4;
/// Fixed seed, so two runs churn the same users in the same order.
const SEED: u64 = 6;

/// Spare sockets kept outside the channel for `churn` joins per second: each spare
/// rests about two seconds between leaving and joining again, so a frame about a user
/// is never confused with that user's next action.
pub(crate) fn spares_for(churn: f64) -> usize {
    if churn <= 0.0 {
        0
    } else {
        ((churn * 2.0).ceil() as usize).max(2)
    }
}

/// The presence roles for `members` members and `spares` spares, and the controller's
/// ends of their command queues.
pub(crate) fn roles(members: usize, spares: usize) -> (Vec<PresenceRole>, Vec<mpsc::Sender<PresenceCommand>>) {
    (0..members + spares)
        .map(|user| {
            let (tx, rx) = mpsc::channel(COMMAND_QUEUE);
            (PresenceRole { user, join_at_start: user < members, commands: rx }, tx)
        })
        .unzip()
}

/// What the controller did.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct ChurnOutcome {
    /// Joins sent.
    pub joins: u64,
    /// Leaves sent.
    pub leaves: u64,
    /// Commands not delivered (socket gone or busy).
    pub dropped_commands: u64,
    /// Members in the channel when churn started.
    pub members_at_start: usize,
}

/// Alternates a leave of a random member and a join of the longest-resting spare,
/// `rate` of each per second, until `until` or cancellation.
pub(crate) async fn churn(
    shared: &Arc<Shared>,
    senders: &[mpsc::Sender<PresenceCommand>],
    members: usize,
    rate: f64,
    until: Instant,
) -> ChurnOutcome {
    let mut out = ChurnOutcome::default();
    let Some(book) = shared.presence.as_ref() else {
        return out;
    };
    let mut present: Vec<usize> =
        (0..members).filter(|&u| book.member.get(u).is_some_and(|m| m.load(Ordering::Relaxed))).collect();
    let mut spare: VecDeque<usize> = (members..senders.len()).filter(|&u| !senders[u].is_closed()).collect();
    out.members_at_start = present.len();
    if rate <= 0.0 {
        return out;
    }
    let mut rng = StdRng::seed_from_u64(SEED);
    let period = Duration::from_secs_f64(1.0 / (2.0 * rate));
    let start = Instant::now();
    for step in 0u64.. {
        let at = start + period * u32::try_from(step).unwrap_or(u32::MAX);
        if at >= until {
            break;
        }
        tokio::select! {
            () = shared.cancel.cancelled() => break,
            () = sleep_until(at) => {}
        }
        if step % 2 == 0 {
            if present.is_empty() {
                continue;
            }
            let user = present.swap_remove(rng.gen_range(0..present.len()));
            if senders[user].try_send(PresenceCommand::Leave).is_err() {
                out.dropped_commands += 1;
                continue;
            }
            book.expected.fetch_add(present.len() as u64, Ordering::Relaxed);
            book.leaves.fetch_add(1, Ordering::Relaxed);
            out.leaves += 1;
            spare.push_back(user);
        } else {
            let Some(user) = spare.pop_front() else { continue };
            if senders[user].try_send(PresenceCommand::Join).is_err() {
                out.dropped_commands += 1;
                continue;
            }
            book.expected.fetch_add(present.len() as u64, Ordering::Relaxed);
            book.joins.fetch_add(1, Ordering::Relaxed);
            out.joins += 1;
            present.push(user);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spares_and_roles() {
        assert_eq!(spares_for(0.0), 0);
        assert_eq!(spares_for(0.4), 2);
        assert_eq!(spares_for(15.0), 30);
        let (roles, senders) = roles(3, 2);
        assert_eq!(senders.len(), 5);
        assert!(roles[2].join_at_start);
        assert!(!roles[3].join_at_start);
    }
}
