//! The CRL marks in the shared state (issue 22): the highest CRL number and thisUpdate seen
//! per issuer, key and scope (`prehod_identity::cert::CrlMarks`), under `PREFIX crl:KEY` — a
//! hash of `number` and `this_update`, fixed-width texts that compare as the values do and are
//! only ever raised — so that a restarted replica never takes a CRL older than one the fleet
//! has seen. A replica reads them all when it (re)connects (at start-up before its first CRL
//! refresh, waiting at most twice `state.timeout`), writes back the ones it holds, and writes
//! each mark it raises. A separate key family from the revocations: nothing else reads it.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Mutex;

use prehod_identity::cert::{Mark, MarkKey};

use super::Store;
use crate::live::Live;

/// A mark in Redis lives this long after it was last raised: longer than any CRL's validity,
/// so that no CRL it superseded can still be current when it goes.
const MARK_TTL_SECS: u64 = 400 * 86_400;

/// Raises `KEYS[1]`'s `number` and `this_update` to `ARGV[1]`, `ARGV[2]` where those are
/// higher (fixed-width texts), and keeps it `ARGV[3]` seconds.
const RAISE: &str = "local n = redis.call('HGET', KEYS[1], 'number') \
local t = redis.call('HGET', KEYS[1], 'this_update') \
if (not n) or ARGV[1] > n then n = ARGV[1] end \
if (not t) or ARGV[2] > t then t = ARGV[2] end \
redis.call('HSET', KEYS[1], 'number', n, 'this_update', t) \
redis.call('EXPIRE', KEYS[1], ARGV[3]) \
return 1";

/// The marks raised here and not yet written, and whether the fleet's were read.
#[derive(Default)]
pub(super) struct MarkQueue {
    pending: Mutex<Vec<(MarkKey, Mark)>>,
    read: AtomicBool,
    read_now: tokio::sync::Notify,
}

impl Store {
    /// Queues a mark raised here for the fleet (the hook of the CRL marks).
    pub fn crl_mark_raised(&self, key: MarkKey, mark: Mark) {
        self.crl
            .pending
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push((key, mark));
        self.wake.notify_one();
    }

    /// Resolves once the fleet's marks were read since start-up, or after twice
    /// `state.timeout` (Redis away: the replica goes on with its own).
    pub async fn crl_marks_read(&self) {
        let notified = self.crl.read_now.notified();
        if self.crl.read.load(Ordering::Acquire) {
            return;
        }
        let _ = tokio::time::timeout(self.settings.timeout * 2, notified).await;
    }

    /// Reads every mark the fleet holds into the current snapshot's checker (dropping the
    /// CRLs they supersede), then writes back every mark held here.
    pub(super) async fn sync_crl_marks(&self, live: &Live) -> Result<(), String> {
        let mut c = self.connection().await?;
        let prefix = self.key("crl:");
        let keys = super::scan_keys(&mut c, &prefix).await?;
        let snapshot = live.load();
        let checker = snapshot
            .auth
            .as_ref()
            .and_then(|a| a.certificates.as_ref())
            .map(|c| c.checker.clone());
        for key in keys {
            let (number, this_update): (Option<String>, Option<String>) = redis::cmd("HMGET")
                .arg(&key)
                .arg("number")
                .arg("this_update")
                .query_async(&mut c)
                .await
                .map_err(|e| e.to_string())?;
            let mark_key = key
                .strip_prefix(&prefix)
                .and_then(|h| hex::decode(h).ok())
                .and_then(|b| MarkKey::try_from(b.as_slice()).ok());
            let mark = number
                .zip(this_update)
                .and_then(|(n, t)| Mark::from_texts(&n, &t));
            let (Some(mark_key), Some(mark), Some(checker)) = (mark_key, mark, &checker) else {
                continue;
            };
            for (anchor, source) in checker.apply_shared_crl_mark(mark_key, &mark) {
                tracing::warn!(anchor = %anchor, source = %source, reason = "rollback", "CRL refused: the fleet has seen a newer one; refused until one at least as new is fetched");
            }
        }
        if let Some(checker) = &checker {
            let mut pending = self.crl.pending.lock().unwrap_or_else(|e| e.into_inner());
            pending.extend(checker.crl_marks().all());
        }
        self.flush_crl_marks().await?;
        self.crl.read.store(true, Ordering::Release);
        self.crl.read_now.notify_waiters();
        Ok(())
    }

    /// Writes the queued marks (raising, never lowering); on failure they stay queued.
    pub(super) async fn flush_crl_marks(&self) -> Result<(), String> {
        let batch: Vec<(MarkKey, Mark)> =
            std::mem::take(&mut *self.crl.pending.lock().unwrap_or_else(|e| e.into_inner()));
        if batch.is_empty() {
            return Ok(());
        }
        let result = async {
            let mut c = self.connection().await?;
            let mut pipe = redis::pipe();
            for (key, mark) in &batch {
                pipe.cmd("EVAL")
                    .arg(RAISE)
                    .arg(1)
                    .arg(self.key(&format!("crl:{}", hex::encode(key))))
                    .arg(mark.number_text())
                    .arg(mark.this_update_text())
                    .arg(MARK_TTL_SECS)
                    .ignore();
            }
            pipe.query_async::<()>(&mut c)
                .await
                .map_err(|e| e.to_string())
        }
        .await;
        if result.is_err() {
            self.crl
                .pending
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend(batch);
        }
        result
    }
}
