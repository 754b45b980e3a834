//! Prometheus metrics, all named `prehod_*` (and the usual `process_*`), in a registry of the
//! gateway's own (not the global default), served on the admin listener. Every labelled
//! series an alert or the dashboard reads exists at zero from the start (see `labels`).

mod configured;
mod labels;
mod portal;
mod process;

pub use labels::{CERTLOGIN_PORTAL, LOGIN_PORTAL, UNKNOWN_PORTAL};
pub use portal::PortalMetrics;

use std::sync::LazyLock;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge,
    IntGaugeVec, Opts, Registry, TextEncoder,
};

/// Declares `Metrics` from one table, each metric written once: its doc, field, type and the
/// expression that makes it (`?` is added); `Metrics::new` makes and registers every one.
macro_rules! metrics {
    ($($(#[$doc:meta])* $field:ident: $type:ty = $make:expr;)*) => {
        pub struct Metrics {
            pub registry: Registry,
            $($(#[$doc])* pub $field: $type,)*
            /// Configuration reloads and the shared state store (see `crate::live`, `crate::state`).
            pub fleet: crate::live::FleetMetrics,
        }

        impl Metrics {
            pub fn new() -> Result<Self, prometheus::Error> {
                let registry = Registry::new();
                $(
                    let $field: $type = $make?;
                    registry.register(Box::new($field.clone()))?;
                )*
                registry.register(Box::new(process::ProcessCollector::new()?))?;
                for counter in PROCESS_COUNTERS.iter() {
                    registry.register(Box::new(counter.clone()))?;
                }
                registry.register(Box::new(BODY_BUFFER_BYTES.clone()))?;
                let fleet = crate::live::FleetMetrics::register(&registry)?;
                let metrics = Self { registry, fleet, $($field,)* };
                metrics
                    .build_info
                    .get_metric_with_label_values(&[env!("CARGO_PKG_VERSION"), BUILD_REVISION])?
                    .set(1);
                labels::initialise(&metrics)?;
                Ok(metrics)
            }
        }
    };
}

metrics! {
    /// portal, status class (`2xx`…), auth outcome.
    requests: IntCounterVec = IntCounterVec::new(Opts::new("prehod_requests_total", "Requests handled, by portal, status class and auth outcome"), &["portal", "status_class", "auth"]);
    request_duration: HistogramVec = HistogramVec::new(timing("prehod_request_duration_seconds", "Whole request time at the gateway"), &["portal"]);
    upstream_duration: HistogramVec = HistogramVec::new(timing("prehod_upstream_duration_seconds", "Time from choosing an upstream to its response header"), &["portal"]);
    /// portal, kind (`connect_refused`, `connect_timeout`, `read_timeout`, `tls`, `other`).
    upstream_errors: IntCounterVec = IntCounterVec::new(Opts::new("prehod_upstream_errors_total", "Failed upstream attempts, by portal and kind"), &["portal", "kind"]);
    in_flight: IntGauge = IntGauge::new("prehod_requests_in_flight", "Requests being handled now");
    /// handler (`login`, `certificate_login`): panics caught and answered with a 500 page.
    panics: IntCounterVec = IntCounterVec::new(Opts::new("prehod_panics_total", "Request handlers that panicked (answered 500), by handler"), &["handler"]);
    /// portal, target: 1 healthy, 0 not.
    upstream_healthy: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_upstream_healthy", "1 when the upstream target passed its last health check"), &["portal", "target"]);
    /// version, revision: always 1.
    build_info: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_build_info", "Always 1; labels say which build runs (version, source revision)"), &["version", "revision"]);
    /// hash (SHA-256 of the configuration file in use): always 1, one series.
    config_info: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_config_info", "Always 1; hash is the SHA-256 of the configuration file in use, as sha256sum prints it"), &["hash"]);
    /// name (the first DNS name), file: the earliest notAfter of each server certificate's
    /// chain, unix seconds.
    tls_certificate_expiry: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_tls_certificate_expiry_timestamp_seconds", "When the server certificate's chain stops being valid (its earliest notAfter), by its first DNS name and file"), &["name", "file"]);
    /// anchor, subject: the notAfter of each CA certificate of a trust anchor, unix seconds.
    client_ca_expiry: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_client_ca_expiry_timestamp_seconds", "When a trust anchor's CA certificate expires (notAfter), by anchor and subject"), &["anchor", "subject"]);
    /// method (`rekono`, `certificate`), outcome (`success`, `failure`).
    logins: IntCounterVec = IntCounterVec::new(Opts::new("prehod_logins_total", "Logins by method and outcome"), &["method", "outcome"]);
    /// portal
    step_ups: IntCounterVec = IntCounterVec::new(Opts::new("prehod_step_ups_total", "Step-ups to a higher level of assurance, by portal"), &["portal"]);
    /// reason
    denials: IntCounterVec = IntCounterVec::new(Opts::new("prehod_denials_total", "Portal requests and logins refused, by reason"), &["reason"]);
    session_cache_entries: IntGauge = IntGauge::new("prehod_session_cache_entries", "Validated sessions in the cache");
    /// Revocations held (logouts whose sessions could still be valid).
    revocations: IntGauge = IntGauge::new("prehod_revocations", "Revocations held (at session.max_revocations no new session is issued)");
    /// Times the revocation store was found full: kept equal to the store's count at each scrape.
    revocation_store_full: IntCounter = IntCounter::new("prehod_revocation_store_full_total", "Times the revocation store was full: a session refused or a revocation widened to every session issued until then");
    /// result (`hit`, `miss`): kept equal to the session store's own counts at each scrape.
    session_cache_lookups: IntCounterVec = IntCounterVec::new(Opts::new("prehod_session_cache_lookups_total", "Session cache lookups by result"), &["result"]);
    /// call (`discovery`, `token`)
    oidc_duration: HistogramVec = HistogramVec::new(timing("prehod_oidc_request_duration_seconds", "Calls to the identity provider"), &["call"]);
    oidc_errors: IntCounterVec = IntCounterVec::new(Opts::new("prehod_oidc_errors_total", "Failed calls to the identity provider"), &["call"]);
    /// 1 once the identity provider's metadata and keys were fetched.
    oidc_ready: IntGauge = IntGauge::new("prehod_oidc_ready", "1 once the identity provider was discovered");
    /// outcome (`success`, `failure`), reason (`ok`, `expired`, `revoked`, …)
    certificates: IntCounterVec = IntCounterVec::new(Opts::new("prehod_certificate_verifications_total", "Certificate logins by outcome and reason"), &["outcome", "reason"]);
    ocsp_duration: Histogram = Histogram::with_opts(timing("prehod_ocsp_request_duration_seconds", "OCSP checks of client certificates (cache hits included)"));
    ocsp_errors: IntCounter = IntCounter::new("prehod_ocsp_errors_total", "OCSP checks without a usable answer");
    /// anchor: seconds since the loaded CRL's thisUpdate.
    crl_age: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_crl_age_seconds", "Seconds since the anchor's CRL was issued (thisUpdate)"), &["anchor"]);
    /// anchor: the loaded CRL's nextUpdate, unix seconds (0: CRLs configured, none loaded).
    crl_next_update: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_crl_next_update_timestamp_seconds", "When the anchor's loaded CRL reaches its nextUpdate (unix seconds; 0 while CRLs are configured but none is loaded)"), &["anchor"]);
    /// anchor: unix time the CRL was last loaded.
    crl_loaded: IntGaugeVec = IntGaugeVec::new(Opts::new("prehod_crl_last_refresh_timestamp_seconds", "When the anchor's CRL was last loaded"), &["anchor"]);
    /// anchor, reason (`rollback`, `wrong_issuer`, `delta`, `expired`, `fetch`, …): CRLs not
    /// taken (configured sources and distribution points); the previous one stayed.
    crl_refused: IntCounterVec = IntCounterVec::new(Opts::new("prehod_crl_refused_total", "CRLs not taken (the previous one stays), by anchor and reason"), &["anchor", "reason"]);
    /// anchor, reason (`nonce`, `stale`, `signature`, `unreachable`, …): OCSP answers not
    /// used at a login.
    ocsp_refused: IntCounterVec = IntCounterVec::new(Opts::new("prehod_ocsp_refused_total", "OCSP answers not used at a login, by anchor and reason"), &["anchor", "reason"]);
    /// endpoint (`oidc_start`, `oidc_callback`, `certificate_login`, `backchannel_logout`):
    /// requests refused with 429 by a rate limit.
    rate_limited: IntCounterVec = IntCounterVec::new(Opts::new("prehod_rate_limited_total", "Requests refused (429) by a login rate limit, by endpoint"), &["endpoint"]);
}

/// The source revision of this build (see the build script); `unknown` without git.
pub const BUILD_REVISION: &str = env!("PREHOD_BUILD_REVISION");

const BUCKETS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
];

/// A histogram's options with the gateway's buckets (seconds).
fn timing(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(BUCKETS.to_vec())
}

impl Metrics {
    /// The text exposition format.
    pub fn render(&self) -> Vec<u8> {
        let mut out = Vec::new();
        // Encoding into a Vec cannot fail for well-formed metric families.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        out
    }
}

/// What is counted where no `Metrics` is at hand (the connection guard, the body budget, the log
/// filter): one counter for the process each, by one label; `Metrics::new` registers them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ProcessCount {
    /// Clients that went away, by kind (`closed`, `read_error`, `write_error`, `header`).
    /// Besides `fail_to_proxy`, the log filter counts the one pingora reports only in its own
    /// log (a client gone while its request header was read: `header`).
    ClientDisconnect,
    /// A connection closed at the TCP accept: the listeners hold too many, its address holds
    /// too many, or too many have not yet sent a request.
    ConnectionRefused,
    /// An HTTP/2 stream refused: its address, or all addresses together, have as many requests
    /// in progress as they may.
    RequestRefused,
    /// A connection (or an HTTP/2 stream) cut by a deadline: `handshake`, `header`, `body`,
    /// `idle`.
    SlowClient,
    /// A request body refused its memory (see `crate::budget`).
    BodyBufferRefused,
}

impl ProcessCount {
    const ALL: [Self; 5] = [
        Self::ClientDisconnect,
        Self::ConnectionRefused,
        Self::RequestRefused,
        Self::SlowClient,
        Self::BodyBufferRefused,
    ];

    /// The counter's name, help and label.
    fn definition(self) -> (&'static str, &'static str, &'static str) {
        match self {
            Self::ClientDisconnect => (
                "prehod_client_disconnects_total",
                "Clients that closed or reset their connection before the response was done",
                "kind",
            ),
            Self::ConnectionRefused => (
                "prehod_connections_refused_total",
                "Connections closed at the TCP accept by a cap, by reason (total, per_address, pending, pending_per_address)",
                "reason",
            ),
            Self::RequestRefused => (
                "prehod_requests_refused_total",
                "HTTP/2 streams refused (REFUSED_STREAM) because the requests in progress of their client address, or of all, are at their cap, by reason (per_address, total)",
                "reason",
            ),
            Self::SlowClient => (
                "prehod_slow_clients_total",
                "Connections (an HTTP/2 stream for `body`) cut because their TLS handshake, a request header, a request body or the wait for the next request missed its deadline, by phase",
                "phase",
            ),
            Self::BodyBufferRefused => (
                "prehod_body_buffers_refused_total",
                "Request bodies not buffered (503, or a form not kept) because their memory was taken, by reason (memory, per_address, per_connection)",
                "reason",
            ),
        }
    }

    fn counter(self) -> &'static IntCounterVec {
        let [disconnects, connections, requests, slow, bodies] = &*PROCESS_COUNTERS;
        match self {
            Self::ClientDisconnect => disconnects,
            Self::ConnectionRefused => connections,
            Self::RequestRefused => requests,
            Self::SlowClient => slow,
            Self::BodyBufferRefused => bodies,
        }
    }
}

/// The counters of `ProcessCount`, in the order of `ProcessCount::ALL`.
static PROCESS_COUNTERS: LazyLock<[IntCounterVec; 5]> = LazyLock::new(|| {
    ProcessCount::ALL.map(|count| {
        let (name, help, label) = count.definition();
        IntCounterVec::new(Opts::new(name, help), &[label])
            // Invariant: constant, valid metric names and labels.
            .expect("a valid metric definition")
    })
});

/// Counts one `count`; `value` is a short constant label.
pub fn count(count: ProcessCount, value: &str) {
    count.counter().with_label_values(&[value]).inc();
}

static BODY_BUFFER_BYTES: LazyLock<IntGauge> = LazyLock::new(|| {
    IntGauge::new(
        "prehod_body_buffer_bytes",
        "Bytes reserved now for request bodies the gateway holds in memory",
    )
    // Invariant: a constant, valid metric name.
    .expect("a valid metric definition")
});

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

    fn text(m: &Metrics) -> String {
        String::from_utf8(m.render()).expect("the text format is UTF-8")
    }

    /// The value of one series in the text format; `None` when the series is absent.
    fn value(text: &str, series: &str) -> Option<f64> {
        text.lines()
            .find_map(|l| l.strip_prefix(series)?.strip_prefix(' ')?.parse().ok())
    }

    /// Issue 21, point 4: a counter first exported at 1 is invisible to `increase()`, so the
    /// alerts on it would never fire on the first event. Each series a rule reads is there at
    /// zero before anything happened.
    #[test]
    fn every_series_an_alert_reads_is_zero_before_the_first_event() {
        let m = Metrics::new().expect("metrics");
        let text = text(&m);
        for series in [
            r#"prehod_panics_total{handler="login"}"#,
            r#"prehod_panics_total{handler="certificate_login"}"#,
            r#"prehod_logins_total{method="rekono",outcome="failure"}"#,
            r#"prehod_logins_total{method="certificate",outcome="success"}"#,
            r#"prehod_denials_total{reason="level_too_low"}"#,
            r#"prehod_denials_total{reason="revoked"}"#,
            r#"prehod_denials_total{reason="sso_code_replayed"}"#,
            r#"prehod_denials_total{reason="state_mismatch"}"#,
            r#"prehod_certificate_verifications_total{outcome="failure",reason="revoked"}"#,
            r#"prehod_certificate_verifications_total{outcome="failure",reason="revocation_unknown"}"#,
            r#"prehod_certificate_verifications_total{outcome="success",reason="ok"}"#,
            r#"prehod_oidc_errors_total{call="discovery"}"#,
            r#"prehod_oidc_errors_total{call="token"}"#,
            r#"prehod_oidc_request_duration_seconds_count{call="token"}"#,
            r#"prehod_rate_limited_total{endpoint="oidc_start"}"#,
            r#"prehod_rate_limited_total{endpoint="backchannel_logout"}"#,
            r#"prehod_session_cache_lookups_total{result="miss"}"#,
            r#"prehod_config_reloads_total{result="failed"}"#,
            "prehod_revocation_store_full_total",
            "prehod_ocsp_errors_total",
            "prehod_oidc_ready",
        ] {
            assert_eq!(value(&text, series), Some(0.0), "{series} in\n{text}");
        }
        // Process-wide counters (other tests of this process may have counted): present.
        for series in [
            r#"prehod_client_disconnects_total{kind="header"}"#,
            r#"prehod_connections_refused_total{reason="per_address"}"#,
            r#"prehod_slow_clients_total{phase="body"}"#,
        ] {
            assert!(value(&text, series).is_some(), "{series} in\n{text}");
        }
        let build = format!(
            r#"prehod_build_info{{revision="{BUILD_REVISION}",version="{}"}}"#,
            env!("CARGO_PKG_VERSION")
        );
        assert_eq!(value(&text, &build), Some(1.0), "{text}");
        assert!(
            BUILD_REVISION == "unknown"
                || (BUILD_REVISION.len() >= 7
                    && BUILD_REVISION.bytes().all(|b| b.is_ascii_hexdigit())),
            "{BUILD_REVISION}"
        );
        assert!(
            value(&text, "process_max_fds").is_some_and(|n| n > 0.0),
            "{text}"
        );
        assert!(value(&text, "process_resident_memory_bytes").is_some_and(|n| n > 0.0));
    }

    #[test]
    fn every_known_label_value_is_listed_once() {
        for (what, values) in [
            (
                "certificate refusals",
                labels::certificate_refusals().to_vec(),
            ),
            ("portal outcomes", labels::portal_auth_outcomes().to_vec()),
            ("status classes", labels::STATUS_CLASSES.to_vec()),
            ("upstream errors", labels::UPSTREAM_ERROR_KINDS.to_vec()),
        ] {
            let mut sorted = values.clone();
            sorted.sort_unstable();
            sorted.dedup();
            assert_eq!(sorted.len(), values.len(), "{what}: {values:?}");
        }
        // The login hosts' labels are names no portal may take.
        for name in [LOGIN_PORTAL, CERTLOGIN_PORTAL, UNKNOWN_PORTAL] {
            assert!(
                prehod_config::RESERVED_PORTAL_NAMES.contains(&name),
                "{name}"
            );
        }
    }

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
