//! The label values the gateway's labelled series can take, and their creation at zero: a
//! counter series that first appears with the value 1 is invisible to `rate()` and
//! `increase()`, so an alert on it would miss the first event (the first panic, the first
//! refused reload). Every series a rule or the dashboard reads therefore exists from the start.
//!
//! Label values that come from an enum are listed here with a `match` on every variant: a new
//! variant fails to compile until it is listed. The rest are the literals the code passes
//! today; a value missing here still counts, only from its first event on.

use std::collections::HashMap;

use prometheus::core::{Collector, MetricVec, MetricVecBuilder};

use super::Metrics;

/// The `portal` label of requests for the login host.
pub const LOGIN_PORTAL: &str = "login";
/// The `portal` label of requests for the certificate-login host.
pub const CERTLOGIN_PORTAL: &str = "certlogin";
/// The `portal` label of requests no portal served (misdirected, refused before routing).
pub const UNKNOWN_PORTAL: &str = "unknown";

/// `status_class` of `prehod_requests_total` (see [`super::status_class`]).
pub const STATUS_CLASSES: [&str; 6] = ["1xx", "2xx", "3xx", "4xx", "5xx", "none"];

/// `auth` of a portal's requests: [`crate::portal::decide::Decision::outcome`], and `certificate` for a
/// certificate-only portal's.
pub const fn portal_auth_outcomes() -> [&'static str; 7] {
    use crate::portal::decide::Decision as D;
    // Compile-time guard: a new decision must be listed below.
    let _every_variant = |d: &D| match d {
        D::Allow { .. } | D::Redirect { .. } | D::LoginRequired { .. } | D::Deny { .. } => (),
    };
    [
        "none",
        "session",
        "step_up",
        "redirect",
        "unauthenticated",
        "denied",
        "certificate",
    ]
}

/// `auth` of the login host's requests, and of the certificate-login host's.
pub const LOGIN_AUTH: [&str; 2] = ["login", "panic"];
pub const CERTLOGIN_AUTH: [&str; 2] = ["certificate", "panic"];

/// `kind` of `prehod_upstream_errors_total` (`proxy::upstream_failure`).
pub const UPSTREAM_ERROR_KINDS: [&str; 6] = [
    "connect_refused",
    "connect_timeout",
    "read_timeout",
    "tls",
    "connect_error",
    "other",
];

/// `handler` of `prehod_panics_total`: the handlers run under `catch_unwind`.
pub const PANIC_HANDLERS: [&str; 2] = ["login", "certificate_login"];

/// `method` × `outcome` of `prehod_logins_total`.
pub const LOGIN_METHODS: [&str; 2] = ["rekono", "certificate"];
pub const OUTCOMES: [&str; 2] = ["success", "failure"];

/// `call` of the identity provider metrics.
pub const OIDC_CALLS: [&str; 3] = ["discovery", "token", "par"];

/// `result` of `prehod_session_cache_lookups_total`.
pub const CACHE_RESULTS: [&str; 2] = ["hit", "miss"];

/// `kind` of `prehod_client_disconnects_total`.
pub const DISCONNECT_KINDS: [&str; 4] = ["closed", "read_error", "write_error", "header"];

/// `reason` of `prehod_connections_refused_total`, as `connections` gives them.
pub fn connection_refusals() -> [&'static str; 4] {
    use crate::refusals::ConnectionRefused as R;
    let _every_variant = |r: R| match r {
        R::Total | R::PerAddress | R::Pending | R::PendingPerAddress => (),
    };
    [R::Total, R::PerAddress, R::Pending, R::PendingPerAddress].map(R::label)
}

/// `reason` of `prehod_requests_refused_total` (`connections::Streams`).
pub fn request_refusals() -> [&'static str; 2] {
    use crate::refusals::ConnectionRefused as R;
    [R::Total, R::PerAddress].map(R::label)
}

/// `phase` of `prehod_slow_clients_total`: the deadline a connection missed.
pub fn slow_client_phases() -> [&'static str; 4] {
    use crate::lifecycle::Missed as M;
    let _every_variant = |m: M| match m {
        M::Handshake | M::Header | M::Body | M::Idle => (),
    };
    [M::Handshake, M::Header, M::Body, M::Idle].map(M::label)
}

/// `reason` of `prehod_body_buffers_refused_total`.
pub fn body_buffer_refusals() -> [&'static str; 3] {
    use crate::refusals::BodyRefused as R;
    let _every_variant = |r: R| match r {
        R::Memory | R::PerAddress | R::PerConnection => (),
    };
    [R::Memory, R::PerAddress, R::PerConnection].map(R::label)
}

/// `reason` of `prehod_crl_refused_total` (per anchor).
pub fn crl_refusals() -> [&'static str; 13] {
    use prehod_identity::cert::CrlRefusal as R;
    let _every_variant = |r: R| match r {
        R::Fetch
        | R::Unreadable
        | R::WrongIssuer
        | R::BadSignature
        | R::IssuerUnknown
        | R::Delta
        | R::CriticalExtension
        | R::Scope
        | R::NotYetValid
        | R::NoNextUpdate
        | R::Expired
        | R::NoCrlNumber
        | R::Rollback => (),
    };
    [
        R::Fetch,
        R::Unreadable,
        R::WrongIssuer,
        R::BadSignature,
        R::IssuerUnknown,
        R::Delta,
        R::CriticalExtension,
        R::Scope,
        R::NotYetValid,
        R::NoNextUpdate,
        R::Expired,
        R::NoCrlNumber,
        R::Rollback,
    ]
    .map(R::label)
}

/// `reason` of `prehod_ocsp_refused_total` (per anchor).
pub fn ocsp_refusals() -> [&'static str; 8] {
    use prehod_identity::cert::OcspRefusal as R;
    let _every_variant = |r: R| match r {
        R::Unreachable
        | R::ErrorStatus
        | R::Unreadable
        | R::Signature
        | R::NoStatus
        | R::UnknownStatus
        | R::Nonce
        | R::Stale => (),
    };
    [
        R::Unreachable,
        R::ErrorStatus,
        R::Unreadable,
        R::Signature,
        R::NoStatus,
        R::UnknownStatus,
        R::Nonce,
        R::Stale,
    ]
    .map(R::label)
}

/// Creates the revocation-data series of every anchor of the configuration.
pub(super) fn initialise_anchors<'a>(
    m: &Metrics,
    anchors: impl Iterator<Item = &'a str>,
) -> Result<(), prometheus::Error> {
    for anchor in anchors {
        for reason in crl_refusals() {
            touch(&m.crl_refused, &[anchor, reason])?;
        }
        for reason in ocsp_refusals() {
            touch(&m.ocsp_refused, &[anchor, reason])?;
        }
    }
    Ok(())
}

/// `endpoint` of `prehod_rate_limited_total`.
pub fn rate_limited_endpoints() -> [&'static str; 4] {
    use crate::ratelimit::Endpoint as E;
    let all = [
        E::OidcStart,
        E::OidcCallback,
        E::CertificateLogin,
        E::BackchannelLogout,
    ];
    let _every_variant = |e: E| match e {
        E::OidcStart | E::OidcCallback | E::CertificateLogin | E::BackchannelLogout => (),
    };
    all.map(E::label)
}

/// Every refusal of a client certificate (`reason` of the certificate and denial metrics).
pub fn certificate_refusals() -> [&'static str; 18] {
    prehod_identity::cert::Refusal::ALL.map(prehod_identity::cert::Refusal::label)
}

/// Every `reason` of `prehod_denials_total`: refused sessions, portal decisions, failed
/// logins, single sign-on codes, certificates, logout and API tokens.
pub fn denial_reasons() -> Vec<&'static str> {
    use crate::sso::Refusal as Sso;
    use prehod_identity::session::Refusal as S;
    let sessions = [S::Invalid, S::IdleExpired, S::AbsoluteExpired, S::Revoked];
    let _every_session_refusal = |r: S| match r {
        S::Invalid | S::IdleExpired | S::AbsoluteExpired | S::Revoked => (),
    };
    let codes = [
        Sso::Invalid,
        Sso::Expired,
        Sso::WrongHost,
        Sso::Replayed,
        Sso::OtherBrowser,
        Sso::OtherUser,
    ];
    let _every_code_refusal = |r: Sso| match r {
        Sso::Invalid
        | Sso::Expired
        | Sso::WrongHost
        | Sso::Replayed
        | Sso::OtherBrowser
        | Sso::OtherUser => (),
    };
    let mut reasons: Vec<&'static str> = [
        // No session cookie at all (`portal::decide`).
        "no_session",
        // Portal decisions (`portal::decide`).
        "no_login_configured",
        "method_not_allowed",
        "user_not_allowed",
        "level_too_low",
        // Failed Rekono logins (`login`).
        "attempt_expired",
        "cancelled",
        "code_refused",
        "configuration",
        "denied_by_provider",
        "invalid_id_token",
        "missing_code",
        "missing_issuer",
        "missing_state",
        "other_user",
        "rekono_unavailable",
        "revocation_store_full",
        "seal_failed",
        "state_mismatch",
        "too_many_attempts",
        "wrong_issuer",
        // Tokens of the logout form, the sessions page and the admin API.
        "bad_logout_token",
        "bad_sessions_token",
        "admin_api_unauthorized",
    ]
    .into_iter()
    .chain(sessions.map(S::as_str))
    .chain(codes.map(Sso::label))
    .chain(certificate_refusals())
    .collect();
    reasons.sort_unstable();
    reasons.dedup();
    reasons
}

/// Creates `labels` of `vec` at zero, unless it is there already.
pub(super) fn touch<B: MetricVecBuilder>(
    vec: &MetricVec<B>,
    labels: &[&str],
) -> Result<(), prometheus::Error> {
    vec.get_metric_with_label_values(labels).map(|_| ())
}

/// Creates every series whose labels do not depend on the configuration.
pub(super) fn initialise(m: &Metrics) -> Result<(), prometheus::Error> {
    for handler in PANIC_HANDLERS {
        touch(&m.panics, &[handler])?;
    }
    for method in LOGIN_METHODS {
        for outcome in OUTCOMES {
            touch(&m.logins, &[method, outcome])?;
        }
    }
    for call in OIDC_CALLS {
        touch(&m.oidc_errors, &[call])?;
        touch(&m.oidc_duration, &[call])?;
    }
    for result in CACHE_RESULTS {
        touch(&m.session_cache_lookups, &[result])?;
    }
    for endpoint in rate_limited_endpoints() {
        touch(&m.rate_limited, &[endpoint])?;
    }
    touch(&m.certificates, &["success", "ok"])?;
    for reason in certificate_refusals() {
        touch(&m.certificates, &["failure", reason])?;
    }
    for reason in denial_reasons() {
        touch(&m.denials, &[reason])?;
    }
    for kind in DISCONNECT_KINDS {
        touch(super::ProcessCount::ClientDisconnect.counter(), &[kind])?;
    }
    for reason in connection_refusals() {
        touch(super::ProcessCount::ConnectionRefused.counter(), &[reason])?;
    }
    for reason in request_refusals() {
        touch(super::ProcessCount::RequestRefused.counter(), &[reason])?;
    }
    for phase in slow_client_phases() {
        touch(super::ProcessCount::SlowClient.counter(), &[phase])?;
    }
    for reason in body_buffer_refusals() {
        touch(super::ProcessCount::BodyBufferRefused.counter(), &[reason])?;
    }
    Ok(())
}

/// Creates the series of every portal of the configuration (and of the login hosts' and
/// unknown hosts' `portal` labels). Series of portals a reload removed stay at their last
/// value: they no longer grow, and a counter that vanished would look like a reset.
pub(super) fn initialise_portals<'a>(
    m: &Metrics,
    portals: impl Iterator<Item = &'a str>,
) -> Result<(), prometheus::Error> {
    let label_sets: [(&str, &[&str]); 3] = [
        (LOGIN_PORTAL, &LOGIN_AUTH),
        (CERTLOGIN_PORTAL, &CERTLOGIN_AUTH),
        (UNKNOWN_PORTAL, &["none"]),
    ];
    let outcomes = portal_auth_outcomes();
    for (portal, auths) in label_sets {
        requests_of(m, portal, auths)?;
    }
    for portal in portals {
        requests_of(m, portal, &outcomes)?;
        touch(&m.upstream_duration, &[portal])?;
        touch(&m.step_ups, &[portal])?;
        for kind in UPSTREAM_ERROR_KINDS {
            touch(&m.upstream_errors, &[portal, kind])?;
        }
    }
    Ok(())
}

fn requests_of(m: &Metrics, portal: &str, auths: &[&str]) -> Result<(), prometheus::Error> {
    touch(&m.request_duration, &[portal])?;
    for auth in auths {
        for class in STATUS_CLASSES {
            touch(&m.requests, &[portal, class, auth])?;
        }
    }
    Ok(())
}

/// The labels of every series `vec` has now, by name.
pub(super) fn series_of<B: MetricVecBuilder>(vec: &MetricVec<B>) -> Vec<HashMap<String, String>> {
    vec.collect()
        .iter()
        .flat_map(|family| family.get_metric())
        .map(|metric| {
            metric
                .get_label()
                .iter()
                .map(|pair| (pair.name().to_owned(), pair.value().to_owned()))
                .collect()
        })
        .collect()
}

/// Removes every series of `vec` whose labels `keep` does not accept.
pub(super) fn retain<B: MetricVecBuilder>(
    vec: &MetricVec<B>,
    keep: impl Fn(&HashMap<String, String>) -> bool,
) {
    for labels in series_of(vec) {
        if !keep(&labels) {
            let by_name: HashMap<&str, &str> = labels
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            // Only fails for labels the vector does not have: these came from it.
            let _ = vec.remove(&by_name);
        }
    }
}
