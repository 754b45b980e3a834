//! `headers:`: the names of the headers the gateway owns.

use crate::*;

/// An identity header the gateway sets on what it forwards (and strips from every client).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum IdentityHeader {
    User,
    Email,
    Name,
    /// How the user logged in: the provider's id or `certificate`.
    Method,
    Level,
    Amr,
    /// The signed assertion of the identity, for the portal's audience.
    Assertion,
    CertSubject,
    CertIssuer,
    CertSerial,
    CertFingerprint,
}

impl IdentityHeader {
    /// Every identity header with its key under `headers:` and its default name, in the order
    /// of the enum: the one list the raw model, the checker and the gateway read.
    pub const ALL: [(Self, &'static str, &'static str); 11] = [
        (Self::User, "user", "x-auth-user"),
        (Self::Email, "email", "x-auth-email"),
        (Self::Name, "name", "x-auth-name"),
        (Self::Method, "method", "x-auth-method"),
        (Self::Level, "level", "x-auth-level"),
        (Self::Amr, "amr", "x-auth-amr"),
        (Self::Assertion, "assertion", "x-auth-assertion"),
        (Self::CertSubject, "cert_subject", "x-auth-cert-subject"),
        (Self::CertIssuer, "cert_issuer", "x-auth-cert-issuer"),
        (Self::CertSerial, "cert_serial", "x-auth-cert-serial"),
        (
            Self::CertFingerprint,
            "cert_fingerprint",
            "x-auth-cert-fingerprint",
        ),
    ];

    /// Its key under `headers:` (`cert_subject`).
    pub fn key(self) -> &'static str {
        Self::ALL.get(self as usize).map_or("", |(_, key, _)| key)
    }
}

/// The names of the headers the gateway owns. A client can never send any of them upstream.
#[derive(Clone, Debug)]
pub struct Headers {
    pub request_id: HeaderName,
    /// The identity headers' names, in the order of [`IdentityHeader::ALL`]; read one by its
    /// kind: `headers[IdentityHeader::User]`.
    pub identity: [HeaderName; 11],
    /// Further names removed from every client request (e.g. `X-Remote-User`).
    pub strip: Vec<HeaderName>,
    /// Name prefixes removed from every client request (`strip` entries ending in `*`, e.g.
    /// `X-Bank-*`): lower case, `_` and `.` written `-`, without the `*`.
    pub strip_prefixes: Vec<String>,
}

impl std::ops::Index<IdentityHeader> for Headers {
    type Output = HeaderName;

    fn index(&self, header: IdentityHeader) -> &HeaderName {
        // A variant's discriminant is its place in `ALL` (the table's test), and `identity` has
        // one name per entry of `ALL`.
        self.identity
            .get(header as usize)
            .expect("one name per identity header")
    }
}

impl Headers {
    /// Every identity header name: the ones the gateway sets and the extra ones it strips.
    pub fn identity_names(&self) -> Vec<HeaderName> {
        let mut names: Vec<HeaderName> = Vec::with_capacity(self.identity.len() + self.strip.len());
        for name in self.identity.iter().chain(&self.strip) {
            if !names.contains(name) {
                names.push(name.clone());
            }
        }
        names
    }
}

#[cfg(test)]
mod tests {
    use super::IdentityHeader;

    #[test]
    fn the_table_of_identity_headers_is_in_the_order_of_the_enum() {
        for (i, (header, key, default)) in IdentityHeader::ALL.iter().enumerate() {
            assert_eq!(*header as usize, i, "{key}");
            assert_eq!(header.key(), *key);
            assert_eq!(
                default.replace('-', "_"),
                format!("x_auth_{key}"),
                "the default name is x-auth- and the key"
            );
        }
    }
}
