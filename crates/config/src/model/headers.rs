//! `headers:`: the names of the headers the gateway owns.

use crate::*;

/// The names of the headers the gateway owns. A client can never send any of them upstream.
#[derive(Clone, Debug)]
pub struct Headers {
    pub request_id: HeaderName,
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub method: HeaderName,
    pub level: HeaderName,
    pub amr: HeaderName,
    pub assertion: HeaderName,
    pub cert_subject: HeaderName,
    pub cert_issuer: HeaderName,
    pub cert_serial: HeaderName,
    pub cert_fingerprint: HeaderName,
    /// Further names removed from every client request (e.g. `X-Remote-User`).
    pub strip: Vec<HeaderName>,
    /// Name prefixes removed from every client request (`strip` entries ending in `*`, e.g.
    /// `X-Bank-*`): lower case, `_` and `.` written `-`, without the `*`.
    pub strip_prefixes: Vec<String>,
}

impl Headers {
    /// Every identity header name: the ones the gateway sets and the extra ones it strips.
    pub fn identity_names(&self) -> Vec<HeaderName> {
        let mut names = vec![
            self.user.clone(),
            self.email.clone(),
            self.name.clone(),
            self.method.clone(),
            self.level.clone(),
            self.amr.clone(),
            self.assertion.clone(),
            self.cert_subject.clone(),
            self.cert_issuer.clone(),
            self.cert_serial.clone(),
            self.cert_fingerprint.clone(),
        ];
        names.extend(self.strip.iter().cloned());
        names.dedup();
        names
    }
}
