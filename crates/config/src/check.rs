//! Turns `proxy.yaml` text into a [`Config`], collecting every problem on the way.
//!
//! Each section, each portal and each certificate is decoded on its own, so a type error in
//! one does not hide the problems in the others.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use http::HeaderName;
use openssl::asn1::Asn1Time;
use openssl::pkey::PKey;
use openssl::x509::X509;
use serde::de::DeserializeOwned;
use serde_yaml::{Mapping, Value};

mod limits;

use crate::positions::{Position, Positions};
use crate::{
    parse_duration, raw, Admin, AppLogin, Cidr, Config, ConfigError, Cookies, Headers, HealthCheck,
    Listen, Portal, Problem, Server, ServerCertificate, Target, Timeouts, Tls, TlsVersion,
    Upstream, UpstreamTls,
};

/// Each client connection's read buffer under TLS (`server.read_buffer`): one TLS record
/// and a little more, so a read takes a whole record in one system call; pingora's own default
/// (64 KiB) is held by every idle keep-alive connection.
pub const DEFAULT_READ_BUFFER: usize = 16 * 1024 + 512;

const TOP_LEVEL_KEYS: &[&str] = &[
    "certificate_login",
    "login",
    "session",
    "oidc",
    "assertion",
    "listen",
    "admin",
    "tls",
    "trusted_proxies",
    "timeouts",
    "headers",
    "cookies",
    "server",
    "rate_limits",
    "portals",
    "state",
    "reload",
];

struct Checker<'a> {
    positions: Positions,
    problems: Vec<Problem>,
    /// Relative file paths in the config are relative to this directory.
    base_dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The values read from `${file:…}`: no problem message may repeat one.
    secrets: Vec<String>,
    /// Every file read, stamped before it was read.
    sources: Vec<crate::sources::SourceFile>,
}

pub(crate) fn check(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut checker = Checker {
        positions: Positions::index(text),
        problems: Vec::new(),
        base_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        env,
        secrets: Vec::new(),
        sources: Vec::new(),
    };
    let config = checker.config(path, text);
    match config {
        Some(mut config) if checker.problems.is_empty() => {
            config.sources = crate::sources::dedup(checker.sources);
            Ok(config)
        }
        _ => {
            let mut problems = checker.problems;
            for p in &mut problems {
                p.message = redact(&p.message, &checker.secrets);
            }
            problems.sort_by_key(|p| (p.position.line, p.position.col));
            Err(ConfigError {
                file: path.to_owned(),
                problems,
            })
        }
    }
}

/// `message` without any of `secrets` in it: a value that came from a secret file and was
/// wrong for its key (a type error, a URL, …) is not printed, whatever the message quoted.
/// Values shorter than 4 characters are left alone (they would blot out ordinary words).
fn redact(message: &str, secrets: &[String]) -> String {
    let mut out = message.to_owned();
    for secret in secrets.iter().filter(|s| s.chars().count() >= 4) {
        if out.contains(secret.as_str()) {
            out = out.replace(secret.as_str(), "(the content of a secret file)");
        }
    }
    out
}

/// `value` as a path: relative ones are relative to `base_dir` (the config file's directory).
fn resolve(base_dir: &Path, value: &str) -> PathBuf {
    let path = Path::new(value);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let position = self.positions.locate(key);
        self.problems.push(Problem {
            position,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn config(&mut self, path: &Path, text: &str) -> Option<Config> {
        let mut doc: Value = match serde_yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                let position = e
                    .location()
                    .map(|l| Position {
                        line: l.line(),
                        col: l.column(),
                    })
                    .unwrap_or(Position { line: 1, col: 1 });
                self.problems.push(Problem {
                    position,
                    key: String::new(),
                    message: format!("not valid YAML: {e}"),
                });
                return None;
            }
        };
        self.expand_env(&mut doc, "");
        let Value::Mapping(top) = doc else {
            self.problem(
                "",
                "the file must be a mapping with listen, admin, tls and portals",
            );
            return None;
        };
        for key in top.keys() {
            match key.as_str() {
                Some(k) if TOP_LEVEL_KEYS.contains(&k) => {}
                Some(k) => self.problem(
                    k,
                    format!("unknown key; known keys: {}", TOP_LEVEL_KEYS.join(", ")),
                ),
                None => self.problem("", "top-level keys must be strings"),
            }
        }

        let listen = self.required::<raw::Listen>(&top, "listen");
        let admin = self.required::<raw::Admin>(&top, "admin");
        let tls = self.required::<raw::Tls>(&top, "tls");
        let trusted = self
            .optional::<Vec<String>>(&top, "trusted_proxies")
            .unwrap_or_default();
        let timeouts = self
            .optional::<raw::Timeouts>(&top, "timeouts")
            .unwrap_or_default();
        let headers = self
            .optional::<raw::Headers>(&top, "headers")
            .unwrap_or_default();
        let cookies = self
            .optional::<raw::Cookies>(&top, "cookies")
            .unwrap_or_default();
        let server = self
            .optional::<raw::Server>(&top, "server")
            .unwrap_or_default();
        let rate_limits = self
            .optional::<raw::RateLimits>(&top, "rate_limits")
            .unwrap_or_default();
        let reload = self
            .optional::<raw::Reload>(&top, "reload")
            .unwrap_or_default();
        let reload = crate::Reload {
            watch: self.duration(reload.watch.as_ref(), "reload.watch"),
        };
        let state: Option<Option<crate::State>> = match top.get("state") {
            Some(value) => match self.decode::<raw::State>(value, "state") {
                Some(raw) => self.state(raw).map(Some),
                None => None,
            },
            None => Some(None),
        };

        let listen = listen.and_then(|l| self.listen(l));
        let admin = admin.and_then(|a| self.admin(a, listen.as_ref()));
        let tls = tls.and_then(|t| self.tls(t));
        let trusted_proxies = self.trusted_proxies(trusted);
        let timeouts = self.timeouts(&timeouts, "timeouts", Timeouts::default());
        let headers = self.headers(headers);
        let cookies = self.cookies(cookies);
        let server = self.server(server);
        let rate_limits = self.rate_limits(rate_limits);
        let portals = self.portals(top.get("portals"), tls.as_ref(), timeouts);
        let needs_auth = portals
            .as_ref()
            .is_some_and(|p| p.iter().any(|p| !p.danger_no_authentication));
        let auth = self.auth(&top, needs_auth, tls.as_ref(), portals.as_deref());

        Some(Config {
            source: path.to_owned(),
            listen: listen?,
            admin: admin?,
            tls: tls?,
            trusted_proxies,
            timeouts,
            headers: headers?,
            cookies: cookies?,
            server: server?,
            rate_limits: rate_limits?,
            portals: portals?,
            auth: auth?,
            state: state?,
            reload,
            sources: Vec::new(),
            digest: String::new(),
        })
    }

    /// `state:`; `None` when a problem was reported.
    fn state(&mut self, raw: raw::State) -> Option<crate::State> {
        let mut ok = true;
        let url = match url::Url::parse(&raw.url) {
            Ok(u) if !matches!(u.scheme(), "redis" | "rediss") => {
                self.problem(
                    "state.url",
                    format!(
                        "scheme {:?} is not supported: write redis://HOST:PORT or rediss://HOST:PORT (TLS)",
                        u.scheme()
                    ),
                );
                None
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                self.problem("state.url", "names no host: write redis://HOST:PORT");
                None
            }
            Ok(u) if u.fragment().is_some() => {
                // The client reads `#insecure` as "do not verify the server's certificate".
                self.problem(
                    "state.url",
                    "must not have a #fragment (the Redis client would read #insecure as: do not verify the server)",
                );
                None
            }
            Ok(u) => Some(u),
            Err(e) => {
                // The URL may hold a password: not repeated here.
                self.problem("state.url", format!("not a URL: {e}"));
                None
            }
        };
        let key_prefix = raw.key_prefix.unwrap_or_else(|| "prehod:".to_owned());
        if key_prefix.is_empty()
            || key_prefix.len() > 64
            || !key_prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            self.problem(
                "state.key_prefix",
                "must be 1 to 64 visible ASCII characters, e.g. \"prehod:\"",
            );
            ok = false;
        }
        let ca = match raw.tls.and_then(|t| t.ca) {
            Some(path) => {
                if url.as_ref().is_some_and(|u| u.scheme() != "rediss") {
                    self.problem(
                        "state.tls.ca",
                        "only for a TLS server: write the URL as rediss://",
                    );
                    ok = false;
                }
                self.certificates_pem(&path, "state.tls.ca", "Redis CA")
                    .and_then(|(p, certs)| {
                        let mut pem = Vec::new();
                        for c in certs {
                            match c.to_pem() {
                                Ok(b) => pem.extend_from_slice(&b),
                                Err(e) => {
                                    self.problem("state.tls.ca", format!("{}: {e}", p.display()));
                                    return None;
                                }
                            }
                        }
                        Some(pem)
                    })
                    .or_else(|| {
                        ok = false;
                        None
                    })
            }
            None => None,
        };
        let timeout = match raw.timeout.as_ref() {
            Some(t) => self.duration(Some(t), "state.timeout").or_else(|| {
                ok = false;
                None
            }),
            None => Some(std::time::Duration::from_millis(500)),
        };
        match (url, timeout, ok) {
            (Some(url), Some(timeout), true) => Some(crate::State {
                url: url.to_string(),
                key_prefix,
                ca,
                timeout,
            }),
            _ => None,
        }
    }

    /// The login sections: required as soon as one portal requires authentication.
    /// `Some(None)`: not needed and not given; `None`: a problem was reported.
    #[allow(clippy::option_option)]
    fn auth(
        &mut self,
        top: &Mapping,
        needed: bool,
        tls: Option<&Tls>,
        portals: Option<&[Portal]>,
    ) -> Option<Option<crate::Auth>> {
        let present = ["login", "session", "oidc", "assertion"]
            .iter()
            .any(|k| top.contains_key(*k));
        if !needed && !present {
            return Some(None);
        }
        let login = self.required::<raw::Login>(top, "login");
        let session = self.required::<raw::Session>(top, "session");
        let oidc = self.required::<raw::Oidc>(top, "oidc");
        let assertion = self.required::<raw::Assertion>(top, "assertion");
        let login = login.and_then(|l| self.login(l, tls, portals));
        let session = session.and_then(|s| self.session(s, portals));
        let oidc = oidc.and_then(|o| self.oidc(o));
        let assertion = assertion.and_then(|a| self.assertion(a));
        let needs_certificates =
            portals.is_some_and(|ps| ps.iter().any(|p| p.client_certificate_required));
        if needs_certificates && !top.contains_key("certificate_login") {
            self.problem("", "a portal with client_certificate: required needs the certificate_login section (its trust anchors)");
        }
        let certificate_login =
            match self.optional::<raw::CertificateLogin>(top, "certificate_login") {
                Some(c) => self.certificate_login(c, tls),
                None if top.contains_key("certificate_login") => return None,
                None => None,
            };
        if let Some(portals) = portals {
            self.portals_against_certificate_login(portals, certificate_login.as_ref());
        }
        Some(Some(crate::Auth {
            login: login?,
            session: session?,
            oidc: oidc?,
            assertion: assertion?,
            certificate_login,
        }))
    }

    /// What a portal says about certificates must fit the `certificate_login` section: a
    /// certificate-only portal must accept certificate sessions at their level, and every
    /// `allowed_users` entry with a `:` must be a certificate id of a configured anchor.
    fn portals_against_certificate_login(
        &mut self,
        portals: &[Portal],
        certs: Option<&crate::CertificateLogin>,
    ) {
        for p in portals {
            let key = format!("portals.{}", p.name);
            if p.client_certificate_required {
                if !p.methods.contains(&crate::LoginMethod::Certificate) {
                    self.problem(
                        &join(&key, "methods"),
                        "a portal with client_certificate: required must allow the certificate method",
                    );
                }
                if let Some(c) = certs.filter(|c| p.min_level > c.level) {
                    self.problem(
                        &join(&key, "min_level"),
                        format!(
                            "{} is above certificate_login.level ({}): no certificate could ever reach this certificate-only portal",
                            p.min_level, c.level
                        ),
                    );
                }
            }
            // Another anchor's CA may issue the same O: with several anchors, an organisation
            // is named with its anchor's prefix (`acnlb:Bankart d.o.o.`).
            let anchors = certs.map_or(0, |c| c.anchors.len());
            for (i, org) in p.allowed_organisations.iter().flatten().enumerate() {
                let qualified = certs.is_some_and(|c| {
                    c.anchors.iter().any(|a| {
                        org.get(..a.user_id_prefix.len()) == Some(a.user_id_prefix.as_str())
                    })
                });
                if anchors > 1 && !qualified {
                    self.problem(
                        &format!("{key}.allowed_organisations[{i}]"),
                        format!("{org:?}: with several certificate_login anchors, name the organisation with its anchor's user_id_prefix (such as \"acnlb:{org}\"), or any anchor's CA could issue it"),
                    );
                }
            }
            for (i, user) in p.allowed_users.iter().flatten().enumerate() {
                let Some((prefix, _)) = user.split_once(':') else {
                    continue;
                };
                let prefix = format!("{prefix}:");
                let known =
                    certs.is_some_and(|c| c.anchors.iter().any(|a| a.user_id_prefix == prefix));
                if !known {
                    self.problem(
                        &format!("{key}.allowed_users[{i}]"),
                        format!("{user:?}: {prefix:?} is not the user_id_prefix of any certificate_login anchor (certificate ids are PREFIX:VALUE; Rekono subs contain no ':')"),
                    );
                }
            }
        }
    }

    fn certificate_login(
        &mut self,
        raw: raw::CertificateLogin,
        tls: Option<&Tls>,
    ) -> Option<crate::CertificateLogin> {
        let host = raw.host.to_ascii_lowercase();
        if !is_host_name(&host) {
            self.problem(
                "certificate_login.host",
                format!("{:?} is not a host name", raw.host),
            );
        }
        if let Some(tls) = tls {
            if !tls.certificates.iter().any(|c| c.covers(&host)) {
                self.problem(
                    "certificate_login.host",
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        let level = raw.level.unwrap_or(30);
        if !matches!(level, 10 | 20 | 30) {
            self.problem(
                "certificate_login.level",
                format!("{level} is not 10, 20 or 30"),
            );
        }
        if raw.anchors.is_empty() {
            self.problem(
                "certificate_login.anchors",
                "at least one trust anchor is needed",
            );
        }
        let mut anchors = Vec::new();
        let mut prefixes: Vec<String> = Vec::new();
        for (i, a) in raw.anchors.iter().enumerate() {
            let key = format!("certificate_login.anchors[{i}]");
            let ca = self
                .certificates_pem(&a.ca, &join(&key, "ca"), "CA")
                .map(|(_, c)| c);
            let user_id = a.user_id.clone().unwrap_or_else(|| "serial_number".into());
            let template = user_id.contains('{');
            if template {
                let known = ["serial_number", "common_name", "email", "organization"];
                let unknown: Vec<&str> = user_id
                    .split('{')
                    .skip(1)
                    .filter_map(|p| p.split('}').next())
                    .filter(|p| !known.contains(p))
                    .collect();
                if !unknown.is_empty() {
                    self.problem(
                        &join(&key, "user_id"),
                        format!("unknown placeholder(s) {unknown:?}; use {known:?}"),
                    );
                }
            } else if !matches!(user_id.as_str(), "serial_number" | "common_name" | "email") {
                self.problem(
                    &join(&key, "user_id"),
                    format!("{user_id:?} is not one of: serial_number, common_name, email"),
                );
            }
            let mut crls = Vec::new();
            for (j, c) in a.crls.iter().enumerate() {
                if c.starts_with("http://") || c.starts_with("https://") {
                    match url::Url::parse(c) {
                        Ok(_) => crls.push(crate::CrlSource::Url(c.clone())),
                        Err(e) => self.problem(
                            &format!("{key}.crls[{j}]"),
                            format!("{c:?} is not a URL: {e}"),
                        ),
                    }
                } else {
                    let path = self.file_path(c);
                    if path.is_file() {
                        crls.push(crate::CrlSource::File(path));
                    } else {
                        self.problem(
                            &format!("{key}.crls[{j}]"),
                            format!("cannot read CRL file {}", path.display()),
                        );
                    }
                }
            }
            let ocsp = a.ocsp.as_ref().and_then(|o| {
                let okey = join(&key, "ocsp");
                match url::Url::parse(&o.url) {
                    Ok(u) if matches!(u.scheme(), "http" | "https") => {}
                    _ => {
                        self.problem(
                            &join(&okey, "url"),
                            format!("{:?} is not an http(s) URL", o.url),
                        );
                        return None;
                    }
                }
                let soft_fail = match o.policy.as_deref().unwrap_or("fail_closed") {
                    "fail_closed" => false,
                    "soft_fail" => true,
                    other => {
                        self.problem(
                            &join(&okey, "policy"),
                            format!("{other:?} is not one of: fail_closed, soft_fail"),
                        );
                        return None;
                    }
                };
                Some(crate::OcspSettings {
                    url: o.url.clone(),
                    soft_fail,
                    timeout: self
                        .duration(o.timeout.as_ref(), &join(&okey, "timeout"))
                        .unwrap_or(std::time::Duration::from_secs(3)),
                    cache: self
                        .duration(o.cache.as_ref(), &join(&okey, "cache"))
                        .unwrap_or(std::time::Duration::from_secs(300)),
                })
            });
            let prefix = a
                .user_id_prefix
                .clone()
                .unwrap_or_else(|| crate::default_user_id_prefix(&a.name));
            let prefix_key = join(&key, "user_id_prefix");
            if prefix.len() < 2
                || !prefix.ends_with(':')
                || prefix.matches(':').count() != 1
                || prefix.chars().any(|c| c.is_whitespace() || c.is_control())
            {
                self.problem(
                    &prefix_key,
                    format!("{prefix:?} must be a name followed by one ':' (such as \"acnlb:\"), so that certificate ids never equal a Rekono sub or another anchor's ids"),
                );
            } else if let Some(j) = prefixes
                .iter()
                .position(|p: &String| p.eq_ignore_ascii_case(&prefix))
            {
                self.problem(
                    &prefix_key,
                    format!("{prefix:?} is also the user-id prefix of certificate_login.anchors[{j}]: their user ids could collide; give each anchor its own user_id_prefix"),
                );
            }
            prefixes.push(prefix.clone());
            if let Some(ca) = ca {
                anchors.push(crate::TrustAnchor {
                    name: a.name.clone(),
                    ca,
                    crls,
                    user_id,
                    user_id_prefix: prefix,
                    policies: a.policies.clone(),
                    ocsp,
                    crl_distribution_points: a.crl_distribution_points,
                    clock_skew: self.duration(a.clock_skew.as_ref(), &join(&key, "clock_skew")),
                    max_chain_depth: a.max_chain_depth,
                });
            }
        }
        let skew = self
            .duration(raw.clock_skew.as_ref(), "certificate_login.clock_skew")
            .unwrap_or(std::time::Duration::from_secs(300));
        let refresh = self
            .duration(raw.crl_refresh.as_ref(), "certificate_login.crl_refresh")
            .unwrap_or(std::time::Duration::from_secs(60));
        let grace = self.duration(raw.crl_grace.as_ref(), "certificate_login.crl_grace");
        let fetch_timeout = self
            .duration(
                raw.fetch_timeout.as_ref(),
                "certificate_login.fetch_timeout",
            )
            .unwrap_or(std::time::Duration::from_secs(10));
        (anchors.len() == raw.anchors.len()).then_some(())?;
        Some(crate::CertificateLogin {
            host,
            level,
            clock_skew: skew,
            max_chain_depth: raw.max_chain_depth.unwrap_or(4),
            crl_refresh: refresh,
            crl_grace: grace,
            fetch_timeout,
            anchors,
        })
    }

    fn login(
        &mut self,
        raw: raw::Login,
        tls: Option<&Tls>,
        portals: Option<&[Portal]>,
    ) -> Option<crate::Login> {
        let host = raw.host.to_ascii_lowercase();
        if !is_host_name(&host) {
            self.problem("login.host", format!("{:?} is not a host name", raw.host));
            return None;
        }
        if let Some(tls) = tls {
            if !tls.certificates.iter().any(|c| c.covers(&host)) {
                self.problem(
                    "login.host",
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        if let Some(p) = portals.and_then(|ps| ps.iter().find(|p| p.host == host)) {
            self.problem(
                "login.host",
                format!("host {host} is already used by portal {}", p.name),
            );
        }
        let mut url = |value: Option<String>, key: &str, default: &str| -> String {
            let value = value.unwrap_or_else(|| default.to_owned());
            match url::Url::parse(&value) {
                Ok(u) if u.scheme() == "https" => value,
                _ => {
                    self.problem(
                        &join("login", key),
                        format!("{value:?} is not an https:// URL"),
                    );
                    value
                }
            }
        };
        let help_url = url(raw.help_url, "help_url", "https://www.bankart.si/");
        let rekono_instructions_url = url(
            raw.rekono_instructions_url,
            "rekono_instructions_url",
            "https://www.rekono.si/",
        );
        let certificate_instructions_url = url(
            raw.certificate_instructions_url,
            "certificate_instructions_url",
            "https://www.bankart.si/",
        );
        let public_url = raw
            .url
            .map(|u| u.trim_end_matches('/').to_owned())
            .unwrap_or_else(|| format!("https://{host}"));
        match url::Url::parse(&public_url) {
            Ok(u)
                if u.scheme() == "https"
                    && u.host_str() == Some(host.as_str())
                    && (u.path() == "/" || u.path().is_empty()) => {}
            _ => self.problem(
                "login.url",
                format!("{public_url:?} is not https://{host}[:port]"),
            ),
        }
        let portal_prefix = raw
            .portal_prefix
            .unwrap_or_else(|| crate::DEFAULT_PORTAL_PREFIX.to_owned());
        let name = portal_prefix
            .strip_prefix('/')
            .and_then(|p| p.strip_suffix('/'))
            .unwrap_or_default();
        if name.is_empty()
            || name == "."
            || name == ".."
            || !name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        {
            self.problem(
                "login.portal_prefix",
                format!(
                    "{portal_prefix:?} is not one path segment between slashes, e.g. \"/.prehod/\""
                ),
            );
        }
        let templates = raw.templates.map(|t| self.file_path(&t));
        if let Some(dir) = &templates {
            if !dir.is_dir() {
                self.problem(
                    "login.templates",
                    format!("{} is not a directory", dir.display()),
                );
            }
        }
        Some(crate::Login {
            host,
            url: public_url,
            help_url,
            rekono_instructions_url,
            certificate_instructions_url,
            support_email: raw
                .support_email
                .unwrap_or_else(|| "helpdesk@bankart.si".into()),
            templates,
            portal_prefix,
        })
    }

    fn session(
        &mut self,
        raw: raw::Session,
        portals: Option<&[Portal]>,
    ) -> Option<crate::SessionSettings> {
        let idle = self
            .duration(raw.idle_timeout.as_ref(), "session.idle_timeout")
            .unwrap_or(std::time::Duration::from_secs(30 * 60));
        let absolute = self
            .duration(raw.absolute_timeout.as_ref(), "session.absolute_timeout")
            .unwrap_or(std::time::Duration::from_secs(10 * 3600));
        if idle > absolute {
            self.problem(
                "session.idle_timeout",
                "must not be longer than session.absolute_timeout",
            );
        }
        let mut keys = Vec::new();
        if raw.keys.is_empty() {
            self.problem(
                "session.keys",
                "at least one key is needed (32 random bytes, base64)",
            );
        }
        for (i, k) in raw.keys.iter().enumerate() {
            match decode_key(k) {
                Some(key) => keys.push(key),
                // The message never repeats the value: it is a secret.
                None => self.problem(
                    &format!("session.keys[{i}]"),
                    "not 32 bytes of base64 (make one with: openssl rand -base64 32)",
                ),
            }
        }
        let domain = raw
            .cookie_domain
            .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
        let scope = match (raw.cookie_scope.as_deref().unwrap_or("host"), domain) {
            ("host", None) => crate::CookieScope::Host,
            ("host", Some(_)) => {
                self.problem(
                    "session.cookie_domain",
                    "applies only to `cookie_scope: parent_domain`; session cookies are host-only by default (single sign-on goes through the login host)",
                );
                return None;
            }
            ("parent_domain", Some(domain)) => {
                for p in portals.into_iter().flatten() {
                    if !(p.host == domain || p.host.ends_with(&format!(".{domain}"))) {
                        self.problem(
                            "session.cookie_domain",
                            format!("portal {} ({}) is not under {domain}: its users could not log in once for all", p.name, p.host),
                        );
                    }
                }
                crate::CookieScope::ParentDomain(domain)
            }
            ("parent_domain", None) => {
                self.problem(
                    "session.cookie_domain",
                    "`cookie_scope: parent_domain` needs the parent domain (e.g. bankart.si)",
                );
                return None;
            }
            (other, _) => {
                self.problem(
                    "session.cookie_scope",
                    format!("{other:?} is not one of: host, parent_domain"),
                );
                return None;
            }
        };
        (keys.len() == raw.keys.len() && !keys.is_empty()).then_some(())?;
        Some(crate::SessionSettings {
            cookie_scope: scope,
            idle_timeout: idle,
            absolute_timeout: absolute,
            keys,
            cache_entries: raw.cache_entries.unwrap_or(100_000),
            max_revocations: match raw.max_revocations {
                None => 1_000_000,
                Some(n) if n > 0 => n,
                Some(_) => {
                    self.problem(
                        "session.max_revocations",
                        "must be at least 1 (the default is 1000000, about 80 MB)",
                    );
                    return None;
                }
            },
            cache_memory: match raw.cache_memory.as_deref() {
                None => 64 * 1024 * 1024,
                Some(v) => match parse_size(v) {
                    Some(n) if n > 0 => n,
                    _ => {
                        self.problem(
                            "session.cache_memory",
                            format!("{v:?} is not a size: write e.g. 64MiB or 512KiB"),
                        );
                        return None;
                    }
                },
            },
        })
    }

    fn oidc(&mut self, raw: raw::Oidc) -> Option<crate::Oidc> {
        let issuer = raw.issuer.trim_end_matches('/').to_owned();
        match url::Url::parse(&issuer) {
            Ok(u) if u.scheme() == "https" && u.query().is_none() => {}
            _ => {
                self.problem(
                    "oidc.issuer",
                    format!("{issuer:?} is not an https:// issuer URL"),
                );
                return None;
            }
        }
        if raw.client_id.is_empty() {
            self.problem("oidc.client_id", "must not be empty");
        }
        let client_auth = match raw.client_auth.as_deref().unwrap_or("client_secret_basic") {
            "client_secret_basic" => match raw.client_secret.as_deref() {
                Some(secret) if !secret.is_empty() => {
                    Some(crate::ClientAuth::Secret(secret.to_owned()))
                }
                _ => {
                    self.problem(
                        "oidc.client_secret",
                        "client_secret_basic needs a non-empty client_secret",
                    );
                    None
                }
            },
            "private_key_jwt" => match &raw.client_key {
                Some(path) => self
                    .read_key_file(path, "oidc.client_key")
                    .and_then(
                        |(p, pem)| match openssl::pkey::PKey::private_key_from_pem(&pem) {
                            Ok(k) if k.rsa().is_ok() => Some(crate::ClientAuth::PrivateKeyJwt {
                                key_pem: pem,
                                rsa: true,
                            }),
                            Ok(k)
                                if k.ec_key().is_ok_and(|e| {
                                    e.group().curve_name()
                                        == Some(openssl::nid::Nid::X9_62_PRIME256V1)
                                }) =>
                            {
                                Some(crate::ClientAuth::PrivateKeyJwt {
                                    key_pem: pem,
                                    rsa: false,
                                })
                            }
                            _ => {
                                self.problem(
                                    "oidc.client_key",
                                    format!(
                                        "{} is not an RSA or EC P-256 private key in PEM",
                                        p.display()
                                    ),
                                );
                                None
                            }
                        },
                    ),
                None => {
                    self.problem(
                        "oidc.client_key",
                        "private_key_jwt needs client_key (a PEM private key)",
                    );
                    None
                }
            },
            other => {
                self.problem(
                    "oidc.client_auth",
                    format!("{other:?} is not one of: client_secret_basic, private_key_jwt"),
                );
                None
            }
        };
        let scopes = raw
            .scopes
            .unwrap_or_else(|| vec!["openid".into(), "profile".into(), "email".into()]);
        if !scopes.iter().any(|s| s == "openid") {
            self.problem("oidc.scopes", "must include openid");
        }
        let acr_levels: Vec<(String, u8)> = raw
            .acr_levels
            .unwrap_or_else(|| {
                [
                    ("10".to_owned(), 10),
                    ("20".to_owned(), 20),
                    ("30".to_owned(), 30),
                ]
                .into()
            })
            .into_iter()
            .collect();
        for (acr, level) in &acr_levels {
            if !matches!(level, 10 | 20 | 30) {
                self.problem(
                    &format!("oidc.acr_levels.{acr}"),
                    format!("level {level} is not 10, 20 or 30"),
                );
            }
        }
        let ca = match &raw.ca {
            Some(path) => Some(self.read_file(path, "oidc.ca", "CA")?.1),
            None => None,
        };
        let timeout = self
            .duration(raw.timeout.as_ref(), "oidc.timeout")
            .unwrap_or(std::time::Duration::from_secs(5));
        Some(crate::Oidc {
            issuer,
            client_id: raw.client_id,
            client_auth: client_auth?,
            scopes,
            acr_levels,
            ca,
            timeout,
            logout_at_provider: raw.logout_at_provider.unwrap_or(true),
        })
    }

    fn assertion(&mut self, raw: raw::Assertion) -> Option<crate::AssertionSettings> {
        let (path, pem) = self.read_key_file(&raw.key, "assertion.key")?;
        let ok = openssl::pkey::PKey::private_key_from_pem(&pem)
            .ok()
            .and_then(|k| k.ec_key().ok())
            .is_some_and(|k| k.group().curve_name() == Some(openssl::nid::Nid::X9_62_PRIME256V1));
        if !ok {
            self.problem(
                "assertion.key",
                format!("{} is not an EC P-256 private key in PEM", path.display()),
            );
            return None;
        }
        let lifetime = self
            .duration(raw.lifetime.as_ref(), "assertion.lifetime")
            .unwrap_or(std::time::Duration::from_secs(60));
        Some(crate::AssertionSettings {
            key_pem: pem,
            lifetime,
        })
    }

    /// Replaces `${VAR}` and `${file:PATH}` in every string value, in place.
    fn expand_env(&mut self, value: &mut Value, path: &str) {
        match value {
            Value::String(s) => {
                let (base_dir, secrets, sources) =
                    (&self.base_dir, &mut self.secrets, &mut self.sources);
                let expanded = crate::env::expand(s, self.env, |file| {
                    let path = resolve(base_dir, file);
                    sources.push(crate::sources::SourceFile::stamp(&path));
                    let value = crate::secret_file::read_value(&path)?;
                    secrets.push(value.clone());
                    Ok(value)
                });
                match expanded {
                    Ok(expanded) => *s = expanded,
                    Err(message) => self.problem(path, message),
                }
            }
            Value::Sequence(items) => {
                for (i, item) in items.iter_mut().enumerate() {
                    self.expand_env(item, &format!("{path}[{i}]"));
                }
            }
            Value::Mapping(map) => {
                for (key, item) in map.iter_mut() {
                    let key = key.as_str().unwrap_or("?").to_owned();
                    self.expand_env(item, &join(path, &key));
                }
            }
            Value::Tagged(tagged) => self.expand_env(&mut tagged.value, path),
            _ => {}
        }
    }

    /// Deserializes one value, reporting unknown keys and the first type error in it.
    fn decode<T: DeserializeOwned>(&mut self, value: &Value, path: &str) -> Option<T> {
        let mut unknown = Vec::new();
        let mut track = serde_path_to_error::Track::new();
        let result = serde_ignored::deserialize(
            serde_path_to_error::Deserializer::new(value, &mut track),
            |ignored| unknown.push(ignored_path(path, &ignored)),
        );
        for key in unknown {
            self.problem(&key, "unknown key");
        }
        match result {
            Ok(v) => Some(v),
            Err(e) => {
                let mut at = path.to_owned();
                for segment in track.path().iter() {
                    match segment {
                        serde_path_to_error::Segment::Seq { index } => {
                            at = format!("{at}[{index}]");
                        }
                        serde_path_to_error::Segment::Map { key } => at = join(&at, key),
                        _ => {}
                    }
                }
                let message = e.to_string();
                match message
                    .strip_prefix("missing field `")
                    .and_then(|m| m.split('`').next())
                {
                    Some(field) => {
                        self.problem(&at, format!("required key `{field}` is missing"));
                    }
                    None => self.problem(&at, message),
                }
                None
            }
        }
    }

    fn required<T: DeserializeOwned>(&mut self, top: &Mapping, key: &str) -> Option<T> {
        match top.get(key) {
            Some(value) => self.decode(value, key),
            None => {
                self.problem("", format!("required key `{key}` is missing"));
                None
            }
        }
    }

    fn optional<T: DeserializeOwned>(&mut self, top: &Mapping, key: &str) -> Option<T> {
        top.get(key).and_then(|value| self.decode(value, key))
    }

    fn socket_addr(&mut self, value: &str, key: &str) -> Option<SocketAddr> {
        match value.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    key,
                    format!(
                        "{value:?} is not an address: write IP:PORT, e.g. 0.0.0.0:443 or [::]:443"
                    ),
                );
                None
            }
        }
    }

    fn duration(&mut self, value: Option<&String>, key: &str) -> Option<std::time::Duration> {
        let value = value?;
        match parse_duration(value) {
            Ok(d) if d.is_zero() => {
                self.problem(key, "must be longer than zero");
                None
            }
            Ok(d) => Some(d),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    fn file_path(&self, value: &str) -> PathBuf {
        resolve(&self.base_dir, value)
    }

    /// A private-key file: read only if other users can neither read nor write it.
    fn read_key_file(&mut self, value: &str, key: &str) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.file_path(value);
        self.sources.push(crate::sources::SourceFile::stamp(&path));
        match crate::secret_file::read(&path, "key file", crate::secret_file::MAX_KEY_FILE_BYTES) {
            Ok(bytes) => Some((path, bytes)),
            Err(message) => {
                self.problem(key, message);
                None
            }
        }
    }

    fn read_file(&mut self, value: &str, key: &str, what: &str) -> Option<(PathBuf, Vec<u8>)> {
        let path = self.file_path(value);
        self.sources.push(crate::sources::SourceFile::stamp(&path));
        match std::fs::read(&path) {
            Ok(bytes) => Some((path, bytes)),
            Err(e) => {
                self.problem(
                    key,
                    format!("cannot read {what} file {}: {e}", path.display()),
                );
                None
            }
        }
    }

    fn certificates_pem(
        &mut self,
        value: &str,
        key: &str,
        what: &str,
    ) -> Option<(PathBuf, Vec<X509>)> {
        let (path, bytes) = self.read_file(value, key, what)?;
        match X509::stack_from_pem(&bytes) {
            Ok(chain) if !chain.is_empty() => Some((path, chain)),
            Ok(_) => {
                self.problem(key, format!("{} holds no PEM certificate", path.display()));
                None
            }
            Err(e) => {
                self.problem(
                    key,
                    format!("{} is not a PEM certificate file: {e}", path.display()),
                );
                None
            }
        }
    }

    fn listen(&mut self, raw: raw::Listen) -> Option<Listen> {
        let https = self.socket_addr(&raw.https, "listen.https");
        let http_redirect = match &raw.http_redirect {
            Some(a) => Some(self.socket_addr(a, "listen.http_redirect")?),
            None => None,
        };
        let https = https?;
        if http_redirect == Some(https) {
            self.problem("listen.http_redirect", "must differ from listen.https");
        }
        Some(Listen {
            https,
            http_redirect,
        })
    }

    fn admin(&mut self, raw: raw::Admin, listen: Option<&Listen>) -> Option<Admin> {
        let addr = self.socket_addr(&raw.listen, "admin.listen")?;
        if let Some(listen) = listen {
            if addr == listen.https || Some(addr) == listen.http_redirect {
                self.problem(
                    "admin.listen",
                    "the admin listener needs an address of its own, not a public listener's",
                );
            }
        }
        let api_token = match raw.api_token {
            Some(t) if t.len() < 32 || !t.bytes().all(|b| b.is_ascii_graphic()) => {
                // The token itself is not repeated.
                self.problem(
                    "admin.api_token",
                    "must be at least 32 visible ASCII characters (e.g. `openssl rand -hex 32`), best from the environment: ${PREHOD_ADMIN_TOKEN}",
                );
                None
            }
            t => t.map(crate::Secret),
        };
        Some(Admin {
            listen: addr,
            api_token,
        })
    }

    fn tls(&mut self, raw: raw::Tls) -> Option<Tls> {
        let min_version = match raw.min_version.as_deref() {
            None | Some("1.2") => Some(TlsVersion::Tls12),
            Some("1.3") => Some(TlsVersion::Tls13),
            Some(other) => {
                self.problem(
                    "tls.min_version",
                    format!("{other:?} is not allowed: use \"1.2\" or \"1.3\" (older versions are not offered)"),
                );
                None
            }
        };
        if raw.certificates.is_empty() {
            self.problem("tls.certificates", "at least one certificate is needed");
        }
        let mut certificates = Vec::new();
        let mut ok = true;
        for (i, c) in raw.certificates.iter().enumerate() {
            match self.server_certificate(c, &format!("tls.certificates[{i}]")) {
                Some(cert) => certificates.push(cert),
                None => ok = false,
            }
        }
        (ok && !certificates.is_empty()).then_some(())?;
        Some(Tls {
            min_version: min_version?,
            certificates,
        })
    }

    fn server_certificate(
        &mut self,
        raw: &raw::Certificate,
        key: &str,
    ) -> Option<ServerCertificate> {
        let cert_key = join(key, "cert");
        let key_key = join(key, "key");
        let chain = self.certificates_pem(&raw.cert, &cert_key, "certificate");
        let private = self
            .read_key_file(&raw.key, &key_key)
            .and_then(|(path, bytes)| match PKey::private_key_from_pem(&bytes) {
                Ok(k) => Some((path, k)),
                Err(_) => {
                    self.problem(
                        &key_key,
                        format!("{} is not a PEM private key", path.display()),
                    );
                    None
                }
            });
        let (cert_path, chain) = chain?;
        let (key_path, private) = private?;
        let leaf = chain.first()?;
        let matches = leaf
            .public_key()
            .map(|public| public.public_eq(&private))
            .unwrap_or(false);
        if !matches {
            self.problem(
                &key_key,
                format!(
                    "the key in {} does not belong to the certificate in {}",
                    key_path.display(),
                    cert_path.display()
                ),
            );
            return None;
        }
        if let Ok(now) = Asn1Time::days_from_now(0) {
            if leaf.not_after() < now {
                self.problem(
                    &cert_key,
                    format!(
                        "certificate {} expired on {}",
                        cert_path.display(),
                        leaf.not_after()
                    ),
                );
                return None;
            }
        }
        let dns_names: Vec<String> = leaf
            .subject_alt_names()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.dnsname().map(str::to_ascii_lowercase))
                    .collect()
            })
            .unwrap_or_default();
        if dns_names.is_empty() {
            self.problem(
                &cert_key,
                format!(
                    "certificate {} has no DNS name in subjectAltName",
                    cert_path.display()
                ),
            );
            return None;
        }
        Some(ServerCertificate {
            cert_path,
            chain,
            key: private,
            dns_names,
        })
    }

    fn trusted_proxies(&mut self, raw: Vec<String>) -> Vec<Cidr> {
        let mut out = Vec::new();
        for (i, s) in raw.iter().enumerate() {
            match s.parse() {
                Ok(cidr) => out.push(cidr),
                Err(message) => self.problem(&format!("trusted_proxies[{i}]"), message),
            }
        }
        out
    }

    fn timeouts(&mut self, raw: &raw::Timeouts, key: &str, defaults: Timeouts) -> Timeouts {
        let mut t = defaults;
        if let Some(d) = self.duration(raw.connect.as_ref(), &join(key, "connect")) {
            t.connect = d;
        }
        if let Some(d) = self.duration(raw.read.as_ref(), &join(key, "read")) {
            t.read = d;
        }
        if let Some(d) = self.duration(raw.write.as_ref(), &join(key, "write")) {
            t.write = d;
        }
        if let Some(d) = self.duration(raw.idle.as_ref(), &join(key, "idle")) {
            t.idle = d;
        }
        t
    }

    fn headers(&mut self, raw: raw::Headers) -> Option<Headers> {
        let mut ok = true;
        let mut name = |value: Option<String>, key: &str, default: &str, this: &mut Self| {
            let value = value.unwrap_or_else(|| default.to_owned());
            match HeaderName::from_bytes(value.as_bytes()) {
                Ok(n) => n,
                Err(_) => {
                    this.problem(
                        &join("headers", key),
                        format!("{value:?} is not a valid header name"),
                    );
                    ok = false;
                    HeaderName::from_static("x-invalid")
                }
            }
        };
        let headers = Headers {
            request_id: name(raw.request_id, "request_id", "x-request-id", self),
            user: name(raw.user, "user", "x-auth-user", self),
            email: name(raw.email, "email", "x-auth-email", self),
            name: name(raw.name, "name", "x-auth-name", self),
            method: name(raw.method, "method", "x-auth-method", self),
            level: name(raw.level, "level", "x-auth-level", self),
            amr: name(raw.amr, "amr", "x-auth-amr", self),
            assertion: name(raw.assertion, "assertion", "x-auth-assertion", self),
            cert_subject: name(
                raw.cert_subject,
                "cert_subject",
                "x-auth-cert-subject",
                self,
            ),
            cert_issuer: name(raw.cert_issuer, "cert_issuer", "x-auth-cert-issuer", self),
            cert_serial: name(raw.cert_serial, "cert_serial", "x-auth-cert-serial", self),
            cert_fingerprint: name(
                raw.cert_fingerprint,
                "cert_fingerprint",
                "x-auth-cert-fingerprint",
                self,
            ),
            strip: raw
                .strip
                .into_iter()
                .enumerate()
                .map(|(i, s)| name(Some(s), &format!("strip[{i}]"), "", self))
                .collect(),
        };
        let set = headers.identity_names();
        for (i, n) in set.iter().enumerate().take(11) {
            if set.iter().take(i).any(|m| m == n) {
                self.problem("headers", format!("header name {n} is used twice"));
                ok = false;
            }
        }
        if set.contains(&headers.request_id) {
            self.problem(
                "headers.request_id",
                "must differ from the identity headers",
            );
            ok = false;
        }
        ok.then_some(headers)
    }

    fn cookies(&mut self, raw: raw::Cookies) -> Option<Cookies> {
        let prefix = raw.prefix.unwrap_or_else(|| "prehod".into());
        let valid = !prefix.is_empty()
            && prefix
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            self.problem("cookies.prefix", "use letters, digits, '_' and '-' only");
            return None;
        }
        Some(Cookies { prefix })
    }

    fn server(&mut self, raw: raw::Server) -> Option<Server> {
        let threads = raw
            .threads
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get()));
        if threads == 0 {
            self.problem("server.threads", "must be at least 1");
            return None;
        }
        let grace_period = match raw.grace_period {
            Some(ref g) => match parse_duration(g) {
                Ok(d) => d,
                Err(message) => {
                    self.problem("server.grace_period", message);
                    return None;
                }
            },
            None => std::time::Duration::from_secs(10),
        };
        let mut timeout = |value: Option<String>, key: &str, default: u64| match self
            .duration(value.as_ref(), key)
        {
            Some(d) => Some(d),
            None if value.is_none() => Some(std::time::Duration::from_secs(default)),
            None => None,
        };
        let header_timeout = timeout(raw.header_timeout, "server.header_timeout", 10);
        let body_timeout = timeout(raw.body_timeout, "server.body_timeout", 10);
        let body_min_rate = raw.body_min_rate.unwrap_or(16 * 1024);
        if body_min_rate == 0 {
            self.problem(
                "server.body_min_rate",
                "must be at least 1 (bytes per second)",
            );
        }
        let max_connections_per_address = raw.max_connections_per_address.unwrap_or(256);
        if max_connections_per_address == 0 {
            self.problem("server.max_connections_per_address", "must be at least 1");
        }
        let max_pending_connections = raw.max_pending_connections.unwrap_or(1024);
        if max_pending_connections == 0 {
            self.problem("server.max_pending_connections", "must be at least 1");
        }
        let read_buffer = raw.read_buffer.unwrap_or(DEFAULT_READ_BUFFER);
        if read_buffer > 1024 * 1024 {
            self.problem(
                "server.read_buffer",
                "must be at most 1048576 bytes (it is held by every open connection)",
            );
        }
        Some(Server {
            threads,
            grace_period,
            header_timeout: header_timeout?,
            body_timeout: body_timeout?,
            body_min_rate,
            max_connections_per_address,
            max_pending_connections,
            read_buffer,
        })
    }

    fn portals(
        &mut self,
        raw: Option<&Value>,
        tls: Option<&Tls>,
        defaults: Timeouts,
    ) -> Option<Vec<Portal>> {
        let Some(raw) = raw else {
            self.problem("", "required key `portals` is missing");
            return None;
        };
        let Value::Mapping(map) = raw else {
            self.problem("portals", "must map portal names to their settings");
            return None;
        };
        if map.is_empty() {
            self.problem("portals", "at least one portal is needed");
            return None;
        }
        let mut ok = true;
        let mut portals: Vec<Portal> = Vec::new();
        let mut hosts: Vec<(String, String)> = Vec::new();
        for (name, value) in map {
            let Some(name) = name.as_str() else {
                self.problem("portals", "portal names must be strings");
                ok = false;
                continue;
            };
            let key = join("portals", name);
            if name.is_empty()
                || !name
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
            {
                self.problem(&key, "a portal name uses a-z, 0-9 and '-' only");
                ok = false;
            }
            if crate::RESERVED_PORTAL_NAMES.contains(&name) {
                self.problem(
                    &key,
                    format!(
                        "{name:?} cannot name a portal: the metrics use it for requests that no portal serves (reserved: {})",
                        crate::RESERVED_PORTAL_NAMES.join(", ")
                    ),
                );
                ok = false;
            }
            let Some(raw) = self.decode::<raw::Portal>(value, &key) else {
                ok = false;
                continue;
            };
            // Compared before the rest is checked, so a portal with another mistake still
            // counts as the host's first user.
            let host = raw.host.to_ascii_lowercase();
            match hosts.iter().find(|(h, _)| *h == host) {
                Some((_, other)) => {
                    let message = format!("host {host} is already used by portal {other}");
                    self.problem(&join(&key, "host"), message);
                    ok = false;
                }
                None => hosts.push((host, name.to_owned())),
            }
            match self.portal(name, raw, &key, tls, defaults) {
                Some(portal) => portals.push(portal),
                None => ok = false,
            }
        }
        ok.then_some(portals)
    }

    fn portal(
        &mut self,
        name: &str,
        raw: raw::Portal,
        key: &str,
        tls: Option<&Tls>,
        defaults: Timeouts,
    ) -> Option<Portal> {
        let host_key = join(key, "host");
        let host = raw.host.to_ascii_lowercase();
        let host = if is_host_name(&host) {
            Some(host)
        } else {
            self.problem(
                &host_key,
                format!("{:?} is not a host name: write only the name, e.g. acq.bankart.si (no scheme, port or path)", raw.host),
            );
            None
        };
        if let (Some(host), Some(tls)) = (&host, tls) {
            if !tls.certificates.iter().any(|c| c.covers(host)) {
                self.problem(
                    &host_key,
                    format!("no certificate in tls.certificates covers {host}"),
                );
            }
        }
        let app_login = match raw.app_login.as_deref() {
            None | Some("gateway") => Some(AppLogin::Gateway),
            Some("own") => Some(AppLogin::Own),
            Some(other) => {
                self.problem(
                    &join(key, "app_login"),
                    format!("{other:?} is not one of: gateway, own"),
                );
                None
            }
        };
        let upstream = self.upstream(raw.upstream, &join(key, "upstream"));
        let timeouts = self.timeouts(&raw.timeouts, &join(key, "timeouts"), defaults);
        let min_level = raw.min_level.unwrap_or(10);
        if !matches!(min_level, 10 | 20 | 30) {
            self.problem(
                &join(key, "min_level"),
                format!("{min_level} is not 10 (low), 20 (substantial) or 30 (high)"),
            );
        }
        let mut methods = Vec::new();
        for (i, m) in raw
            .methods
            .unwrap_or_else(|| vec!["rekono".into(), "certificate".into()])
            .iter()
            .enumerate()
        {
            match m.as_str() {
                "rekono" => methods.push(crate::LoginMethod::Rekono),
                "certificate" => methods.push(crate::LoginMethod::Certificate),
                other => self.problem(
                    &format!("{key}.methods[{i}]"),
                    format!("{other:?} is not one of: rekono, certificate"),
                ),
            }
        }
        Some(Portal {
            min_level,
            methods,
            allowed_users: raw.allowed_users,
            allowed_organisations: raw.allowed_organisations,
            client_certificate_required: match raw.client_certificate.as_deref() {
                None => false,
                Some("required") => true,
                Some(other) => {
                    self.problem(&join(key, "client_certificate"), format!("{other:?} is not `required` (certificate login elsewhere is optional by design)"));
                    false
                }
            },
            danger_no_authentication: raw.danger_no_authentication,
            name: name.to_owned(),
            host: host?,
            title: raw.title.unwrap_or_else(|| name.to_owned()),
            app_login: app_login?,
            upstream: upstream?,
            timeouts,
        })
    }

    fn upstream(&mut self, raw: raw::Upstream, key: &str) -> Option<Upstream> {
        let urls_key = join(key, "urls");
        if raw.urls.is_empty() {
            self.problem(&urls_key, "at least one upstream URL is needed");
            return None;
        }
        let mut targets = Vec::new();
        let mut schemes = Vec::new();
        for (i, s) in raw.urls.iter().enumerate() {
            let item = format!("{urls_key}[{i}]");
            match upstream_url(s) {
                Ok((https, target)) => {
                    schemes.push(https);
                    targets.push(target);
                }
                Err(message) => self.problem(&item, message),
            }
        }
        if targets.len() != raw.urls.len() {
            return None;
        }
        let https = *schemes.first()?;
        if schemes.iter().any(|s| *s != https) {
            self.problem(&urls_key, "all URLs of one portal use the same scheme");
            return None;
        }
        let tls = if https {
            let ca = match &raw.ca {
                Some(path) => Some(self.certificates_pem(path, &join(key, "ca"), "CA")?.1),
                None => None,
            };
            Some(UpstreamTls {
                ca,
                danger_accept_invalid_certs: raw.danger_accept_invalid_certs,
            })
        } else {
            if raw.ca.is_some() {
                self.problem(
                    &join(key, "ca"),
                    "a CA is only used with https:// upstreams",
                );
            }
            if raw.danger_accept_invalid_certs {
                self.problem(
                    &join(key, "danger_accept_invalid_certs"),
                    "only means something for https:// upstreams",
                );
            }
            None
        };
        let hc_key = join(key, "health_check");
        let interval = self
            .duration(
                raw.health_check.interval.as_ref(),
                &join(&hc_key, "interval"),
            )
            .unwrap_or(std::time::Duration::from_secs(5));
        let timeout = self
            .duration(raw.health_check.timeout.as_ref(), &join(&hc_key, "timeout"))
            .unwrap_or(std::time::Duration::from_secs(1));
        if timeout >= interval {
            self.problem(
                &join(&hc_key, "timeout"),
                "must be shorter than the interval",
            );
        }
        Some(Upstream {
            targets,
            tls,
            health_check: HealthCheck { interval, timeout },
        })
    }
}

/// `http(s)://host[:port][/]` → (is https, target). prehod forwards each request's own path,
/// so an upstream URL cannot carry a path, query, fragment or credentials.
fn upstream_url(s: &str) -> Result<(bool, Target), String> {
    let url = url::Url::parse(s).map_err(|e| format!("{s:?} is not a URL: {e}"))?;
    let https = match url.scheme() {
        "http" => false,
        "https" => true,
        other => {
            return Err(format!(
                "scheme {other:?} is not supported: use http or https"
            ))
        }
    };
    if !url.username().is_empty() || url.password().is_some() {
        return Err("an upstream URL cannot carry credentials".into());
    }
    if url.path() != "/" && !url.path().is_empty() {
        return Err(format!(
            "an upstream URL names only scheme, host and port: drop the path {:?} (prehod forwards each request's own path)",
            url.path()
        ));
    }
    if url.query().is_some() || url.fragment().is_some() {
        return Err("an upstream URL cannot carry a query or fragment".into());
    }
    let host = match url.host() {
        Some(url::Host::Domain(d)) => d.to_owned(),
        Some(url::Host::Ipv4(ip)) => ip.to_string(),
        Some(url::Host::Ipv6(ip)) => ip.to_string(),
        None => return Err(format!("{s:?} has no host")),
    };
    let port = url
        .port_or_known_default()
        .ok_or_else(|| format!("{s:?} has no port"))?;
    Ok((https, Target { host, port }))
}

/// `512KiB`, `64MiB`, `1GiB` or plain bytes.
fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A 32-byte key written in base64 (standard or URL-safe, padded or not).
fn decode_key(s: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let s = s.trim();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    let unpadded = s.trim_end_matches('=');
    engines
        .iter()
        .find_map(|e| e.decode(s).ok())
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(unpadded)
                .ok()
        })
        .or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(unpadded)
                .ok()
        })
        .and_then(|bytes| bytes.try_into().ok())
}

fn is_host_name(s: &str) -> bool {
    s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && !label.starts_with('-')
                && !label.ends_with('-')
                && label
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-')
        })
}

fn ignored_path(prefix: &str, path: &serde_ignored::Path<'_>) -> String {
    match path {
        serde_ignored::Path::Root => prefix.to_owned(),
        serde_ignored::Path::Seq { parent, index } => {
            format!("{}[{index}]", ignored_path(prefix, parent))
        }
        serde_ignored::Path::Map { parent, key } => join(&ignored_path(prefix, parent), key),
        serde_ignored::Path::Some { parent }
        | serde_ignored::Path::NewtypeStruct { parent }
        | serde_ignored::Path::NewtypeVariant { parent } => ignored_path(prefix, parent),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn upstream_urls() {
        assert_eq!(
            upstream_url("http://10.0.0.1:8080").unwrap(),
            (
                false,
                Target {
                    host: "10.0.0.1".into(),
                    port: 8080
                }
            )
        );
        assert_eq!(upstream_url("https://app.internal/").unwrap().1.port, 443);
        assert!(upstream_url("http://a:1/app")
            .unwrap_err()
            .contains("drop the path"));
        assert!(upstream_url("http://a:1/?x=1")
            .unwrap_err()
            .contains("query"));
        assert!(upstream_url("ftp://a").unwrap_err().contains("scheme"));
        assert!(upstream_url("http://u:p@a")
            .unwrap_err()
            .contains("credentials"));
        assert!(upstream_url("nonsense").is_err());
    }

    #[test]
    fn host_names() {
        assert!(is_host_name("acq.bankart.si"));
        assert!(!is_host_name("https://acq.bankart.si"));
        assert!(!is_host_name("acq.bankart.si:443"));
        assert!(!is_host_name("acq..si"));
    }
}
