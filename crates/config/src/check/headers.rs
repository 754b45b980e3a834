//! `headers`: the names of the identity headers, the request id and the extra headers to strip.

use http::HeaderName;

use super::{join, requests, Checker};
use crate::{raw, Headers, IdentityHeader};

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
        let request_id = name(raw.request_id, "request_id", "x-request-id", self);
        let mut given = raw.identity.into_iter();
        let identity = IdentityHeader::ALL
            .map(|(_, key, default)| name(given.next().flatten(), key, default, self));
        let headers = Headers {
            request_id,
            identity,
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
