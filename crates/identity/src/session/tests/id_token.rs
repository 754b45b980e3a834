//! The id token left out of the session cache and out of the portals' cookies (issue 20), and
//! the attacker's review of that change: nothing of a session is lost or lent on the way.
#![allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report

use super::*;

#[test]
fn the_cache_keeps_no_id_token_and_a_look_up_that_needs_it_opens_the_cookie() {
    // An 850-byte id token was half of a cached session's memory (benches/README.md).
    let s = sessions();
    let (issued, cookie) = s.issue(full_session(), 1000).unwrap();
    // A peek before anything is cached opens the cookie whole.
    assert_eq!(s.peek(&cookie, 1000).unwrap().id_token, issued.id_token);
    let lean = s.validate_on_portal(&cookie, 1001).unwrap();
    assert_eq!(lean.session.id_token, None);
    let cached = s.cache.get(&s.digest.of(&cookie)).expect("cached");
    assert_eq!(cached.session.id_token, None, "the cache holds no id token");
    assert!(cached.id_token_left_out);
    // Cache hits that need the token get it, from the cookie.
    assert_eq!(
        s.validate(&cookie, 1002).unwrap().session.id_token,
        issued.id_token
    );
    assert_eq!(s.peek(&cookie, 1003).unwrap().id_token, issued.id_token);
    // A session without one is served from the cache as it is, on every path.
    let mut plain = full_session();
    plain.id_token = None;
    let (_, c) = s.issue(plain, 1000).unwrap();
    let first = s.validate(&c, 1001).unwrap().session;
    let again = s.validate(&c, 1002).unwrap().session;
    assert!(
        std::sync::Arc::ptr_eq(&first, &again),
        "a hit, not a new open"
    );
    assert!(!s.cache.get(&s.digest.of(&c)).unwrap().id_token_left_out);
}

#[test]
fn a_rolled_cookie_keeps_the_id_token_the_cache_left_out() {
    // idle 600 s: past half of it, a hit rolls the cookie — the one cookie of every host
    // (`host` unset) sealed whole, on either path.
    let s = sessions();
    let mut every_host = full_session();
    every_host.host = None;
    let (issued, cookie) = s.issue(every_host, 1000).unwrap();
    s.validate_on_portal(&cookie, 1001).unwrap();
    for lean in [true, false] {
        let valid = if lean {
            s.validate_on_portal(&cookie, 1400).unwrap()
        } else {
            s.validate(&cookie, 1400).unwrap()
        };
        let rolled = valid.rolled.expect("rolled past half of the idle time");
        let next = s.validate(&rolled, 1401).unwrap().session;
        assert_eq!(next.id_token, issued.id_token, "lean: {lean}");
        assert_eq!(next.idle_until, 2000);
        assert_eq!(next.sid, issued.sid);
    }
}

#[test]
fn a_portal_cookie_carries_no_id_token() {
    let s = sessions();
    let (issued, _) = s.issue(full_session(), 1000).unwrap();
    let portal = s.portal_cookie(&issued, "acq.bankart.localhost").unwrap();
    let login = s
        .cookie_for(&issued, Some("login.bankart.localhost"))
        .unwrap();
    let there = s.validate(&portal, 1001).unwrap().session;
    assert_eq!(there.id_token, None);
    assert_eq!(there.host.as_deref(), Some("acq.bankart.localhost"));
    assert_eq!(
        (there.sid.as_str(), there.expires_at),
        (issued.sid.as_str(), issued.expires_at)
    );
    assert_eq!(
        s.validate(&login, 1001).unwrap().session.id_token,
        issued.id_token
    );
    assert!(
        login.len() > portal.len() + 850,
        "{} vs {}",
        login.len(),
        portal.len()
    );
}

// An attacker's review of the change.

/// Two cached sessions, each with its own id token: a hit that opens the cookie again never
/// hands back the other one's token, sid or host, on any path and in any order.
#[test]
fn two_cached_sessions_never_lend_each_other_fields() {
    let s = sessions();
    let mut a = full_session();
    a.id_token = Some("a".repeat(850));
    a.sub = "alice".into();
    let mut b = full_session();
    b.id_token = Some("b".repeat(850));
    b.sub = "mallory".into();
    b.host = Some("acq.bankart.localhost".into());
    let (a, ca) = s.issue(a, 1000).unwrap();
    let (b, cb) = s.issue(b, 1000).unwrap();
    for now in [1001, 1002, 1003] {
        for (issued, cookie) in [(&a, &ca), (&b, &cb), (&a, &ca)] {
            let lean = s.validate_on_portal(cookie, now).unwrap().session;
            assert_eq!(
                (lean.sid.as_str(), lean.sub.as_str()),
                (issued.sid.as_str(), issued.sub.as_str())
            );
            assert_eq!(lean.host, issued.host);
            let whole = s.validate(cookie, now).unwrap().session;
            assert_eq!(*whole, *issued);
            assert_eq!(*s.peek(cookie, now).unwrap(), *issued);
        }
    }
}

/// Revocation and both expiries are judged on the cached copy, the re-opened copy is what is
/// returned: every path refuses a revoked or expired session, also where the refusal would
/// otherwise have rolled (the roll opens the cookie whole).
#[test]
fn no_path_serves_a_revoked_or_expired_cached_session() {
    let s = sessions();
    let (issued, cookie) = s.issue(full_session(), 1000).unwrap();
    s.validate_on_portal(&cookie, 1001).unwrap();
    // Past half of the idle time: a hit would roll.
    s.revoke_session(&issued, 1350);
    assert_eq!(s.validate(&cookie, 1400).err(), Some(Refusal::Revoked));
    assert_eq!(
        s.validate_on_portal(&cookie, 1400).err(),
        Some(Refusal::Revoked)
    );
    assert!(s.peek(&cookie, 1400).is_none());
    // The family of another session: revoked through the family key, cached before.
    let (other, c2) = s.issue(full_session(), 1000).unwrap();
    s.validate_on_portal(&c2, 1001).unwrap();
    s.revoke_family(other.family_id(), 1002);
    assert_eq!(s.validate(&c2, 1003).err(), Some(Refusal::Revoked));
    assert_eq!(
        s.validate_on_portal(&c2, 1003).err(),
        Some(Refusal::Revoked)
    );
    assert!(s.peek(&c2, 1003).is_none());
    // Idle and absolute expiry of a cached session with an id token.
    let mut own = full_session();
    own.family = None;
    let (_, c3) = s.issue(own, 1000).unwrap();
    s.validate_on_portal(&c3, 1001).unwrap();
    assert_eq!(s.validate(&c3, 1600).err(), Some(Refusal::IdleExpired));
    assert_eq!(
        s.validate_on_portal(&c3, 1600).err(),
        Some(Refusal::IdleExpired)
    );
    assert_eq!(s.validate(&c3, 4600).err(), Some(Refusal::AbsoluteExpired));
    assert!(s.peek(&c3, 4600).is_none());
}

/// A reload to other keys: nothing cached under the old keys is served on either path, and
/// the re-open of a cookie whose key was retired fails closed.
#[test]
fn a_reload_to_other_keys_serves_no_cached_session() {
    let old = sessions();
    let (_, cookie) = old.issue(full_session(), 1000).unwrap();
    old.validate_on_portal(&cookie, 1001).unwrap();
    let other = Sessions::new(
        Sealer::new(&[[8; 32]]),
        Duration::from_secs(600),
        Duration::from_secs(3600),
        1000,
    )
    .adopt(&old, false);
    assert_eq!(
        other.validate_on_portal(&cookie, 1002).err(),
        Some(Refusal::Invalid)
    );
    assert_eq!(other.validate(&cookie, 1002).err(), Some(Refusal::Invalid));
    assert!(other.peek(&cookie, 1002).is_none());
    // The old snapshot (a request in flight) still opens it whole.
    assert!(old
        .validate(&cookie, 1002)
        .unwrap()
        .session
        .id_token
        .is_some());
}

/// A host-only portal cookie sealed before `portal_cookie` (with the id token, as `cookie_for`
/// sealed every host's cookie) sheds the token at its first roll on the portal request path.
/// Sealed whole there (df9530d, where this failed), a portal's cookie kept the ~850 bytes for
/// as long as its session lived after an upgrade (sealed: size, not secrecy).
#[test]
fn a_rolled_portal_cookie_sealed_before_the_change_drops_the_id_token() {
    let s = sessions();
    let (issued, _) = s.issue(full_session(), 1000).unwrap();
    // As sso::signed_in sealed a portal's cookie before 12777ab.
    let legacy = s
        .cookie_for(&issued, Some("bips.bankart.localhost"))
        .unwrap();
    s.validate_on_portal(&legacy, 1001).unwrap();
    let rolled = s
        .validate_on_portal(&legacy, 1400)
        .unwrap()
        .rolled
        .expect("rolled");
    let next = s.validate(&rolled, 1401).unwrap().session;
    assert_eq!(next.host.as_deref(), Some("bips.bankart.localhost"));
    assert_eq!(
        next.id_token, None,
        "a portal's rolled cookie still carries the id token"
    );
}
