//! CRLs: when one is taken (for a configured source, see [`super::sources`]; for a
//! distribution point, [`super::distribution`]).
//!
//! CRLs travel over plain HTTP by design, so anyone on the path can replay an old one or put
//! another CA's in its place: a CRL is taken only if, in this order, it parses; it is issued
//! under the name of the CA whose CRL its source is (configured per source; at a distribution
//! point, the certificate's issuer — RFC 5280 §6.3.3); it is signed by that CA's key; it is not
//! a delta CRL and carries no unknown critical extension, on itself or on an entry; its
//! issuingDistributionPoint, if any, is a complete one (no reasons subset, not indirect, not
//! for attribute certificates; for a distribution point, covering end-entity certificates)
//! whose distribution point name, if any, is the URL it came from; its thisUpdate is not ahead of the clock
//! beyond the skew; it has a nextUpdate, not past (beyond `crl_grace`); it has a CRL number;
//! and neither its number nor its thisUpdate is lower than the highest seen for that issuer,
//! key and scope ([`CrlMarks`]: kept across reloads, and in the fleet's shared state across
//! restarts). Anything else is refused ([`CrlRefusal`]), and the CRL it would have replaced
//! stays. Its entries name the CA certificate whose key verified it, so it speaks only for
//! the certificates that key issued.

use std::collections::HashSet;

use openssl::hash::MessageDigest;
use openssl::sign::Verifier;
use openssl::x509::{X509Crl, X509};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use super::der;
use super::marks::{CrlMarks, Mark, MarkKey};
use super::verdict::{issuer_id_of_der, revocation_key};

/// Why a CRL was not taken. Each is a metric label (`prehod_crl_refused_total{reason}`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CrlRefusal {
    /// It could not be had: the download or the file read failed.
    Fetch,
    /// Not a CRL, or one whose dates make no sense.
    Unreadable,
    /// Issued under another name than the CA whose CRL the source is.
    WrongIssuer,
    /// Not signed by that CA's key.
    BadSignature,
    /// No key to check it with is known here (a distribution point no login here named).
    IssuerUnknown,
    /// A delta CRL: it lists only what changed since its base, never the whole.
    Delta,
    /// An unknown critical extension, on the CRL or on an entry.
    CriticalExtension,
    /// Its issuingDistributionPoint makes it another scope than the source's.
    Scope,
    /// Its thisUpdate is ahead of the clock beyond the skew.
    NotYetValid,
    /// No nextUpdate: it would be fresh for ever.
    NoNextUpdate,
    /// Past its nextUpdate (beyond `crl_grace`).
    Expired,
    /// No CRL number, so no way to tell an older one from a newer one.
    NoCrlNumber,
    /// Its number or its thisUpdate is lower than those of a CRL already seen.
    Rollback,
}

impl CrlRefusal {
    pub fn label(self) -> &'static str {
        match self {
            CrlRefusal::Fetch => "fetch",
            CrlRefusal::Unreadable => "unreadable",
            CrlRefusal::WrongIssuer => "wrong_issuer",
            CrlRefusal::BadSignature => "bad_signature",
            CrlRefusal::IssuerUnknown => "issuer_unknown",
            CrlRefusal::Delta => "delta",
            CrlRefusal::CriticalExtension => "critical_extension",
            CrlRefusal::Scope => "scope",
            CrlRefusal::NotYetValid => "not_yet_valid",
            CrlRefusal::NoNextUpdate => "no_next_update",
            CrlRefusal::Expired => "expired",
            CrlRefusal::NoCrlNumber => "no_crl_number",
            CrlRefusal::Rollback => "rollback",
        }
    }
}

/// A CRL that was not taken: from where, why, and what exactly.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RefusedCrl {
    /// The file or URL.
    pub source: String,
    pub reason: CrlRefusal,
    pub detail: String,
}

impl std::fmt::Display for RefusedCrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.source, self.detail)
    }
}

/// Whose CRL a source must give, and where it came from.
pub(crate) struct Expected<'a> {
    /// The issuer's name (DER).
    pub name: &'a [u8],
    /// The CA certificates whose key may have signed it (they bear that name).
    pub signers: Vec<X509>,
    /// The URL it was fetched from: an issuingDistributionPoint naming URLs must name it.
    pub url: Option<&'a str>,
    /// It decides on an end-entity certificate (a distribution point): it must cover them.
    pub for_end_entity: bool,
}

/// The clock a CRL is judged by.
#[derive(Clone, Copy)]
pub(crate) struct Clock {
    pub now: i64,
    pub skew: i64,
    /// Seconds past its nextUpdate a CRL is still used (`crl_grace`).
    pub grace: Option<i64>,
}

/// A CRL that passed every check, as the checks use it.
pub(crate) struct AcceptedCrl {
    /// [`revocation_key`]s of what it lists.
    pub revoked: HashSet<String>,
    /// The CA certificate whose key signed it ([`super::verdict::issuer_id`]): it speaks only
    /// for the certificates that one issued.
    pub issuer: String,
    pub this_update: i64,
    pub next_update: i64,
    pub loaded_at: i64,
    pub key: MarkKey,
    pub mark: Mark,
    /// Whether it speaks for end-entity certificates and for CA certificates (an
    /// issuingDistributionPoint may narrow it to one kind).
    pub covers_end_entities: bool,
    pub covers_cas: bool,
}

impl AcceptedCrl {
    /// Past its nextUpdate beyond the grace period: its silence no longer says "not revoked".
    pub fn stale(&self, now: i64, grace: Option<i64>) -> bool {
        stale(self.next_update, now, grace)
    }
}

fn stale(next_update: i64, now: i64, grace: Option<i64>) -> bool {
    now > next_update && grace.is_none_or(|g| now > next_update.saturating_add(g))
}

const OID_DELTA_CRL_INDICATOR: &str = "2.5.29.27";
const OID_FRESHEST_CRL: &str = "2.5.29.46";
const OID_CERTIFICATE_ISSUER: &str = "2.5.29.29";

/// Takes `bytes` (PEM or DER) as a CRL of `expected` if every check of this module passes,
/// next to `current` (the CRLs its source gave, one per CA key: the one of the key that signed
/// this may not have a later thisUpdate). `marks` are not raised: the caller does, once it keeps the CRL.
pub(crate) fn accept(
    bytes: &[u8],
    expected: &Expected<'_>,
    clock: &Clock,
    marks: &CrlMarks,
    current: &[std::sync::Arc<AcceptedCrl>],
) -> Result<AcceptedCrl, (CrlRefusal, String)> {
    let refuse = |r: CrlRefusal, why: String| Err((r, why));
    // The issuer's name and the signature first, on the raw DER, before the whole list is
    // parsed: a CRL that is not its CA's costs one signature check, not a parse of its entries.
    let pem;
    let bytes = if bytes.starts_with(b"-----BEGIN") {
        pem = pem_body(bytes)
            .ok_or_else(|| (CrlRefusal::Unreadable, "not a CRL (PEM)".to_owned()))?;
        pem.as_slice()
    } else {
        bytes
    };
    let early = precheck(bytes, expected)?;
    let crl = match X509Crl::from_der(bytes) {
        Ok(c) => c,
        Err(e) => return refuse(CrlRefusal::Unreadable, format!("not a CRL: {e}")),
    };
    let der = crl
        .to_der()
        .map_err(|e| (CrlRefusal::Unreadable, e.to_string()))?;
    let parsed = match CertificateRevocationList::from_der(&der) {
        Ok((_, c)) => c,
        Err(e) => return refuse(CrlRefusal::Unreadable, format!("not a CRL: {e}")),
    };
    if parsed.issuer().as_raw() != expected.name {
        return refuse(
            CrlRefusal::WrongIssuer,
            format!("issued by {}, not by this source's CA", parsed.issuer()),
        );
    }
    let verified = |c: &X509| {
        c.public_key()
            .ok()
            .is_some_and(|key| crl.verify(&key).unwrap_or(false))
    };
    let signer_cert = match early {
        Some(i) => expected.signers.get(i).filter(|c| verified(c)),
        None => expected.signers.iter().find(|c| verified(c)),
    };
    let Some(signer_cert) = signer_cert else {
        return refuse(
            CrlRefusal::BadSignature,
            "not signed by the key of the CA it names".into(),
        );
    };
    if !may_sign_crls(signer_cert) {
        return refuse(
            CrlRefusal::BadSignature,
            "signed by a CA whose key usage does not include cRLSign".into(),
        );
    }
    let Some(issuer) = signer_cert.to_der().ok().and_then(|d| issuer_id_of_der(&d)) else {
        return refuse(
            CrlRefusal::Unreadable,
            "the certificate of the CA that signed it does not parse".into(),
        );
    };
    let mut number = None;
    let mut scope: &[u8] = &[];
    let (mut covers_end_entities, mut covers_cas) = (true, true);
    for ext in parsed.extensions() {
        let oid = ext.oid.to_id_string();
        match ext.parsed_extension() {
            _ if oid == OID_DELTA_CRL_INDICATOR => {
                return refuse(CrlRefusal::Delta, "a delta CRL, not a complete one".into())
            }
            ParsedExtension::CRLNumber(n) => number = Some(n.to_bytes_be()),
            ParsedExtension::IssuingDistributionPoint(idp) => {
                check_scope(idp, expected)?;
                scope = ext.value;
                covers_end_entities = !idp.only_contains_ca_certs;
                covers_cas = !idp.only_contains_user_certs;
            }
            ParsedExtension::AuthorityKeyIdentifier(_)
            | ParsedExtension::IssuerAlternativeName(_) => {}
            _ if oid == OID_FRESHEST_CRL && !ext.critical => {}
            _ if ext.critical => {
                return refuse(
                    CrlRefusal::CriticalExtension,
                    format!("an unknown critical extension {oid}"),
                )
            }
            _ => {}
        }
    }
    let this_update = parsed.last_update().timestamp();
    if this_update > clock.now.saturating_add(clock.skew) {
        return refuse(
            CrlRefusal::NotYetValid,
            format!(
                "thisUpdate {} s ahead of the clock",
                this_update - clock.now
            ),
        );
    }
    let Some(next_update) = parsed.next_update().map(|t| t.timestamp()) else {
        return refuse(
            CrlRefusal::NoNextUpdate,
            "no nextUpdate (it would never go stale)".into(),
        );
    };
    if next_update < this_update {
        return refuse(
            CrlRefusal::Unreadable,
            "nextUpdate before thisUpdate".into(),
        );
    }
    let mut revoked = HashSet::new();
    for entry in parsed.iter_revoked_certificates() {
        for ext in entry.extensions() {
            let oid = ext.oid.to_id_string();
            if oid == OID_CERTIFICATE_ISSUER {
                return refuse(
                    CrlRefusal::Scope,
                    "an indirect CRL (entries of another issuer)".into(),
                );
            }
            let known = matches!(
                ext.parsed_extension(),
                ParsedExtension::ReasonCode(_) | ParsedExtension::InvalidityDate(_)
            );
            if ext.critical && !known {
                return refuse(
                    CrlRefusal::CriticalExtension,
                    format!("an entry with an unknown critical extension {oid}"),
                );
            }
        }
        revoked.insert(revocation_key(&issuer, entry.raw_serial()));
    }
    if stale(next_update, clock.now, clock.grace) {
        return refuse(
            CrlRefusal::Expired,
            format!("past its nextUpdate by {} s", clock.now - next_update),
        );
    }
    let Some(number) = number else {
        return refuse(CrlRefusal::NoCrlNumber, "no CRL number".into());
    };
    if number.iter().skip_while(|b| **b == 0).count() > 20 {
        return refuse(CrlRefusal::Unreadable, "a CRL number over 20 octets".into());
    }
    let mark = Mark::new(&number, this_update);
    let spki = signer_cert
        .public_key()
        .and_then(|k| k.public_key_to_der())
        .unwrap_or_default();
    let key = mark_key(expected.name, &spki, scope);
    if let Err(highest) = marks.admits(&key, &mark) {
        return refuse(
            CrlRefusal::Rollback,
            format!(
                "CRL number {} of thisUpdate {} is below the highest seen ({} of {})",
                hex::encode(mark.number()),
                this_update,
                hex::encode(highest.number()),
                highest.this_update()
            ),
        );
    }
    // Another series at the same source (another scope, a new key) may start over in its
    // numbers, but never goes back in time.
    if let Some(current) = current
        .iter()
        .find(|c| c.issuer == issuer && this_update < c.this_update)
    {
        return refuse(
            CrlRefusal::Rollback,
            format!(
                "thisUpdate {this_update} is before that of the CRL it would replace ({})",
                current.this_update
            ),
        );
    }
    Ok(AcceptedCrl {
        revoked,
        issuer,
        this_update,
        next_update,
        loaded_at: clock.now,
        key,
        mark,
        covers_end_entities,
        covers_cas,
    })
}

/// A CA certificate's key may sign CRLs: no key usage extension, or one with cRLSign.
fn may_sign_crls(cert: &X509) -> bool {
    let Ok(der) = cert.to_der() else {
        return false;
    };
    let Ok((_, parsed)) = X509Certificate::from_der(&der) else {
        return false;
    };
    match parsed.key_usage() {
        Ok(Some(ku)) => ku.value.crl_sign(),
        Ok(None) => true,
        Err(_) => false,
    }
}

/// An issuingDistributionPoint the source can stand for: complete (all reasons, not indirect,
/// not for attribute certificates), covering end-entity certificates when it decides on one,
/// and naming the URL it came from when it names URLs.
fn check_scope(
    idp: &IssuingDistributionPoint<'_>,
    expected: &Expected<'_>,
) -> Result<(), (CrlRefusal, String)> {
    let scope = |why: &str| Err((CrlRefusal::Scope, why.to_owned()));
    if idp.indirect_crl {
        return scope("an indirect CRL");
    }
    if idp.only_some_reasons.is_some() {
        return scope("a partial CRL (only some revocation reasons)");
    }
    if idp.only_contains_attribute_certs {
        return scope("a CRL of attribute certificates");
    }
    if expected.for_end_entity && idp.only_contains_ca_certs {
        return scope("a CRL of CA certificates only");
    }
    // RFC 5280 §6.3.3 (b)(2)(i): a CRL whose issuingDistributionPoint names a distribution
    // point covers only the certificates of that point. Here that point must be the URL it
    // came from, named as that URI exactly; a name of any other form (a directoryName, one
    // relative to the issuer), or a file source with nothing to compare, is not this scope.
    if let Some(point) = &idp.distribution_point {
        let Some(url) = expected.url else {
            return scope("its issuingDistributionPoint names a partition; a file source has no URL to match it with");
        };
        let names_url = match point {
            DistributionPointName::FullName(names) => names
                .iter()
                .any(|n| matches!(n, GeneralName::URI(u) if *u == url)),
            DistributionPointName::NameRelativeToCRLIssuer(_) => false,
        };
        if !names_url {
            return Err((
                CrlRefusal::Scope,
                format!("its issuingDistributionPoint names {point:?}, not this URL"),
            ));
        }
    }
    Ok(())
}

/// The DER inside a PEM `X509 CRL` block.
fn pem_body(pem: &[u8]) -> Option<Vec<u8>> {
    use base64::Engine as _;
    let text = std::str::from_utf8(pem).ok()?;
    let body = text
        .trim()
        .strip_prefix("-----BEGIN X509 CRL-----")?
        .split("-----END X509 CRL-----")
        .next()?;
    let b64: String = body.chars().filter(|c| !c.is_ascii_whitespace()).collect();
    base64::engine::general_purpose::STANDARD.decode(b64).ok()
}

/// Before the whole CRL is parsed: its issuer's name (`WrongIssuer`) and its signature by one
/// of `expected.signers` (`BadSignature`), read from the raw DER. `Some(i)`: signer `i`
/// signed it; `None`: the algorithm is not one checked here (the full parse checks it).
fn precheck(bytes: &[u8], expected: &Expected<'_>) -> Result<Option<usize>, (CrlRefusal, String)> {
    let unreadable = || (CrlRefusal::Unreadable, "not a CRL (DER)".to_owned());
    let outer = der::read(bytes)
        .filter(|t| t.tag == 0x30)
        .ok_or_else(unreadable)?;
    let tbs = der::read(outer.content)
        .filter(|t| t.tag == 0x30)
        .ok_or_else(unreadable)?;
    let tbs_raw = outer
        .content
        .get(..outer.content.len() - tbs.rest.len())
        .ok_or_else(unreadable)?;
    let alg = der::read(tbs.rest)
        .filter(|t| t.tag == 0x30)
        .ok_or_else(unreadable)?;
    let sig = der::read(alg.rest)
        .filter(|t| t.tag == 0x03)
        .ok_or_else(unreadable)?;
    let Some((0, signature)) = sig.content.split_first().map(|(u, s)| (*u, s)) else {
        return Err(unreadable());
    };
    // tbsCertList: version (optional INTEGER), signature, issuer, …
    let mut rest = tbs.content;
    let mut first = der::read(rest).ok_or_else(unreadable)?;
    if first.tag == 0x02 {
        rest = first.rest;
        first = der::read(rest).ok_or_else(unreadable)?;
    }
    let issuer = der::read(first.rest).ok_or_else(unreadable)?;
    let issuer_raw = first
        .rest
        .get(..first.rest.len() - issuer.rest.len())
        .ok_or_else(unreadable)?;
    if issuer_raw != expected.name {
        return Err((
            CrlRefusal::WrongIssuer,
            "issued under another name than this source's CA".into(),
        ));
    }
    let oid = der::read(alg.content)
        .filter(|t| t.tag == 0x06)
        .ok_or_else(unreadable)?;
    let digest = match oid.content {
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x02]
        | [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0b] => MessageDigest::sha256(),
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x03]
        | [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0c] => MessageDigest::sha384(),
        [0x2a, 0x86, 0x48, 0xce, 0x3d, 0x04, 0x03, 0x04]
        | [0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x01, 0x0d] => MessageDigest::sha512(),
        _ => return Ok(None),
    };
    let signed_by = |c: &X509| {
        let Ok(key) = c.public_key() else {
            return false;
        };
        let Ok(mut v) = Verifier::new(digest, &key) else {
            return false;
        };
        v.verify_oneshot(signature, tbs_raw).unwrap_or(false)
    };
    match expected.signers.iter().position(signed_by) {
        Some(i) => Ok(Some(i)),
        None => Err((
            CrlRefusal::BadSignature,
            "not signed by the key of the CA it names".into(),
        )),
    }
}

fn mark_key(issuer: &[u8], spki: &[u8], scope: &[u8]) -> MarkKey {
    let digest = Sha256::new()
        .chain_update((issuer.len() as u64).to_be_bytes())
        .chain_update(issuer)
        .chain_update((spki.len() as u64).to_be_bytes())
        .chain_update(spki)
        .chain_update(scope)
        .finalize();
    let mut key = [0u8; 16];
    for (out, b) in key.iter_mut().zip(digest.iter()) {
        *out = *b;
    }
    key
}

#[cfg(test)]
mod tests {
    use super::*;
    use ::time::{Duration, OffsetDateTime};
    use rcgen::{
        BasicConstraints, CertificateParams, CertificateRevocationListParams, CertifiedIssuer,
        CrlDistributionPoint, CrlIssuingDistributionPoint, CrlScope, DistinguishedName, DnType,
        IsCa, KeyIdMethod, KeyPair, RevokedCertParams, SerialNumber,
    };

    /// A CA named `name` and what a CRL source of it expects.
    struct Ca {
        issuer: CertifiedIssuer<'static, KeyPair>,
        name: Vec<u8>,
        cert: X509,
    }

    fn ca(name: &str) -> Ca {
        ca_with(name, Vec::new())
    }

    fn ca_with(name: &str, key_usages: Vec<rcgen::KeyUsagePurpose>) -> Ca {
        let mut params = CertificateParams::default();
        params.key_usages = key_usages;
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, name);
        params.distinguished_name = dn;
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let issuer =
            CertifiedIssuer::self_signed(params, KeyPair::generate().expect("key")).expect("ca");
        let cert = X509::from_pem(issuer.pem().as_bytes()).expect("pem");
        Ca {
            name: cert.subject_name().to_der().expect("name"),
            cert,
            issuer,
        }
    }

    fn crl(
        by: &Ca,
        number: u64,
        age: Duration,
        valid: Duration,
        idp: Option<CrlIssuingDistributionPoint>,
    ) -> Vec<u8> {
        let now = OffsetDateTime::now_utc();
        CertificateRevocationListParams {
            this_update: now - age,
            next_update: now - age + valid,
            crl_number: SerialNumber::from(number),
            issuing_distribution_point: idp,
            revoked_certs: vec![RevokedCertParams {
                serial_number: SerialNumber::from(4242u64),
                revocation_time: now - age,
                reason_code: None,
                invalidity_date: None,
            }],
            key_identifier_method: KeyIdMethod::Sha256,
        }
        .signed_by(&by.issuer)
        .expect("crl")
        .der()
        .to_vec()
    }

    fn expected<'a>(ca: &'a Ca, url: Option<&'a str>, for_end_entity: bool) -> Expected<'a> {
        Expected {
            name: &ca.name,
            signers: vec![ca.cert.clone()],
            url,
            for_end_entity,
        }
    }

    fn clock(grace: Option<i64>) -> Clock {
        Clock {
            now: crate::unix_now() as i64,
            skew: 300,
            grace,
        }
    }

    /// [`accept`] with nothing to replace.
    fn take(
        bytes: &[u8],
        expected: &Expected<'_>,
        clock: &Clock,
        marks: &CrlMarks,
    ) -> Result<AcceptedCrl, (CrlRefusal, String)> {
        accept(bytes, expected, clock, marks, &[])
    }

    fn reason(r: Result<AcceptedCrl, (CrlRefusal, String)>) -> Option<CrlRefusal> {
        r.err().map(|(r, _)| r)
    }

    #[test]
    fn a_crl_is_taken_only_from_its_own_ca_and_never_below_its_mark() {
        let (mine, other) = (ca("Issuing CA"), ca("Root CA"));
        let impostor = ca("Issuing CA");
        let marks = CrlMarks::default();
        let day = Duration::days(1);
        let ok = take(
            &crl(&mine, 2, Duration::minutes(1), day, None),
            &expected(&mine, None, false),
            &clock(None),
            &marks,
        )
        .expect("its own CA's current CRL");
        assert_eq!(ok.revoked.len(), 1);
        assert_eq!(marks.get(&ok.key), None, "only raised when installed");
        marks.raise(ok.key, &ok.mark);
        let e = expected(&mine, None, false);
        assert_eq!(
            reason(take(
                &crl(&other, 9, Duration::minutes(1), day, None),
                &e,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::WrongIssuer)
        );
        assert_eq!(
            reason(take(
                &crl(&impostor, 9, Duration::minutes(1), day, None),
                &e,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::BadSignature)
        );
        assert_eq!(
            reason(take(
                &crl(&mine, 1, Duration::minutes(2), day, None),
                &e,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::Rollback),
            "an older one"
        );
        assert_eq!(
            reason(take(
                &crl(&mine, 3, Duration::minutes(5), day, None),
                &e,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::Rollback),
            "a higher number but an earlier thisUpdate"
        );
        assert_eq!(
            reason(take(
                &crl(&mine, 2, Duration::minutes(1), day, None),
                &e,
                &clock(None),
                &marks
            )),
            None,
            "the same one again"
        );
        assert_eq!(
            reason(take(b"not a CRL", &e, &clock(None), &marks)),
            Some(CrlRefusal::Unreadable)
        );
    }

    #[test]
    fn a_pem_crl_is_judged_as_its_der_and_checked_before_it_is_parsed() {
        use base64::Engine as _;
        let mine = ca("Issuing CA");
        let e = expected(&mine, None, false);
        let marks = CrlMarks::default();
        let der = crl(&mine, 1, Duration::minutes(1), Duration::days(1), None);
        let b64 = base64::engine::general_purpose::STANDARD.encode(&der);
        let lines: Vec<&str> = b64
            .as_bytes()
            .chunks(64)
            .filter_map(|c| std::str::from_utf8(c).ok())
            .collect();
        let pem = format!(
            "-----BEGIN X509 CRL-----\n{}\n-----END X509 CRL-----\n",
            lines.join("\n")
        );
        assert_eq!(reason(take(pem.as_bytes(), &e, &clock(None), &marks)), None);
        let broken = pem.replacen("-----\n", "-----\n*", 1);
        assert_eq!(
            reason(take(broken.as_bytes(), &e, &clock(None), &marks)),
            Some(CrlRefusal::Unreadable)
        );
        // Another key under the name: refused on the raw DER, before the entries are read.
        let impostor = ca("Issuing CA");
        let forged = crl(&impostor, 2, Duration::minutes(1), Duration::days(1), None);
        assert_eq!(
            precheck(&forged, &e).err().map(|(r, _)| r),
            Some(CrlRefusal::BadSignature)
        );
        assert_eq!(precheck(&der, &e).ok(), Some(Some(0)), "signer 0 signed it");
    }

    #[test]
    fn a_crl_must_be_current_within_the_skew_and_the_grace_period() {
        let mine = ca("Issuing CA");
        let e = expected(&mine, None, false);
        let marks = CrlMarks::default();
        let ahead = crl(&mine, 1, Duration::minutes(-10), Duration::days(1), None);
        assert_eq!(
            reason(take(&ahead, &e, &clock(None), &marks)),
            Some(CrlRefusal::NotYetValid)
        );
        let within_skew = crl(&mine, 1, Duration::minutes(-2), Duration::days(1), None);
        assert_eq!(reason(take(&within_skew, &e, &clock(None), &marks)), None);
        let expired = crl(&mine, 1, Duration::days(2), Duration::days(1), None);
        assert_eq!(
            reason(take(&expired, &e, &clock(None), &marks)),
            Some(CrlRefusal::Expired)
        );
        assert_eq!(
            reason(take(&expired, &e, &clock(Some(2 * 86_400)), &marks)),
            None,
            "within crl_grace"
        );
    }

    #[test]
    fn an_issuing_distribution_point_must_be_the_sources_scope() {
        let mine = ca("Issuing CA");
        let marks = CrlMarks::default();
        let idp = |url: &str, scope| {
            Some(CrlIssuingDistributionPoint {
                distribution_point: CrlDistributionPoint {
                    uris: vec![url.to_owned()],
                },
                scope,
            })
        };
        let here = "http://crl.example/a.crl";
        let fresh = |i| crl(&mine, 1, Duration::minutes(1), Duration::days(1), i);
        let at_dp = expected(&mine, Some(here), true);
        assert_eq!(
            reason(take(&fresh(idp(here, None)), &at_dp, &clock(None), &marks)),
            None
        );
        assert_eq!(
            reason(take(
                &fresh(idp("http://crl.example/b.crl", None)),
                &at_dp,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::Scope),
            "another partition"
        );
        assert_eq!(
            reason(take(
                &fresh(idp(here, Some(CrlScope::CaCertsOnly))),
                &at_dp,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::Scope),
            "CA certificates only, for a user's certificate"
        );
        assert_eq!(
            reason(take(
                &fresh(idp(here, Some(CrlScope::UserCertsOnly))),
                &at_dp,
                &clock(None),
                &marks
            )),
            None
        );
        // A file source has no URL to compare a partition's name with: not its scope.
        let from_file = expected(&mine, None, false);
        assert_eq!(
            reason(take(
                &fresh(idp(here, None)),
                &from_file,
                &clock(None),
                &marks
            )),
            Some(CrlRefusal::Scope),
            "a partition read from a file"
        );
        // The scope is part of the mark.
        let at_url = expected(&mine, Some(here), false);
        let a = take(&fresh(idp(here, None)), &at_url, &clock(None), &marks).expect("taken");
        let b = take(&fresh(None), &at_url, &clock(None), &marks).expect("taken");
        assert_ne!(
            a.key, b.key,
            "a partition and the full CRL are separate series"
        );
    }
}
