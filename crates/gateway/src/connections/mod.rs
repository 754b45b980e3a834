//! The connection guard: one guard from the TCP accept to the close, on every listener (HTTPS,
//! the plain-HTTP redirect, the admin listener).
//!
//! pingora listens with plain TCP, its accept loop closes at once a connection over a cap
//! ([`AcceptFilter`]), and it hands each other one to [`Guarded`], which
//! 1. takes its places in the caps or closes it ([`admission`]: a cap on all connections, one
//!    per client address — an IPv6 client by its /64 — and two on connections without a first
//!    request, all of them and those of one address), before a byte of TLS is read;
//! 2. does the TLS handshake itself, under `server.handshake_timeout` ([`accept`]) — pingora's
//!    own handshake would run before any of this, for up to a fixed 60 s;
//! 3. wraps the stream so that every read fails once the connection's deadline has passed
//!    ([`stream`]): the whole request header (every request of the connection, not only the
//!    first), the request body's minimum rate, the wait for the next request (HTTP/1.1
//!    keep-alive) or stream (HTTP/2) — pingora would time each read only, and wait between
//!    requests for ever;
//! 4. lets a connection taken just before the listener stopped accepting ask its first
//!    request ([`drain`]): HTTP/2's GOAWAY, and pingora's end of the HTTP/1.1 wait for a
//!    request, come a moment after the stop.
//!
//! Where the connection is comes from the request phases, through its
//! [`Connection`](crate::lifecycle::Connection): the proxy's phases find it in the TLS
//! handshake's `HandshakeInfo` ([`of_session`]), the plain-HTTP listeners in their task
//! ([`Signalled`]), HTTP/2 streams in [`Streams`], which also gives each stream's request body
//! its minimum-rate deadline, caps the streams of a connection (`server.h2_max_streams`) and
//! counts every request in progress against its address's share (an HTTP/2 stream over it is
//! refused with `REFUSED_STREAM`). Only a request answered with 101 leaves the HTTP deadlines.

pub mod accept;
pub mod admission;
pub mod drain;
pub mod h2;
pub mod plain;
pub mod stream;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::apps::ServerApp;
use pingora::protocols::{Stream, ALPN};
use pingora::server::ShutdownWatch;
use pingora::services::listening::Service;

pub use accept::Acceptor;
pub use admission::{AcceptFilter, Counters, Refused};
pub use drain::Drain;
pub use h2::{stream_body_read, Streams};
pub use plain::Signalled;
pub use stream::GuardedStream;

use crate::lifecycle::{Connection, Deadlines};
use crate::tls::HandshakeInfo;

/// The caps and deadlines, from `server.*`.
#[derive(Clone, Debug)]
pub struct Limits {
    pub handshake_timeout: Duration,
    pub deadlines: Deadlines,
    pub max_connections: usize,
    pub max_per_address: u32,
    pub max_pending: usize,
    pub max_pending_per_address: u32,
    /// Requests in progress of one address (see [`Counters::start_request`]).
    pub max_requests_per_address: u32,
    /// Streams one HTTP/2 connection may have open at once.
    pub h2_max_streams: u32,
    /// `server.grace_period`: the connections hear of a stop part of it later than the
    /// listener ([`Drain`]).
    pub grace_period: Duration,
}

/// The admin listener's cap on all its connections: a scraper and a few probes need a handful,
/// and a listener that is meant to be private should not be able to hold the file descriptors
/// the public ones need.
const ADMIN_MAX_CONNECTIONS: usize = 256;

/// The admin listener's cap on the connections of one address: a kubelet's probes and a
/// scraper hold a few each; it takes 16 addresses to fill the listener.
const ADMIN_MAX_PER_ADDRESS: u32 = 16;

impl Limits {
    pub fn new(server: &prehod_config::Server) -> Self {
        Self {
            handshake_timeout: server.handshake_timeout,
            deadlines: Deadlines::new(server),
            max_connections: server.max_connections,
            max_per_address: server.max_connections_per_address,
            max_pending: server.max_pending_connections,
            max_pending_per_address: server.max_pending_connections_per_address,
            max_requests_per_address: server.max_requests_per_address,
            h2_max_streams: server.h2_max_streams,
            grace_period: server.grace_period,
        }
    }

    /// The admin listener's: the same deadlines, at most [`ADMIN_MAX_CONNECTIONS`] in all and
    /// [`ADMIN_MAX_PER_ADDRESS`] of one address, so that one address cannot take every place.
    pub fn for_admin(&self) -> Self {
        let per_address = self.max_per_address.min(ADMIN_MAX_PER_ADDRESS);
        Self {
            max_connections: self.max_connections.min(ADMIN_MAX_CONNECTIONS),
            max_per_address: per_address,
            max_pending_per_address: self.max_pending_per_address.min(per_address),
            ..self.clone()
        }
    }
}

tokio::task_local! {
    /// The connection whose task this is (an HTTP/2 stream runs in a task of its own).
    static CONNECTION: Arc<Connection>;
}

/// A pingora service whose connections are all under the guard: `counters`' caps checked in
/// the accept loop and again when a connection is taken on, `tls` (if any) done by the guard.
pub fn service<A: ServerApp + Send + Sync + 'static>(
    name: &str,
    app: A,
    counters: Arc<Counters>,
    tls: Option<Arc<Acceptor>>,
) -> Service<Guarded<A>> {
    let mut service = Service::new(name.to_owned(), Guarded::new(app, counters.clone(), tls));
    service.set_connection_filter(Arc::new(AcceptFilter(counters)));
    service
}

/// A listener's `ServerApp` under the guard: every connection admitted by the caps, its TLS
/// handshake (on a TLS listener) timed, its stream wrapped for the deadlines.
pub struct Guarded<A> {
    inner: Arc<A>,
    counters: Arc<Counters>,
    tls: Option<Arc<Acceptor>>,
    drain: Drain,
}

impl<A> Guarded<A> {
    /// `tls`: the listener speaks TLS, and this is its handshake.
    pub fn new(inner: A, counters: Arc<Counters>, tls: Option<Arc<Acceptor>>) -> Self {
        Self {
            inner: Arc::new(inner),
            drain: Drain::new(counters.limits().grace_period),
            counters,
            tls,
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
        let connection = Arc::new(Connection::default());
        let slot = match self.counters.admit(address, &connection) {
            Ok(slot) => slot,
            Err(refused) => {
                crate::metrics::count(
                    crate::metrics::ProcessCount::ConnectionRefused,
                    refused.label(),
                );
                tracing::debug!(client = ?address, reason = refused.label(), "connection refused");
                return None;
            }
        };
        let stream = match &self.tls {
            Some(tls) => tls.handshake(stream, &connection, address).await?,
            None => stream,
        };
        let http2 = matches!(stream.selected_alpn_proto(), Some(ALPN::H2));
        connection.ready(http2);
        let stream = GuardedStream::new(stream, connection.clone(), slot);
        // An HTTP/2 connection hears of a stop later ([`drain`]); an HTTP/1.1 connection at
        // once, so that what it is answered from then on says `Connection: close` (pingora's
        // wait for its next request ends later: [`Guarded::cleanup`]).
        let shutdown = if http2 {
            self.drain.watch(shutdown)
        } else {
            shutdown.clone()
        };
        // A stream handed back for another round would be admitted and handshaken again. The
        // apps behind the guard never hand one back (pingora's HTTP apps keep a kept-alive
        // connection themselves); one that did is closed here.
        let _ = CONNECTION
            .scope(
                connection,
                self.inner.process_new(Box::new(stream), &shutdown),
            )
            .await;
        None
    }

    /// pingora calls this as soon as the listener has stopped accepting, and the proxy then
    /// drops every HTTP/1.1 connection waiting for a request — a first request too, from a
    /// client that connected a moment before. It waits for the [`drain`]'s delay first.
    async fn cleanup(&self) {
        tokio::time::sleep(self.drain.delay()).await;
        self.inner.cleanup().await;
    }
}

/// The connection whose task this is: a plain-HTTP listener's (HTTP/1 only: every request of
/// the connection is handled in its task).
fn current() -> Option<Arc<Connection>> {
    CONNECTION.try_with(Arc::clone).ok()
}

/// The connection of a proxied request, made by the guard and kept in the TLS handshake's
/// `HandshakeInfo`.
pub fn of_session(session: &pingora::proxy::Session) -> Option<&Connection> {
    session
        .digest()
        .and_then(|d| d.ssl_digest.as_ref())
        .and_then(|s| s.extension.get::<HandshakeInfo>())
        .map(|h| h.connection.as_ref())
}

/// A response header is about to be sent: a 101 to a request that asked for an upgrade
/// makes the connection a WebSocket, free of the HTTP deadlines (pingora closes it when the
/// WebSocket ends). Any other answer leaves the deadlines as they are.
pub fn response_header(session: &pingora::proxy::Session, status: http::StatusCode) {
    if status == http::StatusCode::SWITCHING_PROTOCOLS && session.is_upgrade_req() {
        if let Some(connection) = of_session(session) {
            connection.upgraded();
        }
    }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_body_is_announced_by_a_transfer_encoding_or_a_length_above_zero() {
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = http::HeaderMap::new();
            for (n, v) in pairs {
                h.append(*n, http::HeaderValue::from_static(v));
            }
            h
        };
        assert!(!announces_body(&headers(&[])));
        assert!(!announces_body(&headers(&[("content-length", "0")])));
        assert!(announces_body(&headers(&[("content-length", "5")])));
        assert!(announces_body(&headers(&[("content-length", "five")])));
        assert!(announces_body(&headers(&[(
            "transfer-encoding",
            "chunked"
        )])));
    }
}
