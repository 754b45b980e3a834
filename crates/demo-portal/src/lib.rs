//! A demo Bankart portal: what `prehod dev` puts behind the gateway, and what the tests use as
//! a real upstream.
//!
//! It shows which portal it is and every request header it received (HTML for browsers, JSON
//! for `Accept: application/json`), and the SHA-256 of any request body, so a test can prove
//! the gateway forwarded a body byte for byte. A portal with `own_login` has its own
//! username/password form and session cookie, like ecmsweb and bankomati.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http::{header, HeaderMap, Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;
use sha2::{Digest, Sha256};
use tokio::net::TcpListener;

mod pages;
mod websocket;

/// The demo application's own credentials (only for `own_login` portals).
pub const DEMO_USERNAME: &str = "demo";
pub const DEMO_PASSWORD: &str = "demo123";

#[derive(Clone, Debug)]
pub struct PortalInfo {
    /// `acq`, `b2b`, …
    pub name: String,
    pub title: String,
    /// The portal has its own login form after the gateway's.
    pub own_login: bool,
}

impl PortalInfo {
    fn app_cookie(&self) -> String {
        format!("{}_app_session", self.name)
    }
}

/// Binds `addr` (port 0 picks a free port) and serves until the task is dropped or aborted.
pub async fn spawn(
    addr: SocketAddr,
    info: PortalInfo,
) -> std::io::Result<(SocketAddr, tokio::task::JoinHandle<()>)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let info = Arc::new(info);
    let task = tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let info = info.clone();
            tokio::spawn(async move {
                let service = service_fn(move |req| handle(info.clone(), req));
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    });
    Ok((local, task))
}

type Body = Full<Bytes>;

const FORM_LIMIT: usize = 16 * 1024;

async fn handle(
    info: Arc<PortalInfo>,
    req: Request<Incoming>,
) -> Result<Response<Body>, Infallible> {
    if req.uri().path() == "/__demo/ws" {
        return Ok(websocket::accept(req));
    }
    let (parts, mut body) = req.into_parts();
    // Hash the body as it streams in: a 50 MiB upload is never held in memory.
    let mut hasher = Sha256::new();
    let mut length: u64 = 0;
    // The first bytes are kept for the own-login form.
    let mut head = Vec::new();
    while let Some(frame) = body.frame().await {
        match frame {
            Ok(frame) => {
                if let Some(data) = frame.data_ref() {
                    hasher.update(data);
                    length += data.len() as u64;
                    let room = FORM_LIMIT.saturating_sub(head.len());
                    head.extend_from_slice(&data[..room.min(data.len())]);
                }
            }
            Err(_) => return Ok(text(StatusCode::BAD_REQUEST, "body read error")),
        }
    }
    let body_sha256 = hex::encode(hasher.finalize());
    let path = parts.uri.path();

    if path == "/__demo/slow" {
        let ms = parts
            .uri
            .query()
            .and_then(|q| q.strip_prefix("ms="))
            .and_then(|ms| ms.parse().ok())
            .unwrap_or(5_000u64);
        tokio::time::sleep(Duration::from_millis(ms)).await;
    }

    if path == "/__demo/set-cookie" {
        return Ok(set_cookies(parts.uri.query().unwrap_or("")));
    }

    if info.own_login {
        if path == "/login" && parts.method == Method::POST {
            return Ok(own_login(&info, &head));
        }
        let logged_in =
            has_cookie(&parts.headers, &info.app_cookie()) || basic_auth_ok(&parts.headers);
        if !logged_in {
            return Ok(html(StatusCode::OK, pages::login(&info, false)));
        }
    }

    let headers: Vec<(String, String)> = parts
        .headers
        .iter()
        .map(|(n, v)| {
            (
                n.as_str().to_owned(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let wants_json = parts
        .headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/json"));
    if wants_json {
        let json = serde_json::json!({
            "portal": info.name,
            "title": info.title,
            "method": parts.method.as_str(),
            "uri": parts.uri.to_string(),
            "headers": headers,
            "body_len": length,
            "body_sha256": body_sha256,
        });
        return Ok(Response::builder()
            .status(StatusCode::OK)
            .header(header::CONTENT_TYPE, "application/json")
            .body(Full::new(Bytes::from(json.to_string())))
            .unwrap_or_default());
    }
    let page = pages::echo(
        &info,
        &pages::Echo {
            method: parts.method.as_str(),
            uri: &parts.uri.to_string(),
            headers: &headers,
            body_len: length,
            body_sha256: &body_sha256,
        },
    );
    Ok(html(StatusCode::OK, page))
}

/// Checks the posted `username=…&password=…` form; on success sets the application's own
/// session cookie and sends the browser to `/`.
fn own_login(info: &PortalInfo, form: &[u8]) -> Response<Body> {
    let form = String::from_utf8_lossy(form);
    let field = |name: &str| {
        form.split('&')
            .find_map(|pair| pair.strip_prefix(name)?.strip_prefix('='))
            .unwrap_or("")
            .to_owned()
    };
    if field("username") == DEMO_USERNAME && field("password") == DEMO_PASSWORD {
        let token = uuid::Uuid::new_v4().simple().to_string();
        return Response::builder()
            .status(StatusCode::SEE_OTHER)
            .header(header::LOCATION, "/")
            .header(
                header::SET_COOKIE,
                format!(
                    "{}={}; Path=/; Secure; HttpOnly; SameSite=Lax",
                    info.app_cookie(),
                    token
                ),
            )
            .body(Full::new(Bytes::new()))
            .unwrap_or_default();
    }
    html(StatusCode::OK, pages::login(info, true))
}

/// A test endpoint: each `c=` query value (percent-encoded) comes back as one `Set-Cookie`
/// line, so a test can prove which cookies a portal can set in the browser through the
/// gateway. Values that are not valid header values are left out.
fn set_cookies(query: &str) -> Response<Body> {
    let mut response = text(StatusCode::OK, "cookies set");
    for value in query.split('&').filter_map(|p| p.strip_prefix("c=")) {
        let line = percent_decode(value);
        if let Ok(v) = http::HeaderValue::from_str(&line) {
            response.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    response
}

/// `%XX` and `+` decoding of a query value; malformed escapes are kept as they are.
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b'+', _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|c| {
            c.trim()
                .split_once('=')
                .is_some_and(|(n, v)| n == name && !v.is_empty())
        })
}

fn basic_auth_ok(headers: &HeaderMap) -> bool {
    // "demo:demo123" in base64.
    headers
        .get(header::AUTHORIZATION)
        .is_some_and(|v| v.as_bytes() == b"Basic ZGVtbzpkZW1vMTIz")
}

fn text(status: StatusCode, body: &'static str) -> Response<Body> {
    let mut r = Response::new(Full::new(Bytes::from_static(body.as_bytes())));
    *r.status_mut() = status;
    r
}

/// A rendered page; a page that could not be rendered is a plain-text 500 (and logged).
fn html(status: StatusCode, page: Result<String, String>) -> Response<Body> {
    let page = match page {
        Ok(page) => page,
        Err(e) => {
            tracing::error!(error = %e, "a page could not be rendered");
            return text(
                StatusCode::INTERNAL_SERVER_ERROR,
                "the demo portal could not render this page",
            );
        }
    };
    Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, "text/html; charset=utf-8")
        .body(Full::new(Bytes::from(page)))
        .unwrap_or_default()
}
