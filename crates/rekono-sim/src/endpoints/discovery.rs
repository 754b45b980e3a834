//! OpenID Connect discovery (`/.well-known/openid-configuration`) and the signing keys (`/jwk`).

use http::StatusCode;
use serde_json::json;

use crate::exchange::{json_response, Resp};
use crate::Sim;

/// `GET /.well-known/openid-configuration`: what the provider supports, as Rekono states it;
/// in FAPI 2.0 mode also PAR, DPoP and the profile's algorithms (and what `danger_misbehave`
/// gets wrong).
pub(super) fn discovery(sim: &Sim) -> Resp {
    let iss = sim.issuer();
    let misbehave = sim.misbehaving();
    let mut doc = json!({
            "issuer": misbehave.discovery_issuer.clone().unwrap_or_else(|| iss.clone()),
            "authorization_endpoint": format!("{iss}/authorize"),
            "token_endpoint": format!("{iss}/token"),
            "userinfo_endpoint": format!("{iss}/userinfo"),
            "jwks_uri": format!("{iss}/jwk"),
            "end_session_endpoint": format!("{iss}/endsession"),
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "grant_types_supported": ["authorization_code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["ES256", "RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic", "private_key_jwt"],
            "token_endpoint_auth_signing_alg_values_supported": ["ES256", "RS256"],
            "code_challenge_methods_supported": ["S256"],
            "scopes_supported": ["openid", "profile", "email", "http://idp.rekono.si/openid/taxnumber"],
            "claims_supported": ["sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "acr", "amr", "sid", "email", "email_verified", "name"],
            "acr_values_supported": ["10", "20", "30"],
            "claims_parameter_supported": false,
            "backchannel_logout_supported": true,
            "backchannel_logout_session_supported": true,
            "authorization_response_iss_parameter_supported": !misbehave.omit_iss,
    });
    if sim.config.fapi2 {
        doc["id_token_signing_alg_values_supported"] = json!(["PS256", "ES256", "EdDSA"]);
        doc["token_endpoint_auth_methods_supported"] = json!(["private_key_jwt"]);
        doc["token_endpoint_auth_signing_alg_values_supported"] = json!(["PS256", "ES256"]);
        doc["dpop_signing_alg_values_supported"] = json!(["ES256", "PS256", "EdDSA"]);
        doc["require_pushed_authorization_requests"] = json!(true);
        if !misbehave.no_par_endpoint {
            doc["pushed_authorization_request_endpoint"] = json!(format!("{iss}/par"));
        }
    }
    json_response(StatusCode::OK, &doc)
}

/// `GET /jwk`: the public signing keys, the rotated ones included.
pub(super) fn jwks(sim: &Sim) -> Resp {
    json_response(StatusCode::OK, &sim.keys.jwks())
}
