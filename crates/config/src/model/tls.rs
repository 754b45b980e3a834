//! `tls:`: versions, the Mozilla profile, the server certificates by name.

use crate::*;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// The name `proxy.yaml` gives it.
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// Mozilla's server-side TLS configurations (`tls.profile`): the versions, cipher suites and
/// groups the listener offers (the OpenSSL settings are the gateway's `tls_profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProfile {
    /// TLS 1.2 and 1.3: "recommended for a general-purpose server".
    Intermediate,
    /// TLS 1.3 only, for clients that all speak it.
    Modern,
}

impl TlsProfile {
    /// The name `proxy.yaml` gives it.
    pub fn label(self) -> &'static str {
        match self {
            TlsProfile::Intermediate => "intermediate",
            TlsProfile::Modern => "modern",
        }
    }
}

#[derive(Debug)]
pub struct Tls {
    pub profile: TlsProfile,
    /// The lowest version offered: the profile's, or higher where `tls.min_version` says so.
    pub min_version: TlsVersion,
    /// The first certificate also answers handshakes without SNI or with an unknown name
    /// (they then get a 421 page).
    pub certificates: Vec<ServerCertificate>,
}

/// A server certificate chain with its key, and the DNS names it covers.
#[derive(Debug)]
pub struct ServerCertificate {
    pub cert_path: PathBuf,
    /// Leaf first, then intermediates.
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// Lower-case DNS names from the subjectAltName; `*.example.com` wildcards included.
    pub dns_names: Vec<String>,
}

impl ServerCertificate {
    /// Whether this certificate is valid for `host` (lower case), wildcards matching one label.
    pub fn covers(&self, host: &str) -> bool {
        self.dns_names
            .iter()
            .any(|name| dns_name_matches(name, host))
    }
}

/// RFC 6125 matching: exact, or `*.` matching exactly one left-most label.
pub fn dns_name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
    }
}
