//! Reloading without a signal (`reload.watch`): every interval, look whether a file the
//! configuration was read from — `proxy.yaml`, a `${file:…}` secret, a certificate, a key, a
//! CA bundle — differs from what it was when read; if one does, reload as `SIGHUP` would.
//!
//! This is what makes a rotated Kubernetes Secret or ConfigMap take effect in running pods:
//! the kubelet replaces the mounted files, and nothing sends a signal. A reload the new files
//! make fail is logged and counted like any other, and not tried again until a file changes
//! once more (a secret manager writing several files one after the other ends on a good set).

use std::sync::Arc;

use async_trait::async_trait;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;

use crate::live::Live;

/// The background service that reloads when a file of the configuration changed.
pub struct ReloadOnChange {
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for ReloadOnChange {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut generation = self.live.subscribe();
        // The files' stamps when a reload failed: not tried again while they stay so.
        let mut failed_at: Option<Vec<Option<prehod_config::sources::FileStamp>>> = None;
        loop {
            let every = self.live.load().config.reload.watch;
            match every {
                Some(every) => tokio::select! {
                    _ = tokio::time::sleep(every) => {}
                    _ = shutdown.changed() => return,
                },
                // Off: wait for a configuration that turns it on.
                None => tokio::select! {
                    changed = generation.changed() => if changed.is_err() { return },
                    _ = shutdown.changed() => return,
                },
            }
            if every.is_none() || *shutdown.borrow() {
                continue;
            }
            let snapshot = self.live.load();
            // A few stat calls, off the runtime's threads all the same.
            let looked = tokio::task::spawn_blocking(move || {
                let config = &snapshot.config;
                let changed: Vec<String> = config
                    .changed_sources()
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect();
                let now: Vec<_> = config
                    .sources
                    .iter()
                    .map(|s| prehod_config::sources::FileStamp::of(&s.path))
                    .collect();
                (changed, now)
            })
            .await;
            let Ok((changed, now)) = looked else { continue };
            if changed.is_empty() || failed_at.as_ref() == Some(&now) {
                continue;
            }
            tracing::info!(
                files = %changed.join(", "),
                "a file of the configuration changed: reloading"
            );
            // The outcome is logged and counted by `reload`.
            failed_at = match self.live.reload().await {
                Ok(()) => None,
                Err(_) => Some(now),
            };
        }
    }
}
