//! Reading a request body into memory, within the body budget (`crate::budget`): the only
//! way the gateway buffers a body rather than streaming it. The memory is reserved before
//! the first byte is read — the declared length, or the most the body may be — so a client
//! cannot push the gateway past the budget by sending slowly, or by opening many streams.

use std::net::IpAddr;
use std::sync::Arc;

use bytes::Bytes;
use pingora::proxy::Session;

use crate::budget::{BodyBudget, ConnectionId, Hold, Refused};

/// The largest body the login host reads (a back-channel logout token, a form).
pub const LOGIN_HOST_MAX: usize = 64 * 1024;

/// What reading a body into memory gave.
#[derive(Debug)]
pub enum Buffered {
    /// The whole body, and the memory it holds until the hold is dropped.
    Body(Bytes, Hold),
    /// Larger than the most it may be: declared so (nothing was read), or found so while
    /// reading (the rest was not read).
    TooLarge,
    /// No memory for it now (nothing was read).
    Refused(Refused),
}

/// The length a request header declares, when it declares one that is a number.
fn declared_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse().ok())
}

/// The connection a request came on, for the per-connection limit: its TLS digest, which
/// every request (HTTP/2 stream) of the connection shares.
fn connection_of(session: &Session) -> Option<ConnectionId> {
    let digest = session.digest()?.ssl_digest.clone()?;
    Some(digest)
}

/// Reads the request body of `session` into memory: at most `max` bytes, `client`'s memory
/// reserved from `budget` first. A body declared larger than `max` is not read at all.
pub async fn read(
    session: &mut Session,
    budget: &Arc<BodyBudget>,
    client: Option<IpAddr>,
    max: usize,
) -> pingora::Result<Buffered> {
    let limit = max as u64;
    let reserve = match declared_length(&session.req_header().headers) {
        Some(n) if n > limit => return Ok(Buffered::TooLarge),
        Some(n) => n,
        None => limit,
    };
    let hold = match budget.reserve(reserve, client, connection_of(session)) {
        Ok(hold) => hold,
        Err(refused) => return Ok(Buffered::Refused(refused)),
    };
    // The reservation is the most this body may hold: take it at once, never more.
    let capacity = usize::try_from(hold.bytes()).unwrap_or(max).min(max);
    let mut body = Vec::with_capacity(capacity);
    while let Some(chunk) = session.read_request_body().await? {
        if body.len().saturating_add(chunk.len()) > capacity {
            return Ok(Buffered::TooLarge);
        }
        body.extend_from_slice(&chunk);
    }
    Ok(Buffered::Body(Bytes::from(body), hold))
}
