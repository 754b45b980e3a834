//! The real gateway against a hostile OpenID Provider (`crates/test-support/src/hostile_op/`), over
//! real TLS on loopback, pointed at it by config alone. Each test is one defect, named after the
//! OpenID Foundation's RP certification test (`rp_…`, the old suite's ids), the FAPI 2.0 Security
//! Profile client test module (`fapi2_…`, `fapi2-security-profile-final-client-test-…`) or, where
//! neither has one, after the defect. Every refused login must show "login failed" (or "level too
//! low"), never "Rekono is not available", set no session cookie and count a refusal reason; every
//! refused logout token gets 400 and ends nothing. The controls (a good token) prove the provider
//! works.

use prehod_test_support::hostile_op::{
    hostile_world, Behaviour, HostileWorld, Param, Shown, Signing,
};
use prehod_test_support::login::Browser;
use serde_json::{json, Value};

/// A login with `behaviour` that must be refused, showing `shown` and counted as `reason`.
async fn refused(behaviour: Behaviour, shown: Shown, reason: &str) -> HostileWorld {
    let world = hostile_world(behaviour).await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world
        .assert_refused(&mut browser, &page, shown, reason)
        .await;
    world
}

/// An ID token with a good ES256 signature and these claims changed (`None`: removed) must be
/// refused as an invalid ID token.
async fn invalid_claims(claims: Vec<(&'static str, Option<Value>)>) -> HostileWorld {
    refused(
        Behaviour::claims(claims),
        Shown::LoginFailed,
        "invalid_id_token",
    )
    .await
}

async fn invalid_signing(signing: Signing) -> HostileWorld {
    refused(
        Behaviour::signing(signing),
        Shown::LoginFailed,
        "invalid_id_token",
    )
    .await
}

/// A login refused (`reason`, the login-failed page) at the authorization response: its
/// code is never redeemed.
async fn refused_before_the_code_is_redeemed(behaviour: Behaviour, reason: &str) {
    let world = refused(behaviour, Shown::LoginFailed, reason).await;
    assert_eq!(
        world.op.requested("/token"),
        0,
        "the code was never redeemed"
    );
}

/// One test per row, named after the attack (as the conformance suites name it), that awaits
/// the row's refusal (`invalid_signing`, `invalid_claims`): rows of the same check read as a
/// table, and each attack still passes or fails on its own.
macro_rules! one_test_per_attack {
    ($($(#[$doc:meta])* $name:ident => $refused:expr;)*) => {$(
        $(#[$doc])*
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            $refused.await;
        }
    )*};
}

fn now() -> i64 {
    prehod_test_support::hostile_op::unix_now() as i64
}

// --- controls -------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_id_token_sig_es256() {
    let world = hostile_world(Behaviour::default()).await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world.assert_logged_in(&mut browser, &page).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_id_token_sig_rs256() {
    let world = hostile_world(Behaviour::signing(Signing::Rs256)).await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world.assert_logged_in(&mut browser, &page).await;
}

/// The provider publishes a new key after the gateway fetched its JWKS and signs with it: the
/// unknown `kid` makes the gateway fetch the keys again, and the login succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_key_rotation_op_sign_key() {
    let world = hostile_world(Behaviour::default()).await;
    let fetched = world.op.requested("/jwks.json");
    assert!(fetched >= 1, "the gateway fetched the JWKS at start");
    world.op.rotate();
    world.op.set(Behaviour::signing(Signing::Rotated));
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world.assert_logged_in(&mut browser, &page).await;
    assert!(
        world.op.requested("/jwks.json") > fetched,
        "the JWKS was fetched again: {:?}",
        world.op.requests()
    );
}

/// Anyone can post a logout token signed with a key the provider never had, and a failed
/// signature with a known key says nothing about rotation: neither may spend the JWKS refetch
/// that a real key rotation right after needs (issue 9, "the JWKS refresh can be starved").
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_key_rotation_op_sign_key_after_forged_tokens() {
    let world = hostile_world(Behaviour::signing(Signing::BadSigEs256)).await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world
        .assert_refused(&mut browser, &page, Shown::LoginFailed, "invalid_id_token")
        .await;
    for _ in 0..5 {
        let forged = world
            .op
            .logout_token(Signing::UnknownKid, Some("sid-of-nobody"), &[]);
        assert_eq!(world.backchannel_logout(&forged).await, 400);
    }
    world.op.rotate();
    world.op.set(Behaviour::signing(Signing::Rotated));
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world.assert_logged_in(&mut browser, &page).await;
}

// --- signatures and keys --------------------------------------------------------------------

one_test_per_attack! {
    /// Also `fapi2-…-invalid-null-alg`.
    rp_id_token_sig_none => invalid_signing(Signing::None);
    /// HS256 keyed with the provider's RSA public key (algorithm confusion; also
    /// `fapi2-…-invalid-alternate-alg`).
    rp_id_token_bad_sig_hs256 => invalid_signing(Signing::Hs256WithPublicKey);
    rp_id_token_bad_sig_rs256 => invalid_signing(Signing::BadSigRs256);
    rp_id_token_bad_sig_es256 => invalid_signing(Signing::BadSigEs256);
    /// No `kid`, and the JWKS has two EC P-256 keys: which one signed cannot be told.
    rp_id_token_kid_absent_multiple_jwks => invalid_signing(Signing::NoKid);
    /// A `kid` the provider does not publish, even after the JWKS is fetched again.
    id_token_kid_unknown => invalid_signing(Signing::UnknownKid);
    /// The header carries the attacker's key as `jwk`: never trusted.
    id_token_header_jwk_is_not_trusted => invalid_signing(Signing::EmbeddedJwk);
}

/// The header's `jku` points at the attacker's key set: refused, and never fetched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_token_header_jku_is_never_fetched() {
    let world = invalid_signing(Signing::Jku).await;
    assert_eq!(
        world.op.requested("/attacker/"),
        0,
        "the jku URL was requested: {:?}",
        world.op.requests()
    );
}

// --- claims ---------------------------------------------------------------------------------

one_test_per_attack! {
    /// Also `fapi2-…-invalid-iss`.
    rp_id_token_issuer_mismatch => invalid_claims(vec![("iss", Some(json!("https://evil.example")))]);
    fapi2_invalid_missing_iss => invalid_claims(vec![("iss", None)]);
    /// Also `fapi2-…-invalid-aud`.
    rp_id_token_aud => invalid_claims(vec![("aud", Some(json!("another-client")))]);
    fapi2_invalid_missing_aud => invalid_claims(vec![("aud", None)]);
    /// Several audiences, ours among them, and no `azp`.
    fapi2_invalid_secondary_aud => invalid_claims(vec![("aud", Some(json!([prehod_test_support::login::CLIENT_ID, "another-client"])))]);
    /// `azp` names another client (`aud` is ours alone, so only the `azp` check can refuse it).
    id_token_azp_another_client => invalid_claims(vec![("azp", Some(json!("another-client")))]);
    fapi2_invalid_missing_exp => invalid_claims(vec![("exp", None)]);
    fapi2_invalid_expired_exp => invalid_claims(vec![("exp", Some(json!(now() - 600))), ("iat", Some(json!(now() - 900)))]);
    rp_id_token_iat_missing => invalid_claims(vec![("iat", None)]);
    /// Issued a day from now (and valid until after that).
    id_token_iat_far_future => invalid_claims(vec![("iat", Some(json!(now() + 86_400))), ("exp", Some(json!(now() + 86_700)))]);
    /// Issued a week ago, though `exp` is still ahead (`fapi1-advanced-final-client-test-iat-is-week-in-past`).
    fapi1_iat_is_week_in_past => invalid_claims(vec![("iat", Some(json!(now() - 7 * 86_400)))]);
    rp_id_token_sub_missing => invalid_claims(vec![("sub", None)]);
    /// Also `fapi2-…-invalid-nonce`.
    rp_nonce_invalid => invalid_claims(vec![("nonce", Some(json!("not-the-nonce-that-was-sent")))]);
    fapi2_invalid_missing_nonce => invalid_claims(vec![("nonce", None)]);
    id_token_acr_missing => invalid_claims(vec![("acr", None)]);
    id_token_acr_unknown => invalid_claims(vec![("acr", Some(json!("urn:evil:loa:max")))]);
}

/// `bips` asks for level 20 (`acr_values=20`); the token says 10.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn id_token_acr_lower_than_asked() {
    refused(
        Behaviour::claims(vec![("acr", Some(json!("10")))]),
        Shown::LevelTooLow,
        "level_too_low",
    )
    .await;
}

// --- the authorization response -------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_invalid_authorization_response_iss() {
    refused(
        Behaviour {
            response_iss: Param::Wrong,
            ..Behaviour::default()
        },
        Shown::LoginFailed,
        "wrong_issuer",
    )
    .await;
}

/// Discovery promises `iss` in every authorization response (RFC 9207); this one has none.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_remove_authorization_response_iss() {
    refused(
        Behaviour {
            response_iss: Param::Missing,
            advertise_iss: true,
            ..Behaviour::default()
        },
        Shown::LoginFailed,
        "missing_issuer",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_ensure_authorization_response_with_invalid_state_fails() {
    refused_before_the_code_is_redeemed(
        Behaviour {
            response_state: Param::Wrong,
            ..Behaviour::default()
        },
        "state_mismatch",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fapi2_ensure_authorization_response_with_invalid_missing_state_fails() {
    refused_before_the_code_is_redeemed(
        Behaviour {
            response_state: Param::Missing,
            ..Behaviour::default()
        },
        "missing_state",
    )
    .await;
}

/// A code that already logged someone in is put into another browser's login (code
/// injection): the provider refuses it a second time and the second login fails.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn code_replay_second_login_fails() {
    let world = hostile_world(Behaviour::default()).await;
    let mut first = world.browser();
    let callback = world.to_callback(&mut first).await;
    let page = first.navigate(&callback).await;
    world.assert_logged_in(&mut first, &page).await;
    let used_code = query(&callback, "code");

    let mut second = world.browser();
    let own = url::Url::parse(&world.to_callback(&mut second).await).expect("url");
    let mut injected = own.clone();
    injected.query_pairs_mut().clear().extend_pairs(
        own.query_pairs()
            .map(|(k, v)| {
                let v = if k == "code" {
                    used_code.clone()
                } else {
                    v.into_owned()
                };
                (k.into_owned(), v)
            })
            .collect::<Vec<_>>(),
    );
    let page = second.navigate(injected.as_str()).await;
    world
        .assert_refused(&mut second, &page, Shown::LoginFailed, "code_refused")
        .await;
    assert_eq!(world.op.requested("/token"), 2);
}

fn query(url: &str, name: &str) -> String {
    url::Url::parse(url)
        .expect("url")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| panic!("no {name} in {url}"))
}

/// The control for the refusals: only an outage (here a 503 page from the token endpoint) says
/// "Rekono is not available", and it too sets no session.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_outage_of_the_token_endpoint_is_an_outage() {
    let world = hostile_world(Behaviour {
        token_status: Some(503),
        ..Behaviour::default()
    })
    .await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    assert_eq!(page.status, 503, "{}", page.body);
    assert!(
        page.body.contains("Rekono trenutno ni dosegljiv"),
        "{}",
        page.body
    );
    assert!(browser
        .cookie(prehod_test_support::login::SESSION)
        .is_none());
    world.expect_denial("rekono_unavailable").await;
    assert_eq!(world.denials("invalid_id_token"), 0.0);
}

// --- back-channel logout --------------------------------------------------------------------

/// A logged-in browser and the provider's `sid` of its session.
async fn logged_in() -> (HostileWorld, Browser, String) {
    let world = hostile_world(Behaviour::default()).await;
    let mut browser = world.browser();
    let page = world.login(&mut browser).await;
    world.assert_logged_in(&mut browser, &page).await;
    let sid = world.op.last_sid().expect("the ID token had a sid");
    (world, browser, sid)
}

/// A logout token signed as `signing` with these claims changed must get 400 and end nothing.
async fn logout_refused(signing: Signing, edits: &[(&'static str, Option<Value>)]) {
    let (world, mut browser, sid) = logged_in().await;
    let token = world.op.logout_token(signing, Some(&sid), edits);
    assert_eq!(world.backchannel_logout(&token).await, 400);
    let portal = browser.api(&world.portal_url("bips", "/")).await;
    assert_eq!(portal.status, 200, "the session lives on: {}", portal.body);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout() {
    let (world, mut browser, sid) = logged_in().await;
    let token = world.op.logout_token(Signing::Es256, Some(&sid), &[]);
    assert_eq!(world.backchannel_logout(&token).await, 200);
    assert_eq!(
        browser.api(&world.portal_url("bips", "/")).await.status,
        401,
        "the session ended"
    );
}

/// By `sub` alone (no `sid`): every session of the subject ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_by_sub() {
    let (world, mut browser, _) = logged_in().await;
    let token = world.op.logout_token(Signing::Rs256, None, &[]);
    assert_eq!(world.backchannel_logout(&token).await, 200);
    assert_eq!(
        browser.api(&world.portal_url("bips", "/")).await.status,
        401
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_with_nonce() {
    logout_refused(Signing::Es256, &[("nonce", Some(json!("n-0S6_WzA2Mj")))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_no_event() {
    logout_refused(Signing::Es256, &[("events", None)]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_wrong_event() {
    logout_refused(
        Signing::Es256,
        &[(
            "events",
            Some(json!({"http://schemas.openid.net/event/some-other-event": {}})),
        )],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_wrong_aud() {
    logout_refused(Signing::Es256, &[("aud", Some(json!("another-client")))]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_wrong_issuer() {
    logout_refused(
        Signing::Es256,
        &[("iss", Some(json!("https://evil.example")))],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_alg_none() {
    logout_refused(Signing::None, &[]).await;
}

/// HS256 keyed with the provider's RSA public key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rp_backchannel_rpinitlogout_lt_wrong_alg() {
    logout_refused(Signing::Hs256WithPublicKey, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_token_bad_signature() {
    logout_refused(Signing::BadSigEs256, &[]).await;
    logout_refused(Signing::BadSigRs256, &[]).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_token_without_sid_or_sub() {
    let (world, mut browser, _) = logged_in().await;
    let token = world
        .op
        .logout_token(Signing::Es256, None, &[("sub", None)]);
    assert_eq!(world.backchannel_logout(&token).await, 400);
    assert_eq!(
        browser.api(&world.portal_url("bips", "/")).await.status,
        200
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_token_expired() {
    logout_refused(
        Signing::Es256,
        &[
            ("iat", Some(json!(now() - 3600))),
            ("exp", Some(json!(now() - 3000))),
        ],
    )
    .await;
}

/// The same `jti` twice: the second is refused (here for a `sid` of no live session, so the
/// first ends nothing either and the session shows the refusal ended nothing).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backchannel_logout_token_jti_replayed() {
    let (world, mut browser, _) = logged_in().await;
    let token = world
        .op
        .logout_token(Signing::Es256, Some("sid-of-nobody"), &[]);
    assert_eq!(world.backchannel_logout(&token).await, 200);
    assert_eq!(world.backchannel_logout(&token).await, 400);
    assert_eq!(
        browser.api(&world.portal_url("bips", "/")).await.status,
        200
    );
}
