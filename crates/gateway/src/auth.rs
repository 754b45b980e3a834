//! The gateway's login state, built once at start and at each reload: session sealing, the
//! OpenID providers, the certificate checker, cookie names, the login host's URLs.
//!
//! [`AuthState`] is built here; `crate::portal::decide` only reads it per request.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use http::HeaderMap;
use prehod_config::Config;
use prehod_identity::assertion::Signer;
use prehod_identity::oidc::Provider;
use prehod_identity::seal::Sealer;
use prehod_identity::session::Sessions;

use crate::pages::Pages;

/// Everything the gateway's login needs, built once.
pub struct AuthState {
    pub sessions: Sessions,
    /// Seals login attempts (same keys as sessions, another purpose).
    pub sealer: Sealer,
    pub signer: Signer,
    /// The OpenID providers (Rekono first), each discovered by the background task.
    pub providers: crate::providers::Providers,
    /// The renderer (the same as [`crate::Shared::pages`]).
    pub pages: Arc<Pages>,
    pub login_host: String,
    /// `https://login.…[:port]`
    pub login_url: String,
    pub cookie_name: String,
    pub attempt_prefix: String,
    /// The cookie that carries a form POST across the login.
    pub post_cookie: String,
    /// A search for `post_cookie` in the `Cookie` headers' bytes, built once
    /// (`crate::cookies::may_hold`).
    pub post_cookie_search: memchr::memmem::Finder<'static>,
    /// The cookie that keeps a host's single sign-on nonce (`crate::sso::nonce_cookie_name`).
    pub nonce_cookie: String,
    pub lang_cookie: String,
    /// Host-only `__Host-` cookies, or one on the parent domain.
    pub cookie_scope: prehod_config::CookieScope,
    /// Single-use codes that carry a login from the login host to a portal (host scope).
    pub sso: crate::sso::Codes,
    /// `login.portal_prefix`: the gateway's own paths on every portal host (`/.prehod/`).
    pub portal_prefix: String,
    pub help_url: String,
    pub rekono_instructions_url: String,
    pub certificate_instructions_url: String,
    /// Portal host → index, for return-URL checks.
    pub portal_hosts: HashMap<String, usize>,
    /// The port of the login URL (None for 443): return URLs must use the same.
    pub public_port: Option<u16>,
    /// Certificate login, when configured: the checks, the session level, its URL.
    pub certificates: Option<CertLogin>,
}

pub struct CertLogin {
    pub checker: std::sync::Arc<prehod_identity::cert::Checker>,
    /// For OCSP requests: no redirects; each responder has its own timeout.
    pub http: reqwest::Client,
    pub level: u8,
    /// `https://certlogin.…[:port]`
    pub url: String,
    pub crl_refresh: Duration,
}

impl CertLogin {
    fn new(
        c: &prehod_config::CertificateLogin,
        public_port: Option<u16>,
        session_lifetime: Duration,
    ) -> Result<Self, AuthBuildError> {
        use prehod_identity::cert::{Anchor, Checker, DistributionPoints, Ocsp, UserId};
        let mut anchors = Vec::new();
        for a in &c.anchors {
            let user_id = match a.user_id.as_str() {
                "common_name" => UserId::CommonName,
                "email" => UserId::Email,
                t if t.contains('{') => UserId::Template(t.to_owned()),
                _ => UserId::SerialNumber,
            };
            let ocsp = a
                .ocsp
                .as_ref()
                .map(|o| Ocsp::new(o, &a.ca, session_lifetime))
                .transpose()
                .map_err(|e| {
                    AuthBuildError::Certificates(format!("{}: OCSP store: {e}", a.name))
                })?;
            let mut anchor = Anchor::new(
                a.name.clone(),
                a.ca.clone(),
                user_id,
                a.policies.clone(),
                a.crls.clone(),
                ocsp,
                a.crl_distribution_points.then(|| {
                    // Kept past the next refresh, so the background refresh replaces it first.
                    // A refused CRL is not fetched again at a login, nor a session's wake of
                    // the refresh repeated, for `crl_refresh` (at most 10 s).
                    DistributionPoints::new(
                        2 * c.crl_refresh + c.fetch_timeout,
                        session_lifetime,
                        c.crl_refresh.min(std::time::Duration::from_secs(10)),
                    )
                }),
            );
            anchor.user_id_prefix = a.user_id_prefix.clone();
            anchor.clock_skew = a.clock_skew.map(|d| d.as_secs() as i64);
            anchor.max_intermediates = a.max_chain_depth.map(|d| d as usize);
            anchors.push(anchor);
        }
        let checker = Checker::new(
            anchors,
            c.max_chain_depth as usize,
            c.clock_skew.as_secs() as i64,
            c.crl_grace.map(|g| g.as_secs() as i64),
        );
        for (anchor, refused) in checker.load_crl_files() {
            tracing::error!(anchor = %anchor, source = %refused.source, reason = refused.reason.label(), problem = %refused.detail, "CRL not loaded");
        }
        Ok(Self {
            checker: Arc::new(checker),
            // CRLs, distribution points and OCSP: bounded in time (OCSP also per responder)
            // and in size, so that no revocation server can hold a login or a refresh.
            http: prehod_identity::cert::revocation_client(
                REVOCATION_CONNECT_TIMEOUT.min(c.fetch_timeout),
                c.fetch_timeout,
            )
            .map_err(AuthBuildError::Certificates)?,
            level: c.level,
            url: match public_port {
                Some(p) => format!("https://{}:{p}", c.host),
                None => format!("https://{}", c.host),
            },
            crl_refresh: c.crl_refresh,
        })
    }
}

/// The connect timeout of every revocation call (CRL, distribution point, OCSP); the total
/// is `certificate_login.fetch_timeout` (OCSP: each responder's own `timeout`).
const REVOCATION_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);

#[derive(Debug, thiserror::Error)]
pub enum AuthBuildError {
    #[error("certificate login: {0}")]
    Certificates(String),
    #[error("assertion key: {0}")]
    Assertion(#[from] prehod_identity::assertion::AssertionError),
}

impl AuthState {
    pub fn new(config: &Config, pages: Arc<Pages>) -> Result<Option<Self>, AuthBuildError> {
        let Some(auth) = &config.auth else {
            return Ok(None);
        };
        let sealer = Sealer::new(&auth.session.keys);
        let sso = crate::sso::Codes::new(
            sealer.clone(),
            format!("{}{}", auth.login.portal_prefix, crate::sso::PATH_IN_PREFIX),
        );
        let login_url = auth.login.url.clone();
        let public_port = url::Url::parse(&login_url).ok().and_then(|u| u.port());
        let post_cookie = crate::cookies::name(
            &format!("{}_post", config.cookies.prefix),
            &auth.session.cookie_scope,
        );
        Ok(Some(Self {
            sessions: Sessions::with_memory_bound(
                sealer.clone(),
                auth.session.idle_timeout,
                auth.session.absolute_timeout,
                auth.session.cache_entries,
                auth.session.cache_memory,
            )
            .with_max_revocations(
                usize::try_from(auth.session.max_revocations).unwrap_or(usize::MAX),
            )
            .with_fresh_login_for(auth.session.fresh_login_for),
            sealer,
            signer: Signer::new(
                &auth.assertion.key_pem,
                login_url.clone(),
                auth.assertion.lifetime.as_secs(),
            )?,
            providers: crate::providers::Providers::new(&auth.providers, &login_url),
            pages,
            login_host: auth.login.host.clone(),
            login_url,
            cookie_name: crate::cookies::name(
                &format!("{}_session", config.cookies.prefix),
                &auth.session.cookie_scope,
            ),
            // `__Host-` whatever the session's scope: no sibling host can plant an attempt
            // (which would log the victim in as the attacker).
            attempt_prefix: crate::cookies::name(
                &format!("{}_login_", config.cookies.prefix),
                &prehod_config::CookieScope::Host,
            ),
            post_cookie: post_cookie.clone(),
            post_cookie_search: memchr::memmem::Finder::new(post_cookie.as_bytes()).into_owned(),
            nonce_cookie: crate::sso::nonce_cookie_name(&config.cookies.prefix),
            lang_cookie: format!("{}_lang", config.cookies.prefix),
            cookie_scope: auth.session.cookie_scope.clone(),
            sso,
            portal_prefix: auth.login.portal_prefix.clone(),
            help_url: auth.login.help_url.clone(),
            rekono_instructions_url: auth.login.rekono_instructions_url.clone(),
            certificate_instructions_url: auth.login.certificate_instructions_url.clone(),
            portal_hosts: config
                .portals
                .iter()
                .enumerate()
                .map(|(i, p)| (p.host.clone(), i))
                .collect(),
            public_port,
            certificates: auth
                .certificate_login
                .as_ref()
                .map(|c| CertLogin::new(c, public_port, auth.session.absolute_timeout))
                .transpose()?,
        }))
    }

    /// For a configuration reload: this login takes over from `old` what lives as long as the
    /// process — revocations (and the session cache, with the same keys), the used single
    /// sign-on codes, the identity provider until it is discovered again with the new
    /// settings (see [`crate::providers::LoginProvider::same_registration`]), the highest CRL seen per issuer
    /// (never taken below again), and the CRLs held until they are fetched again (for an
    /// anchor of the same name and CAs, per source of the same place and issuer).
    pub fn adopt(
        mut self,
        old: &AuthState,
        config: &prehod_config::Auth,
        old_config: &prehod_config::Auth,
    ) -> Self {
        let same_keys = config.session.keys == old_config.session.keys;
        self.sessions = self.sessions.adopt(&old.sessions, same_keys);
        self.sso = self.sso.adopt(&old.sso);
        if let (Some(new), Some(previous)) = (&self.certificates, &old.certificates) {
            new.checker.adopt(&previous.checker);
        }
        for new in self.providers.iter() {
            if let Some(previous) = old.providers.by_id(&new.id) {
                new.adopt(previous);
            }
        }
        self
    }

    /// The first provider's metadata and keys, once discovered (what readiness waits for).
    pub fn provider(&self) -> Option<Arc<Provider>> {
        self.providers.first().and_then(|p| p.discovered())
    }

    /// A `return` URL is accepted only if it is https, names a configured portal host and the
    /// gateway's public port: never an open redirect. Returns it normalised, and its portal.
    pub fn check_return(&self, value: &str) -> Option<(String, usize)> {
        crate::return_url::accepted(value, &self.portal_hosts, self.public_port)
    }

    /// `Set-Cookie` for the session (host-only, or on the parent domain).
    pub fn session_cookie(&self, value: &str, max_age: u64) -> String {
        crate::cookies::set(&self.cookie_name, value, max_age, &self.cookie_scope)
    }

    pub fn clear_session_cookie(&self) -> String {
        crate::cookies::clear(&self.cookie_name, &self.cookie_scope)
    }

    /// `Set-Cookie` for this host's single-sign-on nonce (see [`crate::sso`]), kept while the
    /// browser logs in (and reused by its other tabs).
    pub fn sso_nonce_cookie(&self, nonce: &str) -> String {
        crate::cookies::set_on_path(&self.nonce_cookie, nonce, "/", 600)
    }

    /// `Set-Cookie` for a form kept across the login, and the one that deletes it.
    pub fn post_cookie(&self, value: &str, max_age: u64) -> String {
        crate::cookies::set(&self.post_cookie, value, max_age, &self.cookie_scope)
    }

    pub fn clear_post_cookie(&self) -> String {
        crate::cookies::clear(&self.post_cookie, &self.cookie_scope)
    }

    /// The host a session cookie is for: in host scope each host's cookie names its host
    /// (`None` on the parent domain, where one cookie serves every host).
    pub fn cookie_host<'a>(&self, host: &'a str) -> Option<&'a str> {
        match self.cookie_scope {
            prehod_config::CookieScope::Host => Some(host),
            prehod_config::CookieScope::ParentDomain(_) => None,
        }
    }

    pub fn login_page_url(&self, return_to: &str, notice: Option<&str>) -> String {
        let mut url = format!("{}/?return={}", self.login_url, encode(return_to));
        if let Some(n) = notice {
            url.push_str("&notice=");
            url.push_str(n);
        }
        url
    }

    /// The login host's step-up page: which level `return_to` needs, then on to Rekono.
    pub fn step_up_url(&self, return_to: &str, level: u8, from: Option<&str>) -> String {
        let mut url = format!(
            "{}/step-up?level={level}&return={}",
            self.login_url,
            encode(return_to)
        );
        if let Some(f) = from {
            url.push_str("&from=");
            url.push_str(&encode(f));
        }
        url
    }

    pub fn start_url(&self, return_to: &str, level: u8) -> String {
        format!(
            "{}/oidc/start?level={level}&return={}",
            self.login_url,
            encode(return_to)
        )
    }

    /// Whether `portal` accepts an OpenID session of `session`'s provider.
    pub fn portal_allows_session(
        portal: &prehod_config::Portal,
        session: &prehod_identity::session::Session,
    ) -> bool {
        match session.method {
            prehod_identity::session::Method::Rekono => {
                portal.allows_provider(session.method_label())
            }
            prehod_identity::session::Method::Certificate => portal.allows_certificate(),
        }
    }
}

pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::cookies::find(headers, name)
}
