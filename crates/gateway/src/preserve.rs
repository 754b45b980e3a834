//! Keeping a form POST that arrived without a session: it is sealed into a short-lived cookie,
//! and after the login the first GET of the same URL answers with a page that sends the form
//! again (by itself with JavaScript, with one click without).
//!
//! Only `application/x-www-form-urlencoded` bodies up to [`MAX_BODY`] bytes are kept: a cookie
//! holds at most 4 KiB, and any replica must be able to give the form back.

use serde::{Deserialize, Serialize};

use crate::pages::escape;
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
}

/// The sealed cookie value for a form body, or `None` when it cannot be kept.
pub fn seal(
    sealer: &Sealer,
    url: &str,
    content_type: Option<&str>,
    body: &[u8],
    now: u64,
) -> Option<String> {
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
    let json = serde_json::to_vec(&Preserved {
        url: url.to_owned(),
        body,
        created: now,
    })
    .ok()?;
    sealer.seal(PURPOSE, &json).ok()
}

/// The preserved form for `url`, if the cookie holds one that is fresh and for this URL.
pub fn open(sealer: &Sealer, cookie: &str, url: &str, now: u64) -> Option<Preserved> {
    let plain = sealer.open(PURPOSE, cookie).ok()?;
    let p: Preserved = serde_json::from_slice(&plain).ok()?;
    (p.url == url && now.saturating_sub(p.created) <= LIFETIME).then_some(p)
}

/// The CSP of the re-submit page: only the one script, forms only to the same origin.
pub fn content_security_policy() -> String {
    use base64::Engine;
    use sha2::Digest;
    let hash =
        base64::engine::general_purpose::STANDARD.encode(sha2::Sha256::digest(SCRIPT.as_bytes()));
    format!("default-src 'none'; script-src 'sha256-{hash}'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
}

/// A page whose form posts the same fields to the same URL.
pub fn resubmit_page(p: &Preserved) -> String {
    let fields: String = url::form_urlencoded::parse(p.body.as_bytes())
        .map(|(k, v)| {
            format!(
                "<input type=\"hidden\" name=\"{}\" value=\"{}\">",
                escape(&k),
                escape(&v)
            )
        })
        .collect();
    format!(
        "<!doctype html>\n<html lang=\"sl\"><head><meta charset=\"utf-8\"><title>Prijava uspela — Bankart</title></head>\
<body style=\"font-family:system-ui,sans-serif;margin:3rem\">\
<form id=\"resubmit\" method=\"post\" action=\"{action}\" enctype=\"application/x-www-form-urlencoded\">{fields}\
<p>Prijava je uspela. Pošiljamo obrazec, ki ste ga izpolnili pred prijavo. / You are logged in. Sending the form you filled in before.</p>\
<button type=\"submit\" id=\"continue\">Nadaljuj / Continue</button></form><script>{SCRIPT}</script></body></html>\n",
        action = escape(&p.url),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_small_forms_for_their_url_only() {
        let sealer = Sealer::new(&[[3; 32]]);
        let ct = Some("application/x-www-form-urlencoded; charset=UTF-8");
        let cookie = seal(
            &sealer,
            "https://acq.example/pay",
            ct,
            b"amount=10&to=SI56+0100",
            1000,
        )
        .unwrap();
        let p = open(&sealer, &cookie, "https://acq.example/pay", 1010).unwrap();
        assert_eq!(p.body, "amount=10&to=SI56+0100");
        assert!(open(&sealer, &cookie, "https://acq.example/other", 1010).is_none());
        assert!(open(
            &sealer,
            &cookie,
            "https://acq.example/pay",
            1000 + LIFETIME + 1
        )
        .is_none());
        assert!(seal(
            &sealer,
            "u",
            Some("multipart/form-data; boundary=x"),
            b"x",
            0
        )
        .is_none());
        assert!(seal(&sealer, "u", ct, &vec![b'a'; MAX_BODY + 1], 0).is_none());
        let page = resubmit_page(&Preserved {
            url: "https://a/\"x".into(),
            body: "a=%3Cb%3E&c=d".into(),
            created: 0,
        });
        assert!(
            page.contains("value=\"&lt;b&gt;\"") && page.contains("action=\"https://a/&quot;x\"")
        );
        assert!(content_security_policy().contains("script-src 'sha256-"));
    }
}
