//! A request as the gateway's handlers read it: taken apart once per request (method, host,
//! path, query, headers, the handshake, the client, the request id and, where the gateway reads
//! one, the body), so that no handler parses the request head again and none knows pingora.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::OnceLock;

use bytes::Bytes;

use crate::auth::AuthState;
use crate::pages::Lang;
use crate::tls::HandshakeInfo;

/// One request, borrowed from the request head pingora parsed; what every handler reads.
pub struct Request<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    /// The raw query string (without `?`), when there is one.
    pub raw_query: Option<&'a str>,
    /// The path with its query, as the client sent it (`/` when the target had none).
    pub target: &'a str,
    pub headers: &'a http::HeaderMap,
    /// The Host the client named (the request target's authority, else the `Host` header).
    pub host: Option<&'a str>,
    /// What the TLS handshake established (SNI, a client certificate), when there was one.
    pub handshake: Option<&'a HandshakeInfo>,
    /// The client's address as `Hygiene::client_address` sees it (a trusted proxy's
    /// `X-Forwarded-For` applied): set on the login hosts, whose rate limits read it; a
    /// portal request does not pay for it.
    pub client: Option<IpAddr>,
    /// The body, on the handlers that read one (small login-host forms, a form kept across
    /// the login); empty elsewhere.
    pub body: Bytes,
    pub request_id: &'a str,
    /// The query decoded into names and values on first use, then kept (the last value of a
    /// repeated name wins).
    query: OnceLock<HashMap<String, String>>,
}

impl<'a> Request<'a> {
    /// A request for the handlers, from the parts of its head.
    pub fn new(
        method: &'a http::Method,
        uri: &'a http::Uri,
        headers: &'a http::HeaderMap,
        request_id: &'a str,
    ) -> Self {
        Self {
            method,
            path: uri.path(),
            raw_query: uri.query(),
            target: uri.path_and_query().map_or("/", |p| p.as_str()),
            headers,
            host: uri
                .authority()
                .map(http::uri::Authority::as_str)
                .or_else(|| {
                    headers
                        .get(http::header::HOST)
                        .and_then(|v| v.to_str().ok())
                }),
            handshake: None,
            client: None,
            body: Bytes::new(),
            request_id,
            query: OnceLock::new(),
        }
    }

    /// With what the TLS handshake established.
    pub fn with_handshake(mut self, handshake: Option<&'a HandshakeInfo>) -> Self {
        self.handshake = handshake;
        self
    }

    /// With the client's address.
    pub fn with_client(mut self, client: Option<IpAddr>) -> Self {
        self.client = client;
        self
    }

    /// With the body the gateway read.
    pub fn with_body(mut self, body: Bytes) -> Self {
        self.body = body;
        self
    }

    /// The query's names and values, decoded once.
    pub fn query(&self) -> &HashMap<String, String> {
        self.query.get_or_init(|| {
            self.raw_query
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default()
        })
    }

    /// A cookie's value from the `Cookie` headers.
    pub fn cookie(&self, name: &str) -> Option<&'a str> {
        crate::cookies::find(self.headers, name)
    }

    /// The SNI the client sent, lower case.
    pub fn sni(&self) -> Option<&'a str> {
        self.handshake.and_then(|h| h.sni.as_deref())
    }

    /// `?lang=` first, then the remembered choice, then `Accept-Language`.
    pub fn lang(&self, auth: &AuthState) -> Lang {
        self.lang_by(&auth.lang_cookie)
    }

    /// [`Request::lang`] with the language cookie's name given (where there may be no login
    /// section: [`crate::Shared::lang_cookie`]).
    pub fn lang_by(&self, lang_cookie: &str) -> Lang {
        Lang::choose(
            self.query().get("lang").map(String::as_str),
            self.cookie(lang_cookie),
            self.headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(uri: &str, headers: &[(&'static str, &'static str)]) -> (http::Uri, http::HeaderMap) {
        let mut map = http::HeaderMap::new();
        for (n, v) in headers {
            map.append(*n, http::HeaderValue::from_static(v));
        }
        (uri.parse().expect("uri"), map)
    }

    #[test]
    fn the_host_is_the_authority_else_the_host_header() {
        let (uri, headers) = parts("/a", &[("host", "acq.bankart.localhost")]);
        let req = Request::new(&http::Method::GET, &uri, &headers, "id");
        assert_eq!(req.host, Some("acq.bankart.localhost"));
        let (uri, headers) = parts("https://b2b.bankart.localhost/a", &[("host", "x")]);
        let req = Request::new(&http::Method::GET, &uri, &headers, "id");
        assert_eq!(req.host, Some("b2b.bankart.localhost"));
        let (uri, headers) = parts("/a", &[]);
        assert_eq!(
            Request::new(&http::Method::GET, &uri, &headers, "id").host,
            None
        );
    }

    #[test]
    fn the_query_is_decoded_once_and_the_last_value_wins() {
        let (uri, headers) = parts("/callback?code=a%20b&state=s&code=c", &[]);
        let req = Request::new(&http::Method::GET, &uri, &headers, "id");
        assert_eq!(req.path, "/callback");
        assert_eq!(req.query().get("code").map(String::as_str), Some("c"));
        assert_eq!(req.query().get("state").map(String::as_str), Some("s"));
        // The same map both times: decoded on first use only.
        assert!(std::ptr::eq(req.query(), req.query()));
        assert_eq!(req.target, "/callback?code=a%20b&state=s&code=c");
        let (uri, headers) = parts("/", &[]);
        let req = Request::new(&http::Method::GET, &uri, &headers, "id");
        assert!(req.query().is_empty());
        assert_eq!(req.target, "/");
    }

    #[test]
    fn cookies_are_read_from_every_cookie_header() {
        let (uri, headers) = parts("/", &[("cookie", "a=1"), ("cookie", "b=2; c=3")]);
        let req = Request::new(&http::Method::GET, &uri, &headers, "id");
        assert_eq!(req.cookie("c"), Some("3"));
        assert_eq!(req.cookie("a"), Some("1"));
        assert_eq!(req.cookie("d"), None);
    }
}
