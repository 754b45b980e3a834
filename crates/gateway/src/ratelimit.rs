//! Token buckets on the login endpoints: per client address and, on the certificate-login
//! host, per certificate fingerprint. A request over its bucket gets a 429 page with
//! `Retry-After` and is counted in `prehod_rate_limited_total{endpoint}`.
//!
//! The counters are local to this process ([`LocalBuckets`], a bounded moka cache). Everything
//! else talks to [`RateLimiter`], so a store shared by the replicas can replace it later.

use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use prehod_config::{EndpointLimit, Rate, RateLimits};

/// The endpoints that are limited, with their metric label.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    OidcStart,
    OidcCallback,
    CertificateLogin,
    BackchannelLogout,
}

impl Endpoint {
    pub fn label(self) -> &'static str {
        match self {
            Endpoint::OidcStart => "oidc_start",
            Endpoint::OidcCallback => "oidc_callback",
            Endpoint::CertificateLogin => "certificate_login",
            Endpoint::BackchannelLogout => "backchannel_logout",
        }
    }

    /// The limited endpoint a request to the login host is for, if any.
    pub fn on_login_host(method: &http::Method, path: &str) -> Option<Self> {
        match (method.as_str(), path) {
            ("GET", "/oidc/start") => Some(Endpoint::OidcStart),
            // Every provider's callback (`/oidc/callback/ID`) shares the callback's buckets.
            ("GET", "/oidc/callback") => Some(Endpoint::OidcCallback),
            ("GET", p) if p.starts_with(crate::providers::CALLBACK_PREFIX) => {
                Some(Endpoint::OidcCallback)
            }
            ("POST", "/oidc/backchannel-logout") => Some(Endpoint::BackchannelLogout),
            _ => None,
        }
    }
}

/// Refused: try again after this long (whole seconds, at least 1, for `Retry-After`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limited {
    pub retry_after_secs: u64,
}

/// One bucket: `tokens` as of `at`. Full when new.
#[derive(Clone, Copy, Debug)]
pub struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    pub fn full(burst: u32, now: Instant) -> Self {
        Self {
            tokens: f64::from(burst),
            at: now,
        }
    }

    /// Refills for the time since the last take (at `rate`, up to `burst`), then takes one
    /// token; without one, says how long until there is.
    pub fn take(&mut self, now: Instant, rate: Rate, burst: u32) -> Result<(), Duration> {
        let per_second = rate.per_second();
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        self.tokens = (self.tokens + elapsed * per_second).min(f64::from(burst));
        self.at = self.at.max(now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            Ok(())
        } else {
            Err(Duration::from_secs_f64((1.0 - self.tokens) / per_second))
        }
    }
}

/// What a bucket is kept for.
#[derive(Clone, Debug, Hash, PartialEq, Eq)]
enum Key {
    Address(IpAddr),
    Certificate(String),
}

/// Buckets of one rate, in a bounded cache: at most `capacity` keys, and a key unused for the
/// time a bucket takes to fill again is forgotten (it would be full anyway).
pub struct LocalBuckets {
    rate: Rate,
    burst: u32,
    cache: moka::sync::Cache<Key, Arc<Mutex<Bucket>>>,
}

impl LocalBuckets {
    fn new(rate: Rate, burst: u32, capacity: u64) -> Self {
        let refill = Duration::from_secs_f64(f64::from(burst) / rate.per_second())
            .max(Duration::from_secs(1));
        Self {
            rate,
            burst,
            cache: moka::sync::Cache::builder()
                .max_capacity(capacity)
                .time_to_idle(refill)
                .build(),
        }
    }

    fn take(&self, key: Key, now: Instant) -> Result<(), Duration> {
        let bucket = self
            .cache
            .get_with(key, || Arc::new(Mutex::new(Bucket::full(self.burst, now))));
        let mut bucket = bucket.lock().unwrap_or_else(|e| e.into_inner());
        bucket.take(now, self.rate, self.burst)
    }
}

/// One endpoint's limits.
struct EndpointBuckets {
    per_address: Option<LocalBuckets>,
    per_certificate: Option<LocalBuckets>,
}

impl EndpointBuckets {
    fn new(limit: &EndpointLimit, capacity: u64) -> Self {
        Self {
            per_address: limit
                .per_address
                .map(|r| LocalBuckets::new(r, limit.burst, capacity)),
            per_certificate: limit
                .per_certificate
                .map(|r| LocalBuckets::new(r, limit.burst, capacity)),
        }
    }
}

/// The login endpoints' limits, built once from the config.
pub struct RateLimiter {
    oidc_start: EndpointBuckets,
    oidc_callback: EndpointBuckets,
    certificate_login: EndpointBuckets,
    backchannel_logout: EndpointBuckets,
}

/// How a client address is counted: an IPv6 client by its /64 (one host usually has a whole
/// /64 to choose from), an IPv4 one by its address, also when it comes mapped into IPv6.
/// The connection caps count clients the same way.
pub fn counted_address(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        },
    }
}

fn address_key(ip: IpAddr) -> Key {
    Key::Address(counted_address(ip))
}

/// How a client address is counted, as text (IPv6 by /64), for the fleet's shared counters.
pub fn address_label(ip: IpAddr) -> String {
    match address_key(ip) {
        Key::Address(a) => a.to_string(),
        Key::Certificate(c) => c,
    }
}

/// The configured limit of `endpoint`.
pub fn limit_for(config: &RateLimits, endpoint: Endpoint) -> &EndpointLimit {
    match endpoint {
        Endpoint::OidcStart | Endpoint::OidcCallback => &config.login,
        Endpoint::CertificateLogin => &config.certificate_login,
        Endpoint::BackchannelLogout => &config.backchannel_logout,
    }
}

impl RateLimiter {
    pub fn new(config: &RateLimits) -> Self {
        let capacity = config.tracked_keys;
        Self {
            oidc_start: EndpointBuckets::new(&config.login, capacity),
            oidc_callback: EndpointBuckets::new(&config.login, capacity),
            certificate_login: EndpointBuckets::new(&config.certificate_login, capacity),
            backchannel_logout: EndpointBuckets::new(&config.backchannel_logout, capacity),
        }
    }

    fn buckets(&self, endpoint: Endpoint) -> &EndpointBuckets {
        match endpoint {
            Endpoint::OidcStart => &self.oidc_start,
            Endpoint::OidcCallback => &self.oidc_callback,
            Endpoint::CertificateLogin => &self.certificate_login,
            Endpoint::BackchannelLogout => &self.backchannel_logout,
        }
    }

    /// Takes a token from the client address's bucket and then (when one is given) the
    /// certificate's. `Err` when either is empty.
    pub fn check(
        &self,
        endpoint: Endpoint,
        client: Option<IpAddr>,
        certificate: Option<&str>,
    ) -> Result<(), Limited> {
        let now = Instant::now();
        let buckets = self.buckets(endpoint);
        let limited = |wait: Duration| Limited {
            retry_after_secs: wait.as_secs_f64().ceil().max(1.0) as u64,
        };
        if let (Some(b), Some(ip)) = (&buckets.per_address, client) {
            b.take(address_key(ip), now).map_err(limited)?;
        }
        if let (Some(b), Some(fp)) = (&buckets.per_certificate, certificate) {
            b.take(Key::Certificate(fp.to_owned()), now)
                .map_err(limited)?;
        }
        Ok(())
    }
}

/// The 429 page (in the request's language) with `Retry-After`, counted in the metric.
pub fn refusal(
    shared: &crate::Shared,
    auth: &crate::auth::AuthState,
    req: &crate::request::Request<'_>,
    endpoint: Endpoint,
    limited: Limited,
) -> crate::reply::Reply {
    use crate::pages::{Message, Text};
    shared
        .metrics
        .rate_limited
        .with_label_values(&[endpoint.label()])
        .inc();
    tracing::info!(
        endpoint = endpoint.label(),
        request_id = req.request_id,
        retry_after = limited.retry_after_secs,
        "login rate limit reached; answered 429"
    );
    let lang = req.lang(auth);
    let wait = limited.retry_after_secs;
    let detail = auth
        .pages
        .text_with(lang, Text::TooManyRequestsWait, &[("wait", wait.into())]);
    // The language link goes to the login page, not back to the limited endpoint.
    let switch = format!("/?lang={}", lang.other().code());
    let body = auth.pages.message_detail(
        lang,
        Message::TooManyRequests,
        &detail,
        &switch,
        req.request_id,
    );
    crate::reply::Reply::html(Message::TooManyRequests.status(), body)
        .header("retry-after", wait.to_string())
        .header("cache-control", "no-store".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rate(count: u32, secs: u64) -> Rate {
        Rate {
            count,
            per: Duration::from_secs(secs),
        }
    }

    #[test]
    fn a_bucket_gives_its_burst_then_refills_at_its_rate() {
        let t0 = Instant::now();
        let r = rate(6, 60); // one token every 10 s
        let mut b = Bucket::full(3, t0);
        for _ in 0..3 {
            assert_eq!(b.take(t0, r, 3), Ok(()));
        }
        // Empty: the next token is 10 s away.
        let wait = b.take(t0, r, 3).unwrap_err();
        assert!((wait.as_secs_f64() - 10.0).abs() < 1e-6, "{wait:?}");
        // 4 s later: 6 s to go; a refusal takes nothing.
        let wait = b.take(t0 + Duration::from_secs(4), r, 3).unwrap_err();
        assert!((wait.as_secs_f64() - 6.0).abs() < 1e-6, "{wait:?}");
        assert_eq!(b.take(t0 + Duration::from_secs(10), r, 3), Ok(()));
        assert!(b.take(t0 + Duration::from_secs(10), r, 3).is_err());
        // A long pause refills to the burst, never beyond.
        let later = t0 + Duration::from_secs(3600);
        for _ in 0..3 {
            assert_eq!(b.take(later, r, 3), Ok(()));
        }
        assert!(b.take(later, r, 3).is_err());
        // A clock reading older than the last one refills nothing and does not panic.
        assert!(b.take(t0, r, 3).is_err());
    }

    #[test]
    fn limits_are_per_address_per_endpoint_and_per_certificate() {
        let limit = EndpointLimit {
            per_address: Some(rate(1, 3600)),
            per_certificate: Some(rate(1, 3600)),
            burst: 2,
        };
        let config = RateLimits {
            login: limit,
            certificate_login: limit,
            backchannel_logout: limit,
            tracked_keys: 10,
        };
        let limiter = RateLimiter::new(&config);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        let start = Endpoint::OidcStart;
        assert!(limiter.check(start, Some(a), None).is_ok());
        assert!(limiter.check(start, Some(a), None).is_ok());
        let limited = limiter.check(start, Some(a), None).unwrap_err();
        assert!(limited.retry_after_secs >= 1799, "{limited:?}");
        // Another address and another endpoint have buckets of their own.
        assert!(limiter.check(start, Some(b), None).is_ok());
        assert!(limiter.check(Endpoint::OidcCallback, Some(a), None).is_ok());
        // One certificate from many addresses is limited by its own bucket.
        let cert = Endpoint::CertificateLogin;
        let ips = ["198.51.100.1", "198.51.100.2", "198.51.100.3"];
        let results: Vec<bool> = ips
            .iter()
            .map(|ip| limiter.check(cert, ip.parse().ok(), Some("ab12")).is_ok())
            .collect();
        assert_eq!(results, [true, true, false]);
        // Addresses in one IPv6 /64 share a bucket.
        let v6 = ["2001:db8::1", "2001:db8::2:3", "2001:db8::ffff"];
        let results: Vec<bool> = v6
            .iter()
            .map(|ip| limiter.check(start, ip.parse().ok(), None).is_ok())
            .collect();
        assert_eq!(results, [true, true, false]);
    }

    #[test]
    fn an_endpoint_with_no_rate_is_not_limited() {
        let config = RateLimits {
            login: EndpointLimit {
                per_address: None,
                per_certificate: None,
                burst: 1,
            },
            ..RateLimits::default()
        };
        let limiter = RateLimiter::new(&config);
        for _ in 0..100 {
            assert!(limiter
                .check(Endpoint::OidcStart, "192.0.2.1".parse().ok(), None)
                .is_ok());
        }
    }
}
