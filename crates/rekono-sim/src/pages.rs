//! The simulator's pages, following the seed's Rekono screens: Slovenian by default with an
//! SL | EN switch, every form carrying the transaction id and its CSRF token, no JavaScript
//! needed (the push page refreshes itself; a small script only speeds that up).
//!
//! Every page is a minijinja template (`templates/*.html`, embedded in the binary) rendered with
//! HTML auto-escaping: minijinja escapes every value; nothing here writes HTML or escapes it.

use std::sync::OnceLock;

use minijinja::{context, AutoEscape, Environment, UndefinedBehavior, Value};

use crate::{Factor, BASE_PATH};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Sl,
    En,
}

impl Lang {
    pub fn t<'a>(self, sl: &'a str, en: &'a str) -> &'a str {
        match self {
            Lang::Sl => sl,
            Lang::En => en,
        }
    }

    pub fn code(self) -> &'static str {
        self.t("sl", "en")
    }
}

/// What every page of a login transaction needs.
pub struct Ctx<'a> {
    pub lang: Lang,
    pub client_name: &'a str,
    pub tx: &'a str,
    pub csrf: &'a str,
    /// A GET path and query that shows this page again, for the language switch.
    pub here: &'a str,
    pub links: Links<'a>,
}

/// Rekono's own pages the login screen links to (configurable: `forgot_password_url`,
/// `create_account_url`).
#[derive(Clone, Copy)]
pub struct Links<'a> {
    pub forgot_password: &'a str,
    pub create_account: &'a str,
}

impl Default for Links<'_> {
    fn default() -> Self {
        Self {
            forgot_password: crate::config::FORGOT_PASSWORD_URL,
            create_account: crate::config::CREATE_ACCOUNT_URL,
        }
    }
}

/// The templates, by the names they are rendered and extended by.
const TEMPLATES: &[(&str, &str)] = &[
    ("layout.html", include_str!("../templates/layout.html")),
    ("forms.html", include_str!("../templates/forms.html")),
    ("login.html", include_str!("../templates/login.html")),
    ("chooser.html", include_str!("../templates/chooser.html")),
    ("code.html", include_str!("../templates/code.html")),
    (
        "push_wait.html",
        include_str!("../templates/push_wait.html"),
    ),
    ("error.html", include_str!("../templates/error.html")),
    (
        "logged_out.html",
        include_str!("../templates/logged_out.html"),
    ),
    ("claims.html", include_str!("../templates/claims.html")),
];

/// A page that could not be rendered: a broken template (they are embedded, and the tests
/// render every one, so this is a bug). The request gets a plain-text 500 instead.
#[derive(Debug, thiserror::Error)]
#[error("page {page}: {message}")]
pub struct PageError {
    page: &'static str,
    message: String,
}

/// The templates, parsed once; a template that does not parse is every page's error.
fn environment() -> Result<&'static Environment<'static>, String> {
    static ENVIRONMENT: OnceLock<Result<Environment<'static>, String>> = OnceLock::new();
    ENVIRONMENT
        .get_or_init(|| {
            let mut env = Environment::new();
            env.set_auto_escape_callback(|_| AutoEscape::Html);
            // A value a template names that the page does not give is an error, not "".
            env.set_undefined_behavior(UndefinedBehavior::Strict);
            // Marked safe (not escaped): BASE_PATH, this crate's constant path, so that the
            // forms' actions read "/openid-connect-server-webapp/…" and not "&#x2f;…".
            env.add_global("base_path", Value::from_safe_string(BASE_PATH.to_owned()));
            for (name, source) in TEMPLATES {
                env.add_template(name, source)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            Ok(env)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The page `page` with `values`, or what went wrong (a broken template: a bug).
fn render(page: &'static str, values: Value) -> Result<String, PageError> {
    let error = |message: String| PageError { page, message };
    environment()
        .map_err(error)?
        .get_template(page)
        .and_then(|t| t.render(values))
        .map_err(|e| error(e.to_string()))
}

/// What the layout and the forms need: the language, the service's name, the transaction
/// and the page's own path for the language switch (form-urlencoded here; the template escapes
/// it like every value).
fn frame(ctx: &Ctx<'_>) -> Value {
    context! {
        lang => ctx.lang.code(),
        client_name => ctx.client_name,
        tx => ctx.tx,
        csrf => ctx.csrf,
        back => url::form_urlencoded::byte_serialize(ctx.here.as_bytes()).collect::<String>(),
    }
}

pub fn login(ctx: &Ctx<'_>, email: &str, error: Option<&str>) -> Result<String, PageError> {
    render(
        "login.html",
        context! {
            email,
            error,
            forgot_url => ctx.links.forgot_password,
            create_url => ctx.links.create_account,
            ..frame(ctx)
        },
    )
}

/// The second-factor chooser: only the factors the account's level allows.
pub fn chooser(
    ctx: &Ctx<'_>,
    factors: &[Factor],
    cert_url: &str,
    error: Option<&str>,
) -> Result<String, PageError> {
    render(
        "chooser.html",
        context! { factors, cert_url, error, ..frame(ctx) },
    )
}

/// The SMS and OnePass code screens.
pub fn code(
    ctx: &Ctx<'_>,
    factor: Factor,
    masked_phone: &str,
    error: Option<&str>,
) -> Result<String, PageError> {
    let factor = if factor == Factor::Sms { "sms" } else { "otp" };
    render(
        "code.html",
        context! { factor, masked_phone, error, ..frame(ctx) },
    )
}

/// The OnePass push screen: refreshes itself until the push is answered.
pub fn push_wait(ctx: &Ctx<'_>) -> Result<String, PageError> {
    render("push_wait.html", frame(ctx))
}

/// The frame of a page outside any login: no service, no transaction.
fn no_login(lang: Lang) -> Value {
    frame(&Ctx {
        lang,
        client_name: "—",
        tx: "",
        csrf: "",
        here: BASE_PATH,
        links: Links::default(),
    })
}

/// A dead end inside the simulator (unknown transaction, bad client registration…).
pub fn error(lang: Lang, message: &str) -> Result<String, PageError> {
    render("error.html", context! { message, ..no_login(lang) })
}

pub fn logged_out(lang: Lang) -> Result<String, PageError> {
    render("logged_out.html", no_login(lang))
}

/// The playground's result (`/dev/callback`): the ID token's claims, `pretty` as JSON.
pub fn claims(lang: Lang, pretty: &str) -> Result<String, PageError> {
    render(
        "claims.html",
        context! { lang => lang.code(), claims => pretty },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an attacker may put in a value a page shows, and what minijinja makes of it.
    const HOSTILE: &str = "<script>\"&'";
    const ESCAPED: &str = "&lt;script&gt;&quot;&amp;&#x27;";

    const HERE: &str = "/openid-connect-server-webapp/resume?tx=tx-1";
    /// The switch's `back`: HERE form-urlencoded, as in the switch's href.
    const BACK: &str = "back=%2Fopenid-connect-server-webapp%2Fresume%3Ftx%3Dtx-1";

    fn ctx<'a>(lang: Lang, client_name: &'a str, csrf: &'a str) -> Ctx<'a> {
        Ctx {
            lang,
            client_name,
            tx: "tx-1",
            csrf,
            here: HERE,
            links: Links {
                forgot_password: "https://id.rekono.localhost/forgot",
                create_account: "https://id.rekono.localhost/register",
            },
        }
    }

    fn assert_escaped(page: &str) {
        assert!(page.contains(ESCAPED), "{page}");
        assert!(
            !page.contains(HOSTILE) && !page.contains("<script"),
            "{page}"
        );
    }

    /// The transaction's hidden fields, in every form of the page.
    fn assert_hidden(page: &str, forms: usize) {
        let hidden = "<input type=\"hidden\" name=\"tx\" value=\"tx-1\"><input type=\"hidden\" name=\"csrf\" value=\"csrf-1\">";
        assert_eq!(page.matches(hidden).count(), forms, "{page}");
        assert_eq!(page.matches("<form ").count(), forms, "{page}");
    }

    /// The SL | EN switch: the page's language in bold, the other a link back to `here`.
    fn assert_switch(page: &str, lang: Lang, back: &str) {
        let (current, other, other_code) = match lang {
            Lang::Sl => ("<b>SL</b>", "EN", "en"),
            Lang::En => ("<b>EN</b>", "SL", "sl"),
        };
        let link = format!("<a href=\"{BASE_PATH}/lang?to={other_code}&amp;{back}\">{other}</a>");
        assert!(page.contains(current) && page.contains(&link), "{page}");
        assert!(
            page.starts_with(&format!("<!doctype html>\n<html lang=\"{}\">", lang.code())),
            "{page}"
        );
    }

    #[test]
    fn every_page_escapes_what_it_shows() {
        for lang in [Lang::Sl, Lang::En] {
            let mut hostile = ctx(lang, HOSTILE, HOSTILE);
            hostile.here = HOSTILE;
            hostile.links.forgot_password = HOSTILE;
            hostile.links.create_account = HOSTILE;
            let login = login(&hostile, HOSTILE, Some(HOSTILE)).unwrap();
            assert_escaped(&login);
            for (what, escaped) in [
                ("client name twice", format!("<b>{ESCAPED}</b>")),
                ("e-mail", format!("value=\"{ESCAPED}\"")),
                ("error", format!("role=\"alert\">{ESCAPED}</p>")),
                ("link", format!("id=\"forgot-password\" href=\"{ESCAPED}\"")),
                ("link", format!("id=\"create-account\" href=\"{ESCAPED}\"")),
                ("CSRF token", format!("name=\"csrf\" value=\"{ESCAPED}\"")),
            ] {
                assert!(login.contains(&escaped), "{what}: {login}");
            }
            assert!(login.contains(&format!(" {ESCAPED}</button>")), "{login}");
            // The switch's way back is form-urlencoded, then escaped like every value.
            assert_switch(&login, lang, "back=%3Cscript%3E%22%26%27");

            let factors = [Factor::Sms, Factor::Certificate];
            let chooser = chooser(&hostile, &factors, HOSTILE, Some(HOSTILE)).unwrap();
            assert_escaped(&chooser);
            assert!(chooser.contains(&format!("<a href=\"{ESCAPED}\"><button")));
            assert!(chooser.contains(&format!("role=\"alert\">{ESCAPED}</p>")));

            for factor in [Factor::Sms, Factor::Otp] {
                let code = code(&hostile, factor, HOSTILE, Some(HOSTILE)).unwrap();
                assert_escaped(&code);
                assert!(code.contains(&format!("role=\"alert\">{ESCAPED}</p>")));
            }
            let sms = code(&hostile, Factor::Sms, HOSTILE, None).unwrap();
            assert!(
                sms.contains(&format!(" {ESCAPED}</p>")),
                "masked phone: {sms}"
            );

            assert_escaped(&push_wait(&hostile).unwrap());

            let error = error(lang, HOSTILE).unwrap();
            assert_escaped(&error);
            assert!(error.contains(&format!("<p class=\"err\">{ESCAPED}</p>")));

            let claims = claims(lang, HOSTILE).unwrap();
            assert_escaped(&claims);
            assert!(claims.contains(&format!("<pre id=\"claims\">{ESCAPED}</pre>")));
        }
    }

    #[test]
    fn the_login_form_has_its_fields_links_and_switch() {
        for lang in [Lang::Sl, Lang::En] {
            let page = login(&ctx(lang, "Bankart", "csrf-1"), "ana@example.si", None).unwrap();
            for part in [
                "<form method=\"post\" action=\"/openid-connect-server-webapp/login\">",
                "<input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"username\" required value=\"ana@example.si\">",
                "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>",
                "<button type=\"submit\" id=\"login\">",
                "<form method=\"post\" action=\"/openid-connect-server-webapp/abort\">",
                "id=\"back-to-client\"",
                "<p class=\"rp\">",
                "<b>Bankart</b>",
                "<a id=\"forgot-password\" href=\"https:&#x2f;&#x2f;id.rekono.localhost&#x2f;forgot\">",
                "<a id=\"create-account\" href=\"https:&#x2f;&#x2f;id.rekono.localhost&#x2f;register\">",
            ] {
                assert!(page.contains(part), "{part}: {page}");
            }
            assert!(!page.contains("class=\"err\""), "no error box: {page}");
            assert_hidden(&page, 2);
            assert_switch(&page, lang, BACK);
            let title = lang.t(
                "<title>Prijava — Rekono</title>",
                "<title>Log in — Rekono</title>",
            );
            assert!(page.contains(title), "{page}");
            assert!(page.contains(lang.t("Vaš e-naslov", "Your e-mail address")));
            assert!(page.ends_with("2022</footer></body></html>\n"), "{page}");
        }
    }

    #[test]
    fn the_chooser_offers_the_factors_given_in_order() {
        for lang in [Lang::Sl, Lang::En] {
            let factors = [Factor::Sms, Factor::Otp, Factor::Push, Factor::Certificate];
            let page = chooser(
                &ctx(lang, "Bankart", "csrf-1"),
                &factors,
                "https://rekono.localhost:8443/openid-connect-server-webapp/factor/cert?tx=tx-1",
                None,
            )
            .unwrap();
            let mut at = 0;
            for factor in ["sms", "otp", "push"] {
                let form = format!("<form method=\"post\" action=\"/openid-connect-server-webapp/factor/{factor}\">");
                let next = page[at..].find(&form).map(|i| at + i);
                at = next.unwrap_or_else(|| panic!("{factor} in order: {page}"));
                assert!(page.contains(&format!("<button type=\"submit\" id=\"factor-{factor}\">")));
            }
            assert!(page[at..].contains("<a href=\"https:&#x2f;&#x2f;rekono.localhost:8443&#x2f;openid-connect-server-webapp&#x2f;factor&#x2f;cert?tx=tx-1\"><button type=\"button\" id=\"factor-certificate\">"), "{page}");
            assert!(page.contains(lang.t(
                "<h1>Izberite način prijave</h1>",
                "<h1>Choose how to log in</h1>"
            )));
            assert!(page.contains(lang.t("Pošlji SMS", "Send SMS")));
            assert!(page.contains("id=\"back-to-client\""));
            // Three factor forms and the way back.
            assert_hidden(&page, 4);
            assert_switch(&page, lang, BACK);

            let only_sms =
                chooser(&ctx(lang, "Bankart", "csrf-1"), &[Factor::Sms], "", None).unwrap();
            assert!(only_sms.contains("id=\"factor-sms\""));
            for absent in [
                "factor-otp",
                "factor-push",
                "factor-certificate",
                "POSTArCA",
            ] {
                assert!(!only_sms.contains(absent), "{absent}: {only_sms}");
            }
        }
    }

    #[test]
    fn the_code_and_push_screens_have_their_forms_and_cancel() {
        for lang in [Lang::Sl, Lang::En] {
            let c = ctx(lang, "Bankart", "csrf-1");
            for (factor, action) in [
                (Factor::Sms, "sms"),
                (Factor::Otp, "otp"),
                (Factor::Push, "otp"),
            ] {
                let page = code(&c, factor, "****222", Some("Napačno enkratno geslo")).unwrap();
                for part in [
                    format!("<form method=\"post\" action=\"/openid-connect-server-webapp/factor/{action}/verify\">"),
                    "<input id=\"code\" name=\"code\" inputmode=\"numeric\" autocomplete=\"one-time-code\" pattern=\"[0-9]{6}\" required>".to_owned(),
                    "<button type=\"submit\" id=\"confirm\">".to_owned(),
                    "<form method=\"post\" action=\"/openid-connect-server-webapp/cancel\">".to_owned(),
                    "id=\"cancel\"".to_owned(),
                    "<p class=\"err\" role=\"alert\">Napačno enkratno geslo</p>".to_owned(),
                ] {
                    assert!(page.contains(&part), "{part}: {page}");
                }
                assert_eq!(page.contains("****222"), factor == Factor::Sms, "{page}");
                assert_hidden(&page, 2);
                assert_switch(&page, lang, BACK);
            }

            let push = push_wait(&c).unwrap();
            assert!(push.contains("<meta http-equiv=\"refresh\" content=\"2;url=/openid-connect-server-webapp/factor/push/wait?tx=tx-1\"></head>"), "{push}");
            assert!(push.contains("<p id=\"push-status\" role=\"status\">"));
            assert!(push.contains(lang.t("Potrdite obvestilo", "Confirm the notification")));
            assert!(push.contains("id=\"cancel\""));
            assert_hidden(&push, 1);
            assert_switch(&push, lang, BACK);
        }
    }

    #[test]
    fn the_pages_outside_a_login_switch_language_to_the_start() {
        let start = "back=%2Fopenid-connect-server-webapp";
        for lang in [Lang::Sl, Lang::En] {
            let page = error(lang, "Prijava je potekla").unwrap();
            assert!(page.contains(lang.t("<h1>Napaka</h1>", "<h1>Error</h1>")));
            assert!(page.contains("<p class=\"err\">Prijava je potekla</p>"));
            assert!(
                page.contains("<b>—</b>") && !page.contains("<form"),
                "{page}"
            );
            assert_switch(&page, lang, start);

            let page = logged_out(lang).unwrap();
            assert!(
                page.contains(lang.t("<h1>Odjavljeni ste.</h1>", "<h1>You are logged out.</h1>"))
            );
            assert_switch(&page, lang, start);

            let page = claims(lang, "{\n  \"sub\": \"1\"\n}").unwrap();
            assert!(page.contains("<h1 id=\"done\">"));
            assert!(
                page.contains("<pre id=\"claims\">{\n  &quot;sub&quot;: &quot;1&quot;\n}</pre>")
            );
            assert!(page.contains(lang.t(
                "<a href=\"/dev/try\">Znova</a>",
                "<a href=\"/dev/try\">Again</a>"
            )));
        }
    }

    #[test]
    fn a_page_that_cannot_be_rendered_is_a_plain_500() {
        // The login page without its values: an error (undefined values are), not a panic.
        let broken = render("login.html", context! { lang => "sl" });
        let message = broken.as_ref().map(|_| ()).unwrap_err().to_string();
        assert!(message.starts_with("page login.html: "), "{message}");
        let resp = crate::exchange::html(http::StatusCode::OK, broken);
        assert_eq!(resp.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert_eq!(
            resp.headers()[http::header::CONTENT_TYPE],
            "text/plain; charset=utf-8"
        );
        assert!(render("no-such.html", context! {}).is_err());
    }
}
