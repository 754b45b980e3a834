//! The listeners, the admin API, timeouts, cookies, `server:` and the rate limits.

use crate::*;

#[derive(Debug)]
pub struct Listen {
    pub https: SocketAddr,
    /// A plain-HTTP listener that only redirects to HTTPS.
    pub http_redirect: Option<SocketAddr>,
}

#[derive(Debug)]
pub struct Admin {
    pub listen: SocketAddr,
    /// The bearer token of the admin API (listing and ending users' sessions); `None`: the
    /// API answers 404.
    pub api_token: Option<Secret>,
}

/// A secret from the configuration: never shown by `Debug`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(…)")
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Timeouts {
    pub connect: Duration,
    /// Longest wait for the upstream's next bytes (504 when it passes).
    pub read: Duration,
    pub write: Duration,
    /// How long an idle upstream connection stays in the keep-alive pool.
    pub idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(5),
            read: Duration::from_secs(60),
            write: Duration::from_secs(60),
            idle: Duration::from_secs(90),
        }
    }
}

#[derive(Clone, Debug)]
pub struct Cookies {
    /// Every cookie whose name starts with this belongs to the gateway and never goes upstream.
    pub prefix: String,
}

#[derive(Clone, Debug)]
pub struct Server {
    pub threads: usize,
    /// How long in-flight requests may finish after SIGTERM.
    pub grace_period: Duration,
    /// The longest a client may take to finish its TLS handshake, from the TCP accept.
    pub handshake_timeout: Duration,
    /// The longest a client may take to send a whole request header (from the handshake, or
    /// from the first byte of a later request on the connection).
    pub header_timeout: Duration,
    /// A request body must arrive within `body_timeout` plus one second for every
    /// `body_min_rate` bytes received: a body slower on average than that is cut off.
    pub body_timeout: Duration,
    pub body_min_rate: u64,
    /// How long a connection may wait for its next request (HTTP/1.1 keep-alive) or stream
    /// (HTTP/2) before it is closed.
    pub idle_timeout: Duration,
    /// Connections the gateway holds at once, on its public listeners (the admin listener
    /// has the same caps of its own).
    pub max_connections: usize,
    /// Connections one client address (an IPv6 client by its /64) may hold at once (trusted
    /// proxies: no limit).
    pub max_connections_per_address: u32,
    /// Connections that have not yet sent their first whole request header (from the TCP
    /// accept: the TLS handshake counts).
    pub max_pending_connections: usize,
    /// Of those, the ones one client address (an IPv6 client by its /64) may hold (trusted
    /// proxies: no limit); below `max_pending_connections`.
    pub max_pending_connections_per_address: u32,
    /// Requests in progress — each may hold an upstream connection — that one client address
    /// may have at once over all its connections (an HTTP/1 connection counts as one, an
    /// HTTP/2 connection as its open streams); more HTTP/2 streams are refused
    /// (`REFUSED_STREAM`). All addresses together: at most `max_connections`.
    pub max_requests_per_address: u32,
    /// Streams one HTTP/2 connection may have open at once (SETTINGS_MAX_CONCURRENT_STREAMS).
    pub h2_max_streams: u32,
    /// The read buffer under TLS of each client connection, in bytes (held while it is open).
    pub read_buffer: usize,
    /// The request bodies the gateway reads into memory (login host forms, forms kept across a
    /// login), together.
    pub body_buffers: BodyBuffers,
}

/// Token buckets on the login endpoints, per client address and (on the certificate-login
/// host) per certificate. Local to each replica.
#[derive(Clone, Debug, PartialEq)]
pub struct RateLimits {
    /// `/oidc/start` and `/oidc/callback`, each with buckets of its own.
    pub login: EndpointLimit,
    /// Every request to the certificate-login host.
    pub certificate_login: EndpointLimit,
    /// `POST /oidc/backchannel-logout`.
    pub backchannel_logout: EndpointLimit,
    /// At most this many addresses (or certificates) are tracked per endpoint; the least
    /// recently seen are forgotten first.
    pub tracked_keys: u64,
}

impl Default for RateLimits {
    fn default() -> Self {
        let per_minute = |count| {
            Some(Rate {
                count,
                per: Duration::from_secs(60),
            })
        };
        Self {
            login: EndpointLimit {
                per_address: per_minute(30),
                per_certificate: None,
                burst: 30,
            },
            certificate_login: EndpointLimit {
                per_address: per_minute(30),
                per_certificate: per_minute(10),
                burst: 20,
            },
            backchannel_logout: EndpointLimit {
                per_address: per_minute(600),
                per_certificate: None,
                burst: 100,
            },
            tracked_keys: 100_000,
        }
    }
}

/// One endpoint's buckets: each holds `burst` tokens, refilled at its rate; `None`: no limit.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct EndpointLimit {
    pub per_address: Option<Rate>,
    pub per_certificate: Option<Rate>,
    pub burst: u32,
}

/// `count` requests per `per`, e.g. `30/min`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Rate {
    pub count: u32,
    pub per: Duration,
}

impl Rate {
    pub fn per_second(self) -> f64 {
        f64::from(self.count) / self.per.as_secs_f64()
    }
}

/// `"30/min"`, `"5/s"`, `"100/h"`, or `"off"` (no limit: `None`).
pub fn parse_rate(s: &str) -> Result<Option<Rate>, String> {
    let s = s.trim();
    if s == "off" {
        return Ok(None);
    }
    let (count, unit) = s
        .split_once('/')
        .ok_or_else(|| format!("{s:?} is not a rate: write e.g. 30/min, 5/s, 100/h or off"))?;
    let count: u32 = count
        .trim()
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    if count == 0 {
        return Err(format!(
            "{s:?} allows nothing: write a count of at least 1, or off"
        ));
    }
    let per = match unit.trim() {
        "s" | "sec" => Duration::from_secs(1),
        "m" | "min" => Duration::from_secs(60),
        "h" => Duration::from_secs(3600),
        u => return Err(format!("unknown unit {u:?} in {s:?}: use s, min or h")),
    };
    Ok(Some(Rate { count, per }))
}
