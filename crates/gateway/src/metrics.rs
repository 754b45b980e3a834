//! Prometheus metrics, all named `prehod_*`, in a registry of the gateway's own (not the
//! global default), served on the admin listener.

use prometheus::{
    Encoder, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts, Registry,
    TextEncoder,
};

pub struct Metrics {
    pub registry: Registry,
    /// portal, status class (`2xx`…), auth outcome.
    pub requests: IntCounterVec,
    pub request_duration: HistogramVec,
    pub upstream_duration: HistogramVec,
    /// portal, kind (`connect_refused`, `connect_timeout`, `read_timeout`, `tls`, `other`).
    pub upstream_errors: IntCounterVec,
    pub in_flight: IntGauge,
    /// handler (`login`, `certificate_login`): panics caught and answered with a 500 page.
    pub panics: IntCounterVec,
    /// kind (`closed`, `read_error`, `write_error`): clients that went away mid-request.
    pub client_disconnects: IntCounterVec,
    /// portal, target: 1 healthy, 0 not.
    pub upstream_healthy: IntGaugeVec,
    pub build_info: IntGaugeVec,
    /// method (`rekono`, `certificate`), outcome (`success`, `failure`).
    pub logins: IntCounterVec,
    /// portal
    pub step_ups: IntCounterVec,
    /// reason
    pub denials: IntCounterVec,
    pub session_cache_entries: IntGauge,
    /// Revocations held (logouts whose sessions could still be valid).
    pub revocations: IntGauge,
    /// Times the revocation store was found full: kept equal to the store's count at each scrape.
    pub revocation_store_full: prometheus::IntCounter,
    /// result (`hit`, `miss`): kept equal to the session store's own counts at each scrape.
    pub session_cache_lookups: IntCounterVec,
    /// call (`discovery`, `token`)
    pub oidc_duration: HistogramVec,
    pub oidc_errors: IntCounterVec,
    /// 1 once the identity provider's metadata and keys were fetched.
    pub oidc_ready: IntGauge,
    /// outcome (`success`, `failure`), reason (`ok`, `expired`, `revoked`, …)
    pub certificates: IntCounterVec,
    pub ocsp_duration: prometheus::Histogram,
    pub ocsp_errors: prometheus::IntCounter,
    /// anchor: seconds since the loaded CRL's thisUpdate.
    pub crl_age: IntGaugeVec,
    /// anchor: seconds until its nextUpdate (negative once stale).
    pub crl_next_update: IntGaugeVec,
    /// anchor: unix time the CRL was last loaded.
    pub crl_loaded: IntGaugeVec,
    /// anchor, reason (`rollback`, `wrong_issuer`, `delta`, `expired`, `fetch`, …): CRLs not
    /// taken (configured sources and distribution points); the previous one stayed.
    pub crl_refused: IntCounterVec,
    /// anchor, reason (`nonce`, `stale`, `signature`, `unreachable`, …): OCSP answers not
    /// used at a login.
    pub ocsp_refused: IntCounterVec,
    /// endpoint (`oidc_start`, `oidc_callback`, `certificate_login`, `backchannel_logout`):
    /// requests refused with 429 by a rate limit.
    pub rate_limited: IntCounterVec,
    /// Configuration reloads and the shared state store (see `crate::live`, `crate::state`).
    pub fleet: crate::live::FleetMetrics,
}

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

impl Metrics {
    pub fn new() -> Result<Self, prometheus::Error> {
        let registry = Registry::new();
        let requests = IntCounterVec::new(
            Opts::new(
                "prehod_requests_total",
                "Requests handled, by portal, status class and auth outcome",
            ),
            &["portal", "status_class", "auth"],
        )?;
        let request_duration = HistogramVec::new(
            HistogramOpts::new(
                "prehod_request_duration_seconds",
                "Whole request time at the gateway",
            )
            .buckets(BUCKETS.to_vec()),
            &["portal"],
        )?;
        let upstream_duration = HistogramVec::new(
            HistogramOpts::new(
                "prehod_upstream_duration_seconds",
                "Time from choosing an upstream to its response header",
            )
            .buckets(BUCKETS.to_vec()),
            &["portal"],
        )?;
        let upstream_errors = IntCounterVec::new(
            Opts::new(
                "prehod_upstream_errors_total",
                "Failed upstream attempts, by portal and kind",
            ),
            &["portal", "kind"],
        )?;
        let in_flight = IntGauge::new("prehod_requests_in_flight", "Requests being handled now")?;
        let upstream_healthy = IntGaugeVec::new(
            Opts::new(
                "prehod_upstream_healthy",
                "1 when the upstream target passed its last health check",
            ),
            &["portal", "target"],
        )?;
        let build_info = IntGaugeVec::new(
            Opts::new("prehod_build_info", "Always 1; labels say which build runs"),
            &["version"],
        )?;
        build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        registry.register(Box::new(requests.clone()))?;
        registry.register(Box::new(request_duration.clone()))?;
        registry.register(Box::new(upstream_duration.clone()))?;
        registry.register(Box::new(upstream_errors.clone()))?;
        registry.register(Box::new(in_flight.clone()))?;
        let panics = IntCounterVec::new(
            Opts::new(
                "prehod_panics_total",
                "Request handlers that panicked (answered 500), by handler",
            ),
            &["handler"],
        )?;
        registry.register(Box::new(panics.clone()))?;
        let rate_limited = IntCounterVec::new(
            Opts::new(
                "prehod_rate_limited_total",
                "Requests refused (429) by a login rate limit, by endpoint",
            ),
            &["endpoint"],
        )?;
        registry.register(Box::new(rate_limited.clone()))?;
        let client_disconnects = CLIENT_DISCONNECTS.clone();
        registry.register(Box::new(client_disconnects.clone()))?;
        registry.register(Box::new(CONNECTIONS_REFUSED.clone()))?;
        registry.register(Box::new(SLOW_CLIENTS.clone()))?;
        registry.register(Box::new(BODY_BUFFERS_REFUSED.clone()))?;
        registry.register(Box::new(BODY_BUFFER_BYTES.clone()))?;
        registry.register(Box::new(upstream_healthy.clone()))?;
        registry.register(Box::new(build_info.clone()))?;
        let logins = IntCounterVec::new(
            Opts::new("prehod_logins_total", "Logins by method and outcome"),
            &["method", "outcome"],
        )?;
        let step_ups = IntCounterVec::new(
            Opts::new(
                "prehod_step_ups_total",
                "Step-ups to a higher level of assurance, by portal",
            ),
            &["portal"],
        )?;
        let denials = IntCounterVec::new(
            Opts::new(
                "prehod_denials_total",
                "Portal requests and logins refused, by reason",
            ),
            &["reason"],
        )?;
        let session_cache_entries = IntGauge::new(
            "prehod_session_cache_entries",
            "Validated sessions in the cache",
        )?;
        let revocations = IntGauge::new(
            "prehod_revocations",
            "Revocations held (at session.max_revocations no new session is issued)",
        )?;
        let revocation_store_full = prometheus::IntCounter::new(
            "prehod_revocation_store_full_total",
            "Times the revocation store was full: a session refused or a revocation widened to every session issued until then",
        )?;
        let session_cache_lookups = IntCounterVec::new(
            Opts::new(
                "prehod_session_cache_lookups_total",
                "Session cache lookups by result",
            ),
            &["result"],
        )?;
        let oidc_duration = HistogramVec::new(
            HistogramOpts::new(
                "prehod_oidc_request_duration_seconds",
                "Calls to the identity provider",
            )
            .buckets(BUCKETS.to_vec()),
            &["call"],
        )?;
        let oidc_errors = IntCounterVec::new(
            Opts::new(
                "prehod_oidc_errors_total",
                "Failed calls to the identity provider",
            ),
            &["call"],
        )?;
        let oidc_ready = IntGauge::new(
            "prehod_oidc_ready",
            "1 once the identity provider was discovered",
        )?;
        for c in [
            &logins,
            &step_ups,
            &denials,
            &session_cache_lookups,
            &oidc_errors,
        ] {
            registry.register(Box::new(c.clone()))?;
        }
        registry.register(Box::new(session_cache_entries.clone()))?;
        registry.register(Box::new(revocations.clone()))?;
        registry.register(Box::new(revocation_store_full.clone()))?;
        registry.register(Box::new(oidc_duration.clone()))?;
        registry.register(Box::new(oidc_ready.clone()))?;
        let certificates = IntCounterVec::new(
            Opts::new(
                "prehod_certificate_verifications_total",
                "Certificate logins by outcome and reason",
            ),
            &["outcome", "reason"],
        )?;
        registry.register(Box::new(certificates.clone()))?;
        let ocsp_duration = prometheus::Histogram::with_opts(
            HistogramOpts::new(
                "prehod_ocsp_request_duration_seconds",
                "OCSP checks of client certificates (cache hits included)",
            )
            .buckets(BUCKETS.to_vec()),
        )?;
        let ocsp_errors = prometheus::IntCounter::new(
            "prehod_ocsp_errors_total",
            "OCSP checks without a usable answer",
        )?;
        registry.register(Box::new(ocsp_duration.clone()))?;
        registry.register(Box::new(ocsp_errors.clone()))?;
        let crl_age = IntGaugeVec::new(
            Opts::new(
                "prehod_crl_age_seconds",
                "Seconds since the anchor's CRL was issued (thisUpdate)",
            ),
            &["anchor"],
        )?;
        let crl_next_update = IntGaugeVec::new(
            Opts::new(
                "prehod_crl_next_update_seconds",
                "Seconds until the anchor's CRL's nextUpdate; negative once stale",
            ),
            &["anchor"],
        )?;
        let crl_loaded = IntGaugeVec::new(
            Opts::new(
                "prehod_crl_last_refresh_timestamp_seconds",
                "When the anchor's CRL was last loaded",
            ),
            &["anchor"],
        )?;
        for g in [&crl_age, &crl_next_update, &crl_loaded] {
            registry.register(Box::new(g.clone()))?;
        }
        let crl_refused = IntCounterVec::new(
            Opts::new(
                "prehod_crl_refused_total",
                "CRLs not taken (the previous one stays), by anchor and reason",
            ),
            &["anchor", "reason"],
        )?;
        let ocsp_refused = IntCounterVec::new(
            Opts::new(
                "prehod_ocsp_refused_total",
                "OCSP answers not used at a login, by anchor and reason",
            ),
            &["anchor", "reason"],
        )?;
        registry.register(Box::new(crl_refused.clone()))?;
        registry.register(Box::new(ocsp_refused.clone()))?;
        let fleet = crate::live::FleetMetrics::register(&registry)?;
        Ok(Self {
            fleet,
            registry,
            requests,
            request_duration,
            upstream_duration,
            upstream_errors,
            in_flight,
            panics,
            client_disconnects,
            upstream_healthy,
            build_info,
            logins,
            step_ups,
            denials,
            session_cache_entries,
            revocations,
            revocation_store_full,
            session_cache_lookups,
            oidc_duration,
            oidc_errors,
            oidc_ready,
            certificates,
            ocsp_duration,
            ocsp_errors,
            crl_age,
            crl_next_update,
            crl_loaded,
            crl_refused,
            ocsp_refused,
            rate_limited,
        })
    }

    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// Clients that went away, by kind (`closed`, `read_error`, `write_error`, `header`). One for the
/// process: besides `fail_to_proxy`, the log filter counts the one pingora reports only in its
/// own log (a client gone while its request header was read: `header`).
static CLIENT_DISCONNECTS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "prehod_client_disconnects_total",
            "Clients that closed or reset their connection before the response was done",
        ),
        &["kind"],
    )
    // Invariant: a constant, valid metric name and label.
    .expect("a valid metric definition")
});

/// Counts a client that went away; `kind` is a short constant label.
pub fn count_client_disconnect(kind: &str) {
    CLIENT_DISCONNECTS.with_label_values(&[kind]).inc();
}

static CONNECTIONS_REFUSED: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "prehod_connections_refused_total",
            "Connections closed at the TCP accept by a cap, by reason (total, per_address, pending)",
        ),
        &["reason"],
    )
    // Invariant: a constant, valid metric name and label.
    .expect("a valid metric definition")
});

/// A connection closed at the TCP accept: the listeners hold too many, its address holds too
/// many, or too many have not yet sent a request. Counted where no `Metrics` is at hand (the
/// connection guard).
pub fn count_connection_refused(reason: &str) {
    CONNECTIONS_REFUSED.with_label_values(&[reason]).inc();
}

static SLOW_CLIENTS: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "prehod_slow_clients_total",
            "Connections (an HTTP/2 stream for `body`) cut because their TLS handshake, a request header, a request body or the wait for the next request missed its deadline, by phase",
        ),
        &["phase"],
    )
    // Invariant: a constant, valid metric name and label.
    .expect("a valid metric definition")
});

/// A connection (or an HTTP/2 stream) cut by a deadline: `handshake`, `header`, `body`, `idle`.
pub fn count_slow_client(phase: &str) {
    SLOW_CLIENTS.with_label_values(&[phase]).inc();
}

static BODY_BUFFERS_REFUSED: std::sync::LazyLock<IntCounterVec> = std::sync::LazyLock::new(|| {
    IntCounterVec::new(
        Opts::new(
            "prehod_body_buffers_refused_total",
            "Request bodies not buffered (503, or a form not kept) because their memory was taken, by reason (memory, per_address, per_connection)",
        ),
        &["reason"],
    )
    // Invariant: a constant, valid metric name and label.
    .expect("a valid metric definition")
});

static BODY_BUFFER_BYTES: std::sync::LazyLock<IntGauge> = std::sync::LazyLock::new(|| {
    IntGauge::new(
        "prehod_body_buffer_bytes",
        "Bytes reserved now for request bodies the gateway holds in memory",
    )
    // Invariant: a constant, valid metric name.
    .expect("a valid metric definition")
});

/// A request body refused its memory (see `crate::budget`).
pub fn count_body_buffer_refused(reason: &str) {
    BODY_BUFFERS_REFUSED.with_label_values(&[reason]).inc();
}

/// The bytes reserved for buffered request bodies now.
pub fn set_body_buffer_bytes(bytes: u64) {
    BODY_BUFFER_BYTES.set(i64::try_from(bytes).unwrap_or(i64::MAX));
}

/// One request counted in `prehod_requests_in_flight` for as long as this lives. It is kept in
/// the request's context, so it is dropped on every way a request ends: answered, failed, or a
/// panic that unwinds the connection's task (pingora does not catch those).
pub struct InFlight(IntGauge);

impl InFlight {
    pub fn count(gauge: &IntGauge) -> Self {
        gauge.inc();
        Self(gauge.clone())
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.dec();
    }
}

pub fn status_class(status: u16) -> &'static str {
    match status {
        100..=199 => "1xx",
        200..=299 => "2xx",
        300..=399 => "3xx",
        400..=499 => "4xx",
        500..=599 => "5xx",
        _ => "none",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn in_flight_is_given_back_even_when_a_request_panics() {
        let gauge = IntGauge::new("g", "g").expect("gauge");
        {
            let _a = InFlight::count(&gauge);
            assert_eq!(gauge.get(), 1);
        }
        assert_eq!(gauge.get(), 0);
        let guard = InFlight::count(&gauge);
        let unwound = std::panic::catch_unwind(std::panic::AssertUnwindSafe(move || {
            let _held = guard;
            panic!("a handler panics");
        }));
        assert!(unwound.is_err());
        assert_eq!(gauge.get(), 0, "the unwinding dropped the guard");
    }
}
