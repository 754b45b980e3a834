//! The raw configuration model: exactly what `proxy.yaml` says, read by serde_yaml.
//!
//! Nothing here is checked beyond its YAML type; `crate::check` turns it into a [`crate::Config`].
//! Unknown keys are not refused by serde (that would stop at the first); they are collected by
//! `serde_ignored` so that every one of them is reported.

use serde::{de, Deserialize};

use crate::IdentityHeader;

#[derive(Debug, Deserialize)]
pub struct Listen {
    pub https: String,
    pub http_redirect: Option<String>,
}

/// `state:` the store the replicas share (Redis): one server (`url`) or the master the
/// sentinels of `sentinel` name.
#[derive(Debug, Deserialize)]
pub struct State {
    pub url: Option<String>,
    pub sentinel: Option<StateSentinel>,
    /// The ACL user and password on the Redis servers.
    pub username: Option<String>,
    pub password: Option<String>,
    pub key_prefix: Option<String>,
    pub tls: Option<StateTls>,
    pub timeout: Option<String>,
}

/// `state.sentinel:` the Redis Sentinels that know the master.
#[derive(Debug, Deserialize)]
pub struct StateSentinel {
    /// The master's name, as in the sentinels' `sentinel monitor NAME …`.
    pub master: String,
    /// `redis://HOST:PORT` or `rediss://HOST:PORT` (TLS), one per sentinel.
    pub urls: Vec<String>,
    /// The sentinels' own ACL user and password (`requirepass` / `user` of sentinel.conf).
    pub username: Option<String>,
    pub password: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct StateTls {
    /// PEM CA certificates the Redis servers' (and sentinels') certificates must chain to,
    /// instead of the system's roots.
    pub ca: Option<String>,
}

/// `reload:` reloading by itself.
#[derive(Debug, Default, Deserialize)]
pub struct Reload {
    /// How often to look whether a file of the configuration changed; absent: never.
    pub watch: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Admin {
    pub listen: String,
    /// The bearer token of the admin API (`/sessions`); none: the API is off.
    pub api_token: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Tls {
    /// Mozilla's server-side TLS configuration: `intermediate` or `modern`.
    pub profile: Option<String>,
    pub min_version: Option<String>,
    pub certificates: Vec<Certificate>,
}

#[derive(Debug, Deserialize)]
pub struct Certificate {
    pub cert: String,
    pub key: String,
}

#[derive(Debug, Default, Deserialize)]
pub struct Timeouts {
    pub connect: Option<String>,
    pub read: Option<String>,
    pub write: Option<String>,
    pub idle: Option<String>,
}

/// `headers:`. Its identity headers are the table [`IdentityHeader::ALL`], not fields written
/// out once more, so serde reads this section by hand ([`Headers::deserialize`]).
#[derive(Debug, Default)]
pub struct Headers {
    pub request_id: Option<String>,
    /// The identity headers' names, in the order of [`IdentityHeader::ALL`].
    pub identity: [Option<String>; 11],
    pub strip: Vec<String>,
}

impl Headers {
    /// Every key of `headers:`: `request_id`, the identity headers' keys, `strip`.
    // Evaluated when the crate is built: an index out of bounds fails the build, not a run.
    #[allow(clippy::indexing_slicing)]
    const KEYS: [&'static str; 13] = {
        let mut keys = ["request_id"; 13];
        let mut i = 0;
        while i < IdentityHeader::ALL.len() {
            keys[i + 1] = IdentityHeader::ALL[i].1;
            i += 1;
        }
        keys[12] = "strip";
        keys
    };
}

/// As `#[derive(Deserialize)]` would read it: each known key once, an unknown key's value
/// read as `IgnoredAny` (so that `serde_ignored` reports it, with its place).
impl<'de> Deserialize<'de> for Headers {
    fn deserialize<D: de::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Fields;

        impl<'de> de::Visitor<'de> for Fields {
            type Value = Headers;

            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("struct Headers")
            }

            fn visit_map<A: de::MapAccess<'de>>(self, mut map: A) -> Result<Headers, A::Error> {
                let mut headers = Headers::default();
                // A key given twice (`user` and `!x user`: two keys to YAML, one to serde) is
                // refused where the second stands, as the derived readers refuse it.
                let mut seen = [false; Headers::KEYS.len()];
                while let Some(key) = map.next_key::<String>()? {
                    if let Some(i) = Headers::KEYS.iter().position(|k| *k == key) {
                        if seen.get(i).copied().unwrap_or(false) {
                            return map.next_value_seed(GivenTwice).map(|()| headers);
                        }
                        if let Some(s) = seen.get_mut(i) {
                            *s = true;
                        }
                    }
                    let slot = match key.as_str() {
                        "request_id" => Some(&mut headers.request_id),
                        "strip" => {
                            headers.strip = map.next_value()?;
                            continue;
                        }
                        _ => headers
                            .identity
                            .iter_mut()
                            .zip(IdentityHeader::ALL)
                            .find_map(|(slot, (_, k, _))| (k == key).then_some(slot)),
                    };
                    match slot {
                        Some(slot) => *slot = map.next_value()?,
                        None => {
                            map.next_value::<de::IgnoredAny>()?;
                        }
                    }
                }
                Ok(headers)
            }
        }

        deserializer.deserialize_struct("Headers", &Self::KEYS, Fields)
    }
}

/// The value of a key given a second time: refused, so that the error names the key's path
/// and place.
struct GivenTwice;

impl<'de> de::DeserializeSeed<'de> for GivenTwice {
    type Value = ();

    fn deserialize<D: de::Deserializer<'de>>(self, _: D) -> Result<(), D::Error> {
        Err(de::Error::custom(
            "given twice (a key of `headers` may stand once)",
        ))
    }
}

#[derive(Debug, Default, Deserialize)]
pub struct Cookies {
    pub prefix: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
pub struct Server {
    pub threads: Option<usize>,
    pub grace_period: Option<String>,
    pub handshake_timeout: Option<String>,
    pub header_timeout: Option<String>,
    pub body_timeout: Option<String>,
    /// Bytes per second.
    pub body_min_rate: Option<u64>,
    pub idle_timeout: Option<String>,
    pub max_connections: Option<usize>,
    pub max_connections_per_address: Option<u32>,
    pub max_pending_connections: Option<usize>,
    pub max_pending_connections_per_address: Option<u32>,
    pub max_requests_per_address: Option<u32>,
    pub h2_max_streams: Option<u32>,
    /// Bytes.
    pub read_buffer: Option<usize>,
    /// e.g. `16MiB`: every request body the gateway holds in memory, together.
    pub body_buffer_memory: Option<String>,
    pub body_buffers_per_connection: Option<usize>,
}

#[derive(Debug, Default, Deserialize)]
pub struct RateLimits {
    pub login: Option<EndpointLimit>,
    pub certificate_login: Option<EndpointLimit>,
    pub backchannel_logout: Option<EndpointLimit>,
    pub tracked_keys: Option<u64>,
}

#[derive(Debug, Default, Deserialize)]
pub struct EndpointLimit {
    /// e.g. `30/min`, or `off`.
    pub per_address: Option<String>,
    /// Only on `certificate_login`.
    pub per_certificate: Option<String>,
    pub burst: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Login {
    pub host: String,
    pub url: Option<String>,
    pub help_url: Option<String>,
    pub rekono_instructions_url: Option<String>,
    pub certificate_instructions_url: Option<String>,
    pub support_email: Option<String>,
    pub templates: Option<String>,
    /// The gateway's own paths on every portal host (`/.prehod/`).
    pub portal_prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Session {
    /// `host` (default) or `parent_domain`.
    pub cookie_scope: Option<String>,
    /// Only with `cookie_scope: parent_domain`.
    pub cookie_domain: Option<String>,
    pub idle_timeout: Option<String>,
    pub absolute_timeout: Option<String>,
    /// Absent or empty: the checker's "at least one key", reported with the rest.
    #[serde(default)]
    pub keys: Vec<String>,
    pub cache_entries: Option<u64>,
    /// e.g. `64MiB`
    pub cache_memory: Option<String>,
    pub max_revocations: Option<u64>,
    /// e.g. `720h`
    pub fresh_login_for: Option<String>,
    /// An absolute path: the revocations made here, kept across restarts.
    pub revocation_file: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Oidc {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub client_auth: Option<String>,
    pub client_key: Option<String>,
    pub scopes: Option<Vec<String>>,
    pub acr_levels: Option<std::collections::BTreeMap<String, u8>>,
    pub ca: Option<String>,
    pub timeout: Option<String>,
    pub logout_at_provider: Option<bool>,
    /// The provider's id (`[a-z0-9-]`); `rekono` in the single `oidc:` section.
    pub id: Option<String>,
    /// The login page's button: `{sl: …, en: …}`.
    pub button: Option<Button>,
    /// `default` or `fapi2` (the FAPI 2.0 Security Profile).
    pub profile: Option<String>,
    /// Ask the provider's userinfo endpoint for the claims the ID token lacks.
    pub userinfo: Option<bool>,
}

/// A login button's text in both languages.
#[derive(Debug, Deserialize)]
pub struct Button {
    pub sl: String,
    pub en: String,
}

#[derive(Debug, Deserialize)]
pub struct CertificateLogin {
    pub host: String,
    pub level: Option<u8>,
    pub clock_skew: Option<String>,
    pub max_chain_depth: Option<u32>,
    pub crl_refresh: Option<String>,
    /// How long a CRL past its nextUpdate is still used; absent: fail closed.
    pub crl_grace: Option<String>,
    /// The longest a CRL or distribution-point download may take, connect included.
    pub fetch_timeout: Option<String>,
    /// Absent or empty: the checker's "at least one trust anchor", reported with the rest.
    #[serde(default)]
    pub anchors: Vec<Anchor>,
}

#[derive(Debug, Deserialize)]
pub struct Anchor {
    pub name: String,
    pub ca: String,
    /// Each a file or URL, or `{source: …, issuer: …}` (read by `check::certificates`).
    #[serde(default)]
    pub crls: Vec<serde_yaml::Value>,
    pub user_id: Option<String>,
    /// Put before every user id of this anchor; default from its name (`acnlb:`).
    pub user_id_prefix: Option<String>,
    pub policies: Option<Vec<String>>,
    pub ocsp: Option<Ocsp>,
    #[serde(default)]
    pub crl_distribution_points: bool,
    /// Overrides of the `certificate_login` values for this anchor.
    pub clock_skew: Option<String>,
    pub max_chain_depth: Option<u32>,
}

#[derive(Debug, Deserialize)]
pub struct Ocsp {
    pub url: String,
    /// `fail_closed` (default) or `soft_fail`.
    pub policy: Option<String>,
    pub timeout: Option<String>,
    pub cache: Option<String>,
    /// Send a nonce and require it back (a responder that supports nonces).
    pub nonce: Option<bool>,
    /// How old an answer's thisUpdate may be when no nonce vouches for it.
    pub max_age: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Assertion {
    pub key: String,
    pub lifetime: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct Portal {
    pub host: String,
    pub title: Option<String>,
    pub app_login: Option<String>,
    pub min_level: Option<u8>,
    pub methods: Option<Vec<String>>,
    /// The HTTP methods forwarded to the portal (`[GET, POST, …]`).
    pub http_methods: Option<Vec<String>>,
    pub allowed_users: Option<Vec<String>>,
    pub allowed_organisations: Option<Vec<String>>,
    /// `required`: a certificate-only portal (its handshake demands a client certificate).
    pub client_certificate: Option<String>,

    #[serde(default)]
    pub danger_no_authentication: bool,
    /// The portal sits behind another proxy that asks the forward-auth endpoint; it has no
    /// `upstream` (see docs/forward-auth.md).
    #[serde(default)]
    pub forward_auth: bool,
    pub upstream: Option<Upstream>,
    #[serde(default)]
    pub timeouts: Timeouts,
}

#[derive(Debug, Deserialize)]
pub struct Upstream {
    pub urls: Vec<String>,
    pub ca: Option<String>,
    #[serde(default)]
    pub danger_accept_invalid_certs: bool,
    #[serde(default)]
    pub health_check: HealthCheck,
}

#[derive(Debug, Default, Deserialize)]
pub struct HealthCheck {
    pub interval: Option<String>,
    pub timeout: Option<String>,
}
