//! The `reload:` and `state:` sections: what is watched for a reload, and the shared state (Redis, Sentinel).

use crate::*;

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
