//! The request another proxy asks about: its URL and method, read from the headers that
//! proxy sets — and believed only because the caller is one of `trusted_proxies` (checked
//! before this runs). Two contracts, never mixed in one request:
//!
//! - nginx `auth_request` and ingress-nginx `auth-url`: `X-Original-URL` (the whole URL) and
//!   `X-Original-Method`;
//! - Traefik ForwardAuth: `X-Forwarded-Proto`, `X-Forwarded-Host`, `X-Forwarded-Uri` and
//!   `X-Forwarded-Method`.
//!
//! The URL must be https, on the gateway's public port, and name a configured portal's host
//! (the same check as a login's return URL): a caller cannot make the gateway decide for a
//! host it does not guard.

use http::HeaderMap;

use crate::auth::AuthState;

/// Which proxy's contract the request speaks; it chooses how "no session" is answered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Contract {
    /// 2xx, 401 or 403 only: nginx turns any other status into a 500.
    Nginx,
    /// A browser is sent to the login with a 302 that Traefik hands to it.
    Traefik,
}

/// The original request, as the trusted proxy names it.
#[derive(Debug, PartialEq, Eq)]
pub struct Original {
    pub contract: Contract,
    /// Normalised `https://host[:port]/path?query`.
    pub url: String,
    /// The portal's index in the configuration.
    pub portal: usize,
    pub method: http::Method,
}

/// Why the original request could not be read: the caller (a trusted proxy) is misconfigured
/// or forwards a client's header. Answered 400 (a proxy turns it into an error, never a pass).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Unreadable {
    /// Neither contract's headers.
    Missing,
    /// One of the headers read is sent more than once.
    Repeated,
    /// Headers of both contracts: which one the proxy set cannot be told.
    BothContracts,
    /// No method, or not an HTTP method token.
    Method,
    /// Not https (`X-Forwarded-Proto`), or a URI that is no absolute path.
    NotHttps,
    /// Not a URL of a configured portal on the gateway's public port.
    NotAPortal,
}

impl Unreadable {
    /// The `reason` of the answer and of the audit line.
    pub fn label(self) -> &'static str {
        match self {
            Unreadable::Missing => "forward_auth_no_original_request",
            Unreadable::Repeated => "forward_auth_repeated_header",
            Unreadable::BothContracts => "forward_auth_both_contracts",
            Unreadable::Method => "forward_auth_bad_method",
            Unreadable::NotHttps => "forward_auth_not_https",
            Unreadable::NotAPortal => "forward_auth_not_a_portal",
        }
    }
}

/// The single value of header `name`; `Err` when it is sent twice or is no visible text.
fn one<'h>(headers: &'h HeaderMap, name: &str) -> Result<Option<&'h str>, Unreadable> {
    let mut values = headers.get_all(name).iter();
    let Some(first) = values.next() else {
        return Ok(None);
    };
    if values.next().is_some() {
        return Err(Unreadable::Repeated);
    }
    first.to_str().map(Some).map_err(|_| Unreadable::NotAPortal)
}

fn method(value: Option<&str>) -> Result<http::Method, Unreadable> {
    let value = value.ok_or(Unreadable::Method)?;
    http::Method::from_bytes(value.as_bytes()).map_err(|_| Unreadable::Method)
}

/// Reads the original request from `headers` (sent by a trusted proxy).
pub fn read(auth: &AuthState, headers: &HeaderMap) -> Result<Original, Unreadable> {
    let original_url = one(headers, "x-original-url")?;
    let forwarded_uri = one(headers, "x-forwarded-uri")?;
    let (contract, url, method) = match (original_url, forwarded_uri) {
        (Some(_), Some(_)) => return Err(Unreadable::BothContracts),
        (None, None) => return Err(Unreadable::Missing),
        (Some(url), None) => (
            Contract::Nginx,
            url.to_owned(),
            method(one(headers, "x-original-method")?)?,
        ),
        (None, Some(uri)) => {
            let host = one(headers, "x-forwarded-host")?.ok_or(Unreadable::Missing)?;
            let proto = one(headers, "x-forwarded-proto")?;
            if !proto.is_some_and(|p| p.eq_ignore_ascii_case("https")) || !uri.starts_with('/') {
                return Err(Unreadable::NotHttps);
            }
            (
                Contract::Traefik,
                format!("https://{host}{uri}"),
                method(one(headers, "x-forwarded-method")?)?,
            )
        }
    };
    let (url, portal) = auth.check_return(&url).ok_or(Unreadable::NotAPortal)?;
    Ok(Original {
        contract,
        url,
        portal,
        method,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{head, Dev};

    fn read_from(dev: &Dev, headers: &[(&'static str, &str)]) -> Result<Original, Unreadable> {
        let (_, h) = head("/forward-auth", headers);
        read(dev.auth(), &h)
    }

    /// `:port` of the gateway's public address, or nothing on the default port.
    fn public_port(dev: &Dev) -> String {
        dev.auth()
            .public_port
            .map(|p| format!(":{p}"))
            .unwrap_or_default()
    }

    /// Traefik's headers for `GET` of `uri` on `proto://host`.
    fn traefik<'a>(proto: &'a str, host: &'a str, uri: &'a str) -> [(&'static str, &'a str); 4] {
        [
            ("x-forwarded-proto", proto),
            ("x-forwarded-host", host),
            ("x-forwarded-uri", uri),
            ("x-forwarded-method", "GET"),
        ]
    }

    #[test]
    fn nginx_names_the_whole_url_and_traefik_its_parts() {
        let dev = Dev::new();
        let port = public_port(&dev);
        let url = format!("https://acq.bankart.localhost{port}/pay?id=7");
        let o = read_from(
            &dev,
            &[("x-original-url", &url), ("x-original-method", "POST")],
        )
        .expect("read");
        assert_eq!(o.contract, Contract::Nginx);
        assert_eq!(
            (o.url.as_str(), o.method),
            (url.as_str(), http::Method::POST)
        );
        let host = format!("acq.bankart.localhost{port}");
        let o = read_from(&dev, &traefik("https", &host, "/pay?id=7")).expect("read");
        assert_eq!(o.contract, Contract::Traefik);
        assert_eq!(o.url, url);
        let acq = dev
            .shared
            .portals
            .iter()
            .position(|p| p.config.name == "acq");
        assert_eq!(Some(o.portal), acq);
    }

    #[test]
    fn a_url_the_gateway_does_not_guard_is_not_believed() {
        // The attack: a proxy that passes on what a client sent, asked about another host
        // (or another port, another scheme, a user part that hides the real host).
        let dev = Dev::new();
        let port = public_port(&dev);
        for url in [
            "https://evil.example/".to_owned(),
            format!("http://acq.bankart.localhost{port}/"),
            "https://acq.bankart.localhost:1/".to_owned(),
            format!("https://acq.bankart.localhost{port}@evil.example/"),
            format!("https://x@acq.bankart.localhost{port}/"),
            "/pay".to_owned(),
        ] {
            let r = read_from(
                &dev,
                &[("x-original-url", &url), ("x-original-method", "GET")],
            );
            assert_eq!(r, Err(Unreadable::NotAPortal), "{url}");
        }
        let host = format!("acq.bankart.localhost{port}");
        for (proto, uri) in [("http", "/"), ("https", "@evil.example/"), ("https", "x")] {
            let r = read_from(&dev, &traefik(proto, &host, uri));
            assert_eq!(r, Err(Unreadable::NotHttps), "{proto} {uri}");
        }
    }

    #[test]
    fn repeated_mixed_or_missing_headers_are_refused() {
        let dev = Dev::new();
        let port = public_port(&dev);
        let url = format!("https://acq.bankart.localhost{port}/");
        let b2b = format!("https://b2b.bankart.localhost{port}/");
        assert_eq!(read_from(&dev, &[]), Err(Unreadable::Missing));
        // Two URLs: which one nginx set and which one the client sent cannot be told.
        let r = read_from(
            &dev,
            &[
                ("x-original-url", &url),
                ("x-original-url", &b2b),
                ("x-original-method", "GET"),
            ],
        );
        assert_eq!(r, Err(Unreadable::Repeated));
        let r = read_from(
            &dev,
            &[
                ("x-original-url", &url),
                ("x-original-method", "GET"),
                ("x-forwarded-uri", "/other"),
            ],
        );
        assert_eq!(r, Err(Unreadable::BothContracts));
        let r = read_from(&dev, &[("x-original-url", &url)]);
        assert_eq!(r, Err(Unreadable::Method));
        let r = read_from(
            &dev,
            &[("x-original-url", &url), ("x-original-method", "G T")],
        );
        assert_eq!(r, Err(Unreadable::Method));
    }
}
