//! OpenID Connect discovery (`/.well-known/openid-configuration`) and the signing keys (`/jwk`).

use http::StatusCode;
use serde_json::json;

use crate::exchange::{json_response, Resp};
use crate::Sim;

/// `GET /.well-known/openid-configuration`: what the provider supports, as Rekono states it.
pub(super) fn discovery(sim: &Sim) -> Resp {
    let iss = sim.issuer();
    json_response(
        StatusCode::OK,
        &json!({
            "issuer": iss,
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
            "authorization_response_iss_parameter_supported": true,
        }),
    )
}

/// `GET /jwk`: the public signing keys, the rotated ones included.
pub(super) fn jwks(sim: &Sim) -> Resp {
    json_response(StatusCode::OK, &sim.keys.jwks())
}
