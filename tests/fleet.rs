//! Running as a fleet: reload without restart (SIGHUP and `prehod reload`) under a bounded
//! loopback load that must see no failed request, replicas sharing state through Redis, and
//! the sessions page. The binary upgrade is tests/upgrade.rs. Past 800 lines because each
//! test is a whole scenario of a running fleet (its gateways, Redis, load and admin calls); what
//! they share is in test-support's `fleet` module.

use std::path::Path;
use std::time::{Duration, Instant};

use prehod_test_support::fleet::*;
use prehod_test_support::redis::Redis;
use prehod_test_support::*;

/// Writes the admin API's `token` into the gateway's configuration, for its next reload and
/// for a replica started from it.
fn write_admin_token(gw: &Gateway, token: &str) {
    let config = gw.dir.path().join("proxy.yaml");
    let yaml = std::fs::read_to_string(&config).expect("config");
    let listen = format!("  listen: {}\n", gw.admin);
    std::fs::write(
        &config,
        yaml.replace(&listen, &format!("{listen}  api_token: {token}\n")),
    )
    .expect("config");
}

/// A metric's value on the gateway's admin listener (0 when absent).
fn metric(gw: &Gateway, series: &str) -> f64 {
    prehod_test_support::metrics::value_or_zero(&gw.metrics(), series)
}

/// The `urls:` line of `portal` in a harness-written proxy.yaml.
fn urls_line(yaml: &str, portal: &str) -> String {
    let start = yaml
        .find(&format!("\n  {portal}:\n"))
        .expect("the portal in the config");
    yaml[start..]
        .lines()
        .find(|l| l.trim_start().starts_with("urls:"))
        .expect("its urls line")
        .to_owned()
}

/// `acq`'s upstream set to `urls` (a whole `urls: […]` line).
fn with_acq_urls(original: &str, urls: &str) -> String {
    let acq = urls_line(original, "acq");
    let start = original.find("\n  acq:\n").expect("acq");
    let at = start + original[start..].find(&acq).expect("acq urls");
    format!("{}{urls}{}", &original[..at], &original[at + acq.len()..])
}

async fn portal_of_acq(gw: &Gateway) -> String {
    let body: serde_json::Value = gw
        .client()
        .get(gw.url("acq", "/which"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("acq answers")
        .json()
        .await
        .expect("json");
    body["portal"].as_str().unwrap_or_default().to_owned()
}

/// The leaf certificate the gateway presents for `sni` (DER), whoever issued it.
fn presented_certificate(addr: std::net::SocketAddr, sni: &str) -> Vec<u8> {
    let mut connector =
        openssl::ssl::SslConnector::builder(openssl::ssl::SslMethod::tls()).expect("connector");
    connector.set_verify(openssl::ssl::SslVerifyMode::NONE);
    let tcp = std::net::TcpStream::connect(addr).expect("connect");
    let tls = connector
        .build()
        .configure()
        .expect("configure")
        .verify_hostname(false)
        .connect(sni, tcp)
        .expect("handshake");
    tls.ssl()
        .peer_certificate()
        .expect("a certificate")
        .to_der()
        .expect("der")
}

fn pem_to_der(path: &Path) -> Vec<u8> {
    openssl::x509::X509::from_pem(&std::fs::read(path).expect("pem"))
        .expect("certificate")
        .to_der()
        .expect("der")
}

fn sighup(pid: u32) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGHUP,
    )
    .expect("SIGHUP");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn twenty_reloads_under_load_fail_no_request_and_apply_their_change() {
    let (pki, gw, _portals) = demo_gateway(|_| {}).await;
    gw.wait_ready();
    let config = gw.dir.path().join("proxy.yaml");
    let original = std::fs::read_to_string(&config).expect("config");
    let bips_urls = urls_line(&original, "bips");
    let to_bips = with_acq_urls(&original, &bips_urls);
    let pid_file = gw.dir.path().join("prehod.pid");
    std::fs::write(&pid_file, gw.pid().to_string()).expect("pid file");
    assert_eq!(portal_of_acq(&gw).await, "acq");

    let load = load_on_acq(&gw, 4, true);
    wait_for("the load to run", Duration::from_secs(10), || {
        load.served() > 20
    });
    let mut ok = 0.0;
    for i in 1..=20 {
        let before = load.served();
        if i == 10 {
            // A bad file: `prehod reload --config` refuses it without signalling, and the
            // gateway itself, signalled anyway, refuses it too and keeps serving.
            std::fs::write(&config, format!("{original}\nthis_key_does_not_exist: 1\n"))
                .expect("bad config");
            let out = prehod_reload(&pid_file, Some(&config));
            assert_eq!(out.status.code(), Some(64), "prehod reload checks first");
            assert!(
                String::from_utf8_lossy(&out.stderr).contains("this_key_does_not_exist"),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
            sighup(gw.pid());
            wait_for("the refused reload", Duration::from_secs(10), || {
                metric(&gw, "prehod_config_reloads_total{result=\"failed\"}") == 1.0
            });
            assert!(
                gw.log_lines()
                    .iter()
                    .any(|l| l.contains("configuration reload refused")
                        && l.contains("this_key_does_not_exist")),
                "the refusal names the problem in the log"
            );
            // The previous configuration (acq → bips after reload 9) still serves.
            assert_eq!(portal_of_acq(&gw).await, "bips");
            continue;
        }
        // Odd reloads send acq to the bips demo portal, even ones back to acq's own.
        let next = if i % 2 == 1 { &to_bips } else { &original };
        std::fs::write(&config, next).expect("config");
        if i % 2 == 0 {
            let out = prehod_reload(&pid_file, Some(&config));
            assert!(
                out.status.success(),
                "{}",
                String::from_utf8_lossy(&out.stderr)
            );
        } else {
            sighup(gw.pid());
        }
        ok += 1.0;
        wait_for("the reload", Duration::from_secs(10), || {
            metric(&gw, "prehod_config_reloads_total{result=\"ok\"}") == ok
        });
        let expected = if i % 2 == 1 { "bips" } else { "acq" };
        assert_eq!(portal_of_acq(&gw).await, expected, "reload {i} took effect");
        // Requests went on meanwhile.
        wait_for("requests after the reload", Duration::from_secs(10), || {
            load.served() > before
        });
    }
    let (served, failures) = load.finish().await;
    assert!(failures.is_empty(), "failed requests: {failures:?}");
    assert!(served > 100, "only {served} requests served");
    assert_eq!(
        metric(&gw, "prehod_config_reloads_total{result=\"ok\"}"),
        19.0
    );
    assert!(metric(&gw, "prehod_config_last_reload_success_timestamp_seconds") > 1.7e9);
    // The process lived through it all.
    assert!(http_get(gw.admin, "/healthz").is_some_and(|(s, _)| s == 200));
    // A reload changes the server certificate for the next handshake (the TLS callback reads
    // the current configuration): here to one of another PKI.
    let other = tempfile::tempdir().expect("dir");
    prehod_devpki::generate(
        other.path(),
        &prehod_devpki::dev_server_names("bankart.localhost"),
    )
    .expect("another PKI");
    let before = presented_certificate(gw.https, &host("acq"));
    assert_eq!(before, pem_to_der(&pki.path("server.crt")));
    std::fs::write(
        &config,
        original
            .replace(
                &pki.path("server.crt").display().to_string(),
                &other.path().join("server.crt").display().to_string(),
            )
            .replace(
                &pki.path("server.key").display().to_string(),
                &other.path().join("server.key").display().to_string(),
            ),
    )
    .expect("config");
    sighup(gw.pid());
    wait_for("the certificate reload", Duration::from_secs(10), || {
        metric(&gw, "prehod_config_reloads_total{result=\"ok\"}") == 20.0
    });
    assert_eq!(
        presented_certificate(gw.https, &host("acq")),
        pem_to_der(&other.path().join("server.crt"))
    );
    // Without admin.api_token there is no sessions API at all.
    assert_eq!(
        admin_api(gw.admin, "GET", "/sessions?user=x", Some("anything")).0,
        404
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_share_revocations_through_redis_and_survive_its_outage() {
    use prehod_test_support::login::*;
    use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP, VISOKA, VISOKA_TOTP};
    let mut redis = Redis::start();
    // Rekono posts its logout tokens here; the test delivers them to replica B.
    let (recorder, mut tokens) = prehod_test_support::servers::body_recorder().await;
    let top: &'static str = Box::leak(
        format!(
            "state:\n  url: {}\n  key_prefix: \"fleet-test:\"\nrate_limits:\n  backchannel_logout: {{per_address: \"3/min\", burst: 3}}\n",
            redis.url()
        )
        .into_boxed_str(),
    );
    let world = world(Options {
        backchannel: Some(format!("http://{recorder}/record")),
        top_yaml: top,
        ..Options::default()
    })
    .await;
    let a = (world.gw.https, world.gw.admin);
    let b = Replica::of(&world.gw);
    let pki = &world.pki;
    for admin in [a.1, b.admin] {
        wait_for(
            "the replica to reach Redis",
            Duration::from_secs(10),
            || readyz_store(admin)["up"] == true,
        );
        assert_eq!(store_up_metric(admin), Some(1.0));
    }

    // Three people log in on A; each cookie works on B too (same keys).
    let bips = portal_url(&world, "bips", "/");
    let mut one = Browser::new(&world);
    login_otp(&world, &mut one, &bips, SREDNJA, SREDNJA_TOTP).await;
    let mut two = Browser::new(&world);
    let two_json = login_otp(&world, &mut two, &bips, VISOKA, VISOKA_TOTP)
        .await
        .json();
    let mut three = Browser::new(&world);
    login_otp(&world, &mut three, &bips, SREDNJA, SREDNJA_TOTP).await;
    let (c1, c2, c3) = (bips_session(&one), bips_session(&two), bips_session(&three));
    for c in [&c1, &c2, &c3] {
        assert_eq!(status_with(pki, a.0, c).await, 200);
        assert_eq!(status_with(pki, b.https, c).await, 200);
    }

    // 1. Log out on A: the cookie is refused on B within a second.
    log_out(&world, &mut one).await;
    assert_eq!(status_with(pki, a.0, &c1).await, 401);
    let took = until_status(pki, b.https, &c1, 401, Duration::from_secs(1)).await;
    eprintln!("logout on A refused on B after {took:?}");
    assert_eq!(
        status_with(pki, b.https, &c3).await,
        200,
        "only that session"
    );

    // 2. Back-channel logout delivered to B: refused on A within a second.
    while tokens.try_recv().is_ok() {}
    let sub = received_header(&two_json, "x-auth-user")[0].to_owned();
    rekono_logs_out(&world, &two, &sub).await;
    let token = tokio::time::timeout(Duration::from_secs(10), tokens.recv())
        .await
        .expect("a logout token")
        .expect("body");
    // B is reached through a client of its own (the browsers resolve every name to A).
    let ca = std::fs::read(pki.path("ca.crt")).expect("ca");
    let to_b = reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("ca"))
        .resolve(&host("login"), b.https)
        .build()
        .expect("client");
    let post = |target: std::net::SocketAddr| {
        let client = if target == b.https {
            to_b.clone()
        } else {
            world.gw.client()
        };
        let token = token.clone();
        async move {
            client
                .post(format!(
                    "https://{}:{}/oidc/backchannel-logout",
                    host("login"),
                    target.port()
                ))
                .header("content-type", "application/x-www-form-urlencoded")
                .body(token)
                .send()
                .await
                .expect("post")
                .status()
                .as_u16()
        }
    };
    // The fleet counts the back-channel limit in fixed windows of a minute (unix time / 60):
    // the four requests below must fall into one window, or the fourth starts a new count.
    let into_minute = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
        % 60;
    if into_minute > 45 {
        tokio::time::sleep(Duration::from_secs(61 - into_minute)).await;
    }
    assert_eq!(post(b.https).await, 200, "B accepts the logout token");
    assert_eq!(status_with(pki, b.https, &c2).await, 401);
    let took = until_status(pki, a.0, &c2, 401, Duration::from_secs(1)).await;
    eprintln!("back-channel logout on B refused on A after {took:?}");
    assert_eq!(
        post(a.0).await,
        400,
        "the same logout token replayed on A is refused: its jti was used on B"
    );
    // The back-channel rate limit (3 a minute per address) is counted across the fleet:
    // a third request on A, and the fourth overall is refused on B, whose own bucket
    // has seen only one.
    assert_eq!(post(a.0).await, 400, "a replay again, but within the limit");
    assert_eq!(post(b.https).await, 429, "over the fleet's limit");

    // 3. Redis goes away: both replicas keep serving, stay ready, and say so.
    redis.kill();
    for admin in [a.1, b.admin] {
        wait_for("the replica to notice", Duration::from_secs(10), || {
            readyz_store(admin)["up"] == false
        });
        assert_eq!(store_up_metric(admin), Some(0.0));
        let (_, m) = http_get(admin, "/metrics").expect("metrics");
        assert!(m
            .lines()
            .any(|l| l.starts_with("prehod_state_store_errors_total ") && !l.ends_with(" 0")));
    }
    assert_eq!(status_with(pki, a.0, &c3).await, 200);
    assert_eq!(status_with(pki, b.https, &c3).await, 200);
    assert_eq!(
        status_with(pki, a.0, &c1).await,
        401,
        "revocations held locally"
    );
    assert_eq!(status_with(pki, b.https, &c1).await, 401);
    // A logout on A meanwhile holds on A at once…
    log_out(&world, &mut three).await;
    assert_eq!(status_with(pki, a.0, &c3).await, 401);
    assert!(readyz_store(a.1)["pending_revocations"].as_u64() >= Some(1));

    // 4. …and reaches B once Redis is back (A publishes it, B catches up).
    redis.restart();
    for admin in [a.1, b.admin] {
        wait_for("the replica to reconnect", Duration::from_secs(10), || {
            readyz_store(admin)["up"] == true
        });
        assert_eq!(store_up_metric(admin), Some(1.0));
    }
    until_status(pki, b.https, &c3, 401, Duration::from_secs(5)).await;
    assert_eq!(readyz_store(a.1)["pending_revocations"], 0);

    // 5. A revocation stored in Redis but never published (as if its message were lost):
    // A, which knows the cookie, goes on; B, seeing it for the first time, looks it up.
    let mut four = Browser::new(&world);
    let four_json = login_otp(&world, &mut four, &bips, VISOKA, VISOKA_TOTP)
        .await
        .json();
    let c4 = bips_session(&four);
    assert_eq!(status_with(pki, a.0, &c4).await, 200);
    let sub = received_header(&four_json, "x-auth-user")[0].to_owned();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    redis.command(&[
        "SET",
        &format!("fleet-test:rev:subject:{sub}"),
        &now.to_string(),
        "EX",
        "600",
    ]);
    assert_eq!(
        status_with(pki, b.https, &c4).await,
        401,
        "looked up on a miss"
    );
    assert_eq!(
        status_with(pki, a.0, &c4).await,
        200,
        "nothing was published"
    );

    // 6. Attacker's review: Redis came back empty in step 4. The replicas found no fleet
    // epoch there and wrote back the revocations they knew, so a replica started afterwards
    // refuses the sessions ended before the restart (it answered 200 before).
    let c = Replica::of(&world.gw);
    wait_for("replica C to reach Redis", Duration::from_secs(10), || {
        readyz_store(c.admin)["up"] == true
    });
    assert_eq!(
        status_with(pki, c.https, &c1).await,
        401,
        "logged out on A before Redis restarted empty"
    );
    assert_eq!(
        status_with(pki, c.https, &c2).await,
        401,
        "back-channel logout on B before Redis restarted empty"
    );
    assert_eq!(status_with(pki, c.https, &c3).await, 401);
}

/// The `sid` values of the sessions page's rows: (this session's, the others').
fn session_rows(body: &str) -> (Option<String>, Vec<String>) {
    let mut this = None;
    let mut others = Vec::new();
    for row in body.split("<tr").skip(1) {
        let Some(start) = row.find("name=\"sid\" value=\"") else {
            continue;
        };
        let sid = row[start + 18..]
            .split('"')
            .next()
            .unwrap_or_default()
            .to_owned();
        if row.starts_with(" class=\"this-session\"") {
            this = Some(sid);
        } else {
            others.push(sid);
        }
    }
    (this, others)
}

fn admin_api(
    admin: std::net::SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
) -> (u16, String) {
    use std::io::{Read, Write};
    let mut s = std::net::TcpStream::connect(admin).expect("admin");
    s.set_read_timeout(Some(Duration::from_secs(5)))
        .expect("timeout");
    let auth = token
        .map(|t| format!("authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nhost: admin\r\n{auth}content-length: 0\r\nconnection: close\r\n\r\n"
    )
    .expect("write");
    let mut out = String::new();
    let _ = s.read_to_string(&mut out);
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = out
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// The admin API's token of the admin tests.
const ADMIN_TOKEN: &str = "0123456789abcdef0123456789abcdef-admin";

/// A world (gateway A) whose state is in `redis` under `prefix`, with [`ADMIN_TOKEN`] written
/// into its configuration (for A's next reload), and replica B started from that
/// configuration.
async fn world_with_admin(
    redis: &Redis,
    prefix: &str,
) -> (prehod_test_support::login::World, Replica) {
    use prehod_test_support::login::{world, Options};
    let world = world(Options {
        top_yaml: redis.state_yaml(prefix),
        ..Options::default()
    })
    .await;
    write_admin_token(&world.gw, ADMIN_TOKEN);
    let b = Replica::of(&world.gw);
    (world, b)
}

/// Once A and B both reach Redis: a person logs in on bips (with a one-time password); their
/// browser and the user id the portal received.
async fn logged_in_on_bips(
    world: &prehod_test_support::login::World,
    b: &Replica,
) -> (prehod_test_support::login::Browser, String) {
    use prehod_test_support::login::{login_otp, portal_url, Browser};
    use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
    for admin in [world.gw.admin, b.admin] {
        wait_for("Redis", Duration::from_secs(10), || {
            readyz_store(admin)["up"] == true
        });
    }
    let bips = portal_url(world, "bips", "/");
    let mut one = Browser::new(world);
    let json = login_otp(world, &mut one, &bips, SREDNJA, SREDNJA_TOTP)
        .await
        .json();
    let sub = received_header(&json, "x-auth-user")[0].to_owned();
    (one, sub)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_person_sees_and_ends_their_sessions_and_an_admin_can_too() {
    use prehod_test_support::login::*;
    use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
    let redis = Redis::start();
    // The admin API is switched on by a reload (A) and from the start (B).
    let (world, b) = world_with_admin(&redis, "sessions-test:").await;
    let token = ADMIN_TOKEN;
    sighup(world.gw.pid());
    wait_for("the reload", Duration::from_secs(10), || {
        metric(&world.gw, "prehod_config_reloads_total{result=\"ok\"}") == 1.0
    });
    let (mut one, sub) = logged_in_on_bips(&world, &b).await;
    let pki = &world.pki;
    let bips = portal_url(&world, "bips", "/");
    let mut two = Browser::new(&world);
    login_otp(&world, &mut two, &bips, SREDNJA, SREDNJA_TOTP).await;
    let (c1, c2) = (bips_session(&one), bips_session(&two));

    // The page lists both sessions, this one marked.
    let page = one.navigate(&login_url(&world, "/sessions")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        page.headers
            .get("cache-control")
            .and_then(|v| v.to_str().ok()),
        Some("no-store")
    );
    let (this, others) = session_rows(&page.body);
    assert!(this.is_some(), "this session is marked: {}", page.body);
    assert_eq!(others.len(), 1, "{}", page.body);
    assert!(page.body.contains("Rekono") && page.body.contains("<td>20</td>"));
    // Without a session there is no page: the login page instead.
    let anonymous = Browser::new(&world)
        .navigate(&login_url(&world, "/sessions"))
        .await;
    assert_eq!(anonymous.status, 302, "{}", anonymous.body);

    // A forged form (no token, another session's token) ends nothing.
    let csrf_two = {
        let p = two.navigate(&login_url(&world, "/sessions")).await;
        unescape(&p.hidden("csrf"))
    };
    for csrf in ["", csrf_two.as_str()] {
        let refused = one
            .post_form(&login_url(&world, "/sessions/end-all"), &[("csrf", csrf)])
            .await;
        assert_eq!(refused.status, 403, "{}", refused.body);
    }
    assert_eq!(status_with(pki, world.gw.https, &c1).await, 200);
    assert_eq!(status_with(pki, world.gw.https, &c2).await, 200);

    // "End this" on the other session: refused on A at once and on B within a second.
    let csrf = unescape(&page.hidden("csrf"));
    let ended = one
        .post_form(
            &login_url(&world, "/sessions/end"),
            &[("csrf", &csrf), ("sid", &others[0])],
        )
        .await;
    // Back on the page (post_form follows the redirect), without the ended session.
    assert_eq!(ended.status, 200, "{}", ended.body);
    assert!(ended.url.ends_with("/sessions"), "{}", ended.url);
    assert_eq!(session_rows(&ended.body).1.len(), 0, "{}", ended.body);
    assert_eq!(status_with(pki, world.gw.https, &c2).await, 401);
    until_status(pki, b.https, &c2, 401, Duration::from_secs(1)).await;
    assert_eq!(status_with(pki, world.gw.https, &c1).await, 200);
    // A reload keeps sessions and revocations: c1 lives on, c2 stays ended.
    sighup(world.gw.pid());
    wait_for("the second reload", Duration::from_secs(10), || {
        metric(&world.gw, "prehod_config_reloads_total{result=\"ok\"}") == 2.0
    });
    assert_eq!(status_with(pki, world.gw.https, &c1).await, 200);
    assert_eq!(status_with(pki, world.gw.https, &c2).await, 401);

    // The admin API: no token, a wrong one → 401; then B lists and ends the user's sessions.
    let list = format!("/sessions?user={sub}");
    assert_eq!(admin_api(b.admin, "GET", &list, None).0, 401);
    assert_eq!(
        admin_api(
            b.admin,
            "GET",
            &list,
            Some("0123456789abcdef0123456789abcdef-wrong!")
        )
        .0,
        401
    );
    let (status, body) = admin_api(b.admin, "GET", &list, Some(token));
    assert_eq!(status, 200, "{body}");
    let listed: serde_json::Value = serde_json::from_str(&body).expect("json");
    let sessions = listed["sessions"].as_array().expect("list");
    assert_eq!(sessions.len(), 1, "B lists the session made on A: {body}");
    assert_eq!(sessions[0]["method"], "rekono");
    assert_eq!(sessions[0]["level"], 20);
    let end_all = format!("/sessions/end?user={sub}&all=true");
    assert_eq!(admin_api(b.admin, "POST", &end_all, Some(token)).0, 200);
    until_status(pki, world.gw.https, &c1, 401, Duration::from_secs(1)).await;
    assert_eq!(status_with(pki, b.https, &c1).await, 401);
    // A has the API since its reload.
    let (status, _) = admin_api(world.gw.admin, "GET", &list, Some(token));
    assert_eq!(status, 200);
}

/// Waits until the unix second after this one has begun (revocations and login times are
/// whole seconds; a person takes seconds to log in again, a test milliseconds).
async fn into_the_next_second() {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

/// Logs `browser` in to bips again after its sessions were ended: Rekono must ask for the
/// password (fresh authentication), not answer from its single sign-on. Returns the new
/// bips cookie.
async fn fresh_login_again(
    w: &prehod_test_support::login::World,
    browser: &mut prehod_test_support::login::Browser,
) -> (String, String) {
    use prehod_test_support::login::*;
    use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
    let bips = portal_url(w, "bips", "/");
    let start = login_url(
        w,
        &format!("/oidc/start?return={}", encode_component(&bips)),
    );
    let rekono = browser.follow(&start).await;
    assert!(
        rekono.body.contains("Prijavljate se v storitev"),
        "Rekono asks for the password again: {} {}",
        rekono.url,
        rekono.body
    );
    let last = w.sim.sim.authorization_requests();
    let last = last.last().expect("an authorization request");
    assert!(
        last.contains(&("prompt".to_owned(), "login".to_owned()))
            && last.contains(&("max_age".to_owned(), "0".to_owned())),
        "{last:?}"
    );
    let chooser = rekono_password(w, browser, &rekono, SREDNJA).await;
    rekono_otp(w, browser, &chooser, SREDNJA_TOTP).await;
    bips_session(browser)
}

/// Issue 17, item 8 across replicas: an admin ends a person's sessions on replica B; the
/// person's next login on replica A asks Rekono for fresh authentication (A learned the
/// revocation from the fleet), the new session works on both replicas and the old one stays
/// refused on both. A revocation that reached Redis but was never published is looked up
/// at the callback too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_an_admin_ends_all_sessions_on_one_replica_the_next_login_on_another_is_fresh() {
    let redis = Redis::start();
    // B has the admin API (its configuration is A's with a token).
    let (world, b) = world_with_admin(&redis, "fresh-test:").await;
    let token = ADMIN_TOKEN;
    let (mut one, sub) = logged_in_on_bips(&world, &b).await;
    let pki = &world.pki;
    let a = world.gw.https;
    let old = bips_session(&one);
    assert_eq!(status_with(pki, b.https, &old).await, 200);

    let end_all = format!("/sessions/end?user={sub}&all=true");
    assert_eq!(admin_api(b.admin, "POST", &end_all, Some(token)).0, 200);
    assert_eq!(status_with(pki, b.https, &old).await, 401);
    until_status(pki, a, &old, 401, Duration::from_secs(1)).await;
    into_the_next_second().await;

    // Before: Rekono's single sign-on, a session issued on A and refused as revoked.
    let new = fresh_login_again(&world, &mut one).await;
    assert_eq!(status_with(pki, a, &new).await, 200, "the new session on A");
    assert_eq!(status_with(pki, b.https, &new).await, 200, "and on B");
    assert_eq!(status_with(pki, a, &old).await, 401);
    assert_eq!(status_with(pki, b.https, &old).await, 401);

    // A revocation stored in Redis but never published (its message lost): A's session
    // list does not know it, but the login's callback looks the subject up.
    into_the_next_second().await;
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    redis.command(&[
        "SET",
        &format!("fresh-test:rev:subject:{sub}"),
        &now.to_string(),
        "EX",
        "600",
    ]);
    into_the_next_second().await;
    let newer = fresh_login_again(&world, &mut one).await;
    assert_eq!(status_with(pki, a, &newer).await, 200);
    assert_eq!(status_with(pki, b.https, &newer).await, 200);
}

#[test]
fn check_refuses_a_state_section_that_cannot_work_and_never_repeats_its_password() {
    let pki = Pki::new();
    let dir = tempfile::tempdir().expect("tmp");
    let base = format!(
        "listen:\n  https: 127.0.0.1:8443\nadmin:\n  listen: 127.0.0.1:9090\n{{admin}}tls:\n  certificates:\n    - cert: {}\n      key: {}\n{{state}}portals:\n  acq:\n    host: acq.bankart.localhost\n    danger_no_authentication: true\n    upstream:\n      urls: [\"http://10.0.0.1:8080\"]\n",
        pki.path("server.crt").display(),
        pki.path("server.key").display(),
    );
    let check = |admin: &str, state: &str| {
        let path = dir.path().join("proxy.yaml");
        std::fs::write(
            &path,
            base.replace("{admin}", admin).replace("{state}", state),
        )
        .expect("write");
        let out = std::process::Command::new(prehod_bin())
            .args(["check", "--config"])
            .arg(&path)
            .output()
            .expect("prehod check");
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    assert_eq!(
        check(
            "  api_token: 0123456789abcdef0123456789abcdef\n",
            "state:\n  url: redis://:pw@127.0.0.1:6379/\n  key_prefix: \"bankart:\"\n  timeout: 250ms\n"
        )
        .0,
        Some(0)
    );
    for (admin, state, key, says) in [
        (
            "",
            "state:\n  url: http://127.0.0.1:6379\n",
            "state.url",
            "redis://",
        ),
        (
            "",
            "state:\n  url: \"rediss://:hunter2secret@redis.internal:6380/#insecure\"\n",
            "state.url",
            "#fragment",
        ),
        (
            "",
            "state:\n  url: \"not a url :hunter2secret\"\n",
            "state.url",
            "not a URL",
        ),
        (
            "",
            "state:\n  url: redis://127.0.0.1:6379\n  key_prefix: \"\"\n",
            "state.key_prefix",
            "visible ASCII",
        ),
        (
            "",
            "state:\n  url: redis://127.0.0.1:6379\n  tls:\n    ca: /nonexistent/ca.crt\n",
            "state.tls.ca",
            "rediss://",
        ),
        (
            "",
            "state:\n  url: redis://127.0.0.1:6379\n  colour: red\n",
            "state.colour",
            "unknown",
        ),
        (
            "  api_token: short-hunter2secret\n",
            "",
            "admin.api_token",
            "at least 32",
        ),
    ] {
        let (code, stderr) = check(admin, state);
        assert_eq!(code, Some(64), "{state}{admin}: {stderr}");
        assert!(
            stderr.lines().any(|l| l.contains(key) && l.contains(says)),
            "{key}: {stderr}"
        );
        assert!(
            !stderr.contains("hunter2secret"),
            "a secret repeated: {stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_shared_state_can_be_reached_over_tls_with_a_private_ca_and_only_with_it() {
    let pki = Pki::new();
    let redis = Redis::start_tls(&pki);
    let (mut setup, _portals) = six_demo_portals().await;
    setup.top_extra = format!(
        "state:\n  url: rediss://localhost:{}/\n  tls:\n    ca: {}\n",
        redis.port,
        pki.path("ca.crt").display()
    );
    let trusted = Gateway::start(&pki, &setup);
    wait_for(
        "the TLS connection to Redis",
        Duration::from_secs(10),
        || readyz_store(trusted.admin)["up"] == true,
    );
    assert_eq!(
        readyz_store(trusted.admin)["server"],
        format!("rediss://localhost:{}", redis.port)
    );
    // Without the CA the server's certificate does not verify: never connected, still ready.
    setup.top_extra = format!("state:\n  url: rediss://localhost:{}/\n", redis.port);
    let untrusting = Gateway::start(&pki, &setup);
    wait_for("a refused TLS connection", Duration::from_secs(10), || {
        metric(&untrusting, "prehod_state_store_errors_total") >= 1.0
    });
    let store = readyz_store(untrusting.admin);
    assert_eq!(store["up"], false, "{store}");
    assert!(
        store["error"]
            .as_str()
            .is_some_and(|e| e != "not connected yet"),
        "{store}"
    );
    assert_eq!(store_up_metric(untrusting.admin), Some(0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_keeps_the_crl_fetched_from_a_url_while_its_server_is_away() {
    use prehod_test_support::login::*;
    let w = certificate_world(CertOptions {
        crl: Some(("ca.crl.pem", "1h")),
        crl_over_http: true,
        ..CertOptions::default()
    })
    .await;
    let revoked_is_refused = || async {
        login_with_certificate(&w, "revoked", "bws")
            .await
            .body
            .contains("Certifikat je preklican")
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !revoked_is_refused().await {
        assert!(Instant::now() < deadline, "the CRL was never fetched");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The CRL's server loses the file; then the configuration is reloaded (same anchor).
    std::fs::remove_file(w.pki.path("ca.crl.pem")).expect("remove the CRL");
    sighup(w.gw.pid());
    wait_for("the reload", Duration::from_secs(10), || {
        metric(&w.gw, "prehod_config_reloads_total{result=\"ok\"}") == 1.0
    });
    // The refresh after the reload fails (logged), and the CRL fetched before still holds.
    wait_for("the failed refresh", Duration::from_secs(10), || {
        w.gw.log_lines()
            .iter()
            .filter(|l| l.contains("the previous one stays"))
            .count()
            >= 1
    });
    assert!(revoked_is_refused().await, "still refused by the kept CRL");
    assert_eq!(
        login_with_certificate(&w, "valid", "bws").await.status,
        302,
        "and a good certificate still logs in"
    );
}
