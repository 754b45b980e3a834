//! The way to a portal's upstream: target selection and retry on a connect failure, the
//! forwarding and identity headers of the upstream request, and the gateway's cookies kept
//! out of the portal's response.

use std::time::Instant;

use http::header::{self, HeaderMap, HeaderName, HeaderValue};
use pingora::http::{RequestHeader, ResponseHeader};
use pingora::prelude::HttpPeer;
use pingora::{Error, ErrorSource, ErrorType, Result};
use prehod_config::IdentityHeader;

use super::RequestCtx;
use crate::hygiene::Hygiene;

/// The routed portal's next healthy target, one not failed for this request.
pub(super) fn peer(ctx: &mut RequestCtx) -> Result<Box<HttpPeer>> {
    let portal = (ctx.portal.clone())
        .ok_or_else(|| Error::explain(ErrorType::InternalError, "no portal routed"))?;
    let (pool, template) = (&portal.pool, &portal.peer);
    let (target, addr) = pool.select(&ctx.failed).ok_or_else(|| {
        let mut e = Error::explain(ErrorType::ConnectNoRoute, "no upstream target is resolved");
        e.esource = ErrorSource::Upstream;
        e
    })?;
    ctx.target = Some(target);
    ctx.upstream_started = Some(Instant::now());
    let sni = pool
        .targets
        .get(target)
        .map(|t| t.target.host.clone())
        .unwrap_or_default();
    let mut peer = HttpPeer::new(addr, template.tls, sni);
    peer.options = template.options.clone();
    Ok(Box::new(peer))
}

/// A connect failure takes the target out of rotation and, when another target is left,
/// marks the error for a retry there.
pub(super) fn connect_failed(ctx: &mut RequestCtx, mut e: Box<Error>) -> Box<Error> {
    let (shared, portal) = (ctx.shared.clone(), ctx.portal.clone());
    if let (Some(portal), Some(target)) = (portal, ctx.target) {
        let pool = &portal.pool;
        if let Some(t) = pool.targets.get(target) {
            t.mark(false);
        }
        ctx.failed.push(target);
        let (kind, _) = crate::respond::upstream_failure(&e);
        shared
            .metrics
            .upstream_errors
            .with_label_values(&[&portal.config.name, kind])
            .inc();
        e.set_retry(pool.select(&ctx.failed).is_some());
    }
    e
}

/// The request to the portal: the client's, with the forwarding headers and, on a request
/// with a session, the identity headers set.
///
/// pingora's `RequestHeader` keeps a second map, of the client's letter case of each header
/// name, and its `insert_header` parses the name again and writes both maps, each cloned at
/// its exact size and so grown by the first insert: ~2 000 instructions per header set
/// (issue 20, benches/README.md "one header map to the portal"). The request is taken apart
/// into its `http` parts instead, its one map grown once to what is added, the headers set by
/// their parsed names, and put back together without the case map. Header names then go to
/// the portal in lower case (a few, `Host`, `Content-Type`…, in pingora's title case), as
/// every HTTP/2 client's already went: names are case-insensitive (RFC 9110 §5.1). A
/// request-target the URI does not hold as it was sent (absolute form; bytes that are not
/// UTF-8, which pingora's parser refuses today with a 400) is put back as it was sent.
pub(super) fn prepare(
    client: &RequestHeader,
    upstream: &mut RequestHeader,
    ctx: &RequestCtx,
) -> Result<()> {
    // An empty request (no allocation) holds the place while the parts are out.
    let empty = RequestHeader::from(http::Request::new(()).into_parts().0);
    let taken = std::mem::replace(upstream, empty);
    let as_uri = taken.uri.path_and_query().map(|p| p.as_str().as_bytes());
    let verbatim = (!taken.raw_path_is_utf8() || as_uri != Some(taken.raw_path()))
        .then(|| taken.raw_path().to_vec());
    let end_stream = taken.send_end_stream();
    let mut parts = http::request::Parts::from(taken);
    let identity = match ctx.session {
        Some(_) => IdentityHeader::ALL.len() + 1,
        None => 0,
    };
    parts.headers.reserve(FORWARDING_HEADERS + identity);
    forwarding_headers(&client.headers, &mut parts.headers, ctx)?;
    identity_headers(&mut parts.headers, ctx)?;
    *upstream = RequestHeader::from(parts);
    if let Some(target) = verbatim {
        upstream.set_raw_path(&target)?;
    }
    if let Some(end_stream) = end_stream {
        upstream.set_send_end_stream(end_stream);
    }
    Ok(())
}

/// How many headers `forwarding_headers` sets at the most.
const FORWARDING_HEADERS: usize = 5;

/// A header value the gateway made; one that cannot be sent is an error of the request.
fn value<T>(v: T) -> Result<HeaderValue>
where
    HeaderValue: TryFrom<T>,
{
    HeaderValue::try_from(v)
        .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "invalid header value"))
}

/// The portal's cookies only, `X-Forwarded-*`, and the request id.
fn forwarding_headers(
    client: &HeaderMap,
    upstream: &mut HeaderMap,
    ctx: &RequestCtx,
) -> Result<()> {
    let shared = &ctx.shared;
    match shared.hygiene.upstream_cookie(client) {
        None => {}
        Some(None) => {
            upstream.remove(header::COOKIE);
        }
        Some(Some(cookie)) => {
            upstream.insert(header::COOKIE, value(cookie)?);
        }
    }
    let xff = (shared.hygiene).forwarded_for(client, ctx.client, ctx.trusted_proxy);
    if let Some(xff) = xff {
        upstream.insert(X_FORWARDED_FOR, value(xff)?);
    }
    if !ctx.trusted_proxy || !upstream.contains_key(X_FORWARDED_PROTO) {
        upstream.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
    }
    if !ctx.trusted_proxy || !upstream.contains_key(X_FORWARDED_HOST) {
        if let Some(portal) = &ctx.portal {
            let host = match &portal.forwarded_host {
                Some(host) => host.clone(),
                None => value(portal.config.host.as_str())?,
            };
            upstream.insert(X_FORWARDED_HOST, host);
        }
    }
    let request_id = shared.config.headers.request_id.clone();
    upstream.insert(request_id, value(ctx.request_id.as_str())?);
    Ok(())
}

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");

/// The identity of the request's session as headers, and its signed assertion for the
/// portal (without which the request does not go on: the portal may rely on it). Both are
/// header values the session keeps from its first request ([`crate::identity_headers::values`],
/// `Signer::sign_cached`): a request clones them.
fn identity_headers(upstream: &mut HeaderMap, ctx: &RequestCtx) -> Result<()> {
    let shared = &ctx.shared;
    let (Some(s), Some(auth), Some(portal)) = (&ctx.session, &shared.auth, &ctx.portal) else {
        return Ok(());
    };
    let names = &shared.config.headers;
    let values = crate::identity_headers::values(s)
        .map_err(|_| Error::explain(ErrorType::InvalidHTTPHeader, "invalid header value"))?;
    for (kind, v) in values.iter() {
        upstream.insert(names[*kind].clone(), v.clone());
    }
    let jwt = (auth.signer)
        .sign_cached(s, &portal.audience, prehod_identity::unix_now())
        .map_err(|e| {
            let why = format!("signing the identity assertion: {e}");
            Error::explain(ErrorType::InternalError, why)
        })?;
    upstream.insert(names[IdentityHeader::Assertion].clone(), jwt);
    Ok(())
}

/// The portal's response with the gateway's headers: the request id, HSTS unless the portal
/// sent its own, and the session cookie when its idle time was rolled. Set as `prepare` sets
/// the request's: in the response's one map, grown once (also for the `Date` and `Connection`
/// pingora adds after this), the case map of the portal's header names left out. A reason
/// phrase of the portal's own is kept.
pub(super) fn finish_response(response: &mut ResponseHeader, ctx: &RequestCtx) -> Result<()> {
    let empty = ResponseHeader::from(http::Response::new(()).into_parts().0);
    let taken = std::mem::replace(response, empty);
    let reason = taken.get_reason_phrase();
    let reason = (reason != taken.status.canonical_reason()).then(|| reason.map(str::to_owned));
    let mut parts = http::response::Parts::from(taken);
    // Ours (three at the most) and pingora's (`Date`, `Connection`).
    parts.headers.reserve(5);
    let shared = &ctx.shared;
    let request_id = shared.config.headers.request_id.clone();
    parts
        .headers
        .insert(request_id, value(ctx.request_id.as_str())?);
    if !parts
        .headers
        .contains_key(header::STRICT_TRANSPORT_SECURITY)
    {
        let hsts = HeaderValue::from_static(crate::pages::STRICT_TRANSPORT_SECURITY);
        parts
            .headers
            .insert(header::STRICT_TRANSPORT_SECURITY, hsts);
    }
    if let (Some(rolled), Some(auth)) = (&ctx.rolled, &shared.auth) {
        let cookie = auth.session_cookie(rolled, auth.sessions.absolute().as_secs());
        parts.headers.append(header::SET_COOKIE, value(cookie)?);
    }
    *response = ResponseHeader::from(parts);
    if let Some(reason) = reason {
        response.set_reason_phrase(reason.as_deref())?;
    }
    Ok(())
}

/// Drops a portal's `Set-Cookie` for one of the gateway's own cookies.
pub(super) fn drop_gateway_cookies(hygiene: &Hygiene, upstream: &mut ResponseHeader) -> Result<()> {
    let set_cookies = upstream.headers.get_all(http::header::SET_COOKIE);
    if !set_cookies
        .iter()
        .any(|v| hygiene.is_gateway_set_cookie(v.as_bytes()))
    {
        return Ok(());
    }
    let kept: Vec<http::HeaderValue> = set_cookies
        .iter()
        .filter(|v| !hygiene.is_gateway_set_cookie(v.as_bytes()))
        .cloned()
        .collect();
    upstream.remove_header(&http::header::SET_COOKIE);
    for v in kept {
        upstream.append_header(http::header::SET_COOKIE, v)?;
    }
    Ok(())
}
