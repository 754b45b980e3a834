//! The way to a portal's upstream: target selection and retry on a connect failure, the
//! forwarding and identity headers of the upstream request, and the gateway's cookies kept
//! out of the portal's response.

use std::time::Instant;

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

/// The portal's cookies only, `X-Forwarded-*`, and the request id.
pub(super) fn forwarding_headers(
    client: &RequestHeader,
    upstream: &mut RequestHeader,
    ctx: &RequestCtx,
) -> Result<()> {
    let shared = &ctx.shared;
    match shared.hygiene.upstream_cookie(&client.headers) {
        None => {}
        Some(None) => {
            upstream.remove_header("cookie");
        }
        Some(Some(cookie)) => {
            upstream.insert_header("cookie", cookie)?;
        }
    }
    let xff = (shared.hygiene).forwarded_for(&client.headers, ctx.client, ctx.trusted_proxy);
    if let Some(xff) = xff {
        upstream.insert_header("x-forwarded-for", xff)?;
    }
    if !ctx.trusted_proxy || !upstream.headers.contains_key("x-forwarded-proto") {
        upstream.insert_header("x-forwarded-proto", "https")?;
    }
    if !ctx.trusted_proxy || !upstream.headers.contains_key("x-forwarded-host") {
        if let Some(portal) = &ctx.portal {
            upstream.insert_header("x-forwarded-host", portal.config.host.as_str())?;
        }
    }
    upstream.insert_header(shared.wire_names.request_id.clone(), &ctx.request_id)?;
    Ok(())
}

/// The identity of the request's session as headers, and its signed assertion for the
/// portal (without which the request does not go on: the portal may rely on it).
pub(super) fn identity_headers(upstream: &mut RequestHeader, ctx: &RequestCtx) -> Result<()> {
    let shared = &ctx.shared;
    let (Some(s), Some(auth), Some(portal)) = (&ctx.session, &shared.auth, &ctx.portal) else {
        return Ok(());
    };
    let names = &shared.wire_names;
    crate::identity_headers::each(s, |kind, value| {
        upstream.insert_header(names[kind].clone(), value)
    })?;
    let jwt = (auth.signer)
        .sign_cached(s, &portal.audience, prehod_identity::unix_now())
        .map_err(|e| {
            let why = format!("signing the identity assertion: {e}");
            Error::explain(ErrorType::InternalError, why)
        })?;
    upstream.insert_header(names[IdentityHeader::Assertion].clone(), &*jwt)?;
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
