//! The signed identity assertion: a short-lived ES256 JWT the gateway adds to each request it
//! forwards, so a portal can verify who the user is with the gateway's JWKS instead of
//! trusting plain headers alone.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::bn::{BigNum, BigNumContext};
use openssl::ec::EcKey;
use openssl::pkey::PKey;
use serde::Serialize;

use crate::session::Session;

#[derive(Debug, thiserror::Error)]
pub enum AssertionError {
    #[error("the assertion key is not an EC P-256 private key in PEM: {0}")]
    Key(String),
    #[error("signing: {0}")]
    Sign(#[from] jsonwebtoken::errors::Error),
}

pub struct Signer {
    kid: String,
    key: EncodingKey,
    jwks: serde_json::Value,
    issuer: String,
    lifetime: u64,
    /// (session id, audience) → an assertion still valid for at least half its lifetime.
    /// Signing costs far more than a request should; a session's assertion is reused.
    recent: moka::sync::Cache<(String, String), (u64, std::sync::Arc<str>)>,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    aud: &'a str,
    sub: &'a str,
    iat: u64,
    nbf: u64,
    exp: u64,
    sid: &'a str,
    email: &'a str,
    name: &'a str,
    method: &'a str,
    level: u8,
    amr: &'a [String],
    auth_time: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    cert_fingerprint: Option<&'a str>,
}

impl Signer {
    /// `pem`: an EC P-256 private key (PKCS#8 or SEC1). `issuer`: the login host's URL.
    pub fn new(pem: &[u8], issuer: String, lifetime: u64) -> Result<Self, AssertionError> {
        let bad = |e: &dyn std::fmt::Display| AssertionError::Key(e.to_string());
        let pkey = PKey::private_key_from_pem(pem).map_err(|e| bad(&e))?;
        let ec: EcKey<_> = pkey.ec_key().map_err(|e| bad(&e))?;
        if ec.group().curve_name() != Some(openssl::nid::Nid::X9_62_PRIME256V1) {
            return Err(AssertionError::Key("the curve is not P-256".into()));
        }
        let mut ctx = BigNumContext::new().map_err(|e| bad(&e))?;
        let (mut x, mut y) = (
            BigNum::new().map_err(|e| bad(&e))?,
            BigNum::new().map_err(|e| bad(&e))?,
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .map_err(|e| bad(&e))?;
        let x = URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).map_err(|e| bad(&e))?);
        let y = URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).map_err(|e| bad(&e))?);
        // The kid is derived from the public key, so every replica with the key agrees.
        let digest: [u8; 32] = <sha2::Sha256 as sha2::Digest>::digest(format!("{x}.{y}")).into();
        let kid = hex::encode(&digest[..8]);
        let pkcs8 = pkey.private_key_to_pem_pkcs8().map_err(|e| bad(&e))?;
        Ok(Self {
            key: EncodingKey::from_ec_pem(&pkcs8)?,
            jwks: serde_json::json!({"keys": [{"kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid, "x": x, "y": y}]}),
            kid,
            issuer,
            lifetime,
            recent: moka::sync::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(std::time::Duration::from_secs((lifetime / 2).max(1)))
                .build(),
        })
    }

    /// Like [`Signer::sign`], but reuses an assertion issued for the same session and audience
    /// less than half a lifetime ago.
    pub fn sign_cached(
        &self,
        session: &Session,
        audience: &str,
        now: u64,
    ) -> Result<std::sync::Arc<str>, AssertionError> {
        let key = (session.sid.clone(), audience.to_owned());
        if let Some((issued, token)) = self.recent.get(&key) {
            if now.saturating_sub(issued) < self.lifetime / 2 {
                return Ok(token);
            }
        }
        let token: std::sync::Arc<str> = self.sign(session, audience, now)?.into();
        self.recent.insert(key, (now, token.clone()));
        Ok(token)
    }

    pub fn jwks(&self) -> &serde_json::Value {
        &self.jwks
    }

    pub fn issuer(&self) -> &str {
        &self.issuer
    }

    /// An assertion about `session` for the portal at `audience`, valid from `now`.
    pub fn sign(
        &self,
        session: &Session,
        audience: &str,
        now: u64,
    ) -> Result<String, AssertionError> {
        let mut header = Header::new(Algorithm::ES256);
        header.kid = Some(self.kid.clone());
        header.typ = Some("JWT".into());
        let claims = Claims {
            iss: &self.issuer,
            aud: audience,
            sub: &session.sub,
            iat: now,
            nbf: now,
            exp: now + self.lifetime,
            sid: &session.sid,
            email: &session.email,
            name: &session.name,
            method: session.method_label(),
            level: session.level,
            amr: &session.amr,
            auth_time: session.auth_time,
            cert_fingerprint: session.cert_fingerprint.as_deref(),
        };
        Ok(jsonwebtoken::encode(&header, &claims, &self.key)?)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report
mod tests {
    use super::*;
    use crate::session::{Method, Session};

    fn signer() -> Signer {
        let group =
            openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1).unwrap();
        let key = PKey::from_ec_key(EcKey::generate(&group).unwrap()).unwrap();
        Signer::new(
            &key.private_key_to_pem_pkcs8().unwrap(),
            "https://login.example".into(),
            60,
        )
        .unwrap()
    }

    fn session(sid: &str) -> Session {
        Session {
            sid: sid.into(),
            sub: "s".into(),
            name: "n".into(),
            email: "e".into(),
            method: Method::Rekono,
            amr: vec![],
            level: 20,
            auth_time: 0,
            expires_at: u64::MAX,
            idle_until: u64::MAX,
            op_sid: None,
            id_token: None,
            cert_fingerprint: None,
            cert: None,
            host: None,
            issued_at: None,
            family: None,
            provider: None,
        }
    }

    #[test]
    fn assertions_are_reused_for_half_their_lifetime_per_session_and_audience() {
        let s = signer();
        let a = s.sign_cached(&session("1"), "https://acq", 1000).unwrap();
        assert_eq!(
            s.sign_cached(&session("1"), "https://acq", 1029).unwrap(),
            a
        );
        assert_ne!(
            s.sign_cached(&session("1"), "https://b2b", 1001).unwrap(),
            a,
            "per audience"
        );
        assert_ne!(
            s.sign_cached(&session("2"), "https://acq", 1001).unwrap(),
            a,
            "per session"
        );
        assert_ne!(
            s.sign_cached(&session("1"), "https://acq", 1030).unwrap(),
            a,
            "renewed at half its lifetime"
        );
        // Every reused assertion still has at least half its lifetime left.
        let claims = jsonwebtoken::dangerous::insecure_decode::<serde_json::Value>(a.as_bytes())
            .unwrap()
            .claims;
        assert_eq!(claims["exp"].as_u64().unwrap() - 1029, 31);
    }
}
