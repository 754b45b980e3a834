//! The playground (`/dev/try`, `/dev/callback`): the simulator's own relying party, so a person
//! can try every factor from a browser and see the claims Rekono would send.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use sha2::{Digest, Sha256};

use super::logout::verify_own_token;
use super::token::token;
use crate::exchange::{cookie, html, plain, redirect, with_params, Req, Resp};
use crate::keys::random_token;
use crate::{pages, Sim, BASE_PATH};

/// The client id of the simulator's own relying party, `/dev/try`.
pub(crate) const PLAYGROUND_CLIENT: &str = "rekono-sim-playground";

/// `/dev/try`: starts a real code + PKCE login for the built-in playground client, so a person
/// can try every factor from a browser and see the claims Rekono would send.
pub(super) fn start(sim: &Sim, r: &Req) -> Resp {
    let verifier = random_token(48);
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes()));
    let state = random_token(16);
    let mut params = vec![
        ("response_type", "code".to_owned()),
        ("client_id", PLAYGROUND_CLIENT.to_owned()),
        (
            "redirect_uri",
            format!("{}/dev/callback", sim.config.public_url),
        ),
        ("scope", "openid profile email".to_owned()),
        ("state", state.clone()),
        ("nonce", random_token(16)),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256".to_owned()),
    ];
    for name in ["acr_values", "prompt", "ui_locales"] {
        if let Some(value) = r.query.get(name) {
            params.push((name, value.clone()));
        }
    }
    let pairs: Vec<(&str, &str)> = params.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let location = with_params(&format!("{}/authorize", sim.issuer()), &pairs);
    // The verifier rides in a cookie bound to this state: the playground keeps no server state.
    redirect(
        &location,
        &[cookie(&format!("rekono_try_{state}"), &verifier, Some(600))],
    )
}

/// `/dev/callback`: the code redeemed at the token endpoint, and the ID token's claims shown.
pub(super) async fn callback(sim: &Sim, r: &Req) -> Resp {
    let l = r.lang();
    if let Some(error) = r.query.get("error") {
        let d = r
            .query
            .get("error_description")
            .cloned()
            .unwrap_or_default();
        return html(StatusCode::OK, pages::error(l, &format!("{error}: {d}")));
    }
    let state = r.query.get("state").cloned().unwrap_or_default();
    let Some(verifier) = r.cookies.get(&format!("rekono_try_{state}")).cloned() else {
        return html(
            StatusCode::BAD_REQUEST,
            pages::error(l, "state does not match this browser"),
        );
    };
    let Some(req) = token_request(sim, r, verifier) else {
        return plain(StatusCode::NOT_FOUND, "no playground client");
    };
    let body = match token(sim, &req).into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(never) => match never {},
    };
    let claims = serde_json::from_slice::<serde_json::Value>(&body)
        .ok()
        .and_then(|t| {
            t["id_token"]
                .as_str()
                .and_then(|t| verify_own_token(sim, t))
        });
    let Some(claims) = claims else {
        return html(
            StatusCode::BAD_GATEWAY,
            pages::error(l, &String::from_utf8_lossy(&body)),
        );
    };
    let pretty = serde_json::to_string_pretty(&claims).unwrap_or_default();
    html(StatusCode::OK, pages::claims(l, &pretty))
}

/// The token request the playground client would send for the callback's code: the same
/// token endpoint code a relying party reaches over HTTPS. `None` without a playground client.
fn token_request(sim: &Sim, r: &Req, verifier: String) -> Option<Req> {
    let secret = sim
        .config
        .clients
        .iter()
        .find(|c| c.client_id == PLAYGROUND_CLIENT)
        .and_then(|c| c.secret.clone())?;
    let form = [
        ("grant_type".to_owned(), "authorization_code".to_owned()),
        (
            "code".to_owned(),
            r.query.get("code").cloned().unwrap_or_default(),
        ),
        (
            "redirect_uri".to_owned(),
            format!("{}/dev/callback", sim.config.public_url),
        ),
        ("code_verifier".to_owned(), verifier),
    ];
    Some(Req {
        method: Method::POST,
        path: format!("{BASE_PATH}/token"),
        path_and_query: format!("{BASE_PATH}/token"),
        query: Default::default(),
        form: form.into_iter().collect(),
        cookies: Default::default(),
        authorization: Some(format!(
            "Basic {}",
            STANDARD.encode(format!("{PLAYGROUND_CLIENT}:{secret}"))
        )),
        dpop: None,
        conn: r.conn.clone(),
    })
}
