//! `state`: the Redis server the replicas share revocations through.

use super::Checker;
use crate::raw;

impl Checker<'_> {
    /// `state:`; `None` when a problem was reported.
    pub(super) fn state(&mut self, raw: raw::State) -> Option<crate::State> {
        let mut ok = true;
        let url = match url::Url::parse(&raw.url) {
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
            Ok(u) => Some(u),
            Err(e) => {
                // The URL may hold a password: not repeated here.
                self.problem("state.url", format!("not a URL: {e}"));
                None
            }
        };
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
        let ca = match raw.tls.and_then(|t| t.ca) {
            Some(path) => {
                if url.as_ref().is_some_and(|u| u.scheme() != "rediss") {
                    self.problem(
                        "state.tls.ca",
                        "only for a TLS server: write the URL as rediss://",
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
        match (url, timeout, ok) {
            (Some(url), Some(timeout), true) => Some(crate::State {
                url: url.to_string(),
                key_prefix,
                ca,
                timeout,
            }),
            _ => None,
        }
    }
}
