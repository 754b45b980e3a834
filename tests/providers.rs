//! Two identity providers through the real gateway: Rekono and the simulator run a second time
//! as `bankart-staff` (another issuer, other accounts). Each logs in end to end; the login page
//! shows the providers a portal allows; sessions, headers and metrics name the provider; and
//! the attacks across providers: one provider's answer at another's callback, a session of a
//! provider the portal does not allow, a logout token of one provider naming another's
//! session, the same `sub` at both.

use std::time::Duration;

use prehod_test_support::login::*;
use prehod_test_support::metrics::value_or_zero;
use prehod_test_support::received_header;
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};

fn staff_world(portal_yaml: Vec<(&'static str, &'static str)>) -> Options {
    Options {
        staff: true,
        portal_yaml,
        ..Options::default()
    }
}

/// The staff world in which acq takes both providers.
fn acq_takes_both() -> Options {
    staff_world(vec![("acq", "methods: [rekono, bankart-staff]")])
}

/// Logs in at the staff provider for `path` on `portal` in a new browser.
async fn staff_log_in(world: &World, portal: &str, path: &str) -> (Browser, Page) {
    let mut browser = Browser::new(world);
    let base = staff_url(world, "");
    let page = login_otp_at(
        world,
        &mut browser,
        &portal_url(world, portal, path),
        STAFF_ID,
        &base,
        STAFF_ANA,
        STAFF_ANA_TOTP,
    )
    .await;
    (browser, page)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_providers_log_in_and_each_names_its_users_and_sessions() {
    let world = world(staff_world(vec![
        ("acq", "methods: [rekono, bankart-staff]"),
        ("bips", "min_level: 20"),
    ]))
    .await;
    // The login page of a portal that allows both shows both buttons; one that allows only
    // the default provider shows only Rekono's; the home shows every provider.
    let mut browser = Browser::new(&world);
    let acq = browser.follow(&portal_url(&world, "acq", "/")).await;
    assert!(acq.body.contains("id=\"login-rekono\""), "{}", acq.body);
    assert!(acq.body.contains("id=\"login-bankart-staff\""));
    assert!(acq.body.contains("Prijava za zaposlene"));
    let b2b = browser.follow(&portal_url(&world, "b2b", "/")).await;
    assert!(b2b.body.contains("id=\"login-rekono\""));
    assert!(!b2b.body.contains("login-bankart-staff"), "{}", b2b.body);
    let home = browser.follow(&login_url(&world, "/")).await;
    assert!(home.body.contains("login-rekono") && home.body.contains("login-bankart-staff"));

    // A staff login: the user id and the method carry the provider.
    let (_staff, page) = staff_log_in(&world, "acq", "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
    let json = page.json();
    let user = received_header(&json, "x-auth-user")[0].to_owned();
    assert!(user.starts_with("bankart-staff:"), "{user}");
    assert_eq!(received_header(&json, "x-auth-method"), ["bankart-staff"]);
    assert_eq!(received_header(&json, "x-auth-email"), [STAFF_ANA.0]);

    // A Rekono login as before: its ids as they were.
    let (_rekono, page) = log_in(&world, "acq", "/", SREDNJA, SREDNJA_TOTP).await;
    let json = page.json();
    let user = received_header(&json, "x-auth-user")[0].to_owned();
    assert!(!user.contains(':'), "{user}");
    assert_eq!(received_header(&json, "x-auth-method"), ["rekono"]);

    let metrics = world.gw.metrics();
    assert_eq!(
        value_or_zero(
            &metrics,
            r#"prehod_logins_total{method="bankart-staff",outcome="success"}"#
        ),
        1.0,
        "{metrics}"
    );
    assert_eq!(
        value_or_zero(
            &metrics,
            r#"prehod_logins_total{method="rekono",outcome="success"}"#
        ),
        1.0
    );
    let log = world.gw.log_lines().join("\n");
    assert!(
        log.contains("\"method\":\"bankart-staff\"") || log.contains("method=bankart-staff"),
        "the audit line names the provider: {log}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_providers_answer_is_never_taken_at_anothers_callback() {
    let world = world(acq_takes_both()).await;
    // A staff login up to the staff provider's redirect back, not followed.
    let (mut browser, callback) = staff_answer_url(&world).await;
    assert!(
        callback.contains("/oidc/callback/bankart-staff?"),
        "{callback}"
    );
    // The attacker takes it to Rekono's callback (its code and state, the same browser's
    // attempt cookie): refused, and no session is made.
    let at_rekono = callback.replace("/oidc/callback/bankart-staff?", "/oidc/callback?");
    let refused = browser.navigate(&at_rekono).await;
    assert_eq!(refused.status, 400, "{}", refused.body);
    assert!(browser.cookie(SESSION).is_none(), "no session");
    let metrics = world.gw.metrics();
    assert_eq!(
        value_or_zero(
            &metrics,
            r#"prehod_denials_total{reason="provider_mismatch"}"#
        ),
        1.0,
        "{metrics}"
    );
    // The same answer at its own provider's callback is a login (the attempt cookie was
    // cleared by the refusal, so it starts again).
    let (_, page) = staff_log_in(&world, "acq", "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_code_of_another_provider_under_this_providers_state_is_refused() {
    let world = world(acq_takes_both()).await;
    // The staff provider's code for Ana, taken from her own login …
    let (_, staff_callback) = staff_answer_url(&world).await;
    let staff_code = url::Url::parse(&staff_callback)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    // … redeemed under a Rekono attempt of the attacker's browser, at Rekono's callback:
    // the gateway sends it to Rekono's token endpoint, which never issued it.
    let mut attacker = Browser::new(&world);
    let rekono_callback =
        callback_url(&world, &mut attacker, &portal_url(&world, "acq", "/")).await;
    let mut forged = url::Url::parse(&rekono_callback).expect("url");
    let pairs: Vec<(String, String)> = forged
        .query_pairs()
        .map(|(k, v)| {
            let v = if k == "code" {
                staff_code.clone()
            } else {
                v.into_owned()
            };
            (k.into_owned(), v)
        })
        .collect();
    forged.query_pairs_mut().clear().extend_pairs(pairs);
    let refused = attacker.navigate(forged.as_str()).await;
    assert!(
        refused.status >= 400 && refused.location.is_none(),
        "{} {}",
        refused.status,
        refused.body
    );
    assert!(attacker.cookie(SESSION).is_none(), "no session");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_portal_that_allows_only_one_provider_refuses_anothers_session() {
    let world = world(staff_world(vec![
        ("acq", "methods: [rekono, bankart-staff]"),
        ("b2b", "methods: [bankart-staff]"),
    ]))
    .await;
    let (mut browser, page) = log_in(&world, "acq", "/", SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(page.status, 200);
    // Single sign-on to b2b, which allows only the staff provider: the Rekono session is
    // refused there, not let in.
    let b2b = browser.follow(&portal_url(&world, "b2b", "/")).await;
    assert_eq!(b2b.status, 403, "{}", b2b.body);
    let api = browser.api(&portal_url(&world, "b2b", "/")).await;
    assert_ne!(api.status, 200, "{}", api.body);
    // Nor can a login for b2b be started at Rekono by naming it in the link.
    let start = browser
        .navigate(&login_url(
            &world,
            &format!(
                "/oidc/start?provider=rekono&return={}",
                encode_component(&portal_url(&world, "b2b", "/"))
            ),
        ))
        .await;
    assert_eq!(start.status, 403, "{}", start.body);
    assert!(start.location.is_none());
    // The staff login is let in.
    let (_, page) = staff_log_in(&world, "b2b", "/").await;
    assert_eq!(page.status, 200, "{}", page.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_sub_at_two_providers_is_two_users() {
    let world = world(Options {
        account_sub: Some((SREDNJA.0, "shared-sub-1")),
        staff_account_sub: Some((STAFF_ANA.0, "shared-sub-1")),
        ..acq_takes_both()
    })
    .await;
    let (mut sara, page) = log_in(&world, "acq", "/", SREDNJA, SREDNJA_TOTP).await;
    assert_eq!(
        received_header(&page.json(), "x-auth-user"),
        ["shared-sub-1"]
    );
    let (mut ana, page) = staff_log_in(&world, "acq", "/").await;
    assert_eq!(
        received_header(&page.json(), "x-auth-user"),
        ["bankart-staff:shared-sub-1"]
    );
    // Rekono ends every session of its `shared-sub-1`: Sara's session ends, Ana's (the staff
    // provider's user with the same `sub`) does not.
    let resp = rekono_logs_out(&world, &sara, "shared-sub-1").await;
    assert!(resp.status().is_success());
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        if sara.api(&portal_url(&world, "acq", "/")).await.status == 401 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "Sara's session did not end"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(ana.api(&portal_url(&world, "acq", "/")).await.status, 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_logout_token_of_one_provider_never_ends_anothers_sessions() {
    // Rekono posts its logout tokens to this recorder; the test holds them.
    let (addr, mut rx) = prehod_test_support::servers::body_recorder().await;
    let world = world(Options {
        backchannel: Some(format!("http://{addr}/record")),
        ..acq_takes_both()
    })
    .await;
    let (mut sara, page) = log_in(&world, "acq", "/", SREDNJA, SREDNJA_TOTP).await;
    let sub = received_header(&page.json(), "x-auth-user")[0].to_owned();
    rekono_logs_out(&world, &sara, &sub).await;
    let genuine = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a token")
        .expect("body");
    let token = url::form_urlencoded::parse(genuine.as_bytes())
        .find(|(k, _)| k == "logout_token")
        .map(|(_, v)| v.into_owned())
        .expect("logout_token");
    let claims: serde_json::Value = {
        use base64::Engine;
        let payload = token.split('.').nth(1).expect("payload");
        serde_json::from_slice(
            &base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(payload)
                .expect("base64"),
        )
        .expect("json")
    };
    let rekono_sid = claims["sid"].as_str().expect("sid").to_owned();
    let staff = world.staff.as_ref().expect("staff");
    let http = sara.http.clone();
    let deliver = |token: String| {
        let http = http.clone();
        let url = login_url(&world, "/oidc/backchannel-logout");
        async move {
            http.post(url)
                .form(&[("logout_token", token)])
                .send()
                .await
                .expect("post")
                .status()
        }
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs();
    let claims = |iss: String, aud: &str, jti: &str| {
        serde_json::json!({
            "iss": iss, "aud": aud, "iat": now, "exp": now + 120, "jti": jti,
            "sid": rekono_sid,
            "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
        })
    };
    // The staff provider, honestly signing as itself, names Rekono's `sid`: a valid token of
    // the staff provider, so accepted — and it ends no Rekono session.
    let own = staff
        .sim
        .keys
        .sign(
            jsonwebtoken::Algorithm::ES256,
            "logout+jwt",
            &claims(staff.issuer(), STAFF_CLIENT_ID, "j-staff-1"),
        )
        .expect("sign");
    assert_eq!(deliver(own).await, 200);
    assert_eq!(
        sara.api(&portal_url(&world, "acq", "/")).await.status,
        200,
        "a staff logout token never ends a Rekono session"
    );
    // Signed by the staff provider but claiming to be Rekono: only Rekono's keys are tried.
    let claiming = staff
        .sim
        .keys
        .sign(
            jsonwebtoken::Algorithm::ES256,
            "logout+jwt",
            &claims(world.sim.issuer(), CLIENT_ID, "j-staff-2"),
        )
        .expect("sign");
    assert_eq!(deliver(claiming).await, 400);
    assert_eq!(sara.api(&portal_url(&world, "acq", "/")).await.status, 200);
    // Rekono's own token ends the session: the `sid` named was the right one.
    assert_eq!(deliver(token).await, 200);
    assert_eq!(sara.api(&portal_url(&world, "acq", "/")).await.status, 401);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_step_up_goes_to_the_provider_that_made_the_session() {
    // Ana (level 20 at the staff provider) logs in for acq; bips asks for 30: the step-up
    // page sends her to the staff provider, with its button's words, not to Rekono.
    let world = world_with_bips_30().await;
    let (mut ana, _) = staff_log_in(&world, "acq", "/").await;
    let step_up = ana.follow(&portal_url(&world, "bips", "/")).await;
    let next = link_by_id(&world, &step_up, "step-up-continue").expect("continue link");
    assert!(next.contains("provider=bankart-staff"), "{next}");
    assert!(
        step_up.body.contains("Prijava za zaposlene"),
        "{}",
        step_up.body
    );
    let at = ana.follow(&next).await;
    assert!(
        at.url.starts_with(&staff_url(&world, "")),
        "the step-up went to {}",
        at.url
    );
}

async fn world_with_bips_30() -> World {
    world(staff_world(vec![
        ("acq", "methods: [rekono, bankart-staff]"),
        ("bips", "methods: [rekono, bankart-staff]"),
        ("bips", "min_level: 30"),
    ]))
    .await
}

/// A staff login on acq in a new browser, up to the staff provider's redirect back to the
/// gateway (not followed): that browser and that callback URL, with the staff provider's code
/// and the gateway's state.
async fn staff_answer_url(world: &World) -> (Browser, String) {
    let mut browser = Browser::new(world);
    let login_page = browser.follow(&portal_url(world, "acq", "/")).await;
    let link = link_by_id(world, &login_page, "login-bankart-staff").expect("staff button");
    let sim_login = browser.follow(&link).await;
    let base = staff_url(world, "");
    let chooser = sim_password(&mut browser, &base, &sim_login, STAFF_ANA).await;
    let callback = sim_otp_callback(&mut browser, &base, &chooser, STAFF_ANA_TOTP).await;
    (browser, callback)
}
