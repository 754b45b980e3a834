//! The pingora `ProxyHttp` implementation: each phase takes the request apart (once, into a
//! [`Request`]), routes it, calls the handler that knows nothing of pingora, and hands its
//! [`crate::reply::Reply`] to [`crate::respond`], the one place that writes to the client.
//!
//! Phase contracts (pingora's `proxy_trait.rs`): `early_request_filter` strips what a client
//! may not send before anything reads the request; `request_filter` returns `Ok(true)` when the
//! gateway answered itself (the login hosts, a 405, a redirect, a denial) and the request ends
//! there, `Ok(false)` to forward it with `RequestCtx::session`; `upstream_peer` and
//! `fail_to_connect` pick and retry a target (`upstream`); `upstream_request_filter` sets the
//! forwarding and identity headers; `fail_to_proxy` turns an error into a page
//! (`respond::failure`); `logging` writes the metrics and the access-log line.

mod forward_auth;
mod login_host;
mod portal_host;
mod record;
mod upstream;

use std::net::IpAddr;
use std::panic::AssertUnwindSafe;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use bytes::Bytes;
use futures_util::FutureExt;
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::proxy::{FailToProxy, ProxyHttp, Session};
use pingora::{Error, ErrorType, Result};
use prehod_config::HttpMethods;

use crate::framing::MethodVerdict;
use crate::hygiene::valid_request_id;
use crate::pages::Page;
use crate::reply::Reply;
use crate::request::Request;
use crate::respond::Failure;
use crate::routing::Route;
use crate::tls::HandshakeInfo;
use crate::{metrics, PortalRuntime, Shared};

pub struct Gateway {
    pub(crate) live: Arc<crate::live::Live>,
}

/// Per-request state, shared across the phases.
pub struct RequestCtx {
    /// The configuration snapshot this request is handled with, from its start to its end
    /// (a reload meanwhile applies to the next request).
    shared: Arc<Shared>,
    started: Instant,
    request_id: String,
    client: Option<IpAddr>,
    trusted_proxy: bool,
    /// The portal routed to.
    portal: Option<Arc<PortalRuntime>>,
    /// The `portal` label while no portal is chosen: the login hosts' own, or unknown.
    site: &'static str,
    auth: &'static str,
    /// The target chosen for the current attempt, and the ones that failed before it.
    target: Option<usize>,
    failed: Vec<usize>,
    upstream_started: Option<Instant>,
    upstream_error: Option<&'static str>,
    /// Counted in `prehod_requests_in_flight` until the context is dropped, panic or not.
    in_flight: Option<metrics::InFlight>,
    /// The session this request was allowed with, and its rolled cookie to set.
    session: Option<Arc<prehod_identity::session::Session>>,
    rolled: Option<String>,
}

/// What the TLS handshake of the request's connection established (SNI, a client
/// certificate): the one place that reads it from pingora's digest.
fn handshake(session: &Session) -> Option<&HandshakeInfo> {
    session
        .digest()?
        .ssl_digest
        .as_ref()?
        .extension
        .get::<HandshakeInfo>()
}

/// The request as the handlers read it.
fn request<'s>(session: &'s Session, request_id: &'s str) -> Request<'s> {
    let head = session.req_header();
    Request::new(&head.method, &head.uri, &head.headers, request_id)
        .with_handshake(handshake(session))
}

impl Gateway {
    /// Writes a handler's reply (`crate::respond::write`). Returns the status written.
    async fn reply(&self, session: &mut Session, ctx: &RequestCtx, reply: Reply) -> Result<u16> {
        let id_header = &ctx.shared.config.headers.request_id;
        crate::respond::write(session, reply, id_header, &ctx.request_id).await
    }

    /// Writes one of the gateway's own pages, in the request's language.
    async fn send_page(&self, session: &mut Session, page: Page, ctx: &RequestCtx) -> Result<u16> {
        let lang = crate::pages::request_lang(session.req_header(), &ctx.shared.lang_cookie);
        let reply = Reply::page(&ctx.shared.pages, page, lang, &ctx.request_id);
        self.reply(session, ctx, reply).await
    }

    /// The client's address as `Hygiene::client_address` sees it.
    fn client(&self, session: &Session, ctx: &RequestCtx) -> Option<IpAddr> {
        let headers = &session.req_header().headers;
        (ctx.shared.hygiene).client_address(headers, ctx.client, ctx.trusted_proxy)
    }

    /// Reads the request's body into memory, at most `max` bytes, within the body budget
    /// (`crate::body`).
    async fn read_body(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        max: usize,
    ) -> Result<crate::body::Buffered> {
        let client = self.client(session, ctx);
        crate::body::read(session, &ctx.shared.body_budget, client, max).await
    }

    /// The outcome of a handler that writes a whole response, run under `catch_unwind`: a
    /// panic becomes `respond::panicked` (a 500, counted and logged).
    async fn contain_panic(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        handler: &'static str,
        served: std::thread::Result<Result<()>>,
    ) -> Result<()> {
        let payload = match served {
            Ok(result) => return result,
            Err(payload) => payload,
        };
        ctx.auth = "panic";
        let message = crate::respond::panic_message(payload.as_ref()).to_owned();
        drop(payload);
        let shared = ctx.shared.clone();
        crate::respond::panicked(session, &shared, &ctx.request_id, handler, &message).await
    }

    fn portal_name<'c>(&self, ctx: &'c RequestCtx) -> &'c str {
        ctx.portal
            .as_ref()
            .map_or(ctx.site, |p| p.config.name.as_str())
    }

    /// The method gate of the host `route` names (`crate::framing::method_verdict`): `Ok(true)`
    /// when the gateway answered — 405 with `Allow`, or `OPTIONS *` — and the request ends.
    async fn answer_method(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> Result<bool> {
        let shared = ctx.shared.clone();
        let methods = match route {
            Route::Portal(i) => shared.portals.get(*i).map(|p| &p.config.http_methods),
            Route::Login | Route::CertLogin => Some(&*crate::framing::LOGIN_HOST_METHODS),
            Route::ForwardAuth => Some(&*crate::forward_auth::METHODS),
            Route::Misdirected => None,
        };
        let req = session.req_header();
        let verdict = methods.map_or(MethodVerdict::Go, |m| {
            crate::framing::method_verdict(m, &req.method, &req.uri)
        });
        if verdict == MethodVerdict::Go {
            return Ok(false);
        }
        // Only a request the gateway answers itself gets this far.
        let allow = methods.map_or("", HttpMethods::allow).to_owned();
        let reply = match verdict {
            MethodVerdict::Go => return Ok(false),
            MethodVerdict::Refuse => {
                ctx.auth = "refused";
                let lang = crate::pages::request_lang(req, &shared.lang_cookie);
                Reply::page(&shared.pages, Page::MethodNotAllowed, lang, &ctx.request_id)
                    .header("allow", allow)
            }
            _ => Reply::status(204)
                .header("allow", allow)
                .without_page_headers(),
        };
        Box::pin(self.reply(session, ctx, reply)).await?;
        Ok(true)
    }
}

#[async_trait]
impl ProxyHttp for Gateway {
    type CTX = RequestCtx;

    fn new_ctx(&self) -> RequestCtx {
        RequestCtx {
            shared: self.live.load(),
            started: Instant::now(),
            request_id: String::new(),
            client: None,
            trusted_proxy: false,
            portal: None,
            site: metrics::UNKNOWN_PORTAL,
            auth: "none",
            target: None,
            failed: Vec::new(),
            upstream_started: None,
            upstream_error: None,
            in_flight: None,
            session: None,
            rolled: None,
        }
    }

    /// Strip before anything else: the client's identity, forwarding and nominated headers go.
    async fn early_request_filter(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        ctx.in_flight = Some(metrics::InFlight::count(&shared.metrics.in_flight));
        // The header is complete: its deadline ends, the body's (if any) begins.
        if let Some(connection) = crate::connections::of_session(session) {
            connection.header_done(crate::connections::announces_body(
                &session.req_header().headers,
            ));
        }
        ctx.client = session
            .client_addr()
            .and_then(|a| a.as_inet())
            .map(|a| a.ip());
        ctx.trusted_proxy = shared.hygiene.is_trusted_proxy(ctx.client);
        ctx.request_id = request_id(&shared, session.req_header(), ctx.trusted_proxy);
        // Refused before anything is removed: dropping a framing header would turn the body
        // into the next request on the connection (the 400 page closes it).
        if let Some(name) = crate::hygiene::nominated_framing_header(&session.req_header().headers)
        {
            let why = format!("Connection: nominates {name}");
            return Err(Error::explain(ErrorType::HTTPStatus(400), why));
        }
        // Framing pingora lets through as it came: collapsed or refused (`crate::framing`).
        crate::framing::apply(session.req_header_mut())?;
        let strip =
            (shared.hygiene).names_to_strip(&session.req_header().headers, ctx.trusted_proxy);
        let req = session.req_header_mut();
        for name in strip {
            // remove_header removes every value of the name.
            req.remove_header(&name);
        }
        Ok(())
    }

    /// Routes by Host/SNI, then the host's handler. `Ok(true)`: the gateway answered (the
    /// login hosts, a 405 or 421, a portal's redirect or denial) and the request ends here;
    /// `Ok(false)`: forward it, with `ctx.session` (the identity) when there is one.
    /// The handlers of the other hosts and the gateway's own answers are boxed: async_trait
    /// copies this future whole into its box on every request, so it is kept to the size
    /// the portal path needs (issue 20).
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let shared = ctx.shared.clone();
        let route = {
            let req = request(session, "");
            shared.router.route_request(&req)
        };
        if self.answer_method(session, ctx, &route).await? {
            return Ok(true);
        }
        let (handler, site, auth): (&'static str, _, _) = match route {
            Route::Portal(i) => return self.serve_portal(session, ctx, i).await,
            Route::ForwardAuth => return Box::pin(self.serve_forward_auth(session, ctx)).await,
            Route::Misdirected => {
                Box::pin(self.send_page(session, Page::Misdirected, ctx)).await?;
                return Ok(true);
            }
            Route::Login => ("login", metrics::LOGIN_PORTAL, "login"),
            Route::CertLogin => (
                "certificate_login",
                metrics::CERTLOGIN_PORTAL,
                "certificate",
            ),
        };
        (ctx.site, ctx.auth) = (site, auth);
        let served = match route {
            Route::CertLogin => {
                Box::pin(AssertUnwindSafe(self.serve_cert_login(session, ctx)).catch_unwind()).await
            }
            _ => Box::pin(AssertUnwindSafe(self.serve_login(session, ctx)).catch_unwind()).await,
        };
        Box::pin(self.contain_panic(session, ctx, handler, served)).await?;
        Ok(true)
    }

    /// The body read to its end: its minimum-rate deadline ends.
    async fn request_body_filter(
        &self,
        session: &mut Session,
        body: &mut Option<Bytes>,
        end_of_stream: bool,
        _ctx: &mut RequestCtx,
    ) -> Result<()> {
        crate::connections::stream_body_read(body.as_ref().map_or(0, Bytes::len), end_of_stream);
        if end_of_stream {
            if let Some(connection) = crate::connections::of_session(session) {
                connection.body_done();
            }
        }
        Ok(())
    }

    /// The portal's next healthy target (`crate::pool`), one not failed for this request.
    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        upstream::peer(ctx)
    }

    /// A connect failure takes the target out of rotation and, when another target is left,
    /// retries there (nothing was sent yet, so even a POST is safe to retry).
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        e: Box<Error>,
    ) -> Box<Error> {
        upstream::connect_failed(ctx, e)
    }

    /// Forwarding headers, the request id, and — strip before set: the client's copies went
    /// in `early_request_filter` — the identity headers and the signed assertion.
    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream::prepare(session.req_header(), upstream, ctx)
    }

    /// The gateway's cookies are its own: a portal's `Set-Cookie` for one of them is dropped
    /// (before `response_filter` adds the gateway's).
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        upstream::drop_gateway_cookies(&ctx.shared.hygiene, upstream)?;
        if let Some(started) = ctx.upstream_started {
            (ctx.shared.metrics.upstream_duration)
                .with_label_values(&[self.portal_name(ctx)])
                .observe(started.elapsed().as_secs_f64());
        }
        Ok(())
    }

    async fn response_filter(
        &self,
        session: &mut Session,
        response: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        // Only a 101 makes a WebSocket of the connection (free of the HTTP deadlines).
        crate::connections::response_header(session, response.status);
        upstream::finish_response(response, ctx)?;
        Ok(())
    }

    /// A failed request becomes what `respond::failure` says: the branded 502/504, a refused
    /// request's status, or nothing for a client that went away.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let failure = crate::respond::failure(e);
        if let Failure::ClientGone(kind) = failure {
            metrics::count(metrics::ProcessCount::ClientDisconnect, kind);
            tracing::debug!(request_id = %ctx.request_id, error = %e, "client went away");
            return FailToProxy {
                error_code: 0,
                can_reuse_downstream: false,
            };
        }
        if ctx.request_id.is_empty() {
            ctx.request_id = new_request_id();
        }
        let code = match failure {
            Failure::ClientGone(_) => 0,
            Failure::Page(page, upstream_error) => {
                ctx.upstream_error = upstream_error.or(ctx.upstream_error);
                self.send_page(session, page, ctx).await.unwrap_or(0)
            }
            Failure::Status(code) => session.respond_error(code).await.map_or(0, |()| code),
        };
        FailToProxy {
            error_code: code,
            can_reuse_downstream: false,
        }
    }

    /// pingora logs every failed request at ERROR unless this says no. A client that went away
    /// (counted in `fail_to_proxy`) and a request the gateway refused with a 4xx (it is in the
    /// access log with its status) are not for an SRE to act on; everything else stays ERROR.
    fn suppress_error_log(&self, _session: &Session, _ctx: &RequestCtx, e: &Error) -> bool {
        crate::respond::client_disconnect(e).is_some()
            || matches!(e.etype(), ErrorType::HTTPStatus(code) if (400..500).contains(code))
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        if let Some(connection) = crate::connections::of_session(session) {
            connection.request_done();
        }
        // "Last seen" on the sessions page.
        if let Some(s) = &ctx.session {
            let (index, state) = (&ctx.shared.sessions_index, ctx.shared.state.as_ref());
            index.seen(s, prehod_identity::unix_now(), state);
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        record::finished(self.portal_name(ctx), session, status, ctx);
    }
}

/// The request's id: a trusted proxy's (when it is well-formed), else a new one.
fn request_id(shared: &Shared, head: &RequestHeader, trusted_proxy: bool) -> String {
    let forwarded = trusted_proxy
        .then(|| head.headers.get(&shared.config.headers.request_id))
        .flatten()
        .and_then(|v| v.to_str().ok())
        .filter(|v| valid_request_id(v));
    forwarded.map_or_else(new_request_id, str::to_owned)
}

/// A new request id: a random UUID's 32 lower-case hex digits, written by `uuid` itself into
/// a buffer (through `Display`, ~200 instructions more per request).
fn new_request_id() -> String {
    let mut buf = uuid::Uuid::encode_buffer();
    (*uuid::Uuid::new_v4().simple().encode_lower(&mut buf)).to_owned()
}
