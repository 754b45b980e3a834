//! The floor of what pingora itself costs: a bare pingora 0.9.1 TLS reverse proxy with
//! nothing of prehod in it — every request goes to one upstream over pingora's keep-alive
//! connection pool. `benches/compare.sh` runs it beside nginx and prehod with the same thread
//! count, so the table shows how much of prehod's cost is its own.
//!
//! `cargo build --release --example bare_pingora`, then
//! `bare_pingora LISTEN UPSTREAM CERT KEY THREADS` (e.g. `127.0.0.1:8443 127.0.0.1:8080
//! server.crt server.key 2`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use pingora::prelude::*;
use pingora::server::configuration::ServerConf;

struct Bare {
    upstream: SocketAddr,
}

#[async_trait]
impl ProxyHttp for Bare {
    type CTX = ();

    fn new_ctx(&self) -> Self::CTX {}

    async fn upstream_peer(&self, _session: &mut Session, _ctx: &mut ()) -> Result<Box<HttpPeer>> {
        Ok(Box::new(HttpPeer::new(self.upstream, false, String::new())))
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let [listen, upstream, cert, key, threads] = args.as_slice() else {
        eprintln!("usage: bare_pingora LISTEN UPSTREAM CERT KEY THREADS");
        std::process::exit(2);
    };
    let (Ok(upstream), Ok(threads)) = (upstream.parse::<SocketAddr>(), threads.parse::<usize>())
    else {
        eprintln!("bare_pingora: UPSTREAM must be ip:port and THREADS a number");
        std::process::exit(2);
    };
    let conf = ServerConf {
        threads,
        ..ServerConf::default()
    };
    let mut server = Server::new_with_opt_and_conf(None, conf);
    server.bootstrap();
    let conf: Arc<ServerConf> = server.configuration.clone();
    let mut service = pingora::proxy::http_proxy_service(&conf, Bare { upstream });
    if let Err(e) = service.add_tls(listen, cert, key) {
        eprintln!("bare_pingora: TLS listener {listen}: {e}");
        std::process::exit(1);
    }
    server.add_service(service);
    server.run_forever();
}
