//! The languages of the gateway's pages and how a request chooses one: `?lang=`, then the
//! remembered choice (the language cookie), then `Accept-Language`; Slovenian by default.

/// A language the pages are written in (each has its catalogue, `templates/CODE.ftl`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lang {
    Sl,
    En,
}

impl Lang {
    /// Every language, the default first.
    pub const ALL: [Lang; 2] = [Lang::Sl, Lang::En];

    /// The ISO 639-1 code: `lang="…"`, `?lang=…`, the catalogue's file name.
    pub fn code(self) -> &'static str {
        match self {
            Lang::Sl => "sl",
            Lang::En => "en",
        }
    }

    /// The language of a code exactly as the gateway writes it (`sl`, `en`).
    pub fn of_code(code: &str) -> Option<Lang> {
        Lang::ALL.into_iter().find(|l| l.code() == code)
    }

    /// The other language: what the language switch offers.
    pub fn other(self) -> Lang {
        match self {
            Lang::Sl => Lang::En,
            Lang::En => Lang::Sl,
        }
    }

    /// `?lang=` first, then the remembered choice, then `Accept-Language` (first match).
    pub fn choose(
        query: Option<&str>,
        cookie: Option<&str>,
        accept_language: Option<&str>,
    ) -> Lang {
        if let Some(l) = query
            .and_then(Lang::of_code)
            .or_else(|| cookie.and_then(Lang::of_code))
        {
            return l;
        }
        accept_language
            .into_iter()
            .flat_map(|a| a.split(','))
            .map(|l| {
                l.split(';')
                    .next()
                    .unwrap_or("")
                    .trim()
                    .to_ascii_lowercase()
            })
            .find_map(|l| l.split('-').next().and_then(Lang::of_code))
            .unwrap_or(Lang::Sl)
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn language_choice() {
        assert_eq!(Lang::choose(None, None, None), Lang::Sl);
        assert_eq!(Lang::choose(None, None, Some("en-GB,en;q=0.9")), Lang::En);
        assert_eq!(Lang::choose(None, None, Some("de-DE, sl;q=0.8")), Lang::Sl);
        assert_eq!(Lang::choose(None, Some("en"), Some("sl")), Lang::En);
        assert_eq!(Lang::choose(Some("sl"), Some("en"), None), Lang::Sl);
        assert_eq!(Lang::choose(Some("de"), None, Some("EN")), Lang::En);
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
