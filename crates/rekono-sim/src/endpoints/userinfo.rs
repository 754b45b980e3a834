//! The userinfo endpoint (`GET`/`POST /userinfo`): the account's claims for a valid access token;
//! a DPoP-bound one only with `Authorization: DPoP` and a proof by its key that carries its hash.

use std::time::Instant;

use http::{header, StatusCode};
use serde_json::json;

use crate::exchange::{json_response, Req, Resp};
use crate::Sim;

/// The claims of the access token's account, or 401 `invalid_token`.
pub(super) fn userinfo(sim: &Sim, r: &Req) -> Resp {
    let (scheme, token) = r
        .authorization
        .as_deref()
        .and_then(|a| a.split_once(' '))
        .unwrap_or_default();
    let token = token.trim();
    let found = {
        let state = sim.state();
        state
            .tokens
            .get(token)
            .filter(|t| t.expires > Instant::now())
            .map(|t| (t.account, t.jkt.clone()))
    };
    let Some((account, jkt)) = found else {
        return refuse("Bearer", "invalid_token");
    };
    match (scheme, jkt) {
        ("Bearer", None) => {}
        ("DPoP", Some(jkt)) => {
            let url = format!("{}/userinfo", sim.issuer());
            let proof = r.dpop.as_deref().unwrap_or_default();
            match super::dpop::check(sim, proof, r.method.as_str(), &url, Some(token)) {
                Ok(key) if key == jkt => {}
                Ok(_) => return refuse("DPoP", "invalid_token"),
                Err(why) => {
                    tracing::info!(why, "rekono-sim: userinfo DPoP proof refused");
                    return refuse("DPoP", "invalid_dpop_proof");
                }
            }
        }
        // A bound token as a bearer token (or the other way round): RFC 9449 7.1.
        (_, Some(_)) => return refuse("DPoP", "invalid_token"),
        _ => return refuse("Bearer", "invalid_token"),
    }
    let a = &sim.config.accounts[account];
    let sub = sim
        .misbehaving()
        .userinfo_sub
        .unwrap_or_else(|| a.sub.clone());
    json_response(
        StatusCode::OK,
        &json!({"sub": sub, "email": a.email, "email_verified": true, "name": a.name}),
    )
}

/// 401 with `error` in `WWW-Authenticate` for `scheme`.
fn refuse(scheme: &str, error: &str) -> Resp {
    let mut resp = json_response(StatusCode::UNAUTHORIZED, &json!({ "error": error }));
    if let Ok(v) = header::HeaderValue::from_str(&format!("{scheme} error=\"{error}\"")) {
        resp.headers_mut().insert(header::WWW_AUTHENTICATE, v);
    }
    resp
}
