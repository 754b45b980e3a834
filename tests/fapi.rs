//! The FAPI 2.0 Security Profile (`oidc.profile: fapi2`) end to end: the real gateway and the
//! Rekono simulator in its FAPI 2.0 mode, over real TLS. A login goes by a pushed
//! authorization request (RFC 9126) with `private_key_jwt`, its access token DPoP-bound (RFC
//! 9449) for the userinfo call; and each promise of the profile broken by the simulator is
//! refused by the gateway. Then the attacker's view of the provider's side: a replayed DPoP
//! proof, a `request_uri` used twice, a pushed request without client authentication.

use std::collections::BTreeSet;
use std::time::Duration;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use prehod_test_support::login::*;
use prehod_test_support::rekono::SREDNJA;
use prehod_test_support::{received_header, wait_for};
use sha2::{Digest, Sha256};

fn fapi_world(fapi: Fapi) -> Options {
    Options {
        fapi: Some(fapi),
        ..Options::default()
    }
}

fn keys_of(params: &[(String, String)]) -> BTreeSet<&str> {
    params.iter().map(|(k, _)| k.as_str()).collect()
}

fn param<'a>(params: &'a [(String, String)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The claims of a JWT, read without checking it (the simulator checked it).
fn claims_of(jwt: &str) -> serde_json::Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON")
}

/// Waits until the gateway's metrics count a denial for `reason`.
fn expect_denial(world: &World, reason: &str) {
    let line = format!("prehod_denials_total{{reason=\"{reason}\"}} 1");
    wait_for(&line, Duration::from_secs(5), || {
        world.gw.metrics().contains(&line)
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fapi2_login_goes_by_par_with_private_key_jwt_and_a_dpop_bound_userinfo_call() {
    for alg in ["PS256", "EdDSA"] {
        let world = world(fapi_world(Fapi {
            id_token_alg: Some(alg),
            userinfo: true,
            ..Fapi::default()
        }))
        .await;
        let sim = &world.sim.sim;
        let mut browser = Browser::new(&world);
        let login_page = browser.follow(&portal_url(&world, "bips", "/")).await;
        let to_rekono = browser.navigate(&rekono_link(&world, &login_page)).await;
        assert!(matches!(to_rekono.status, 302 | 303), "{}", to_rekono.body);
        let authorize = to_rekono.location.clone().expect("off to Rekono");

        // The request was pushed first, the client authenticated with private_key_jwt whose
        // audience is the issuer identifier; PKCE S256 and response_type=code.
        let pushed = sim.pushed_requests();
        assert_eq!(pushed.len(), 1, "{pushed:?}");
        let pushed = &pushed[0];
        assert_eq!(
            param(pushed, "client_assertion_type"),
            Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
        );
        let assertion = claims_of(param(pushed, "client_assertion").expect("assertion"));
        assert_eq!(
            assertion["aud"],
            serde_json::json!(sim.issuer()),
            "{assertion}"
        );
        assert_eq!(param(pushed, "response_type"), Some("code"));
        assert_eq!(param(pushed, "code_challenge_method"), Some("S256"));
        assert!(param(pushed, "client_secret").is_none());

        // The browser's authorization request carries only client_id and request_uri.
        let url = url::Url::parse(&authorize).expect("url");
        let query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        assert_eq!(
            keys_of(&query),
            BTreeSet::from(["client_id", "request_uri"]),
            "{authorize}"
        );
        let rekono = browser.follow(&authorize).await;
        let seen = sim.authorization_requests();
        assert_eq!(
            keys_of(seen.last().expect("one")),
            BTreeSet::from(["client_id", "request_uri"])
        );
        // In: the ID token signed with `alg`, the userinfo call made with the DPoP-bound
        // access token (the simulator answers a bound token only with a proof by its key).
        let callback = rekono_to_callback(&world, &mut browser, &rekono).await;
        assert!(callback.contains("iss="), "{callback}");
        let back = browser.follow(&callback).await;
        let page = browser.api(&back.url).await;
        assert_eq!(page.status, 200, "{alg}: {}", page.body);
        assert_eq!(received_header(&page.json(), "x-auth-email"), [SREDNJA.0]);
    }
}

/// The simulator breaks one promise of the profile after the gateway discovered it; the login
/// must be refused, with the reason counted.
async fn refused_after(world: &World, reason: &str) {
    let mut browser = Browser::new(world);
    let callback = callback_url(world, &mut browser, &portal_url(world, "bips", "/")).await;
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status, 400, "{reason}: {}", page.body);
    assert!(page.body.contains("Prijava ni uspela"), "{}", page.body);
    assert!(browser.cookie(SESSION).is_none(), "{reason}: no session");
    expect_denial(world, reason);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_rs256_id_token_and_a_userinfo_of_another_sub_are_refused() {
    let world = world(fapi_world(Fapi {
        userinfo: true,
        ..Fapi::default()
    }))
    .await;
    let sim = &world.sim.sim;
    // RS256 is a fine algorithm for OpenID Connect, and not one FAPI 2.0 allows.
    sim.misbehave(|m| m.sign_rs256 = true);
    refused_after(&world, "invalid_id_token").await;
    assert!(
        world
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains("RS256") || l.contains("RsaSsaPkcs1V15Sha256")),
        "the log names the algorithm"
    );
    sim.misbehave(|m| {
        m.sign_rs256 = false;
        m.userinfo_sub = Some("rekono-someone-else".into());
    });
    let mut browser = Browser::new(&world);
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(browser.cookie(SESSION).is_none(), "no session");
    wait_for("the userinfo refusal", Duration::from_secs(5), || {
        world
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains("userinfo's sub"))
    });
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_authorization_response_without_iss_is_refused_even_when_discovery_does_not_promise_it()
{
    // Discovery says authorization_response_iss_parameter_supported: false, which the default
    // profile takes as "no iss to expect"; FAPI 2.0 requires it in every response.
    let world = world(fapi_world(Fapi {
        misbehave: prehod_rekono_sim::Misbehave {
            omit_iss: true,
            ..Default::default()
        },
        ..Fapi::default()
    }))
    .await;
    let mut browser = Browser::new(&world);
    let callback = callback_url(&world, &mut browser, &portal_url(&world, "bips", "/")).await;
    assert!(!callback.contains("iss="), "{callback}");
    let page = browser.navigate(&callback).await;
    assert_eq!(page.status, 400, "{}", page.body);
    assert!(browser.cookie(SESSION).is_none());
    expect_denial(&world, "missing_issuer");
}

/// A provider whose discovery cannot serve the profile is never used: the gateway says why in
/// its log, a login gets the "Rekono unavailable" page, and nothing reaches the provider.
async fn never_used(misbehave: prehod_rekono_sim::Misbehave, logged: &str) {
    let world = world(fapi_world(Fapi {
        misbehave,
        refused_discovery: true,
        ..Fapi::default()
    }))
    .await;
    wait_for(logged, Duration::from_secs(10), || {
        world
            .gw
            .log_lines()
            .iter()
            .any(|l| l.contains("identity provider refused") && l.contains(logged))
    });
    let mut browser = Browser::new(&world);
    let login_page = browser.follow(&portal_url(&world, "bips", "/")).await;
    let start = browser.navigate(&rekono_link(&world, &login_page)).await;
    assert_eq!(start.status, 503, "{}", start.body);
    assert!(world.sim.sim.authorization_requests().is_empty());
    assert!(world.sim.sim.pushed_requests().is_empty());
    // Nor does the gateway say it is ready.
    let readyz = prehod_test_support::http_get(world.gw.admin, "/readyz");
    assert!(readyz.is_some_and(|(status, _)| status == 503));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_provider_without_a_par_endpoint_is_never_used() {
    never_used(
        prehod_rekono_sim::Misbehave {
            no_par_endpoint: true,
            ..Default::default()
        },
        "pushed_authorization_request_endpoint",
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_discovery_document_of_another_issuer_is_never_used() {
    never_used(
        prehod_rekono_sim::Misbehave {
            discovery_issuer: Some("https://rekono.localhost/evil".into()),
            ..Default::default()
        },
        "issuer",
    )
    .await;
}

/// The gateway's registration at the simulator, used by the test as the client itself: its
/// `private_key_jwt` key and a DPoP key of its own.
struct Client {
    issuer: String,
    key: jsonwebtoken::EncodingKey,
    dpop: jsonwebtoken::EncodingKey,
    dpop_jwk: jsonwebtoken::jwk::Jwk,
    http: reqwest::Client,
}

fn p256() -> openssl::pkey::PKey<openssl::pkey::Private> {
    let group =
        openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).expect("curve");
    openssl::pkey::PKey::from_ec_key(openssl::ec::EcKey::generate(&group).expect("key"))
        .expect("pkey")
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs()
}

fn random() -> String {
    let mut b = [0u8; 24];
    openssl::rand::rand_bytes(&mut b).expect("random");
    URL_SAFE_NO_PAD.encode(b)
}

impl Client {
    fn new(world: &World, browser: &Browser) -> Self {
        let pem = std::fs::read(world.pki.path("oidc-client.key")).expect("client key");
        let dpop = p256();
        let dpop_enc =
            jsonwebtoken::EncodingKey::from_ec_pem(&dpop.private_key_to_pem_pkcs8().expect("pem"))
                .expect("key");
        let dpop_jwk =
            jsonwebtoken::jwk::Jwk::from_encoding_key(&dpop_enc, jsonwebtoken::Algorithm::ES256)
                .expect("jwk");
        Self {
            issuer: world.sim.issuer(),
            key: jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("key"),
            dpop: dpop_enc,
            dpop_jwk,
            http: browser.http.clone(),
        }
    }

    fn assertion(&self, aud: &str) -> String {
        let t = now();
        let claims = serde_json::json!({"iss": CLIENT_ID, "sub": CLIENT_ID, "aud": aud,
            "iat": t, "exp": t + 60, "jti": random()});
        jsonwebtoken::encode(
            &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
            &claims,
            &self.key,
        )
        .expect("sign")
    }

    fn proof(&self, htm: &str, htu: &str, token: Option<&str>) -> String {
        let mut header = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256);
        header.typ = Some("dpop+jwt".into());
        header.jwk = Some(self.dpop_jwk.clone());
        let mut claims = serde_json::json!({"htm": htm, "htu": htu, "iat": now(), "jti": random()});
        if let Some(t) = token {
            claims["ath"] = URL_SAFE_NO_PAD.encode(Sha256::digest(t.as_bytes())).into();
        }
        jsonwebtoken::encode(&header, &claims, &self.dpop).expect("sign")
    }

    /// A pushed authorization request with `auth` as its client authentication fields;
    /// the answer's status and body.
    async fn par(
        &self,
        redirect_uri: &str,
        challenge: &str,
        auth: &[(&str, &str)],
    ) -> (u16, serde_json::Value) {
        let mut form = vec![
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri),
            ("scope", "openid"),
            ("state", "state-of-the-test-client"),
            ("code_challenge", challenge),
            ("code_challenge_method", "S256"),
        ];
        form.extend_from_slice(auth);
        let resp = self
            .http
            .post(format!("{}/par", self.issuer))
            .form(&form)
            .send()
            .await
            .expect("PAR");
        let status = resp.status().as_u16();
        (status, resp.json().await.unwrap_or_default())
    }
}

const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_attacker_cannot_push_unauthenticated_reuse_a_request_uri_or_replay_a_dpop_proof() {
    let world = world(fapi_world(Fapi::default())).await;
    let mut browser = Browser::new(&world);
    let client = Client::new(&world, &browser);
    let redirect_uri = login_url(&world, "/oidc/callback");
    let verifier = random() + &random();
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));

    // A pushed request without client authentication, with an assertion by another key, and
    // with one for the token endpoint rather than the issuer: each refused.
    let other = p256();
    let forged = jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::ES256),
        &claims_of(&client.assertion(&client.issuer)),
        &jsonwebtoken::EncodingKey::from_ec_pem(&other.private_key_to_pem_pkcs8().unwrap())
            .unwrap(),
    )
    .unwrap();
    let token_aud = client.assertion(&format!("{}/token", client.issuer));
    for auth in [
        vec![],
        vec![
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", forged.as_str()),
        ],
        vec![
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", token_aud.as_str()),
        ],
    ] {
        let (status, body) = client.par(&redirect_uri, &challenge, &auth).await;
        assert_eq!(status, 401, "{auth:?}: {body}");
        assert_eq!(body["error"], "invalid_client");
    }
    assert!(world.sim.sim.pushed_requests().is_empty());

    // A plain authorization request (not pushed) is refused in FAPI 2.0 mode.
    let plain = url::Url::parse_with_params(
        &format!("{}/authorize", client.issuer),
        &[
            ("client_id", CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect_uri.as_str()),
            ("scope", "openid"),
            ("code_challenge", challenge.as_str()),
            ("code_challenge_method", "S256"),
        ],
    )
    .unwrap();
    let page = browser.navigate(plain.as_str()).await;
    assert_eq!(page.status, 400, "{}", page.body);

    // A request_uri is good for one authorization request.
    let assertion = client.assertion(&client.issuer);
    let (status, body) = client
        .par(
            &redirect_uri,
            &challenge,
            &[
                ("client_assertion_type", JWT_BEARER),
                ("client_assertion", &assertion),
            ],
        )
        .await;
    assert_eq!(status, 201, "{body}");
    let request_uri = body["request_uri"].as_str().expect("request_uri");
    let authorize = url::Url::parse_with_params(
        &format!("{}/authorize", client.issuer),
        &[("client_id", CLIENT_ID), ("request_uri", request_uri)],
    )
    .unwrap();
    let rekono = browser.navigate(authorize.as_str()).await;
    assert_eq!(rekono.status, 200, "{}", rekono.body);
    let mut other_browser = Browser::new(&world);
    let again = other_browser.navigate(authorize.as_str()).await;
    assert_eq!(again.status, 400, "a used request_uri: {}", again.body);
    assert!(again.body.contains("request_uri"), "{}", again.body);

    // The code, redeemed with a DPoP proof: the access token is bound to the test's key.
    let callback = rekono_to_callback(&world, &mut browser, &rekono).await;
    let code = url::Url::parse(&callback)
        .unwrap()
        .query_pairs()
        .find(|(k, _)| k == "code")
        .map(|(_, v)| v.into_owned())
        .expect("code");
    let token_endpoint = format!("{}/token", client.issuer);
    let assertion = client.assertion(&client.issuer);
    let token: serde_json::Value = client
        .http
        .post(&token_endpoint)
        .header("DPoP", client.proof("POST", &token_endpoint, None))
        .form(&[
            ("grant_type", "authorization_code"),
            ("code", code.as_str()),
            ("redirect_uri", redirect_uri.as_str()),
            ("code_verifier", verifier.as_str()),
            ("client_id", CLIENT_ID),
            ("client_assertion_type", JWT_BEARER),
            ("client_assertion", assertion.as_str()),
        ])
        .send()
        .await
        .expect("token")
        .json()
        .await
        .expect("JSON");
    assert_eq!(token["token_type"], "DPoP", "{token}");
    let access = token["access_token"].as_str().expect("access token");

    let userinfo = format!("{}/userinfo", client.issuer);
    let call = |scheme: &'static str, proof: Option<String>| {
        let mut req = client
            .http
            .get(&userinfo)
            .header("authorization", format!("{scheme} {access}"));
        if let Some(p) = proof {
            req = req.header("DPoP", p);
        }
        async move { req.send().await.expect("userinfo").status().as_u16() }
    };
    let proof = client.proof("GET", &userinfo, Some(access));
    assert_eq!(call("DPoP", Some(proof.clone())).await, 200);
    // The same proof again (an attacker who saw one request): refused.
    assert_eq!(call("DPoP", Some(proof)).await, 401);
    // The token alone, as a bearer token or without a proof: refused.
    assert_eq!(call("Bearer", None).await, 401);
    assert_eq!(call("DPoP", None).await, 401);
    // A proof by another key, or for another token (no matching ath): refused.
    let thief = Client::new(&world, &browser);
    assert_eq!(
        call("DPoP", Some(thief.proof("GET", &userinfo, Some(access)))).await,
        401
    );
    assert_eq!(
        call(
            "DPoP",
            Some(client.proof("GET", &userinfo, Some("another")))
        )
        .await,
        401
    );
    // A fresh proof by the bound key still works: the refusals were the attacks'.
    assert_eq!(
        call("DPoP", Some(client.proof("GET", &userinfo, Some(access)))).await,
        200
    );
}
