//! Logout: the confirmation form, the logout itself (the session and its family ended, its
//! provider told), and the providers' back-channel logout (the token's `iss` picks the
//! provider; only its keys are tried, and only its sessions can be named).

use super::context::Ctx;
use crate::audit;
use crate::auth::AuthState;
use crate::pages::Message;
use crate::reply::Reply;
use prehod_identity::session::Session;
use prehod_identity::unix_now;
use std::collections::HashMap;
use subtle::ConstantTimeEq;

/// Seals the session id into the logout form's token: only a page the gateway served to this
/// session can end it.
pub(super) const LOGOUT_PURPOSE: &[u8] = b"prehod logout v1";
/// The CSP of a page with a logout form: the gateway's own, whose `form-action` also admits
/// the origin of the session's provider — the logout's redirect to its end-session is part of
/// the form's navigation, and a browser blocks it under `form-action 'self'`.
pub(super) fn logout_form_csp(auth: &AuthState, session: &Session) -> Option<String> {
    let own = crate::pages::PAGE_HEADERS
        .iter()
        .find(|(n, _)| *n == "content-security-policy")?
        .1;
    let provider = auth.providers.of_session(session)?;
    if !provider.logout_at_provider {
        return None;
    }
    let issuer = url::Url::parse(&provider.settings.issuer).ok()?;
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
    if let Some(csp) = logout_form_csp(auth, &session) {
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
                method: Some(s.method_label()),
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
            method: Some(s.method_label()),
            level: Some(s.level),
            ..Default::default()
        });
        let provider = auth
            .providers
            .of_session(s)
            .filter(|p| p.logout_at_provider);
        if let Some(provider) = provider {
            let hint = s.id_token.as_deref().zip(provider.discovered());
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
    // The token's `iss` (read unverified) picks the provider; only its keys are tried, its
    // `iss` and `aud` required, and only its sessions can be named.
    let Some(issuer) = unverified_issuer(token) else {
        return bad("invalid_logout_token");
    };
    let now = unix_now();
    let mut verified = None;
    let mut last_error = None;
    for candidate in auth.providers.by_issuer(&issuer) {
        let Some(discovered) = candidate.discovered() else {
            continue;
        };
        match discovered.verify_logout_token(token, now).await {
            Ok(logout) => {
                verified = Some((candidate, logout));
                break;
            }
            Err(e) => last_error = Some(e),
        }
    }
    let result = match (verified, last_error) {
        (Some(v), _) => Ok(v),
        (None, Some(e)) => Err(e.to_string()),
        (None, None) => Err(format!("no discovered provider has issuer {issuer:?}")),
    };
    match result {
        Ok((provider, logout)) => {
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
            // The provider's ids as the gateway keeps them (namespaced by the provider).
            if let Some(sid) = &logout.sid {
                auth.sessions.revoke_op_sid(&provider.op_sid(sid), now);
            }
            let sub = logout.sub.as_deref().map(|s| provider.user_id(s));
            if let Some(sub) = &sub {
                if logout.sid.is_none() {
                    auth.sessions.revoke_sub(sub, now);
                }
            }
            ctx.audit(audit::Event {
                event: crate::audit::Kind::Logout,
                outcome: crate::audit::Outcome::Success,
                reason: Some("back_channel"),
                sub: sub.as_deref(),
                method: Some(&provider.id),
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

/// A JWT's `iss`, read without verifying anything: only to pick the provider whose keys then
/// verify the whole token (and its `iss` again). `None`: not a JWT with a string `iss`.
fn unverified_issuer(token: &str) -> Option<String> {
    use base64::Engine;
    let payload = token.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(payload)
        .ok()?;
    let claims: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    claims.get("iss")?.as_str().map(str::to_owned)
}
