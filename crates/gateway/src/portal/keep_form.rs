//! Keeping a form POST that arrived without a session: it is sealed into a short-lived cookie,
//! and after the login the first GET of the same URL answers with a page that sends the form
//! again (by itself with JavaScript, with one click without).
//!
//! Only `application/x-www-form-urlencoded` bodies up to [`MAX_BODY`] bytes are kept: a cookie
//! holds at most 4 KiB, and any replica must be able to give the form back.
//!
//! A kept form is sent again with the user's session, so it must be the user's own (issue 9,
//! item 1): it is kept only from a navigation of the portal's own pages ([`from_same_origin`]); it carries a
//! random *binding* that goes, in the login page's URL, into the login attempt that follows;
//! the callback of that attempt — completed after the form was kept, for the same URL, by a
//! browser with no session — binds it to the new session ([`bind`]); and only a form bound to
//! the session in hand is ever sent again ([`open`]). Anything else is dropped.

use serde::{Deserialize, Serialize};

use crate::pages::{Field, Lang, Pages};
use prehod_identity::seal::Sealer;

pub const MAX_BODY: usize = 2048;
pub const LIFETIME: u64 = 600;
const PURPOSE: &[u8] = b"prehod preserved post v1";

/// The auto-submit script; its hash is allowed by the page's CSP, nothing else is.
const SCRIPT: &str = "document.getElementById('resubmit').submit();";

#[derive(Debug, Serialize, Deserialize, PartialEq, Eq)]
pub struct Preserved {
    pub url: String,
    pub body: String,
    pub created: u64,
    /// Random; also in the login attempt that may bind the form.
    #[serde(default)]
    pub binding: String,
    /// The session (gateway `sid`) and subject the form was bound to at the login's callback.
    #[serde(default)]
    pub sid: Option<String>,
    #[serde(default)]
    pub sub: Option<String>,
}

/// Whether a request is a navigation from the portal's own pages (`origin`: its
/// `https://host[:port]`), the only kind whose form is kept: `Sec-Fetch-Site: same-origin`;
/// without that header, an `Origin` — else a `Referer` — of that very origin. Anything else,
/// including `same-site` (a sibling host, another portal), `cross-site`, `none` and no
/// evidence at all, is not.
pub fn from_same_origin(headers: &http::HeaderMap, origin: &str) -> bool {
    let value = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    // Same origin only: `same-site` includes every host under the parent domain — a sibling
    // host the gateway does not guard, or another portal — and those may not plant a form.
    if let Some(site) = value("sec-fetch-site") {
        return site.eq_ignore_ascii_case("same-origin");
    }
    let origin = origin.trim_end_matches('/');
    if let Some(o) = value("origin") {
        return o.trim_end_matches('/').eq_ignore_ascii_case(origin);
    }
    value("referer").is_some_and(|r| {
        r.get(..origin.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(origin))
            && matches!(
                r.as_bytes().get(origin.len()),
                None | Some(b'/' | b'?' | b'#')
            )
    })
}

/// A binding is what [`seal`] made: base64url, 32 characters. Anything else in a URL is ignored.
pub fn is_binding(value: &str) -> bool {
    value.len() == 32
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

/// The sealed cookie value for a form body and its binding, or `None` when it cannot be kept.
pub fn seal(
    sealer: &Sealer,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    now: u64,
) -> Option<(String, String)> {
    let form = content_type.is_some_and(|c| {
        c.split(';').next().is_some_and(|t| {
            t.trim()
                .eq_ignore_ascii_case("application/x-www-form-urlencoded")
        })
    });
    if !form || body.len() > MAX_BODY {
        return None;
    }
    let body = std::str::from_utf8(body).ok()?.to_owned();
    let binding = prehod_identity::random_id();
    let p = Preserved {
        url: url.to_owned(),
        body,
        created: now,
        binding: binding.clone(),
        sid: None,
        sub: None,
    };
    Some((seal_preserved(sealer, &p)?, binding))
}

fn seal_preserved(sealer: &Sealer, p: &Preserved) -> Option<String> {
    let json = serde_json::to_vec(p).ok()?;
    sealer.seal(PURPOSE, &json).ok()
}

fn unseal(sealer: &Sealer, cookie: &str, now: u64) -> Option<Preserved> {
    let plain = sealer.open(PURPOSE, cookie).ok()?;
    let p: Preserved = serde_json::from_slice(&plain).ok()?;
    (now.saturating_sub(p.created) <= LIFETIME).then_some(p)
}

/// At a login's callback: the cookie value that binds the kept form to the new session, when
/// the login attempt carried the form's `binding`, started no earlier than the form was kept,
/// returns to the form's URL, and the form was not bound before. `None`: drop the form.
pub fn bind(
    sealer: &Sealer,
    cookie: &str,
    binding: &str,
    return_to: &str,
    attempt_created: u64,
    session: &prehod_identity::session::Session,
    now: u64,
) -> Option<String> {
    let mut p = unseal(sealer, cookie, now)?;
    let same = p.binding.len() == binding.len()
        && p.binding
            .bytes()
            .zip(binding.bytes())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b))
            == 0;
    if !same
        || p.binding.is_empty()
        || p.url != return_to
        || p.created > attempt_created
        || p.sid.is_some()
    {
        return None;
    }
    p.sid = Some(session.sid.clone());
    p.sub = Some(session.sub.clone());
    seal_preserved(sealer, &p)
}

/// The preserved form for `url`, if the cookie holds one that is fresh, for this URL, and bound
/// to this very session (the one its login made) and subject.
pub fn open(
    sealer: &Sealer,
    cookie: &str,
    url: &str,
    session: &prehod_identity::session::Session,
    now: u64,
) -> Option<Preserved> {
    let p = unseal(sealer, cookie, now)?;
    let bound = p.sid.as_deref() == Some(session.sid.as_str())
        && p.sub.as_deref() == Some(session.sub.as_str());
    (p.url == url && bound).then_some(p)
}

/// The CSP of the re-submit page: only the one script, forms only to the same origin.
pub fn content_security_policy() -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT.as_bytes()));
    format!("default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

/// A page whose form posts the same fields to the same URL, in `lang`.
pub fn resubmit_page(pages: &Pages, lang: Lang, p: &Preserved) -> String {
    let fields: Vec<Field> = url::form_urlencoded::parse(p.body.as_bytes())
        .map(|(k, v)| Field {
            name: k.into_owned(),
            value: v.into_owned(),
        })
        .collect();
    pages.resubmit(lang, &p.url, &fields, SCRIPT)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(sid: &str, sub: &str) -> prehod_identity::session::Session {
        crate::testing::rekono_session(sid, sub, 20)
    }

    #[test]
    fn a_form_is_sent_again_only_once_bound_to_the_session_of_its_own_login() {
        let sealer = Sealer::new(&[[3; 32]]);
        let ct = Some("application/x-www-form-urlencoded; charset=UTF-8");
        let url = "https://acq.example/pay";
        let (cookie, binding) = seal(&sealer, url, ct, b"amount=10&to=SI56+0100", 1000).unwrap();
        assert!(is_binding(&binding));
        let alice = session("sid-a", "alice");
        // Kept, not yet bound: never sent again, whoever has a session.
        assert!(open(&sealer, &cookie, url, &alice, 1010).is_none());
        // A login attempt without the binding, with another one, started before the form was
        // kept, or returning elsewhere: not bound.
        let other = prehod_identity::random_id();
        assert!(bind(&sealer, &cookie, &other, url, 1005, &alice, 1010).is_none());
        assert!(bind(&sealer, &cookie, "", url, 1005, &alice, 1010).is_none());
        assert!(bind(&sealer, &cookie, &binding, url, 999, &alice, 1010).is_none());
        assert!(bind(
            &sealer,
            &cookie,
            &binding,
            "https://acq.example/x",
            1005,
            &alice,
            1010
        )
        .is_none());
        assert!(bind(
            &sealer,
            &cookie,
            &binding,
            url,
            1005,
            &alice,
            1000 + LIFETIME + 1
        )
        .is_none());
        // The login it led to: bound to that session and subject only.
        let bound = bind(&sealer, &cookie, &binding, url, 1005, &alice, 1010).unwrap();
        let p = open(&sealer, &bound, url, &alice, 1011).unwrap();
        assert_eq!(p.body, "amount=10&to=SI56+0100");
        assert!(open(&sealer, &bound, "https://acq.example/other", &alice, 1011).is_none());
        assert!(open(&sealer, &bound, url, &session("sid-b", "alice"), 1011).is_none());
        assert!(open(&sealer, &bound, url, &session("sid-a", "mallory"), 1011).is_none());
        assert!(open(&sealer, &bound, url, &alice, 1000 + LIFETIME + 1).is_none());
        // Bound once, never again to another session.
        let mallory = session("sid-m", "mallory");
        assert!(bind(&sealer, &bound, &binding, url, 1005, &mallory, 1012).is_none());
        assert!(seal(
            &sealer,
            "u",
            Some("multipart/form-data; boundary=x"),
            b"x",
            0
        )
        .is_none());
        assert!(seal(&sealer, "u", ct, &vec![b'a'; MAX_BODY + 1], 0).is_none());
        let pages = Pages::new(None, "h@b").unwrap();
        let page = resubmit_page(
            &pages,
            Lang::En,
            &Preserved {
                url: "https://a/\"x".into(),
                body: "a=%3Cb%3E&c=d".into(),
                created: 0,
                binding: String::new(),
                sid: None,
                sub: None,
            },
        );
        assert!(
            page.contains("value=\"&lt;b&gt;\"")
                && page.contains("action=\"https:&#x2f;&#x2f;a&#x2f;&quot;x\""),
            "{page}"
        );
        // The script the CSP's hash admits, byte for byte.
        assert!(page.contains(&format!("<script>{SCRIPT}</script>")));
        assert!(page.contains("<html lang=\"en\""));
        assert!(content_security_policy().contains("script-src 'sha256-"));
    }

    #[test]
    fn only_a_same_site_navigation_keeps_its_form() {
        let portal = "https://acq.example";
        let h = |pairs: &[(&'static str, &'static str)]| {
            let mut m = http::HeaderMap::new();
            for (k, v) in pairs {
                m.insert(*k, http::HeaderValue::from_static(v));
            }
            m
        };
        for yes in [
            h(&[("sec-fetch-site", "same-origin")]),
            h(&[("origin", "https://acq.example")]),
            h(&[("referer", "https://acq.example/form")]),
        ] {
            assert!(from_same_origin(&yes, portal), "{yes:?}");
        }
        for no in [
            h(&[("sec-fetch-site", "cross-site")]),
            h(&[("sec-fetch-site", "none")]),
            // A sibling host or another portal (found in review).
            h(&[("sec-fetch-site", "same-site")]),
            h(&[("origin", "https://b2b.example")]),
            h(&[("referer", "https://acq.example.evil/")]),
            // The browser's own word wins over an Origin or Referer.
            h(&[
                ("sec-fetch-site", "cross-site"),
                ("origin", "https://acq.example"),
            ]),
            h(&[("origin", "https://evil.example")]),
            h(&[("origin", "null")]),
            h(&[
                ("origin", "https://evil.example"),
                ("referer", "https://acq.example/"),
            ]),
            h(&[("referer", "https://evil.example/acq.example/")]),
            h(&[]),
        ] {
            assert!(!from_same_origin(&no, portal), "{no:?}");
        }
    }
}
