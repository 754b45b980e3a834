//! The background task that keeps this replica in the fleet: it finds the server (with
//! sentinels: the master), subscribes to the revocations, catches up with what is stored,
//! writes again what the last server may have lost, publishes what was revoked here, and
//! starts over whenever the connection is lost or the sentinels name another master.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use pingora::server::ShutdownWatch;
use pingora::services::background::BackgroundService;
use prehod_identity::session::Revoked;

use super::connection::Server;
use super::{parse_message, Store};
use crate::live::Live;

/// The first pause before reconnecting; it doubles up to the connector's cap while no master
/// is found (cheap attempts), and up to [`SLOWEST_RETRY`] when one was found and the period
/// still failed (each attempt reads every stored revocation).
const FIRST_RETRY: Duration = Duration::from_millis(100);
const SLOWEST_RETRY: Duration = Duration::from_secs(1);

/// Why a connected period ended, and whether it found a server to talk to.
struct Ended {
    why: String,
    found: bool,
}

/// How often a connected period pings the subscription, writes what is queued and (with
/// sentinels) confirms the master.
const TICK: Duration = Duration::from_millis(500);

/// Applies `r` to the current snapshot's session store (shared by every snapshot).
fn apply(live: &Live, r: &Revoked) {
    if let Some(auth) = &live.load().auth {
        auth.sessions.apply_remote(r, prehod_identity::unix_now());
    }
}

/// Keeps this replica in the fleet: subscribes to the revocations, catches up, publishes
/// its own, and reconnects whenever Redis goes away or its master moves.
pub struct Replication {
    pub store: Arc<Store>,
    pub live: Arc<Live>,
}

#[async_trait]
impl BackgroundService for Replication {
    async fn start(&self, mut shutdown: ShutdownWatch) {
        let mut wait = FIRST_RETRY;
        loop {
            let session = self.connected();
            let cap = tokio::select! {
                ended = session => {
                    // A period that got connected starts the pauses over.
                    if self.store.is_up() {
                        wait = FIRST_RETRY;
                    }
                    self.store.mark_down(&ended.why);
                    self.store.forget_connection().await;
                    if ended.found { SLOWEST_RETRY } else { self.store.connector.retry_cap() }
                }
                _ = shutdown.changed() => return,
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = shutdown.changed() => return,
            }
            wait = (wait * 2).min(cap);
        }
    }
}

impl Replication {
    /// One connected period; returns why it ended.
    async fn connected(&self) -> Ended {
        let (server, conn) = match self.store.connector.find().await {
            Ok(found) => found,
            Err(why) => return Ended { why, found: false },
        };
        self.store.use_server(server.clone(), conn).await;
        Ended {
            why: self.period(&server).await,
            found: true,
        }
    }

    /// The period with `server`, once found; returns why it ended.
    async fn period(&self, server: &Server) -> String {
        let store = &self.store;
        let mut pubsub = match tokio::time::timeout(
            store.settings.timeout * 2,
            server.client.get_async_pubsub(),
        )
        .await
        {
            Ok(Ok(p)) => p,
            Ok(Err(e)) => return e.to_string(),
            Err(_) => return "connect timed out".to_owned(),
        };
        if let Err(e) = pubsub.subscribe(store.channel()).await {
            return e.to_string();
        }
        // Subscribed first, then read: nothing published meanwhile is missed.
        match store.stored().await {
            Ok(all) => {
                for r in &all {
                    apply(&self.live, r);
                    store.remember(r);
                }
                tracing::info!(
                    revocations = all.len(),
                    "caught up with the fleet's revocations"
                );
            }
            Err(e) => return e,
        }
        if let Err(e) = store.sync_crl_marks(&self.live).await {
            return e;
        }
        match store.restore_if_empty().await {
            Ok(0) => {}
            Ok(n) => tracing::warn!(
                revocations = n,
                "the state store had lost the fleet's revocations (no epoch): writing back those this replica knows"
            ),
            Err(e) => return e,
        }
        // What the last server acknowledged may not have reached this one (a failover to a
        // replica that lagged, an append-only file not yet synced): written again.
        let again = store.write_recent_again();
        if again > 0 {
            tracing::info!(
                revocations = again,
                "writing the latest revocations again, in case the state store lost them"
            );
        }
        if let Err(e) = store.flush().await {
            return e;
        }
        store.mark_up();
        let (mut sink, mut messages) = pubsub.split();
        let mut tick = tokio::time::interval(TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                msg = messages.next() => {
                    let Some(msg) = msg else {
                        return "subscription closed".to_owned();
                    };
                    let text: String = match msg.get_payload() {
                        Ok(t) => t,
                        Err(_) => continue,
                    };
                    match parse_message(&text) {
                        Some(r) => {
                            apply(&self.live, &r);
                            if store.remember(&r) {
                                store.recent.push(&r);
                            }
                        }
                        None => tracing::warn!("unreadable revocation message on the state store"),
                    }
                }
                _ = store.wake.notified() => {
                    if let Err(e) = store.flush().await {
                        return e;
                    }
                    if let Err(e) = store.flush_crl_marks().await {
                        return e;
                    }
                }
                _ = tick.tick() => {
                    // Notices a server that went away without closing (and keeps the
                    // command connection honest).
                    let pinged = tokio::time::timeout(store.settings.timeout * 2, sink.ping::<redis::Value>()).await;
                    match pinged {
                        Ok(Ok(_)) => {}
                        Ok(Err(e)) => return e.to_string(),
                        Err(_) => return "ping timed out".to_owned(),
                    }
                    // A master the sentinels replaced while it stayed reachable from here.
                    let confirmed = tokio::time::timeout(
                        store.settings.timeout * 2,
                        store.connector.confirm(server),
                    )
                    .await;
                    if let Ok(Err(moved)) = confirmed {
                        return moved;
                    }
                    if let Err(e) = store.flush().await {
                        return e;
                    }
                    if !store.is_up() {
                        store.mark_up();
                    }
                }
            }
        }
    }
}
