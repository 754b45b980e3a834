//! What an endpoint gets and gives: the parsed request ([`Req`], nothing of hyper in it), the
//! responses it answers with (plain text, a page, JSON, a redirect), and the simulator's cookies.
//! Below both the listeners (`server`) and the endpoints, so neither imports the other's parts.

use std::collections::HashMap;

use bytes::Bytes;
use http::{header, Response, StatusCode};
use http_body_util::Full;

use crate::pages::{Lang, PageError};

/// Every answer the simulator gives.
pub(crate) type Resp = Response<Full<Bytes>>;

/// The browser's id: binds a login transaction to the browser that started it.
pub(crate) const BROWSER_COOKIE: &str = "rekono_browser";
/// The single-sign-on session.
pub(crate) const SESSION_COOKIE: &str = "rekono_sid";
/// The language the person chose.
pub(crate) const LANG_COOKIE: &str = "rekono_lang";

/// What the connection knows about the request: which listener, and the client certificate.
#[derive(Clone, Debug)]
pub(crate) struct Conn {
    pub mtls: bool,
    /// SHA-256 fingerprint (hex) of the certificate the browser presented, if any.
    pub peer_cert: Option<String>,
}

/// A parsed request: what the handlers need, nothing of hyper.
pub(crate) struct Req {
    pub method: http::Method,
    pub path: String,
    pub path_and_query: String,
    pub query: HashMap<String, String>,
    pub form: HashMap<String, String>,
    pub cookies: HashMap<String, String>,
    pub authorization: Option<String>,
    /// The `DPoP` header (RFC 9449): a proof of possession of the key a token is bound to.
    pub dpop: Option<String>,
    pub conn: Conn,
}

impl Req {
    /// The request of `parts` with `body` (a form is read only when it says it is one).
    pub fn parse(parts: &http::request::Parts, body: &[u8], conn: Conn) -> Self {
        let is_form = parts
            .headers
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
        let cookies = parts
            .headers
            .get_all(header::COOKIE)
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(';'))
            .filter_map(|c| c.trim().split_once('='))
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        Req {
            method: parts.method.clone(),
            path: parts.uri.path().to_owned(),
            path_and_query: parts
                .uri
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_owned(),
            query: pairs(parts.uri.query().unwrap_or("")),
            form: if is_form {
                pairs(&String::from_utf8_lossy(body))
            } else {
                HashMap::new()
            },
            cookies,
            authorization: parts
                .headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            dpop: parts
                .headers
                .get("dpop")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            conn,
        }
    }

    /// The page language: Slovenian unless the person chose English (like Rekono, whatever the
    /// browser says).
    pub fn lang(&self) -> Lang {
        let ui_locale = self
            .query
            .get("ui_locales")
            .and_then(|l| l.split(' ').next());
        let choice = self
            .query
            .get("lang")
            .map(String::as_str)
            .or(ui_locale)
            .or_else(|| self.cookies.get(LANG_COOKIE).map(String::as_str));
        if choice == Some("en") {
            Lang::En
        } else {
            Lang::Sl
        }
    }
}

fn pairs(s: &str) -> HashMap<String, String> {
    url::form_urlencoded::parse(s.as_bytes())
        .into_owned()
        .collect()
}

pub(crate) fn plain(status: StatusCode, text: &str) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .body(Full::new(Bytes::from(format!("{text}\n"))))
        .unwrap_or_default()
}

/// A rendered page; a page that could not be rendered is a plain-text 500 (and logged).
pub(crate) fn html(status: StatusCode, page: Result<String, PageError>) -> Resp {
    let body = match page {
        Ok(body) => body,
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            return plain(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the simulator could not render this page",
            );
        }
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .header("content-security-policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self' https:; frame-ancestors 'none'")
        .header("x-frame-options", "DENY")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(body)))
        .unwrap_or_default()
}

pub(crate) fn json_response(status: StatusCode, value: &serde_json::Value) -> Resp {
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "application/json")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Full::new(Bytes::from(value.to_string())))
        .unwrap_or_default()
}

pub(crate) fn redirect(location: &str, cookies: &[String]) -> Resp {
    let mut b = Response::builder()
        .status(StatusCode::SEE_OTHER)
        .header(header::LOCATION, location);
    for c in cookies {
        b = b.header(header::SET_COOKIE, c);
    }
    b.body(Full::new(Bytes::new())).unwrap_or_default()
}

/// Adds a `Set-Cookie` line to `resp` (a line that is no header value is left out).
pub(crate) fn append_cookie(resp: &mut Resp, line: &str) {
    if let Ok(v) = header::HeaderValue::from_str(line) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
}

pub(crate) fn cookie(name: &str, value: &str, max_age: Option<u64>) -> String {
    let age = max_age
        .map(|a| format!("; Max-Age={a}"))
        .unwrap_or_default();
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Lax{age}")
}

/// `uri?k=v&…`, appending to an existing query.
pub(crate) fn with_params(uri: &str, params: &[(&str, &str)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}{}", s.finish())
}
