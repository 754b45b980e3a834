//! The login's paths on a portal host under its `/.prehod/` prefix besides the single
//! sign-on landing — `logout` and `me` — for `crate::portal::own_paths`.

use super::context::{public_origin, Ctx};
use crate::auth::AuthState;
use crate::pages::Message;
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use prehod_identity::unix_now;

/// The gateway's own paths on every portal host (under `login.portal_prefix`), for portals to
/// link to: `logout` (to the login host's logout confirmation) and `me` (who the gateway
/// says the user is, as JSON); anything else there is the gateway's "not found".
pub fn portal_path(
    shared: &Shared,
    auth: &AuthState,
    portal: &prehod_config::Portal,
    req: &Request<'_>,
) -> Reply {
    let rest = req
        .path
        .strip_prefix(auth.portal_prefix.as_str())
        .unwrap_or_default();
    match (req.method.as_str(), rest) {
        ("GET", "logout") => Reply::redirect(format!("{}/logout", auth.login_url)),
        ("GET", "me") => {
            let now = unix_now();
            let session = crate::auth::cookie(req.headers, &auth.cookie_name)
                .and_then(|c| auth.sessions.validate_on_portal(c, now).ok())
                .filter(|v| v.session.host.as_deref() == auth.cookie_host(&portal.host));
            let mut resp = match session {
                Some(v) => {
                    let s = &v.session;
                    Reply::json(
                        200,
                        &serde_json::json!({
                            "user": s.sub,
                            "name": s.name,
                            "email": s.email,
                            "method": s.method_label(),
                            "level": s.level,
                            "portal": portal.name,
                            "logout": format!("{}/logout", auth.login_url),
                        }),
                    )
                }
                None => Reply::json(
                    401,
                    &serde_json::json!({
                        "error": "no_session",
                        "login": auth.login_page_url(
                            &format!("{}/", public_origin(auth, &portal.host)),
                            None
                        ),
                    }),
                ),
            };
            resp.headers.push(("cache-control", "no-store".into()));
            resp
        }
        _ => Ctx::new(shared, auth, req).message(Message::NotFound),
    }
}
