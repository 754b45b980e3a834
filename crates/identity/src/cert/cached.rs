//! A connection's verdict on its client certificate, kept between its requests: what the
//! handshake presented cannot change on the connection, so the parts of [`Checker::check`]
//! that read only it and the configuration (parsing the chain, OpenSSL's errors, the anchor,
//! extensions, the user id, the revocation keys' hashes) run once per connection and
//! configuration; what changes with time (expiry, the CRLs) runs on every request. On a
//! certificate-only portal this was ~140 000 instructions of every request (benches/README.md).

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use super::{CertIdentity, Checker, Presented, Refusal};

/// Each [`Checker`] is one configuration's: a verdict kept under one is never taken by
/// another (a reload may have removed the anchor, a policy, a user id rule).
static GENERATION: AtomicU64 = AtomicU64::new(1);

pub(super) fn next_generation() -> u64 {
    GENERATION.fetch_add(1, Ordering::Relaxed)
}

/// The verdict of a connection's certificate, by the checker that gave it. Kept with the
/// connection (the handshake's record), never shared between connections.
#[derive(Default)]
pub struct VerdictCache(Mutex<Option<(u64, Arc<CertIdentity>)>>);

impl std::fmt::Debug for VerdictCache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("VerdictCache")
    }
}

impl VerdictCache {
    fn get(&self, generation: u64) -> Option<Arc<CertIdentity>> {
        let held = self.0.lock().unwrap_or_else(|e| e.into_inner());
        held.as_ref()
            .filter(|(g, _)| *g == generation)
            .map(|(_, id)| id.clone())
    }

    fn put(&self, generation: u64, id: &CertIdentity) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) =
            Some((generation, Arc::new(id.clone())));
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
}
