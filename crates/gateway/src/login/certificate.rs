//! Certificate login: the certificate-login host's verdict on the presented ACNLB/POSTArCA
//! certificate, the session it gives, and the check a certificate-only portal reuses.

use super::context::{home_url, is_home, Ctx};
use super::sso::{query_bind, signed_in};
use crate::audit;
use crate::auth::{encode, AuthState};
use crate::pages::{Action, Link, Message, MessageView, Text};
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use prehod_identity::session::{IssueError, Method, Session};
use prehod_identity::unix_now;

/// The certificate-login host: the handshake asked for a client certificate; decide, and
/// either issue a session and go back to the portal, or say why not.
pub async fn certificate(
    shared: &Shared,
    auth: &AuthState,
    certs: &crate::auth::CertLogin,
    client: Option<&prehod_identity::cert::Presented>,
    req: Request<'_>,
) -> Reply {
    let ctx = Ctx::new(shared, auth, &req);
    // Only `GET /` logs in: a favicon fetch or an `<img>` on another site (which a browser
    // answers with the certificate by itself) makes no session and no login event.
    if !matches!(req.method.as_str(), "GET" | "HEAD") || req.path != "/" {
        return ctx.message(Message::NotFound);
    }
    // Without `return`: a certificate login started on the login host's home.
    let (return_to, portal) = match req.query().get("return") {
        None => (home_url(auth), None),
        Some(r) => {
            let Some((return_to, portal)) = auth.check_return(r) else {
                return ctx.message(Message::BadReturn);
            };
            let Some(portal) = shared.config.portals.get(portal) else {
                return ctx.message(Message::BadReturn);
            };
            if !portal
                .methods
                .contains(&prehod_config::LoginMethod::Certificate)
            {
                return ctx.message(Message::MethodNotAllowed);
            }
            (return_to, Some(portal))
        }
    };
    let now = unix_now();
    let checked = check_certificate_for(shared, certs, portal, client, None, req.request_id).await;
    let metrics = &shared.metrics;
    let id = match checked {
        Ok(id) => id,
        Err(refusal) => {
            metrics
                .certificates
                .with_label_values(&["failure", refusal.label()])
                .inc();
            metrics
                .logins
                .with_label_values(&["certificate", "failure"])
                .inc();
            ctx.audit(audit::Event {
                event: crate::audit::Kind::Login,
                outcome: crate::audit::Outcome::Failure,
                reason: Some(refusal.label()),
                portal: portal.map(|p| p.name.as_str()),
                method: Some("certificate"),
                ..Default::default()
            });
            return certificate_refused(&ctx, refusal, &return_to);
        }
    };
    let session = certificate_session(&id, certs.level, now);
    let (session, _) = match auth.sessions.issue(session, now) {
        Ok(issued) => issued,
        Err(e) => {
            if matches!(e, IssueError::RevocationStoreFull { .. }) {
                tracing::error!(error = %e, "login refused: the revocation store is full");
            }
            return ctx.message(Message::LoginFailed);
        }
    };
    metrics
        .certificates
        .with_label_values(&["success", "ok"])
        .inc();
    metrics
        .logins
        .with_label_values(&["certificate", "success"])
        .inc();
    ctx.audit(audit::Event {
        event: crate::audit::Kind::Login,
        outcome: crate::audit::Outcome::Success,
        sub: Some(&session.sub),
        email: Some(&session.email),
        portal: portal.map(|p| p.name.as_str()),
        method: Some("certificate"),
        level: Some(session.level),
        ..Default::default()
    });
    let resp = match auth.cookie_scope {
        // Host-only cookies: the login host takes this session too (so the next portal needs
        // no second login), then hands the portal its own.
        prehod_config::CookieScope::Host => auth
            .sessions
            .cookie_for(&session, Some(&auth.login_host))
            .ok()
            .and_then(|own| {
                let lbind = req
                    .query()
                    .get("lbind")
                    .filter(|b| crate::sso::is_binding(b))
                    .cloned()
                    .unwrap_or_default();
                auth.sso
                    .redirect(
                        crate::sso::Issue {
                            via: &auth.login_url,
                            return_to: &return_to,
                            cookie: &own,
                            form: None,
                            bind: &lbind,
                            next_bind: query_bind(&req),
                        },
                        now,
                    )
                    .ok()
            })
            .map(Reply::redirect),
        prehod_config::CookieScope::ParentDomain(_) => {
            signed_in(auth, &session, &return_to, None, None, None)
        }
    };
    resp.unwrap_or_else(|| ctx.message(Message::LoginFailed))
}

/// The certificate-login host's refusal: why, in words, the way back to the Bankart login
/// page, and the certificate instructions.
pub(super) fn certificate_refused(
    ctx: &Ctx<'_, '_>,
    refusal: prehod_identity::cert::Refusal,
    return_to: &str,
) -> Reply {
    let lang = ctx.lang;
    let mut view = MessageView::new(Message::CertificateRefused);
    view.detail = Some(ctx.auth.pages.refusal(ctx.lang, refusal));
    let back = if is_home(ctx.auth, return_to) {
        format!("{}/?lang={}", ctx.auth.login_url, lang.code())
    } else {
        format!(
            "{}/?return={}&lang={}",
            ctx.auth.login_url,
            encode(return_to),
            lang.code()
        )
    };
    view.actions.push(Action {
        url: back,
        label: ctx.text(Text::BackToLoginPage),
        id: "back",
        secondary: false,
    });
    view.links.push(Link {
        url: ctx.auth.certificate_instructions_url.clone(),
        label: ctx.text(Text::CertificateInstructions),
        id: "certificate-instructions",
    });
    let mut resp = ctx.page(&view);
    resp.status = 403;
    resp
}

/// Every check of a client certificate for `portal`: the local ones (kept for the connection
/// in `kept`, see `VerdictCache`), the portal's allow-list, then the distribution points and
/// OCSP. Counts OCSP latency and errors; the caller counts the outcome.
pub async fn check_certificate(
    shared: &Shared,
    certs: &crate::auth::CertLogin,
    portal: &prehod_config::Portal,
    client: Option<&prehod_identity::cert::Presented>,
    kept: Option<&prehod_identity::cert::VerdictCache>,
    request_id: &str,
) -> Result<prehod_identity::cert::CertIdentity, prehod_identity::cert::Refusal> {
    check_certificate_for(shared, certs, Some(portal), client, kept, request_id).await
}

/// [`check_certificate`]; without a portal (a login on the login host's home) no portal's
/// allow-list applies — each portal checks its own when the session reaches it.
pub(super) async fn check_certificate_for(
    shared: &Shared,
    certs: &crate::auth::CertLogin,
    portal: Option<&prehod_config::Portal>,
    client: Option<&prehod_identity::cert::Presented>,
    kept: Option<&prehod_identity::cert::VerdictCache>,
    request_id: &str,
) -> Result<prehod_identity::cert::CertIdentity, prehod_identity::cert::Refusal> {
    use prehod_identity::cert::{Presented, Refusal};
    let no_certificate = Presented {
        verified: true,
        ..Presented::default()
    };
    let presented = client.unwrap_or(&no_certificate);
    let now = unix_now() as i64;
    let id = match (client, kept) {
        (Some(presented), Some(kept)) => certs.checker.check_cached(presented, kept, now)?,
        _ => certs.checker.check(presented, now)?,
    };
    let allowed = portal.is_none_or(|portal| {
        portal
            .allowed_users
            .as_ref()
            .is_none_or(|u| u.contains(&id.user_id))
            && portal.allowed_organisations.as_ref().is_none_or(|o| {
                certs
                    .checker
                    .organisation_allowed(o, &id.organization_id, &id.organization)
            })
    });
    if !allowed {
        return Err(Refusal::UserNotAllowed);
    }
    // The network checks come last, after the chain verified: a forged certificate never
    // makes the gateway fetch the URLs it names.
    crate::revocation_data::remote_checks(shared, certs, &id, presented, request_id).await?;
    Ok(id)
}

/// The session a certificate stands for.
pub fn certificate_session(
    id: &prehod_identity::cert::CertIdentity,
    level: u8,
    now: u64,
) -> Session {
    Session {
        name: id.name.clone(),
        email: id.email.clone(),
        // RFC 8176: a software-secured key (the browser's certificate store).
        amr: vec!["swk".into()],
        auth_time: now,
        cert_fingerprint: Some(id.fingerprint.as_str().into()),
        cert: Some(Box::new(prehod_identity::session::CertInfo {
            organization: id.organization.clone(),
            organization_id: id.organization_id.clone(),
            subject: id.subject.clone(),
            issuer: id.issuer.clone(),
            serial: id.serial.clone(),
            anchor: id.anchor.clone(),
            not_after: id.not_after,
            revocation_keys: id.revocation_keys.clone(),
            distribution_points: id.distribution_points.clone(),
        })),
        ..Session::new(Method::Certificate, id.user_id.clone(), level)
    }
}
