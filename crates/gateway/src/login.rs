//! The login host: the Bankart login page, the OIDC start and callback, logout (RP-initiated
//! and back-channel), the gateway's JWKS, and the message pages. Plain async functions over a
//! [`LoginRequest`]; the proxy only reads the request and writes the [`LoginResponse`].

use std::collections::HashMap;
use std::time::Instant;

use bytes::Bytes;
use prehod_identity::oidc::{Attempt, Identity, OidcError};
use prehod_identity::session::{IssueError, Method, Session};
use prehod_identity::unix_now;
use subtle::ConstantTimeEq;

use crate::audit;
use crate::auth::{encode, AuthState};
use crate::fresh_auth::Verdict;
use crate::templates::{
    Action, AppView, Lang, Link, LoginLinks, LoginView, Message, MessageView, SessionView,
};
use crate::Shared;

const ATTEMPT_PURPOSE: &[u8] = b"prehod login attempt v1";
/// Seals the session id into the logout form's token: only a page the gateway served to this
/// session can end it.
const LOGOUT_PURPOSE: &[u8] = b"prehod logout v1";
const ATTEMPT_LIFETIME: u64 = 600;
/// At most this many login attempts (tabs) are kept per browser; older ones are dropped.
const MAX_ATTEMPTS: usize = 5;

pub struct LoginRequest<'a> {
    pub method: &'a http::Method,
    pub path: &'a str,
    pub query: HashMap<String, String>,
    pub headers: &'a http::HeaderMap,
    pub body: Bytes,
    pub request_id: &'a str,
}

impl LoginRequest<'_> {
    /// `?lang=` first, then the remembered choice, then `Accept-Language`.
    pub fn lang(&self, auth: &AuthState) -> Lang {
        Lang::choose(
            self.query.get("lang").map(String::as_str),
            crate::auth::cookie(self.headers, &auth.lang_cookie),
            self.headers
                .get(http::header::ACCEPT_LANGUAGE)
                .and_then(|v| v.to_str().ok()),
        )
    }

    /// The parts of a proxied request the login host's handlers read.
    pub fn from_header<'a>(
        req: &'a pingora::http::RequestHeader,
        body: Bytes,
        request_id: &'a str,
    ) -> LoginRequest<'a> {
        LoginRequest {
            method: &req.method,
            path: req.uri.path(),
            query: req
                .uri
                .query()
                .map(|q| {
                    url::form_urlencoded::parse(q.as_bytes())
                        .into_owned()
                        .collect()
                })
                .unwrap_or_default(),
            headers: &req.headers,
            body,
            request_id,
        }
    }
}

pub struct LoginResponse {
    pub status: u16,
    pub headers: Vec<(&'static str, String)>,
    pub body: Bytes,
}

impl LoginResponse {
    pub(crate) fn html(status: u16, body: String) -> Self {
        Self {
            status,
            headers: vec![("content-type", "text/html; charset=utf-8".into())],
            body: Bytes::from(body),
        }
    }

    fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            status,
            headers: vec![("content-type", "application/json".into())],
            body: Bytes::from(value.to_string()),
        }
    }

    pub(crate) fn redirect(location: String) -> Self {
        Self {
            status: 302,
            headers: vec![("location", location)],
            body: Bytes::new(),
        }
    }

    pub(crate) fn cookie(mut self, value: String) -> Self {
        self.headers.push(("set-cookie", value));
        self
    }
}

struct Ctx<'a, 'r> {
    shared: &'a Shared,
    auth: &'a AuthState,
    req: &'a LoginRequest<'r>,
    lang: Lang,
}

impl<'a, 'r> Ctx<'a, 'r> {
    /// A request's context, in the language it asks for.
    fn new(shared: &'a Shared, auth: &'a AuthState, req: &'a LoginRequest<'r>) -> Self {
        Self {
            shared,
            auth,
            req,
            lang: req.lang(auth),
        }
    }
}

impl Ctx<'_, '_> {
    /// The link to this page in the other language.
    fn switch_url(&self) -> String {
        let other = if self.lang == Lang::Sl { "en" } else { "sl" };
        let mut pairs: Vec<(String, String)> = self
            .req
            .query
            .iter()
            .filter(|(k, _)| *k != "lang")
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        pairs.sort();
        let mut q = url::form_urlencoded::Serializer::new(String::new());
        for (k, v) in &pairs {
            q.append_pair(k, v);
        }
        q.append_pair("lang", other);
        // Query only: a reference that keeps this page's scheme, host and path, whatever the
        // path is (the raw path `//evil.example` made a protocol-relative link off-site).
        format!("?{}", q.finish())
    }

    fn message(&self, m: Message) -> LoginResponse {
        let body = self.auth.pages.message(
            self.lang,
            m,
            &self.switch_url(),
            &self.auth.support_email,
            self.req.request_id,
        );
        LoginResponse::html(m.status(), body)
    }

    fn message_action(&self, m: Message, url: &str, label: &str) -> LoginResponse {
        let body = self.auth.pages.message_action(
            self.lang,
            m,
            Some((url, label)),
            &self.switch_url(),
            &self.auth.support_email,
            self.req.request_id,
        );
        LoginResponse::html(m.status(), body)
    }

    /// A message page with everything a [`MessageView`] carries.
    fn page(&self, view: &MessageView) -> LoginResponse {
        let body = self.auth.pages.page(
            self.lang,
            view,
            &self.switch_url(),
            &self.auth.support_email,
            self.req.request_id,
        );
        LoginResponse::html(view.message.status(), body)
    }

    /// Every application, for the lists on the home and the logged-out page.
    fn apps(&self) -> Vec<AppView> {
        self.shared
            .config
            .portals
            .iter()
            .map(|p| app_view(self.auth, p))
            .collect()
    }

    /// The login page of `return_to` (the home when `None`).
    fn login_page_link(&self, return_to: Option<&str>) -> String {
        match return_to {
            Some(r) if !is_home(self.auth, r) => format!("/?return={}", encode(r)),
            _ => "/".to_owned(),
        }
    }

    /// The certificate-login host's link for `ret` (`return=…&form=…&bind=…` or empty for the
    /// home), when certificate login is configured.
    fn certificate_link(&self, ret: &str, login_bind: &str) -> Option<String> {
        self.auth.certificates.as_ref().map(|c| {
            let sep = if ret.is_empty() { "" } else { "&" };
            format!(
                "{}/?{ret}{sep}lang={}&lbind={login_bind}",
                c.url,
                self.lang.code()
            )
        })
    }

    /// The session of the request's cookie, when it is valid now (and, with host-only
    /// cookies, was made for the login host).
    fn session(&self, now: u64) -> Option<prehod_identity::session::Valid> {
        crate::auth::cookie(self.req.headers, &self.auth.cookie_name)
            .and_then(|c| self.auth.sessions.validate(c, now).ok())
            .filter(|v| v.session.host.as_deref() == self.auth.cookie_host(&self.auth.login_host))
    }

    /// The login host's session of this browser even when it has idled out (see
    /// `Sessions::peek`): what a logout ends, and who a new login must match.
    fn browser_session(&self, now: u64) -> Option<std::sync::Arc<Session>> {
        crate::auth::cookie(self.req.headers, &self.auth.cookie_name)
            .and_then(|c| self.auth.sessions.peek(c, now))
            .filter(|s| s.host.as_deref() == self.auth.cookie_host(&self.auth.login_host))
    }

    fn audit(&self, e: audit::Event<'_>) {
        audit::write(&audit::Event {
            request_id: self.req.request_id,
            ..e
        });
    }

    fn login_failed(&self, reason: &'static str, m: Message) -> LoginResponse {
        self.login_failed_page(reason, &MessageView::new(m))
    }

    /// A failed Rekono login, counted and audited, shown with `view`.
    fn login_failed_page(&self, reason: &'static str, view: &MessageView) -> LoginResponse {
        let metrics = &self.shared.metrics;
        metrics
            .logins
            .with_label_values(&["rekono", "failure"])
            .inc();
        metrics.denials.with_label_values(&[reason]).inc();
        self.audit(audit::Event {
            event: "login",
            outcome: "failure",
            reason: Some(reason),
            method: Some("rekono"),
            ..Default::default()
        });
        self.page(view)
    }
}

pub async fn handle(shared: &Shared, auth: &AuthState, req: LoginRequest<'_>) -> LoginResponse {
    let ctx = Ctx::new(shared, auth, &req);
    // The user's sessions: see `crate::my_sessions`.
    if let Some(resp) = crate::my_sessions::handle(shared, auth, &req, ctx.lang == Lang::Sl).await {
        return resp;
    }
    let mut resp = match (req.method.as_str(), req.path) {
        ("GET" | "HEAD", "/") => login_page(&ctx),
        ("GET", "/oidc/start") => start(&ctx),
        ("GET", "/oidc/callback") => callback(&ctx).await,
        ("GET", "/logout") => logout_confirmation(&ctx),
        ("POST", "/logout") => logout(&ctx),
        ("GET", "/logged-out") => {
            let mut view = MessageView::new(Message::LoggedOut);
            view.apps = ctx.apps();
            ctx.page(&view)
        }
        ("GET", "/step-up") => step_up_page(&ctx),
        ("POST", "/oidc/backchannel-logout") => backchannel_logout(&ctx).await,
        ("GET", "/.well-known/jwks.json") => LoginResponse::json(200, auth.signer.jwks()),
        ("GET", "/certificate") => ctx.message(Message::CertificateNotYet),
        ("GET", p) if p == auth.sso.path() => adopt_sso_code(&ctx),
        _ => ctx.message(Message::NotFound),
    };
    // A language the person chose (not the default from `Accept-Language`) goes along to a
    // portal with its single-sign-on code, so that the portal's own pages speak it too.
    let chosen = req
        .query
        .get("lang")
        .is_some_and(|l| l == "en" || l == "sl")
        || crate::auth::cookie(req.headers, &auth.lang_cookie).is_some();
    if let Some((_, location)) = resp
        .headers
        .iter_mut()
        .find(|(n, l)| chosen && *n == "location" && l.contains(auth.sso.path()))
    {
        location.push_str("&lang=");
        location.push_str(ctx.lang.code());
    }
    if let Some(l) = req.query.get("lang").filter(|l| *l == "en" || *l == "sl") {
        resp = resp.cookie(crate::cookies::set_on_path(
            &auth.lang_cookie,
            l,
            "/",
            31_536_000,
        ));
    }
    resp
}

fn login_page(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    let return_to = match ctx.req.query.get("return") {
        Some(r) => match auth.check_return(r) {
            Some((r, _)) => Some(r),
            None => return ctx.message(Message::BadReturn),
        },
        None => None,
    };
    // Single sign-on: the login host already has a session (host-only cookies), so the
    // portal gets its own at once; the portal still checks its policy (level, method, users)
    // and steps up or refuses by itself. A session that has just expired shows the page.
    if let (Some(return_to), None) = (&return_to, ctx.req.query.get("notice")) {
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
                    && p.methods.contains(&prehod_config::LoginMethod::Rekono)
            }) {
                ctx.shared
                    .metrics
                    .step_ups
                    .with_label_values(&[&portal.name])
                    .inc();
                ctx.audit(audit::Event {
                    event: "step_up",
                    outcome: "started",
                    sub: Some(&valid.session.sub),
                    email: Some(&valid.session.email),
                    portal: Some(&portal.name),
                    method: Some("rekono"),
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
                if let Some((from, _)) =
                    ctx.req.query.get("from").and_then(|f| auth.check_return(f))
                {
                    url.push_str("&from=");
                    url.push_str(&encode(&from));
                }
                return LoginResponse::redirect(url);
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
        .query
        .get("form")
        .filter(|f| crate::preserve::is_binding(f))
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
    let (login_nonce, login_bind) = crate::sso::binding_for(crate::auth::cookie(
        ctx.req.headers,
        crate::sso::NONCE_COOKIE,
    ));
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
    let notice = match ctx.req.query.get("notice").map(String::as_str) {
        Some("expired") => Some(if ctx.lang == Lang::Sl {
            "Vaša seja je potekla. Prijavite se znova."
        } else {
            "Your session has expired. Please log in again."
        }),
        Some("form_not_kept") => Some(if ctx.lang == Lang::Sl {
            "Obrazca, ki ste ga poslali, ni bilo mogoče ohraniti. Po prijavi ga pošljite znova."
        } else {
            "The form you sent could not be kept. Please send it again after logging in."
        }),

        _ => None,
    };
    let allows = |m: prehod_config::LoginMethod| portal.is_none_or(|p| p.methods.contains(&m));
    let mut view = LoginView {
        links,
        notice: notice.map(str::to_owned),
        app: portal.map(|p| app_view(auth, p)),
        hide_rekono: !allows(prehod_config::LoginMethod::Rekono),
        hide_certificate: !allows(prehod_config::LoginMethod::Certificate),
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
                view.session = Some(session_view(ctx.lang, s));
            }
        }
    }
    let logged_in = view.session.is_some();
    let body = auth
        .pages
        .login(ctx.lang, &view, &ctx.switch_url(), &auth.support_email);
    let mut resp = LoginResponse::html(200, body);
    if let Some(csp) = logged_in.then(|| logout_form_csp(auth)).flatten() {
        resp.headers.push(("content-security-policy", csp));
    }
    match (&auth.certificates, &auth.cookie_scope) {
        (Some(_), prehod_config::CookieScope::Host) => {
            resp.cookie(auth.sso_nonce_cookie(&login_nonce))
        }
        _ => resp,
    }
}

/// The CSP of a page with a logout form: the gateway's own, whose `form-action` also admits
/// Rekono's origin — the logout's redirect to Rekono's end-session is part of the form's
/// navigation, and a browser blocks it under `form-action 'self'`.
fn logout_form_csp(auth: &AuthState) -> Option<String> {
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

/// A portal as the lists and the login page show it.
fn app_view(auth: &AuthState, p: &prehod_config::Portal) -> AppView {
    AppView {
        title: p.title.clone(),
        url: format!("{}/", public_origin(auth, &p.host)),
        own_login: p.app_login == prehod_config::AppLogin::Own,
    }
}

/// Who is logged in, in words.
fn session_view(lang: Lang, s: &Session) -> SessionView {
    let method = match (s.method, lang) {
        (Method::Rekono, Lang::Sl) => "Rekono račun",
        (Method::Rekono, Lang::En) => "Rekono account",
        (Method::Certificate, Lang::Sl) => "Certifikat",
        (Method::Certificate, Lang::En) => "Certificate",
    };
    SessionView {
        name: s.name.clone(),
        email: s.email.clone(),
        user: s.sub.clone(),
        method: method.to_owned(),
        level: s.level,
    }
}

/// The login host's home (`https://login…/`): where a login started there returns to.
fn home_url(auth: &AuthState) -> String {
    format!("{}/", auth.login_url)
}

fn is_home(auth: &AuthState, url: &str) -> bool {
    url == home_url(auth)
}

/// Starts a Rekono login: a sealed attempt cookie per tab, then off to Rekono.
fn start(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    // Without `return` the login was started on the login host's home, and returns there.
    let (return_to, min_level) = match ctx.req.query.get("return") {
        None => (home_url(auth), 0),
        Some(r) => {
            let Some((return_to, portal)) = auth.check_return(r) else {
                return ctx.message(Message::BadReturn);
            };
            let Some(portal_cfg) = ctx.shared.config.portals.get(portal) else {
                return ctx.message(Message::BadReturn);
            };
            if !portal_cfg
                .methods
                .contains(&prehod_config::LoginMethod::Rekono)
            {
                return ctx.message(Message::MethodNotAllowed);
            }
            (return_to, portal_cfg.min_level)
        }
    };
    let Some(provider) = auth.provider() else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    // Never below the portal's own minimum, whatever the query says.
    let asked: u8 = ctx
        .req
        .query
        .get("level")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let level = asked.max(min_level);
    let now = unix_now();
    // Rekono speaks the language chosen here, and a step-up names the account logged in.
    let hints = prehod_identity::oidc::Hints {
        ui_locale: Some(ctx.lang.code().to_owned()),
        // Only a live session's e-mail: an idled-out one may be the previous person's at a
        // shared computer.
        login_hint: ctx
            .session(now)
            .map(|v| v.session)
            .filter(|s| s.method == Method::Rekono && !s.email.is_empty())
            .map(|s| s.email.clone()),
        fresh: false,
    };
    let (url, attempt) = provider.start_with(level, return_to, now, &hints);
    let form = ctx
        .req
        .query
        .get("form")
        .filter(|f| crate::preserve::is_binding(f))
        .cloned();
    let bind = query_bind(ctx.req);
    let from = ctx
        .req
        .query
        .get("from")
        .and_then(|f| auth.check_return(f))
        .map(|(f, _)| f);
    let existing: Vec<(String, Option<SealedAttempt>)> = attempt_cookies(ctx)
        .into_iter()
        .map(|(name, value)| (name, open_attempt(auth, &value)))
        .collect();
    let family = Some(attempt_family(ctx, &existing, now));
    let Some(mut resp) = to_rekono(
        auth,
        url,
        &SealedAttempt {
            attempt,
            form,
            bind,
            from,
            family,
        },
    ) else {
        return ctx.message(Message::LoginFailed);
    };
    // Drop the oldest attempts beyond the cap (mod_auth_openidc #331: they must not pile up).
    let mut existing: Vec<(u64, String)> = existing
        .into_iter()
        .map(|(name, a)| (a.map_or(0, |a| a.attempt.created), name))
        .collect();
    existing.sort();
    let excess = (existing.len() + 1).saturating_sub(MAX_ATTEMPTS);
    for (_, name) in existing.into_iter().take(excess) {
        resp = resp.cookie(crate::cookies::set_on_path(&name, "", "/", 0));
    }
    resp
}

/// The redirect to Rekono's authorization `url` with the attempt's cookie; `None` when it
/// could not be sealed.
fn to_rekono(auth: &AuthState, url: String, attempt: &SealedAttempt) -> Option<LoginResponse> {
    let json = serde_json::to_vec(attempt).ok()?;
    let sealed = auth.sealer.seal(ATTEMPT_PURPOSE, &json).ok()?;
    let name = attempt_cookie_name(&auth.attempt_prefix, &attempt.attempt.state);
    // `__Host-` cookies live on `/`: the prefix is what keeps sibling hosts from planting one.
    Some(
        LoginResponse::redirect(url).cookie(crate::cookies::set_on_path(
            &name,
            &sealed,
            "/",
            ATTEMPT_LIFETIME,
        )),
    )
}

/// The session family a new login attempt of this browser joins (see `Session::family`): its
/// live session's; else that of the newest unexpired attempt it started before (two tabs
/// logging in at once, whose callbacks may cross), unless a logout ended it; else a new one.
/// A logout then ends every session those logins issue, whichever cookie the login host kept.
fn attempt_family(
    ctx: &Ctx<'_, '_>,
    existing: &[(String, Option<SealedAttempt>)],
    now: u64,
) -> String {
    if let Some(live) = ctx.browser_session(now) {
        return live.family_id().to_owned();
    }
    existing
        .iter()
        .filter_map(|(_, a)| a.as_ref())
        .filter(|a| now.saturating_sub(a.attempt.created) <= ATTEMPT_LIFETIME)
        .max_by_key(|a| a.attempt.created)
        .and_then(|a| a.family.clone())
        .filter(|f| !ctx.auth.sessions.is_family_revoked(f, now))
        .unwrap_or_else(prehod_identity::random_id)
}

/// The attempt cookie's name: the prefix and the state's first 16 bytes (states are ASCII; any
/// other text keeps its characters up to byte 16, never a split one, and so matches no cookie).
/// Whether `state` can be one the gateway made: 16 to 128 base64url characters.
fn is_state_shaped(state: &str) -> bool {
    (16..=128).contains(&state.len())
        && state
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn attempt_cookie_name(prefix: &str, state: &str) -> String {
    let end = (0..=state.len().min(16))
        .rev()
        .find(|&i| state.is_char_boundary(i))
        .unwrap_or(0);
    format!("{prefix}{}", state.get(..end).unwrap_or_default())
}

fn attempt_cookies(ctx: &Ctx<'_, '_>) -> Vec<(String, String)> {
    crate::cookies::pairs(ctx.req.headers)
        .filter(|(n, _)| n.starts_with(&ctx.auth.attempt_prefix))
        .map(|(n, v)| (n.to_owned(), v.to_owned()))
        .collect()
}

/// The attempt cookie's content: the OIDC attempt, and the binding of a form kept just before
/// it (see [`crate::preserve`]).
#[derive(serde::Serialize, serde::Deserialize)]
struct SealedAttempt {
    #[serde(flatten)]
    attempt: Attempt,
    #[serde(default)]
    form: Option<String>,
    /// The binding of the browser at the portal that sent it here (see [`crate::sso`]).
    #[serde(default)]
    bind: Option<String>,
    /// The application the person came from (a step-up's), for the way back if it fails.
    #[serde(default)]
    from: Option<String>,
    /// The session family the login joins ([`attempt_family`]).
    #[serde(default)]
    family: Option<String>,
}

fn open_attempt(auth: &AuthState, value: &str) -> Option<SealedAttempt> {
    let plain = auth.sealer.open(ATTEMPT_PURPOSE, value).ok()?;
    serde_json::from_slice(&plain).ok()
}

/// At a Rekono login's callback: the `Set-Cookie` that binds the form kept before this login
/// attempt to the session it made, or clears a kept form that is not this login's.
fn bind_kept_form(
    ctx: &Ctx<'_, '_>,
    form: Option<&str>,
    attempt: &Attempt,
    session: &Session,
    over_live_session: bool,
    now: u64,
) -> Option<String> {
    let auth = ctx.auth;
    let kept = crate::auth::cookie(ctx.req.headers, &auth.post_cookie)?;
    let bound = form.filter(|_| !over_live_session).and_then(|f| {
        crate::preserve::bind(
            &auth.sealer,
            kept,
            f,
            &attempt.return_to,
            attempt.created,
            session,
            now,
        )
    });
    Some(match bound {
        Some(v) => auth.post_cookie(&v, crate::preserve::LIFETIME),
        None => auth.clear_post_cookie(),
    })
}

async fn callback(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    let q = &ctx.req.query;
    // The gateway's states are base64url: anything else names no attempt, and so never
    // reaches a cookie name (a response header).
    let state = q.get("state").filter(|s| is_state_shaped(s));
    let name = state.map(|s| attempt_cookie_name(&auth.attempt_prefix, s));
    let sealed = name.as_ref().and_then(|name| {
        attempt_cookies(ctx)
            .into_iter()
            .find(|(n, _)| n == name)
            .and_then(|(_, v)| open_attempt(auth, &v))
            .filter(|a| {
                state.is_some_and(|s| a.attempt.state.as_bytes().ct_eq(s.as_bytes()).into())
            })
    });
    let clear = crate::cookies::set_on_path(name.as_deref().unwrap_or_default(), "", "/", 0);
    if let Some(error) = q.get("error") {
        let resp = provider_refusal(ctx, error, sealed.as_ref());
        // Only an attempt of this browser's is ended.
        return if sealed.is_some() {
            resp.cookie(clear)
        } else {
            resp
        };
    }
    if !q.contains_key("state") {
        return ctx.login_failed("missing_state", Message::LoginFailed);
    }
    let Some(SealedAttempt {
        attempt,
        form,
        bind,
        from,
        family,
    }) = sealed
    else {
        return ctx.login_failed("state_mismatch", Message::LoginFailed);
    };
    let now = unix_now();
    if now.saturating_sub(attempt.created) > ATTEMPT_LIFETIME {
        return ctx
            .login_failed("attempt_expired", Message::LoginFailed)
            .cookie(clear);
    }
    let Some(code) = q.get("code") else {
        return ctx
            .login_failed("missing_code", Message::LoginFailed)
            .cookie(clear);
    };
    let Some(provider) = auth.provider() else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    let started = Instant::now();
    let result = provider
        .finish(code, q.get("iss").map(String::as_str), &attempt, now)
        .await;
    let metrics = &ctx.shared.metrics;
    metrics
        .oidc_duration
        .with_label_values(&["token"])
        .observe(started.elapsed().as_secs_f64());
    let identity = match result {
        Ok(i) => i,
        Err(e) => {
            let (reason, m) = oidc_refusal(&e);
            if matches!(e, OidcError::Unavailable(_)) {
                metrics.oidc_errors.with_label_values(&["token"]).inc();
            }
            tracing::warn!(request_id = ctx.req.request_id, error = %e, "Rekono login failed");
            if m == Message::LevelTooLow {
                let (view, nonce) = level_too_low(ctx, Some(&attempt.return_to), from.as_deref());
                return with_nonce(ctx, ctx.login_failed_page(reason, &view), nonce).cookie(clear);
            }
            return ctx.login_failed(reason, m).cookie(clear);
        }
    };
    // When the person last ended all their sessions, or one of them from the sessions page
    // (read before the browser's session, which that may have ended).
    let revoked_at =
        crate::fresh_auth::fresh_login_required_after(ctx.shared, auth, &identity.sub, now).await;
    // The browser's session even if it idled out on this host (it may be in use on a portal).
    let live = ctx.browser_session(now);
    // A login never replaces the live session of another person: a step-up that comes back
    // with another Rekono account is refused, and the session stays as it was.
    if let Some(s) = live.as_ref().filter(|s| s.sub != identity.sub) {
        metrics
            .logins
            .with_label_values(&["rekono", "failure"])
            .inc();
        metrics.denials.with_label_values(&["other_user"]).inc();
        ctx.audit(audit::Event {
            event: "step_up",
            outcome: "failure",
            reason: Some("other_user"),
            sub: Some(&s.sub),
            email: Some(&s.email),
            method: Some("rekono"),
            level: Some(attempt.level),
            ..Default::default()
        });
        let (_, _, log_out) = Message::LogoutConfirm.text(ctx.lang);
        return ctx
            .message_action(Message::StepUpOtherUser, "/logout", log_out)
            .cookie(clear);
    }
    // A login from before the person ended all their sessions: once more, fresh.
    match crate::fresh_auth::verdict(revoked_at, identity.auth_time, attempt.fresh) {
        Verdict::Accept => {}
        Verdict::AskAgain => {
            let again = SealedAttempt {
                attempt,
                form,
                bind,
                from,
                family,
            };
            return ask_again_fresh(ctx, &identity, again, now).cookie(clear);
        }
        Verdict::Refuse => {
            return ctx
                .login_failed("not_fresh", Message::FreshLoginRequired)
                .cookie(clear)
        }
    }
    // The browser's session family: its live session's, else the attempt's unless a logout
    // ended it meanwhile.
    let family = match &live {
        Some(s) => Some(s.family_id().to_owned()),
        None => family.filter(|f| !auth.sessions.is_family_revoked(f, now)),
    };
    let session = Session {
        sid: String::new(),
        sub: identity.sub,
        name: identity.name,
        email: identity.email,
        method: Method::Rekono,
        amr: identity.amr,
        level: identity.level,
        auth_time: identity.auth_time.unwrap_or(now),
        issued_at: None,
        expires_at: 0,
        idle_until: 0,
        op_sid: identity.op_sid,
        id_token: Some(identity.id_token),
        cert_fingerprint: None,
        cert: None,
        host: None,
        family,
    };
    let (session, _) = match auth.sessions.issue(session, now) {
        Ok(issued) => issued,
        Err(e @ IssueError::RevocationStoreFull { .. }) => {
            tracing::error!(error = %e, "login refused: the revocation store is full");
            return ctx.login_failed("revocation_store_full", Message::LoginFailed);
        }
        Err(IssueError::Seal(_)) => return ctx.login_failed("seal_failed", Message::LoginFailed),
    };
    // The same person logged in again (a step-up): the earlier session ends, so that no
    // portal cookie of it outlives the next logout.
    if let Some(old) = &live {
        auth.sessions.revoke_session(old, now);
    }
    metrics
        .logins
        .with_label_values(&["rekono", "success"])
        .inc();
    let portal = auth
        .check_return(&attempt.return_to)
        .and_then(|(_, p)| ctx.shared.config.portals.get(p))
        .map(|p| p.name.as_str());
    ctx.audit(audit::Event {
        event: "login",
        outcome: "success",
        sub: Some(&session.sub),
        email: Some(&session.email),
        portal,
        method: Some("rekono"),
        level: Some(session.level),
        ..Default::default()
    });
    // Started on the login host's home: its own cookie, and back to the home.
    if is_home(auth, &attempt.return_to) {
        let here = auth.cookie_host(&auth.login_host);
        return match auth.sessions.cookie_for(&session, here) {
            Ok(own) => LoginResponse::redirect(home_url(auth))
                .cookie(auth.session_cookie(&own, auth.sessions.absolute().as_secs()))
                .cookie(clear),
            Err(_) => ctx.login_failed("seal_failed", Message::LoginFailed),
        };
    }
    let form = FormCarry {
        form: form.as_deref(),
        attempt_created: attempt.created,
        over_live_session: live.is_some(),
    };
    let resp = match auth.cookie_scope {
        // One cookie for every host: the login host sees the kept form and binds it here.
        prehod_config::CookieScope::ParentDomain(_) => {
            let kept = bind_kept_form(
                ctx,
                form.form,
                &attempt,
                &session,
                form.over_live_session,
                now,
            );
            signed_in(auth, &session, &attempt.return_to, None, None, None).map(|r| match kept {
                Some(k) => r.cookie(k),
                None => r,
            })
        }
        // Host-only: the kept form is the portal's cookie; the code takes the binding there.
        prehod_config::CookieScope::Host => signed_in(
            auth,
            &session,
            &attempt.return_to,
            Some(&auth.login_host),
            Some(&form),
            bind.as_deref(),
        ),
    };
    match resp {
        Some(resp) => resp.cookie(clear),
        None => ctx.login_failed("seal_failed", Message::LoginFailed),
    }
}

/// Starts the login again, once, asking Rekono for a fresh authentication of the account that
/// came back (see `crate::fresh_auth`); the new attempt keeps the old one's way back.
fn ask_again_fresh(
    ctx: &Ctx<'_, '_>,
    identity: &Identity,
    was: SealedAttempt,
    now: u64,
) -> LoginResponse {
    let Some(provider) = ctx.auth.provider() else {
        return ctx.login_failed("rekono_unavailable", Message::RekonoUnavailable);
    };
    let hints = crate::fresh_auth::hints(ctx.lang.code(), &identity.email);
    let (url, attempt) = provider.start_with(
        was.attempt.level,
        was.attempt.return_to.clone(),
        now,
        &hints,
    );
    ctx.audit(audit::Event {
        event: "login",
        outcome: "started",
        reason: Some("fresh_authentication"),
        sub: Some(&identity.sub),
        email: Some(&identity.email),
        method: Some("rekono"),
        level: Some(attempt.level),
        ..Default::default()
    });
    to_rekono(ctx.auth, url, &SealedAttempt { attempt, ..was })
        .unwrap_or_else(|| ctx.message(Message::LoginFailed))
}

/// Rekono answered the login with an error: say why in words, and offer the way on.
fn provider_refusal(
    ctx: &Ctx<'_, '_>,
    error: &str,
    sealed: Option<&SealedAttempt>,
) -> LoginResponse {
    let return_to = sealed.map(|s| s.attempt.return_to.as_str());
    let description = ctx
        .req
        .query
        .get("error_description")
        .map(String::as_str)
        .unwrap_or_default();
    let sl = ctx.lang == Lang::Sl;
    match error {
        "unmet_authentication_requirements" => {
            let (view, nonce) =
                level_too_low(ctx, return_to, sealed.and_then(|s| s.from.as_deref()));
            with_nonce(ctx, ctx.login_failed_page("level_too_low", &view), nonce)
        }
        // The person went back from Rekono's screens: to the Bankart login page again.
        "access_denied" if description.contains("cancel") => {
            ctx.login_failed("cancelled", Message::Denied);
            LoginResponse::redirect(ctx.login_page_link(return_to))
        }
        _ => {
            // Rekono's own words are not shown (anyone can craft a callback link): the known
            // reasons are said in ours.
            let (reason, why) = if description.contains("too many") {
                (
                    "too_many_attempts",
                    if sl {
                        "Geslo je bilo prevečkrat vpisano napačno, zato je Rekono prijavo prekinil. Preverite e-naslov in geslo ter se prijavite znova; če ste geslo pozabili, ga pri Rekonu ponastavite."
                    } else {
                        "The password was typed wrongly too many times, so Rekono stopped the login. Check your e-mail address and password and log in again; if you have forgotten the password, reset it at Rekono."
                    },
                )
            } else if error == "access_denied" {
                (
                    "denied_by_provider",
                    if sl {
                        "Prijava pri Rekonu ni bila potrjena (na primer zavrnjeno obvestilo OnePass ali preveč napačnih enkratnih gesel)."
                    } else {
                        "The login was not confirmed at Rekono (for example a rejected OnePass notification, or too many wrong one-time passwords)."
                    },
                )
            } else {
                (
                    "denied_by_provider",
                    if sl {
                        "Rekono je prijavo zavrnil."
                    } else {
                        "Rekono refused the login."
                    },
                )
            };
            let mut view = MessageView::new(Message::Denied);
            view.extra.push(why.to_owned());
            view.actions.push(Action {
                url: ctx.login_page_link(return_to),
                label: if sl { "Poskusite znova" } else { "Try again" }.to_owned(),
                id: "retry",
                secondary: false,
            });
            ctx.login_failed_page(reason, &view)
        }
    }
}

/// Adds the single-sign-on nonce cookie a certificate button on the page needs.
fn with_nonce(ctx: &Ctx<'_, '_>, resp: LoginResponse, nonce: Option<String>) -> LoginResponse {
    match nonce {
        Some(n) => resp.cookie(ctx.auth.sso_nonce_cookie(&n)),
        None => resp,
    }
}

/// The certificate-login button for `return_to` when its portal allows certificates, and the
/// nonce cookie it needs (a certificate login hands its session to the login host).
fn certificate_action(
    ctx: &Ctx<'_, '_>,
    return_to: &str,
    portal: &prehod_config::Portal,
    portal_bind: Option<&str>,
) -> Option<(Action, Option<String>)> {
    if !portal
        .methods
        .contains(&prehod_config::LoginMethod::Certificate)
    {
        return None;
    }
    let (nonce, bind) = crate::sso::binding_for(crate::auth::cookie(
        ctx.req.headers,
        crate::sso::NONCE_COOKIE,
    ));
    let mut ret = format!("return={}", encode(return_to));
    if let Some(b) = portal_bind {
        ret.push_str("&bind=");
        ret.push_str(b);
    }
    let url = ctx.certificate_link(&ret, &bind)?;
    let label = crate::templates::texts(ctx.lang).certificate_label();
    let nonce = matches!(ctx.auth.cookie_scope, prehod_config::CookieScope::Host).then_some(nonce);
    Some((
        Action {
            url,
            label: label.to_owned(),
            id: "login-certificate",
            secondary: false,
        },
        nonce,
    ))
}

/// The way back: to the application the person came from, or to the list of applications.
fn back_action(ctx: &Ctx<'_, '_>, from: Option<&str>, not: Option<&str>) -> Action {
    let sl = ctx.lang == Lang::Sl;
    let from = from
        .and_then(|f| ctx.auth.check_return(f))
        .and_then(|(f, p)| ctx.shared.config.portals.get(p).map(|p| (f, p)))
        .filter(|(_, p)| not.is_none_or(|n| n != p.host));
    match from {
        Some((url, p)) => Action {
            url,
            label: format!("{} {}", if sl { "Nazaj v" } else { "Back to" }, p.title),
            id: "back",
            secondary: true,
        },
        None => Action {
            url: ctx.login_page_link(None),
            label: if sl {
                "Na seznam aplikacij"
            } else {
                "To the list of applications"
            }
            .to_owned(),
            id: "back",
            secondary: true,
        },
    }
}

/// The portal of a return URL, with the URL.
fn portal_of<'c>(
    ctx: &Ctx<'c, '_>,
    return_to: Option<&str>,
) -> Option<(String, &'c prehod_config::Portal)> {
    let (r, p) = ctx.auth.check_return(return_to?)?;
    Some((r, ctx.shared.config.portals.get(p)?))
}

/// "Level of assurance too low": which level the application needs, certificate login where
/// the portal allows it, and the way back.
fn level_too_low(
    ctx: &Ctx<'_, '_>,
    return_to: Option<&str>,
    from: Option<&str>,
) -> (MessageView, Option<String>) {
    let sl = ctx.lang == Lang::Sl;
    let mut view = MessageView::new(Message::LevelTooLow);
    let mut nonce = None;
    let portal = portal_of(ctx, return_to);
    if let Some((r, p)) = &portal {
        view.extra.push(if sl {
            format!(
                "Aplikacija {} zahteva stopnjo zaupanja {}; vaš račun Rekono je nima.",
                p.title, p.min_level
            )
        } else {
            format!(
                "{} needs level of assurance {}; your Rekono account does not have it.",
                p.title, p.min_level
            )
        });
        if let Some((action, n)) = certificate_action(ctx, r, p, None) {
            view.actions.push(action);
            nonce = n;
        }
    }
    view.actions
        .push(back_action(ctx, from, portal.map(|(_, p)| p.host.as_str())));
    (view, nonce)
}

/// `GET /step-up?level=…&return=…[&from=…]`: before a step-up, which level the application
/// needs and which the session has; on to Rekono (with the e-mail filled in), or certificate
/// login where the portal allows it, or back.
fn step_up_page(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let q = &ctx.req.query;
    let Some((return_to, portal)) = portal_of(ctx, q.get("return").map(String::as_str)) else {
        return ctx.message(Message::BadReturn);
    };
    // The portal's own level: a `level` in the link could make a genuine page say more.
    let level = portal.min_level;
    let sl = ctx.lang == Lang::Sl;
    let have = ctx.session(unix_now()).map(|v| v.session.level);
    let mut view = MessageView::new(Message::StepUp);
    view.detail = Some(match (have, sl) {
        (Some(h), true) => format!(
            "Aplikacija {} zahteva stopnjo zaupanja {level}, vaša seja ima stopnjo {h}.",
            portal.title
        ),
        (Some(h), false) => format!(
            "{} needs level of assurance {level}; your session has level {h}.",
            portal.title
        ),
        (None, true) => format!(
            "Aplikacija {} zahteva stopnjo zaupanja {level}.",
            portal.title
        ),
        (None, false) => format!("{} needs level of assurance {level}.", portal.title),
    });
    let from = q
        .get("from")
        .and_then(|f| ctx.auth.check_return(f))
        .map(|(f, _)| f);
    let mut start = format!("/oidc/start?level={level}&return={}", encode(&return_to));
    // The portal's binding of this browser goes along (see [`crate::sso`]).
    let bind = query_bind(ctx.req);
    if let Some(b) = &bind {
        start.push_str("&bind=");
        start.push_str(b);
    }
    if let Some(f) = &from {
        start.push_str("&from=");
        start.push_str(&encode(f));
    }
    view.actions.push(Action {
        url: start,
        label: if sl {
            "Nadaljuj pri Rekonu"
        } else {
            "Continue at Rekono"
        }
        .to_owned(),
        id: "step-up-continue",
        secondary: false,
    });
    let mut nonce = None;
    if let Some((mut action, n)) = certificate_action(ctx, &return_to, portal, bind.as_deref()) {
        action.secondary = true;
        view.actions.push(action);
        nonce = n;
    }
    view.actions
        .push(back_action(ctx, from.as_deref(), Some(&portal.host)));
    with_nonce(ctx, ctx.page(&view), nonce)
}

/// What a login tells the portal about a form kept before it (see [`crate::preserve`]).
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
    req: LoginRequest<'_>,
) -> LoginResponse {
    let ctx = Ctx::new(shared, auth, &req);
    let code = req
        .query
        .get("code")
        .map(String::as_str)
        .unwrap_or_default();
    let now = unix_now();
    let nonce = crate::auth::cookie(req.headers, crate::sso::NONCE_COOKIE);
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
            let mut resp = LoginResponse::redirect(redeemed.return_to.clone())
                .cookie(auth.session_cookie(&redeemed.cookie, auth.sessions.absolute().as_secs()));
            // The language chosen on the login host, for this portal's own gateway pages.
            if let Some(l) = req.query.get("lang").filter(|l| *l == "en" || *l == "sl") {
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
                    (Some(f), Some(valid)) if !f.over_live_session => crate::preserve::bind(
                        &auth.sealer,
                        kept,
                        &f.id,
                        &redeemed.return_to,
                        f.attempt_created,
                        &valid.session,
                        now,
                    ),
                    _ => None,
                };
                resp = resp.cookie(match bound {
                    Some(v) => auth.post_cookie(&v, crate::preserve::LIFETIME),
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
                event: "denied",
                outcome: "failure",
                reason: Some(refusal.label()),
                portal: Some(&portal.name),
                ..Default::default()
            });
            login_again(auth, &req, &portal.host)
        }
    }
}

/// `GET /.prehod/sso?code=…` on the login host (after a certificate login on its own host):
/// the login host keeps the session for single sign-on, then sends the browser on to the
/// portal with a code of its own.
fn adopt_sso_code(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    let now = unix_now();
    let code = ctx
        .req
        .query
        .get("code")
        .map(String::as_str)
        .unwrap_or_default();
    let nonce = crate::auth::cookie(ctx.req.headers, crate::sso::NONCE_COOKIE);
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
            return LoginResponse::redirect(format!("{}/", auth.login_url));
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
            let (_, _, log_out) = Message::LogoutConfirm.text(ctx.lang);
            return ctx.message_action(Message::StepUpOtherUser, "/logout", log_out);
        }
        auth.sessions.revoke_session(&live, now);
        let mut joined = (*session).clone();
        joined.family = Some(live.family_id().to_owned());
        let here = auth.cookie_host(&auth.login_host);
        let Ok(c) = auth.sessions.cookie_for(&joined, here) else {
            return ctx.message(Message::LoginFailed);
        };
        (session, cookie) = (std::sync::Arc::new(joined), c);
    }
    let next = redeemed.next_bind.as_deref();
    let max_age = auth.sessions.absolute().as_secs();
    if home {
        return LoginResponse::redirect(return_to).cookie(auth.session_cookie(&cookie, max_age));
    }
    match signed_in(auth, &session, &return_to, None, None, next) {
        Some(resp) => resp.cookie(auth.session_cookie(&cookie, max_age)),
        None => ctx.message(Message::LoginFailed),
    }
}

/// The gateway's own paths on every portal host (under `login.portal_prefix`), for portals to
/// link to: `logout` (to the login host's logout confirmation) and `me` (who the gateway
/// says the user is, as JSON); anything else there is the gateway's "not found".
pub fn portal_path(
    shared: &Shared,
    auth: &AuthState,
    portal: &prehod_config::Portal,
    req: &LoginRequest<'_>,
) -> LoginResponse {
    let rest = req
        .path
        .strip_prefix(auth.portal_prefix.as_str())
        .unwrap_or_default();
    match (req.method.as_str(), rest) {
        ("GET", "logout") => LoginResponse::redirect(format!("{}/logout", auth.login_url)),
        ("GET", "me") => {
            let now = unix_now();
            let session = crate::auth::cookie(req.headers, &auth.cookie_name)
                .and_then(|c| auth.sessions.validate(c, now).ok())
                .filter(|v| v.session.host.as_deref() == auth.cookie_host(&portal.host));
            let mut resp = match session {
                Some(v) => {
                    let s = &v.session;
                    LoginResponse::json(
                        200,
                        &serde_json::json!({
                            "user": s.sub,
                            "name": s.name,
                            "email": s.email,
                            "method": s.method.as_str(),
                            "level": s.level,
                            "portal": portal.name,
                            "logout": format!("{}/logout", auth.login_url),
                        }),
                    )
                }
                None => LoginResponse::json(
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

/// `https://HOST[:port]` of a portal, with the gateway's public port.
fn public_origin(auth: &AuthState, host: &str) -> String {
    match auth.public_port {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
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
) -> Option<LoginResponse> {
    let max_age = auth.sessions.absolute().as_secs();
    match auth.cookie_scope {
        prehod_config::CookieScope::ParentDomain(_) => {
            let cookie = auth.sessions.cookie_for(session, None).ok()?;
            Some(
                LoginResponse::redirect(return_to.to_owned())
                    .cookie(auth.session_cookie(&cookie, max_age)),
            )
        }
        prehod_config::CookieScope::Host => {
            let portal_host = url::Url::parse(return_to).ok()?.host_str()?.to_owned();
            let portal_cookie = auth.sessions.cookie_for(session, Some(&portal_host)).ok()?;
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
            let mut resp = LoginResponse::redirect(url);
            if let Some(here) = here {
                let own = auth.sessions.cookie_for(session, Some(here)).ok()?;
                resp = resp.cookie(auth.session_cookie(&own, max_age));
            }
            Some(resp)
        }
    }
}

/// The binding a host passed along when it sent the browser here (`?bind=`), if well-formed.
fn query_bind(req: &LoginRequest<'_>) -> Option<String> {
    req.query
        .get("bind")
        .filter(|b| crate::sso::is_binding(b))
        .cloned()
}

/// The login page of a portal's root, with a new binding for this browser: the nonce cookie
/// to set (on the current host) and the URL.
fn login_again(auth: &AuthState, req: &LoginRequest<'_>, host: &str) -> LoginResponse {
    let (nonce, bind) =
        crate::sso::binding_for(crate::auth::cookie(req.headers, crate::sso::NONCE_COOKIE));
    let origin = public_origin(auth, host);
    let url = format!(
        "{}&bind={bind}",
        auth.login_page_url(&format!("{origin}/"), None)
    );
    LoginResponse::redirect(url).cookie(auth.sso_nonce_cookie(&nonce))
}

/// The one place a failed Rekono login becomes a reason (audit and metric label) and a page:
/// only an outage says "Rekono is not available"; a bad answer is a failed login.
fn oidc_refusal(e: &OidcError) -> (&'static str, Message) {
    match e {
        OidcError::Unavailable(_) => ("rekono_unavailable", Message::RekonoUnavailable),
        OidcError::LevelTooLow { .. } => ("level_too_low", Message::LevelTooLow),
        OidcError::WrongIssuer(_) => ("wrong_issuer", Message::LoginFailed),
        OidcError::MissingIssuer => ("missing_issuer", Message::LoginFailed),
        OidcError::Refused(_) => ("code_refused", Message::LoginFailed),
        OidcError::InvalidToken(_) => ("invalid_id_token", Message::LoginFailed),
        OidcError::Config(_) => ("configuration", Message::LoginFailed),
        OidcError::NotFresh { .. } => ("not_fresh", Message::FreshLoginRequired),
    }
}

/// `GET /logout` only asks: a link or an image on any site must not end the session. The
/// form posts the session's logout token.
fn logout_confirmation(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    let Some(session) = ctx.browser_session(unix_now()) else {
        // No session to protect: nothing to ask.
        return LoginResponse::redirect(format!("{}/logged-out", auth.login_url))
            .cookie(auth.clear_session_cookie());
    };
    let Ok(token) = auth.sealer.seal(LOGOUT_PURPOSE, session.sid.as_bytes()) else {
        return ctx.message(Message::LoginFailed);
    };
    let body = auth.pages.logout(
        ctx.lang,
        &token,
        &ctx.switch_url(),
        &auth.support_email,
        ctx.req.request_id,
    );
    let mut resp = LoginResponse::html(Message::LogoutConfirm.status(), body);
    if let Some(csp) = logout_form_csp(auth) {
        resp.headers.push(("content-security-policy", csp));
    }
    resp
}

/// `POST /logout` from the confirmation form: ends the session (and Rekono's) when the form's
/// token was sealed for this session; otherwise refuses and the session stays valid.
fn logout(ctx: &Ctx<'_, '_>) -> LoginResponse {
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
                event: "logout",
                outcome: "failure",
                reason: Some("bad_logout_token"),
                sub: Some(&s.sub),
                email: Some(&s.email),
                method: Some(s.method.as_str()),
                ..Default::default()
            });
            let (_, _, log_out) = Message::LogoutConfirm.text(ctx.lang);
            return ctx.message_action(Message::LogoutRefused, "/logout", log_out);
        }
        // The session and its family: every session this browser's logins made.
        auth.sessions.end_browser(s, now);
        ctx.audit(audit::Event {
            event: "logout",
            outcome: "success",
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
    LoginResponse::redirect(target).cookie(auth.clear_session_cookie())
}

async fn backchannel_logout(ctx: &Ctx<'_, '_>) -> LoginResponse {
    let auth = ctx.auth;
    let form: HashMap<String, String> = url::form_urlencoded::parse(&ctx.req.body)
        .into_owned()
        .collect();
    let bad = |reason: &'static str| {
        ctx.audit(audit::Event {
            event: "logout",
            outcome: "failure",
            reason: Some(reason),
            ..Default::default()
        });
        let mut r = LoginResponse::json(400, &serde_json::json!({"error": "invalid_request"}));
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
                event: "logout",
                outcome: "success",
                reason: Some("back_channel"),
                sub: logout.sub.as_deref(),
                method: Some("rekono"),
                ..Default::default()
            });
            let mut r = LoginResponse {
                status: 200,
                headers: Vec::new(),
                body: Bytes::new(),
            };
            r.headers.push(("cache-control", "no-store".into()));
            r
        }
        Err(e) => {
            tracing::warn!(request_id = ctx.req.request_id, error = %e, "back-channel logout refused");
            bad("invalid_logout_token")
        }
    }
}

/// The certificate-login host: the handshake asked for a client certificate; decide, and
/// either issue a session and go back to the portal, or say why not.
pub async fn certificate(
    shared: &Shared,
    auth: &AuthState,
    certs: &crate::auth::CertLogin,
    client: Option<&prehod_identity::cert::Presented>,
    req: LoginRequest<'_>,
) -> LoginResponse {
    let ctx = Ctx::new(shared, auth, &req);
    // Only `GET /` logs in: a favicon fetch or an `<img>` on another site (which a browser
    // answers with the certificate by itself) makes no session and no login event.
    if !matches!(req.method.as_str(), "GET" | "HEAD") || req.path != "/" {
        return ctx.message(Message::NotFound);
    }
    // Without `return`: a certificate login started on the login host's home.
    let (return_to, portal) = match req.query.get("return") {
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
    let checked = check_certificate_for(shared, certs, portal, client, req.request_id).await;
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
                event: "login",
                outcome: "failure",
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
        event: "login",
        outcome: "success",
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
                    .query
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
            .map(LoginResponse::redirect),
        prehod_config::CookieScope::ParentDomain(_) => {
            signed_in(auth, &session, &return_to, None, None, None)
        }
    };
    resp.unwrap_or_else(|| ctx.message(Message::LoginFailed))
}

/// The certificate-login host's refusal: why, in words, the way back to the Bankart login
/// page, and the certificate instructions.
fn certificate_refused(
    ctx: &Ctx<'_, '_>,
    refusal: prehod_identity::cert::Refusal,
    return_to: &str,
) -> LoginResponse {
    let lang = ctx.lang;
    let sl = lang == Lang::Sl;
    let mut view = MessageView::new(Message::CertificateRefused);
    view.detail = Some(crate::templates::certificate_reason(lang, refusal).to_owned());
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
        label: if sl {
            "Nazaj na prijavno stran"
        } else {
            "Back to the login page"
        }
        .to_owned(),
        id: "back",
        secondary: false,
    });
    view.links.push(Link {
        url: ctx.auth.certificate_instructions_url.clone(),
        label: crate::templates::texts(lang)
            .certificate_instructions_label()
            .to_owned(),
        id: "certificate-instructions",
    });
    let mut resp = ctx.page(&view);
    resp.status = 403;
    resp
}

/// Every check of a client certificate for `portal`: the local ones, the portal's allow-list,
/// then the distribution points and OCSP. Counts OCSP latency and errors; the caller counts
/// the outcome.
pub async fn check_certificate(
    shared: &Shared,
    certs: &crate::auth::CertLogin,
    portal: &prehod_config::Portal,
    client: Option<&prehod_identity::cert::Presented>,
    request_id: &str,
) -> Result<prehod_identity::cert::CertIdentity, prehod_identity::cert::Refusal> {
    check_certificate_for(shared, certs, Some(portal), client, request_id).await
}

/// [`check_certificate`]; without a portal (a login on the login host's home) no portal's
/// allow-list applies — each portal checks its own when the session reaches it.
async fn check_certificate_for(
    shared: &Shared,
    certs: &crate::auth::CertLogin,
    portal: Option<&prehod_config::Portal>,
    client: Option<&prehod_identity::cert::Presented>,
    request_id: &str,
) -> Result<prehod_identity::cert::CertIdentity, prehod_identity::cert::Refusal> {
    use prehod_identity::cert::{Presented, Refusal};
    let no_certificate = Presented {
        verified: true,
        ..Presented::default()
    };
    let presented = client.unwrap_or(&no_certificate);
    let id = certs.checker.check(presented, unix_now() as i64)?;
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
        sid: String::new(),
        sub: id.user_id.clone(),
        name: id.name.clone(),
        email: id.email.clone(),
        method: Method::Certificate,
        // RFC 8176: a software-secured key (the browser's certificate store).
        amr: vec!["swk".into()],
        level,
        auth_time: now,
        expires_at: 0,
        idle_until: 0,
        op_sid: None,
        id_token: None,
        cert_fingerprint: Some(id.fingerprint.clone()),
        cert: Some(prehod_identity::session::CertInfo {
            organization: id.organization.clone(),
            organization_id: id.organization_id.clone(),
            subject: id.subject.clone(),
            issuer: id.issuer.clone(),
            serial: id.serial.clone(),
            anchor: id.anchor.clone(),
            not_after: id.not_after,
            revocation_keys: id.revocation_keys.clone(),
            distribution_points: id.distribution_points.clone(),
        }),
        host: None,
        issued_at: None,
        family: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_bad_answer_is_a_failed_login_and_only_an_outage_says_unavailable() {
        let invalid = OidcError::InvalidToken("an ID token without exp".into());
        assert_eq!(
            oidc_refusal(&invalid),
            ("invalid_id_token", Message::LoginFailed)
        );
        assert_eq!(
            oidc_refusal(&OidcError::MissingIssuer),
            ("missing_issuer", Message::LoginFailed)
        );
        assert_eq!(
            oidc_refusal(&OidcError::Unavailable("timeout".into())),
            ("rekono_unavailable", Message::RekonoUnavailable)
        );
    }

    #[test]
    fn attempt_cookie_names_never_split_a_character() {
        assert_eq!(
            attempt_cookie_name("p_", "abcdefghijklmnopqrstuvwxyz"),
            "p_abcdefghijklmnop"
        );
        assert_eq!(attempt_cookie_name("p_", "short"), "p_short");
        // A multi-byte character across byte 16 is left out, not split (this panicked).
        assert_eq!(
            attempt_cookie_name("p_", "aaaaaaaaaaaaaaaé"),
            "p_aaaaaaaaaaaaaaa"
        );
        assert_eq!(attempt_cookie_name("p_", "💥💥💥💥💥"), "p_💥💥💥💥");
        assert_eq!(attempt_cookie_name("p_", ""), "p_");
    }

    #[test]
    fn only_base64url_states_name_an_attempt() {
        assert!(is_state_shaped("abcdefghijklmnop_-ABCD0123"));
        for bad in [
            "short",
            "aaaaaaaaaaaaaaa\0",
            "aaaaaaa\r\nX-Injected: 1",
            "a=b; Max-Age=9;xxxx",
            "aaaaaaaaaaaaaaaé",
        ] {
            assert!(!is_state_shaped(bad), "{bad:?}");
        }
        assert!(!is_state_shaped(&"a".repeat(129)));
    }
}
