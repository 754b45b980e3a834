//! The userinfo endpoint (`GET`/`POST /userinfo`): the account's claims for a valid access token.

use std::time::Instant;

use http::{header, StatusCode};
use serde_json::json;

use crate::exchange::{json_response, Req, Resp};
use crate::Sim;

/// The claims of the access token's account, or 401 `invalid_token`.
pub(super) fn userinfo(sim: &Sim, r: &Req) -> Resp {
    let token = r
        .authorization
        .as_deref()
        .and_then(|a| a.strip_prefix("Bearer "))
        .unwrap_or("");
    let state = sim.state();
    match state
        .tokens
        .get(token.trim())
        .filter(|t| t.expires > Instant::now())
    {
        Some(t) => {
            let a = &sim.config.accounts[t.account];
            json_response(
                StatusCode::OK,
                &json!({"sub": a.sub, "email": a.email, "email_verified": true, "name": a.name}),
            )
        }
        None => {
            let mut resp =
                json_response(StatusCode::UNAUTHORIZED, &json!({"error": "invalid_token"}));
            resp.headers_mut().insert(
                header::WWW_AUTHENTICATE,
                header::HeaderValue::from_static("Bearer error=\"invalid_token\""),
            );
            resp
        }
    }
}
