//! DPoP (RFC 9449) for the FAPI 2.0 profile: a P-256 key made at start-up, and a proof JWT per
//! request (`htm`, `htu`, `iat`, a fresh `jti`, and `ath` with an access token), so that the
//! access token the token endpoint issues is bound to this key and useless to anyone who copies
//! it without the key.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use sha2::{Digest, Sha256};

use super::client_auth::ClientKey;
use super::OidcError;

/// The gateway's DPoP key and its public JWK (in every proof's header).
pub(super) struct DpopKey {
    key: ClientKey,
    jwk: serde_json::Value,
}

impl DpopKey {
    pub(super) fn generate() -> Result<Self, OidcError> {
        let key = ClientKey::generate_p256()?;
        let jwk = key.public_jwk()?;
        Ok(Self { key, jwk })
    }

    /// A proof for `method` on `url` (without query or fragment, RFC 9449 4.2) at `now`; with
    /// `access_token`, its hash as `ath` (for a resource request).
    pub(super) fn proof(
        &self,
        method: &str,
        url: &str,
        now: u64,
        access_token: Option<&str>,
    ) -> Result<String, OidcError> {
        let htu = url.split(['?', '#']).next().unwrap_or(url);
        let mut claims = serde_json::json!({
            "jti": crate::random_id(),
            "htm": method,
            "htu": htu,
            "iat": now,
        });
        if let (Some(token), Some(fields)) = (access_token, claims.as_object_mut()) {
            let ath = URL_SAFE_NO_PAD.encode(Sha256::digest(token.as_bytes()));
            fields.insert("ath".into(), ath.into());
        }
        self.key.sign_jwt(
            serde_json::json!({"typ": "dpop+jwt", "jwk": self.jwk}),
            &claims,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_proof_verifies_with_the_key_in_its_header_and_carries_what_rfc_9449_asks() {
        let key = DpopKey::generate().unwrap();
        let proof = key
            .proof(
                "GET",
                "https://op.example/userinfo?x=1",
                1_700_000_000,
                Some("tok"),
            )
            .unwrap();
        let header = jsonwebtoken::decode_header(&proof).unwrap();
        assert_eq!(header.typ.as_deref(), Some("dpop+jwt"));
        let jwk = header.jwk.expect("jwk in the header");
        let decoding = jsonwebtoken::DecodingKey::from_jwk(&jwk).unwrap();
        let mut v = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::ES256);
        v.set_required_spec_claims::<&str>(&[]);
        v.validate_exp = false;
        let claims = jsonwebtoken::decode::<serde_json::Value>(&proof, &decoding, &v)
            .unwrap()
            .claims;
        assert_eq!(claims["htm"], "GET");
        assert_eq!(claims["htu"], "https://op.example/userinfo");
        assert_eq!(claims["iat"], 1_700_000_000);
        assert_eq!(
            claims["ath"],
            URL_SAFE_NO_PAD.encode(Sha256::digest(b"tok")).as_str()
        );
        // No private part of the key is ever in the header.
        assert!(jwk_has_no_private_part(
            &serde_json::to_value(&jwk).unwrap()
        ));
        // Each proof has its own jti: a replayed one is the server's to refuse.
        let again = key
            .proof("GET", "https://op.example/userinfo", 1, None)
            .unwrap();
        let other = jsonwebtoken::decode::<serde_json::Value>(&again, &decoding, &v)
            .unwrap()
            .claims;
        assert_ne!(other["jti"], claims["jti"]);
        assert!(other.get("ath").is_none());
    }

    fn jwk_has_no_private_part(jwk: &serde_json::Value) -> bool {
        jwk.get("d").is_none()
    }
}
