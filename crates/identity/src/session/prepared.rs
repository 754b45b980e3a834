//! What a request to a portal carries of its session, made once per session object and kept
//! with it while the session is in use: the identity header values and the signed assertion
//! for each portal's audience.
//!
//! Every authenticated request used to make them again: each identity value formatted and
//! copied into a header value (~4 200 instructions), the assertion looked up in the signer's
//! cache under a key of two new strings (~1 650) and copied into a header value of its ~600
//! bytes (issue 20, benches/README.md). The session behind a request is the session cache's
//! `Arc<Session>`, shared by every request of that cookie and never changed once shared, so
//! what is derived from it alone can be kept on it; a request then clones each header value
//! (a reference count): the gateway's `upstream::prepare` went from ~13 050 to ~8 730
//! instructions per authenticated request.
//!
//! What is kept is held by a bounded set of the sessions in use ([`HotSet`], [`HOT_SESSIONS`]
//! of them), not by the session itself: kept by every cached session, ~650 bytes each made a
//! cached session ~1.5 KiB instead of ~0.9 (issue 20's "≤ 1 KiB per cached session"). The
//! session holds a weak reference; a session pushed out of the set (the one not used for the
//! longest turn of the set's clock) makes its values again at its next request.

use std::sync::atomic::{AtomicBool, Ordering::Relaxed};
use std::sync::{Arc, Mutex, OnceLock, PoisonError, Weak};

use http::HeaderValue;
use prehod_config::IdentityHeader;

use super::Session;

/// How many sessions keep what they prepared at once: ~1.1 KiB each with their header values
/// (~500 bytes) and one portal's assertion (~650; a session of host-only cookies reaches one),
/// ~18 MB in all when full; ~700 bytes more for each further portal a session (one cookie of
/// every host) is used on, up to [`MAX_KEPT`]. More sessions in use than this still work: those
/// pushed out make their values again (~6 000 instructions) at their next request.
/// (`review_hot::a_full_set_keeps_what_its_bound_says` counts it.)
pub const HOT_SESSIONS: usize = 16_384;

/// The one set of the process: every session that prepares anything is in it, whichever
/// configuration's session cache it came from — but a certificate-only connection's, which the
/// connection holds ([`Prepared::hold`]).
static HOT: HotSet = HotSet::new(HOT_SESSIONS);

/// What a session that reached a portal keeps after its values left the [`HotSet`]: the
/// allocation its weak reference points to (the reference counts and a pointer, jemalloc's
/// 32-byte class). The session cache's weigher counts it for every session.
pub(super) const LINGERING_BYTES: u64 = 32;

/// A session's prepared header values ([`Session::identity_header_values`]) and assertions
/// ([`crate::assertion::Signer::sign_cached`]), filled at the first request that needs them.
///
/// Nothing in it outlives a change of the session: a clone starts empty (a clone is what is
/// changed — issued, rolled, bound to another host), it is never sealed into a cookie nor read
/// from one, and it takes no part in comparing sessions. Another session object has it only
/// when it is the same session but for its times ([`Session::share_prepared`]). One weak
/// reference's room in the session (16 bytes with its lock), so that the cached `Arc<Session>`
/// keeps to jemalloc's 320-byte class
/// (`a_cached_session_is_one_small_allocation_without_spare_capacity`).
#[derive(Default)]
pub struct Prepared(Mutex<Weak<Slots>>);

/// Held strongly by the [`HotSet`] or by the owner of a session whose life it bounds
/// ([`Prepared::hold`]), and by a request while it uses them; weakly by the session. Boxed, so that what stays behind a session's weak reference once the set let go is
/// [`LINGERING_BYTES`], not the slots.
struct Slots(Box<Contents>);

impl Slots {
    /// Sets the clock's mark (a store only when it was clear: the line stays shared).
    fn mark_used(&self) {
        if !self.0.used.load(Relaxed) {
            self.0.used.store(true, Relaxed);
        }
    }
}

#[derive(Default)]
struct Contents {
    /// Used since the set's clock last passed (its second chance).
    used: AtomicBool,
    headers: OnceLock<Box<[(IdentityHeader, HeaderValue)]>>,
    assertions: Mutex<Vec<Kept>>,
}

/// An assertion issued for the session, by one signer (one configuration's), for one audience.
struct Kept {
    signer: u64,
    audience: Box<str>,
    issued: u64,
    value: HeaderValue,
}

/// The most assertions a session keeps: one per portal it is used on, the oldest given up
/// first (then it is found in the signer's cache again). A session on the parent domain
/// reaches every portal; this bounds what it holds however many there are.
pub(crate) const MAX_KEPT: usize = 16;

/// The sessions whose prepared values are kept: at most `capacity`, the one to give up chosen
/// by a clock (second chance): the hand passes over the held ones, clearing the mark each use
/// sets, and gives up the first it finds unmarked — a session in use keeps its values, one
/// that stopped being used loses them within two turns.
pub(crate) struct HotSet {
    capacity: usize,
    clock: Mutex<Clock>,
}

struct Clock {
    held: Vec<Arc<Slots>>,
    hand: usize,
}

impl HotSet {
    pub(crate) const fn new(capacity: usize) -> Self {
        Self {
            capacity,
            clock: Mutex::new(Clock {
                held: Vec::new(),
                hand: 0,
            }),
        }
    }

    /// Holds `slots`, giving up (and returning, to be dropped after the lock) the ones the
    /// clock chose when the set is full.
    fn admit(&self, slots: Arc<Slots>) -> Option<Arc<Slots>> {
        let mut clock = self.clock.lock().unwrap_or_else(PoisonError::into_inner);
        if clock.held.len() < self.capacity.max(1) {
            clock.held.push(slots);
            return None;
        }
        let len = clock.held.len();
        // At most one turn: after it every mark is cleared, so the next one is given up.
        for _ in 0..len {
            let hand = clock.hand % len;
            let used = clock
                .held
                .get(hand)
                .is_some_and(|s| s.0.used.swap(false, Relaxed));
            if !used {
                break;
            }
            clock.hand = hand + 1;
        }
        let hand = clock.hand % len;
        clock.hand = hand + 1;
        clock
            .held
            .get_mut(hand)
            .map(|place| std::mem::replace(place, slots))
    }

    /// How many sessions it holds (for the tests).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.clock
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .held
            .len()
    }
}

impl Prepared {
    /// The session's slots while the set holds them, marked as used.
    fn held(&self) -> Option<Arc<Slots>> {
        let slots = self
            .0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .upgrade()?;
        slots.mark_used();
        Some(slots)
    }

    /// The session's slots (marked as used), or new empty ones when it had none or their
    /// holder let them go: with whether they are new.
    fn held_or_new(&self) -> (Arc<Slots>, bool) {
        let mut cell = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(slots) = cell.upgrade() {
            slots.mark_used();
            return (slots, false);
        }
        let slots = Arc::new(Slots(Box::default()));
        *cell = Arc::downgrade(&slots);
        (slots, true)
    }

    /// The session's slots, new ones held by the set when it had none or the set gave them up.
    fn slots(&self, hot: &HotSet) -> Arc<Slots> {
        let (slots, new) = self.held_or_new();
        if new {
            // Another session's values, given up: dropped here, outside every lock.
            drop(hot.admit(slots.clone()));
        }
        slots
    }

    /// The session's slots held by the caller (new ones, not in the set, when it had none):
    /// for a session whose life another owner bounds — a certificate-only connection's
    /// ([`crate::cert::VerdictCache`]) — so that they go with that owner. While it holds them,
    /// the session's requests use them and never put them in the set.
    pub(crate) fn hold(&self) -> PreparedHold {
        PreparedHold(self.held_or_new().0)
    }

    /// The assertion kept for `audience` by signer `signer`, when `fresh` holds for its issue
    /// time.
    pub(crate) fn assertion(
        &self,
        signer: u64,
        audience: &str,
        fresh: impl Fn(u64) -> bool,
    ) -> Option<HeaderValue> {
        let slots = self.held()?;
        let kept = slots
            .0
            .assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .find(|k| k.signer == signer && *k.audience == *audience && fresh(k.issued))
            .map(|k| k.value.clone())
    }

    /// Keeps `value`, issued at `issued`, as the assertion for `audience` by `signer`, in place
    /// of the one before; those of other signers (an earlier configuration's) and those no
    /// longer `fresh` (never sent again) are dropped.
    pub(crate) fn keep_assertion(
        &self,
        signer: u64,
        audience: &str,
        issued: u64,
        value: HeaderValue,
        fresh: impl Fn(u64) -> bool,
    ) {
        let slots = self.slots(&HOT);
        let mut kept = slots
            .0
            .assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.retain(|k| k.signer == signer && *k.audience != *audience && fresh(k.issued));
        if kept.len() >= MAX_KEPT {
            kept.remove(0);
        }
        // Room for one more, not for four (a `Vec`'s first growth): most sessions reach one
        // portal.
        kept.reserve_exact(1);
        kept.push(Kept {
            signer,
            audience: audience.into(),
            issued,
            value,
        });
    }

    /// Whether the session's slots are still held by the set (for the tests).
    #[cfg(test)]
    pub(crate) fn is_held(&self) -> bool {
        self.0
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .strong_count()
            > 0
    }

    /// How many assertions are kept (for the tests of the bound).
    #[cfg(test)]
    pub(crate) fn kept_assertions(&self) -> usize {
        self.held().map_or(0, |slots| {
            let kept = slots.0.assertions.lock();
            kept.unwrap_or_else(PoisonError::into_inner).len()
        })
    }
}

/// What a session prepared, held by an owner other than the set ([`Prepared::hold`]).
pub struct PreparedHold(Arc<Slots>);

/// A session's identity header values as [`Session::identity_header_values`] made them: a
/// list, held for as long as a request uses it.
pub struct PreparedValues(Arc<Slots>);

impl std::ops::Deref for PreparedValues {
    type Target = [(IdentityHeader, HeaderValue)];

    fn deref(&self) -> &Self::Target {
        self.0 .0.headers.get().map_or(&[], |values| values)
    }
}

impl Session {
    /// The identity header values of this session, by kind: made by `make` at the first call
    /// on this session object and kept for it (in the [`HotSet`]), so that later calls (later
    /// requests of the same cookie) return the same values without making them. `make` is
    /// always the gateway's one list (`prehod_gateway::identity_headers::values`); a value it
    /// cannot make is an error each time, and nothing is kept.
    pub fn identity_header_values<E>(
        &self,
        make: impl FnOnce(&Session) -> Result<Box<[(IdentityHeader, HeaderValue)]>, E>,
    ) -> Result<PreparedValues, E> {
        self.identity_header_values_in(&HOT, make)
    }

    /// [`Session::identity_header_values`] with the slots held by `hot`.
    pub(crate) fn identity_header_values_in<E>(
        &self,
        hot: &HotSet,
        make: impl FnOnce(&Session) -> Result<Box<[(IdentityHeader, HeaderValue)]>, E>,
    ) -> Result<PreparedValues, E> {
        let slots = self.prepared.slots(hot);
        if slots.0.headers.get().is_none() {
            let made = make(self)?;
            // Made at once by two requests of the session: either is this session's.
            let _ = slots.0.headers.set(made);
        }
        Ok(PreparedValues(slots))
    }

    /// Takes what `other` has prepared when `other` is the same session but for its times
    /// (the certificate-only portal makes a session per request, its `auth_time` the request's;
    /// `prehod_identity::cert::VerdictCache::session`): every field the identity header values
    /// and the assertion are made of is compared, and more. `auth_time` is not: an assertion
    /// of `other` is reused with it, as the signer's cache reuses one across such sessions (its
    /// key leaves the times out). Whether it took them.
    pub fn share_prepared(&mut self, other: &Session) -> bool {
        if !self.same_but_times(other) {
            return false;
        }
        // `other`'s own: its owner holds them (`VerdictCache`), or they are gone with this
        // call and each session makes its own.
        let slots = other.prepared.hold();
        self.prepared = Prepared(Mutex::new(Arc::downgrade(&slots.0)));
        true
    }

    /// Whether `other` differs from this session in nothing but its times. Every field is named
    /// here, so that a field added to the session is compared (or left out) on purpose.
    fn same_but_times(&self, other: &Session) -> bool {
        let Session {
            sid,
            sub,
            name,
            email,
            method,
            amr,
            level,
            auth_time: _,
            issued_at: _,
            expires_at: _,
            idle_until: _,
            op_sid,
            id_token,
            cert_fingerprint,
            cert,
            host,
            family,
            provider,
            prepared: _,
        } = self;
        *sid == other.sid
            && *sub == other.sub
            && *name == other.name
            && *email == other.email
            && *method == other.method
            && *amr == other.amr
            && *level == other.level
            && *op_sid == other.op_sid
            && *id_token == other.id_token
            && *cert_fingerprint == other.cert_fingerprint
            && *cert == other.cert
            && *host == other.host
            && *family == other.family
            && *provider == other.provider
    }
}

/// A clone is empty: it may be changed, and what was made of the original must not follow it.
impl Clone for Prepared {
    fn clone(&self) -> Self {
        Self::default()
    }
}

/// Made of the session's own fields: never a difference of its own.
impl PartialEq for Prepared {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl Eq for Prepared {}

impl std::fmt::Debug for Prepared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Prepared")
    }
}

#[cfg(test)]
mod review_hot;
