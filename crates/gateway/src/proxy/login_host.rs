//! The login hosts' side of `request_filter`: the parts only pingora can give (the body, the
//! handshake's certificate) are read here, then `crate::login`'s handlers answer.

use bytes::Bytes;
use pingora::proxy::Session;
use pingora::{Error, ErrorType, Result};

use super::{handshake, request, Gateway, RequestCtx};
use crate::body::Buffered;
use crate::pages::Page;
use crate::ratelimit::Endpoint;

impl Gateway {
    /// The login host: rate limit, then the small form or logout token this host reads
    /// (within the body budget; the hold gives the memory back after the handler), then
    /// `crate::login::handle`.
    pub(super) async fn serve_login(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let Some(auth) = &shared.auth else {
            return self
                .send_page(session, Page::Misdirected, ctx)
                .await
                .map(drop);
        };
        let client = self.client(session, ctx);
        let refused = {
            let req = request(session, &ctx.request_id).with_client(client);
            let endpoint = Endpoint::on_login_host(req.method, req.path);
            crate::login::limit::refused(&shared, auth, &req, endpoint, None).await
        };
        if let Some(refused) = refused {
            return self.reply(session, ctx, refused).await.map(drop);
        }
        let (body, _hold) = if session.req_header().method == http::Method::POST {
            match self
                .read_body(session, ctx, crate::body::LOGIN_HOST_MAX)
                .await?
            {
                Buffered::Body(body, hold) => (body, Some(hold)),
                Buffered::TooLarge => {
                    let why = "login host request body too large";
                    return Err(Error::explain(ErrorType::HTTPStatus(413), why));
                }
                Buffered::Refused(_) => return self.busy(session, ctx).await,
            }
        } else {
            (Bytes::new(), None)
        };
        let req = request(session, &ctx.request_id)
            .with_client(client)
            .with_body(body);
        let reply = crate::login::handle(&shared, auth, req).await;
        self.reply(session, ctx, reply).await.map(drop)
    }

    /// The certificate-login host: the handshake asked for a certificate; the rate limit (by
    /// address and by the certificate's fingerprint), then `crate::login::certificate`.
    pub(super) async fn serve_cert_login(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<()> {
        let shared = ctx.shared.clone();
        let Some((auth, certs)) = shared
            .auth
            .as_ref()
            .and_then(|a| Some((a, a.certificates.as_ref()?)))
        else {
            return self
                .send_page(session, Page::Misdirected, ctx)
                .await
                .map(drop);
        };
        let client = self.client(session, ctx);
        let presented = handshake(session).and_then(|h| h.client_cert.as_ref());
        let fingerprint = presented
            .and_then(|c| c.leaf.as_deref())
            .map(crate::login::limit::fingerprint);
        let req = request(session, &ctx.request_id).with_client(client);
        let endpoint = Some(Endpoint::CertificateLogin);
        let reply = match crate::login::limit::refused(
            &shared,
            auth,
            &req,
            endpoint,
            fingerprint.as_deref(),
        )
        .await
        {
            Some(refused) => refused,
            None => crate::login::certificate(&shared, auth, certs, presented, req).await,
        };
        self.reply(session, ctx, reply).await.map(drop)
    }

    /// No memory for the body now: 503 with `Retry-After`.
    async fn busy(&self, session: &mut Session, ctx: &RequestCtx) -> Result<()> {
        let lang = crate::pages::request_lang(session.req_header(), &ctx.shared.lang_cookie);
        let reply = crate::reply::Reply::page(&ctx.shared.pages, Page::Busy, lang, &ctx.request_id)
            .header("retry-after", "10".into());
        self.reply(session, ctx, reply).await.map(drop)
    }
}
