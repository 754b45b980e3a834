//! Mistakes under `headers:` that `prehod check` refuses, from the attacker's review of the
//! identity headers as one table (`IdentityHeader::ALL`, its hand-written `Deserialize` and
//! `check/headers.rs`): a key given twice under a YAML tag, two identity headers of one name,
//! a hop-by-hop or framing name, names equal as a portal reads them. Each failed on main
//! bfcdffc.

use std::process::Command;

use prehod_test_support::*;

fn check(config: &std::path::Path) -> (i32, String) {
    let out = Command::new(prehod_bin())
        .args(["check", "--config"])
        .arg(config)
        .output()
        .expect("run prehod");
    (
        out.status.code().unwrap_or(-1),
        format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        ),
    )
}

/// A good configuration for the dev PKI (as tests/check.rs `good_config`) whose `headers:`
/// section is `headers` (YAML lines, starting with `headers:`), placed at line 1 so that the
/// lines of its keys are known: line 2 is the first key under `headers:`.
fn config_with_headers(pki: &Pki, dir: &std::path::Path, headers: &str) -> std::path::PathBuf {
    let session_key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    let mut text = format!(
        "{headers}\nlisten:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\ntls:\n  certificates:\n    - cert: {}\n      key: {}\n\
login:\n  host: login.bankart.localhost\n\
session:\n  keys: [\"{}\"]\n\
oidc:\n  issuer: https://rekono.localhost:8444/openid-connect-server-webapp\n  client_id: prehod\n  client_secret: s3cret\n\
assertion:\n  key: {}\nportals:\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
        session_key.trim(),
        pki.path("assertion.key").display(),
    );
    for (i, p) in PORTALS.iter().enumerate() {
        text.push_str(&format!(
            "  {p}:\n    host: {}\n    upstream:\n      urls: [\"http://10.0.0.{i}:8080\"]\n",
            host(p)
        ));
    }
    let path = dir.join("headers.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

/// The control: the harness's config with default `headers:` passes `prehod check`.
#[test]
fn control_a_good_headers_section_passes_check() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = config_with_headers(&pki, dir.path(), "headers:\n  user: X-Auth-User");
    let (code, out) = check(&path);
    assert_eq!(code, 0, "{out}");
}

/// A key of `headers:` given twice is refused by serde_yaml when the two keys are the same
/// YAML value (`user` and `"user"`), but a tag makes them different values of the mapping:
/// `user` and `!x user` both reach the hand-written `Deserialize` (crates/config/src/raw.rs)
/// as the string `user`, and the last one silently wins. `#[derive(Deserialize)]`, which it
/// replaced (and which every other section still uses), refuses this: "duplicate field `user`".
/// Also for `strip:` — a refused `strip: ["*"]` hidden by a later `!x strip: [...]`.
#[test]
fn a_headers_key_given_twice_under_a_yaml_tag_is_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    for (headers, key) in [
        (
            "headers:\n  user: X-Auth-User\n  !x user: X-Portal-Admin",
            "headers.user",
        ),
        (
            "headers:\n  email: X-Auth-Email\n  !!binary dXNlcg==: X-Auth-Email\n  !x email: X-Auth-User2",
            "headers.email",
        ),
        ("headers:\n  strip: [\"*\"]\n  !x strip: [X-A]", "headers.strip"),
    ] {
        let path = config_with_headers(&pki, dir.path(), headers);
        let (code, out) = check(&path);
        assert_eq!(
            code, 64,
            "a key given twice must be refused:\n{headers}\n--- prehod check said:\n{out}"
        );
        let file = path.display().to_string();
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{file}:")) && l.contains(key)),
            "the problem must be reported as FILE:LINE:COL: {key}: …\n{out}"
        );
    }
}

/// Two identity headers with one name are refused ("header name … is used twice") — unless
/// they are next to each other in `IdentityHeader::ALL` (user/email, email/name, …):
/// `Headers::identity_names` removes *adjacent* duplicates (`Vec::dedup`) before the checker
/// looks for duplicates, so the check never sees the second. The gateway then sets the name
/// twice (the second value wins): `X-Auth-User` carries the user's e-mail address.
#[test]
fn two_adjacent_identity_headers_with_one_name_are_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    for headers in [
        "headers:\n  user: X-Auth-User\n  email: X-Auth-User",
        "headers:\n  level: X-Auth-Level\n  amr: x-auth-level",
        "headers:\n  cert_serial: X-Auth-Serial\n  cert_fingerprint: X-AUTH-SERIAL",
    ] {
        let path = config_with_headers(&pki, dir.path(), headers);
        let (code, out) = check(&path);
        assert_eq!(
            code, 64,
            "one name for two identity headers must be refused:\n{headers}\n--- prehod check said:\n{out}"
        );
        assert!(out.contains("is used twice"), "{out}");
    }
}

/// An identity header named like a hop-by-hop or framing header of HTTP/1.1 (RFC 9110 7.6.1,
/// RFC 9112) is accepted: `prehod check` says ok, and the gateway would set `Connection:`,
/// `Transfer-Encoding:`, `Content-Length:` or `Host:` to the user's id/name/e-mail on what it
/// forwards (and strip every client's own copy of it, since it is an "identity header").
#[test]
fn an_identity_header_named_like_a_hop_by_hop_or_framing_header_is_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let mut accepted = Vec::new();
    for (key, name) in [("request_id", "Connection"), ("user", "Transfer-Encoding")] {
        let headers = format!("headers:\n  {key}: {name}");
        let path = config_with_headers(&pki, dir.path(), &headers);
        let (code, out) = check(&path);
        if code != 64 || !out.contains(&format!("headers.{key}")) {
            accepted.push(key);
        }
    }
    for name in [
        "Connection",
        "Keep-Alive",
        "Proxy-Connection",
        "TE",
        "Trailer",
        "Transfer-Encoding",
        "Upgrade",
        "Content-Length",
        "Host",
    ] {
        let headers = format!("headers:\n  name: {name}");
        let path = config_with_headers(&pki, dir.path(), &headers);
        let (code, out) = check(&path);
        if code != 64 || !out.contains("headers.name") {
            accepted.push(name);
        }
    }
    assert!(
        accepted.is_empty(),
        "accepted as hop-by-hop/framing names (headers.name unless another key is named): {accepted:?}"
    );
}

/// The gateway's own hygiene reads `_` and `.` as `-` (a CGI or PHP portal does: `X.Auth.Email`
/// and `X-Auth-Email` are both `HTTP_X_AUTH_EMAIL`), but the checker compares the names as
/// written: `user: X.Auth.Email` next to the default `email` (`X-Auth-Email`), or
/// `user: X_Request_Id` next to the default request id, passes `prehod check`. Such a portal
/// then gets two values for one header — the user's id and the e-mail address (or the request
/// id) — and which one it reads is up to its server.
#[test]
fn names_equal_once_underscores_and_dots_are_dashes_are_refused() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    for headers in [
        "headers:\n  user: X.Auth.Email",
        "headers:\n  user: x_auth_level",
        "headers:\n  user: X_Request_Id",
    ] {
        let path = config_with_headers(&pki, dir.path(), headers);
        let (code, out) = check(&path);
        assert_eq!(
            code, 64,
            "one name (as a portal reads it) for two of the gateway's headers must be refused:\n{headers}\n--- prehod check said:\n{out}"
        );
    }
}
