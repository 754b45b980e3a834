//! prehod's configuration: `proxy.yaml` read into a raw model, then checked into a [`Config`]
//! of parsed values (addresses, durations, header names, loaded certificates and keys).
//!
//! [`Config::load`] reports every problem at once, each as `FILE:LINE:COL: key: message`.
//! This crate knows nothing of pingora, so it can be tested and benchmarked alone.
//!
//! Past ~800 lines because it holds the whole checked model — one plain struct per config
//! section, read by every other crate — and nothing else: the checks live in `check/`, the
//! raw serde model in `raw.rs`. (Splitting the model by section is tracked in issue 18.)

mod check;
pub mod env;
mod error;
pub mod positions;
mod raw;
#[cfg(test)]
mod reference;
mod requests;
mod secret_file;
pub mod sources;

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::Duration;

use http::HeaderName;
use openssl::pkey::{PKey, Private};
use openssl::x509::X509;

pub use error::{ConfigError, Problem};
pub use positions::Position;
pub use requests::{BodyBuffers, HttpMethods};

/// A checked configuration. Every value in it has been parsed and every file read.
#[derive(Debug)]
pub struct Config {
    /// The file this was read from.
    pub source: PathBuf,
    pub listen: Listen,
    pub admin: Admin,
    pub tls: Tls,
    /// Peers whose `X-Forwarded-For` / `-Proto` / `-Host` are believed.
    pub trusted_proxies: Vec<Cidr>,
    /// Defaults for every portal.
    pub timeouts: Timeouts,
    pub headers: Headers,
    pub cookies: Cookies,
    pub server: Server,
    /// Token buckets on the login endpoints.
    pub rate_limits: RateLimits,
    pub portals: Vec<Portal>,
    /// Present when any portal requires authentication.
    pub auth: Option<Auth>,
    /// The state the replicas share (`state:`); `None`: each replica keeps its own.
    pub state: Option<State>,
    /// `reload:` how the gateway reloads by itself.
    pub reload: Reload,
    /// The files this configuration was read from (itself, its secrets, certificates, keys,
    /// CA bundles), each as it was when read.
    pub sources: Vec<sources::SourceFile>,
    /// The SHA-256 of the configuration's text as read (before `${…}` substitution), in lower
    /// case hex: what `sha256sum proxy.yaml` prints. Secrets given as `${file:…}` or `${VAR}`
    /// do not enter it.
    pub digest: String,
}

/// Names no portal may take: the `portal` label of the metrics names with them the login
/// host, the certificate-login host and hosts that no portal serves.
pub const RESERVED_PORTAL_NAMES: [&str; 3] = ["login", "certlogin", "unknown"];

/// `reload:` reloading without a signal.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Reload {
    /// Look this often whether a file of the configuration changed, and reload when one did;
    /// `None`: only `SIGHUP` (or `prehod reload`) reloads.
    pub watch: Option<Duration>,
}

/// `state:` the Redis server the replicas share revocations, used codes and session indexes
/// through.
#[derive(Clone, PartialEq, Eq)]
pub struct State {
    /// Where the server is: one URL, or the master the sentinels name.
    pub server: StateServer,
    /// The ACL user on the Redis servers (`state.username`; the URL may name one instead).
    pub username: Option<String>,
    /// Its password (`state.password`; the URL may hold one instead). Never logged.
    pub password: Option<String>,
    /// Every key and channel starts with this (several gateways may share one server).
    pub key_prefix: String,
    /// PEM CA certificates for TLS servers (and sentinels).
    pub ca: Option<Vec<u8>>,
    /// The longest one Redis operation may take before the local state is used instead.
    pub timeout: Duration,
}

/// Where the shared state's Redis is.
#[derive(Clone, PartialEq, Eq)]
pub enum StateServer {
    /// `state.url`: one `redis://` or `rediss://` (TLS) server; may carry a password, so it is
    /// never logged.
    Url(String),
    /// `state.sentinel`: the master the sentinels name, followed through a failover.
    Sentinel(Sentinel),
}

/// `state.sentinel`: Redis Sentinels and the name of the master they watch.
#[derive(Clone, PartialEq, Eq)]
pub struct Sentinel {
    /// The master's name, as in `sentinel monitor NAME …`.
    pub master: String,
    /// Each sentinel's host and port, in the order they are asked.
    pub addresses: Vec<(String, u16)>,
    /// `rediss://`: TLS to the sentinels and to the servers they name.
    pub tls: bool,
    /// The sentinels' own ACL user and password, if they ask for one.
    pub username: Option<String>,
    pub password: Option<String>,
}

impl State {
    /// The server (or the sentinels and master name) without credentials, for logs and
    /// `/readyz`.
    pub fn server(&self) -> String {
        match &self.server {
            StateServer::Url(url) => match url::Url::parse(url) {
                Ok(u) => format!(
                    "{}://{}:{}",
                    u.scheme(),
                    u.host_str().unwrap_or_default(),
                    u.port().unwrap_or(6379)
                ),
                Err(_) => "(invalid URL)".to_owned(),
            },
            StateServer::Sentinel(s) => {
                let scheme = if s.tls { "rediss" } else { "redis" };
                let sentinels: Vec<String> = s
                    .addresses
                    .iter()
                    .map(|(host, port)| format!("{scheme}://{host}:{port}"))
                    .collect();
                format!("master {} of sentinels {}", s.master, sentinels.join(","))
            }
        }
    }

    /// Whether the servers are reached over TLS.
    pub fn tls(&self) -> bool {
        match &self.server {
            StateServer::Url(url) => url.starts_with("rediss://"),
            StateServer::Sentinel(s) => s.tls,
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("server", &self.server())
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "(secret)"))
            .field("key_prefix", &self.key_prefix)
            .field("ca", &self.ca.as_ref().map(|_| "(PEM)"))
            .field("timeout", &self.timeout)
            .finish()
    }
}

/// Everything the gateway's own login needs.
#[derive(Debug)]
pub struct Auth {
    pub login: Login,
    pub session: SessionSettings,
    /// The OpenID providers, in the order of the login page's buttons: `providers:`, or the
    /// single `oidc:` section (one provider, id `rekono`). Never empty.
    pub providers: Vec<Oidc>,
    pub assertion: AssertionSettings,
    /// Certificate login (mTLS), when configured.
    pub certificate_login: Option<CertificateLogin>,
}

#[derive(Debug)]
pub struct CertificateLogin {
    /// The only host whose handshake asks for a client certificate (optional mode).
    pub host: String,
    /// The level of assurance a certificate session has.
    pub level: u8,
    pub clock_skew: Duration,
    /// How many intermediate CAs may stand between a client certificate and its trust anchor
    /// (OpenSSL's verify depth).
    pub max_chain_depth: u32,
    pub crl_refresh: Duration,
    /// `None`: a CRL past its nextUpdate refuses logins (fail closed).
    pub crl_grace: Option<Duration>,
    /// The longest a CRL or distribution-point download may take, connect included.
    pub fetch_timeout: Duration,
    pub anchors: Vec<TrustAnchor>,
}

#[derive(Debug)]
pub struct TrustAnchor {
    pub name: String,
    /// The CA certificate(s): the root and any intermediates of this anchor.
    pub ca: Vec<X509>,
    pub crls: Vec<AnchorCrl>,
    /// `serial_number`, `common_name` or `email`.
    pub user_id: String,
    /// Put before every user id of this anchor (`acnlb:SI-1234`): ids of two anchors never
    /// meet, and none equals a Rekono `sub` (a Rekono `sub` with `:` is refused).
    pub user_id_prefix: String,
    pub policies: Option<Vec<String>>,
    pub ocsp: Option<OcspSettings>,
    /// Also check the CRLs each certificate names in its CRL distribution points (http).
    pub crl_distribution_points: bool,
    /// This anchor's own clock skew and intermediate limit, when set.
    pub clock_skew: Option<Duration>,
    pub max_chain_depth: Option<u32>,
}

/// An anchor's user-id prefix when the config names none: its name in lower case, every run
/// of characters other than ASCII letters and digits one `-`, then `:`
/// (`POSTArCA G2` → `postarca-g2:`).
pub fn default_user_id_prefix(name: &str) -> String {
    let mut out = String::new();
    for c in name.chars() {
        if c.is_ascii_alphanumeric() {
            out.push(c.to_ascii_lowercase());
        } else if !out.is_empty() && !out.ends_with('-') {
            out.push('-');
        }
    }
    let trimmed = out.trim_end_matches('-');
    format!("{trimmed}:")
}

/// Where a CRL comes from: a file, or an http(s) URL fetched in the background.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CrlSource {
    File(PathBuf),
    Url(String),
}

impl std::fmt::Display for CrlSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CrlSource::File(p) => write!(f, "{}", p.display()),
            CrlSource::Url(u) => f.write_str(u),
        }
    }
}

/// One of an anchor's CRLs: where it comes from, and the CA whose CRL it must be.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnchorCrl {
    pub source: CrlSource,
    /// The DER of that CA's name (the subject of one or more of the anchor's CA
    /// certificates): a CRL from this source must be issued under this name and signed by
    /// the key of a CA certificate of the anchor that bears it.
    pub issuer: Vec<u8>,
    /// The same name as people write it (`CN=…, O=…`), for messages.
    pub issuer_name: String,
}

/// `ocsp.max_age` when not set: how old an answer's thisUpdate may be without a nonce.
pub const DEFAULT_OCSP_MAX_AGE: Duration = Duration::from_secs(3600);

#[derive(Debug)]
pub struct OcspSettings {
    pub url: String,
    /// An unreachable or unusable responder lets logins through.
    pub soft_fail: bool,
    pub timeout: Duration,
    /// How long an answer is reused (never past its nextUpdate or `max_age`).
    pub cache: Duration,
    /// Send a nonce and require it back: for a responder that supports nonces.
    pub nonce: bool,
    /// How old an answer's thisUpdate may be when no nonce proves it was made for this
    /// request (and how long an answer without nextUpdate is fresh).
    pub max_age: Duration,
}

/// `login.support_email` when the config names none; also on the error pages of a gateway
/// without a login section.
pub const DEFAULT_SUPPORT_EMAIL: &str = "helpdesk@bankart.si";

#[derive(Debug)]
pub struct Login {
    /// The login host (lower case): the Bankart login page, the OIDC callback, logout, JWKS.
    pub host: String,
    /// The login host's public base URL, e.g. `https://login.bankart.si` (no trailing `/`).
    /// The OIDC redirect URI is this plus `/oidc/callback`.
    pub url: String,
    pub help_url: String,
    pub rekono_instructions_url: String,
    pub certificate_instructions_url: String,
    pub support_email: String,
    /// A directory whose templates replace the built-in ones (branding).
    pub templates: Option<PathBuf>,
    /// The path prefix reserved on every portal host for the gateway's own paths (`me`,
    /// `logout`, `sso`): never forwarded. `/NAME/`.
    pub portal_prefix: String,
}

/// [`Login::portal_prefix`] unless configured.
pub const DEFAULT_PORTAL_PREFIX: &str = "/.prehod/";

/// Where the gateway's session cookies reach.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CookieScope {
    /// Host-only `__Host-` cookies (the default): each portal and the login host have their
    /// own; single sign-on goes through the login host with single-use codes.
    Host,
    /// One cookie on this parent domain (`Domain=`), sent to every host under it — also to
    /// hosts the gateway does not guard. An explicit choice.
    ParentDomain(String),
}

#[derive(Debug)]
pub struct SessionSettings {
    pub cookie_scope: CookieScope,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// AES-256 keys; the first seals, all open. Never printed.
    pub keys: Vec<[u8; 32]>,
    pub cache_entries: u64,
    /// Bytes the session cache may hold.
    pub cache_memory: u64,
    /// Revocations held at most (≤ 80 bytes each); at the bound no new session is issued.
    pub max_revocations: u64,
    /// How long after an end of sessions ("end all", one ended from the sessions page) the
    /// subject's next Rekono login must authenticate afresh: the longest a Rekono single
    /// sign-on session lasts. Never shorter than `absolute_timeout`.
    pub fresh_login_for: Duration,
    /// Where the revocations made here are kept across restarts (read at start-up, not
    /// reloaded); without it and without `state:` a restart forgets every logout.
    pub revocation_file: Option<std::path::PathBuf>,
}

#[derive(Debug)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    /// How the gateway authenticates to the token endpoint.
    pub client_auth: ClientAuth,
    pub scopes: Vec<String>,
    /// The provider's `acr` values and the levels they stand for.
    pub acr_levels: Vec<(String, u8)>,
    /// Extra trust anchors for the provider's TLS certificate (PEM).
    pub ca: Option<Vec<u8>>,
    pub timeout: Duration,
    /// RP-initiated logout also ends the session at the provider.
    pub logout_at_provider: bool,
    /// The provider's id (`[a-z0-9-]`, at most 32): what portals' `methods`, sessions, audit
    /// lines and metric labels name it by. `rekono` for the single `oidc:` section.
    pub id: String,
    /// The login page's button, Slovenian and English; `None` for `rekono` without one: the
    /// built-in Rekono texts.
    pub button: Option<(String, String)>,
    /// Put before every `sub` of this provider to make its user ids: `ID:`, except for
    /// `rekono`, whose ids stay the bare Rekono `sub` (as before providers were a list; a
    /// provider without a prefix refuses a `sub` with `:`). Ids of two providers never meet.
    pub user_id_prefix: String,
    /// What the client asks of itself and of the provider (`oidc.profile`).
    pub profile: Profile,
    /// After the ID token, the provider's userinfo endpoint is asked for the claims it lacks
    /// (with a DPoP-bound access token under [`Profile::Fapi2`]); its `sub` must match.
    pub userinfo: bool,
}

/// The id the single `oidc:` section gives its provider; the one provider whose user ids
/// carry no prefix.
pub const DEFAULT_PROVIDER_ID: &str = "rekono";

impl Oidc {
    /// This provider's user id for the `sub` it asserted.
    pub fn user_id(&self, sub: &str) -> String {
        format!("{}{sub}", self.user_id_prefix)
    }
}

/// The OpenID client's profile (`oidc.profile`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Profile {
    /// OpenID Connect with PKCE, as Rekono asks.
    #[default]
    Default,
    /// The FAPI 2.0 Security Profile: pushed authorization requests, `private_key_jwt`,
    /// `iss` in every authorization response, PS256/ES256/EdDSA ID tokens, DPoP.
    Fapi2,
}

/// The smallest RSA key the OpenID client signs with or takes a signature from (FAPI 2.0
/// 5.4.1; NIST SP 800-131A has disallowed shorter ones since 2013), under every profile.
pub const MIN_RSA_BITS: u32 = 2048;

/// Client authentication at the provider's token endpoint.
#[derive(Clone, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`
    Secret(String),
    /// `private_key_jwt`: a PEM private key (EC P-256 → ES256, RSA → RS256).
    PrivateKeyJwt { key_pem: Vec<u8>, rsa: bool },
}

impl std::fmt::Debug for ClientAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print secrets or keys.
        match self {
            ClientAuth::Secret(_) => f.write_str("client_secret_basic"),
            ClientAuth::PrivateKeyJwt { .. } => f.write_str("private_key_jwt"),
        }
    }
}

#[derive(Debug)]
pub struct AssertionSettings {
    /// EC P-256 private key (PEM).
    pub key_pem: Vec<u8>,
    pub lifetime: Duration,
}

/// How a portal's users may have logged in: an OpenID provider by its id, or a certificate.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum LoginMethod {
    Provider(String),
    Certificate,
}

impl LoginMethod {
    /// `rekono`, the default provider.
    pub fn rekono() -> Self {
        LoginMethod::Provider(DEFAULT_PROVIDER_ID.to_owned())
    }
}

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
pub enum TlsVersion {
    Tls12,
    Tls13,
}

impl TlsVersion {
    /// The name `proxy.yaml` gives it.
    pub fn label(self) -> &'static str {
        match self {
            TlsVersion::Tls12 => "1.2",
            TlsVersion::Tls13 => "1.3",
        }
    }
}

/// Mozilla's server-side TLS configurations (`tls.profile`): the versions, cipher suites and
/// groups the listener offers (the OpenSSL settings are the gateway's `tls_profile`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsProfile {
    /// TLS 1.2 and 1.3: "recommended for a general-purpose server".
    Intermediate,
    /// TLS 1.3 only, for clients that all speak it.
    Modern,
}

impl TlsProfile {
    /// The name `proxy.yaml` gives it.
    pub fn label(self) -> &'static str {
        match self {
            TlsProfile::Intermediate => "intermediate",
            TlsProfile::Modern => "modern",
        }
    }
}

#[derive(Debug)]
pub struct Tls {
    pub profile: TlsProfile,
    /// The lowest version offered: the profile's, or higher where `tls.min_version` says so.
    pub min_version: TlsVersion,
    /// The first certificate also answers handshakes without SNI or with an unknown name
    /// (they then get a 421 page).
    pub certificates: Vec<ServerCertificate>,
}

/// A server certificate chain with its key, and the DNS names it covers.
#[derive(Debug)]
pub struct ServerCertificate {
    pub cert_path: PathBuf,
    /// Leaf first, then intermediates.
    pub chain: Vec<X509>,
    pub key: PKey<Private>,
    /// Lower-case DNS names from the subjectAltName; `*.example.com` wildcards included.
    pub dns_names: Vec<String>,
}

impl ServerCertificate {
    /// Whether this certificate is valid for `host` (lower case), wildcards matching one label.
    pub fn covers(&self, host: &str) -> bool {
        self.dns_names
            .iter()
            .any(|name| dns_name_matches(name, host))
    }
}

/// RFC 6125 matching: exact, or `*.` matching exactly one left-most label.
pub fn dns_name_matches(pattern: &str, host: &str) -> bool {
    match pattern.strip_prefix("*.") {
        Some(suffix) => host
            .split_once('.')
            .is_some_and(|(label, rest)| !label.is_empty() && rest == suffix),
        None => pattern == host,
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

/// The names of the headers the gateway owns. A client can never send any of them upstream.
#[derive(Clone, Debug)]
pub struct Headers {
    pub request_id: HeaderName,
    pub user: HeaderName,
    pub email: HeaderName,
    pub name: HeaderName,
    pub method: HeaderName,
    pub level: HeaderName,
    pub amr: HeaderName,
    pub assertion: HeaderName,
    pub cert_subject: HeaderName,
    pub cert_issuer: HeaderName,
    pub cert_serial: HeaderName,
    pub cert_fingerprint: HeaderName,
    /// Further names removed from every client request (e.g. `X-Remote-User`).
    pub strip: Vec<HeaderName>,
    /// Name prefixes removed from every client request (`strip` entries ending in `*`, e.g.
    /// `X-Bank-*`): lower case, `_` and `.` written `-`, without the `*`.
    pub strip_prefixes: Vec<String>,
}

impl Headers {
    /// Every identity header name: the ones the gateway sets and the extra ones it strips.
    pub fn identity_names(&self) -> Vec<HeaderName> {
        let mut names = vec![
            self.user.clone(),
            self.email.clone(),
            self.name.clone(),
            self.method.clone(),
            self.level.clone(),
            self.amr.clone(),
            self.assertion.clone(),
            self.cert_subject.clone(),
            self.cert_issuer.clone(),
            self.cert_serial.clone(),
            self.cert_fingerprint.clone(),
        ];
        names.extend(self.strip.iter().cloned());
        names.dedup();
        names
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

/// How a portal's users log in to the portal application after the gateway.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AppLogin {
    /// The gateway's login is the only one.
    Gateway,
    /// The portal has its own username/password login, passed through untouched.
    Own,
}

#[derive(Clone, Debug)]
pub struct Portal {
    /// The key in `portals:` (`acq`, `b2b`, …), used in metrics and logs.
    pub name: String,
    /// Lower-case host name, without port.
    pub host: String,
    pub title: String,
    pub app_login: AppLogin,
    pub upstream: Upstream,
    pub timeouts: Timeouts,
    /// The lowest level of assurance the portal accepts: 10, 20 or 30.
    pub min_level: u8,
    pub methods: Vec<LoginMethod>,
    /// The HTTP methods forwarded to the portal; any other is answered 405 by the gateway.
    pub http_methods: HttpMethods,
    /// Only these user ids (the session's subject) may use the portal; `None`: anyone.
    pub allowed_users: Option<Vec<String>>,
    /// Only certificate sessions whose subject organisation (O) is listed may use the portal.
    pub allowed_organisations: Option<Vec<String>>,
    /// A certificate-only portal: its own handshake requires a client certificate from the
    /// `certificate_login` anchors, and every request is authenticated by it (no session).
    pub client_certificate_required: bool,
    /// The portal sits behind another proxy (nginx `auth_request`, Traefik ForwardAuth) that
    /// asks the gateway's forward-auth endpoint; the gateway forwards nothing to it (its
    /// `upstream` has no targets) and answers on its host only its own paths and the way to
    /// the login.
    pub forward_auth: bool,

    /// No login at all for this portal. Only for tests and demos.
    pub danger_no_authentication: bool,
}

impl Portal {
    /// Whether the portal's `methods` name the OpenID provider `id`.
    pub fn allows_provider(&self, id: &str) -> bool {
        self.methods
            .iter()
            .any(|m| matches!(m, LoginMethod::Provider(p) if p == id))
    }

    pub fn allows_certificate(&self) -> bool {
        self.methods.contains(&LoginMethod::Certificate)
    }
}

#[derive(Clone, Debug)]
pub struct Upstream {
    pub targets: Vec<Target>,
    pub tls: Option<UpstreamTls>,
    pub health_check: HealthCheck,
}

/// One upstream address, resolved when the gateway starts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    pub host: String,
    pub port: u16,
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[derive(Clone, Debug)]
pub struct UpstreamTls {
    /// Trust anchors for the upstream's certificate; `None` uses the system store.
    pub ca: Option<Vec<X509>>,
    /// Turns off certificate verification. Named `danger_` in the file for a reason.
    pub danger_accept_invalid_certs: bool,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    pub interval: Duration,
    pub timeout: Duration,
}

/// An IP network in CIDR notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    pub network: IpAddr,
    pub prefix: u8,
}

impl Cidr {
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.network, ip) {
            (IpAddr::V4(net), IpAddr::V4(ip)) => {
                let mask = u32::MAX
                    .checked_shl(32 - u32::from(self.prefix))
                    .unwrap_or(0);
                u32::from(net) & mask == u32::from(ip) & mask
            }
            (IpAddr::V6(net), IpAddr::V6(ip)) => {
                let mask = u128::MAX
                    .checked_shl(128 - u32::from(self.prefix))
                    .unwrap_or(0);
                u128::from(net) & mask == u128::from(ip) & mask
            }
            (IpAddr::V6(_), IpAddr::V4(ip)) => self.contains(IpAddr::V6(ip.to_ipv6_mapped())),
            (IpAddr::V4(_), IpAddr::V6(ip)) => ip
                .to_ipv4_mapped()
                .is_some_and(|v4| self.contains(IpAddr::V4(v4))),
        }
    }
}

impl std::str::FromStr for Cidr {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let (addr, prefix) = match s.split_once('/') {
            Some((addr, prefix)) => (addr, Some(prefix)),
            None => (s, None),
        };
        let network: IpAddr = addr
            .parse()
            .map_err(|_| format!("{addr:?} is not an IP address"))?;
        let max = if network.is_ipv4() { 32 } else { 128 };
        let prefix = match prefix {
            None => max,
            Some(p) => p
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max)
                .ok_or_else(|| format!("prefix length {p:?} is not between 0 and {max}"))?,
        };
        Ok(Self { network, prefix })
    }
}

/// Parses `250ms`, `5s`, `2m`, `1h`.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let s = s.trim();
    let split = s
        .find(|c: char| !c.is_ascii_digit())
        .ok_or_else(|| format!("{s:?} has no unit: write e.g. 5s, 250ms, 2m or 1h"))?;
    let (number, unit) = s.split_at(split);
    let n: u64 = number
        .parse()
        .map_err(|_| format!("{s:?} does not start with a whole number"))?;
    let scale = match unit {
        "ms" => 1,
        "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        _ => return Err(format!("unknown unit {unit:?} in {s:?}: use ms, s, m or h")),
    };
    n.checked_mul(scale)
        .map(Duration::from_millis)
        .ok_or_else(|| format!("{s:?} is too long"))
}

impl Config {
    /// Reads and checks `path`. `${VAR}` references are looked up in the process environment;
    /// `${file:PATH}` reads the file (private to the gateway's user and group).
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let read = sources::SourceFile::stamp(path);
        let text = std::fs::read_to_string(path).map_err(|e| ConfigError {
            file: path.to_owned(),
            problems: vec![Problem {
                position: Position { line: 1, col: 1 },
                key: String::new(),
                message: format!("cannot read the file: {e}"),
            }],
        })?;
        let mut config = Self::from_text(path, &text, |name| std::env::var(name).ok())?;
        config.sources.insert(0, read);
        Ok(config)
    }

    /// The files of this configuration that changed since they were read.
    pub fn changed_sources(&self) -> Vec<&Path> {
        self.sources
            .iter()
            .filter(|s| s.changed())
            .map(|s| s.path.as_path())
            .collect()
    }

    /// Checks `text` as if read from `path` (relative file paths in it are relative to the
    /// directory of `path`).
    pub fn from_text(
        path: &Path,
        text: &str,
        env: impl Fn(&str) -> Option<String>,
    ) -> Result<Self, ConfigError> {
        let mut config = check::check(path, text, &env)?;
        config.digest = openssl::sha::sha256(text.as_bytes())
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        Ok(config)
    }

    pub fn portal_by_host(&self, host: &str) -> Option<&Portal> {
        self.portals.iter().find(|p| p.host == host)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("250ms").unwrap(), Duration::from_millis(250));
        assert_eq!(parse_duration("5s").unwrap(), Duration::from_secs(5));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert!(parse_duration("5").unwrap_err().contains("no unit"));
        assert!(parse_duration("5d").unwrap_err().contains("unknown unit"));
        assert!(parse_duration("s").is_err());
    }

    #[test]
    fn cidrs() {
        let net: Cidr = "10.0.0.0/8".parse().unwrap();
        assert!(net.contains("10.1.2.3".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.9.9.9".parse().unwrap()));
        let all: Cidr = "0.0.0.0/0".parse().unwrap();
        assert!(all.contains("8.8.8.8".parse().unwrap()));
        let one: Cidr = "::1".parse().unwrap();
        assert!(one.contains("::1".parse().unwrap()));
        assert!("10.0.0.0/33".parse::<Cidr>().is_err());
        assert!("nonsense/8".parse::<Cidr>().is_err());
    }

    #[test]
    fn wildcards_match_one_label() {
        assert!(dns_name_matches("*.bankart.si", "acq.bankart.si"));
        assert!(!dns_name_matches("*.bankart.si", "bankart.si"));
        assert!(!dns_name_matches("*.bankart.si", "a.b.bankart.si"));
        assert!(dns_name_matches("login.bankart.si", "login.bankart.si"));
    }
}
