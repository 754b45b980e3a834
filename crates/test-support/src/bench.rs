//! What a whole-gateway bench stands its gateway on: a fresh PKI, the demo portal `acq` on the
//! bench's runtime, free loopback ports for the gateway's listeners, the start of its config,
//! and `prehod run` on the config the bench completes.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};

use crate::{demo_portal, free_port, Pki};

pub struct BenchGround {
    pub pki: Pki,
    /// The demo portal `acq`.
    pub upstream: SocketAddr,
    pub https: SocketAddr,
    pub admin: SocketAddr,
    _portal: tokio::task::JoinHandle<()>,
}

impl BenchGround {
    pub async fn new() -> Self {
        let (upstream, portal) = demo_portal("acq").await;
        let loopback = |port: u16| SocketAddr::from(([127, 0, 0, 1], port));
        Self {
            pki: Pki::new(),
            upstream,
            https: loopback(free_port()),
            admin: loopback(free_port()),
            _portal: portal,
        }
    }

    /// The start of a bench's config: both listeners, the dev server certificate, and
    /// `server:` with 2 threads and a 1 s grace period (the bench's own `server:` keys may
    /// follow).
    pub fn config_head(&self) -> String {
        format!(
            "listen:\n  https: {}\nadmin:\n  listen: {}\n\
tls:\n  certificates:\n    - cert: server.crt\n      key: server.key\n\
server:\n  threads: 2\n  grace_period: 1s\n",
            self.https, self.admin
        )
    }

    /// Writes `config` as `proxy.yaml` beside the PKI and starts `prehod` (`command`: the
    /// bench's build of it, or a wrapper around it) as `run --config proxy.yaml`, logging
    /// warnings only, its output dropped.
    pub fn start(&self, mut command: Command, config: &str) -> Child {
        let path = self.pki.path("proxy.yaml");
        std::fs::write(&path, config).expect("config");
        command
            .args(["run", "--config"])
            .arg(&path)
            .env("PREHOD_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .expect("start prehod")
    }
}
