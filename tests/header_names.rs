//! Mistakes under `headers:` that `prehod check` refuses, from the attacker's review of the
//! identity headers as one table (`IdentityHeader::ALL`, its hand-written `Deserialize` and
//! `check/headers.rs`): a key given twice under a YAML tag, two identity headers of one name,
//! a hop-by-hop or framing name, names equal as a portal reads them. Each failed on main
//! bfcdffc.

use prehod_test_support::check::{good_config, run_prehod};
use prehod_test_support::*;

/// `prehod check` on the good configuration with `headers` (YAML lines, starting with
/// `headers:`) at its top: the exit code, the output (both streams) and the file's path.
fn check_headers(pki: &Pki, headers: &str) -> (i32, String, String) {
    let path = pki.path("headers.yaml");
    std::fs::write(&path, format!("{headers}\n{}", good_config(pki, "", &[]))).expect("write");
    let (code, out, err) = run_prehod(&["check", "--config"], &path);
    (code, format!("{out}{err}"), path.display().to_string())
}

/// `prehod check`'s problems for `headers`, which it must refuse (exit 64).
fn refused(pki: &Pki, headers: &str) -> (String, String) {
    let (code, out, file) = check_headers(pki, headers);
    assert_eq!(
        code, 64,
        "must be refused:\n{headers}\n--- prehod check said:\n{out}"
    );
    (out, file)
}

#[test]
fn control_a_good_headers_section_passes_check() {
    let (code, out, _) = check_headers(&Pki::new(), "headers:\n  user: X-Auth-User");
    assert_eq!(code, 0, "{out}");
}

/// A tag makes `user` and `!x user` two keys to YAML, one to serde: refused where the second
/// stands (the derived readers of every other section refuse it too). Also for `strip:` — a
/// refused `strip: ["*"]` must not hide behind a later `!x strip: [...]`.
#[test]
fn a_headers_key_given_twice_under_a_yaml_tag_is_refused() {
    let pki = Pki::new();
    for (headers, key) in [
        ("headers:\n  user: X-Auth-User\n  !x user: X-Portal-Admin", "headers.user"),
        (
            "headers:\n  email: X-Auth-Email\n  !!binary dXNlcg==: X-Auth-Email\n  !x email: X-Auth-User2",
            "headers.email",
        ),
        ("headers:\n  strip: [\"*\"]\n  !x strip: [X-A]", "headers.strip"),
    ] {
        let (out, file) = refused(&pki, headers);
        assert!(
            out.lines()
                .any(|l| l.starts_with(&format!("{file}:")) && l.contains(key)),
            "the problem must be reported as FILE:LINE:COL: {key}: …\n{out}"
        );
    }
}

/// Two identity headers with one name, also when they are neighbours in
/// `IdentityHeader::ALL` (a `dedup` of neighbours once hid them): the second value would win,
/// `X-Auth-User` carrying the e-mail address.
#[test]
fn two_identity_headers_with_one_name_are_refused() {
    let pki = Pki::new();
    for headers in [
        "headers:\n  user: X-Auth-User\n  email: X-Auth-User",
        "headers:\n  level: X-Auth-Level\n  amr: x-auth-level",
        "headers:\n  cert_serial: X-Auth-Serial\n  cert_fingerprint: X-AUTH-SERIAL",
        "headers:\n  user: X-Auth-Name",
    ] {
        let (out, _) = refused(&pki, headers);
        assert!(out.contains("is used twice"), "{out}");
    }
}

/// A name HTTP or the gateway's forwarding owns (hop-by-hop and framing headers, RFC 9110
/// 7.6.1, RFC 9112; cookies; `X-Forwarded-*`): the gateway would set `Content-Length:` to the
/// user's name on what it forwards.
#[test]
fn a_name_http_or_the_forwarding_owns_is_refused() {
    let pki = Pki::new();
    let mut keyed = vec![
        ("request_id", "Connection"),
        ("user", "Transfer-Encoding"),
        ("email", "x_forwarded_for"),
    ];
    keyed.extend(
        [
            "Connection",
            "Keep-Alive",
            "Proxy-Connection",
            "TE",
            "Trailer",
            "Transfer-Encoding",
            "Upgrade",
            "Content-Length",
            "Host",
            "Cookie",
            "Set-Cookie",
        ]
        .map(|name| ("name", name)),
    );
    for (key, name) in keyed {
        let (out, _) = refused(&pki, &format!("headers:\n  {key}: {name}"));
        assert!(
            out.contains(&format!("headers.{key}")),
            "{key}: {name}\n{out}"
        );
    }
}

/// Names a portal reads as one (`_` and `.` as `-`, as the gateway's own hygiene and a CGI or
/// PHP portal read them: `X.Auth.Email` and `X-Auth-Email` are both `HTTP_X_AUTH_EMAIL`): the
/// portal would get two values for one header.
#[test]
fn names_equal_once_underscores_and_dots_are_dashes_are_refused() {
    let pki = Pki::new();
    for headers in [
        "headers:\n  user: X.Auth.Email",
        "headers:\n  user: x_auth_level",
        "headers:\n  user: X_Request_Id",
        "headers:\n  strip: [X.Request.Id]",
    ] {
        refused(&pki, headers);
    }
}
