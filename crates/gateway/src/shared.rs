//! What every phase of every request reads: [`Shared`], one configuration's snapshot, and
//! a [`PortalRuntime`] per portal. Built at start and again at each reload (see
//! [`crate::live`]); the request path only reads it.

use std::sync::Arc;

use pingora::upstreams::peer::PeerOptions;
use prehod_config::{Config, Portal};

use crate::metrics::Metrics;
use crate::pool::Pool;
use crate::{auth, budget, hygiene, login, pages, ratelimit, routing, state, tls, BuildError};

/// What every phase of every request reads: one configuration's snapshot, built at start and
/// again at each reload (see [`crate::live`]). The `Arc` parts are the ones that live as long as the
/// process: a reload hands them to the next snapshot.
pub struct Shared {
    pub config: Config,
    pub router: routing::Router,
    pub hygiene: hygiene::Hygiene,
    /// One per portal, in config order (the index [`routing::Route::Portal`] names).
    pub portals: Vec<Arc<PortalRuntime>>,
    pub metrics: Arc<Metrics>,
    /// The gateway's login; `None` when every portal is `danger_no_authentication`.
    pub auth: Option<auth::AuthState>,
    /// Every page the gateway serves (see [`crate::pages`]).
    pub pages: Arc<pages::Pages>,
    /// Token buckets on the login endpoints.
    pub rate_limits: Arc<ratelimit::RateLimiter>,
    /// The server certificates by SNI and the client-certificate policy of this snapshot.
    pub tls: Arc<tls::SniCertificates>,
    /// The state shared with the other replicas (`state:`); lives as long as the process.
    pub state: Option<Arc<state::Store>>,
    /// `session.revocation_file`, read at start-up; lives as long as the process.
    pub revocation_file: Option<Arc<crate::revocation_file::RevocationFile>>,
    /// Every user's sessions (for the sessions page and the admin API); lives as long as
    /// the process.
    pub sessions_index: Arc<login::sessions::Index>,
    /// The memory request bodies read into memory share (`server.*`, not reloaded); lives as
    /// long as the process.
    pub body_budget: Arc<budget::BodyBudget>,
    /// The language cookie's name (`{cookies.prefix}_lang`), for the pages of every host.
    pub lang_cookie: String,
}

/// A portal as the request path uses it: its settings, its upstream pool (health, round
/// robin) and the peer options each request's upstream connection is made with.
pub struct PortalRuntime {
    pub config: Portal,
    pub pool: Arc<Pool>,
    pub peer: PeerTemplate,
    /// `https://HOST[:PORT]` (the public port, unless 443): the audience of the identity
    /// assertions sent to it.
    pub audience: String,
    /// Its host as the `X-Forwarded-Host` value, made once (`None`: not a header value,
    /// which the request then fails on as before).
    pub forwarded_host: Option<http::HeaderValue>,
    /// Its request count and duration series, found once ([`crate::metrics::PortalMetrics`]).
    pub metrics: crate::metrics::PortalMetrics,
}

/// A portal's upstream connection settings, cloned into each request's peer.
pub struct PeerTemplate {
    pub tls: bool,
    pub options: PeerOptions,
}

impl PortalRuntime {
    /// `public_port`: the port the portals are reached on (the login URL's; `None`: 443).
    fn new(portal: &Portal, public_port: Option<u16>) -> Arc<Self> {
        let mut options = PeerOptions::new();
        options.connection_timeout = Some(portal.timeouts.connect);
        options.total_connection_timeout = Some(portal.timeouts.connect * 2);
        options.read_timeout = Some(portal.timeouts.read);
        options.write_timeout = Some(portal.timeouts.write);
        options.idle_timeout = Some(portal.timeouts.idle);
        let tls = portal.upstream.tls.as_ref();
        if let Some(tls) = tls {
            options.verify_cert = !tls.danger_accept_invalid_certs;
            options.verify_hostname = !tls.danger_accept_invalid_certs;
            if let Some(ca) = &tls.ca {
                options.ca = Some(Arc::new(ca.clone().into_boxed_slice()));
            }
        }
        Arc::new(Self {
            config: portal.clone(),
            // The origin the browser reached: with its port, unless 443.
            audience: match public_port {
                Some(port) => format!("https://{}:{port}", portal.host),
                None => format!("https://{}", portal.host),
            },
            pool: Arc::new(Pool::new(
                &portal.upstream.targets,
                portal.upstream.health_check,
            )),
            peer: PeerTemplate {
                tls: tls.is_some(),
                options,
            },
            forwarded_host: http::HeaderValue::from_str(&portal.host).ok(),
            metrics: crate::metrics::PortalMetrics::default(),
        })
    }
}

impl Shared {
    pub fn new(config: Config) -> Result<Self, BuildError> {
        let public_port = config
            .auth
            .as_ref()
            .and_then(|a| url::Url::parse(&a.login.url).ok())
            .and_then(|u| u.port());
        let portals = config
            .portals
            .iter()
            .map(|p| PortalRuntime::new(p, public_port))
            .collect();
        let login = config.auth.as_ref().map(|a| &a.login);
        let pages = Arc::new(pages::Pages::new(
            login.and_then(|l| l.templates.as_deref()),
            login.map_or(prehod_config::DEFAULT_SUPPORT_EMAIL, |l| &l.support_email),
        )?);
        Ok(Self {
            auth: auth::AuthState::new(&config, pages.clone())?,
            pages,
            router: routing::Router::new(&config),
            hygiene: hygiene::Hygiene::new(&config),
            portals,
            metrics: Arc::new(Metrics::new()?),
            rate_limits: Arc::new(ratelimit::RateLimiter::new(&config.rate_limits)),
            tls: Arc::new(tls::SniCertificates::new(&config)?),
            state: None,
            revocation_file: None,
            sessions_index: Arc::default(),
            body_budget: Arc::new(budget::BodyBudget::new(config.server.body_buffers)),
            lang_cookie: format!("{}_lang", config.cookies.prefix),
            config,
        })
    }

    /// Connects this (first) snapshot's session store to what lives as long as the process:
    /// the per-user session index, and the shared state of `state:`, if any (told of every
    /// revocation made here). Later snapshots take them over.
    pub(crate) fn with_process_hooks(mut self) -> Result<Self, BuildError> {
        self.state = match self.config.state.clone() {
            Some(settings) => Some(Arc::new(state::Store::new(settings, self.metrics.clone())?)),
            None => None,
        };
        self.revocation_file = crate::revocation_file::start(&self)?;
        self.install_hooks();
        Ok(self)
    }

    fn install_hooks(&mut self) {
        self.hook_crl_marks();
        let Some(auth) = &mut self.auth else {
            return;
        };
        let (index, store) = (self.sessions_index.clone(), self.state.clone());
        auth.sessions
            .set_issue_hook(Arc::new(move |s| index.record(s, store.as_ref())));
        let (store, file) = (self.state.clone(), self.revocation_file.clone());
        if store.is_some() || file.is_some() {
            auth.sessions.set_revoke_hook(Arc::new(move |r| {
                if let Some(file) = &file {
                    file.record(&r);
                }
                if let Some(store) = &store {
                    store.revoked(r);
                }
            }));
        }
    }

    /// The shared state store hears of every CRL mark raised here (issue 22).
    fn hook_crl_marks(&self) {
        let certs = self.auth.as_ref().and_then(|a| a.certificates.as_ref());
        if let (Some(store), Some(certs)) = (&self.state, certs) {
            let store = store.clone();
            certs
                .checker
                .crl_marks()
                .set_hook(Arc::new(move |key, mark| store.crl_mark_raised(key, mark)));
        }
    }

    /// The snapshot of a reloaded `config`, taking over from `old` what lives as long as the
    /// process (see [`crate::live`]).
    pub fn reloaded(config: Config, old: &Shared) -> Result<Self, BuildError> {
        let mut next = Self::new(config)?;
        next.metrics = old.metrics.clone();
        next.state = old.state.clone();
        next.revocation_file = old.revocation_file.clone();
        next.sessions_index = old.sessions_index.clone();
        next.body_budget = old.body_budget.clone();
        if next.config.rate_limits == old.config.rate_limits {
            next.rate_limits = old.rate_limits.clone();
        }
        // An unchanged upstream keeps its pool: its health and its round-robin position.
        // Portals are matched by name: one added, removed or moved keeps no other's pool.
        for portal in &mut next.portals {
            let same = old.portals.iter().find(|p| {
                let (p, q) = (&p.config, &portal.config);
                p.name == q.name
                    && p.upstream.targets == q.upstream.targets
                    && p.upstream.health_check == q.upstream.health_check
            });
            if let (Some(same), Some(portal)) = (same, Arc::get_mut(portal)) {
                portal.pool = same.pool.clone();
            }
        }
        next.auth = match (
            next.auth.take(),
            old.auth.as_ref(),
            next.config.auth.as_ref(),
            old.config.auth.as_ref(),
        ) {
            (Some(new_auth), Some(old_auth), Some(new_cfg), Some(old_cfg)) => {
                Some(new_auth.adopt(old_auth, new_cfg, old_cfg))
            }
            (new_auth, ..) => new_auth,
        };
        if old.auth.is_none() {
            // The login is new with this file: its session store learns of the process's
            // index and shared state here (otherwise it took them over from the old one).
            next.install_hooks();
        } else {
            next.hook_crl_marks();
        }
        Ok(next)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{edited, Dev, DEV};

    fn pool_of<'s>(shared: &'s Shared, name: &str) -> &'s Arc<Pool> {
        let found = shared.portals.iter().find(|p| p.config.name == name);
        &found.expect("a portal").pool
    }

    #[test]
    fn a_reload_keeps_the_pools_of_unchanged_portals_by_name() {
        let dev = Dev::new();
        let old = &dev.shared;
        // acq moves to another upstream (a new pool); b2b is removed, so every later portal
        // moves up one place and must still keep its own pool (matched by name, not place).
        let text = edited(DEV, &[]).replace(
            "urls: [http://127.0.0.1:9101]",
            "urls: [http://127.0.0.1:9201]",
        );
        let b2b = "  b2b:\n    host: b2b.bankart.localhost\n    title: B2B portal\n    upstream:\n      urls: [http://127.0.0.1:9102]\n";
        assert!(text.contains(b2b));
        let next = Shared::reloaded(dev.config(&text.replace(b2b, "")), old).expect("reload");
        assert_eq!(next.portals.len(), old.portals.len() - 1);
        assert!(!Arc::ptr_eq(pool_of(&next, "acq"), pool_of(old, "acq")));
        for name in ["bips", "bws", "ecmsweb", "bankomati"] {
            assert!(
                Arc::ptr_eq(pool_of(&next, name), pool_of(old, name)),
                "{name}"
            );
        }
        assert_eq!(
            next.portals
                .iter()
                .filter(|p| p.config.name == "b2b")
                .count(),
            0
        );
    }

    #[test]
    fn each_portal_runtime_carries_its_own_settings() {
        let dev = Dev::new();
        for (runtime, portal) in dev.shared.portals.iter().zip(&dev.shared.config.portals) {
            assert_eq!(runtime.config.name, portal.name);
            // The dev login URL has port 8443: the portals are reached there too.
            assert_eq!(runtime.audience, format!("https://{}:8443", portal.host));
            assert_eq!(runtime.pool.targets.len(), portal.upstream.targets.len());
        }
    }

    #[test]
    fn the_assertion_audience_keeps_a_non_default_port_and_drops_443() {
        let dev = Dev::new();
        for (login, audience) in [
            (
                "https://login.bankart.localhost:19444",
                "https://acq.bankart.localhost:19444",
            ),
            (
                "https://login.bankart.localhost",
                "https://acq.bankart.localhost",
            ),
        ] {
            let text = crate::testing::DEV.replace(
                "url: https://login.bankart.localhost:8443",
                &format!("url: {login}"),
            );
            let shared = Shared::new(dev.config(&text)).expect("builds");
            let acq = shared.portals.iter().find(|p| p.config.name == "acq");
            assert_eq!(acq.map(|p| p.audience.as_str()), Some(audience), "{login}");
        }
    }
}
