//! The forward-auth route's side of `request_filter`: the request as the handler reads it,
//! `crate::forward_auth::check`, its reply written. Always answered (`Ok(true)`).

use pingora::proxy::Session;
use pingora::Result;

use super::{request, Gateway, RequestCtx};
use crate::metrics;

impl Gateway {
    /// A request for `crate::forward_auth::PATH` on the login host: answered here.
    pub(super) async fn serve_forward_auth(
        &self,
        session: &mut Session,
        ctx: &mut RequestCtx,
    ) -> Result<bool> {
        let shared = ctx.shared.clone();
        let id = ctx.request_id.clone();
        let req = request(session, &id);
        let checked = crate::forward_auth::check(&shared, &req, ctx.trusted_proxy).await;
        // Counted as the portal asked about, else as the login host's.
        (ctx.site, ctx.auth) = (metrics::LOGIN_PORTAL, checked.outcome);
        ctx.portal = checked.portal;
        self.reply(session, ctx, checked.reply).await.map(|_| true)
    }
}
