//! The optional plain-HTTP listener: it only redirects to HTTPS, and only for the hosts the
//! gateway serves (an unknown Host gets a 421 page, never a redirect elsewhere).

use std::sync::Arc;

use async_trait::async_trait;
use http::{Response, StatusCode};
use pingora::apps::http_app::ServeHttp;
use pingora::protocols::http::ServerSession;

use crate::pages::Page;
use crate::routing::strip_port;

pub struct HttpsRedirect {
    pub(crate) live: Arc<crate::live::Live>,
}

#[async_trait]
impl ServeHttp for HttpsRedirect {
    async fn response(&self, session: &mut ServerSession) -> Response<Vec<u8>> {
        let shared = self.live.load();
        let req = session.req_header();
        let host = req
            .headers
            .get(http::header::HOST)
            .and_then(|v| v.to_str().ok())
            .map(|h| strip_port(h).to_ascii_lowercase());
        let https_port = shared.config.listen.https.port();
        let path = req.uri.path_and_query().map_or("/", |p| p.as_str());
        match host.filter(|h| shared.router.knows(h)) {
            Some(host) => {
                let port = if https_port == 443 {
                    String::new()
                } else {
                    format!(":{https_port}")
                };
                Response::builder()
                    .status(StatusCode::PERMANENT_REDIRECT)
                    .header("location", format!("https://{host}{port}{path}"))
                    .header("content-length", 0)
                    .body(Vec::new())
                    .unwrap_or_default()
            }
            None => {
                let id = uuid::Uuid::new_v4().simple().to_string();
                let lang = crate::pages::request_lang(req, &shared.lang_cookie);
                let body = shared
                    .pages
                    .error(Page::Misdirected, lang, &id)
                    .into_bytes();
                Response::builder()
                    .status(Page::Misdirected.status())
                    .header("content-type", "text/html; charset=utf-8")
                    .header("content-length", body.len())
                    .body(body)
                    .unwrap_or_default()
            }
        }
    }
}
