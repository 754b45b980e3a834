//! The TLS handshake of an admitted connection, done by the guard under
//! `server.handshake_timeout` (pingora's listener would do it before the guard saw the
//! connection, for up to a fixed 60 s): the same acceptor settings and certificate callbacks
//! as always (`crate::tls`), and the handshake's `HandshakeInfo` carries the guard's
//! [`Connection`] to the request phases.

use std::any::Any;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use pingora::listeners::TlsAccept;
use pingora::protocols::l4::stream::Stream as L4Stream;
use pingora::protocols::tls::server::handshake_with_callback;
use pingora::protocols::tls::TlsRef;
use pingora::protocols::Stream;
use pingora::tls::ssl::SslAcceptor;

use crate::lifecycle::{Connection, Missed};
use crate::tls::LiveCertificates;

/// A TLS listener's handshake.
pub struct Acceptor {
    ssl: SslAcceptor,
    certificates: LiveCertificates,
    timeout: Duration,
}

impl Acceptor {
    pub fn new(ssl: SslAcceptor, certificates: LiveCertificates, timeout: Duration) -> Self {
        Self {
            ssl,
            certificates,
            timeout,
        }
    }

    /// The TLS stream of `stream` (a TCP connection as pingora's listener accepted it), or
    /// `None` when the handshake failed or missed its deadline (the connection is closed).
    pub(super) async fn handshake(
        &self,
        stream: Stream,
        connection: &Arc<Connection>,
        client: Option<IpAddr>,
    ) -> Option<Stream> {
        // pingora's TCP listener hands over its own stream type, boxed: the TLS stream is
        // built on it as pingora's TLS listener would.
        let tcp = match stream.into_any().downcast::<L4Stream>() {
            Ok(tcp) => *tcp,
            Err(_) => {
                tracing::error!("a TLS listener accepted something other than a TCP stream");
                return None;
            }
        };
        let callbacks = Handshake {
            certificates: &self.certificates,
            connection,
        };
        match tokio::time::timeout(
            self.timeout,
            handshake_with_callback(&self.ssl, tcp, &callbacks),
        )
        .await
        {
            Ok(Ok(tls)) => Some(Box::new(tls)),
            Ok(Err(e)) => {
                tracing::debug!(client = ?client, error = %e, "TLS handshake failed");
                None
            }
            Err(_) => {
                crate::metrics::count(
                    crate::metrics::ProcessCount::SlowClient,
                    Missed::Handshake.label(),
                );
                tracing::debug!(client = ?client, "TLS handshake missed its deadline");
                None
            }
        }
    }
}

/// The callbacks of one connection's handshake.
struct Handshake<'a> {
    certificates: &'a LiveCertificates,
    connection: &'a Arc<Connection>,
}

#[async_trait]
impl TlsAccept for Handshake<'_> {
    async fn certificate_callback(&self, ssl: &mut TlsRef) {
        self.certificates.choose(ssl);
    }

    async fn handshake_complete_callback(
        &self,
        ssl: &TlsRef,
    ) -> Option<Arc<dyn Any + Send + Sync>> {
        Some(Arc::new(
            self.certificates
                .handshake_info(ssl, self.connection.clone()),
        ))
    }
}
