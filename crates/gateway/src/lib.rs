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
pub mod forward_auth;
pub mod framing;
pub mod fresh_auth;
pub mod hygiene;
pub mod identity_headers;
pub mod lifecycle;
pub mod live;
pub mod login;
pub mod metrics;
pub mod pages;
pub mod pool;
pub mod portal;
pub mod providers;
pub mod proxy;
pub mod ratelimit;
pub mod redirect;
pub mod refusals;
pub mod reply;
pub mod request;
pub mod respond;
pub mod return_url;
pub mod revocation_data;
pub mod revocation_file;
pub mod routing;
pub mod session_entry;
pub mod shared;
pub mod sso;
pub mod state;
#[cfg(test)]
mod testing;
pub mod text;
pub mod tls;
pub mod tls_profile;
pub mod watch;

use std::sync::Arc;

use async_trait::async_trait;
use pingora::prelude::background_service;
use pingora::server::configuration::ServerConf;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prehod_config::Config;

pub use crate::shared::{PeerTemplate, PortalRuntime, Shared};

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
    #[error("pages: {0}")]
    Pages(#[from] pages::PagesError),
    #[error("session.revocation_file: {0}")]
    RevocationFile(String),
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
    let streams = connections::Streams::new(app, public.clone());
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
                        .portals
                        .iter()
                        .map(|p| (&p.pool, &p.config))
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

/// Discovers `shared`'s identity providers, each on its own (again, after a reload: the
/// previous one serves until then), retrying each until it answers.
async fn discover(shared: &Shared, shutdown: ShutdownWatch) {
    let Some(auth) = &shared.auth else {
        return;
    };
    futures_util::future::join_all(
        auth.providers
            .iter()
            .enumerate()
            .map(|(i, p)| discover_one(shared, p, i == 0, shutdown.clone())),
    )
    .await;
}

/// Discovers one provider; `first`: the one readiness waits for.
async fn discover_one(
    shared: &Shared,
    provider: &providers::LoginProvider,
    first: bool,
    mut shutdown: ShutdownWatch,
) {
    let metrics = &shared.metrics;
    let mut wait = std::time::Duration::from_millis(200);
    let issuer = &provider.settings.issuer;
    loop {
        let started = std::time::Instant::now();
        let result = prehod_identity::oidc::Provider::discover(provider.settings.clone()).await;
        metrics
            .oidc_duration
            .with_label_values(&["discovery"])
            .observe(started.elapsed().as_secs_f64());
        match result {
            Ok(discovered) => {
                provider.set_discovered(discovered);
                if first {
                    metrics.oidc_ready.set(1);
                }
                tracing::info!(provider = %provider.id, issuer = %issuer, "identity provider discovered");
                return;
            }
            // The provider answered, and cannot serve this configuration (FAPI 2.0 without a
            // PAR endpoint, another issuer): no login uses it; it is asked again, in case
            // its metadata is mended.
            Err(e @ prehod_identity::oidc::OidcError::Metadata(_)) => {
                metrics.oidc_errors.with_label_values(&["discovery"]).inc();
                tracing::error!(provider = %provider.id, issuer = %issuer, error = %e, "identity provider refused: its metadata does not fit the configuration");
            }
            Err(e) => {
                metrics.oidc_errors.with_label_values(&["discovery"]).inc();
                tracing::warn!(provider = %provider.id, issuer = %issuer, error = %e, "identity provider not reachable yet");
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
