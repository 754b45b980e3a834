//! The token endpoint (`POST /token`): client authentication (`client_secret_basic` or
//! `private_key_jwt`), then an authorization code redeemed once, with its PKCE verifier, for an
//! access token and a signed ID token. With a DPoP proof (required under FAPI 2.0) the access
//! token is bound to the proof's key.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{header, StatusCode};
use jsonwebtoken::{Algorithm, Validation};
use serde_json::json;
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::exchange::{json_response, Req, Resp};
use crate::keys::random_token;
use crate::{unix_now, AccessToken, Code, Sim};

/// How long access and ID tokens are valid, in seconds.
const TOKEN_LIFETIME: u64 = 300;

/// `POST /token` with `grant_type=authorization_code`.
pub(super) fn token(sim: &Sim, r: &Req) -> Resp {
    let client = match authenticate_client(sim, r) {
        Ok(c) => c,
        Err(description) => {
            return token_error(StatusCode::UNAUTHORIZED, "invalid_client", description)
        }
    };
    let bad = |error: &str, d: &str| token_error(StatusCode::BAD_REQUEST, error, d);
    if r.form.get("grant_type").map(String::as_str) != Some("authorization_code") {
        return bad("unsupported_grant_type", "only authorization_code");
    }
    let token_endpoint = format!("{}/token", sim.issuer());
    let jkt = match &r.dpop {
        Some(proof) => match super::dpop::check(sim, proof, "POST", &token_endpoint, None) {
            Ok(jkt) => Some(jkt),
            Err(d) => return bad("invalid_dpop_proof", d),
        },
        None if sim.config.fapi2 => {
            return bad("invalid_dpop_proof", "FAPI 2.0: a DPoP proof is required")
        }
        None => None,
    };
    let code_value = r.form.get("code").cloned().unwrap_or_default();
    let mut guard = sim.state();
    let state = &mut *guard;
    let Some(code) = state.codes.get_mut(&code_value) else {
        return bad("invalid_grant", "unknown code");
    };
    if code.used {
        // A replayed code revokes what the first use issued (RFC 6749 4.1.2).
        for t in std::mem::take(&mut code.access_tokens) {
            state.tokens.remove(&t);
        }
        tracing::warn!("rekono-sim: authorization code replayed; its tokens are revoked");
        return bad("invalid_grant", "code already used");
    }
    code.used = true;
    if let Err(description) = redeemable(code, client, r) {
        return bad("invalid_grant", description);
    }
    let access = random_token(32);
    code.access_tokens.push(access.clone());
    let claims = id_token_claims(sim, code, client);
    state.tokens.insert(
        access.clone(),
        AccessToken {
            account: code.account,
            expires: Instant::now() + Duration::from_secs(TOKEN_LIFETIME),
            jkt: jkt.clone(),
        },
    );
    drop(guard);
    let alg = if sim.misbehaving().sign_rs256 {
        Algorithm::RS256
    } else {
        sim.config.clients[client].id_token_alg
    };
    let id_token = match sim.keys.sign(alg, "JWT", &claims) {
        Ok(t) => t,
        Err(e) => {
            return token_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                &e.to_string(),
            )
        }
    };
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access,
            "token_type": if jkt.is_some() { "DPoP" } else { "Bearer" },
            "expires_in": TOKEN_LIFETIME,
            "id_token": id_token,
            "scope": "openid profile email",
        }),
    )
}

/// Why a first-used `code` cannot be redeemed by `client` with the request's `redirect_uri`
/// and `code_verifier`, if it cannot: the `error_description` of `invalid_grant`.
fn redeemable(code: &Code, client: usize, r: &Req) -> Result<(), &'static str> {
    if code.expires < Instant::now() {
        return Err("code expired");
    }
    if code.client != client {
        return Err("code was issued to another client");
    }
    if r.form.get("redirect_uri") != Some(&code.redirect_uri) {
        return Err("redirect_uri differs from the authorization request");
    }
    let verifier = r.form.get("code_verifier").cloned().unwrap_or_default();
    let valid_verifier = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
    let computed = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    if !valid_verifier || !bool::from(computed.as_bytes().ct_eq(code.code_challenge.as_bytes())) {
        return Err("PKCE code_verifier does not match");
    }
    Ok(())
}

/// The ID token's claims for `code`, issued to `client`.
fn id_token_claims(sim: &Sim, code: &Code, client: usize) -> serde_json::Value {
    let account = &sim.config.accounts[code.account];
    let c = &sim.config.clients[client];
    let now = unix_now();
    let mut claims = json!({
        "iss": sim.issuer(),
        "sub": account.sub,
        "aud": c.client_id,
        "azp": c.client_id,
        "exp": now + TOKEN_LIFETIME,
        "iat": now,
        "auth_time": code.auth_time,
        "acr": code.acr.to_string(),
        "amr": code.amr,
        "sid": code.sid,
        "email": account.email,
        "email_verified": true,
        "name": account.name,
    });
    if let Some(nonce) = &code.nonce {
        claims["nonce"] = json!(nonce);
    }
    claims
}

fn token_error(status: StatusCode, error: &str, description: &str) -> Resp {
    let mut resp = json_response(
        status,
        &json!({"error": error, "error_description": description}),
    );
    if status == StatusCode::UNAUTHORIZED {
        resp.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Basic realm=\"rekono-sim\""),
        );
    }
    resp
}

/// Client authentication: `client_secret_basic` or `private_key_jwt`. Returns the client index.
/// A failure is the `error_description` of the 401 `invalid_client` answer.
pub(super) fn authenticate_client(sim: &Sim, r: &Req) -> Result<usize, &'static str> {
    if let Some(basic) = r
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Basic "))
    {
        return client_secret_basic(sim, basic);
    }
    if r.form.get("client_assertion_type").map(String::as_str)
        == Some("urn:ietf:params:oauth:client-assertion-type:jwt-bearer")
    {
        let assertion = r.form.get("client_assertion").cloned().unwrap_or_default();
        return private_key_jwt(sim, &assertion);
    }
    Err("client authentication required (client_secret_basic or private_key_jwt)")
}

/// `Authorization: Basic` with the base64 of `basic`: the client id and its secret.
fn client_secret_basic(sim: &Sim, basic: &str) -> Result<usize, &'static str> {
    const MALFORMED: &str = "malformed Basic credentials";
    let decoded = STANDARD.decode(basic.trim()).map_err(|_| MALFORMED)?;
    let decoded = String::from_utf8(decoded).map_err(|_| MALFORMED)?;
    let (id, secret) = decoded.split_once(':').ok_or(MALFORMED)?;
    // RFC 6749 2.3.1: both parts are form-urlencoded.
    let decode = |s: &str| {
        url::form_urlencoded::parse(format!("x={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
    };
    let (id, secret) = (
        decode(id).unwrap_or_default(),
        decode(secret).unwrap_or_default(),
    );
    let client = sim
        .config
        .clients
        .iter()
        .position(|c| c.client_id == id)
        .ok_or("unknown client")?;
    let ok = sim.config.clients[client]
        .secret
        .as_deref()
        .is_some_and(|s| s.as_bytes().ct_eq(secret.as_bytes()).into());
    if ok {
        Ok(client)
    } else {
        Err("wrong client secret")
    }
}

/// A `client_assertion` JWT signed with one of the client's registered keys, for the token
/// endpoint (or the issuer), used once (its `jti`).
fn private_key_jwt(sim: &Sim, assertion: &str) -> Result<usize, &'static str> {
    const MALFORMED: &str = "malformed client_assertion";
    let claims: serde_json::Value = jsonwebtoken::dangerous::insecure_decode(assertion)
        .map(|d| d.claims)
        .map_err(|_| MALFORMED)?;
    let id = claims["iss"].as_str().unwrap_or_default().to_owned();
    let client = sim
        .config
        .clients
        .iter()
        .position(|c| c.client_id == id)
        .ok_or("unknown client")?;
    let header = jsonwebtoken::decode_header(assertion).map_err(|_| MALFORMED)?;
    let token_endpoint = format!("{}/token", sim.issuer());
    let issuer = sim.issuer();
    // FAPI 2.0 (5.3.2.1): the audience is the issuer identifier; otherwise the token endpoint
    // (the PAR endpoint's requests included) will do as well.
    let audiences: &[&str] = if sim.config.fapi2 {
        &[issuer.as_str()]
    } else {
        &[token_endpoint.as_str(), issuer.as_str()]
    };
    let verified = sim.config.clients[client]
        .jwt_keys
        .iter()
        .find_map(|(alg, pem)| {
            if *alg != header.alg
                && !(matches!(alg, Algorithm::RS256)
                    && matches!(
                        header.alg,
                        Algorithm::RS384 | Algorithm::RS512 | Algorithm::PS256
                    ))
            {
                return None;
            }
            let key = match alg {
                Algorithm::RS256 => jsonwebtoken::DecodingKey::from_rsa_pem(pem).ok()?,
                _ => jsonwebtoken::DecodingKey::from_ec_pem(pem).ok()?,
            };
            let mut v = Validation::new(header.alg);
            v.set_audience(audiences);
            v.set_issuer(&[id.as_str()]);
            v.sub = Some(id.clone());
            v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
            jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v).ok()
        })
        .ok_or("client_assertion does not verify")?;
    let jti = verified.claims["jti"]
        .as_str()
        .map(str::to_owned)
        .ok_or("client_assertion has no jti")?;
    if !sim.state().used_jti.insert(jti) {
        return Err("client_assertion replayed");
    }
    Ok(client)
}
