//! The Rekono simulator driven as a relying party would: the `openidconnect` crate over real
//! HTTPS, for each second factor, and every refusal the issue lists.

use std::collections::HashMap;
use std::time::Duration;

use openidconnect::{AuthorizationCode, OAuth2TokenResponse, TokenResponse};
use prehod_test_support::rekono::*;
use prehod_test_support::Pki;

const BASE: &str = "/openid-connect-server-webapp";

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn totp(secret_base32: &str, at: u64) -> String {
    let secret = prehod_rekono_sim::totp::base32_decode(secret_base32).expect("base32");
    prehod_rekono_sim::totp::totp(&secret, at)
}

/// Opens the authorization URL and logs in with e-mail and password; returns the chooser page.
async fn password_step(
    rekono: &Rekono,
    browser: &mut Browser,
    url: &str,
    account: (&str, &str),
) -> Page {
    let login = browser.get(url).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(
        login.body.contains("Prijavljate se v storitev")
            && login.body.contains("Bankart Varni Spletni Prehod")
    );
    let (tx, csrf) = (login.hidden("tx"), login.hidden("csrf"));
    let after = browser
        .post(
            &format!("{}{BASE}/login", rekono.public_url()),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", account.0),
                ("password", account.1),
            ],
        )
        .await;
    match after.location.as_deref() {
        Some(l) if l.starts_with(BASE) => browser.get(&format!("{}{l}", rekono.public_url())).await,
        _ => after,
    }
}

/// Exchanges the code in `page`'s redirect and verifies the ID token; returns (acr, amr, claims).
async fn finish(
    rp: &Rp,
    attempt: Attempt,
    page: &Page,
) -> (String, Vec<String>, serde_json::Value) {
    let params = page.redirect_params();
    assert!(
        page.location
            .as_deref()
            .is_some_and(|l| l.starts_with(RP_REDIRECT)),
        "{:?}",
        page.location
    );
    assert_eq!(params.get("state"), Some(attempt.state.secret()));
    assert!(params.contains_key("iss"), "RFC 9207 iss in the response");
    let code = params
        .get("code")
        .unwrap_or_else(|| panic!("no code: {params:?}"))
        .clone();
    let token = rp
        .client
        .exchange_code(AuthorizationCode::new(code))
        .expect("token endpoint")
        .set_pkce_verifier(attempt.verifier)
        .request_async(&rp.http)
        .await
        .expect("token response");
    let id_token = token.id_token().expect("id_token");
    let claims = id_token
        .claims(&rp.verifier(), &attempt.nonce)
        .expect("ID token verifies with the JWKS");
    let acr = claims
        .auth_context_ref()
        .map(|a| a.to_string())
        .expect("acr");
    let amr: Vec<String> = claims
        .auth_method_refs()
        .map(|v| v.iter().map(|a| a.to_string()).collect())
        .expect("amr");
    let info: openidconnect::core::CoreUserInfoClaims = rp
        .client
        .user_info(token.access_token().clone(), None)
        .expect("userinfo endpoint")
        .request_async(&rp.http)
        .await
        .expect("userinfo");
    assert_eq!(info.subject(), claims.subject());
    let raw: serde_json::Value = serde_json::from_str(
        &String::from_utf8(base64_decode(
            id_token.to_string().split('.').nth(1).expect("payload"),
        ))
        .expect("utf8"),
    )
    .expect("claims json");
    assert_eq!(
        info.email().map(|e| e.to_string()),
        raw["email"].as_str().map(str::to_owned)
    );
    (acr, amr, raw)
}

fn base64_decode(s: &str) -> Vec<u8> {
    use base64::Engine;
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(s)
        .expect("base64url")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sms_factor_gives_acr_of_the_account_and_amr_sms() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let attempt = rp.authorize(None);
    let mut browser = rekono.browser();
    let chooser = password_step(&rekono, &mut browser, &attempt.url.clone(), NIZKA).await;
    assert!(chooser.body.contains("Izberite način prijave"));
    assert!(chooser.body.contains("Pošlji SMS"));
    assert!(
        !chooser.body.contains("OnePass prijava"),
        "a low account is offered SMS only"
    );
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let sms_page = browser
        .post(
            &format!("{}{BASE}/factor/sms", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(sms_page.body.contains("****222"), "the masked phone number");
    let outbox: serde_json::Value = rekono
        .http()
        .get(format!("{}/dev/outbox", rekono.public_url()))
        .send()
        .await
        .expect("outbox")
        .json()
        .await
        .expect("json");
    let code = outbox[0]["code"].as_str().expect("code").to_owned();
    assert_eq!(outbox[0]["to"], "+38640111222");
    let wrong = browser
        .post(
            &format!("{}{BASE}/factor/sms/verify", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf), ("code", "000000")],
        )
        .await;
    assert!(
        wrong.body.contains("Preostali poskusi: 2"),
        "{}",
        wrong.body
    );
    let done = browser
        .post(
            &format!("{}{BASE}/factor/sms/verify", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf), ("code", &code)],
        )
        .await;
    let (acr, amr, claims) = finish(&rp, attempt, &done).await;
    assert_eq!(acr, "10");
    assert_eq!(amr, ["pwd", "sms"]);
    assert_eq!(claims["email"], NIZKA.0);
    assert!(claims["sid"].is_string() && claims["auth_time"].is_u64());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onepass_code_gives_amr_otp_and_refuses_codes_outside_the_window() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let attempt = rp.authorize(Some("20"));
    let mut browser = rekono.browser();
    let chooser = password_step(&rekono, &mut browser, &attempt.url.clone(), SREDNJA).await;
    for offered in ["Pošlji SMS", "Enkratno geslo", "OnePass prijava"] {
        assert!(chooser.body.contains(offered), "{offered}");
    }
    assert!(
        !chooser.body.contains("Digitalno potrdilo"),
        "certificates are for level 30"
    );
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let page = browser
        .post(
            &format!("{}{BASE}/factor/otp", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(page.body.contains("Rekono OnePass"));
    let stale = totp(SREDNJA_TOTP, now() - 120);
    let refused = browser
        .post(
            &format!("{}{BASE}/factor/otp/verify", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf), ("code", &stale)],
        )
        .await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains("Napačno enkratno geslo"),
        "a code two steps old is refused"
    );
    let done = browser
        .post(
            &format!("{}{BASE}/factor/otp/verify", rekono.public_url()),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("code", &totp(SREDNJA_TOTP, now())),
            ],
        )
        .await;
    let (acr, amr, _) = finish(&rp, attempt, &done).await;
    assert_eq!(acr, "20");
    assert_eq!(amr, ["pwd", "otp"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn onepass_push_approved_logs_in_and_rejected_returns_to_the_chooser() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let attempt = rp.authorize(None);
    let mut browser = rekono.browser();
    let chooser = password_step(&rekono, &mut browser, &attempt.url.clone(), SREDNJA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let base = rekono.public_url();
    let dev = rekono.http();

    // First a rejected push…
    let waiting = browser
        .post(
            &format!("{base}{BASE}/factor/push"),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(
        waiting.body.contains("Potrdite obvestilo")
            && waiting.body.contains("http-equiv=\"refresh\"")
    );
    let pending: serde_json::Value = dev
        .get(format!("{base}/dev/push"))
        .send()
        .await
        .expect("push list")
        .json()
        .await
        .expect("json");
    let id = pending[0]["id"].as_str().expect("push id").to_owned();
    assert_eq!(pending[0]["email"], SREDNJA.0);
    let still = browser
        .get(&format!("{base}{BASE}/factor/push/wait?tx={tx}"))
        .await;
    assert!(still.body.contains("Potrdite obvestilo"), "still waiting");
    assert_eq!(
        dev.post(format!("{base}/dev/push/{id}/reject"))
            .send()
            .await
            .expect("reject")
            .status(),
        200
    );
    let back = browser
        .get(&format!("{base}{BASE}/factor/push/wait?tx={tx}"))
        .await;
    assert!(
        back.body.contains("Obvestilo je bilo zavrnjeno")
            && back.body.contains("Izberite način prijave")
    );

    // …then an approved one.
    browser
        .post(
            &format!("{base}{BASE}/factor/push"),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    let pending: serde_json::Value = dev
        .get(format!("{base}/dev/push"))
        .send()
        .await
        .expect("push list")
        .json()
        .await
        .expect("json");
    let id = pending[0]["id"].as_str().expect("push id").to_owned();
    let status: serde_json::Value = browser
        .http
        .get(format!("{base}{BASE}/factor/push/status?tx={tx}"))
        .header(
            "cookie",
            format!("rekono_browser={}", browser.cookies["rekono_browser"]),
        )
        .send()
        .await
        .expect("status")
        .json()
        .await
        .expect("json");
    assert_eq!(status["status"], "pending");
    assert_eq!(
        dev.post(format!("{base}/dev/push/{id}/approve"))
            .send()
            .await
            .expect("approve")
            .status(),
        200
    );
    let done = browser
        .get(&format!("{base}{BASE}/factor/push/wait?tx={tx}"))
        .await;
    let (acr, amr, _) = finish(&rp, attempt, &done).await;
    assert_eq!(acr, "20");
    assert_eq!(amr, ["pwd", "mfa"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn linked_certificate_logs_in_and_an_unlinked_one_is_refused() {
    let (pki, rekono, rp) = start_with_rp(None).await;
    let mtls_base = rekono.running.sim.config.public_mtls_url.clone();

    // A certificate the account has not linked (expired's key pair, same CA) is refused.
    let attempt = rp.authorize(Some("30"));
    let mut browser = rekono.browser_with_certificate(&pki, "revoked");
    let chooser = password_step(&rekono, &mut browser, &attempt.url.clone(), VISOKA).await;
    assert!(chooser.body.contains("Digitalno potrdilo") && chooser.body.contains("POSTArCA G2"));
    let tx = chooser.hidden("tx");
    let refused = browser
        .get(&format!("{mtls_base}{BASE}/factor/cert?tx={tx}"))
        .await;
    assert_eq!(refused.status, 403);
    assert!(
        refused.body.contains("ni povezano z vašim računom"),
        "{}",
        refused.body
    );

    // The linked one logs in.
    let attempt = rp.authorize(Some("30"));
    let mut browser = rekono.browser_with_certificate(&pki, "valid");
    let chooser = password_step(&rekono, &mut browser, &attempt.url.clone(), VISOKA).await;
    let tx = chooser.hidden("tx");
    let done = browser
        .get(&format!("{mtls_base}{BASE}/factor/cert?tx={tx}"))
        .await;
    let (acr, amr, claims) = finish(&rp, attempt, &done).await;
    assert_eq!(acr, "30");
    assert_eq!(amr, ["pwd", "hwk"]);
    assert_eq!(claims["name"], "Vid Visoki");
}

/// Logs `SREDNJA` in with a TOTP code; returns the redirect page carrying the code.
async fn quick_login(rekono: &Rekono, browser: &mut Browser, attempt: &Attempt) -> Page {
    let chooser = password_step(rekono, browser, &attempt.url.clone(), SREDNJA).await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    browser
        .post(
            &format!("{}{BASE}/factor/otp/verify", rekono.public_url()),
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("code", &totp(SREDNJA_TOTP, now())),
            ],
        )
        .await
}

async fn raw_token(rekono: &Rekono, form: &[(&str, &str)]) -> (u16, serde_json::Value) {
    let resp = rekono
        .http()
        .post(format!("{}/token", rekono.issuer()))
        .basic_auth(RP_ID, Some(RP_SECRET))
        .form(form)
        .send()
        .await
        .expect("token");
    (resp.status().as_u16(), resp.json().await.expect("json"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_code_replay_wrong_verifier_wrong_redirect_and_plain_pkce() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let mut browser = rekono.browser();

    let attempt = rp.authorize(None);
    let page = quick_login(&rekono, &mut browser, &attempt).await;
    let code = page.redirect_params()["code"].clone();
    let verifier = attempt.verifier.secret().clone();
    // Wrong PKCE verifier: refused (and the code is spent).
    let (status, body) = raw_token(
        &rekono,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", RP_REDIRECT),
            ("code_verifier", &"x".repeat(43)),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );

    // A fresh login (SSO: no password again), then wrong redirect_uri, then a good exchange,
    // then the replay.
    let attempt = rp.authorize(None);
    let page = browser.get(&attempt.url).await;
    let code = page.redirect_params()["code"].clone();
    let verifier2 = attempt.verifier.secret().clone();
    let (status, body) = raw_token(
        &rekono,
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("redirect_uri", "https://evil.example/cb"),
            ("code_verifier", &verifier2),
        ],
    )
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    let attempt = rp.authorize(None);
    let page = browser.get(&attempt.url).await;
    let code = page.redirect_params()["code"].clone();
    let verifier3 = attempt.verifier.secret().clone();
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP_REDIRECT),
        ("code_verifier", verifier3.as_str()),
    ];
    let (status, body) = raw_token(&rekono, &form).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"]
        .as_str()
        .expect("access token")
        .to_owned();
    let userinfo = |token: String| {
        let http = rekono.http();
        let url = format!("{}/userinfo", rekono.issuer());
        async move {
            http.get(url)
                .bearer_auth(token)
                .send()
                .await
                .expect("userinfo")
                .status()
                .as_u16()
        }
    };
    assert_eq!(userinfo(access.clone()).await, 200);
    let (status, body) = raw_token(&rekono, &form).await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant")),
        "code replay"
    );
    assert_eq!(
        userinfo(access).await,
        401,
        "a replayed code revokes its tokens"
    );
    let _ = verifier;

    // Wrong client secret.
    let resp = rekono
        .http()
        .post(format!("{}/token", rekono.issuer()))
        .basic_auth(RP_ID, Some("wrong"))
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 401);

    // Unregistered redirect_uri at authorize: an error page, never a redirect.
    let evil = attempt.url.replace(
        &url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>(),
        "https%3A%2F%2Fevil.example%2Fcb",
    );
    let page = rekono.browser().get(&evil).await;
    assert_eq!(page.status, 400);
    assert!(page.location.is_none());

    // `plain` PKCE is refused back to the client.
    let plain = attempt
        .url
        .replace("code_challenge_method=S256", "code_challenge_method=plain");
    let page = rekono.browser().get(&plain).await;
    assert_eq!(page.redirect_params()["error"], "invalid_request");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_level_above_the_accounts_is_an_error_not_a_lower_level() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let attempt = rp.authorize(Some("30"));
    let mut browser = rekono.browser();
    let page = password_step(&rekono, &mut browser, &attempt.url.clone(), SREDNJA).await;
    let params = page.redirect_params();
    assert_eq!(params["error"], "unmet_authentication_requirements");
    assert_eq!(params.get("state"), Some(attempt.state.secret()));
    assert!(!params.contains_key("code"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn password_attempts_are_limited_and_forms_need_their_csrf_token() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let attempt = rp.authorize(None);
    let mut browser = rekono.browser();
    let login = browser.get(&attempt.url).await;
    let (tx, csrf) = (login.hidden("tx"), login.hidden("csrf"));
    let url = format!("{}{BASE}/login", rekono.public_url());
    let forged = browser
        .post(
            &url,
            &[
                ("tx", &tx),
                ("csrf", "forged"),
                ("email", SREDNJA.0),
                ("password", SREDNJA.1),
            ],
        )
        .await;
    assert_eq!(forged.status, 403, "a wrong CSRF token is refused");
    let mut other = rekono.browser();
    let stolen = other
        .post(
            &url,
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", SREDNJA.0),
                ("password", SREDNJA.1),
            ],
        )
        .await;
    assert_eq!(stolen.status, 403, "a transaction is bound to its browser");
    // Also from a browser that has a browser id of its own (it opened a login of its own):
    // the id must be this transaction's, not just any.
    let own = other.get(&rp.authorize(None).url).await;
    assert_eq!(own.status, 200, "{}", own.body);
    assert!(other.cookies.contains_key("rekono_browser"));
    let stolen = other
        .post(
            &url,
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", SREDNJA.0),
                ("password", SREDNJA.1),
            ],
        )
        .await;
    assert_eq!(
        stolen.status, 403,
        "a transaction is bound to its own browser id"
    );
    for left in (1..=4).rev() {
        let page = browser
            .post(
                &url,
                &[
                    ("tx", &tx),
                    ("csrf", &csrf),
                    ("email", SREDNJA.0),
                    ("password", "wrong"),
                ],
            )
            .await;
        assert!(
            page.body.contains(&format!("Preostali poskusi: {left}")),
            "{}",
            page.body
        );
    }
    let locked = browser
        .post(
            &url,
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", SREDNJA.0),
                ("password", "wrong"),
            ],
        )
        .await;
    assert_eq!(locked.redirect_params()["error"], "access_denied");
    let after = browser
        .post(
            &url,
            &[
                ("tx", &tx),
                ("csrf", &csrf),
                ("email", SREDNJA.0),
                ("password", SREDNJA.1),
            ],
        )
        .await;
    assert_eq!(after.status, 400, "the transaction is over");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn back_channel_logout_token_reaches_the_relying_party_and_verifies() {
    // The relying party's back-channel endpoint: plain HTTP on loopback, recording the body.
    let (addr, mut rx) = prehod_test_support::servers::body_recorder().await;
    let (_pki, rekono, rp) = start_with_rp(Some(format!("http://{addr}/backchannel"))).await;
    let mut browser = rekono.browser();
    let attempt = rp.authorize(None);
    let page = quick_login(&rekono, &mut browser, &attempt).await;
    let (_, _, claims) = finish(&rp, attempt, &page).await;
    let sid = claims["sid"].as_str().expect("sid").to_owned();

    // RP-initiated logout with an id_token_hint and a registered post-logout URI.
    let hint = {
        let attempt = rp.authorize(None);
        let page = browser.get(&attempt.url).await;
        let code = page.redirect_params()["code"].clone();
        let token = rp
            .client
            .exchange_code(AuthorizationCode::new(code))
            .expect("endpoint")
            .set_pkce_verifier(attempt.verifier)
            .request_async(&rp.http)
            .await
            .expect("token");
        token.id_token().expect("id token").to_string()
    };
    let bad = browser.get(&format!("{}/endsession?id_token_hint={hint}&post_logout_redirect_uri=https%3A%2F%2Fevil.example%2F", rekono.issuer())).await;
    assert_eq!(
        bad.status, 400,
        "an unregistered post_logout_redirect_uri is refused"
    );
    let out = browser
        .get(&format!(
            "{}/endsession?id_token_hint={hint}&post_logout_redirect_uri={}&state=bye",
            rekono.issuer(),
            url::form_urlencoded::byte_serialize(RP_POST_LOGOUT.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(
        out.location.as_deref(),
        Some(format!("{RP_POST_LOGOUT}?state=bye").as_str())
    );

    let body = tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("a logout token arrives")
        .expect("body");
    let form: HashMap<String, String> = url::form_urlencoded::parse(body.as_bytes())
        .into_owned()
        .collect();
    let token = &form["logout_token"];
    let header = jsonwebtoken::decode_header(token).expect("header");
    assert_eq!(header.typ.as_deref(), Some("logout+jwt"));
    let jwks: jsonwebtoken::jwk::JwkSet = rekono
        .http()
        .get(format!("{}/jwk", rekono.issuer()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let jwk = jwks
        .find(header.kid.as_deref().expect("kid"))
        .expect("key in JWKS");
    let mut validation = jsonwebtoken::Validation::new(header.alg);
    validation.set_issuer(&[rekono.issuer()]);
    validation.set_audience(&[RP_ID]);
    validation.set_required_spec_claims(&["iss", "aud", "iat", "jti"]);
    let verified = jsonwebtoken::decode::<serde_json::Value>(
        token,
        &jsonwebtoken::DecodingKey::from_jwk(jwk).expect("key"),
        &validation,
    )
    .expect("logout token verifies");
    let c = verified.claims;
    assert_eq!(c["sid"], sid.as_str());
    assert_eq!(c["sub"], claims["sub"]);
    assert!(c["jti"].is_string() && c["iat"].is_u64());
    assert!(c["events"]["http://schemas.openid.net/event/backchannel-logout"].is_object());
    assert!(c.get("nonce").is_none(), "a logout token never has a nonce");

    // The SSO session is over: the next authorize asks for the password again.
    let page = browser.get(&rp.authorize(None).url).await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("name=\"password\""));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn key_rotation_signs_with_the_new_kid_and_publishes_both() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let mut browser = rekono.browser();
    let kid_of = |token: &str| {
        jsonwebtoken::decode_header(token)
            .expect("header")
            .kid
            .expect("kid")
    };

    let attempt = rp.authorize(None);
    let page = quick_login(&rekono, &mut browser, &attempt).await;
    let code = page.redirect_params()["code"].clone();
    let token = rp
        .client
        .exchange_code(AuthorizationCode::new(code))
        .expect("endpoint")
        .set_pkce_verifier(attempt.verifier)
        .request_async(&rp.http)
        .await
        .expect("token");
    let old_kid = kid_of(&token.id_token().expect("id").to_string());

    let rotated: serde_json::Value = rekono
        .http()
        .post(format!("{}/dev/keys/rotate", rekono.public_url()))
        .send()
        .await
        .expect("rotate")
        .json()
        .await
        .expect("json");
    let new_kid = rotated["kid"].as_str().expect("kid").to_owned();
    assert_ne!(new_kid, old_kid);
    let jwks: serde_json::Value = rekono
        .http()
        .get(format!("{}/jwk", rekono.issuer()))
        .send()
        .await
        .expect("jwks")
        .json()
        .await
        .expect("json");
    let kids: Vec<&str> = jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .filter_map(|k| k["kid"].as_str())
        .collect();
    assert!(
        kids.contains(&old_kid.as_str()) && kids.contains(&new_kid.as_str()),
        "{kids:?}"
    );

    // A relying party that discovers again verifies tokens signed with the new key.
    let rp = rekono.rp().await;
    let attempt = rp.authorize(None);
    let page = browser.get(&attempt.url).await;
    let (_, _, _) = {
        let code = page.redirect_params()["code"].clone();
        let token = rp
            .client
            .exchange_code(AuthorizationCode::new(code))
            .expect("endpoint")
            .set_pkce_verifier(attempt.verifier)
            .request_async(&rp.http)
            .await
            .expect("token");
        let id = token.id_token().expect("id");
        assert_eq!(kid_of(&id.to_string()), new_kid);
        id.claims(&rp.verifier(), &attempt.nonce)
            .expect("verifies with the new key");
        ((), (), ())
    };
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refuses_to_bind_anything_but_loopback() {
    let pki = Pki::new();
    let mut c = sim_config(&pki, Vec::new(), None);
    c.listen = "0.0.0.0:0".parse().expect("addr");
    let err = prehod_rekono_sim::spawn(c).await.err().expect("refused");
    assert!(err.to_string().contains("binds loopback only"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prompt_login_and_max_age_force_a_new_login_and_cancel_returns_to_the_chooser() {
    let (_pki, rekono, rp) = start_with_rp(None).await;
    let mut browser = rekono.browser();
    let attempt = rp.authorize(None);
    let page = quick_login(&rekono, &mut browser, &attempt).await;
    assert!(page.redirect_params().contains_key("code"));
    // Single sign-on: no login screen…
    let sso = browser.get(&rp.authorize(None).url).await;
    assert!(sso.redirect_params().contains_key("code"));
    // …unless the relying party asks for a fresh one.
    for extra in ["&prompt=login", "&max_age=0"] {
        tokio::time::sleep(Duration::from_millis(1100)).await;
        let page = browser
            .get(&format!("{}{extra}", rp.authorize(None).url))
            .await;
        assert_eq!(page.status, 200, "{extra}");
        assert!(
            page.body.contains("name=\"password\""),
            "{extra} shows the login form"
        );
    }
    // Cancel on the SMS screen goes back to the chooser.
    let chooser = password_step(
        &rekono,
        &mut browser,
        &format!("{}&prompt=login", rp.authorize(None).url),
        SREDNJA,
    )
    .await;
    let (tx, csrf) = (chooser.hidden("tx"), chooser.hidden("csrf"));
    let sms = browser
        .post(
            &format!("{}{BASE}/factor/sms", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(sms.body.contains("Preklic"));
    let back = browser
        .post(
            &format!("{}{BASE}/cancel", rekono.public_url()),
            &[("tx", &tx), ("csrf", &csrf)],
        )
        .await;
    assert!(back.body.contains("Izberite način prijave"));
    // The language switch stays inside the simulator and turns the pages English.
    let here = format!("{BASE}/choose?tx={tx}");
    let switch = browser
        .get(&format!(
            "{}{BASE}/lang?to=en&back={}",
            rekono.public_url(),
            url::form_urlencoded::byte_serialize(here.as_bytes()).collect::<String>()
        ))
        .await;
    assert_eq!(switch.location.as_deref(), Some(here.as_str()));
    let english = browser.get(&format!("{}{here}", rekono.public_url())).await;
    assert!(
        english.body.contains("Choose how to log in")
            && english.body.contains("You are logging in to the service")
    );
    let open = browser
        .get(&format!(
            "{}{BASE}/lang?to=en&back=https%3A%2F%2Fevil.example%2F",
            rekono.public_url()
        ))
        .await;
    assert_eq!(
        open.location.as_deref(),
        Some(BASE),
        "no open redirect through the language switch"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn private_key_jwt_client_authentication_and_assertion_replay() {
    use openssl::ec::{EcGroup, EcKey};
    use openssl::nid::Nid;
    use openssl::pkey::PKey;
    let pki = Pki::new();
    // A second relying party that authenticates with a signed JWT instead of a secret.
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1).expect("curve");
    let key = PKey::from_ec_key(EcKey::generate(&group).expect("key")).expect("pkey");
    std::fs::write(
        pki.path("rp-jwt.pub.pem"),
        key.public_key_to_pem().expect("pem"),
    )
    .expect("write");
    let rekono = start(&pki, None).await;
    let raw = prehod_rekono_sim::config::RawClient {
        client_id: "jwt-rp".into(),
        name: "Bankart Varni Spletni Prehod (private_key_jwt)".into(),
        secret: None,
        jwt_keys: vec![pki.path("rp-jwt.pub.pem").display().to_string()],
        redirect_uris: vec![RP_REDIRECT.into()],
        post_logout_redirect_uris: vec![],
        backchannel_logout_uri: None,
        id_token_alg: Some("RS256".into()),
    };
    // Registered after start through the same loader, by restarting with both clients.
    drop(rekono);
    let config = sim_config(
        &pki,
        vec![prehod_rekono_sim::config::client(&raw, pki.dir.path()).expect("client")],
        None,
    );
    let running = prehod_rekono_sim::spawn(config).await.expect("start");
    let rekono = Rekono {
        running,
        pki_ca: std::fs::read(pki.path("ca.crt")).expect("ca"),
    };
    let mut browser = rekono.browser();
    let verifier = "v".repeat(50);
    let challenge = {
        use base64::Engine;
        use sha2::Digest;
        base64::engine::general_purpose::URL_SAFE_NO_PAD
            .encode(sha2::Sha256::digest(verifier.as_bytes()))
    };
    let url = format!(
        "{}/authorize?response_type=code&client_id=jwt-rp&redirect_uri={}&scope=openid&state=s1&nonce=n1&code_challenge={challenge}&code_challenge_method=S256",
        rekono.issuer(),
        url::form_urlencoded::byte_serialize(RP_REDIRECT.as_bytes()).collect::<String>()
    );
    let attempt = Attempt {
        url,
        state: openidconnect::CsrfToken::new("s1".into()),
        nonce: openidconnect::Nonce::new("n1".into()),
        verifier: openidconnect::PkceCodeVerifier::new(verifier.clone()),
    };
    let page = quick_login(&rekono, &mut browser, &attempt).await;
    let code = page.redirect_params()["code"].clone();
    let token_endpoint = format!("{}/token", rekono.issuer());
    let assertion = {
        let claims = serde_json::json!({"iss": "jwt-rp", "sub": "jwt-rp", "aud": token_endpoint, "exp": now() + 60, "iat": now(), "jti": "assertion-1"});
        let pem = key.private_key_to_pem_pkcs8().expect("pem");
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("key"),
        )
        .expect("sign")
    };
    let form = [
        ("grant_type", "authorization_code"),
        ("code", code.as_str()),
        ("redirect_uri", RP_REDIRECT),
        ("code_verifier", verifier.as_str()),
        (
            "client_assertion_type",
            "urn:ietf:params:oauth:client-assertion-type:jwt-bearer",
        ),
        ("client_assertion", assertion.as_str()),
    ];
    let resp = rekono
        .http()
        .post(&token_endpoint)
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.expect("json");
    let id_token = body["id_token"].as_str().expect("id token");
    assert_eq!(
        jsonwebtoken::decode_header(id_token).expect("header").alg,
        jsonwebtoken::Algorithm::RS256,
        "this client asked for RS256"
    );
    let replay = rekono
        .http()
        .post(&token_endpoint)
        .form(&form)
        .send()
        .await
        .expect("token");
    assert_eq!(
        replay.status(),
        401,
        "a client assertion's jti is single-use"
    );
}
