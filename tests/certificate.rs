//! Certificate login (mTLS) through the real gateway: a valid certificate logs in; every other
//! case is refused with its own reason page and metric label; a new CRL takes effect without a
//! restart; portal hosts never ask for a certificate.

use std::time::{Duration, Instant};

use prehod_test_support::login::*;
use prehod_test_support::received_header;

fn cert_options() -> Options {
    Options {
        certificates: Some(CertOptions {
            crl: Some(("ca.crl.pem", "1s")),
            ocsp: None,
            ..CertOptions::default()
        }),
        portal_yaml: vec![
            ("bips", "min_level: 20"),
            ("bws", "min_level: 30"),
            ("b2b", "allowed_users: [SI-DEV-9999]"),
        ],
        ..Options::default()
    }
}

fn certlogin(world: &World, portal: &str) -> String {
    let ret = url::form_urlencoded::byte_serialize(portal_url(world, portal, "/home").as_bytes())
        .collect::<String>();
    format!(
        "https://certlogin.bankart.localhost:{}/?return={ret}",
        world.gw.https.port()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_valid_certificate_logs_in_and_reaches_the_portal_with_certificate_headers() {
    let world = world(cert_options()).await;
    let mut browser = Browser::with_certificate(&world, "valid");
    // The login page's "Prijava s certifikatom" goes to the certificate-login host.
    let login_page = browser.follow(&portal_url(&world, "bws", "/home")).await;
    assert!(
        login_page.body.contains("certlogin.bankart.localhost"),
        "{}",
        login_page.body
    );
    let page = browser.certificate_login_follow(&world, "bws").await;
    assert_eq!(
        page.url,
        portal_url(&world, "bws", "/home"),
        "back on the portal (level 30)"
    );
    let json = browser
        .api(&portal_url(&world, "bws", "/home"))
        .await
        .json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["prehod-dev-ca:SI-DEV-1000"]
    );
    assert_eq!(received_header(&json, "x-auth-method"), ["certificate"]);
    assert_eq!(received_header(&json, "x-auth-level"), ["30"]);
    assert!(received_header(&json, "x-auth-cert-subject")[0].contains("Testni Uporabnik (valid)"));
    assert!(received_header(&json, "x-auth-cert-issuer")[0].contains("prehod dev CA"));
    assert_eq!(received_header(&json, "x-auth-cert-serial"), ["03e8"]);
    let der = openssl::x509::X509::from_pem(
        &std::fs::read(world.pki.path("clients/valid.crt")).expect("cert"),
    )
    .expect("pem")
    .to_der()
    .expect("der");
    assert_eq!(
        received_header(&json, "x-auth-cert-fingerprint"),
        [prehod_test_support::sha256_hex(&der).as_str()]
    );
    assert!(world
        .gw
        .metrics()
        .contains("prehod_certificate_verifications_total{outcome=\"success\",reason=\"ok\"} 1"));
}

/// Attacker's review of issue 13: with `return` optional (a login from the login host's home),
/// any path on the certificate-login host logged in — a favicon fetch, or an `<img>` on another
/// site that the browser answers with the certificate by itself, made a session and a login
/// event. Only `GET /` logs in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_certificate_hosts_root_logs_in() {
    let world = world(cert_options()).await;
    let port = world.gw.https.port();
    for path in [
        "/favicon.ico",
        "/logout",
        "/step-up",
        "/.prehod/sso",
        "/x?return=y",
    ] {
        let mut browser = Browser::with_certificate(&world, "valid");
        let page = browser
            .navigate(&format!("https://certlogin.bankart.localhost:{port}{path}"))
            .await;
        assert_eq!(page.status, 404, "{path}: {}", page.body);
        assert!(page.location.is_none(), "{path}: {:?}", page.location);
    }
    let post = Browser::with_certificate(&world, "valid")
        .post_form(
            &format!("https://certlogin.bankart.localhost:{port}/"),
            &[("a", "b")],
        )
        .await;
    assert_eq!(post.status, 404, "{}", post.body);
    assert_eq!(
        prehod_test_support::metrics::value_or_zero(
            &world.gw.metrics(),
            "prehod_logins_total{method=\"certificate\",outcome=\"success\"}"
        ),
        0.0
    );
    // The root still logs in.
    let mut browser = Browser::with_certificate(&world, "valid");
    let page = browser
        .navigate(&format!("https://certlogin.bankart.localhost:{port}/"))
        .await;
    assert_eq!(page.status, 302, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_bad_certificate_gets_its_own_reason_page_and_metric() {
    let world = world(cert_options()).await;
    let cases = [
        (
            None,
            "bws",
            "no_certificate",
            "Brskalnik ni poslal certifikata",
        ),
        (Some("expired"), "bws", "expired", "Certifikat je potekel"),
        (
            Some("not-yet-valid"),
            "bws",
            "not_yet_valid",
            "Certifikat še ni veljaven",
        ),
        (
            Some("untrusted"),
            "bws",
            "untrusted",
            "ni izdal izdajatelj, ki mu prehod zaupa",
        ),
        (
            Some("impostor"),
            "bws",
            "bad_signature",
            "morda ponarejen izdajatelj",
        ),
        (
            Some("no-client-auth"),
            "bws",
            "not_for_client_auth",
            "ni namenjen prijavi",
        ),
        (Some("revoked"), "bws", "revoked", "Certifikat je preklican"),
        (
            Some("valid"),
            "b2b",
            "user_not_allowed",
            "nima dostopa do aplikacije",
        ),
    ];
    for (cert, portal, label, text) in cases {
        let mut browser = match cert {
            Some(name) => Browser::with_certificate(&world, name),
            None => Browser::new(&world),
        };
        let page = browser.navigate(&certlogin(&world, portal)).await;
        assert_eq!(page.status, 403, "{cert:?}: {}", page.body);
        assert!(
            page.body.contains(text),
            "{cert:?}: expected {text:?} in {}",
            page.body
        );
        assert!(page.body.contains("Prijava s certifikatom ni uspela"));
        assert!(browser.cookie(SESSION).is_none(), "{cert:?} got no session");
        let metrics = world.gw.metrics();
        // Every reason's series exists at 0 from the start: the count proves the refusal.
        assert!(
            prehod_test_support::metrics::value_or_zero(
                &metrics,
                &format!(
                    "prehod_certificate_verifications_total{{outcome=\"failure\",reason=\"{label}\"}}"
                )
            ) >= 1.0,
            "{label} in {metrics}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_crl_takes_effect_without_restart_and_a_stale_one_fails_closed() {
    let world = world(cert_options()).await;
    let crl = world.pki.path("ca.crl.pem");
    let mut browser = Browser::with_certificate(&world, "valid");
    assert_eq!(
        browser.certificate_login(&world, "bws").await.status,
        302,
        "valid before"
    );
    // The CA revokes the valid certificate (serial 1000): within the refresh, it is refused.
    prehod_devpki::write_crl(
        world.pki.dir.path(),
        &crl,
        &[1000, 1002],
        time::Duration::days(7),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = login_with_certificate(&world, "valid", "bws").await;
        if page.status == 403 && page.body.contains("Certifikat je preklican") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the new CRL never took effect: {}",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    // The CA's CRL goes past its nextUpdate with no newer one to be had: without a grace
    // period, logins fail closed. (An expired CRL served in place of a fresh one is refused
    // instead: tests/revocation.rs.)
    prehod_devpki::write_crl(
        world.pki.dir.path(),
        &crl,
        &[1002],
        time::Duration::seconds(3),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = login_with_certificate(&world, "valid", "bws").await;
        if page.status == 403
            && page
                .body
                .contains("Preklicnosti certifikata trenutno ni mogoče preveriti")
        {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "a stale CRL was accepted: {}",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_hosts_never_ask_for_a_certificate() {
    let world = world(cert_options()).await;
    let handshake = |host: String| {
        s_client_command(&world)
            .args(["-msg", "-servername", &host])
            .stdin(std::process::Stdio::null())
            .output()
            .expect("openssl s_client")
    };
    for portal in prehod_test_support::PORTALS
        .iter()
        .copied()
        .chain(["login"])
    {
        let out = handshake(prehod_test_support::host(portal));
        let text = String::from_utf8_lossy(&out.stdout);
        assert!(
            text.contains("ServerHello"),
            "{portal}: no handshake?\n{text}"
        );
        assert!(
            !text.contains("CertificateRequest"),
            "{portal} asked for a client certificate"
        );
    }
    // The certificate-login host does ask: the check above can see a request when there is one.
    let out = handshake("certlogin.bankart.localhost".into());
    assert!(String::from_utf8_lossy(&out.stdout).contains("CertificateRequest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_decides_revocation_and_an_unreachable_responder_follows_its_policy() {
    // A real `openssl ocsp` responder; the anchor has no CRL, so OCSP alone decides.
    let w = certificate_world(CertOptions {
        crl: None,
        ocsp: Some(Ocsp::Responder),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "valid", "bws").await;
    assert_eq!(page.status, 302, "good at the responder: {}", page.body);
    let page = login_with_certificate(&w, "revoked", "bws").await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("Certifikat je preklican (OCSP)"),
        "{}",
        page.body
    );
    let metrics = w.gw.metrics();
    assert!(
        metrics.contains(
            "prehod_certificate_verifications_total{outcome=\"failure\",reason=\"revoked_ocsp\"} 1"
        ),
        "{metrics}"
    );
    assert!(
        metrics.contains("prehod_ocsp_request_duration_seconds_count 2"),
        "{metrics}"
    );
    drop(w);

    // Nobody answers: fail closed refuses…
    let w = certificate_world(CertOptions {
        ocsp: Some(Ocsp::Unreachable { soft_fail: false }),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "valid", "bws").await;
    assert_eq!(page.status, 403);
    assert!(page
        .body
        .contains("Preklicnosti certifikata trenutno ni mogoče preveriti"));
    assert!(w.gw.metrics().contains("prehod_ocsp_errors_total 1"));
    drop(w);

    // …soft-fail lets the login through.
    let w = certificate_world(CertOptions {
        ocsp: Some(Ocsp::Unreachable { soft_fail: true }),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "valid", "bws").await;
    assert_eq!(page.status, 302, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chain_depth_and_policy_allow_lists_are_enforced() {
    // A certificate under an intermediate: fine with the default depth (intermediates
    // allowed: 4), refused when no intermediate is allowed — while one issued by the anchor
    // itself still passes.
    let w = certificate_world(CertOptions::default()).await;
    let page = login_with_certificate(&w, "deep", "bws").await;
    assert_eq!(
        page.status, 302,
        "a chain of three within the default depth: {}",
        page.body
    );
    drop(w);
    let w = certificate_world(CertOptions {
        max_chain_depth: Some(0),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "deep", "bws").await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("Veriga certifikatov je predolga"),
        "{}",
        page.body
    );
    assert!(
        prehod_test_support::metrics::value_or_zero(
            &w.gw.metrics(),
            "prehod_certificate_verifications_total{outcome=\"failure\",reason=\"chain_too_deep\"}"
        ) >= 1.0
    );
    assert_eq!(login_with_certificate(&w, "valid", "bws").await.status, 302);
    drop(w);

    // An allow-list of certificate policies: the certificate with the listed OID passes, one
    // without any policy and one with another are refused.
    let w = certificate_world(CertOptions {
        policies: Some(prehod_devpki::files::POLICY_OID),
        ..CertOptions::default()
    })
    .await;
    assert_eq!(
        login_with_certificate(&w, "policy", "bws").await.status,
        302
    );
    let page = login_with_certificate(&w, "valid", "bws").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Politika tega certifikata ni dovoljena"));
    drop(w);
    let w = certificate_world(CertOptions {
        policies: Some("1.3.6.1.4.1.15284.9.9"),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "policy", "bws").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        prehod_test_support::metrics::value_or_zero(
            &w.gw.metrics(),
            "prehod_certificate_verifications_total{outcome=\"failure\",reason=\"policy_not_allowed\"}"
        ) >= 1.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_from_an_http_url_is_fetched_refreshed_and_reported() {
    let w = certificate_world(CertOptions {
        crl: Some(("ca.crl.pem", "1s")),
        crl_over_http: true,
        ..CertOptions::default()
    })
    .await;
    // Fetched at start: the CRL's revoked certificate is refused, the valid one logs in.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = login_with_certificate(&w, "revoked", "bws").await;
        if page.body.contains("Certifikat je preklican") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the CRL was never fetched: {}",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(login_with_certificate(&w, "valid", "bws").await.status, 302);
    // The distribution point publishes a new CRL: the next refresh applies it.
    prehod_devpki::write_crl(
        w.pki.dir.path(),
        &w.pki.path("ca.crl.pem"),
        &[1000],
        time::Duration::days(7),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(10);
    while login_with_certificate(&w, "valid", "bws").await.status != 403 {
        assert!(Instant::now() < deadline, "the new CRL was never fetched");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let metrics = w.gw.metrics();
    assert!(
        metrics.contains("prehod_crl_age_seconds{anchor=\"prehod dev CA\"}"),
        "{metrics}"
    );
    // The new CRL's nextUpdate, a timestamp seven days ahead.
    let next_update = prehod_test_support::metrics::value_or_zero(
        &metrics,
        "prehod_crl_next_update_timestamp_seconds{anchor=\"prehod dev CA\"}",
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64();
    assert!(
        next_update > now + 6.0 * 86_400.0 && next_update < now + 8.0 * 86_400.0,
        "{metrics}"
    );
    let ready: serde_json::Value = serde_json::from_str(&w.gw.wait_ready()).expect("json");
    assert_eq!(ready["certificate_revocation"][0]["loaded"], true);
    assert_eq!(ready["certificate_revocation"][0]["stale"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_crl_within_the_grace_period_is_still_used() {
    let w = certificate_world(CertOptions {
        crl: Some(("ca.crl.pem", "1s")),
        crl_grace: Some("2h"),
        ..CertOptions::default()
    })
    .await;
    // A CRL listing `revoked` whose nextUpdate passes 3 s from now, and no newer one after
    // it: within the 2 h grace it is still used.
    prehod_devpki::write_crl(
        w.pki.dir.path(),
        &w.pki.path("ca.crl.pem"),
        &[1002],
        time::Duration::seconds(3),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let ready: serde_json::Value = serde_json::from_str(&w.gw.wait_ready()).expect("json");
        if ready["certificate_revocation"][0]["stale"] == true {
            break;
        }
        assert!(Instant::now() < deadline, "the CRL never went stale");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(
        login_with_certificate(&w, "valid", "bws").await.status,
        302,
        "within the grace period"
    );
    let page = login_with_certificate(&w, "revoked", "bws").await;
    assert!(
        page.body.contains("Certifikat je preklican"),
        "the stale CRL still revokes"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_only_portal_requires_a_certificate_in_its_own_handshake() {
    let w = certificate_only_world().await;
    let url = portal_url(&w, "bws", "/api/report");
    // Without a certificate the handshake itself fails: that is what `required` means.
    assert!(
        Browser::new(&w).http.get(&url).send().await.is_err(),
        "no certificate, no connection"
    );
    // With one, every request is authenticated by it: no login, no cookie.
    let mut browser = Browser::with_certificate(&w, "valid");
    let page = browser.api(&url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let json = page.json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["prehod-dev-ca:SI-DEV-1000"]
    );
    assert_eq!(received_header(&json, "x-auth-method"), ["certificate"]);
    assert_eq!(received_header(&json, "x-auth-assertion").len(), 1);
    assert!(browser.cookie(SESSION).is_none());
    // The checks after the handshake still apply: a revoked certificate gets the reason page.
    let page = Browser::with_certificate(&w, "revoked")
        .navigate(&url)
        .await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Certifikat je preklican"));
    // Portals that are not certificate-only still never ask (see the s_client test), and a
    // certificate-only portal's handshake does.
    let out = s_client_raw(&w, &["-servername", &prehod_test_support::host("bws")]);
    assert!(out.contains("CertificateRequest"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_revoked_while_its_connection_stays_open_is_refused_on_it() {
    // The attack: a client keeps one keep-alive connection to a certificate-only portal open
    // after its certificate was revoked. The gateway keeps the chain's verdict for the
    // connection (issue 20); the CRL must still be checked on every request of it.
    let w = world(Options {
        portal_yaml: vec![("bws", "client_certificate: required")],
        ..cert_options()
    })
    .await;
    let url = portal_url(&w, "bws", "/api/report");
    let mut browser = Browser::with_certificate(&w, "valid");
    for _ in 0..3 {
        let page = browser.api(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
    }
    prehod_devpki::write_crl(
        w.pki.dir.path(),
        &w.pki.path("ca.crl.pem"),
        &[1000, 1002],
        time::Duration::days(7),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.navigate(&url).await;
        if page.status == 403 && page.body.contains("Certifikat je preklican") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the revoked certificate still reaches the portal on its open connection: {}",
            page.status
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_user_id_template_and_organisation_allow_lists() {
    let w = world(Options {
        certificates: Some(CertOptions {
            user_id: Some("{organization}/{serial_number}"),
            ..CertOptions::default()
        }),
        portal_yaml: vec![
            ("b2b", "allowed_organisations: [Banka X]"),
            ("bips", "allowed_organisations: [prehod development]"),
        ],
        ..Options::default()
    })
    .await;
    let mut browser = Browser::with_certificate(&w, "valid");
    let page = browser.certificate_login_follow(&w, "bips").await;
    assert_eq!(page.url, portal_url(&w, "bips", "/home"));
    let json = browser.api(&portal_url(&w, "bips", "/home")).await.json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["prehod-dev-ca:prehod development/SI-DEV-1000"]
    );
    // Another portal admits another organisation only: the same session (single sign-on
    // through the login host) is refused there…
    let page = browser.follow(&portal_url(&w, "b2b", "/")).await;
    assert_eq!(page.status, 403, "{}", page.body);
    // …and a certificate login straight for it is refused with the reason.
    let page = login_with_certificate(&w, "valid", "b2b").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("nima dostopa do aplikacije"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_not_listed_at_its_own_distribution_point_logs_in() {
    let w = certificate_world(CertOptions {
        distribution_points: true,
        crl: None,
        ..CertOptions::default()
    })
    .await;
    // The CA's distribution point, and a certificate that names it.
    w.distribution_point("dp.crl.pem", &[], time::Duration::days(7), "dp", 4242)
        .await;
    let page = login_with_certificate(&w, "dp", "bws").await;
    assert_eq!(page.status, 302, "not listed: {}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_at_its_distribution_point_and_an_unreachable_one_are_refused() {
    let w = certificate_world(CertOptions {
        distribution_points: true,
        ..CertOptions::default()
    })
    .await;
    w.distribution_point(
        "dp.crl.pem",
        &[4242],
        time::Duration::days(7),
        "dp-revoked",
        4242,
    )
    .await;
    let page = login_with_certificate(&w, "dp-revoked", "bws").await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("Certifikat je preklican"),
        "{}",
        page.body
    );
    // A distribution point nobody answers at: fail closed.
    let nowhere = prehod_test_support::free_port();
    prehod_devpki::issue_client_with_crl_dp(
        w.pki.dir.path(),
        "dp-nowhere",
        4343,
        &format!("http://127.0.0.1:{nowhere}/ca.crl"),
    )
    .expect("issue");
    let page = login_with_certificate(&w, "dp-nowhere", "bws").await;
    assert_eq!(page.status, 403);
    assert!(page
        .body
        .contains("Preklicnosti certifikata trenutno ni mogoče preveriti"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_with_an_unknown_critical_extension_is_refused() {
    let w = world(cert_options()).await;
    // rustls will not even load such a certificate as a client identity: use OpenSSL.
    let (ca, cert, key, port) = (
        w.pki.path("ca.crt"),
        w.pki.path("clients/critical.crt"),
        w.pki.path("clients/critical.key"),
        w.gw.https.port(),
    );
    let url = certlogin(&w, "bws");
    let path = url
        .split_once(&format!(":{port}"))
        .map(|(_, p)| p.to_owned())
        .expect("path");
    let answer = tokio::task::spawn_blocking(move || {
        use std::io::{Read, Write};
        let mut b =
            openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("tls");
        b.set_ca_file(&ca).expect("ca");
        b.set_certificate_file(&cert, openssl::ssl::SslFiletype::PEM)
            .expect("cert");
        b.set_private_key_file(&key, openssl::ssl::SslFiletype::PEM)
            .expect("key");
        let tcp = std::net::TcpStream::connect(("127.0.0.1", port)).expect("connect");
        let mut tls = b
            .build()
            .connect("certlogin.bankart.localhost", tcp)
            .expect("handshake");
        write!(
            tls,
            "GET {path} HTTP/1.1\r\nHost: certlogin.bankart.localhost\r\nConnection: close\r\n\r\n"
        )
        .expect("write");
        let mut out = String::new();
        let _ = tls.read_to_string(&mut out);
        out
    })
    .await
    .expect("join");
    assert!(answer.starts_with("HTTP/1.1 403"), "{answer}");
    assert!(answer.contains("neznano kritično razširitev"), "{answer}");
    assert!(w
        .gw
        .metrics()
        .contains("reason=\"unknown_critical_extension\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_can_have_its_own_chain_depth() {
    // The global limit allows intermediates; this anchor allows none.
    let w = certificate_world(CertOptions {
        anchor_yaml: Some("max_chain_depth: 0"),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "deep", "bws").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("Veriga certifikatov je predolga"));
    assert_eq!(login_with_certificate(&w, "valid", "bws").await.status, 302);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn several_anchors_each_with_their_own_user_id_mapping() {
    let w = certificate_world(CertOptions {
        second_anchor: true,
        ..CertOptions::default()
    })
    .await;
    // The first anchor maps users by serialNumber…
    let mut first = Browser::with_certificate(&w, "valid");
    first.certificate_login_follow(&w, "bws").await;
    let json = first.api(&portal_url(&w, "bws", "/home")).await.json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["prehod-dev-ca:SI-DEV-1000"]
    );
    // …the second (trusted here) by common name.
    let mut second = Browser::with_certificate(&w, "untrusted");
    second.certificate_login_follow(&w, "bws").await;
    let json = second.api(&portal_url(&w, "bws", "/home")).await.json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["second-ca:Testni Uporabnik (untrusted)"]
    );
    assert!(received_header(&json, "x-auth-cert-issuer")[0].contains("prehod untrusted dev CA"));
}

/// The attacks of issue 8: a certificate signed by an attacker's key under a trusted anchor's
/// exact name — with dates an attacker picks so that OpenSSL's *last* error is a date error
/// inside the clock skew — and chains whose CA certificates are out of date. Each is refused
/// with its own reason, gets no session, and nothing reaches the portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_certificates_and_out_of_date_chains_never_log_in() {
    let world = world(Options {
        certificates: Some(CertOptions {
            future_anchor: true,
            ..CertOptions::default()
        }),
        ..cert_options()
    })
    .await;
    let cases = [
        ("forged", "bad_signature", "morda ponarejen izdajatelj"),
        (
            "forged-not-yet-valid",
            "bad_signature",
            "morda ponarejen izdajatelj",
        ),
        (
            "forged-expired",
            "bad_signature",
            "morda ponarejen izdajatelj",
        ),
        ("forged-akid", "bad_signature", "morda ponarejen izdajatelj"),
        (
            "forged-intermediate",
            "bad_signature",
            "morda ponarejen izdajatelj",
        ),
        (
            "expired-intermediate",
            "ca_expired",
            "Certifikat izdajatelja je potekel",
        ),
        (
            "future-root",
            "ca_not_yet_valid",
            "Certifikat izdajatelja še ni veljaven",
        ),
    ];
    for (name, label, text) in cases {
        let mut browser = Browser::with_certificate(&world, name);
        let page = browser.certificate_login(&world, "bws").await;
        assert_eq!(page.status, 403, "{name}: {}", page.body);
        assert!(
            page.body.contains(text),
            "{name}: expected {text:?} in {}",
            page.body
        );
        assert!(browser.cookie(SESSION).is_none(), "{name} got a session");
        let metrics = world.gw.metrics();
        assert!(
            prehod_test_support::metrics::value_or_zero(
                &metrics,
                &format!(
                    "prehod_certificate_verifications_total{{outcome=\"failure\",reason=\"{label}\"}}"
                )
            ) >= 1.0,
            "{name}: {label} in {metrics}"
        );
        // Nothing reaches the portal: without a session it still sends the browser to log in.
        let portal = browser.navigate(&portal_url(&world, "bws", "/home")).await;
        assert_eq!(portal.status, 302, "{name}: the portal answered itself");
    }
    assert!(
        prehod_test_support::metrics::value_or_zero(
            &world.gw.metrics(),
            "prehod_certificate_verifications_total{outcome=\"success\",reason=\"ok\"}"
        ) == 0.0,
        "no forgery was accepted"
    );
}

/// Issue 8, point 8: OCSP for a certificate issued by an intermediate asks about it with the
/// intermediate as the issuer. Asked with the anchor's root instead, the responder has no
/// answer, and `soft_fail` lets a revoked certificate through.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ocsp_for_an_intermediate_issued_certificate_asks_with_its_real_issuer() {
    let w = certificate_world(CertOptions {
        crl: None,
        ocsp: Some(Ocsp::IntermediateResponder),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "deep", "bws").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(
        page.body.contains("Certifikat je preklican (OCSP)"),
        "{}",
        page.body
    );
    assert!(w.gw.metrics().contains(
        "prehod_certificate_verifications_total{outcome=\"failure\",reason=\"revoked_ocsp\"} 1"
    ));
}

/// Issue 8, point 5: a certificate session ends when its certificate is revoked — at the
/// first request after the new CRL is loaded, on every portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_session_ends_when_its_certificate_is_revoked() {
    let w = world(cert_options()).await;
    let mut browser = Browser::with_certificate(&w, "valid");
    let page = browser.certificate_login_follow(&w, "bws").await;
    assert_eq!(page.url, portal_url(&w, "bws", "/home"));
    // Single sign-on: bips gets the certificate session through the login host.
    let page = browser.follow(&portal_url(&w, "bips", "/home")).await;
    assert_eq!(page.url, portal_url(&w, "bips", "/home"), "{}", page.body);
    let page = browser.api(&portal_url(&w, "bips", "/home")).await;
    assert_eq!(page.status, 200, "the session works before");
    prehod_devpki::write_crl(
        w.pki.dir.path(),
        &w.pki.path("ca.crl.pem"),
        &[1000],
        time::Duration::days(7),
    )
    .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let page = browser.navigate(&portal_url(&w, "bips", "/home")).await;
        if page.status == 403 {
            assert!(
                page.body.contains("Prijava s certifikatom ni uspela"),
                "{}",
                page.body
            );
            break;
        }
        assert_eq!(page.status, 200);
        assert!(
            Instant::now() < deadline,
            "the revocation never reached the session"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let metrics = w.gw.metrics();
    assert!(
        prehod_test_support::metrics::value_or_zero(
            &metrics,
            "prehod_denials_total{reason=\"revoked\"}"
        ) >= 1.0,
        "{metrics}"
    );
}

/// Issue 8, point 4: user ids name their anchor, so two anchors' users (or an id equal to
/// another anchor's) never meet, and `allowed_users` takes the same form.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn certificate_user_ids_name_their_anchor_in_headers_and_allow_lists() {
    let w = world(Options {
        certificates: Some(CertOptions {
            second_anchor: true,
            ..CertOptions::default()
        }),
        portal_yaml: vec![
            ("bws", "min_level: 30"),
            ("b2b", "allowed_users: [\"prehod-dev-ca:SI-DEV-1000\"]"),
            // The same value under the other anchor's prefix: not the same user.
            (
                "acq",
                "allowed_users: [\"second-ca:SI-DEV-1000\", \"SI-DEV-1000\"]",
            ),
        ],
        ..Options::default()
    })
    .await;
    let mut browser = Browser::with_certificate(&w, "valid");
    let page = browser.certificate_login_follow(&w, "b2b").await;
    assert_eq!(page.url, portal_url(&w, "b2b", "/home"), "{}", page.body);
    let json = browser.api(&portal_url(&w, "b2b", "/home")).await.json();
    assert_eq!(
        received_header(&json, "x-auth-user"),
        ["prehod-dev-ca:SI-DEV-1000"]
    );
    let page = browser.follow(&portal_url(&w, "acq", "/home")).await;
    assert_eq!(
        page.status, 403,
        "another anchor's id, and a bare one, are other users"
    );
    let page = login_with_certificate(&w, "valid", "acq").await;
    assert_eq!(page.status, 403);
    assert!(page.body.contains("nima dostopa do aplikacije"));
}

/// `openssl s_client` to the gateway (`prehod_test_support::login::s_client`): SNI and `Host`
/// `sni`, optionally a client certificate of the test PKI, a TLS session saved to or resumed
/// from `session`, one HTTP/1.1 request. Returns what it printed (the handshake summary, then
/// the response).
fn s_client_to(
    w: &World,
    sni: &str,
    cert: Option<&str>,
    session: (&str, &std::path::Path),
    tls12: bool,
    path: &str,
) -> String {
    s_client(w, Some(sni), sni, cert, Some(session), tls12, path)
}

/// Issue 8, point 7: TLS resumption cannot skip the certificate check. A handshake on a host
/// that asks for a certificate gets no TLS 1.3 ticket, so its session is never resumed
/// elsewhere; a TLS 1.2 session made on the certificate-login host — with a forged
/// certificate — and resumed on a certificate-only portal (a resumed handshake runs no
/// verification) carries the verdict of the handshake that made it. A good one keeps working.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_tls_session_cannot_skip_the_certificate_check() {
    let w = world(Options {
        certificates: Some(CertOptions::default()),
        portal_yaml: vec![("bws", "client_certificate: required")],
        ..Options::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let sess = dir.path().join("session.pem");
    let certlogin_host = "certlogin.bankart.localhost";
    let portal = prehod_test_support::host("bws");
    // TLS 1.3: no ticket for a certificate host, so nothing to resume.
    let first = s_client_to(
        &w,
        certlogin_host,
        Some("valid"),
        ("-sess_out", &sess),
        false,
        "/",
    );
    assert!(first.contains("New, TLSv1.3"), "{first}");
    assert!(
        !sess.exists(),
        "a TLS 1.3 session of the certificate host was saved: {first}"
    );
    // …while an ordinary host's sessions still resume.
    let first = s_client_to(
        &w,
        &prehod_test_support::host("bips"),
        None,
        ("-sess_out", &sess),
        false,
        "/",
    );
    assert!(sess.exists(), "no ticket on an ordinary host: {first}");
    let again = s_client_to(
        &w,
        &prehod_test_support::host("bips"),
        None,
        ("-sess_in", &sess),
        false,
        "/",
    );
    assert!(again.contains("Reused, TLSv1.3"), "{again}");
    // TLS 1.2: the session resumes onto the certificate-only portal, with its verdict.
    for (cert, expected) in [
        ("forged-not-yet-valid", 403),
        ("forged", 403),
        ("valid", 200),
    ] {
        let _ = std::fs::remove_file(&sess);
        let first = s_client_to(
            &w,
            certlogin_host,
            Some(cert),
            ("-sess_out", &sess),
            true,
            "/",
        );
        assert!(first.contains("New, TLSv1.2"), "{cert}: {first}");
        assert!(sess.exists(), "{cert}: no session was saved: {first}");
        let out = s_client_to(&w, &portal, None, ("-sess_in", &sess), true, "/api/x");
        assert!(
            out.contains("Reused, TLSv1.2"),
            "{cert}: the session was not resumed, so this proves nothing: {out}"
        );
        assert_eq!(http_status(&out), Some(expected), "{cert}: {out}");
    }
}

/// Issue 8, point 9: the CertificateRequest names the anchors, so a browser offers only
/// certificates of those issuers; and the certificate-login host speaks the language chosen
/// on the login page.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_certificate_request_names_the_anchors_and_pages_follow_the_language() {
    let w = certificate_world(CertOptions {
        second_anchor: true,
        ..CertOptions::default()
    })
    .await;
    let dir = tempfile::tempdir().expect("tmp");
    let out = s_client_to(
        &w,
        "certlogin.bankart.localhost",
        None,
        ("-sess_out", &dir.path().join("s")),
        false,
        "/",
    );
    let names = out
        .split("Acceptable client certificate CA names")
        .nth(1)
        .and_then(|rest| rest.split("Requested Signature Algorithms").next())
        .unwrap_or_else(|| panic!("no CA names in the CertificateRequest: {out}"));
    assert!(names.contains("CN = prehod dev CA"), "{names}");
    assert!(names.contains("CN = prehod untrusted dev CA"), "{names}");
    assert!(!names.contains("rekono"), "{names}");
    // EN on the login page → the certificate link carries it → the refusal is in English.
    let mut browser = Browser::new(&w);
    let page = browser
        .navigate(&login_url(
            &w,
            &format!(
                "/?lang=en&return={}",
                url::form_urlencoded::byte_serialize(portal_url(&w, "bws", "/").as_bytes())
                    .collect::<String>()
            ),
        ))
        .await;
    let link = page
        .body
        .split("href=\"")
        .filter_map(|s| s.split('"').next())
        .map(unescape)
        .find(|s| s.starts_with("https://certlogin."))
        .unwrap_or_else(|| panic!("no certificate link: {}", page.body));
    assert!(link.contains("lang=en"), "{link}");
    let page = browser.navigate(&link).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("Your browser sent no certificate"),
        "{}",
        page.body
    );
}

/// Issue 8, point 6: revocation downloads can neither hang the gateway nor fill its memory. An
/// anchor whose CRL URL never answers (listed first) does not hold the next anchor's refresh;
/// one that streams without end is cut off; a distribution point that never answers refuses
/// the login within the fetch timeout.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn revocation_downloads_that_hang_or_never_end_are_cut_off() {
    for hostile in [
        prehod_test_support::servers::Hostile::Silent,
        prehod_test_support::servers::Hostile::Endless,
    ] {
        let addr = prehod_test_support::servers::hostile_http(hostile).await;
        let w = certificate_world(CertOptions {
            crl: Some(("ca.crl.pem", "1s")),
            crl_over_http: true,
            leading_anchor_crl: Some(format!("http://{addr}/hostile.crl")),
            fetch_timeout: Some("2s"),
            ..CertOptions::default()
        })
        .await;
        // The dev CA's CRL (served normally, after the hostile one in the anchor list) loads.
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let page = login_with_certificate(&w, "valid", "bws").await;
            if page.status == 302 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{hostile:?}: the next anchor's CRL never loaded: {}",
                page.body
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        // The hostile anchor's CRL never loads, and that is said.
        let deadline = Instant::now() + Duration::from_secs(10);
        while !w
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains("CRL not refreshed") && l.contains("hostile.crl"))
        {
            assert!(
                Instant::now() < deadline,
                "{hostile:?}: no word of the hostile CRL"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        if matches!(hostile, prehod_test_support::servers::Hostile::Endless) {
            assert!(
                w.gw.log_lines().iter().any(|l| l.contains("larger than")),
                "the endless CRL was not cut off by size"
            );
        }
    }
    // A distribution point that never answers: refused within the fetch timeout.
    let addr =
        prehod_test_support::servers::hostile_http(prehod_test_support::servers::Hostile::Silent)
            .await;
    let w = certificate_world(CertOptions {
        distribution_points: true,
        fetch_timeout: Some("2s"),
        ..CertOptions::default()
    })
    .await;
    prehod_devpki::issue_client_with_crl_dp(
        w.pki.dir.path(),
        "dp-silent",
        4242,
        &format!("http://{addr}/dp.crl"),
    )
    .expect("cert");
    let started = Instant::now();
    let page = login_with_certificate(&w, "dp-silent", "bws").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page
        .body
        .contains("Preklicnosti certifikata trenutno ni mogoče preveriti"));
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the login waited {:?} for a silent distribution point",
        started.elapsed()
    );
}

/// Issue 8, point 4: a certificate user id is `PREFIX:VALUE`, so a Rekono account whose `sub`
/// looks like one (`prehod-dev-ca:SI-DEV-1000`) could pass for that certificate's user on an
/// allow-list; such a token is refused, and the certificate's user keeps their portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rekono_sub_shaped_like_a_certificate_id_is_refused() {
    let w = world(Options {
        certificates: Some(CertOptions::default()),
        account_sub: Some(("srednja@rekono.localhost", "prehod-dev-ca:SI-DEV-1000")),
        portal_yaml: vec![
            ("bips", "min_level: 20"),
            ("bips", "allowed_users: [\"prehod-dev-ca:SI-DEV-1000\"]"),
        ],
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new(&w);
    let login_page = browser.follow(&portal_url(&w, "bips", "/home")).await;
    let rekono = browser.follow(&rekono_link(&w, &login_page)).await;
    let chooser = rekono_password(
        &w,
        &mut browser,
        &rekono,
        prehod_test_support::rekono::SREDNJA,
    )
    .await;
    let page = rekono_otp(
        &w,
        &mut browser,
        &chooser,
        prehod_test_support::rekono::SREDNJA_TOTP,
    )
    .await;
    assert!(page.status >= 400, "{}: {}", page.url, page.body);
    assert!(browser.cookie(SESSION).is_none(), "no session");
    let metrics = w.gw.metrics();
    assert!(
        metrics.contains("prehod_denials_total{reason=\"invalid_id_token\"} 1"),
        "refused as an invalid token: {} {metrics}",
        page.body
    );
}

/// Review finding: a certificate session outlived the expiry of its chain's intermediate (only
/// the leaf's notAfter was kept). It ends when the shortest-lived certificate of the chain
/// does (plus the anchor's skew, 1 s here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_session_ends_when_an_intermediate_of_its_chain_expires() {
    let w = certificate_world(CertOptions {
        anchor_yaml: Some("clock_skew: 1s"),
        ..CertOptions::default()
    })
    .await;
    let ends = time::OffsetDateTime::now_utc() + time::Duration::seconds(6);
    prehod_devpki::issue_client_under_intermediate(w.pki.dir.path(), "short", 5151, ends)
        .expect("issue");
    let mut browser = Browser::with_certificate(&w, "short");
    let page = browser.certificate_login_follow(&w, "bws").await;
    assert_eq!(page.url, portal_url(&w, "bws", "/home"), "{}", page.body);
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let page = browser.navigate(&portal_url(&w, "bws", "/home")).await;
        if page.status == 403 {
            assert!(
                time::OffsetDateTime::now_utc() > ends,
                "refused before the intermediate expired"
            );
            break;
        }
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            Instant::now() < deadline,
            "the session outlived its intermediate"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
}

/// Review findings: a session survived the revocation of its certificate at the certificate's
/// own distribution point, and a stale distribution-point CRL was accepted. The gateway keeps
/// refreshing the distribution points its sessions name, refuses the session at the first
/// request after the CRL lists it, and treats a CRL past its nextUpdate as unknown.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn distribution_point_revocation_ends_sessions_and_a_stale_one_fails_closed() {
    // A 1 s refresh: the distribution points the sessions name are fetched again each second.
    let w = certificate_world(CertOptions {
        distribution_points: true,
        crl: Some(("ca.crl.pem", "1s")),
        ..CertOptions::default()
    })
    .await;
    let crl = w
        .distribution_point("dp.crl.pem", &[], time::Duration::days(7), "dp-later", 4444)
        .await;
    let mut browser = Browser::with_certificate(&w, "dp-later");
    let page = browser.certificate_login_follow(&w, "bws").await;
    assert_eq!(page.url, portal_url(&w, "bws", "/home"), "{}", page.body);
    // Revoked at its distribution point after the login.
    prehod_devpki::write_crl(w.pki.dir.path(), &crl, &[4444], time::Duration::days(7))
        .expect("crl");
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let page = browser.navigate(&portal_url(&w, "bws", "/home")).await;
        if page.status == 403 {
            break;
        }
        assert_eq!(page.status, 200, "{}", page.body);
        assert!(
            Instant::now() < deadline,
            "the session survived the revocation"
        );
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    // A distribution point whose CRL is past its nextUpdate: refused, not trusted.
    w.distribution_point(
        "stale.crl.pem",
        &[],
        time::Duration::hours(-1),
        "dp-stale",
        4545,
    )
    .await;
    let page = login_with_certificate(&w, "dp-stale", "bws").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page
        .body
        .contains("Preklicnosti certifikata trenutno ni mogoče preveriti"));
}

/// Review finding: `allowed_organisations` compared the subject's O alone, so any anchor's CA
/// issuing that O passed. With several anchors an organisation is named with its anchor.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_allowed_organisation_is_one_anchors_organisation() {
    let w = world(Options {
        certificates: Some(CertOptions {
            second_anchor: true,
            ..CertOptions::default()
        }),
        portal_yaml: vec![(
            "b2b",
            "allowed_organisations: [\"prehod-dev-ca:prehod development\"]",
        )],
        ..Options::default()
    })
    .await;
    let page = login_with_certificate(&w, "valid", "b2b").await;
    assert_eq!(page.status, 302, "the dev CA's organisation: {}", page.body);
    // The second anchor's CA issued the same O: not the same organisation.
    let page = login_with_certificate(&w, "untrusted", "b2b").await;
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("nima dostopa do aplikacije"));
}

/// Review finding: a certificate login's code for the login host, planted in a victim's
/// browser, took over her single sign-on (every later portal logged her in as the attacker).
/// The code is bound to the browser of the login page that started it, and never replaces
/// another person's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_code_planted_in_another_browser_takes_nothing_over() {
    let w = world(cert_options()).await;
    let mut attacker = Browser::with_certificate(&w, "valid");
    let answer = attacker.certificate_login(&w, "acq").await;
    let code = answer.location.expect("a code for the login host");
    assert!(
        code.starts_with(&login_url(&w, "/.prehod/sso?code=")),
        "{code}"
    );
    let mut victim = Browser::new(&w);
    login_otp(
        &w,
        &mut victim,
        &portal_url(&w, "bips", "/home"),
        prehod_test_support::rekono::SREDNJA,
        prehod_test_support::rekono::SREDNJA_TOTP,
    )
    .await;
    let page = victim.navigate(&code).await;
    assert_eq!(page.location.as_deref(), Some(login_url(&w, "/").as_str()));
    // Her next portal still gets her own session.
    victim.follow(&portal_url(&w, "b2b", "/")).await;
    let me = victim
        .api(&portal_url(&w, "b2b", "/.prehod/me"))
        .await
        .json();
    assert_eq!(me["email"], prehod_test_support::rekono::SREDNJA.0, "{me}");
    assert_eq!(me["method"], "rekono");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_only_connection_across_a_reload_carries_the_new_identity() {
    // The attack: the identity headers and assertion of a certificate-only portal's requests
    // are prepared once per connection (issue 20). A keep-alive connection that stays open
    // across a reload changing what its certificate stands for (here the user id rule) must
    // carry the new identity, in its headers and its assertion, not the prepared one.
    let w = certificate_only_world().await;
    let url = portal_url(&w, "bws", "/api/report");
    let mut browser = Browser::with_certificate(&w, "valid");
    let seen = |json: &serde_json::Value| {
        let token = received_header(json, "x-auth-assertion")[0];
        let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(token)
            .expect("a JWT")
            .claims;
        let user = received_header(json, "x-auth-user")[0].to_owned();
        assert_eq!(
            claims["sub"],
            user.as_str(),
            "the assertion says the header's user"
        );
        (user, token.to_owned())
    };
    let (before, token) = seen(&browser.api(&url).await.json());
    assert_eq!(before, "prehod-dev-ca:SI-DEV-1000");
    assert_eq!(
        seen(&browser.api(&url).await.json()),
        (before.clone(), token),
        "prepared once, reused"
    );
    w.gw.reload_with(|yaml| {
        yaml.replacen(
            "      user_id: serial_number\n",
            "      user_id: common_name\n",
            1,
        )
    })
    .await;
    for _ in 0..2 {
        let page = browser.api(&url).await;
        assert_eq!(page.status, 200, "{}", page.body);
        let (after, _) = seen(&page.json());
        assert_ne!(after, before, "the new user id rule's id");
        assert!(after.contains("Testni Uporabnik"), "{after}");
    }
}

/// A connection's client certificate is fixed for the connection's life: what the gateway
/// checked is kept per connection (`cert::cached`), so a second handshake on it that presented
/// another certificate would have its requests answered with the first one's verdict. The
/// gateway never renegotiates, and a client's request to (TLS 1.2 renegotiation; TLS 1.3 has
/// none) is refused with OpenSSL's `no_renegotiation` alert: no second handshake runs, and the
/// connection keeps the identity of its one handshake. (With client renegotiation allowed this
/// saw a second ServerHello. OpenSSL 3 refuses a client's renegotiation by default as well, so
/// it passes without `SSL_OP_NO_RENEGOTIATION` too: `tls::tests::the_listeners_settings_refuse_renegotiation_under_every_profile`
/// is the test that fails without it.)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_cannot_renegotiate_a_certificate_connection() {
    let w = certificate_only_world().await;
    let portal = prehod_test_support::host("bws");
    let mut args: Vec<String> = ["-tls1_2", "-alpn", "http/1.1", "-servername", &portal]
        .map(str::to_owned)
        .into();
    for (flag, file) in [
        ("-cert", "clients/valid.crt"),
        ("-key", "clients/valid.key"),
    ] {
        args.push(flag.to_owned());
        args.push(w.pki.path(file).display().to_string());
    }
    let mut client = SClient::start(&w, &args);
    let request = format!("GET /api/x HTTP/1.1\r\nHost: {portal}\r\n\r\n");
    assert!(client.send(request.as_bytes()), "first request");
    assert!(
        client.wait(|c| c.count("HTTP/1.1 200") == 1),
        "the first answer:\n{}",
        client.printed()
    );
    // s_client's `R` line: SSL_renegotiate and a new handshake on the connection.
    assert!(client.send(b"R\n"), "R");
    assert!(
        client.wait(|c| c.count("ClientHello") == 2 && c.count("Alert") >= 1),
        "the gateway's answer to the renegotiation:\n{}",
        client.printed()
    );
    let _ = client.send(request.as_bytes());
    let out = client.finish();
    assert!(
        out.contains("<<< TLS 1.2, Alert [length 0002], warning no_renegotiation"),
        "the gateway refuses with no_renegotiation:\n{out}"
    );
    assert_eq!(
        out.lines().filter(|l| l.ends_with(", ServerHello")).count(),
        1,
        "one handshake on the connection, never a second:\n{out}"
    );
}
