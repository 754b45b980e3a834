//! The login host's request handling (`prehod_gateway::login::handle`, the whole gateway
//! crate): any method, path, query, cookies, headers and form body. Nothing panics; every
//! answer has a real status; every header value it sets is a valid one (an attacker's bytes
//! once reached a `Set-Cookie`, making a 500); and every redirect stays on the gateway's own
//! hosts (no open redirect).
#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use libfuzzer_sys::{arbitrary, fuzz_target};
use prehod_gateway::login::handle;
use prehod_gateway::request::Request;

#[derive(arbitrary::Arbitrary, Debug)]
struct Input<'a> {
    method: u8,
    path: &'a str,
    query: &'a str,
    cookies: Vec<(&'a str, &'a str)>,
    headers: Vec<(&'a [u8], &'a [u8])>,
    body: &'a [u8],
}

struct World {
    shared: prehod_gateway::Shared,
    runtime: tokio::runtime::Runtime,
    _dir: tempfile::TempDir,
}

/// The hosts a redirect may name: the login host, the portals and the OpenID Provider.
const HOSTS: &[&str] = &[
    "login.bankart.localhost",
    "bips.bankart.localhost",
    "bws.bankart.localhost",
    "rekono.localhost",
];

/// A gateway config with login and two portals; the OpenID Provider is unreachable, so no
/// request leaves the process.
fn world() -> &'static World {
    static W: OnceLock<World> = OnceLock::new();
    W.get_or_init(|| {
        let dir = tempfile::tempdir().expect("temp dir");
        prehod_devpki::generate(
            dir.path(),
            &prehod_devpki::dev_server_names("bankart.localhost"),
        )
        .expect("dev PKI");
        let key = std::fs::read_to_string(dir.path().join("session.key")).expect("session key");
        let yaml = format!(
            "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\n\
tls:\n  certificates:\n    - cert: server.crt\n      key: server.key\n\
login:\n  host: login.bankart.localhost\n  url: https://login.bankart.localhost:8443\n\
session:\n  keys: [\"{}\"]\n\
oidc:\n  issuer: https://rekono.localhost:1/op\n  client_id: fuzz\n  client_secret: fuzz\n\
assertion:\n  key: assertion.key\n\
portals:\n  bips:\n    host: bips.bankart.localhost\n    min_level: 20\n    upstream:\n      urls: [http://127.0.0.1:1]\n  \
bws:\n    host: bws.bankart.localhost\n    min_level: 30\n    upstream:\n      urls: [http://127.0.0.1:1]\n",
            key.trim()
        );
        let config =
            prehod_config::Config::from_text(&dir.path().join("proxy.yaml"), &yaml, |_| None)
                .expect("the fuzz target's config loads");
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let shared = runtime
            .block_on(async { prehod_gateway::Shared::new(config) })
            .expect("the gateway's state builds");
        World {
            shared,
            runtime,
            _dir: dir,
        }
    })
}

fn stays_home(location: &str) -> bool {
    if let Some(rest) = location.strip_prefix('/') {
        // A path on this host; `//x` and `/\x` would be another host to a browser.
        return !rest.starts_with('/') && !rest.starts_with('\\');
    }
    url::Url::parse(location).is_ok_and(|u| {
        u.scheme() == "https" && u.host_str().is_some_and(|h| HOSTS.contains(&h))
    })
}

fuzz_target!(|input: Input<'_>| {
    let w = world();
    let Some(auth) = w.shared.auth.as_ref() else {
        panic!("login is configured");
    };
    let method = ["GET", "POST", "HEAD", "PUT"][usize::from(input.method % 4)];
    let uri = if input.query.is_empty() {
        input.path.to_owned()
    } else {
        format!("{}?{}", input.path, input.query)
    };
    let Ok(mut header) = pingora::http::RequestHeader::build(method, uri.as_bytes(), None) else {
        return;
    };
    if !header.uri.path().starts_with('/') {
        return;
    }
    for (name, value) in &input.headers {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name),
            http::HeaderValue::from_bytes(value),
        ) {
            let _ = header.append_header(name, value);
        }
    }
    if !input.cookies.is_empty() {
        let cookie = input
            .cookies
            .iter()
            .map(|(n, v)| format!("{n}={v}"))
            .collect::<Vec<_>>()
            .join("; ");
        if let Ok(value) = http::HeaderValue::from_str(&cookie) {
            let _ = header.append_header(http::header::COOKIE, value);
        }
    }
    let req = Request::new(&header.method, &header.uri, &header.headers, "fuzz")
        .with_body(Bytes::copy_from_slice(input.body));
    let resp = w.runtime.block_on(handle(&w.shared, auth, req));
    assert!((200..600).contains(&resp.status), "status {}", resp.status);
    for (name, value) in &resp.headers {
        assert!(
            http::HeaderValue::from_str(value).is_ok(),
            "{name}: {value:?} is no valid header value"
        );
        if *name == "location" {
            assert!(stays_home(value), "a redirect off the gateway: {value}");
        }
    }
});
