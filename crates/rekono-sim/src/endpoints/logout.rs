//! Logout: RP-initiated (`/endsession`, OpenID Connect RP-Initiated Logout 1.0) ends the SSO
//! session, and every relying party of an ended session is told through its back-channel
//! (OpenID Connect Back-Channel Logout 1.0) — also when `/dev/logout` ends sessions.

use std::collections::HashMap;

use http::{Method, StatusCode};
use jsonwebtoken::Validation;
use serde_json::json;

use crate::exchange::{
    append_cookie, cookie, html, redirect, with_params, Req, Resp, SESSION_COOKIE,
};
use crate::keys::random_token;
use crate::pages::{self, Lang};
use crate::{unix_now, Session, Sim};

/// RP-initiated logout: ends the SSO session named by `id_token_hint` and tells every relying
/// party of that session through its back-channel.
pub(super) async fn end_session(sim: &Sim, r: &Req) -> Resp {
    let l = r.lang();
    let params = if r.method == Method::POST {
        &r.form
    } else {
        &r.query
    };
    let hint = params.get("id_token_hint").cloned().unwrap_or_default();
    let claims = (!hint.is_empty())
        .then(|| verify_own_token(sim, &hint))
        .flatten();
    if !hint.is_empty() && claims.is_none() {
        return refused(
            l,
            l.t("Neveljaven id_token_hint.", "Invalid id_token_hint."),
        );
    }
    let post_logout = params.get("post_logout_redirect_uri").cloned();
    if let Some(uri) = &post_logout {
        if !post_logout_registered(sim, claims.as_ref(), params, uri) {
            return refused(
                l,
                l.t(
                    "post_logout_redirect_uri ni registriran.",
                    "post_logout_redirect_uri is not registered.",
                ),
            );
        }
    }
    let sid = claims
        .as_ref()
        .and_then(|c| c["sid"].as_str().map(str::to_owned))
        .or_else(|| r.cookies.get(SESSION_COOKIE).cloned());
    if let Some(sid) = sid {
        logout_sessions(sim, |id, _| id == sid).await;
    }
    let clear = cookie(SESSION_COOKIE, "", Some(0));
    match post_logout {
        Some(uri) => {
            let target = match params.get("state") {
                Some(s) => with_params(&uri, &[("state", s)]),
                None => uri,
            };
            redirect(&target, &[clear])
        }
        None => {
            let mut resp = html(StatusCode::OK, pages::logged_out(l));
            append_cookie(&mut resp, &clear);
            resp
        }
    }
}

fn refused(l: Lang, message: &str) -> Resp {
    html(StatusCode::BAD_REQUEST, pages::error(l, message))
}

/// Whether `uri` is a post-logout redirect URI of the client the hint was issued to (or, with
/// no hint, of the `client_id` parameter).
fn post_logout_registered(
    sim: &Sim,
    claims: Option<&serde_json::Value>,
    params: &HashMap<String, String>,
    uri: &String,
) -> bool {
    let client_id = claims
        .and_then(|c| c["aud"].as_str().map(str::to_owned))
        .or_else(|| params.get("client_id").cloned());
    let client = client_id.and_then(|id| sim.config.clients.iter().position(|c| c.client_id == id));
    client.is_some_and(|c| {
        sim.config.clients[c]
            .post_logout_redirect_uris
            .contains(uri)
    })
}

/// Checks a token the simulator itself issued (signature, issuer); expiry does not matter
/// for an `id_token_hint`.
pub(super) fn verify_own_token(sim: &Sim, token: &str) -> Option<serde_json::Value> {
    let header = jsonwebtoken::decode_header(token).ok()?;
    let (alg, key) = sim.keys.decoding_key(header.kid.as_deref()?)?;
    let mut v = Validation::new(alg);
    v.validate_exp = false;
    v.validate_aud = false;
    v.set_issuer(&[sim.issuer()]);
    v.set_required_spec_claims(&["iss", "sub"]);
    jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
        .ok()
        .map(|d| d.claims)
}

/// Ends the sessions `matches` selects and posts a logout token to each of their relying
/// parties' back-channel URIs. Returns how many back-channel posts were accepted.
pub(super) async fn logout_sessions(sim: &Sim, matches: impl Fn(&str, &Session) -> bool) -> usize {
    let ended: Vec<(String, Session)> = {
        let mut state = sim.state();
        let ids: Vec<String> = state
            .sessions
            .iter()
            .filter(|(id, s)| matches(id, s))
            .map(|(id, _)| id.clone())
            .collect();
        ids.into_iter()
            .filter_map(|id| state.sessions.remove(&id).map(|s| (id, s)))
            .collect()
    };
    let mut delivered = 0;
    for (sid, session) in ended {
        let sub = &sim.config.accounts[session.account].sub;
        for c in session.clients {
            if back_channel(sim, c, &sid, sub).await {
                delivered += 1;
            }
        }
    }
    delivered
}

/// Posts a logout token for session `sid` of `sub` to client `c`'s back-channel URI, if it has
/// one. Returns whether the client accepted it.
async fn back_channel(sim: &Sim, c: usize, sid: &str, sub: &str) -> bool {
    let client = &sim.config.clients[c];
    let Some(uri) = &client.backchannel_logout_uri else {
        return false;
    };
    let now = unix_now();
    let claims = json!({
        "iss": sim.issuer(),
        "aud": client.client_id,
        "iat": now,
        "exp": now + 120,
        "jti": random_token(16),
        "sid": sid,
        "sub": sub,
        "events": {"http://schemas.openid.net/event/backchannel-logout": {}},
    });
    let Ok(token) = sim.keys.sign(client.id_token_alg, "logout+jwt", &claims) else {
        return false;
    };
    match sim
        .http
        .post(uri)
        .form(&[("logout_token", token)])
        .send()
        .await
    {
        Ok(resp) if resp.status().is_success() => true,
        Ok(resp) => {
            tracing::warn!(client = %client.client_id, status = %resp.status(), "rekono-sim: back-channel logout refused");
            false
        }
        Err(e) => {
            tracing::warn!(client = %client.client_id, error = %e, "rekono-sim: back-channel logout failed");
            false
        }
    }
}
