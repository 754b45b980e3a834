//! A finished request's record: its metrics (count, duration, an upstream failure nobody
//! retried) and its access-log line.

use pingora::proxy::Session;

use super::RequestCtx;
use crate::access_log;
use crate::hygiene::loggable_path;
use crate::metrics;

/// Counts the request under `portal` and writes its access-log line.
pub(super) fn finished(portal: &str, session: &Session, status: u16, ctx: &RequestCtx) {
    let m = &ctx.shared.metrics;
    let elapsed = ctx.started.elapsed();
    match &ctx.portal {
        Some(p) => (p.metrics).finished(m, portal, status, ctx.auth, elapsed.as_secs_f64()),
        None => {
            m.requests
                .with_label_values(&[portal, metrics::status_class(status), ctx.auth])
                .inc();
            m.request_duration
                .with_label_values(&[portal])
                .observe(elapsed.as_secs_f64());
        }
    }
    if let (Some(kind), true) = (ctx.upstream_error, ctx.failed.is_empty()) {
        m.upstream_errors.with_label_values(&[portal, kind]).inc();
    }
    let req = session.req_header();
    let path = loggable_path(req.uri.path_and_query().map_or("/", |p| p.as_str()));
    let host = req
        .headers
        .get(http::header::HOST)
        .and_then(|v| v.to_str().ok())
        .or_else(|| req.uri.host())
        .unwrap_or("-");
    let upstream = match (&ctx.portal, ctx.target) {
        (Some(p), Some(t)) => p.pool.targets.get(t).map(|t| t.label.as_str()),
        _ => None,
    };
    access_log::write(&access_log::AccessEntry {
        request_id: &ctx.request_id,
        portal,
        method: req.method.as_str(),
        path: &path,
        host,
        status,
        bytes: session.body_bytes_sent(),
        duration_ms: elapsed.as_secs_f64() * 1000.0,
        upstream,
        upstream_error: ctx.upstream_error,
        auth: ctx.auth,
        client: ctx.client,
    });
}
