//! OCSP (anchors with `ocsp:`), asked at a login after the chain verified.
//!
//! An answer is used only if OpenSSL verifies that it was signed by the certificate's issuer
//! on the verified chain — root or intermediate, its certificate in the answer or not — or by
//! a responder that issuer delegated to (its certificate, issued by that CA, with the
//! OCSP-signing extended key usage); nothing else (no "explicitly trusted" root). A "good"
//! answer must also be fresh: with `nonce: true` the request carries a nonce the answer must
//! return (a replay cannot); otherwise its thisUpdate must be within `max_age`; without
//! nextUpdate it is fresh only for `max_age`; it is cached no longer than its nextUpdate or
//! that age (nor than `cache`). A signed "revoked" is believed whatever its age, and kept for
//! as long as a session may live: a revocation once learned is not forgotten.

use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::x509::X509;

use super::der;
use super::{fetch, Anchor, CertIdentity, Checked, Checker, Presented, Refusal, Unusable};

/// An OCSP responder for one anchor: answers are verified against the anchor's CA.
pub struct Ocsp {
    pub url: String,
    /// An unreachable or unusable responder lets the login through (`soft_fail`) or not.
    pub soft_fail: bool,
    pub timeout: Duration,
    /// Send a nonce and require it back.
    pub nonce: bool,
    /// Seconds: how old a thisUpdate may be when no nonce vouches for the answer.
    pub max_age: i64,
    store: openssl::x509::store::X509Store,
    /// Certificate fingerprint → until when its "good" answer may be used (unix seconds).
    good: moka::sync::Cache<String, i64>,
    /// Fingerprints a responder said were revoked.
    revoked: moka::sync::Cache<String, ()>,
}

/// What asking the responder gave, before the policy applies.
#[derive(Debug, PartialEq, Eq)]
pub enum OcspAnswer {
    Good,
    Revoked,
    /// No usable answer, why (the metric label) and what exactly.
    Unusable(OcspRefusal, String),
}

/// Why an OCSP answer was not used. Each is a metric label
/// (`prehod_ocsp_refused_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OcspRefusal {
    /// No answer: the responder could not be reached, or answered no HTTP success.
    Unreachable,
    /// A response status other than successful (tryLater, unauthorized, …).
    ErrorStatus,
    Unreadable,
    /// Not signed by the issuer or a responder it delegated to.
    Signature,
    /// Nothing about this certificate in it.
    NoStatus,
    /// The responder does not know the certificate.
    UnknownStatus,
    /// Not the nonce of this request: a replayed answer (or a responder that does not echo
    /// nonces, where `nonce: true` was set).
    Nonce,
    /// Too old, or past its nextUpdate, or dated ahead of the clock.
    Stale,
}

impl OcspRefusal {
    pub fn label(self) -> &'static str {
        match self {
            OcspRefusal::Unreachable => "unreachable",
            OcspRefusal::ErrorStatus => "error_status",
            OcspRefusal::Unreadable => "unreadable",
            OcspRefusal::Signature => "signature",
            OcspRefusal::NoStatus => "no_status",
            OcspRefusal::UnknownStatus => "unknown_status",
            OcspRefusal::Nonce => "nonce",
            OcspRefusal::Stale => "stale",
        }
    }
}

/// The parts of a CertID (RFC 6960 §4.1.1, SHA-1) that name one certificate.
#[derive(Debug, PartialEq, Eq)]
struct CertId {
    name_hash: Vec<u8>,
    key_hash: Vec<u8>,
    /// The serial's DER content.
    serial: Vec<u8>,
}

/// `1.3.14.3.2.26` (SHA-1), the content of the OID.
const SHA1_OID: &[u8] = &[0x2b, 0x0e, 0x03, 0x02, 0x1a];
/// `1.3.6.1.5.5.7.48.1.2` (id-pkix-ocsp-nonce), the content of the OID.
const NONCE_OID: &[u8] = &[0x2b, 0x06, 0x01, 0x05, 0x05, 0x07, 0x30, 0x01, 0x02];

impl Ocsp {
    /// `ca`: the anchor's CA certificates (the trust store for the responder's chain);
    /// `remember_revoked_for`: how long a "revoked" is held (a session's absolute lifetime).
    pub fn new(
        settings: &prehod_config::OcspSettings,
        ca: &[X509],
        remember_revoked_for: Duration,
    ) -> Result<Self, openssl::error::ErrorStack> {
        let mut store = openssl::x509::store::X509StoreBuilder::new()?;
        for c in ca {
            store.add_cert(c.clone())?;
        }
        Ok(Self {
            url: settings.url.clone(),
            soft_fail: settings.soft_fail,
            timeout: settings.timeout,
            nonce: settings.nonce,
            max_age: settings.max_age.as_secs().min(i64::MAX as u64) as i64,
            store: store.build(),
            good: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(settings.cache)
                .build(),
            revoked: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(remember_revoked_for.max(settings.cache))
                .build(),
        })
    }

    /// A responder said this certificate is revoked (no network call).
    pub(crate) fn known_revoked(&self, fingerprint: &str) -> bool {
        self.revoked.contains_key(fingerprint)
    }

    /// Asks the responder about `cert` (issued by `issuer`), or answers from what it said
    /// before. `chain_cas`: the verified chain's CA certificates (the issuer up to the root),
    /// the only certificates besides those in the answer a signer may be found among.
    pub async fn ask(&self, http: &reqwest::Client, question: Question<'_>) -> OcspAnswer {
        let Question {
            cert,
            issuer,
            chain_cas,
            fingerprint,
            now,
            skew,
        } = question;
        if self.known_revoked(fingerprint) {
            return OcspAnswer::Revoked;
        }
        if self.good.get(fingerprint).is_some_and(|until| now <= until) {
            return OcspAnswer::Good;
        }
        let unusable =
            |r: OcspRefusal, m: &dyn std::fmt::Display| OcspAnswer::Unusable(r, m.to_string());
        let Some(id) = cert_id(cert, issuer) else {
            return unusable(OcspRefusal::Unreadable, &"the certificate's CertID");
        };
        let nonce = if self.nonce {
            let mut n = [0u8; 16];
            if let Err(e) = openssl::rand::rand_bytes(&mut n) {
                return unusable(OcspRefusal::Unreadable, &e);
            }
            Some(n.to_vec())
        } else {
            None
        };
        let sent = http
            .post(&self.url)
            .header("content-type", "application/ocsp-request")
            .timeout(self.timeout)
            .body(request(&id, nonce.as_deref()))
            .send()
            .await;
        let bytes = match sent {
            Ok(r) => match fetch::bounded_body(r).await {
                Ok(b) => b,
                Err(e) => return unusable(OcspRefusal::Unreachable, &format!("responder: {e}")),
            },
            Err(e) => return unusable(OcspRefusal::Unreachable, &e),
        };
        let answer = self.judge(
            &bytes,
            cert,
            issuer,
            chain_cas,
            &id,
            nonce.as_deref(),
            now,
            skew,
        );
        match answer {
            Ok(Some(until)) => {
                self.good.insert(fingerprint.to_owned(), until);
                OcspAnswer::Good
            }
            Ok(None) => {
                self.revoked.insert(fingerprint.to_owned(), ());
                OcspAnswer::Revoked
            }
            Err((r, m)) => OcspAnswer::Unusable(r, m),
        }
    }

    /// The answer's verdict: `Some(until)` good (usable until then), `None` revoked.
    #[allow(clippy::too_many_arguments)]
    fn judge(
        &self,
        bytes: &[u8],
        cert: &X509,
        issuer: &X509,
        chain_cas: &[X509],
        id: &CertId,
        nonce: Option<&[u8]>,
        now: i64,
        skew: i64,
    ) -> Result<Option<i64>, (OcspRefusal, String)> {
        use openssl::ocsp::{
            OcspCertId, OcspCertStatus, OcspFlag, OcspResponse, OcspResponseStatus,
        };
        let err = |r: OcspRefusal, m: &dyn std::fmt::Display| (r, m.to_string());
        let resp = OcspResponse::from_der(bytes).map_err(|e| err(OcspRefusal::Unreadable, &e))?;
        if resp.status() != OcspResponseStatus::SUCCESSFUL {
            return Err(err(
                OcspRefusal::ErrorStatus,
                &format!("response status {}", resp.status().as_raw()),
            ));
        }
        let basic = resp.basic().map_err(|e| err(OcspRefusal::Unreadable, &e))?;
        let mut certs =
            openssl::stack::Stack::<X509>::new().map_err(|e| err(OcspRefusal::Unreadable, &e))?;
        for c in chain_cas {
            certs
                .push(c.clone())
                .map_err(|e| err(OcspRefusal::Unreadable, &e))?;
        }
        // The signer must be the issuer the answer is about, or a responder it delegated
        // to: OpenSSL's checks, without the "explicitly trusted root signs anything" way out.
        basic
            .verify(&certs, &self.store, OcspFlag::NO_EXPLICIT)
            .map_err(|e| err(OcspRefusal::Signature, &e))?;
        let openssl_id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)
            .map_err(|e| err(OcspRefusal::Unreadable, &e))?;
        let status = basic
            .find_status(&openssl_id)
            .ok_or_else(|| err(OcspRefusal::NoStatus, &"no status for this certificate"))?;
        let read = read_answer(bytes, id)
            .ok_or_else(|| err(OcspRefusal::Unreadable, &"the answer's dates and nonce"))?;
        if status.status == OcspCertStatus::REVOKED {
            return Ok(None);
        }
        if status.status != OcspCertStatus::GOOD {
            return Err(err(OcspRefusal::UnknownStatus, &"status unknown"));
        }
        let vouched = match (nonce, &read.nonce) {
            (None, _) => false,
            (Some(sent), Some(back)) if back.as_slice() == der::tlv(der::OCTET_STRING, sent) => {
                true
            }
            (Some(_), Some(_)) => {
                return Err(err(OcspRefusal::Nonce, &"the nonce of another request (a replayed answer)"))
            }
            (Some(_), None) => {
                return Err(err(
                    OcspRefusal::Nonce,
                    &"no nonce in the answer (a replayed or pre-made answer; or a responder that does not echo nonces, for which `nonce` must be off)",
                ))
            }
        };
        let stale = |m: String| Err((OcspRefusal::Stale, m));
        if read.this_update > now.saturating_add(skew) {
            return stale(format!(
                "thisUpdate {} s ahead of the clock",
                read.this_update - now
            ));
        }
        if let Some(next) = read.next_update {
            if now > next.saturating_add(skew) {
                return stale(format!("past its nextUpdate by {} s", now - next));
            }
        }
        // Without a nonce, and without nextUpdate, only thisUpdate says how fresh it is.
        let age_bound = !vouched || read.next_update.is_none();
        let age = now.saturating_sub(read.this_update);
        if age_bound && age > self.max_age {
            return stale(format!(
                "thisUpdate {age} s ago, over max_age ({} s)",
                self.max_age
            ));
        }
        // OpenSSL's own reading of the same dates must agree.
        let secs = |s: i64| u32::try_from(s.max(0)).unwrap_or(u32::MAX);
        status
            .check_validity(secs(skew), age_bound.then(|| secs(self.max_age)))
            .map_err(|e| err(OcspRefusal::Stale, &e))?;
        let until = [
            read.next_update,
            age_bound.then(|| read.this_update.saturating_add(self.max_age)),
        ]
        .into_iter()
        .flatten()
        .min()
        .unwrap_or(i64::MAX);
        Ok(Some(until))
    }
}

/// What [`Ocsp::ask`] asks about.
pub struct Question<'a> {
    pub cert: &'a X509,
    pub issuer: &'a X509,
    pub chain_cas: &'a [X509],
    pub fingerprint: &'a str,
    pub now: i64,
    pub skew: i64,
}

/// The CertID of `cert` issued by `issuer`: SHA-1 of the issuer's name and of its public key's
/// bits, and the certificate's serial.
fn cert_id(cert: &X509, issuer: &X509) -> Option<CertId> {
    use x509_parser::prelude::FromDer;
    let sha1 = |b: &[u8]| {
        openssl::hash::hash(MessageDigest::sha1(), b)
            .ok()
            .map(|d| d.to_vec())
    };
    let spki = issuer.public_key().ok()?.public_key_to_der().ok()?;
    let fields = der::children(der::read(&spki)?.content)?;
    let bits = fields.get(1).filter(|t| t.tag == der::BIT_STRING)?.content;
    let (_, key_bits) = bits.split_first()?;
    let cert_der = cert.to_der().ok()?;
    let (_, parsed) = x509_parser::certificate::X509Certificate::from_der(&cert_der).ok()?;
    Some(CertId {
        name_hash: sha1(&issuer.subject_name().to_der().ok()?)?,
        key_hash: sha1(key_bits)?,
        serial: parsed.tbs_certificate.raw_serial().to_vec(),
    })
}

/// An OCSPRequest (DER) for `id`, with the nonce extension when there is a nonce.
fn request(id: &CertId, nonce: Option<&[u8]>) -> Vec<u8> {
    use der::{tlv, INTEGER, OCTET_STRING, OID, SEQUENCE};
    let algorithm = tlv(SEQUENCE, &[tlv(OID, SHA1_OID), vec![0x05, 0x00]].concat());
    let cert_id = tlv(
        SEQUENCE,
        &[
            algorithm,
            tlv(OCTET_STRING, &id.name_hash),
            tlv(OCTET_STRING, &id.key_hash),
            tlv(INTEGER, &id.serial),
        ]
        .concat(),
    );
    let list = tlv(SEQUENCE, &tlv(SEQUENCE, &cert_id));
    let mut tbs = list;
    if let Some(n) = nonce {
        let value = tlv(OCTET_STRING, &tlv(OCTET_STRING, n));
        let extension = tlv(SEQUENCE, &[tlv(OID, NONCE_OID), value].concat());
        // requestExtensions [2] EXPLICIT Extensions
        tbs.extend(tlv(0xa2, &tlv(SEQUENCE, &extension)));
    }
    tlv(SEQUENCE, &tlv(SEQUENCE, &tbs))
}

/// What this module reads itself from an answer OpenSSL verified: the nonce extension's value
/// (the DER inside extnValue) and the dates of the single response about `id`.
struct Read {
    nonce: Option<Vec<u8>>,
    this_update: i64,
    next_update: Option<i64>,
}

fn read_answer(response: &[u8], id: &CertId) -> Option<Read> {
    // OCSPResponse { status, [0] { SEQUENCE { type, OCTET STRING BasicOCSPResponse } } }
    let top = der::children(der::read(response)?.content)?;
    let bytes = der::read(top.get(1)?.content)?;
    let typed = der::children(bytes.content)?;
    let basic = der::read(typed.get(1)?.content)?;
    let basic = der::children(basic.content)?;
    let data = der::children(basic.first()?.content)?;
    let mut produced = false;
    let mut nonce = None;
    let mut single = None;
    for field in &data {
        match field.tag {
            der::GENERALIZED_TIME => produced = true,
            der::SEQUENCE if produced => {
                for response in der::children(field.content)? {
                    let parts = der::children(response.content)?;
                    if same_id(parts.first()?.content, id)? {
                        single = Some(parts);
                        break;
                    }
                }
            }
            // responseExtensions [1] EXPLICIT (after producedAt; before it, [1] is the
            // responder's name)
            0xa1 if produced => {
                for ext in der::children(der::read(field.content)?.content)? {
                    let parts = der::children(ext.content)?;
                    if parts.first()?.content == NONCE_OID {
                        nonce = Some(parts.last()?.content.to_vec());
                    }
                }
            }
            _ => {}
        }
    }
    let single = single?;
    let this_update = single
        .get(2)
        .filter(|t| t.tag == der::GENERALIZED_TIME)
        .and_then(|t| der::generalized_time(t.content))?;
    let next_update = match single.get(3) {
        Some(t) if t.tag == 0xa0 => {
            let inner = der::read(t.content)?;
            Some(der::generalized_time(inner.content)?)
        }
        _ => None,
    };
    Some(Read {
        nonce,
        this_update,
        next_update,
    })
}

/// Whether a CertID's content names `id` (SHA-1 only; `None`: unreadable).
fn same_id(content: &[u8], id: &CertId) -> Option<bool> {
    let parts = der::children(content)?;
    let algorithm = der::children(parts.first()?.content)?;
    let sha1 = algorithm.first()?.content == SHA1_OID;
    Some(
        sha1 && parts.get(1)?.content == id.name_hash.as_slice()
            && parts.get(2)?.content == id.key_hash.as_slice()
            && parts.get(3)?.content == id.serial.as_slice(),
    )
}

impl Checker {
    /// The OCSP step of [`Checker::check_online`]: asks the anchor's responder and applies
    /// its policy.
    pub(super) async fn check_ocsp(
        &self,
        http: &reqwest::Client,
        (anchor, ocsp): (&Anchor, &Ocsp),
        id: &CertIdentity,
        presented: &Presented,
    ) -> Checked {
        // The verified chain: the client's certificate, its issuer, …, the anchor's root.
        let Ok(chain) = presented
            .chain
            .iter()
            .map(|d| X509::from_der(d))
            .collect::<Result<Vec<_>, _>>()
        else {
            return Checked::refused(Refusal::Unreadable);
        };
        let (Some(cert), Some(issuer)) = (chain.first(), chain.get(1).or(chain.first())) else {
            return Checked::refused(Refusal::Unreadable);
        };
        let question = Question {
            cert,
            issuer,
            chain_cas: chain.get(1..).unwrap_or_default(),
            fingerprint: &id.fingerprint,
            now: super::now(),
            skew: anchor.clock_skew.unwrap_or(self.clock_skew),
        };
        match ocsp.ask(http, question).await {
            OcspAnswer::Good => Checked::ok(),
            OcspAnswer::Revoked => Checked::refused(Refusal::RevokedOcsp),
            OcspAnswer::Unusable(reason, detail) => Checked {
                verdict: if ocsp.soft_fail {
                    Ok(())
                } else {
                    Err(Refusal::RevocationUnknown)
                },
                unusable: Some(Unusable::Ocsp { reason, detail }),
            },
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_with_or_without_a_nonce_is_one_openssl_reads() {
        let id = CertId {
            name_hash: vec![1; 20],
            key_hash: vec![2; 20],
            serial: vec![0x13, 0x89],
        };
        let req = request(&id, Some(&[9; 16]));
        // OpenSSL reads it as an OCSP request.
        assert!(openssl::ocsp::OcspRequest::from_der(&req).is_ok());
        let plain = request(&id, None);
        assert!(plain.len() < req.len());
        assert!(openssl::ocsp::OcspRequest::from_der(&plain).is_ok());
    }
}
