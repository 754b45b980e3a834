//! The one renderer: every page the gateway serves, from minijinja templates embedded in the
//! binary (`login.templates` names a directory whose files replace them) with the texts of
//! the request's language (see [`super::catalogue`]). Every value is escaped by minijinja's
//! auto-escaping; nothing here writes HTML itself.

use std::path::Path;

use fluent_bundle::FluentValue;
use minijinja::{context, Environment, UndefinedBehavior};

use super::catalogue::{Catalogue, CatalogueError};
use super::keys::{Message, Page, Text};
use super::lang::Lang;
use super::views::{
    Action, AppView, Field, Link, LoginView, MessageView, SessionRow, SessionView, SessionsView,
};

const EMBEDDED: &[(&str, &str)] = &[
    ("base.html", include_str!("../../templates/base.html")),
    ("login.html", include_str!("../../templates/login.html")),
    ("message.html", include_str!("../../templates/message.html")),
    ("logout.html", include_str!("../../templates/logout.html")),
    ("error.html", include_str!("../../templates/error.html")),
    (
        "sessions.html",
        include_str!("../../templates/sessions.html"),
    ),
    (
        "resubmit.html",
        include_str!("../../templates/resubmit.html"),
    ),
];

/// What a request gets if a page cannot be rendered after all (every page was rendered at
/// start-up, so only a template that fails on some values can get here): no detail.
const FAILED: &str = "<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>Bankart</title></head><body><p>Napaka prehoda · Gateway error</p></body></html>\n";

/// A template or catalogue the gateway cannot start with.
#[derive(Debug, thiserror::Error)]
pub enum PagesError {
    #[error("template {name}: {message}")]
    Template { name: String, message: String },
    #[error("catalogue {0}")]
    Catalogue(#[from] CatalogueError),
}

/// The templates and the catalogues, built once at start-up.
pub struct Pages {
    env: Environment<'static>,
    /// By [`Lang::ALL`]'s order.
    catalogues: Vec<Catalogue>,
    /// Where users are sent for help (`login.support_email`).
    support_email: String,
}

impl Pages {
    /// The embedded templates and catalogues, each replaced by a file of the same name in
    /// `dir` if present; every page rendered once in every language, so that a broken
    /// override or a missing text fails here and not on a request.
    pub fn new(dir: Option<&Path>, support_email: &str) -> Result<Self, PagesError> {
        let mut env = Environment::new();
        // A text a template names that the catalogue lacks is an error, not an empty string.
        env.set_undefined_behavior(UndefinedBehavior::SemiStrict);
        for (name, source) in EMBEDDED {
            let template_error = |message: String| PagesError::Template {
                name: (*name).into(),
                message,
            };
            let custom = dir.map(|d| d.join(name)).filter(|p| p.is_file());
            let source: String = match custom {
                Some(path) => {
                    std::fs::read_to_string(&path).map_err(|e| template_error(e.to_string()))?
                }
                None => (*source).to_owned(),
            };
            env.add_template_owned(*name, source)
                .map_err(|e| template_error(e.to_string()))?;
        }
        let catalogues = Lang::ALL
            .iter()
            .map(|l| Catalogue::load(*l, dir))
            .collect::<Result<Vec<_>, _>>()?;
        for a in &catalogues {
            for b in &catalogues {
                a.missing_from(b)?;
            }
        }
        let pages = Self {
            env,
            catalogues,
            support_email: support_email.to_owned(),
        };
        pages.render_all()?;
        Ok(pages)
    }

    /// Every page in every language, with every part a page can have.
    fn render_all(&self) -> Result<(), PagesError> {
        let app = AppView {
            own_login: true,
            ..AppView::default()
        };
        let full = LoginView {
            app: Some(app.clone()),
            apps: vec![app.clone()],
            notice: Some(String::new()),
            ..LoginView::default()
        };
        let signed_in = LoginView {
            session: Some(SessionView::default()),
            ..LoginView {
                apps: vec![app.clone()],
                ..LoginView::default()
            }
        };
        let mut page = MessageView::new(Message::NotFound);
        page.action = Some(("/".into(), "x".into()));
        page.actions.push(Action {
            url: "/".into(),
            label: "x".into(),
            id: "x",
            secondary: true,
        });
        page.links.push(Link {
            url: "/".into(),
            label: "x".into(),
            id: "x",
        });
        page.apps.push(app);
        page.extra.push("x".into());
        let row = |this, certificate| SessionRow {
            this,
            certificate,
            ..SessionRow::default()
        };
        let sessions = SessionsView {
            rows: vec![row(true, false), row(false, true)],
            refused: true,
            ..SessionsView::default()
        };
        let fields = [Field {
            name: "x".into(),
            value: "x".into(),
        }];
        for lang in Lang::ALL {
            self.try_login(lang, &LoginView::default(), "")?;
            self.try_login(lang, &full, "")?;
            self.try_login(lang, &signed_in, "")?;
            for m in Message::ALL {
                self.try_page(lang, &MessageView::new(*m), "", "")?;
            }
            self.try_page(lang, &page, "", "")?;
            self.try_logout(lang, "", "", "")?;
            for p in Page::ALL {
                self.try_error(*p, lang, "")?;
            }
            self.try_sessions(lang, &sessions, "")?;
            self.try_resubmit(lang, "/", &fields, "")?;
        }
        Ok(())
    }

    fn catalogue(&self, lang: Lang) -> Option<&Catalogue> {
        let i = Lang::ALL.iter().position(|l| *l == lang)?;
        self.catalogues.get(i)
    }

    /// A text of the catalogue of `lang` (a button's label, a note).
    pub fn text(&self, lang: Lang, t: Text) -> String {
        self.catalogue(lang).map(|c| c.text(t)).unwrap_or_default()
    }

    /// Why a certificate was refused, in `lang`.
    pub fn refusal(&self, lang: Lang, r: prehod_identity::cert::Refusal) -> String {
        self.catalogue(lang)
            .map(|c| c.refusal(r))
            .unwrap_or_default()
    }

    /// A text with its variables: `&[("app", title.into()), ("level", 20.into())]`.
    pub fn text_with(
        &self,
        lang: Lang,
        t: Text,
        args: &[(&'static str, FluentValue<'_>)],
    ) -> String {
        self.catalogue(lang)
            .map(|c| c.text_with(t, args))
            .unwrap_or_default()
    }

    /// The title, body and next step of `m` in `lang`.
    pub fn message_texts(&self, lang: Lang, m: Message) -> (String, String, String) {
        let (title, body, next) = self
            .catalogue(lang)
            .map_or(("", "", ""), |c| c.page(m.key()));
        (title.to_owned(), body.to_owned(), next.to_owned())
    }

    /// The texts of every page (`t`), and the page's title, body and next step.
    fn texts(&self, lang: Lang, key: &str) -> (minijinja::Value, &str, &str, &str) {
        match self.catalogue(lang) {
            Some(c) => {
                let (title, body, next) = c.page(key);
                (c.simple().clone(), title, body, next)
            }
            None => (minijinja::Value::UNDEFINED, "", "", ""),
        }
    }

    fn render(&self, name: &str, ctx: minijinja::Value) -> Result<String, PagesError> {
        let err = |e: minijinja::Error| PagesError::Template {
            name: name.into(),
            message: e.to_string(),
        };
        self.env
            .get_template(name)
            .map_err(err)?
            .render(ctx)
            .map_err(err)
    }

    fn try_login(
        &self,
        lang: Lang,
        view: &LoginView,
        switch_url: &str,
    ) -> Result<String, PagesError> {
        let links = &view.links;
        let (t, ..) = self.texts(lang, "");
        self.render(
            "login.html",
            context! {
                lang => lang.code(),
                t => t,
                notice => view.notice,
                switch_url => switch_url,
                support_email => &self.support_email,
                request_id => "",
                help_url => &links.help,
                rekono_url => &links.rekono,
                rekono_instructions_url => &links.rekono_instructions,
                certificate_url => &links.certificate,
                certificate_instructions_url => &links.certificate_instructions,
                rekono_allowed => !view.hide_rekono,
                certificate_allowed => !view.hide_certificate,
                providers => &view.providers,
                app => &view.app,
                apps => &view.apps,
                session => &view.session,
                logout_csrf => &view.logout_csrf,
            },
        )
    }

    fn try_page(
        &self,
        lang: Lang,
        view: &MessageView,
        switch_url: &str,
        request_id: &str,
    ) -> Result<String, PagesError> {
        let (t, title, body, next) = self.texts(lang, view.message.key());
        let (action_url, action) = view.action.clone().unzip();
        self.render(
            "message.html",
            context! {
                lang => lang.code(),
                t => t,
                title => title,
                body => view.detail.as_deref().unwrap_or(body),
                next => next,
                extra => &view.extra,
                switch_url => switch_url,
                support_email => &self.support_email,
                request_id => request_id,
                action_url => action_url,
                action => action,
                actions => &view.actions,
                links => &view.links,
                apps => &view.apps,
            },
        )
    }

    fn try_logout(
        &self,
        lang: Lang,
        csrf: &str,
        switch_url: &str,
        request_id: &str,
    ) -> Result<String, PagesError> {
        let (t, title, body, next) = self.texts(lang, Message::LogoutConfirm.key());
        self.render(
            "logout.html",
            context! {
                lang => lang.code(), t => t, title => title, body => body, next => next,
                csrf => csrf, switch_url => switch_url, support_email => &self.support_email,
                request_id => request_id,
            },
        )
    }

    fn try_error(&self, page: Page, lang: Lang, request_id: &str) -> Result<String, PagesError> {
        let (t, title, body, next) = self.texts(lang, page.key());
        self.render(
            "error.html",
            context! {
                lang => lang.code(), t => t, title => title, body => body, next => next,
                status => page.status().as_u16(), request_id => request_id,
                support_email => &self.support_email,
            },
        )
    }

    fn try_sessions(
        &self,
        lang: Lang,
        view: &SessionsView,
        request_id: &str,
    ) -> Result<String, PagesError> {
        let (t, ..) = self.texts(lang, "");
        self.render(
            "sessions.html",
            context! {
                lang => lang.code(), t => t, rows => &view.rows, csrf => &view.csrf,
                refused => view.refused, request_id => request_id,
                support_email => &self.support_email,
            },
        )
    }

    fn try_resubmit(
        &self,
        lang: Lang,
        action: &str,
        fields: &[Field],
        script: &str,
    ) -> Result<String, PagesError> {
        let (t, ..) = self.texts(lang, "");
        self.render(
            "resubmit.html",
            context! {
                lang => lang.code(), t => t, action => action, fields => fields,
                script => script, support_email => &self.support_email,
            },
        )
    }

    /// The page of a failed render: logged, and the request gets [`FAILED`].
    fn or_failed(result: Result<String, PagesError>) -> String {
        result.unwrap_or_else(|e| {
            tracing::error!(error = %e, "a page could not be rendered");
            FAILED.to_owned()
        })
    }

    /// The gateway's own error page `page` (on any host). `request_id` is printed so support
    /// can find the request in the logs.
    pub fn error(&self, page: Page, lang: Lang, request_id: &str) -> String {
        Self::or_failed(self.try_error(page, lang, request_id))
    }

    /// The logout confirmation: a form that posts `csrf` (the session's logout token).
    pub fn logout(&self, lang: Lang, csrf: &str, switch_url: &str, request_id: &str) -> String {
        Self::or_failed(self.try_logout(lang, csrf, switch_url, request_id))
    }

    pub fn login(&self, lang: Lang, view: &LoginView, switch_url: &str) -> String {
        Self::or_failed(self.try_login(lang, view, switch_url))
    }

    /// A message page with everything it can carry: a more specific body, notes, buttons,
    /// links and the list of applications.
    pub fn page(
        &self,
        lang: Lang,
        view: &MessageView,
        switch_url: &str,
        request_id: &str,
    ) -> String {
        Self::or_failed(self.try_page(lang, view, switch_url, request_id))
    }

    /// A message page whose body says something more specific (a certificate refusal's reason).
    pub fn message_detail(
        &self,
        lang: Lang,
        m: Message,
        detail: &str,
        switch_url: &str,
        request_id: &str,
    ) -> String {
        let view = MessageView {
            detail: Some(detail.to_owned()),
            ..MessageView::new(m)
        };
        self.page(lang, &view, switch_url, request_id)
    }

    pub fn message(&self, lang: Lang, m: Message, switch_url: &str, request_id: &str) -> String {
        self.message_action(lang, m, None, switch_url, request_id)
    }

    /// A message page with a button: `action` is its URL and label.
    pub fn message_action(
        &self,
        lang: Lang,
        m: Message,
        action: Option<(&str, &str)>,
        switch_url: &str,
        request_id: &str,
    ) -> String {
        let view = MessageView {
            action: action.map(|(u, l)| (u.to_owned(), l.to_owned())),
            ..MessageView::new(m)
        };
        self.page(lang, &view, switch_url, request_id)
    }

    /// The sessions page (`GET /sessions` on the login host).
    pub fn sessions(&self, lang: Lang, view: &SessionsView, request_id: &str) -> String {
        Self::or_failed(self.try_sessions(lang, view, request_id))
    }

    /// The page that posts `fields` to `action` again after a login; `script` submits it.
    pub fn resubmit(&self, lang: Lang, action: &str, fields: &[Field], script: &str) -> String {
        Self::or_failed(self.try_resubmit(lang, action, fields, script))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pages::views::LoginLinks;

    fn pages() -> Pages {
        Pages::new(None, "helpdesk@bankart.si").unwrap()
    }

    #[test]
    fn pages_render_and_escape() {
        let pages = pages();
        let view = LoginView {
            links: LoginLinks::default(),
            notice: Some("<b>seja</b>".into()),
            providers: vec![
                crate::pages::ProviderButton {
                    id: "rekono".into(),
                    url: "/oidc/start?return=x&y=\"z\"".into(),
                    label: None,
                    instructions: Some("https://rekono.si/".into()),
                },
                crate::pages::ProviderButton {
                    id: "staff".into(),
                    url: "/oidc/start?provider=staff".into(),
                    label: Some("Zaposleni <Bankart>".into()),
                    instructions: None,
                },
            ],
            ..Default::default()
        };
        let html = pages.login(Lang::Sl, &view, "?lang=en");
        assert!(html.contains("Pozdravljeni na prijavni strani Bankart"));
        assert!(
            html.contains("Prijava z Rekono računom") && html.contains("Prijava s certifikatom")
        );
        assert!(
            html.contains("id=\"login-staff\"") && html.contains("Zaposleni &lt;Bankart&gt;"),
            "each provider's button, its text escaped: {html}"
        );
        assert!(
            html.contains("&lt;b&gt;seja") && !html.contains("<b>seja"),
            "notices are escaped"
        );
        assert!(!html.contains("y=\"z\""), "attributes are escaped");
        assert!(
            html.contains("<svg") && html.contains(">Bankart</title>"),
            "the logo"
        );
        assert!(
            html.contains("mailto:helpdesk@bankart.si"),
            "the support address"
        );
        let en = pages.message(Lang::En, Message::LevelTooLow, "?lang=sl", "req-1");
        assert!(en.contains("Level of assurance too low") && en.contains("req-1"));
    }

    #[test]
    fn error_pages_carry_status_id_support_and_one_language() {
        let pages = Pages::new(None, "pomoc@example.si").unwrap();
        let html = pages.error(Page::UpstreamUnavailable, Lang::Sl, "req-<1>");
        assert!(html.contains("Aplikacija trenutno ni dosegljiva"));
        assert!(!html.contains("The application is not available"));
        assert!(html.contains("req-&lt;1&gt;"));
        assert!(html.contains("Koda 502"));
        assert!(
            html.contains("mailto:pomoc@example.si"),
            "the configured address"
        );
        assert!(!html.contains("helpdesk@bankart.si"));
        let en = pages.error(Page::UpstreamUnavailable, Lang::En, "r");
        assert!(en.contains("The application is not available") && en.contains("lang=\"en\""));
        assert!(!en.contains("Aplikacija"));
    }

    /// Every page in every language: no text left out, no text of the other language, no
    /// variable left unfilled.
    #[test]
    fn every_page_renders_in_every_language() {
        let pages = pages();
        pages.render_all().unwrap();
        for lang in Lang::ALL {
            let other = lang.other();
            let mut htmls = vec![
                pages.login(lang, &LoginView::default(), ""),
                pages.logout(lang, "", "", ""),
                pages.sessions(lang, &SessionsView::default(), ""),
                pages.resubmit(lang, "/", &[], ""),
            ];
            htmls.extend(Message::ALL.iter().map(|m| pages.message(lang, *m, "", "")));
            htmls.extend(Page::ALL.iter().map(|p| pages.error(*p, lang, "")));
            for html in &htmls {
                assert!(
                    html.contains(&format!("<html lang=\"{}\"", lang.code())),
                    "{html}"
                );
                assert!(!html.contains("{ $") && !html.contains("{{"), "{html}");
            }
            let brand = pages.message_texts(other, Message::NotFound).0;
            assert!(htmls.iter().all(|h| !h.contains(&brand)), "{brand}");
        }
    }

    #[test]
    fn the_sessions_page_marks_this_session_and_escapes_the_rest() {
        let view = SessionsView {
            rows: vec![
                SessionRow {
                    sid: "s<1>".into(),
                    issued: "2026-12-01 12:08 UTC".into(),
                    this: true,
                    level: 20,
                    ..SessionRow::default()
                },
                SessionRow {
                    sid: "s2".into(),
                    certificate: true,
                    ..SessionRow::default()
                },
                SessionRow {
                    sid: "s3".into(),
                    provider: Some("Bankart <staff>".into()),
                    ..SessionRow::default()
                },
            ],
            csrf: "t\"k".into(),
            refused: false,
        };
        let html = pages().sessions(Lang::En, &view, "rid");
        assert!(html.contains("<tr class=\"this-session\"><td>2026-12-01 12:08 UTC</td><td>Rekono</td><td>20</td>"), "{html}");
        assert!(html.contains("this session <form"), "{html}");
        assert!(html.contains("name=\"sid\" value=\"s&lt;1&gt;\""), "{html}");
        assert!(html.contains("<tr><td></td><td>certificate</td>"), "{html}");
        // Another provider's session by its own (escaped) name, not "Rekono".
        assert!(
            html.contains("<tr><td></td><td>Bankart &lt;staff&gt;</td>"),
            "{html}"
        );
        assert!(html.contains("value=\"t&quot;k\"") && !html.contains("t\"k"));
        assert!(!html.contains("class=\"notice\""));
    }

    #[test]
    fn the_resubmit_page_speaks_the_language_and_escapes_the_fields() {
        let fields = [Field {
            name: "a\"b".into(),
            value: "<x>".into(),
        }];
        let html = pages().resubmit(Lang::En, "/form?x=1&y=2", &fields, "S();");
        assert!(html.contains("<html lang=\"en\"") && html.contains("You are logged in"));
        assert!(
            html.contains("name=\"a&quot;b\" value=\"&lt;x&gt;\""),
            "{html}"
        );
        assert!(html.contains("action=\"&#x2f;form?x=1&amp;y=2\""), "{html}");
        assert!(html.contains("<script>S();</script>"));
        let sl = pages().resubmit(Lang::Sl, "/", &[], "");
        assert!(sl.contains("<html lang=\"sl\"") && sl.contains("Pošiljamo obrazec"));
    }

    #[test]
    fn a_directory_overrides_templates_and_catalogues() {
        let dir = std::env::temp_dir().join(format!("prehod-templates-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("login.html"),
            "{% extends \"base.html\" %}{% block main %}BRANDED {{ t.welcome }}{% endblock %}",
        )
        .unwrap();
        let pages = Pages::new(Some(&dir), "h@b").unwrap();
        assert!(pages
            .login(Lang::Sl, &LoginView::default(), "")
            .contains("BRANDED Pozdravljeni"));
        std::fs::write(
            dir.join("login.html"),
            "{% extends \"base.html\" %}{% block main %}{{ t.no_such_text }}{% endblock %}",
        )
        .unwrap();
        let e = Pages::new(Some(&dir), "h@b").err().unwrap();
        assert!(e.to_string().contains("login.html"), "{e}");
        std::fs::write(dir.join("login.html"), "{% broken").unwrap();
        assert!(
            Pages::new(Some(&dir), "h@b").is_err(),
            "a broken override fails at start"
        );
        std::fs::remove_file(dir.join("login.html")).unwrap();
        let en = include_str!("../../templates/en.ftl").replace(
            "welcome = Welcome to the Bankart login page",
            "welcome = Welcome, branded",
        );
        std::fs::write(dir.join("en.ftl"), &en).unwrap();
        let pages = Pages::new(Some(&dir), "h@b").unwrap();
        assert!(pages
            .login(Lang::En, &LoginView::default(), "")
            .contains("Welcome, branded"));
        let short: String = en
            .lines()
            .filter(|l| !l.starts_with("welcome ="))
            .map(|l| format!("{l}\n"))
            .collect();
        std::fs::write(dir.join("en.ftl"), short).unwrap();
        let e = Pages::new(Some(&dir), "h@b").err().unwrap();
        assert!(e.to_string().contains("welcome"), "{e}");
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
