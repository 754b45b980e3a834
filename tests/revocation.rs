//! Issue 22: revocation data bound to its issuer, its source and its freshness. An attacker
//! on the CRL/OCSP path (plain HTTP by design of those protocols) serves what each test says
//! from a revocation server of the test's own (`prehod_test_support::revocation`): an older CRL after a
//! revoking one, another issuer's CRL, a delta CRL, an expired CRL, a CRL without nextUpdate,
//! replayed and stale OCSP answers, a root-signed OCSP answer without certificates. For each:
//! the revoked certificate is refused, a live session of it stays refused, and the log and
//! the metric name the refusal — on the configured-URL path and at the certificate's own
//! distribution point, through the dev CA's intermediate.

use std::time::Duration;

use prehod_test_support::login::*;
use prehod_test_support::revocation::*;

/// Polls `done` every 200 ms for up to 15 s.
async fn until(what: &str, done: impl AsyncFnMut() -> bool) {
    prehod_test_support::revocation::until(what, Duration::from_secs(15), done).await;
}

fn unknown_page(page: &Page) -> bool {
    page.status == 403
        && page
            .body
            .contains("Preklicnosti certifikata trenutno ni mogoče preveriti")
}

/// What the attacker serves in place of the intermediate's current CRL (number 2, which
/// revokes `A`).
#[derive(Clone, Copy, Debug)]
enum Attack {
    /// The intermediate's previous CRL (number 1, earlier thisUpdate, still before its
    /// nextUpdate), which does not list `A` yet.
    Older,
    /// The root's current CRL (always fresh and public): it lists nothing of the intermediate.
    OtherIssuer,
    /// The intermediate's empty delta CRL (number 3, critical deltaCRLIndicator on base 2).
    Delta,
}

/// The revocation of `A` holds when `attack` is served in place of the CRL that revoked it:
/// for new logins and for the live session, with a log line and a metric naming the refusal.
async fn revocation_holds_against(path: CrlPath, attack: Attack) {
    let s = Scene::new(path).await;
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
    until("A logs in with the first CRL", async || {
        s.login("A").await.status == 302
    })
    .await;
    let mut session = s.session("A").await;
    // The intermediate revokes A.
    s.serve(s.int.crl(&CrlSpec::numbered(2, &[A])));
    until("the revocation reaches the session", async || {
        s.portal(&mut session).await == 403
    })
    .await;
    assert!(revoked_page(&s.login("A").await));
    // The attacker's CRL instead, for a few refreshes.
    let (crl, reason) = match attack {
        Attack::Older => (s.int.crl(&CrlSpec::numbered(1, &[])), "rollback"),
        Attack::OtherIssuer => (s.root.crl(&CrlSpec::numbered(7, &[])), "wrong_issuer"),
        Attack::Delta => {
            let mut delta = CrlSpec::numbered(3, &[]);
            delta.delta_of = Some(2);
            (s.int.crl(&delta), "delta")
        }
    };
    s.serve(crl);
    s.fetched(3).await;
    let page = s.login("A").await;
    assert!(
        revoked_page(&page),
        "{attack:?} on {path:?}: A logged in again ({}): {}",
        page.status,
        page.body
    );
    assert_eq!(
        s.portal(&mut session).await,
        403,
        "{attack:?} on {path:?}: the revoked session answered again"
    );
    assert!(
        s.log_mentions(&["CRL refused", reason]),
        "{attack:?} on {path:?}: no log line names the refusal ({reason})"
    );
    let metrics = s.w.gw.metrics();
    assert!(
        metrics.contains(&format!("reason=\"{reason}\""))
            && metrics.contains("prehod_crl_refused_total"),
        "{attack:?} on {path:?}: {metrics}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_crl_at_a_configured_url_is_refused() {
    revocation_holds_against(CrlPath::Configured, Attack::Older).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_older_crl_at_a_distribution_point_is_refused() {
    revocation_holds_against(CrlPath::DistributionPoint, Attack::Older).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_issuers_crl_at_a_configured_url_is_refused() {
    revocation_holds_against(CrlPath::Configured, Attack::OtherIssuer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_issuers_crl_at_a_distribution_point_is_refused() {
    revocation_holds_against(CrlPath::DistributionPoint, Attack::OtherIssuer).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_crl_at_a_configured_url_is_never_a_full_one() {
    revocation_holds_against(CrlPath::Configured, Attack::Delta).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_delta_crl_at_a_distribution_point_is_never_a_full_one() {
    revocation_holds_against(CrlPath::DistributionPoint, Attack::Delta).await;
}

/// Issue 22, point 4: an expired but validly signed CRL (the intermediate's of long ago) does
/// not replace the current one — every certificate login of the anchor went down with it — and
/// the revocation the current one carries holds.
async fn an_expired_crl_changes_nothing(path: CrlPath) {
    let s = Scene::new(path).await;
    s.serve(s.int.crl(&CrlSpec::numbered(4, &[])));
    until("B logs in", async || s.login("B").await.status == 302).await;
    let mut session = s.session("B").await;
    s.serve(s.int.crl(&CrlSpec::numbered(5, &[B])));
    until("the revocation reaches the session", async || {
        s.portal(&mut session).await == 403
    })
    .await;
    let mut expired = CrlSpec::numbered(1, &[]);
    expired.this_update = now() - 10 * 86_400;
    expired.next_update = Some(now() - 3 * 86_400);
    s.serve(s.int.crl(&expired));
    s.fetched(3).await;
    let page = s.login("A").await;
    assert_eq!(
        page.status, 302,
        "{path:?}: the expired CRL ended every login: {}",
        page.body
    );
    assert!(revoked_page(&s.login("B").await), "{path:?}");
    assert_eq!(s.portal(&mut session).await, 403, "{path:?}");
    assert!(
        s.log_mentions(&["CRL refused"]),
        "{path:?}: no log line names the refusal"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_crl_at_a_configured_url_changes_nothing() {
    an_expired_crl_changes_nothing(CrlPath::Configured).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_expired_crl_at_a_distribution_point_changes_nothing() {
    an_expired_crl_changes_nothing(CrlPath::DistributionPoint).await;
}

/// Issue 22, point 4 (read from the code): a CRL without nextUpdate was fresh for ever, so an
/// attacker who kept serving one the CA issued before revoking `A` kept `A` logging in for
/// ever. Such a CRL is refused: without another CRL the anchor fails closed.
async fn a_crl_without_next_update_is_refused(path: CrlPath) {
    let s = Scene::new(path).await;
    let mut forever = CrlSpec::numbered(1, &[]);
    forever.next_update = None;
    s.serve(s.int.crl(&forever));
    if path == CrlPath::Configured {
        // Loaded by the background refresh (a distribution point is fetched by the login).
        s.fetched(2).await;
    }
    let page = s.login("A").await;
    assert!(
        unknown_page(&page),
        "{path:?}: a CRL without nextUpdate was taken ({}): {}",
        page.status,
        page.body
    );
    assert!(
        s.log_mentions(&["CRL refused", "no_next_update"]),
        "{path:?}: no log line names the refusal"
    );
    assert!(s.w.gw.metrics().contains("reason=\"no_next_update\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_without_next_update_at_a_configured_url_is_refused() {
    a_crl_without_next_update_is_refused(CrlPath::Configured).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crl_without_next_update_at_a_distribution_point_is_refused() {
    a_crl_without_next_update_is_refused(CrlPath::DistributionPoint).await;
}

/// Issue 22, point 4 (read from the code): the certificate's serial and the CRL's entry were
/// keyed differently when the serial is negative (the certificate's two's complement bytes,
/// the CRL's magnitude), so a revoked certificate with a negative serial logged in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_revoked_certificate_with_a_negative_serial_is_refused() {
    let s = Scene::new(CrlPath::Configured).await;
    let negative = [0x85u8]; // -123
    s.int.issue(
        &s.w.pki,
        "negative",
        &Issue {
            user: "SI-DEV-NEG",
            serial: &negative,
            crl_url: None,
            send_chain: true,
            ocsp_signer: false,
        },
    );
    let mut crl = CrlSpec::numbered(1, &[]);
    crl.revoked = vec![negative.to_vec()];
    s.serve(s.int.crl(&crl));
    until("A logs in (the CRL is loaded)", async || {
        s.login("A").await.status == 302
    })
    .await;
    let page = s.login("negative").await;
    assert!(
        revoked_page(&page),
        "a revoked negative serial logged in ({}): {}",
        page.status,
        page.body
    );
}

/// A gateway whose anchor (the dev CA and its intermediate) asks the revocation server's OCSP
/// responder (`fail_closed` unless `soft_fail`), with `A` and `B` issued by the intermediate.
async fn ocsp_scene(ocsp_yaml: &str) -> Scene {
    let options = SceneOptions {
        ocsp: Some(ocsp_yaml.into()),
        portal_yaml: Vec::new(),
        ..SceneOptions::default()
    };
    Scene::with(CrlPath::Configured, options).await
}

/// The intermediate's genuine responder: fresh answers (nonce echoed), `revoked` revoked.
fn genuine(int: &TestCa, revoked: &'static [u64]) -> OcspResponder {
    let signer = TestCa {
        cert: int.cert.clone(),
        key: int.key.clone(),
    };
    std::sync::Arc::new(move |ask: &OcspAsk| {
        let status = if revoked.iter().any(|s| serial(*s) == ask.serial) {
            CertStatus::Revoked
        } else {
            CertStatus::Good
        };
        signer.ocsp_answer(ask, &OcspSpec::fresh(status))
    })
}

/// Issue 22, point 2: old "good" answers captured before a revocation and replayed. With a
/// responder that echoes nonces (`nonce: true`), a replayed answer lacks the request's nonce
/// and is refused; and a revocation the gateway learned is not forgotten when its cached
/// answer ages out.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn replayed_ocsp_answers_are_refused_when_the_responder_echoes_nonces() {
    let s = ocsp_scene("policy: fail_closed, cache: 1s, nonce: true").await;
    // The attacker records the genuine answers while B is still good.
    let captured = std::sync::Arc::new(std::sync::Mutex::new(Vec::<(Vec<u8>, Vec<u8>)>::new()));
    let (rec, real) = (captured.clone(), genuine(&s.int, &[]));
    s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
        let answer = real(ask);
        rec.lock()
            .expect("lock")
            .push((ask.serial.clone(), answer.clone()));
        answer
    }));
    assert_eq!(s.login("B").await.status, 302);
    let mut session = s.session("A").await;
    // The CA revokes A and B; the gateway asks about A and learns it.
    s.srv.ocsp(genuine(&s.int, &[A, B]));
    until("A's revocation reaches the session", async || {
        s.login("A").await;
        s.portal(&mut session).await == 403
    })
    .await;
    // From now on the attacker answers every request with a good answer captured earlier.
    let replay = captured.clone();
    s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
        let all = replay.lock().expect("lock");
        all.iter()
            .find(|(serial, _)| *serial == ask.serial)
            .or(all.first())
            .map(|(_, a)| a.clone())
            .unwrap_or_default()
    }));
    tokio::time::sleep(Duration::from_secs(2)).await; // past the 1 s cache
    assert_eq!(
        s.portal(&mut session).await,
        403,
        "A's session answered again"
    );
    let page = s.login("A").await;
    assert_eq!(page.status, 403, "A logged in again: {}", page.body);
    let page = s.login("B").await;
    assert_eq!(
        page.status, 403,
        "a replayed good answer let B in: {}",
        page.body
    );
    assert!(
        s.log_mentions(&["OCSP answer refused", "nonce"]),
        "no log line names the refusal"
    );
    assert!(s.w.gw.metrics().contains("prehod_ocsp_refused_total"));
}

/// Issue 22, point 2: without nonces, an answer is usable only while its thisUpdate is within
/// `ocsp.max_age` (1 h by default): one without nextUpdate 30 days old, and one 2 hours old
/// that names a nextUpdate days ahead, are refused (and fail closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_ocsp_answers_are_refused() {
    let s = ocsp_scene("policy: fail_closed").await;
    let signer = TestCa {
        cert: s.int.cert.clone(),
        key: s.int.key.clone(),
    };
    s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
        let mut spec = OcspSpec::fresh(CertStatus::Good);
        spec.nonce = NonceReply::Omit;
        if ask.serial == serial(A) {
            spec.this_update = now() - 30 * 86_400;
        } else {
            spec.this_update = now() - 2 * 3600;
            spec.next_update = Some(now() + 5 * 86_400);
        }
        signer.ocsp_answer(ask, &spec)
    }));
    for cert in ["A", "B"] {
        let page = s.login(cert).await;
        assert!(
            unknown_page(&page),
            "{cert}: a stale answer was taken ({}): {}",
            page.status,
            page.body
        );
    }
    assert!(s.log_mentions(&["OCSP answer refused", "stale"]));
    assert!(s
        .w
        .gw
        .metrics()
        .contains("prehod_ocsp_refused_total{anchor=\"prehod dev CA\",reason=\"stale\"} 2"));
}

/// Issue 22, point 2: an answer is cached no longer than its nextUpdate: once that passed, the
/// responder is asked again (and now says revoked).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_ocsp_answer_is_cached_no_longer_than_its_next_update() {
    let s = ocsp_scene("policy: fail_closed, cache: 10m").await;
    let signer = TestCa {
        cert: s.int.cert.clone(),
        key: s.int.key.clone(),
    };
    s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
        let mut spec = OcspSpec::fresh(CertStatus::Good);
        spec.next_update = Some(now() + 2);
        signer.ocsp_answer(ask, &spec)
    }));
    assert_eq!(s.login("A").await.status, 302);
    s.srv.ocsp(genuine(&s.int, &[A]));
    tokio::time::sleep(Duration::from_secs(3)).await;
    let page = s.login("A").await;
    assert!(
        page.status == 403 && page.body.contains("Certifikat je preklican (OCSP)"),
        "the cached answer outlived its nextUpdate ({}): {}",
        page.status,
        page.body
    );
}

/// Issue 22, point 3: a genuine answer signed by the root CA itself, without certificates in
/// it (what `openssl ocsp -resp_no_certs` makes), about a certificate the root issued. It was
/// discarded (only intermediates were offered as signers), and `soft_fail` let the revoked
/// certificate in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_root_signed_ocsp_answer_without_certificates_is_used() {
    let w = certificate_world(CertOptions {
        ocsp: Some(Ocsp::RootWithoutCertificates),
        ..CertOptions::default()
    })
    .await;
    let page = login_with_certificate(&w, "revoked", "bws").await;
    assert!(
        page.status == 403 && page.body.contains("Certifikat je preklican (OCSP)"),
        "the revoked certificate ({}): {}",
        page.status,
        page.body
    );
    let page = login_with_certificate(&w, "valid", "bws").await;
    assert_eq!(page.status, 302, "{}", page.body);
    assert!(w.gw.metrics().contains("prehod_ocsp_errors_total 0"));
}

/// Only the issuing CA or a responder it delegated (OCSP-signing extended key usage) may
/// answer: not the root about the intermediate's certificates, not a certificate of the CA
/// without that usage (another user's, whose key its holder has), whatever the answer says.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_issuer_or_its_delegated_responder_may_answer() {
    let s = ocsp_scene("policy: fail_closed").await;
    s.int.issue(
        &s.w.pki,
        "responder",
        &Issue {
            user: "OCSP",
            serial: &serial(9001),
            crl_url: None,
            send_chain: false,
            ocsp_signer: true,
        },
    );
    let delegated = TestCa::from_files(&s.w.pki, "clients/responder");
    let other_user = TestCa::from_files(&s.w.pki, "clients/B");
    let root = TestCa {
        cert: s.root.cert.clone(),
        key: s.root.key.clone(),
    };
    // The delegated responder (its certificate in the answer) says A is revoked: believed.
    let (d_cert, d) = (delegated.cert.clone(), delegated);
    s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
        let mut spec = OcspSpec::fresh(CertStatus::Revoked);
        spec.certificates = vec![d_cert.clone()];
        d.ocsp_answer(ask, &spec)
    }));
    let page = s.login("A").await;
    assert!(
        page.body.contains("Certifikat je preklican (OCSP)"),
        "{}",
        page.body
    );
    // The root, and another user's certificate, say B is good: neither may say so.
    for (who, signer) in [
        ("the root", root),
        ("another user's certificate", other_user),
    ] {
        let c = signer.cert.clone();
        s.srv.ocsp(std::sync::Arc::new(move |ask: &OcspAsk| {
            let mut spec = OcspSpec::fresh(CertStatus::Good);
            spec.certificates = vec![c.clone()];
            signer.ocsp_answer(ask, &spec)
        }));
        let page = s.login("B").await;
        assert!(
            unknown_page(&page),
            "{who} answered for B ({}): {}",
            page.status,
            page.body
        );
    }
}

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

/// The highest CRL seen survives a reload (`SIGHUP`), also one that moves the intermediate's
/// CRL to another URL: the older CRL served there is refused (and with nothing newer to be
/// had there, the anchor fails closed).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_crl_seen_survives_a_reload() {
    let s = Scene::new(CrlPath::Configured).await;
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
    until("A logs in", async || s.login("A").await.status == 302).await;
    s.serve(s.int.crl(&CrlSpec::numbered(2, &[A])));
    until("A is revoked", async || revoked_page(&s.login("A").await)).await;
    // The same file again, then one naming another URL for the intermediate's CRL, where the
    // attacker serves the older CRL.
    s.srv
        .serve("/int2.crl", s.int.crl(&CrlSpec::numbered(1, &[])));
    let config = s.w.gw.dir.path().join("proxy.yaml");
    for (i, moved) in [false, true].into_iter().enumerate() {
        if moved {
            let yaml = std::fs::read_to_string(&config).expect("config");
            std::fs::write(&config, yaml.replace("/int.crl", "/int2.crl")).expect("config");
        }
        sighup(s.w.gw.pid());
        until("the reload", async || {
            s.w.gw.metrics().contains(&format!(
                "prehod_config_reloads_total{{result=\"ok\"}} {}",
                i + 1
            ))
        })
        .await;
        s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
        let target = s.srv.gets("/int2.crl") + 2;
        until("the moved CRL fetched", async || {
            !moved || s.srv.gets("/int2.crl") >= target
        })
        .await;
        s.fetched(if moved { 0 } else { 3 }).await;
        let page = s.login("A").await;
        // Same source: it keeps the CRL that revoked A. Moved: the new source has nothing but
        // the older CRL, which is refused, so the anchor fails closed.
        let held = if moved {
            unknown_page(&page)
        } else {
            revoked_page(&page)
        };
        assert!(
            held,
            "after reload {} (moved: {moved}): A got {}: {}",
            i + 1,
            page.status,
            page.body
        );
        assert!(s.log_mentions(&["CRL refused", "rollback", "/int2.crl"]) || !moved);
    }
}

/// With the fleet's shared state, the highest CRL seen survives a restart: the older CRL the
/// attacker serves to the restarted gateway is refused, and the anchor fails closed (its
/// current CRL cannot be had) instead of taking it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_highest_crl_seen_survives_a_restart_with_shared_state() {
    let redis = prehod_test_support::redis::Redis::start();
    let srv = RevocationServer::start().await;
    let top = redis.state_yaml("crl-test:");
    let mut w = world(Options {
        certificates: Some(CertOptions {
            ca_bundle: true,
            crl_refresh: Some("1s"),
            anchor_lines: vec![two_crls(&srv)],
            ..CertOptions::default()
        }),
        top_yaml: top,
        ..Options::default()
    })
    .await;
    let root = TestCa::load(&w.pki, "ca");
    let int = TestCa::load(&w.pki, "intermediate");
    int.issue(
        &w.pki,
        "A",
        &Issue {
            user: "SI-DEV-5001",
            serial: &serial(A),
            crl_url: None,
            send_chain: true,
            ocsp_signer: false,
        },
    );
    srv.serve("/root.crl", root.crl(&CrlSpec::numbered(1, &[])));
    srv.serve("/int.crl", int.crl(&CrlSpec::numbered(2, &[A])));
    until("A is revoked", async || revoked_page(&login_a(&w).await)).await;
    until("the marks reach the shared state", async || {
        redis.command(&["KEYS", "crl-test:crl:*"]).trim() == "*2"
    })
    .await;
    // Restarted while the attacker serves the intermediate's older CRL.
    srv.serve("/int.crl", int.crl(&CrlSpec::numbered(1, &[])));
    w.gw.restart();
    let target = srv.gets("/int.crl") + 3;
    until("the restarted gateway fetches", async || {
        srv.gets("/int.crl") >= target
    })
    .await;
    let page = login_a(&w).await;
    assert!(
        unknown_page(&page),
        "the restarted gateway took the older CRL ({}): {}",
        page.status,
        page.body
    );
    assert!(w
        .gw
        .log_lines()
        .iter()
        .any(|l| l.contains("CRL refused") && l.contains("rollback")));
}

async fn login_a(w: &World) -> Page {
    Browser::with_certificate(w, "A")
        .certificate_login(w, "bws")
        .await
}

/// Every other CRL that may not stand for the intermediate's is refused with its own reason,
/// and the CRL that revoked `A` stays: dated ahead of the clock, an unknown critical
/// extension, a partial one (only some reasons), one whose issuingDistributionPoint names
/// another URL (another partition), one without a CRL number, one of CA certificates only (at
/// a distribution point; at a configured URL it is taken but speaks for no end-entity
/// certificate), and one under the intermediate's name signed by another key.
async fn other_bad_crls_are_refused(path: CrlPath) {
    let s = Scene::new(path).await;
    s.serve(s.int.crl(&CrlSpec::numbered(1, &[])));
    until("A logs in", async || s.login("A").await.status == 302).await;
    let mut session = s.session("A").await;
    s.serve(s.int.crl(&CrlSpec::numbered(2, &[A])));
    until("the revocation reaches the session", async || {
        s.portal(&mut session).await == 403
    })
    .await;
    let next = |n: u64| CrlSpec::numbered(n, &[]);
    let mut attacks: Vec<(&str, Vec<u8>)> = Vec::new();
    let mut ahead = next(10);
    ahead.this_update = now() + 3600;
    ahead.next_update = Some(now() + 7200);
    attacks.push(("not_yet_valid", s.int.crl(&ahead)));
    let mut critical = next(11);
    critical.unknown_critical_extension = true;
    attacks.push(("critical_extension", s.int.crl(&critical)));
    let mut partial = next(12);
    partial.issuing_distribution_point =
        Some(issuing_distribution_point(&s.srv.url(s.crl_path()), true));
    attacks.push(("scope", s.int.crl(&partial)));
    let mut elsewhere = next(13);
    elsewhere.issuing_distribution_point = Some(issuing_distribution_point(
        &s.srv.url("/partition-2.crl"),
        false,
    ));
    attacks.push(("scope", s.int.crl(&elsewhere)));
    let mut unnumbered = next(14);
    unnumbered.number = None;
    attacks.push(("no_crl_number", s.int.crl(&unnumbered)));
    let impostor = TestCa {
        cert: s.int.cert.clone(),
        key: openssl::pkey::PKey::from_ec_key(
            openssl::ec::EcKey::generate(
                &openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
                    .expect("curve"),
            )
            .expect("key"),
        )
        .expect("pkey"),
    };
    attacks.push(("bad_signature", impostor.crl(&next(15))));
    if path == CrlPath::DistributionPoint {
        // onlyContainsCACerts [2] TRUE
        let mut ca_only = next(16);
        ca_only.issuing_distribution_point = Some(vec![0x30, 0x03, 0x82, 0x01, 0xff]);
        attacks.push(("scope", s.int.crl(&ca_only)));
    }
    let current = s.int.crl(&CrlSpec::numbered(2, &[A]));
    for (reason, crl) in attacks {
        // The genuine CRL again first (a distribution point's is kept only a couple of
        // refreshes past its last good download), then the attack.
        s.serve(current.clone());
        s.fetched(1).await;
        s.serve(crl);
        s.fetched(2).await;
        let page = s.login("A").await;
        assert!(
            revoked_page(&page),
            "{reason} on {path:?}: A got {}: {}",
            page.status,
            page.body
        );
        assert_eq!(s.portal(&mut session).await, 403, "{reason} on {path:?}");
        let metrics = s.w.gw.metrics();
        assert!(
            metrics.contains(&format!(
                "prehod_crl_refused_total{{anchor=\"prehod dev CA\",reason=\"{reason}\"}}"
            )),
            "{reason} on {path:?}: {metrics}"
        );
    }
    if path == CrlPath::Configured {
        // The intermediate's current CRL of CA certificates only (an ARL), served as its CRL:
        // taken (a source may give one), but it speaks for no end-entity certificate, so
        // A's revocation is unknown — never "not revoked".
        let mut ca_only = next(17);
        ca_only.issuing_distribution_point = Some(vec![0x30, 0x03, 0x82, 0x01, 0xff]);
        s.serve(s.int.crl(&ca_only));
        s.fetched(2).await;
        let page = s.login("A").await;
        assert!(
            unknown_page(&page),
            "a CA-only CRL spoke for A ({}): {}",
            page.status,
            page.body
        );
        assert_eq!(s.portal(&mut session).await, 403);
    }
    // And the CA's next genuine CRL is taken: the refusals above changed nothing else.
    s.serve(s.int.crl(&CrlSpec::numbered(20, &[])));
    until("the next genuine CRL", async || {
        s.login("A").await.status == 302
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_bad_crls_at_a_configured_url_are_refused() {
    other_bad_crls_are_refused(CrlPath::Configured).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn other_bad_crls_at_a_distribution_point_are_refused() {
    other_bad_crls_are_refused(CrlPath::DistributionPoint).await;
}

/// The fixtures are what real OpenSSL accepts: the certificates this file issues verify, the
/// CRLs verify and read back with their numbers, entries and extensions, and an OCSP answer to
/// a request `openssl ocsp` made verifies and says what it was made to say — so each refusal
/// above is about what the test meant, not about a malformed fixture.
#[test]
fn the_fixtures_are_what_openssl_accepts() {
    let pki = prehod_test_support::Pki::new();
    let root = TestCa::load(&pki, "ca");
    let int = TestCa::load(&pki, "intermediate");
    int.issue(
        &pki,
        "A",
        &Issue {
            user: "SI-DEV-5001",
            serial: &serial(A),
            crl_url: Some("http://127.0.0.1:9/dp.crl"),
            send_chain: false,
            ocsp_signer: false,
        },
    );
    let openssl = |args: &[&str]| {
        let out = std::process::Command::new("openssl")
            .args(args)
            .current_dir(pki.dir.path())
            .output()
            .expect("openssl");
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(out.status.success(), "openssl {args:?}: {text}");
        text
    };
    let verified = openssl(&[
        "verify",
        "-CAfile",
        "ca.crt",
        "-untrusted",
        "intermediate.crt",
        "-purpose",
        "sslclient",
        "clients/A.crt",
    ]);
    assert!(verified.contains("OK"), "{verified}");
    let text = openssl(&["x509", "-in", "clients/A.crt", "-noout", "-text"]);
    assert!(text.contains("URI:http://127.0.0.1:9/dp.crl"), "{text}");
    let mut spec = CrlSpec::numbered(7, &[A]);
    spec.delta_of = Some(6);
    spec.issuing_distribution_point = Some(issuing_distribution_point("http://x/y.crl", true));
    std::fs::write(pki.path("int.crl"), int.crl(&spec)).expect("write");
    let text = openssl(&[
        "crl",
        "-inform",
        "DER",
        "-in",
        "int.crl",
        "-CAfile",
        "intermediate.crt",
        "-noout",
        "-text",
    ]);
    for expected in [
        "verify OK",
        "X509v3 CRL Number: \n                7",
        "X509v3 Delta CRL Indicator: critical",
        "X509v3 Issuing Distribution Point: critical",
        "Key Compromise",
        "Serial Number: 1389",
    ] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
    std::fs::write(pki.path("root.crl"), root.crl(&CrlSpec::numbered(1, &[]))).expect("write");
    assert!(
        openssl(&["crl", "-inform", "DER", "-in", "root.crl", "-CAfile", "ca.crt", "-noout"])
            .contains("verify OK")
    );
    // An answer to the request `openssl ocsp` makes (with its nonce), verified by it.
    openssl(&[
        "ocsp",
        "-issuer",
        "intermediate.crt",
        "-cert",
        "clients/A.crt",
        "-reqout",
        "req.der",
    ]);
    let ask = OcspAsk::parse(&std::fs::read(pki.path("req.der")).expect("request"));
    assert!(ask.nonce.is_some(), "openssl sends a nonce by default");
    assert_eq!(ask.serial, serial(A));
    let mut answer = OcspSpec::fresh(CertStatus::Revoked);
    answer.next_update = Some(now() + 600);
    std::fs::write(pki.path("resp.der"), int.ocsp_answer(&ask, &answer)).expect("write");
    let bundle = pki.path("chain.pem");
    let mut pem = std::fs::read(pki.path("ca.crt")).expect("ca");
    pem.extend(std::fs::read(pki.path("intermediate.crt")).expect("int"));
    std::fs::write(&bundle, pem).expect("bundle");
    // The request's nonce came back (`-reqin` alone: `-cert` would make a new request).
    let text = openssl(&[
        "ocsp",
        "-respin",
        "resp.der",
        "-reqin",
        "req.der",
        "-CAfile",
        "chain.pem",
        "-verify_other",
        "intermediate.crt",
        "-resp_text",
    ]);
    assert!(
        text.contains("Response verify OK") && text.contains("OCSP Nonce"),
        "{text}"
    );
    let text = openssl(&[
        "ocsp",
        "-respin",
        "resp.der",
        "-no_nonce",
        "-CAfile",
        "chain.pem",
        "-verify_other",
        "intermediate.crt",
        "-issuer",
        "intermediate.crt",
        "-cert",
        "clients/A.crt",
    ]);
    for expected in ["Response verify OK", "clients/A.crt: revoked"] {
        assert!(text.contains(expected), "{expected:?} in {text}");
    }
}
