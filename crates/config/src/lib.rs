//! prehod's configuration: `proxy.yaml` read into a raw model, then checked into a [`Config`]
//! of parsed values (addresses, durations, header names, loaded certificates and keys).
//!
//! [`Config::load`] reports every problem at once, each as `FILE:LINE:COL: key: message`.
//! This crate knows nothing of pingora, so it can be tested and benchmarked alone.
//!
//! The checked model is in `model/`, one module per part of the file (re-exported here); the
//! checks live in `check/`, the raw serde model in `raw.rs`.

mod check;
pub mod env;
mod error;
mod model;
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
pub use model::*;
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
