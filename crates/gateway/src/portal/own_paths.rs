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
    } else if let Some(reply) = crate::forward_auth::sign_in(auth, portal, req) {
        reply
    } else {
        crate::login::portal_path(shared, auth, portal, req)
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{head, Dev};

    async fn ask(dev: &Dev, target: &str) -> Option<Reply> {
        let (uri, h) = head(target, &[]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-own");
        answer(&dev.shared, dev.portal("acq"), &req).await
    }

    #[tokio::test]
    async fn only_the_gateways_prefix_is_answered_and_the_rest_is_the_portals() {
        let dev = Dev::new();
        let prefix = dev.auth().portal_prefix.clone();
        assert!(ask(&dev, "/orders").await.is_none());
        assert!(ask(&dev, "/prehod/logout").await.is_none());
        let logout = ask(&dev, &format!("{prefix}logout"))
            .await
            .expect("answered");
        assert_eq!(logout.status, 302);
        let to = format!("{}/logout", dev.auth().login_url);
        assert_eq!(logout.header_value("location"), Some(to.as_str()));
        let unknown = ask(&dev, &format!("{prefix}no-such"))
            .await
            .expect("answered");
        assert_eq!(unknown.status, 404);
    }
}
