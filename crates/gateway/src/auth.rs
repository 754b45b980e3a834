//! Where authentication happens on a portal request: one decision per request, from the
//! session cookie and the portal's policy (level of assurance, allowed methods).
//!
//! [`AuthState`] is built once at start; [`decide`] only reads it.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use http::HeaderMap;
use prehod_config::{Config, LoginMethod, Portal};
use prehod_identity::assertion::Signer;
use prehod_identity::oidc::{Provider, Settings};
use prehod_identity::seal::Sealer;
use prehod_identity::session::{Method, Refusal, Session, Sessions};

use crate::templates::{Message, Pages};

/// Everything the gateway's login needs, built once.
pub struct AuthState {
    pub sessions: Sessions,
    /// Seals login attempts (same keys as sessions, another purpose).
    pub sealer: Sealer,
    pub signer: Signer,
    /// Filled by the discovery background task once Rekono answers.
    pub provider: RwLock<Option<Arc<Provider>>>,
    pub oidc: Settings,
    pub logout_at_provider: bool,
    pub pages: Pages,
    pub login_host: String,
    /// `https://login.…[:port]`
    pub login_url: String,
    pub cookie_name: String,
    pub attempt_prefix: String,
    /// The cookie that carries a form POST across the login.
    pub post_cookie: String,
    pub lang_cookie: String,
    /// Host-only `__Host-` cookies, or one on the parent domain.
    pub cookie_scope: prehod_config::CookieScope,
    /// Single-use codes that carry a login from the login host to a portal (host scope).
    pub sso: crate::sso::Codes,
    /// `login.portal_prefix`: the gateway's own paths on every portal host (`/.prehod/`).
    pub portal_prefix: String,
    pub support_email: String,
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
                    DistributionPoints::new(2 * c.crl_refresh + c.fetch_timeout, session_lifetime)
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
    #[error("{0}")]
    Templates(#[from] crate::templates::TemplateError),
}

impl AuthState {
    pub fn new(config: &Config) -> Result<Option<Self>, AuthBuildError> {
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
            provider: RwLock::new(None),
            oidc: Settings {
                issuer: auth.oidc.issuer.clone(),
                client_id: auth.oidc.client_id.clone(),
                client_auth: auth.oidc.client_auth.clone(),
                redirect_uri: format!("{login_url}/oidc/callback"),
                scopes: auth.oidc.scopes.clone(),
                acr_levels: auth.oidc.acr_levels.clone(),
                extra_roots: auth.oidc.ca.iter().cloned().collect(),
                timeout: auth.oidc.timeout,
                max_skew: Duration::from_secs(60),
            },
            logout_at_provider: auth.oidc.logout_at_provider,
            pages: Pages::new(auth.login.templates.as_deref())?,
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
            post_cookie: crate::cookies::name(
                &format!("{}_post", config.cookies.prefix),
                &auth.session.cookie_scope,
            ),

            lang_cookie: format!("{}_lang", config.cookies.prefix),
            cookie_scope: auth.session.cookie_scope.clone(),
            sso,
            portal_prefix: auth.login.portal_prefix.clone(),
            support_email: auth.login.support_email.clone(),
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
    /// settings (when it is the same issuer and client), the highest CRL seen per issuer
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
        if config.oidc.issuer == old_config.oidc.issuer
            && config.oidc.client_id == old_config.oidc.client_id
        {
            self.provider = RwLock::new(old.provider());
        }
        self
    }

    pub fn provider(&self) -> Option<Arc<Provider>> {
        self.provider
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
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
        crate::cookies::set_on_path(crate::sso::NONCE_COOKIE, nonce, "/", 600)
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
}

pub fn encode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

/// The portal page the request came from (its `Referer`), when that is a portal URL.
fn came_from(auth: &AuthState, headers: &HeaderMap) -> Option<String> {
    headers
        .get(http::header::REFERER)
        .and_then(|r| r.to_str().ok())
        .and_then(|r| auth.check_return(r))
        .map(|(r, _)| r)
}

/// A cookie's value from the `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    crate::cookies::find(headers, name)
}

/// What to do with a request for a portal.
#[derive(Debug)]
pub enum Decision {
    /// Forward it; `session` is `None` only for portals without login.
    Allow {
        session: Option<Arc<Session>>,
        /// A new session cookie to set (idle time rolled).
        rolled: Option<String>,
    },
    /// Send the browser to this URL (the login page, or Rekono for a step-up).
    Redirect { location: String, step_up: bool },
    /// Not a browser navigation: 401 with JSON naming the login page.
    LoginRequired { login: String, reason: &'static str },
    /// Refuse with this page.
    Deny {
        message: Message,
        reason: &'static str,
    },
}

impl Decision {
    /// The `auth` label in metrics and the access log.
    pub fn outcome(&self) -> &'static str {
        match self {
            Decision::Allow { session: None, .. } => "none",
            Decision::Allow { .. } => "session",
            Decision::Redirect { step_up: true, .. } => "step_up",
            Decision::Redirect { .. } => "redirect",
            Decision::LoginRequired { .. } => "unauthenticated",
            Decision::Deny { .. } => "denied",
        }
    }
}

/// A browser navigation (a page load), as opposed to XHR/fetch/API calls.
fn is_navigation(method: &http::Method, headers: &HeaderMap) -> bool {
    let header = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).unwrap_or("");
    if headers.contains_key("x-requested-with") {
        return false;
    }
    match header("sec-fetch-mode") {
        "navigate" => return true,
        "" => {}
        _ => return false,
    }
    matches!(
        *method,
        http::Method::GET | http::Method::HEAD | http::Method::POST
    ) && header("accept").contains("text/html")
}

/// The decision for `portal`, given the request's method, headers and full URL.
pub fn decide(
    auth: Option<&AuthState>,
    portal: &Portal,
    method: &http::Method,
    headers: &HeaderMap,
    url: &str,
    now: u64,
) -> Decision {
    if portal.danger_no_authentication {
        return Decision::Allow {
            session: None,
            rolled: None,
        };
    }
    let Some(auth) = auth else {
        // The config check makes this impossible; refuse rather than forward.
        return Decision::Deny {
            message: Message::LoginFailed,
            reason: "no_login_configured",
        };
    };
    let opened = cookie(headers, &auth.cookie_name).map(|c| {
        auth.sessions.validate(c, now).and_then(|valid| {
            // Host-only cookies name their host: another host's cookie is not a session here.
            if valid.session.host.as_deref() == auth.cookie_host(&portal.host) {
                Ok(valid)
            } else {
                Err(Refusal::Invalid)
            }
        })
    });
    let refusal = match opened {
        Some(Ok(valid)) => {
            let s = &valid.session;
            let method_allowed = match s.method {
                Method::Rekono => portal.methods.contains(&LoginMethod::Rekono),
                Method::Certificate => portal.methods.contains(&LoginMethod::Certificate),
            };
            if !method_allowed {
                return Decision::Deny {
                    message: Message::MethodNotAllowed,
                    reason: "method_not_allowed",
                };
            }
            let organisation_allowed = portal.allowed_organisations.as_ref().is_none_or(|orgs| {
                s.cert.as_ref().is_some_and(|c| {
                    auth.certificates.as_ref().is_some_and(|certs| {
                        certs.checker.organisation_allowed(
                            orgs,
                            &c.organization_id,
                            &c.organization,
                        )
                    })
                })
            });
            if !organisation_allowed
                || portal
                    .allowed_users
                    .as_ref()
                    .is_some_and(|users| !users.contains(&s.sub))
            {
                return Decision::Deny {
                    message: Message::UserNotAllowed,
                    reason: "user_not_allowed",
                };
            }
            // A certificate session holds only while its certificate does: revoked since the
            // login (a newer CRL, a cached OCSP answer) or expired, it ends here.
            if let (Method::Certificate, Some(certs)) = (s.method, &auth.certificates) {
                let still =
                    s.cert
                        .as_ref()
                        .map_or(Err(prehod_identity::cert::Refusal::Unreadable), |c| {
                            certs.checker.still_valid(
                                &prehod_identity::cert::SessionCert {
                                    anchor: &c.anchor,
                                    fingerprint: s.cert_fingerprint.as_deref().unwrap_or_default(),
                                    not_after: c.not_after,
                                    revocation_keys: &c.revocation_keys,
                                    distribution_points: &c.distribution_points,
                                },
                                now as i64,
                            )
                        });
                if let Err(refusal) = still {
                    return Decision::Deny {
                        message: Message::CertificateRefused,
                        reason: refusal.label(),
                    };
                }
            }
            if s.level < portal.min_level {
                if s.method == Method::Rekono
                    && portal.methods.contains(&LoginMethod::Rekono)
                    && is_navigation(method, headers)
                {
                    // First a page on the login host that says why (the levels), then
                    // Rekono; the application the person came from is the way back.
                    let from = came_from(auth, headers);
                    return Decision::Redirect {
                        location: auth.step_up_url(url, portal.min_level, from.as_deref()),
                        step_up: true,
                    };
                }
                return Decision::Deny {
                    message: Message::LevelTooLow,
                    reason: "level_too_low",
                };
            }
            return Decision::Allow {
                session: Some(valid.session),
                rolled: valid.rolled,
            };
        }
        Some(Err(r)) => Some(r),
        None => None,
    };
    let reason = refusal.map_or("no_session", Refusal::as_str);
    if is_navigation(method, headers) {
        let notice = matches!(
            refusal,
            Some(Refusal::IdleExpired | Refusal::AbsoluteExpired | Refusal::Revoked)
        )
        .then_some("expired");
        // Where the person came from, for a step-up the login host may find needed: the
        // Referer does not survive the single sign-on hops (`no-referrer` on redirects).
        let mut location = auth.login_page_url(url, notice);
        if let Some(from) = came_from(auth, headers) {
            location.push_str("&from=");
            location.push_str(&encode(&from));
        }
        Decision::Redirect {
            location,
            step_up: false,
        }
    } else {
        Decision::LoginRequired {
            login: auth.login_page_url(url, None),
            reason,
        }
    }
}
