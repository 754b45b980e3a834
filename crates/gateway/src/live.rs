//! Reload without restart. The gateway's state is split in two:
//!
//! - what lives as long as the process: metrics, the session cache and the revocations, the
//!   rate-limit buckets, the used single-sign-on codes and logout-token `jti`s, the identity
//!   provider's keys, the upstream pools' health (for unchanged upstreams);
//! - a per-configuration snapshot, [`Shared`]: routes, portals, upstreams, TLS certificates by
//!   SNI, policies, session keys, trust anchors and CRL sources.
//!
//! [`Live`] holds the current snapshot behind one atomic pointer: a request loads it once (in
//! `new_ctx`) and keeps it to its end, so no request sees half of two configurations. A reload
//! ([`Live::reload`], on `SIGHUP` or `prehod reload`) reads `proxy.yaml` again, checks it as
//! fully as `prehod check` does, builds a new snapshot that takes over the long-lived parts
//! of the current one, and swaps it in. A bad file is refused: its problems are logged (the
//! `prehod check` messages), `prehod_config_reloads_total{result="failed"}` counts it, and the
//! old configuration keeps serving.
//!
//! What a reload cannot change, because the process holds it from its start: the listener
//! addresses, `server.*` (threads, grace period, the connection caps and deadlines), the
//! trusted proxies as the connection caps see them, the TLS protocol settings
//! (`tls.profile`, `tls.min_version`) and `state`. A changed one is logged (WARN) and stays as it was until a
//! restart or a binary upgrade.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use arc_swap::ArcSwap;
use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prometheus::{IntCounterVec, IntGauge, Opts, Registry};
use tokio::sync::watch;

use crate::Shared;

/// The reload and shared-state metrics.
pub struct FleetMetrics {
    /// result (`ok`, `failed`)
    pub config_reloads: IntCounterVec,
    /// Unix seconds of the last configuration loaded (at start or by a reload).
    pub config_last_reload_success: IntGauge,
    /// 1 while the shared state store answers, 0 while not; absent without a `state` section.
    pub state_store_up: IntGauge,
    /// Shared state store operations that failed (the gateway then used its local state).
    pub state_store_errors: prometheus::IntCounter,
    registry: Registry,
}

impl FleetMetrics {
    pub fn register(registry: &Registry) -> Result<Self, prometheus::Error> {
        let config_reloads = IntCounterVec::new(
            Opts::new(
                "prehod_config_reloads_total",
                "Configuration reloads (SIGHUP, prehod reload) by result",
            ),
            &["result"],
        )?;
        // Both series exist from the start, so that a rate() or an increase() sees the first.
        for result in ["ok", "failed"] {
            config_reloads.with_label_values(&[result]);
        }
        let config_last_reload_success = IntGauge::new(
            "prehod_config_last_reload_success_timestamp_seconds",
            "When the configuration in use was loaded (unix seconds)",
        )?;
        config_last_reload_success.set(prehod_identity::unix_now() as i64);
        let state_store_up = IntGauge::new(
            "prehod_state_store_up",
            "1 while the shared state store (Redis) answers, 0 while it does not",
        )?;
        let state_store_errors = prometheus::IntCounter::new(
            "prehod_state_store_errors_total",
            "Shared state store operations that failed (local state used instead)",
        )?;
        registry.register(Box::new(config_reloads.clone()))?;
        registry.register(Box::new(config_last_reload_success.clone()))?;
        registry.register(Box::new(state_store_errors.clone()))?;
        Ok(Self {
            config_reloads,
            config_last_reload_success,
            state_store_up,
            state_store_errors,
            registry: registry.clone(),
        })
    }

    /// Exports `prehod_state_store_up` (only a gateway with a `state` section has it).
    pub fn export_state_store_up(&self) {
        let _ = self
            .registry
            .register(Box::new(self.state_store_up.clone()));
    }
}

/// Why a reload was refused.
#[derive(Debug, thiserror::Error)]
pub enum ReloadError {
    #[error("{0}")]
    Config(#[from] prehod_config::ConfigError),
    #[error("{0}")]
    Build(#[from] crate::BuildError),
    #[error("this gateway was not started from a configuration file")]
    NoFile,
    #[error("reading the configuration did not finish: {0}")]
    Interrupted(String),
}

/// The configuration in use, swapped whole by a reload.
pub struct Live {
    current: ArcSwap<Shared>,
    /// The file reloads read again; `None` for a gateway built from a `Config` alone.
    path: Option<PathBuf>,
    /// Bumped at every swap: background services restart on the new snapshot.
    generation: watch::Sender<u64>,
    /// One reload at a time.
    reloading: tokio::sync::Mutex<()>,
}

impl Live {
    pub fn new(shared: Shared, path: Option<PathBuf>) -> Self {
        Self {
            current: ArcSwap::from_pointee(shared),
            path,
            generation: watch::channel(0).0,
            reloading: tokio::sync::Mutex::new(()),
        }
    }

    /// The snapshot in use now: one atomic load.
    pub fn load(&self) -> Arc<Shared> {
        self.current.load_full()
    }

    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.generation.subscribe()
    }

    /// Reads the configuration file again and swaps it in; on any problem the current one
    /// stays, and the problems are logged.
    pub async fn reload(&self) -> Result<(), ReloadError> {
        let _one = self.reloading.lock().await;
        let old = self.load();
        let metrics = old.metrics.clone();
        let result = self.try_reload(&old).await;
        match &result {
            Ok(()) => {
                metrics
                    .fleet
                    .config_reloads
                    .with_label_values(&["ok"])
                    .inc();
                metrics
                    .fleet
                    .config_last_reload_success
                    .set(prehod_identity::unix_now() as i64);
                if let Err(e) = metrics.publish_config(&self.load().config) {
                    tracing::error!(error = %e, "the new configuration's metrics were not set");
                }
                tracing::info!(path = ?self.path, "configuration reloaded");
            }
            Err(e) => {
                metrics
                    .fleet
                    .config_reloads
                    .with_label_values(&["failed"])
                    .inc();
                match e {
                    ReloadError::Config(c) => {
                        for line in c.to_string().lines() {
                            tracing::error!(problem = %line, "configuration reload refused");
                        }
                        tracing::error!(
                            problems = c.problems.len(),
                            path = %c.file.display(),
                            "configuration reload refused; the previous configuration keeps serving"
                        );
                    }
                    other => tracing::error!(
                        error = %other,
                        "configuration reload refused; the previous configuration keeps serving"
                    ),
                }
            }
        }
        result
    }

    async fn try_reload(&self, old: &Arc<Shared>) -> Result<(), ReloadError> {
        let path = self.path.clone().ok_or(ReloadError::NoFile)?;
        // Loading reads certificate, key, CA and CRL files: off the request threads.
        let mut config = tokio::task::spawn_blocking(move || prehod_config::Config::load(&path))
            .await
            .map_err(|e| ReloadError::Interrupted(e.to_string()))??;
        for what in fixed_changes(&old.config, &config) {
            tracing::warn!(
                setting = what,
                "changed in the file, but a reload cannot apply it: it takes effect at the next restart or binary upgrade"
            );
        }
        keep_listener_tls(&mut config, &old.config);
        let next = Shared::reloaded(config, old)?;
        self.current.store(Arc::new(next));
        self.generation.send_modify(|g| *g += 1);
        Ok(())
    }

    /// Runs `task` on the current snapshot until shutdown; when a reload swaps the snapshot,
    /// the task is dropped and started again on the new one.
    pub async fn per_snapshot<F, Fut>(&self, mut shutdown: ShutdownWatch, task: F)
    where
        F: Fn(Arc<Shared>, ShutdownWatch) -> Fut,
        Fut: Future<Output = ()>,
    {
        let mut generation = self.subscribe();
        loop {
            generation.borrow_and_update();
            let snapshot = self.load();
            let run = task(snapshot, shutdown.clone());
            tokio::select! {
                _ = run => {
                    // Done for this snapshot: wait for the next one.
                    tokio::select! {
                        changed = generation.changed() => if changed.is_err() { return },
                        _ = shutdown.changed() => return,
                    }
                }
                changed = generation.changed() => if changed.is_err() { return },
                _ = shutdown.changed() => return,
            }
            if *shutdown.borrow() {
                return;
            }
        }
    }
}

/// The settings a reload cannot apply, that differ between `old` and `new`.
fn fixed_changes(old: &prehod_config::Config, new: &prehod_config::Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    if old.listen.https != new.listen.https {
        changed.push("listen.https");
    }
    if old.listen.http_redirect != new.listen.http_redirect {
        changed.push("listen.http_redirect");
    }
    if old.admin.listen != new.admin.listen {
        changed.push("admin.listen");
    }
    if old.server.threads != new.server.threads {
        changed.push("server.threads");
    }
    if old.server.grace_period != new.server.grace_period {
        changed.push("server.grace_period");
    }
    // The connection guard (caps and deadlines) is built with the listener.
    let (o, n) = (&old.server, &new.server);
    for (changed_here, key) in [
        (
            o.handshake_timeout != n.handshake_timeout,
            "server.handshake_timeout",
        ),
        (
            o.header_timeout != n.header_timeout,
            "server.header_timeout",
        ),
        (o.idle_timeout != n.idle_timeout, "server.idle_timeout"),
        (
            o.max_connections != n.max_connections,
            "server.max_connections",
        ),
        (o.body_timeout != n.body_timeout, "server.body_timeout"),
        (o.body_min_rate != n.body_min_rate, "server.body_min_rate"),
        (
            o.max_connections_per_address != n.max_connections_per_address,
            "server.max_connections_per_address",
        ),
        (
            o.max_pending_connections != n.max_pending_connections,
            "server.max_pending_connections",
        ),
        (
            old.trusted_proxies != new.trusted_proxies,
            "trusted_proxies (for the connection caps; forwarding headers follow the reload)",
        ),
    ] {
        if changed_here {
            changed.push(key);
        }
    }
    if old.tls.min_version != new.tls.min_version {
        changed.push("tls.min_version");
    }
    if old.tls.profile != new.tls.profile {
        changed.push("tls.profile");
    }
    if old.state != new.state {
        changed.push("state");
    }
    changed
}

/// The TLS profile stays the listener's in a reloaded snapshot too: each certificate's TLS
/// context is built from it, and a handshake switched to that context takes its cipher suites
/// and signature algorithms from it (`crate::tls`), so the file's new profile there would mix
/// with the listener's versions and groups (`tests/tls_contexts.rs`).
fn keep_listener_tls(new: &mut prehod_config::Config, old: &prehod_config::Config) {
    new.tls.profile = old.tls.profile;
    new.tls.min_version = old.tls.min_version;
}

/// `SIGHUP`: reload the configuration. Registering the handler replaces the signal's
/// default action (which ends the process). `prehod run` registers it before the services
/// start, so an early `SIGHUP` is ignored rather than fatal.
pub struct ReloadOnHangup {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for ReloadOnHangup {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut hangup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup())
        {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(error = %e, "cannot handle SIGHUP: reload is not available");
                return;
            }
        };
        loop {
            tokio::select! {
                got = hangup.recv() => {
                    if got.is_none() {
                        return;
                    }
                    tracing::info!("SIGHUP received: reloading the configuration");
                    // The outcome is logged and counted by `reload`.
                    let _ = self.live.reload().await;
                }
                _ = shutdown.changed() => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::{Dev, DEV};

    #[test]
    fn a_reloaded_snapshot_keeps_the_listeners_tls_profile() {
        let dev = Dev::new();
        let modern = DEV.replacen("tls:\n", "tls:\n  profile: modern\n", 1);
        assert_ne!(modern, DEV, "the dev configuration has a tls section");
        let mut new = dev.config(&modern);
        assert_ne!(new.tls.profile, dev.shared.config.tls.profile);
        // (modern's lowest version is TLS 1.3: that changes too)
        assert!(fixed_changes(&dev.shared.config, &new).contains(&"tls.profile"));
        keep_listener_tls(&mut new, &dev.shared.config);
        assert_eq!(new.tls.profile, dev.shared.config.tls.profile);
        assert_eq!(new.tls.min_version, dev.shared.config.tls.min_version);
    }
}
