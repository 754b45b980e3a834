//! A connection's verdict on its client certificate, kept between its requests: what the
//! handshake presented cannot change on the connection, so the parts of [`Checker::check`]
//! that read only it and the configuration (parsing the chain, OpenSSL's errors, the anchor,
//! extensions, the user id, the revocation keys' hashes) run once per connection and
//! configuration; what changes with time (expiry, the CRLs) runs on every request. On a
//! certificate-only portal this was ~140 000 instructions of every request (benches/README.md).
//! The identity headers and assertion of its requests are likewise prepared once per
//! connection ([`VerdictCache::session`]).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{CertIdentity, Checker, Presented, Refusal};
use crate::session::{PreparedHold, Session};

/// Each [`Checker`] is one configuration's: a verdict kept under one is never taken by
/// another (a reload may have removed the anchor, a policy, a user id rule).
static GENERATION: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// The verdict of a connection's certificate, by the checker that gave it, and the session its
/// last request to a certificate-only portal went with, and what that session prepared — held
/// here for the connection's life, not by the set of sessions in use (`session::HOT_SESSIONS`):
/// a closed connection's values go with it instead of waiting in the set to be pushed out.
/// Kept with the connection (the handshake's record), never shared between connections.
#[derive(Default)]
pub struct VerdictCache {
    verdict: Mutex<Option<(u64, Arc<CertIdentity>)>>,
    session: Mutex<Option<(Arc<Session>, PreparedHold)>>,
}

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerdictCache")
    }
}

impl VerdictCache {
    fn get(&self, generation: u64) -> Option<Arc<CertIdentity>> {
        let held = self.verdict.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, id)| id.clone())
    }

    fn put(&self, generation: u64, id: &CertIdentity) {
        *self.verdict.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, Arc::new(id.clone())));
    }

    /// `session`, made for a request to a certificate-only portal (per request: its
    /// `auth_time` is the request's), with what the connection's last one prepared — the
    /// identity header values and assertions — when that is the same session but for its
    /// times ([`Session::share_prepared`]); else it becomes the last one. They are then made
    /// once per connection, not per request (~6 000 instructions, issue 20). A session of
    /// another identity (a reload changed the level, the user id rule) prepares its own.
    pub fn session(&self, mut session: Session) -> Arc<Session> {
        let mut last = self.session.lock().unwrap_or_else(|e| e.into_inner());
        if let Some((last, _)) = last.as_ref() {
            if session.share_prepared(last) {
                return Arc::new(session);
            }
        }
        let session = Arc::new(session);
        let hold = session.prepared.hold();
        *last = Some((session.clone(), hold));
        session
    }
}

impl Checker {
    /// [`Checker::check`] of `presented`, which `cache` keeps for its connection: after the
    /// first verdict that passed under this checker, only its expiry and the anchor's CRLs
    /// are checked again (exactly the parts of `check` that can change while the connection
    /// lasts). Past its expiry the whole check runs again, so the refusal says which
    /// certificate of the chain expired. A refusal is never kept.
    pub fn check_cached(
        &self,
        presented: &Presented,
        cache: &VerdictCache,
        now: i64,
    ) -> Result<CertIdentity, Refusal> {
        if let Some(id) = cache.get(self.generation) {
            let anchor = self.anchors.iter().find(|a| a.name == id.anchor);
            let skew = anchor.and_then(|a| a.clock_skew).unwrap_or(self.clock_skew);
            if let Some(anchor) = anchor.filter(|_| now.saturating_sub(skew) <= id.not_after) {
                anchor.check_crls(&id.revocation_keys, now, self.stale_grace)?;
                return Ok((*id).clone());
            }
        }
        let id = self.check(presented, now)?;
        cache.put(self.generation, &id);
        Ok(id)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cert::verdict::tests::{fixture, now, Fixture};
    use crate::cert::{Anchor, AnchorCrl, CrlSource, UserId};
    use openssl::x509::X509;

    /// The serial of a dev PKI certificate, as `write_crl` takes it.
    fn serial(dir: &std::path::Path, name: &str) -> u64 {
        let cert = X509::from_pem(&std::fs::read(dir.join(name)).expect("read")).expect("pem");
        let hex = cert
            .serial_number()
            .to_bn()
            .and_then(|b| b.to_hex_str().map(|s| s.to_string()))
            .expect("serial");
        u64::from_str_radix(&hex, 16).expect("a u64 serial")
    }

    /// A checker whose one anchor (the dev CA) takes its CRL from `crl`.
    fn with_crl(dir: &std::path::Path, crl: &std::path::Path) -> Checker {
        let ca = X509::from_pem(&std::fs::read(dir.join("ca.crt")).expect("ca")).expect("pem");
        let source = AnchorCrl {
            source: CrlSource::File(crl.to_owned()),
            issuer: ca.subject_name().to_der().expect("name"),
            issuer_name: "prehod dev CA".into(),
        };
        let anchor = Anchor::new(
            "prehod dev CA".into(),
            vec![ca],
            UserId::SerialNumber,
            None,
            vec![source],
            None,
            None,
        );
        Checker::new(vec![anchor], 4, 300, None)
    }

    #[test]
    fn a_kept_verdict_still_meets_the_crl_that_revokes_its_certificate() {
        // The attack: a client keeps its connection open after its certificate was revoked;
        // the verdict of its first request must not carry it past the new CRL.
        let f = fixture();
        let dir = f.dir.path();
        let crl = dir.join("test.crl.pem");
        let day = time::Duration::days(1);
        prehod_devpki::write_crl(dir, &crl, &[], day).expect("crl");
        let checker = with_crl(dir, &crl);
        assert!(checker.load_crl_files().is_empty());
        let presented = f.presented("clients/valid.crt", &[]);
        let cache = VerdictCache::default();
        let first = checker
            .check_cached(&presented, &cache, now())
            .expect("valid");
        assert_eq!(
            checker.check_cached(&presented, &cache, now()),
            Ok(first),
            "the kept verdict"
        );
        let revoked = serial(dir, "clients/valid.crt");
        prehod_devpki::write_crl(dir, &crl, &[revoked], day).expect("crl");
        assert!(checker.load_crl_files().is_empty());
        assert_eq!(
            checker.check_cached(&presented, &cache, now()),
            Err(Refusal::Revoked)
        );
    }

    /// The fixture's valid client certificate, with its verdict kept in a new cache.
    fn a_kept_verdict(f: &Fixture) -> (Presented, VerdictCache) {
        let presented = f.presented("clients/valid.crt", &[]);
        let cache = VerdictCache::default();
        assert!(f.checker.check_cached(&presented, &cache, now()).is_ok());
        (presented, cache)
    }

    #[test]
    fn a_kept_verdict_is_not_taken_by_another_configuration() {
        // The attack: a connection opened before a reload that removed the anchor keeps the
        // access the old configuration gave it.
        let f = fixture();
        let (presented, cache) = a_kept_verdict(&f);
        let reloaded = Checker::new(Vec::new(), 4, 300, None);
        assert_eq!(
            reloaded.check_cached(&presented, &cache, now()),
            Err(Refusal::Untrusted)
        );
    }

    #[test]
    fn a_kept_verdict_ends_with_the_certificate() {
        let f = fixture();
        let (presented, cache) = a_kept_verdict(&f);
        let in_a_century = now() + 100 * 365 * 86_400;
        assert_eq!(
            f.checker.check_cached(&presented, &cache, in_a_century),
            Err(Refusal::Expired)
        );
    }

    /// The session a request to a certificate-only portal is made, at `now`.
    fn certificate_session(level: u8, now: u64) -> Session {
        let sub = "prehod-dev-ca:SI-DEV-1000";
        Session {
            sid: "cert-ab".into(),
            name: "Testni Uporabnik".into(),
            amr: vec!["swk".into()],
            auth_time: now,
            cert_fingerprint: Some("ab".into()),
            ..Session::new(crate::session::Method::Certificate, sub, level)
        }
    }

    #[test]
    fn a_connections_sessions_share_what_they_prepare_until_the_identity_changes() {
        // The attack: one keep-alive connection to a certificate-only portal stays open across
        // a reload that changes what the certificate stands for (here its level). The requests
        // after it must carry the new identity — headers and assertion — not what the
        // connection's earlier requests prepared.
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap())
            .unwrap();
        let pem = key.private_key_to_pem_pkcs8().unwrap();
        let signer = crate::assertion::Signer::new(&pem, "https://login".into(), 60).unwrap();
        let level = |s: &Session| -> serde_json::Value {
            let token = signer.sign_cached(s, "https://bws", 1000).unwrap();
            let claims =
                jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token.as_bytes())
                    .unwrap()
                    .claims;
            claims["level"].clone()
        };
        let made = std::cell::Cell::new(0);
        let values = |s: &Session| {
            let v = s.identity_header_values(|s| {
                made.set(made.get() + 1);
                let level = http::HeaderValue::from(u16::from(s.level));
                Ok::<_, ()>(Box::new([(prehod_config::IdentityHeader::Level, level)]))
            });
            v.unwrap()[0].1.to_str().unwrap().to_owned()
        };
        let connection = VerdictCache::default();
        let first = connection.session(certificate_session(30, 1000));
        assert_eq!(
            (values(&first), level(&first)),
            ("30".to_owned(), 30.into())
        );
        // The next requests of the connection: made again, at their own time, but prepared once.
        for now in [1001, 1002] {
            let next = connection.session(certificate_session(30, now));
            assert_eq!(next.auth_time, now);
            assert_eq!((values(&next), level(&next)), ("30".to_owned(), 30.into()));
        }
        assert_eq!(made.get(), 1);
        // After the reload: its own values and assertion, then shared by the requests after.
        let reloaded = connection.session(certificate_session(20, 1003));
        assert_eq!(
            (values(&reloaded), level(&reloaded)),
            ("20".to_owned(), 20.into())
        );
        let next = connection.session(certificate_session(20, 1004));
        assert_eq!((values(&next), level(&next)), ("20".to_owned(), 20.into()));
        assert_eq!(made.get(), 2);
        // Another connection prepares its own.
        let other = VerdictCache::default().session(certificate_session(20, 1005));
        values(&other);
        assert_eq!(made.get(), 3);
    }

    /// What a connection's sessions prepared is the connection's: held while it lasts (however
    /// many other sessions go through the set of sessions in use), and gone with it — not left
    /// in that set for other sessions to push out (a closed connection's ~1 KiB each stayed in
    /// it: +13 MiB of RSS after a run of new certificate connections, benches/README.md).
    #[test]
    fn a_connections_prepared_values_live_and_go_with_the_connection() {
        let values = |s: &Session| {
            let v = s.identity_header_values(|s| {
                let user = http::HeaderValue::from_str(&s.sub).unwrap();
                Ok::<_, ()>(Box::new([(prehod_config::IdentityHeader::User, user)]))
            });
            v.unwrap()[0].1.to_str().unwrap().to_owned()
        };
        let connection = VerdictCache::default();
        let first = connection.session(certificate_session(30, 1000));
        values(&first);
        let next = connection.session(certificate_session(30, 1001));
        assert_eq!(values(&next), "prehod-dev-ca:SI-DEV-1000");
        assert!(first.prepared.is_held() && next.prepared.is_held());
        drop(connection);
        assert!(
            !first.prepared.is_held() && !next.prepared.is_held(),
            "the closed connection's values are freed, not kept by the set"
        );
    }

    /// review-rp: one TLS connection whose certificate changes (renegotiation, or requests
    /// interleaved with another identity on a connection without SNI) must never hand the
    /// second certificate's requests the first one's prepared headers or assertion.
    #[test]
    fn review_rp_a_connection_never_shares_across_certificates() {
        let connection = VerdictCache::default();
        let values = |s: &Session| {
            let v = s.identity_header_values(|s| {
                let user = http::HeaderValue::from_str(&s.sub).unwrap();
                Ok::<_, ()>(Box::new([(prehod_config::IdentityHeader::User, user)]))
            });
            v.unwrap()[0].1.to_str().unwrap().to_owned()
        };
        let mut a = certificate_session(30, 1000);
        a.sid = "cert-aa".into();
        a.cert_fingerprint = Some("aa".into());
        a.sub = "ca:ALICE".into();
        let mut b = certificate_session(30, 1001);
        b.sid = "cert-bb".into();
        b.cert_fingerprint = Some("bb".into());
        b.sub = "ca:BOB".into();
        // Same fingerprint and id, another subject (a reload's user id rule): not shared.
        let mut c = certificate_session(30, 1002);
        c.sid = "cert-aa".into();
        c.cert_fingerprint = Some("aa".into());
        c.sub = "ca:ALICE-2".into();
        let a = connection.session(a);
        assert_eq!(values(&a), "ca:ALICE");
        let b = connection.session(b);
        assert_eq!(values(&b), "ca:BOB");
        let c = connection.session(c);
        assert_eq!(values(&c), "ca:ALICE-2");
        assert_eq!(values(&a), "ca:ALICE");
    }
}
