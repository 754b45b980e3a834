//! HTTP/2 streams under the guard: [`Streams`] wraps the proxy's `HttpServerApp`, tells the
//! connection when each stream begins and ends (with none open, the connection's idle
//! deadline runs), races each stream's handling against its request body's minimum-rate
//! deadline (a stream that misses it is reset, its upstream request dropped; the connection's
//! other streams go on), and gives every response write `server.body_timeout` to make
//! progress, over HTTP/1 too.
//!
//! Each request in progress may hold an upstream connection and the memory of its request and
//! answer, however slowly the client reads it: so one HTTP/2 connection may open only
//! `server.h2_max_streams` streams at once (its SETTINGS), and every request takes a place in
//! its address's count of requests in progress (`server.max_requests_per_address`, over all its
//! connections; `server.max_connections` for all addresses) before it is handled. An HTTP/2
//! stream without a place is refused at once with `REFUSED_STREAM` (nothing of it was
//! processed: a client may retry it), counted in `prehod_requests_refused_total{reason}`; an
//! HTTP/1 request is counted but never refused (its connection's place bounds it).

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::v2::server::{default_h2_options, H2Options};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

use super::admission::{Counters, InFlight};
use crate::lifecycle::{Connection, Deadlines, Missed};
use crate::tls::HandshakeInfo;

tokio::task_local! {
    /// The request body of the HTTP/2 stream whose task this is.
    static STREAM_BODY: Arc<StreamBody>;
}

/// An HTTP/2 stream's request body: when it began and how many bytes of it arrived so far;
/// `None` once it is complete.
#[derive(Debug)]
struct StreamBody(Mutex<Option<(Instant, u64)>>);

impl StreamBody {
    fn deadline(&self, deadlines: &Deadlines) -> Option<Instant> {
        let body = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        body.map(|(since, bytes)| deadlines.body_end(since, bytes))
    }
}

/// `n` bytes of the current HTTP/2 stream's request body arrived (`done`: it is complete).
/// Nothing outside an HTTP/2 stream's task (HTTP/1 bodies are timed on their connection).
pub fn stream_body_read(n: usize, done: bool) {
    let _ = STREAM_BODY.try_with(|body| {
        let mut body = body.0.lock().unwrap_or_else(|e| e.into_inner());
        if done {
            *body = None;
        } else if let Some((_, bytes)) = body.as_mut() {
            *bytes = bytes.saturating_add(n as u64);
        }
    });
}

/// The guard's connection of a request, kept in the TLS handshake's `HandshakeInfo`.
fn connection_of(session: &ServerSession) -> Option<&Arc<Connection>> {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|s| s.extension.get::<HandshakeInfo>())
        .map(|h| &h.connection)
}

/// An open HTTP/2 stream, counted on its connection until dropped (however its task ends).
struct OpenStream(Arc<Connection>);

impl OpenStream {
    fn of(connection: &Arc<Connection>) -> Self {
        connection.stream_opened();
        Self(connection.clone())
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// The proxy's `HttpServerApp`, with HTTP/2 streams followed and their bodies timed, and every
/// request counted in `counters` (the public listeners').
pub struct Streams<A> {
    inner: Arc<A>,
    deadlines: Deadlines,
    counters: Arc<Counters>,
    /// Built once: pingora's bounded defaults with `server.h2_max_streams`.
    h2_options: H2Options,
}

impl<A> Streams<A> {
    pub fn new(inner: A, counters: Arc<Counters>) -> Self {
        let mut h2_options = default_h2_options();
        h2_options.max_concurrent_streams(counters.limits().h2_max_streams);
        Self {
            inner: Arc::new(inner),
            deadlines: counters.limits().deadlines.clone(),
            counters,
            h2_options,
        }
    }

    /// A place for the request of `session` (on `connection`) among the requests in progress,
    /// or `None` when an HTTP/2 stream was refused (it is reset with `REFUSED_STREAM`).
    fn start_request(
        &self,
        session: &mut ServerSession,
        connection: Option<&Arc<Connection>>,
    ) -> Option<InFlight> {
        let address = connection.and_then(|c| c.counted_address());
        let http2 = session.is_http2();
        match self.counters.start_request(address, http2) {
            Ok(request) => Some(request),
            Err(refused) => {
                crate::metrics::count(
                    crate::metrics::ProcessCount::RequestRefused,
                    refused.label(),
                );
                tracing::debug!(
                    client = ?address,
                    reason = refused.label(),
                    "an HTTP/2 stream was refused: its address has too many requests in progress"
                );
                session.shutdown_with_reason(h2::Reason::REFUSED_STREAM);
                None
            }
        }
    }
}

/// What a stream's handling returns: pingora's boxed future, as `async_trait` writes it.
type Handled<'a> = Pin<Box<dyn Future<Output = Option<ReusedHttpStream>> + Send + 'a>>;

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Streams<A> {
    /// Not an `async fn`: the request's session moves into the proxy's own future at once, and
    /// what waits for the stream to end holds only that future's box, the request's place and
    /// the body's deadline — 104 bytes (measured in the release build; the proxy's own future
    /// is 9 360). As an `async fn` its box was 1 632 bytes (room for the session and its
    /// handling), held for as long as the stream is open: ~1 MiB at 640 open streams.
    fn process_new_http<'life0, 'life1, 'async_trait>(
        self: &'life0 Arc<Self>,
        mut session: ServerSession,
        shutdown: &'life1 ShutdownWatch,
    ) -> Handled<'async_trait>
    where
        'life0: 'async_trait,
        'life1: 'async_trait,
        Self: 'async_trait,
    {
        // A client that stops reading (an HTTP/2 stream whose window it never opens, a full
        // TCP window) must not hold the response — and its upstream connection — for ever:
        // each write to it must make progress within `body_timeout`.
        session.set_write_timeout(Some(self.deadlines.body));
        let connection = connection_of(&session).cloned();
        let Some(request) = self.start_request(&mut session, connection.as_ref()) else {
            return Box::pin(std::future::ready(None));
        };
        // An HTTP/2 stream keeps its connection busy (its idle deadline waits) while it is open.
        let http2 = session.is_http2();
        let open = connection.as_ref().filter(|_| http2).map(OpenStream::of);
        if !http2 || session.is_body_done() {
            let work = self.inner.process_new_http(session, shutdown);
            return Box::pin(async move {
                let (_request, _open) = (request, open);
                work.await
            });
        }
        let body = Arc::new(StreamBody(Mutex::new(Some((Instant::now(), 0)))));
        let work = STREAM_BODY.scope(body.clone(), self.inner.process_new_http(session, shutdown));
        let deadlines = &self.deadlines;
        Box::pin(async move {
            let (_request, _open) = (request, open);
            tokio::pin!(work);
            loop {
                let Some(deadline) = body.deadline(deadlines) else {
                    return work.await;
                };
                tokio::select! {
                    done = &mut work => return done,
                    () = tokio::time::sleep_until(deadline) => {
                        if body.deadline(deadlines).is_some_and(|d| d <= Instant::now()) {
                            crate::metrics::count(crate::metrics::ProcessCount::SlowClient, Missed::Body.label());
                            tracing::debug!("an HTTP/2 request body missed its deadline: stream reset");
                            return None;
                        }
                    }
                }
            }
        })
    }

    /// pingora's defaults with `server.h2_max_streams` (the proxy sets none of its own).
    fn h2_options(&self) -> Option<H2Options> {
        Some(self.h2_options.clone())
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}
