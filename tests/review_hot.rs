//! review-hot: attacks on the bounded set of prepared identity values (`HOT_SESSIONS`) through
//! the real gateway, the Rekono simulator and real TLS. The attacker has more sessions than the
//! set holds (stood in for by sessions sealed with the test world's session key: what many
//! logins, or one cookie re-sealed by rolls again and again, give them) and uses them all at
//! once, many connections deep, while a victim and the attacker's own real session keep
//! working, and a reload replaces the assertion key in the middle. Every portal request must
//! carry exactly its own session's identity (headers and an assertion that verifies with the
//! gateway's JWKS of the moment), no request may fail, and the gateway must not panic.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine;
use prehod_identity::seal::Sealer;
use prehod_identity::session::{Method, Session, Sessions};
use prehod_test_support::login::*;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP, VISOKA, VISOKA_TOTP};
use prehod_test_support::{host, received_header};
use serde_json::Value;

/// How many requests of sessions of their own the attacker sends (`PREHOD_REVIEW_HOT_CHURN`,
/// default: four turns of the set's clock and more, so that the victim, idle for half of them
/// at a time, is pushed out twice).
fn churn() -> usize {
    prehod_test_support::env_or("PREHOD_REVIEW_HOT_CHURN", 4 * 16_384 + 1_000)
}

/// The claims of the request's one assertion, verified with the gateway's JWKS as it is now
/// (only the key in use is published), and its kid.
fn claims(jwks: &jsonwebtoken::jwk::JwkSet, json: &Value, audience: &str) -> (Value, String) {
    let token = received_header(json, "x-auth-assertion");
    assert_eq!(token.len(), 1, "exactly one assertion: {json}");
    let header = jsonwebtoken::decode_header(token[0]).expect("header");
    let kid = header.kid.expect("kid");
    let jwk = jwks
        .find(&kid)
        .unwrap_or_else(|| panic!("kid {kid} not in the JWKS"));
    let key = jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_audience(&[audience]);
    v.validate_exp = false;
    let claims = jsonwebtoken::decode::<Value>(token[0], &key, &v)
        .expect("the assertion verifies")
        .claims;
    (claims, kid)
}

async fn jwks(world: &World) -> jsonwebtoken::jwk::JwkSet {
    assertion_keys(world, &world.gw.client()).await
}

/// What a real session's requests must carry, every time.
struct Expected {
    user: String,
    level: &'static str,
    amr: &'static str,
    email: &'static str,
}

/// A real Rekono login of `account` at `portal`: the browser, what its requests must carry (at
/// `level`) — checked on the first — and the first request's answer.
async fn logged_in(
    world: &World,
    portal: &str,
    account: (&'static str, &'static str),
    totp: &str,
    level: &'static str,
) -> (Browser, Expected, Value) {
    let (browser, page) = log_in(world, portal, "/", account, totp).await;
    let first = page.json();
    let is = Expected {
        user: received_header(&first, "x-auth-user")[0].to_owned(),
        level,
        amr: "pwd otp",
        email: account.0,
    };
    check(&first, &is);
    (browser, is, first)
}

/// One API request of a real session: its identity, and an assertion that verifies with
/// `jwks` for `audience`, of a key other than `not_kid` when given.
async fn request_as(
    browser: &mut Browser,
    url: &str,
    e: &Expected,
    jwks: &jsonwebtoken::jwk::JwkSet,
    audience: &str,
    not_kid: Option<&str>,
) {
    let page = browser.api(url).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let json = page.json();
    check(&json, e);
    let (c, kid) = claims(jwks, &json, audience);
    assert_eq!(c["sub"], e.user.as_str(), "another session's assertion");
    assert_eq!(c["level"].to_string(), e.level);
    assert_eq!(c["email"], e.email);
    if let Some(old) = not_kid {
        assert_ne!(kid, old, "after the reload: the new key");
    }
}

fn check(json: &Value, e: &Expected) {
    assert_eq!(
        received_header(json, "x-auth-user"),
        [e.user.as_str()],
        "{json}"
    );
    assert_eq!(received_header(json, "x-auth-level"), [e.level], "{json}");
    assert_eq!(received_header(json, "x-auth-amr"), [e.amr], "{json}");
    assert_eq!(received_header(json, "x-auth-email"), [e.email], "{json}");
    assert_eq!(received_header(json, "x-auth-method"), ["rekono"], "{json}");
}

/// The attacker's requests with sessions of their own (`total` of them, 12 at a time, each a
/// new session object of the gateway's cache, so each one takes a place in the set), each
/// checked to carry its own identity.
struct Churn {
    workers: Vec<tokio::task::JoinHandle<()>>,
    /// How many were sent.
    next: Arc<AtomicUsize>,
    /// How many were not answered 200.
    failures: Arc<AtomicUsize>,
}

fn spawn_churn(world: &World, total: usize) -> Churn {
    let audience = |portal: &str| format!("https://{}:{}", host(portal), world.gw.https.port());
    // The attacker's many sessions: sealed as the gateway seals them, each for acq.
    let key = std::fs::read_to_string(world.pki.path("session.key")).expect("session key");
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(key.trim())
        .expect("base64")
        .try_into()
        .expect("32 bytes");
    let minted = Arc::new(Sessions::new(
        Sealer::new(&[key]),
        Duration::from_secs(1800),
        Duration::from_secs(36_000),
        10,
    ));
    let next = Arc::new(AtomicUsize::new(0));
    let failures = Arc::new(AtomicUsize::new(0));
    let client = world.gw.client();
    let acq = portal_url(world, "acq", "/whoami");
    let acq_audience = audience("acq");
    let mut workers = Vec::new();
    for _ in 0..12 {
        let (minted, next, failures, client, acq, aud) = (
            minted.clone(),
            next.clone(),
            failures.clone(),
            client.clone(),
            acq.clone(),
            acq_audience.clone(),
        );
        workers.push(tokio::spawn(async move {
            loop {
                let i = next.fetch_add(1, Relaxed);
                if i >= total {
                    return;
                }
                let sub = format!("mallory-{i}");
                let s = Session {
                    name: format!("Mallory {i}"),
                    email: format!("m{i}@evil.example"),
                    amr: vec!["pwd".into()],
                    host: Some(host("acq").into()),
                    ..Session::new(Method::Rekono, sub.as_str(), 10 + 10 * (i % 2) as u8)
                };
                let (s, cookie) = minted.issue(s, prehod_identity::unix_now()).expect("issue");
                let answer = client
                    .get(&acq)
                    .header("accept", "application/json")
                    .header("cookie", format!("{SESSION}={cookie}"))
                    // A forged identity of the victim's, which must never pass.
                    .header("x-auth-level", "30")
                    .send()
                    .await;
                let Ok(answer) = answer else {
                    failures.fetch_add(1, Relaxed);
                    continue;
                };
                let status = answer.status().as_u16();
                let json: Value = match answer.json().await {
                    Ok(j) if status == 200 => j,
                    _ => {
                        eprintln!("review-hot: {sub} answered {status}");
                        failures.fetch_add(1, Relaxed);
                        continue;
                    }
                };
                assert_eq!(received_header(&json, "x-auth-user"), [sub.as_str()]);
                let level = s.level.to_string();
                assert_eq!(received_header(&json, "x-auth-level"), [level.as_str()]);
                // Every 64th: the assertion too (it costs the test's CPU, not the gateway's).
                if i % 64 == 0 {
                    let token = received_header(&json, "x-auth-assertion")[0];
                    let c = jsonwebtoken::dangerous::insecure_decode::<Value>(token)
                        .expect("jwt")
                        .claims;
                    assert_eq!(c["sub"], sub.as_str());
                    assert_eq!(c["sid"], s.sid.as_str());
                    assert_eq!(c["aud"], aud.as_str());
                }
            }
        }));
    }

    Churn {
        workers,
        next,
        failures,
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_hot_churning_the_gateways_set_never_mixes_identities_across_a_reload() {
    let world = world(Options::default()).await;
    let audience = |portal: &str| format!("https://{}:{}", host(portal), world.gw.https.port());
    // The victim (level 30, on bws) and the attacker's own real session (level 10, on acq:
    // the level the portal asks for).
    let (mut victim, victim_is, _) = logged_in(&world, "bws", VISOKA, VISOKA_TOTP, "30").await;
    let victim_url = portal_url(&world, "bws", "/whoami");
    let (mut own, own_is, first) = logged_in(&world, "acq", SREDNJA, SREDNJA_TOTP, "10").await;
    let own_url = portal_url(&world, "acq", "/whoami");
    assert_ne!(victim_is.user, own_is.user);
    let jwks_before = jwks(&world).await;
    let (_, old_kid) = claims(&jwks_before, &first, &audience("acq"));

    let total = churn();
    let Churn {
        workers,
        next,
        failures,
    } = spawn_churn(&world, total);

    // Meanwhile the victim and the attacker's own session, with pauses long enough for the
    // set to turn over, and a reload with a new assertion key half way.
    let reloaded = Arc::new(AtomicBool::new(false));
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256");
    let new_key =
        openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
            .expect("key");
    let new_key_path = world.pki.path("assertion-review-hot.key");
    std::fs::write(
        &new_key_path,
        new_key.private_key_to_pem_pkcs8().expect("pem"),
    )
    .expect("w");
    std::fs::set_permissions(
        &new_key_path,
        std::os::unix::fs::PermissionsExt::from_mode(0o600),
    )
    .expect("chmod");
    let old_key_path = world.pki.path("assertion.key").display().to_string();
    let mut rounds = 0;
    let mut jwks_now = jwks_before;
    // The victim is idle between its requests for at least two turns of the set's clock
    // (its mark is its second chance): its values are pushed out each time, and made again.
    let mut victim_at = [total / 2, total].into_iter().peekable();
    let mut victim_requests = 0;
    loop {
        let sent = next.load(Relaxed);
        let finished = workers.iter().all(|w| w.is_finished());
        let victim_turn = victim_at.peek().is_some_and(|at| sent >= *at || finished);
        if victim_turn {
            victim_at.next();
        }
        if victim_turn && !reloaded.load(Relaxed) {
            // Before the reload: the victim's values were pushed out; made again, its own.
            request_as(
                &mut victim,
                &victim_url,
                &victim_is,
                &jwks_now,
                &audience("bws"),
                None,
            )
            .await;
            victim_requests += 1;
            world
                .gw
                .reload_with(|yaml| {
                    yaml.replace(&old_key_path, &new_key_path.display().to_string())
                })
                .await;
            reloaded.store(true, Relaxed);
            jwks_now = jwks(&world).await;
            assert!(
                jwks_now.find(&old_kid).is_none(),
                "the old key is no longer published"
            );
        }
        let is_new = reloaded.load(Relaxed);
        let not_old = is_new.then_some(old_kid.as_str());
        if victim_turn {
            request_as(
                &mut victim,
                &victim_url,
                &victim_is,
                &jwks_now,
                &audience("bws"),
                not_old,
            )
            .await;
            victim_requests += 1;
        }
        // The attacker's own session stays in use all along.
        request_as(
            &mut own,
            &own_url,
            &own_is,
            &jwks_now,
            &audience("acq"),
            not_old,
        )
        .await;
        rounds += 1;
        if finished && victim_at.peek().is_none() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(1000)).await;
    }
    assert_eq!(victim_requests, 3);
    for w in workers {
        w.await.expect("a worker failed its checks");
    }
    eprintln!(
        "review-hot: {total} requests of the attacker's sessions, {rounds} rounds of the own session's, 3 of the victim's, {} failed",
        failures.load(Relaxed)
    );
    assert_eq!(failures.load(Relaxed), 0, "every request answered 200");
    let log = world.gw.all_log_lines();
    assert!(
        !log.iter()
            .any(|l| l.contains("panicked") || l.contains("poison")),
        "the gateway panicked"
    );
    let metrics = world.gw.metrics();
    for line in metrics.lines().filter(|l| l.contains("5xx")) {
        assert!(line.ends_with(" 0"), "5xx answers: {line}");
    }
}

/// One keep-alive TLS connection with a client certificate of the test PKI, HTTP/1.1 spoken by
/// hand: the connection a certificate-only portal's requests share what they prepared on.
struct CertConnection {
    tls: openssl::ssl::SslStream<std::net::TcpStream>,
    host: String,
}

impl CertConnection {
    fn open(world: &World, cert: &str, portal: &str) -> Self {
        use openssl::ssl::{SslConnector, SslFiletype, SslMethod};
        let mut c = SslConnector::builder(SslMethod::tls_client()).expect("connector");
        c.set_ca_file(world.pki.path("ca.crt")).expect("ca");
        let crt = world.pki.path(&format!("clients/{cert}.crt"));
        c.set_certificate_chain_file(crt).expect("cert");
        let key = world.pki.path(&format!("clients/{cert}.key"));
        c.set_private_key_file(key, SslFiletype::PEM).expect("key");
        let tcp = std::net::TcpStream::connect(world.gw.https).expect("connect");
        tcp.set_read_timeout(Some(Duration::from_secs(30)))
            .expect("timeout");
        let host = host(portal);
        let tls = c.build().connect(&host, tcp).expect("handshake");
        Self { tls, host }
    }

    /// A GET on the connection: the status and the JSON body.
    fn get(&mut self, path: &str) -> (u16, Value) {
        use std::io::{Read, Write};
        let request = format!(
            "GET {path} HTTP/1.1\r\nHost: {}\r\nAccept: application/json\r\nX-Auth-User: admin\r\n\r\n",
            self.host
        );
        self.tls.write_all(request.as_bytes()).expect("write");
        let mut head = Vec::new();
        let mut byte = [0u8; 1];
        while !head.ends_with(b"\r\n\r\n") {
            self.tls
                .read_exact(&mut byte)
                .expect("the connection stays open");
            head.push(byte[0]);
        }
        let head = String::from_utf8(head).expect("head");
        let status: u16 = head[9..12].parse().expect("status");
        let header = |name: &str| {
            head.lines().find_map(|l| {
                let (n, v) = l.split_once(':')?;
                n.eq_ignore_ascii_case(name).then(|| v.trim().to_owned())
            })
        };
        let mut body = Vec::new();
        if let Some(len) = header("content-length") {
            body.resize(len.parse().expect("length"), 0);
            self.tls.read_exact(&mut body).expect("body");
        } else {
            assert_eq!(
                header("transfer-encoding").as_deref(),
                Some("chunked"),
                "{head}"
            );
            loop {
                let mut line = Vec::new();
                while !line.ends_with(b"\r\n") {
                    self.tls.read_exact(&mut byte).expect("chunk size");
                    line.push(byte[0]);
                }
                let size =
                    usize::from_str_radix(std::str::from_utf8(&line).expect("size").trim(), 16)
                        .expect("hex");
                let mut chunk = vec![0; size + 2];
                self.tls.read_exact(&mut chunk).expect("chunk");
                if size == 0 {
                    break;
                }
                body.extend_from_slice(&chunk[..size]);
            }
        }
        let json = serde_json::from_slice(&body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into_owned()));
        (status, json)
    }
}

/// What a certificate-only portal's request carried: the user, the fingerprint, and the
/// assertion's subject, fingerprint and signing key.
fn certificate_identity(
    json: &Value,
    jwks: &jsonwebtoken::jwk::JwkSet,
    audience: &str,
) -> (String, String) {
    let user = received_header(json, "x-auth-user");
    assert_eq!(user.len(), 1, "one user: {json}");
    assert_ne!(user[0], "admin", "the client's own header passed");
    let fingerprint = received_header(json, "x-auth-cert-fingerprint");
    assert_eq!(fingerprint.len(), 1, "{json}");
    assert_eq!(received_header(json, "x-auth-method"), ["certificate"]);
    let (c, _) = claims(jwks, json, audience);
    assert_eq!(c["sub"], user[0], "the assertion names the header's user");
    assert_eq!(c["cert_fingerprint"], fingerprint[0]);
    (user[0].to_owned(), fingerprint[0].to_owned())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_hot_certificate_only_connections_pushed_out_keep_their_own_identity() {
    // The attack: two keep-alive connections of two certificates to a certificate-only portal
    // (each connection's requests share what its first one prepared) sit idle while the
    // attacker's sessions push their values out of the set; then a reload changes what the
    // certificates stand for. Each request on each connection carries its own certificate's
    // identity, of the configuration it went with.
    let world = world(Options {
        certificates: Some(CertOptions {
            crl: Some(("ca.crl.pem", "1m")),
            ..CertOptions::default()
        }),
        portal_yaml: vec![("bws", "client_certificate: required")],
        // The connections stay open through the churn.
        server_yaml: "idle_timeout: 10m",
        ..Options::default()
    })
    .await;
    let audience = format!("https://{}:{}", host("bws"), world.gw.https.port());
    let jwks_now = jwks(&world).await;
    let mut connections = Vec::new();
    for cert in ["valid", "policy"] {
        let mut c = tokio::task::block_in_place(|| CertConnection::open(&world, cert, "bws"));
        let (status, json) = tokio::task::block_in_place(|| c.get("/whoami"));
        assert_eq!(status, 200, "{json}");
        let id = certificate_identity(&json, &jwks_now, &audience);
        connections.push((c, id));
    }
    assert_ne!(connections[0].1, connections[1].1, "two identities");
    assert_eq!(connections[0].1 .0, "prehod-dev-ca:SI-DEV-1000");
    let round = |connections: &mut Vec<(CertConnection, (String, String))>,
                 jwks: &jsonwebtoken::jwk::JwkSet| {
        let mut seen = Vec::new();
        for (c, _) in connections.iter_mut() {
            for _ in 0..2 {
                let (status, json) = tokio::task::block_in_place(|| c.get("/whoami"));
                assert_eq!(status, 200, "{json}");
                seen.push(certificate_identity(&json, jwks, &audience));
            }
        }
        seen
    };
    let expected: Vec<_> = connections
        .iter()
        .flat_map(|(_, id)| [id.clone(), id.clone()])
        .collect();
    assert_eq!(
        round(&mut connections, &jwks_now),
        expected,
        "prepared, shared"
    );
    // Idle for two turns of the set's clock (which does not hold a connection's values).
    let Churn {
        workers,
        next,
        failures,
    } = spawn_churn(&world, churn() / 2);
    for w in workers {
        w.await.expect("a worker failed its checks");
    }
    assert_eq!(failures.load(Relaxed), 0);
    eprintln!(
        "review-hot: {} requests of the attacker's sessions",
        next.load(Relaxed)
    );
    assert_eq!(
        round(&mut connections, &jwks_now),
        expected,
        "after the churn: each connection its own"
    );
    // A reload changes the user id rule: the same connections, the new identities.
    world
        .gw
        .reload_with(|yaml| {
            yaml.replacen(
                "      user_id: serial_number\n",
                "      user_id: common_name\n",
                1,
            )
        })
        .await;
    let after = round(&mut connections, &jwks_now);
    for (i, (user, fingerprint)) in after.iter().enumerate() {
        let (old_user, old_fingerprint) = &expected[i];
        assert_eq!(fingerprint, old_fingerprint, "the same certificate");
        assert_ne!(user, old_user, "the new rule's id, not the prepared one");
        assert!(user.contains("Testni Uporabnik"), "{user}");
    }
    assert_ne!(after[0], after[2], "two identities still");
}
