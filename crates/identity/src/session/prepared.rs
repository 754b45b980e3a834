//! What a request to a portal carries of its session, made once per session object and kept
//! with it: the identity header values and the signed assertion for each portal's audience.
//!
//! Every authenticated request used to make them again: each identity value formatted and
//! copied into a header value (~4 200 instructions), the assertion looked up in the signer's
//! cache under a key of two new strings (~1 650) and copied into a header value of its ~600
//! bytes (issue 20, benches/README.md). The session behind a request is the session cache's
//! `Arc<Session>`, shared by every request of that cookie and never changed once shared, so
//! what is derived from it alone can be kept on it; a request then clones each header value
//! (a reference count): the gateway's `upstream::prepare` went from ~13 050 to ~8 730
//! instructions per authenticated request.

use std::sync::{Arc, Mutex, OnceLock, PoisonError};

use http::HeaderValue;
use prehod_config::IdentityHeader;

use super::Session;

/// A session's prepared header values ([`Session::identity_header_values`]) and assertions
/// ([`crate::assertion::Signer::sign_cached`]), filled at the first request that needs them.
///
/// Nothing in it outlives a change of the session: a clone starts empty (a clone is what is
/// changed — issued, rolled, bound to another host), it is never sealed into a cookie nor read
/// from one, and it takes no part in comparing sessions. Another session object has it only
/// when it is the same session but for its times ([`Session::share_prepared`]). One pointer's
/// room in the session (16 bytes with its once-flag), so that the cached `Arc<Session>` keeps
/// to jemalloc's 320-byte class
/// (`a_cached_session_is_one_small_allocation_without_spare_capacity`); the slots themselves
/// are allocated only for a session that reaches a portal: ~520 bytes of header values and
/// ~110 per assertion kept (`SESSIONS_PREPARED=1 cargo bench --bench sessions`), which the
/// session cache's weigher counts as [`EXPECTED_BYTES`] from the start (it weighs an entry
/// once, when it is opened), so that `session.cache_memory` bounds them too.
/// What a session's prepared values take once it reaches a portal, as the session cache
/// weighs it: its header values and two portals' assertions (the measured ~520 + 2 × ~110).
pub(super) const EXPECTED_BYTES: u64 = 520 + 2 * 110;

#[derive(Default)]
pub struct Prepared(OnceLock<Arc<Slots>>);

#[derive(Default)]
struct Slots {
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
const MAX_KEPT: usize = 16;

impl Prepared {
    fn slots(&self) -> &Slots {
        self.0.get_or_init(Arc::default)
    }

    /// The assertion kept for `audience` by signer `signer`, when `fresh` holds for its issue
    /// time.
    pub(crate) fn assertion(
        &self,
        signer: u64,
        audience: &str,
        fresh: impl Fn(u64) -> bool,
    ) -> Option<HeaderValue> {
        let slots = self.0.get()?;
        let kept = slots
            .assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.iter()
            .find(|k| k.signer == signer && *k.audience == *audience && fresh(k.issued))
            .map(|k| k.value.clone())
    }

    /// Keeps `value`, issued at `issued`, as the assertion for `audience` by `signer`, in place
    /// of the one before; those of other signers (an earlier configuration's) are dropped.
    pub(crate) fn keep_assertion(
        &self,
        signer: u64,
        audience: &str,
        issued: u64,
        value: HeaderValue,
    ) {
        let mut kept = self
            .slots()
            .assertions
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        kept.retain(|k| k.signer == signer && *k.audience != *audience);
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

    /// How many assertions are kept (for the tests of the bound).
    #[cfg(test)]
    pub(crate) fn kept_assertions(&self) -> usize {
        self.0.get().map_or(0, |slots| {
            let kept = slots.assertions.lock();
            kept.unwrap_or_else(PoisonError::into_inner).len()
        })
    }
}

impl Session {
    /// The identity header values of this session, by kind: made by `make` at the first call
    /// on this session object and kept on it, so that later calls (later requests of the same
    /// cookie) return the same values without making them. `make` is always the gateway's one
    /// list (`prehod_gateway::identity_headers::values`); a value it cannot make is an error
    /// each time, and nothing is kept.
    pub fn identity_header_values<E>(
        &self,
        make: impl FnOnce(&Session) -> Result<Box<[(IdentityHeader, HeaderValue)]>, E>,
    ) -> Result<&[(IdentityHeader, HeaderValue)], E> {
        let slots = self.prepared.slots();
        if let Some(values) = slots.headers.get() {
            return Ok(values);
        }
        let made = make(self)?;
        Ok(slots.headers.get_or_init(|| made))
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
        let slots = other.prepared.0.get_or_init(Arc::default).clone();
        self.prepared = Prepared(OnceLock::from(slots));
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
