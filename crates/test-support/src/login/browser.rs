//! A browser-like client for the gateway: a cookie jar that honours `Domain`, `Path` and
//! `Max-Age=0` as a browser does, navigations with the headers a browser sends, and no
//! redirect followed unless asked.

use std::net::SocketAddr;

use super::{portal_url, unescape, World};
use crate::{Gateway, Pki};

#[derive(Clone, Debug)]
struct Cookie {
    name: String,
    value: String,
    /// `Some(domain)`: sent to the domain and every name under it; `None`: host-only.
    domain: Option<String>,
    host: String,
    path: String,
}

/// A browser: keeps cookies as a browser does, follows no redirect on its own.
pub struct Browser {
    pub http: reqwest::Client,
    jar: Vec<Cookie>,
    /// Every `Set-Cookie` line received, as sent.
    pub set_cookies: Vec<String>,
}

pub struct Page {
    pub status: u16,
    pub url: String,
    pub location: Option<String>,
    pub headers: reqwest::header::HeaderMap,
    pub body: String,
}

impl Page {
    pub fn hidden(&self, name: &str) -> String {
        crate::http::hidden_input(&self.body, name)
            .unwrap_or_else(|| panic!("no {name} on {}:\n{}", self.url, self.body))
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(&self.body)
            .unwrap_or_else(|_| panic!("not JSON ({}) at {}: {}", self.status, self.url, self.body))
    }
}

impl Browser {
    pub fn new(world: &World) -> Self {
        Self::with_identity(world, None)
    }

    /// A browser holding the client certificate `name` of the test PKI.
    pub fn with_certificate(world: &World, name: &str) -> Self {
        let mut pem = std::fs::read(world.pki.path(&format!("clients/{name}.crt"))).expect("cert");
        pem.extend(std::fs::read(world.pki.path(&format!("clients/{name}.key"))).expect("key"));
        Self::with_identity(
            world,
            Some(reqwest::Identity::from_pem(&pem).expect("identity")),
        )
    }

    fn with_identity(world: &World, identity: Option<reqwest::Identity>) -> Self {
        Self::on(&world.gw, &world.pki, identity)
    }

    /// A browser for `gw`, trusting `pki`'s CA (which also serves `rekono.localhost`).
    pub fn on(gw: &Gateway, pki: &Pki, identity: Option<reqwest::Identity>) -> Self {
        let ca = std::fs::read(pki.path("ca.crt")).expect("ca");
        let mut b = gw
            .client_builder()
            .resolve("rekono.localhost", SocketAddr::from(([127, 0, 0, 1], 0)))
            .resolve("staff-idp.localhost", SocketAddr::from(([127, 0, 0, 1], 0)));
        b = b.add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca"));
        if let Some(id) = identity {
            b = b.identity(id);
        }
        Self {
            http: b.build().expect("client"),
            jar: Vec::new(),
            set_cookies: Vec::new(),
        }
    }

    fn cookie_header(&self, url: &url::Url) -> Option<String> {
        let host = url.host_str()?;
        let path = url.path();
        let pairs: Vec<String> = self
            .jar
            .iter()
            .filter(|c| match &c.domain {
                Some(d) => host == d || host.ends_with(&format!(".{d}")),
                None => host == c.host,
            })
            .filter(|c| path.starts_with(&c.path))
            .map(|c| format!("{}={}", c.name, c.value))
            .collect();
        (!pairs.is_empty()).then(|| pairs.join("; "))
    }

    fn store(&mut self, url: &url::Url, set_cookie: &str) {
        let mut parts = set_cookie.split(';');
        let Some((name, value)) = parts.next().and_then(|p| p.trim().split_once('=')) else {
            return;
        };
        let mut domain = None;
        let mut path = "/".to_owned();
        let mut delete = false;
        for attr in parts {
            let (k, v) = attr.trim().split_once('=').unwrap_or((attr.trim(), ""));
            match k.to_ascii_lowercase().as_str() {
                "domain" => domain = Some(v.trim_start_matches('.').to_ascii_lowercase()),
                "path" => path = v.to_owned(),
                "max-age" if v.trim() == "0" => delete = true,
                _ => {}
            }
        }
        let host = url.host_str().unwrap_or_default().to_owned();
        self.jar.retain(|c| {
            !(c.name == name
                && c.domain == domain
                && c.path == path
                && (domain.is_some() || c.host == host))
        });
        if !delete && !value.is_empty() {
            self.jar.push(Cookie {
                name: name.to_owned(),
                value: value.to_owned(),
                domain,
                host,
                path,
            });
        }
    }

    /// The value of a cookie the browser holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|c| c.name == name)
            .map(|c| c.value.clone())
    }

    /// Certificate login as a person does it: the portal sends the browser to the Bankart
    /// login page, whose "Prijava s certifikatom" link goes to the certificate-login host.
    /// Returns that host's answer (a redirect on success, a reason page otherwise).
    pub async fn certificate_login(&mut self, world: &World, portal: &str) -> Page {
        let link = self.certificate_link(world, portal).await;
        self.navigate(&link).await
    }

    /// [`Browser::certificate_login`], following the redirects to the end.
    pub async fn certificate_login_follow(&mut self, world: &World, portal: &str) -> Page {
        let link = self.certificate_link(world, portal).await;
        self.follow(&link).await
    }

    async fn certificate_link(&mut self, world: &World, portal: &str) -> String {
        let login = self.follow(&portal_url(world, portal, "/home")).await;
        login
            .body
            .split("href=\"")
            .filter_map(|s| s.split('"').next())
            .map(unescape)
            .find(|s| s.starts_with("https://certlogin."))
            .unwrap_or_else(|| panic!("no certificate link at {}: {}", login.url, login.body))
    }

    /// The value of a cookie the browser holds for `host` (host-only cookies: each host has
    /// its own).
    pub fn cookie_at(&self, host: &str, name: &str) -> Option<String> {
        self.jar
            .iter()
            .find(|c| {
                c.name == name
                    && match &c.domain {
                        Some(d) => host == d || host.ends_with(&format!(".{d}")),
                        None => c.host == host,
                    }
            })
            .map(|c| c.value.clone())
    }

    /// Sets the value of `host`'s own cookie `name`.
    pub fn set_cookie_at(&mut self, host: &str, name: &str, value: &str) {
        for c in self
            .jar
            .iter_mut()
            .filter(|c| c.name == name && c.domain.is_none() && c.host == host)
        {
            c.value = value.to_owned();
        }
    }

    pub fn set_cookie_value(&mut self, name: &str, value: &str) {
        for c in self.jar.iter_mut().filter(|c| c.name == name) {
            c.value = value.to_owned();
        }
    }

    /// Copies `name` as `other` holds it into this browser's jar (an attacker carrying a
    /// cookie from one browser into another).
    pub fn carry_cookie_from(&mut self, other: &Browser, name: &str) {
        for c in other.jar.iter().filter(|c| c.name == name) {
            self.jar.push(Cookie {
                name: c.name.clone(),
                value: c.value.clone(),
                domain: c.domain.clone(),
                host: c.host.clone(),
                path: c.path.clone(),
            });
        }
    }

    pub fn cookie_names(&self) -> Vec<String> {
        self.jar.iter().map(|c| c.name.clone()).collect()
    }

    pub async fn send(
        &mut self,
        method: reqwest::Method,
        url: &str,
        form: Option<&[(&str, &str)]>,
        headers: &[(&str, &str)],
    ) -> Page {
        let parsed = url::Url::parse(url).unwrap_or_else(|_| panic!("bad url {url}"));
        let mut req = self.http.request(method, url);
        if let Some(c) = self.cookie_header(&parsed) {
            req = req.header("cookie", c);
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        if let Some(f) = form {
            req = req.form(f);
        }
        let resp = req.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
        for c in resp.headers().get_all("set-cookie") {
            let line = c.to_str().expect("ascii");
            self.set_cookies.push(line.to_owned());
            self.store(&parsed, line);
        }
        let status = resp.status().as_u16();
        let location = resp.headers().get("location").map(|l| {
            let l = l.to_str().expect("ascii");
            parsed
                .join(l)
                .map(|u| u.to_string())
                .unwrap_or_else(|_| l.to_owned())
        });
        let headers = resp.headers().clone();
        let body = resp.text().await.expect("body");
        Page {
            status,
            url: url.to_owned(),
            location,
            headers,
            body,
        }
    }

    /// Navigations to both URLs at once, as two tabs of this browser send them: each carries
    /// the cookies the browser holds now, both are in flight together, and the cookies they
    /// set are kept in the order their answers arrived (the later one wins, as in a browser).
    pub async fn navigate_together(&mut self, urls: [&str; 2]) -> [Page; 2] {
        let request = |url: &str| {
            let parsed = url::Url::parse(url).unwrap_or_else(|_| panic!("bad url {url}"));
            let mut req = self
                .http
                .get(url)
                .header("accept", "text/html")
                .header("sec-fetch-mode", "navigate");
            if let Some(c) = self.cookie_header(&parsed) {
                req = req.header("cookie", c);
            }
            async move {
                let resp = req.send().await.unwrap_or_else(|e| panic!("{parsed}: {e}"));
                let arrived = std::time::Instant::now();
                let status = resp.status().as_u16();
                let headers = resp.headers().clone();
                let body = resp.text().await.expect("body");
                (arrived, parsed, status, headers, body)
            }
        };
        let (a, b) = tokio::join!(request(urls[0]), request(urls[1]));
        let answers = [a, b];
        let order: Vec<usize> = if answers[0].0 <= answers[1].0 {
            vec![0, 1]
        } else {
            vec![1, 0]
        };
        for i in order {
            let (_, parsed, _, headers, _) = &answers[i];
            for c in headers.get_all("set-cookie") {
                let line = c.to_str().expect("ascii").to_owned();
                self.set_cookies.push(line.clone());
                self.store(&parsed.clone(), &line);
            }
        }
        answers.map(|(_, parsed, status, headers, body)| Page {
            status,
            location: headers
                .get("location")
                .and_then(|l| l.to_str().ok())
                .map(|l| {
                    parsed
                        .join(l)
                        .map(|u| u.to_string())
                        .unwrap_or_else(|_| l.to_owned())
                }),
            url: parsed.to_string(),
            headers,
            body,
        })
    }

    /// A page load as a browser does it (`Accept: text/html`, `Sec-Fetch-Mode: navigate`).
    pub async fn navigate(&mut self, url: &str) -> Page {
        self.send(
            reqwest::Method::GET,
            url,
            None,
            &[("accept", "text/html"), ("sec-fetch-mode", "navigate")],
        )
        .await
    }

    /// Follows redirects (as navigations) until a page that is not a redirect.
    pub async fn follow(&mut self, url: &str) -> Page {
        let mut page = self.navigate(url).await;
        for _ in 0..20 {
            match (page.status, page.location.clone()) {
                (301 | 302 | 303 | 307 | 308, Some(next)) => page = self.navigate(&next).await,
                _ => return page,
            }
        }
        panic!("too many redirects from {url}");
    }

    pub async fn post_form(&mut self, url: &str, form: &[(&str, &str)]) -> Page {
        let page = self
            .send(
                reqwest::Method::POST,
                url,
                Some(form),
                &[("accept", "text/html")],
            )
            .await;
        match (page.status, page.location.clone()) {
            (301..=303, Some(next)) => self.follow(&next).await,
            _ => page,
        }
    }

    /// An API call (JSON, not a navigation).
    pub async fn api(&mut self, url: &str) -> Page {
        self.send(
            reqwest::Method::GET,
            url,
            None,
            &[("accept", "application/json")],
        )
        .await
    }
}
