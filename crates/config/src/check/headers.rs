//! `headers`: the names of the identity headers, the request id and the extra headers to strip.

use http::HeaderName;

use super::{join, requests, Checker};
use crate::{raw, Headers};

impl Checker<'_> {
    pub(super) fn headers(&mut self, mut raw: raw::Headers) -> Option<Headers> {
        let mut ok = true;
        // `X-Bank-*`: a prefix; every other entry is one name.
        let mut strip_prefixes = Vec::new();
        let mut strip_names = Vec::new();
        for (i, entry) in std::mem::take(&mut raw.strip).into_iter().enumerate() {
            match requests::strip_prefix(&entry) {
                None => strip_names.push((i, entry)),
                Some(Ok(prefix)) => strip_prefixes.push(prefix),
                Some(Err(message)) => {
                    self.problem(&format!("headers.strip[{i}]"), message);
                    ok = false;
                }
            }
        }
        let mut name = |value: Option<String>, key: &str, default: &str, this: &mut Self| {
            let value = value.unwrap_or_else(|| default.to_owned());
            match HeaderName::from_bytes(value.as_bytes()) {
                Ok(n) => n,
                Err(_) => {
                    this.problem(
                        &join("headers", key),
                        format!("{value:?} is not a valid header name"),
                    );
                    ok = false;
                    HeaderName::from_static("x-invalid")
                }
            }
        };
        let headers = Headers {
            request_id: name(raw.request_id, "request_id", "x-request-id", self),
            user: name(raw.user, "user", "x-auth-user", self),
            email: name(raw.email, "email", "x-auth-email", self),
            name: name(raw.name, "name", "x-auth-name", self),
            method: name(raw.method, "method", "x-auth-method", self),
            level: name(raw.level, "level", "x-auth-level", self),
            amr: name(raw.amr, "amr", "x-auth-amr", self),
            assertion: name(raw.assertion, "assertion", "x-auth-assertion", self),
            cert_subject: name(
                raw.cert_subject,
                "cert_subject",
                "x-auth-cert-subject",
                self,
            ),
            cert_issuer: name(raw.cert_issuer, "cert_issuer", "x-auth-cert-issuer", self),
            cert_serial: name(raw.cert_serial, "cert_serial", "x-auth-cert-serial", self),
            cert_fingerprint: name(
                raw.cert_fingerprint,
                "cert_fingerprint",
                "x-auth-cert-fingerprint",
                self,
            ),
            strip: strip_names
                .into_iter()
                .map(|(i, s)| name(Some(s), &format!("strip[{i}]"), "", self))
                .collect(),
            strip_prefixes,
        };
        let set = headers.identity_names();
        for (i, n) in set.iter().enumerate().take(11) {
            if set.iter().take(i).any(|m| m == n) {
                self.problem("headers", format!("header name {n} is used twice"));
                ok = false;
            }
        }
        if set.contains(&headers.request_id) {
            self.problem(
                "headers.request_id",
                "must differ from the identity headers",
            );
            ok = false;
        }
        ok.then_some(headers)
    }
}
