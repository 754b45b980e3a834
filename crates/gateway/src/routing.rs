//! Which portal a request is for: by the Host (or HTTP/2 `:authority`), which must agree with
//! the TLS SNI when one was sent. Anything else is misdirected (421), never a default portal.

use prehod_config::Config;

#[derive(Debug)]
pub struct Router {
    /// Each portal's host, at its portal's index. Looked through in order: a handful of
    /// names, compared by length first, cost less than hashing the request's host (issue 20).
    by_host: Vec<String>,
    login_host: Option<String>,
    cert_host: Option<String>,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Route {
    Portal(usize),
    /// The login host: login page, OIDC callback, logout, JWKS.
    Login,
    /// The certificate-login host: its handshake asks for a client certificate.
    CertLogin,
    /// `crate::forward_auth::PATH` on the login host: another proxy asks about a request.
    ForwardAuth,
    /// No configured portal has this host, or the SNI names another host.
    Misdirected,
}

impl Router {
    pub fn new(config: &Config) -> Self {
        Self {
            by_host: config.portals.iter().map(|p| p.host.clone()).collect(),
            login_host: config.auth.as_ref().map(|a| a.login.host.clone()),
            cert_host: config
                .auth
                .as_ref()
                .and_then(|a| a.certificate_login.as_ref())
                .map(|c| c.host.clone()),
        }
    }

    /// `host` is the Host header or authority (may carry a port); `sni` the TLS server name.
    pub fn route(&self, host: Option<&str>, sni: Option<&str>) -> Route {
        let Some(host) = host.map(strip_port) else {
            return Route::Misdirected;
        };
        // Lowered into a copy only when it has a capital letter (a browser sends none).
        let lowered;
        let host = match host.bytes().any(|b| b.is_ascii_uppercase()) {
            true => {
                lowered = host.to_ascii_lowercase();
                lowered.as_str()
            }
            false => host,
        };
        let host = host.strip_suffix('.').unwrap_or(host);
        if let Some(sni) = sni {
            if !sni.eq_ignore_ascii_case(host) {
                return Route::Misdirected;
            }
        }
        if self.login_host.as_deref() == Some(host) {
            return Route::Login;
        }
        if self.cert_host.as_deref() == Some(host) {
            return Route::CertLogin;
        }
        match self.by_host.iter().position(|h| h == host) {
            Some(i) => Route::Portal(i),
            None => Route::Misdirected,
        }
    }

    /// [`Router::route`] for a request: on the login host, the forward-auth path is a route
    /// of its own (its callers, methods and limits are not the login's).
    pub fn route_request(&self, req: &crate::request::Request<'_>) -> Route {
        match self.route(req.host, req.sni()) {
            Route::Login if req.path == crate::forward_auth::PATH => Route::ForwardAuth,
            route => route,
        }
    }

    pub fn knows(&self, host: &str) -> bool {
        self.by_host.iter().any(|h| h == host)
    }
}

/// `host:port` → `host`; `[v6]:port` → `[v6]`.
pub fn strip_port(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .and_then(|end| authority.get(..=end))
            .unwrap_or(authority);
    }
    authority.rsplit_once(':').map_or(authority, |(h, _)| h)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn router() -> Router {
        Router {
            by_host: vec!["acq.bankart.si".to_owned(), "b2b.bankart.si".to_owned()],
            login_host: Some("login.bankart.si".to_owned()),
            cert_host: None,
        }
    }

    #[test]
    fn routes_by_host_and_sni() {
        let r = router();
        assert_eq!(
            r.route(Some("acq.bankart.si"), Some("acq.bankart.si")),
            Route::Portal(0)
        );
        assert_eq!(r.route(Some("B2B.Bankart.si:8443"), None), Route::Portal(1));
        assert_eq!(r.route(Some("acq.bankart.si."), None), Route::Portal(0));
        assert_eq!(r.route(Some("evil.example"), None), Route::Misdirected);
        assert_eq!(r.route(None, None), Route::Misdirected);
        // SNI for one portal, Host for another: domain fronting is refused.
        assert_eq!(
            r.route(Some("b2b.bankart.si"), Some("acq.bankart.si")),
            Route::Misdirected
        );
        assert_eq!(strip_port("[::1]:8443"), "[::1]");
        assert_eq!(
            r.route(Some("login.bankart.si"), Some("login.bankart.si")),
            Route::Login
        );
        assert_eq!(
            r.route(Some("login.bankart.si"), Some("login.bankart.si")),
            Route::Login
        );
    }
}
