//! DPoP proofs (RFC 9449) as the FAPI 2.0 simulator checks them: at the token endpoint (the
//! access token is then bound to the proof's key) and at userinfo (the proof must be by that
//! key, for this request, with the token's hash in `ath`). A `jti` is accepted once.

use std::time::{Duration, Instant};

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::jwk::ThumbprintHash;
use jsonwebtoken::{Algorithm, DecodingKey, Validation};
use sha2::{Digest, Sha256};

use crate::{unix_now, Sim};

/// How far a proof's `iat` may be from the simulator's clock.
const IAT_WINDOW: u64 = 60;

/// How long a used `jti` is remembered (longer than a proof is accepted).
const JTI_MEMORY: Duration = Duration::from_secs(300);

/// Checks `proof` for a request `htm` `htu` (and, for a resource request, `access_token`):
/// signed by the public key in its header, `typ` `dpop+jwt`, an asymmetric algorithm, `htm`
/// and `htu` this request's, `iat` recent, `jti` unused, `ath` the token's hash. Returns the
/// key's RFC 7638 thumbprint (`jkt`), or what is wrong.
pub(super) fn check(
    sim: &Sim,
    proof: &str,
    htm: &str,
    htu: &str,
    access_token: Option<&str>,
) -> Result<String, &'static str> {
    let header = jsonwebtoken::decode_header(proof).map_err(|_| "malformed DPoP proof")?;
    if header.typ.as_deref() != Some("dpop+jwt") {
        return Err("DPoP proof typ is not dpop+jwt");
    }
    if !matches!(
        header.alg,
        Algorithm::ES256 | Algorithm::PS256 | Algorithm::EdDSA
    ) {
        return Err("DPoP proof algorithm not accepted");
    }
    let jwk = header.jwk.ok_or("DPoP proof has no jwk")?;
    let key = DecodingKey::from_jwk(&jwk).map_err(|_| "malformed DPoP jwk")?;
    let mut v = Validation::new(header.alg);
    v.set_required_spec_claims::<&str>(&[]);
    v.validate_exp = false;
    v.validate_aud = false;
    let claims = jsonwebtoken::decode::<serde_json::Value>(proof, &key, &v)
        .map_err(|_| "DPoP proof signature does not verify")?
        .claims;
    let text = |name: &str| claims.get(name).and_then(serde_json::Value::as_str);
    if text("htm") != Some(htm) {
        return Err("DPoP proof htm is not this request's method");
    }
    if text("htu") != Some(htu) {
        return Err("DPoP proof htu is not this request's URL");
    }
    let iat = claims
        .get("iat")
        .and_then(serde_json::Value::as_u64)
        .ok_or("DPoP proof has no iat")?;
    if unix_now().abs_diff(iat) > IAT_WINDOW {
        return Err("DPoP proof iat is not recent");
    }
    match access_token {
        Some(token) => {
            let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
            if text("ath") != Some(ath.as_str()) {
                return Err("DPoP proof ath is not the access token's hash");
            }
        }
        None if text("ath").is_some() => return Err("DPoP proof has an ath and no token"),
        None => {}
    }
    let jti = text("jti")
        .filter(|j| !j.is_empty())
        .ok_or("DPoP proof has no jti")?;
    {
        let mut state = sim.state();
        let now = Instant::now();
        state.dpop_jti.retain(|_, until| *until > now);
        if state
            .dpop_jti
            .insert(jti.to_owned(), now + JTI_MEMORY)
            .is_some()
        {
            return Err("DPoP proof replayed (jti already used)");
        }
    }
    jwk.thumbprint(ThumbprintHash::SHA256)
        .map_err(|_| "DPoP jwk has no thumbprint")
}
