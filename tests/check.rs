//! `prehod check` and `prehod run` refusing bad configurations, through the real binary.

use std::process::Command;

use prehod_test_support::check::{good_config, run_prehod as run};
use prehod_test_support::*;

/// A config with one mistake on each marked line; every one must be reported with its line.
fn broken_config(pki: &Pki, dir: &std::path::Path) -> std::path::PathBuf {
    // The other PKI's key does not belong to this PKI's certificate.
    let other = dir.join("other-pki");
    prehod_devpki::generate(
        &other,
        &prehod_devpki::dev_server_names("bankart.localhost"),
    )
    .expect("second PKI");
    let cert = pki.path("server.crt").display().to_string();
    let key = pki.path("server.key").display().to_string();
    let wrong_key = other.join("server.key").display().to_string();
    let lines = [
        "listen:",                                    // 1
        "  https: 127.0.0.1:99999",                   // 2  port out of range
        "admin:",                                     // 3
        "  listen: 127.0.0.1:9090",                   // 4
        "  colour: blue",                             // 5  unknown key
        "tls:",                                       // 6
        "  certificates:",                            // 7
        &format!("    - cert: {cert}"),               // 8
        &format!("      key: {wrong_key}"),           // 9  key of another certificate
        "    - cert: /nonexistent/server.crt",        // 10 unreadable
        &format!("      key: {key}"),                 // 11
        "timeouts:",                                  // 12
        "  read: 10 seconds",                         // 13 not a duration
        "portals:",                                   // 14
        "  acq:",                                     // 15
        "    host: acq.bankart.localhost",            // 16
        "    upstream:",                              // 17
        "      urls: [\"http://10.0.0.1:8080/app\"]", // 18 a path
        "  b2b:",                                     // 19
        "    host: acq.bankart.localhost",            // 20 duplicate host
        "    upstream:",                              // 21
        "      urls: [\"http://10.0.0.2:8080\"]",     // 22
        "  bips:",                                    // 23
        "    host: bips.bankart.localhost",           // 24
        "    app_login: sometimes",                   // 25 not an option
        "    upstream:",                              // 26
        "      urls: [\"http://10.0.0.3:8080\"]",     // 27
        "      ca: ${PREHOD_TEST_UNSET_VARIABLE}",    // 28 unset variable
    ];
    let text = lines.join("\n") + "\n";
    let path = dir.join("broken.yaml");
    std::fs::write(&path, text).expect("write");
    path
}

#[test]
fn check_reports_every_problem_with_its_line_and_run_exits_64() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = broken_config(&pki, dir.path());
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stderr}");
    let file = path.display().to_string();
    let expected = [
        (2, 3, "listen.https", "is not an address"),
        (5, 3, "admin.colour", "unknown key"),
        (
            9,
            7,
            "tls.certificates[0].key",
            "does not belong to the certificate",
        ),
        (
            10,
            7,
            "tls.certificates[1].cert",
            "cannot read certificate file /nonexistent/server.crt",
        ),
        (
            13,
            3,
            "timeouts.read",
            "unknown unit \" seconds\" in \"10 seconds\"",
        ),
        (
            18,
            14,
            "portals.acq.upstream.urls[0]",
            "drop the path \"/app\"",
        ),
        (
            20,
            5,
            "portals.b2b.host",
            "host acq.bankart.localhost is already used by portal acq",
        ),
        (
            25,
            5,
            "portals.bips.app_login",
            "\"sometimes\" is not one of: gateway, own",
        ),
        (
            28,
            7,
            "portals.bips.upstream.ca",
            "environment variable PREHOD_TEST_UNSET_VARIABLE is not set",
        ),
        (
            28,
            7,
            "portals.bips.upstream.ca",
            "a CA is only used with https:// upstreams",
        ),
    ];
    for (line, col, key, message) in expected {
        let prefix = format!("{file}:{line}:{col}: {key}: ");
        let found = stderr
            .lines()
            .any(|l| l.starts_with(&prefix) && l.contains(message));
        assert!(found, "missing `{prefix}…{message}` in:\n{stderr}");
    }
    assert!(stderr.contains("10 problem(s)"), "{stderr}");

    let (code, _, stderr) = run(&["run", "--config"], &path);
    assert_eq!(code, 64, "prehod run must refuse the config: {stderr}");
    assert!(stderr.contains("not starting"));
}

#[test]
fn check_accepts_a_good_config_with_a_summary() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("good.yaml");
    std::fs::write(&path, good_config(&pki, "", &[])).expect("write");
    let (code, stdout, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(stdout.lines().count(), 1, "one summary line: {stdout}");
    assert!(stdout.contains("ok — 6 portals"), "{stdout}");
    // Without state: and session.revocation_file, a restart forgets every logout: it says so.
    assert!(
        stderr.contains("warning: neither state: nor session.revocation_file is set"),
        "{stderr}"
    );
}

/// Issue 8, points 4 and 10: certificate user ids that could collide (two anchors with one
/// prefix, a prefix that is not one name and one `:`), an `allowed_users` entry naming no
/// anchor, and certificate-only portals no certificate session could ever reach.
#[test]
fn check_refuses_certificate_settings_that_collide_or_can_never_work() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let ca = pki.path("ca.crt").display().to_string();
    let other = pki.path("untrusted-ca.crt").display().to_string();
    let certificates = [
        "certificate_login:",
        "  host: certlogin.bankart.localhost",
        "  level: 20",
        "  anchors:",
        "    - name: ACNLB",
        &format!("      ca: {ca}"),
        "    - name: acnlb",
        &format!("      ca: {other}"),
        "    - name: third",
        &format!("      ca: {other}"),
        "      user_id_prefix: \"a:b:\"",
        "",
    ]
    .join("\n");
    let path = dir.path().join("certs.yaml");
    std::fs::write(
        &path,
        good_config(
            &pki,
            &certificates,
            &[
                ("acq", "client_certificate: required"),
                ("acq", "min_level: 30"),
                ("b2b", "client_certificate: required"),
                ("b2b", "methods: [rekono]"),
                (
                    "bips",
                    "allowed_users: [\"acnlb:SI-1\", \"nobody:SI-1\", \"plain-rekono-sub\"]",
                ),
                (
                    "bws",
                    "allowed_organisations: [\"acnlb:Bankart\", \"Bankart\"]",
                ),
            ],
        ),
    )
    .expect("write");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stderr}");
    for (key, text) in [
        (
            "certificate_login.anchors[1].user_id_prefix",
            "also the user-id prefix of certificate_login.anchors[0]",
        ),
        (
            "certificate_login.anchors[2].user_id_prefix",
            "must be a name followed by one ':'",
        ),
        (
            "portals.acq.min_level",
            "above certificate_login.level (20)",
        ),
        ("portals.b2b.methods", "must allow the certificate method"),
        (
            "portals.bws.allowed_organisations[1]",
            "name the organisation with its anchor's user_id_prefix",
        ),
        (
            "portals.bips.allowed_users[1]",
            "\"nobody:\" is not the user_id_prefix of any certificate_login anchor",
        ),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!(": {key}: ")) && l.contains(text)),
            "{key}: {text:?} in {stderr}"
        );
    }
    assert!(
        !stderr.contains("allowed_users[0]")
            && !stderr.contains("allowed_users[2]")
            && !stderr.contains("allowed_organisations[0]"),
        "a known prefix and a Rekono sub are fine: {stderr}"
    );
}

/// Issue 22: every CRL source is bound to the CA whose CRL it is. An anchor whose CA
/// certificates bear more than one name must say so per source; an `issuer` must name one of
/// them; a source entry has only `source` and `issuer`; the OCSP settings are checked too.
#[test]
fn check_binds_every_crl_source_to_one_of_its_anchors_cas() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let bundle = dir.path().join("ca-and-intermediate.crt");
    let mut pem = std::fs::read(pki.path("ca.crt")).expect("ca");
    pem.extend(std::fs::read(pki.path("intermediate.crt")).expect("intermediate"));
    std::fs::write(&bundle, pem).expect("bundle");
    let crl = pki.path("ca.crl.pem").display().to_string();
    let certificates = [
        "certificate_login:",
        "  host: certlogin.bankart.localhost",
        "  anchors:",
        "    - name: dev",
        &format!("      ca: {}", bundle.display()),
        "      crls:",
        &format!("        - {crl}"),
        &format!("        - {{source: {crl}, issuer: nobody}}"),
        &format!("        - {{source: {crl}, isuer: prehod dev CA}}"),
        "        - {issuer: prehod dev CA}",
        &format!("        - {{source: {crl}, issuer: \"CN=prehod dev intermediate CA, O=prehod development\"}}"),
        &format!("        - {{source: {crl}, issuer: prehod dev CA}}"),
        "      ocsp: {url: \"http://127.0.0.1:9/\", nonce: true, max_age: 0s}",
        "",
    ]
    .join("\n");
    let path = dir.path().join("crls.yaml");
    std::fs::write(&path, good_config(&pki, &certificates, &[])).expect("write");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stderr}");
    for (key, text) in [
        (
            "certificate_login.anchors[0].crls[0]",
            "bear 2 names (\"CN=prehod dev CA, O=prehod development\", \"CN=prehod dev intermediate CA, O=prehod development\"): say whose CRL this is",
        ),
        (
            "certificate_login.anchors[0].crls[1].issuer",
            "\"nobody\" names none of this anchor's CA certificates",
        ),
        ("certificate_login.anchors[0].crls[2]", "unknown key \"isuer\""),
        ("certificate_login.anchors[0].crls[3]", "no `source`"),
        ("certificate_login.anchors[0].ocsp.max_age", "longer than zero"),
    ] {
        assert!(
            stderr
                .lines()
                .any(|l| l.contains(&format!(": {key}: ")) && l.contains(text)),
            "{key}: {text:?} in {stderr}"
        );
    }
    // Sources 4 and 5 (by subject and by common name) are fine: nothing said about them.
    for fine in ["crls[4]", "crls[5]", "ocsp.nonce"] {
        assert!(!stderr.contains(fine), "{fine}: {stderr}");
    }
    let wrong_type = good_config(&pki, &certificates, &[]).replace("nonce: true", "nonce: maybe");
    std::fs::write(&path, wrong_type).expect("write");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stderr}");
    assert!(
        stderr.contains("certificate_login.anchors[0].ocsp.nonce: invalid type"),
        "{stderr}"
    );
}

#[test]
fn check_reports_yaml_syntax_errors_with_position() {
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("syntax.yaml");
    std::fs::write(&path, "listen:\n  https: [unclosed\nadmin: {}\n").expect("write");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64);
    let first = stderr.lines().next().unwrap_or_default();
    assert!(
        first.starts_with(&format!("{}:", path.display())),
        "{stderr}"
    );
    assert!(first.contains("not valid YAML"), "{stderr}");
}

#[test]
fn run_refuses_a_port_already_in_use() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let path = dir.path().join("taken.yaml");
    std::fs::write(
        &path,
        format!(
            "listen:\n  https: 127.0.0.1:{port}\nadmin:\n  listen: 127.0.0.1:{}\ntls:\n  certificates:\n    - cert: {}\n      key: {}\nportals:\n  acq:\n    host: acq.bankart.localhost\n    upstream:\n      urls: [\"http://127.0.0.1:1\"]\n    danger_no_authentication: true\n",
            free_port(),
            pki.path("server.crt").display(),
            pki.path("server.key").display()
        ),
    )
    .expect("write");
    let (code, _, stderr) = run(&["run", "--config"], &path);
    assert_eq!(code, 69, "{stderr}");
    assert!(
        stderr.contains(&format!("listen.https: cannot listen on 127.0.0.1:{port}")),
        "{stderr}"
    );
}

/// Issue 13, item 2: `login.portal_prefix` is one path segment between slashes; anything
/// else (which could shadow a portal's paths or never match) is refused with the key.
#[test]
fn check_refuses_a_portal_prefix_that_is_not_one_segment() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("prefix.yaml");
    for (prefix, ok) in [
        ("/.gw/", true),
        ("/", false),
        ("/a/b/", false),
        ("/../", false),
        ("/.prehod", false),
        ("/x y/", false),
    ] {
        let text = good_config(&pki, "", &[]).replace(
            "login:\n  host: login.bankart.localhost\n",
            &format!("login:\n  host: login.bankart.localhost\n  portal_prefix: \"{prefix}\"\n"),
        );
        std::fs::write(&path, text).expect("write");
        let (code, stdout, stderr) = run(&["check", "--config"], &path);
        if ok {
            assert_eq!(code, 0, "{prefix}: {stderr}");
        } else {
            assert_eq!(code, 64, "{prefix}: {stdout}");
            assert!(
                stderr.contains("login.portal_prefix") && stderr.contains("one path segment"),
                "{prefix}: {stderr}"
            );
        }
    }
}

/// Issue 21, point 4: the metrics label requests for the login host `portal="login"`, for the
/// certificate-login host `portal="certlogin"` and for hosts no portal serves
/// `portal="unknown"`; a portal of one of these names would mix its series with theirs.
#[test]
fn check_refuses_a_portal_named_like_the_login_hosts_metric_label() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let path = dir.path().join("reserved.yaml");
    for name in ["login", "certlogin", "unknown"] {
        let mut text = good_config(&pki, "", &[]);
        let line = text.lines().count() + 1;
        text.push_str(&format!(
            "  {name}:\n    host: other.bankart.localhost\n    upstream:\n      urls: [\"http://10.0.0.9:8080\"]\n"
        ));
        std::fs::write(&path, text).expect("write");
        let (code, stdout, stderr) = run(&["check", "--config"], &path);
        assert_eq!(code, 64, "{name}: {stdout}");
        let expected = format!("{}:{line}:3: portals.{name}: ", path.display());
        assert!(
            stderr.contains(&expected) && stderr.contains("cannot name a portal"),
            "{name}: expected {expected:?} in {stderr}"
        );
    }
}

/// Writes a secret file with `mode` (replacing any file there, as a Kubernetes Secret volume
/// does: a new file renamed over the old).
fn write_secret(path: &std::path::Path, content: &str, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    let tmp = path.with_extension("tmp");
    std::fs::write(&tmp, content).expect("write secret");
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(mode)).expect("chmod");
    std::fs::rename(&tmp, path).expect("rename secret");
}

/// Issue 21, point 2: every secret of the config — the session keys, the OIDC client secret,
/// the admin token, the Redis URL with its password — from files (`${file:PATH}`, relative to
/// the config's directory or through a variable such as systemd's `$CREDENTIALS_DIRECTORY`),
/// beside the key files, all private to the gateway's user: `prehod check` accepts it.
#[test]
fn check_accepts_a_config_whose_every_secret_comes_from_a_file() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let credentials = tempfile::tempdir().expect("credentials");
    let session_key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
    let secrets = dir.path().join("secrets");
    std::fs::create_dir(&secrets).expect("dir");
    write_secret(&secrets.join("session-current"), &session_key, 0o600);
    write_secret(&secrets.join("session-previous"), &session_key, 0o440);
    write_secret(&secrets.join("oidc-client-secret"), "s3cret\n", 0o640);
    write_secret(
        &credentials.path().join("admin-token"),
        &"t".repeat(40),
        0o400,
    );
    // A password inside a URL is percent-encoded (or hex: `openssl rand -hex 32`).
    write_secret(
        &credentials.path().join("redis-password"),
        "p4ss%20word%2Fwith%3Asymbols",
        0o400,
    );
    let text = good_config(&pki, "", &[])
        .replace(
            &format!("keys: [\"{}\"]", session_key.trim()),
            "keys: [\"${file:secrets/session-current}\", \"${file:secrets/session-previous}\"]",
        )
        .replace(
            "client_secret: s3cret",
            "client_secret: ${file:secrets/oidc-client-secret}",
        )
        .replace(
            "  listen: 127.0.0.1:9090\n",
            "  listen: 127.0.0.1:9090\n  api_token: ${file:${CREDENTIALS_DIRECTORY}/admin-token}\n",
        )
        + "state:\n  url: redis://prehod:${file:${CREDENTIALS_DIRECTORY}/redis-password}@127.0.0.1:6379/0\n";
    assert_eq!(text.matches("${file:").count(), 5, "{text}");
    let path = dir.path().join("files.yaml");
    std::fs::write(&path, text).expect("write");
    let out = Command::new(prehod_bin())
        .args(["check", "--config"])
        .arg(&path)
        .env("CREDENTIALS_DIRECTORY", credentials.path())
        .output()
        .expect("run prehod");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{stderr}");
    assert!(
        String::from_utf8_lossy(&out.stdout).contains("ok — 6 portals"),
        "{stderr}"
    );
}

/// Issue 21, point 2: a missing secret file, one that every user may read, one others may
/// write, and a world-readable private key are each named with FILE:LINE:COL and the key, and
/// no message repeats a secret — not even one that landed in a key whose messages quote the
/// value (here the OIDC client secret given as the issuer by mistake).
#[test]
fn check_names_missing_and_shared_secret_files_and_never_prints_a_secret() {
    use std::os::unix::fs::PermissionsExt;
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let secret = "client-secret-3f9a1c7e5b2d";
    write_secret(&dir.path().join("readable"), "s3cret", 0o644);
    write_secret(&dir.path().join("writable"), "s3cret", 0o602);
    write_secret(&dir.path().join("client-secret"), secret, 0o600);
    write_secret(&dir.path().join("threads"), "eight-threads-secret", 0o600);
    // A copy of the server key that every user may read.
    let shared_key = dir.path().join("server.key");
    std::fs::copy(pki.path("server.key"), &shared_key).expect("copy key");
    std::fs::set_permissions(&shared_key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let text = good_config(&pki, "", &[])
        .replace(
            &format!("key: {}", pki.path("server.key").display()),
            &format!("key: {}", shared_key.display()),
        )
        .replace(
            "  client_secret: s3cret\n",
            "  client_secret: ${file:readable}\n",
        )
        .replace("  client_id: prehod\n", "  client_id: ${file:writable}\n")
        .replace(
            "  issuer: https://rekono.localhost:8444/openid-connect-server-webapp\n",
            "  issuer: ${file:client-secret}\n",
        )
        .replace("session:\n", "session:\n  cookie_domain: ${file:missing}\n")
        + "server:\n  threads: ${file:threads}\n";
    let path = dir.path().join("secrets.yaml");
    std::fs::write(&path, &text).expect("write");
    let line_of = |needle: &str| {
        text.lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line")
    };
    let (code, stdout, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stdout}{stderr}");
    let file = path.display().to_string();
    let d = dir.path().display().to_string();
    for (needle, key, message) in [
        (
            "key: ",
            "tls.certificates[0].key",
            format!(
                "key file {d}/server.key is readable by every user on this machine (mode 0644)"
            ),
        ),
        (
            "client_secret:",
            "oidc.client_secret",
            format!(
                "secret file {d}/readable is readable by every user on this machine (mode 0644)"
            ),
        ),
        (
            "client_id:",
            "oidc.client_id",
            format!(
                "secret file {d}/writable is writable by every user on this machine (mode 0602)"
            ),
        ),
        (
            "cookie_domain:",
            "session.cookie_domain",
            format!("secret file {d}/missing does not exist"),
        ),
        (
            "issuer:",
            "oidc.issuer",
            "\"(the content of a secret file)\" is not an https:// issuer URL".to_owned(),
        ),
        ("threads:", "server.threads", "invalid type".to_owned()),
    ] {
        let prefix = format!("{file}:{}:", line_of(needle));
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(&format!(": {key}: {message}"))),
            "missing `{prefix}…{key}: {message}` in:\n{stderr}"
        );
    }
    for content in [secret, "eight-threads-secret", "s3cret"] {
        assert!(
            !stdout.contains(content) && !stderr.contains(content),
            "{content} printed:\n{stderr}"
        );
    }
}

/// `state.sentinel`: every mistake named with its line, none repeating a password; the
/// single-URL form and the sentinel form are one or the other; a good sentinel section (the
/// password from the environment) passes.
#[test]
fn check_names_each_mistake_of_a_sentinel_state_section_and_accepts_a_good_one() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let check = |state: &str, env: &[(&str, &str)]| {
        let path = dir.path().join("proxy.yaml");
        let text = good_config(&pki, state, &[]);
        std::fs::write(&path, &text).expect("write");
        let out = Command::new(prehod_bin())
            .args(["check", "--config"])
            .arg(&path)
            .envs(env.iter().copied())
            .output()
            .expect("run prehod");
        let line_of = move |needle: &str| {
            1 + text
                .lines()
                .position(|l| l.contains(needle))
                .unwrap_or_else(|| panic!("{needle} in the config"))
        };
        (
            out.status.code().unwrap_or(-1),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
            path.display().to_string(),
            line_of,
        )
    };

    let broken = "state:\n  sentinel:\n    master: \"my master\"\n    urls:\n      - redis://127.0.0.1:26379\n      - redis://:hunter2secret@127.0.0.1:26380\n      - http://127.0.0.1:26381\n      - redis://127.0.0.1:26379/\n      - rediss://127.0.0.1:26382\n      - redis://127.0.0.1:26383/2\n    username: watcher\n  password: \"\"\n  username: prehod\n";
    let (code, _, stderr, file, line_of) = check(broken, &[]);
    assert_eq!(code, 64, "{stderr}");
    for (needle, key, says) in [
        (
            "master: \"my master\"",
            "state.sentinel.master",
            "1 to 128 visible ASCII",
        ),
        (
            "hunter2secret",
            "state.sentinel.urls[1]",
            "must not hold credentials",
        ),
        (
            "http://127.0.0.1:26381",
            "state.sentinel.urls[2]",
            "scheme \"http\"",
        ),
        (
            "redis://127.0.0.1:26379/",
            "state.sentinel.urls[3]",
            "127.0.0.1:26379 is listed twice",
        ),
        (
            "    urls:",
            "state.sentinel.urls",
            "mixes redis:// and rediss://",
        ),
        (
            "26383/2",
            "state.sentinel.urls[5]",
            "must not name a database",
        ),
        (
            "username: watcher",
            "state.sentinel.username",
            "needs state.sentinel.password",
        ),
        ("password: \"\"", "state.password", "is empty"),
        ("username: prehod", "state.username", "needs state.password"),
    ] {
        let at = format!("{file}:{}:", line_of(needle));
        assert!(
            stderr.lines().any(|l| l.starts_with(&at)
                && l.contains(&format!(": {key}: "))
                && l.contains(says)),
            "missing `{at}…{key}: …{says}` in:\n{stderr}"
        );
    }
    assert!(
        !stderr.contains("hunter2secret"),
        "a secret repeated: {stderr}"
    );

    let both = "state:\n  url: redis://127.0.0.1:6379\n  sentinel:\n    master: prehod\n    urls: [redis://127.0.0.1:26379]\n";
    let (code, _, stderr, file, line_of) = check(both, &[]);
    assert_eq!(code, 64, "{stderr}");
    let at = format!("{file}:{}:", line_of("  sentinel:"));
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&at) && l.contains("state.sentinel: give either url")),
        "{stderr}"
    );
    let neither = "state:\n  key_prefix: \"x:\"\n";
    let (code, _, stderr, _, _) = check(neither, &[]);
    assert_eq!(code, 64, "{stderr}");
    assert!(stderr.contains("state: give url"), "{stderr}");
    // A password in the URL and in state.password: one place only, and neither is printed.
    let twice = "state:\n  url: redis://:hunter2secret@127.0.0.1:6379\n  password: hunter3secret\n";
    let (code, _, stderr, file, line_of) = check(twice, &[]);
    assert_eq!(code, 64, "{stderr}");
    let at = format!("{file}:{}:", line_of("password: hunter3secret"));
    assert!(
        stderr.lines().any(|l| l.starts_with(&at)
            && l.contains("state.password: state.url holds a password already")),
        "{stderr}"
    );
    assert!(
        !stderr.contains("hunter2secret") && !stderr.contains("hunter3secret"),
        "{stderr}"
    );
    // A CA without TLS.
    let ca = format!(
        "state:\n  sentinel:\n    master: prehod\n    urls: [redis://127.0.0.1:26379]\n  tls:\n    ca: {}\n",
        pki.path("ca.crt").display()
    );
    let (code, _, stderr, file, line_of) = check(&ca, &[]);
    assert_eq!(code, 64, "{stderr}");
    let at = format!("{file}:{}:", line_of("    ca: "));
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with(&at) && l.contains("state.tls.ca: only for a TLS server")),
        "{stderr}"
    );

    // The production shape: three sentinels over TLS with a private CA, ACL users and the
    // passwords from the environment.
    let good = format!(
        "state:\n  sentinel:\n    master: prehod\n    urls:\n      - rediss://redis-0.redis:26379\n      - rediss://redis-1.redis:26379\n      - rediss://[::1]:26380\n    password: ${{PREHOD_TEST_SENTINEL_PASSWORD}}\n  username: prehod\n  password: ${{PREHOD_TEST_REDIS_PASSWORD}}\n  tls:\n    ca: {}\n",
        pki.path("ca.crt").display()
    );
    let (code, stdout, stderr, _, _) = check(
        &good,
        &[
            ("PREHOD_TEST_SENTINEL_PASSWORD", "hunter4secret"),
            ("PREHOD_TEST_REDIS_PASSWORD", "hunter5secret"),
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    assert!(
        !stdout.contains("secret") && !stderr.contains("secret"),
        "{stdout}{stderr}"
    );
}

/// Issue 18: `login.templates` may replace the pages' templates and text catalogues; one that
/// lacks a text or does not parse is reported by `check`, naming the file, not found at start.
#[test]
fn check_refuses_a_template_directory_whose_catalogue_lacks_a_text() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let templates = dir.path().join("branding");
    std::fs::create_dir_all(&templates).expect("dir");
    let path = dir.path().join("templates.yaml");
    let text = good_config(&pki, "", &[]).replace(
        "login:\n  host: login.bankart.localhost\n",
        &format!(
            "login:\n  host: login.bankart.localhost\n  templates: {}\n",
            templates.display()
        ),
    );
    std::fs::write(&path, text).expect("write");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 0, "an empty directory replaces nothing: {stderr}");
    std::fs::write(templates.join("en.ftl"), "welcome = Welcome, branded\n").expect("ftl");
    let (code, stdout, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64, "{stdout}");
    assert!(
        stderr.contains("en.ftl") && stderr.contains("login.templates"),
        "{stderr}"
    );
    std::fs::write(templates.join("en.ftl"), "= no id\n").expect("ftl");
    let (code, _, stderr) = run(&["check", "--config"], &path);
    assert_eq!(code, 64);
    assert!(stderr.contains("en.ftl: line 1"), "{stderr}");
}

/// `oidc.profile: fapi2` takes no client secret (FAPI 2.0: the client authenticates with a
/// key): with the default `client_secret_basic`, with `client_secret` beside
/// `private_key_jwt`, and an unknown profile — each named at its line; with `private_key_jwt`
/// and a key the config is good.
#[test]
fn check_refuses_a_client_secret_under_the_fapi2_profile() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let key = dir.path().join("client.key");
    let ec = openssl::ec::EcKey::generate(
        &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve"),
    )
    .expect("key");
    write_secret(
        &key,
        &String::from_utf8(
            openssl::pkey::PKey::from_ec_key(ec)
                .expect("pkey")
                .private_key_to_pem_pkcs8()
                .expect("pem"),
        )
        .expect("utf-8"),
        0o600,
    );
    let with_key = format!(
        "  client_auth: private_key_jwt\n  client_key: {}\n",
        key.display()
    );
    let file = dir.path().join("fapi.yaml");
    for (oidc_extra, bad_line, problem) in [
        (
            "  profile: fapi2\n".to_owned(),
            Some("profile: fapi2"),
            "oidc.profile: profile fapi2 needs client_auth: private_key_jwt",
        ),
        (
            format!("  profile: fapi2\n{with_key}"),
            Some("client_secret:"),
            "oidc.client_secret: profile fapi2 does not allow a client secret",
        ),
        (
            "  profile: fapi-2\n".to_owned(),
            Some("profile: fapi-2"),
            "oidc.profile: \"fapi-2\" is not one of: default, fapi2",
        ),
        (format!("  profile: fapi2\n{with_key}"), None, ""),
    ] {
        let mut text = good_config(&pki, "", &[]).replace(
            "  client_secret: s3cret\n",
            &format!("  client_secret: s3cret\n{oidc_extra}"),
        );
        if bad_line.is_none() {
            text = text.replace("  client_secret: s3cret\n", "");
        }
        std::fs::write(&file, &text).expect("write");
        let (code, stdout, stderr) = run(&["check", "--config"], &file);
        let Some(needle) = bad_line else {
            assert_eq!(code, 0, "{oidc_extra}: {stdout}{stderr}");
            continue;
        };
        assert_eq!(code, 64, "{oidc_extra}: {stdout}{stderr}");
        let line = text
            .lines()
            .position(|l| l.contains(needle))
            .map(|i| i + 1)
            .expect("line");
        let prefix = format!("{}:{line}:", file.display());
        assert!(
            stderr
                .lines()
                .any(|l| l.starts_with(&prefix) && l.contains(problem)),
            "missing `{prefix}…{problem}` in:\n{stderr}"
        );
        assert!(!stderr.contains("s3cret"), "{stderr}");
    }
}
