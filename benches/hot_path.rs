//! Criterion benches of the per-request pieces: header hygiene, framing and the method gate,
//! cookie filtering, routing, access-log path redaction, and the error page.

use criterion::{criterion_group, criterion_main, Criterion};
use http::{HeaderMap, HeaderName, HeaderValue};
use prehod_config::Config;
use prehod_gateway::hygiene::{loggable_path, Hygiene};
use prehod_gateway::pages::Page;
use prehod_gateway::routing::Router;
use std::hint::black_box;

fn config(pki: &std::path::Path) -> Config {
    let mut text = format!(
        "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\ntls:\n  certificates:\n    - cert: {0}/server.crt\n      key: {0}/server.key\ntrusted_proxies: [10.0.0.0/8]\nportals:\n",
        pki.display()
    );
    for (i, p) in ["acq", "b2b", "bips", "bws", "ecmsweb", "bankomati"]
        .iter()
        .enumerate()
    {
        text.push_str(&format!(
                        "  {p}:\n    host: {p}.bankart.localhost\n    danger_no_authentication: true\n    upstream:\n      urls: [http://127.0.0.1:{}]\n",

            9100 + i
        ));
    }
    Config::from_text(std::path::Path::new("bench.yaml"), &text, |_| None).expect("bench config")
}

/// A typical browser request, with one spoofed header and the gateway's cookie.
fn browser_headers() -> HeaderMap {
    let mut h = HeaderMap::new();
    for (n, v) in [
        ("host", "acq.bankart.localhost"),
        (
            "user-agent",
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/156.0 Safari/537.36",
        ),
        (
            "accept",
            "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        ("accept-language", "sl-SI,sl;q=0.9,en;q=0.8"),
        ("accept-encoding", "gzip, deflate, br"),
        (
            "cookie",
            "prehod_session=Zm9vYmFyYmF6cXV4; JSESSIONID=1234567890ABCDEF; lang=sl",
        ),
        ("x-auth-user", "spoofed"),
        ("sec-fetch-mode", "navigate"),
        ("upgrade-insecure-requests", "1"),
    ] {
        h.append(HeaderName::from_static(n), HeaderValue::from_static(v));
    }
    h
}

fn benches(c: &mut Criterion) {
    let pki = tempfile::tempdir().expect("tmp");
    prehod_devpki::generate(
        pki.path(),
        &prehod_devpki::dev_server_names("bankart.localhost"),
    )
    .expect("pki");
    let config = config(pki.path());
    let hygiene = Hygiene::new(&config);
    let router = Router::new(&config);
    let headers = browser_headers();

    c.bench_function("hygiene/names_to_strip (browser request)", |b| {
        b.iter(|| hygiene.names_to_strip(black_box(&headers), false))
    });
    let (method, uri) = (
        http::Method::GET,
        http::Uri::from_static("/accounts?page=2"),
    );
    c.bench_function("framing/check and method_verdict (browser request)", |b| {
        b.iter(|| {
            let framing = prehod_gateway::framing::check(
                black_box(&method),
                black_box(&uri),
                black_box(&headers),
            );
            let verdict = prehod_gateway::framing::method_verdict(
                &config.portals[0].http_methods,
                black_box(&method),
                black_box(&uri),
            );
            (framing, verdict)
        })
    });
    c.bench_function("hygiene/upstream_cookie", |b| {
        b.iter(|| hygiene.upstream_cookie(black_box(&headers)))
    });
    c.bench_function("routing/route", |b| {
        b.iter(|| {
            router.route(
                black_box(Some("bankomati.bankart.localhost:8443")),
                black_box(Some("bankomati.bankart.localhost")),
            )
        })
    });
    c.bench_function("access_log/loggable_path", |b| {
        b.iter(|| {
            loggable_path(black_box(
                "/oidc/callback?code=abcdef123456&state=xyz&lang=sl",
            ))
        })
    });
    let pages = std::sync::Arc::new(
        prehod_gateway::pages::Pages::new(None, prehod_config::DEFAULT_SUPPORT_EMAIL)
            .expect("pages"),
    );
    c.bench_function("pages/render 502", |b| {
        b.iter(|| {
            pages.error(
                Page::UpstreamUnavailable,
                prehod_gateway::pages::Lang::Sl,
                black_box("0123456789abcdef0123456789abcdef"),
            )
        })
    });
    c.bench_function("config/load six portals", |b| {
        b.iter(|| config_reload(pki.path()))
    });

    // The login's per-request pieces.
    let key = std::fs::read_to_string(pki.path().join("session.key")).expect("session key");
    let auth_config = Config::from_text(
        std::path::Path::new("bench.yaml"),
        &format!(
            "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\ntls:\n  certificates:\n    - cert: {0}/server.crt\n      key: {0}/server.key\n\
login:\n  host: login.bankart.localhost\nsession:\n  keys: [\"{1}\"]\n\
oidc:\n  issuer: https://rekono.localhost:8444/openid-connect-server-webapp\n  client_id: b\n  client_secret: s\n\
assertion:\n  key: {0}/assertion.key\nportals:\n  bips:\n    host: bips.bankart.localhost\n    min_level: 20\n    upstream:\n      urls: [http://127.0.0.1:9103]\n",
            pki.path().display(),
            key.trim()
        ),
        |_| None,
    )
    .expect("auth config");
    let auth = prehod_gateway::auth::AuthState::new(&auth_config, pages.clone())
        .expect("auth")
        .expect("configured");
    let now = prehod_identity::unix_now();
    use prehod_identity::session::{Method, Session};
    let session = Session {
        name: "Sara Srednja".into(),
        email: "srednja@rekono.localhost".into(),
        amr: vec!["pwd".into(), "otp".into()],
        auth_time: now,
        op_sid: Some("op-sid".into()),
        id_token: Some("x".repeat(700)),
        ..Session::new(Method::Rekono, "rekono-92bcfca13abe4441", 20)
    };
    let (issued, cookie) = auth.sessions.issue(session, now).expect("issue");
    c.bench_function("session/validate (cached)", |b| {
        b.iter(|| auth.sessions.validate(black_box(&cookie), now).is_ok())
    });
    let fresh = prehod_identity::session::Sessions::new(
        prehod_identity::seal::Sealer::new(&auth_config.auth.as_ref().expect("auth").session.keys),
        std::time::Duration::from_secs(1800),
        std::time::Duration::from_secs(36000),
        1,
    );
    c.bench_function("session/open the seal (cache miss)", |b| {
        b.iter(|| {
            fresh.revoke_sid("none", now);
            let (_, c) = fresh.issue(issued.clone(), now).expect("issue");
            fresh.validate(black_box(&c), now).is_ok()
        })
    });
    c.bench_function("assertion/sign ES256", |b| {
        b.iter(|| {
            auth.signer
                .sign(black_box(&issued), "https://bips.bankart.localhost", now)
                .expect("sign")
        })
    });
    c.bench_function("assertion/sign_cached (same session and portal)", |b| {
        b.iter(|| {
            auth.signer
                .sign_cached(black_box(&issued), "https://bips.bankart.localhost", now)
                .expect("sign")
        })
    });

    let mut headers = HeaderMap::new();
    headers.insert(
        "cookie",
        HeaderValue::from_str(&format!("prehod_session={cookie}")).expect("ascii"),
    );
    headers.insert("accept", HeaderValue::from_static("text/html"));
    let portal = &auth_config.portals[0];
    c.bench_function("auth/decide (valid session, allowed)", |b| {
        b.iter(|| {
            prehod_gateway::portal::decide::decide(
                Some(&auth),
                portal,
                &http::Method::GET,
                black_box(&headers),
                "https://bips.bankart.localhost/",
                now,
            )
        })
    });
}

fn config_reload(pki: &std::path::Path) -> usize {
    config(pki).portals.len()
}

criterion_group!(hot_path, benches);
criterion_main!(hot_path);
