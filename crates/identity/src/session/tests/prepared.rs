//! What a session prepares for the requests to portals ([`Prepared`]: its identity header
//! values), and the attacker's review of it: no other session, no changed copy of it and no
//! session opened again from a cookie ever has the values another session object made.
#![allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report

use std::cell::Cell;

use http::header::{HeaderValue, InvalidHeaderValue};
use prehod_config::IdentityHeader as H;

use super::*;

type Values = Box<[(H, HeaderValue)]>;

/// A change to a session, by what it changes.
type Change = (&'static str, fn(&mut Session));

/// Makes two of the values as the gateway's list does (user and level), counting its calls.
fn make(calls: &Cell<u32>) -> impl FnOnce(&Session) -> Result<Values, InvalidHeaderValue> + '_ {
    move |s| {
        calls.set(calls.get() + 1);
        let user = HeaderValue::from_str(&s.sub)?;
        Ok(Box::new([
            (H::User, user),
            (H::Level, u16::from(s.level).into()),
        ]))
    }
}

/// The values as bytes, outliving the list a request holds (a test's few bytes, leaked).
fn shown(values: PreparedValues) -> Vec<(H, &'static [u8])> {
    values
        .iter()
        .map(|(k, v)| (*k, &*Vec::leak(v.as_bytes().to_vec())))
        .collect()
}

#[test]
fn a_session_makes_its_values_once_and_no_other_session_object_takes_them() {
    let s = sessions();
    let (_, cookie) = s.issue(session(), 1000).unwrap();
    let calls = Cell::new(0);
    let cached = s.validate_on_portal(&cookie, 1001).unwrap().session;
    let first = shown(cached.identity_header_values(make(&calls)).unwrap());
    assert_eq!(first, [(H::User, &b"rekono-1"[..]), (H::Level, b"20")]);
    // The next request of the cookie has the same session object, and its values as made.
    let again = s.validate_on_portal(&cookie, 1002).unwrap().session;
    assert!(Arc::ptr_eq(&cached, &again));
    assert_eq!(
        shown(again.identity_header_values(make(&calls)).unwrap()),
        first
    );
    assert_eq!(calls.get(), 1, "made once");

    // The attack: a copy of a prepared session, changed (as a roll, a cookie for another
    // host, or code that raises a level would change one), must not carry its values.
    let mut raised = (*cached).clone();
    raised.sub = "rekono-2".into();
    raised.level = 30;
    let made = shown(raised.identity_header_values(make(&calls)).unwrap());
    assert_eq!(made, [(H::User, &b"rekono-2"[..]), (H::Level, b"30")]);
    assert_eq!(calls.get(), 2);

    // A step-up is a new session (a new id, the old one revoked): it makes its own values,
    // and the revoked one's are never reached again.
    let mut higher = session();
    higher.level = 30;
    higher.family = Some(cached.family_id().into());
    let (_, stepped) = s.issue(higher, 1100).unwrap();
    s.revoke_session(&cached, 1100);
    let stepped = s.validate_on_portal(&stepped, 1101).unwrap().session;
    let made = shown(stepped.identity_header_values(make(&calls)).unwrap());
    assert_eq!(made, [(H::User, &b"rekono-1"[..]), (H::Level, b"30")]);
    assert_eq!(
        s.validate_on_portal(&cookie, 1101).unwrap_err(),
        Refusal::Revoked
    );

    // Nothing of it is sealed: a rolled cookie opens to a new object, which makes its own.
    let json = serde_json::to_value(&*cached).unwrap();
    assert!(json.get("prepared").is_none(), "{json}");
    let (_, other) = s.issue(session(), 1000).unwrap();
    let rolled = s.validate_on_portal(&other, 1400).unwrap().rolled.unwrap();
    let opened = s.validate_on_portal(&rolled, 1401).unwrap().session;
    let before = calls.get();
    opened.identity_header_values(make(&calls)).unwrap();
    assert_eq!(
        calls.get(),
        before + 1,
        "the rolled cookie's session made its own"
    );
}

#[test]
fn values_that_cannot_be_made_are_refused_each_time_and_nothing_is_kept() {
    let mut bad = session();
    bad.sub = "a\nb".into();
    let calls = Cell::new(0);
    assert!(bad.identity_header_values(make(&calls)).is_err());
    assert!(bad.identity_header_values(make(&calls)).is_err());
    assert_eq!(
        calls.get(),
        2,
        "tried again, not kept as refused or as empty"
    );
}

#[test]
fn requests_racing_on_one_session_all_send_the_one_set_it_keeps() {
    let shared = Arc::new(session());
    let made: Vec<usize> = std::thread::scope(|scope| {
        let threads: Vec<_> = (0..8)
            .map(|_| {
                let s = shared.clone();
                scope.spawn(move || {
                    let calls = Cell::new(0);
                    s.identity_header_values(make(&calls)).unwrap().as_ptr() as usize
                })
            })
            .collect();
        threads.into_iter().map(|t| t.join().unwrap()).collect()
    });
    assert!(made.iter().all(|p| *p == made[0]), "one set for all");
}

#[test]
fn a_session_takes_what_another_prepared_only_when_it_is_the_same_but_for_its_times() {
    // The certificate-only portal makes a session per request and gives it what the
    // connection's last one prepared (`VerdictCache::session`). The attack: any difference of
    // identity — another certificate, a reload that changed the level or the user id rule, a
    // session of another host or family — must make its own values, never take those.
    let mut base = full_session();
    base.sid = "cert-ab".into();
    let calls = Cell::new(0);
    let made = base.identity_header_values(make(&calls)).unwrap().as_ptr();
    let mut later = base.clone();
    later.auth_time += 60;
    later.issued_at = Some(2000);
    later.expires_at = 9000;
    later.idle_until = 8000;
    assert!(later.share_prepared(&base));
    assert_eq!(
        later.identity_header_values(make(&calls)).unwrap().as_ptr(),
        made
    );
    assert_eq!(calls.get(), 1, "taken, not made again");

    let changes: [Change; 17] = [
        ("sid", |s| s.sid.push('x')),
        ("sub", |s| s.sub.push('x')),
        ("name", |s| s.name.push('x')),
        ("email", |s| s.email.push('x')),
        ("method", |s| s.method = Method::Rekono),
        ("amr", |s| s.amr.pop().map(drop).unwrap_or_default()),
        ("level", |s| s.level = 10),
        ("op_sid", |s| s.op_sid = None),
        ("id_token", |s| s.id_token = None),
        ("cert_fingerprint", |s| {
            s.cert_fingerprint = Some("cd".into())
        }),
        ("cert subject", |s| {
            s.cert.as_mut().unwrap().subject.push('x')
        }),
        ("cert issuer", |s| s.cert.as_mut().unwrap().issuer.push('x')),
        ("cert serial", |s| s.cert.as_mut().unwrap().serial.push('x')),
        ("cert organisation", |s| {
            s.cert.as_mut().unwrap().organization_id.push('x')
        }),
        ("host", |s| s.host = None),
        ("family", |s| s.family = None),
        ("provider", |s| s.provider = Some("bankart-staff".into())),
    ];
    for (field, change) in changes {
        let mut other = base.clone();
        change(&mut other);
        assert!(!other.share_prepared(&base), "{field}");
        let before = calls.get();
        let own = other.identity_header_values(make(&calls)).unwrap().as_ptr();
        assert_ne!(own, made, "{field}");
        assert_eq!(calls.get(), before + 1, "{field}: made its own");
    }
}

/// A session called `sub`, as the gateway's cache would hold it.
fn named(sub: &str) -> Session {
    Session::new(Method::Rekono, sub, 20)
}

#[test]
fn the_set_holds_a_bounded_number_and_gives_up_the_one_unused_longest() {
    // Issue 20: every cached session that reached a portal kept ~650 bytes of values for as
    // long as it was cached (~1.5 KiB a session). Now a bounded set holds them.
    let hot = crate::session::prepared::HotSet::new(2);
    let calls = Cell::new(0);
    let values = |s: &Session| {
        let v = s.identity_header_values_in(&hot, make(&calls)).unwrap();
        shown(v)
    };
    let (a, b, c) = (named("a"), named("b"), named("c"));
    values(&a);
    values(&b);
    assert_eq!((calls.get(), hot.len()), (2, 2));
    // `a` is used again (its mark set); a third session then takes `b`'s place, not `a`'s.
    assert_eq!(values(&a), [(H::User, &b"a"[..]), (H::Level, b"20")]);
    assert_eq!(calls.get(), 2, "a's values were kept");
    values(&c);
    assert_eq!(
        (calls.get(), hot.len()),
        (3, 2),
        "never more than the bound"
    );
    assert!(a.prepared.is_held() && c.prepared.is_held());
    assert!(!b.prepared.is_held(), "b's values were let go (and freed)");
    // `b` comes back: it makes its own values again — never another session's.
    assert_eq!(values(&b), [(H::User, &b"b"[..]), (H::Level, b"20")]);
    assert_eq!(calls.get(), 4);
    // Sessions going round the set each get their own values, however they are pushed out.
    for round in 0..3 {
        for s in [&a, &b, &c] {
            let v = values(s);
            assert_eq!(v[0], (H::User, s.sub.as_bytes()), "round {round}");
        }
    }
    assert_eq!(hot.len(), 2);
}

#[test]
fn a_request_keeps_the_values_it_took_while_the_set_lets_them_go() {
    let hot = crate::session::prepared::HotSet::new(1);
    let calls = Cell::new(0);
    let a = named("a");
    let held = a.identity_header_values_in(&hot, make(&calls)).unwrap();
    named("b")
        .identity_header_values_in(&hot, make(&calls))
        .unwrap();
    // The request that took `a`'s values still sends them whole; they go when it is done.
    assert_eq!(held[0].1.as_bytes(), b"a");
    assert_eq!(held.len(), 2);
    assert!(a.prepared.is_held());
    drop(held);
    assert!(!a.prepared.is_held());
}

// --- review-rp (independent attacker review of the prepared values) ---

/// Finding 1 (latent): `Sessions::issue` takes an owned session and changes its id, times
/// and family, and kept its `prepared` field. A caller that passed a session which already
/// served a request (a step-up or re-issue built from the live session by move, not by clone)
/// would have given the new session the old one's header values and assertions (old sid, old
/// level). No caller did so (oidc.rs, certificate.rs build fresh sessions); `issue` now
/// empties it, and this test failed before.
#[test]
fn review_rp_an_issued_session_never_keeps_what_the_session_passed_in_had_prepared() {
    let s = sessions();
    let calls = Cell::new(0);
    let mut used = session();
    used.sid = "old-sid".into();
    used.level = 10;
    let before = shown(used.identity_header_values(make(&calls)).unwrap())
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect::<Vec<_>>();
    // The same object, moved and changed, then issued: it prepares its own.
    used.level = 30;
    let (issued, _) = s.issue(used, 1000).unwrap();
    assert_ne!(issued.sid, "old-sid");
    let after = shown(issued.identity_header_values(make(&calls)).unwrap())
        .into_iter()
        .map(|(k, v)| (k, v.to_vec()))
        .collect::<Vec<_>>();
    assert_eq!(calls.get(), 2, "the issued session made its own values");
    assert_ne!(
        after, before,
        "the level-30 session kept the level-10 values"
    );
}

/// Digest input ambiguity of the signer's cache key, tried on the fields an attacker
/// influences (a Rekono name, a certificate subject turned into name/sub, amr lists).
#[test]
fn review_rp_no_two_identities_share_a_signer_cache_key() {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    let signer = crate::assertion::Signer::new(
        &key.private_key_to_pem_pkcs8().unwrap(),
        "https://login".into(),
        60,
    )
    .unwrap();
    let claims = |s: &Session| -> serde_json::Value {
        let t = signer.sign_cached(s, "https://acq", 1000).unwrap();
        jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(t.as_bytes())
            .unwrap()
            .claims
    };
    let base = || {
        let mut s = session();
        s.sid = "same".into();
        s
    };
    let changes: [Change; 8] = [
        ("name/email boundary", |s| {
            s.name = "ab".into();
            s.email = "c".into();
        }),
        ("name/email boundary 2", |s| {
            s.name = "a".into();
            s.email = "bc".into();
        }),
        ("amr split", |s| s.amr = vec!["a".into(), "b".into()]),
        ("amr joined", |s| s.amr = vec!["ab".into()]),
        ("fingerprint empty", |s| {
            s.cert_fingerprint = Some("".into())
        }),
        ("fingerprint none", |s| s.cert_fingerprint = None),
        ("amr into fingerprint", |s| {
            s.cert_fingerprint = Some("x".into());
            s.amr = vec![];
        }),
        ("fingerprint into amr", |s| {
            s.cert_fingerprint = None;
            s.amr = vec!["x".into()];
        }),
    ];
    let mut seen = Vec::new();
    for (what, change) in changes {
        let mut s = base();
        change(&mut s);
        let c = claims(&s);
        assert_eq!(c["name"], s.name.as_str(), "{what}");
        assert_eq!(c["email"], s.email.as_str(), "{what}");
        assert_eq!(
            c["amr"],
            serde_json::to_value(&s.amr).unwrap(),
            "{what}: another identity's assertion"
        );
        assert_eq!(
            c["cert_fingerprint"],
            serde_json::to_value(&s.cert_fingerprint).unwrap(),
            "{what}"
        );
        seen.push(c);
    }
}
