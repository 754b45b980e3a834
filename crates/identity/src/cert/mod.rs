//! Certificate login: the checks on a client's certificate, and the revocation data they use.
//!
//! - `verdict`: the decision on the chain OpenSSL built in the handshake, from every error it
//!   reported, then dates, usages, extensions, policies, the CRLs held in memory and the user
//!   id — no I/O ([`Checker::check`]); the same in-memory checks run on every request of a
//!   certificate session ([`Checker::still_valid`]). `user_id`: ids and their templates.
//! - `crl`: when a CRL is taken — bound to the CA whose CRL its source is, its scope and its
//!   freshness, never below the highest seen (`marks`); `sources`: the anchors' configured
//!   CRLs and their refresh; `distribution`: the certificates' own distribution points.
//! - `ocsp`: answers signed by the issuer or its delegated responder, fresh by a nonce or a
//!   maximum age; `der`: the little DER that takes.
//! - `fetch`: the bounded HTTP client every download uses.

mod cached;
mod crl;
mod der;
mod distribution;
mod fetch;
mod marks;
mod ocsp;
mod sources;
mod user_id;
mod verdict;

use std::sync::{Arc, RwLock};

use openssl::x509::X509;

pub use cached::VerdictCache;
pub use crl::{CrlRefusal, RefusedCrl};
pub use distribution::DistributionPoints;
pub use fetch::{revocation_client, MAX_FETCH_BYTES};
pub use marks::{CrlMarks, Mark, MarkHook, MarkKey};
pub use ocsp::{Ocsp, OcspAnswer, OcspRefusal, Question};
pub use prehod_config::{AnchorCrl, CrlSource};
pub use sources::CrlState;
pub use user_id::{expand_user_id_template, UserId};
pub use verdict::{CertIdentity, ChainError, Presented, Refusal, SessionCert};

/// One trust anchor: its CA certificates, how its users are named, and its revocation data.
pub struct Anchor {
    pub name: String,
    pub ca: Vec<X509>,
    pub user_id: UserId,
    /// Put before every user id of this anchor (`acnlb:`), so that ids of two anchors never
    /// meet, nor a Rekono `sub` (which may not contain `:`).
    pub user_id_prefix: String,
    /// `None`: any policy.
    pub policies: Option<Vec<String>>,
    /// Its CRLs: where each comes from and whose it must be.
    pub crl_sources: Vec<AnchorCrl>,
    /// The CRL each source gave last.
    crls: sources::Loaded,
    /// Revocation by OCSP, when the anchor names a responder.
    pub ocsp: Option<Ocsp>,
    /// Also check the CRLs named in each certificate's CRL distribution points (http).
    pub distribution_points: Option<DistributionPoints>,
    /// This anchor's own clock skew (seconds) and intermediate limit, over the checker's.
    pub clock_skew: Option<i64>,
    pub max_intermediates: Option<usize>,
}

impl Anchor {
    pub fn new(
        name: String,
        ca: Vec<X509>,
        user_id: UserId,
        policies: Option<Vec<String>>,
        crl_sources: Vec<AnchorCrl>,
        ocsp: Option<Ocsp>,
        distribution_points: Option<DistributionPoints>,
    ) -> Self {
        Self {
            user_id_prefix: prehod_config::default_user_id_prefix(&name),
            name,
            ca,
            user_id,
            policies,
            crls: sources::Loaded::new(&crl_sources),
            crl_sources,
            ocsp,
            distribution_points,
            clock_skew: None,
            max_intermediates: None,
        }
    }
}

/// The certificate checks of one configuration: its anchors and limits, and the CRL marks of
/// the process.
pub struct Checker {
    pub anchors: Vec<Anchor>,
    /// How many intermediate CAs may stand between a certificate and its anchor.
    pub max_intermediates: usize,
    pub clock_skew: i64,
    /// Seconds a CRL may be past its nextUpdate and still be used; `None`: fail closed.
    pub stale_grace: Option<i64>,
    /// The highest CRL seen per issuer and scope; handed on at a reload ([`Checker::adopt`]).
    marks: RwLock<Arc<CrlMarks>>,
    /// This configuration's, for the verdicts kept with connections ([`VerdictCache`]).
    generation: u64,
}

impl Checker {
    pub fn new(
        anchors: Vec<Anchor>,
        max_intermediates: usize,
        clock_skew: i64,
        stale_grace: Option<i64>,
    ) -> Self {
        Self {
            anchors,
            max_intermediates,
            clock_skew,
            stale_grace,
            marks: RwLock::default(),
            generation: cached::next_generation(),
        }
    }

    /// The process's CRL marks (the shared state store reads and feeds them).
    pub fn crl_marks(&self) -> Arc<CrlMarks> {
        self.marks.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// The network checks of a login, after [`Checker::check`] passed: the certificate's
    /// own distribution points (where its anchor takes them), then, if they left nothing to
    /// say, the anchor's OCSP responder (where it has one).
    pub async fn check_online(
        &self,
        http: &reqwest::Client,
        id: &CertIdentity,
        presented: &Presented,
    ) -> Checked {
        let Some(anchor) = self.anchor(&id.anchor) else {
            return Checked::ok();
        };
        if let Some(dps) = &anchor.distribution_points {
            let checked = self
                .check_distribution_points(http, (anchor, dps), id, presented)
                .await;
            if checked.verdict.is_err() || checked.unusable.is_some() {
                return checked;
            }
        }
        match &anchor.ocsp {
            Some(ocsp) => self.check_ocsp(http, (anchor, ocsp), id, presented).await,
            None => Checked::ok(),
        }
    }

    /// The anchor named `name`.
    fn anchor(&self, name: &str) -> Option<&Anchor> {
        self.anchors.iter().find(|a| a.name == name)
    }

    /// Whether `allowed` (a portal's `allowed_organisations`) lets in a certificate of
    /// organisation `organization_id` (anchor-qualified, see [`CertIdentity`]). With a single
    /// anchor, a bare organisation name stands for that anchor's.
    pub fn organisation_allowed(
        &self,
        allowed: &[String],
        organization_id: &str,
        organization: &str,
    ) -> bool {
        allowed.iter().any(|o| o == organization_id)
            || (self.anchors.len() == 1 && allowed.iter().any(|o| o == organization))
    }
}

/// The outcome of a login's network revocation check (distribution points, OCSP), with the
/// revocation data it could not use — for the log line and the metric, also when `soft_fail`
/// lets the login through.
#[derive(Debug)]
pub struct Checked {
    pub verdict: Result<(), Refusal>,
    pub unusable: Option<Unusable>,
}

impl Checked {
    fn ok() -> Self {
        Self {
            verdict: Ok(()),
            unusable: None,
        }
    }

    fn refused(r: Refusal) -> Self {
        Self {
            verdict: Err(r),
            unusable: None,
        }
    }
}

/// Revocation data a login could not use.
#[derive(Debug)]
pub enum Unusable {
    /// A distribution point's CRL, refused or not to be had.
    Crl(RefusedCrl),
    /// An OCSP answer, refused or not to be had.
    Ocsp { reason: OcspRefusal, detail: String },
}

/// Unix seconds now (the crate's one clock).
fn now() -> i64 {
    crate::unix_now().min(i64::MAX as u64) as i64
}
