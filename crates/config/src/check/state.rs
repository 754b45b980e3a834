//! `state:`: the Redis the replicas share, as one server (`url`) or as the master that
//! Sentinels name (`sentinel`), with its credentials, TLS CA, key prefix and timeout.
//!
//! No message repeats a URL or a password: either may hold a secret.

use std::collections::HashSet;

use super::Checker;
use crate::{raw, Sentinel, State, StateServer};

/// The sentinels' port when a URL names none.
const SENTINEL_PORT: u16 = 26379;

impl Checker<'_> {
    /// `state:`; `None` when a problem was reported.
    pub(super) fn state(&mut self, raw: raw::State) -> Option<State> {
        let mut ok = true;
        let server = match (raw.url, raw.sentinel) {
            (Some(url), None) => self.state_url(&url).map(StateServer::Url),
            (None, Some(sentinel)) => self.state_sentinel(sentinel).map(StateServer::Sentinel),
            (Some(_), Some(_)) => {
                self.problem(
                    "state.sentinel",
                    "give either url (one Redis server) or sentinel (the sentinels of a replicated one), not both",
                );
                None
            }
            (None, None) => {
                self.problem(
                    "state",
                    "give url (one Redis server: redis://HOST:PORT) or sentinel (master: NAME and the sentinels' urls)",
                );
                None
            }
        };
        let username = self.credential(raw.username, "state.username");
        let password = self.credential(raw.password, "state.password");
        if username.is_some() && password.is_none() {
            self.problem("state.username", "needs state.password as well");
            ok = false;
        }
        if let Some(StateServer::Url(url)) = &server {
            // The URL's own credentials stay valid; given twice they would contradict.
            if let Ok(u) = url::Url::parse(url) {
                if u.password().is_some() && password.is_some() {
                    self.problem(
                        "state.password",
                        "state.url holds a password already: give it in one place",
                    );
                    ok = false;
                }
                if !u.username().is_empty() && username.is_some() {
                    self.problem(
                        "state.username",
                        "state.url names a user already: give it in one place",
                    );
                    ok = false;
                }
            }
        }
        let key_prefix = raw.key_prefix.unwrap_or_else(|| "prehod:".to_owned());
        if key_prefix.is_empty()
            || key_prefix.len() > 64
            || !key_prefix.bytes().all(|b| b.is_ascii_graphic())
        {
            self.problem(
                "state.key_prefix",
                "must be 1 to 64 visible ASCII characters, e.g. \"prehod:\"",
            );
            ok = false;
        }
        let tls = match &server {
            Some(StateServer::Url(url)) => Some(url.starts_with("rediss://")),
            Some(StateServer::Sentinel(s)) => Some(s.tls),
            None => None,
        };
        let ca = match raw.tls.and_then(|t| t.ca) {
            Some(path) => {
                if tls == Some(false) {
                    self.problem(
                        "state.tls.ca",
                        "only for a TLS server: write the URL as rediss:// (the sentinels' URLs too)",
                    );
                    ok = false;
                }
                self.certificates_pem(&path, "state.tls.ca", "Redis CA")
                    .and_then(|(p, certs)| {
                        let mut pem = Vec::new();
                        for c in certs {
                            match c.to_pem() {
                                Ok(b) => pem.extend_from_slice(&b),
                                Err(e) => {
                                    self.problem("state.tls.ca", format!("{}: {e}", p.display()));
                                    return None;
                                }
                            }
                        }
                        Some(pem)
                    })
                    .or_else(|| {
                        ok = false;
                        None
                    })
            }
            None => None,
        };
        let timeout = match raw.timeout.as_ref() {
            Some(t) => self.duration(Some(t), "state.timeout").or_else(|| {
                ok = false;
                None
            }),
            None => Some(std::time::Duration::from_millis(500)),
        };
        match (server, timeout, ok) {
            (Some(server), Some(timeout), true) => Some(State {
                server,
                username,
                password,
                key_prefix,
                ca,
                timeout,
            }),
            _ => None,
        }
    }

    /// `state.url`, checked; the string as given (it may hold a password).
    fn state_url(&mut self, raw: &str) -> Option<String> {
        match url::Url::parse(raw) {
            Ok(u) if !matches!(u.scheme(), "redis" | "rediss") => {
                self.problem(
                    "state.url",
                    format!(
                        "scheme {:?} is not supported: write redis://HOST:PORT or rediss://HOST:PORT (TLS)",
                        u.scheme()
                    ),
                );
                None
            }
            Ok(u) if u.host_str().is_none_or(str::is_empty) => {
                self.problem("state.url", "names no host: write redis://HOST:PORT");
                None
            }
            Ok(u) if u.fragment().is_some() => {
                // The client reads `#insecure` as "do not verify the server's certificate".
                self.problem(
                    "state.url",
                    "must not have a #fragment (the Redis client would read #insecure as: do not verify the server)",
                );
                None
            }
            Ok(u) => Some(u.to_string()),
            Err(e) => {
                // The URL may hold a password: not repeated here.
                self.problem("state.url", format!("not a URL: {e}"));
                None
            }
        }
    }

    /// `state.sentinel`; `None` when a problem was reported.
    fn state_sentinel(&mut self, raw: raw::StateSentinel) -> Option<Sentinel> {
        let mut ok = true;
        if raw.master.is_empty()
            || raw.master.len() > 128
            || !raw.master.bytes().all(|b| b.is_ascii_graphic())
        {
            self.problem(
                "state.sentinel.master",
                "must be the master's name as the sentinels know it (sentinel monitor NAME …): 1 to 128 visible ASCII characters",
            );
            ok = false;
        }
        if raw.urls.is_empty() {
            self.problem(
                "state.sentinel.urls",
                "lists no sentinel: write [redis://HOST:26379, …] (three or more, on separate machines)",
            );
            ok = false;
        }
        let mut addresses = Vec::new();
        let mut schemes = HashSet::new();
        let mut seen = HashSet::new();
        for (i, raw_url) in raw.urls.iter().enumerate() {
            let key = format!("state.sentinel.urls[{i}]");
            let Some((tls, host, port)) = self.sentinel_url(raw_url, &key) else {
                ok = false;
                continue;
            };
            schemes.insert(tls);
            if !seen.insert((host.clone(), port)) {
                self.problem(&key, format!("{host}:{port} is listed twice"));
                ok = false;
            }
            addresses.push((host, port));
        }
        if schemes.len() > 1 {
            self.problem(
                "state.sentinel.urls",
                "mixes redis:// and rediss://: the sentinels and the servers they name are all reached with TLS or all without",
            );
            ok = false;
        }
        let username = self.credential(raw.username, "state.sentinel.username");
        let password = self.credential(raw.password, "state.sentinel.password");
        if username.is_some() && password.is_none() {
            self.problem(
                "state.sentinel.username",
                "needs state.sentinel.password as well",
            );
            ok = false;
        }
        ok.then(|| Sentinel {
            master: raw.master,
            addresses,
            tls: schemes.contains(&true),
            username,
            password,
        })
    }

    /// One of `state.sentinel.urls`: (TLS, host, port).
    fn sentinel_url(&mut self, raw: &str, key: &str) -> Option<(bool, String, u16)> {
        let u = match url::Url::parse(raw) {
            Ok(u) => u,
            Err(e) => {
                self.problem(
                    key,
                    format!("not a URL: {e}; write redis://HOST:26379 or rediss://HOST:26379"),
                );
                return None;
            }
        };
        let tls = match u.scheme() {
            "redis" => false,
            "rediss" => true,
            other => {
                self.problem(
                    key,
                    format!(
                        "scheme {other:?} is not supported: write redis://HOST:PORT or rediss://HOST:PORT (TLS)"
                    ),
                );
                return None;
            }
        };
        let Some(host) = u.host_str().filter(|h| !h.is_empty()) else {
            self.problem(key, "names no host: write redis://HOST:26379");
            return None;
        };
        let problem = if !u.username().is_empty() || u.password().is_some() {
            Some("must not hold credentials: give the sentinels' user and password in state.sentinel.username and .password")
        } else if !matches!(u.path(), "" | "/") {
            Some("must not name a database (a sentinel has none): write redis://HOST:PORT")
        } else if u.query().is_some() || u.fragment().is_some() {
            Some("must not have a ?query or #fragment: write redis://HOST:PORT")
        } else {
            None
        };
        if let Some(message) = problem {
            self.problem(key, message);
            return None;
        }
        // `[::1]` as the client wants it: without the brackets.
        let host = host
            .trim_start_matches('[')
            .trim_end_matches(']')
            .to_owned();
        Some((tls, host, u.port().unwrap_or(SENTINEL_PORT)))
    }

    /// A user name or password: `None` when not given; an empty one is a problem.
    fn credential(&mut self, value: Option<String>, key: &str) -> Option<String> {
        match value {
            Some(v) if v.is_empty() => {
                let last = key.rsplit('.').next().unwrap_or(key);
                self.problem(
                    key,
                    format!("is empty: leave {last} out, or give it a value"),
                );
                None
            }
            other => other,
        }
    }
}
