//! The login host's home: the login page with its methods, or, signed in, the
//! applications and the session with its logout form.

use super::context::{app_view, session_view, Ctx};
use super::logout::{logout_form_csp, LOGOUT_PURPOSE};
use super::sso::{query_bind, signed_in};
use crate::audit;
use crate::auth::encode;
use crate::pages::{LoginLinks, LoginView, Message, ProviderButton, Text};
use crate::reply::Reply;
use prehod_identity::session::Method;
use prehod_identity::unix_now;

pub(super) fn login_page(ctx: &Ctx<'_, '_>) -> Reply {
    let auth = ctx.auth;
    let return_to = match ctx.req.query().get("return") {
        Some(r) => match auth.check_return(r) {
            Some((r, _)) => Some(r),
            None => return ctx.message(Message::BadReturn),
        },
        None => None,
    };
    // Single sign-on: the login host already has a session (host-only cookies), so the
    // portal gets its own at once; the portal still checks its policy (level, method, users)
    // and steps up or refuses by itself. A session that has just expired shows the page.
    if let (Some(return_to), None) = (&return_to, ctx.req.query().get("notice")) {
        if let Some(valid) = ctx.session(unix_now()) {
            let bind = query_bind(ctx.req);
            // Too low a level for the portal: the step-up page at once (it says why, and
            // keeps the way back to where the person came from), not a code the portal
            // would only send back here for it.
            let portal = auth
                .check_return(return_to)
                .and_then(|(_, p)| ctx.shared.config.portals.get(p));
            if let Some(portal) = portal.filter(|p| {
                valid.session.level < p.min_level
                    && valid.session.method == Method::Rekono
                    && p.allows_provider(valid.session.method_label())
            }) {
                ctx.shared
                    .metrics
                    .step_ups
                    .with_label_values(&[&portal.name])
                    .inc();
                ctx.audit(audit::Event {
                    event: crate::audit::Kind::StepUp,
                    outcome: crate::audit::Outcome::Started,
                    sub: Some(&valid.session.sub),
                    email: Some(&valid.session.email),
                    portal: Some(&portal.name),
                    method: Some(valid.session.method_label()),
                    level: Some(portal.min_level),
                    ..Default::default()
                });
                let mut url = format!(
                    "/step-up?level={}&return={}",
                    portal.min_level,
                    encode(return_to)
                );
                if let Some(b) = &bind {
                    url.push_str("&bind=");
                    url.push_str(b);
                }
                if let Some((from, _)) = ctx
                    .req
                    .query()
                    .get("from")
                    .and_then(|f| auth.check_return(f))
                {
                    url.push_str("&from=");
                    url.push_str(&encode(&from));
                }
                return Reply::redirect(url);
            }
            if let Some(resp) = signed_in(
                ctx.auth,
                &valid.session,
                return_to,
                None,
                None,
                bind.as_deref(),
            ) {
                return resp;
            }
        }
    }
    let mut ret = return_to
        .as_deref()
        .map(|r| format!("return={}", encode(r)))
        .unwrap_or_default();
    // A form kept on the way here: its binding goes into the login attempt.
    if let Some(form) = ctx
        .req
        .query()
        .get("form")
        .filter(|f| crate::portal::keep_form::is_binding(f))
    {
        ret.push_str("&form=");
        ret.push_str(form);
    }
    // The portal's binding of this browser goes along to every way of logging in.
    if let Some(bind) = query_bind(ctx.req) {
        ret.push_str("&bind=");
        ret.push_str(&bind);
    }
    // A certificate login ends back here with a code: bound to this browser's own nonce.
    let (login_nonce, login_bind) =
        crate::sso::binding_for(crate::auth::cookie(ctx.req.headers, &auth.nonce_cookie));
    let portal = return_to
        .as_deref()
        .and_then(|r| auth.check_return(r))
        .and_then(|(_, p)| ctx.shared.config.portals.get(p));
    let start_query = if ret.is_empty() {
        String::new()
    } else {
        format!("?{ret}")
    };
    let links = LoginLinks {
        help: auth.help_url.clone(),
        rekono: format!("/oidc/start{start_query}"),
        rekono_instructions: auth.rekono_instructions_url.clone(),
        // The certificate-login host is another origin: the language goes along.
        certificate: ctx
            .certificate_link(&ret, &login_bind)
            .unwrap_or_else(|| format!("/certificate{start_query}")),
        certificate_instructions: auth.certificate_instructions_url.clone(),
    };
    let notice = match ctx.req.query().get("notice").map(String::as_str) {
        Some("expired") => Some(ctx.text(Text::NoticeExpired)),
        Some("form_not_kept") => Some(ctx.text(Text::NoticeFormNotKept)),

        _ => None,
    };
    // The buttons of the providers the application allows (every provider on the home).
    let providers: Vec<ProviderButton> = auth
        .providers
        .iter()
        .filter(|p| portal.is_none_or(|c| c.allows_provider(&p.id)))
        .map(|p| ProviderButton {
            id: p.id.clone(),
            url: format!(
                "/oidc/start?provider={}{}",
                p.id,
                if ret.is_empty() {
                    String::new()
                } else {
                    format!("&{ret}")
                }
            ),
            label: p.button.as_ref().map(|(sl, en)| match ctx.lang.code() {
                "en" => en.clone(),
                _ => sl.clone(),
            }),
            instructions: (p.id == prehod_config::DEFAULT_PROVIDER_ID)
                .then(|| auth.rekono_instructions_url.clone()),
        })
        .collect();
    let mut view = LoginView {
        links,
        notice,
        app: portal.map(|p| app_view(auth, p)),
        hide_rekono: !portal.is_none_or(|p| p.allows_provider(prehod_config::DEFAULT_PROVIDER_ID)),
        // Only a configured certificate login is offered (else `/certificate` could only 503).
        hide_certificate: auth.certificates.is_none()
            || !portal.is_none_or(|p| p.allows_certificate()),
        providers,
        ..LoginView::default()
    };
    // The login host opened directly: its home, with the applications and, when logged in,
    // who the person is and a way to log out.
    if return_to.is_none() {
        view.apps = ctx.apps();
        if let Some(valid) = ctx.session(unix_now()) {
            let s = &valid.session;
            if let Ok(token) = auth.sealer.seal(LOGOUT_PURPOSE, s.sid.as_bytes()) {
                view.logout_csrf = token;
                view.session = Some(session_view(ctx, s));
            }
        }
    }
    let body = auth.pages.login(ctx.lang, &view, &ctx.switch_url());
    let mut resp = Reply::html(200, body);
    let logged_in = view
        .session
        .is_some()
        .then(|| ctx.session(unix_now()))
        .flatten();
    if let Some(csp) = logged_in.and_then(|v| logout_form_csp(auth, &v.session)) {
        resp.headers.push(("content-security-policy", csp));
    }
    match (&auth.certificates, &auth.cookie_scope) {
        (Some(_), prehod_config::CookieScope::Host) => {
            resp.cookie(auth.sso_nonce_cookie(&login_nonce))
        }
        _ => resp,
    }
}
