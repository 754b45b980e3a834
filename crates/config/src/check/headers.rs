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
        // Compared as a portal reads them: in any case, `_` and `.` as `-` (a CGI or PHP
        // portal sees `X.Auth.Email` and `X-Auth-Email` as one `HTTP_X_AUTH_EMAIL`).
        let mut taken: Vec<(String, String)> = Vec::new();
        let named = std::iter::once(("request_id".to_owned(), &headers.request_id))
            .chain(
                IdentityHeader::ALL
                    .iter()
                    .zip(&headers.identity)
                    .map(|((_, key, _), n)| ((*key).to_owned(), n)),
            )
            .chain(
                headers
                    .strip
                    .iter()
                    .enumerate()
                    .map(|(i, n)| (format!("strip[{i}]"), n)),
            );
        for (key, n) in named {
            let read_as = as_a_portal_reads(n.as_str());
            if let Some(owner) = OWNED_BY_HTTP.iter().find(|o| **o == read_as) {
                self.problem(
                    &join("headers", &key),
                    format!("{n} is {owner}, a header HTTP or the gateway itself sets: not a name for this"),
                );
                ok = false;
            }
            match taken.iter().find(|(_, other)| *other == read_as) {
                None => taken.push((key, read_as)),
                Some((other, _)) if other == "request_id" => {
                    self.problem(
                        "headers.request_id",
                        "must differ from the identity headers and the stripped ones",
                    );
                    ok = false;
                }
                // A name stripped twice, or an identity header also listed in `strip`: harmless.
                Some(_) if key.starts_with("strip[") => {}
                Some((other, _)) => {
                    self.problem(
                        "headers",
                        format!(
                            "header name {n} is used twice (headers.{other} and headers.{key})"
                        ),
                    );
                    ok = false;
                }
            }
        }
        ok.then_some(headers)
    }
}

/// Names that HTTP itself or the gateway's forwarding owns (hop-by-hop and framing headers,
/// RFC 9110 7.6.1 and RFC 9112; the cookies; `X-Forwarded-*`), as [`as_a_portal_reads`]
/// writes them: an identity header of that name would be the user's id in `Content-Length`.
const OWNED_BY_HTTP: [&str; 15] = [
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "host",
    "cookie",
    "set-cookie",
    "forwarded",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
];

/// A header name as a portal's server reads it: lower case, `_` and `.` as `-`.
fn as_a_portal_reads(name: &str) -> String {
    name.to_ascii_lowercase().replace(['_', '.'], "-")
}
