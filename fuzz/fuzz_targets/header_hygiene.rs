//! Header hygiene (`crates/gateway/src/hygiene.rs`, `cookies.rs` and `text.rs`, compiled in by path: the
//! gateway crate needs pingora) on any request headers: after stripping, no identity header
//! (nor any name under `X-Auth-`) and no gateway cookie is left, whatever the spelling;
//! nothing panics.
#![no_main]

#[allow(dead_code)]
#[path = "../../crates/gateway/src/cookies.rs"]
mod cookies;
#[allow(dead_code)]
#[path = "../../crates/gateway/src/hygiene.rs"]
mod hygiene;
#[allow(dead_code)]
#[path = "../../crates/gateway/src/text.rs"]
mod text;

use std::sync::OnceLock;

use http::{HeaderMap, HeaderName, HeaderValue};
use libfuzzer_sys::{arbitrary, fuzz_target};

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    headers: Vec<(&'a [u8], &'a [u8])>,
    trusted: bool,
    path: &'a str,
}

/// A gateway config with login (so identity headers are configured), loaded once.
fn hygiene() -> &'static hygiene::Hygiene {
    static H: OnceLock<hygiene::Hygiene> = OnceLock::new();
    H.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        prehod_devpki::generate(dir.path(), &prehod_devpki::dev_server_names("bankart.localhost"))
            .expect("dev PKI");
        let key = std::fs::read_to_string(dir.path().join("session.key")).expect("session key");
        let yaml = format!(
            "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\n\
tls:\n  certificates:\n    - cert: server.crt\n      key: server.key\n\
login:\n  host: login.bankart.localhost\nsession:\n  keys: [\"{}\"]\n\
oidc:\n  issuer: https://rekono.localhost:1/op\n  client_id: fuzz\n  client_secret: fuzz\n\
assertion:\n  key: assertion.key\n\
portals:\n  bips:\n    host: bips.bankart.localhost\n    upstream:\n      urls: [http://127.0.0.1:1]\n",
            key.trim()
        );
        let config = prehod_config::Config::from_text(&dir.path().join("proxy.yaml"), &yaml, |_| None)
            .expect("the fuzz target's config loads");
        hygiene::Hygiene::new(&config)
    })
}

fuzz_target!(|input: Input<'_>| {
    let h = hygiene();
    let mut headers = HeaderMap::new();
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) =
            (HeaderName::from_bytes(name), HeaderValue::from_bytes(value))
        {
            headers.append(name, value);
        }
    }
    let _ = hygiene::nominated_framing_header(&headers);
    let strip = h.names_to_strip(&headers, input.trusted);
    let mut clean = headers.clone();
    for name in &strip {
        clean.remove(name);
    }
    for name in clean.keys() {
        // Every spelling a server behind may read as ours, and every name under the identity
        // prefix (`X-Auth-Groups`), goes.
        let normal = name.as_str().replace(['_', '.'], "-");
        assert!(
            !(normal.starts_with("x-auth-") || normal == "remote-user" || normal == "x-remote-user"),
            "identity header {name} survived"
        );
    }
    if let Some(Some(cookie)) = h.upstream_cookie(&headers) {
        assert!(
            !cookie.contains("prehod_session="),
            "the session cookie went upstream: {cookie}"
        );
    }
    let _ = hygiene::loggable_path(input.path);
    let _ = hygiene::valid_request_id(input.path);
});
