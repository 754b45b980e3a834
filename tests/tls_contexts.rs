//! The per-certificate TLS contexts switched to by SNI (`SSL_set_SSL_CTX`): an attacker's
//! review of them (2026-12-06), each attack against the real gateway with real sockets and TLS
//! — cross-host resumption, SNI spellings, untrusted certificates, HelloRetryRequest, ALPN, a
//! reload with a mismatched key or another TLS profile. Every one held; each stays as a guard.

use std::collections::BTreeSet;
use std::time::Duration;

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use prehod_test_support::login::*;
use prehod_test_support::{host, six_demo_portals, Gateway, Pki};

/// One TLS 1.2 handshake for `sni` offering only `cipher`; the suite negotiated, if any.
fn tls12_with(gw: &Gateway, sni: &str, cipher: &str) -> Option<String> {
    let mut b = SslConnector::builder(SslMethod::tls()).expect("builder");
    b.set_ca_file(&gw.ca).expect("CA");
    b.set_security_level(0);
    b.set_min_proto_version(Some(SslVersion::TLS1_2))
        .expect("min");
    b.set_max_proto_version(Some(SslVersion::TLS1_2))
        .expect("max");
    b.set_cipher_list(cipher).expect("cipher");
    let tcp = std::net::TcpStream::connect(gw.https).expect("connect");
    let tls = b.build().connect(sni, tcp).ok()?;
    Some(tls.ssl().current_cipher()?.name().to_owned())
}

/// Every TLS 1.2 cipher suite this OpenSSL knows, at any security level.
fn all_tls12_ciphers() -> Vec<String> {
    let out = std::process::Command::new("openssl")
        .args([
            "ciphers",
            "-tls1_2",
            "-s",
            "ALL:COMPLEMENTOFALL:@SECLEVEL=0",
        ])
        .output()
        .expect("openssl ciphers");
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .split(':')
        .filter(|c| !c.starts_with("TLS_"))
        .map(str::to_owned)
        .collect()
}

fn accepted_tls12(gw: &Gateway, sni: &str, candidates: &[String]) -> BTreeSet<String> {
    candidates
        .iter()
        .filter(|c| tls12_with(gw, sni, c).is_some())
        .cloned()
        .collect()
}

/// `tls.profile` is one of the settings a reload cannot change: the listener keeps its profile
/// until a restart (crates/gateway/src/live.rs logs a WARN). After `SSL_set_SSL_CTX` a handshake
/// reads its cipher list (`SSL_get_ciphers` falls back to `s->ctx`), signature algorithms,
/// security level and DH parameters from the certificate's context, while versions, options
/// and groups stay the listener's (copied at `SSL_new`) — so the certificates' contexts of a
/// reloaded snapshot are built with the listener's profile, not the file's (live.rs). Before
/// that, a reload from intermediate to modern gave TLS 1.2 (the listener's) with a `modern`
/// context's cipher list — rust-openssl's defaults, as `modern` sets no TLS 1.2 list, with
/// DHE-RSA suites neither profile offers; they need an RSA certificate, which the config check
/// refuses under `modern`, so with valid configurations the suites stayed the intermediate
/// ones and this test passed either way: it guards the mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_that_changes_tls_profile_leaves_the_tls12_suites_as_they_were() {
    let pki = Pki::new();
    let (setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    let candidates = all_tls12_ciphers();
    assert!(candidates.len() > 40, "{candidates:?}");
    let acq = host("acq");
    let before = accepted_tls12(&gw, &acq, &candidates);
    let expected: BTreeSet<String> = [
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    ]
    .into_iter()
    .map(str::to_owned)
    .collect();
    assert_eq!(before, expected);

    gw.reload_with(|yaml| yaml.replacen("tls:\n", "tls:\n  profile: modern\n", 1))
        .await;
    // TLS 1.2 stays (the listener's versions) with the same suites, nothing more.
    assert_eq!(accepted_tls12(&gw, &acq, &candidates), expected);
}

async fn bws_required_world() -> World {
    world(Options {
        certificates: Some(CertOptions::default()),
        portal_yaml: vec![("bws", "client_certificate: required")],
        ..Options::default()
    })
    .await
}

/// The certificate-only portal's upstream was reached (the demo portal's JSON names itself).
fn reached_bws(out: &str) -> bool {
    http_status(out) == Some(200) || out.contains("\"portal\":\"bws\"")
}

/// Attack: a TLS session obtained on the public host `acq` (no certificate asked, TLS 1.2
/// session id / ticket, and a TLS 1.3 ticket) is presented on the certificate-only `bws`,
/// with SNI `bws` and without SNI. A resumed handshake skips the certificate callback, so the
/// handshake never switches context nor asks for a certificate: what must hold is that the
/// request is refused all the same.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_public_hosts_session_resumed_on_the_certificate_only_portal_reaches_nothing() {
    let w = bws_required_world().await;
    let dir = tempfile::tempdir().expect("tmp");
    let acq = host("acq");
    let bws = host("bws");
    for tls12 in [true, false] {
        for sni in [Some(bws.as_str()), None] {
            let sess = dir
                .path()
                .join(format!("acq-{tls12}-{}.pem", sni.is_some()));
            let first = s_client(
                &w,
                Some(&acq),
                &acq,
                None,
                Some(("-sess_out", &sess)),
                tls12,
                "/",
            );
            assert!(sess.exists(), "no session on acq: {first}");
            let out = s_client(
                &w,
                sni,
                &bws,
                None,
                Some(("-sess_in", &sess)),
                tls12,
                "/api/x",
            );
            eprintln!(
                "tls12={tls12} sni={sni:?}: reused={} status={:?}",
                out.contains("Reused,"),
                http_status(&out)
            );
            assert!(
                !reached_bws(&out),
                "tls12={tls12} sni={sni:?}: acq's session reached bws: {out}"
            );
        }
    }
}

/// Attack: SNI spellings that miss the certificate-only portal's policy (exact, lower-cased
/// match) while the Host header names it: mixed case, a trailing dot, no SNI, another host's
/// name, a wildcard-looking name, a name no certificate covers. No client certificate.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sni_spellings_do_not_reach_the_certificate_only_portal_without_a_certificate() {
    let w = bws_required_world().await;
    let bws = host("bws");
    let spellings = [
        Some("BWS.Bankart.LOCALHOST".to_owned()),
        Some(format!("{bws}.")),
        None,
        Some(host("acq")),
        Some(host("login")),
        Some(host("certlogin")),
        Some("*.bankart.localhost".to_owned()),
        Some("bws.evil.localhost".to_owned()),
        Some("bws".to_owned()),
    ];
    for sni in spellings {
        for tls12 in [true, false] {
            let out = s_client(&w, sni.as_deref(), &bws, None, None, tls12, "/api/x");
            eprintln!("sni={sni:?} tls12={tls12}: status={:?}", http_status(&out));
            assert!(!reached_bws(&out), "sni={sni:?} tls12={tls12}: {out}");
        }
    }
    // The mixed-case spelling is the portal's: its handshake asks for (and demands) a
    // certificate like the lower-case one.
    let out = s_client_raw(&w, &["-servername", "BWS.Bankart.LOCALHOST"]);
    assert!(out.contains("CertificateRequest"));
}

/// Attack: a certificate of no trusted anchor (self-signed / forged) on the certificate-only
/// portal, in TLS 1.2 and 1.3, and the login host's optional request answered with one and
/// the session then resumed on `bws` (TLS 1.2; no TLS 1.3 ticket is issued there).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_untrusted_certificate_gets_nothing_on_the_certificate_only_portal() {
    let w = bws_required_world().await;
    let bws = host("bws");
    for tls12 in [true, false] {
        for cert in ["forged", "valid"] {
            let out = s_client(&w, Some(&bws), &bws, Some(cert), None, tls12, "/api/x");
            eprintln!("{cert} tls12={tls12}: status={:?}", http_status(&out));
            assert_eq!(
                reached_bws(&out),
                cert == "valid",
                "{cert} tls12={tls12}: {out}"
            );
        }
    }
}

/// Attack: a TLS 1.3 HelloRetryRequest (the client's only key share is for P-521, which the
/// gateway does not take, so it asks again for P-256). The certificate callback runs on the
/// first ClientHello only (pingora clears it; after the switch the SSL's CERT is the
/// context's, which has none): the second ClientHello must still meet the demand set up by
/// the first — no certificate or a forged one gets no connection on `bws`; a valid one does;
/// the public host does not ask; ALPN still answers h2.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hello_retry_request_keeps_each_hosts_certificate_policy_and_alpn() {
    let w = bws_required_world().await;
    let bws = host("bws");
    let acq = host("acq");
    let hrr = ["-tls1_3", "-groups", "P-521:P-256", "-alpn", "h2,http/1.1"];
    let cert_args = |name: &str| {
        [
            "-cert".to_owned(),
            w.pki
                .path(&format!("clients/{name}.crt"))
                .display()
                .to_string(),
            "-key".to_owned(),
            w.pki
                .path(&format!("clients/{name}.key"))
                .display()
                .to_string(),
        ]
    };
    // Public host: retried, not asked, h2.
    let out = s_client_raw(&w, &[&hrr[..], &["-servername", &acq]].concat());
    // s_client -msg prints the HelloRetryRequest as a ServerHello: two ClientHellos show it.
    assert_eq!(out.matches("], ClientHello").count(), 2, "no retry: {out}");
    assert!(!out.contains("CertificateRequest"), "{out}");
    assert!(out.contains("ALPN protocol: h2"), "{out}");
    // bws: asked after the retry; no certificate → alert; forged → alert; valid → h2.
    let out = s_client_raw(&w, &[&hrr[..], &["-servername", &bws]].concat());
    assert_eq!(out.matches("], ClientHello").count(), 2, "no retry: {out}");
    assert!(out.contains("CertificateRequest"), "{out}");
    for (name, ok) in [("forged", false), ("valid", true)] {
        let c = cert_args(name);
        let c: Vec<&str> = c.iter().map(String::as_str).collect();
        let mut args: Vec<&str> = hrr.to_vec();
        args.extend(["-servername", &bws]);
        args.extend(c);
        // Send a request so that a TLS 1.3 post-handshake refusal shows too.
        let mut child = s_client_command(&w)
            .arg("-ign_eof")
            .args(args.iter().map(|a| a.replace("h2,http/1.1", "http/1.1")))
            .stdin(std::process::Stdio::piped())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("s_client");
        use std::io::Write;
        child
            .stdin
            .take()
            .expect("stdin")
            .write_all(
                format!("GET /api/x HTTP/1.1\r\nHost: {bws}\r\nConnection: close\r\n\r\n")
                    .as_bytes(),
            )
            .expect("write");
        let out =
            String::from_utf8_lossy(&child.wait_with_output().expect("out").stdout).into_owned();
        eprintln!("HRR {name}: status={:?}", http_status(&out));
        assert_eq!(reached_bws(&out), ok, "HRR {name}: {out}");
    }
}

/// ALPN is answered from the context switched to: h2 when offered, http/1.1 otherwise, on a
/// public host, the certificate-login host, a name no certificate covers and without SNI.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn alpn_answers_as_before_on_every_kind_of_host() {
    let w = bws_required_world().await;
    let acq = host("acq");
    let certlogin = host("certlogin");
    for sni in [
        Some(acq.as_str()),
        Some(certlogin.as_str()),
        Some("nothing.example"),
        None,
    ] {
        for (offer, expected) in [("h2,http/1.1", "h2"), ("http/1.1", "http/1.1")] {
            for version in ["-tls1_2", "-tls1_3"] {
                let mut args = vec![version, "-alpn", offer];
                match sni {
                    Some(s) => args.extend(["-servername", s]),
                    None => args.push("-noservername"),
                }
                let out = s_client_raw(&w, &args);
                assert!(
                    out.contains(&format!("ALPN protocol: {expected}")),
                    "{sni:?} {offer} {version}: {out}"
                );
            }
        }
        let mut args = vec!["-tls1_3"];
        match sni {
            Some(s) => args.extend(["-servername", s]),
            None => args.push("-noservername"),
        }
        let out = s_client_raw(&w, &args);
        assert!(out.contains("No ALPN negotiated"), "{sni:?} no ALPN: {out}");
    }
}

/// A certificate whose key is another one's (here the CA's key beside the server certificate)
/// is refused by a reload, with a message, and the previous certificate keeps serving: never a
/// silent failure at handshake time.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_key_that_does_not_match_its_certificate_is_refused() {
    let pki = Pki::new();
    let (setup, _portals) = six_demo_portals().await;
    let gw = Gateway::start(&pki, &setup);
    let server_key = pki.path("server.key").display().to_string();
    gw.rewrite_and_hang_up(|yaml| {
        yaml.replace(&server_key, &pki.path("ca.key").display().to_string())
    });
    let value = |series: &str| prehod_test_support::metrics::value_or_zero(&gw.metrics(), series);
    prehod_test_support::wait_for("the refused reload", Duration::from_secs(10), || {
        value("prehod_config_reloads_total{result=\"failed\"}") >= 1.0
    });
    let log = std::fs::read_to_string(&gw.log).unwrap_or_default();
    let refused: Vec<&str> = log
        .lines()
        .filter(|l| l.contains("configuration reload refused"))
        .collect();
    eprintln!("{refused:#?}");
    assert!(
        refused
            .iter()
            .any(|l| l.contains("does not belong to the certificate")),
        "{log}"
    );
    assert_eq!(value("prehod_config_reloads_total{result=\"ok\"}"), 0.0);
    // The old certificate still serves.
    assert!(tls12_with(&gw, &host("acq"), "ECDHE-ECDSA-AES128-GCM-SHA256").is_some());
}
