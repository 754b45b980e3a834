//! The CRLs a certificate names in its own CRL distribution points (anchors with
//! `crl_distribution_points: true`): fetched at a login only after the chain verified, each
//! taken only from the certificate's issuer (RFC 5280 §6.3.3) as the URL's CRL (see
//! [`super::crl`] for every check), and refreshed in the background while sessions name them,
//! so that a session learns of a revocation there without a network call on its requests.

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use openssl::x509::X509;

use super::crl::{accept, AcceptedCrl, Clock, CrlRefusal, Expected, RefusedCrl};
use super::marks::CrlMarks;
use super::verdict::{issuer_hash_of, issuer_id_of_der};
use super::{fetch, Anchor, CertIdentity, Checked, Checker, Presented, Refusal, Unusable};

/// Distribution-point CRLs of one anchor, by issuer and URL.
pub struct DistributionPoints {
    /// `ISSUER URL` (see [`slot`]) → the CRL taken there for that issuer.
    cache: moka::sync::Cache<String, Arc<AcceptedCrl>>,
    /// `ISSUER URL` named by certificates that logged in, for as long as their sessions may
    /// live.
    watched: moka::sync::Cache<String, Watched>,
    /// Wakes the background refresh when a session names a URL that is not cached — at most
    /// once per `wake_every` seconds (`last_wake`, unix seconds), whatever the request rate.
    wanted: tokio::sync::Notify,
    wake_every: i64,
    last_wake: AtomicI64,
    /// `ISSUER URL` → why the CRL a login fetched there was refused: not fetched again at a
    /// login until this expires.
    refused: moka::sync::Cache<String, RefusedCrl>,
    /// `ISSUER URL` → held while a login fetches it: concurrent logins wait for that one
    /// download instead of each making their own.
    fetching: moka::sync::Cache<String, Arc<tokio::sync::Mutex<()>>>,
}

#[derive(Clone)]
struct Watched {
    url: String,
    /// The issuer as a login here showed it (its verified chain); `None` for the session of
    /// another replica's login: then the anchor's CA certificates of that name stand for it.
    issuer: Option<Arc<Issuer>>,
}

/// A certificate's issuer: its name (DER) and the certificates whose key its CRLs may be
/// signed with (from a verified chain, or the anchor's CA certificates of that name).
struct Issuer {
    name: Vec<u8>,
    certs: Vec<X509>,
}

/// Where a distribution point's CRL is kept: the URL for one issuer (two issuers' certificates
/// may name one URL; neither takes the other's CRL).
fn slot(issuer: &str, url: &str) -> String {
    format!("{issuer} {url}")
}

impl DistributionPoints {
    /// `keep_for`: how long a downloaded CRL is used (longer than the refresh interval, so the
    /// background refresh replaces it before it goes); `watch_for`: how long a URL stays
    /// watched after a login named it (a session's absolute lifetime); `pace`: how long a
    /// refused CRL is not fetched again at a login, and the least time between two refreshes
    /// a session wakes.
    pub fn new(keep_for: Duration, watch_for: Duration, pace: Duration) -> Self {
        Self {
            cache: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(keep_for)
                .build(),
            watched: moka::sync::Cache::builder()
                .max_capacity(10_000)
                .time_to_live(watch_for)
                .build(),
            wanted: tokio::sync::Notify::new(),
            wake_every: pace.as_secs().clamp(1, i64::MAX as u64) as i64,
            last_wake: AtomicI64::new(i64::MIN),
            refused: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_live(pace.max(Duration::from_secs(1)))
                .build(),
            fetching: moka::sync::Cache::builder()
                .max_capacity(1_000)
                .time_to_idle(Duration::from_secs(600))
                .build(),
        }
    }

    /// Wakes the background refresh, unless it was woken less than `wake_every` ago.
    fn wake(&self, now: i64) {
        let last = self.last_wake.load(Ordering::Relaxed);
        if now.saturating_sub(last) < self.wake_every {
            return;
        }
        if self
            .last_wake
            .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.wanted.notify_one();
        }
    }

    /// Resolves when a session named a URL that is not cached (the refresh should run now).
    pub async fn wanted(&self) {
        self.wanted.notified().await;
    }

    /// For a reload: what `old` fetched and watches (the anchor's CAs are the same).
    pub(crate) fn adopt(&self, old: &DistributionPoints) {
        for (k, v) in old.cache.iter() {
            self.cache.insert((*k).clone(), v);
        }
        for (k, v) in old.watched.iter() {
            self.watched.insert((*k).clone(), v);
        }
    }

    /// Drops the CRLs `marks` show superseded; returns their URLs.
    pub(crate) fn drop_superseded(&self, marks: &CrlMarks) -> Vec<String> {
        let mut dropped = Vec::new();
        for (k, crl) in self.cache.iter() {
            if marks
                .get(&crl.key)
                .is_some_and(|highest| !crl.mark.at_least(&highest))
            {
                self.cache.invalidate(&*k);
                dropped.push(
                    k.split_once(' ')
                        .map_or(k.to_string(), |(_, u)| u.to_owned()),
                );
            }
        }
        dropped
    }

    /// The per-request check of a session whose certificate names `urls` (its chain's
    /// revocation keys `keys`, the certificate's own first): each URL's CRL must be here,
    /// fresh, and not list it. A URL not here (another replica's login, or unreachable
    /// since) refuses until the background refresh has it (fail closed).
    pub(crate) fn still_valid(
        &self,
        urls: &[String],
        keys: &[String],
        now: i64,
        grace: Option<i64>,
    ) -> Result<(), Refusal> {
        let Some(leaf) = keys.first() else {
            return Err(Refusal::RevocationUnknown);
        };
        let issuer = issuer_hash_of(leaf);
        for url in urls {
            let at = slot(issuer, url);
            let known = self.watched.get(&at).and_then(|w| w.issuer);
            self.watched.insert(
                at.clone(),
                Watched {
                    url: url.clone(),
                    issuer: known,
                },
            );
            let Some(crl) = self.cache.get(&at) else {
                self.wake(now);
                return Err(Refusal::RevocationUnknown);
            };
            judge(&crl, leaf, now, grace)?;
        }
        Ok(())
    }
}

/// A distribution point's CRL on the certificate whose revocation key is `leaf`.
fn judge(crl: &AcceptedCrl, leaf: &str, now: i64, grace: Option<i64>) -> Result<(), Refusal> {
    if crl.stale(now, grace) {
        return Err(Refusal::RevocationUnknown);
    }
    if crl.revoked.contains(leaf) {
        return Err(Refusal::Revoked);
    }
    Ok(())
}

impl Checker {
    /// The distribution-point step of [`Checker::check_online`]: every http CRL
    /// distribution point the certificate names is fetched (or taken from the cache), must be
    /// the CRL of the certificate's issuer on the verified chain, pass every check of
    /// [`super::crl`], and must not list the certificate. One that cannot be had refuses the
    /// login (fail closed). The URLs are then watched for the certificate's sessions.
    pub(super) async fn check_distribution_points(
        &self,
        http: &reqwest::Client,
        (anchor, dps): (&Anchor, &DistributionPoints),
        id: &CertIdentity,
        presented: &Presented,
    ) -> Checked {
        if id.distribution_points.is_empty() {
            return Checked::ok();
        }
        let (Some(leaf), Some(issuer)) = (
            id.revocation_keys.first(),
            presented.chain.get(1).and_then(|d| X509::from_der(d).ok()),
        ) else {
            return Checked::refused(Refusal::Unreadable);
        };
        let Ok(name) = issuer.subject_name().to_der() else {
            return Checked::refused(Refusal::Unreadable);
        };
        let issuer = Arc::new(Issuer {
            name,
            certs: vec![issuer],
        });
        let marks = self.crl_marks();
        for url in &id.distribution_points {
            let at = slot(issuer_hash_of(leaf), url);
            let crl = match dps.cache.get(&at) {
                Some(c) => c,
                None => match dps
                    .fetch_at_login(http, &at, url, &issuer, self, anchor, &marks)
                    .await
                {
                    Ok(c) => c,
                    Err(refused) => {
                        return Checked {
                            verdict: Err(Refusal::RevocationUnknown),
                            unusable: Some(Unusable::Crl(refused)),
                        }
                    }
                },
            };
            dps.watched.insert(
                at,
                Watched {
                    url: url.clone(),
                    issuer: Some(issuer.clone()),
                },
            );
            if let Err(r) = judge(&crl, leaf, super::now(), self.stale_grace) {
                return Checked::refused(r);
            }
        }
        Checked::ok()
    }

    /// Refetches every distribution point a certificate session still names, for `anchor`.
    /// Returns what was refused (a URL that fails keeps its previous CRL until that expires).
    pub async fn refresh_distribution_points(
        &self,
        anchor: &Anchor,
        http: &reqwest::Client,
    ) -> Vec<RefusedCrl> {
        let Some(dps) = &anchor.distribution_points else {
            return Vec::new();
        };
        let marks = self.crl_marks();
        let mut refused = Vec::new();
        for (at, watched) in dps.watched.iter() {
            let issuer = match &watched.issuer {
                Some(i) => Some(i.clone()),
                None => anchor_issuer(anchor, at.split(' ').next().unwrap_or_default()),
            };
            let Some(issuer) = issuer else {
                refused.push(RefusedCrl {
                    source: watched.url.clone(),
                    reason: CrlRefusal::IssuerUnknown,
                    detail: "the issuer of the certificates naming it is not one of the anchor's CA certificates, and no login here showed it".into(),
                });
                continue;
            };
            let clock = self.clock(anchor, super::now());
            let current = dps.cache.get(&*at);
            match fetch_one(http, &watched.url, &issuer, clock, &marks, current).await {
                Ok(crl) => dps.cache.insert((*at).clone(), crl),
                Err(r) => refused.push(r),
            }
        }
        refused
    }
}

impl DistributionPoints {
    /// A login's download of `url` for `issuer` (slot `at`), when no CRL is cached: one at a
    /// time per slot (a login that waited takes what the one before it got), and none while
    /// the last one refused there is remembered.
    #[allow(clippy::too_many_arguments)]
    async fn fetch_at_login(
        &self,
        http: &reqwest::Client,
        at: &str,
        url: &str,
        issuer: &Arc<Issuer>,
        checker: &Checker,
        anchor: &Anchor,
        marks: &Arc<CrlMarks>,
    ) -> Result<Arc<AcceptedCrl>, RefusedCrl> {
        let gate = self
            .fetching
            .get_with(at.to_owned(), || Arc::new(tokio::sync::Mutex::new(())));
        let _turn = gate.lock().await;
        if let Some(c) = self.cache.get(at) {
            return Ok(c);
        }
        if let Some(mut r) = self.refused.get(at) {
            r.detail = format!("{} (refused moments ago; not fetched again yet)", r.detail);
            return Err(r);
        }
        let clock = checker.clock(anchor, super::now());
        match fetch_one(http, url, issuer, clock, marks, None).await {
            Ok(c) => {
                self.cache.insert(at.to_owned(), c.clone());
                Ok(c)
            }
            Err(r) => {
                self.refused.insert(at.to_owned(), r.clone());
                Err(r)
            }
        }
    }
}

/// The anchor's own CA certificate whose [`super::verdict::issuer_id`] is `id`.
fn anchor_issuer(anchor: &Anchor, id: &str) -> Option<Arc<Issuer>> {
    let cert = anchor.ca.iter().find(|c| {
        c.to_der()
            .ok()
            .and_then(|d| issuer_id_of_der(&d))
            .is_some_and(|i| i == id)
    })?;
    Some(Arc::new(Issuer {
        name: cert.subject_name().to_der().ok()?,
        certs: vec![cert.clone()],
    }))
}

/// Downloads `url` and takes it as `issuer`'s CRL there (in place of `current`), raising its
/// mark. The CRL is judged on a blocking thread: a big one does not hold the async workers.
async fn fetch_one(
    http: &reqwest::Client,
    url: &str,
    issuer: &Issuer,
    clock: Clock,
    marks: &Arc<CrlMarks>,
    current: Option<Arc<AcceptedCrl>>,
) -> Result<Arc<AcceptedCrl>, RefusedCrl> {
    let refused = |reason, detail| RefusedCrl {
        source: url.to_owned(),
        reason,
        detail,
    };
    let bytes = fetch::get(http, url)
        .await
        .map_err(|e| refused(CrlRefusal::Fetch, e))?;
    let (name, signers, at, judged_marks) = (
        issuer.name.clone(),
        issuer.certs.clone(),
        url.to_owned(),
        marks.clone(),
    );
    let judged = tokio::task::spawn_blocking(move || {
        let expected = Expected {
            name: &name,
            signers,
            url: Some(&at),
            for_end_entity: true,
        };
        let current: Vec<Arc<AcceptedCrl>> = current.into_iter().collect();
        accept(&bytes, &expected, &clock, &judged_marks, &current)
    })
    .await
    .map_err(|e| {
        refused(
            CrlRefusal::Unreadable,
            format!("the check did not finish: {e}"),
        )
    })?;
    let crl = judged.map_err(|(r, d)| refused(r, d))?;
    marks.raise(crl.key, &crl.mark);
    Ok(Arc::new(crl))
}
