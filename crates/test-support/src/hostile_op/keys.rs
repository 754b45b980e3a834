//! The provider's keys (and the attacker's), and an ID or logout token signed as a
//! [`Signing`] says: good, unsigned, confused, tampered, under an unknown or embedded key.

use base64::Engine;
use serde_json::{json, Value};

use super::Signing;

pub(super) const B64: base64::engine::GeneralPurpose =
    base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// One key pair of the provider (or of the attacker).
pub(super) struct Key {
    pub(super) kid: String,
    pub(super) alg: jsonwebtoken::Algorithm,
    pub(super) encoding: jsonwebtoken::EncodingKey,
    /// The public key as a JWK.
    pub(super) jwk: Value,
}

impl Key {
    pub(super) fn ec(kid: &str) -> Self {
        let group = openssl::ec::EcGroup::from_curve_name(openssl::nid::Nid::X9_62_PRIME256V1)
            .expect("P-256");
        let ec = openssl::ec::EcKey::generate(&group).expect("EC key");
        let (mut x, mut y) = (
            openssl::bn::BigNum::new().expect("bn"),
            openssl::bn::BigNum::new().expect("bn"),
        );
        let mut ctx = openssl::bn::BigNumContext::new().expect("bn ctx");
        ec.public_key()
            .affine_coordinates(&group, &mut x, &mut y, &mut ctx)
            .expect("coordinates");
        let pem = openssl::pkey::PKey::from_ec_key(ec)
            .expect("pkey")
            .private_key_to_pem_pkcs8()
            .expect("pem");
        Self {
            kid: kid.to_owned(),
            alg: jsonwebtoken::Algorithm::ES256,
            encoding: jsonwebtoken::EncodingKey::from_ec_pem(&pem).expect("EC key"),
            jwk: json!({
                "kty": "EC", "crv": "P-256", "use": "sig", "alg": "ES256", "kid": kid,
                "x": B64.encode(x.to_vec_padded(32).expect("x")),
                "y": B64.encode(y.to_vec_padded(32).expect("y")),
            }),
        }
    }

    /// An RSA key, and the PEM of its public key. The test provider's throwaway key may sign
    /// with the `rsa` crate (clippy.toml: RUSTSEC-2023-0071).
    #[allow(clippy::disallowed_methods)]
    pub(super) fn rsa(kid: &str) -> (Self, Vec<u8>) {
        let rsa = openssl::rsa::Rsa::generate(2048).expect("RSA key");
        let public = rsa.public_key_to_pem().expect("public pem");
        let jwk = json!({
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": kid,
            "n": B64.encode(rsa.n().to_vec()),
            "e": B64.encode(rsa.e().to_vec()),
        });
        let pem = rsa.private_key_to_pem().expect("pem");
        let key = Self {
            kid: kid.to_owned(),
            alg: jsonwebtoken::Algorithm::RS256,
            encoding: jsonwebtoken::EncodingKey::from_rsa_pem(&pem).expect("RSA key"),
            jwk,
        };
        (key, public)
    }

    pub(super) fn sign(&self, header: jsonwebtoken::Header, claims: &Value) -> String {
        jsonwebtoken::encode(&header, claims, &self.encoding).expect("sign")
    }

    pub(super) fn header(&self) -> jsonwebtoken::Header {
        let mut h = jsonwebtoken::Header::new(self.alg);
        h.kid = Some(self.kid.clone());
        h
    }
}

pub(super) struct Keys {
    pub(super) es1: Key,
    /// An older EC key still published: with it, a token without `kid` is ambiguous.
    pub(super) es_old: Key,
    /// Published after `rotate()`.
    pub(super) es2: Key,
    pub(super) rs1: Key,
    pub(super) rs1_public_pem: Vec<u8>,
    /// Not published by the provider.
    pub(super) unknown: Key,
    pub(super) attacker: Key,
    /// A 1024-bit RSA key `rs-weak`, published, signing PS256 (review-fapi).
    pub(super) weak: openssl::pkey::PKey<openssl::pkey::Private>,
}

/// The JWK of the weak RSA key.
pub(super) fn weak_jwk(key: &openssl::pkey::PKey<openssl::pkey::Private>) -> Value {
    let rsa = key.rsa().expect("RSA");
    json!({
        "kty": "RSA", "use": "sig", "alg": "PS256", "kid": "rs-weak",
        "n": B64.encode(rsa.n().to_vec()),
        "e": B64.encode(rsa.e().to_vec()),
    })
}

/// A PS256 JWS of `claims` by `key` (OpenSSL: RSASSA-PSS, MGF1-SHA256, salt 32).
fn ps256(key: &openssl::pkey::PKey<openssl::pkey::Private>, kid: &str, claims: &Value) -> String {
    let input = format!(
        "{}.{}",
        B64.encode(json!({"alg": "PS256", "typ": "JWT", "kid": kid}).to_string()),
        B64.encode(claims.to_string())
    );
    let mut signer =
        openssl::sign::Signer::new(openssl::hash::MessageDigest::sha256(), key).expect("signer");
    signer
        .set_rsa_padding(openssl::rsa::Padding::PKCS1_PSS)
        .expect("pss");
    signer
        .set_rsa_mgf1_md(openssl::hash::MessageDigest::sha256())
        .expect("mgf1");
    signer
        .set_rsa_pss_saltlen(openssl::sign::RsaPssSaltlen::DIGEST_LENGTH)
        .expect("salt");
    let sig = signer.sign_oneshot_to_vec(input.as_bytes()).expect("sign");
    format!("{input}.{}", B64.encode(sig))
}

impl Keys {
    pub(super) fn jwks(&self, rotated: bool) -> Value {
        let mut keys = vec![
            self.es1.jwk.clone(),
            self.es_old.jwk.clone(),
            self.rs1.jwk.clone(),
            weak_jwk(&self.weak),
        ];
        if rotated {
            keys.push(self.es2.jwk.clone());
        }
        json!({ "keys": keys })
    }

    pub(super) fn sign(
        &self,
        signing: Signing,
        claims: &Value,
        issuer: &str,
        rotated: bool,
    ) -> String {
        let flip = |jwt: String| {
            let (signed, sig) = jwt.rsplit_once('.').expect("three parts");
            let mut sig = B64.decode(sig).expect("signature");
            sig[0] ^= 0x01;
            format!("{signed}.{}", B64.encode(sig))
        };
        match signing {
            Signing::Es256 => self.es1.sign(self.es1.header(), claims),
            Signing::Rs256 => self.rs1.sign(self.rs1.header(), claims),
            Signing::None => {
                let header = json!({"alg": "none", "typ": "JWT", "kid": self.es1.kid});
                format!(
                    "{}.{}.",
                    B64.encode(header.to_string()),
                    B64.encode(claims.to_string())
                )
            }
            Signing::Hs256WithPublicKey => {
                let mut h = jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256);
                h.kid = Some(self.rs1.kid.clone());
                let key = jsonwebtoken::EncodingKey::from_secret(&self.rs1_public_pem);
                jsonwebtoken::encode(&h, claims, &key).expect("sign")
            }
            Signing::BadSigRs256 => flip(self.rs1.sign(self.rs1.header(), claims)),
            Signing::BadSigEs256 => flip(self.es1.sign(self.es1.header(), claims)),
            Signing::NoKid => self
                .es1
                .sign(jsonwebtoken::Header::new(self.es1.alg), claims),
            Signing::UnknownKid => self.unknown.sign(self.unknown.header(), claims),
            Signing::Rotated => {
                assert!(rotated, "sign with es-2 only once it is published");
                self.es2.sign(self.es2.header(), claims)
            }
            Signing::EmbeddedJwk => {
                let mut h = self.attacker.header();
                h.jwk = Some(
                    serde_json::from_value(self.attacker.jwk.clone()).expect("the attacker's JWK"),
                );
                self.attacker.sign(h, claims)
            }
            Signing::Ps256Weak => ps256(&self.weak, "rs-weak", claims),
            Signing::Jku => {
                let mut h = self.attacker.header();
                h.jku = Some(format!("{issuer}/attacker/jwks.json"));
                self.attacker.sign(h, claims)
            }
        }
    }
}
