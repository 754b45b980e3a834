//! The revocation store: which sessions, Rekono sessions and subjects were logged out, each
//! held until the last moment a session it ends could still be valid, and never forgotten
//! before then — not by admission, size or eviction (issue 9, item 5).
//!
//! Memory is bounded by a number of entries (`session.max_revocations`). An entry is a
//! 16-byte digest of its key and two `u64`s (32 bytes) plus hashbrown's control byte, in a
//! table at most 7/8 full and grown by doubling: at most **80 bytes per entry** (about 80 MB
//! at the default of 1 000 000), twice that for the moment a table grows. Whatever the
//! length of the session id, Rekono `sid` or subject, an entry has that size.
//!
//! At the bound the store fails safe: [`Revocations::is_full`] makes the gateway refuse new
//! sessions, and a revocation that finds no room is never dropped — it becomes a *watermark*:
//! every session whose absolute expiry is at or before the end of that revocation is refused
//! (for a Rekono session or a subject: every session issued until then; for one session: it,
//! and the sessions issued before it).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::RwLock;

use sha2::{Digest, Sha256};

/// The default `session.max_revocations`.
pub const DEFAULT_MAX: usize = 1_000_000;

/// Expired entries are swept at most this often (seconds) while there is room …
const SWEEP_EVERY: u64 = 60;
/// … and at most this often when the store is full.
const SWEEP_WHEN_FULL: u64 = 1;

/// What is revoked: one gateway session, every session of one Rekono session, every session
/// of a subject the gateway issued until the revocation, or every session of one browser's
/// session family (see `session::Session::family`) — or, for a subject, the single sign-on
/// of any Rekono login authenticated until the revocation (`FreshLogin`: the next login must
/// authenticate afresh; it ends no session).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    Session,
    RekonoSession,
    Subject,
    Family,
    FreshLogin,
}

impl Kind {
    /// How the kind is named in the shared state store.
    pub fn label(self) -> &'static str {
        match self {
            Kind::Session => "session",
            Kind::RekonoSession => "rekono_session",
            Kind::Subject => "subject",
            Kind::Family => "family",
            Kind::FreshLogin => "fresh_login",
        }
    }

    pub fn from_label(label: &str) -> Option<Self> {
        [
            Kind::Session,
            Kind::RekonoSession,
            Kind::Subject,
            Kind::Family,
            Kind::FreshLogin,
        ]
        .into_iter()
        .find(|k| k.label() == label)
    }

    fn tag(self) -> u8 {
        match self {
            Kind::Session => b's',
            Kind::RekonoSession => b'o',
            Kind::Subject => b'u',
            Kind::Family => b'f',
            Kind::FreshLogin => b'r',
        }
    }
}

/// What the store keys an entry by: the first 16 bytes of SHA-256(kind, id).
pub type Key = [u8; 16];

/// The store's key for `id` of `kind`. A caller checking the same ids again and again (the
/// session cache) computes it once and asks [`Revocations::revoked_at_key`].
pub fn key(kind: Kind, id: &str) -> Key {
    let digest = Sha256::new()
        .chain_update([kind.tag()])
        .chain_update(id.as_bytes())
        .finalize();
    let mut k = [0u8; 16];
    // A SHA-256 digest is 32 bytes: the zip takes the first 16.
    for (out, b) in k.iter_mut().zip(digest.iter()) {
        *out = *b;
    }
    k
}

#[derive(Clone, Copy, Debug)]
struct Entry {
    /// Unix seconds of the revocation.
    at: u64,
    /// Unix seconds until which it holds (then every session it concerns is expired anyway).
    until: u64,
}

#[derive(Default)]
struct Inner {
    map: HashMap<Key, Entry>,
    last_sweep: u64,
    /// Sessions whose absolute expiry is at or before this are refused: the revocations that
    /// found the store full.
    watermark: u64,
    /// The fresh-login requirements ([`Kind::FreshLogin`]) that found the store full: every
    /// subject's login authenticated until `.0` must be fresh, until `.1`. Not the watermark,
    /// which would refuse every session for as long as the requirement holds.
    fresh_floor: (u64, u64),
}

impl Inner {
    fn sweep(&mut self, now: u64) {
        self.map.retain(|_, e| e.until > now);
        self.last_sweep = now;
    }

    fn sweep_if_due(&mut self, now: u64, every: u64) {
        if now >= self.last_sweep.saturating_add(every) {
            self.sweep(now);
        }
    }
}

/// A revocation could not be stored: the store is full, and every session issued until now
/// is refused instead.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("revocation store full ({max} entries): every session issued until now is refused")]
pub struct Full {
    pub max: usize,
}

pub struct Revocations {
    max: usize,
    inner: RwLock<Inner>,
    /// Times the store was found full: a refused session or a revocation that became the
    /// watermark (`prehod_revocation_store_full_total`).
    pub full_total: AtomicU64,
}

impl Revocations {
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            inner: RwLock::default(),
            full_total: AtomicU64::new(0),
        }
    }

    pub fn max(&self) -> usize {
        self.max
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        // A panic while holding the lock leaves the map as it was (every write is one
        // insert or one retain): its contents are still the truth.
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }

    fn write(&self) -> std::sync::RwLockWriteGuard<'_, Inner> {
        self.inner.write().unwrap_or_else(|e| e.into_inner())
    }

    /// Records a revocation at `now` that holds until `until`. Never forgets: when the store
    /// is full the revocation widens the watermark instead (and says so).
    pub fn revoke(&self, kind: Kind, id: &str, now: u64, until: u64) -> Result<(), Full> {
        if until <= now {
            return Ok(()); // nothing it concerns is valid any more
        }
        let k = key(kind, id);
        let mut inner = self.write();
        inner.sweep_if_due(now, SWEEP_EVERY);
        if let Some(e) = inner.map.get_mut(&k) {
            // A later revocation of a subject ends later sessions too; hold the longest.
            e.at = e.at.max(now);
            e.until = e.until.max(until);
            return Ok(());
        }
        if inner.map.len() >= self.max {
            inner.sweep_if_due(now, SWEEP_WHEN_FULL);
        }
        if inner.map.len() >= self.max && kind == Kind::FreshLogin {
            let (at, held) = inner.fresh_floor;
            inner.fresh_floor = (at.max(now), held.max(until));
            self.full_total.fetch_add(1, Ordering::Relaxed);
            return Err(Full { max: self.max });
        }
        if inner.map.len() >= self.max {
            inner.watermark = inner.watermark.max(until);
            self.full_total.fetch_add(1, Ordering::Relaxed);
            return Err(Full { max: self.max });
        }
        inner.map.insert(k, Entry { at: now, until });
        Ok(())
    }

    /// When `kind`/`id` was revoked, if it still holds at `now` (for [`Kind::FreshLogin`], the
    /// later of its own and the requirements that found the store full).
    pub fn revoked_at(&self, kind: Kind, id: &str, now: u64) -> Option<u64> {
        let own = self.revoked_at_key(&key(kind, id), now);
        if kind != Kind::FreshLogin {
            return own;
        }
        let (at, until) = self.read().fresh_floor;
        let floor = (until > now).then_some(at);
        own.max(floor)
    }

    /// [`Self::revoked_at`] with the key already computed ([`key`]).
    pub fn revoked_at_key(&self, k: &Key, now: u64) -> Option<u64> {
        self.read()
            .map
            .get(k)
            .filter(|e| e.until > now)
            .map(|e| e.at)
    }

    /// [`Self::revoked_at_key`] for several keys under one read of the store (a session's
    /// own ids on every request); `None` keys are not looked up.
    pub fn revoked_at_keys<const N: usize>(
        &self,
        keys: [Option<&Key>; N],
        now: u64,
    ) -> [Option<u64>; N] {
        let inner = self.read();
        keys.map(|k| {
            k.and_then(|k| inner.map.get(k))
                .filter(|e| e.until > now)
                .map(|e| e.at)
        })
    }

    /// Whether a session expiring at `expires_at` was issued before a revocation that found
    /// the store full.
    pub fn below_watermark(&self, expires_at: u64) -> bool {
        expires_at <= self.read().watermark
    }

    /// The store is at its bound (after sweeping what expired): new sessions must be refused.
    pub fn is_full(&self, now: u64) -> bool {
        if self.read().map.len() < self.max {
            return false;
        }
        let mut inner = self.write();
        inner.sweep_if_due(now, SWEEP_WHEN_FULL);
        let full = inner.map.len() >= self.max;
        if full {
            self.full_total.fetch_add(1, Ordering::Relaxed);
        }
        full
    }

    /// Revocations held at `now` (expired ones are swept first, at most once a minute).
    pub fn held(&self, now: u64) -> usize {
        let mut inner = self.write();
        inner.sweep_if_due(now, SWEEP_EVERY);
        inner.map.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_holds_until_its_expiry_and_is_then_purged() {
        let r = Revocations::new(10);
        r.revoke(Kind::Session, "a", 1000, 2000).unwrap();
        assert_eq!(r.revoked_at(Kind::Session, "a", 1999), Some(1000));
        assert_eq!(r.revoked_at(Kind::RekonoSession, "a", 1999), None);
        assert_eq!(r.revoked_at(Kind::Session, "a", 2000), None);
        assert_eq!(r.held(1500), 1);
        assert_eq!(r.held(2000 + SWEEP_EVERY), 0, "swept");
    }

    #[test]
    fn a_full_store_forgets_nothing() {
        let r = Revocations::new(3);
        for id in ["a", "b", "c"] {
            r.revoke(Kind::Session, id, 1000, 5000).unwrap();
        }
        assert!(r.is_full(1000));
        assert_eq!(
            r.revoke(Kind::Session, "d", 1001, 4601),
            Err(Full { max: 3 })
        );
        // "d" is not in the map, but everything issued until then is below the watermark.
        assert!(r.below_watermark(4601));
        assert!(!r.below_watermark(4602));
        for id in ["a", "b", "c"] {
            assert!(r.revoked_at(Kind::Session, id, 1002).is_some());
        }
        // Revoking one already held again needs no room.
        r.revoke(Kind::Session, "a", 1003, 5000).unwrap();
        assert!(r.full_total.load(Ordering::Relaxed) >= 2);
    }
}
