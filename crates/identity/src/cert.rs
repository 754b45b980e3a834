//! Certificate login checks. OpenSSL builds and checks the client's chain in the handshake
//! against the configured trust anchors and reports *every* error it finds (a [`Presented`]
//! carries them all, with the chain it built); this module takes the verdict from that whole
//! record — only date errors may be forgiven, by the clock skew, and only when they are the
//! only errors — then decides the rest with x509-parser: validity of every certificate on the
//! chain with bounded skew, extended key usage `clientAuth`, key usage `digitalSignature`,
//! unknown critical extensions, the certificate-policy allow-list; checks revocation against
//! the anchors' CRLs (their signatures checked with OpenSSL, reloaded while the gateway runs)
//! and OCSP; and maps the certificate to a user id that names its anchor.

use std::collections::HashSet;
use std::sync::RwLock;

use openssl::x509::{X509Crl, X509};
use sha2::{Digest, Sha256};
use x509_parser::prelude::*;

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
    /// Put before every user id of this anchor (`acnlb:`), so that ids of two anchors never
    /// meet, nor a Rekono `sub` (which may not contain `:`).
    pub user_id_prefix: String,
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

/// CRLs fetched from certificates' distribution points, kept for a while per URL; the URLs
/// that certificate sessions still name are refreshed in the background, so that a session
/// learns of a revocation there without a network call on its requests.
pub struct DistributionPoints {
    /// URL → the CRL found there (only CRLs signed by the anchor's CA are kept).
    cache: moka::sync::Cache<String, std::sync::Arc<DpCrl>>,
    /// URLs named by certificates that logged in, for as long as their sessions may live.
    watched: moka::sync::Cache<String, ()>,
    /// Wakes the background refresh when a session names a URL that is not cached.
    wanted: tokio::sync::Notify,
}

/// One distribution point's CRL.
struct DpCrl {
    /// [`revocation_key`]s (the CRL's issuer and each serial) of what it revokes.
    revoked: HashSet<String>,
    next_update: i64,
}

impl DistributionPoints {
    /// `keep_for`: how long a downloaded CRL is used (longer than the refresh interval, so the
    /// background refresh replaces it before it goes); `watch_for`: how long a URL stays
    /// watched after a login named it (a session's absolute lifetime).
    pub fn new(keep_for: std::time::Duration, watch_for: std::time::Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(keep_for)
                .build(),
            watched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(watch_for)
                .build(),
            wanted: tokio::sync::Notify::new(),
        }
    }

    /// Resolves when a session named a URL that is not cached (the refresh should run now).
    pub async fn wanted(&self) {
        self.wanted.notified().await;
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
    /// `intermediates` are the chain's CA certificates below the anchor: a responder may sign
    /// with one of them (or a certificate it issued).
    pub async fn ask(
        &self,
        http: &reqwest::Client,
        cert: &X509,
        issuer: &X509,
        intermediates: &[X509],
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
            Ok(r) => match bounded_body(r).await {
                Ok(b) => b,
                Err(e) => return unusable(&format!("responder: {e}")),
            },
            Err(e) => return unusable(&e),
        };
        let answer = (|| -> Result<OcspAnswer, String> {
            let resp = OcspResponse::from_der(&bytes).map_err(|e| e.to_string())?;
            if resp.status() != OcspResponseStatus::SUCCESSFUL {
                return Err(format!("response status {:?}", resp.status().as_raw()));
            }
            let basic = resp.basic().map_err(|e| e.to_string())?;
            let mut certs = openssl::stack::Stack::<X509>::new().map_err(|e| e.to_string())?;
            for c in intermediates {
                certs.push(c.clone()).map_err(|e| e.to_string())?;
            }
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

/// The most a CRL or OCSP answer may weigh: a responder that streams without end is cut off.
pub const MAX_FETCH_BYTES: usize = 16 * 1024 * 1024;

/// The HTTP client for revocation data (CRLs, distribution points, OCSP): no redirects, a
/// connect timeout and a total timeout for every call, so that a server that never answers
/// cannot hold a login or a refresh.
pub fn revocation_client(
    connect: std::time::Duration,
    total: std::time::Duration,
) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(connect)
        .timeout(total)
        .build()
        .map_err(|e| format!("revocation HTTP client: {e}"))
}

/// Reads a response body, at most [`MAX_FETCH_BYTES`] of it.
async fn bounded_body(mut resp: reqwest::Response) -> Result<Vec<u8>, String> {
    if !resp.status().is_success() {
        return Err(format!("answered {}", resp.status()));
    }
    if resp
        .content_length()
        .is_some_and(|l| l > MAX_FETCH_BYTES as u64)
    {
        return Err(format!("larger than {MAX_FETCH_BYTES} bytes"));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| e.to_string())? {
        if body.len() + chunk.len() > MAX_FETCH_BYTES {
            return Err(format!("larger than {MAX_FETCH_BYTES} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// GETs `url` (http or https only) with the client's timeouts and the size limit.
async fn fetch(http: &reqwest::Client, url: &str) -> Result<Vec<u8>, String> {
    if !(url.starts_with("http://") || url.starts_with("https://")) {
        return Err("not an http(s) URL".into());
    }
    let resp = http.get(url).send().await.map_err(|e| e.to_string())?;
    bounded_body(resp).await
}

#[derive(Clone)]
struct LoadedCrl {
    /// [`revocation_key`]s of every certificate the CRLs list.
    revoked: HashSet<String>,
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
            user_id_prefix: prehod_config::default_user_id_prefix(&name),
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

    /// For a configuration reload: an anchor with the same CAs and CRL sources as `old` that
    /// has no CRL loaded yet (URLs are only fetched by the refresh) starts with `old`'s, so
    /// that certificate logins do not fail closed until the first fetch.
    pub fn adopt_crls(&self, old: &Anchor) {
        let same_ca = self.ca.len() == old.ca.len()
            && self
                .ca
                .iter()
                .zip(&old.ca)
                .all(|(a, b)| a.to_der().ok() == b.to_der().ok());
        if !same_ca || self.crl_sources != old.crl_sources {
            return;
        }
        let mut mine = self.crl.write().unwrap_or_else(|e| e.into_inner());
        if mine.is_none() {
            *mine = old.crl.read().unwrap_or_else(|e| e.into_inner()).clone();
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
                CrlSource::Url(u) => (u.clone(), fetch(http, u).await),
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
            let issuer = crl.issuer_name().to_der().unwrap_or_default();
            if let Some(list) = crl.get_revoked() {
                for r in list {
                    if let Ok(bn) = r.serial_number().to_bn() {
                        revoked.insert(revocation_key(&issuer, &bn.to_vec()));
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
    /// Whether `allowed` (a portal's `allowed_organisations`) lets in a certificate of
    /// organisation `organization_id` (anchor-qualified, see [`CertIdentity`]). With a single
    /// anchor, a bare organisation name stands for that anchor's.
    pub fn organisation_allowed(
        &self,
        allowed: &[String],
        organization_id: &str,
        organization: &str,
    ) -> bool {
        allowed.iter().any(|o| o == organization_id)
            || (self.anchors.len() == 1 && allowed.iter().any(|o| o == organization))
    }

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
    /// current CRLs (in memory), the OCSP answers already cached, and the certificate's own
    /// expiry. No network call.
    pub fn still_valid(&self, cert: &SessionCert<'_>, now: i64) -> Result<(), Refusal> {
        let anchor = self
            .anchors
            .iter()
            .find(|a| a.name == cert.anchor)
            .ok_or(Refusal::Untrusted)?;
        let skew = anchor.clock_skew.unwrap_or(self.clock_skew);
        if now.saturating_sub(skew) > cert.not_after {
            return Err(Refusal::Expired);
        }
        anchor.check_crls(cert.revocation_keys, now, self.stale_grace)?;
        if let Some(dps) = &anchor.distribution_points {
            for url in cert.distribution_points {
                dps.watched.insert(url.clone(), ());
                let Some(crl) = dps.cache.get(url) else {
                    // Not fetched here (another replica's login), or unreachable since:
                    // refused until the background refresh has it (fail closed).
                    dps.wanted.notify_one();
                    return Err(Refusal::RevocationUnknown);
                };
                self.judge_distribution_point(&crl, cert.revocation_keys, now)?;
            }
        }
        if let Some(ocsp) = &anchor.ocsp {
            if ocsp.cache.get(cert.fingerprint) == Some(false) {
                return Err(Refusal::RevokedOcsp);
            }
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

/// How a CRL entry names a certificate: its issuer's name and its serial, so that two CAs'
/// serials never meet. `issuer` is the DER of the issuer's name.
fn revocation_key(issuer: &[u8], serial: &[u8]) -> String {
    let serial: Vec<u8> = serial.iter().skip_while(|b| **b == 0).copied().collect();
    let issuer = Sha256::digest(issuer);
    format!(
        "{}:{}",
        hex::encode(issuer.get(..16).unwrap_or_default()),
        hex::encode(serial)
    )
}

/// The revocation keys of every certificate on a chain but its root.
fn revocation_keys(chain: &[X509Certificate<'_>]) -> Vec<String> {
    let below_root = chain.len().saturating_sub(1);
    chain
        .iter()
        .take(below_root)
        .map(|c| revocation_key(c.issuer().as_raw(), c.tbs_certificate.raw_serial()))
        .collect()
}

/// Fills a user-id template in one pass over it (a value is never expanded again, so a CN of
/// `{organization}` stays text). A value that is empty, or that contains a character the
/// template itself uses around its placeholders, makes no id: `{organization}/{serial_number}`
/// must never give one id for O `a/b` + serial `c` and for O `a` + serial `b/c`.
fn expand_template(template: &str, a: &Attributes<'_>) -> Option<String> {
    let mut out = String::new();
    let mut literals = String::new();
    let mut values: Vec<&str> = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        let (before, after) = rest.split_at(open);
        out.push_str(before);
        literals.push_str(before);
        let close = after.find('}')?;
        let name = after.get(1..close)?;
        let value = match name {
            "serial_number" => a.serial_number,
            "common_name" => a.common_name,
            "email" => a.email,
            "organization" => a.organization,
            _ => return None,
        };
        if value.is_empty() {
            return None;
        }
        values.push(value);
        out.push_str(value);
        rest = after.get(close + 1..)?;
    }
    out.push_str(rest);
    literals.push_str(rest);
    let clash = values
        .iter()
        .any(|v| v.chars().any(|c| literals.contains(c)));
    (!clash).then_some(out)
}

/// [`expand_template`] for callers outside this module (the fuzz targets): the template
/// filled with these attribute values, or `None` when it makes no id.
pub fn expand_user_id_template(
    template: &str,
    serial_number: &str,
    common_name: &str,
    email: &str,
    organization: &str,
) -> Option<String> {
    expand_template(
        template,
        &Attributes {
            serial_number,
            common_name,
            email,
            organization,
        },
    )
}

/// The certificate attributes a user id may be made of.
struct Attributes<'a> {
    serial_number: &'a str,
    common_name: &'a str,
    email: &'a str,
    organization: &'a str,
}

impl Anchor {
    /// The user id: this anchor's prefix, then the configured attribute (or template). `None`
    /// when an attribute it needs is empty.
    fn user_id(&self, a: &Attributes<'_>) -> Option<String> {
        let value = match &self.user_id {
            UserId::SerialNumber => a.serial_number.to_owned(),
            UserId::CommonName => a.common_name.to_owned(),
            UserId::Email => a.email.to_owned(),
            UserId::Template(t) => expand_template(t, a)?,
        };
        (!value.is_empty()).then(|| format!("{}{value}", self.user_id_prefix))
    }

    /// Refuses a chain any of whose certificates (`keys`, see [`revocation_key`]) the loaded
    /// CRLs list, or any CRL that is past its nextUpdate beyond the grace period.
    fn check_crls(&self, keys: &[String], now: i64, grace: Option<i64>) -> Result<(), Refusal> {
        let crl = self.crl.read().unwrap_or_else(|e| e.into_inner());
        match crl.as_ref() {
            Some(crl) => {
                if now > crl.next_update
                    && grace.is_none_or(|g| now > crl.next_update.saturating_add(g))
                {
                    return Err(Refusal::RevocationUnknown);
                }
                if keys.iter().any(|k| crl.revoked.contains(k)) {
                    return Err(Refusal::Revoked);
                }
                Ok(())
            }
            // CRLs are configured but none could be loaded: fail closed.
            None if !self.crl_sources.is_empty() => Err(Refusal::RevocationUnknown),
            None => Ok(()),
        }
    }
}

impl Checker {
    /// The OCSP step, after [`Checker::check`] passed: asks the anchor's responder (if it has
    /// one) and applies its policy. Returns the refusal, and what went wrong for the logs.
    pub async fn check_ocsp(
        &self,
        http: &reqwest::Client,
        id: &CertIdentity,
        presented: &Presented,
    ) -> Result<(), (Refusal, Option<String>)> {
        let Some(anchor) = self.anchors.iter().find(|a| a.name == id.anchor) else {
            return Ok(());
        };
        let Some(ocsp) = &anchor.ocsp else {
            return Ok(());
        };
        // The verified chain: the client's certificate, its issuer, …, the anchor's root.
        let chain = presented
            .chain
            .iter()
            .map(|d| X509::from_der(d))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|_| (Refusal::Unreadable, None))?;
        let (Some(cert), Some(issuer)) = (chain.first(), chain.get(1).or(chain.first())) else {
            return Err((Refusal::Unreadable, None));
        };
        let intermediates = chain
            .get(1..chain.len().saturating_sub(1))
            .unwrap_or_default();
        match ocsp
            .ask(http, cert, issuer, intermediates, &id.fingerprint)
            .await
        {
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
    /// signed by the anchor's CA and fresh (nextUpdate, with the grace period), and must not
    /// list the certificate (by issuer and serial). One that cannot be had refuses the login
    /// (fail closed). The URLs are then watched for the certificate's sessions.
    pub async fn check_distribution_points(
        &self,
        http: &reqwest::Client,
        id: &CertIdentity,
    ) -> Result<(), (Refusal, Option<String>)> {
        let Some(anchor) = self.anchors.iter().find(|a| a.name == id.anchor) else {
            return Ok(());
        };
        let Some(dps) = &anchor.distribution_points else {
            return Ok(());
        };
        let now = unix_now();
        for url in &id.distribution_points {
            let crl = match dps.cache.get(url) {
                Some(c) => c,
                None => anchor
                    .fetch_distribution_point(http, url)
                    .await
                    .map_err(|e| (Refusal::RevocationUnknown, Some(format!("{url}: {e}"))))?,
            };
            dps.watched.insert(url.clone(), ());
            self.judge_distribution_point(&crl, &id.revocation_keys, now)
                .map_err(|r| (r, None))?;
        }
        Ok(())
    }

    fn judge_distribution_point(
        &self,
        crl: &DpCrl,
        keys: &[String],
        now: i64,
    ) -> Result<(), Refusal> {
        if now > crl.next_update
            && self
                .stale_grace
                .is_none_or(|g| now > crl.next_update.saturating_add(g))
        {
            return Err(Refusal::RevocationUnknown);
        }
        // The leaf's key: its issuer and serial (the CRL's issuer must be the certificate's).
        if keys.first().is_some_and(|k| crl.revoked.contains(k)) {
            return Err(Refusal::Revoked);
        }
        Ok(())
    }

    /// Refetches every distribution point a certificate session still names, for `anchor`.
    /// Returns the problems (a URL that fails keeps its previous CRL until that expires).
    pub async fn refresh_distribution_points(
        &self,
        anchor: &Anchor,
        http: &reqwest::Client,
    ) -> Vec<String> {
        let Some(dps) = &anchor.distribution_points else {
            return Vec::new();
        };
        let mut problems = Vec::new();
        for (url, ()) in dps.watched.iter() {
            if let Err(e) = anchor.fetch_distribution_point(http, &url).await {
                problems.push(format!("{url}: {e}"));
            }
        }
        problems
    }
}

impl Anchor {
    /// Downloads (bounded), verifies against this anchor's CA and caches one distribution
    /// point's CRL.
    async fn fetch_distribution_point(
        &self,
        http: &reqwest::Client,
        url: &str,
    ) -> Result<std::sync::Arc<DpCrl>, String> {
        let Some(dps) = &self.distribution_points else {
            return Err("no distribution points for this anchor".into());
        };
        let bytes = fetch(http, url).await?;
        let crl = X509Crl::from_pem(&bytes)
            .or_else(|_| X509Crl::from_der(&bytes))
            .map_err(|e| e.to_string())?;
        let signed = self.ca.iter().any(|ca| {
            ca.public_key()
                .is_ok_and(|k| crl.verify(&k).unwrap_or(false))
        });
        if !signed {
            return Err(format!("not signed by the {} CA", self.name));
        }
        let issuer = crl.issuer_name().to_der().unwrap_or_default();
        let revoked = crl
            .get_revoked()
            .map(|list| {
                list.iter()
                    .filter_map(|r| r.serial_number().to_bn().ok())
                    .map(|bn| revocation_key(&issuer, &bn.to_vec()))
                    .collect()
            })
            .unwrap_or_default();
        let entry = std::sync::Arc::new(DpCrl {
            revoked,
            // A CRL without nextUpdate is never stale by date (the cache still ages it out).
            next_update: crl.next_update().and_then(asn1_unix).unwrap_or(i64::MAX),
        });
        dps.cache.insert(url.to_owned(), entry.clone());
        Ok(entry)
    }
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

fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs() as i64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A generated dev PKI and a checker trusting its CA, with a 5-minute skew.
    struct Fixture {
        dir: tempfile::TempDir,
        checker: Checker,
    }

    fn fixture() -> Fixture {
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
            checker: Checker {
                anchors: vec![anchor],
                max_intermediates: 4,
                clock_skew: 300,
                stale_grace: None,
            },
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
        fn presented(&self, leaf: &str, errors: &[(u32, i32)]) -> Presented {
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

    fn now() -> i64 {
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
    fn a_user_id_template_is_filled_once_and_values_cannot_fake_its_separators() {
        let a = |org, serial, cn| Attributes {
            serial_number: serial,
            common_name: cn,
            email: "",
            organization: org,
        };
        let t = "{organization}/{serial_number}";
        assert_eq!(
            expand_template(t, &a("Banka", "SI-1", "x")).as_deref(),
            Some("Banka/SI-1")
        );
        // O `a/b` + serial `c` and O `a` + serial `b/c` would both be `a/b/c`: neither is.
        assert_eq!(expand_template(t, &a("a/b", "c", "x")), None);
        assert_eq!(expand_template(t, &a("a", "b/c", "x")), None);
        // A value that looks like a placeholder stays text.
        assert_eq!(
            expand_template("{common_name}", &a("Banka", "SI-1", "{organization}")).as_deref(),
            Some("{organization}")
        );
        assert_eq!(
            expand_template(t, &a("", "SI-1", "x")),
            None,
            "an empty value"
        );
        assert_eq!(expand_template("{nope}", &a("a", "b", "c")), None);
        assert_eq!(expand_template("{organization", &a("a", "b", "c")), None);
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
}
