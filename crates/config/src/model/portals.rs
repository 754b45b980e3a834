//! `portals:`: each portal, its upstream and its health check.

use crate::*;

/// How a portal's users log in to the portal application after the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppLogin {
    /// The gateway's login is the only one.
    Gateway,
    /// The portal has its own username/password login, passed through untouched.
    Own,
}

#[derive(Clone, Debug)]
pub struct Portal {
    /// The key in `portals:` (`acq`, `b2b`, …), used in metrics and logs.
    pub name: String,
    /// Lower-case host name, without port.
    pub host: String,
    pub title: String,
    pub app_login: AppLogin,
    pub upstream: Upstream,
    pub timeouts: Timeouts,
    /// The lowest level of assurance the portal accepts: 10, 20 or 30.
    pub min_level: u8,
    pub methods: Vec<LoginMethod>,
    /// The HTTP methods forwarded to the portal; any other is answered 405 by the gateway.
    pub http_methods: HttpMethods,
    /// Only these user ids (the session's subject) may use the portal; `None`: anyone.
    pub allowed_users: Option<Vec<String>>,
    /// Only certificate sessions whose subject organisation (O) is listed may use the portal.
    pub allowed_organisations: Option<Vec<String>>,
    /// A certificate-only portal: its own handshake requires a client certificate from the
    /// `certificate_login` anchors, and every request is authenticated by it (no session).
    pub client_certificate_required: bool,
    /// The portal sits behind another proxy (nginx `auth_request`, Traefik ForwardAuth) that
    /// asks the gateway's forward-auth endpoint; the gateway forwards nothing to it (its
    /// `upstream` has no targets) and answers on its host only its own paths and the way to
    /// the login.
    pub forward_auth: bool,

    /// No login at all for this portal. Only for tests and demos.
    pub danger_no_authentication: bool,
}

impl Portal {
    /// Whether the portal's `methods` name the OpenID provider `id`.
    pub fn allows_provider(&self, id: &str) -> bool {
        self.methods
            .iter()
            .any(|m| matches!(m, LoginMethod::Provider(p) if p == id))
    }

    pub fn allows_certificate(&self) -> bool {
        self.methods.contains(&LoginMethod::Certificate)
    }
}

#[derive(Clone, Debug)]
pub struct Upstream {
    pub targets: Vec<Target>,
    pub tls: Option<UpstreamTls>,
    pub health_check: HealthCheck,
}

/// One upstream address, resolved when the gateway starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Debug)]
pub struct UpstreamTls {
    /// Trust anchors for the upstream's certificate; `None` uses the system store.
    pub ca: Option<Vec<X509>>,
    /// Turns off certificate verification. Named `danger_` in the file for a reason.
    pub danger_accept_invalid_certs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    pub timeout: Duration,
}
