//! prehod's gateway: a pingora reverse proxy that terminates TLS for the Bankart portals,
//! routes by host, keeps client-sent identity headers out, and reports metrics and access logs.
//!
//! [`build`] turns a checked [`prehod_config::Config`] into pingora services; everything the
//! request path reads (router, header sets, upstream pools, peer options) is built there once.

pub mod access_log;
pub mod admin;
pub mod audit;
pub mod auth;
pub mod body;
pub mod budget;
pub mod connections;
pub mod cookies;
pub mod framing;
pub mod fresh_auth;
pub mod hygiene;
pub mod lifecycle;
pub mod live;
pub mod login;
pub mod metrics;
pub mod my_sessions;
pub mod pages;
pub mod pool;
pub mod preserve;
pub mod proxy;
pub mod ratelimit;
pub mod redirect;
pub mod return_url;
pub mod revocation_data;
pub mod revocation_file;
pub mod routing;
pub mod sso;
pub mod state;
pub mod templates;
pub mod tls;
pub mod tls_profile;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::prelude::background_service;
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use pingora::upstreams::peer::PeerOptions;
use prehod_config::Config;

use crate::metrics::Metrics;
use crate::pool::Pool;

/// What every phase of every request reads: one configuration's snapshot, built at start and
/// again at each reload (see [`live`]). The `Arc` parts are the ones that live as long as the
/// process: a reload hands them to the next snapshot.
pub struct Shared {
    pub config: Config,
    pub router: routing::Router,
    pub hygiene: hygiene::Hygiene,
    /// One per portal, in config order.
    pub pools: Vec<Arc<Pool>>,
    pub peers: Vec<PeerTemplate>,
    pub metrics: Arc<Metrics>,
    /// The gateway's login; `None` when every portal is `danger_no_authentication`.
    pub auth: Option<auth::AuthState>,
    /// Token buckets on the login endpoints.
    pub rate_limits: Arc<ratelimit::RateLimiter>,
    /// The server certificates by SNI and the client-certificate policy of this snapshot.
    pub tls: Arc<tls::SniCertificates>,
    /// The state shared with the other replicas (`state:`); lives as long as the process.
    pub state: Option<Arc<state::Store>>,
    /// `session.revocation_file`, read at start-up; lives as long as the process.
    pub revocation_file: Option<Arc<revocation_file::RevocationFile>>,
    /// Every user's sessions (for the sessions page and the admin API); lives as long as
    /// the process.
    pub sessions_index: Arc<my_sessions::Index>,
    /// The memory request bodies read into memory share (`server.*`, not reloaded); lives as
    /// long as the process.
    pub body_budget: Arc<budget::BodyBudget>,
}

/// A portal's upstream connection settings, cloned into each request's peer.
pub struct PeerTemplate {
    pub tls: bool,
    pub options: PeerOptions,
}

#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    #[error("metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    #[error("TLS settings: {0}")]
    Tls(Box<pingora::Error>),
    #[error("login: {0}")]
    Auth(#[from] auth::AuthBuildError),
    #[error("TLS certificates: {0}")]
    Certificates(#[from] tls::TlsBuildError),
    #[error("shared state: {0}")]
    State(#[from] state::StoreError),
    #[error("session.revocation_file: {0}")]
    RevocationFile(String),
}

impl Shared {
    pub fn new(config: Config) -> Result<Self, BuildError> {
        let peers = config
            .portals
            .iter()
            .map(|portal| {
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
                PeerTemplate {
                    tls: tls.is_some(),
                    options,
                }
            })
            .collect();
        Ok(Self {
            auth: auth::AuthState::new(&config)?,
            router: routing::Router::new(&config),
            hygiene: hygiene::Hygiene::new(&config),
            pools: config
                .portals
                .iter()
                .map(|p| Arc::new(Pool::new(&p.upstream.targets, p.upstream.health_check)))
                .collect(),
            peers,
            metrics: Arc::new(Metrics::new()?),
            rate_limits: Arc::new(ratelimit::RateLimiter::new(&config.rate_limits)),
            tls: Arc::new(tls::SniCertificates::new(&config)?),
            state: None,
            revocation_file: None,
            sessions_index: Arc::default(),
            body_budget: Arc::new(budget::BodyBudget::new(config.server.body_buffers)),
            config,
        })
    }

    /// Connects this (first) snapshot's session store to what lives as long as the process:
    /// the per-user session index, and the shared state of `state:`, if any (told of every
    /// revocation made here). Later snapshots take them over.
    fn with_process_hooks(mut self) -> Result<Self, BuildError> {
        self.state = match self.config.state.clone() {
            Some(settings) => Some(Arc::new(state::Store::new(settings, self.metrics.clone())?)),
            None => None,
        };
        self.revocation_file = revocation_file::start(&self)?;
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
    /// process (see [`live`]).
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
        for (i, portal) in next.config.portals.iter().enumerate() {
            let same = old.config.portals.iter().zip(&old.pools).find(|(p, _)| {
                p.name == portal.name
                    && p.upstream.targets == portal.upstream.targets
                    && p.upstream.health_check == portal.upstream.health_check
            });
            if let (Some((_, pool)), Some(slot)) = (same, next.pools.get_mut(i)) {
                *slot = pool.clone();
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

/// pingora server settings from the config.
pub fn server_conf(config: &Config) -> ServerConf {
    ServerConf {
        threads: config.server.threads,
        grace_period_seconds: Some(config.server.grace_period.as_secs()),
        graceful_shutdown_timeout_seconds: Some(config.server.grace_period.as_secs().max(1)),
        ..ServerConf::default()
    }
}

/// All the services of one gateway: the HTTPS proxy, the admin listener, the optional
/// HTTP→HTTPS redirect, and the upstream health checker. Without a file to read again, a
/// reload is refused (see [`build_reloadable`]).
pub fn build(
    config: Config,
    server_conf: &Arc<ServerConf>,
) -> Result<Vec<Box<dyn pingora::services::ServiceWithDependents>>, BuildError> {
    build_reloadable(config, None, server_conf)
}

/// [`build`], for a configuration read from `path`: `SIGHUP` reads it again (see [`live`]).
pub fn build_reloadable(
    config: Config,
    path: Option<std::path::PathBuf>,
    server_conf: &Arc<ServerConf>,
) -> Result<Vec<Box<dyn pingora::services::ServiceWithDependents>>, BuildError> {
    let https = config.listen.https.to_string();
    let admin_addr = config.admin.listen.to_string();
    let redirect_addr = config.listen.http_redirect.map(|a| a.to_string());
    let shared = Shared::new(config)?.with_process_hooks()?;
    shared.metrics.publish_config(&shared.config)?;
    let store = shared.state.clone();
    let limits = connections::Limits::new(&shared.config.server);
    let read_buffer = shared.config.server.read_buffer;
    let trusted_proxies = shared.config.trusted_proxies.clone();
    let tls_config = tls::Fixed::of(&shared.config);
    let live = Arc::new(live::Live::new(shared, path));

    // Every listener under the connection guard (see `connections`): the public ones share
    // one set of caps; the admin listener has its own (and a small total), so that no flood
    // of the public ports keeps /healthz and /metrics from answering.
    let public = Arc::new(connections::Counters::new(
        limits.clone(),
        trusted_proxies.clone(),
    ));
    // The guard does the TLS handshake; the certificate callback reads the snapshot of each.
    let acceptor = connections::Acceptor::new(
        tls::acceptor(&tls_config).map_err(BuildError::Tls)?,
        tls::LiveCertificates { live: live.clone() },
        limits.handshake_timeout,
    );
    let mut app =
        pingora::proxy::HttpProxy::new(proxy::Gateway { live: live.clone() }, server_conf.clone());
    app.handle_init_modules();
    let streams = connections::Streams::new(app, limits.deadlines.clone());
    let mut proxy = connections::service(
        "prehod gateway",
        streams,
        public.clone(),
        Some(Arc::new(acceptor)),
    );
    proxy.add_listener(pingora::listeners::ListenerConfig::tcp(&https).l4_buffer(
        pingora::listeners::L4BufferSettings::new(
            read_buffer,
            pingora::listeners::DEFAULT_L4_WRITE_BUFFER_SIZE,
        ),
    ));

    let mut admin = connections::service(
        "prehod admin",
        connections::Signalled::new(admin::Admin { live: live.clone() }, &limits),
        Arc::new(connections::Counters::new(
            limits.for_admin(),
            trusted_proxies,
        )),
        None,
    );
    admin.add_tcp(&admin_addr);

    let mut services: Vec<Box<dyn pingora::services::ServiceWithDependents>> = vec![
        Box::new(proxy),
        Box::new(admin),
        Box::new(background_service(
            "prehod upstream health",
            HealthChecker { live: live.clone() },
        )),
        Box::new(background_service(
            "prehod CRL refresh",
            CrlRefresh { live: live.clone() },
        )),
        Box::new(background_service(
            "prehod identity provider",
            Discovery { live: live.clone() },
        )),
        Box::new(background_service(
            "prehod reload",
            live::ReloadOnHangup { live: live.clone() },
        )),
        Box::new(background_service(
            "prehod reload on change",
            watch::ReloadOnChange { live: live.clone() },
        )),
    ];
    if let Some(store) = store {
        services.push(Box::new(background_service(
            "prehod shared state",
            state::Replication {
                store,
                live: live.clone(),
            },
        )));
    }
    if let Some(addr) = redirect_addr {
        let mut redirect = connections::service(
            "prehod http redirect",
            connections::Signalled::new(redirect::HttpsRedirect { live }, &limits),
            public,
            None,
        );
        redirect.add_tcp(&addr);
        services.push(Box::new(redirect));
    }
    Ok(services)
}

/// Checks every portal's upstream targets on its interval until shutdown.
struct HealthChecker {
    live: Arc<live::Live>,
}

#[async_trait]
impl BackgroundService for HealthChecker {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.live
            .per_snapshot(shutdown, |shared, shutdown| async move {
                let checks =
                    shared
                        .pools
                        .iter()
                        .zip(&shared.config.portals)
                        .map(|(pool, portal)| {
                            let mut shutdown = shutdown.clone();
                            let shared = &shared;
                            async move {
                                let interval = pool.health_check.interval;
                                let portal = &portal.name;
                                loop {
                                    for (t, healthy) in pool.check_once().await {
                                        let Some(target) = pool.targets.get(t) else {
                                            continue;
                                        };
                                        let target = target.target.to_string();
                                        shared
                                            .metrics
                                            .upstream_healthy
                                            .with_label_values(&[portal.as_str(), target.as_str()])
                                            .set(i64::from(healthy));
                                    }
                                    tokio::select! {
                                        _ = tokio::time::sleep(interval) => {}
                                        _ = shutdown.changed() => break,
                                    }
                                }
                            }
                        });
                futures_util::future::join_all(checks).await;
            })
            .await;
    }
}

/// Discovers the identity provider, retrying until it answers; the login waits for it
/// (a login attempt meanwhile gets the "Rekono unavailable" page).
struct Discovery {
    live: Arc<live::Live>,
}

#[async_trait]
impl BackgroundService for Discovery {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.live
            .per_snapshot(shutdown, |shared, shutdown| async move {
                discover(&shared, shutdown).await
            })
            .await;
    }
}

/// Discovers `shared`'s identity provider (again, after a reload: the previous one serves
/// until then), retrying until it answers.
async fn discover(shared: &Shared, mut shutdown: ShutdownWatch) {
    let Some(auth) = &shared.auth else {
        return;
    };
    let metrics = &shared.metrics;
    let mut wait = std::time::Duration::from_millis(200);
    loop {
        let started = std::time::Instant::now();
        let result = prehod_identity::oidc::Provider::discover(auth.oidc.clone()).await;
        metrics
            .oidc_duration
            .with_label_values(&["discovery"])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(provider) => {
                let provider = match auth.provider() {
                    Some(previous) => provider.adopt_seen(&previous),
                    None => provider,
                };
                *auth.provider.write().unwrap_or_else(|e| e.into_inner()) =
                    Some(Arc::new(provider));
                metrics.oidc_ready.set(1);
                tracing::info!(issuer = %auth.oidc.issuer, "identity provider discovered");
                return;
            }
            Err(e) => {
                metrics.oidc_errors.with_label_values(&["discovery"]).inc();
                tracing::warn!(issuer = %auth.oidc.issuer, error = %e, "identity provider not reachable yet");
            }
        }
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = shutdown.changed() => return,
        }
        wait = (wait * 2).min(std::time::Duration::from_secs(10));
    }
}

/// Reads every trust anchor's CRLs again on `certificate_login.crl_refresh`, so a new CRL
/// takes effect without a restart. A CRL that fails to load or verify keeps the previous one.
/// Each anchor refreshes on its own: one that hangs (until the revocation client's timeout)
/// does not hold the others.
struct CrlRefresh {
    live: Arc<live::Live>,
}

#[async_trait]
impl BackgroundService for CrlRefresh {
    async fn start(&self, shutdown: ShutdownWatch) {
        self.live
            .per_snapshot(shutdown, |shared, shutdown| async move {
                revocation_data::refresh_crls(&shared, shutdown).await
            })
            .await;
    }
}
