//! The login endpoints' rate limits, for the client's address and a certificate's fingerprint:
//! this replica's token buckets, then the fleet's count when state is shared.

use crate::auth::AuthState;
use crate::ratelimit::Endpoint;
use crate::reply::Reply;
use crate::request::Request;
use crate::Shared;

/// The 429 page when `endpoint` (if the request is for a limited one) has no token left for
/// the request's client (`Request::client`) or for `certificate`; `None` lets it through.
pub async fn refused(
    shared: &Shared,
    auth: &AuthState,
    req: &Request<'_>,
    endpoint: Option<Endpoint>,
    certificate: Option<&str>,
) -> Option<Reply> {
    let endpoint = endpoint?;
    let limited = match shared.rate_limits.check(endpoint, req.client, certificate) {
        Err(limited) => limited,
        // This replica's buckets let it through; with shared state, the fleet's count too.
        Ok(()) => crate::state::fleet_rate_limit(shared, endpoint, req.client, certificate).await?,
    };
    Some(crate::ratelimit::refusal(
        shared, auth, req, endpoint, limited,
    ))
}

/// The key a client certificate is limited by: its SHA-256 fingerprint, in hex.
pub fn fingerprint(leaf_der: &[u8]) -> String {
    use sha2::Digest;
    format!("{:x}", sha2::Sha256::digest(leaf_der))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_fingerprint_is_the_sha256_in_lower_hex() {
        assert_eq!(
            fingerprint(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
