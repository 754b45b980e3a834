//! Fresh authentication after all of a person's sessions were ended (issue 17, item 8).
//!
//! "End all my sessions" (`crate::login::sessions`), the admin API's end-all (`crate::admin`) and
//! a back-channel logout naming only a subject revoke the subject at the gateway's time `R`:
//! every session the gateway issued until then is refused ([`Sessions::revoke_sub`]), the
//! next one is not. Ending one session from the sessions page (or the admin API) requires the
//! same of the next login without ending the others ([`Sessions::require_fresh_login`]). Rekono's single sign-on, though, answers the next login at once, with the
//! `auth_time` of the login from before `R` — perhaps the very one the person ended everything
//! for. So at the callback a login of a subject revoked at `R` whose `auth_time` is not after
//! `R` is started again, once, asking Rekono for a fresh authentication (`prompt=login`,
//! `max_age=0`); the answer to that attempt must show an `auth_time` after `R`, or the login
//! is refused with a page that says why. One round trip more, never a loop: an attempt that
//! asked for a fresh authentication is never started again.
//!
//! The requirement holds for `session.fresh_login_for` (the longest a Rekono single sign-on
//! session lasts; 720h by default), not the absolute timeout: an SSO session from before `R`
//! may outlive every gateway session `R` ended. It is a revocation of its own kind
//! (`fresh_login`), shared through Redis like the others.
//!
//! The subject is known only at the callback (from the ID token), so the question is asked
//! there and not at `/oidc/start`. With shared state the callback first reads the subject's
//! revocation from Redis, in case its message has not reached this replica.
//!
//! [`Sessions::revoke_sub`]: prehod_identity::session::Sessions::revoke_sub
//! [`Sessions::require_fresh_login`]: prehod_identity::session::Sessions::require_fresh_login

use prehod_identity::oidc::Hints;

use crate::auth::AuthState;

/// What a callback does with a login, given the subject's revocation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// No revocation, or an authentication after it: issue the session.
    Accept,
    /// Rekono's single sign-on answered with a login from before the revocation: start the
    /// login again, asking for a fresh authentication.
    AskAgain,
    /// The attempt asked for a fresh authentication and still got none after the revocation.
    Refuse,
}

/// The verdict on a login of a subject whose sessions were all ended at `revoked_at` (by the
/// gateway's clock), authenticated at `auth_time` (the provider's `auth_time` claim), on an
/// attempt that did (`asked_fresh`) or did not ask for a fresh authentication. Both times are
/// whole seconds: an authentication in the revocation's own second may have preceded it.
pub fn verdict(revoked_at: Option<u64>, auth_time: Option<u64>, asked_fresh: bool) -> Verdict {
    let Some(revoked_at) = revoked_at else {
        return Verdict::Accept;
    };
    match auth_time {
        Some(t) if t > revoked_at => Verdict::Accept,
        _ if asked_fresh => Verdict::Refuse,
        _ => Verdict::AskAgain,
    }
}

/// When a fresh login of `sub` was last required (all their sessions ended, or one from the
/// sessions page), if that still holds — with shared state, as Redis has it (one look-up per
/// Rekono login, bounded by `state.timeout`).
pub async fn fresh_login_required_after(
    shared: &crate::Shared,
    auth: &AuthState,
    sub: &str,
    now: u64,
) -> Option<u64> {
    crate::state::check_subject(shared, auth, sub).await;
    auth.sessions.fresh_login_required_after(sub, now)
}

/// The authorization request's extras when asking again: fresh authentication, in the
/// person's language, for the account that just came back (`login_hint`).
pub fn hints(lang: &str, email: &str) -> Hints {
    Hints {
        ui_locale: Some(lang.to_owned()),
        login_hint: (!email.is_empty()).then(|| email.to_owned()),
        fresh: true,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_login_from_before_the_end_is_asked_again_and_only_once() {
        // No revocation: whatever the login time, even none.
        for t in [None, Some(0), Some(1000)] {
            assert_eq!(verdict(None, t, false), Verdict::Accept);
            assert_eq!(verdict(None, t, true), Verdict::Accept);
        }
        // Revoked at 1000: single sign-on from before (or the same second, or no auth_time)
        // is asked again once, then refused.
        for t in [None, Some(10), Some(999), Some(1000)] {
            assert_eq!(verdict(Some(1000), t, false), Verdict::AskAgain, "{t:?}");
            assert_eq!(verdict(Some(1000), t, true), Verdict::Refuse, "{t:?}");
        }
        // An authentication after it is accepted, asked for or not.
        assert_eq!(verdict(Some(1000), Some(1001), false), Verdict::Accept);
        assert_eq!(verdict(Some(1000), Some(1001), true), Verdict::Accept);
    }

    #[test]
    fn asking_again_asks_for_a_fresh_login_of_the_same_account() {
        let h = hints("en", "sara@example.si");
        assert!(h.fresh);
        assert_eq!(h.login_hint.as_deref(), Some("sara@example.si"));
        assert_eq!(h.ui_locale.as_deref(), Some("en"));
        assert_eq!(hints("sl", "").login_hint, None);
    }
}
