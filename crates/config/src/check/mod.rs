//! Turns `proxy.yaml` text into a [`Config`], collecting every problem on the way.
//!
//! Each section, each portal and each certificate is decoded on its own, so a type error in
//! one does not hide the problems in the others. [`check`] and `Checker::config` take the
//! document apart; each section is checked in the file named after it:
//!
//! - `listen.rs`, `admin.rs`, `tls.rs`, `trusted_proxies.rs`, `timeouts.rs`, `headers.rs`,
//!   `cookies.rs`, `server.rs`, `rate_limits.rs`, `state.rs`, `reload.rs`: the top-level
//!   sections of the same names;
//! - `portals.rs` (each portal) and `upstream.rs` (`portals.*.upstream`);
//! - `auth.rs`: the login sections together and against the portals; `login.rs`, `session.rs`,
//!   `oidc.rs` (`oidc`, and each of `providers`), `assertion.rs`, `certificate_login.rs`: each of them;
//! - shared by all: `decode.rs` (YAML → raw types, unknown keys), `expand.rs` (`${VAR}`,
//!   `${file:…}` and keeping secrets out of messages), `files.rs` (reading files), `values.rs`
//!   (addresses, durations, host names).

use std::path::{Path, PathBuf};

use serde_yaml::Value;

mod admin;
mod assertion;
mod auth;
mod certificates;
mod cookies;
mod decode;
mod expand;
mod files;
mod headers;
mod listen;
mod login;
mod oidc;
mod portals;
mod rate_limits;
mod reload;
mod requests;
mod server;
mod session;
mod state;
mod timeouts;
mod tls;
mod tls_profile;
mod trusted_proxies;
mod upstream;
mod values;

use crate::positions::{Position, Positions};
use crate::{raw, Config, ConfigError, Problem, Timeouts};

pub(crate) const TOP_LEVEL_KEYS: &[&str] = &[
    "certificate_login",
    "login",
    "session",
    "oidc",
    "providers",
    "assertion",
    "listen",
    "admin",
    "tls",
    "trusted_proxies",
    "timeouts",
    "headers",
    "cookies",
    "server",
    "rate_limits",
    "portals",
    "state",
    "reload",
];

struct Checker<'a> {
    positions: Positions,
    problems: Vec<Problem>,
    /// Relative file paths in the config are relative to this directory.
    base_dir: PathBuf,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// The values read from `${file:…}`: no problem message may repeat one.
    secrets: Vec<String>,
    /// Every file read, stamped before it was read.
    sources: Vec<crate::sources::SourceFile>,
    /// The provider a portal without `methods` allows (with certificates): the first of
    /// `providers:`, else `rekono`.
    default_provider: String,
}

pub(crate) fn check(
    path: &Path,
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
) -> Result<Config, ConfigError> {
    let mut checker = Checker {
        positions: Positions::index(text),
        problems: Vec::new(),
        base_dir: path.parent().map(Path::to_owned).unwrap_or_default(),
        env,
        secrets: Vec::new(),
        sources: Vec::new(),
        default_provider: crate::DEFAULT_PROVIDER_ID.to_owned(),
    };
    let config = checker.config(path, text);
    match config {
        Some(mut config) if checker.problems.is_empty() => {
            config.sources = crate::sources::dedup(checker.sources);
            Ok(config)
        }
        _ => {
            let mut problems = checker.problems;
            for p in &mut problems {
                p.message = expand::redact(&p.message, &checker.secrets);
            }
            problems.sort_by_key(|p| (p.position.line, p.position.col));
            Err(ConfigError {
                file: path.to_owned(),
                problems,
            })
        }
    }
}

/// `value` as a path: relative ones are relative to `base_dir` (the config file's directory).
fn resolve(base_dir: &Path, value: &str) -> PathBuf {
    let path = Path::new(value);
    if path.is_absolute() {
        path.to_owned()
    } else {
        base_dir.join(path)
    }
}

fn join(parent: &str, key: &str) -> String {
    if parent.is_empty() {
        key.to_owned()
    } else {
        format!("{parent}.{key}")
    }
}

impl Checker<'_> {
    fn problem(&mut self, key: &str, message: impl Into<String>) {
        let position = self.positions.locate(key);
        self.problems.push(Problem {
            position,
            key: key.to_owned(),
            message: message.into(),
        });
    }

    fn config(&mut self, path: &Path, text: &str) -> Option<Config> {
        let mut doc: Value = match serde_yaml::from_str(text) {
            Ok(doc) => doc,
            Err(e) => {
                let position = e
                    .location()
                    .map(|l| Position {
                        line: l.line(),
                        col: l.column(),
                    })
                    .unwrap_or(Position { line: 1, col: 1 });
                self.problems.push(Problem {
                    position,
                    key: String::new(),
                    message: format!("not valid YAML: {e}"),
                });
                return None;
            }
        };
        self.expand_env(&mut doc, "");
        let Value::Mapping(top) = doc else {
            self.problem(
                "",
                "the file must be a mapping with listen, admin, tls and portals",
            );
            return None;
        };
        for key in top.keys() {
            match key.as_str() {
                Some(k) if TOP_LEVEL_KEYS.contains(&k) => {}
                Some(k) => self.problem(
                    k,
                    format!("unknown key; known keys: {}", TOP_LEVEL_KEYS.join(", ")),
                ),
                None => self.problem("", "top-level keys must be strings"),
            }
        }

        let listen = self.required::<raw::Listen>(&top, "listen");
        let admin = self.required::<raw::Admin>(&top, "admin");
        let tls = self.required::<raw::Tls>(&top, "tls");
        let trusted = self
            .optional::<Vec<String>>(&top, "trusted_proxies")
            .unwrap_or_default();
        let timeouts = self
            .optional::<raw::Timeouts>(&top, "timeouts")
            .unwrap_or_default();
        let headers = self
            .optional::<raw::Headers>(&top, "headers")
            .unwrap_or_default();
        let cookies = self
            .optional::<raw::Cookies>(&top, "cookies")
            .unwrap_or_default();
        let server = self
            .optional::<raw::Server>(&top, "server")
            .unwrap_or_default();
        let rate_limits = self
            .optional::<raw::RateLimits>(&top, "rate_limits")
            .unwrap_or_default();
        let reload = self
            .optional::<raw::Reload>(&top, "reload")
            .unwrap_or_default();
        let reload = self.reload(&reload);
        let state: Option<Option<crate::State>> = match top.get("state") {
            Some(value) => match self.decode::<raw::State>(value, "state") {
                Some(raw) => self.state(raw).map(Some),
                None => None,
            },
            None => Some(None),
        };

        let listen = listen.and_then(|l| self.listen(l));
        let admin = admin.and_then(|a| self.admin(a, listen.as_ref()));
        let tls = tls.and_then(|t| self.tls(t));
        let trusted_proxies = self.trusted_proxies(trusted);
        let timeouts = self.timeouts(&timeouts, "timeouts", Timeouts::default());
        let headers = self.headers(headers);
        let cookies = self.cookies(cookies);
        let server = self.server(server);
        let rate_limits = self.rate_limits(rate_limits);
        if let Some(first) = auth::first_provider_id(&top) {
            self.default_provider = first;
        }
        let portals = self.portals(top.get("portals"), tls.as_ref(), timeouts);
        let needs_auth = portals
            .as_ref()
            .is_some_and(|p| p.iter().any(|p| !p.danger_no_authentication));
        let auth = self.auth(&top, needs_auth, tls.as_ref(), portals.as_deref());

        Some(Config {
            source: path.to_owned(),
            listen: listen?,
            admin: admin?,
            tls: tls?,
            trusted_proxies,
            timeouts,
            headers: headers?,
            cookies: cookies?,
            server: server?,
            rate_limits: rate_limits?,
            portals: portals?,
            auth: auth?,
            state: state?,
            reload,
            sources: Vec::new(),
            digest: String::new(),
        })
    }
}
