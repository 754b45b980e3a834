//! Logout: the confirmation form, the logout itself (the session and its family ended,
//! Rekono told), and Rekono's back-channel logout.

use super::context::Ctx;
use crate::audit;
use crate::auth::AuthState;
use crate::pages::Message;
use crate::reply::Reply;
use prehod_identity::unix_now;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Seals the session id into the logout form's token: only a page the gateway served to this
/// session can end it.
pub(super) const LOGOUT_PURPOSE: &[u8] = b"prehod logout v1";
/// The CSP of a page with a logout form: the gateway's own, whose `form-action` also admits
/// Rekono's origin — the logout's redirect to Rekono's end-session is part of the form's
/// navigation, and a browser blocks it under `form-action 'self'`.
pub(super) fn logout_form_csp(auth: &AuthState) -> Option<String> {
    let own = crate::pages::PAGE_HEADERS
        .iter()
        .find(|(n, _)| *n == "content-security-policy")?
        .1;
    if !auth.logout_at_provider {
        return None;
    }
    let issuer = url::Url::parse(&auth.oidc.issuer).ok()?;
    let origin = issuer.origin().ascii_serialization();
    Some(own.replace(
        "form-action 'self'",
        &format!("form-action 'self' {origin}"),
    ))
}

/// `GET /logout` only asks: a link or an image on any site must not end the session. The
/// form posts the session's logout token.
pub(super) fn logout_confirmation(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let Some(session) = ctx.browser_session(unix_now()) else {
        // No session to protect: nothing to ask.
        return Reply::redirect(format!("{}/logged-out", auth.login_url))
            .cookie(auth.clear_session_cookie());
    };
    let Ok(token) = auth.sealer.seal(LOGOUT_PURPOSE, session.sid.as_bytes()) else {
        return ctx.message(Message::LoginFailed);
    };
    let body = auth
        .pages
        .logout(ctx.lang, &token, &ctx.switch_url(), ctx.req.request_id);
    let mut resp = Reply::html(Message::LogoutConfirm.status(), body);
    if let Some(csp) = logout_form_csp(auth) {
        resp.headers.push(("content-security-policy", csp));
    }
    resp
}

/// `POST /logout` from the confirmation form: ends the session (and Rekono's) when the form's
/// token was sealed for this session; otherwise refuses and the session stays valid.
pub(super) fn logout(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let now = unix_now();
    let session = ctx.browser_session(now);
    let mut target = format!("{}/logged-out", auth.login_url);
    if let Some(s) = &session {
        let form: HashMap<String, String> = url::form_urlencoded::parse(&ctx.req.body)
            .into_owned()
            .collect();
        let bound = form
            .get("csrf")
            .and_then(|t| auth.sealer.open(LOGOUT_PURPOSE, t).ok())
            .is_some_and(|sid| sid.ct_eq(s.sid.as_bytes()).into());
        if !bound {
            ctx.shared
                .metrics
                .denials
                .with_label_values(&["bad_logout_token"])
                .inc();
            ctx.audit(audit::Event {
                event: crate::audit::Kind::Logout,
                outcome: crate::audit::Outcome::Failure,
                reason: Some("bad_logout_token"),
                sub: Some(&s.sub),
                email: Some(&s.email),
                method: Some(s.method.as_str()),
                ..Default::default()
            });
            let log_out = ctx.log_out_label();
            return ctx.message_action(Message::LogoutRefused, "/logout", &log_out);
        }
        // The session and its family: every session this browser's logins made.
        auth.sessions.end_browser(s, now);
        ctx.audit(audit::Event {
            event: crate::audit::Kind::Logout,
            outcome: crate::audit::Outcome::Success,
            reason: Some("user"),
            sub: Some(&s.sub),
            email: Some(&s.email),
            method: Some(s.method.as_str()),
            level: Some(s.level),
            ..Default::default()
        });
        if auth.logout_at_provider {
            let hint = s.id_token.as_deref().zip(auth.provider());
            if let Some(url) = hint.and_then(|(t, p)| p.end_session_url(t, &target)) {
                target = url;
            }
        }
    }
    Reply::redirect(target).cookie(auth.clear_session_cookie())
}

pub(super) async fn backchannel_logout(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&ctx.req.body)
        .into_owned()
        .collect();
    let bad = |reason: &'static str| {
        ctx.audit(audit::Event {
            event: crate::audit::Kind::Logout,
            outcome: crate::audit::Outcome::Failure,
            reason: Some(reason),
            ..Default::default()
        });
        let mut r = Reply::json(400, &serde_json::json!({"error": "invalid_request"}));
        r.headers.push(("cache-control", "no-store".into()));
        r
    };
    let Some(token) = form.get("logout_token") else {
        return bad("missing_logout_token");
    };
    let Some(provider) = auth.provider() else {
        return bad("rekono_unavailable");
    };
    let now = unix_now();
    match provider.verify_logout_token(token, now).await {
        Ok(logout) => {
            // Seen once here; with shared state, once in the whole fleet.
            if let Some(store) = &ctx.shared.state {
                let ttl = std::time::Duration::from_secs(600);
                if store.claim_once("jti", &logout.jti, ttl).await == Some(false) {
                    tracing::warn!(
                        request_id = ctx.req.request_id,
                        "back-channel logout refused: logout token replayed on another replica"
                    );
                    return bad("invalid_logout_token");
                }
            }
            if let Some(sid) = &logout.sid {
                auth.sessions.revoke_op_sid(sid, now);
            }
            if let Some(sub) = &logout.sub {
                if logout.sid.is_none() {
                    auth.sessions.revoke_sub(sub, now);
                }
            }
            ctx.audit(audit::Event {
                event: crate::audit::Kind::Logout,
                outcome: crate::audit::Outcome::Success,
                reason: Some("back_channel"),
                sub: logout.sub.as_deref(),
                method: Some("rekono"),
                ..Default::default()
            });
            Reply::status(200).header("cache-control", "no-store".into())
        }
        Err(e) => {
            tracing::warn!(request_id = ctx.req.request_id, error = %e, "back-channel logout refused");
            bad("invalid_logout_token")
        }
    }
}
