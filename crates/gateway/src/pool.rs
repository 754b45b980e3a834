//! Upstream pools: the addresses of each portal's upstream, health-checked in the background,
//! chosen round-robin among the healthy ones.
//!
//! Names are resolved by the health checker, never on the request path. A target that fails a
//! connect is taken out at once (passive check) until the next active check passes.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::RwLock;
use std::time::Duration;

use prehod_config::{HealthCheck, Target};

#[derive(Debug)]
pub struct TargetState {
    pub target: Target,
    /// `target` as text (`host:port`, `[v6]:port`), written once here for the access log.
    pub label: String,
    addr: RwLock<Option<SocketAddr>>,
    healthy: AtomicBool,
}

impl TargetState {
    pub fn addr(&self) -> Option<SocketAddr> {
        *self.addr.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_healthy(&self) -> bool {
        self.healthy.load(Ordering::Relaxed)
    }

    pub fn mark(&self, healthy: bool) {
        self.healthy.store(healthy, Ordering::Relaxed);
    }
}

#[derive(Debug)]
pub struct Pool {
    pub targets: Vec<TargetState>,
    pub health_check: HealthCheck,
    next: AtomicUsize,
    /// Set once every target was resolved and checked at least once.
    checked: AtomicBool,
}

impl Pool {
    pub fn new(targets: &[Target], health_check: HealthCheck) -> Self {
        Self {
            targets: targets
                .iter()
                .map(|t| TargetState {
                    target: t.clone(),
                    label: t.to_string(),
                    addr: RwLock::new(t.host.parse().ok().map(|ip| SocketAddr::new(ip, t.port))),
                    // Optimistic until the first check: a fresh gateway serves at once.
                    healthy: AtomicBool::new(true),
                })
                .collect(),
            health_check,
            next: AtomicUsize::new(0),
            checked: AtomicBool::new(false),
        }
    }

    /// The next healthy, resolved target, round-robin, skipping `avoid` (the ones this request
    /// already failed on). With none healthy, any resolved target: the connect error then
    /// says what is wrong instead of a guess.
    pub fn select(&self, avoid: &[usize]) -> Option<(usize, SocketAddr)> {
        let n = self.targets.len();
        let start = self.next.fetch_add(1, Ordering::Relaxed);
        let candidates = (0..n)
            .map(|k| (start + k) % n)
            .filter(|i| !avoid.contains(i));
        let mut fallback = None;
        for i in candidates {
            let Some(t) = self.targets.get(i) else {
                continue;
            };
            if let Some(addr) = t.addr() {
                if t.is_healthy() {
                    return Some((i, addr));
                }
                fallback.get_or_insert((i, addr));
            }
        }
        fallback
    }

    pub fn has_healthy(&self) -> bool {
        self.targets
            .iter()
            .any(|t| t.is_healthy() && t.addr().is_some())
    }

    pub fn is_checked(&self) -> bool {
        self.checked.load(Ordering::Relaxed)
    }

    /// Resolves every target and tries a TCP connect to it; returns (target, healthy) pairs.
    pub async fn check_once(&self) -> Vec<(usize, bool)> {
        let mut results = Vec::with_capacity(self.targets.len());
        for (i, t) in self.targets.iter().enumerate() {
            let lookup = tokio::time::timeout(
                self.health_check.timeout,
                tokio::net::lookup_host((t.target.host.as_str(), t.target.port)),
            )
            .await;
            if let Ok(Ok(mut addrs)) = lookup {
                if let Some(addr) = addrs.next() {
                    *t.addr.write().unwrap_or_else(|e| e.into_inner()) = Some(addr);
                }
            }
            let healthy = match t.addr() {
                Some(addr) => connect_ok(addr, self.health_check.timeout).await,
                None => false,
            };
            t.mark(healthy);
            results.push((i, healthy));
        }
        self.checked.store(true, Ordering::Relaxed);
        results
    }
}

async fn connect_ok(addr: SocketAddr, timeout: Duration) -> bool {
    matches!(
        tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await,
        Ok(Ok(_))
    )
}

#[cfg(test)]
#[allow(clippy::indexing_slicing)] // a test's own fixture; a panic is the failure report
mod tests {
    use super::*;

    fn pool(n: u16) -> Pool {
        let targets: Vec<Target> = (0..n)
            .map(|i| Target {
                host: "127.0.0.1".into(),
                port: 10_000 + i,
            })
            .collect();
        Pool::new(
            &targets,
            HealthCheck {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
            },
        )
    }

    #[test]
    fn round_robin_skips_unhealthy_and_avoided() {
        let p = pool(3);
        let picks: Vec<usize> = (0..6).map(|_| p.select(&[]).unwrap().0).collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2]);
        p.targets[1].mark(false);
        let picks: Vec<usize> = (0..4).map(|_| p.select(&[]).unwrap().0).collect();
        assert!(!picks.contains(&1));
        assert_ne!(p.select(&[0, 2]), None, "falls back to an unhealthy target");
        assert_eq!(p.select(&[0, 1, 2]), None);
    }

    #[tokio::test]
    async fn active_check_marks_a_closed_port_down() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let open = listener.local_addr().unwrap().port();
        let closed = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let targets = [
            Target {
                host: "127.0.0.1".into(),
                port: open,
            },
            Target {
                host: "127.0.0.1".into(),
                port: closed,
            },
        ];
        let p = Pool::new(
            &targets,
            HealthCheck {
                interval: Duration::from_secs(5),
                timeout: Duration::from_secs(1),
            },
        );
        assert!(!p.is_checked());
        assert_eq!(p.check_once().await, vec![(0, true), (1, false)]);
        assert!(p.is_checked());
        for _ in 0..4 {
            assert_eq!(p.select(&[]).unwrap().0, 0);
        }
    }
}
