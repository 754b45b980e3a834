//! A bounded loopback load for the tests that change a running gateway (reload, upgrade,
//! failover) and must see no failed request: workers that each send one request at a time,
//! with a short pause, until stopped, counting the answers that were right and keeping every
//! failure.

use std::future::Future;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

pub struct Load {
    stop: Arc<AtomicBool>,
    served: Arc<AtomicU64>,
    failures: Arc<Mutex<Vec<String>>>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts one task per worker: each calls its worker again and again, `pause` after each
    /// call, until [`Load::finish`]. A worker's `Ok` counts as served; its `Err` is a failure,
    /// kept as it says.
    pub fn start<W, F>(workers: impl IntoIterator<Item = W>, pause: Duration) -> Self
    where
        W: FnMut() -> F + Send + 'static,
        F: Future<Output = Result<(), String>> + Send,
    {
        let stop = Arc::new(AtomicBool::new(false));
        let served = Arc::new(AtomicU64::new(0));
        let failures = Arc::new(Mutex::new(Vec::new()));
        let tasks = workers
            .into_iter()
            .map(|mut worker| {
                let (stop, served, failures) = (stop.clone(), served.clone(), failures.clone());
                tokio::spawn(async move {
                    while !stop.load(Ordering::Relaxed) {
                        match worker().await {
                            Ok(()) => {
                                served.fetch_add(1, Ordering::Relaxed);
                            }
                            Err(failure) => failures.lock().expect("lock").push(failure),
                        }
                        tokio::time::sleep(pause).await;
                    }
                })
            })
            .collect();
        Self {
            stop,
            served,
            failures,
            tasks,
        }
    }

    /// How many requests were served so far.
    pub fn served(&self) -> u64 {
        self.served.load(Ordering::Relaxed)
    }

    /// Stops the load; returns how many requests were served and every failure.
    pub async fn finish(self) -> (u64, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for t in self.tasks {
            t.await.expect("load task");
        }
        let failures = self.failures.lock().expect("lock").clone();
        (self.served.load(Ordering::Relaxed), failures)
    }
}
