//! The Rekono login through the real gateway and the Rekono simulator, over real TLS: the
//! Bankart login page, each second factor, one login for six portals, step-up, sessions,
//! logout, and the attacks on each of them.

use std::time::{Duration, Instant};

use prehod_test_support::login::*;
use prehod_test_support::rekono::{NIZKA, SREDNJA, SREDNJA_TOTP, VISOKA, VISOKA_TOTP};
use prehod_test_support::{received_header, PORTALS};
use serde_json::Value;

/// Verifies the signed identity assertion a portal received, with the gateway's JWKS.
async fn verify_assertion(world: &World, browser: &Browser, portal: &str, body: &Value) -> Value {
    let token = received_header(body, "x-auth-assertion");
    assert_eq!(token.len(), 1, "exactly one assertion");
    let jwks = assertion_keys(world, &browser.http).await;
    let header = jsonwebtoken::decode_header(token[0]).expect("header");
    assert_eq!(header.alg, jsonwebtoken::Algorithm::ES256);
    let key = jsonwebtoken::DecodingKey::from_jwk(
        jwks.find(header.kid.as_deref().expect("kid")).expect("key"),
    )
    .expect("key");
    let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
    v.set_issuer(&[login_url(world, "")]);
    // The origin the browser reached, with its (non-default) port (issue 19).
    v.set_audience(&[format!(
        "https://{}:{}",
        prehod_test_support::host(portal),
        world.gw.https.port()
    )]);
    jsonwebtoken::decode::<Value>(token[0], &key, &v)
        .expect("the assertion verifies")
        .claims
}

fn audit_lines(world: &World) -> Vec<Value> {
    world
        .gw
        .log_lines()
        .iter()
        .filter(|l| l.contains("prehod::audit"))
        .filter_map(|l| serde_json::from_str::<Value>(l).ok())
        .map(|v| v["fields"].clone())
        .collect()
}

/// Polls the audit log for a line with these fields (it is written as the response goes).
async fn expect_audit(world: &World, event: &str, outcome: &str, reason: Option<&str>) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let found = audit_lines(world).into_iter().find(|l| {
            l["event"] == event
                && l["outcome"] == outcome
                && reason.is_none_or(|r| l["reason"] == r)
        });
        if let Some(l) = found {
            return l;
        }
        assert!(
            Instant::now() < deadline,
            "no audit line {event}/{outcome}/{reason:?} in {:#?}",
            audit_lines(world)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onepass_login_reaches_the_portal_with_identity_headers_and_a_valid_assertion() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let url = portal_url(&world, "bips", "/accounts?page=2");
    let first = browser.navigate(&url).await;
    assert_eq!(first.status, 302);
    assert!(first
        .location
        .as_deref()
        .is_some_and(|l| l.starts_with(&login_url(&world, "/?return="))));
    let body = login_otp(&world, &mut browser, &url, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(body.status, 200, "{}", body.body);
    assert_eq!(body.url, url, "back on the original URL");
    let json = body.json();
    assert_eq!(json["portal"], "bips");
    let sub = received_header(&json, "x-auth-user")[0].to_owned();
    assert!(sub.starts_with("rekono-"));
    assert_eq!(received_header(&json, "x-auth-email"), [SREDNJA.0]);
    assert_eq!(received_header(&json, "x-auth-name"), ["Sara Srednja"]);
    assert_eq!(received_header(&json, "x-auth-method"), ["rekono"]);
    assert_eq!(
        received_header(&json, "x-auth-level"),
        ["20"],
        "bips asks for level 20"
    );
    assert_eq!(received_header(&json, "x-auth-amr"), ["pwd otp"]);
    assert!(
        received_header(&json, "cookie")
            .iter()
            .all(|c| !c.contains("prehod_")),
        "the gateway's cookies stay at the gateway"
    );
    let claims = verify_assertion(&world, &browser, "bips", &json).await;
    assert_eq!(claims["sub"], sub.as_str());
    assert_eq!(claims["level"], 20);
    assert_eq!(claims["method"], "rekono");
    assert!(claims["exp"].as_u64() > claims["iat"].as_u64());
    // Session cookies are host-only (`__Host-`: no Domain, Path=/, Secure), HttpOnly, Lax:
    // one on the login host, one on the portal.
    let sets: Vec<&String> = browser
        .set_cookies
        .iter()
        .filter(|c| c.starts_with("__Host-prehod_session="))
        .collect();
    assert_eq!(sets.len(), 2, "login host and portal: {sets:?}");
    for set in sets {
        for attribute in ["Path=/", "Secure", "HttpOnly", "SameSite=Lax"] {
            assert!(
                set.split("; ").any(|a| a == attribute),
                "{attribute} missing in {set}"
            );
        }
        assert!(!set.contains("Domain="), "host-only: {set}");
    }
    let audit = expect_audit(&world, "login", "success", None).await;
    assert_eq!(audit["email"], SREDNJA.0);
    assert_eq!(audit["portal"], "bips");
    // Later requests are answered from the session cache, and the metrics say so.
    for _ in 0..3 {
        assert_eq!(browser.api(&url).await.status, 200);
    }
    let metrics = world.gw.metrics();
    assert!(
        metrics.contains("prehod_logins_total{method=\"rekono\",outcome=\"success\"} 1"),
        "{metrics}"
    );
    let value = |name: &str| -> f64 {
        metrics
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    assert!(
        value("prehod_session_cache_lookups_total{result=\"hit\"}") >= 3.0,
        "{metrics}"
    );
    assert!(value("prehod_session_cache_entries") >= 1.0, "{metrics}");
    assert_eq!(value("prehod_oidc_ready"), 1.0);
}

async fn outbox_code(world: &World, browser: &Browser, to: &str) -> String {
    let outbox: Value = browser
        .http
        .get(sim_url(world, "/dev/outbox"))
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("json");
    outbox
        .as_array()
        .expect("list")
        .iter()
        .rev()
        .find(|m| m["to"] == to)
        .and_then(|m| m["code"].as_str())
        .expect("an SMS")
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_push_and_certificate_logins_reach_portals_with_their_amr() {
    let world = world(Options::default()).await;
    let base = "/openid-connect-server-webapp";

    // SMS, for acq (level 10).
    let mut browser = Browser::new(&world);
    let login_page = browser.follow(&portal_url(&world, "acq", "/")).await;
    let rekono = browser.follow(&rekono_link(&world, &login_page)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, NIZKA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post_form(
            &sim_url(&world, &format!("{base}/factor/sms")),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    let code = outbox_code(&world, &browser, "+38640111222").await;
    let back = browser
        .post_form(
            &sim_url(&world, &format!("{base}/factor/sms/verify")),
            &[("tx", &tx), ("csrf", &csrf), ("code", &code)],
        )
        .await;
    let json = browser.api(&back.url).await.json();
    assert_eq!(json["portal"], "acq");
    assert_eq!(received_header(&json, "x-auth-amr"), ["pwd sms"]);
    assert_eq!(received_header(&json, "x-auth-level"), ["10"]);
    verify_assertion(&world, &browser, "acq", &json).await;

    // OnePass push, for b2b.
    let mut browser = Browser::new(&world);
    let login_page = browser.follow(&portal_url(&world, "b2b", "/")).await;
    let rekono = browser
        .follow(&format!("{}&level=20", rekono_link(&world, &login_page)))
        .await;
    let chooser = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let waiting = browser
        .post_form(
            &sim_url(&world, &format!("{base}/factor/push")),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(waiting.body.contains("Potrdite obvestilo"));
    let pending: Value = browser
        .http
        .get(sim_url(&world, "/dev/push"))
        .send()
        .await
        .expect("push")
        .json()
        .await
        .expect("json");
    let id = pending[0]["id"].as_str().expect("push id");
    browser
        .http
        .post(sim_url(&world, &format!("/dev/push/{id}/approve")))
        .send()
        .await
        .expect("approve");
    let back = browser
        .follow(&sim_url(
            &world,
            &format!("{base}/factor/push/wait?tx={tx}"),
        ))
        .await;
    let json = browser.api(&back.url).await.json();
    assert_eq!(json["portal"], "b2b");
    assert_eq!(received_header(&json, "x-auth-amr"), ["pwd mfa"]);
    assert_eq!(
        received_header(&json, "x-auth-level"),
        ["20"],
        "the level asked for on the way in"
    );

    // Digital certificate at Rekono, for bws (level 30).
    let mut browser = Browser::with_certificate(&world, "valid");
    let login_page = browser.follow(&portal_url(&world, "bws", "/")).await;
    let rekono = browser.follow(&rekono_link(&world, &login_page)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    assert!(chooser.body.contains("Digitalno potrdilo"));
    let tx = chooser.hidden("tx");
    let mtls = &world.sim.sim.config.public_mtls_url;
    let back = browser
        .follow(&format!("{mtls}{base}/factor/cert?tx={tx}"))
        .await;
    let json = browser.api(&back.url).await.json();
    assert_eq!(json["portal"], "bws");
    assert_eq!(received_header(&json, "x-auth-amr"), ["pwd hwk"]);
    assert_eq!(received_header(&json, "x-auth-level"), ["30"]);
    verify_assertion(&world, &browser, "bws", &json).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_login_serves_every_portal_its_policy_allows_and_steps_up_for_the_others() {
    let world = world(Options::default()).await;
    // Vid (level 30 account) logs in for bips, which asks for 20.
    let (mut browser, json) = log_in(&world, "bips", "/", VISOKA, VISOKA_TOTP).await;
    let json = json.json();
    assert_eq!(received_header(&json, "x-auth-level"), ["20"]);
    for portal in PORTALS.iter().filter(|p| **p != "bws") {
        // Host-only cookies: the first visit goes through the login host, which already
        // knows the user and sends back a single-use code — no second login.
        let first = browser.follow(&portal_url(&world, portal, "/")).await;
        assert_eq!(
            first.url,
            portal_url(&world, portal, "/"),
            "{portal}: {}",
            first.body
        );
        let page = browser
            .send(
                reqwest::Method::GET,
                &portal_url(&world, portal, "/"),
                None,
                &[
                    ("accept", "application/json"),
                    ("authorization", "Basic ZGVtbzpkZW1vMTIz"),
                ],
            )
            .await;
        assert_eq!(page.status, 200, "{portal} without a second login");
        assert_eq!(page.json()["portal"], *portal);
    }
    // bws asks for 30: a step-up, not a dead end — back to Rekono for the higher level…
    let target = portal_url(&world, "bws", "/reports?month=11");
    // (bws has no cookie yet: through the login host, which finds the level too low for bws
    // and shows its step-up page at once.)
    let mut location = target.clone();
    for _ in 0..5 {
        let hop = browser.navigate(&location).await;
        assert_eq!(hop.status, 302, "{location}: {}", hop.body);
        location = hop.location.clone().expect("location");
        if location.starts_with(&login_url(&world, "/step-up")) {
            break;
        }
    }
    assert!(
        location.starts_with(&login_url(&world, "/step-up?level=30&return=")),
        "{location}"
    );
    // First a page that says why (issue 13, item 3), then Rekono.
    let why = browser.follow(&location).await;
    assert!(
        why.body
            .contains("Aplikacija bws zahteva stopnjo zaupanja 30, vaša seja ima stopnjo 20."),
        "{}",
        why.body
    );
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    // …where the single sign-on session (level 20) is not enough: password and factor again.
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    let back = rekono_otp(&world, &mut browser, &chooser, VISOKA_TOTP).await;
    assert_eq!(back.url, target, "the step-up ends on the original URL");
    let json = browser.api(&target).await.json();
    assert_eq!(json["portal"], "bws");
    assert_eq!(received_header(&json, "x-auth-level"), ["30"]);
    expect_audit(&world, "step_up", "started", None).await;
    assert!(world
        .gw
        .metrics()
        .contains("prehod_step_ups_total{portal=\"bws\"} 1"));

    // A level-20 account cannot step up to 30: Rekono answers with an error, the gateway
    // shows the "level too low" page.
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let why = browser.follow(&portal_url(&world, "bws", "/")).await;
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    let page = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    assert_eq!(page.status, 403);
    assert!(
        page.body.contains("Stopnja zaupanja je prenizka"),
        "{}",
        page.body
    );
    expect_audit(&world, "login", "failure", Some("level_too_low")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn api_calls_without_a_session_get_401_json_and_navigations_the_login_page() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let api = browser
        .api(&portal_url(&world, "acq", "/api/balance"))
        .await;
    assert_eq!(api.status, 401);
    let json = api.json();
    assert_eq!(json["error"], "login_required");
    assert!(json["login"]
        .as_str()
        .is_some_and(|l| l.starts_with(&login_url(&world, "/?return="))));
    let xhr = browser
        .send(
            reqwest::Method::GET,
            &portal_url(&world, "acq", "/x"),
            None,
            &[
                ("accept", "text/html"),
                ("x-requested-with", "XMLHttpRequest"),
            ],
        )
        .await;
    assert_eq!(xhr.status, 401, "XHR is not a navigation");
    let page = browser.follow(&portal_url(&world, "acq", "/")).await;
    assert!(page
        .body
        .contains("Pozdravljeni na prijavni strani Bankart"));
    // Rekono's button; no certificate login is configured in this world, so none is offered
    // (issue 19: it used to be shown, and `/certificate` answered 503).
    assert!(page.body.contains("Prijava z Rekono računom"));
    assert!(
        !page.body.contains("Prijava s certifikatom"),
        "{}",
        page.body
    );
    for (name, value) in [("x-frame-options", "DENY"), ("cache-control", "no-store")] {
        assert_eq!(
            page.headers.get(name).and_then(|v| v.to_str().ok()),
            Some(value),
            "{name}"
        );
    }
    assert!(page.headers["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("default-src 'none'"));
    // English by Accept-Language, and by the switch.
    let en = browser
        .send(
            reqwest::Method::GET,
            &login_url(&world, "/"),
            None,
            &[("accept-language", "en-GB,en;q=0.8")],
        )
        .await;
    assert!(
        en.body.contains("Welcome to the Bankart login page")
            && en.body.contains("Log in with a Rekono account")
    );
}

/// A portal (or host), a path, request headers and the status both methods get.
type HeadCase<'a> = (&'a str, &'a str, &'a [(&'a str, &'a str)], u16);

/// Review bug: a HEAD over HTTP/2 answered by one of the gateway's own replies got the
/// reply's body as DATA, which a HEAD response may not carry: the client reset the stream
/// with PROTOCOL_ERROR. Each reply — JSON refusals (401, the forward-auth endpoint's 403), an
/// HTML page, a redirect, the login page — answers HEAD with the GET's status and
/// `Content-Length`, no body, the stream ended cleanly; over HTTP/1.1 as well.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn head_over_http2_gets_the_gets_headers_and_no_body_from_every_reply() {
    let world = world(Options::default()).await;
    let gw = &world.gw;
    let h2 = gw
        .client_builder()
        .http2_prior_knowledge()
        .build()
        .expect("client");
    let h1 = gw.client_builder().http1_only().build().expect("client");
    let json = [("accept", "application/json")];
    let page = [("accept", "text/html"), ("sec-fetch-mode", "navigate")];
    let cases: [HeadCase; 5] = [
        ("acq", "/", &json, 401),
        // The forward-auth endpoint asked by a caller it does not trust: a JSON 403.
        ("login", "/forward-auth", &[], 403),
        ("unknown", "/", &[], 421),
        ("acq", "/orders", &page, 302),
        ("login", "/", &[], 200),
    ];
    for (client, version) in [
        (&h2, reqwest::Version::HTTP_2),
        (&h1, reqwest::Version::HTTP_11),
    ] {
        for (portal, path, headers, status) in cases {
            let what = format!("{portal}{path} {headers:?} over {version:?}");
            let send = |method: reqwest::Method| {
                let mut req = client.request(method, gw.url(portal, path));
                for (name, value) in headers {
                    req = req.header(*name, *value);
                }
                req.send()
            };
            let get = send(reqwest::Method::GET).await.expect("GET");
            assert_eq!(get.status(), status, "GET {what}");
            let length = get.headers().get("content-length").cloned();
            let body = get.bytes().await.expect("GET body");
            assert_eq!(
                length.as_ref().and_then(|v| v.to_str().ok()),
                Some(body.len().to_string().as_str()),
                "GET {what}"
            );

            let head = send(reqwest::Method::HEAD).await.expect("HEAD");
            assert_eq!(head.version(), version, "{what}");
            assert_eq!(head.status(), status, "HEAD {what}");
            assert_eq!(
                head.headers().get("content-length"),
                length.as_ref(),
                "HEAD {what}: the GET's length"
            );
            let body = head.bytes().await;
            assert!(
                body.as_ref().is_ok_and(|b| b.is_empty()),
                "HEAD {what}: no body, the stream ended cleanly, not {body:?}"
            );
        }
    }
    // The connection serves on after them.
    let after = h2
        .get(gw.url("acq", "/"))
        .header("accept", "application/json")
        .send()
        .await
        .expect("another stream");
    assert_eq!(after.status(), 401);
}

/// Review bug: the single sign-on nonce cookie was `__Host-prehod_sso` whatever
/// `cookies.prefix` said, so with another prefix the gateway did not count it as its own and
/// passed it to the portal. With `cookies.prefix: bankart` it is `__Host-bankart_sso`, the
/// login still works, and no cookie of the gateway's reaches the portal.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_another_cookie_prefix_the_sso_nonce_follows_it_and_stays_at_the_gateway() {
    let world = world(Options {
        top_yaml: "cookies:\n  prefix: bankart\n",
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new(&world);
    let url = portal_url(&world, "bips", "/accounts");
    let page = login_otp(&world, &mut browser, &url, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(page.url, url, "back on the original URL");
    // The page it landed on lists the headers the portal received.
    let landed = page.body.to_ascii_lowercase();
    assert!(
        !landed.contains("bankart_") && !landed.contains("prehod_"),
        "a cookie of the gateway's reached the portal: {}",
        page.body
    );
    let again = browser.api(&url).await;
    assert_eq!(again.status, 200, "{}", again.body);
    let json = again.json();
    assert_eq!(json["portal"], "bips");
    assert!(
        !received_header(&json, "x-auth-user").is_empty(),
        "logged in"
    );
    for cookie in received_header(&json, "cookie") {
        for pair in cookie.split(';') {
            let name = pair.split('=').next().unwrap_or("").trim();
            let name = name.to_ascii_lowercase();
            assert!(
                !name.contains("bankart_") && !name.contains("prehod"),
                "the gateway's cookie {name} reached the portal: {cookie}"
            );
        }
    }
    let names = browser.cookie_names();
    assert!(
        names.iter().any(|n| n == "__Host-bankart_sso"),
        "the nonce cookie is named after the prefix: {names:?}"
    );
    assert!(
        !names.iter().any(|n| n.contains("prehod")),
        "no cookie named after the default prefix: {names:?}"
    );
}

/// Each portal refuses the browser's session (after a logout): 401 on an API call.
async fn refused_on(world: &World, browser: &mut Browser, portals: &[&str]) {
    for portal in portals {
        let status = browser.api(&portal_url(world, portal, "/")).await.status;
        assert_eq!(status, 401, "{portal} after the logout");
    }
}

/// The session cookies of `portal`'s host and of the login host, after a host-only login.
fn session_cookies(browser: &Browser, portal: &str) -> (String, String) {
    let on_portal = browser
        .cookie_at(&prehod_test_support::host(portal), SESSION)
        .expect("the portal's session cookie");
    let on_login_host = browser
        .cookie_at("login.bankart.localhost", SESSION)
        .expect("the login host's session cookie");
    (on_portal, on_login_host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tampered_replayed_and_logged_out_cookies_are_refused() {
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let (good, good_login) = session_cookies(&browser, "bips");
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        200
    );

    // One character changed anywhere: refused.
    let mut tampered = good.clone().into_bytes();
    let i = tampered.len() / 2;
    tampered[i] = if tampered[i] == b'A' { b'B' } else { b'A' };
    browser.set_cookie_value(SESSION, &String::from_utf8(tampered).expect("ascii"));
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401
    );
    // A cookie forged from scratch: refused.
    browser.set_cookie_value(SESSION, "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401
    );

    // Logout, then the old cookie replayed: refused at once.
    browser.set_cookie_value(SESSION, &good);
    browser.set_cookie_at("login.bankart.localhost", SESSION, &good_login);
    let out = log_out(&world, &mut browser).await;
    assert!(
        out.body.contains("Odjavljeni ste") || out.url.contains("logged-out"),
        "{} {}",
        out.url,
        out.body
    );
    assert!(
        browser
            .cookie_at("login.bankart.localhost", SESSION)
            .is_none(),
        "the login host's cookie is cleared"
    );
    let mut replay = Browser::new(&world);
    replay.navigate(&login_url(&world, "/")).await;
    let page = replay
        .send(
            reqwest::Method::GET,
            &portal_url(&world, "bips", "/"),
            None,
            &[
                ("accept", "application/json"),
                ("cookie", &format!("{SESSION}={good}")),
            ],
        )
        .await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "revoked");
    expect_audit(&world, "logout", "success", Some("user")).await;
}

/// The session in a cookie value, opened with the world's session key.
fn opened(world: &World, cookie: &str) -> prehod_identity::session::Session {
    use base64::Engine;
    let text = std::fs::read_to_string(world.pki.path("session.key")).expect("session key");
    let key: [u8; 32] = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .expect("base64")
        .try_into()
        .expect("32 bytes");
    let sessions = prehod_identity::session::Sessions::new(
        prehod_identity::seal::Sealer::new(&[key]),
        Duration::from_secs(3600),
        Duration::from_secs(36_000),
        10,
    );
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    (*sessions
        .validate(cookie, now)
        .expect("a session cookie")
        .session)
        .clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_login_hosts_cookie_carries_the_id_token_and_logout_still_sends_it() {
    // The id token is for RP-initiated logout (`id_token_hint`), which only the login host
    // does: a portal's cookie, sent with every request to the portal, goes without it; the
    // session cache keeps it nowhere, and a logout after the login host's session was cached
    // still hands the provider the token.
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let (portal, login) = session_cookies(&browser, "bips");
    let token = opened(&world, &login)
        .id_token
        .expect("the login host's cookie carries the id token");
    assert_eq!(token.split('.').count(), 3, "a JWT: {token}");
    let on_portal = opened(&world, &portal);
    assert_eq!(on_portal.id_token, None, "the portal's cookie carries none");
    assert_eq!(
        on_portal.sid,
        opened(&world, &login).sid,
        "the same session"
    );
    assert!(
        portal.len() + token.len() < login.len(),
        "{} vs {}",
        portal.len(),
        login.len()
    );
    // Both hosts' sessions are validated (and cached) more than once.
    for _ in 0..2 {
        assert_eq!(
            browser.api(&portal_url(&world, "bips", "/")).await.status,
            200
        );
        assert_eq!(browser.navigate(&login_url(&world, "/")).await.status, 200);
    }
    let (to, hint) = log_out_with_hint(&world, &mut browser).await;
    assert!(
        to.starts_with(&world.sim.issuer()),
        "to the provider's end-session endpoint: {to}"
    );
    assert_eq!(hint.as_deref(), Some(token.as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idle_and_absolute_timeouts_end_sessions() {
    let world = world(Options {
        idle: "2s",
        absolute: "5s",
        ..Options::default()
    })
    .await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let url = portal_url(&world, "bips", "/");
    // Activity keeps it alive past the idle time (the cookie is rolled)…
    let started = Instant::now();
    while started.elapsed() < Duration::from_millis(3500) {
        let page = browser.api(&url).await;
        assert_eq!(
            page.status,
            200,
            "an active session lives on after {:?}",
            started.elapsed()
        );
        tokio::time::sleep(Duration::from_millis(600)).await;
    }
    // …but not past the absolute lifetime.
    tokio::time::sleep(Duration::from_millis(5200).saturating_sub(started.elapsed())).await;
    let page = browser.api(&url).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "absolute_timeout");

    // Idle: a fresh login, then nothing for longer than the idle time.
    let mut browser = Browser::new(&world);
    login_otp(&world, &mut browser, &url, SREDNJA, SREDNJA_TOTP).await;
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let page = browser.api(&url).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "idle_timeout");
    let nav = browser.navigate(&url).await;
    assert!(
        nav.location
            .as_deref()
            .is_some_and(|l| l.contains("notice=expired")),
        "the login page says why"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_from_rekono_ends_the_session() {
    let world = world(Options::default()).await;
    let (mut browser, json) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let json = json.json();
    let sub = received_header(&json, "x-auth-user")[0].to_owned();
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        200
    );
    // Rekono ends the user's session (as an admin or another relying party's logout would).
    let result: Value = rekono_logs_out(&world, &browser, &sub)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        result["back_channel_delivered"], 1,
        "the gateway accepted the logout token"
    );
    let page = browser.api(&portal_url(&world, "bips", "/")).await;
    assert_eq!(page.status, 401);
    assert_eq!(page.json()["reason"], "revoked");
    expect_audit(&world, "logout", "success", Some("back_channel")).await;
    // A forged logout token is refused.
    let forged = browser
        .http
        .post(login_url(&world, "/oidc/backchannel-logout"))
        .form(&[("logout_token", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.")])
        .send()
        .await
        .expect("post");
    assert_eq!(forged.status(), 400);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn callback_attacks_and_open_redirects_are_refused() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    // Missing and forged state.
    let page = browser
        .navigate(&login_url(&world, "/oidc/callback?code=abc"))
        .await;
    assert_eq!(page.status, 400);
    expect_audit(&world, "login", "failure", Some("missing_state")).await;
    let page = browser
        .navigate(&login_url(
            &world,
            "/oidc/callback?code=abc&state=AAAAAAAAAAAAAAAAAAAAAA",
        ))
        .await;
    assert_eq!(page.status, 400);
    assert!(page.body.contains("Prijava ni uspela"));
    expect_audit(&world, "login", "failure", Some("state_mismatch")).await;

    // A replayed code: complete a login, then send the same callback (with its attempt
    // cookie) again.
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    let attempt = browser
        .cookie_names()
        .into_iter()
        .find(|n| n.starts_with("__Host-prehod_login_"))
        .expect("attempt cookie");
    let attempt_value = browser.cookie(&attempt).expect("value");
    let ok = browser.navigate(&callback).await;
    assert_eq!(ok.status, 302, "the first use logs in");
    let mut attacker = Browser::new(&world);
    let replay = attacker
        .send(
            reqwest::Method::GET,
            &callback,
            None,
            &[
                ("accept", "text/html"),
                ("cookie", &format!("{attempt}={attempt_value}")),
            ],
        )
        .await;
    assert_eq!(replay.status, 400);
    expect_audit(&world, "login", "failure", Some("code_refused")).await;

    // Open redirects: another host, another scheme, another port, credentials in the URL.
    for evil in [
        "https://evil.example/".to_owned(),
        format!("http://acq.bankart.localhost:{}/", world.gw.https.port()),
        "https://acq.bankart.localhost:1/".to_owned(),
        format!(
            "https://user@acq.bankart.localhost:{}/",
            world.gw.https.port()
        ),
        "//evil.example/".to_owned(),
    ] {
        let q = url::form_urlencoded::byte_serialize(evil.as_bytes()).collect::<String>();
        for path in ["/?return=", "/oidc/start?return="] {
            let page = browser
                .navigate(&login_url(&world, &format!("{path}{q}")))
                .await;
            assert_eq!(page.status, 400, "{path}{evil}");
            assert!(page.location.is_none());
            assert!(page.body.contains("Neveljaven naslov"));
        }
    }
}

/// The attempt cookie is named by the state's first 16 characters; the rest of the state must
/// match too. An attacker's state that shares the prefix (the cookie is found and opens) but
/// not the whole state is refused before the code is redeemed, and the real callback still
/// works afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_that_shares_only_the_attempt_cookies_prefix_is_refused() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    let mut forged = url::Url::parse(&callback).expect("callback URL");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "state" {
                assert!(v.len() > 16, "a state longer than the cookie's prefix: {v}");
                let last = if v.ends_with('A') { "B" } else { "A" };
                format!("{}{last}", &v[..v.len() - 1])
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(&pairs);
    let page = browser.navigate(forged.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("Prijava ni uspela"));
    expect_audit(&world, "login", "failure", Some("state_mismatch")).await;
    assert!(browser.cookie(SESSION).is_none(), "no session was issued");
    let ok = browser.navigate(&callback).await;
    assert_eq!(
        ok.status, 302,
        "the real callback still logs in: {}",
        ok.body
    );
    assert!(browser.cookie(SESSION).is_some());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_tabs_logging_in_at_once_both_succeed_and_attempt_cookies_are_capped() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    // Tab 1 and tab 2 both start a login (from the portal, then "Prijava z Rekono računom")
    // before either finishes.
    let login1 = browser.follow(&portal_url(&world, "bips", "/one")).await;
    let login2 = browser.follow(&portal_url(&world, "bips", "/two")).await;
    let tab1 = browser.follow(&rekono_link(&world, &login1)).await;
    let tab2 = browser.follow(&rekono_link(&world, &login2)).await;
    // Tab 2 finishes first, then tab 1.
    let chooser2 = rekono_password(&world, &mut browser, &tab2, SREDNJA).await;
    let back2 = rekono_otp(&world, &mut browser, &chooser2, SREDNJA_TOTP).await;
    assert_eq!(back2.url, portal_url(&world, "bips", "/two"));
    let chooser1 = rekono_password(&world, &mut browser, &tab1, SREDNJA).await;
    let back1 = rekono_otp(&world, &mut browser, &chooser1, SREDNJA_TOTP).await;
    assert_eq!(back1.url, portal_url(&world, "bips", "/one"));
    assert_eq!(
        browser
            .api(&portal_url(&world, "bips", "/one"))
            .await
            .status,
        200
    );
    // Attempts that are never finished do not pile up.
    for _ in 0..8 {
        browser
            .navigate(&login_url(
                &world,
                &format!(
                    "/oidc/start?return={}",
                    url::form_urlencoded::byte_serialize(portal_url(&world, "acq", "/").as_bytes())
                        .collect::<String>()
                ),
            ))
            .await;
    }
    let attempts = browser
        .cookie_names()
        .into_iter()
        .filter(|n| n.starts_with("__Host-prehod_login_"))
        .count();
    assert!(attempts <= 5, "{attempts} attempt cookies kept");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn own_login_portals_keep_their_form_cookie_and_authorization_after_the_gateway_login() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let url = portal_url(&world, "ecmsweb", "/");
    let login_page = browser.follow(&url).await;
    let rekono = browser.follow(&rekono_link(&world, &login_page)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, NIZKA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post_form(
            &sim_url(&world, "/openid-connect-server-webapp/factor/sms"),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    let code = outbox_code(&world, &browser, "+38640111222").await;
    let app_form = browser
        .post_form(
            &sim_url(&world, "/openid-connect-server-webapp/factor/sms/verify"),
            &[("tx", &tx), ("csrf", &csrf), ("code", &code)],
        )
        .await;
    // After the gateway login: the application's own login form, untouched.
    assert!(
        app_form
            .body
            .contains("<form method=\"post\" action=\"/login\">"),
        "{}",
        app_form.body
    );
    let logged_in = browser
        .post_form(
            &portal_url(&world, "ecmsweb", "/login"),
            &[("username", "demo"), ("password", "demo123")],
        )
        .await;
    assert_eq!(logged_in.status, 200);
    assert!(
        browser.cookie("ecmsweb_app_session").is_some(),
        "the application's cookie reached the browser"
    );
    let json = browser.api(&url).await.json();
    let cookies = received_header(&json, "cookie").join("; ");
    assert!(
        cookies.contains("ecmsweb_app_session=") && !cookies.contains("prehod_session"),
        "{cookies}"
    );
    assert_eq!(
        received_header(&json, "x-auth-email"),
        [NIZKA.0],
        "identity headers still added"
    );
    // An Authorization header is the application's too.
    browser.follow(&portal_url(&world, "bankomati", "/")).await;
    let page = browser
        .send(
            reqwest::Method::GET,
            &portal_url(&world, "bankomati", "/"),
            None,
            &[
                ("accept", "application/json"),
                ("authorization", "Basic ZGVtbzpkZW1vMTIz"),
            ],
        )
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(
        received_header(&page.json(), "authorization"),
        ["Basic ZGVtbzpkZW1vMTIz"]
    );
}

/// Rekono rotates its signing key (the simulator's `/dev/keys/rotate`) and names the new one.
async fn rotate_rekono_key(world: &World, browser: &Browser) {
    let rotated: Value = browser
        .http
        .post(sim_url(world, "/dev/keys/rotate"))
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    assert!(rotated["kid"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_key_rotated_at_rekono_is_fetched_and_a_foreign_iss_is_refused() {
    let world = world(Options::default()).await;
    // Rekono rotates its signing key after the gateway fetched the old JWKS: the ID token
    // names an unknown kid, the gateway fetches the keys again and the login succeeds.
    let mut browser = Browser::new(&world);
    rotate_rekono_key(&world, &browser).await;
    let page = login_at(&world, &mut browser, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);

    // RFC 9207: an `iss` in the authorization response that is not Rekono's is refused.
    let mut browser = Browser::new(&world);
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    let mut forged = url::Url::parse(&callback).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let value = if k == "iss" {
                "https://evil.example".to_owned()
            } else {
                v.into_owned()
            };
            (k.into_owned(), value)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.navigate(forged.as_str()).await;
    assert_eq!(page.status, 400);
    expect_audit(&world, "login", "failure", Some("wrong_issuer")).await;
}

/// A logout token anyone can make: a well-formed header naming `kid`, and a signature that
/// verifies with nothing.
fn forged_logout_token(kid: &str) -> String {
    use base64::Engine;
    let b64 = |v: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v);
    let header = serde_json::json!({"alg": "ES256", "typ": "logout+jwt", "kid": kid});
    let claims = serde_json::json!({
        "iss": "https://evil.example",
        "aud": CLIENT_ID,
        "iat": 0,
        "jti": kid,
        "sub": "nobody",
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    format!(
        "{}.{}.{}",
        b64(header.to_string().as_bytes()),
        b64(claims.to_string().as_bytes()),
        b64(&[7u8; 64])
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_forged_logout_tokens_does_not_starve_the_key_refresh_a_rotation_needs() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    // Anyone can POST to the back-channel endpoint: forged logout tokens, each naming a key
    // Rekono never had, and some naming the same unknown key again.
    for i in 0..40 {
        let kid = if i % 4 == 0 {
            "never-a-key".to_owned()
        } else {
            prehod_identity::random_id()
        };
        let answer = browser
            .http
            .post(login_url(&world, "/oidc/backchannel-logout"))
            .form(&[("logout_token", forged_logout_token(&kid))])
            .send()
            .await
            .expect("post");
        assert_eq!(answer.status(), 400);
    }
    // Then Rekono really rotates its key, and a user logs in with a token signed by it.
    rotate_rekono_key(&world, &browser).await;
    let page = login_at(&world, &mut browser, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(
        page.status, 200,
        "the login with the rotated key: {}",
        page.body
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_id_token_with_another_nonce_is_refused() {
    let world = world(Options::default()).await;
    // The relying party itself, outside the gateway, against the same Rekono registration.
    let settings = prehod_identity::oidc::Settings {
        issuer: world.sim.issuer(),
        client_id: CLIENT_ID.into(),
        client_auth: prehod_identity::oidc::ClientAuth::Secret(CLIENT_SECRET.into()),
        redirect_uri: login_url(&world, "/oidc/callback"),

        scopes: vec!["openid".into(), "email".into(), "profile".into()],
        acr_levels: vec![("10".into(), 10), ("20".into(), 20), ("30".into(), 30)],
        extra_roots: vec![std::fs::read(world.pki.path("ca.crt")).expect("ca")],
        timeout: Duration::from_secs(5),
        max_skew: Duration::from_secs(60),
        profile: prehod_identity::oidc::Profile::Default,
        userinfo: false,
    };
    let provider = prehod_identity::oidc::Provider::discover(settings)
        .await
        .expect("discovery");
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let (url, attempt) = provider.start(20, portal_url(&world, "bips", "/"), now);
    let mut browser = Browser::new(&world);
    let rekono = browser.navigate(&url).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let done = browser
        .send(
            reqwest::Method::POST,
            &sim_url(&world, "/openid-connect-server-webapp/factor/otp/verify"),
            Some(&[
                ("tx", &tx),
                ("csrf", &csrf),
                ("code", &totp_now(SREDNJA_TOTP)),
            ]),
            &[],
        )
        .await;
    let location = url::Url::parse(&done.location.expect("redirect")).expect("url");
    let code = location
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let wrong = prehod_identity::oidc::Attempt {
        nonce: "not-the-nonce-that-was-sent".into(),
        ..attempt.clone()
    };
    match provider
        .finish(&code, Some(provider.issuer()), &wrong, now)
        .await
    {
        Err(prehod_identity::oidc::OidcError::InvalidToken(m)) => {
            assert!(m.to_ascii_lowercase().contains("nonce"), "{m}")
        }
        other => panic!("a wrong nonce must be refused, got {other:?}"),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replayed_logout_token_is_refused() {
    // Rekono posts its logout token to this recorder; the test delivers it to the gateway.
    let (addr, mut rx) = prehod_test_support::servers::body_recorder().await;
    let world = world(Options {
        backchannel: Some(format!("http://{addr}/record")),
        ..Options::default()
    })
    .await;
    let (mut browser, json) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let json = json.json();
    let sub = received_header(&json, "x-auth-user")[0].to_owned();
    rekono_logs_out(&world, &browser, &sub).await;
    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a token")
        .expect("body");
    let http = browser.http.clone();
    let deliver = || {
        http.post(login_url(&world, "/oidc/backchannel-logout"))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(body.clone())
            .send()
    };
    assert_eq!(
        deliver().await.expect("post").status(),
        200,
        "the first delivery is accepted"
    );
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401,
        "and ends the session"
    );
    assert_eq!(
        deliver().await.expect("post").status(),
        400,
        "a replay is refused"
    );
    expect_audit(&world, "logout", "failure", Some("invalid_logout_token")).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_can_authenticate_to_rekono_with_private_key_jwt() {
    log_in_with_private_key_jwt(false).await;
}

/// RUSTSEC-2023-0071: an RSA client key signs its RS256 assertions with OpenSSL; Rekono
/// verifies them with the public key alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_gateway_can_authenticate_to_rekono_with_an_rsa_private_key_jwt() {
    log_in_with_private_key_jwt(true).await;
}

/// A login through a gateway that authenticates to Rekono with `private_key_jwt` (an RSA or
/// an EC P-256 key): Rekono has only the gateway's public key, so no secret would be accepted.
async fn log_in_with_private_key_jwt(rsa_client_key: bool) {
    let world = world(Options {
        private_key_jwt: true,
        rsa_client_key,
        ..Options::default()
    })
    .await;
    let (_browser, page) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(received_header(&page.json(), "x-auth-email"), [SREDNJA.0]);
}

/// A Rekono login from `url` (no session yet) by `browser`: the page the gateway answers with
/// when the browser comes back (a portal page, or the page that sends a kept form again).
async fn log_in_back_at(world: &World, browser: &mut Browser, url: &str) -> Page {
    let login_page = browser.follow(url).await;
    let rekono = browser.follow(&rekono_link(world, &login_page)).await;
    let chooser = rekono_password(world, browser, &rekono, SREDNJA).await;
    rekono_otp(world, browser, &chooser, SREDNJA_TOTP).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cross_site_form_is_never_kept_nor_replayed_with_the_victims_session() {
    let world = world(Options::default()).await;
    let target = portal_url(&world, "bips", "/transfer?step=2");
    let fields = [("amount", "9999"), ("iban", "SI56 6666 6666 6666 666")];
    // An attacker's page auto-submits a form to the portal (the victim has no session yet);
    // then one with no Sec-Fetch-Site (an older browser) and a foreign Origin, and one with
    // only a foreign Referer.
    for headers in [
        &[("sec-fetch-site", "cross-site")][..],
        &[("origin", "https://evil.example")][..],
        &[("referer", "https://evil.example/pay.html")][..],
        &[("sec-fetch-site", "none")][..],
        &[][..],
    ] {
        let mut victim = Browser::new(&world);
        let mut sent_headers = vec![("accept", "text/html"), ("sec-fetch-mode", "navigate")];
        sent_headers.extend_from_slice(headers);
        let sent = victim
            .send(reqwest::Method::POST, &target, Some(&fields), &sent_headers)
            .await;
        assert_eq!(sent.status, 303, "{headers:?}: still sent to the login");
        let kept = victim.cookie(POST).is_some();
        // The victim logs in (the attacker's page sent them there, or they do later) and
        // their browser comes back to the URL: the portal, never a page that posts the form.
        let back = log_in_back_at(&world, &mut victim, &target).await;
        assert_eq!(back.url, target);
        assert!(
            !back.body.contains("id=\"resubmit\""),
            "{headers:?}: the attacker's form is replayed with the victim's session"
        );
        assert!(!kept, "{headers:?}: a form from another site is kept");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kept_form_carried_into_another_browser_is_dropped_at_its_login() {
    let world = world(Options::default()).await;
    let target = portal_url(&world, "bips", "/transfer?step=2");
    let fields = [("amount", "9999"), ("iban", "SI56 6666 6666 6666 666")];
    // The attacker keeps a form of their own, same-site, in their own browser…
    let mut attacker = Browser::new(&world);
    let sent = attacker
        .send(
            reqwest::Method::POST,
            &target,
            Some(&fields),
            &[
                ("accept", "text/html"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(sent.status, 303);
    assert!(attacker.cookie(POST).is_some(), "kept");
    // …and carries the cookie into the victim's browser, which logs in through its own
    // login attempt: the form is not the victim's, and is dropped.
    let mut victim = Browser::new(&world);
    victim.carry_cookie_from(&attacker, POST);
    let back = log_in_back_at(&world, &mut victim, &target).await;
    assert_eq!(back.url, target);
    assert!(
        !back.body.contains("id=\"resubmit\""),
        "a form kept in another browser is replayed: {}",
        back.body
    );
    assert!(victim.cookie(POST).is_none(), "and cleared");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_form_interrupted_by_the_login_arrives_at_the_portal_with_its_body_intact() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let target = portal_url(&world, "bips", "/transfer?step=2");
    let fields = [
        ("amount", "12.50"),
        ("iban", "SI56 0100 0000 0123 456"),
        ("note", "plačilo računa <št. 7> & več"),
    ];
    let encoded: String = url::form_urlencoded::Serializer::new(String::new())
        .extend_pairs(fields)
        .finish();
    let sent = browser
        .send(
            reqwest::Method::POST,
            &target,
            Some(&fields),
            &[
                ("accept", "text/html"),
                ("sec-fetch-mode", "navigate"),
                ("sec-fetch-site", "same-origin"),
            ],
        )
        .await;
    assert_eq!(
        sent.status, 303,
        "after a POST the login page is fetched with GET"
    );
    assert!(
        browser.cookie(POST).is_some(),
        "the form is kept in a sealed cookie"
    );
    let login_page = browser
        .follow(&sent.location.expect("to the login page"))
        .await;
    let rekono = browser.follow(&rekono_link(&world, &login_page)).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, SREDNJA).await;
    let back = rekono_otp(&world, &mut browser, &chooser, SREDNJA_TOTP).await;
    // Back on the URL of the form: a page that sends the form again.
    assert_eq!(back.url, target);
    assert!(back.body.contains("id=\"resubmit\""), "{}", back.body);
    assert!(back.headers["content-security-policy"]
        .to_str()
        .expect("csp")
        .contains("script-src 'sha256-"));
    assert!(browser.cookie(POST).is_none(), "used once, then cleared");
    // What a browser does with that page: post its fields to its action.
    let inputs: Vec<(String, String)> = back
        .body
        .split("<input type=\"hidden\" ")
        .skip(1)
        .map(|i| {
            let attr = |name: &str| {
                let m = format!("{name}=\"");
                let start = i.find(&m).expect("attribute") + m.len();
                unescape(i[start..].split('"').next().unwrap_or_default())
            };
            (attr("name"), attr("value"))
        })
        .collect();
    let form: Vec<(&str, &str)> = inputs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let arrived = browser
        .send(
            reqwest::Method::POST,
            &target,
            Some(&form),
            &[("accept", "application/json")],
        )
        .await;
    assert_eq!(arrived.status, 200);
    let json = arrived.json();
    assert_eq!(json["method"], "POST");
    assert_eq!(
        json["body_sha256"],
        prehod_test_support::sha256_hex(encoded.as_bytes()),
        "the body arrives byte for byte"
    );
    assert_eq!(received_header(&json, "x-auth-email"), [SREDNJA.0]);

    // A form too large to keep is not silently dropped: the login page says so.
    let mut other = Browser::new(&world);
    let big = "x".repeat(3000);
    let sent = other
        .send(
            reqwest::Method::POST,
            &target,
            Some(&[("blob", big.as_str())]),
            &[("accept", "text/html"), ("sec-fetch-mode", "navigate")],
        )
        .await;
    assert!(sent
        .location
        .as_deref()
        .is_some_and(|l| l.contains("notice=form_not_kept")));
    let page = other.follow(&sent.location.expect("login")).await;
    assert!(page
        .body
        .contains("Obrazca, ki ste ga poslali, ni bilo mogoče ohraniti"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_response_without_iss_is_refused_when_rekono_promises_it() {
    let world = world(Options::default()).await;
    // The simulator's discovery says authorization_response_iss_parameter_supported: true
    // (RFC 9207), so a callback whose `iss` was removed (a mix-up attack) must not log in.
    let mut browser = Browser::new(&world);
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    let mut stripped = url::Url::parse(&callback).expect("url");
    assert!(
        stripped.query_pairs().any(|(k, _)| k == "iss"),
        "{callback}"
    );
    let pairs: Vec<(String, String)> = stripped
        .query_pairs()
        .filter(|(k, _)| k != "iss")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    stripped.query_pairs_mut().clear().extend_pairs(pairs);
    let page = browser.navigate(stripped.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(page.body.contains("Prijava ni uspela"), "{}", page.body);
    assert!(browser.cookie(SESSION).is_none(), "no session");
    expect_audit(&world, "login", "failure", Some("missing_issuer")).await;
    assert!(world
        .gw
        .metrics()
        .contains("prehod_denials_total{reason=\"missing_issuer\"} 1"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_forced_from_another_site_leaves_the_session() {
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let session = browser.cookie(SESSION).expect("session");
    // Another site links to, or embeds, the logout URL: the Lax session cookie goes along
    // with a top-level GET, and with an <img> from the same site.
    for headers in [
        &[
            ("accept", "text/html"),
            ("sec-fetch-mode", "navigate"),
            ("sec-fetch-site", "cross-site"),
        ][..],
        &[("accept", "image/*"), ("sec-fetch-mode", "no-cors")][..],
    ] {
        let page = browser
            .send(
                reqwest::Method::GET,
                &login_url(&world, "/logout"),
                None,
                headers,
            )
            .await;
        assert_eq!(page.status, 200, "a confirmation page, not a logout");
        assert!(page.location.is_none());
        assert!(
            page.body.contains("method=\"post\"") && page.body.contains("name=\"csrf\""),
            "{}",
            page.body
        );
        assert!(
            !page.headers.get_all("set-cookie").iter().any(|c| c
                .to_str()
                .is_ok_and(|c| c.starts_with("__Host-prehod_session="))),
            "the session cookie is not touched"
        );
    }
    assert_eq!(browser.cookie(SESSION), Some(session));
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        200,
        "the session is still valid"
    );
    assert!(!audit_lines(&world).iter().any(|l| l["event"] == "logout"));
    // The page follows the user's language.
    let en = browser
        .send(
            reqwest::Method::GET,
            &login_url(&world, "/logout?lang=en"),
            None,
            &[("accept", "text/html")],
        )
        .await;
    assert!(en.body.contains("Log out"), "{}", en.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_post_without_the_sessions_token_is_refused() {
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    // Another browser's own, valid token: bound to its session, not to this one.
    let (mut other, _) = log_in(&world, "bips", "/", VISOKA, VISOKA_TOTP).await;
    let confirm = other.navigate(&login_url(&world, "/logout")).await;
    let foreign = unescape(&confirm.hidden("csrf"));
    // A cross-site form POST (a Lax cookie is not sent then, but a same-site page of another
    // portal could send one): no token, a made-up one, another session's.
    for form in [
        vec![],
        vec![("csrf", "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")],
        vec![("csrf", "ü")],
        vec![("csrf", foreign.as_str())],
    ] {
        let page = browser
            .send(
                reqwest::Method::POST,
                &login_url(&world, "/logout"),
                Some(&form),
                &[("accept", "text/html")],
            )
            .await;
        assert_eq!(page.status, 403, "{form:?}: {}", page.body);
        assert!(page.location.is_none());
    }
    assert!(browser.cookie(SESSION).is_some());
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        200,
        "the session is still valid"
    );
    expect_audit(&world, "logout", "failure", Some("bad_logout_token")).await;
    // With its own token the logout goes through, to Rekono's end-session and back.
    let out = log_out(&world, &mut browser).await;
    assert!(
        out.body.contains("Odjavljeni ste"),
        "{} {}",
        out.url,
        out.body
    );
    assert!(browser
        .cookie_at("login.bankart.localhost", SESSION)
        .is_none());
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401,
        "the portal's cookie ended with the session"
    );
    assert_eq!(
        other.api(&portal_url(&world, "bips", "/")).await.status,
        200,
        "the other browser's session is not affected"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_as_another_rekono_user_is_refused_and_the_session_stays() {
    let world = world(Options::default()).await;
    // Sara (level 20) is logged in on bips.
    let (mut browser, json) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let json = json.json();
    let sara = received_header(&json, "x-auth-user")[0].to_owned();
    let session = browser.cookie(SESSION).expect("session");
    // bws asks for 30: a step-up, where someone else's account (Vid, level 30) is entered.
    let why = browser.follow(&portal_url(&world, "bws", "/")).await;
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    let page = rekono_otp(&world, &mut browser, &chooser, VISOKA_TOTP).await;
    assert_eq!(page.status, 403, "{} {}", page.url, page.body);
    assert!(
        page.body.contains("Prijavili ste se kot drug uporabnik"),
        "{}",
        page.body
    );
    expect_audit(&world, "step_up", "failure", Some("other_user")).await;
    // The session is as it was: Sara on bips, and bws still asks for a step-up.
    assert_eq!(browser.cookie(SESSION), Some(session));
    let json = browser.api(&portal_url(&world, "bips", "/")).await.json();
    assert_eq!(received_header(&json, "x-auth-user"), [sara.as_str()]);
    assert_eq!(
        browser.api(&portal_url(&world, "bws", "/")).await.status,
        401,
        "bws never got the level-20 session (the login host went to the step-up at once)"
    );
    // The page offers to log in as someone else: that ends the old session everywhere.
    let marker = "class=\"button\" href=\"";
    let start = page.body.find(marker).expect("a link to log in as another") + marker.len();
    let href = unescape(page.body[start..].split('"').next().unwrap_or_default());
    assert!(href.starts_with("/logout"), "{href}");
    let out = log_out(&world, &mut browser).await;
    assert!(out.body.contains("Odjavljeni ste"), "{}", out.body);
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401
    );
}

/// Issue 10: a `state` with a multi-byte character across byte 16 once panicked the handler
/// (it sliced by byte index), resetting the connection and leaking the in-flight gauge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_with_multi_byte_characters_is_refused_without_a_panic() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    for state in [
        "aaaaaaaaaaaaaaa%C3%A9",
        "aaaaaaaaaaaaaa%E2%82%AC",
        "%F0%9F%92%A5%F0%9F%92%A5%F0%9F%92%A5%F0%9F%92%A5%F0%9F%92%A5",
        "aaaaaaaaaaaaaaa%FF%FE",
    ] {
        let page = browser
            .navigate(&login_url(
                &world,
                &format!("/oidc/callback?code=x&state={state}"),
            ))
            .await;
        assert_eq!(page.status, 400, "state={state}: {}", page.body);
        assert!(page.body.contains("Prijava ni uspela"));
    }
    expect_audit(&world, "login", "failure", Some("state_mismatch")).await;
    // Every request finished: nothing is left counted in flight.
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let metrics = world.gw.metrics();
        if metrics.lines().any(|l| l == "prehod_requests_in_flight 0") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "in-flight gauge stuck:\n{metrics}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(
        !world.gw.log_lines().iter().any(|l| l.contains("panicked")),
        "a request panicked"
    );
}

/// A fresh world, and what one browser of it gets at each of `paths` on the login host.
async fn login_host_pages<const N: usize>(paths: [String; N]) -> (World, Vec<(String, Page)>) {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let mut pages = Vec::with_capacity(N);
    for path in paths {
        let page = browser.navigate(&login_url(&world, &path)).await;
        pages.push((path, page));
    }
    (world, pages)
}

/// Attacker's review of issue 13: the callback's error branch named a cookie after any
/// `state` of 16 bytes or more and cleared it, so a crafted state became a `Set-Cookie` of the
/// attacker's making (attributes included), or a 500 when it held a byte no header may carry.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_crafted_state_never_reaches_a_response_header() {
    let (world, pages) = login_host_pages(
        [
            "error=x&state=aaaaaaa%0d%0aX-Injected:%201",
            "error=x&state=aaaaaaaaaaaaaaa%00",
            "error=access_denied&error_description=cancel&state=a%3Db%3B%20Max-Age%3D9%3Bxxxx",
            "error=access_denied&state=aaaaaaaaaaaaaaaaaaaaaa",
            "code=x&state=a%3Db%3B%20Max-Age%3D9%3Bxxxx",
        ]
        .map(|query| format!("/oidc/callback?{query}")),
    )
    .await;
    for (path, page) in pages {
        let query = path.trim_start_matches("/oidc/callback?");
        assert!(page.status < 500, "{query}: {} {}", page.status, page.body);
        let cookies: Vec<_> = page
            .headers
            .get_all("set-cookie")
            .iter()
            .map(|v| v.to_str().unwrap_or_default().to_owned())
            .collect();
        assert!(
            cookies.iter().all(|c| !c.contains("prehod_login_")),
            "{query}: no attempt of this browser's, so none is cleared: {cookies:?}"
        );
        assert!(page.headers.get("x-injected").is_none());
    }
    assert!(
        !world
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains("InvalidHTTPHeader")),
        "no response header failed"
    );
}

/// Issue 10: the language switch was built from the raw path, so `https://login…//evil.example`
/// showed a genuine page whose EN link (`//evil.example?lang=en`) left the site.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_language_switch_never_leaves_the_login_host() {
    let (world, pages) = login_host_pages(
        [
            "//evil.example",
            "//evil.example/x?return=y",
            "///evil.example",
            "/%2F/evil.example",
            "/oidc/callback?code=x&state=y",
            "/?lang=sl",
        ]
        .map(String::from),
    )
    .await;
    for (path, page) in pages {
        let url = login_url(&world, &path);
        let marker = "\">EN</a>";
        let end = page
            .body
            .find(marker)
            .unwrap_or_else(|| panic!("{path}: no EN link in {}", page.body));
        let start = page.body[..end].rfind("href=\"").expect("href") + "href=\"".len();
        let href = unescape(&page.body[start..end]);
        let here = url::Url::parse(&url).expect("url");
        let target = here.join(&href).expect("resolvable");
        assert_eq!(
            (target.scheme(), target.host_str(), target.port()),
            (here.scheme(), here.host_str(), here.port()),
            "{path}: the EN link {href:?} leaves the login host"
        );
        assert!(
            target.query().is_some_and(|q| q.contains("lang=en")),
            "{href}"
        );
    }
}

/// Issue 10, item 5: `/oidc/start` hammered from one address runs out of its bucket and gets
/// the 429 page (SL/EN) with `Retry-After`, counted per endpoint; the callback has a bucket of
/// its own, and the same address's portal traffic (with a session, and without) is never
/// limited.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hammering_the_login_from_one_address_gets_429_but_its_portal_traffic_does_not() {
    let world = world(Options {
        top_yaml: "rate_limits:\n  login: {per_address: \"2/min\", burst: 4}\n",
        ..Options::default()
    })
    .await;
    let mut browser = Browser::new(&world);
    let portal = portal_url(&world, "bips", "/accounts?page=2");
    // One real login first: it takes one token from each of the start and callback buckets.
    let page = login_otp(&world, &mut browser, &portal, SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200, "{}", page.body);

    let start = login_url(
        &world,
        &format!(
            "/oidc/start?return={}",
            url::form_urlencoded::byte_serialize(portal.as_bytes()).collect::<String>()
        ),
    );
    let mut statuses = Vec::new();
    for _ in 0..5 {
        statuses.push(browser.navigate(&start).await.status);
    }
    // Three tokens were left: three redirects to Rekono, then 429.
    assert_eq!(statuses, [302, 302, 302, 429, 429], "{statuses:?}");
    let refused = browser.navigate(&start).await;
    assert_eq!(refused.status, 429);
    let retry: u64 = refused
        .headers
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .expect("Retry-After in whole seconds");
    assert!((1..=30).contains(&retry), "one token every 30 s: {retry}");
    assert!(
        refused.body.contains("Preveč poskusov prijave"),
        "{}",
        refused.body
    );
    assert!(
        refused.body.contains(&format!("čez {retry} s")),
        "{}",
        refused.body
    );
    let english = browser
        .send(
            reqwest::Method::GET,
            &start,
            None,
            &[("accept-language", "en")],
        )
        .await;
    assert_eq!(english.status, 429);
    assert!(
        english.body.contains("Too many login attempts"),
        "{}",
        english.body
    );

    // The callback's bucket is its own: a bad callback is still a failed login, not a 429.
    let callback = browser
        .navigate(&login_url(&world, "/oidc/callback?code=x&state=y"))
        .await;
    assert_eq!(callback.status, 400, "{}", callback.body);

    // The same address keeps using the portals: with its session, and without one.
    for _ in 0..20 {
        assert_eq!(browser.api(&portal).await.status, 200);
    }
    let mut anonymous = Browser::new(&world);
    for _ in 0..10 {
        let page = anonymous.navigate(&portal_url(&world, "b2b", "/")).await;
        assert_eq!(page.status, 302, "to the login page, not limited");
    }
    assert_eq!(
        anonymous.navigate(&login_url(&world, "/")).await.status,
        200
    );

    let metrics = world.gw.metrics();
    let count = |endpoint: &str| {
        metrics
            .lines()
            .find(|l| {
                l.starts_with(&format!(
                    "prehod_rate_limited_total{{endpoint=\"{endpoint}\"}}"
                ))
            })
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    assert_eq!(count("oidc_start"), 4, "{metrics}");
    assert_eq!(count("oidc_callback"), 0);
}

/// Issue 9, item 7: session cookies are host-only by default. A host outside the gateway
/// (`www`) never receives one; one portal's cookie is no session on another; single sign-on
/// goes through the login host with a single-use code, which nobody can replay.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn session_cookies_are_host_only_and_single_sign_on_uses_single_use_codes() {
    let world = world(Options::default()).await;
    let (www, seen) = prehod_test_support::servers::tls_recorder(&world.pki);
    let (mut browser, json) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    let json = json.json();
    assert_eq!(received_header(&json, "x-auth-level"), ["20"]);
    // www.bankart.localhost is not behind the gateway: the browser sends it no session.
    let page = browser
        .navigate(&format!("https://www.bankart.localhost:{}/", www.port()))
        .await;
    assert_eq!(page.status, 200);
    let head = seen
        .recv_timeout(Duration::from_secs(10))
        .expect("www got the request");
    assert!(
        !head.to_ascii_lowercase().contains("prehod"),
        "a session cookie reached www: {head}"
    );
    // bips's cookie works on bips, and is no session on acq.
    let bips_cookie = browser
        .cookie_at(&prehod_test_support::host("bips"), SESSION)
        .expect("bips cookie");
    let with_cookie = |portal: &'static str| {
        let world = &world;
        let cookie = format!("{SESSION}={bips_cookie}");
        async move {
            Browser::new(world)
                .send(
                    reqwest::Method::GET,
                    &portal_url(world, portal, "/"),
                    None,
                    &[("accept", "application/json"), ("cookie", &cookie)],
                )
                .await
                .status
        }
    };
    assert_eq!(with_cookie("bips").await, 200);
    assert_eq!(
        with_cookie("acq").await,
        401,
        "portal A's cookie on portal B"
    );
    // acq: through the login host, which knows the user, back with a code.
    let first = browser.navigate(&portal_url(&world, "acq", "/x")).await;
    assert_eq!(first.status, 302);
    let at_login = browser
        .navigate(&first.location.clone().expect("login page"))
        .await;
    let sso = at_login.location.clone().expect("a code for acq");
    assert!(
        sso.starts_with(&portal_url(&world, "acq", "/.prehod/sso?code=")),
        "{sso}"
    );
    // The code is for acq only, and once only.
    let elsewhere = sso.replace(
        &prehod_test_support::host("acq"),
        &prehod_test_support::host("b2b"),
    );
    let mut thief = Browser::new(&world);
    let page = thief.navigate(&elsewhere).await;
    assert!(thief.cookie(SESSION).is_none(), "a code for acq on b2b");
    assert!(page
        .location
        .is_some_and(|l| l.starts_with(&login_url(&world, "/"))));
    // Another browser cannot take it: it was asked for by this browser's nonce.
    let page = thief.navigate(&sso).await;
    assert!(thief.cookie(SESSION).is_none(), "a code in another browser");
    assert!(page
        .location
        .is_some_and(|l| l.starts_with(&login_url(&world, "/"))));
    let page = browser.navigate(&sso).await;
    assert_eq!(
        page.location.as_deref(),
        Some(portal_url(&world, "acq", "/x").as_str())
    );
    let acq = browser.cookie_at(&prehod_test_support::host("acq"), SESSION);
    assert!(acq.is_some());
    // Once only.
    let page = browser.navigate(&sso).await;
    assert!(page
        .location
        .is_some_and(|l| l.starts_with(&login_url(&world, "/"))));
    assert_eq!(
        browser.cookie_at(&prehod_test_support::host("acq"), SESSION),
        acq,
        "a replayed code changes nothing"
    );
    let metrics = world.gw.metrics();
    for label in [
        "sso_code_wrong_host",
        "sso_code_other_browser",
        "sso_code_replayed",
    ] {
        assert!(
            metrics.contains(&format!("prehod_denials_total{{reason=\"{label}\"}} 1")),
            "{label}: {metrics}"
        );
    }
    // Logout on the login host ends every portal's cookie.
    log_out(&world, &mut browser).await;
    refused_on(&world, &mut browser, &["bips", "acq"]).await;
}

/// The parent-domain mode stays as an explicit option: one cookie on the parent domain,
/// every portal reached without a code.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_parent_domain_cookie_mode_serves_every_portal_with_one_cookie() {
    let world = world(Options {
        parent_domain: true,
        ..Options::default()
    })
    .await;
    let (mut browser, _) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    let set = browser
        .set_cookies
        .iter()
        .find(|c| c.starts_with("prehod_session="))
        .expect("a parent-domain session cookie");
    assert!(set.contains("Domain=bankart.localhost"), "{set}");
    assert_eq!(
        browser.api(&portal_url(&world, "acq", "/")).await.status,
        200,
        "no second login, no code"
    );
}

/// Issue 13, item 9: the authorization request names each scope once (`openid` was sent twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_authorization_request_names_each_scope_once() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let ret: String =
        url::form_urlencoded::byte_serialize(portal_url(&world, "acq", "/").as_bytes()).collect();
    let page = browser
        .navigate(&login_url(&world, &format!("/oidc/start?return={ret}")))
        .await;
    let location = page.location.expect("to Rekono");
    let url = url::Url::parse(&location).expect("url");
    let scope = url
        .query_pairs()
        .find(|(k, _)| k == "scope")
        .map(|(_, v)| v.into_owned())
        .expect("scope");
    let words: Vec<&str> = scope.split(' ').collect();
    assert_eq!(
        words.iter().filter(|w| **w == "openid").count(),
        1,
        "{scope}"
    );
    assert!(
        words.contains(&"profile") && words.contains(&"email"),
        "{scope}"
    );
}

/// Issue 13, item 2: every portal host has the gateway's own `/.prehod/` paths — `me` (who
/// the gateway says you are), `logout` (to the login host's logout) — never forwarded.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn portal_hosts_have_the_gateways_own_me_and_logout_paths() {
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    let me = browser
        .api(&portal_url(&world, "bips", "/.prehod/me"))
        .await;
    assert_eq!(me.status, 200, "{}", me.body);
    let me = me.json();
    assert_eq!(me["email"], SREDNJA.0);
    assert_eq!(me["level"], 20);
    assert_eq!(me["portal"], "bips");
    assert!(
        me.get("headers").is_none(),
        "answered by the gateway, not the portal"
    );
    // acq has no cookie of its own yet.
    let other = browser.api(&portal_url(&world, "acq", "/.prehod/me")).await;
    assert_eq!(other.status, 401);
    assert!(other.json()["login"]
        .as_str()
        .is_some_and(|l| l.starts_with(&login_url(&world, "/"))));
    let out = browser
        .navigate(&portal_url(&world, "bips", "/.prehod/logout"))
        .await;
    assert_eq!(
        out.location.as_deref(),
        Some(login_url(&world, "/logout").as_str())
    );
    let unknown = browser
        .navigate(&portal_url(&world, "bips", "/.prehod/other"))
        .await;
    assert_eq!(unknown.status, 404, "{}", unknown.body);
}

/// Issue 9 ("denial pages follow the user's language"): a portal's refusal page speaks the
/// language the browser asks for, not always Slovenian.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_refusal_speaks_the_browsers_language() {
    let world = world(Options {
        portal_yaml: vec![
            ("bips", "min_level: 20"),
            ("b2b", "allowed_users: [nobody]"),
        ],
        ..Options::default()
    })
    .await;
    let (mut browser, _) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    // b2b gets the session through the login host, then refuses this user.
    browser.follow(&portal_url(&world, "b2b", "/")).await;
    for (lang, text) in [("en", "Access not allowed"), ("sl", "Dostop ni dovoljen")] {
        let page = browser
            .send(
                reqwest::Method::GET,
                &portal_url(&world, "b2b", "/"),
                None,
                &[("accept", "text/html"), ("accept-language", lang)],
            )
            .await;
        assert_eq!(page.status, 403, "{}", page.body);
        assert!(page.body.contains(text), "{lang}: {}", page.body);
    }
}

/// Review findings on single sign-on (login CSRF, session swap): a code the attacker had the
/// login host mint for their own session is useless in the victim's browser — it is bound to
/// the browser that asked for it — and never replaces anyone's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_minted_by_an_attacker_does_nothing_in_the_victims_browser() {
    let world = world(Options::default()).await;
    let (mut attacker, _) = log_in(&world, "bips", "/home", VISOKA, VISOKA_TOTP).await;
    let (mut victim, _) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    // The attacker has the login host mint codes for bips (where the victim is logged in)
    // and for acq (where she is not), and stops before following them.
    for portal in ["bips", "acq"] {
        let to_login = attacker
            .navigate(&portal_url(&world, portal, "/transfer?to=ATTACKER"))
            .await;
        let location = match to_login.location {
            Some(l) => l,
            None => {
                // bips: the attacker has a session there; ask the login host directly.
                let ret: String = url::form_urlencoded::byte_serialize(
                    portal_url(&world, portal, "/transfer?to=ATTACKER").as_bytes(),
                )
                .collect();
                login_url(&world, &format!("/?return={ret}"))
            }
        };
        let code = attacker.navigate(&location).await.location.expect("a code");
        assert!(code.contains("/.prehod/sso?code="), "{code}");
        let page = victim.navigate(&code).await;
        assert!(
            page.location
                .is_some_and(|l| l.starts_with(&login_url(&world, "/"))),
            "{portal}: the attacker's code was taken"
        );
    }
    let me = victim
        .api(&portal_url(&world, "bips", "/.prehod/me"))
        .await
        .json();
    assert_eq!(me["email"], SREDNJA.0, "still herself on bips");
    assert!(victim
        .cookie_at(&prehod_test_support::host("acq"), SESSION)
        .is_none());
}

/// Review findings on logout: after a step-up the earlier login's portal cookies end with the
/// next logout; and a logout works when the login host's own cookie idled out while a
/// portal was in use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_every_login_of_the_browser_even_one_idle_on_the_login_host() {
    let world = world(Options::default()).await;
    let (mut browser, _) = log_in(&world, "bips", "/home", VISOKA, VISOKA_TOTP).await;
    // Step up on bws: a second login of the same person.
    let target = portal_url(&world, "bws", "/");
    let mut location = target.clone();
    for _ in 0..5 {
        let hop = browser.navigate(&location).await;
        location = hop.location.expect("redirect");
        if location.starts_with(&login_url(&world, "/step-up")) {
            break;
        }
    }
    let why = browser.follow(&location).await;
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    let back = rekono_otp(&world, &mut browser, &chooser, VISOKA_TOTP).await;
    assert_eq!(back.url, target);
    log_out(&world, &mut browser).await;
    refused_on(&world, &mut browser, &["bips", "bws"]).await;

    // Idle on the login host, busy on the portal.
    let world = world_idle(4).await;
    let (mut browser, _) = log_in(&world, "bips", "/home", SREDNJA, SREDNJA_TOTP).await;
    let until = Instant::now() + Duration::from_secs(6);
    while Instant::now() < until {
        assert_eq!(
            browser.api(&portal_url(&world, "bips", "/")).await.status,
            200
        );
        tokio::time::sleep(Duration::from_millis(800)).await;
    }
    log_out(&world, &mut browser).await;
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        401,
        "the portal's session ended with the logout"
    );
}

async fn world_idle(seconds: u64) -> World {
    let idle: &'static str = Box::leak(format!("{seconds}s").into_boxed_str());
    world(Options {
        idle,
        ..Options::default()
    })
    .await
}

/// Review findings on cookies a sibling host can plant and forms it can make the browser send:
/// login attempts live in `__Host-` cookies (a `Domain` cookie of that name is not an
/// attempt), and a form from a sibling host or another portal is never kept.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sibling_host_can_plant_no_login_attempt_nor_a_form() {
    let world = world(Options::default()).await;
    let mut browser = Browser::new(&world);
    let to_login = browser.follow(&portal_url(&world, "bips", "/")).await;
    let start = browser.navigate(&rekono_link(&world, &to_login)).await;
    let attempt = start
        .headers
        .get_all("set-cookie")
        .iter()
        .filter_map(|c| c.to_str().ok())
        .find(|c| c.contains("prehod_login_"))
        .expect("an attempt cookie")
        .to_owned();
    assert!(attempt.starts_with("__Host-prehod_login_"), "{attempt}");
    assert!(
        attempt.contains("Path=/;") && !attempt.contains("Domain"),
        "{attempt}"
    );
    // The same attempt under the plain name (what a sibling host could set with a Domain)
    // is not an attempt: the callback refuses.
    let (name, rest) = attempt.split_once('=').expect("cookie");
    let value = rest.split(';').next().unwrap_or_default();
    let state = url::Url::parse(start.location.as_deref().expect("to Rekono"))
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "state")
        .map(|(_, v)| v.into_owned())
        .expect("state");
    let planted = format!("{}={value}", name.trim_start_matches("__Host-"));
    let page = Browser::new(&world)
        .send(
            reqwest::Method::GET,
            &login_url(&world, &format!("/oidc/callback?code=x&state={state}")),
            None,
            &[("cookie", &planted)],
        )
        .await;
    assert_eq!(page.status, 400, "{}", page.body);
    // Forms from a sibling host (same-site) or another portal's page are not kept.
    for headers in [
        vec![("sec-fetch-site", "same-site".to_owned())],
        vec![(
            "origin",
            format!("https://acq.bankart.localhost:{}", world.gw.https.port()),
        )],
    ] {
        let mut h: Vec<(&str, &str)> = vec![
            ("accept", "text/html"),
            ("sec-fetch-mode", "navigate"),
            ("content-type", "application/x-www-form-urlencoded"),
        ];
        h.extend(headers.iter().map(|(k, v)| (*k, v.as_str())));
        let mut victim = Browser::new(&world);
        let page = victim
            .send(
                reqwest::Method::POST,
                &portal_url(&world, "bips", "/transfer"),
                Some(&[("to", "SI56-ATTACKER")]),
                &h,
            )
            .await;
        assert_eq!(page.status, 303, "{headers:?}: {}", page.body);
        assert!(
            victim.cookie(POST).is_none(),
            "{headers:?}: the form was kept"
        );
    }
}

/// Waits until the unix second after this one has begun. Revocations and login times are
/// whole seconds: a person takes seconds to log in again, a test only milliseconds.
async fn into_the_next_second() {
    let since = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock");
    let rest = Duration::from_secs(1) - Duration::from_nanos(u64::from(since.subsec_nanos()));
    tokio::time::sleep(rest + Duration::from_millis(20)).await;
}

/// The value of `name` in the query of `url`.
fn query_param(url: &str, name: &str) -> Option<String> {
    url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}

/// The value of `name` in one logged authorization request.
fn asked(request: &[(String, String)], name: &str) -> Option<String> {
    request
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.clone())
}

/// Issue 17, item 8: "End all my sessions" locked the person out. Rekono's single sign-on
/// keeps the original login time, and the gateway compared the subject's revocation with
/// it: every new login in the same browser was issued and then refused as revoked, again
/// and again. Now the revocation ends the sessions the gateway *issued* before it, and the
/// next login asks Rekono once for a fresh authentication (`prompt=login`, `max_age=0`).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_ending_all_sessions_the_next_login_asks_once_for_fresh_authentication_and_gets_in() {
    let world = world(Options::default()).await;
    let bips = portal_url(&world, "bips", "/");
    // The same person in two browsers.
    let mut one = Browser::new(&world);
    login_otp(&world, &mut one, &bips, SREDNJA, SREDNJA_TOTP).await;
    let mut two = Browser::new(&world);
    login_otp(&world, &mut two, &bips, SREDNJA, SREDNJA_TOTP).await;
    let old_one = one
        .cookie_at(&prehod_test_support::host("bips"), SESSION)
        .expect("bips cookie");
    let old_two = two
        .cookie_at(&prehod_test_support::host("bips"), SESSION)
        .expect("bips cookie");

    let page = one.navigate(&login_url(&world, "/sessions")).await;
    let csrf = unescape(&page.hidden("csrf"));
    let ended = one
        .post_form(&login_url(&world, "/sessions/end-all"), &[("csrf", &csrf)])
        .await;
    assert!(ended.url.ends_with("/logged-out"), "{}", ended.url);
    for old in [&old_one, &old_two] {
        assert_eq!(status_with_session_cookie(&world, &bips, old).await, 401);
    }
    into_the_next_second().await;

    // The same browser logs in again: Rekono answers at once (single sign-on, the old
    // login time), the gateway asks once more with prompt=login and max_age=0, and Rekono
    // asks for the password and the second factor.
    let before = world.sim.sim.authorization_requests().len();
    let login_page = one.follow(&bips).await;
    let rekono = one.follow(&rekono_link(&world, &login_page)).await;
    assert!(
        rekono.body.contains("Prijavljate se v storitev"),
        "Rekono asks for the password again, not single sign-on into a revoked session: {} {}",
        rekono.url,
        rekono.body
    );
    let requests = world.sim.sim.authorization_requests();
    let requests = requests.get(before..).unwrap_or_default();
    assert_eq!(requests.len(), 2, "one extra round trip: {requests:?}");
    assert_eq!(asked(&requests[0], "prompt"), None);
    assert_eq!(asked(&requests[1], "prompt").as_deref(), Some("login"));
    assert_eq!(asked(&requests[1], "max_age").as_deref(), Some("0"));
    let chooser = rekono_password(&world, &mut one, &rekono, SREDNJA).await;
    let back = rekono_otp(&world, &mut one, &chooser, SREDNJA_TOTP).await;
    assert_eq!(back.url, bips);
    assert_eq!(one.api(&bips).await.status, 200, "the new session works");
    assert_eq!(world.sim.sim.authorization_requests().len(), before + 2);
    // Another portal through the login host's session: no Rekono round trip at all.
    let acq = portal_url(&world, "acq", "/");
    one.follow(&acq).await;
    assert_eq!(one.api(&acq).await.status, 200);
    assert_eq!(world.sim.sim.authorization_requests().len(), before + 2);

    // The sessions from before stay ended, in both browsers.
    for old in [&old_one, &old_two] {
        assert_eq!(status_with_session_cookie(&world, &bips, old).await, 401);
    }
    assert_eq!(two.api(&bips).await.status, 401);
    // The other browser's Rekono login is from before the end too: fresh authentication.
    let login_page = two.follow(&bips).await;
    let rekono = two.follow(&rekono_link(&world, &login_page)).await;
    assert!(
        rekono.body.contains("Prijavljate se v storitev"),
        "{}",
        rekono.body
    );
}

/// Issue 17, item 8, on the attempt that asked for fresh authentication: a provider that
/// answers it with the old login time anyway is refused with a page that says why, and is
/// never asked again in a loop.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fresh_login_answered_with_the_old_login_time_is_refused_once_not_looped() {
    let world = world(Options::default()).await;
    let bips = portal_url(&world, "bips", "/");
    let mut browser = Browser::new(&world);
    login_otp(&world, &mut browser, &bips, SREDNJA, SREDNJA_TOTP).await;
    let page = browser.navigate(&login_url(&world, "/sessions")).await;
    let csrf = unescape(&page.hidden("csrf"));
    browser
        .post_form(&login_url(&world, "/sessions/end-all"), &[("csrf", &csrf)])
        .await;
    into_the_next_second().await;
    let login_page = browser.follow(&bips).await;
    // Rekono's single sign-on answers: the gateway restarts with prompt=login.
    let mut location = rekono_link(&world, &login_page);
    let mut fresh = None;
    for _ in 0..6 {
        let hop = browser.navigate(&location).await;
        location = hop.location.clone().expect("a redirect");
        if query_param(&location, "prompt").as_deref() == Some("login") {
            fresh = Some(location.clone());
            break;
        }
    }
    let fresh = fresh.expect("the gateway asked for fresh authentication");
    // A provider that ignores prompt=login answers it from the old single sign-on: the
    // same attempt (state, nonce, PKCE) sent without prompt and max_age.
    let mut ignored = url::Url::parse(&fresh).expect("url");
    let pairs: Vec<(String, String)> = ignored
        .query_pairs()
        .filter(|(k, _)| k != "prompt" && k != "max_age")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    ignored.query_pairs_mut().clear().extend_pairs(pairs);
    let callback = browser
        .navigate(ignored.as_str())
        .await
        .location
        .expect("single sign-on answers at once");
    assert!(callback.contains("/oidc/callback"), "{callback}");
    let refused = browser.navigate(&callback).await;
    assert_eq!(refused.status, 403, "{}", refused.body);
    assert!(refused.location.is_none(), "no second restart");
    assert!(
        refused.body.contains("znova potrditi"),
        "the page says why: {}",
        refused.body
    );
    expect_audit(&world, "login", "failure", Some("not_fresh")).await;
    assert_eq!(browser.api(&bips).await.status, 401);
}

/// Starts a Rekono login for `portal` as its login page's button does (with the binding the
/// portal gave) and returns Rekono's answer: the login page, or — with single sign-on — a
/// redirect to the gateway's callback.
async fn start_login_for(world: &World, browser: &mut Browser, portal: &str) -> Page {
    let to_login = browser
        .navigate(&portal_url(world, portal, "/"))
        .await
        .location
        .expect("the portal sends the browser to the login page");
    let ret = query_param(&to_login, "return").expect("return");
    let bind = query_param(&to_login, "bind").expect("bind");
    let start = login_url(
        world,
        &format!(
            "/oidc/start?return={}&bind={}",
            encode_component(&ret),
            encode_component(&bind)
        ),
    );
    let to_rekono = browser
        .navigate(&start)
        .await
        .location
        .expect("off to Rekono");
    browser.navigate(&to_rekono).await
}

/// Sends both callbacks at once, follows each to its portal, and checks that each portal
/// then has a working session.
async fn both_callbacks_at_once(
    world: &World,
    browser: &mut Browser,
    cb: [&str; 2],
    portals: [&str; 2],
) {
    let answers = browser.navigate_together(cb).await;
    for (answer, portal) in answers.iter().zip(portals) {
        assert_eq!(answer.status, 302, "{}", answer.body);
        let to = answer.location.clone().expect("on to the portal");
        browser.follow(&to).await;
        let me = browser.api(&portal_url(world, portal, "/.prehod/me")).await;
        assert_eq!(me.status, 200, "{portal} has its session: {}", me.body);
    }
}

/// Issue 17, item 9: two logins of one browser whose callbacks arrive together each
/// replaced the same old session with a new one; the login host kept only the last, and a
/// logout left the other portal's session working. Rekono's back-channel logout does not
/// reach the gateway here: the gateway's own logout must end everything.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn logout_ends_every_session_of_the_browser_even_from_two_callbacks_at_once() {
    let world = world(Options {
        backchannel: Some(format!(
            "https://127.0.0.1:{}/nowhere",
            prehod_test_support::free_port()
        )),
        ..Options::default()
    })
    .await;
    // Over a live session: two tabs start a login for two portals, Rekono answers both
    // from its single sign-on, and both callbacks arrive at once.
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let acq = start_login_for(&world, &mut browser, "acq").await;
    let b2b = start_login_for(&world, &mut browser, "b2b").await;
    let cb = [acq, b2b].map(|p| p.location.expect("single sign-on: to the callback"));
    both_callbacks_at_once(&world, &mut browser, [&cb[0], &cb[1]], ["acq", "b2b"]).await;
    log_out(&world, &mut browser).await;
    for portal in ["acq", "b2b", "bips"] {
        let me = browser
            .api(&portal_url(&world, portal, "/.prehod/me"))
            .await;
        assert_eq!(me.status, 401, "{portal} after the logout: {}", me.body);
    }

    // Without a session before: the first tab's login at Rekono, the second tab's by single
    // sign-on, and again both callbacks at once.
    let mut browser = Browser::new(&world);
    let first = start_login_for(&world, &mut browser, "acq").await;
    let cb1 = rekono_to_callback(&world, &mut browser, &first).await;
    let second = start_login_for(&world, &mut browser, "b2b").await;
    let cb2 = second.location.expect("single sign-on: to the callback");
    both_callbacks_at_once(&world, &mut browser, [&cb1, &cb2], ["acq", "b2b"]).await;
    log_out(&world, &mut browser).await;
    for portal in ["acq", "b2b"] {
        let me = browser
            .api(&portal_url(&world, portal, "/.prehod/me"))
            .await;
        assert_eq!(me.status, 401, "{portal} after the logout: {}", me.body);
    }
}

// The id token left out of the session cache and the portals' cookies: an attacker's review.

/// Logs out at the login host (confirmation, then the form) and returns where the browser is
/// sent and the `id_token_hint` it carries, if any.
async fn log_out_with_hint(world: &World, browser: &mut Browser) -> (String, Option<String>) {
    let confirm = browser.navigate(&login_url(world, "/logout")).await;
    assert_eq!(confirm.status, 200, "{}", confirm.body);
    let csrf = unescape(&confirm.hidden("csrf"));
    let out = browser
        .send(
            reqwest::Method::POST,
            &login_url(world, "/logout"),
            Some(&[("csrf", &csrf)]),
            &[("accept", "text/html")],
        )
        .await;
    assert_eq!(out.status, 302, "{}", out.body);
    let to = url::Url::parse(out.location.as_deref().expect("a redirect")).expect("url");
    let hint = to
        .query_pairs()
        .find(|(k, _)| k == "id_token_hint")
        .map(|(_, v)| v.into_owned());
    (to.to_string(), hint)
}

/// `cookie_scope: parent_domain`: one cookie, with the id token, for every host. The portal
/// request path caches it without the token and rolls it past half of the idle time; the
/// rolled cookie must keep the token, and a logout after portal-path hits must send it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn parent_domain_roll_and_logout_after_portal_hits_keep_the_id_token() {
    let world = world(Options {
        parent_domain: true,
        idle: "6s",
        ..Options::default()
    })
    .await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let first = browser
        .cookie("prehod_session")
        .expect("the parent-domain cookie");
    let token = opened(&world, &first)
        .id_token
        .expect("the cookie carries the id token");
    for _ in 0..3 {
        assert_eq!(
            browser.api(&portal_url(&world, "acq", "/")).await.status,
            200
        );
    }
    // Past half of the idle time: a portal-path hit rolls the cookie.
    tokio::time::sleep(Duration::from_millis(3300)).await;
    assert_eq!(
        browser.api(&portal_url(&world, "acq", "/")).await.status,
        200
    );
    let rolled = browser.cookie("prehod_session").expect("cookie");
    assert_ne!(rolled, first, "rolled on the portal path");
    let again = opened(&world, &rolled);
    assert_eq!(
        again.id_token.as_deref(),
        Some(token.as_str()),
        "the roll kept the token"
    );
    // More portal-path hits on the rolled cookie, then the login host.
    for _ in 0..2 {
        assert_eq!(
            browser.api(&portal_url(&world, "bips", "/")).await.status,
            200
        );
    }
    let (to, hint) = log_out_with_hint(&world, &mut browser).await;
    assert!(to.starts_with(&world.sim.issuer()), "{to}");
    assert_eq!(hint.as_deref(), Some(token.as_str()));
}

/// Host-only cookies: a portal's cookie rolled on the portal path stays without the token;
/// a second portal reached by single sign-on from the login host's cached session gets none
/// either; the login host's cookie, looked up (and cached) on every one of those steps, still
/// gives the logout its `id_token_hint`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn host_only_rolls_and_sso_never_move_the_id_token() {
    let world = world(Options {
        idle: "6s",
        ..Options::default()
    })
    .await;
    let (mut browser, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let (portal, login) = session_cookies(&browser, "bips");
    let token = opened(&world, &login).id_token.expect("token");
    for _ in 0..2 {
        assert_eq!(
            browser.api(&portal_url(&world, "bips", "/")).await.status,
            200
        );
        assert_eq!(browser.navigate(&login_url(&world, "/")).await.status, 200);
    }
    tokio::time::sleep(Duration::from_millis(3300)).await;
    assert_eq!(
        browser.api(&portal_url(&world, "bips", "/")).await.status,
        200
    );
    let (rolled, login_now) = session_cookies(&browser, "bips");
    assert_ne!(rolled, portal, "rolled on the portal path");
    assert_eq!(
        opened(&world, &rolled).id_token,
        None,
        "a rolled portal cookie, no token"
    );
    // Single sign-on to another portal over the login host's (cached) session.
    let page = browser.follow(&portal_url(&world, "acq", "/")).await;
    assert_eq!(page.status, 200, "{}", page.body);
    let (acq, login_after) = session_cookies(&browser, "acq");
    assert_eq!(
        opened(&world, &acq).id_token,
        None,
        "the second portal's cookie, no token"
    );
    let kept = opened(&world, &login_after);
    assert_eq!(kept.id_token.as_deref(), Some(token.as_str()));
    assert_eq!(kept.sid, opened(&world, &login_now).sid);
    let (_, hint) = log_out_with_hint(&world, &mut browser).await;
    assert_eq!(hint.as_deref(), Some(token.as_str()));
    // Every host's cookie of the family is refused after the logout.
    refused_on(&world, &mut browser, &["bips", "acq"]).await;
}

/// An attacker with another user's portal cookie (from the portal's logs) plants it as their
/// login host's cookie: it has no id token, and must not pass for a login-host session
/// (which would seal it again into portal cookies, and give a logout with no
/// `id_token_hint`); nor may its use there end or change the victim's session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stolen_portal_cookie_is_no_login_host_session() {
    let world = world(Options::default()).await;
    let (mut victim, _) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let (stolen, _) = session_cookies(&victim, "bips");
    assert_eq!(
        victim.api(&portal_url(&world, "bips", "/")).await.status,
        200
    );
    let mut attacker = Browser::new(&world);
    // The victim's cookies' places in the jar, the login host's holding the portal's value.
    attacker.carry_cookie_from(&victim, SESSION);
    attacker.set_cookie_at("login.bankart.localhost", SESSION, &stolen);
    assert_eq!(
        attacker
            .cookie_at("login.bankart.localhost", SESSION)
            .as_deref(),
        Some(stolen.as_str())
    );
    // Single sign-on from the login host to another portal: no session there to hand on.
    let ret: String =
        url::form_urlencoded::byte_serialize(portal_url(&world, "acq", "/").as_bytes()).collect();
    let page = attacker
        .navigate(&login_url(&world, &format!("/?return={ret}")))
        .await;
    assert_eq!(
        page.status, 200,
        "the login page, not a code: {:?}",
        page.location
    );
    let sessions = attacker.navigate(&login_url(&world, "/sessions")).await;
    assert_eq!(sessions.status, 302);
    // Its logout is no logout of the victim.
    let confirm = attacker.navigate(&login_url(&world, "/logout")).await;
    assert_eq!(
        confirm.status, 302,
        "no session to confirm: {}",
        confirm.body
    );
    assert_eq!(
        victim.api(&portal_url(&world, "bips", "/")).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn after_a_step_up_no_portal_gets_what_the_earlier_session_prepared() {
    // The attack: a session's identity headers and assertion are made at its first request to
    // a portal and kept with it (issue 20). A step-up is a new session of the same person (the
    // earlier one revoked): the portal that had the level-20 session's values must get the new
    // session's, and the earlier cookie, sent again, must get nothing it kept. One cookie for
    // every host, so that both sessions reach the same portal.
    let world = world(Options {
        parent_domain: true,
        ..Options::default()
    })
    .await;
    let (mut browser, page) = log_in(&world, "bips", "/", VISOKA, VISOKA_TOTP).await;
    let json = page.json();
    assert_eq!(received_header(&json, "x-auth-level"), ["20"]);
    let before = verify_assertion(&world, &browser, "bips", &json).await;
    let again = browser.api(&portal_url(&world, "bips", "/")).await.json();
    assert_eq!(
        received_header(&again, "x-auth-assertion"),
        received_header(&json, "x-auth-assertion"),
        "the kept assertion, reused"
    );
    let earlier = browser.cookie("prehod_session").expect("the cookie");
    let target = portal_url(&world, "bws", "/");
    let why = browser.follow(&target).await;
    let rekono = continue_step_up(&world, &mut browser, &why).await;
    let chooser = rekono_password(&world, &mut browser, &rekono, VISOKA).await;
    let back = rekono_otp(&world, &mut browser, &chooser, VISOKA_TOTP).await;
    assert_eq!(back.url, target);
    let json = browser.api(&portal_url(&world, "bips", "/")).await.json();
    assert_eq!(received_header(&json, "x-auth-level"), ["30"]);
    let after = verify_assertion(&world, &browser, "bips", &json).await;
    assert_eq!(after["level"], 30);
    assert_eq!(after["sub"], before["sub"]);
    assert_ne!(after["sid"], before["sid"], "the new session's assertion");
    browser.set_cookie_value("prehod_session", &earlier);
    let page = browser.api(&portal_url(&world, "bips", "/")).await;
    assert_ne!(page.status, 200, "the revoked session reaches no portal");
    assert!(!page.body.contains("x-auth"), "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reload_with_a_new_assertion_key_signs_the_next_request_of_a_cached_session() {
    // The attack: the assertion key leaked and a reload replaced it. The session cache
    // outlives the reload, and with it the assertion each session keeps: the next request of
    // a session seen before must carry an assertion of the new key (the only one the JWKS
    // then publishes), not the kept one of the old key.
    let world = world(Options::default()).await;
    let (mut browser, page) = log_in(&world, "bips", "/", SREDNJA, SREDNJA_TOTP).await;
    let json = page.json();
    let before = verify_assertion(&world, &browser, "bips", &json).await;
    let kid = |json: &Value| {
        let token = received_header(json, "x-auth-assertion")[0];
        jsonwebtoken::decode_header(token).expect("header").kid
    };
    let old_kid = kid(&json);
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("P-256");
    let key = openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
        .expect("key");
    let new_key = world.pki.path("assertion-2.key");
    std::fs::write(&new_key, key.private_key_to_pem_pkcs8().expect("pem")).expect("write");
    // A key readable by its owner only, as the gateway asks of every secret file.
    let owner_only = std::os::unix::fs::PermissionsExt::from_mode(0o600);
    std::fs::set_permissions(&new_key, owner_only).expect("chmod");
    let old_key = world.pki.path("assertion.key").display().to_string();
    world
        .gw
        .reload_with(|yaml| yaml.replace(&old_key, &new_key.display().to_string()))
        .await;
    let json = browser.api(&portal_url(&world, "bips", "/")).await.json();
    assert_ne!(kid(&json), old_kid, "signed with the new key");
    let after = verify_assertion(&world, &browser, "bips", &json).await;
    assert_eq!(after["sid"], before["sid"], "the same session");
}

/// review-rp: a logged-in session alternating between two portals (one cookie for every
/// host), each request with forged identity headers in several letter cases and duplicates
/// and gateway cookies in extra Cookie headers: each portal gets only this session's identity,
/// exactly one assertion, for its own audience, and no gateway cookie.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_rp_prepared_values_per_portal_and_no_forged_header_survives_the_rebuild() {
    let world = world(Options {
        parent_domain: true,
        ..Options::default()
    })
    .await;
    let (mut browser, _page) = log_in(&world, "bips", "/", VISOKA, VISOKA_TOTP).await;
    let forged = [
        ("accept", "application/json"),
        ("authorization", "Basic ZGVtbzpkZW1vMTIz"),
        ("X-Auth-Level", "99"),
        ("x-auth-LEVEL", "98"),
        ("X-AUTH-USER", "admin"),
        ("x-auth-assertion", "forged.jwt.value"),
        ("X-Auth-Cert-Subject", "CN=admin"),
        ("cookie", "app=1; prehod_session=STOLEN1"),
        (
            "cookie",
            "__Host-prehod_session=STOLEN2;x=\"a;prehod_session=STOLEN3\"",
        ),
    ];
    let mut tokens: std::collections::HashMap<&str, String> = Default::default();
    for portal in ["bips", "b2b", "bips", "b2b", "bips"] {
        let page = browser
            .send(
                reqwest::Method::GET,
                &portal_url(&world, portal, "/whoami"),
                None,
                &forged,
            )
            .await;
        assert_eq!(page.status, 200, "{portal}: {}", page.body);
        let json = page.json();
        assert_eq!(received_header(&json, "x-auth-level"), ["20"], "{portal}");
        assert_ne!(received_header(&json, "x-auth-user"), ["admin"], "{portal}");
        assert!(
            received_header(&json, "x-auth-cert-subject").is_empty(),
            "{portal}"
        );
        let claims = verify_assertion(&world, &browser, portal, &json).await;
        assert_eq!(claims["level"], 20);
        let token = received_header(&json, "x-auth-assertion")[0].to_owned();
        if let Some(earlier) = tokens.insert(portal, token.clone()) {
            assert_eq!(earlier, token, "{portal}: the kept assertion");
        }
        let body = json.to_string();
        for stolen in ["STOLEN1", "STOLEN2", "STOLEN3"] {
            assert!(
                !body.contains(stolen),
                "{portal}: {stolen} reached the portal: {body}"
            );
        }
    }
    assert_ne!(tokens["bips"], tokens["b2b"], "one assertion per audience");
}
