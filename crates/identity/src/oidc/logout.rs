//! Logout with the provider: back-channel logout tokens (OIDC Back-Channel Logout 1.0) and
//! the end-session URL of RP-initiated logout.

use super::key_refresh::Asker;
use super::{OidcError, Profile, Provider};

/// The subject of a verified back-channel logout token.
#[derive(Debug, PartialEq, Eq)]
pub struct Logout {
    pub sid: Option<String>,
    pub sub: Option<String>,
    /// The token's id: seen once here; a fleet also claims it in its shared state.
    pub jti: String,
}

impl Provider {
    /// The provider's end-session URL for RP-initiated logout, when it has one.
    pub fn end_session_url(
        &self,
        id_token_hint: &str,
        post_logout_redirect_uri: &str,
    ) -> Option<String> {
        let endpoint = self.current().end_session.clone()?;
        let mut url = url::Url::parse(&endpoint).ok()?;
        url.query_pairs_mut()
            .append_pair("id_token_hint", id_token_hint)
            .append_pair("post_logout_redirect_uri", post_logout_redirect_uri)
            .append_pair("client_id", &self.settings.client_id);
        Some(url.to_string())
    }

    /// Verifies a back-channel logout token (OIDC Back-Channel Logout 1.0, 2.6): signature
    /// with the provider's keys, `iss`, `aud`, `iat`, the logout event, no `nonce`, `sid` or
    /// `sub`, and a `jti` not seen before.
    pub async fn verify_logout_token(&self, token: &str, now: u64) -> Result<Logout, OidcError> {
        let invalid = |m: &str| OidcError::InvalidToken(m.to_owned());
        let (alg, kid) = logout_token_header(token)?;
        // FAPI 2.0 (5.4.1): PS256, ES256 or EdDSA, like the ID tokens (`id_token.rs`).
        if self.settings.profile == Profile::Fapi2
            && !matches!(
                alg,
                jsonwebtoken::Algorithm::PS256 | jsonwebtoken::Algorithm::ES256
            )
        {
            return Err(invalid(
                "logout token algorithm not allowed under profile fapi2",
            ));
        }
        let mut jwks = self.current().jwks.clone();
        if jwks.find(&kid).is_none() && self.refresh_for(Asker::BackChannel, &kid).await {
            jwks = self.current().jwks.clone();
        }
        let jwk = jwks
            .find(&kid)
            .ok_or_else(|| invalid("logout token signed with an unknown key"))?;
        let key = jsonwebtoken::DecodingKey::from_jwk(jwk)
            .map_err(|_| invalid("unusable provider key"))?;
        let mut v = jsonwebtoken::Validation::new(alg);
        v.set_issuer(&[&self.settings.issuer]);
        v.set_audience(&[&self.settings.client_id]);
        v.set_required_spec_claims(&["iss", "aud", "iat"]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(token, &key, &v)
            .map_err(|e| OidcError::InvalidToken(format!("logout token: {e}")))?
            .claims;
        let (logout, jti) = logout_claims(&claims, now, self.settings.max_skew.as_secs())?;
        if self.seen_jti.contains_key(&jti) {
            return Err(invalid("logout token replayed"));
        }
        self.seen_jti.insert(jti, ());
        Ok(logout)
    }
}

/// A logout token's header, read before anything is trusted: an allowed (asymmetric)
/// algorithm and the `kid` of the key to verify it with. Pure, so it is fuzzed.
pub fn logout_token_header(token: &str) -> Result<(jsonwebtoken::Algorithm, String), OidcError> {
    let invalid = |m: &str| OidcError::InvalidToken(m.to_owned());
    let header =
        jsonwebtoken::decode_header(token).map_err(|_| invalid("malformed logout token"))?;
    if !matches!(
        header.alg,
        jsonwebtoken::Algorithm::ES256
            | jsonwebtoken::Algorithm::ES384
            | jsonwebtoken::Algorithm::RS256
            | jsonwebtoken::Algorithm::PS256
    ) {
        return Err(invalid("logout token algorithm not allowed"));
    }
    let kid = header
        .kid
        .ok_or_else(|| invalid("logout token has no kid"))?;
    Ok((header.alg, kid))
}

/// The claims of a logout token whose signature, `iss` and `aud` were verified: `iat` within
/// `skew` of the last 10 minutes, not expired, the back-channel logout event, no `nonce`, a
/// `sid` or `sub`. Returns the logout and its `jti` (for the replay check). Pure, so it is
/// fuzzed.
pub fn logout_claims(
    claims: &serde_json::Value,
    now: u64,
    skew: u64,
) -> Result<(Logout, String), OidcError> {
    let invalid = |m: &str| OidcError::InvalidToken(m.to_owned());
    let claim = |name: &str| claims.get(name).unwrap_or(&serde_json::Value::Null);
    let iat = claim("iat")
        .as_u64()
        .ok_or_else(|| invalid("logout token has no iat"))?;
    if iat > now.saturating_add(skew) || iat.saturating_add(600 + skew) < now {
        return Err(invalid("logout token iat out of range"));
    }
    if let Some(exp) = claim("exp").as_u64() {
        if exp.saturating_add(skew) < now {
            return Err(invalid("logout token expired"));
        }
    }
    if !claim("events")
        .get("http://schemas.openid.net/event/backchannel-logout")
        .is_some_and(serde_json::Value::is_object)
    {
        return Err(invalid("logout token has no back-channel logout event"));
    }
    if claims.get("nonce").is_some() {
        return Err(invalid("a logout token must not have a nonce"));
    }
    let sid = claim("sid").as_str().map(str::to_owned);
    let sub = claim("sub").as_str().map(str::to_owned);
    if sid.is_none() && sub.is_none() {
        return Err(invalid("logout token has neither sid nor sub"));
    }
    let jti = claim("jti")
        .as_str()
        .ok_or_else(|| invalid("logout token has no jti"))?;
    Ok((
        Logout {
            sid,
            sub,
            jti: jti.to_owned(),
        },
        jti.to_owned(),
    ))
}
