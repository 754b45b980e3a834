//! `session`: timeouts, cookie keys and scope, the session cache and the revocation list.

use super::Checker;
use crate::{raw, Portal};

impl Checker<'_> {
    pub(super) fn session(
        &mut self,
        raw: raw::Session,
        portals: Option<&[Portal]>,
    ) -> Option<crate::SessionSettings> {
        let idle = self
            .duration(raw.idle_timeout.as_ref(), "session.idle_timeout")
            .unwrap_or(std::time::Duration::from_secs(30 * 60));
        let absolute = self
            .duration(raw.absolute_timeout.as_ref(), "session.absolute_timeout")
            .unwrap_or(std::time::Duration::from_secs(10 * 3600));
        if idle > absolute {
            self.problem(
                "session.idle_timeout",
                "must not be longer than session.absolute_timeout",
            );
        }
        let fresh_login_for = self
            .duration(raw.fresh_login_for.as_ref(), "session.fresh_login_for")
            .unwrap_or(std::time::Duration::from_secs(720 * 3600));
        if fresh_login_for < absolute {
            self.problem(
                "session.fresh_login_for",
                "must not be shorter than session.absolute_timeout (a Rekono single sign-on from before an end of sessions could log in again while sessions it ended still count)",
            );
        }
        let mut keys = Vec::new();
        if raw.keys.is_empty() {
            self.problem(
                "session.keys",
                "at least one key is needed (32 random bytes, base64)",
            );
        }
        for (i, k) in raw.keys.iter().enumerate() {
            match decode_key(k) {
                Some(key) => keys.push(key),
                // The message never repeats the value: it is a secret.
                None => self.problem(
                    &format!("session.keys[{i}]"),
                    "not 32 bytes of base64 (make one with: openssl rand -base64 32)",
                ),
            }
        }
        let domain = raw
            .cookie_domain
            .map(|d| d.trim_start_matches('.').to_ascii_lowercase());
        let scope = match (raw.cookie_scope.as_deref().unwrap_or("host"), domain) {
            ("host", None) => crate::CookieScope::Host,
            ("host", Some(_)) => {
                self.problem(
                    "session.cookie_domain",
                    "applies only to `cookie_scope: parent_domain`; session cookies are host-only by default (single sign-on goes through the login host)",
                );
                return None;
            }
            ("parent_domain", Some(domain)) => {
                for p in portals.into_iter().flatten() {
                    if !(p.host == domain || p.host.ends_with(&format!(".{domain}"))) {
                        self.problem(
                            "session.cookie_domain",
                            format!("portal {} ({}) is not under {domain}: its users could not log in once for all", p.name, p.host),
                        );
                    }
                }
                crate::CookieScope::ParentDomain(domain)
            }
            ("parent_domain", None) => {
                self.problem(
                    "session.cookie_domain",
                    "`cookie_scope: parent_domain` needs the parent domain (e.g. bankart.si)",
                );
                return None;
            }
            (other, _) => {
                self.problem(
                    "session.cookie_scope",
                    format!("{other:?} is not one of: host, parent_domain"),
                );
                return None;
            }
        };
        let revocation_file = raw.revocation_file.as_deref().map(std::path::PathBuf::from);
        if let Some(path) = &revocation_file {
            if !path.is_absolute() {
                self.problem(
                    "session.revocation_file",
                    format!("{} is not an absolute path", path.display()),
                );
            } else if !path.parent().is_some_and(std::path::Path::is_dir) {
                self.problem(
                    "session.revocation_file",
                    format!("{}: its directory does not exist", path.display()),
                );
            }
        }
        (keys.len() == raw.keys.len() && !keys.is_empty()).then_some(())?;
        Some(crate::SessionSettings {
            cookie_scope: scope,
            idle_timeout: idle,
            absolute_timeout: absolute,
            keys,
            cache_entries: raw.cache_entries.unwrap_or(100_000),
            fresh_login_for,
            revocation_file,
            max_revocations: match raw.max_revocations {
                None => 1_000_000,
                Some(n) if n > 0 => n,
                Some(_) => {
                    self.problem(
                        "session.max_revocations",
                        "must be at least 1 (the default is 1000000, about 80 MB)",
                    );
                    return None;
                }
            },
            cache_memory: match raw.cache_memory.as_deref() {
                None => 64 * 1024 * 1024,
                Some(v) => match parse_size(v) {
                    Some(n) if n > 0 => n,
                    _ => {
                        self.problem(
                            "session.cache_memory",
                            format!("{v:?} is not a size: write e.g. 64MiB or 512KiB"),
                        );
                        return None;
                    }
                },
            },
        })
    }
}

/// `512KiB`, `64MiB`, `1GiB` or plain bytes.
pub(super) fn parse_size(s: &str) -> Option<u64> {
    let s = s.trim();
    let split = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
    let (n, unit) = s.split_at(split);
    let n: u64 = n.parse().ok()?;
    let scale = match unit.trim() {
        "" | "B" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        _ => return None,
    };
    n.checked_mul(scale)
}

/// A 32-byte key written in base64 (standard or URL-safe, padded or not).
fn decode_key(s: &str) -> Option<[u8; 32]> {
    use base64::Engine;
    let s = s.trim();
    let engines = [
        base64::engine::general_purpose::STANDARD,
        base64::engine::general_purpose::URL_SAFE,
    ];
    let unpadded = s.trim_end_matches('=');
    engines
        .iter()
        .find_map(|e| e.decode(s).ok())
        .or_else(|| {
            base64::engine::general_purpose::STANDARD_NO_PAD
                .decode(unpadded)
                .ok()
        })
        .or_else(|| {
            base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(unpadded)
                .ok()
        })
        .and_then(|bytes| bytes.try_into().ok())
}
