//! Where a client connection is in its life, and the deadline that follows from it: reading a
//! request header, reading a request body, handled (no deadline of ours: the upstream's
//! timeouts apply), waiting for its next request, upgraded to a WebSocket, or serving HTTP/2
//! streams.
//!
//! A [`Connection`] is made when the guard (`crate::connections`) admits a TCP connection; its
//! stream enforces the deadline on every read, and the request phases say where it is — the
//! proxy through the TLS handshake's `HandshakeInfo`, the plain-HTTP listeners through the
//! connection's task. It is a lower module of its own so that `tls` and `connections` both
//! use it without using each other.

use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::task::Waker;
use std::time::Duration;

use tokio::time::Instant;

/// The deadlines, from `server.*`.
#[derive(Clone, Debug, PartialEq)]
pub struct Deadlines {
    pub header: Duration,
    pub body: Duration,
    /// Bytes per second, at least 1.
    pub body_min_rate: u64,
    pub idle: Duration,
}

impl Deadlines {
    pub fn new(server: &prehod_config::Server) -> Self {
        Self {
            header: server.header_timeout,
            body: server.body_timeout,
            body_min_rate: server.body_min_rate.max(1),
            idle: server.idle_timeout,
        }
    }

    /// The end of a body that began at `since` and has brought `bytes` so far: the allowance,
    /// and a second more for every `body_min_rate` bytes.
    pub fn body_end(&self, since: Instant, bytes: u64) -> Instant {
        since + self.body + Duration::from_secs_f64(bytes as f64 / self.body_min_rate as f64)
    }
}

/// Which deadline a connection missed: the `phase` of `prehod_slow_clients_total`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Missed {
    Handshake,
    Header,
    Body,
    Idle,
}

impl Missed {
    pub fn label(self) -> &'static str {
        match self {
            Missed::Handshake => "handshake",
            Missed::Header => "header",
            Missed::Body => "body",
            Missed::Idle => "idle",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Phase {
    /// Reading a request header that started at `since` (the end of the TLS handshake for
    /// the first one, the first byte of it for a later one).
    Header { since: Instant },
    /// Reading a request body whose header ended at `since`; `bytes` of it so far.
    Body { since: Instant, bytes: u64 },
    /// The request is being handled: the upstream's timeouts apply.
    Handled,
    /// HTTP/1: waiting since `since` for the next request; its first byte starts a header.
    Waiting { since: Instant },
    /// A 101 was sent: a WebSocket now, no HTTP deadline (the connection ends with it).
    Upgraded,
    /// HTTP/2 after its first stream: `open` streams in progress; none since `since`.
    Streams { open: u32, since: Instant },
}

#[derive(Debug)]
struct State {
    phase: Phase,
    /// The task reading an HTTP/2 connection, woken when its last stream ends (the idle
    /// deadline then begins without a new read to notice it).
    reader: Option<Waker>,
}

/// A count of connections without a first request that a connection is in until it has one
/// (the guard's caps: all of them, and those of its address).
pub trait PendingPlace: Send + Sync + std::fmt::Debug {
    /// The connection leaves the count (called once).
    fn leave(&self);
}

/// One connection's place in its life, shared by its stream (which enforces the deadline)
/// and its requests (which say where it is).
#[derive(Debug)]
pub struct Connection {
    state: Mutex<State>,
    http2: AtomicBool,
    /// The count of connections without a first request this one is in, until it has one.
    pending: OnceLock<Arc<dyn PendingPlace>>,
    pending_released: AtomicBool,
    /// The client address as the guard's caps count it (an IPv6 client by its /64); none for
    /// a trusted proxy.
    counted_address: OnceLock<IpAddr>,
}

impl Default for Connection {
    fn default() -> Self {
        Self {
            state: Mutex::new(State {
                phase: Phase::Header {
                    since: Instant::now(),
                },
                reader: None,
            }),
            http2: AtomicBool::new(false),
            pending: OnceLock::new(),
            pending_released: AtomicBool::new(false),
            counted_address: OnceLock::new(),
        }
    }
}

impl Connection {
    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn set(&self, phase: Phase) {
        self.state().phase = phase;
    }

    /// Counts this connection in `pending` until its first request (or its end).
    pub fn count_pending(&self, pending: Arc<dyn PendingPlace>) {
        if self.pending.set(pending).is_err() {
            tracing::error!("a connection was counted as pending twice");
        }
    }

    /// Leaves the pending count (once).
    pub fn release_pending(&self) {
        if !self.pending_released.swap(true, Ordering::AcqRel) {
            if let Some(place) = self.pending.get() {
                place.leave();
            }
        }
    }

    /// The client address as the caps count it, set once when the connection is admitted.
    pub fn set_counted_address(&self, address: IpAddr) {
        let _ = self.counted_address.set(address);
    }

    /// The client address as the caps count it (none: a trusted proxy, or not known).
    pub fn counted_address(&self) -> Option<IpAddr> {
        self.counted_address.get().copied()
    }

    /// The connection is ready for HTTP (its TLS handshake done, if any): the first request's
    /// header deadline starts now.
    pub fn ready(&self, http2: bool) {
        self.http2.store(http2, Ordering::Release);
        self.set(Phase::Header {
            since: Instant::now(),
        });
    }

    pub fn is_http2(&self) -> bool {
        self.http2.load(Ordering::Acquire)
    }

    /// An HTTP/1 request header is complete (over HTTP/2, only the pending count changes:
    /// the streams are followed by [`Connection::stream_opened`]). `body`: a body follows.
    pub fn header_done(&self, body: bool) {
        self.release_pending();
        if self.is_http2() {
            return;
        }
        self.set(if body {
            Phase::Body {
                since: Instant::now(),
                bytes: 0,
            }
        } else {
            Phase::Handled
        });
    }

    /// The request body was read to its end.
    pub fn body_done(&self) {
        let mut state = self.state();
        if matches!(state.phase, Phase::Body { .. }) {
            state.phase = Phase::Handled;
        }
    }

    /// A 101 answers the request: the connection is a WebSocket from now on.
    pub fn upgraded(&self) {
        if !self.is_http2() {
            self.set(Phase::Upgraded);
        }
    }

    /// The response is done: the connection waits for its next request.
    pub fn request_done(&self) {
        if !self.is_http2() {
            self.set(Phase::Waiting {
                since: Instant::now(),
            });
        }
    }

    /// An HTTP/2 stream began.
    pub fn stream_opened(&self) {
        self.release_pending();
        let mut state = self.state();
        state.phase = match state.phase {
            Phase::Streams { open, since } => Phase::Streams {
                open: open.saturating_add(1),
                since,
            },
            _ => Phase::Streams {
                open: 1,
                since: Instant::now(),
            },
        };
    }

    /// An HTTP/2 stream ended; with the last one the idle deadline begins.
    pub fn stream_closed(&self) {
        let mut state = self.state();
        if let Phase::Streams { open, .. } = state.phase {
            state.phase = Phase::Streams {
                open: open.saturating_sub(1),
                since: Instant::now(),
            };
            if open <= 1 {
                if let Some(reader) = state.reader.take() {
                    reader.wake();
                }
            }
        }
    }

    /// `n` bytes were just read.
    pub fn read(&self, n: usize) {
        if n == 0 {
            return;
        }
        let mut state = self.state();
        match state.phase {
            Phase::Waiting { .. } => {
                state.phase = Phase::Header {
                    since: Instant::now(),
                }
            }
            Phase::Body { since, bytes } => {
                state.phase = Phase::Body {
                    since,
                    bytes: bytes.saturating_add(n as u64),
                }
            }
            _ => {}
        }
    }

    /// The current deadline and what it is for; without one while HTTP/2 streams are open,
    /// `reader` is woken when the last of them ends.
    pub fn deadline(&self, d: &Deadlines, reader: &Waker) -> Option<(Instant, Missed)> {
        let mut state = self.state();
        match state.phase {
            Phase::Header { since } => Some((since + d.header, Missed::Header)),
            Phase::Body { since, bytes } => Some((d.body_end(since, bytes), Missed::Body)),
            Phase::Waiting { since } | Phase::Streams { open: 0, since } => {
                Some((since + d.idle, Missed::Idle))
            }
            Phase::Streams { .. } => {
                if !state.reader.as_ref().is_some_and(|w| w.will_wake(reader)) {
                    state.reader = Some(reader.clone());
                }
                None
            }
            Phase::Handled | Phase::Upgraded => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn deadlines() -> Deadlines {
        Deadlines {
            header: Duration::from_secs(10),
            body: Duration::from_secs(5),
            body_min_rate: 1000,
            idle: Duration::from_secs(60),
        }
    }

    fn at(c: &Connection) -> Option<(Instant, Missed)> {
        c.deadline(&deadlines(), Waker::noop())
    }

    #[tokio::test(start_paused = true)]
    async fn http1_deadlines_follow_each_request_of_a_connection() {
        let d = deadlines();
        let c = Connection::default();
        tokio::time::advance(Duration::from_secs(3)).await;
        c.ready(false);
        let start = Instant::now();
        assert_eq!(at(&c), Some((start + d.header, Missed::Header)));
        c.header_done(true);
        let body_start = Instant::now();
        assert_eq!(at(&c), Some((body_start + d.body, Missed::Body)));
        // Every 1000 bytes earn a second more.
        c.read(2500);
        assert_eq!(
            at(&c),
            Some((body_start + Duration::from_millis(7500), Missed::Body))
        );
        c.body_done();
        assert_eq!(at(&c), None, "handled: the upstream's timeouts apply");
        c.request_done();
        let idle_start = Instant::now();
        assert_eq!(at(&c), Some((idle_start + d.idle, Missed::Idle)));
        tokio::time::advance(Duration::from_secs(30)).await;
        // The next request's first byte starts its header deadline.
        c.read(1);
        let next = Instant::now();
        assert_eq!(at(&c), Some((next + d.header, Missed::Header)));
        // An `Upgrade:` header alone changes nothing: a request without a body is handled…
        c.header_done(false);
        assert_eq!(at(&c), None);
        // …and waits again after a non-101 answer.
        c.request_done();
        assert!(at(&c).is_some());
        // Only a 101 leaves the deadlines.
        c.read(1);
        c.header_done(true);
        c.upgraded();
        c.read(10);
        assert_eq!(at(&c), None);
    }

    use std::sync::atomic::AtomicUsize;

    struct Woken(AtomicUsize);

    impl std::task::Wake for Woken {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn http2_connections_are_idle_when_no_stream_is_open() {
        let d = deadlines();
        let c = Connection::default();
        c.ready(true);
        assert_eq!(at(&c), Some((Instant::now() + d.header, Missed::Header)));
        c.stream_opened();
        c.header_done(false);
        c.stream_opened();
        assert_eq!(at(&c), None, "streams in progress");
        c.stream_closed();
        assert_eq!(at(&c), None, "one stream still open");
        c.request_done();
        tokio::time::advance(Duration::from_secs(5)).await;
        let woken = Arc::new(Woken(AtomicUsize::new(0)));
        assert_eq!(c.deadline(&d, &Waker::from(woken.clone())), None);
        c.stream_closed();
        assert_eq!(
            woken.0.load(Ordering::Acquire),
            1,
            "the reader learns that the idle deadline began"
        );
        assert_eq!(at(&c), Some((Instant::now() + d.idle, Missed::Idle)));
    }

    #[derive(Debug)]
    struct Count(AtomicUsize);

    impl PendingPlace for Count {
        fn leave(&self) {
            self.0.fetch_sub(1, Ordering::AcqRel);
        }
    }

    #[test]
    fn the_pending_count_is_left_once() {
        let count = Arc::new(Count(AtomicUsize::new(1)));
        let c = Connection::default();
        c.count_pending(count.clone());
        c.header_done(false);
        c.release_pending();
        assert_eq!(count.0.load(Ordering::Acquire), 0);
    }
}
