//! The client's authentication at the token endpoint with `private_key_jwt` (RFC 7523 2.2,
//! OIDC Core 9): a short-lived client assertion signed with OpenSSL — RS256 with an RSA key
//! (PS256 under the FAPI 2.0 profile), ES256 with an EC P-256 key. The same signing makes the
//! DPoP proofs (`dpop.rs`). OpenSSL blinds its RSA private-key operations; the `rsa` crate,
//! whose are not constant-time (RUSTSEC-2023-0071, "Marvin"), never sees the key.
//! (`client_secret_basic` needs nothing here: `openidconnect` sends the secret.)

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::ecdsa::EcdsaSig;
use openssl::error::ErrorStack;
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::rsa::Padding;
use openssl::sign::Signer;

use super::OidcError;

/// How long a client assertion is valid.
const LIFETIME: u64 = 60;

/// The JWS algorithm a client key signs with.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Alg {
    /// RSASSA-PKCS1-v1_5 with SHA-256.
    Rs256,
    /// ECDSA on P-256 with SHA-256.
    Es256,
    /// RSASSA-PSS with SHA-256 (FAPI 2.0 allows no PKCS#1 v1.5).
    Ps256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
            Alg::Ps256 => "PS256",
        }
    }
}

/// The client's private key (`oidc.client_key`), parsed once when the provider is
/// discovered. Not `Debug`: it is a secret.
pub(super) struct ClientKey {
    alg: Alg,
    key: PKey<Private>,
}

impl ClientKey {
    /// `pem`: the private key the config read; `rsa`: whether the config found it an RSA key
    /// (otherwise it is EC P-256); `pss`: an RSA key signs PS256, not RS256 (FAPI 2.0). A key
    /// of another kind is a configuration error, whose message never quotes the key.
    pub(super) fn from_pem(pem: &[u8], rsa: bool, pss: bool) -> Result<Self, OidcError> {
        let bad = |what: &str| OidcError::Config(format!("client key: {what}"));
        let key = PKey::private_key_from_pem(pem).map_err(|_| bad("not a PEM private key"))?;
        let alg = if rsa {
            key.rsa().map_err(|_| bad("not an RSA private key"))?;
            if key.bits() < prehod_config::MIN_RSA_BITS {
                return Err(bad(&format!(
                    "a {}-bit RSA key: at least {} bits",
                    key.bits(),
                    prehod_config::MIN_RSA_BITS
                )));
            }
            if pss {
                Alg::Ps256
            } else {
                Alg::Rs256
            }
        } else {
            let ec = key
                .ec_key()
                .map_err(|_| bad("not an RSA or EC private key"))?;
            if ec.group().curve_name() != Some(Nid::X9_62_PRIME256V1) {
                return Err(bad("the EC curve is not P-256"));
            }
            Alg::Es256
        };
        Ok(Self { alg, key })
    }

    /// A new EC P-256 key (ES256), for DPoP proofs: made at start-up, never stored.
    pub(super) fn generate_p256() -> Result<Self, OidcError> {
        let key = openssl::ec::EcGroup::from_curve_name(Nid::X9_62_PRIME256V1)
            .and_then(|g| openssl::ec::EcKey::generate(&g))
            .and_then(PKey::from_ec_key)
            .map_err(|e| OidcError::Config(format!("DPoP key: {e}")))?;
        Ok(Self {
            alg: Alg::Es256,
            key,
        })
    }

    /// The public half as a JWK (RFC 7517/7518; EC keys only: the DPoP key), and its RFC 7638
    /// thumbprint's members in their canonical order.
    pub(super) fn public_jwk(&self) -> Result<serde_json::Value, OidcError> {
        let bad = |e: ErrorStack| OidcError::Config(format!("DPoP key: {e}"));
        let ec = self.key.ec_key().map_err(bad)?;
        let mut ctx = openssl::bn::BigNumContext::new().map_err(bad)?;
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().map_err(bad)?,
            openssl::bn::BigNum::new().map_err(bad)?,
        );
        ec.public_key()
            .affine_coordinates(ec.group(), &mut x, &mut y, &mut ctx)
            .map_err(bad)?;
        Ok(serde_json::json!({
            "crv": "P-256",
            "kty": "EC",
            "x": URL_SAFE_NO_PAD.encode(x.to_vec_padded(32).map_err(bad)?),
            "y": URL_SAFE_NO_PAD.encode(y.to_vec_padded(32).map_err(bad)?),
        }))
    }

    /// A compact JWS of `claims` with `header` (its `alg` set here), signed with this key.
    pub(super) fn sign_jwt(
        &self,
        mut header: serde_json::Value,
        claims: &serde_json::Value,
    ) -> Result<String, OidcError> {
        if let Some(fields) = header.as_object_mut() {
            fields.insert("alg".into(), self.alg.name().into());
        }
        let signing_input = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(header.to_string()),
            URL_SAFE_NO_PAD.encode(claims.to_string())
        );
        let signature = self
            .sign(signing_input.as_bytes())
            .map_err(|e| OidcError::Config(format!("signing a JWT: {e}")))?;
        Ok(format!(
            "{signing_input}.{}",
            URL_SAFE_NO_PAD.encode(signature)
        ))
    }

    /// A client assertion for `audience` (the token endpoint; the issuer under FAPI 2.0):
    /// `iss` and `sub` the client id, valid for a minute from `now`, with a fresh `jti`.
    pub(super) fn assertion(
        &self,
        client_id: &str,
        audience: &str,
        now: u64,
    ) -> Result<String, OidcError> {
        let claims = serde_json::json!({
            "iss": client_id,
            "sub": client_id,
            "aud": audience,
            "iat": now,
            "exp": now.saturating_add(LIFETIME),
            "jti": crate::random_id(),
        });
        self.sign_jwt(serde_json::json!({"typ": "JWT"}), &claims)
    }

    /// The JWS signature of `input` (RFC 7518 3.3 and 3.4).
    fn sign(&self, input: &[u8]) -> Result<Vec<u8>, ErrorStack> {
        let mut signer = Signer::new(MessageDigest::sha256(), &self.key)?;
        match self.alg {
            Alg::Rs256 => signer.set_rsa_padding(Padding::PKCS1)?,
            // RFC 7518 3.5: MGF1 with SHA-256, a salt as long as the hash.
            Alg::Ps256 => {
                signer.set_rsa_padding(Padding::PKCS1_PSS)?;
                signer.set_rsa_mgf1_md(MessageDigest::sha256())?;
                signer.set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)?;
            }
            Alg::Es256 => {}
        }
        let signature = signer.sign_oneshot_to_vec(input)?;
        match self.alg {
            Alg::Rs256 | Alg::Ps256 => Ok(signature),
            // OpenSSL writes ECDSA signatures in DER; JWS wants R and S, 32 bytes each.
            Alg::Es256 => {
                let signature = EcdsaSig::from_der(&signature)?;
                let mut raw = signature.r().to_vec_padded(32)?;
                raw.extend_from_slice(&signature.s().to_vec_padded(32)?);
                Ok(raw)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use jsonwebtoken::{Algorithm, DecodingKey, Validation};

    const CLIENT: &str = "prehod";
    const TOKEN_ENDPOINT: &str = "https://rekono.example/token";

    fn rsa_key() -> PKey<Private> {
        PKey::from_rsa(openssl::rsa::Rsa::generate(2048).unwrap()).unwrap()
    }

    fn ec_key(curve: Nid) -> PKey<Private> {
        let group = openssl::ec::EcGroup::from_curve_name(curve).unwrap();
        PKey::from_ec_key(openssl::ec::EcKey::generate(&group).unwrap()).unwrap()
    }

    /// The assertion checked as the provider checks it (Rekono's simulator does it so), with
    /// only the public key.
    fn verify(
        assertion: &str,
        public_pem: &[u8],
        alg: Algorithm,
    ) -> jsonwebtoken::errors::Result<serde_json::Value> {
        let key = match alg {
            Algorithm::RS256 => DecodingKey::from_rsa_pem(public_pem)?,
            _ => DecodingKey::from_ec_pem(public_pem)?,
        };
        let mut v = Validation::new(alg);
        v.set_audience(&[TOKEN_ENDPOINT]);
        v.set_issuer(&[CLIENT]);
        v.sub = Some(CLIENT.into());
        v.set_required_spec_claims(&["exp", "iss", "sub", "aud"]);
        jsonwebtoken::decode::<serde_json::Value>(assertion, &key, &v).map(|d| d.claims)
    }

    #[test]
    fn a_client_assertion_verifies_with_the_public_key_and_only_with_it() {
        for (key, rsa, alg) in [
            (rsa_key(), true, Algorithm::RS256),
            (ec_key(Nid::X9_62_PRIME256V1), false, Algorithm::ES256),
        ] {
            let pem = key.private_key_to_pem_pkcs8().unwrap();
            let public = key.public_key_to_pem().unwrap();
            let client = ClientKey::from_pem(&pem, rsa, false).unwrap();
            let now = crate::unix_now();
            let assertion = client.assertion(CLIENT, TOKEN_ENDPOINT, now).unwrap();
            assert_eq!(jsonwebtoken::decode_header(&assertion).unwrap().alg, alg);
            let claims = verify(&assertion, &public, alg).unwrap();
            assert_eq!(claims["aud"], TOKEN_ENDPOINT);
            assert_eq!(
                (claims["iat"].as_u64(), claims["exp"].as_u64()),
                (Some(now), Some(now + 60))
            );
            assert!(claims["jti"].as_str().is_some_and(|j| j.len() >= 32));
            // Another jti each time: the provider refuses a replayed one.
            let again = client.assertion(CLIENT, TOKEN_ENDPOINT, now).unwrap();
            assert_ne!(verify(&again, &public, alg).unwrap()["jti"], claims["jti"]);

            // Another key's public half does not verify it…
            let other = if rsa {
                rsa_key()
            } else {
                ec_key(Nid::X9_62_PRIME256V1)
            };
            assert!(verify(&assertion, &other.public_key_to_pem().unwrap(), alg).is_err());
            // …nor does the right one once the claims are changed.
            let mut parts: Vec<&str> = assertion.split('.').collect();
            let forged = URL_SAFE_NO_PAD.encode(claims.to_string().replace(CLIENT, "attacker"));
            parts[1] = &forged;
            assert!(verify(&parts.join("."), &public, alg).is_err());
        }
    }

    #[test]
    fn a_key_of_another_kind_is_a_configuration_error_that_does_not_quote_it() {
        let rsa = rsa_key().private_key_to_pem_pkcs8().unwrap();
        let p256 = ec_key(Nid::X9_62_PRIME256V1)
            .private_key_to_pem_pkcs8()
            .unwrap();
        let p384 = ec_key(Nid::SECP384R1).private_key_to_pem_pkcs8().unwrap();
        for (pem, rsa) in [
            (&p256, true),
            (&rsa, false),
            (&p384, false),
            (
                &b"-----BEGIN PRIVATE KEY-----\nnonsense\n-----END PRIVATE KEY-----\n".to_vec(),
                true,
            ),
        ] {
            match ClientKey::from_pem(pem, rsa, false) {
                Err(OidcError::Config(m)) => {
                    assert!(m.starts_with("client key: "), "{m}");
                    assert!(!m.contains("BEGIN") && !m.contains("nonsense"), "{m}");
                }
                Err(e) => panic!("{e}"),
                Ok(_) => panic!("a key of the wrong kind was taken"),
            }
        }
    }

    /// Review (review-fapi), finding 3: FAPI 2.0 (5.4.1) asks for RSA keys of at least 2048
    /// bits; a 1024-bit key was taken and signed PS256 client assertions. Refused under every
    /// profile.
    #[test]
    fn a_weak_rsa_client_key_is_refused() {
        let weak = PKey::from_rsa(openssl::rsa::Rsa::generate(1024).unwrap())
            .unwrap()
            .private_key_to_pem_pkcs8()
            .unwrap();
        for pss in [true, false] {
            match ClientKey::from_pem(&weak, true, pss) {
                Err(OidcError::Config(_)) => {}
                Err(e) => panic!("{e}"),
                Ok(key) => {
                    let signed = key.assertion(CLIENT, TOKEN_ENDPOINT, crate::unix_now());
                    panic!(
                        "a 1024-bit RSA client key was taken (PS256: {pss}; assertion signed: {})",
                        signed.is_ok()
                    );
                }
            }
        }
    }
}
