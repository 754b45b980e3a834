//! The drain: when the connections of a stopping process hear that it stops.
//!
//! pingora tells a listener and the connections it took that the process stops at one
//! instant: the accept loop ends, and every HTTP/2 connection is sent GOAWAY. A connection
//! accepted a moment before — its client has finished the handshake and is about to open its
//! first stream — then hears GOAWAY before it sent its request. A client may not open a
//! stream after GOAWAY, and one that does not try the request again on a new connection
//! (hyper's, and so reqwest's: "a fresh connection means we definitely can't retry") fails
//! it: a binary upgrade under load lost such a request (tests/upgrade.rs).
//!
//! So the connections behind the guard hear of the stop [`Drain::delay`] after the listener
//! did (half the grace period, at most a second): every connection the stopping process
//! still holds has had that long to send its first request, and is served. The rest of the
//! grace period is for the requests in flight, as before.

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
            delay: Self::delay(grace_period),
            watch: OnceLock::new(),
        }
    }

    /// Half the grace period, at most [`MAX_DELAY`].
    pub fn delay(grace_period: Duration) -> Duration {
        (grace_period / 2).min(MAX_DELAY)
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
        assert_eq!(Drain::delay(Duration::ZERO), Duration::ZERO);
        assert_eq!(
            Drain::delay(Duration::from_secs(1)),
            Duration::from_millis(500)
        );
        assert_eq!(Drain::delay(Duration::from_secs(10)), MAX_DELAY);
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
