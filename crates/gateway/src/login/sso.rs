//! Single sign-on to the portals: the login host hands a portal a one-time code; the
//! portal host redeems it for the session cookie on its own host.

use super::context::{home_url, is_home, public_origin, Ctx};
use crate::audit;
use crate::auth::AuthState;
use crate::pages::Message;
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use prehod_identity::session::Session;
use prehod_identity::unix_now;

/// What a login tells the portal about a form kept before it (see [`crate::portal::keep_form`]).
pub struct FormCarry<'a> {
    /// The kept form's id the login attempt carried, if any.
    pub form: Option<&'a str>,
    pub attempt_created: u64,
    /// The browser had a live session when it logged in again: its kept form is dropped.
    pub over_live_session: bool,
}

/// `GET /.prehod/sso?code=…` on a portal host: exchanges the single-use code the login host
/// gave for this portal's own session cookie and goes back to the page the user wanted. A
/// code that is forged, stale, for another portal or already used gets no session: the
/// browser starts at the login page again.
pub fn redeem_sso_code(
    shared: &Shared,
    auth: &AuthState,
    portal: &prehod_config::Portal,
    req: &Request<'_>,
) -> Reply {
    let ctx = Ctx::new(shared, auth, req);
    let code = req
        .query()
        .get("code")
        .map(String::as_str)
        .unwrap_or_default();
    let now = unix_now();
    let nonce = crate::auth::cookie(req.headers, &auth.nonce_cookie);
    let mut redeemed = auth.sso.redeem(code, &portal.host, nonce, now);
    // A code never replaces the live session of another person on this portal.
    if let Ok(r) = &redeemed {
        let live = crate::auth::cookie(req.headers, &auth.cookie_name)
            .and_then(|c| auth.sessions.peek(c, now));
        let new = auth.sessions.peek(&r.cookie, now);
        if live.is_some_and(|l| new.is_none_or(|n| n.sub != l.sub)) {
            redeemed = Err(crate::sso::Refusal::OtherUser);
        }
    }
    match redeemed {
        Ok(redeemed) => {
            let mut resp = Reply::redirect(redeemed.return_to.clone())
                .cookie(auth.session_cookie(&redeemed.cookie, auth.sessions.absolute().as_secs()));
            // The language chosen on the login host, for this portal's own gateway pages.
            if let Some(l) = req.query().get("lang").filter(|l| *l == "en" || *l == "sl") {
                resp = resp.cookie(crate::cookies::set_on_path(
                    &auth.lang_cookie,
                    l,
                    "/",
                    31_536_000,
                ));
            }
            // A form kept on this portal before the login: bound to this login's session, or
            // dropped (never replayed by anyone else).
            if let Some(kept) = crate::auth::cookie(req.headers, &auth.post_cookie) {
                let session = auth.sessions.validate(&redeemed.cookie, now).ok();
                let bound = match (&redeemed.form, session) {
                    (Some(f), Some(valid)) if !f.over_live_session => {
                        crate::portal::keep_form::bind(
                            &auth.sealer,
                            kept,
                            &f.id,
                            &redeemed.return_to,
                            f.attempt_created,
                            &valid.session,
                            now,
                        )
                    }
                    _ => None,
                };
                resp = resp.cookie(match bound {
                    Some(v) => auth.post_cookie(&v, crate::portal::keep_form::LIFETIME),
                    None => auth.clear_post_cookie(),
                });
            }
            resp
        }
        Err(refusal) => {
            shared
                .metrics
                .denials
                .with_label_values(&[refusal.label()])
                .inc();
            ctx.audit(audit::Event {
                event: crate::audit::Kind::Denied,
                outcome: crate::audit::Outcome::Failure,
                reason: Some(refusal.label()),
                portal: Some(&portal.name),
                ..Default::default()
            });
            login_again(auth, req, &portal.host)
        }
    }
}

/// `GET /.prehod/sso?code=…` on the login host (after a certificate login on its own host):
/// the login host keeps the session for single sign-on, then sends the browser on to the
/// portal with a code of its own.
pub(super) fn adopt_sso_code(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let now = unix_now();
    let code = ctx
        .req
        .query()
        .get("code")
        .map(String::as_str)
        .unwrap_or_default();
    let nonce = crate::auth::cookie(ctx.req.headers, &auth.nonce_cookie);
    let redeemed = match auth.sso.redeem(code, &auth.login_host, nonce, now) {
        Ok(r) => r,
        Err(refusal) => {
            ctx.shared
                .metrics
                .denials
                .with_label_values(&[refusal.label()])
                .inc();
            // Not this browser's (an attacker's code, or the certificate host reached without
            // the login page): nothing is adopted; the login page starts over.
            return Reply::redirect(format!("{}/", auth.login_url));
        }
    };
    let home = is_home(auth, &redeemed.return_to);
    let return_to = match auth.check_return(&redeemed.return_to) {
        Some((r, _)) => r,
        None if home => home_url(auth),
        None => return ctx.message(Message::BadReturn),
    };
    let Ok(valid) = auth.sessions.validate(&redeemed.cookie, now) else {
        return ctx.message(Message::LoginFailed);
    };
    let (mut session, mut cookie) = (valid.session, redeemed.cookie);
    // Never over another person's session; the same person's earlier one ends, and the new
    // one joins its family (a logout ends both, whichever cookie this host kept).
    if let Some(live) = ctx.browser_session(now) {
        if live.sub != session.sub {
            ctx.shared
                .metrics
                .denials
                .with_label_values(&["other_user"])
                .inc();
            let log_out = ctx.log_out_label();
            return ctx.message_action(Message::StepUpOtherUser, "/logout", &log_out);
        }
        auth.sessions.revoke_session(&live, now);
        let mut joined = (*session).clone();
        joined.family = Some(live.family_id().into());
        let here = auth.cookie_host(&auth.login_host);
        let Ok(c) = auth.sessions.cookie_for(&joined, here) else {
            return ctx.message(Message::LoginFailed);
        };
        (session, cookie) = (std::sync::Arc::new(joined), c);
    }
    let next = redeemed.next_bind.as_deref();
    let max_age = auth.sessions.absolute().as_secs();
    if home {
        return Reply::redirect(return_to).cookie(auth.session_cookie(&cookie, max_age));
    }
    match signed_in(auth, &session, &return_to, None, None, next) {
        Some(resp) => resp.cookie(auth.session_cookie(&cookie, max_age)),
        None => ctx.message(Message::LoginFailed),
    }
}

/// The response after a login (or, on the login page, for a session the login host already
/// has): back to the portal with its session. On the parent domain: one cookie for every
/// host. Host-only cookies: the portal's comes through a single-use code at
/// `/.prehod/sso` (`login.portal_prefix`), and `here` (the login host, when the login happened there) keeps a
/// cookie of its own for the next portal. `None` when sealing failed.
pub fn signed_in(
    auth: &AuthState,
    session: &Session,
    return_to: &str,
    here: Option<&str>,
    form: Option<&FormCarry<'_>>,
    bind: Option<&str>,
) -> Option<Reply> {
    let max_age = auth.sessions.absolute().as_secs();
    match auth.cookie_scope {
        prehod_config::CookieScope::ParentDomain(_) => {
            let cookie = auth.sessions.cookie_for(session, None).ok()?;
            Some(
                Reply::redirect(return_to.to_owned()).cookie(auth.session_cookie(&cookie, max_age)),
            )
        }
        prehod_config::CookieScope::Host => {
            let portal_host = url::Url::parse(return_to).ok()?.host_str()?.to_owned();
            let portal_cookie = auth.sessions.portal_cookie(session, &portal_host).ok()?;
            let form = form.and_then(|f| {
                f.form.map(|id| crate::sso::KeptForm {
                    id: id.to_owned(),
                    attempt_created: f.attempt_created,
                    over_live_session: f.over_live_session,
                })
            });
            // Without the portal's binding the code is refused there, and the portal starts
            // over with one (a round trip, never a session in the wrong browser).
            let url = auth
                .sso
                .redirect(
                    crate::sso::Issue {
                        via: return_to,
                        return_to,
                        cookie: &portal_cookie,
                        form,
                        bind: bind.unwrap_or_default(),
                        next_bind: None,
                    },
                    unix_now(),
                )
                .ok()?;
            let mut resp = Reply::redirect(url);
            if let Some(here) = here {
                let own = auth.sessions.cookie_for(session, Some(here)).ok()?;
                resp = resp.cookie(auth.session_cookie(&own, max_age));
            }
            Some(resp)
        }
    }
}

/// The binding a host passed along when it sent the browser here (`?bind=`), if well-formed.
pub(super) fn query_bind(req: &Request<'_>) -> Option<String> {
    req.query()
        .get("bind")
        .filter(|b| crate::sso::is_binding(b))
        .cloned()
}

/// The login page of a portal's root, with a new binding for this browser: the nonce cookie
/// to set (on the current host) and the URL.
pub(super) fn login_again(auth: &AuthState, req: &Request<'_>, host: &str) -> Reply {
    let (nonce, bind) =
        crate::sso::binding_for(crate::auth::cookie(req.headers, &auth.nonce_cookie));
    let origin = public_origin(auth, host);
    let url = format!(
        "{}&bind={bind}",
        auth.login_page_url(&format!("{origin}/"), None)
    );
    Reply::redirect(url).cookie(auth.sso_nonce_cookie(&nonce))
}
