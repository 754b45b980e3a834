//! prehod's identities, with no pingora in sight: sealed values, sessions (cookie, cache,
//! revocation), the OpenID Connect relying party for Rekono, and the signed assertion the
//! gateway hands to portals.

pub mod assertion;
pub mod cert;
mod digest;
pub mod oidc;
pub mod revocation;
pub mod seal;
pub mod session;

/// 24 random bytes, base64url: session ids, states, nonces.
pub fn random_id() -> String {
    use base64::Engine;
    let mut buf = [0u8; 24];
    // OpenSSL's CSPRNG fails only when the system has no entropy source at all; a gateway must
    // not go on issuing predictable ids then.
    if let Err(e) = openssl::rand::rand_bytes(&mut buf) {
        panic!("no system randomness ({e}): refusing to issue predictable identifiers");
    }
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(buf)
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}
