//! The revocation data of certificate login, on the gateway's side: the background refresh of
//! the anchors' CRLs and of the distribution points sessions name, the network checks of a
//! login (distribution points, then OCSP), and a log line and a metric for every CRL or OCSP
//! answer that was not taken (`prehod_crl_refused_total`, `prehod_ocsp_refused_total`, by
//! anchor and reason). What is taken and why is decided in `prehod_identity::cert`.

use pingora::server::ShutdownWatch;
use prehod_identity::cert::{CertIdentity, Presented, Refusal, RefusedCrl, Unusable};

use crate::Shared;

/// A CRL not taken: logged (the previous one stays) and counted.
fn report_crl(shared: &Shared, anchor: &str, refused: &RefusedCrl, distribution_point: bool) {
    let reason = refused.reason.label();
    shared
        .metrics
        .crl_refused
        .with_label_values(&[anchor, reason])
        .inc();
    let what = if distribution_point {
        "distribution-point "
    } else {
        ""
    };
    if reason == "fetch" {
        tracing::warn!(anchor, source = %refused.source, reason, problem = %refused.detail, "{what}CRL not refreshed; the previous one stays");
    } else {
        tracing::warn!(anchor, source = %refused.source, reason, problem = %refused.detail, "{what}CRL refused; the previous one stays");
    }
}

/// The network checks of a login, after every local check passed: the certificate's own
/// distribution points, then OCSP. Counts OCSP latency and errors, and every CRL or answer
/// not taken.
pub async fn remote_checks(
    shared: &Shared,
    certs: &crate::auth::CertLogin,
    id: &CertIdentity,
    presented: &Presented,
    request_id: &str,
) -> Result<(), Refusal> {
    let started = std::time::Instant::now();
    let checked = certs.checker.check_online(&certs.http, id, presented).await;
    let metrics = &shared.metrics;
    metrics
        .ocsp_duration
        .observe(started.elapsed().as_secs_f64());
    let anchor = id.anchor.as_str();
    match &checked.unusable {
        Some(Unusable::Crl(refused)) => report_crl(shared, anchor, refused, true),
        Some(Unusable::Ocsp { reason, detail }) => {
            metrics
                .ocsp_refused
                .with_label_values(&[anchor, reason.label()])
                .inc();
            let outcome = if checked.verdict.is_ok() {
                "soft-fail lets the login through"
            } else {
                "the login is refused"
            };
            tracing::warn!(request_id, anchor, reason = reason.label(), problem = %detail, "OCSP answer refused; {outcome}");
        }
        None => {}
    }
    if checked.verdict.is_err() && checked.unusable.is_some() {
        metrics.ocsp_errors.inc();
    }
    checked.verdict
}

/// Refreshes the CRLs of `shared`'s trust anchors, and the distribution points their
/// sessions name, until shutdown: first at once (URLs are only fetched here) — after the
/// fleet's CRL marks were read, when there is a shared state, so that a restarted gateway
/// does not take an older CRL first — then every `crl_refresh`. Each anchor refreshes on its
/// own: one that hangs (until the revocation client's timeout) does not hold the others.
pub(crate) async fn refresh_crls(shared: &Shared, shutdown: ShutdownWatch) {
    let Some(certs) = shared.auth.as_ref().and_then(|a| a.certificates.as_ref()) else {
        return;
    };
    if let Some(store) = &shared.state {
        store.crl_marks_read().await;
    }
    let refreshes = certs.checker.anchors.iter().map(|anchor| {
        let mut shutdown = shutdown.clone();
        async move {
            loop {
                for refused in certs.checker.refresh_crls(anchor, &certs.http).await {
                    report_crl(shared, &anchor.name, &refused, false);
                }
                for refused in certs
                    .checker
                    .refresh_distribution_points(anchor, &certs.http)
                    .await
                {
                    report_crl(shared, &anchor.name, &refused, true);
                }
                let wanted = async {
                    match &anchor.distribution_points {
                        Some(dps) => dps.wanted().await,
                        None => std::future::pending().await,
                    }
                };
                tokio::select! {
                    _ = tokio::time::sleep(certs.crl_refresh) => {}
                    _ = wanted => {}
                    _ = shutdown.changed() => return,
                }
            }
        }
    });
    futures_util::future::join_all(refreshes).await;
}
