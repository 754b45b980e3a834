//! What every handler returns: a status, headers (cookies among them), a body — plain data that
//! knows nothing of pingora. `crate::respond` is the one place that writes it to the client.

use bytes::Bytes;

use crate::pages::{Lang, Page, Pages};

/// A whole response the gateway answers with itself.
#[derive(Debug)]
pub struct Reply {
    pub status: u16,
    /// In the order they are written; `set-cookie` may repeat.
    pub headers: Vec<(&'static str, String)>,
    /// Headers whose names the configuration chooses (the identity headers of a forward-auth
    /// answer), written after `headers`.
    pub named: Vec<(http::HeaderName, String)>,
    pub body: Bytes,
    /// The gateway's page headers (`crate::pages::PAGE_HEADERS`: CSP, framing, caching) go
    /// with it, each unless the reply names it itself (a logout form's CSP names Rekono).
    pub page_headers: bool,
    /// The connection closes after it (the error pages).
    pub close: bool,
}

impl Reply {
    /// A reply with this status and nothing else yet.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            headers: Vec::new(),
            named: Vec::new(),
            body: Bytes::new(),
            page_headers: true,
            close: false,
        }
    }

    /// An HTML page.
    pub fn html(status: u16, body: String) -> Self {
        Self {
            body: Bytes::from(body),
            ..Self::status(status).header("content-type", "text/html; charset=utf-8".into())
        }
    }

    /// A JSON document.
    pub fn json(status: u16, value: &serde_json::Value) -> Self {
        Self {
            body: Bytes::from(value.to_string()),
            ..Self::status(status).header("content-type", "application/json".into())
        }
    }

    /// 302 to `location`.
    pub fn redirect(location: String) -> Self {
        Self::status(302).header("location", location)
    }

    /// One of the gateway's own pages (`crate::pages`), after which the connection closes.
    pub fn page(pages: &Pages, page: Page, lang: Lang, request_id: &str) -> Self {
        Self {
            close: true,
            ..Self::html(page.status().as_u16(), pages.error(page, lang, request_id))
        }
    }

    /// With one more header.
    pub fn header(mut self, name: &'static str, value: String) -> Self {
        self.headers.push((name, value));
        self
    }

    /// With one more header whose name the configuration chose.
    pub fn named_header(mut self, name: &http::HeaderName, value: String) -> Self {
        self.named.push((name.clone(), value));
        self
    }

    /// With one more `Set-Cookie`.
    pub fn cookie(self, value: String) -> Self {
        self.header("set-cookie", value)
    }

    /// Without the gateway's page headers: a redirect or API answer on a portal's host, or a
    /// page that sets every one it needs itself.
    pub fn without_page_headers(mut self) -> Self {
        self.page_headers = false;
        self
    }

    /// A header's value, when the reply has one (the first, for a repeated name).
    pub fn header_value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.as_str())
    }

    /// Every `Set-Cookie` of the reply.
    pub fn cookies(&self) -> impl Iterator<Item = &str> {
        self.headers
            .iter()
            .filter(|(n, _)| *n == "set-cookie")
            .map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_closes_the_connection_and_carries_its_status() {
        let pages = Pages::new(None, "help@bankart.si").expect("the built-in pages");
        let r = Reply::page(&pages, Page::Misdirected, Lang::En, "req-1");
        assert_eq!(r.status, 421);
        assert!(r.close && r.page_headers);
        assert_eq!(
            r.header_value("content-type"),
            Some("text/html; charset=utf-8")
        );
        assert!(std::str::from_utf8(&r.body).is_ok_and(|b| b.contains("req-1")));
    }

    #[test]
    fn headers_and_cookies_keep_their_order() {
        let r = Reply::redirect("/x".into())
            .cookie("a=1".into())
            .cookie("b=2".into())
            .without_page_headers();
        assert_eq!(r.status, 302);
        assert_eq!(r.header_value("location"), Some("/x"));
        assert_eq!(r.cookies().collect::<Vec<_>>(), ["a=1", "b=2"]);
        assert!(!r.page_headers && !r.close && r.body.is_empty());
    }
}
