//! The verdict on a client certificate, with no I/O: from the whole record of what OpenSSL
//! reported in the handshake (a [`Presented`] carries every error, with the chain it built) —
//! only date errors may be forgiven, by the clock skew, and only when they are the only errors
//! — then, with x509-parser: validity of every certificate on the chain with bounded skew,
//! extended key usage `clientAuth`, key usage `digitalSignature`, unknown critical extensions,
//! the certificate-policy allow-list, and revocation by the CRLs and answers already held in
//! memory. The same in-memory checks run again on every request of a certificate session.

use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

use super::user_id::Attributes;
use super::{Anchor, Checker};

/// One error OpenSSL reported while verifying a client's chain.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ChainError {
    /// Which certificate: 0 is the client's own, the root has the highest depth.
    pub depth: u32,
    /// The `X509_V_ERR_*` code.
    pub code: i32,
}

/// What a TLS handshake established about the client's certificate: the evidence every
/// decision below is taken from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Presented {
    /// The client's certificate (DER), if it sent one.
    pub leaf: Option<Vec<u8>>,
    /// The chain OpenSSL built, the client's certificate first and the root last (DER).
    pub chain: Vec<Vec<u8>>,
    /// Every error OpenSSL reported while building and checking that chain.
    pub errors: Vec<ChainError>,
    /// OpenSSL verified the chain in this handshake, or the verdict of the handshake that
    /// made a resumed TLS session was carried over. `false`: nothing is known about it.
    pub verified: bool,
}

// X509_V_ERR_* codes (OpenSSL's x509_vfy.h), for the verdict.
const CERT_NOT_YET_VALID: i32 = 9;
const CERT_HAS_EXPIRED: i32 = 10;

/// Why a certificate login is refused. Each has its own page text and metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoCertificate,
    Expired,
    NotYetValid,
    /// A CA certificate on the chain (intermediate or root) has expired.
    IssuerExpired,
    /// A CA certificate on the chain (intermediate or root) is not valid yet.
    IssuerNotYetValid,
    /// OpenSSL reported an error this module does not know: refused, never guessed at.
    ChainInvalid,
    /// A resumed TLS session whose certificate check is not known here (no full handshake).
    NotVerified,
    Untrusted,
    /// Its signature does not verify with the trusted CA of that name: an impostor CA.
    BadSignature,
    Revoked,
    NotForClientAuth,
    PolicyNotAllowed,
    UnknownCriticalExtension,
    ChainTooDeep,
    /// The CA's CRL is past its nextUpdate and the policy is to fail closed.
    RevocationUnknown,
    /// The CA's OCSP responder says revoked.
    RevokedOcsp,
    Unreadable,
    /// Valid, but this user may not use the portal.
    UserNotAllowed,
}

impl Refusal {
    /// Every refusal, for what is listed by refusal (the metrics' `reason` labels, the
    /// pages' texts); `every_refusal_is_listed` keeps it whole.
    pub const ALL: [Refusal; 18] = [
        Refusal::NoCertificate,
        Refusal::Expired,
        Refusal::NotYetValid,
        Refusal::IssuerExpired,
        Refusal::IssuerNotYetValid,
        Refusal::ChainInvalid,
        Refusal::NotVerified,
        Refusal::Untrusted,
        Refusal::BadSignature,
        Refusal::Revoked,
        Refusal::NotForClientAuth,
        Refusal::PolicyNotAllowed,
        Refusal::UnknownCriticalExtension,
        Refusal::ChainTooDeep,
        Refusal::RevocationUnknown,
        Refusal::RevokedOcsp,
        Refusal::Unreadable,
        Refusal::UserNotAllowed,
    ];

    /// Its `reason` label in the metrics and the audit log.
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NoCertificate => "no_certificate",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
            Refusal::IssuerExpired => "ca_expired",
            Refusal::IssuerNotYetValid => "ca_not_yet_valid",
            Refusal::ChainInvalid => "chain_invalid",
            Refusal::NotVerified => "not_verified",
            Refusal::Untrusted => "untrusted",
            Refusal::BadSignature => "bad_signature",
            Refusal::Revoked => "revoked",
            Refusal::NotForClientAuth => "not_for_client_auth",
            Refusal::PolicyNotAllowed => "policy_not_allowed",
            Refusal::UnknownCriticalExtension => "unknown_critical_extension",
            Refusal::ChainTooDeep => "chain_too_deep",
            Refusal::RevocationUnknown => "revocation_unknown",
            Refusal::RevokedOcsp => "revoked_ocsp",
            Refusal::Unreadable => "unreadable",
            Refusal::UserNotAllowed => "user_not_allowed",
        }
    }
}

/// What a certificate that passed proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdentity {
    pub user_id: String,
    /// The subject's organisation (O), if any.
    pub organization: String,
    /// The organisation named with its anchor, as `allowed_organisations` lists it
    /// (`acnlb:Bankart d.o.o.`): another anchor's CA may issue the same O.
    pub organization_id: String,
    pub name: String,
    pub email: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fingerprint: String,
    pub anchor: String,
    /// The earliest notAfter of the verified chain (unix seconds): the certificate is usable
    /// no longer than its shortest-lived CA.
    pub not_after: i64,
    /// The http(s) CRL distribution points it names.
    pub distribution_points: Vec<String>,
    /// How the CRLs name each certificate of its chain but the root (see [`revocation_key`]).
    pub revocation_keys: Vec<String>,
}

impl Checker {
    /// Decides on the certificate a client presented, at unix time `now`: first the verdict
    /// on its chain from every error OpenSSL reported, then the dates of every certificate on
    /// the chain, its anchor, the chain's length, the certificate's own extensions, the CRLs,
    /// and last the user id.
    pub fn check(&self, presented: &Presented, now: i64) -> Result<CertIdentity, Refusal> {
        let der = presented.leaf.as_deref().ok_or(Refusal::NoCertificate)?;
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| Refusal::Unreadable)?;
        if !presented.verified {
            return Err(Refusal::NotVerified);
        }
        // Every error but a date error refuses, whatever else OpenSSL reported after it.
        if let Some(e) = presented
            .errors
            .iter()
            .find(|e| !matches!(e.code, CERT_NOT_YET_VALID | CERT_HAS_EXPIRED))
        {
            // The certificate the error is about: the chain OpenSSL built, at its depth.
            let at_depth = presented
                .chain
                .get(e.depth as usize)
                .and_then(|d| X509Certificate::from_der(d).ok().map(|(_, c)| c));
            return Err(self.refusal_for(e.code, at_depth.as_ref().unwrap_or(&cert)));
        }
        // The chain OpenSSL built: the client's certificate first, a configured root last.
        let chain = presented
            .chain
            .iter()
            .map(|c| X509Certificate::from_der(c).map(|(_, c)| c))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| Refusal::Unreadable)?;
        if presented.chain.first().map(Vec::as_slice) != Some(der) {
            return Err(Refusal::ChainInvalid);
        }
        let root = presented.chain.last().ok_or(Refusal::Untrusted)?;
        let anchor = self
            .anchors
            .iter()
            .find(|a| a.ca.iter().any(|ca| ca.to_der().is_ok_and(|d| &d == root)))
            .ok_or(Refusal::Untrusted)?;
        // Date errors are forgiven only inside the skew, for every certificate on the chain.
        let skew = anchor.clock_skew.unwrap_or(self.clock_skew);
        for (depth, c) in chain.iter().enumerate() {
            let leaf = depth == 0;
            if now.saturating_add(skew) < c.validity().not_before.timestamp() {
                return Err(if leaf {
                    Refusal::NotYetValid
                } else {
                    Refusal::IssuerNotYetValid
                });
            }
            if now.saturating_sub(skew) > c.validity().not_after.timestamp() {
                return Err(if leaf {
                    Refusal::Expired
                } else {
                    Refusal::IssuerExpired
                });
            }
        }
        if chain.len().saturating_sub(2)
            > anchor.max_intermediates.unwrap_or(self.max_intermediates)
        {
            return Err(Refusal::ChainTooDeep);
        }
        check_extensions(&cert, anchor)?;
        let revocation_keys = revocation_keys(&chain);
        anchor.check_crls(&revocation_keys, now, self.stale_grace)?;
        let subject = cert.subject();
        let first = |it: &mut dyn Iterator<Item = &AttributeTypeAndValue>| {
            it.next().and_then(|a| a.as_str().ok()).map(str::to_owned)
        };
        let cn = first(&mut subject.iter_common_name()).unwrap_or_default();
        let email = cert
            .subject_alternative_name()
            .ok()
            .flatten()
            .and_then(|san| {
                san.value.general_names.iter().find_map(|n| match n {
                    GeneralName::RFC822Name(e) => Some((*e).to_owned()),
                    _ => None,
                })
            })
            .unwrap_or_default();
        let serial_number = subject
            .iter_by_oid(&oid_registry::OID_X509_SERIALNUMBER)
            .next()
            .and_then(|a| a.as_str().ok())
            .map(str::to_owned)
            .unwrap_or_default();
        let organization = first(&mut subject.iter_organization()).unwrap_or_default();
        let attributes = Attributes {
            serial_number: &serial_number,
            common_name: &cn,
            email: &email,
            organization: &organization,
        };
        let user_id = anchor.user_id(&attributes).ok_or(Refusal::Unreadable)?;
        Ok(CertIdentity {
            user_id,
            organization_id: format!("{}{organization}", anchor.user_id_prefix),
            organization,
            name: cn,
            email,
            subject: subject.to_string(),
            issuer: cert.issuer().to_string(),
            serial: hex::encode(cert.tbs_certificate.raw_serial()),
            fingerprint: hex::encode(Sha256::digest(der)),
            anchor: anchor.name.clone(),
            not_after: chain
                .iter()
                .map(|c| c.validity().not_after.timestamp())
                .min()
                .unwrap_or(i64::MIN),
            distribution_points: distribution_point_urls(&cert),
            revocation_keys,
        })
    }

    /// The refusal for an error OpenSSL reported about `cert`, a certificate of the chain (not
    /// a date error).
    fn refusal_for(&self, code: i32, cert: &X509Certificate<'_>) -> Refusal {
        match code {
            // CERT_SIGNATURE_FAILURE, UNABLE_TO_DECRYPT_CERT_SIGNATURE,
            // UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY: a CA of the trusted name did not sign it.
            7 | 4 | 6 => Refusal::BadSignature,
            // CERT_CHAIN_TOO_LONG, PATH_LENGTH_EXCEEDED
            22 | 25 => Refusal::ChainTooDeep,
            // INVALID_PURPOSE: not for TLS client authentication.
            26 => Refusal::NotForClientAuth,
            34 => Refusal::UnknownCriticalExtension,
            // ERROR_IN_CERT_NOT_BEFORE_FIELD / _NOT_AFTER_FIELD
            13 | 14 => Refusal::Unreadable,
            // The issuer cannot be found or is not trusted: UNABLE_TO_GET_ISSUER_CERT(_LOCALLY),
            // UNABLE_TO_VERIFY_LEAF_SIGNATURE, DEPTH_ZERO_SELF_SIGNED_CERT,
            // SELF_SIGNED_CERT_IN_CHAIN, INVALID_CA, CERT_UNTRUSTED, CERT_REJECTED,
            // SUBJECT_ISSUER_MISMATCH, AKID_SKID_MISMATCH, AKID_ISSUER_SERIAL_MISMATCH,
            // KEYUSAGE_NO_CERTSIGN.
            2 | 18 | 19 | 20 | 21 | 24 | 27 | 28 | 29 | 30 | 31 | 32 => {
                // An issuer bearing a trusted anchor's exact name that did not verify is an
                // impostor, not merely an unknown authority.
                let issuer = cert.issuer().as_raw();
                let claims_trusted_name = self.anchors.iter().any(|a| {
                    a.ca.iter()
                        .any(|ca| ca.subject_name().to_der().is_ok_and(|d| d == issuer))
                });
                if claims_trusted_name {
                    Refusal::BadSignature
                } else {
                    Refusal::Untrusted
                }
            }
            _ => Refusal::ChainInvalid,
        }
    }

    /// The checks a certificate session gets on every request after its login: the anchor's
    /// current CRLs (in memory), the CRLs of its distribution points (kept fresh in the
    /// background), a revocation an OCSP responder told, and the certificate's own expiry. No
    /// network call.
    pub fn still_valid(&self, cert: &SessionCert<'_>, now: i64) -> Result<(), Refusal> {
        let anchor = self.anchor(cert.anchor).ok_or(Refusal::Untrusted)?;
        let skew = anchor.clock_skew.unwrap_or(self.clock_skew);
        if now.saturating_sub(skew) > cert.not_after {
            return Err(Refusal::Expired);
        }
        anchor.check_crls(cert.revocation_keys, now, self.stale_grace)?;
        if let Some(dps) = &anchor.distribution_points {
            dps.still_valid(
                cert.distribution_points,
                cert.revocation_keys,
                now,
                self.stale_grace,
            )?;
        }
        if anchor
            .ocsp
            .as_ref()
            .is_some_and(|o| o.known_revoked(cert.fingerprint))
        {
            return Err(Refusal::RevokedOcsp);
        }
        Ok(())
    }
}

/// What a certificate session carries for [`Checker::still_valid`].
pub struct SessionCert<'a> {
    pub anchor: &'a str,
    pub fingerprint: &'a str,
    pub not_after: i64,
    pub revocation_keys: &'a [String],
    pub distribution_points: &'a [String],
}

/// The client certificate's own extensions: `clientAuth`, `digitalSignature`, no unknown
/// critical extension, and the anchor's policy allow-list.
fn check_extensions(cert: &X509Certificate<'_>, anchor: &Anchor) -> Result<(), Refusal> {
    let mut client_auth = false;
    let mut has_policies = false;
    for ext in cert.extensions() {
        match ext.parsed_extension() {
            ParsedExtension::ExtendedKeyUsage(eku) => client_auth = eku.client_auth || eku.any,
            ParsedExtension::KeyUsage(ku) if !ku.digital_signature() => {
                return Err(Refusal::NotForClientAuth)
            }
            ParsedExtension::CertificatePolicies(policies) => {
                has_policies = true;
                if let Some(allowed) = &anchor.policies {
                    let ok = policies
                        .iter()
                        .any(|p| allowed.contains(&p.policy_id.to_id_string()));
                    if !ok {
                        return Err(Refusal::PolicyNotAllowed);
                    }
                }
            }
            ParsedExtension::UnsupportedExtension { .. } | ParsedExtension::ParseError { .. }
                if ext.critical =>
            {
                return Err(Refusal::UnknownCriticalExtension);
            }
            _ => {}
        }
    }
    if !client_auth {
        return Err(Refusal::NotForClientAuth);
    }
    if anchor.policies.is_some() && !has_policies {
        return Err(Refusal::PolicyNotAllowed);
    }
    Ok(())
}

/// How a CRL entry names a certificate: its issuer — the CA certificate that issued it, by
/// that certificate's name *and key* ([`issuer_id`]) — and its serial, so that two CAs'
/// serials never meet, nor two keys' of one CA (a key renewal leaves two CA certificates of
/// one name). `issuer` is an [`issuer_id`], `serial` the DER content of the serial (two's
/// complement), read the same way from the certificate and from the CRL.
pub(crate) fn revocation_key(issuer: &str, serial: &[u8]) -> String {
    format!("{issuer}:{}", serial_text(serial))
}

/// The issuer part of a [`revocation_key`]: a CA certificate's subject name (DER) and its
/// public key (SubjectPublicKeyInfo, DER), hashed (the first 16 bytes of SHA-256, in hex).
/// Taken from the issuer certificate itself — on a chain, the certificate OpenSSL verified the
/// signature with; for a CRL, the one whose key verified it — never from a certificate's own
/// issuer field, which may spell the same name otherwise.
pub(crate) fn issuer_id(subject: &[u8], spki: &[u8]) -> String {
    let digest = Sha256::new()
        .chain_update((subject.len() as u64).to_be_bytes())
        .chain_update(subject)
        .chain_update(spki)
        .finalize();
    hex::encode(digest.get(..16).unwrap_or_default())
}

/// The [`issuer_id`] of a CA certificate (DER); `None` when it does not parse.
pub(crate) fn issuer_id_of_der(der: &[u8]) -> Option<String> {
    let (_, c) = X509Certificate::from_der(der).ok()?;
    Some(issuer_id_of(&c))
}

fn issuer_id_of(c: &X509Certificate<'_>) -> String {
    issuer_id(c.subject().as_raw(), c.public_key().raw)
}

/// The issuer part of a revocation key made by [`revocation_key`].
pub(crate) fn issuer_hash_of(key: &str) -> &str {
    key.split(':').next().unwrap_or_default()
}

/// A serial's value, whatever its encoding: sign and magnitude in hex, without leading zeros
/// (`-7b` for the one-byte two's complement `85`). RFC 5280 forbids negative serials, but CAs
/// have issued them, and one must be found in a CRL that lists it.
fn serial_text(raw: &[u8]) -> String {
    let negative = raw.first().is_some_and(|b| b & 0x80 != 0);
    let mut magnitude = raw.to_vec();
    if negative {
        // Two's complement: invert, then add one.
        for b in magnitude.iter_mut() {
            *b = !*b;
        }
        for b in magnitude.iter_mut().rev() {
            let (sum, carry) = b.overflowing_add(1);
            *b = sum;
            if !carry {
                break;
            }
        }
    }
    let digits: Vec<u8> = magnitude.into_iter().skip_while(|b| *b == 0).collect();
    format!("{}{}", if negative { "-" } else { "" }, hex::encode(digits))
}

/// The revocation keys of every certificate on a chain but its root, each by the next
/// certificate on the chain: the CA certificate that verified it.
fn revocation_keys(chain: &[X509Certificate<'_>]) -> Vec<String> {
    chain
        .iter()
        .zip(chain.iter().skip(1))
        .map(|(c, issuer)| revocation_key(&issuer_id_of(issuer), c.tbs_certificate.raw_serial()))
        .collect()
}

/// The http(s) CRL distribution points a certificate names.
fn distribution_point_urls(cert: &X509Certificate<'_>) -> Vec<String> {
    let mut urls = Vec::new();
    for ext in cert.extensions() {
        if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
            for point in points.iter() {
                if let Some(DistributionPointName::FullName(names)) = &point.distribution_point {
                    for name in names {
                        if let GeneralName::URI(uri) = name {
                            if uri.starts_with("http://") || uri.starts_with("https://") {
                                urls.push((*uri).to_owned());
                            }
                        }
                    }
                }
            }
        }
    }
    urls
}

#[cfg(test)]
pub(in crate::cert) mod tests {
    use super::*;
    use crate::cert::UserId;
    use openssl::x509::X509;

    /// A generated dev PKI and a checker trusting its CA, with a 5-minute skew.
    pub(in crate::cert) struct Fixture {
        pub(in crate::cert) dir: tempfile::TempDir,
        pub(in crate::cert) checker: Checker,
    }

    pub(in crate::cert) fn fixture() -> Fixture {
        let dir = tempfile::tempdir().expect("tmp");
        prehod_devpki::generate(dir.path(), &["bankart.localhost".to_owned()]).expect("pki");
        let ca =
            X509::from_pem(&std::fs::read(dir.path().join("ca.crt")).expect("ca")).expect("pem");
        let anchor = Anchor::new(
            "prehod dev CA".into(),
            vec![ca],
            UserId::SerialNumber,
            None,
            Vec::new(),
            None,
            None,
        );
        Fixture {
            dir,
            checker: Checker::new(vec![anchor], 4, 300, None),
        }
    }

    impl Fixture {
        fn der(&self, name: &str) -> Vec<u8> {
            X509::from_pem(&std::fs::read(self.dir.path().join(name)).expect("read"))
                .expect("pem")
                .to_der()
                .expect("der")
        }

        /// What a handshake with `leaf` under the dev CA presents, with these errors.
        pub(in crate::cert) fn presented(&self, leaf: &str, errors: &[(u32, i32)]) -> Presented {
            let leaf = self.der(leaf);
            Presented {
                chain: vec![leaf.clone(), self.der("ca.crt")],
                leaf: Some(leaf),
                errors: errors
                    .iter()
                    .map(|&(depth, code)| ChainError { depth, code })
                    .collect(),
                verified: true,
            }
        }
    }

    pub(in crate::cert) fn now() -> i64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64)
    }

    #[test]
    fn the_verdict_accepts_a_clean_chain_and_names_the_anchor_in_the_user_id() {
        let f = fixture();
        let id = f
            .checker
            .check(&f.presented("clients/valid.crt", &[]), now())
            .expect("valid");
        assert_eq!(id.user_id, "prehod-dev-ca:SI-DEV-1000");
        assert_eq!(
            id.revocation_keys.len(),
            1,
            "one certificate below the root"
        );
    }

    #[test]
    fn the_verdict_never_lets_a_date_error_hide_another_error() {
        let f = fixture();
        // OpenSSL reports the signature failure first and the date error last, or the other
        // way round: either way the signature decides.
        for errors in [[(0, 7), (0, 9)], [(0, 9), (0, 7)], [(0, 10), (0, 7)]] {
            assert_eq!(
                f.checker
                    .check(&f.presented("clients/valid.crt", &errors), now()),
                Err(Refusal::BadSignature),
                "{errors:?}"
            );
        }
        // A date error alone, on a certificate whose dates are fine within the skew: forgiven.
        assert!(f
            .checker
            .check(&f.presented("clients/valid.crt", &[(0, 9)]), now())
            .is_ok());
        // A date error alone, outside the skew: refused by the dates themselves.
        assert_eq!(
            f.checker
                .check(&f.presented("clients/not-yet-valid.crt", &[(0, 9)]), now()),
            Err(Refusal::NotYetValid)
        );
        assert_eq!(
            f.checker
                .check(&f.presented("clients/expired.crt", &[(0, 10)]), now()),
            Err(Refusal::Expired)
        );
    }

    #[test]
    fn the_verdict_refuses_what_it_does_not_know() {
        let f = fixture();
        assert_eq!(
            f.checker
                .check(&f.presented("clients/valid.crt", &[(0, 9999)]), now()),
            Err(Refusal::ChainInvalid),
            "an unknown error code"
        );
        let mut resumed = f.presented("clients/valid.crt", &[]);
        resumed.verified = false;
        assert_eq!(
            f.checker.check(&resumed, now()),
            Err(Refusal::NotVerified),
            "no verdict"
        );
        let mut other_root = f.presented("clients/untrusted.crt", &[]);
        other_root.chain[1] = f.der("untrusted-ca.crt");
        assert_eq!(
            f.checker.check(&other_root, now()),
            Err(Refusal::Untrusted),
            "a root that is not an anchor, even with no error reported"
        );
        let mut swapped = f.presented("clients/valid.crt", &[]);
        swapped.leaf = Some(f.der("clients/expired.crt"));
        assert_eq!(
            f.checker.check(&swapped, now()),
            Err(Refusal::ChainInvalid),
            "a chain that is not the presented certificate's"
        );
        let mut nothing = f.presented("clients/valid.crt", &[]);
        nothing.leaf = None;
        assert_eq!(
            f.checker.check(&nothing, now()),
            Err(Refusal::NoCertificate)
        );
    }

    #[test]
    fn the_verdict_judges_an_error_on_the_certificate_it_is_about() {
        let f = fixture();
        // An issuer that cannot be found, at depth 0 of a leaf whose issuer bears the
        // anchor's name: an impostor. Of an unknown CA: untrusted.
        assert_eq!(
            f.checker
                .check(&f.presented("clients/forged.crt", &[(0, 20)]), now()),
            Err(Refusal::BadSignature)
        );
        assert_eq!(
            f.checker
                .check(&f.presented("clients/untrusted.crt", &[(0, 20)]), now()),
            Err(Refusal::Untrusted)
        );
    }

    #[test]
    fn a_serial_is_keyed_by_its_value_whatever_its_encoding() {
        // Whole bytes in hex, as the keys of sessions made before this always were.
        assert_eq!(serial_text(&[0x03, 0xe8]), "03e8");
        assert_eq!(
            serial_text(&[0x00, 0x85]),
            "85",
            "positive, with its sign byte"
        );
        assert_eq!(serial_text(&[0x85]), "-7b", "-123");
        assert_eq!(serial_text(&[0xff, 0x85]), "-7b", "-123, not minimal");
        assert_eq!(serial_text(&[0xff]), "-01");
        assert_eq!(serial_text(&[0x80]), "-80");
        assert_eq!(serial_text(&[0x00]), "");
        // The same value as a big-integer library reads from the same bytes.
        use x509_parser::der_parser::num_bigint::{BigInt, Sign};
        for raw in [
            vec![0x85u8],
            vec![0x00, 0x85],
            vec![0x01, 0x00],
            vec![0xfe, 0x00],
        ] {
            let n = BigInt::from_signed_bytes_be(&raw);
            let magnitude = hex::encode(n.magnitude().to_bytes_be());
            let expected = match n.sign() {
                Sign::Minus => format!("-{magnitude}"),
                _ => magnitude,
            };
            assert_eq!(serial_text(&raw), expected, "{raw:02x?}");
        }
    }

    #[test]
    fn every_refusal_is_listed() {
        // A new variant does not compile here until it is named in this match, a reminder
        // to put it in `Refusal::ALL` too (no stable Rust counts an enum's variants).
        let _named = |r: Refusal| match r {
            Refusal::NoCertificate
            | Refusal::Expired
            | Refusal::NotYetValid
            | Refusal::IssuerExpired
            | Refusal::IssuerNotYetValid
            | Refusal::ChainInvalid
            | Refusal::NotVerified
            | Refusal::Untrusted
            | Refusal::BadSignature
            | Refusal::Revoked
            | Refusal::NotForClientAuth
            | Refusal::PolicyNotAllowed
            | Refusal::UnknownCriticalExtension
            | Refusal::ChainTooDeep
            | Refusal::RevocationUnknown
            | Refusal::RevokedOcsp
            | Refusal::Unreadable
            | Refusal::UserNotAllowed => (),
        };
        let mut labels = Refusal::ALL.map(Refusal::label).to_vec();
        labels.sort_unstable();
        labels.dedup();
        assert_eq!(labels.len(), Refusal::ALL.len(), "a label is given twice");
    }
}
