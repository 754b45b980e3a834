//! `portals.NAME.http_methods`, `server.body_buffer_*` and the prefixes of `headers.strip`:
//! what a client's request may be.

use http::Method;

use super::session::parse_size;
use super::Checker;
use crate::{BodyBuffers, HttpMethods};

/// Methods no portal may take: `TRACE` (and Microsoft's `TRACK`) echo the request back, cookies
/// and all (cross-site tracing); `CONNECT` asks for a tunnel, which a reverse proxy never opens.
const NEVER: &[(&str, &str)] = &[
    (
        "TRACE",
        "TRACE is never forwarded: it echoes the request, cookies and all, back to the page",
    ),
    (
        "TRACK",
        "TRACK is never forwarded: it echoes the request, cookies and all, back to the page",
    ),
    (
        "CONNECT",
        "CONNECT opens a tunnel; the gateway forwards requests, never tunnels",
    ),
];

impl Checker<'_> {
    /// `http_methods` of the portal at `key`: default when absent.
    pub(super) fn http_methods(
        &mut self,
        raw: Option<Vec<String>>,
        key: &str,
    ) -> Option<HttpMethods> {
        let key = format!("{key}.http_methods");
        let Some(raw) = raw else {
            return Some(HttpMethods::default());
        };
        if raw.is_empty() {
            self.problem(&key, "list at least one method, e.g. [GET, POST]");
            return None;
        }
        let mut ok = true;
        let mut methods: Vec<Method> = Vec::new();
        for (i, name) in raw.iter().enumerate() {
            let item = format!("{key}[{i}]");
            if let Some((_, why)) = NEVER.iter().find(|(m, _)| name.eq_ignore_ascii_case(m)) {
                self.problem(&item, *why);
                ok = false;
                continue;
            }
            match Method::from_bytes(name.as_bytes()) {
                Ok(m) if !name.bytes().any(|b| b.is_ascii_lowercase()) => {
                    if methods.contains(&m) {
                        self.problem(&item, format!("{name} is listed twice"));
                        ok = false;
                    }
                    methods.push(m);
                }
                Ok(_) => {
                    self.problem(
                        &item,
                        format!(
                            "{name:?}: methods are case-sensitive and written in capitals, e.g. {}",
                            name.to_ascii_uppercase()
                        ),
                    );
                    ok = false;
                }
                Err(_) => {
                    self.problem(&item, format!("{name:?} is not an HTTP method"));
                    ok = false;
                }
            }
        }
        ok.then(|| HttpMethods::new(methods))
    }

    /// `server.body_buffer_memory` and `server.body_buffers_per_connection`.
    pub(super) fn body_buffers(
        &mut self,
        memory: Option<&str>,
        per_connection: Option<usize>,
    ) -> Option<BodyBuffers> {
        let defaults = BodyBuffers::default();
        let memory = match memory {
            None => Some(defaults.memory),
            // At least one whole login-host body (64 KiB) for each quarter of the budget.
            Some(v) => match parse_size(v) {
                Some(n) if n >= 256 * 1024 => Some(n),
                Some(_) => {
                    self.problem(
                        "server.body_buffer_memory",
                        format!("{v:?} is too small: at least 256KiB (a quarter of it is one client address's share, and one body may take 64 KiB)"),
                    );
                    None
                }
                None => {
                    self.problem(
                        "server.body_buffer_memory",
                        format!("{v:?} is not a size: write e.g. 16MiB or 512KiB"),
                    );
                    None
                }
            },
        };
        let per_connection = per_connection.unwrap_or(defaults.per_connection);
        if per_connection == 0 {
            self.problem(
                "server.body_buffers_per_connection",
                "must be at least 1 (no connection could send a form to the login host)",
            );
            return None;
        }
        Some(BodyBuffers {
            memory: memory?,
            per_connection,
        })
    }
}

/// A `headers.strip` entry that ends in `*`: the prefix it names, normalised (lower case, `_`
/// and `.` written `-`); `Err` when nothing is before the `*` or it is no header name.
pub(super) fn strip_prefix(entry: &str) -> Option<Result<String, String>> {
    let prefix = entry.strip_suffix('*')?;
    if prefix.is_empty() {
        return Some(Err(
            "\"*\" would remove every header: name a prefix, e.g. X-Bank-*".to_owned(),
        ));
    }
    if http::HeaderName::from_bytes(prefix.as_bytes()).is_err() || prefix.contains('*') {
        return Some(Err(format!("{entry:?} is not a header name prefix")));
    }
    Some(Ok(prefix
        .bytes()
        .map(|b| match b {
            b'_' | b'.' => '-',
            b => char::from(b.to_ascii_lowercase()),
        })
        .collect()))
}
