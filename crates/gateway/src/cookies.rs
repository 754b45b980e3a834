//! The gateway's cookies, in one place: every `Set-Cookie` the gateway writes is built here,
//! every cookie it reads is found here, and here it is decided which names are the gateway's.
//!
//! Host scope (the default): `__Host-` names — `Secure`, `Path=/`, no `Domain` — so a cookie
//! reaches only the host that set it, and no sibling host can plant one (browsers refuse a
//! `__Host-` cookie with a `Domain`). Parent-domain scope (an explicit option): the plain name
//! with `Domain=<parent>`, sent to every host under it.

use http::HeaderMap;
use prehod_config::CookieScope;

/// What browsers demand of a `__Host-` cookie: `Secure`, `Path=/`, no `Domain`.
const HOST_PREFIX: &str = "__Host-";

/// The name a gateway cookie `base` (such as `prehod_session`) has in `scope`.
pub fn name(base: &str, scope: &CookieScope) -> String {
    match scope {
        CookieScope::Host => format!("{HOST_PREFIX}{base}"),
        CookieScope::ParentDomain(_) => base.to_owned(),
    }
}

/// `Set-Cookie` for `name` (as [`name`] gave it) in `scope`, kept for `max_age` seconds.
pub fn set(name: &str, value: &str, max_age: u64, scope: &CookieScope) -> String {
    match scope {
        CookieScope::Host => format!(
            "{name}={value}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        ),
        CookieScope::ParentDomain(domain) => format!(
            "{name}={value}; Domain={domain}; Path=/; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax"
        ),
    }
}

/// `Set-Cookie` that deletes `name` in `scope`.
pub fn clear(name: &str, scope: &CookieScope) -> String {
    set(name, "", 0, scope)
}

/// `Set-Cookie` for a cookie of this host only, under `path` (login attempts on `/oidc/`,
/// the language choice on `/`): never sent anywhere else.
pub fn set_on_path(name: &str, value: &str, path: &str, max_age: u64) -> String {
    format!("{name}={value}; Path={path}; Max-Age={max_age}; Secure; HttpOnly; SameSite=Lax")
}

/// A cookie's value from the `Cookie` headers (the first of that name).
pub fn find<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    pairs(headers).find(|(n, _)| *n == name).map(|(_, v)| v)
}

/// Whether the `Cookie` headers may hold a cookie of the name `name_search` looks for: a
/// cookie's name is part of its header's bytes, so without them [`find`] finds nothing, and
/// its parse of the whole header (~3 000 instructions for a ~550-byte header) is skipped. For
/// a cookie most requests do not carry (a kept form's); `name_search` is built once.
pub fn may_hold(headers: &HeaderMap, name_search: &memchr::memmem::Finder<'_>) -> bool {
    (headers.get_all(http::header::COOKIE).iter()).any(|v| name_search.find(v.as_bytes()).is_some())
}

/// Every `name=value` pair of the `Cookie` headers, in order; a header that is not visible
/// ASCII and a pair without `=` name no cookie.
pub fn pairs(headers: &HeaderMap) -> impl Iterator<Item = (&str, &str)> {
    headers
        .get_all(http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(split_semicolons)
        .filter_map(|c| c.trim().split_once('='))
}

/// `v.split(';')`, each `;` found by the memchr crate's vector search: `str::split` looks for
/// them a word at a time, ~1.3 instructions a byte — ~700 for a ~550-byte session cookie,
/// which is read twice per request (issue 20).
pub fn split_semicolons(v: &str) -> impl Iterator<Item = &str> {
    let mut start = 0;
    memchr::memchr_iter(b';', v.as_bytes())
        .chain(std::iter::once(v.len()))
        .map(move |end| {
            // `;` is ASCII: both ends are on character boundaries.
            let piece = v.get(start..end).unwrap_or_default();
            start = end + 1;
            piece
        })
}

/// Whether a cookie name is one of the gateway's (`prefix`, in any letter case, also behind
/// `__Host-` or `__Secure-`): such cookies never reach a portal, and a portal may never set
/// one. Compared in place: no lower-case copies per cookie.
pub fn is_gateway_name(name: &str, prefix: &str) -> bool {
    let name = name.trim();
    let unprefixed = ["__host-", "__secure-"]
        .iter()
        .find_map(|p| strip_prefix_ignoring_case(name, p))
        .unwrap_or(name);
    strip_prefix_ignoring_case(unprefixed, prefix).is_some()
}

/// `s` without `prefix`, when it starts with it in any ASCII letter case.
fn strip_prefix_ignoring_case<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn split_semicolons_is_str_split() {
        for v in [
            "",
            ";",
            ";;",
            "a",
            "a=1; b=2",
            "a=1;",
            ";a=1",
            " ž=č ; x ;; y=\u{1f600};",
        ] {
            let ours: Vec<&str> = split_semicolons(v).collect();
            let theirs: Vec<&str> = v.split(';').collect();
            assert_eq!(ours, theirs, "{v:?}");
        }
    }

    #[test]
    fn host_cookies_follow_the_host_prefix_rules() {
        let host = CookieScope::Host;
        let n = name("prehod_session", &host);
        assert_eq!(n, "__Host-prehod_session");
        let line = set(&n, "v", 60, &host);
        assert!(line.starts_with("__Host-prehod_session=v; Path=/;"));
        assert!(line.contains("Secure") && !line.contains("Domain"));
        let parent = CookieScope::ParentDomain("bankart.si".into());
        assert_eq!(name("prehod_session", &parent), "prehod_session");
        assert!(set("prehod_session", "v", 60, &parent).contains("Domain=bankart.si; Path=/;"));
        assert!(clear(&n, &host).contains("Max-Age=0"));
    }

    #[test]
    fn pairs_come_from_every_cookie_header_in_order() {
        let mut headers = HeaderMap::new();
        for v in ["a=1; b=2", "noequals; c=3=4", "  d=  "] {
            headers.append(http::header::COOKIE, v.parse().expect("header value"));
        }
        headers.append(
            http::header::COOKIE,
            http::HeaderValue::from_bytes(b"e=\xff").expect("opaque header value"),
        );
        let got: Vec<_> = pairs(&headers).collect();
        assert_eq!(
            got,
            [("a", "1"), ("b", "2"), ("c", "3=4"), ("d", "")],
            "a pair without `=` and a header that is not ASCII name no cookie"
        );
        assert_eq!(find(&headers, "c"), Some("3=4"));
        assert_eq!(find(&headers, "e"), None);
        // Wherever `find` finds a cookie, `may_hold` says it may be there.
        for name in ["a", "b", "c", "d", "e", "noequals", "x", "3", "a=1"] {
            let search = memchr::memmem::Finder::new(name.as_bytes());
            if find(&headers, name).is_some() {
                assert!(may_hold(&headers, &search), "{name}");
            }
            assert_eq!(may_hold(&headers, &search), name != "x", "{name}");
        }
    }

    #[test]
    fn gateway_names_in_every_spelling() {
        for n in [
            "prehod_session",
            "PREHOD_SESSION",
            "__Host-prehod_session",
            "__host-PREHOD_post",
            "__Secure-prehod_lang",
        ] {
            assert!(is_gateway_name(n, "prehod"), "{n}");
        }
        for n in [
            "app_cookie",
            "__Host-app",
            "xprehod",
            "__Host-",
            "préhod",
            "__Host-prehó",
        ] {
            assert!(!is_gateway_name(n, "prehod"), "{n}");
        }
        assert!(is_gateway_name(" __SECURE-Prehod_x ", "prehod"));
    }
}
