//! The drain: when the connections of a stopping process hear that it stops.
//!
//! pingora tells a listener and the connections it took that the process stops at one
//! instant: the accept loop ends, every HTTP/2 connection is sent GOAWAY, and the proxy drops
//! every HTTP/1.1 connection waiting for a request (its `http_cleanup`). A connection accepted
//! a moment before — its client has finished the handshake and is about to send its first
//! request — is then told to go, or closed, before it asked. A client may not open a stream
//! after GOAWAY, and one that does not try the request again on a new connection (hyper's,
//! and so reqwest's: "a fresh connection means we definitely can't retry") fails it: a binary
//! upgrade under load lost such a request (tests/upgrade.rs).
//!
//! So both come [`Drain::delay`] after the listener stopped (half the grace period, at most a
//! second): an HTTP/2 connection gets the process's stop signal that much later
//! ([`Drain::watch`]); the guard's `cleanup` waits that long before the proxy's. Every
//! connection the stopping process still holds has had that long to send its first request,
//! and is served; a request taken on in the delay still has at least the other half of the
//! grace period. An HTTP/1.1 connection hears of the stop at once, so that its answers from
//! then on say `Connection: close`.

use std::sync::OnceLock;
use std::time::Duration;

use pingora::server::ShutdownWatch;

/// The longest delay between the listener's stop and its connections'.
const MAX_DELAY: Duration = Duration::from_secs(1);

/// The shutdown signal of a listener's connections: the process's, `delay` later.
#[derive(Debug)]
pub struct Drain {
    delay: Duration,
    /// Made with the first connection (a task must be spawned on the listener's runtime).
    watch: OnceLock<ShutdownWatch>,
}

impl Drain {
    /// The drain of a process whose grace period (`server.grace_period`) is `grace_period`.
    pub fn new(grace_period: Duration) -> Self {
        Self {
            delay: Self::delay_of(grace_period),
            watch: OnceLock::new(),
        }
    }

    /// Half the grace period, at most [`MAX_DELAY`].
    fn delay_of(grace_period: Duration) -> Duration {
        (grace_period / 2).min(MAX_DELAY)
    }

    /// How long after the process's stop its connections hear of it.
    pub fn delay(&self) -> Duration {
        self.delay
    }

    /// What a connection is given as the process's shutdown signal: `process`, delayed. Must
    /// be called on the listener's runtime.
    pub fn watch(&self, process: &ShutdownWatch) -> ShutdownWatch {
        if self.delay.is_zero() {
            return process.clone();
        }
        self.watch
            .get_or_init(|| {
                let (tell, watch) = tokio::sync::watch::channel(false);
                let mut process = process.clone();
                let delay = self.delay;
                tokio::spawn(async move {
                    // An error: the process's signal is gone, which is a stop as well.
                    while !*process.borrow_and_update() {
                        if process.changed().await.is_err() {
                            break;
                        }
                    }
                    tokio::time::sleep(delay).await;
                    let _ = tell.send(true);
                });
                watch
            })
            .clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_delay_is_half_the_grace_period_and_at_most_a_second() {
        assert_eq!(Drain::new(Duration::ZERO).delay(), Duration::ZERO);
        assert_eq!(
            Drain::new(Duration::from_secs(1)).delay(),
            Duration::from_millis(500)
        );
        assert_eq!(Drain::new(Duration::from_secs(10)).delay(), MAX_DELAY);
    }

    #[tokio::test(start_paused = true)]
    async fn the_connections_hear_of_the_stop_the_delay_after_the_process() {
        let (stop, process) = tokio::sync::watch::channel(false);
        let drain = Drain::new(Duration::from_secs(1));
        let mut heard = drain.watch(&process);
        // Every connection gets the same signal.
        let mut other = drain.watch(&process);
        let started = tokio::time::Instant::now();
        stop.send(true).expect("a receiver");
        heard.changed().await.expect("told");
        assert!(*heard.borrow());
        assert_eq!(started.elapsed(), Duration::from_millis(500));
        other.changed().await.expect("told");
        assert!(*other.borrow());
    }

    #[tokio::test(start_paused = true)]
    async fn a_process_signal_that_goes_away_is_a_stop() {
        let (stop, process) = tokio::sync::watch::channel(false);
        let drain = Drain::new(Duration::from_secs(4));
        let mut heard = drain.watch(&process);
        let started = tokio::time::Instant::now();
        drop(stop);
        heard.changed().await.expect("told");
        assert!(*heard.borrow());
        assert_eq!(started.elapsed(), MAX_DELAY);
    }

    #[tokio::test]
    async fn without_a_grace_period_the_signal_is_the_processs() {
        let (stop, process) = tokio::sync::watch::channel(false);
        let drain = Drain::new(Duration::ZERO);
        let mut heard = drain.watch(&process);
        stop.send(true).expect("a receiver");
        heard.changed().await.expect("told at once");
        assert!(*heard.borrow());
    }
}
