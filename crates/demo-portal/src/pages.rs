//! The portal's pages: minijinja templates (`templates/*.html`, embedded in the binary) rendered
//! with HTML auto-escaping, so every value — the header names and values a request brought, its
//! URI, the portal's title — is escaped by minijinja; nothing here writes HTML or escapes it.

use std::sync::OnceLock;

use minijinja::{context, AutoEscape, Environment, UndefinedBehavior, Value};

use crate::PortalInfo;

/// The templates, by the names they are rendered by.
const TEMPLATES: &[(&str, &str)] = &[
    ("echo.html", include_str!("../templates/echo.html")),
    ("login.html", include_str!("../templates/login.html")),
];

/// What the echo page shows of a request.
pub(crate) struct Echo<'a> {
    pub method: &'a str,
    pub uri: &'a str,
    /// Every header, by name (lower case) and value, as received.
    pub headers: &'a [(String, String)],
    pub body_len: u64,
    pub body_sha256: &'a str,
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
            for (name, source) in TEMPLATES {
                env.add_template(name, source)
                    .map_err(|e| format!("{name}: {e}"))?;
            }
            Ok(env)
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// The page `name` with `values`, or what went wrong (a broken template: a bug).
fn render(name: &str, values: Value) -> Result<String, String> {
    environment()?
        .get_template(name)
        .and_then(|t| t.render(values))
        .map_err(|e| format!("{name}: {e}"))
}

/// The page a browser gets: the identity the gateway vouches for (the `x-auth-*` headers),
/// then every other header, then the body's length and hash.
pub(crate) fn echo(info: &PortalInfo, request: &Echo<'_>) -> Result<String, String> {
    let (identity, headers): (Vec<_>, Vec<_>) = request
        .headers
        .iter()
        .partition(|(name, _)| name.starts_with("x-auth-"));
    render(
        "echo.html",
        context! {
            title => &info.title,
            name => &info.name,
            method => request.method,
            uri => request.uri,
            identity,
            headers,
            body_len => request.body_len,
            body_sha256 => request.body_sha256,
        },
    )
}

/// The application's own login form; `failed` after a wrong username or password.
pub(crate) fn login(info: &PortalInfo, failed: bool) -> Result<String, String> {
    render("login.html", context! { title => &info.title, failed })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What an attacker may put in a value a page shows, and what minijinja makes of it.
    const HOSTILE: &str = "<script>\"&'";
    const ESCAPED: &str = "&lt;script&gt;&quot;&amp;&#x27;";

    fn info(title: &str) -> PortalInfo {
        PortalInfo {
            name: "acq".into(),
            title: title.into(),
            own_login: true,
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(n, v)| ((*n).to_owned(), (*v).to_owned()))
            .collect()
    }

    fn echo_of(info: &PortalInfo, uri: &str, headers: &[(String, String)]) -> String {
        echo(
            info,
            &Echo {
                method: "POST",
                uri,
                headers,
                body_len: 3,
                body_sha256: "ba7816bf",
            },
        )
        .unwrap()
    }

    #[test]
    fn the_echo_page_escapes_the_request_it_shows() {
        let request = headers(&[("x-auth-email", HOSTILE), (HOSTILE, HOSTILE)]);
        let page = echo_of(&info(HOSTILE), HOSTILE, &request);
        assert!(
            !page.contains(HOSTILE) && !page.contains("<script"),
            "{page}"
        );
        for part in [
            format!("<title>{ESCAPED}</title>"),
            format!("<h1>{ESCAPED}</h1>"),
            format!("behind prehod. POST {ESCAPED}</p>"),
            format!("<table class=\"id\"><tr><th>x-auth-email</th><td>{ESCAPED}</td></tr></table>"),
            format!("<table><tr><th>{ESCAPED}</th><td>{ESCAPED}</td></tr></table>"),
        ] {
            assert!(page.contains(&part), "{part}: {page}");
        }
    }

    #[test]
    fn the_echo_page_shows_the_identity_apart_from_the_other_headers() {
        let request = headers(&[
            ("host", "acq.bankart.localhost"),
            ("x-auth-email", "ana@example.si"),
            ("accept", "text/html"),
            ("x-auth-level", "20"),
        ]);
        let page = echo_of(&info("acq demo"), "/home?x=1", &request);
        for part in [
            "<!doctype html><html lang=\"sl\"><head><meta charset=\"utf-8\"><title>acq demo</title><style>",
            "<h1>acq demo</h1><p>Demo portal <b>acq</b> behind prehod. POST &#x2f;home?x=1</p>",
            "<h2>Identity the gateway vouches for</h2><table class=\"id\"><tr><th>x-auth-email</th><td>ana@example.si</td></tr><tr><th>x-auth-level</th><td>20</td></tr></table>",
            "<h2>Request headers the portal received</h2><table><tr><th>host</th><td>acq.bankart.localhost</td></tr><tr><th>accept</th><td>text&#x2f;html</td></tr></table>",
            "<p>Body: 3 bytes, SHA-256 ba7816bf</p></body></html>",
        ] {
            assert!(page.contains(part), "{part}: {page}");
        }
        let outside = echo_of(&info("acq demo"), "/", &headers(&[("host", "a")]));
        assert!(
            outside.contains("<h2>Identity the gateway vouches for</h2><p>(none: this portal is not behind a gateway login)</p><h2>"),
            "{outside}"
        );
    }

    #[test]
    fn the_login_form_escapes_the_title_and_says_when_it_failed() {
        let page = login(&info(HOSTILE), false).unwrap();
        assert!(
            !page.contains(HOSTILE) && !page.contains("<script"),
            "{page}"
        );
        assert!(page.contains(&format!("<title>{ESCAPED} — prijava</title>")));
        assert!(page.contains(&format!("<h1>{ESCAPED}</h1>")));
        for page in [page, login(&info("ecmsweb"), true).unwrap()] {
            for part in [
                "<form method=\"post\" action=\"/login\">",
                "<input name=\"username\" required>",
                "<input name=\"password\" type=\"password\" required>",
                "<button type=\"submit\">Prijava</button></form></body></html>",
            ] {
                assert!(page.contains(part), "{part}: {page}");
            }
        }
        let failed = login(&info("ecmsweb"), true).unwrap();
        assert!(failed.contains("(application login)</p><p class=\"err\">Napačno uporabniško ime ali geslo / Wrong username or password.</p><form"), "{failed}");
        assert!(!login(&info("ecmsweb"), false)
            .unwrap()
            .contains("class=\"err\""));
    }

    #[test]
    fn a_page_that_cannot_be_rendered_is_a_plain_500() {
        let broken = render("echo.html", context! { title => "x" });
        assert!(broken.as_ref().is_err_and(|e| e.starts_with("echo.html: ")));
        let resp = crate::html(http::StatusCode::OK, broken);
        assert_eq!(resp.status(), http::StatusCode::INTERNAL_SERVER_ERROR);
        assert!(render("no-such.html", context! {}).is_err());
    }
}
