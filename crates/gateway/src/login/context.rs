//! What every login-host handler reads: the request, the state, the language it asks for
//! ([`Ctx`]), the message pages in that language, and the small views the pages share.

use crate::audit;
use crate::auth::{encode, AuthState};
use crate::pages::{Action, AppView, Lang, Message, MessageView, SessionView, Text};
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;
use prehod_identity::oidc::OidcError;
use prehod_identity::session::{Method, Session};

pub(super) struct Ctx<'a, 'r> {
    pub(super) shared: &'a Shared,
    pub(super) auth: &'a AuthState,
    pub(super) req: &'a Request<'r>,
    pub(super) lang: Lang,
}

impl<'a, 'r> Ctx<'a, 'r> {
    /// A request's context, in the language it asks for.
    pub(super) fn new(shared: &'a Shared, auth: &'a AuthState, req: &'a Request<'r>) -> Self {
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
    pub(super) fn switch_url(&self) -> String {
        let other = if self.lang == Lang::Sl { "en" } else { "sl" };
        let mut pairs: Vec<(String, String)> = self
            .req
            .query()
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

    pub(super) fn message(&self, m: Message) -> Reply {
        let body = self
            .auth
            .pages
            .message(self.lang, m, &self.switch_url(), self.req.request_id);
        Reply::html(m.status(), body)
    }

    pub(super) fn message_action(&self, m: Message, url: &str, label: &str) -> Reply {
        let body = self.auth.pages.message_action(
            self.lang,
            m,
            Some((url, label)),
            &self.switch_url(),
            self.req.request_id,
        );
        Reply::html(m.status(), body)
    }

    /// A message page with everything a [`MessageView`] carries.
    pub(super) fn page(&self, view: &MessageView) -> Reply {
        let body = self
            .auth
            .pages
            .page(self.lang, view, &self.switch_url(), self.req.request_id);
        Reply::html(view.message.status(), body)
    }

    /// A text in the page's language.
    pub(super) fn text(&self, t: Text) -> String {
        self.auth.pages.text(self.lang, t)
    }

    /// A text with its variables, in the page's language.
    pub(super) fn text_with(
        &self,
        t: Text,
        args: &[(&'static str, fluent_bundle::FluentValue<'_>)],
    ) -> String {
        self.auth.pages.text_with(self.lang, t, args)
    }

    /// The "log out" button's label.
    pub(super) fn log_out_label(&self) -> String {
        self.auth
            .pages
            .message_texts(self.lang, Message::LogoutConfirm)
            .2
    }

    /// Every application, for the lists on the home and the logged-out page.
    pub(super) fn apps(&self) -> Vec<AppView> {
        self.shared
            .config
            .portals
            .iter()
            .map(|p| app_view(self.auth, p))
            .collect()
    }

    /// The login page of `return_to` (the home when `None`).
    pub(super) fn login_page_link(&self, return_to: Option<&str>) -> String {
        match return_to {
            Some(r) if !is_home(self.auth, r) => format!("/?return={}", encode(r)),
            _ => "/".to_owned(),
        }
    }

    /// The certificate-login host's link for `ret` (`return=…&form=…&bind=…` or empty for the
    /// home), when certificate login is configured.
    pub(super) fn certificate_link(&self, ret: &str, login_bind: &str) -> Option<String> {
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
    pub(super) fn session(&self, now: u64) -> Option<prehod_identity::session::Valid> {
        crate::auth::cookie(self.req.headers, &self.auth.cookie_name)
            .and_then(|c| self.auth.sessions.validate(c, now).ok())
            .filter(|v| v.session.host.as_deref() == self.auth.cookie_host(&self.auth.login_host))
    }

    /// The login host's session of this browser even when it has idled out (see
    /// `Sessions::peek`): what a logout ends, and who a new login must match.
    pub(super) fn browser_session(&self, now: u64) -> Option<std::sync::Arc<Session>> {
        crate::auth::cookie(self.req.headers, &self.auth.cookie_name)
            .and_then(|c| self.auth.sessions.peek(c, now))
            .filter(|s| s.host.as_deref() == self.auth.cookie_host(&self.auth.login_host))
    }

    pub(super) fn audit(&self, e: audit::Event<'_>) {
        audit::write(&audit::Event {
            request_id: self.req.request_id,
            ..e
        });
    }

    pub(super) fn login_failed(&self, reason: &'static str, m: Message) -> Reply {
        self.login_failed_page(reason, &MessageView::new(m))
    }

    /// A failed OpenID login, counted and audited (under the provider it was for), shown
    /// with `view`.
    pub(super) fn login_failed_page(&self, reason: &'static str, view: &MessageView) -> Reply {
        let metrics = &self.shared.metrics;
        let method = self.provider_label();
        metrics.logins.with_label_values(&[method, "failure"]).inc();
        metrics.denials.with_label_values(&[reason]).inc();
        self.audit(audit::Event {
            event: crate::audit::Kind::Login,
            outcome: crate::audit::Outcome::Failure,
            reason: Some(reason),
            method: Some(method),
            ..Default::default()
        });
        self.page(view)
    }

    /// The provider this login request is about, for labels: the callback path's, else a
    /// configured `provider=` of the query, else the first provider.
    pub(super) fn provider_label(&self) -> &str {
        let providers = &self.auth.providers;
        providers
            .by_callback(self.req.path)
            .or_else(|| {
                self.req
                    .query()
                    .get("provider")
                    .and_then(|id| providers.by_id(id))
            })
            .or_else(|| providers.first())
            .map_or(prehod_identity::oidc::DEFAULT_PROVIDER, |p| p.id.as_str())
    }
}

/// A portal as the lists and the login page show it.
pub(super) fn app_view(auth: &AuthState, p: &prehod_config::Portal) -> AppView {
    AppView {
        title: p.title.clone(),
        url: format!("{}/", public_origin(auth, &p.host)),
        own_login: p.app_login == prehod_config::AppLogin::Own,
    }
}

/// Who is logged in, in words.
pub(super) fn session_view(ctx: &Ctx<'_, '_>, s: &Session) -> SessionView {
    // Another provider's session is named by its button's text.
    let button = ctx
        .auth
        .providers
        .of_session(s)
        .and_then(|p| p.button.as_ref())
        .map(|(sl, en)| if ctx.lang.code() == "en" { en } else { sl });
    let method = match (s.method, button) {
        (Method::Rekono, Some(b)) => b.clone(),
        (Method::Rekono, None) => ctx.text(Text::MethodRekono),
        (Method::Certificate, _) => ctx.text(Text::MethodCertificate),
    };
    SessionView {
        name: s.name.clone(),
        email: s.email.clone(),
        user: s.sub.clone(),
        method,
        level: s.level,
    }
}

/// The login host's home (`https://login…/`): where a login started there returns to.
pub(super) fn home_url(auth: &AuthState) -> String {
    format!("{}/", auth.login_url)
}

pub(super) fn is_home(auth: &AuthState, url: &str) -> bool {
    url == home_url(auth)
}

/// Adds the single-sign-on nonce cookie a certificate button on the page needs.
pub(super) fn with_nonce(ctx: &Ctx<'_, '_>, resp: Reply, nonce: Option<String>) -> Reply {
    match nonce {
        Some(n) => resp.cookie(ctx.auth.sso_nonce_cookie(&n)),
        None => resp,
    }
}

/// The certificate-login button for `return_to` when its portal allows certificates, and the
/// nonce cookie it needs (a certificate login hands its session to the login host).
pub(super) fn certificate_action(
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
    let (nonce, bind) =
        crate::sso::binding_for(crate::auth::cookie(ctx.req.headers, &ctx.auth.nonce_cookie));
    let mut ret = format!("return={}", encode(return_to));
    if let Some(b) = portal_bind {
        ret.push_str("&bind=");
        ret.push_str(b);
    }
    let url = ctx.certificate_link(&ret, &bind)?;
    let label = ctx.text(Text::Certificate);
    let nonce = matches!(ctx.auth.cookie_scope, prehod_config::CookieScope::Host).then_some(nonce);
    Some((
        Action {
            url,
            label,
            id: "login-certificate",
            secondary: false,
        },
        nonce,
    ))
}

/// The way back: to the application the person came from, or to the list of applications.
pub(super) fn back_action(ctx: &Ctx<'_, '_>, from: Option<&str>, not: Option<&str>) -> Action {
    let from = from
        .and_then(|f| ctx.auth.check_return(f))
        .and_then(|(f, p)| ctx.shared.config.portals.get(p).map(|p| (f, p)))
        .filter(|(_, p)| not.is_none_or(|n| n != p.host));
    match from {
        Some((url, p)) => Action {
            url,
            label: ctx.text_with(Text::BackTo, &[("app", p.title.as_str().into())]),
            id: "back",
            secondary: true,
        },
        None => Action {
            url: ctx.login_page_link(None),
            label: ctx.text(Text::ToApplications),
            id: "back",
            secondary: true,
        },
    }
}

/// `https://HOST[:port]` of a portal, with the gateway's public port.
pub(super) fn public_origin(auth: &AuthState, host: &str) -> String {
    match auth.public_port {
        Some(p) => format!("https://{host}:{p}"),
        None => format!("https://{host}"),
    }
}

/// The one place a failed Rekono login becomes a reason (audit and metric label) and a page:
/// only an outage says "Rekono is not available"; a bad answer is a failed login.
pub(super) fn oidc_refusal(e: &OidcError) -> (&'static str, Message) {
    match e {
        OidcError::Unavailable(_) => ("rekono_unavailable", Message::RekonoUnavailable),
        OidcError::LevelTooLow { .. } => ("level_too_low", Message::LevelTooLow),
        OidcError::WrongIssuer(_) => ("wrong_issuer", Message::LoginFailed),
        OidcError::MissingIssuer => ("missing_issuer", Message::LoginFailed),
        OidcError::Refused(_) => ("code_refused", Message::LoginFailed),
        OidcError::InvalidToken(_) => ("invalid_id_token", Message::LoginFailed),
        OidcError::Config(_) => ("configuration", Message::LoginFailed),
        // The provider cannot serve the configured profile: as unusable as an outage (the log
        // says why, at start-up and at each discovery).
        OidcError::Metadata(_) => ("rekono_unavailable", Message::RekonoUnavailable),
        OidcError::NotFresh { .. } => ("not_fresh", Message::FreshLoginRequired),
    }
}
