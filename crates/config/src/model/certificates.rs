//! `certificate_login:`: the trust anchors, their CRLs and OCSP.

use crate::*;

#[derive(Debug)]
pub struct CertificateLogin {
    /// The only host whose handshake asks for a client certificate (optional mode).
    pub host: String,
    /// The level of assurance a certificate session has.
    pub level: u8,
    pub clock_skew: Duration,
    /// How many intermediate CAs may stand between a client certificate and its trust anchor
    /// (OpenSSL's verify depth).
    pub max_chain_depth: u32,
    pub crl_refresh: Duration,
    /// `None`: a CRL past its nextUpdate refuses logins (fail closed).
    pub crl_grace: Option<Duration>,
    /// The longest a CRL or distribution-point download may take, connect included.
    pub fetch_timeout: Duration,
    pub anchors: Vec<TrustAnchor>,
}

#[derive(Debug)]
pub struct TrustAnchor {
    pub name: String,
    /// The CA certificate(s): the root and any intermediates of this anchor.
    pub ca: Vec<X509>,
    pub crls: Vec<AnchorCrl>,
    /// `serial_number`, `common_name` or `email`.
    pub user_id: String,
    /// Put before every user id of this anchor (`acnlb:SI-1234`): ids of two anchors never
    /// meet, and none equals a Rekono `sub` (a Rekono `sub` with `:` is refused).
    pub user_id_prefix: String,
    pub policies: Option<Vec<String>>,
    pub ocsp: Option<OcspSettings>,
    /// Also check the CRLs each certificate names in its CRL distribution points (http).
    pub crl_distribution_points: bool,
    /// This anchor's own clock skew and intermediate limit, when set.
    pub clock_skew: Option<Duration>,
    pub max_chain_depth: Option<u32>,
}

/// An anchor's user-id prefix when the config names none: its name in lower case, every run
/// of characters other than ASCII letters and digits one `-`, then `:`
/// (`POSTArCA G2` → `postarca-g2:`).
pub fn default_user_id_prefix(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    format!("{trimmed}:")
}

/// Where a CRL comes from: a file, or an http(s) URL fetched in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrlSource::File(p) => write!(f, "{}", p.display()),
            CrlSource::Url(u) => f.write_str(u),
        }
    }
}

/// One of an anchor's CRLs: where it comes from, and the CA whose CRL it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorCrl {
    pub source: CrlSource,
    /// The DER of that CA's name (the subject of one or more of the anchor's CA
    /// certificates): a CRL from this source must be issued under this name and signed by
    /// the key of a CA certificate of the anchor that bears it.
    pub issuer: Vec<u8>,
    /// The same name as people write it (`CN=…, O=…`), for messages.
    pub issuer_name: String,
}

/// `ocsp.max_age` when not set: how old an answer's thisUpdate may be without a nonce.
pub const DEFAULT_OCSP_MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct OcspSettings {
    pub url: String,
    /// An unreachable or unusable responder lets logins through.
    pub soft_fail: bool,
    pub timeout: Duration,
    /// How long an answer is reused (never past its nextUpdate or `max_age`).
    pub cache: Duration,
    /// Send a nonce and require it back: for a responder that supports nonces.
    pub nonce: bool,
    /// How old an answer's thisUpdate may be when no nonce proves it was made for this
    /// request (and how long an answer without nextUpdate is fresh).
    pub max_age: Duration,
}
