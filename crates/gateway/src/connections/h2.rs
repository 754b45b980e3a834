//! HTTP/2 streams under the guard: [`Streams`] wraps the proxy's `HttpServerApp`, tells the
//! connection when each stream begins and ends (with none open, the connection's idle
//! deadline runs), races each stream's handling against its request body's minimum-rate
//! deadline (a stream that misses it is reset, its upstream request dropped; the connection's
//! other streams go on), and gives every response write `server.body_timeout` to make
//! progress, over HTTP/1 too.

use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream};
use pingora::protocols::http::ServerSession;
use pingora::server::ShutdownWatch;
use tokio::time::Instant;

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

/// An open HTTP/2 stream, counted on its connection until dropped (however its task ends).
struct OpenStream(Arc<Connection>);

impl OpenStream {
    fn of(session: &ServerSession) -> Option<Self> {
        let connection = session
            .digest()
            .and_then(|d| d.ssl_digest.as_ref())
            .and_then(|s| s.extension.get::<HandshakeInfo>())
            .map(|h| h.connection.clone())?;
        connection.stream_opened();
        Some(Self(connection))
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.stream_closed();
    }
}

/// The proxy's `HttpServerApp`, with HTTP/2 streams followed and their bodies timed.
pub struct Streams<A> {
    inner: Arc<A>,
    deadlines: Deadlines,
}

impl<A> Streams<A> {
    pub fn new(inner: A, deadlines: Deadlines) -> Self {
        Self {
            inner: Arc::new(inner),
            deadlines,
        }
    }
}

#[async_trait]
impl<A: HttpServerApp + Send + Sync + 'static> HttpServerApp for Streams<A> {
    async fn process_new_http(
        self: &Arc<Self>,
        mut session: ServerSession,
        shutdown: &ShutdownWatch,
    ) -> Option<ReusedHttpStream> {
        // A client that stops reading (an HTTP/2 stream whose window it never opens, a full
        // TCP window) must not hold the response — and its upstream connection — for ever:
        // each write to it must make progress within `body_timeout`.
        session.set_write_timeout(Some(self.deadlines.body));
        if !session.is_http2() {
            return self.inner.process_new_http(session, shutdown).await;
        }
        let _open = OpenStream::of(&session);
        if session.is_body_done() {
            return self.inner.process_new_http(session, shutdown).await;
        }
        let body = Arc::new(StreamBody(Mutex::new(Some((Instant::now(), 0)))));
        let work = STREAM_BODY.scope(body.clone(), self.inner.process_new_http(session, shutdown));
        tokio::pin!(work);
        loop {
            let Some(deadline) = body.deadline(&self.deadlines) else {
                return work.await;
            };
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep_until(deadline) => {
                    if body.deadline(&self.deadlines).is_some_and(|d| d <= Instant::now()) {
                        crate::metrics::count_slow_client(Missed::Body.label());
                        tracing::debug!("an HTTP/2 request body missed its deadline: stream reset");
                        return None;
                    }
                }
            }
        }
    }

    fn h2_options(&self) -> Option<pingora::protocols::http::v2::server::H2Options> {
        self.inner.h2_options()
    }

    fn server_options(&self) -> Option<&HttpServerOptions> {
        self.inner.server_options()
    }

    async fn http_cleanup(&self) {
        self.inner.http_cleanup().await;
    }
}
