//! Framing and methods: what the gateway will not forward as the client sent it. Plain
//! functions over `http` types (and [`apply`], their glue to pingora's request header), called
//! once per request from the proxy's phases.
//!
//! pingora 0.9.1 already refuses differing `Content-Length` values, a final transfer coding
//! other than `chunked`, `Transfer-Encoding` in HTTP/1.0 and `CONNECT`. It forwards the rest
//! as it came, so the gateway:
//! - collapses identical `Content-Length` values (two header lines, or `5, 5`) into one
//!   (RFC 9112 §6.3): an upstream that reads the first, the last or the list differently
//!   cannot be told another length than the gateway framed;
//! - refuses (400) every transfer coding but exactly one `chunked`: pingora de-chunks the
//!   body and forwards it chunked again, dropping the other codings, so `gzip, chunked`
//!   would reach the portal as plain `chunked` with a body that means something else;
//! - answers 405 (with `Allow`) to every method the portal does not take
//!   (`portals.NAME.http_methods`), `TRACE` always (cross-site tracing echoes cookies);
//! - answers `OPTIONS *` itself (it asks about the server, which is the gateway) and refuses
//!   `*` as the target of any other method.

use std::sync::LazyLock;

use http::{header, HeaderMap, HeaderValue, Method, Uri};
use prehod_config::HttpMethods;

/// Why the gateway answers a request itself instead of forwarding it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refusal {
    /// 400: a `Transfer-Encoding` other than one `chunked`.
    TransferCoding,
    /// 400: `Content-Length` values that are no one number (pingora refuses most first).
    ContentLength,
    /// 400: `*` as the target of a method other than `OPTIONS`.
    AsteriskTarget,
}

impl Refusal {
    pub fn label(self) -> &'static str {
        match self {
            Refusal::TransferCoding => "transfer_coding",
            Refusal::ContentLength => "content_length",
            Refusal::AsteriskTarget => "asterisk_target",
        }
    }
}

/// What to do with a request's framing: forward it, forward it with this one
/// `Content-Length`, or refuse it (400).
pub fn check(
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
) -> Result<Option<HeaderValue>, Refusal> {
    if uri.path() == "*" && method != Method::OPTIONS {
        return Err(Refusal::AsteriskTarget);
    }
    if !single_chunked(headers) {
        return Err(Refusal::TransferCoding);
    }
    collapsed_content_length(headers)
}

/// No `Transfer-Encoding`, or exactly one coding over all its lines, `chunked` (a line with
/// no coding at all counts as a bad one).
fn single_chunked(headers: &HeaderMap) -> bool {
    let mut codings = 0;
    for line in headers.get_all(header::TRANSFER_ENCODING) {
        let mut on_line = 0;
        for coding in line
            .as_bytes()
            .split(|b| *b == b',')
            .map(<[u8]>::trim_ascii)
            .filter(|c| !c.is_empty())
        {
            if !coding.eq_ignore_ascii_case(b"chunked") {
                return false;
            }
            on_line += 1;
        }
        if on_line == 0 {
            return false;
        }
        codings += on_line;
    }
    codings <= 1
}

/// `Some(value)` when the `Content-Length` the client sent is several identical values (lines
/// or a list): the one value to send instead. `None`: one value or none, nothing to change.
fn collapsed_content_length(headers: &HeaderMap) -> Result<Option<HeaderValue>, Refusal> {
    let mut values = headers
        .get_all(header::CONTENT_LENGTH)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .map(<[u8]>::trim_ascii);
    let Some(first) = values.next() else {
        return Ok(None);
    };
    let mut several = false;
    for other in values {
        if other != first {
            return Err(Refusal::ContentLength);
        }
        several = true;
    }
    if !several {
        return Ok(None);
    }
    if first.is_empty() || !first.iter().all(u8::is_ascii_digit) {
        return Err(Refusal::ContentLength);
    }
    HeaderValue::from_bytes(first)
        .map(Some)
        .map_err(|_| Refusal::ContentLength)
}

/// The methods the login and certificate-login hosts answer.
pub static LOGIN_HOST_METHODS: LazyLock<HttpMethods> =
    LazyLock::new(|| HttpMethods::new(vec![Method::GET, Method::HEAD, Method::POST]));

/// What a request's method means for a host that takes `methods`.
#[derive(Debug, PartialEq, Eq)]
pub enum MethodVerdict {
    /// On to the routing and authentication.
    Go,
    /// `OPTIONS *`: answered by the gateway with `Allow`, never forwarded.
    AnswerOptions,
    /// 405 with `Allow`.
    Refuse,
}

pub fn method_verdict(methods: &HttpMethods, method: &Method, uri: &Uri) -> MethodVerdict {
    if method == Method::OPTIONS && uri.path() == "*" {
        MethodVerdict::AnswerOptions
    } else if !method_taken(methods, method) {
        MethodVerdict::Refuse
    } else {
        MethodVerdict::Go
    }
}

/// Whether a host that takes `methods` takes `method` (exactly as written: `get` is not
/// `GET`): never `TRACE` or `CONNECT`, whatever the list says. The proxy's gate and the
/// forward-auth endpoint's (for the method a front proxy names) are this one.
pub fn method_taken(methods: &HttpMethods, method: &Method) -> bool {
    method != Method::TRACE && method != Method::CONNECT && methods.allows(method)
}

/// [`check`] applied to a request pingora read: its `Content-Length` collapsed in place, or
/// the refusal as a 400 error (whose page closes the connection).
pub fn apply(req: &mut pingora::http::RequestHeader) -> pingora::Result<()> {
    match check(&req.method, &req.uri, &req.headers) {
        Ok(None) => Ok(()),
        Ok(Some(length)) => req.insert_header(header::CONTENT_LENGTH, length),
        Err(refusal) => Err(pingora::Error::explain(
            pingora::ErrorType::HTTPStatus(400),
            format!("request framing refused: {}", refusal.label()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (n, v) in pairs {
            h.append(
                http::HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn framing(pairs: &[(&str, &str)]) -> Result<Option<HeaderValue>, Refusal> {
        check(&Method::POST, &Uri::from_static("/x"), &headers(pairs))
    }

    #[test]
    fn identical_content_lengths_become_one() {
        assert_eq!(framing(&[]), Ok(None));
        assert_eq!(framing(&[("content-length", "5")]), Ok(None));
        let five = Ok(Some(HeaderValue::from_static("5")));
        assert_eq!(framing(&[("content-length", "5, 5")]), five);
        assert_eq!(framing(&[("content-length", "5,5 ,5")]), five);
        assert_eq!(
            framing(&[("content-length", "5"), ("content-length", "5")]),
            five
        );
        for bad in [
            &[("content-length", "5, 6")][..],
            &[("content-length", "5"), ("content-length", "6")],
            &[("content-length", "5,")],
            &[("content-length", "x, x")],
            &[("content-length", "+5, +5")],
        ] {
            assert_eq!(framing(bad), Err(Refusal::ContentLength), "{bad:?}");
        }
    }

    #[test]
    fn only_one_chunked_coding_is_forwarded() {
        for fine in [
            &[("transfer-encoding", "chunked")][..],
            &[("transfer-encoding", "Chunked")],
            &[("transfer-encoding", " chunked ")],
            &[("transfer-encoding", "chunked,")],
        ] {
            assert_eq!(framing(fine), Ok(None), "{fine:?}");
        }
        for bad in [
            &[("transfer-encoding", "gzip, chunked")][..],
            &[
                ("transfer-encoding", "gzip"),
                ("transfer-encoding", "chunked"),
            ],
            &[("transfer-encoding", "chunked, chunked")],
            &[("transfer-encoding", "identity")],
            &[("transfer-encoding", "")],
            &[("transfer-encoding", "chunked"), ("transfer-encoding", "")],
            &[("transfer-encoding", "chunked;q=1")],
        ] {
            assert_eq!(framing(bad), Err(Refusal::TransferCoding), "{bad:?}");
        }
    }

    #[test]
    fn methods_outside_the_list_and_trace_are_refused_and_options_asterisk_answered() {
        let portal = HttpMethods::new(vec![Method::GET, Method::POST]);
        let root = Uri::from_static("/");
        let star = Uri::from_static("*");
        assert_eq!(
            method_verdict(&portal, &Method::GET, &root),
            MethodVerdict::Go
        );
        assert_eq!(
            method_verdict(&portal, &Method::HEAD, &root),
            MethodVerdict::Go,
            "HEAD goes with GET"
        );
        for refused in [Method::PUT, Method::TRACE, Method::OPTIONS] {
            assert_eq!(
                method_verdict(&portal, &refused, &root),
                MethodVerdict::Refuse
            );
        }
        let propfind = Method::from_bytes(b"PROPFIND").unwrap();
        assert_eq!(
            method_verdict(&HttpMethods::default(), &propfind, &root),
            MethodVerdict::Refuse
        );
        assert_eq!(
            method_verdict(&portal, &Method::OPTIONS, &star),
            MethodVerdict::AnswerOptions
        );
        assert_eq!(
            check(&Method::GET, &star, &HeaderMap::new()),
            Err(Refusal::AsteriskTarget)
        );
        assert_eq!(check(&Method::OPTIONS, &star, &HeaderMap::new()), Ok(None));
        assert_eq!(portal.allow(), "GET, HEAD, POST");
        assert_eq!(
            HttpMethods::default().allow(),
            "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
        );
        assert_eq!(LOGIN_HOST_METHODS.allow(), "GET, HEAD, POST");
    }
}
