//! The one place a response is written to the client: a handler's [`Reply`] becomes pingora's
//! response header and body here (and nowhere else), a portal decision's denial becomes a
//! reply, a failed request becomes a page, and a panicking handler becomes a 500.

use pingora::http::ResponseHeader;
use pingora::proxy::Session;
use pingora::{Error, ErrorSource, ErrorType, Result};

use crate::auth::AuthState;
use crate::pages::{Message, Page, PAGE_HEADERS, STRICT_TRANSPORT_SECURITY};
use crate::reply::Reply;
use crate::request::Request;

/// Writes `reply` to the client, with the request id under `id_header`. Returns the status.
/// A HEAD gets the header a GET would (its `Content-Length` too) and no body: pingora drops
/// the body of a HEAD over HTTP/1.1 but sends it over HTTP/2, where a client resets a HEAD
/// stream that carries DATA (PROTOCOL_ERROR). The stream is always ended with the body write:
/// pingora's HTTP/2 header write never ends it.
pub async fn write(
    session: &mut Session,
    reply: Reply,
    id_header: &http::HeaderName,
    request_id: &str,
) -> Result<u16> {
    let header = head(&reply, id_header, request_id)?;
    if reply.close {
        session.set_keepalive(None);
    }
    let body = if session.req_header().method == http::Method::HEAD {
        bytes::Bytes::new()
    } else {
        reply.body
    };
    session
        .write_response_header(Box::new(header), body.is_empty())
        .await?;
    session.write_response_body(Some(body), true).await?;
    Ok(reply.status)
}

/// The response header for `reply`: its own headers, `Content-Length` (none on a 204), the
/// request id, then each page header the reply does not name itself (HSTS at least).
fn head(reply: &Reply, id_header: &http::HeaderName, request_id: &str) -> Result<ResponseHeader> {
    let mut header = ResponseHeader::build(
        reply.status,
        Some(reply.headers.len() + reply.named.len() + 2 + PAGE_HEADERS.len()),
    )?;
    for (name, value) in &reply.headers {
        header.append_header(*name, value.as_str())?;
    }
    for (name, value) in &reply.named {
        header.append_header(name.clone(), value.as_str())?;
    }
    if reply.status != 204 {
        header.insert_header("content-length", reply.body.len().to_string())?;
    }
    header.insert_header(id_header.clone(), request_id)?;
    let names = |name: &str| reply.headers.iter().any(|(n, _)| *n == name);
    if reply.page_headers {
        for (name, value) in PAGE_HEADERS {
            if !names(name) {
                header.insert_header(*name, *value)?;
            }
        }
    } else if !names("strict-transport-security") {
        // HSTS on every answer of the gateway's own, a redirect or a 401 too.
        header.insert_header("strict-transport-security", STRICT_TRANSPORT_SECURITY)?;
    }
    Ok(header)
}

/// A portal's refusal (`Decision::Deny`): its page in the request's language, with the
/// gateway's page headers.
pub fn denial(
    shared: &crate::Shared,
    auth: Option<&AuthState>,
    req: &Request<'_>,
    message: Message,
) -> Reply {
    let html = match auth {
        Some(a) => a.pages.message(req.lang(a), message, "", req.request_id),
        None => shared.pages.error(
            Page::Internal,
            req.lang_by(&shared.lang_cookie),
            req.request_id,
        ),
    };
    Reply::html(message.status(), html)
}

/// A request that is no browser navigation and has no session (`Decision::LoginRequired`):
/// 401 with JSON naming the login page.
pub fn login_required(req: &Request<'_>, login: &str, reason: &str) -> Reply {
    let body = serde_json::json!({
        "error": "login_required",
        "reason": reason,
        "login": login,
        "request_id": req.request_id,
    });
    Reply::json(401, &body)
        .header("www-authenticate", "Cookie realm=\"prehod\"".into())
        .header("cache-control", "no-store".into())
        .without_page_headers()
}

/// What a failed request is answered with (pingora's `fail_to_proxy`).
#[derive(Debug, PartialEq, Eq)]
pub enum Failure {
    /// One of the gateway's pages; for an upstream failure, its metric label too.
    Page(Page, Option<&'static str>),
    /// A status the gateway refused with; pingora's plain error response.
    Status(u16),
    /// The client went away: nothing to answer. The metric label.
    ClientGone(&'static str),
}

/// The one mapping from a failed request's error to what the client gets: upstream failures
/// the branded 502/504, a refused request its status; nothing internal is shown.
pub fn failure(e: &Error) -> Failure {
    match (e.etype(), e.esource()) {
        (ErrorType::HTTPStatus(400), _) => Failure::Page(Page::BadRequest, None),
        (ErrorType::HTTPStatus(code), _) => Failure::Status(*code),
        (_, ErrorSource::Upstream) => {
            let (kind, page) = upstream_failure(e);
            Failure::Page(page, Some(kind))
        }
        _ => match client_disconnect(e) {
            Some(kind) => Failure::ClientGone(kind),
            None if *e.esource() == ErrorSource::Downstream => {
                Failure::Page(Page::BadRequest, None)
            }
            None => Failure::Page(Page::Internal, None),
        },
    }
}

/// A client that went away (closed or reset its connection, or it broke while we read or
/// wrote): nothing to answer and nothing for anyone to act on. The metric label, if so.
pub fn client_disconnect(e: &Error) -> Option<&'static str> {
    if *e.esource() != ErrorSource::Downstream {
        return None;
    }
    match e.etype() {
        ErrorType::ConnectionClosed => Some("closed"),
        ErrorType::ReadError => Some("read_error"),
        ErrorType::WriteError => Some("write_error"),
        _ => None,
    }
}

/// Classifies an upstream failure for metrics, logs and the page.
pub fn upstream_failure(e: &Error) -> (&'static str, Page) {
    match e.etype() {
        ErrorType::ConnectTimedout => ("connect_timeout", Page::UpstreamTimeout),
        ErrorType::ReadTimedout | ErrorType::WriteTimedout => {
            ("read_timeout", Page::UpstreamTimeout)
        }
        ErrorType::ConnectRefused => ("connect_refused", Page::UpstreamUnavailable),
        ErrorType::TLSHandshakeFailure
        | ErrorType::TLSHandshakeTimedout
        | ErrorType::InvalidCert
        | ErrorType::HandshakeError => ("tls", Page::UpstreamUnavailable),
        ErrorType::ConnectNoRoute | ErrorType::ConnectError | ErrorType::BindError => {
            ("connect_error", Page::UpstreamUnavailable)
        }
        _ => ("other", Page::UpstreamUnavailable),
    }
}

/// The text a panic was raised with, when it has one.
pub fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

/// A handler that panicked (caught by `catch_unwind`): counted in `prehod_panics_total`, an
/// ERROR line, and a 500 page — or, when a response had already started, a closed
/// connection — never a worker task lost mid-request.
pub async fn panicked(
    session: &mut Session,
    shared: &crate::Shared,
    request_id: &str,
    handler: &'static str,
    message: &str,
) -> Result<()> {
    shared.metrics.panics.with_label_values(&[handler]).inc();
    tracing::error!(
        request_id,
        handler,
        panic = message,
        "a request handler panicked; answered 500"
    );
    session.set_keepalive(None);
    if session.response_written().is_none() {
        let lang = crate::pages::request_lang(session.req_header(), &shared.lang_cookie);
        let reply = Reply::page(&shared.pages, Page::Internal, lang, request_id);
        write(
            session,
            reply,
            &shared.config.headers.request_id,
            request_id,
        )
        .await?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::FutureExt;
    use std::panic::AssertUnwindSafe;

    fn id() -> http::HeaderName {
        http::HeaderName::from_static("x-request-id")
    }

    #[test]
    fn a_page_gets_length_id_and_every_page_header() {
        let pages = crate::pages::Pages::new(None, "help@bankart.si").expect("the built-in pages");
        let reply = Reply::page(&pages, Page::BadRequest, crate::pages::Lang::En, "r1");
        let len = reply.body.len().to_string();
        let h = head(&reply, &id(), "r1").expect("head");
        assert_eq!(h.status.as_u16(), 400);
        assert_eq!(h.headers["content-length"], len.as_str());
        assert_eq!(h.headers["x-request-id"], "r1");
        for (name, value) in PAGE_HEADERS {
            assert_eq!(h.headers[*name], *value, "{name}");
        }
    }

    #[test]
    fn a_reply_keeps_the_page_header_it_names_and_a_redirect_gets_none() {
        let reply = Reply::html(200, "x".into()).header("content-security-policy", "mine".into());
        let h = head(&reply, &id(), "r").expect("head");
        assert_eq!(
            h.headers.get_all("content-security-policy").iter().count(),
            1
        );
        assert_eq!(h.headers["content-security-policy"], "mine");
        let redirect = Reply::redirect("/x".into())
            .cookie("a=1".into())
            .cookie("b=2".into())
            .without_page_headers();
        let h = head(&redirect, &id(), "r").expect("head");
        assert_eq!(h.headers["content-length"], "0");
        assert_eq!(h.headers.get_all("set-cookie").iter().count(), 2);
        assert!(!h.headers.contains_key("x-frame-options"));
    }

    /// SSL stripping after a redirect: every answer of the gateway's own — a redirect to the
    /// login, a 401, the page that resubmits a kept form — carries HSTS, page headers or not.
    #[test]
    fn every_reply_carries_hsts_even_without_the_page_headers() {
        let redirect = Reply::redirect("/x".into()).without_page_headers();
        let h = head(&redirect, &id(), "r").expect("head");
        assert_eq!(
            h.headers["strict-transport-security"],
            crate::pages::STRICT_TRANSPORT_SECURITY
        );
        let json = Reply::json(401, &serde_json::json!({})).without_page_headers();
        let h = head(&json, &id(), "r").expect("head");
        assert_eq!(
            h.headers
                .get_all("strict-transport-security")
                .iter()
                .count(),
            1
        );
    }

    #[test]
    fn a_204_has_no_content_length() {
        let reply = Reply::status(204)
            .header("allow", "GET".into())
            .without_page_headers();
        let h = head(&reply, &id(), "r").expect("head");
        assert!(!h.headers.contains_key("content-length"));
        assert_eq!(h.headers["allow"], "GET");
    }

    #[test]
    fn failures_map_to_pages_statuses_or_nothing() {
        let e = |t, s| {
            let mut e = Error::new(t);
            e.esource = s;
            e
        };
        use ErrorSource::{Downstream, Internal, Upstream};
        assert_eq!(
            failure(&e(ErrorType::HTTPStatus(400), Internal)),
            Failure::Page(Page::BadRequest, None)
        );
        assert_eq!(
            failure(&e(ErrorType::HTTPStatus(413), Internal)),
            Failure::Status(413)
        );
        assert_eq!(
            failure(&e(ErrorType::ConnectTimedout, Upstream)),
            Failure::Page(Page::UpstreamTimeout, Some("connect_timeout"))
        );
        assert_eq!(
            failure(&e(ErrorType::ConnectRefused, Upstream)),
            Failure::Page(Page::UpstreamUnavailable, Some("connect_refused"))
        );
        assert_eq!(
            failure(&e(ErrorType::ConnectionClosed, Downstream)),
            Failure::ClientGone("closed")
        );
        assert_eq!(
            failure(&e(ErrorType::InvalidHTTPHeader, Downstream)),
            Failure::Page(Page::BadRequest, None)
        );
        assert_eq!(
            failure(&e(ErrorType::InternalError, Internal)),
            Failure::Page(Page::Internal, None)
        );
    }

    #[test]
    fn a_panic_message_is_read_from_either_payload() {
        let text = std::panic::catch_unwind(|| panic!("plain")).unwrap_err();
        assert_eq!(panic_message(text.as_ref()), "plain");
        let n = 3;
        let formatted = std::panic::catch_unwind(|| panic!("formatted {n}")).unwrap_err();
        assert_eq!(panic_message(formatted.as_ref()), "formatted 3");
        let other = std::panic::catch_unwind(|| std::panic::panic_any(7u8)).unwrap_err();
        assert_eq!(panic_message(other.as_ref()), "(no message)");
    }

    #[tokio::test]
    async fn a_panicking_handler_is_caught_as_an_error_value() {
        let caught: std::thread::Result<()> = AssertUnwindSafe(async { panic!("in a handler") })
            .catch_unwind()
            .await;
        assert_eq!(panic_message(caught.unwrap_err().as_ref()), "in a handler");
    }
}
