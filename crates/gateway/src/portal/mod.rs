//! What the gateway does itself on a portal's host, before (or instead of) forwarding: its own
//! `/.prehod/` paths, the certificate-only check, the decision on the session, and the reply a
//! decision other than "forward" becomes. Plain functions of a [`Request`]; none knows pingora.

pub mod certificate_only;
pub mod decide;
pub mod keep_form;
pub mod own_paths;
pub mod step_up;

use std::sync::Arc;

use bytes::Bytes;
use prehod_config::Portal;
use prehod_identity::session::Session;

use crate::auth::AuthState;
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use decide::Decision;

/// What becomes of a portal request the gateway does not answer before the decision.
#[derive(Debug)]
pub enum Answer {
    /// Forward it upstream, with this session (none on a portal without login) and a rolled
    /// session cookie to set on the response.
    Forward {
        session: Option<Arc<Session>>,
        rolled: Option<String>,
    },
    /// Answer it with this reply.
    Reply(Reply),
}

/// Whether answering `decision` needs the request's body first: a form sent without a
/// session, kept across the login when it is small (`keep_form`).
pub fn wants_body(decision: &Decision, req: &Request<'_>) -> bool {
    matches!(decision, Decision::Redirect { step_up: false, .. })
        && *req.method == http::Method::POST
}

/// The answer to `decision` for `req` (its full URL `url`); `body` is the form read to its end
/// within the limits, when [`wants_body`] asked for it.
pub fn answer(
    shared: &Shared,
    portal: &Portal,
    req: &Request<'_>,
    url: &str,
    decision: Decision,
    body: Option<&Bytes>,
) -> Answer {
    let auth = shared.auth.as_ref();
    match decision {
        // The proxy in front of a forward-auth portal forwards to it, never the gateway.
        Decision::Allow { .. } if portal.forward_auth => Answer::Reply(not_forwarded(shared, req)),
        Decision::Allow { session, rolled } => {
            // Back from the login with a form kept for this URL and bound to this very
            // session by its login: send it again.
            match (&session, auth) {
                (Some(s), Some(auth)) => match resubmit(auth, req, url, s) {
                    Some(reply) => Answer::Reply(reply),
                    None => Answer::Forward { session, rolled },
                },
                _ => Answer::Forward { session, rolled },
            }
        }
        Decision::Redirect { location, step_up } => {
            if step_up {
                step_up::started(shared, portal, req);
            }
            Answer::Reply(redirect(auth, req, url, location, step_up, body))
        }
        Decision::LoginRequired { login, reason } => {
            shared.metrics.denials.with_label_values(&[reason]).inc();
            Answer::Reply(crate::respond::login_required(req, &login, reason))
        }
        Decision::Deny { message, reason } => {
            denied(shared, portal, req, reason);
            Answer::Reply(crate::respond::denial(shared, auth, req, message))
        }
    }
}

/// What a forward-auth portal's host answers at the gateway when the decision is to let the
/// request through: the gateway forwards nothing to such a portal (the proxy in front of it
/// does), so this request came the wrong way — 421, never a pass.
fn not_forwarded(shared: &Shared, req: &Request<'_>) -> Reply {
    let lang = req.lang_by(&shared.lang_cookie);
    Reply::page(
        &shared.pages,
        crate::pages::Page::Misdirected,
        lang,
        req.request_id,
    )
}

/// Counts a decision's denial of `req` on `portal` by its `reason` and writes its audit line.
pub fn denied(shared: &Shared, portal: &Portal, req: &Request<'_>, reason: &'static str) {
    shared.metrics.denials.with_label_values(&[reason]).inc();
    crate::audit::write(&crate::audit::Event {
        event: crate::audit::Kind::Denied,
        outcome: crate::audit::Outcome::Failure,
        reason: Some(reason),
        portal: Some(&portal.name),
        request_id: req.request_id,
        ..Default::default()
    });
}

/// The page that sends a kept form again, when this GET brings one back for `url` bound to
/// session `s`.
fn resubmit(auth: &AuthState, req: &Request<'_>, url: &str, s: &Arc<Session>) -> Option<Reply> {
    if *req.method != http::Method::GET {
        return None;
    }
    if !crate::cookies::may_hold(req.headers, &auth.post_cookie_search) {
        return None;
    }
    let cookie = req.cookie(&auth.post_cookie)?;
    let kept = keep_form::open(&auth.sealer, cookie, url, s, prehod_identity::unix_now())?;
    Some(
        Reply::html(
            200,
            keep_form::resubmit_page(&auth.pages, req.lang(auth), &kept),
        )
        .header(
            "content-security-policy",
            keep_form::content_security_policy(),
        )
        .header("cache-control", "no-store".into())
        .cookie(auth.clear_post_cookie())
        .without_page_headers(),
    )
}

/// The way to the login (or a step-up at Rekono): a form sent without a session is kept when
/// it can be, and a host-only cookie binds the single sign-on to this browser.
fn redirect(
    auth: Option<&AuthState>,
    req: &Request<'_>,
    url: &str,
    mut location: String,
    step_up: bool,
    body: Option<&Bytes>,
) -> Reply {
    let is_post = *req.method == http::Method::POST;
    let mut kept_cookie = None;
    if is_post && !step_up {
        kept_cookie = keep(auth, req, url, body, &mut location);
        if kept_cookie.is_none() {
            location.push_str("&notice=form_not_kept");
        }
    }
    // Host-only cookies: this browser's nonce stays here, its binding goes along, so that
    // only this browser can take the code the login host sends back. (A nonce the browser
    // already has is kept: several tabs log in at once.)
    let nonce_cookie = auth.and_then(|a| {
        matches!(a.cookie_scope, prehod_config::CookieScope::Host).then(|| {
            let (nonce, bind) = crate::sso::binding_for(req.cookie(&a.nonce_cookie));
            location.push_str("&bind=");
            location.push_str(&bind);
            a.sso_nonce_cookie(&nonce)
        })
    });
    // 303: after a POST the browser fetches the login page with GET.
    let mut reply = Reply::status(if is_post { 303 } else { 302 }).header("location", location);
    for cookie in kept_cookie.into_iter().chain(nonce_cookie) {
        reply = reply.cookie(cookie);
    }
    reply
        .header("cache-control", "no-store".into())
        .without_page_headers()
}

/// A form sent without a session, sealed into a cookie for the way back: only a navigation
/// from this portal itself — a form another site (or a sibling host, or another portal) made
/// the browser send is never kept, it would be sent again with the session. The login attempt
/// started from this page carries the binding (added to `location`).
fn keep(
    auth: Option<&AuthState>,
    req: &Request<'_>,
    url: &str,
    body: Option<&Bytes>,
    location: &mut String,
) -> Option<String> {
    let (auth, body) = (auth?, body?);
    let same_site = url::Url::parse(url)
        .is_ok_and(|u| keep_form::from_same_origin(req.headers, &u.origin().ascii_serialization()));
    if !same_site {
        return None;
    }
    let content_type = req
        .headers
        .get(http::header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let (sealed, binding) = keep_form::seal(
        &auth.sealer,
        url,
        content_type,
        body,
        prehod_identity::unix_now(),
    )?;
    location.push_str("&form=");
    location.push_str(&binding);
    Some(auth.post_cookie(&sealed, keep_form::LIFETIME))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::Message;
    use crate::testing::{head, Dev};

    const URL: &str = "https://acq.bankart.localhost/pay";

    fn reply(a: Answer) -> Reply {
        match a {
            Answer::Reply(r) => r,
            Answer::Forward { .. } => panic!("forwarded"),
        }
    }

    #[test]
    fn a_script_without_a_session_gets_json_naming_the_login() {
        let dev = Dev::new();
        let (uri, h) = head("/pay", &[]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-1");
        let d = Decision::LoginRequired {
            login: "https://login.bankart.localhost:8443/?return=x".into(),
            reason: "no_session",
        };
        let r = reply(answer(&dev.shared, dev.portal("acq"), &req, URL, d, None));
        assert_eq!(r.status, 401);
        assert_eq!(
            r.header_value("www-authenticate"),
            Some("Cookie realm=\"prehod\"")
        );
        let json: serde_json::Value = serde_json::from_slice(&r.body).expect("JSON");
        assert_eq!(json["error"], "login_required");
        assert_eq!(json["request_id"], "r-1");
        assert!(!r.page_headers);
    }

    #[test]
    fn a_denial_is_its_page_in_the_request_language() {
        let dev = Dev::new();
        let (uri, h) = head("/pay?lang=en", &[]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-2");
        let d = Decision::Deny {
            message: Message::UserNotAllowed,
            reason: "user_not_allowed",
        };
        let r = reply(answer(&dev.shared, dev.portal("acq"), &req, URL, d, None));
        assert_eq!(r.status, Message::UserNotAllowed.status());
        assert!(r.page_headers);
        let html = std::str::from_utf8(&r.body).expect("UTF-8");
        assert!(html.contains("<html lang=\"en\">"), "{html}");
        assert!(html.contains("r-2"));
    }

    /// A form POSTed to acq without a session, from `origin`: the redirect to the login, and
    /// whether the body was asked for.
    fn post_form(origin: &str) -> (Dev, Reply, bool) {
        let dev = Dev::new();
        let (uri, h) = head(
            "/pay",
            &[
                ("content-type", "application/x-www-form-urlencoded"),
                ("origin", origin),
            ],
        );
        let req = Request::new(&http::Method::POST, &uri, &h, "r-3");
        let d = Decision::Redirect {
            location: "https://login.bankart.localhost:8443/?return=x".into(),
            step_up: false,
        };
        let wanted = wants_body(&d, &req);
        let body = Bytes::from_static(b"amount=10&to=SI56");
        let r = reply(answer(
            &dev.shared,
            dev.portal("acq"),
            &req,
            URL,
            d,
            Some(&body),
        ));
        (dev, r, wanted)
    }

    #[test]
    fn a_form_from_the_portal_itself_is_kept_across_the_login() {
        let (dev, r, wanted) = post_form("https://acq.bankart.localhost");
        assert!(wanted);
        assert_eq!(
            r.status, 303,
            "after a POST the login page is fetched with GET"
        );
        let location = r.header_value("location").expect("location");
        assert!(location.contains("&form="), "{location}");
        let post_cookie = &dev.auth().post_cookie;
        assert!(r.cookies().any(|c| c.starts_with(post_cookie.as_str())));
        assert_eq!(r.header_value("cache-control"), Some("no-store"));
    }

    #[test]
    fn a_form_another_site_made_the_browser_send_is_not_kept() {
        // The attack: a page elsewhere posts a form to the portal; kept, it would be sent
        // again with the person's session after their login.
        let (dev, r, _) = post_form("https://evil.example");
        let location = r.header_value("location").expect("location");
        assert!(location.contains("&notice=form_not_kept"), "{location}");
        assert!(!location.contains("&form="), "{location}");
        let post_cookie = &dev.auth().post_cookie;
        assert!(!r.cookies().any(|c| c.starts_with(post_cookie.as_str())));
    }

    #[test]
    fn a_page_load_redirect_reads_no_body_and_an_allow_is_forwarded() {
        let dev = Dev::new();
        let (uri, h) = head("/pay", &[]);
        let req = Request::new(&http::Method::GET, &uri, &h, "r-5");
        let d = Decision::Redirect {
            location: "https://login.bankart.localhost:8443/?return=x".into(),
            step_up: false,
        };
        assert!(!wants_body(&d, &req));
        let r = reply(answer(&dev.shared, dev.portal("acq"), &req, URL, d, None));
        assert_eq!(r.status, 302);
        let allow = Decision::Allow {
            session: None,
            rolled: None,
        };
        let a = answer(&dev.shared, dev.portal("acq"), &req, URL, allow, None);
        assert!(matches!(a, Answer::Forward { session: None, .. }));
    }
}
