//! The gateway's own paths on a portal's host (`/.prehod/…`, never forwarded): the single
//! sign-on landing that redeems the login host's code, and the portal-side pages of
//! `crate::login` (sessions, logout).

use prehod_config::Portal;

use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;

/// The reply to a request for one of the gateway's own paths; `None` when the path is the
/// portal's (forwarded) or the gateway has no login.
pub async fn answer(shared: &Shared, portal: &Portal, req: &Request<'_>) -> Option<Reply> {
    let auth = shared.auth.as_ref()?;
    if !req.path.starts_with(&auth.portal_prefix) {
        return None;
    }
    Some(if req.path == auth.sso.path() {
        // Single sign-on: the login host sent the browser here with a code.
        crate::state::claim_sso_code(shared, req.query().get("code")).await;
        crate::login::redeem_sso_code(shared, auth, portal, req)
    } else {
        crate::login::portal_path(shared, auth, portal, req)
    })
}
