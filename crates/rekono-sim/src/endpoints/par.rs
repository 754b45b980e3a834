//! The pushed authorization request endpoint (`POST /par`, RFC 9126), served in FAPI 2.0 mode:
//! the client authenticated as at the token endpoint, the request checked as `/authorize`
//! checks one, and a `request_uri` that names it for one use at `/authorize` within a minute.

use std::time::{Duration, Instant};

use http::StatusCode;
use serde_json::json;

use super::authorize::request::{AuthRequest, Refusal};
use super::token::authenticate_client;
use crate::exchange::{json_response, Req, Resp};
use crate::keys::random_token;
use crate::{Pushed, Sim, AUTHORIZE_LOG};

/// How long a `request_uri` may be used.
const LIFETIME: Duration = Duration::from_secs(60);

/// RFC 9126 2.1: the `request_uri` form.
pub(super) const REQUEST_URI_PREFIX: &str = "urn:ietf:params:oauth:request_uri:";

/// `POST /par`: 201 with a `request_uri`, or the error as at the token endpoint.
pub(super) fn par(sim: &Sim, r: &Req) -> Resp {
    let error = |status, error: &str, description: &str| {
        json_response(
            status,
            &json!({"error": error, "error_description": description}),
        )
    };
    let client = match authenticate_client(sim, r) {
        Ok(c) => c,
        Err(d) => return error(StatusCode::UNAUTHORIZED, "invalid_client", d),
    };
    let bad = |d: &str| error(StatusCode::BAD_REQUEST, "invalid_request", d);
    if r.form.get("client_id") != Some(&sim.config.clients[client].client_id) {
        return bad("client_id is not the authenticated client");
    }
    // RFC 9126 2.1: a pushed request never names another.
    if r.form.contains_key("request_uri") {
        return bad("request_uri is not allowed in a pushed request");
    }
    if let Err(refusal) = AuthRequest::parse(&sim.config.clients, &r.form) {
        let (code, description) = match refusal {
            Refusal::UnknownClient => ("invalid_client", "unknown client_id"),
            Refusal::UnregisteredRedirect => ("invalid_request", "unregistered redirect_uri"),
            Refusal::Redirect {
                error, description, ..
            } => (error, description),
        };
        return error(StatusCode::BAD_REQUEST, code, description);
    }
    let request_uri = format!("{REQUEST_URI_PREFIX}{}", random_token(24));
    // Client authentication is no part of the authorization request it names.
    let params = r
        .form
        .iter()
        .filter(|(k, _)| !k.starts_with("client_assertion"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    {
        let mut state = sim.state();
        let now = Instant::now();
        state.pushed.retain(|_, p| p.expires > now);
        state.pushed.insert(
            request_uri.clone(),
            Pushed {
                client,
                params,
                expires: now + LIFETIME,
            },
        );
        if state.par_log.len() >= AUTHORIZE_LOG {
            state.par_log.remove(0);
        }
        let mut logged: Vec<(String, String)> =
            r.form.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        logged.sort();
        state.par_log.push(logged);
    }
    json_response(
        StatusCode::CREATED,
        &json!({"request_uri": request_uri, "expires_in": LIFETIME.as_secs()}),
    )
}
