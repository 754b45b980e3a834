//! The client's stream under the guard: every read fails with `TimedOut` once the
//! connection's current deadline has passed (pingora then closes the connection), and the
//! bytes read tell the connection where it is. It holds the connection's place in the caps
//! until it is dropped. Its small writes are coalesced until the next flush ([`COALESCE`]), so
//! that a response's header and a small body leave in one TLS record.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;

use async_trait::async_trait;
use pingora::protocols::{
    GetProxyDigest, GetSocketDigest, GetTimingDigest, Peek, Shutdown, Ssl, Stream, UniqueID,
    UniqueIDType, ALPN,
};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::{Instant, Sleep};

use super::admission::Slot;
use crate::lifecycle::Connection;

/// The most bytes written to the client that wait above TLS for the next flush: one TCP
/// segment, the size of pingora's own write buffer under TLS (`DEFAULT_L4_WRITE_BUFFER_SIZE`),
/// which holds the records written into it the same way until a flush or until it is full.
/// pingora writes a response's header and each piece of its body separately, each a TLS record
/// of its own (`SSL_write`: an encryption, a record buffer taken and given back) — nginx sends
/// a small response in one record. pingora flushes where it wants data sent (after the header
/// of a response without a body, after a chunked or close-delimited body's every chunk, 1xx
/// answers, upgraded traffic, at the end of a Content-Length body, HTTP/2 after its frames);
/// a Content-Length body streamed slowly is flushed only at its end, so what is held must stay
/// as small as what pingora's buffer holds anyway: a write that does not fit beside what is
/// held sends both on (`a_slowly_streamed_content_length_body_is_not_held_until_16_kib`: 16 KiB
/// held such a body back for seconds).
const COALESCE: usize = 1460;

/// A client's stream whose reads fail once the connection's deadline has passed.
#[derive(Debug)]
pub struct GuardedStream {
    inner: Stream,
    connection: Arc<Connection>,
    sleep: Pin<Box<Sleep>>,
    /// The deadline `sleep` is set to.
    armed: Option<Instant>,
    slot: Slot,
    /// Writes held until the next flush (at most [`COALESCE`] bytes); given back once empty,
    /// so that an idle connection holds none.
    out: Vec<u8>,
    /// How much of `out` TLS has taken.
    sent: usize,
}

impl GuardedStream {
    pub fn new(inner: Stream, connection: Arc<Connection>, slot: Slot) -> Self {
        Self {
            inner,
            connection,
            sleep: Box::pin(tokio::time::sleep(Duration::ZERO)),
            armed: None,
            slot,
            out: Vec::new(),
            sent: 0,
        }
    }

    /// Writes everything held in `out` to TLS (not flushing it); gives the buffer back.
    fn poll_drain(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while let Some(rest) = self.out.get(self.sent..).filter(|r| !r.is_empty()) {
            match Pin::new(&mut self.inner).poll_write(cx, rest) {
                Poll::Ready(Ok(0)) => {
                    return Poll::Ready(Err(io::ErrorKind::WriteZero.into()));
                }
                Poll::Ready(Ok(n)) => self.sent += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        self.out = Vec::new();
        self.sent = 0;
        Poll::Ready(Ok(()))
    }

    /// Holds `buf` if it fits beside what is held; `false` when it must be written on.
    fn hold(&mut self, buf: &[u8]) -> bool {
        if self.out.len() + buf.len() > COALESCE {
            return false;
        }
        if self.out.capacity() == 0 {
            self.out.reserve_exact(COALESCE);
        }
        self.out.extend_from_slice(buf);
        true
    }
}

impl AsyncRead for GuardedStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let deadlines = &this.slot.limits().deadlines;
        if let Some((deadline, missed)) = this.connection.deadline(deadlines, cx.waker()) {
            if this.armed != Some(deadline) {
                this.sleep.as_mut().reset(deadline);
                this.armed = Some(deadline);
            }
            if this.sleep.as_mut().poll(cx).is_ready() {
                crate::metrics::count(crate::metrics::ProcessCount::SlowClient, missed.label());
                tracing::debug!(phase = missed.label(), "a connection missed its deadline");
                return Poll::Ready(Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("the connection's {} deadline passed", missed.label()),
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
        let this = self.get_mut();
        if this.hold(buf) {
            return Poll::Ready(Ok(buf.len()));
        }
        // It does not fit: what is held goes on first, then this write, not held (holding
        // it again would keep back more than pingora's own buffer does).
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_write(cx, buf)
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        std::task::ready!(this.poll_drain(cx))?;
        Pin::new(&mut this.inner).poll_shutdown(cx)
    }
}

#[async_trait]
impl Shutdown for GuardedStream {
    async fn shutdown(&mut self) {
        // What is held goes to TLS first, before its close_notify.
        let _ = std::future::poll_fn(|cx| self.poll_drain(cx)).await;
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
