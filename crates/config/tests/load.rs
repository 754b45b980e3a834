//! Loading configurations against a generated PKI.
// Tests index into their own fixtures, where a panic is the failure report.
#![allow(clippy::indexing_slicing, clippy::string_slice)]

mod common;

use std::path::Path;

use common::{assert_refused, pki};
use prehod_config::{AppLogin, Config, IdentityHeader, TlsVersion};

fn base(pki: &Path) -> String {
    format!(
        "listen:\n  https: 0.0.0.0:443\n  http_redirect: 0.0.0.0:80\nadmin:\n  listen: 127.0.0.1:9090\n\
tls:\n  min_version: \"1.3\"\n  certificates:\n    - cert: ${{PKI}}/server.crt\n      key: ${{PKI}}/server.key\n\
trusted_proxies: [10.0.0.0/8]\nheaders:\n  user: X-Remote-User\n  strip: [X-Legacy-User]\n\
portals:\n  ecmsweb:\n    host: ECMSWEB.bankart.localhost\n    app_login: own\n    upstream:\n      urls: [https://ecms.internal:8443, https://10.1.0.2:8443]\n      ca: {}/ca.crt\n    timeouts:\n      read: 2m\n    danger_no_authentication: true\n",
        pki.display()
    )
}

fn load(text: &str, pki: &Path) -> Result<Config, prehod_config::ConfigError> {
    let dir = pki.display().to_string();
    Config::from_text(Path::new("/etc/prehod/proxy.yaml"), text, |name| {
        (name == "PKI").then(|| dir.clone())
    })
}

/// [`base`] with the top-level `sections` (YAML) put before its `portals:`.
fn base_with(pki: &Path, sections: &str) -> String {
    base(pki).replace("portals:\n", &format!("{sections}portals:\n"))
}

/// Asserts that `text` is refused, and that the errors shown name every one of `expected`.
fn refused(text: &str, pki: &Path, expected: &[&str]) {
    assert_refused(load(text, pki), expected);
}

#[test]
fn a_valid_config_is_fully_parsed() {
    let pki = pki();
    let config = load(&base(pki.path()), pki.path()).expect("valid");
    assert_eq!(config.listen.https.port(), 443);
    assert_eq!(config.listen.http_redirect.map(|a| a.port()), Some(80));
    assert_eq!(config.tls.min_version, TlsVersion::Tls13);
    assert!(config.tls.certificates[0].covers("acq.bankart.localhost"));
    let portal = &config.portals[0];
    assert_eq!(
        portal.host, "ecmsweb.bankart.localhost",
        "hosts are lower-cased"
    );
    assert_eq!(portal.app_login, AppLogin::Own);
    assert_eq!(portal.upstream.targets.len(), 2);
    assert_eq!(portal.upstream.targets[0].port, 8443);
    let tls = portal.upstream.tls.as_ref().expect("https upstream");
    assert_eq!(tls.ca.as_ref().map(Vec::len), Some(1));
    assert!(!tls.danger_accept_invalid_certs);
    assert_eq!(portal.timeouts.read, std::time::Duration::from_secs(120));
    assert_eq!(
        portal.timeouts.connect,
        std::time::Duration::from_secs(5),
        "default kept"
    );
    let names: Vec<String> = config
        .headers
        .identity_names()
        .iter()
        .map(|n| n.to_string())
        .collect();
    assert!(names.contains(&"x-remote-user".to_owned()));
    assert!(names.contains(&"x-legacy-user".to_owned()));
    assert!(config.trusted_proxies[0].contains("10.2.3.4".parse().expect("ip")));
}

#[test]
fn a_host_no_certificate_covers_is_refused() {
    let pki = pki();
    let text = base(pki.path()).replace("ECMSWEB.bankart.localhost", "ecmsweb.bankart.si");
    refused(
        &text,
        pki.path(),
        &["/etc/prehod/proxy.yaml:17:5: portals.ecmsweb.host: no certificate in tls.certificates covers ecmsweb.bankart.si"],
    );
}

#[test]
fn relative_paths_are_relative_to_the_config_file() {
    let pki = pki();
    let text = base(pki.path())
        .replace("${PKI}/server.crt", "server.crt")
        .replace("${PKI}/server.key", "server.key");
    let dir = pki.path().display().to_string();
    let config = Config::from_text(&pki.path().join("proxy.yaml"), &text, |n| {
        (n == "PKI").then(|| dir.clone())
    })
    .expect("relative paths resolve beside the config");
    assert_eq!(
        config.tls.certificates[0].cert_path,
        pki.path().join("server.crt")
    );
}

#[test]
fn danger_options_and_bad_values_are_refused_where_meaningless() {
    let pki = pki();
    let text = base(pki.path())
        .replace(
            "https://ecms.internal:8443, https://10.1.0.2:8443",
            "http://ecms.internal:8080",
        )
        .replace(
            "      ca: ",
            "      danger_accept_invalid_certs: true\n      ca: ",
        )
        .replace(
            "trusted_proxies: [10.0.0.0/8]",
            "trusted_proxies: [10.0.0.0/40]",
        )
        .replace("user: X-Remote-User", "user: \"Bad Header\"");
    refused(
        &text,
        pki.path(),
        &[
            "danger_accept_invalid_certs: only means something for https:// upstreams",
            "trusted_proxies[0]: prefix length \"40\" is not between 0 and 32",
            "headers.user: \"Bad Header\" is not a valid header name",
        ],
    );
}

#[test]
fn type_errors_in_several_portals_are_all_reported() {
    let pki = pki();
    let text = format!(
        "{}  acq:\n    host: acq.bankart.localhost\n    upstream:\n      urls: http://not-a-list\n  b2b:\n    host: [b2b]\n    upstream:\n      urls: [http://a:1]\n",
        base(pki.path())
    );
    refused(
        &text,
        pki.path(),
        &[
            "portals.acq.upstream.urls: invalid type",
            "portals.b2b.host: invalid type",
        ],
    );
}

#[test]
fn rate_limits_have_defaults_and_every_bad_value_is_reported() {
    let pki = pki();
    let config = load(&base(pki.path()), pki.path()).expect("valid");
    let limits = &config.rate_limits;
    let login = limits.login.per_address.expect("limited by default");
    assert_eq!((login.count, login.per.as_secs()), (30, 60));
    assert!(limits.certificate_login.per_certificate.is_some());
    assert_eq!(limits.tracked_keys, 100_000);

    let text = base_with(
        pki.path(),
        "rate_limits:\n  login: {per_address: \"5/s\", burst: 3}\n  backchannel_logout: {per_address: \"off\"}\n",
    );
    let config = load(&text, pki.path()).expect("valid");
    let login = config.rate_limits.login;
    assert_eq!(login.burst, 3);
    assert!((login.per_address.expect("set").per_second() - 5.0).abs() < 1e-9);
    assert_eq!(config.rate_limits.backchannel_logout.per_address, None);

    let text = base_with(
        pki.path(),
        "rate_limits:\n  login: {per_address: \"30 per minute\", burst: 0, per_certificate: \"1/min\"}\n  certificate_login: {per_certificate: \"0/min\"}\n  tracked_keys: 0\n  shared: redis\n",
    );
    refused(
        &text,
        pki.path(),
        &[
        "rate_limits.login.per_address: \"30 per minute\" is not a rate",
        "rate_limits.login.burst: must be at least 1",
        "rate_limits.login.per_certificate: only rate_limits.certificate_login knows a certificate",
        "rate_limits.certificate_login.per_certificate: \"0/min\" allows nothing",
        "rate_limits.tracked_keys: must be at least 1",
        "rate_limits.shared: unknown key",
        ],
    );
}

#[test]
fn slow_client_limits_have_defaults_and_bad_values_are_reported() {
    let pki = pki();
    let server = load(&base(pki.path()), pki.path()).expect("valid").server;
    assert_eq!(server.header_timeout, std::time::Duration::from_secs(10));
    assert_eq!(server.body_timeout, std::time::Duration::from_secs(10));
    assert_eq!(server.body_min_rate, 16 * 1024);
    assert_eq!(server.max_connections_per_address, 256);
    assert_eq!(server.max_pending_connections, 1024);
    assert_eq!(server.handshake_timeout, std::time::Duration::from_secs(10));
    assert_eq!(server.idle_timeout, std::time::Duration::from_secs(60));
    assert_eq!(server.max_connections, 16 * 1024);
    let text = base_with(
        pki.path(),
        "server:\n  header_timeout: 0s\n  body_timeout: soon\n  body_min_rate: 0\n  max_connections_per_address: 0\n  max_pending_connections: 0\n  handshake_timeout: 0s\n  idle_timeout: later\n  max_connections: 0\n",
    );
    refused(
        &text,
        pki.path(),
        &[
            "server.header_timeout: must be longer than zero",
            "server.body_timeout: \"soon\" does not start with a whole number",
            "server.body_min_rate: must be at least 1",
            "server.max_connections_per_address: must be at least 1",
            "server.max_pending_connections: must be at least 1",
            "server.handshake_timeout: must be longer than zero",
            "server.idle_timeout: \"later\" does not start with a whole number",
            "server.max_connections: must be at least 1",
        ],
    );
}

/// pingora counts the grace period in whole seconds (`as_secs`), and shuts its runtimes down
/// at the stop for less than one: a part of a second is rounded up, never down (review of the
/// drain: `800ms` cut a request in flight at once, `1900ms` gave it 1 s).
#[test]
fn a_grace_period_in_parts_of_a_second_is_rounded_up_to_whole_seconds() {
    let pki = pki();
    let grace = |value: &str| {
        let text = base_with(pki.path(), &format!("server:\n  grace_period: {value}\n"));
        load(&text, pki.path()).expect("valid").server.grace_period
    };
    let secs = std::time::Duration::from_secs;
    assert_eq!(grace("800ms"), secs(1));
    assert_eq!(grace("1900ms"), secs(2));
    assert_eq!(grace("2s"), secs(2));
    assert_eq!(grace("0s"), secs(0));
    let default = load(&base(pki.path()), pki.path()).expect("valid").server;
    assert_eq!(default.grace_period, secs(10));
}

/// Review 17: the per-address caps on connections without a request and on requests in
/// progress, and the HTTP/2 stream cap, have defaults well below the global caps, and a
/// per-address pending cap that would let one address take every pending place is refused.
#[test]
fn per_address_pending_and_request_caps_and_h2_streams_have_defaults_and_are_checked() {
    let pki = pki();
    let server = load(&base(pki.path()), pki.path()).expect("valid").server;
    assert_eq!(server.max_pending_connections_per_address, 32);
    assert_eq!(server.max_requests_per_address, 256);
    assert_eq!(server.h2_max_streams, 32);
    let with = |extra: &str| base_with(pki.path(), &format!("server:\n{extra}"));
    let server = load(
        &with("  max_connections_per_address: 16\n  max_pending_connections: 40\n"),
        pki.path(),
    )
    .expect("valid")
    .server;
    assert_eq!(
        server.max_requests_per_address, 16,
        "requests in progress follow the per-address connection cap by default"
    );
    assert_eq!(
        server.max_pending_connections_per_address, 10,
        "a quarter of a small pending cap"
    );
    refused(
        &with(
            "  max_pending_connections: 64\n  max_pending_connections_per_address: 64\n  \
             max_requests_per_address: 0\n  h2_max_streams: 0\n",
        ),
        pki.path(),
        &[
        "server.max_pending_connections_per_address: must be below server.max_pending_connections (64)",
        "server.max_requests_per_address: must be at least 1",
        "server.h2_max_streams: must be between 1 and 1000",
        ],
    );
    refused(
        &with("  max_pending_connections_per_address: 0\n  h2_max_streams: 5000\n"),
        pki.path(),
        &[
            "server.max_pending_connections_per_address: must be at least 1",
            "server.h2_max_streams: must be between 1 and 1000",
        ],
    );
}

#[test]
fn http_methods_strip_prefixes_and_body_buffers_have_defaults_and_are_checked() {
    let pki = pki();
    let config = load(&base(pki.path()), pki.path()).expect("valid");
    assert_eq!(
        config.portals[0].http_methods.allow(),
        "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS"
    );
    assert!(!config.portals[0].http_methods.allows(&http::Method::TRACE));
    assert_eq!(
        config.server.body_buffers,
        prehod_config::BodyBuffers::default()
    );
    assert_eq!(config.server.body_buffers.memory, 16 * 1024 * 1024);
    assert!(config.headers.strip_prefixes.is_empty());

    let text = format!(
        "{}    http_methods: [GET, PROPFIND]\n",
        base(pki.path())
            .replace(
                "strip: [X-Legacy-User]",
                "strip: [X-Legacy-User, \"X_Bank.*\"]"
            )
            .replace(
                "portals:\n",
                "server:\n  body_buffer_memory: 1MiB\n  body_buffers_per_connection: 2\nportals:\n"
            )
    );
    let config = load(&text, pki.path()).expect("valid");
    let methods = &config.portals[0].http_methods;
    assert_eq!(methods.allow(), "GET, HEAD, PROPFIND");
    assert!(methods.allows(&http::Method::HEAD));
    assert!(!methods.allows(&http::Method::POST));
    assert_eq!(config.headers.strip_prefixes, ["x-bank-"]);
    let names: Vec<&str> = config.headers.strip.iter().map(|n| n.as_str()).collect();
    assert_eq!(names, ["x-legacy-user"]);
    assert_eq!(config.server.body_buffers.memory, 1024 * 1024);
    assert_eq!(config.server.body_buffers.per_connection, 2);

    let text = format!(
        "{}    http_methods: [TRACE, get, \"BAD METHOD\", GET, GET, CONNECT]\n",
        base(pki.path())
            .replace("strip: [X-Legacy-User]", "strip: [X-Legacy-User, \"*\", \"X Y*\"]")
            .replace(
                "portals:\n",
                "server:\n  body_buffer_memory: 100KiB\n  body_buffers_per_connection: 0\nportals:\n"
            )
    );
    refused(
        &text,
        pki.path(),
        &[
        "proxy.yaml:14:26: headers.strip[1]: \"*\" would remove every header",
        "headers.strip[2]: \"X Y*\" is not a header name prefix",
        "server.body_buffer_memory: \"100KiB\" is too small",
        "server.body_buffers_per_connection: must be at least 1",
        "portals.ecmsweb.http_methods[0]: TRACE is never forwarded",
        "portals.ecmsweb.http_methods[1]: \"get\": methods are case-sensitive and written in capitals, e.g. GET",
        "portals.ecmsweb.http_methods[2]: \"BAD METHOD\" is not an HTTP method",
        "portals.ecmsweb.http_methods[4]: GET is listed twice",
        "portals.ecmsweb.http_methods[5]: CONNECT opens a tunnel",
        ],
    );
    let empty = format!("{}    http_methods: []\n", base(pki.path()));
    refused(
        &empty,
        pki.path(),
        &["portals.ecmsweb.http_methods: list at least one method"],
    );
}

#[test]
fn a_forward_auth_portal_has_no_upstream_and_every_other_portal_needs_one() {
    let pki = pki();
    let fa = "  fa:\n    host: fa.bankart.localhost\n    forward_auth: true\n    danger_no_authentication: true\n";
    let config = load(&format!("{}{fa}", base(pki.path())), pki.path()).expect("valid");
    let portal = config.portals.iter().find(|p| p.name == "fa").expect("fa");
    assert!(portal.forward_auth && portal.upstream.targets.is_empty());
    assert!(!config.portals[0].forward_auth, "off unless asked for");
    // Both mistakes at once, each naming its portal: an upstream given to a forward_auth
    // portal, none given to a portal the gateway forwards to, and a certificate-only portal
    // that another proxy's handshake could never serve.
    let bad = "  fa:\n    host: fa.bankart.localhost\n    forward_auth: true\n    client_certificate: required\n    upstream:\n      urls: [http://10.0.0.1:80]\n    danger_no_authentication: true\n  acq:\n    host: acq.bankart.localhost\n    danger_no_authentication: true\n";
    let err = load(&format!("{}{bad}", base(pki.path())), pki.path()).expect_err("refused");
    let text = err.to_string();
    for needle in [
        "portals.fa.upstream",
        "has no upstream",
        "portals.fa.forward_auth",
        "certificate-only portal",
        "portals.acq",
        "required key `upstream` is missing",
    ] {
        assert!(text.contains(needle), "{needle} not in:\n{text}");
    }
}

/// `headers:` is read by hand from the table of identity headers (`IdentityHeader::ALL`), not
/// derived: each key lands on its own header, and an unknown key or a wrong type is reported
/// where it stands, as in every derived section.
#[test]
fn every_key_of_headers_is_read_and_an_unknown_one_is_named_where_it_stands() {
    let pki = pki();
    let renamed: String = IdentityHeader::ALL
        .iter()
        .map(|(_, key, _)| format!("  {key}: X-Own-{key}\n"))
        .collect();
    let text = base(pki.path()).replace("  user: X-Remote-User\n", &renamed);
    let config = load(&text, pki.path()).expect("valid");
    for (header, key, _) in IdentityHeader::ALL {
        assert_eq!(config.headers[header].as_str(), format!("x-own-{key}"));
    }
    assert_eq!(config.headers.request_id.as_str(), "x-request-id");

    let text = base(pki.path()).replace(
        "  user: X-Remote-User\n",
        "  usr: X-Remote-User\n  email: [X-Mail]\n",
    );
    refused(
        &text,
        pki.path(),
        &[
            "proxy.yaml:13:3: headers.usr: unknown key",
            "proxy.yaml:14:3: headers.email: invalid type: sequence, expected a string",
        ],
    );
}
