//! Harness for the login tests: the Rekono simulator in-process, the real gateway binary
//! registered with it as a relying party, six demo portals, and a browser-like client whose
//! cookie jar honours `Domain`, `Path` and `Max-Age=0` as a browser does.
#![allow(dead_code)]

use std::net::SocketAddr;

use super::{free_port, host, six_demo_portals, Gateway, Pki};

pub const CLIENT_ID: &str = "prehod-test";
/// The session cookie: host-only (`__Host-`), one per host.
pub const SESSION: &str = "__Host-prehod_session";
/// A form kept across the login, on the portal that kept it.
pub const POST: &str = "__Host-prehod_post";
pub const CLIENT_SECRET: &str = "prehod-test-secret";

pub struct World {
    pub _responder: Option<Responder>,
    pub pki: Pki,
    pub sim: prehod_rekono_sim::RunningSim,
    pub gw: Gateway,
    pub _portals: Vec<tokio::task::JoinHandle<()>>,
}

/// Options for one world.
pub struct Options {
    pub idle: &'static str,
    pub absolute: &'static str,
    /// Extra lines per portal, e.g. `("bips", "min_level: 20")`.
    pub portal_yaml: Vec<(&'static str, &'static str)>,
    /// Where Rekono posts back-channel logout tokens instead of the gateway.
    pub backchannel: Option<String>,
    /// The gateway authenticates to Rekono with `private_key_jwt`; Rekono knows no secret.
    pub private_key_jwt: bool,
    /// With `private_key_jwt`: the client key is RSA (RS256), not EC P-256 (ES256).
    pub rsa_client_key: bool,
    /// Certificate login on certlogin.bankart.localhost, trusting the dev CA.
    pub certificates: Option<CertOptions>,
    /// Give the simulator account with this e-mail this `sub`.
    pub account_sub: Option<(&'static str, &'static str)>,
    /// More top-level YAML for the gateway (e.g. `rate_limits:`).
    pub top_yaml: &'static str,
    /// `session.cookie_scope: parent_domain` (one cookie on bankart.localhost) instead of
    /// host-only cookies.
    pub parent_domain: bool,
    /// More lines under `login:` (e.g. `portal_prefix: /.gw/`).
    pub login_yaml: &'static str,
    /// More lines under `server:` (e.g. `body_buffer_memory: 1MiB`).
    pub server_yaml: &'static str,
}

impl Default for Options {
    fn default() -> Self {
        Self {
            idle: "30m",
            absolute: "10h",
            portal_yaml: vec![("bips", "min_level: 20"), ("bws", "min_level: 30")],
            backchannel: None,
            private_key_jwt: false,
            rsa_client_key: false,
            certificates: None,
            account_sub: None,
            top_yaml: "",
            parent_domain: false,
            login_yaml: "",
            server_yaml: "",
        }
    }
}

/// How the dev CA is trusted for certificate login.
#[derive(Clone, Default)]
pub struct CertOptions {
    /// A CRL file relative to the PKI directory, and the refresh interval.
    pub crl: Option<(&'static str, &'static str)>,
    pub ocsp: Option<Ocsp>,
    /// The anchor's certificate-policy allow-list.
    pub policies: Option<&'static str>,
    /// Serve the CRL file over http and configure that URL instead of the file.
    pub crl_over_http: bool,
    /// `certificate_login.crl_grace`.
    pub crl_grace: Option<&'static str>,
    /// The anchor's `user_id` (default `serial_number`).
    pub user_id: Option<&'static str>,
    /// Check CRL distribution points named in the certificates.
    pub distribution_points: bool,
    /// More YAML lines for the anchor (e.g. its own `max_chain_depth`).
    pub anchor_yaml: Option<&'static str>,
    /// Trust the PKI's "untrusted" CA as a second anchor, mapping users by common name.
    pub second_anchor: bool,
    pub max_chain_depth: Option<u32>,
    /// Trust the PKI's `future-ca.crt` (valid only from tomorrow) as another anchor.
    pub future_anchor: bool,
    /// An anchor listed *first* (the untrusted CA, no users here) whose CRL comes from this URL.
    pub leading_anchor_crl: Option<String>,
    /// `certificate_login.fetch_timeout`.
    pub fetch_timeout: Option<&'static str>,
    /// The anchor's `ca` holds the dev CA's intermediate after the root (so that the
    /// intermediate's CRLs can be configured).
    pub ca_bundle: bool,
    /// More YAML lines for the anchor, written as given (indented by the harness).
    pub anchor_lines: Vec<String>,
    /// `certificate_login.crl_refresh` (otherwise the `crl` option's, or 1m).
    pub crl_refresh: Option<&'static str>,
}

#[derive(Clone, Copy)]
pub enum Ocsp {
    /// A real `openssl ocsp` responder for the world's CA: `valid` good, `revoked` revoked.
    Responder,
    /// A real `openssl ocsp` responder for the dev CA's intermediate, signing with its key:
    /// `deep` (issued by the intermediate) revoked. The anchor's policy is `soft_fail`, so an
    /// answer that cannot be used (asked with the wrong issuer) would let `deep` through.
    IntermediateResponder,
    /// A real `openssl ocsp` responder for the world's CA that signs with the root's key and
    /// puts no certificate in its answers (`-resp_no_certs`); the anchor's policy is
    /// `soft_fail`, so an answer that is not recognised lets `revoked` through.
    RootWithoutCertificates,
    /// A responder address where nothing listens.
    Unreachable { soft_fail: bool },
}

/// `openssl ocsp` running as a responder on loopback; stopped when dropped.
pub struct Responder {
    child: std::process::Child,
    pub url: String,
}

impl Drop for Responder {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn ocsp_responder(pki: &super::Pki, kind: Ocsp) -> Responder {
    let index = pki.path("ocsp-index.txt");
    let (lines, ca, key) = match kind {
        Ocsp::IntermediateResponder => (
            "R\t301231235959Z\t251101000000Z\t03F0\tunknown\t/CN=deep\n",
            "intermediate.crt",
            "intermediate.key",
        ),
        _ => (
            "V\t301231235959Z\t\t03E8\tunknown\t/CN=valid\nR\t301231235959Z\t251101000000Z\t03EA\tunknown\t/CN=revoked\n",
            "ca.crt",
            "ca.key",
        ),
    };
    std::fs::write(&index, lines).expect("index");
    let port = free_port();
    let mut child = std::process::Command::new("openssl")
        .args(["ocsp", "-index"])
        .arg(&index)
        .args(["-port", &port.to_string(), "-rsigner"])
        .arg(pki.path(ca))
        .arg("-rkey")
        .arg(pki.path(key))
        .arg("-CA")
        .arg(pki.path(ca))
        .args(["-nmin", "5", "-ignore_err"])
        .args(if matches!(kind, Ocsp::RootWithoutCertificates) {
            &["-resp_no_certs"][..]
        } else {
            &[][..]
        })
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("openssl ocsp");
    // Ready when it says so. (Not by connecting: it serves one connection at a time, and a
    // connection that sends nothing leaves it waiting for good.)
    let (tx, rx) = std::sync::mpsc::channel();
    for stream in [
        child
            .stdout
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
        child
            .stderr
            .take()
            .map(|s| Box::new(s) as Box<dyn std::io::Read + Send>),
    ]
    .into_iter()
    .flatten()
    {
        let tx = tx.clone();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stream)
                .lines()
                .map_while(Result::ok)
            {
                if line.contains("waiting for OCSP client connections") {
                    let _ = tx.send(());
                }
            }
        });
    }
    rx.recv_timeout(std::time::Duration::from_secs(10))
        .expect("the OCSP responder did not start");
    Responder {
        child,
        url: format!("http://127.0.0.1:{port}/"),
    }
}

pub async fn world(options: Options) -> World {
    // The HTTPS port is part of the redirect URI registered at Rekono, so it is chosen first;
    // if another process takes it before the gateway binds it, everything starts again.
    for _ in 0..5 {
        if let Some(world) = try_world(&options).await {
            return world;
        }
    }
    panic!("five attempts to start the gateway lost its port to another process");
}

async fn try_world(options: &Options) -> Option<World> {
    let pki = Pki::new();
    let port = free_port();
    let login_url = format!("https://login.bankart.localhost:{port}");
    let client_key = pki.path("oidc-client.key");
    if options.private_key_jwt {
        let key = if options.rsa_client_key {
            openssl::pkey::PKey::from_rsa(openssl::rsa::Rsa::generate(2048).expect("key"))
                .expect("pkey")
        } else {
            let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                .expect("curve");
            openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
                .expect("pkey")
        };
        std::fs::write(&client_key, key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
        // A key file others may read is refused (as the gateway's own keys are).
        std::fs::set_permissions(
            &client_key,
            std::os::unix::fs::PermissionsExt::from_mode(0o600),
        )
        .expect("chmod");
        std::fs::write(
            pki.path("oidc-client.pub"),
            key.public_key_to_pem().expect("pem"),
        )
        .expect("write");
    }
    let rp = prehod_rekono_sim::config::RawClient {
        client_id: CLIENT_ID.into(),
        name: "Bankart Varni Spletni Prehod".into(),
        secret: (!options.private_key_jwt).then(|| CLIENT_SECRET.into()),
        jwt_keys: if options.private_key_jwt {
            vec![pki.path("oidc-client.pub").display().to_string()]
        } else {
            vec![]
        },
        redirect_uris: vec![format!("{login_url}/oidc/callback")],
        post_logout_redirect_uris: vec![format!("{login_url}/logged-out")],
        backchannel_logout_uri: Some(
            options
                .backchannel
                .clone()
                .unwrap_or_else(|| format!("{login_url}/oidc/backchannel-logout")),
        ),
        id_token_alg: None,
    };
    let config = super::rekono::sim_config(
        &pki,
        vec![prehod_rekono_sim::config::client(&rp, pki.dir.path()).expect("client")],
        Some(pki.path("ca.crt")),
    );
    let mut config = config;
    if let Some((email, sub)) = options.account_sub {
        for account in config.accounts.iter_mut().filter(|a| a.email == email) {
            account.sub = sub.to_owned();
        }
    }
    let sim = prehod_rekono_sim::spawn(config).await.expect("simulator");
    let (mut setup, portals) = six_demo_portals().await;
    for (portal, yaml) in &options.portal_yaml {
        setup = setup.portal_yaml(portal, yaml);
    }
    setup.https_port = Some(port);
    setup.top_extra = options.top_yaml.to_owned();
    setup.server_extra = options.server_yaml.to_owned();
    let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    let responder = options
        .certificates
        .as_ref()
        .and_then(|c| c.ocsp)
        .filter(|o| {
            matches!(
                o,
                Ocsp::Responder | Ocsp::IntermediateResponder | Ocsp::RootWithoutCertificates
            )
        })
        .map(|o| ocsp_responder(&pki, o));
    let crl_url = match &options.certificates {
        Some(CertOptions {
            crl: Some((crl, _)),
            crl_over_http: true,
            ..
        }) => Some(super::serve_file(pki.path(crl)).await),
        _ => None,
    };
    setup.auth = Some(format!(
        "login:\n  host: login.bankart.localhost\n  url: {login_url}\n{login_extra}\
session:\n{scope}  idle_timeout: {idle}\n  absolute_timeout: {absolute}\n  keys: [\"{key}\"]\n\
oidc:\n  issuer: {issuer}\n  client_id: {CLIENT_ID}\n{client_auth}  ca: {ca}\n  timeout: 5s\n\
assertion:\n  key: {assertion}\n{certificates}",
        scope = if options.parent_domain {
            "  cookie_scope: parent_domain\n  cookie_domain: bankart.localhost\n"
        } else {
            ""
        },
        login_extra = options.login_yaml,
        idle = options.idle,
        absolute = options.absolute,
        key = key.trim(),
        issuer = sim.issuer(),
        ca = pki.path("ca.crt").display(),
        assertion = pki.path("assertion.key").display(),
        certificates = match &options.certificates {
            Some(c) => {
                let mut yaml = format!(
                    "certificate_login:\n  host: certlogin.bankart.localhost\n  level: 30\n  crl_refresh: {}\n  anchors:\n    - name: prehod dev CA\n      ca: {}\n      user_id: serial_number\n",
                    c.crl_refresh.unwrap_or(c.crl.map_or("1m", |(_, r)| r)),
                    if c.ca_bundle {
                        let bundle = pki.path("ca-and-intermediate.crt");
                        let mut pem = std::fs::read(pki.path("ca.crt")).expect("ca");
                        pem.extend(std::fs::read(pki.path("intermediate.crt")).expect("intermediate"));
                        std::fs::write(&bundle, pem).expect("bundle");
                        bundle
                    } else {
                        pki.path("ca.crt")
                    }
                    .display(),
                );
                if let Some(url) = &c.leading_anchor_crl {
                    yaml = yaml.replace("  anchors:\n", &format!(
                        "  anchors:\n    - name: leading CA\n      ca: {}\n      crls: [\"{url}\"]\n",
                        pki.path("untrusted-ca.crt").display()
                    ));
                }
                if let Some(t) = c.fetch_timeout {
                    yaml = yaml.replace(
                        "  level: 30\n",
                        &format!("  level: 30\n  fetch_timeout: {t}\n"),
                    );
                }
                if let Some(extra) = c.anchor_yaml {
                    yaml.push_str(&format!("      {extra}\n"));
                }
                for line in &c.anchor_lines {
                    yaml.push_str(&format!("      {line}\n"));
                }
                if c.distribution_points {
                    yaml.push_str("      crl_distribution_points: true\n");
                }
                if let Some(user_id) = c.user_id {
                    yaml = yaml.replace(
                        "      user_id: serial_number\n",
                        &format!("      user_id: \"{user_id}\"\n"),
                    );
                }
                if let Some(grace) = c.crl_grace {
                    yaml = yaml.replace(
                        "  level: 30\n",
                        &format!("  level: 30\n  crl_grace: {grace}\n"),
                    );
                }
                if let Some(depth) = c.max_chain_depth {
                    yaml = yaml.replace(
                        "  level: 30\n",
                        &format!("  level: 30\n  max_chain_depth: {depth}\n"),
                    );
                }
                if let Some(policies) = c.policies {
                    yaml.push_str(&format!("      policies: [\"{policies}\"]\n"));
                }
                if let Some((crl, _)) = c.crl {
                    let source = match crl_url {
                        Some(addr) => format!("http://{addr}/{crl}"),
                        None => pki.path(crl).display().to_string(),
                    };
                    yaml.push_str(&format!("      crls: [\"{source}\"]\n"));
                }
                if c.future_anchor {
                    yaml.push_str(&format!(
                        "    - name: future CA\n      ca: {}\n      user_id: serial_number\n",
                        pki.path("future-ca.crt").display()
                    ));
                }
                if c.second_anchor {
                    yaml.push_str(&format!(
                        "    - name: second CA\n      ca: {}\n      user_id: common_name\n",
                        pki.path("untrusted-ca.crt").display()
                    ));
                }
                match c.ocsp {
                    Some(
                        o @ (Ocsp::Responder
                        | Ocsp::IntermediateResponder
                        | Ocsp::RootWithoutCertificates),
                    ) => {
                        let url = responder
                            .as_ref()
                            .map(|r| r.url.clone())
                            .unwrap_or_default();
                        let policy = if matches!(o, Ocsp::Responder) {
                            "fail_closed"
                        } else {
                            "soft_fail"
                        };
                        yaml.push_str(&format!("      ocsp:\n        url: {url}\n        policy: {policy}\n        timeout: 2s\n"));
                    }
                    Some(Ocsp::Unreachable { soft_fail }) => {
                        let policy = if soft_fail {
                            "soft_fail"
                        } else {
                            "fail_closed"
                        };
                        yaml.push_str(&format!("      ocsp:\n        url: http://127.0.0.1:{}/\n        policy: {policy}\n        timeout: 1s\n", free_port()));
                    }
                    None => {}
                }
                yaml
            }
            None => String::new(),
        },
        client_auth = if options.private_key_jwt {
            format!(
                "  client_auth: private_key_jwt\n  client_key: {}\n",
                client_key.display()
            )
        } else {
            format!("  client_secret: {CLIENT_SECRET}\n")
        },
    ));

    let gw = Gateway::try_start(&pki, &setup)?;
    gw.wait_ready();
    Some(World {
        _responder: responder,
        pki,
        sim,
        gw,
        _portals: portals,
    })
}

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
        let marker = format!("name=\"{name}\" value=\"");
        let start = self
            .body
            .find(&marker)
            .unwrap_or_else(|| panic!("no {name} on {}:\n{}", self.url, self.body))
            + marker.len();
        self.body[start..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned()
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
            .resolve("rekono.localhost", SocketAddr::from(([127, 0, 0, 1], 0)));
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

pub fn sim_url(world: &World, path: &str) -> String {
    format!("{}{path}", world.sim.sim.config.public_url)
}

pub fn portal_url(world: &World, portal: &str, path: &str) -> String {
    format!("https://{}:{}{path}", host(portal), world.gw.https.port())
}

pub fn login_url(world: &World, path: &str) -> String {
    format!(
        "https://login.bankart.localhost:{}{path}",
        world.gw.https.port()
    )
}

/// From the Rekono login page: e-mail and password, then the chooser page.
pub async fn rekono_password(
    world: &World,
    browser: &mut Browser,
    page: &Page,
    account: (&str, &str),
) -> Page {
    assert!(
        page.body.contains("Prijavljate se v storitev"),
        "not the Rekono login page: {} {}",
        page.url,
        page.body
    );
    let (tx, csrf) = (page.hidden("tx"), page.hidden("csrf"));
    browser
        .post_form(
            &sim_url(world, "/openid-connect-server-webapp/login"),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", account.0),
                ("password", account.1),
            ],
        )
        .await
}

pub fn totp_now(secret: &str) -> String {
    let secret = prehod_rekono_sim::totp::base32_decode(secret).expect("base32");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    prehod_rekono_sim::totp::totp(&secret, now)
}

/// Chooser → OnePass code → back at the gateway and on to the portal.
pub async fn rekono_otp(
    world: &World,
    browser: &mut Browser,
    chooser: &Page,
    secret: &str,
) -> Page {
    assert!(
        chooser.body.contains("Izberite način prijave"),
        "{}",
        chooser.body
    );
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post_form(
            &sim_url(world, "/openid-connect-server-webapp/factor/otp/verify"),
            &[("tx", &tx), ("csrf", &csrf), ("code", &totp_now(secret))],
        )
        .await
}

/// Opens `url` (a portal page), chooses Rekono on the Bankart login page, and logs in with
/// the OnePass code of `account`. Returns the portal's page (JSON).
pub async fn login_otp(
    world: &World,
    browser: &mut Browser,
    url: &str,
    account: (&str, &str),
    secret: &str,
) -> Page {
    let login_page = browser.follow(url).await;
    assert!(
        login_page
            .body
            .contains("Pozdravljeni na prijavni strani Bankart"),
        "{}: {}",
        login_page.url,
        login_page.body
    );
    let rekono = browser.follow(&rekono_link(world, &login_page)).await;
    let chooser = rekono_password(world, browser, &rekono, account).await;
    let back = rekono_otp(world, browser, &chooser, secret).await;
    // The portal page after the gateway's redirect back: fetch it as JSON.
    browser.api(&back.url).await
}

/// The "Prijava z Rekono računom" link of a Bankart login page, absolute.
pub fn rekono_link(world: &World, page: &Page) -> String {
    let marker = "id=\"login-rekono\" href=\"";
    let start = page.body.find(marker).expect("Rekono button") + marker.len();
    let href = page.body[start..].split('"').next().unwrap_or_default();
    login_url(world, &unescape(href))
}

/// The `href` of the element with `id` on a gateway page, absolute (relative links are on the
/// login host).
pub fn link_by_id(world: &World, page: &Page, id: &str) -> Option<String> {
    let marker = format!("id=\"{id}\" href=\"");
    let start = page.body.find(&marker)? + marker.len();
    let href = unescape(page.body[start..].split('"').next().unwrap_or_default());
    Some(if href.starts_with("https://") {
        href
    } else {
        login_url(world, &href)
    })
}

/// `s` as a URL query component.
pub fn encode_component(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// From the step-up page (which says which level the application needs) on to Rekono.
pub async fn continue_step_up(world: &World, browser: &mut Browser, page: &Page) -> Page {
    assert!(
        page.body.contains("id=\"step-up-continue\""),
        "not the step-up page: {} {}",
        page.url,
        page.body
    );
    let next = link_by_id(world, page, "step-up-continue").expect("continue link");
    browser.follow(&next).await
}

/// Undoes HTML escaping in an attribute value (`&amp;`, `&#x2f;`, `&#61;`…).
pub fn unescape(s: &str) -> String {
    let mut out = String::new();
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let Some(end) = tail.find(';') else {
            out.push_str(tail);
            return out;
        };
        let entity = &tail[1..end];
        let decoded = match entity {
            "amp" => Some('&'),
            "lt" => Some('<'),
            "gt" => Some('>'),
            "quot" => Some('"'),
            e if e.starts_with("#x") => u32::from_str_radix(&e[2..], 16)
                .ok()
                .and_then(char::from_u32),
            e if e.starts_with('#') => e[1..].parse().ok().and_then(char::from_u32),
            _ => None,
        };
        match decoded {
            Some(c) => {
                out.push(c);
                rest = &tail[end + 1..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Logs Sara in at Rekono for `portal_url` and returns the gateway callback URL Rekono sends
/// the browser to — without following it, so a test can use (or abuse) it.
pub async fn callback_url(world: &World, browser: &mut Browser, portal_url: &str) -> String {
    let login_page = browser.follow(portal_url).await;
    let rekono = browser.follow(&rekono_link(world, &login_page)).await;
    let chooser = rekono_password(world, browser, &rekono, super::rekono::SREDNJA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let code = totp_now(super::rekono::SREDNJA_TOTP);
    let to_gateway = browser
        .send(
            reqwest::Method::POST,
            &sim_url(world, "/openid-connect-server-webapp/factor/otp/verify"),
            Some(&[
                ("tx", tx.as_str()),
                ("csrf", csrf.as_str()),
                ("code", code.as_str()),
            ]),
            &[],
        )
        .await;
    to_gateway
        .location
        .expect("Rekono redirects to the gateway's callback")
}

/// Logs out as a person does: the confirmation page at `GET /logout`, then its form.
/// Returns the page at the end of the redirects.
pub async fn log_out(world: &World, browser: &mut Browser) -> Page {
    let confirm = browser.navigate(&login_url(world, "/logout")).await;
    assert_eq!(
        confirm.status, 200,
        "the confirmation page: {}",
        confirm.body
    );
    let csrf = unescape(&confirm.hidden("csrf"));
    browser
        .post_form(&login_url(world, "/logout"), &[("csrf", &csrf)])
        .await
}
