//! The simulator's signing keys: ES256 (the default), RS256, and PS256 and EdDSA (for the
//! FAPI 2.0 profile), each with a `kid`, published as a JWKS. Rotation adds a new ES256 key and signs with it from then on; old keys stay in
//! the JWKS so tokens already issued still verify.

use std::sync::RwLock;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jsonwebtoken::{Algorithm, EncodingKey, Header};
use openssl::bn::BigNumContext;
use openssl::ec::{EcGroup, EcKey};
use openssl::nid::Nid;
use openssl::pkey::PKey;
use openssl::rsa::Rsa;
use serde::Serialize;

#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("key generation: {0}")]
    OpenSsl(#[from] openssl::error::ErrorStack),
    #[error("signing: {0}")]
    Jwt(#[from] jsonwebtoken::errors::Error),
}

struct Key {
    kid: String,
    alg: Algorithm,
    encoding: EncodingKey,
    jwk: serde_json::Value,
}

pub struct Keys {
    keys: RwLock<Vec<Key>>,
    /// Index of the ES256 key that signs now.
    current_es256: RwLock<usize>,
    generation: std::sync::atomic::AtomicU32,
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn new_es256(kid: String) -> Result<Key, KeyError> {
    let group = EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)?;
    let ec = EcKey::generate(&group)?;
    let mut ctx = BigNumContext::new()?;
    let mut x = openssl::bn::BigNum::new()?;
    let mut y = openssl::bn::BigNum::new()?;
    ec.public_key()
        .affine_coordinates(&group, &mut x, &mut y, &mut ctx)?;
    let pem = PKey::from_ec_key(ec)?.private_key_to_pem_pkcs8()?;
    Ok(Key {
        jwk: serde_json::json!({
            "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
            "x": b64(&x.to_vec_padded(32)?), "y": b64(&y.to_vec_padded(32)?),
        }),
        encoding: EncodingKey::from_ec_pem(&pem)?,
        alg: Algorithm::ES256,
        kid,
    })
}

// The simulator's throwaway RSA keys (RS256, PS256) sign with the `rsa` crate
// (RUSTSEC-2023-0071, timing): development and tests only, never in the production build
// (clippy.toml).
#[allow(clippy::disallowed_methods)]
fn new_rsa(kid: String, alg: Algorithm) -> Result<Key, KeyError> {
    let rsa = Rsa::generate(2048)?;
    // The JWA name is the variant's (`RS256`, `PS256`).
    let jwk = serde_json::json!({
        "kty": "RSA", "use": "sig", "alg": format!("{alg:?}"), "kid": kid,
        "n": b64(&rsa.n().to_vec()), "e": b64(&rsa.e().to_vec()),
    });
    let pem = PKey::from_rsa(rsa)?.private_key_to_pem_pkcs8()?;
    Ok(Key {
        jwk,
        encoding: EncodingKey::from_rsa_pem(&pem)?,
        alg,
        kid,
    })
}

fn new_eddsa(kid: String) -> Result<Key, KeyError> {
    let key = PKey::generate_ed25519()?;
    let jwk = serde_json::json!({
        "kty": "OKP", "crv": "Ed25519", "use": "sig", "alg": "EdDSA", "kid": kid,
        "x": b64(&key.raw_public_key()?),
    });
    Ok(Key {
        jwk,
        encoding: EncodingKey::from_ed_pem(&key.private_key_to_pem_pkcs8()?)?,
        alg: Algorithm::EdDSA,
        kid,
    })
}

impl Keys {
    pub fn generate() -> Result<Self, KeyError> {
        Ok(Self {
            keys: RwLock::new(vec![
                new_es256("rekono-sim-es256-1".into())?,
                new_rsa("rekono-sim-rs256-1".into(), Algorithm::RS256)?,
                new_rsa("rekono-sim-ps256-1".into(), Algorithm::PS256)?,
                new_eddsa("rekono-sim-eddsa-1".into())?,
            ]),
            current_es256: RwLock::new(0),
            generation: std::sync::atomic::AtomicU32::new(1),
        })
    }

    /// Adds a new ES256 key and signs with it from now on. Returns its `kid`.
    pub fn rotate(&self) -> Result<String, KeyError> {
        let n = self
            .generation
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst)
            + 1;
        let key = new_es256(format!("rekono-sim-es256-{n}"))?;
        let kid = key.kid.clone();
        let mut keys = self.keys.write().unwrap_or_else(|e| e.into_inner());
        keys.push(key);
        *self
            .current_es256
            .write()
            .unwrap_or_else(|e| e.into_inner()) = keys.len() - 1;
        Ok(kid)
    }

    pub fn jwks(&self) -> serde_json::Value {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        serde_json::json!({ "keys": keys.iter().map(|k| k.jwk.clone()).collect::<Vec<_>>() })
    }

    /// Signs `claims` with the current key of `alg` (ES256, RS256, PS256 or EdDSA), with `typ`
    /// in the header.
    pub fn sign<T: Serialize>(
        &self,
        alg: Algorithm,
        typ: &str,
        claims: &T,
    ) -> Result<String, KeyError> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = match alg {
            Algorithm::RS256 | Algorithm::PS256 | Algorithm::EdDSA => {
                keys.iter().rev().find(|k| k.alg == alg)
            }
            _ => keys.get(*self.current_es256.read().unwrap_or_else(|e| e.into_inner())),
        };
        let key = key
            .ok_or(jsonwebtoken::errors::ErrorKind::InvalidKeyFormat)
            .map_err(jsonwebtoken::errors::Error::from)?;
        let mut header = Header::new(key.alg);
        header.kid = Some(key.kid.clone());
        header.typ = Some(typ.to_owned());
        Ok(jsonwebtoken::encode(&header, claims, &key.encoding)?)
    }

    /// The decoding key for `kid`, for checking tokens the simulator issued (id_token_hint).
    pub fn decoding_key(&self, kid: &str) -> Option<(Algorithm, jsonwebtoken::DecodingKey)> {
        let keys = self.keys.read().unwrap_or_else(|e| e.into_inner());
        let key = keys.iter().find(|k| k.kid == kid)?;
        let jwk: jsonwebtoken::jwk::Jwk = serde_json::from_value(key.jwk.clone()).ok()?;
        Some((key.alg, jsonwebtoken::DecodingKey::from_jwk(&jwk).ok()?))
    }
}

/// `len` random bytes, base64url: codes, tokens, ids.
pub fn random_token(len: usize) -> String {
    let mut buf = vec![0u8; len];
    // OpenSSL's CSPRNG; it only fails when the system has no entropy source at all.
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        panic!("no system randomness: refusing to issue predictable tokens");
    }
    b64(&buf)
}

/// A random decimal code of `digits` digits (SMS codes).
pub fn random_digits(digits: u32) -> String {
    let mut buf = [0u8; 8];
    if openssl::rand::rand_bytes(&mut buf).is_err() {
        panic!("no system randomness: refusing to issue predictable codes");
    }
    let n = u64::from_le_bytes(buf) % 10u64.pow(digits);
    format!("{n:0width$}", width = digits as usize)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rotation_adds_a_key_and_signs_with_it() {
        let keys = Keys::generate().unwrap();
        let before = keys.jwks()["keys"].as_array().unwrap().len();
        let token = keys
            .sign(Algorithm::ES256, "JWT", &serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid.as_deref(),
            Some("rekono-sim-es256-1")
        );
        let kid = keys.rotate().unwrap();
        assert_eq!(keys.jwks()["keys"].as_array().unwrap().len(), before + 1);
        let token = keys
            .sign(Algorithm::ES256, "JWT", &serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&token).unwrap().kid,
            Some(kid.clone())
        );
        let (alg, key) = keys.decoding_key(&kid).unwrap();
        let mut v = jsonwebtoken::Validation::new(alg);
        v.required_spec_claims.clear();
        v.validate_exp = false;
        assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).is_ok());
        let rs = keys
            .sign(Algorithm::RS256, "JWT", &serde_json::json!({"a": 1}))
            .unwrap();
        assert_eq!(
            jsonwebtoken::decode_header(&rs).unwrap().alg,
            Algorithm::RS256
        );
        for alg in [Algorithm::PS256, Algorithm::EdDSA] {
            let token = keys.sign(alg, "JWT", &serde_json::json!({"a": 1})).unwrap();
            let header = jsonwebtoken::decode_header(&token).unwrap();
            assert_eq!(header.alg, alg);
            let (key_alg, key) = keys.decoding_key(&header.kid.unwrap()).unwrap();
            assert_eq!(key_alg, alg);
            let mut v = jsonwebtoken::Validation::new(alg);
            v.required_spec_claims.clear();
            v.validate_exp = false;
            assert!(jsonwebtoken::decode::<serde_json::Value>(&token, &key, &v).is_ok());
        }
        assert_eq!(random_digits(6).len(), 6);
    }
}
