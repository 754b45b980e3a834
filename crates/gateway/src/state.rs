//! The state the replicas share, in Redis (`state:` in proxy.yaml). Without it every replica
//! keeps its own, as a single gateway always did.
//!
//! - **Revocations** (by session, Rekono session, subject, session family): each one made here
//!   is written to `PREFIX rev:KIND:ID` (value: when, by the revoking replica's clock, expiring
//!   when it no longer matters) and published on `PREFIX revocations`; every replica
//!   subscribes and applies what the others publish, so a logout on one replica holds on all
//!   of them within the subscription's delay (well under a second). A replica that
//!   (re)connects subscribes first and then reads every stored revocation, so it misses none
//!   made while it was away. A subject's revocation time is compared with each session's
//!   issue time, also a replica's clock: the same meaning on every replica (clocks in sync).
//! - **Single use** (logout-token `jti`s, single sign-on codes): claimed with `SET NX`, so a
//!   token or code used on one replica is refused on the others.
//!
//! **Redis unreachable**: every replica goes on with its local state (revocations made here
//! are held locally and kept in a queue; a code or token is checked locally only), says so on
//! `/readyz` (`state_store`, not unready) and in `prehod_state_store_up` 0 and
//! `prehod_state_store_errors_total`. On reconnect it publishes what it revoked meanwhile and
//! reads what the others did.
//!
//! The request path never waits for Redis to check a session: revocations arrive by
//! subscription. Only the login host's single-use checks call Redis, bounded by
//! `state.timeout`.
//!
//! **High availability** (`state.sentinel`): the master the sentinels name is found on every
//! (re)connection and confirmed while connected ([`connection`]), so a failover is followed:
//! the subscription moves to the new master, the catch-up reads what it holds, and the
//! revocations of the last minutes are written again ([`recent`]), since replication is
//! asynchronous and the new master may not have received them.
//!
//! Split by what the parts do: finding and keeping the connection in [`connection`], the
//! background task that subscribes, catches up and reconnects in [`replication`].

mod connection;
mod recent;
mod replication;

pub use replication::Replication;

use std::collections::{HashMap, VecDeque};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prehod_identity::revocation::Kind;
use prehod_identity::session::Revoked;
use redis::AsyncCommands;
use tokio::sync::Notify;

mod crl_marks;

/// Revocations kept for publishing while Redis is away; beyond this the oldest are dropped
/// from the queue (they still hold on this replica).
const MAX_PENDING: usize = 100_000;

/// Stores a revocation's time (`ARGV[1]`) until `ARGV[2]` unless the key already holds a later
/// one; the expiry is the later of the two (`ARGV[3]`: now).
const KEEP_LATEST: &str = "local at = tonumber(ARGV[1]) \
local old = tonumber(redis.call('GET', KEYS[1]) or '0') or 0 \
local ttl = redis.call('TTL', KEYS[1]) \
local untl = tonumber(ARGV[2]) \
if ttl > 0 and tonumber(ARGV[3]) + ttl > untl then untl = tonumber(ARGV[3]) + ttl end \
if old > at then at = old end \
redis.call('SET', KEYS[1], at, 'EXAT', untl) \
return 1";

/// Revocations this replica knows (made here or learned), kept to write back into a Redis that
/// lost them; at most this many (the expired ones are dropped first).
const MAX_KNOWN: usize = 1_000_000;

/// The shared state store of this process (it lives as long as the process: a change of the
/// `state` section takes effect at the next restart).
pub struct Store {
    settings: prehod_config::State,
    /// Finds the server: the URL's, or the master the sentinels name.
    connector: connection::Connector,
    /// The server in use (with sentinels: the master found last; `None` before).
    server: Mutex<Option<connection::Server>>,
    /// For commands; `None` until connected (and again after a failure).
    conn: tokio::sync::Mutex<Option<redis::aio::MultiplexedConnection>>,
    up: AtomicBool,
    /// Revocations made here, not yet written to Redis.
    pending: Mutex<VecDeque<Revoked>>,
    /// Revocations written or learned lately, written again after a reconnection.
    recent: recent::Recent,
    /// Every unexpired revocation this replica knows, by kind and id: written back when Redis
    /// is found without the fleet's epoch (restarted empty, flushed, or a new one).
    known: Mutex<HashMap<String, Revoked>>,
    wake: Notify,
    last_error: Mutex<Option<String>>,
    metrics: Arc<crate::metrics::Metrics>,
    /// The CRL marks raised here, not yet written (see [`crl_marks`]).
    crl: crl_marks::MarkQueue,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("state: {0}")]
    Client(#[from] redis::RedisError),
}

impl Store {
    pub fn new(
        settings: prehod_config::State,
        metrics: Arc<crate::metrics::Metrics>,
    ) -> Result<Self, StoreError> {
        let connector = connection::Connector::new(&settings)?;
        metrics.fleet.export_state_store_up();
        metrics.fleet.state_store_up.set(0);
        Ok(Self {
            settings,
            server: Mutex::new(connector.fixed()),
            connector,
            conn: tokio::sync::Mutex::new(None),
            up: AtomicBool::new(false),
            pending: Mutex::new(VecDeque::new()),
            recent: recent::Recent::default(),
            known: Mutex::new(HashMap::new()),
            wake: Notify::new(),
            last_error: Mutex::new(Some("not connected yet".to_owned())),
            metrics,
            crl: crl_marks::MarkQueue::default(),
        })
    }

    fn key(&self, rest: &str) -> String {
        format!("{}{rest}", self.settings.key_prefix)
    }

    fn channel(&self) -> String {
        self.key("revocations")
    }

    pub fn is_up(&self) -> bool {
        self.up.load(Ordering::Relaxed)
    }

    /// What `/readyz` shows: the server (without credentials) and the one in use, whether it
    /// answers, and the last error.
    pub fn status(&self) -> serde_json::Value {
        let in_use = self
            .server
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|s| s.address.clone());
        serde_json::json!({
            "server": self.settings.server(),
            "master": in_use,
            "up": self.is_up(),
            "pending_revocations": self.pending.lock().unwrap_or_else(|e| e.into_inner()).len(),
            "error": *self.last_error.lock().unwrap_or_else(|e| e.into_inner()),
            "note": if self.is_up() { "shared with the other replicas" } else { "serving on this replica's local state" },
        })
    }

    fn mark_up(&self) {
        if !self.up.swap(true, Ordering::Relaxed) {
            tracing::info!(server = %self.settings.server(), "shared state store connected");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = None;
        self.metrics.fleet.state_store_up.set(1);
    }

    fn mark_down(&self, error: &str) {
        self.metrics.fleet.state_store_errors.inc();
        if self.up.swap(false, Ordering::Relaxed) {
            tracing::warn!(server = %self.settings.server(), error, "shared state store unreachable: serving on local state");
        }
        *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = Some(error.to_owned());
        self.metrics.fleet.state_store_up.set(0);
    }

    /// Keeps `r` among the revocations this replica knows (the later one of a kind and id
    /// wins); whether it was news.
    fn remember(&self, r: &Revoked) -> bool {
        let now = prehod_identity::unix_now();
        let mut known = self.known.lock().unwrap_or_else(|e| e.into_inner());
        if known.len() >= MAX_KNOWN {
            known.retain(|_, k| k.until > now);
        }
        let key = format!("{}:{}", r.kind.label(), r.id);
        match known.get(&key) {
            Some(k) if k.at >= r.at && k.until >= r.until => false,
            _ if known.len() < MAX_KNOWN => {
                known.insert(key, r.clone());
                true
            }
            _ => true,
        }
    }

    /// Redis holds no fleet epoch (it restarted empty, was flushed, or is new): this replica
    /// sets one and queues every revocation it knows, so that replicas started later learn
    /// them. Returns how many were queued.
    async fn restore_if_empty(&self) -> Result<usize, String> {
        let mut c = self.connection().await?;
        let epoch = uuid::Uuid::new_v4().simple().to_string();
        let set: Option<String> = redis::cmd("SET")
            .arg(self.key("epoch"))
            .arg(&epoch)
            .arg("NX")
            .query_async(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        if set.is_none() {
            return Ok(0);
        }
        let now = prehod_identity::unix_now();
        let again: Vec<Revoked> = self
            .known
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .values()
            .filter(|r| r.until > now)
            .cloned()
            .collect();
        let n = again.len();
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        for r in again {
            if pending.len() >= MAX_PENDING {
                break;
            }
            pending.push_back(r);
        }
        Ok(n)
    }

    /// Queues a revocation made here for the fleet (the hook of the session store).
    pub fn revoked(&self, r: Revoked) {
        self.remember(&r);
        self.recent.push(&r);
        let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
        if pending.len() >= MAX_PENDING {
            pending.pop_front();
        }
        pending.push_back(r);
        drop(pending);
        self.wake.notify_one();
    }

    /// Claims `id` of `what` (`jti`, `sso`) for `ttl`: `Some(true)` when this is its first
    /// use in the fleet, `Some(false)` when another replica (or this one) used it, `None`
    /// when Redis did not answer (the caller's local check is then all there is).
    pub async fn claim_once(&self, what: &str, id: &str, ttl: Duration) -> Option<bool> {
        // Away: not waited for on a login (the replication task reconnects).
        if !self.is_up() {
            return None;
        }
        let key = self.key(&format!("once:{what}:{id}"));
        let result = async {
            let mut c = self.connection().await?;
            let set: Option<String> = redis::cmd("SET")
                .arg(&key)
                .arg(1)
                .arg("NX")
                .arg("EX")
                .arg(ttl.as_secs().max(1))
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(set.is_some())
        }
        .await;
        match result {
            Ok(first) => Some(first),
            Err(e) => {
                self.mark_down(&e);
                self.forget_connection().await;
                None
            }
        }
    }

    /// The stored revocations among `asked` (none when Redis did not answer).
    async fn lookup(&self, asked: &[(Kind, String)]) -> Vec<Revoked> {
        let result = async {
            let mut c = self.connection().await?;
            let mut pipe = redis::pipe();
            for (kind, id) in asked {
                let key = self.key(&format!("rev:{}:{id}", kind.label()));
                pipe.cmd("GET").arg(&key).cmd("TTL").arg(&key);
            }
            let values: Vec<redis::Value> =
                pipe.query_async(&mut c).await.map_err(|e| e.to_string())?;
            Ok::<_, String>(values)
        }
        .await;
        let values = match result {
            Ok(v) => v,
            Err(e) => {
                self.mark_down(&e);
                self.forget_connection().await;
                return Vec::new();
            }
        };
        let now = prehod_identity::unix_now();
        let mut found = Vec::new();
        let mut values = values.into_iter();
        for (kind, id) in asked {
            let (Some(at), Some(ttl)) = (values.next(), values.next()) else {
                break;
            };
            let at: Option<u64> = redis::from_redis_value(at).ok().flatten();
            let ttl: i64 = redis::from_redis_value(ttl).unwrap_or(-2);
            if let (Some(at), true) = (at, ttl > 0) {
                found.push(Revoked {
                    kind: *kind,
                    id: id.clone(),
                    at,
                    until: now + ttl as u64,
                });
            }
        }
        found
    }

    /// Records a session in the per-user index (`user:SUB`, `sess:SID`).
    pub async fn index_session(&self, e: &crate::session_entry::Entry) {
        let result = async {
            let mut c = self.connection().await?;
            let user = self.key(&format!("user:{}", e.sub));
            let sess = self.key(&format!("sess:{}", e.sid));
            let _: () = redis::pipe()
                .cmd("HSET")
                .arg(&sess)
                .arg("sub")
                .arg(&e.sub)
                .arg("method")
                .arg(&e.method)
                .arg("level")
                .arg(e.level)
                .arg("auth_time")
                .arg(e.auth_time)
                .arg("issued_at")
                .arg(e.issued_at)
                .arg("family")
                .arg(e.family.as_deref().unwrap_or(""))
                .arg("expires_at")
                .arg(e.expires_at)
                .arg("last_seen")
                .arg(e.last_seen)
                .arg("op_sid")
                .arg(e.op_sid.as_deref().unwrap_or(""))
                .ignore()
                .cmd("EXPIREAT")
                .arg(&sess)
                .arg(e.expires_at)
                .ignore()
                .cmd("ZADD")
                .arg(&user)
                .arg(e.expires_at)
                .arg(&e.sid)
                .ignore()
                // The user's index lives as long as their longest session.
                .cmd("EXPIREAT")
                .arg(&user)
                .arg(e.expires_at)
                .arg("GT")
                .ignore()
                .cmd("EXPIREAT")
                .arg(&user)
                .arg(e.expires_at)
                .arg("NX")
                .ignore()
                .cmd("ZREMRANGEBYSCORE")
                .arg(&user)
                .arg("-inf")
                .arg(prehod_identity::unix_now())
                .ignore()
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        }
        .await;
        if let Err(e) = result {
            self.mark_down(&e);
            self.forget_connection().await;
        }
    }

    /// Moves a session's "last seen" forward.
    pub async fn session_seen(&self, sid: &str, now: u64) {
        let result = async {
            let mut c = self.connection().await?;
            let sess = self.key(&format!("sess:{sid}"));
            // A hash left with this field alone (its session gone) is never listed.
            let _: () = redis::cmd("HSET")
                .arg(&sess)
                .arg("last_seen")
                .arg(now)
                .query_async::<()>(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(())
        }
        .await;
        if let Err(e) = result {
            self.mark_down(&e);
            self.forget_connection().await;
        }
    }

    /// The sessions of `sub` the index holds (empty when Redis did not answer).
    pub async fn user_sessions(&self, sub: &str, now: u64) -> Vec<crate::session_entry::Entry> {
        if !self.is_up() {
            return Vec::new();
        }
        let result = async {
            let mut c = self.connection().await?;
            let user = self.key(&format!("user:{sub}"));
            // Latest expiry first: with more than 200, the newest sessions are the ones listed.
            let sids: Vec<String> = redis::cmd("ZREVRANGEBYSCORE")
                .arg(&user)
                .arg("+inf")
                .arg(now)
                .arg("LIMIT")
                .arg(0)
                .arg(200)
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let mut out = Vec::new();
            for sid in sids {
                let h: HashMap<String, String> = redis::cmd("HGETALL")
                    .arg(self.key(&format!("sess:{sid}")))
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
                let num = |k: &str| h.get(k).and_then(|v| v.parse::<u64>().ok());
                let (Some(auth_time), Some(expires_at)) = (num("auth_time"), num("expires_at"))
                else {
                    continue;
                };
                // Written by a replica from before issue times: its login time stands in
                // (see `Session::issue_time`).
                let issued_at = num("issued_at").unwrap_or(auth_time);
                out.push(crate::session_entry::Entry {
                    sid,
                    sub: h.get("sub").cloned().unwrap_or_default(),
                    method: h.get("method").cloned().unwrap_or_default(),
                    level: num("level").and_then(|l| u8::try_from(l).ok()).unwrap_or(0),
                    auth_time,
                    issued_at,
                    expires_at,
                    last_seen: num("last_seen").unwrap_or(issued_at),
                    op_sid: h.get("op_sid").filter(|o| !o.is_empty()).cloned(),
                    family: h.get("family").filter(|f| !f.is_empty()).cloned(),
                });
            }
            Ok::<_, String>(out)
        }
        .await;
        match result {
            Ok(v) => v,
            Err(e) => {
                self.mark_down(&e);
                self.forget_connection().await;
                Vec::new()
            }
        }
    }

    /// Adds one to the counter `key` (expiring after `ttl_secs`); `None` when Redis did not
    /// answer.
    async fn count(&self, key: &str, ttl_secs: u64) -> Option<u64> {
        let result = async {
            let mut c = self.connection().await?;
            let (n,): (u64,) = redis::pipe()
                .cmd("INCR")
                .arg(key)
                .cmd("EXPIRE")
                .arg(key)
                .arg(ttl_secs)
                .ignore()
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            Ok::<_, String>(n)
        }
        .await;
        match result {
            Ok(n) => Some(n),
            Err(e) => {
                self.mark_down(&e);
                self.forget_connection().await;
                None
            }
        }
    }

    /// Writes and publishes the queued revocations; on failure they stay queued.
    async fn flush(&self) -> Result<(), String> {
        loop {
            let Some(next) = self
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .front()
                .cloned()
            else {
                return Ok(());
            };
            let mut c = self.connection().await?;
            let key = self.key(&format!("rev:{}:{}", next.kind.label(), next.id));
            let now = prehod_identity::unix_now();
            if next.until > now {
                // Held as long as what it ends could be valid; a later revocation of the
                // same subject moves `at` forward (the larger one wins on every replica).
                // Never moves back: a revocation queued during an outage and written after a
                // later one of the same subject keeps the later time and the later expiry.
                let _: () = redis::pipe()
                    .cmd("EVAL")
                    .arg(KEEP_LATEST)
                    .arg(1)
                    .arg(&key)
                    .arg(next.at)
                    .arg(next.until)
                    .arg(now)
                    .ignore()
                    .cmd("PUBLISH")
                    .arg(self.channel())
                    .arg(message(&next))
                    .ignore()
                    .query_async(&mut c)
                    .await
                    .map_err(|e| e.to_string())?;
            }
            let mut pending = self.pending.lock().unwrap_or_else(|e| e.into_inner());
            if pending.front() == Some(&next) {
                pending.pop_front();
            }
        }
    }

    /// Every revocation stored in Redis (for a replica that (re)connects).
    async fn stored(&self) -> Result<Vec<Revoked>, String> {
        let mut c = self.connection().await?;
        let prefix = self.key("rev:");
        let keys = scan_keys(&mut c, &prefix).await?;
        let mut out = Vec::new();
        let now = prehod_identity::unix_now();
        for key in keys {
            let (at, ttl): (Option<u64>, i64) = redis::pipe()
                .cmd("GET")
                .arg(&key)
                .cmd("TTL")
                .arg(&key)
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let Some(rest) = key.strip_prefix(&prefix) else {
                continue;
            };
            let Some((kind, id)) = rest.split_once(':') else {
                continue;
            };
            let (Some(kind), Some(at), true) = (Kind::from_label(kind), at, ttl > 0) else {
                continue;
            };
            out.push(Revoked {
                kind,
                id: id.to_owned(),
                at,
                until: now + ttl as u64,
            });
        }
        Ok(out)
    }
}

/// Claims a single sign-on code in the fleet before it is redeemed here: one exchanged on
/// another replica is then refused here as replayed. Without shared state (or while it is
/// away) the local single-use check is all there is.
pub async fn claim_sso_code(shared: &crate::Shared, code: Option<&String>) {
    let (Some(store), Some(auth), Some(code)) = (&shared.state, &shared.auth, code) else {
        return;
    };
    let Some(nonce) = auth.sso.nonce_of(code) else {
        return;
    };
    let ttl = Duration::from_secs(crate::sso::LIFETIME + 5);
    if store.claim_once("sso", &nonce, ttl).await == Some(false) {
        auth.sso.mark_used(nonce);
    }
}

/// A session cookie this replica has not opened before (a local miss): its revocations are
/// looked up in Redis before it is checked, in case a published one did not reach this
/// replica. One round trip per new cookie per replica, bounded by `state.timeout`; skipped
/// while Redis is away.
pub async fn check_unseen(shared: &crate::Shared, headers: &http::HeaderMap) {
    let (Some(store), Some(auth)) = (shared.state.as_ref().filter(|s| s.is_up()), &shared.auth)
    else {
        return;
    };
    let Some(cookie) = crate::auth::cookie(headers, &auth.cookie_name) else {
        return;
    };
    if auth.sessions.is_cached(cookie) {
        return;
    }
    let now = prehod_identity::unix_now();
    let Some(session) = auth.sessions.peek(cookie, now) else {
        return;
    };
    let mut asked = vec![(Kind::Session, session.sid.clone())];
    if let Some(op) = &session.op_sid {
        asked.push((Kind::RekonoSession, op.to_string()));
    }
    asked.push((Kind::Subject, session.sub.clone()));
    asked.push((Kind::Family, session.family_id().to_owned()));
    for r in store.lookup(&asked).await {
        auth.sessions.apply_remote(&r, now);
    }
}

/// Before a Rekono login of `sub` is judged (see `crate::fresh_auth`): the subject's
/// revocation and fresh-login requirement as Redis holds them, in case its message has not reached this replica. One round
/// trip, bounded by `state.timeout`; skipped while Redis is away.
pub async fn check_subject(shared: &crate::Shared, auth: &crate::auth::AuthState, sub: &str) {
    let Some(store) = shared.state.as_ref().filter(|s| s.is_up()) else {
        return;
    };
    let found = store
        .lookup(&[
            (Kind::Subject, sub.to_owned()),
            (Kind::FreshLogin, sub.to_owned()),
        ])
        .await;
    let now = prehod_identity::unix_now();
    for r in found {
        auth.sessions.apply_remote(&r, now);
    }
}

/// The fleet's share of a login endpoint's rate limit, after this replica's own buckets let
/// the request through: a fixed window of the rate's period per client address (and per
/// certificate), counted in Redis across the replicas, allowing the larger of the rate's
/// count and the burst in each. While Redis is away, each replica's buckets are all there is.
pub async fn fleet_rate_limit(
    shared: &crate::Shared,
    endpoint: crate::ratelimit::Endpoint,
    client: Option<std::net::IpAddr>,
    certificate: Option<&str>,
) -> Option<crate::ratelimit::Limited> {
    let store = shared.state.as_ref().filter(|s| s.is_up())?;
    let limit = crate::ratelimit::limit_for(&shared.config.rate_limits, endpoint);
    let now = prehod_identity::unix_now();
    let counted = [
        (
            limit.per_address,
            "address",
            client.map(crate::ratelimit::address_label),
        ),
        (
            limit.per_certificate,
            "certificate",
            certificate.map(str::to_owned),
        ),
    ];
    for (rate, what, key) in counted {
        let (Some(rate), Some(key)) = (rate, key) else {
            continue;
        };
        let window = rate.per.as_secs().max(1);
        let allowed = u64::from(rate.count.max(limit.burst));
        let redis_key = store.key(&format!(
            "rl:{}:{what}:{key}:{}",
            endpoint.label(),
            now / window
        ));
        match store.count(&redis_key, window + 1).await {
            Some(n) if n > allowed => {
                return Some(crate::ratelimit::Limited {
                    retry_after_secs: (window - now % window).max(1),
                });
            }
            _ => {}
        }
    }
    None
}

/// `KIND AT UNTIL ID`, space separated (the id last: it may hold anything but a newline).
fn message(r: &Revoked) -> String {
    format!("{} {} {} {}", r.kind.label(), r.at, r.until, r.id)
}

fn parse_message(text: &str) -> Option<Revoked> {
    let mut parts = text.splitn(4, ' ');
    let kind = Kind::from_label(parts.next()?)?;
    let at = parts.next()?.parse().ok()?;
    let until = parts.next()?.parse().ok()?;
    let id = parts.next()?.to_owned();
    (!id.is_empty()).then_some(Revoked {
        kind,
        id,
        at,
        until,
    })
}

/// Every key under `prefix` (SCAN, so Redis is never blocked by a large keyspace).
async fn scan_keys(
    c: &mut redis::aio::MultiplexedConnection,
    prefix: &str,
) -> Result<Vec<String>, String> {
    let mut iter: redis::AsyncIter<'_, String> = c
        .scan_match(format!("{prefix}*"))
        .await
        .map_err(|e| e.to_string())?;
    let mut keys = Vec::new();
    while let Some(k) = iter.next_item().await {
        keys.push(k.map_err(|e| e.to_string())?);
    }
    Ok(keys)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_revocation_message_reads_back_whatever_its_id() {
        let r = Revoked {
            kind: Kind::Subject,
            id: "user with spaces: and colons".into(),
            at: 10,
            until: 20,
        };
        assert_eq!(parse_message(&message(&r)), Some(r));
        assert_eq!(parse_message("session 1 2"), None);
        assert_eq!(parse_message("nonsense 1 2 x"), None);
        assert_eq!(parse_message("session x 2 id"), None);
    }
}
