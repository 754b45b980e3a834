//! review-hot: attacks on the process's one set of prepared values (`session::HOT_SESSIONS`)
//! through the public API, in a process of their own (so that churning the set cannot push out
//! what the crate's unit tests rely on): more sessions than the set holds, at once, with
//! certificate-only connections sharing what they prepared, and a reload's new signer in the
//! middle. Every request must carry exactly its own session's identity — headers and a
//! verifying assertion — and nothing may panic.
#![allow(clippy::unwrap_used, clippy::indexing_slicing)]

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;

use http::HeaderValue;
use prehod_config::IdentityHeader as H;
use prehod_identity::assertion::Signer;
use prehod_identity::cert::VerdictCache;
use prehod_identity::session::{Method, Session, HOT_SESSIONS};
use serde_json::Value;

fn signer() -> Signer {
    let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
    let key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap();
    Signer::new(
        &key.private_key_to_pem_pkcs8().unwrap(),
        "https://login".into(),
        60,
    )
    .unwrap()
}

/// The claims of `token`, which must verify with `signer`'s key for `audience`.
fn verified(signer: &Signer, token: &HeaderValue, audience: &str) -> Value {
    let jwks: jsonwebtoken::jwk::JwkSet = serde_json::from_value(signer.jwks().clone()).unwrap();
    let key = jsonwebtoken::DecodingKey::from_jwk(&jwks.keys[0]).unwrap();
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[audience]);
    v.validate_exp = false;
    jsonwebtoken::decode::<Value>(token.to_str().unwrap(), &key, &v)
        .unwrap_or_else(|e| panic!("does not verify with this signer: {e}"))
        .claims
}

fn rekono(sub: &str, level: u8, amr: &[&str]) -> Session {
    Session {
        sid: format!("sid-{sub}"),
        name: format!("Name of {sub}"),
        email: format!("{sub}@example.si"),
        amr: amr.iter().map(|a| (*a).to_owned()).collect(),
        ..Session::new(Method::Rekono, sub, level)
    }
}

/// The headers the gateway's list makes of `s` that the tests compare (user, level, amr).
fn values(s: &Session, made: &AtomicUsize) -> Vec<(H, String)> {
    let v = s
        .identity_header_values(|s| {
            made.fetch_add(1, Relaxed);
            Ok::<_, http::header::InvalidHeaderValue>(Box::new([
                (H::User, HeaderValue::from_str(&s.sub)?),
                (H::Level, HeaderValue::from(u16::from(s.level))),
                (H::Amr, HeaderValue::from_str(&s.amr.join(" "))?),
            ]))
        })
        .unwrap();
    v.iter()
        .map(|(k, v)| (*k, v.to_str().unwrap().to_owned()))
        .collect()
}

/// One request of `s` to the portal `audience`: its headers and assertion must be `s`'s.
fn request(s: &Session, signer: &Signer, audience: &str, now: u64, made: &AtomicUsize) {
    let headers = values(s, made);
    assert_eq!(
        headers,
        [
            (H::User, s.sub.clone()),
            (H::Level, s.level.to_string()),
            (H::Amr, s.amr.join(" "))
        ],
        "another session's headers"
    );
    let token = signer.sign_cached(s, audience, now).unwrap();
    let c = verified(signer, &token, audience);
    assert_eq!(c["sub"], s.sub.as_str(), "another session's assertion");
    assert_eq!(c["sid"], s.sid.as_str());
    assert_eq!(c["level"], u64::from(s.level), "another level's assertion");
    assert_eq!(c["amr"], serde_json::to_value(&s.amr).unwrap());
    assert_eq!(c["aud"], audience);
    assert_eq!(
        c["cert_fingerprint"],
        serde_json::to_value(&s.cert_fingerprint).unwrap()
    );
}

/// Attack: the attacker makes more sessions than the set holds (many logins, or one cookie
/// rolled and re-sealed again and again: each cookie is a session object of its own), at once
/// with a victim's requests and their own, on several portals. The victim's values are pushed
/// out and made again; every request still carries exactly its own session's identity.
#[test]
fn review_hot_churning_the_whole_set_never_mixes_identities() {
    let signer = signer();
    let victim = Arc::new(rekono("victim", 30, &["pwd", "otp"]));
    let own = Arc::new(rekono("mallory", 10, &["pwd"]));
    let made_victim = AtomicUsize::new(0);
    let done = AtomicBool::new(false);
    let checks = AtomicUsize::new(0);
    let audiences = ["https://acq", "https://b2b", "https://bws"];
    std::thread::scope(|scope| {
        for t in 0..2usize {
            let (signer, done, checks) = (&signer, &done, &checks);
            scope.spawn(move || {
                let made = AtomicUsize::new(0);
                // Three turns of the set at least, and on until the victim has been checked
                // through ten of its idle spells (on a fast machine the turns alone took half a
                // second: ten checks, the victim never pushed out).
                let mut i = 0usize;
                while i < 3 * HOT_SESSIONS || checks.load(Relaxed) < 50 {
                    i += 1;
                    let s = rekono(&format!("churn-{t}-{i}"), 10, &["pwd"]);
                    let headers = values(&s, &made);
                    assert_eq!(headers[0].1, s.sub);
                    if i.is_multiple_of(512) {
                        request(&s, signer, audiences[i % 3], 1000, &made);
                    }
                }
                done.store(true, Relaxed);
            });
        }
        for t in 0..2usize {
            let (signer, done, checks) = (&signer, &done, &checks);
            let (victim, own, made_victim) = (&victim, &own, &made_victim);
            scope.spawn(move || {
                let mine = AtomicUsize::new(0);
                let mut n = 0usize;
                while !done.load(Relaxed) {
                    let now = 1000 + (n as u64 / 50);
                    request(victim, signer, audiences[(n + t) % 3], now, made_victim);
                    request(own, signer, audiences[(n + 1) % 3], now, &mine);
                    checks.fetch_add(1, Relaxed);
                    n += 1;
                    // The victim idles for a while: long enough to be pushed out.
                    if n.is_multiple_of(5) {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                    }
                }
            });
        }
    });
    // The victim's values were really pushed out (and made again) during the run.
    eprintln!(
        "review-hot: {} checks; the victim's values made {} times",
        checks.load(Relaxed),
        made_victim.load(Relaxed)
    );
    assert!(checks.load(Relaxed) > 10);
    assert!(
        made_victim.load(Relaxed) > 1,
        "the victim was pushed out during the run"
    );
    // After the churn (two turns of the clock: the victim's mark is its second chance):
    // pushed out, its next request is still the victim's.
    for s in 0..(2 * HOT_SESSIONS + 1) {
        let _ = values(
            &rekono(&format!("after-{s}"), 10, &[]),
            &AtomicUsize::new(0),
        );
    }
    let before = made_victim.load(Relaxed);
    request(&victim, &signer, "https://acq", 2000, &made_victim);
    assert_eq!(
        made_victim.load(Relaxed),
        before + 1,
        "pushed out, made again"
    );
}

/// A certificate-only portal's request: the session the gateway makes of the certificate.
fn certificate(sub: &str, fingerprint: &str, level: u8, now: u64) -> Session {
    Session {
        sid: format!("cert-{fingerprint}"),
        name: "Testni Uporabnik".into(),
        amr: vec!["swk".into()],
        auth_time: now,
        cert_fingerprint: Some(fingerprint.into()),
        ..Session::new(Method::Certificate, sub, level)
    }
}

/// Attack: keep-alive connections of two certificates to a certificate-only portal (whose
/// requests share what the connection's first one prepared, `Session::share_prepared`, held by
/// the connection) while the set is churned, and a reload in the middle that makes a new signer and lowers the
/// certificates' level (30 → 20). Each request carries its own certificate's identity, at the
/// level of the configuration it went with, in an assertion of that configuration's signer.
#[test]
fn review_hot_certificate_connections_under_churn_and_a_reload() {
    let (old, new) = (signer(), signer());
    let connections = [
        ("ca:ALICE", "aa", VerdictCache::default()),
        ("ca:BOB", "bb", VerdictCache::default()),
    ];
    let reloaded = AtomicBool::new(false);
    let done = AtomicBool::new(false);
    let made_all = AtomicUsize::new(0);
    std::thread::scope(|scope| {
        let (reloaded, done, made_all) = (&reloaded, &done, &made_all);
        scope.spawn(move || {
            let made = AtomicUsize::new(0);
            for i in 0..(4 * HOT_SESSIONS) {
                let _ = values(&rekono(&format!("c-{i}"), 10, &[]), &made);
                if i == 2 * HOT_SESSIONS {
                    reloaded.store(true, Relaxed);
                }
            }
            done.store(true, Relaxed);
        });
        for (sub, fp, connection) in &connections {
            let (old, new) = (&old, &new);
            scope.spawn(move || {
                let made = AtomicUsize::new(0);
                let mut now = 1000;
                let mut after = 0;
                while !done.load(Relaxed) || after < 20 {
                    made_all.fetch_max(made.load(Relaxed), Relaxed);
                    // The configuration the request went with: read once per request.
                    let is_new = reloaded.load(Relaxed);
                    let (signer, level) = if is_new { (new, 20) } else { (old, 30) };
                    let s = connection.session(certificate(sub, fp, level, now));
                    request(&s, signer, "https://bws", now, &made);
                    if is_new {
                        after += 1;
                    }
                    now += 1;
                    if now % 5 == 0 {
                        std::thread::sleep(std::time::Duration::from_millis(300));
                    }
                }
            });
        }
    });
    // The connection holds what its sessions prepared (not the set): made once per identity —
    // before the reload and after it — however the set was churned.
    assert_eq!(
        made_all.load(Relaxed),
        2,
        "a connection's values stay with it through the churn"
    );
}

/// Attack: a reload makes a new signer while the sessions stay cached; requests of the old
/// configuration still in flight alternate with the new one's on one session object whose
/// values the set gives up in between. An assertion is never one the other signer signed.
#[test]
fn review_hot_two_signers_alternating_on_one_session_through_evictions() {
    let (old, new) = (signer(), signer());
    let s = rekono("alternating", 20, &["pwd", "otp"]);
    let made = AtomicUsize::new(0);
    for round in 0..6u64 {
        for (i, signer) in [&old, &new, &old, &new].into_iter().enumerate() {
            request(
                &s,
                signer,
                "https://acq",
                1000 + round * 40 + i as u64,
                &made,
            );
        }
        if round % 2 == 1 {
            for i in 0..(HOT_SESSIONS + 1) {
                let _ = values(
                    &rekono(&format!("a-{round}-{i}"), 10, &[]),
                    &AtomicUsize::new(0),
                );
            }
        }
    }
}
