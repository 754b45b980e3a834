//! Certificate login checks. OpenSSL has checked the chain in the handshake against the
//! configured trust anchors (its result comes in as `verify_code`); this module decides the
//! rest with x509-parser — validity with bounded clock skew, extended key usage `clientAuth`,
//! key usage `digitalSignature`, unknown critical extensions, the certificate-policy
//! allow-list — checks revocation against the anchors' CRLs (their signatures checked with
//! OpenSSL, reloaded from disk while the gateway runs), and maps the certificate to a user id.

use std::collections::HashSet;
use std::sync::RwLock;

use openssl::x509::{X509Crl, X509};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

/// Why a certificate login is refused. Each has its own page text and metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    NoCertificate,
    Expired,
    NotYetValid,
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
    pub fn label(self) -> &'static str {
        match self {
            Refusal::NoCertificate => "no_certificate",
            Refusal::Expired => "expired",
            Refusal::NotYetValid => "not_yet_valid",
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

/// Which certificate attribute names the user, or a template of them.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum UserId {
    SerialNumber,
    CommonName,
    Email,
    /// e.g. `"{organization}/{serial_number}"`; placeholders: `serial_number`, `common_name`,
    /// `email`, `organization`. An empty placeholder makes the certificate unusable.
    Template(String),
}

pub struct Anchor {
    pub name: String,
    pub ca: Vec<X509>,
    pub user_id: UserId,
    /// `None`: any policy.
    pub policies: Option<Vec<String>>,
    pub crl_sources: Vec<CrlSource>,
    crl: RwLock<Option<LoadedCrl>>,
    /// Revocation by OCSP, when the anchor names a responder.
    pub ocsp: Option<Ocsp>,
    /// Also check the CRLs named in each certificate's CRL distribution points (http).
    pub distribution_points: Option<DistributionPoints>,
    /// This anchor's own clock skew (seconds) and intermediate limit, over the checker's.
    pub clock_skew: Option<i64>,
    pub max_intermediates: Option<usize>,
}

/// CRLs fetched from certificates' distribution points, kept for a while per URL.
pub struct DistributionPoints {
    /// URL → serials it revokes (only CRLs signed by the anchor's CA are kept).
    cache: moka::sync::Cache<String, std::sync::Arc<HashSet<Vec<u8>>>>,
}

impl DistributionPoints {
    pub fn new(keep_for: std::time::Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(keep_for)
                .build(),
        }
    }
}

/// An OCSP responder for one anchor: answers are verified against the anchor's CA and cached.
pub struct Ocsp {
    pub url: String,
    /// An unreachable or unusable responder lets the login through (`soft_fail`) or not.
    pub soft_fail: bool,
    pub timeout: std::time::Duration,
    store: openssl::x509::store::X509Store,
    /// Certificate fingerprint → was it good.
    cache: moka::sync::Cache<String, bool>,
}

/// What asking the responder gave, before the policy applies.
#[derive(Debug, PartialEq, Eq)]
pub enum OcspAnswer {
    Good,
    Revoked,
    /// No usable answer: unreachable, an error status, a bad signature, unknown, stale.
    Unusable(String),
}

impl Ocsp {
    pub fn new(
        url: String,
        soft_fail: bool,
        timeout: std::time::Duration,
        cache_for: std::time::Duration,
        ca: &[X509],
    ) -> Result<Self, openssl::error::ErrorStack> {
        let mut store = openssl::x509::store::X509StoreBuilder::new()?;
        for c in ca {
            store.add_cert(c.clone())?;
        }
        Ok(Self {
            url,
            soft_fail,
            timeout,
            store: store.build(),
            cache: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(cache_for)
                .build(),
        })
    }

    /// Asks the responder about `cert` (issued by `issuer`), or answers from the cache.
    pub async fn ask(
        &self,
        http: &reqwest::Client,
        cert: &X509,
        issuer: &X509,
        fingerprint: &str,
    ) -> OcspAnswer {
        use openssl::hash::MessageDigest;
        use openssl::ocsp::{
            OcspCertId, OcspCertStatus, OcspFlag, OcspRequest, OcspResponse, OcspResponseStatus,
        };
        if let Some(good) = self.cache.get(fingerprint) {
            return if good {
                OcspAnswer::Good
            } else {
                OcspAnswer::Revoked
            };
        }
        let unusable = |m: &dyn std::fmt::Display| OcspAnswer::Unusable(m.to_string());
        let request = (|| {
            let mut req = OcspRequest::new()?;
            req.add_id(OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)?)?;
            req.to_der()
        })();
        let body = match request {
            Ok(b) => b,
            Err(e) => return unusable(&e),
        };
        let sent = http
            .post(&self.url)
            .header("content-type", "application/ocsp-request")
            .timeout(self.timeout)
            .body(body)
            .send()
            .await;
        let bytes = match sent {
            Ok(r) if r.status().is_success() => match r.bytes().await {
                Ok(b) => b,
                Err(e) => return unusable(&e),
            },
            Ok(r) => return unusable(&format!("responder answered {}", r.status())),
            Err(e) => return unusable(&e),
        };
        let answer = (|| -> Result<OcspAnswer, String> {
            let resp = OcspResponse::from_der(&bytes).map_err(|e| e.to_string())?;
            if resp.status() != OcspResponseStatus::SUCCESSFUL {
                return Err(format!("response status {:?}", resp.status().as_raw()));
            }
            let basic = resp.basic().map_err(|e| e.to_string())?;
            let certs = openssl::stack::Stack::<X509>::new().map_err(|e| e.to_string())?;
            basic
                .verify(&certs, &self.store, OcspFlag::empty())
                .map_err(|e| format!("signature: {e}"))?;
            let id = OcspCertId::from_cert(MessageDigest::sha1(), cert, issuer)
                .map_err(|e| e.to_string())?;
            let status = basic
                .find_status(&id)
                .ok_or("no status for this certificate")?;
            status
                .check_validity(300, None)
                .map_err(|e| format!("stale answer: {e}"))?;
            match status.status {
                OcspCertStatus::GOOD => Ok(OcspAnswer::Good),
                OcspCertStatus::REVOKED => Ok(OcspAnswer::Revoked),
                _ => Err("status unknown".into()),
            }
        })();
        match answer {
            Ok(a) => {
                self.cache
                    .insert(fingerprint.to_owned(), a == OcspAnswer::Good);
                a
            }
            Err(m) => OcspAnswer::Unusable(m),
        }
    }
}

struct LoadedCrl {
    revoked: HashSet<Vec<u8>>,
    this_update: i64,
    next_update: i64,
    /// When it was loaded (unix seconds).
    loaded_at: i64,
}

pub use prehod_config::CrlSource;

/// The state of an anchor's CRLs, for metrics and `/readyz`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CrlState {
    pub this_update: i64,
    pub next_update: i64,
    pub loaded_at: i64,
}

/// What a certificate that passed proves.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertIdentity {
    pub user_id: String,
    /// The subject's organisation (O), if any.
    pub organization: String,
    pub name: String,
    pub email: String,
    pub subject: String,
    pub issuer: String,
    pub serial: String,
    pub fingerprint: String,
    pub anchor: String,
}

pub struct Checker {
    pub anchors: Vec<Anchor>,
    /// How many intermediate CAs may stand between a certificate and its anchor.
    pub max_intermediates: usize,
    pub clock_skew: i64,
    /// Seconds a CRL may be past its nextUpdate and still be used; `None`: fail closed.
    pub stale_grace: Option<i64>,
}

fn asn1_unix(t: &openssl::asn1::Asn1TimeRef) -> Option<i64> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0).ok()?;
    let d = epoch.diff(t).ok()?;
    Some(i64::from(d.days) * 86_400 + i64::from(d.secs))
}

impl Anchor {
    pub fn new(
        name: String,
        ca: Vec<X509>,
        user_id: UserId,
        policies: Option<Vec<String>>,
        crl_sources: Vec<CrlSource>,
        ocsp: Option<Ocsp>,
        distribution_points: Option<DistributionPoints>,
    ) -> Self {
        Self {
            name,
            ca,
            user_id,
            policies,
            crl_sources,
            crl: RwLock::new(None),
            ocsp,
            distribution_points,
            clock_skew: None,
            max_intermediates: None,
        }
    }

    /// Reads the CRL files again (start-up: URLs are fetched by [`Anchor::refresh_crls`]).
    pub fn reload_crls(&self) -> Vec<String> {
        if self
            .crl_sources
            .iter()
            .any(|s| matches!(s, CrlSource::Url(_)))
        {
            return Vec::new();
        }
        let blobs = self
            .crl_sources
            .iter()
            .map(|s| match s {
                CrlSource::File(p) => (
                    p.display().to_string(),
                    std::fs::read(p).map_err(|e| e.to_string()),
                ),
                CrlSource::Url(u) => (u.clone(), Err("not fetched".into())),
            })
            .collect();
        self.install(blobs)
    }

    /// Reads the files and fetches the URLs, then installs the CRLs if all load and verify.
    pub async fn refresh_crls(&self, http: &reqwest::Client) -> Vec<String> {
        let mut blobs = Vec::new();
        for source in &self.crl_sources {
            let blob = match source {
                CrlSource::File(p) => (
                    p.display().to_string(),
                    std::fs::read(p).map_err(|e| e.to_string()),
                ),
                CrlSource::Url(u) => {
                    let got = async {
                        let resp = http.get(u).send().await.map_err(|e| e.to_string())?;
                        if !resp.status().is_success() {
                            return Err(format!("answered {}", resp.status()));
                        }
                        resp.bytes()
                            .await
                            .map(|b| b.to_vec())
                            .map_err(|e| e.to_string())
                    };
                    (u.clone(), got.await)
                }
            };
            blobs.push(blob);
        }
        self.install(blobs)
    }

    /// Parses and checks every CRL; installs them only if all are good (a bad download keeps
    /// the previous ones). Returns the problems.
    fn install(&self, blobs: Vec<(String, Result<Vec<u8>, String>)>) -> Vec<String> {
        if blobs.is_empty() {
            return Vec::new();
        }
        let mut revoked = HashSet::new();
        let (mut this_update, mut next_update) = (i64::MIN, i64::MAX);
        for (name, bytes) in blobs {
            let parsed = bytes.and_then(|b| {
                X509Crl::from_pem(&b)
                    .or_else(|_| X509Crl::from_der(&b))
                    .map_err(|e| e.to_string())
            });
            let crl = match parsed {
                Ok(c) => c,
                Err(e) => return vec![format!("{name}: {e}")],
            };
            let signed = self.ca.iter().any(|ca| {
                ca.public_key()
                    .is_ok_and(|k| crl.verify(&k).unwrap_or(false))
            });
            if !signed {
                return vec![format!("{name}: not signed by the {} CA", self.name)];
            }
            if let Some(list) = crl.get_revoked() {
                for r in list {
                    if let Ok(bn) = r.serial_number().to_bn() {
                        revoked.insert(bn.to_vec());
                    }
                }
            }
            this_update = this_update.max(asn1_unix(crl.last_update()).unwrap_or(i64::MIN));
            next_update =
                next_update.min(crl.next_update().and_then(asn1_unix).unwrap_or(i64::MAX));
        }
        let loaded_at = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs() as i64);
        *self.crl.write().unwrap_or_else(|e| e.into_inner()) = Some(LoadedCrl {
            revoked,
            this_update,
            next_update,
            loaded_at,
        });
        Vec::new()
    }

    /// The loaded CRLs' dates, if any are loaded.
    pub fn crl_state(&self) -> Option<CrlState> {
        self.crl
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| CrlState {
                this_update: c.this_update,
                next_update: c.next_update,
                loaded_at: c.loaded_at,
            })
    }

    /// Seconds since the loaded CRL's nextUpdate passed (negative: still fresh).
    pub fn crl_overdue(&self, now: i64) -> Option<i64> {
        self.crl
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| now - c.next_update)
    }
}

impl Checker {
    /// Checks the client certificate `der`, whose chain OpenSSL judged with `verify_code`
    /// (0 = OK), at unix time `now`.
    ///
    /// `root_subject` is the DER subject of the root of the chain OpenSSL built: with a
    /// certificate issued by an intermediate the client sent, the anchor is found by its root.
    pub fn check(
        &self,
        der: Option<&[u8]>,
        verify_code: i32,
        root_subject: Option<&[u8]>,
        chain_len: usize,
        now: i64,
    ) -> Result<CertIdentity, Refusal> {
        let der = der.ok_or(Refusal::NoCertificate)?;
        let (_, cert) = X509Certificate::from_der(der).map_err(|_| Refusal::Unreadable)?;
        let not_before = cert.validity().not_before.timestamp();
        let not_after = cert.validity().not_after.timestamp();
        match verify_code {
            0 => {}
            // Validity: decided below, with the configured clock skew.
            9 | 10 => {}
            22 | 25 => return Err(Refusal::ChainTooDeep),
            // X509_V_ERR_INVALID_PURPOSE: not for TLS client authentication.
            26 => return Err(Refusal::NotForClientAuth),
            // X509_V_ERR_CERT_SIGNATURE_FAILURE: a CA of the trusted name did not sign it.
            7 => return Err(Refusal::BadSignature),
            // X509_V_ERR_UNHANDLED_CRITICAL_EXTENSION
            34 => return Err(Refusal::UnknownCriticalExtension),
            _ => {
                // An issuer bearing a trusted anchor's exact name that did not verify is an
                // impostor, not merely an unknown authority.
                let issuer = cert.issuer().as_raw();
                let claims_trusted_name = self.anchors.iter().any(|a| {
                    a.ca.iter()
                        .any(|ca| ca.subject_name().to_der().is_ok_and(|d| d == issuer))
                });
                return Err(if claims_trusted_name {
                    Refusal::BadSignature
                } else {
                    Refusal::Untrusted
                });
            }
        }
        let issuer_der = cert.issuer().as_raw();
        let anchor = self
            .anchors
            .iter()
            .find(|a| {
                a.ca.iter().any(|ca| {
                    ca.subject_name()
                        .to_der()
                        .is_ok_and(|d| d == issuer_der || Some(d.as_slice()) == root_subject)
                })
            })
            .ok_or(Refusal::Untrusted)?;
        let skew = anchor.clock_skew.unwrap_or(self.clock_skew);
        if verify_code == 0
            && chain_len.saturating_sub(2)
                > anchor.max_intermediates.unwrap_or(self.max_intermediates)
        {
            return Err(Refusal::ChainTooDeep);
        }
        if now + skew < not_before {
            return Err(Refusal::NotYetValid);
        }
        if now - skew > not_after {
            return Err(Refusal::Expired);
        }
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
                ParsedExtension::UnsupportedExtension { .. }
                | ParsedExtension::ParseError { .. }
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
        if let Some(crl) = anchor
            .crl
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
        {
            if now > crl.next_update && self.stale_grace.is_none_or(|g| now > crl.next_update + g) {
                return Err(Refusal::RevocationUnknown);
            }
            let serial = cert.tbs_certificate.raw_serial();
            let serial = serial
                .iter()
                .skip_while(|b| **b == 0)
                .copied()
                .collect::<Vec<u8>>();
            if crl.revoked.contains(&serial) {
                return Err(Refusal::Revoked);
            }
        } else if !anchor.crl_sources.is_empty() {
            // CRLs are configured but none could be loaded: fail closed.
            return Err(Refusal::RevocationUnknown);
        }
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
            .map(str::to_owned);
        let organization = first(&mut subject.iter_organization()).unwrap_or_default();
        let user_id = match &anchor.user_id {
            UserId::SerialNumber => serial_number,
            UserId::CommonName => (!cn.is_empty()).then(|| cn.clone()),
            UserId::Email => (!email.is_empty()).then(|| email.clone()),
            UserId::Template(t) => {
                let serial = serial_number.clone().unwrap_or_default();
                let values = [
                    ("serial_number", serial.as_str()),
                    ("common_name", cn.as_str()),
                    ("email", email.as_str()),
                    ("organization", organization.as_str()),
                ];
                let mut out = t.clone();
                let mut complete = true;
                for (name, value) in values {
                    let placeholder = format!("{{{name}}}");
                    if out.contains(&placeholder) {
                        complete &= !value.is_empty();
                        out = out.replace(&placeholder, value);
                    }
                }
                complete.then_some(out)
            }
        }
        .ok_or(Refusal::Unreadable)?;
        Ok(CertIdentity {
            user_id,
            organization,
            name: cn,
            email,
            subject: subject.to_string(),
            issuer: cert.issuer().to_string(),
            serial: hex::encode(cert.tbs_certificate.raw_serial()),
            fingerprint: hex::encode(Sha256::digest(der)),
            anchor: anchor.name.clone(),
        })
    }
}

impl Checker {
    /// The OCSP step, after [`Checker::check`] passed: asks the anchor's responder (if it has
    /// one) and applies its policy. Returns the refusal, and what went wrong for the logs.
    pub async fn check_ocsp(
        &self,
        http: &reqwest::Client,
        id: &CertIdentity,
        der: &[u8],
    ) -> Result<(), (Refusal, Option<String>)> {
        let Some(anchor) = self.anchors.iter().find(|a| a.name == id.anchor) else {
            return Ok(());
        };
        let Some(ocsp) = &anchor.ocsp else {
            return Ok(());
        };
        let Ok(cert) = X509::from_der(der) else {
            return Err((Refusal::Unreadable, None));
        };
        let issuer = anchor
            .ca
            .iter()
            .find(|ca| ca.subject_name().to_der().ok() == cert.issuer_name().to_der().ok())
            .unwrap_or(&anchor.ca[0]);
        match ocsp.ask(http, &cert, issuer, &id.fingerprint).await {
            OcspAnswer::Good => Ok(()),
            OcspAnswer::Revoked => Err((Refusal::RevokedOcsp, None)),
            OcspAnswer::Unusable(why) if ocsp.soft_fail => {
                tracing::warn!(anchor = %anchor.name, problem = %why, "OCSP unusable; soft-fail lets the login through");
                Ok(())
            }
            OcspAnswer::Unusable(why) => Err((Refusal::RevocationUnknown, Some(why))),
        }
    }
}

impl Checker {
    /// The distribution-point step, after [`Checker::check`] passed: every http CRL
    /// distribution point the certificate names is fetched (or taken from the cache), must be
    /// signed by the anchor's CA, and must not list the certificate. One that cannot be had
    /// refuses the login (fail closed).
    pub async fn check_distribution_points(
        &self,
        http: &reqwest::Client,
        id: &CertIdentity,
        der: &[u8],
    ) -> Result<(), (Refusal, Option<String>)> {
        let Some(anchor) = self.anchors.iter().find(|a| a.name == id.anchor) else {
            return Ok(());
        };
        let Some(dps) = &anchor.distribution_points else {
            return Ok(());
        };
        let Ok((_, cert)) = X509Certificate::from_der(der) else {
            return Err((Refusal::Unreadable, None));
        };
        let mut urls = Vec::new();
        for ext in cert.extensions() {
            if let ParsedExtension::CRLDistributionPoints(points) = ext.parsed_extension() {
                for point in points.iter() {
                    if let Some(DistributionPointName::FullName(names)) = &point.distribution_point
                    {
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
        let serial: Vec<u8> = cert
            .tbs_certificate
            .raw_serial()
            .iter()
            .skip_while(|b| **b == 0)
            .copied()
            .collect();
        for url in urls {
            let revoked = match dps.cache.get(&url) {
                Some(r) => r,
                None => {
                    let fetched = async {
                        let resp = http.get(&url).send().await.map_err(|e| e.to_string())?;
                        if !resp.status().is_success() {
                            return Err(format!("answered {}", resp.status()));
                        }
                        resp.bytes().await.map_err(|e| e.to_string())
                    }
                    .await;
                    let bytes = fetched
                        .map_err(|e| (Refusal::RevocationUnknown, Some(format!("{url}: {e}"))))?;
                    let crl = X509Crl::from_pem(&bytes)
                        .or_else(|_| X509Crl::from_der(&bytes))
                        .map_err(|e| (Refusal::RevocationUnknown, Some(format!("{url}: {e}"))))?;
                    let signed = anchor.ca.iter().any(|ca| {
                        ca.public_key()
                            .is_ok_and(|k| crl.verify(&k).unwrap_or(false))
                    });
                    if !signed {
                        return Err((
                            Refusal::RevocationUnknown,
                            Some(format!("{url}: not signed by the {} CA", anchor.name)),
                        ));
                    }
                    let set: HashSet<Vec<u8>> = crl
                        .get_revoked()
                        .map(|list| {
                            list.iter()
                                .filter_map(|r| r.serial_number().to_bn().ok().map(|b| b.to_vec()))
                                .collect()
                        })
                        .unwrap_or_default();
                    let set = std::sync::Arc::new(set);
                    dps.cache.insert(url.clone(), set.clone());
                    set
                }
            };
            if revoked.contains(&serial) {
                return Err((Refusal::Revoked, None));
            }
        }
        Ok(())
    }
}
