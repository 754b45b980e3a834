//! Sealed values: AES-256-GCM with a random nonce, the key's id in front so keys can rotate
//! (the first key seals, every listed key opens), and a *purpose* bound in as associated data
//! so a value sealed as one thing (a login attempt) never opens as another (a session).
//!
//! Wire form, base64url: `1 ‖ key id (4) ‖ nonce (12) ‖ ciphertext ‖ tag (16)`.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use openssl::symm::{decrypt_aead, encrypt_aead, Cipher};
use sha2::{Digest, Sha256};

const VERSION: u8 = 1;
const NONCE: usize = 12;
const TAG: usize = 16;

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    #[error("not a sealed value")]
    Malformed,
    #[error("sealed with a key this gateway does not have")]
    UnknownKey,
    #[error("the value was altered or sealed for another purpose")]
    Forged,
    #[error("sealing failed: {0}")]
    Crypto(String),
}

#[derive(Clone)]
pub struct Sealer {
    /// (key id, key); the first seals.
    keys: Vec<([u8; 4], [u8; 32])>,
}

impl std::fmt::Debug for Sealer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print keys.
        f.debug_struct("Sealer")
            .field("keys", &self.keys.len())
            .finish()
    }
}

impl Sealer {
    /// `keys` must not be empty (checked by the config); the first one seals.
    pub fn new(keys: &[[u8; 32]]) -> Self {
        Self {
            keys: keys
                .iter()
                .map(|k| {
                    let digest: [u8; 32] = Sha256::digest(k).into();
                    let [a, b, c, d, ..] = digest;
                    ([a, b, c, d], *k)
                })
                .collect(),
        }
    }

    pub fn seal(&self, purpose: &[u8], plaintext: &[u8]) -> Result<String, SealError> {
        let (id, key) = self.keys.first().ok_or(SealError::UnknownKey)?;
        let mut nonce = [0u8; NONCE];
        openssl::rand::rand_bytes(&mut nonce).map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut tag = [0u8; TAG];
        let ciphertext = encrypt_aead(
            Cipher::aes_256_gcm(),
            key,
            Some(&nonce),
            purpose,
            plaintext,
            &mut tag,
        )
        .map_err(|e| SealError::Crypto(e.to_string()))?;
        let mut out = Vec::with_capacity(1 + 4 + NONCE + ciphertext.len() + TAG);
        out.push(VERSION);
        out.extend_from_slice(id);
        out.extend_from_slice(&nonce);
        out.extend_from_slice(&ciphertext);
        out.extend_from_slice(&tag);
        Ok(URL_SAFE_NO_PAD.encode(out))
    }

    pub fn open(&self, purpose: &[u8], sealed: &str) -> Result<Vec<u8>, SealError> {
        let raw = URL_SAFE_NO_PAD
            .decode(sealed.trim())
            .map_err(|_| SealError::Malformed)?;
        // version, key id, nonce, ciphertext, tag — split by checked forms (any bytes come in).
        let (&version, rest) = raw.split_first().ok_or(SealError::Malformed)?;
        let (id, rest) = rest.split_at_checked(4).ok_or(SealError::Malformed)?;
        let (nonce, rest) = rest.split_at_checked(NONCE).ok_or(SealError::Malformed)?;
        let (ciphertext, tag) = rest
            .split_at_checked(rest.len().checked_sub(TAG).ok_or(SealError::Malformed)?)
            .ok_or(SealError::Malformed)?;
        if version != VERSION {
            return Err(SealError::Malformed);
        }
        let (_, key) = self
            .keys
            .iter()
            .find(|(k, _)| k == id)
            .ok_or(SealError::UnknownKey)?;
        decrypt_aead(
            Cipher::aes_256_gcm(),
            key,
            Some(nonce),
            purpose,
            ciphertext,
            tag,
        )
        .map_err(|_| SealError::Forged)
    }
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report
mod tests {
    use super::*;

    #[test]
    fn opens_what_it_sealed_and_nothing_else() {
        let s = Sealer::new(&[[1; 32]]);
        let sealed = s.seal(b"session", b"hello").unwrap();
        assert_eq!(s.open(b"session", &sealed).unwrap(), b"hello");
        assert_eq!(
            s.open(b"login", &sealed),
            Err(SealError::Forged),
            "purpose is bound"
        );
        // Flip one bit anywhere in the ciphertext or tag.
        let mut raw = URL_SAFE_NO_PAD.decode(&sealed).unwrap();
        let last = raw.len() - 1;
        raw[last] ^= 1;
        assert_eq!(
            s.open(b"session", &URL_SAFE_NO_PAD.encode(&raw)),
            Err(SealError::Forged)
        );
        raw[last] ^= 1;
        raw[20] ^= 0x80;
        assert_eq!(
            s.open(b"session", &URL_SAFE_NO_PAD.encode(&raw)),
            Err(SealError::Forged)
        );
        assert_eq!(s.open(b"session", "%%%"), Err(SealError::Malformed));
        assert_eq!(s.open(b"session", "AQ"), Err(SealError::Malformed));
        assert_ne!(
            s.seal(b"session", b"hello").unwrap(),
            sealed,
            "a fresh nonce every time"
        );
    }

    #[test]
    fn every_truncation_is_malformed_or_forged_never_a_panic() {
        let s = Sealer::new(&[[1; 32]]);
        let raw = URL_SAFE_NO_PAD
            .decode(s.seal(b"session", b"").unwrap())
            .unwrap();
        for len in 0..raw.len() {
            let cut = URL_SAFE_NO_PAD.encode(&raw[..len]);
            assert!(
                matches!(
                    s.open(b"session", &cut),
                    Err(SealError::Malformed | SealError::Forged)
                ),
                "{len} bytes"
            );
        }
        assert_eq!(
            s.open(b"session", &URL_SAFE_NO_PAD.encode(&raw)).unwrap(),
            b""
        );
    }

    #[test]
    fn rotation_keeps_old_values_open() {
        let old = Sealer::new(&[[1; 32]]);
        let sealed = old.seal(b"session", b"v").unwrap();
        let rotated = Sealer::new(&[[2; 32], [1; 32]]);
        assert_eq!(rotated.open(b"session", &sealed).unwrap(), b"v");
        let new = rotated.seal(b"session", b"w").unwrap();
        assert_eq!(old.open(b"session", &new), Err(SealError::UnknownKey));
        let retired = Sealer::new(&[[2; 32]]);
        assert_eq!(
            retired.open(b"session", &sealed),
            Err(SealError::UnknownKey)
        );
    }
}
