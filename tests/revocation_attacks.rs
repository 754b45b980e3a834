//! Revocation data an attacker on the CRL/OCSP path serves after the issue-22 fixes (the
//! independent attacker's review of issue 22): data a CA of the anchor really signed — no key
//! is forged — but that must not stand for the certificate at hand: another key's CRL under
//! the same issuer name, another partition's CRL named by directoryName, a certificate whose
//! issuer name is spelt otherwise than its CA's subject; and the load a session or a login
//! may put on the refresh and the downloads. Each test failed before its fix (see the
//! commits of branch crlfix).

use std::time::{Duration, Instant};

use prehod_test_support::login::*;
use prehod_test_support::revocation::*;

use openssl::asn1::Asn1Time;
use openssl::bn::BigNum;
use openssl::ec::{EcGroup, EcKey};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::x509::extension::{BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::X509Builder;

/// The scene of tests/revocation.rs with `crl_refresh`, a 5 s fetch timeout and 20 s waits.
async fn scene(path: CrlPath, crl_refresh: &'static str) -> Scene {
    let options = SceneOptions {
        crl_refresh,
        fetch_timeout: Some("5s"),
        wait: Duration::from_secs(20),
        ..SceneOptions::default()
    };
    Scene::with(path, options).await
}

/// Polls `done` every 200 ms for up to 20 s.
async fn until(what: &str, done: impl AsyncFnMut() -> bool) {
    prehod_test_support::revocation::until(what, Duration::from_secs(20), done).await;
}

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

/// A second CA certificate under the intermediate's exact name, with a key of its own, issued
/// by the root: what a CA key renewal (e.g. AD CS "renew with a new key") leaves, both
/// certificates in the anchor's `ca` so that the certificates of either key verify.
fn renewed_intermediate(root: &TestCa, int: &TestCa) -> TestCa {
    let key = PKey::from_ec_key(
        EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve"))
            .expect("key"),
    )
    .expect("pkey");
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(
        &BigNum::from_u32(0x7a11)
            .expect("bn")
            .to_asn1_integer()
            .expect("int"),
    )
    .expect("serial");
    b.set_subject_name(int.cert.subject_name())
        .expect("subject");
    b.set_issuer_name(root.cert.subject_name()).expect("issuer");
    b.set_pubkey(&key).expect("pubkey");
    b.set_not_before(&Asn1Time::from_unix(now() - 3600).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(365).expect("t"))
        .expect("na");
    b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc"))
        .expect("bc");
    b.append_extension(
        KeyUsage::new()
            .critical()
            .key_cert_sign()
            .crl_sign()
            .build()
            .expect("ku"),
    )
    .expect("ku");
    let ski = SubjectKeyIdentifier::new()
        .build(&b.x509v3_context(None, None))
        .expect("ski");
    b.append_extension(ski).expect("ski");
    b.sign(&root.key, MessageDigest::sha256()).expect("sign");
    TestCa {
        cert: b.build(),
        key,
    }
}

/// Review finding 1, as it was before its fix: The anchor holds two CA certificates of one name (the intermediate and its
/// renewal with a new key), each key with its own CRL at its own URL, as a CA that renewed its
/// key publishes them. A CRL source is bound to the issuer's *name* only: any key bearing that
/// name may sign what is served there (`Anchor::cas_named`). So the attacker serves the other
/// key's current CRL — genuine, fresh, not revoking A — at the URL of the CRL that revoked A:
/// it is taken (another key is another mark series, and its thisUpdate is not earlier), and
/// the revoked A logs in again and its session answers 200 again. Nothing is logged.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_keys_crl_under_the_same_issuer_name_does_not_unrevoke() {
    let s = scene(CrlPath::Configured, "1s").await;
    let renewed = renewed_intermediate(&s.root, &s.int);
    // The anchor's `ca` gets the renewed certificate, and its CRL a source of its own.
    let bundle = s.w.pki.path("ca-and-intermediate.crt");
    let mut pem = std::fs::read(&bundle).expect("bundle");
    pem.extend(renewed.cert.to_pem().expect("pem"));
    std::fs::write(&bundle, pem).expect("bundle");
    let config = s.w.gw.dir.path().join("proxy.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let int_source = format!(
        "{{source: \"{}\", issuer: prehod dev intermediate CA}}",
        s.srv.url("/int.crl")
    );
    assert!(yaml.contains(&int_source), "{yaml}");
    let both = format!(
        "{int_source}, {{source: \"{}\", issuer: prehod dev intermediate CA}}",
        s.srv.url("/int-1.crl")
    );
    std::fs::write(&config, yaml.replace(&int_source, &both)).expect("config");
    s.srv
        .serve("/int-1.crl", renewed.crl(&CrlSpec::numbered(1, &[])));
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
    sighup(s.w.gw.pid());
    until("the reload", async || {
        s.w.gw
            .metrics()
            .contains("prehod_config_reloads_total{result=\"ok\"} 1")
    })
    .await;
    let mut session = s
        .revoke_a(
            s.int.crl(&CrlSpec::numbered(1, &[])),
            s.int.crl(&CrlSpec::numbered(2, &[A])),
        )
        .await;
    // The attacker: the renewed key's own current CRL, at the old key's URL.
    s.serve(renewed.crl(&CrlSpec::numbered(3, &[])));
    s.fetched_at("/int.crl", 3).await;
    let page = s.login("A").await;
    let live = s.portal(&mut session).await;
    assert!(
        revoked_page(&page) && live == 403,
        "the renewed key's CRL stood for the old key's: revoked A's login got {}, its live session {live}: {}",
        page.status,
        page.body
    );
}

/// An issuingDistributionPoint whose distributionPoint names a partition by directoryName
/// only (`CN=NAME`), as CAs that partition their CRLs by name write it.
fn partition_by_name(name: &str) -> Vec<u8> {
    let dn = prehod_test_support::der::seq(&[prehod_test_support::der::set(&[
        prehod_test_support::der::seq(&[
            prehod_test_support::der::oid("2.5.4.3"),
            prehod_test_support::der::tlv(0x0c, name.as_bytes()),
        ]),
    ])]);
    // distributionPoint [0] { fullName [0] { directoryName [4] EXPLICIT Name } }
    let general_name = prehod_test_support::der::tlv(0xa4, &dn);
    prehod_test_support::der::seq(&[prehod_test_support::der::explicit(
        0,
        &prehod_test_support::der::tlv(0xa0, &general_name),
    )])
}

/// Review finding 2, as it was before its fix: A CRL whose issuingDistributionPoint names its partition by directoryName (no
/// URI) is taken at any URL, as any scope (`check_scope` compares URIs only, and an IDP
/// without URIs passes): the attacker serves another partition's genuine, current CRL where
/// the CRL that revoked A is expected, and the revoked A logs in again and its session
/// answers 200 again. RFC 5280 §6.3.3 (b)(2)(i): an IDP's name must match one of the
/// certificate's distribution point names (the URL here), else the CRL does not cover it.
async fn another_named_partition_does_not_unrevoke(path: CrlPath) {
    let s = scene(path, "1s").await;
    let mut session = s
        .revoke_a(
            s.int.crl(&CrlSpec::numbered(1, &[])),
            s.int.crl(&CrlSpec::numbered(2, &[A])),
        )
        .await;
    let mut other = CrlSpec::numbered(3, &[]);
    other.issuing_distribution_point = Some(partition_by_name("prehod partition 2"));
    s.serve(s.int.crl(&other));
    s.fetched(3).await;
    let page = s.login("A").await;
    let live = s.portal(&mut session).await;
    assert!(
        revoked_page(&page) && live == 403,
        "{path:?}: partition 2's CRL stood for A's: revoked A's login got {}, its live session {live}: {}",
        page.status,
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_named_partition_at_a_configured_url_does_not_unrevoke() {
    another_named_partition_does_not_unrevoke(CrlPath::Configured).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_named_partition_at_a_distribution_point_does_not_unrevoke() {
    another_named_partition_does_not_unrevoke(CrlPath::DistributionPoint).await;
}

/// Review finding 3, as it was before its fix: Every request of a certificate session whose distribution point's CRL is not
/// cached (here: the attacker serves garbage at it until the last good CRL ages out of the
/// cache) wakes the background refresh at once (`DistributionPoints::still_valid` →
/// `wanted.notify_one()`), and a refresh refetches, parses and checks *every* CRL source and
/// watched distribution point of the anchor. The request itself is refused (403), but nothing
/// bounds how often it may wake the refresh: a client with any certificate session turns each
/// cheap request into a download and parse of all of the anchor's CRLs (real ones weigh
/// megabytes; the refresh parses them on the gateway's runtime) — `crl_refresh` no longer
/// bounds the load on the gateway or on the CA's CRL servers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_cannot_drive_the_crl_refresh_at_its_request_rate() {
    // crl_refresh 10s: a downloaded distribution-point CRL is kept 2 × 10 s + 5 s (fetch_timeout).
    let s = scene(CrlPath::DistributionPoint, "10s").await;
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
    until("A logs in", async || s.login("A").await.status == 302).await;
    let mut session = s.session("A").await;
    // The attacker now answers garbage at the distribution point: the CRL A's session rests on
    // ages out of the cache, and the session is refused (fail closed, as designed).
    s.serve(b"not a CRL".to_vec());
    let deadline = Instant::now() + Duration::from_secs(40);
    while s.portal(&mut session).await != 403 {
        assert!(Instant::now() < deadline, "the session never lost its CRL");
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // 40 requests in about 4 s, under half of one crl_refresh period.
    let before = s.srv.gets("/dp.crl");
    let started = Instant::now();
    for _ in 0..40 {
        assert_eq!(s.portal(&mut session).await, 403);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let fetched = s.srv.gets("/dp.crl") - before;
    let periods = started.elapsed().as_secs() / 10 + 1;
    assert!(
        fetched as u64 <= periods + 2,
        "40 refused requests in {:?} made the gateway fetch the distribution point {fetched} times (crl_refresh 10s allows about {periods})",
        started.elapsed()
    );
}

/// Review finding 4, as it was before its fix: CRL entries and certificates are matched by the *bytes* of the issuer's name
/// (`revocation_key`: SHA-256 of the DER), while OpenSSL builds the chain by the canonical
/// name (RFC 5280 §7.1: case and string type do not matter). A certificate whose issuer field
/// the CA wrote with another string type than its own subject (PrintableString vs UTF8String,
/// as CAs that re-encode names do) verifies, but no CRL entry ever matches it: the issuing
/// CA's CRL lists A, and A logs in. The configured sources do not even fail closed: they are
/// keyed by the same bytes, so A's issuer "has no source" and the CRL check is skipped.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_whose_issuer_name_is_encoded_otherwise_is_refused() {
    use openssl::asn1::Asn1Type;
    use openssl::x509::X509NameBuilder;
    let s = scene(CrlPath::Configured, "1s").await;
    // The intermediate's name, each attribute as a PrintableString.
    let mut name = X509NameBuilder::new().expect("name");
    for entry in s.int.cert.subject_name().entries() {
        let value = entry.data().to_string().expect("utf8");
        name.append_entry_by_nid_with_type(entry.object().nid(), &value, Asn1Type::PRINTABLESTRING)
            .expect("entry");
    }
    let name = name.build();
    assert_ne!(
        name.to_der().expect("der"),
        s.int.subject_der(),
        "the dev intermediate's name is not already PrintableString"
    );
    // A certificate standing for that name (only its subject is used: the intermediate's key
    // signs, and the gateway finds the intermediate in the anchor's `ca`).
    let mut b = X509Builder::new().expect("builder");
    b.set_version(2).expect("v3");
    b.set_subject_name(&name).expect("subject");
    b.set_issuer_name(&name).expect("issuer");
    b.set_pubkey(&s.int.key).expect("key");
    b.set_not_before(&Asn1Time::from_unix(now() - 3600).expect("t"))
        .expect("nb");
    b.set_not_after(&Asn1Time::days_from_now(30).expect("t"))
        .expect("na");
    b.sign(&s.int.key, MessageDigest::sha256()).expect("sign");
    let reencoded = TestCa {
        cert: b.build(),
        key: s.int.key.clone(),
    };
    reencoded.issue(
        &s.w.pki,
        "R",
        &Issue {
            user: "SI-DEV-5003",
            serial: &serial(5003),
            crl_url: None,
            send_chain: false,
            ocsp_signer: false,
        },
    );
    // The intermediate's genuine, current CRL revokes R (and A).
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[A, 5003])));
    until("A is refused as revoked", async || {
        revoked_page(&s.login("A").await)
    })
    .await;
    let page = s.login("R").await;
    assert!(
        revoked_page(&page),
        "R, listed in its issuer's CRL, got {}: {}",
        page.status,
        page.body
    );
}

/// Review finding 5 (low), as it was before its fix: A distribution point whose CRL is refused is downloaded and
/// parsed again at every login attempt that names it: no negative cache, no single flight,
/// and the parse (OpenSSL's and x509-parser's, of up to 16 MiB, before the signature is even
/// looked at) runs on the request's runtime thread. Whoever holds a certificate naming a
/// distribution point on a path they control makes each handshake+login cost the gateway a
/// 16 MiB download and a full CRL parse. Bound: at most a couple of fetches per
/// `crl_refresh` for a URL that keeps failing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_distribution_point_crl_is_not_refetched_and_reparsed_at_every_login() {
    let s = scene(CrlPath::DistributionPoint, "60s").await;
    // Just under 16 MiB: ~720 000 entries, under the intermediate's name, signed by another key.
    let impostor = TestCa {
        cert: s.int.cert.clone(),
        key: PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve"))
                .expect("key"),
        )
        .expect("pkey"),
    };
    let mut big = CrlSpec::numbered(9, &[]);
    big.revoked = (0..720_000u64).map(|i| serial(1_000_000 + i)).collect();
    let crl = impostor.crl(&big);
    assert!(crl.len() < 16 * 1024 * 1024, "{}", crl.len());
    s.serve(crl);
    let before = s.srv.gets("/dp.crl");
    let started = Instant::now();
    for _ in 0..10 {
        assert_eq!(s.login("A").await.status, 403);
    }
    let fetched = s.srv.gets("/dp.crl") - before;
    let refused: Vec<String> =
        s.w.gw
            .metrics()
            .lines()
            .filter(|l| l.starts_with("prehod_crl_refused_total") && !l.ends_with(" 0"))
            .map(str::to_owned)
            .collect();
    assert!(
        fetched <= 2,
        "10 login attempts in {:?} downloaded the same refused 16 MiB CRL {fetched} times: {refused:?}",
        started.elapsed(),
    );
}

/// Measurement for review finding 5 (not an assertion of the design): how long an unrelated request
/// (bips without a session: a redirect to the login) takes while 4 clients keep logging in with
/// a certificate whose distribution point serves the ~16 MiB refused CRL.
#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
#[ignore = "measurement; run with --ignored --nocapture"]
async fn measure_other_requests_while_big_crls_are_parsed() {
    let s = std::sync::Arc::new(scene(CrlPath::DistributionPoint, "60s").await);
    let impostor = TestCa {
        cert: s.int.cert.clone(),
        key: PKey::from_ec_key(
            EcKey::generate(&EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve"))
                .expect("key"),
        )
        .expect("pkey"),
    };
    let mut big = CrlSpec::numbered(9, &[]);
    big.revoked = (0..720_000u64).map(|i| serial(1_000_000 + i)).collect();
    s.serve(impostor.crl(&big));
    let probe = async |s: &Scene| {
        let mut worst = Duration::ZERO;
        for _ in 0..20 {
            let t = Instant::now();
            let mut b = Browser::new(&s.w);
            let _ = b.api(&portal_url(&s.w, "bips", "/home")).await;
            worst = worst.max(t.elapsed());
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        worst
    };
    let idle = probe(&s).await;
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut tasks = Vec::new();
    for _ in 0..4 {
        let (s, stop) = (s.clone(), stop.clone());
        tasks.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let _ = s.login("A").await;
            }
        }));
    }
    tokio::time::sleep(Duration::from_secs(1)).await;
    let loaded = probe(&s).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for t in tasks {
        let _ = t.await;
    }
    eprintln!(
        "worst unrelated request: idle {idle:?}, during big-CRL logins {loaded:?}; {} downloads",
        s.srv.gets("/dp.crl")
    );
}
