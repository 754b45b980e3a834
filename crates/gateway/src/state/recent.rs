//! The revocations this replica wrote to Redis or learned from it in the last minutes before
//! the connection was lost, written again on every reconnection: Redis may have acknowledged
//! them and still lost them. Replication to a replica is asynchronous, so a failover promotes
//! a replica that had not received the last writes; a master cut off from the sentinels goes
//! on taking writes until it is made a replica and drops them; a restart replays an
//! append-only file that was synced a second ago. Writing a revocation again is harmless: the
//! later time and expiry win.

use std::collections::VecDeque;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use prehod_identity::session::Revoked;

/// How far back before the loss revocations are written again: more than a failover takes
/// (down-after plus the election, or a master's `min-replicas-max-lag` when it is cut off).
pub const WINDOW: Duration = Duration::from_secs(300);

/// At most this many are kept (the oldest go first).
const MAX: usize = 100_000;

#[derive(Default)]
pub(super) struct Recent {
    entries: Mutex<VecDeque<(Instant, Revoked)>>,
}

impl Recent {
    /// Notes `r`, made here or newly learned, now.
    pub fn push(&self, r: &Revoked) {
        let now = Instant::now();
        let mut entries = self.entries.lock().unwrap_or_else(|e| e.into_inner());
        while entries
            .front()
            .is_some_and(|(at, _)| now.duration_since(*at) > WINDOW)
            || entries.len() >= MAX
        {
            entries.pop_front();
        }
        entries.push_back((now, r.clone()));
    }

    /// Every revocation noted within [`WINDOW`] of the last one noted (nothing ages out while
    /// nothing new arrives: an outage keeps what came before it).
    pub fn all(&self) -> Vec<Revoked> {
        self.entries
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .iter()
            .map(|(_, r)| r.clone())
            .collect()
    }
}

impl super::Store {
    /// Queues every recent revocation to be written and published again (after a
    /// reconnection); how many.
    pub(super) fn write_recent_again(&self) -> usize {
        let again = self.recent.all();
        let n = again.len();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for r in again {
            if pending.len() >= super::MAX_PENDING {
                break;
            }
            pending.push_back(r);
        }
        n
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prehod_identity::revocation::Kind;

    fn revoked(id: &str) -> Revoked {
        Revoked {
            kind: Kind::Session,
            id: id.to_owned(),
            at: 1,
            until: 2,
        }
    }

    #[test]
    fn keeps_what_was_noted_in_order() {
        let recent = Recent::default();
        recent.push(&revoked("a"));
        recent.push(&revoked("b"));
        assert_eq!(recent.all(), vec![revoked("a"), revoked("b")]);
    }

    #[test]
    fn holds_at_most_max_dropping_the_oldest() {
        let recent = Recent::default();
        for i in 0..=MAX {
            recent.push(&revoked(&i.to_string()));
        }
        let all = recent.all();
        assert_eq!(all.len(), MAX);
        assert_eq!(all[0], revoked("1"));
    }
}
