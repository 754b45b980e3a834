//! The plain-HTTP listeners (the HTTPS redirect, the admin listener) under the guard: pingora's
//! loop for a `ServeHttp` app, which also tells the connection where each request is — the
//! header read, the answer written — and keeps a client cut by a deadline out of the ERROR log
//! (it is counted in `prehod_slow_clients_total`). These listeners never read a request body:
//! a request that announces one is answered and its connection closed. Each write of the
//! answer must make progress within `server.body_timeout`.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::http_app::ServeHttp;
use pingora::apps::{HttpPersistentSettings, HttpServerApp, ReusedHttpStream};
use pingora::http::ResponseHeader;
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;

use super::{announces_body, current, Limits};

/// How long a kept-alive connection may wait for its next request by pingora's own count
/// (pingora's default); the guard's `server.idle_timeout` applies as well.
const KEEPALIVE_SECS: u64 = 60;

/// A `ServeHttp` app whose connections the guard follows.
pub struct Signalled<S> {
    inner: S,
    write_timeout: Duration,
}

impl<S> Signalled<S> {
    pub fn new(inner: S, limits: &Limits) -> Self {
        Self {
            inner,
            write_timeout: limits.deadlines.body,
        }
    }
}

#[async_trait]
impl<S: ServeHttp + Send + Sync + 'static> HttpServerApp for Signalled<S> {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        match session.read_request().await {
            Ok(true) => {}
            // The client closed (or went quiet past its wait) before a request.
            Ok(false) => return None,
            Err(e) => {
                tracing::debug!(error = %e, "no request read from a plain-HTTP client");
                return None;
            }
        }
        let connection = current();
        if let Some(c) = &connection {
            c.header_done(false);
        }
        let keepalive = !*shutdown.borrow() && !announces_body(&session.req_header().headers);
        session.set_keepalive(keepalive.then_some(KEEPALIVE_SECS));
        session.set_write_timeout(Some(self.write_timeout));
        let (parts, body) = self.inner.response(&mut session).await.into_parts();
        let header: ResponseHeader = parts.into();
        let written = match session.write_response_header(Box::new(header)).await {
            Ok(()) if body.is_empty() => Ok(()),
            Ok(()) => session.write_response_body(body.into(), true).await,
            Err(e) => Err(e),
        };
        if let Err(e) = written {
            tracing::debug!(error = %e, "a plain-HTTP answer was not written");
            return None;
        }
        if let Some(c) = &connection {
            c.request_done();
        }
        let settings = HttpPersistentSettings::for_session(&session);
        match session.finish().await {
            Ok(reusable) => reusable.map(|s| ReusedHttpStream::from_reusable_stream(s, settings)),
            Err(e) => {
                tracing::debug!(error = %e, "a plain-HTTP connection ended uncleanly");
                None
            }
        }
    }
}
