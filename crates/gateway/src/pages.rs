//! The gateway's own pages, in Bankart's style and in the language the request asks for (the
//! same choice as the login host's: `?lang=`, the remembered choice, `Accept-Language`). This
//! is the one place an outcome becomes a status code and a page: no stack traces, no internal
//! addresses, always the request id and what the user can do next.

use http::StatusCode;

use crate::templates::Lang;

/// Where users are sent for help (from the seed's Rekono screen).
pub const SUPPORT_EMAIL: &str = "helpdesk@bankart.si";

/// HSTS, on the gateway's pages and on every proxied response that has none: two years,
/// Mozilla's `hsts_min_age` (`crate::tls_profile`).
pub const STRICT_TRANSPORT_SECURITY: &str = "max-age=63072000";

/// Security headers on every page the gateway itself serves.
pub const PAGE_HEADERS: &[(&str, &str)] = &[
    ("strict-transport-security", STRICT_TRANSPORT_SECURITY),
    (
        "content-security-policy",
        "default-src 'none'; style-src 'unsafe-inline'; img-src data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'",
    ),
    ("x-frame-options", "DENY"),
    ("x-content-type-options", "nosniff"),
    ("referrer-policy", "no-referrer"),
    ("cache-control", "no-store"),
];

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Page {
    /// 400: the request could not be understood.
    BadRequest,
    /// 421: no portal at this address.
    Misdirected,
    /// 502: the portal's application is not answering.
    UpstreamUnavailable,
    /// 504: the portal's application took too long.
    UpstreamTimeout,
    /// 500: the gateway failed.
    Internal,
    /// 405: the portal does not take this method (answered with `Allow`).
    MethodNotAllowed,
    /// 503: no memory for the request's body now (answered with `Retry-After`).
    Busy,
}

struct Text {
    title_sl: &'static str,
    body_sl: &'static str,
    next_sl: &'static str,
    title_en: &'static str,
    body_en: &'static str,
    next_en: &'static str,
}

impl Page {
    pub fn status(self) -> StatusCode {
        match self {
            Page::BadRequest => StatusCode::BAD_REQUEST,
            Page::Misdirected => StatusCode::MISDIRECTED_REQUEST,
            Page::UpstreamUnavailable => StatusCode::BAD_GATEWAY,
            Page::UpstreamTimeout => StatusCode::GATEWAY_TIMEOUT,
            Page::Internal => StatusCode::INTERNAL_SERVER_ERROR,
            Page::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            Page::Busy => StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    fn text(self) -> Text {
        match self {
            Page::BadRequest => Text {
                title_sl: "Napačna zahteva",
                body_sl: "Brskalnik je poslal zahtevo, ki je prehod ne razume.",
                next_sl: "Osvežite stran ali jo odprite znova.",
                title_en: "Bad request",
                body_en: "Your browser sent a request the gateway cannot understand.",
                next_en: "Reload the page or open it again.",
            },
            Page::Misdirected => Text {
                title_sl: "Na tem naslovu ni aplikacije",
                body_sl: "Bankart Varni Spletni Prehod na tem naslovu ne streže nobene aplikacije.",
                next_sl: "Preverite naslov, npr. https://acq.bankart.si/.",
                title_en: "No application at this address",
                body_en: "The Bankart Secure Web Gateway serves no application at this address.",
                next_en: "Check the address, e.g. https://acq.bankart.si/.",
            },
            Page::UpstreamUnavailable => Text {
                title_sl: "Aplikacija trenutno ni dosegljiva",
                body_sl: "Aplikacija za prehodom se ne odziva.",
                next_sl: "Poskusite znova čez nekaj minut.",
                title_en: "The application is not available",
                body_en: "The application behind the gateway is not answering.",
                next_en: "Try again in a few minutes.",
            },
            Page::UpstreamTimeout => Text {
                title_sl: "Aplikacija se ni odzvala pravočasno",
                body_sl: "Aplikacija za prehodom je za odgovor potrebovala predolgo.",
                next_sl: "Poskusite znova čez nekaj minut.",
                title_en: "The application did not answer in time",
                body_en: "The application behind the gateway took too long to answer.",
                next_en: "Try again in a few minutes.",
            },
            Page::Internal => Text {
                title_sl: "Napaka prehoda",
                body_sl: "Pri obdelavi zahteve je prišlo do napake.",
                next_sl: "Poskusite znova.",
                title_en: "Gateway error",
                body_en: "Something went wrong while handling your request.",
                next_en: "Please try again.",
            },
            Page::MethodNotAllowed => Text {
                title_sl: "Zahteva ni dovoljena",
                body_sl: "Aplikacija za prehodom ne sprejema te vrste zahteve.",
                next_sl: "Odprite stran iz aplikacije same.",
                title_en: "Request not allowed",
                body_en: "The application behind the gateway does not take this kind of request.",
                next_en: "Open the page from within the application.",
            },
            Page::Busy => Text {
                title_sl: "Prehod je trenutno preobremenjen",
                body_sl: "Prehod trenutno ne more sprejeti poslanih podatkov.",
                next_sl: "Poskusite znova čez nekaj sekund.",
                title_en: "The gateway is busy",
                body_en: "The gateway cannot take the data you sent right now.",
                next_en: "Try again in a few seconds.",
            },
        }
    }

    /// The page's HTML in `lang`. `request_id` is printed so support can find the request in
    /// the logs.
    pub fn render(self, lang: Lang, request_id: &str) -> String {
        let t = self.text();
        let id = escape(request_id);
        let status = self.status().as_u16();
        let (title, body, next) = match lang {
            Lang::Sl => (t.title_sl, t.body_sl, t.next_sl),
            Lang::En => (t.title_en, t.body_en, t.next_en),
        };
        let (brand, code, request, support) = match lang {
            Lang::Sl => ("Varni Spletni Prehod", "Koda", "ID zahteve", "Podpora"),
            Lang::En => ("Secure Web Gateway", "Status", "Request ID", "Support"),
        };
        format!(
            "<!doctype html>\n<html lang=\"{lang}\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<title>{title} — Bankart</title><style>{STYLE}</style></head><body><main>\
<p class=\"brand\">Bankart · {brand}</p>\
<h1>{title}</h1><p>{body}</p><p>{next}</p>\
<p class=\"meta\">{code} {status} · {request}: <code>{id}</code></p>\
<p class=\"meta\">{support}: <a href=\"mailto:{SUPPORT_EMAIL}\">{SUPPORT_EMAIL}</a></p>\
</main></body></html>\n",
            lang = lang.code(),
        )
    }
}

/// The language of a request to any host: `?lang=`, the language cookie (`lang_cookie`), then
/// `Accept-Language`.
pub fn request_lang(req: &http::request::Parts, lang_cookie: &str) -> Lang {
    let query = req.uri.query().and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes())
            .find(|(k, _)| k == "lang")
            .map(|(_, v)| v.into_owned())
    });
    Lang::choose(
        query.as_deref(),
        crate::cookies::find(&req.headers, lang_cookie),
        req.headers
            .get(http::header::ACCEPT_LANGUAGE)
            .and_then(|v| v.to_str().ok()),
    )
}

const STYLE: &str = "body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;background:#f3f6f9;color:#1d2a3a}\
main{max-width:40rem;margin:4rem auto;box-sizing:border-box;background:#fff;padding:2rem 2.5rem;border-top:6px solid #00529b;box-shadow:0 2px 8px rgba(0,0,0,.08)}\
.brand{color:#00529b;font-weight:600;letter-spacing:.02em}h1{font-size:1.5rem}h2{font-size:1.15rem;color:#445}\
section{border-top:1px solid #dde3ea;margin-top:1.5rem;padding-top:.5rem}.meta{color:#4a5564;font-size:.9rem}code{background:#eef3f8;padding:.1rem .3rem}";

pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_carry_status_id_and_one_language() {
        let html = Page::UpstreamUnavailable.render(Lang::Sl, "req-<1>");
        assert!(html.contains("Aplikacija trenutno ni dosegljiva"));
        assert!(!html.contains("The application is not available"));
        assert!(html.contains("req-&lt;1&gt;"));
        assert!(html.contains("502"));
        let en = Page::UpstreamUnavailable.render(Lang::En, "r");
        assert!(en.contains("The application is not available") && en.contains("lang=\"en\""));
        assert!(!en.contains("Aplikacija"));
        assert_eq!(Page::Misdirected.status(), StatusCode::MISDIRECTED_REQUEST);
    }

    #[test]
    fn the_language_follows_the_query_the_cookie_then_accept_language() {
        let req = |uri: &str, cookie: Option<&str>, accept: Option<&str>| {
            let mut b = http::Request::builder().uri(uri);
            if let Some(c) = cookie {
                b = b.header("cookie", c);
            }
            if let Some(a) = accept {
                b = b.header("accept-language", a);
            }
            b.body(()).unwrap().into_parts().0
        };
        assert_eq!(request_lang(&req("/", None, None), "p_lang"), Lang::Sl);
        assert_eq!(
            request_lang(&req("/", None, Some("en-GB,en")), "p_lang"),
            Lang::En
        );
        assert_eq!(
            request_lang(&req("/", Some("p_lang=sl"), Some("en")), "p_lang"),
            Lang::Sl
        );
        assert_eq!(
            request_lang(&req("/x?lang=en", Some("p_lang=sl"), None), "p_lang"),
            Lang::En
        );
    }
}
