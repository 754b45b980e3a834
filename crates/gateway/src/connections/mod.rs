//! Slow and greedy clients: a deadline for the whole request header and a minimum average
//! rate for request bodies, a cap on the connections one client address holds, and a cap on
//! the connections that have not yet sent their first request.
//!
//! pingora 0.9.1 times each *read* of a request header (`read_timeout`, or the keep-alive
//! timeout), never the whole header, so a client that sends a line every few seconds holds its
//! connection for ever. The deadline cannot be set through pingora's options; it is enforced
//! underneath it: [`Guarded`] wraps the proxy's `ServerApp` and hands it each TLS stream
//! wrapped in a [`GuardedStream`], whose reads fail with `TimedOut` once the connection's
//! current deadline has passed (pingora then closes the connection). The request phases tell
//! the connection where it is through the [`Connection`] that the TLS handshake put in the
//! connection's `HandshakeInfo`: header complete ([`Connection::header_done`]), body complete
//! ([`Connection::body_done`]), response done ([`Connection::request_done`]).
//!
//! HTTP/2 connections get the header deadline for their first request only (several streams
//! share one connection, and h2 delivers a stream's header whole). Each HTTP/2 stream's request
//! body has the same minimum-rate deadline as an HTTP/1 body: [`Streams`] wraps the proxy's
//! `HttpServerApp` and races each stream's handling against its body's deadline; a stream that
//! misses it is reset (its upstream request dropped), the connection's other streams go on.

use std::collections::HashMap;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::{HttpServerApp, HttpServerOptions, ReusedHttpStream, ServerApp};
use pingora::protocols::http::ServerSession;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use pingora::server::ShutdownWatch;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use crate::tls::HandshakeInfo;

/// The limits, from `server.*`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    /// Bytes per second, at least 1.
    pub body_min_rate: u64,
    pub max_per_address: u32,
    pub max_pending: usize,
}

impl Limits {
    pub fn new(server: &prehod_config::Server) -> Self {
        Self {
            header_timeout: server.header_timeout,
            body_timeout: server.body_timeout,
            body_min_rate: server.body_min_rate.max(1),
            max_per_address: server.max_connections_per_address,
            max_pending: server.max_pending_connections,
        }
    }
}

/// Where a connection is, for its deadline.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Reading a request header that started at `since` (the connection's accept for the
    /// first one, the first byte of it for a later one).
    Header { since: Instant },
    /// Reading a request body whose header ended at `since`; `bytes` of it so far.
    Body { since: Instant, bytes: u64 },
    /// Handling the request, or waiting between requests: pingora's own timeouts apply.
    Idle,
    /// Between two requests on a kept-alive connection: the first byte starts a header.
    Between,
    /// No deadline any more: an upgraded connection (WebSocket) or HTTP/2.
    Free,
}

/// One connection's state, shared by its stream (which enforces the deadline) and its
/// requests (which say where it is). Made by the TLS handshake, kept in `HandshakeInfo`.
#[derive(Debug)]
pub struct Connection {
    phase: Mutex<Phase>,
    /// Counted in the pending connections until its first header is done (or it closes).
    pending: AtomicBool,
    pending_count: OnceLock<Arc<AtomicUsize>>,
    http2: AtomicBool,
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            phase: Mutex::new(Phase::Header {
                since: Instant::now(),
            }),
            pending: AtomicBool::new(false),
            pending_count: OnceLock::new(),
            http2: AtomicBool::new(false),
        }
    }
}

impl Connection {
    fn set(&self, phase: Phase) {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner()) = phase;
    }

    fn phase(&self) -> Phase {
        *self.phase.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn release_pending(&self) {
        if self.pending.swap(false, Ordering::AcqRel) {
            if let Some(count) = self.pending_count.get() {
                count.fetch_sub(1, Ordering::AcqRel);
            }
        }
    }

    /// The request header is complete. `body`: a body follows (a `Content-Length` above 0 or
    /// a `Transfer-Encoding`); `upgrade`: the connection may become a WebSocket.
    pub fn header_done(&self, body: bool, upgrade: bool) {
        self.release_pending();
        self.set(if upgrade || self.http2.load(Ordering::Acquire) {
            Phase::Free
        } else if body {
            Phase::Body {
                since: Instant::now(),
                bytes: 0,
            }
        } else {
            Phase::Idle
        });
    }

    /// The request body was read to its end.
    pub fn body_done(&self) {
        if matches!(self.phase(), Phase::Body { .. }) {
            self.set(Phase::Idle);
        }
    }

    /// The response is done; the next byte on the connection starts a new header.
    pub fn request_done(&self) {
        if self.phase() != Phase::Free {
            self.set(Phase::Between);
        }
    }

    /// `n` bytes were just read.
    fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut phase = self.phase.lock().unwrap_or_else(|e| e.into_inner());
        match *phase {
            Phase::Between => {
                *phase = Phase::Header {
                    since: Instant::now(),
                }
            }
            Phase::Body { since, bytes } => {
                *phase = Phase::Body {
                    since,
                    bytes: bytes.saturating_add(n as u64),
                }
            }
            _ => {}
        }
    }

    /// The current deadline and what it is for.
    fn deadline(&self, limits: &Limits) -> Option<(Instant, &'static str)> {
        match self.phase() {
            Phase::Header { since } => Some((since + limits.header_timeout, "header")),
            Phase::Body { since, bytes } => {
                let earned = Duration::from_secs_f64(bytes as f64 / limits.body_min_rate as f64);
                Some((since + limits.body_timeout + earned, "body"))
            }
            Phase::Idle | Phase::Between | Phase::Free => None,
        }
    }
}

/// The connection of a request's TLS session, if the handshake made one.
pub fn of_session(session: &pingora::proxy::Session) -> Option<&Connection> {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|s| s.extension.get::<HandshakeInfo>())
        .map(|h| h.connection.as_ref())
}

/// Whether a request header announces a body: a `Transfer-Encoding`, or a `Content-Length`
/// other than 0 (one that is no number counts as a body; pingora refuses it anyway).
pub fn announces_body(headers: &http::HeaderMap) -> bool {
    headers.contains_key(http::header::TRANSFER_ENCODING)
        || headers.get(http::header::CONTENT_LENGTH).is_some_and(|v| {
            v.to_str()
                .ok()
                .and_then(|v| v.trim().parse::<u64>().ok())
                .is_none_or(|n| n > 0)
        })
}

/// Counts shared by every connection of the listener.
pub struct Counters {
    limits: Limits,
    trusted_proxies: Vec<prehod_config::Cidr>,
    per_address: Mutex<HashMap<IpAddr, u32>>,
    pending: Arc<AtomicUsize>,
}

/// A connection's place in the counts, given back when its stream is dropped.
#[derive(Debug)]
struct Slot {
    counters: Arc<Counters>,
    address: Option<IpAddr>,
    connection: Arc<Connection>,
}

impl std::fmt::Debug for Counters {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Counters")
            .field("pending", &self.pending)
            .finish_non_exhaustive()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connection.release_pending();
        if let Some(ip) = self.address {
            let mut map = self
                .counters
                .per_address
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            if let Some(n) = map.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    map.remove(&ip);
                }
            }
        }
    }
}

/// Why a connection was closed at once.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Refused {
    PerAddress,
    Pending,
}

impl Refused {
    pub fn label(self) -> &'static str {
        match self {
            Refused::PerAddress => "per_address",
            Refused::Pending => "pending",
        }
    }
}

impl Counters {
    pub fn new(limits: Limits, trusted_proxies: Vec<prehod_config::Cidr>) -> Self {
        Self {
            limits,
            trusted_proxies,
            per_address: Mutex::new(HashMap::new()),
            pending: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Takes a place for a new connection from `address`, or says why there is none.
    fn admit(
        self: &Arc<Self>,
        address: Option<IpAddr>,
        connection: Arc<Connection>,
    ) -> Result<Slot, Refused> {
        let counted = address.filter(|ip| !self.trusted_proxies.iter().any(|n| n.contains(*ip)));
        if self.pending.fetch_add(1, Ordering::AcqRel) >= self.limits.max_pending {
            self.pending.fetch_sub(1, Ordering::AcqRel);
            return Err(Refused::Pending);
        }
        // From here the slot gives the pending place back when dropped.
        let _ = connection.pending_count.set(self.pending.clone());
        connection.pending.store(true, Ordering::Release);
        let mut slot = Slot {
            counters: self.clone(),
            address: None,
            connection,
        };
        if let Some(ip) = counted {
            let mut map = self.per_address.lock().unwrap_or_else(|e| e.into_inner());
            let n = map.entry(ip).or_insert(0);
            if *n >= self.limits.max_per_address {
                return Err(Refused::PerAddress);
            }
            *n += 1;
            slot.address = Some(ip);
        }
        Ok(slot)
    }
}

/// The proxy's `ServerApp`, with every connection admitted by the caps and its stream
/// wrapped for the deadlines.
pub struct Guarded<A> {
    inner: Arc<A>,
    counters: Arc<Counters>,
}

impl<A> Guarded<A> {
    pub fn new(inner: A, counters: Counters) -> Self {
        Self {
            inner: Arc::new(inner),
            counters: Arc::new(counters),
        }
    }
}

#[async_trait]
impl<A: ServerApp + Send + Sync + 'static> ServerApp for Guarded<A> {
    async fn process_new(
        self: &Arc<Self>,
        stream: Stream,
        shutdown: &ShutdownWatch,
    ) -> Option<Stream> {
        let address = stream
            .get_socket_digest()
            .and_then(|d| d.peer_addr().and_then(|a| a.as_inet()).map(|a| a.ip()));
        let connection = stream
            .get_ssl_digest()
            .and_then(|s| {
                s.extension
                    .get::<HandshakeInfo>()
                    .map(|h| h.connection.clone())
            })
            .unwrap_or_default();
        if matches!(stream.selected_alpn_proto(), Some(ALPN::H2)) {
            connection.http2.store(true, Ordering::Release);
        }
        let slot = match self.counters.admit(address, connection.clone()) {
            Ok(slot) => slot,
            Err(refused) => {
                crate::metrics::count_connection_refused(refused.label());
                tracing::debug!(client = ?address, reason = refused.label(), "connection refused");
                return None;
            }
        };
        let stream = GuardedStream {
            inner: stream,
            connection,
            limits: self.counters.limits.clone(),
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            _slot: slot,
        };
        self.inner.process_new(Box::new(stream), shutdown).await
    }

    async fn cleanup(&self) {
        self.inner.cleanup().await;
    }
}

tokio::task_local! {
    /// The request body of the HTTP/2 stream whose task this is.
    static STREAM_BODY: Arc<StreamBody>;
}

/// An HTTP/2 stream's request body: when it began and how many bytes of it arrived so far;
/// `None` once it is complete.
#[derive(Debug)]
struct StreamBody(Mutex<Option<(Instant, u64)>>);

impl StreamBody {
    fn deadline(&self, limits: &Limits) -> Option<Instant> {
        let body = *self.0.lock().unwrap_or_else(|e| e.into_inner());
        body.map(|(since, bytes)| {
            since
                + limits.body_timeout
                + Duration::from_secs_f64(bytes as f64 / limits.body_min_rate as f64)
        })
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

/// The proxy's `HttpServerApp`, with a minimum-rate deadline on each HTTP/2 stream's body.
pub struct Streams<A> {
    inner: Arc<A>,
    limits: Limits,
}

impl<A> Streams<A> {
    pub fn new(inner: A, limits: Limits) -> Self {
        Self {
            inner: Arc::new(inner),
            limits,
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
        session.set_write_timeout(Some(self.limits.body_timeout));
        if !session.is_http2() || session.is_body_done() {
            return self.inner.process_new_http(session, shutdown).await;
        }
        let body = Arc::new(StreamBody(Mutex::new(Some((Instant::now(), 0)))));
        let work = STREAM_BODY.scope(body.clone(), self.inner.process_new_http(session, shutdown));
        tokio::pin!(work);
        loop {
            let Some(deadline) = body.deadline(&self.limits) else {
                return work.await;
            };
            tokio::select! {
                done = &mut work => return done,
                () = tokio::time::sleep_until(deadline) => {
                    if body.deadline(&self.limits).is_some_and(|d| d <= Instant::now()) {
                        crate::metrics::count_slow_client("body");
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

/// A client's stream whose reads fail once the connection's deadline has passed.
#[derive(Debug)]
pub struct GuardedStream {
    inner: Stream,
    connection: Arc<Connection>,
    limits: Limits,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    _slot: Slot,
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some((deadline, what)) = this.connection.deadline(&this.limits) {
            if this.armed != Some(deadline) {
                this.sleep.as_mut().reset(deadline);
                this.armed = Some(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                crate::metrics::count_slow_client(what);
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the request {what} took longer than its deadline"),
                )));
            }
        }
        let before = buf.filled().len();
        let polled = Pin::new(&mut this.inner).poll_read(cx, buf);
        if let Poll::Ready(Ok(())) = polled {
            this.connection
                .read(buf.filled().len().saturating_sub(before));
        }
        polled
    }
}

impl AsyncWrite for GuardedStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().inner).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        self.inner.shutdown().await;
    }
}

impl UniqueID for GuardedStream {
    fn id(&self) -> UniqueIDType {
        self.inner.id()
    }
}

impl Ssl for GuardedStream {
    fn get_ssl(&self) -> Option<&pingora::protocols::tls::TlsRef> {
        self.inner.get_ssl()
    }

    fn get_ssl_digest(&self) -> Option<Arc<pingora::protocols::tls::SslDigest>> {
        self.inner.get_ssl_digest()
    }

    fn selected_alpn_proto(&self) -> Option<ALPN> {
        self.inner.selected_alpn_proto()
    }
}

impl GetTimingDigest for GuardedStream {
    fn get_timing_digest(&self) -> Vec<Option<pingora::protocols::TimingDigest>> {
        self.inner.get_timing_digest()
    }

    fn get_read_pending_time(&self) -> Duration {
        self.inner.get_read_pending_time()
    }

    fn get_write_pending_time(&self) -> Duration {
        self.inner.get_write_pending_time()
    }
}

impl GetProxyDigest for GuardedStream {
    fn get_proxy_digest(&self) -> Option<Arc<pingora::protocols::raw_connect::ProxyDigest>> {
        self.inner.get_proxy_digest()
    }

    fn set_proxy_digest(&mut self, digest: pingora::protocols::raw_connect::ProxyDigest) {
        self.inner.set_proxy_digest(digest);
    }
}

impl GetSocketDigest for GuardedStream {
    fn get_socket_digest(&self) -> Option<Arc<pingora::protocols::SocketDigest>> {
        self.inner.get_socket_digest()
    }

    fn set_socket_digest(&mut self, digest: pingora::protocols::SocketDigest) {
        self.inner.set_socket_digest(digest);
    }
}

#[async_trait]
impl Peek for GuardedStream {
    async fn try_peek(&mut self, buf: &mut [u8]) -> io::Result<bool> {
        self.inner.try_peek(buf).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            header_timeout: Duration::from_secs(10),
            body_timeout: Duration::from_secs(5),
            body_min_rate: 1000,
            max_per_address: 2,
            max_pending: 3,
        }
    }

    #[tokio::test(start_paused = true)]
    async fn deadlines_follow_the_request_phases() {
        let l = limits();
        let c = Connection::default();
        let start = Instant::now();
        assert_eq!(c.deadline(&l), Some((start + l.header_timeout, "header")));
        c.header_done(true, false);
        let body_start = Instant::now();
        assert_eq!(c.deadline(&l), Some((body_start + l.body_timeout, "body")));
        // Every 1000 bytes earn a second more.
        c.read(2500);
        assert_eq!(
            c.deadline(&l),
            Some((body_start + Duration::from_millis(7500), "body"))
        );
        c.body_done();
        assert_eq!(c.deadline(&l), None);
        c.request_done();
        assert_eq!(
            c.deadline(&l),
            None,
            "idle between requests: keep-alive timeout"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        c.read(1);
        let next = Instant::now();
        assert_eq!(c.deadline(&l), Some((next + l.header_timeout, "header")));
        // A WebSocket upgrade has no deadline any more.
        c.header_done(false, true);
        c.request_done();
        c.read(10);
        assert_eq!(c.deadline(&l), None);
    }

    #[test]
    fn caps_count_per_address_and_pending_and_give_places_back() {
        let counters = Arc::new(Counters::new(
            limits(),
            vec!["10.0.0.0/8".parse().expect("cidr")],
        ));
        let a: Option<IpAddr> = "192.0.2.1".parse().ok();
        let b: Option<IpAddr> = "192.0.2.2".parse().ok();
        let one = counters.admit(a, Arc::default()).expect("first");
        let two = counters.admit(a, Arc::default()).expect("second");
        assert_eq!(
            counters.admit(a, Arc::default()).err(),
            Some(Refused::PerAddress)
        );
        // Three pending now (the refused one gave its place back): none more for anyone.
        let three = counters.admit(b, Arc::default()).expect("another address");
        assert_eq!(
            counters.admit(b, Arc::default()).err(),
            Some(Refused::Pending)
        );
        // A connection whose first header is done is no longer pending.
        one.connection.header_done(false, false);
        let four = counters
            .admit(b, Arc::default())
            .expect("a pending place again");
        drop((two, three, four));
        assert_eq!(counters.pending.load(Ordering::Acquire), 0);
        drop(one);
        assert!(counters.per_address.lock().expect("lock").is_empty());
        // Trusted proxies are not capped per address.
        let proxy: Option<IpAddr> = "10.1.2.3".parse().ok();
        let held: Vec<Slot> = (0..3)
            .map(|_| {
                let s = counters.admit(proxy, Arc::default()).expect("proxy");
                s.connection.header_done(false, false);
                s
            })
            .collect();
        assert_eq!(held.len(), 3);
    }
}
