//! The pingora `ProxyHttp` implementation. It stays thin: each phase calls the plain
//! functions of `hygiene`, `routing`, `pool`, `auth` and `pages`.

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
use pingora::{Error, ErrorSource, ErrorType, Result};
use prehod_config::HttpMethods;

use crate::auth::{self, Decision};
use crate::body::Buffered;
use crate::framing::MethodVerdict;
use crate::hygiene::{loggable_path, valid_request_id};
use crate::pages::{Page, PAGE_HEADERS};
use crate::routing::Route;
use crate::tls::HandshakeInfo;
use crate::{access_log, metrics, Shared};

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
    portal: Option<usize>,
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
    session: Option<std::sync::Arc<prehod_identity::session::Session>>,
    rolled: Option<String>,
}

/// Identity values (a certificate CN "Žan", a Rekono name with č, an IDN e-mail) can hold any
/// Unicode; a header value is sent as it is only when it is visible ASCII, otherwise (and when
/// it already looks encoded, so a chosen name cannot pass for another) percent-encoded as
/// UTF-8, RFC 8187 style (`UTF-8''%C5%BDan`), so nothing is lost and nothing becomes a 500.
fn header_safe(value: &str) -> String {
    let looks_encoded = value
        .get(..7)
        .is_some_and(|p| p.eq_ignore_ascii_case("UTF-8''"));
    if !looks_encoded && value.bytes().all(|b| (0x20..0x7f).contains(&b)) {
        value.to_owned()
    } else {
        format!(
            "UTF-8''{}",
            url::form_urlencoded::byte_serialize(value.as_bytes())
                .collect::<String>()
                .replace('+', "%20")
        )
    }
}

/// The text a panic was raised with, when it has one.
fn panic_message(payload: &(dyn std::any::Any + Send)) -> &str {
    payload
        .downcast_ref::<&str>()
        .copied()
        .or_else(|| payload.downcast_ref::<String>().map(String::as_str))
        .unwrap_or("(no message)")
}

impl Gateway {
    async fn write_html(
        &self,
        session: &mut Session,
        status: u16,
        html: String,
        request_id: &str,
        id_header: &http::HeaderName,
    ) -> Result<()> {
        let body = Bytes::from(html);
        let mut header = ResponseHeader::build(status, Some(4 + PAGE_HEADERS.len()))?;
        header.insert_header("content-type", "text/html; charset=utf-8")?;
        header.insert_header("content-length", body.len().to_string())?;
        header.insert_header(id_header.clone(), request_id)?;
        for (name, value) in PAGE_HEADERS {
            header.insert_header(*name, *value)?;
        }
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(body), true).await?;
        Ok(())
    }

    /// Serves a request for the login host (its own pages, never proxied).
    async fn serve_login(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let shared = ctx.shared.clone();
        let Some(auth) = &shared.auth else {
            return self
                .send_page(session, Page::Misdirected, ctx)
                .await
                .map(|_| ());
        };
        let endpoint = crate::ratelimit::Endpoint::on_login_host(
            &session.req_header().method,
            session.req_header().uri.path(),
        );
        if let Some(refused) = self
            .over_rate_limit(session, ctx, auth, endpoint, None)
            .await
        {
            return self.write_login_response(session, ctx, refused).await;
        }
        // Bodies here are small forms and back-channel logout tokens, read into memory within
        // the body budget (`crate::body`); the hold gives the memory back after the handler.
        let (body, _hold) = if session.req_header().method == http::Method::POST {
            let client = shared.hygiene.client_address(
                &session.req_header().headers,
                ctx.client,
                ctx.trusted_proxy,
            );
            let max = crate::body::LOGIN_HOST_MAX;
            match crate::body::read(session, &shared.body_budget, client, max).await? {
                Buffered::Body(body, hold) => (body, Some(hold)),
                Buffered::TooLarge => {
                    return Err(Error::explain(
                        ErrorType::HTTPStatus(413),
                        "login host request body too large",
                    ))
                }
                Buffered::Refused(_) => {
                    return self
                        .send_page_with(session, Page::Busy, ctx, &[("retry-after", "10")])
                        .await
                        .map(|_| ())
                }
            }
        } else {
            (Bytes::new(), None)
        };
        let resp = crate::login::handle(
            &shared,
            auth,
            crate::login::LoginRequest::from_header(session.req_header(), body, &ctx.request_id),
        )
        .await;
        self.write_login_response(session, ctx, resp).await
    }

    async fn write_login_response(
        &self,
        session: &mut Session,
        ctx: &RequestCtx,
        resp: crate::login::LoginResponse,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let mut header = ResponseHeader::build(
            resp.status,
            Some(resp.headers.len() + 3 + PAGE_HEADERS.len()),
        )?;
        for (name, value) in &resp.headers {
            header.append_header(*name, value.as_str())?;
        }
        header.insert_header("content-length", resp.body.len().to_string())?;
        header.insert_header(shared.config.headers.request_id.clone(), &ctx.request_id)?;
        // A page may narrow or widen one of them itself (a logout form's CSP names Rekono).
        for (name, value) in PAGE_HEADERS {
            if !resp.headers.iter().any(|(n, _)| n == name) {
                header.insert_header(*name, *value)?;
            }
        }
        let empty = resp.body.is_empty();
        session
            .write_response_header(Box::new(header), empty)
            .await?;
        if !empty {
            session.write_response_body(Some(resp.body), true).await?;
        }
        Ok(())
    }

    /// The certificate-login host: the handshake asked for a certificate; decide on it.
    async fn serve_cert_login(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<()> {
        let shared = ctx.shared.clone();
        let (Some(auth), Some(certs)) = (
            &shared.auth,
            shared.auth.as_ref().and_then(|a| a.certificates.as_ref()),
        ) else {
            return self
                .send_page(session, Page::Misdirected, ctx)
                .await
                .map(|_| ());
        };
        let client = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<HandshakeInfo>())
            .and_then(|h| h.client_cert.as_ref())
            .cloned();
        let fingerprint = client.as_ref().and_then(|c| c.leaf.as_deref()).map(|der| {
            use sha2::Digest;
            format!("{:x}", sha2::Sha256::digest(der))
        });
        if let Some(refused) = self
            .over_rate_limit(
                session,
                ctx,
                auth,
                Some(crate::ratelimit::Endpoint::CertificateLogin),
                fingerprint.as_deref(),
            )
            .await
        {
            return self.write_login_response(session, ctx, refused).await;
        }
        let resp = crate::login::certificate(
            &shared,
            auth,
            certs,
            client.as_ref(),
            crate::login::LoginRequest::from_header(
                session.req_header(),
                Bytes::new(),
                &ctx.request_id,
            ),
        )
        .await;
        self.write_login_response(session, ctx, resp).await
    }

    /// A login endpoint's rate limit, for the client address (see `Hygiene::client_address`)
    /// and the certificate's fingerprint: the 429 page when either bucket is empty.
    async fn over_rate_limit(
        &self,
        session: &Session,
        ctx: &RequestCtx,
        auth: &crate::auth::AuthState,
        endpoint: Option<crate::ratelimit::Endpoint>,
        certificate: Option<&str>,
    ) -> Option<crate::login::LoginResponse> {
        let shared = ctx.shared.clone();
        let endpoint = endpoint?;
        let headers = &session.req_header().headers;
        let client = shared
            .hygiene
            .client_address(headers, ctx.client, ctx.trusted_proxy);
        let limited = match shared.rate_limits.check(endpoint, client, certificate) {
            Err(limited) => limited,
            // This replica's buckets let it through; with shared state, the fleet's count too.
            Ok(()) => {
                crate::state::fleet_rate_limit(&shared, endpoint, client, certificate).await?
            }
        };
        let req = crate::login::LoginRequest::from_header(
            session.req_header(),
            Bytes::new(),
            &ctx.request_id,
        );
        Some(crate::ratelimit::refusal(
            &shared, auth, &req, endpoint, limited,
        ))
    }

    /// The outcome of a handler that writes a whole response, run under `catch_unwind`: a panic
    /// becomes a 500 page (or, when a response had already started, a closed connection), a
    /// count in `prehod_panics_total` and an ERROR line — never a worker task lost mid-request.
    async fn contain_panic(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        handler: &'static str,
        served: std::thread::Result<Result<()>>,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let payload = match served {
            Ok(result) => return result,
            Err(payload) => payload,
        };
        shared.metrics.panics.with_label_values(&[handler]).inc();
        tracing::error!(
            request_id = %ctx.request_id,
            handler,
            panic = panic_message(payload.as_ref()),
            "a request handler panicked; answered 500"
        );
        ctx.auth = "panic";
        session.set_keepalive(None);
        if session.response_written().is_none() {
            self.send_page(session, Page::Internal, ctx).await?;
        }
        Ok(())
    }

    fn portal_name<'c>(&self, ctx: &'c RequestCtx) -> &'c str {
        ctx.portal
            .and_then(|i| ctx.shared.config.portals.get(i))
            .map_or(ctx.site, |p| p.name.as_str())
    }

    /// Writes one of the gateway's own pages. Returns the status written.
    async fn send_page(&self, session: &mut Session, page: Page, ctx: &RequestCtx) -> Result<u16> {
        self.send_page_with(session, page, ctx, &[]).await
    }

    /// [`Gateway::send_page`] with more headers (`Allow` on a 405, `Retry-After` on a 503).
    async fn send_page_with(
        &self,
        session: &mut Session,
        page: Page,
        ctx: &RequestCtx,
        extra: &[(&'static str, &str)],
    ) -> Result<u16> {
        let shared = ctx.shared.clone();
        let lang = crate::pages::request_lang(
            session.req_header(),
            &format!("{}_lang", shared.config.cookies.prefix),
        );
        let body = Bytes::from(page.render(lang, &ctx.request_id));
        let status = page.status().as_u16();
        let mut header = ResponseHeader::build(status, Some(4 + PAGE_HEADERS.len() + extra.len()))?;
        header.insert_header("content-type", "text/html; charset=utf-8")?;
        header.insert_header("content-length", body.len().to_string())?;
        header.insert_header(shared.config.headers.request_id.clone(), &ctx.request_id)?;
        for (name, value) in PAGE_HEADERS.iter().chain(extra) {
            header.insert_header(*name, *value)?;
        }
        session.set_keepalive(None);
        session
            .write_response_header(Box::new(header), false)
            .await?;
        session.write_response_body(Some(body), true).await?;
        Ok(status)
    }

    /// The method gate of the host `route` names (`crate::framing::method_verdict`): `Ok(true)`
    /// when the gateway answered — 405 with `Allow`, or `OPTIONS *` — and the request ends.
    async fn answer_method(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
        route: &Route,
    ) -> Result<bool> {
        fn methods<'a>(shared: &'a Shared, route: &Route) -> Option<&'a HttpMethods> {
            match route {
                Route::Portal(i) => shared.config.portals.get(*i).map(|p| &p.http_methods),
                Route::Login | Route::CertLogin => Some(&crate::framing::LOGIN_HOST_METHODS),
                Route::Misdirected => None,
            }
        }
        let req = session.req_header();
        let verdict = methods(&ctx.shared, route).map_or(MethodVerdict::Go, |m| {
            crate::framing::method_verdict(m, &req.method, &req.uri)
        });
        if verdict == MethodVerdict::Go {
            return Ok(false);
        }
        // Only a request the gateway answers itself gets this far.
        let shared = ctx.shared.clone();
        let allow = methods(&shared, route).map_or("", HttpMethods::allow);
        if verdict == MethodVerdict::Refuse {
            ctx.auth = "refused";
            let allow = [("allow", allow)];
            self.send_page_with(session, Page::MethodNotAllowed, ctx, &allow)
                .await?;
        } else {
            let mut header = ResponseHeader::build(204, Some(2))?;
            header.insert_header("allow", allow)?;
            header.insert_header(shared.config.headers.request_id.clone(), &ctx.request_id)?;
            session
                .write_response_header(Box::new(header), true)
                .await?;
        }
        Ok(true)
    }
}

/// A client that went away (closed or reset its connection, or it broke while we read or
/// wrote): nothing to answer and nothing for anyone to act on. The metric label, if so.
/// The language a request asks for (`?lang=`, the language cookie, `Accept-Language`): every
/// page the gateway answers with on a portal host speaks it.
fn request_lang(
    auth: &crate::auth::AuthState,
    session: &Session,
    request_id: &str,
) -> crate::templates::Lang {
    crate::login::LoginRequest::from_header(session.req_header(), Bytes::new(), request_id)
        .lang(auth)
}

fn client_disconnect(e: &Error) -> Option<&'static str> {
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
fn upstream_failure(e: &Error) -> (&'static str, Page) {
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
        let hygiene = &shared.hygiene;
        ctx.trusted_proxy = hygiene.is_trusted_proxy(ctx.client);
        let id_header = &shared.config.headers.request_id;
        let forwarded_id = ctx.trusted_proxy.then(|| {
            session
                .req_header()
                .headers
                .get(id_header)
                .and_then(|v| v.to_str().ok())
                .filter(|v| valid_request_id(v))
                .map(str::to_owned)
        });
        ctx.request_id = forwarded_id
            .flatten()
            .unwrap_or_else(|| uuid::Uuid::new_v4().simple().to_string());
        // Refused before anything is removed: dropping a framing header would turn the body
        // into the next request on the connection (the 400 page closes it).
        if let Some(name) = crate::hygiene::nominated_framing_header(&session.req_header().headers)
        {
            return Err(Error::explain(
                ErrorType::HTTPStatus(400),
                format!("Connection: nominates {name}"),
            ));
        }
        // Framing pingora lets through as it came: collapsed or refused (`crate::framing`).
        crate::framing::apply(session.req_header_mut())?;
        let strip = hygiene.names_to_strip(&session.req_header().headers, ctx.trusted_proxy);
        let req = session.req_header_mut();
        for name in strip {
            // remove_header removes every value of the name.
            req.remove_header(&name);
        }
        Ok(())
    }

    /// Routes by Host/SNI and asks the auth decision. `Ok(true)` means a response was already
    /// written (421 page, redirect, denial) and the request ends here.
    async fn request_filter(&self, session: &mut Session, ctx: &mut RequestCtx) -> Result<bool> {
        let shared = ctx.shared.clone();
        let req = session.req_header();
        let host = req
            .uri
            .authority()
            .map(|a| a.as_str().to_owned())
            .or_else(|| {
                req.headers
                    .get(http::header::HOST)
                    .and_then(|v| v.to_str().ok())
                    .map(str::to_owned)
            });
        let sni = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<HandshakeInfo>())
            .and_then(|h| h.sni.clone());
        let route = shared.router.route(host.as_deref(), sni.as_deref());
        if self.answer_method(session, ctx, &route).await? {
            return Ok(true);
        }
        let portal = match route {
            Route::Misdirected => {
                self.send_page(session, Page::Misdirected, ctx).await?;
                return Ok(true);
            }
            Route::Login => {
                ctx.site = metrics::LOGIN_PORTAL;
                ctx.auth = "login";
                let served = AssertUnwindSafe(self.serve_login(session, ctx))
                    .catch_unwind()
                    .await;
                self.contain_panic(session, ctx, "login", served).await?;
                return Ok(true);
            }
            Route::CertLogin => {
                ctx.site = metrics::CERTLOGIN_PORTAL;
                ctx.auth = "certificate";
                let served = AssertUnwindSafe(self.serve_cert_login(session, ctx))
                    .catch_unwind()
                    .await;
                self.contain_panic(session, ctx, "certificate_login", served)
                    .await?;
                return Ok(true);
            }
            Route::Portal(i) => i,
        };
        ctx.portal = Some(portal);
        let req = session.req_header();
        let url = format!(
            "https://{}{}",
            host.as_deref().unwrap_or_default(),
            req.uri.path_and_query().map_or("/", |p| p.as_str())
        );
        let Some(portal_cfg) = shared.config.portals.get(portal) else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "routed to no portal",
            ));
        };
        // The gateway's own paths on a portal host (`/.prehod/…`): never forwarded.
        if let (Some(auth), true) = (
            &shared.auth,
            shared
                .auth
                .as_ref()
                .is_some_and(|a| req.uri.path().starts_with(&a.portal_prefix)),
        ) {
            let login_req =
                crate::login::LoginRequest::from_header(req, Bytes::new(), &ctx.request_id);
            let resp = if login_req.path == auth.sso.path() {
                // Single sign-on: the login host sent the browser here with a code.
                crate::state::claim_sso_code(&shared, login_req.query.get("code")).await;
                crate::login::redeem_sso_code(&shared, auth, portal_cfg, login_req)
            } else {
                crate::login::portal_path(&shared, auth, portal_cfg, &login_req)
            };
            ctx.auth = "login";
            self.write_login_response(session, ctx, resp).await?;
            return Ok(true);
        }
        // A certificate-only portal: the handshake demanded a certificate; it is the identity.
        if portal_cfg.client_certificate_required {
            let request_id = ctx.request_id.clone();
            let client = session
                .digest()
                .and_then(|d| d.ssl_digest.as_ref())
                .and_then(|s| s.extension.get::<HandshakeInfo>())
                .and_then(|h| h.client_cert.clone());
            let Some(certs) = shared.auth.as_ref().and_then(|a| a.certificates.as_ref()) else {
                return Err(Error::explain(
                    ErrorType::HTTPStatus(403),
                    "certificate-only portal without certificate_login",
                ));
            };
            let checked = crate::login::check_certificate(
                &shared,
                certs,
                portal_cfg,
                client.as_ref(),
                &request_id,
            )
            .await;
            match checked {
                Ok(id) => {
                    shared
                        .metrics
                        .certificates
                        .with_label_values(&["success", "ok"])
                        .inc();
                    let mut s = crate::login::certificate_session(
                        &id,
                        certs.level,
                        prehod_identity::unix_now(),
                    );
                    // One identity per certificate: its assertion is reused like a session's.
                    s.sid = format!("cert-{}", id.fingerprint);
                    ctx.session = Some(std::sync::Arc::new(s));
                    ctx.auth = "certificate";
                    return Ok(false);
                }
                Err(refusal) => {
                    shared
                        .metrics
                        .certificates
                        .with_label_values(&["failure", refusal.label()])
                        .inc();
                    shared
                        .metrics
                        .denials
                        .with_label_values(&[refusal.label()])
                        .inc();
                    crate::audit::write(&crate::audit::Event {
                        event: "denied",
                        outcome: "failure",
                        reason: Some(refusal.label()),
                        portal: Some(&portal_cfg.name),
                        method: Some("certificate"),
                        request_id: &request_id,
                        ..Default::default()
                    });
                    ctx.auth = "denied";
                    let html = match &shared.auth {
                        Some(a) => {
                            let lang = request_lang(a, session, &request_id);
                            a.pages.message_detail(
                                lang,
                                crate::templates::Message::CertificateRefused,
                                crate::templates::certificate_reason(lang, refusal),
                                "",
                                &a.support_email,
                                &request_id,
                            )
                        }
                        None => Page::Internal.render(crate::templates::Lang::Sl, &request_id),
                    };
                    self.write_html(
                        session,
                        403,
                        html,
                        &request_id,
                        &shared.config.headers.request_id,
                    )
                    .await?;
                    return Ok(true);
                }
            }
        }
        // A cookie this replica has not seen yet: asked about in the fleet's revocations.
        crate::state::check_unseen(&shared, &req.headers).await;
        let decision = auth::decide(
            shared.auth.as_ref(),
            portal_cfg,
            &req.method,
            &req.headers,
            &url,
            prehod_identity::unix_now(),
        );
        ctx.auth = decision.outcome();
        let request_id = ctx.request_id.clone();
        match decision {
            Decision::Allow { session: s, rolled } => {
                // Back from the login with a form kept for this URL and bound to this very
                // session by its login: send it again.
                if let (Some(valid), Some(auth)) = (&s, &shared.auth) {
                    let kept = (req.method == http::Method::GET)
                        .then(|| crate::auth::cookie(&req.headers, &auth.post_cookie))
                        .flatten()
                        .and_then(|c| {
                            crate::portal::keep_form::open(
                                &auth.sealer,
                                c,
                                &url,
                                valid,
                                prehod_identity::unix_now(),
                            )
                        });
                    if let Some(kept) = kept {
                        let body = Bytes::from(crate::portal::keep_form::resubmit_page(&kept));
                        let mut header = ResponseHeader::build(200, Some(6))?;
                        header.insert_header("content-type", "text/html; charset=utf-8")?;
                        header.insert_header("content-length", body.len().to_string())?;
                        header.insert_header(
                            "content-security-policy",
                            crate::portal::keep_form::content_security_policy(),
                        )?;
                        header.insert_header("cache-control", "no-store")?;
                        header.insert_header("set-cookie", auth.clear_post_cookie())?;
                        header
                            .insert_header(shared.config.headers.request_id.clone(), &request_id)?;
                        session
                            .write_response_header(Box::new(header), false)
                            .await?;
                        session.write_response_body(Some(body), true).await?;
                        return Ok(true);
                    }
                }
                ctx.session = s;
                ctx.rolled = rolled;
                Ok(false)
            }
            Decision::Redirect {
                mut location,
                step_up,
            } => {
                // The request head is needed after the body is read: keep a copy.
                let headers = req.headers.clone();
                // A form sent without a session: keep it across the login when it is small.
                let mut kept_cookie = None;
                let is_post = req.method == http::Method::POST;
                if is_post && !step_up {
                    let content_type = headers
                        .get(http::header::CONTENT_TYPE)
                        .and_then(|v| v.to_str().ok())
                        .map(str::to_owned);
                    // Only a body read to its end, within the limit and the body budget, may
                    // be kept (`crate::body`); the hold ends with this block.
                    let (hygiene, budget) = (&shared.hygiene, &shared.body_budget);
                    let client = hygiene.client_address(&headers, ctx.client, ctx.trusted_proxy);
                    let max = crate::portal::keep_form::MAX_BODY;
                    let read = crate::body::read(session, budget, client, max).await?;
                    let body = match &read {
                        Buffered::Body(body, _) => Some(body),
                        Buffered::TooLarge | Buffered::Refused(_) => None,
                    };
                    // Only a navigation from this portal itself: a form another site (or a
                    // sibling host, or another portal) made the browser send is never kept —
                    // it would be sent again with the session.
                    let same_site = url::Url::parse(&url).is_ok_and(|u| {
                        crate::portal::keep_form::from_same_origin(
                            &headers,
                            &u.origin().ascii_serialization(),
                        )
                    });
                    if let (Some(auth), Some(body), true) = (&shared.auth, body, same_site) {
                        if let Some((v, binding)) = crate::portal::keep_form::seal(
                            &auth.sealer,
                            &url,
                            content_type.as_deref(),
                            body,
                            prehod_identity::unix_now(),
                        ) {
                            kept_cookie = Some(auth.post_cookie(&v, crate::portal::keep_form::LIFETIME));
                            // The login attempt started from this page carries the binding.
                            location.push_str("&form=");
                            location.push_str(&binding);
                        }
                    }
                    if kept_cookie.is_none() {
                        location.push_str("&notice=form_not_kept");
                    }
                }
                if step_up {
                    shared
                        .metrics
                        .step_ups
                        .with_label_values(&[&portal_cfg.name])
                        .inc();
                    let s = crate::auth::cookie(
                        &headers,
                        shared.auth.as_ref().map_or("", |a| a.cookie_name.as_str()),
                    )
                    .and_then(|c| {
                        shared
                            .auth
                            .as_ref()?
                            .sessions
                            .validate(c, prehod_identity::unix_now())
                            .ok()
                    });
                    crate::audit::write(&crate::audit::Event {
                        event: "step_up",
                        outcome: "started",
                        sub: s.as_ref().map(|v| v.session.sub.as_str()),
                        email: s.as_ref().map(|v| v.session.email.as_str()),
                        portal: Some(&portal_cfg.name),
                        method: Some("rekono"),
                        level: Some(portal_cfg.min_level),
                        request_id: &request_id,
                        ..Default::default()
                    });
                }
                // Host-only cookies: this browser's nonce stays here, its binding goes along,
                // so that only this browser can take the code the login host sends back.
                // (A nonce the browser already has is kept: several tabs log in at once.)
                let nonce_cookie = shared.auth.as_ref().and_then(|a| {
                    matches!(a.cookie_scope, prehod_config::CookieScope::Host).then(|| {
                        let (nonce, bind) = crate::sso::binding_for(crate::auth::cookie(
                            &headers,
                            crate::sso::NONCE_COOKIE,
                        ));
                        location.push_str("&bind=");
                        location.push_str(&bind);
                        a.sso_nonce_cookie(&nonce)
                    })
                });
                // 303: after a POST the browser fetches the login page with GET.
                let mut header = ResponseHeader::build(if is_post { 303 } else { 302 }, Some(6))?;
                header.insert_header("location", location)?;
                if let Some(c) = kept_cookie {
                    header.append_header("set-cookie", c)?;
                }
                if let Some(c) = nonce_cookie {
                    header.append_header("set-cookie", c)?;
                }

                header.insert_header("content-length", "0")?;
                header.insert_header("cache-control", "no-store")?;
                header.insert_header(shared.config.headers.request_id.clone(), &request_id)?;
                session
                    .write_response_header(Box::new(header), true)
                    .await?;
                Ok(true)
            }
            Decision::LoginRequired { login, reason } => {
                shared.metrics.denials.with_label_values(&[reason]).inc();
                let body = Bytes::from(serde_json::json!({"error": "login_required", "reason": reason, "login": login, "request_id": request_id}).to_string());
                let mut header = ResponseHeader::build(401, Some(5))?;
                header.insert_header("content-type", "application/json")?;
                header.insert_header("content-length", body.len().to_string())?;
                header.insert_header("www-authenticate", "Cookie realm=\"prehod\"")?;
                header.insert_header("cache-control", "no-store")?;
                header.insert_header(shared.config.headers.request_id.clone(), &request_id)?;
                session
                    .write_response_header(Box::new(header), false)
                    .await?;
                session.write_response_body(Some(body), true).await?;
                Ok(true)
            }
            Decision::Deny { message, reason } => {
                shared.metrics.denials.with_label_values(&[reason]).inc();
                crate::audit::write(&crate::audit::Event {
                    event: "denied",
                    outcome: "failure",
                    reason: Some(reason),
                    portal: Some(&portal_cfg.name),
                    request_id: &request_id,
                    ..Default::default()
                });
                let html = match &shared.auth {
                    Some(a) => a.pages.message(
                        request_lang(a, session, &request_id),
                        message,
                        "",
                        &a.support_email,
                        &request_id,
                    ),
                    None => Page::Internal.render(crate::templates::Lang::Sl, &request_id),
                };
                self.write_html(
                    session,
                    message.status(),
                    html,
                    &request_id,
                    &shared.config.headers.request_id,
                )
                .await?;
                Ok(true)
            }
        }
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

    async fn upstream_peer(
        &self,
        _session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<Box<HttpPeer>> {
        let shared = ctx.shared.clone();
        let portal = ctx
            .portal
            .ok_or_else(|| Error::explain(ErrorType::InternalError, "no portal routed"))?;
        let (Some(pool), Some(template)) = (shared.pools.get(portal), shared.peers.get(portal))
        else {
            return Err(Error::explain(
                ErrorType::InternalError,
                "routed to no portal",
            ));
        };
        let (target, addr) = pool.select(&ctx.failed).ok_or_else(|| {
            let mut e = Error::explain(ErrorType::ConnectNoRoute, "no upstream target is resolved");
            e.esource = ErrorSource::Upstream;
            e
        })?;
        ctx.target = Some(target);
        ctx.upstream_started = Some(Instant::now());
        let sni = pool
            .targets
            .get(target)
            .map(|t| t.target.host.clone())
            .unwrap_or_default();
        let mut peer = HttpPeer::new(addr, template.tls, sni);
        peer.options = template.options.clone();
        Ok(Box::new(peer))
    }

    /// A connect failure takes the target out of rotation and, when another target is left,
    /// retries there (nothing was sent yet, so even a POST is safe to retry).
    fn fail_to_connect(
        &self,
        _session: &mut Session,
        _peer: &HttpPeer,
        ctx: &mut RequestCtx,
        mut e: Box<Error>,
    ) -> Box<Error> {
        let shared = ctx.shared.clone();
        let portal = ctx
            .portal
            .and_then(|p| Some((shared.pools.get(p)?, shared.config.portals.get(p)?)));
        if let (Some((pool, portal)), Some(target)) = (portal, ctx.target) {
            if let Some(t) = pool.targets.get(target) {
                t.mark(false);
            }
            ctx.failed.push(target);
            let (kind, _) = upstream_failure(&e);
            shared
                .metrics
                .upstream_errors
                .with_label_values(&[&portal.name, kind])
                .inc();
            e.set_retry(pool.select(&ctx.failed).is_some());
        }
        e
    }

    async fn upstream_request_filter(
        &self,
        session: &mut Session,
        upstream: &mut RequestHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let headers = &shared.config.headers;
        match shared
            .hygiene
            .upstream_cookie(&session.req_header().headers)
        {
            None => {}
            Some(None) => {
                upstream.remove_header("cookie");
            }
            Some(Some(cookie)) => {
                upstream.insert_header("cookie", cookie)?;
            }
        }
        if let Some(xff) = shared.hygiene.forwarded_for(
            &session.req_header().headers,
            ctx.client,
            ctx.trusted_proxy,
        ) {
            upstream.insert_header("x-forwarded-for", xff)?;
        }
        if !ctx.trusted_proxy || !upstream.headers.contains_key("x-forwarded-proto") {
            upstream.insert_header("x-forwarded-proto", "https")?;
        }
        if !ctx.trusted_proxy || !upstream.headers.contains_key("x-forwarded-host") {
            if let Some(portal) = ctx.portal.and_then(|p| shared.config.portals.get(p)) {
                upstream.insert_header("x-forwarded-host", portal.host.as_str())?;
            }
        }
        upstream.insert_header(headers.request_id.clone(), &ctx.request_id)?;
        // Strip before set: the client's identity headers went in early_request_filter.
        let portal = ctx.portal.and_then(|p| shared.config.portals.get(p));
        if let (Some(s), Some(auth), Some(portal)) = (&ctx.session, &shared.auth, portal) {
            // Every value from an identity goes through header_safe: any of them may be text.
            upstream.insert_header(headers.user.clone(), header_safe(&s.sub))?;
            upstream.insert_header(headers.email.clone(), header_safe(&s.email))?;
            upstream.insert_header(headers.name.clone(), header_safe(&s.name))?;
            upstream.insert_header(headers.method.clone(), s.method.as_str())?;
            upstream.insert_header(headers.level.clone(), s.level.to_string())?;
            upstream.insert_header(headers.amr.clone(), header_safe(&s.amr.join(" ")))?;
            if let Some(cert) = &s.cert {
                upstream.insert_header(headers.cert_subject.clone(), header_safe(&cert.subject))?;
                upstream.insert_header(headers.cert_issuer.clone(), header_safe(&cert.issuer))?;
                upstream.insert_header(headers.cert_serial.clone(), header_safe(&cert.serial))?;
            }
            if let Some(fp) = &s.cert_fingerprint {
                upstream.insert_header(headers.cert_fingerprint.clone(), header_safe(fp))?;
            }
            let audience = format!("https://{}", portal.host);
            match auth
                .signer
                .sign_cached(s, &audience, prehod_identity::unix_now())
            {
                Ok(jwt) => {
                    upstream.insert_header(headers.assertion.clone(), &*jwt)?;
                }

                // Without its assertion the request does not go on: the portal may rely on it.
                Err(e) => {
                    return Err(Error::explain(
                        ErrorType::InternalError,
                        format!("signing the identity assertion: {e}"),
                    ))
                }
            }
        }
        Ok(())
    }

    /// The gateway's cookies are its own: a portal's `Set-Cookie` for one of them is dropped
    /// (before `response_filter` adds the gateway's).
    async fn upstream_response_filter(
        &self,
        _session: &mut Session,
        upstream: &mut ResponseHeader,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let hygiene = &shared.hygiene;
        let set_cookies = upstream.headers.get_all(http::header::SET_COOKIE);
        if set_cookies
            .iter()
            .any(|v| hygiene.is_gateway_set_cookie(v.as_bytes()))
        {
            let kept: Vec<http::HeaderValue> = set_cookies
                .iter()
                .filter(|v| !hygiene.is_gateway_set_cookie(v.as_bytes()))
                .cloned()
                .collect();
            upstream.remove_header(&http::header::SET_COOKIE);
            for v in kept {
                upstream.append_header(http::header::SET_COOKIE, v)?;
            }
        }
        if let Some(started) = ctx.upstream_started {
            shared
                .metrics
                .upstream_duration
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
        let shared = ctx.shared.clone();
        response.insert_header(shared.config.headers.request_id.clone(), &ctx.request_id)?;
        if !response.headers.contains_key("strict-transport-security") {
            response.insert_header("strict-transport-security", "max-age=31536000")?;
        }
        // The session's idle time was rolled: hand the browser the new cookie.
        if let (Some(rolled), Some(auth)) = (&ctx.rolled, &shared.auth) {
            response.append_header(
                "set-cookie",
                auth.session_cookie(rolled, auth.sessions.absolute().as_secs()),
            )?;
        }
        Ok(())
    }

    /// The one place a failed request becomes a page: upstream failures give the branded
    /// 502/504, a refused request its status; nothing internal is shown.
    async fn fail_to_proxy(
        &self,
        session: &mut Session,
        e: &Error,
        ctx: &mut RequestCtx,
    ) -> FailToProxy {
        let page = match (e.etype(), e.esource()) {
            (ErrorType::HTTPStatus(400), _) => Some(Page::BadRequest),
            (ErrorType::HTTPStatus(_), _) => None,
            (_, ErrorSource::Upstream) => {
                let (kind, page) = upstream_failure(e);
                ctx.upstream_error = Some(kind);
                Some(page)
            }
            _ if client_disconnect(e).is_some() => {
                let kind = client_disconnect(e).unwrap_or("closed");
                metrics::count_client_disconnect(kind);
                tracing::debug!(request_id = %ctx.request_id, error = %e, "client went away");
                return FailToProxy {
                    error_code: 0,
                    can_reuse_downstream: false,
                };
            }
            (_, ErrorSource::Downstream) => Some(Page::BadRequest),
            _ => Some(Page::Internal),
        };
        if ctx.request_id.is_empty() {
            ctx.request_id = uuid::Uuid::new_v4().simple().to_string();
        }
        let code = match page {
            Some(page) => self.send_page(session, page, ctx).await.unwrap_or(0),
            None => {
                let code = match e.etype() {
                    ErrorType::HTTPStatus(code) => *code,
                    _ => 500,
                };
                session
                    .respond_error(code)
                    .await
                    .map(|()| code)
                    .unwrap_or(0)
            }
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
        client_disconnect(e).is_some()
            || matches!(e.etype(), ErrorType::HTTPStatus(code) if (400..500).contains(code))
    }

    async fn logging(&self, session: &mut Session, _e: Option<&Error>, ctx: &mut RequestCtx) {
        let shared = ctx.shared.clone();
        if let Some(connection) = crate::connections::of_session(session) {
            connection.request_done();
        }
        // "Last seen" on the sessions page.
        if let Some(s) = &ctx.session {
            shared
                .sessions_index
                .seen(s, prehod_identity::unix_now(), shared.state.as_ref());
        }
        let status = session.response_written().map_or(0, |r| r.status.as_u16());
        let portal = self.portal_name(ctx).to_owned();
        let m = &shared.metrics;
        m.requests
            .with_label_values(&[portal.as_str(), metrics::status_class(status), ctx.auth])
            .inc();
        let elapsed = ctx.started.elapsed();
        m.request_duration
            .with_label_values(&[portal.as_str()])
            .observe(elapsed.as_secs_f64());
        if ctx.upstream_error.is_some() && ctx.failed.is_empty() {
            if let Some(kind) = ctx.upstream_error {
                m.upstream_errors
                    .with_label_values(&[portal.as_str(), kind])
                    .inc();
            }
        }
        let req = session.req_header();
        let path = loggable_path(req.uri.path_and_query().map_or("/", |p| p.as_str()));
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .or_else(|| req.uri.host())
            .unwrap_or("-");
        let upstream = match (ctx.portal, ctx.target) {
            (Some(p), Some(t)) => shared
                .pools
                .get(p)
                .and_then(|pool| pool.targets.get(t))
                .map(|t| t.target.to_string()),
            _ => None,
        };
        access_log::write(&access_log::AccessEntry {
            request_id: &ctx.request_id,
            portal: &portal,
            method: req.method.as_str(),
            path: &path,
            host,
            status,
            bytes: session.body_bytes_sent(),
            duration_ms: elapsed.as_secs_f64() * 1000.0,
            upstream,
            upstream_error: ctx.upstream_error,
            auth: ctx.auth,
            client: ctx.client.map(|c| c.to_string()),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identity_values_of_any_text_become_valid_header_values() {
        // Why: a raw value with a control character is refused as a header value (a 500), and
        // raw UTF-8 goes out as obs-text that portals read as Latin-1 or drop.
        let mut raw = RequestHeader::build("GET", b"/", None).unwrap();
        assert!(raw.insert_header("x-auth-user", "a\nb").is_err());
        assert_eq!(header_safe("Jan Novak"), "Jan Novak");
        assert_eq!(header_safe("Žan"), "UTF-8''%C5%BDan");
        assert_eq!(
            header_safe("Špela Čeh Žužek"),
            "UTF-8''%C5%A0pela%20%C4%8Ceh%20%C5%BDu%C5%BEek"
        );
        assert_eq!(
            header_safe("žan@bankart.si"),
            "UTF-8''%C5%BEan%40bankart.si"
        );
        // Control characters cannot split the header; an ASCII look-alike of an encoded value
        // is encoded too, so it cannot decode to another name.
        assert_eq!(
            header_safe("a\r\nX-Auth-User: admin"),
            "UTF-8''a%0D%0AX-Auth-User%3A%20admin"
        );
        assert_eq!(header_safe("utf-8''%41dmin"), "UTF-8''utf-8%27%27%2541dmin");
        for value in [
            "Žan",
            "a\r\nb",
            "\u{7f}",
            "tab\there",
            "UTF-8''x",
            "",
            "日本",
        ] {
            let safe = header_safe(value);
            assert!(
                http::HeaderValue::from_str(&safe).is_ok(),
                "{value:?} → {safe:?} is no header value"
            );
            let mut h = RequestHeader::build("GET", b"/", None).unwrap();
            h.insert_header("x-auth-name", safe).unwrap();
        }
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
