//! The session store's tests: deadlines, revocation by session, Rekono session, subject
//! (by issue time) and family, the bounds, and revocations shared between replicas; the id
//! token left out of the cache and the portals' cookies in `id_token.rs`.
#![allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report

use super::*;

fn session() -> Session {
    Session {
        name: "Sara".into(),
        email: "s@x".into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: 1000,
        op_sid: Some("op-1".into()),
        ..Session::new(Method::Rekono, "rekono-1", 20)
    }
}

fn sessions() -> Sessions {
    Sessions::new(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(600),
        Duration::from_secs(3600),
        1000,
    )
}

#[test]
fn a_session_lives_between_its_deadlines() {
    let s = sessions();
    let (issued, cookie) = s.issue(session(), 1000).unwrap();
    assert_eq!(issued.idle_until, 1600);
    assert_eq!(issued.expires_at, 4600);
    assert_eq!(s.validate(&cookie, 1100).unwrap().session.sub, "rekono-1");
    assert!(s.validate(&cookie, 1100).unwrap().rolled.is_none());
    let rolled = s
        .validate(&cookie, 1400)
        .unwrap()
        .rolled
        .expect("rolled after half the idle time");
    assert_eq!(s.validate(&cookie, 1600).unwrap_err(), Refusal::IdleExpired);
    assert!(
        s.validate(&rolled, 1900).is_ok(),
        "the rolled cookie lives on"
    );
    assert_eq!(
        s.validate(&rolled, 4600).unwrap_err(),
        Refusal::AbsoluteExpired
    );
}

#[test]
fn new_sid_every_login_and_revocation() {
    let s = sessions();
    let (a, ca) = s.issue(session(), 1000).unwrap();
    let (b, cb) = s.issue(session(), 1000).unwrap();
    assert_ne!(a.sid, b.sid);
    s.revoke_sid(&a.sid, 1010);
    assert_eq!(s.validate(&ca, 1020).unwrap_err(), Refusal::Revoked);
    assert!(s.validate(&cb, 1020).is_ok());
    s.revoke_op_sid("op-1", 1030);
    assert_eq!(s.validate(&cb, 1040).unwrap_err(), Refusal::Revoked);
    // Revoking a subject ends earlier logins, not the next one.
    let s = sessions();
    let (_, old) = s.issue(session(), 1000).unwrap();
    s.revoke_sub("rekono-1", 1050);
    assert_eq!(s.validate(&old, 1060).unwrap_err(), Refusal::Revoked);
    let mut later = session();
    later.auth_time = 1100;
    let (_, new) = s.issue(later, 1100).unwrap();
    assert!(s.validate(&new, 1110).is_ok());
}

#[test]
fn the_cache_is_bounded_by_entries_and_by_memory() {
    // 10 entries at most…
    let s = Sessions::with_memory_bound(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(600),
        Duration::from_secs(3600),
        10,
        1 << 30,
    );
    for _ in 0..50 {
        let (_, c) = s.issue(session(), 1000).unwrap();
        s.validate(&c, 1001).unwrap();
    }
    assert!(s.cached() <= 10, "{} entries", s.cached());
    // …and 8 KiB at most, whatever the entry bound.
    let s = Sessions::with_memory_bound(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(600),
        Duration::from_secs(3600),
        1_000_000,
        8 * 1024,
    );
    let mut big = session();
    // The cache leaves the id token out: a long name is kept.
    big.name = "x".repeat(1500);
    for _ in 0..50 {
        let (_, c) = s.issue(big.clone(), 1000).unwrap();
        s.validate(&c, 1001).unwrap();
    }
    assert!(s.cached() <= 4, "{} entries of ~2 KiB in 8 KiB", s.cached());
}

/// Sessions that never idle out (idle = absolute = 3600 s), with at most `max` revocations.
fn bounded(max: usize) -> Sessions {
    Sessions::new(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(3600),
        Duration::from_secs(3600),
        1000,
    )
    .with_max_revocations(max)
}

#[test]
fn revocations_are_never_flushed_by_later_ones() {
    let s = bounded(8);
    let issued: Vec<_> = (0..200)
        .map(|_| s.issue(session(), 1000).expect("room for a session"))
        .collect();
    // 25 times more logouts than the bound, each read back again and again (reads must
    // not decide what is kept): every one of them stays refused.
    for (n, (session, _)) in issued.iter().enumerate() {
        s.revoke_session(session, 1001 + n as u64);
        for (_, cookie) in issued.iter().take(n + 1) {
            assert_eq!(
                s.validate(cookie, 1001 + n as u64).unwrap_err(),
                Refusal::Revoked
            );
        }
    }
    assert_eq!(s.revocations(1100), 8, "the bound holds");
    for (_, cookie) in &issued {
        assert_eq!(s.validate(cookie, 1100).unwrap_err(), Refusal::Revoked);
    }
    assert!(s.revocation_store_full_total() >= 192);
}

#[test]
fn at_the_bound_no_session_is_issued_until_revocations_expire() {
    let s = bounded(4);
    let mut live = session();
    live.op_sid = None;
    let (_, before) = s.issue(live.clone(), 999).expect("room before the bound");
    for i in 0..4 {
        s.revoke_op_sid(&format!("op-{i}"), 1000);
    }
    assert!(matches!(
        s.issue(live.clone(), 1001),
        Err(IssueError::RevocationStoreFull { max: 4 })
    ));
    assert!(s.revocation_store_full_total() >= 1);
    assert!(
        s.validate(&before, 1001).is_ok(),
        "sessions issued before live on"
    );
    // Revocations hold for one absolute timeout (3600 s); then they are purged and
    // sessions can be issued again.
    assert!(s.issue(live.clone(), 4599).is_err(), "still held");
    let (_, cookie) = s.issue(live, 4601).expect("expired revocations purged");
    assert!(s.validate(&cookie, 4602).is_ok());
    assert_eq!(s.revocations(4602), 0);
}

#[test]
fn a_revoked_session_is_held_until_its_own_expiry_then_purged() {
    let s = bounded(100);
    let (issued, cookie) = s.issue(session(), 1000).unwrap();
    s.revoke_session(&issued, 2000);
    assert_eq!(s.revocations(2000), 1);
    assert_eq!(s.validate(&cookie, 4599).unwrap_err(), Refusal::Revoked);
    assert_eq!(
        s.revocations(4599),
        1,
        "held until the session's own expiry"
    );
    // Its session expired at 4600: the revocation goes with it.
    assert_eq!(
        s.validate(&cookie, 4600).unwrap_err(),
        Refusal::AbsoluteExpired
    );
    assert_eq!(s.revocations(4600 + 60), 0);
}

#[test]
fn tampered_cookies_are_invalid() {
    let s = sessions();
    let (_, cookie) = s.issue(session(), 1000).unwrap();
    let mut bytes = cookie.into_bytes();
    let i = bytes.len() / 2;
    bytes[i] = if bytes[i] == b'A' { b'B' } else { b'A' };
    assert_eq!(
        s.validate(&String::from_utf8(bytes).unwrap(), 1001)
            .unwrap_err(),
        Refusal::Invalid
    );
    assert_eq!(s.validate("", 1001).unwrap_err(), Refusal::Invalid);
}

/// Issue 17, item 8: Rekono's single sign-on keeps the first login's `auth_time`, so a
/// revocation of the subject must be judged by when the gateway issued each session.
#[test]
fn ending_all_sessions_ends_those_issued_before_and_never_the_next_one() {
    let s = sessions();
    // Logged in at Rekono at 1000; sessions issued at 1000 and (single sign-on) 1040.
    let (_, first) = s.issue(session(), 1000).unwrap();
    let (_, second) = s.issue(session(), 1040).unwrap();
    s.revoke_sub("rekono-1", 1050);
    assert_eq!(s.validate(&first, 1051).unwrap_err(), Refusal::Revoked);
    assert_eq!(s.validate(&second, 1051).unwrap_err(), Refusal::Revoked);
    assert_eq!(s.fresh_login_required_after("rekono-1", 1051), Some(1050));
    // In the very second of the revocation: it may have been issued before it — ended.
    let (_, same_second) = s.issue(session(), 1050).unwrap();
    assert_eq!(
        s.validate(&same_second, 1051).unwrap_err(),
        Refusal::Revoked
    );
    // The next login comes back from Rekono's single sign-on with auth_time 1000 still:
    // issued after the revocation, it lives.
    let (next, cookie) = s.issue(session(), 1051).unwrap();
    assert_eq!(next.auth_time, 1000);
    assert_eq!(next.issued_at, Some(1051));
    assert!(s.validate(&cookie, 1052).is_ok());
    // The summaries the session list reads say the same.
    let summary = |issued_at| Summary {
        sid: "x",
        sub: "rekono-1",
        op_sid: None,
        family: None,
        issued_at,
        expires_at: 4600,
    };
    assert!(s.is_revoked_summary(&summary(1050), 1052));
    assert!(!s.is_revoked_summary(&summary(1051), 1052));
    // Another subject is not concerned.
    let mut other = session();
    other.sub = "rekono-2".into();
    let (_, other) = s.issue(other, 1000).unwrap();
    assert!(s.validate(&other, 1052).is_ok());
}

#[test]
fn a_cookie_sealed_before_the_issue_time_existed_is_judged_by_its_login_time() {
    let s = sessions();
    // The JSON an older gateway sealed: no `issued_at`, no `family`.
    let old = |sid: &str, auth_time: u64| {
        let mut v = serde_json::to_value(session()).unwrap();
        let o = v.as_object_mut().unwrap();
        o.remove("issued_at");
        o.remove("family");
        o.insert("sid".into(), sid.into());
        o.insert("auth_time".into(), auth_time.into());
        o.insert("expires_at".into(), 4600.into());
        o.insert("idle_until".into(), 1600.into());
        Sealer::new(&[[7; 32]])
            .seal(PURPOSE, &serde_json::to_vec(&v).unwrap())
            .unwrap()
    };
    let (before, after) = (old("old-1", 1000), old("old-2", 1060));
    let opened = s.validate(&before, 1001).unwrap().session;
    assert_eq!(opened.issued_at, None);
    assert_eq!(opened.issue_time(), 1000);
    assert_eq!(opened.family_id(), "old-1");
    s.revoke_sub("rekono-1", 1050);
    assert_eq!(s.validate(&before, 1070).unwrap_err(), Refusal::Revoked);
    assert!(
        s.validate(&after, 1070).is_ok(),
        "issued no earlier than its login"
    );
}

/// Two replicas share revocations as records ([`Revoked`], through `state.rs`): what
/// one revokes, the other applies with the same meaning.
#[test]
fn replicas_apply_each_others_revocations_with_the_same_meaning() {
    let records = Arc::new(std::sync::Mutex::new(Vec::<Revoked>::new()));
    let mut a = sessions();
    let sink = records.clone();
    a.set_revoke_hook(Arc::new(move |r| sink.lock().unwrap().push(r)));
    let b = sessions();
    let (old, old_cookie) = a.issue(session(), 1000).unwrap();
    assert!(b.validate(&old_cookie, 1001).is_ok());
    a.revoke_sub("rekono-1", 1050);
    let mut family = session();
    family.family = Some(old.family_id().into());
    let (_, sibling) = b.issue(family, 1020).unwrap();
    a.revoke_family(old.family_id(), 1055);
    let shared = records.lock().unwrap().clone();
    assert_eq!(
        shared,
        vec![
            Revoked {
                kind: Kind::Subject,
                id: "rekono-1".into(),
                at: 1050,
                until: 4650,
            },
            Revoked {
                kind: Kind::FreshLogin,
                id: "rekono-1".into(),
                at: 1050,
                until: 4650,
            },
            Revoked {
                kind: Kind::Family,
                id: old.family_id().to_owned(),
                at: 1055,
                until: 4655,
            },
        ]
    );
    // B applies them (twice and out of order, as a reconnect replays them).
    for r in shared.iter().rev().chain(shared.iter()) {
        b.apply_remote(r, 1056);
    }
    assert_eq!(b.validate(&old_cookie, 1057).unwrap_err(), Refusal::Revoked);
    assert_eq!(b.validate(&sibling, 1057).unwrap_err(), Refusal::Revoked);
    assert_eq!(b.fresh_login_required_after("rekono-1", 1057), Some(1050));
    // The next login, on B with the old auth_time, is good on both replicas.
    let (_, next) = b.issue(session(), 1060).unwrap();
    assert!(b.validate(&next, 1061).is_ok());
    assert!(a.validate(&next, 1061).is_ok());
    // An older record of the same subject applied later never moves the time back.
    b.apply_remote(
        &Revoked {
            kind: Kind::Subject,
            id: "rekono-1".into(),
            at: 900,
            until: 4650,
        },
        1062,
    );
    assert_eq!(b.fresh_login_required_after("rekono-1", 1062), Some(1050));
}

/// Issue 17, item 9: the sessions a browser got from logins over one login-host session
/// share its family, and a logout ends them all — even the one whose cookie the login
/// host no longer holds.
#[test]
fn a_logout_ends_every_session_of_the_family() {
    let s = sessions();
    let (root, root_cookie) = s.issue(session(), 1000).unwrap();
    assert_eq!(root.family, None, "it starts its own family");
    let joined = || {
        let mut j = session();
        j.family = Some(root.family_id().into());
        j
    };
    let (_, one) = s.issue(joined(), 1010).unwrap();
    let (kept, two) = s.issue(joined(), 1010).unwrap();
    let (_, stranger) = s.issue(session(), 1010).unwrap();
    assert!(!s.is_family_revoked(root.family_id(), 1011));
    // The login host holds only `kept`; the logout ends it and its family.
    s.end_browser(&kept, 1020);
    for cookie in [&root_cookie, &one, &two] {
        assert_eq!(s.validate(cookie, 1021).unwrap_err(), Refusal::Revoked);
    }
    assert!(s.validate(&stranger, 1021).is_ok(), "another browser's");
    assert!(s.is_family_revoked(root.family_id(), 1021));
    // The root's own logout ends the sessions that joined it, too.
    let s = sessions();
    let (root, _) = s.issue(session(), 1000).unwrap();
    let mut j = session();
    j.family = Some(root.family_id().into());
    let (_, joined) = s.issue(j, 1010).unwrap();
    s.end_browser(&root, 1020);
    assert_eq!(s.validate(&joined, 1021).unwrap_err(), Refusal::Revoked);
}

/// Review 17b, finding 1: the fresh login "end all" demands holds for
/// `session.fresh_login_for` (the longest Rekono single sign-on), not the absolute timeout;
/// finding 3: one session ended from the sessions page demands it too, ending no other.
#[test]
fn a_fresh_login_is_required_for_as_long_as_rekono_single_sign_on_lasts() {
    let s = sessions().with_fresh_login_for(Duration::from_secs(30 * 86400));
    let (_, other) = s.issue(session(), 1000).unwrap();
    s.revoke_sub("rekono-1", 1050);
    // Long after every session it ended has expired (absolute 3600 s), still required.
    assert_eq!(
        s.fresh_login_required_after("rekono-1", 1050 + 3601),
        Some(1050)
    );
    assert_eq!(
        s.fresh_login_required_after("rekono-1", 1050 + 30 * 86400 - 1),
        Some(1050)
    );
    assert_eq!(
        s.fresh_login_required_after("rekono-1", 1050 + 30 * 86400),
        None
    );
    // A subject revocation alone (its fresh-login record lost, or from an older replica)
    // requires it as well, for as long as it holds.
    let lone = sessions();
    lone.apply_remote(
        &Revoked {
            kind: Kind::Subject,
            id: "rekono-1".into(),
            at: 1070,
            until: 4670,
        },
        1071,
    );
    assert_eq!(
        lone.fresh_login_required_after("rekono-1", 1071),
        Some(1070)
    );
    assert_eq!(lone.fresh_login_required_after("rekono-1", 4670), None);
    // Never shorter than the absolute timeout.
    let short = sessions().with_fresh_login_for(Duration::from_secs(10));
    short.require_fresh_login("rekono-1", 1000);
    assert_eq!(
        short.fresh_login_required_after("rekono-1", 4599),
        Some(1000)
    );
    // Requiring it ends no session.
    let t = sessions();
    let (_, mine) = t.issue(session(), 1000).unwrap();
    t.require_fresh_login("rekono-1", 1050);
    assert!(t.validate(&mine, 1051).is_ok());
    assert_eq!(t.fresh_login_required_after("rekono-1", 1051), Some(1050));
    assert_eq!(s.validate(&other, 1051).unwrap_err(), Refusal::Revoked);
}

/// Review 17b, finding 2: after a reload that shortens the absolute timeout, a revocation
/// holds for as long as the sessions issued before it can live.
#[test]
fn a_revocation_outlives_every_session_issued_under_a_longer_timeout() {
    let old = sessions(); // absolute 3600
    let (issued, cookie) = old.issue(session(), 1000).unwrap();
    let shorter = Sessions::new(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(60),
        Duration::from_secs(120),
        1000,
    )
    .adopt(&old, true);
    // A logout (by the session) and the sessions page (by its id), after the reload.
    shorter.end_browser(&issued, 1010);
    assert_eq!(
        shorter.peek(&cookie, 4599),
        None,
        "logged out until its expiry"
    );
    let (second, second_cookie) = old.issue(session(), 1000).unwrap();
    shorter.revoke_sid(&second.sid, 1010);
    let (_, third_cookie) = old.issue(session(), 1000).unwrap();
    shorter.revoke_sub("rekono-1", 1010);
    for at in [1010 + 121, 4599] {
        assert_eq!(shorter.peek(&second_cookie, at), None, "{at}");
        assert_eq!(shorter.peek(&third_cookie, at), None, "{at}");
    }
    // A reload back to a longer timeout keeps the longest.
    let again = sessions().adopt(&shorter, true);
    assert_eq!(again.hold(), 3600);
}

/// A fresh-login requirement that finds the revocation store full is never dropped — and
/// never becomes the watermark, which would refuse every session for as long as it holds:
/// every subject's next login from before it must be fresh instead.
#[test]
fn a_fresh_login_requirement_at_a_full_store_asks_everyone_once_and_refuses_no_session() {
    let s = sessions()
        .with_max_revocations(1)
        .with_fresh_login_for(Duration::from_secs(30 * 86400));
    s.revoke_sid("x", 1000);
    let (_, cookie) = Sessions::new(
        Sealer::new(&[[7; 32]]),
        Duration::from_secs(600),
        Duration::from_secs(3600),
        1000,
    )
    .issue(session(), 1040)
    .unwrap();
    s.require_fresh_login("rekono-2", 1050);
    assert_eq!(s.fresh_login_required_after("anyone", 1051), Some(1050));
    assert_eq!(
        s.fresh_login_required_after("anyone", 1050 + 30 * 86400),
        None
    );
    assert!(s.validate(&cookie, 1051).is_ok());
}

/// The cache is keyed by a digest of the cookie (issue 20): a cookie that differs from a
/// cached one in one character is not served the cached session, it is opened — and refused.
#[test]
fn a_cookie_one_character_off_a_cached_one_is_not_its_session() {
    let s = sessions();
    let (_, cookie) = s.issue(session(), 1000).unwrap();
    assert!(s.validate(&cookie, 1001).is_ok());
    assert!(s.is_cached(&cookie));
    let mut chars: Vec<char> = cookie.chars().collect();
    for i in [0, chars.len() / 2, chars.len() - 1] {
        let was = chars[i];
        chars[i] = if was == 'A' { 'B' } else { 'A' };
        let altered: String = chars.iter().collect();
        assert!(!s.is_cached(&altered), "position {i}");
        assert_eq!(
            s.validate(&altered, 1001).err(),
            Some(Refusal::Invalid),
            "position {i}"
        );
        chars[i] = was;
    }
}

/// A reload with the same keys keeps the cache, and with it the digest keys it was filled
/// under: the cached cookies are still found.
#[test]
fn a_reload_with_the_same_keys_still_finds_the_cached_cookies() {
    let old = sessions();
    let (_, cookie) = old.issue(session(), 1000).unwrap();
    assert!(old.validate(&cookie, 1001).is_ok());
    let new = sessions().adopt(&old, true);
    assert!(new.is_cached(&cookie));
    assert!(!sessions().adopt(&old, false).is_cached(&cookie));
}

/// A certificate session with every optional field set, as a login would issue it.
fn full_session() -> Session {
    let mut s = session();
    s.method = Method::Certificate;
    s.amr = vec!["swk".into(), "hwk".into(), "pin".into()];
    s.id_token = Some("e".repeat(850));
    s.cert_fingerprint = Some("ab".repeat(32).into());
    s.cert = Some(Box::new(CertInfo {
        organization: "Banka d.d.".into(),
        organization_id: "anchor-1/Banka d.d.".into(),
        subject: "CN=Sara".into(),
        issuer: "CN=ACNLB".into(),
        serial: "01AB".into(),
        anchor: "anchor-1".into(),
        not_after: 2_000_000_000,
        revocation_keys: vec!["k1".into(), "k2".into()],
        distribution_points: vec!["http://crl.localhost/a.crl".into()],
    }));
    s.host = Some("bips.bankart.localhost".into());
    s.family = Some("family-1".into());
    s.provider = Some("rekono".into());
    s
}

#[test]
fn a_cached_session_is_the_session_that_was_sealed() {
    // The cache keeps a compacted copy (boxed certificate, exact-size lists, no id token):
    // nothing of the session may be lost on the way, on a miss, a hit or a peek — the id
    // token included, which logout sends back to the provider.
    let s = sessions();
    let (issued, cookie) = s.issue(full_session(), 1000).unwrap();
    let miss = s.validate(&cookie, 1001).unwrap().session;
    assert!(s.is_cached(&cookie));
    let hit = s.validate(&cookie, 1002).unwrap().session;
    let peeked = s.peek(&cookie, 1003).unwrap();
    for (what, got) in [("miss", &miss), ("hit", &hit), ("peek", &peeked)] {
        assert_eq!(**got, issued, "the session of a {what}");
    }
    // The portal request path gets every field but the id token.
    let lean = s.validate_on_portal(&cookie, 1003).unwrap().session;
    let mut expected = issued.clone();
    expected.id_token = None;
    assert_eq!(*lean, expected);
    // Re-sealed for another host (single sign-on), it is still the whole session.
    let other = s.cookie_for(&hit, Some("acq.bankart.localhost")).unwrap();
    let there = s.validate(&other, 1004).unwrap().session;
    assert_eq!(there.id_token, issued.id_token);
    assert_eq!(there.cert, issued.cert);
    assert_eq!(there.host.as_deref(), Some("acq.bankart.localhost"));
}

#[test]
fn a_cached_session_is_one_small_allocation_without_spare_capacity() {
    // The session behind the cache's `Arc` (16 bytes of counts) fits jemalloc's 320-byte
    // size class; at 512 bytes (the certificate inline, `String`s of 24 bytes) it took 640
    // bytes, half of a cached session's memory (benches/README.md, session memory).
    let arc = std::mem::size_of::<Session>() + 2 * std::mem::size_of::<usize>();
    assert!(arc <= 320, "Arc<Session> takes {arc} bytes");
    // serde reads a list into room for four; the cache keeps only what is used.
    let s = sessions();
    let (_, cookie) = s.issue(full_session(), 1000).unwrap();
    for session in [
        s.validate(&cookie, 1001).unwrap().session,
        s.validate(&cookie, 1002).unwrap().session,
    ] {
        assert_eq!(session.amr.capacity(), session.amr.len());
        let cert = session.cert.as_ref().unwrap();
        assert_eq!(cert.revocation_keys.capacity(), cert.revocation_keys.len());
        assert_eq!(
            cert.distribution_points.capacity(),
            cert.distribution_points.len()
        );
    }
}

mod id_token;
mod prepared;
