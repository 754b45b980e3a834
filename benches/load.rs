//! The whole-proxy load benchmark: the real `prehod` binary (build with `--release`) in front
//! of a demo portal, on loopback, driven by concurrent keep-alive HTTPS clients for a fixed
//! time; then the same load straight at the demo portal, to show what the gateway adds.
//!
//! `cargo bench --bench load` (env: LOAD_SECONDS, default 10; LOAD_CONNECTIONS, default 32).
//! Figures go in benches/README.md. Every request must succeed: a failure aborts the run.

use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use prehod_test_support::bench::BenchGround;
use prehod_test_support::env_or;

struct Figures {
    requests: u64,
    elapsed: Duration,
    latencies_us: Vec<u64>,
}

impl Figures {
    fn print(&mut self, what: &str) {
        self.latencies_us.sort_unstable();
        let p = |q: f64| {
            let i = ((self.latencies_us.len() as f64 - 1.0) * q).round() as usize;
            self.latencies_us.get(i).copied().unwrap_or(0) as f64 / 1000.0
        };
        println!(
            "{what:<28} {:>9.0} req/s   p50 {:>6.2} ms   p99 {:>6.2} ms   p99.9 {:>6.2} ms   ({} requests)",
            self.requests as f64 / self.elapsed.as_secs_f64(),
            p(0.50),
            p(0.99),
            p(0.999),
            self.requests
        );
    }
}

async fn drive(client: reqwest::Client, url: String, connections: usize, seconds: u64) -> Figures {
    let stop = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..connections {
        let client = client.clone();
        let url = url.clone();
        let stop = stop.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                let t = Instant::now();
                let resp = client.get(&url).send().await.expect("request");
                assert_eq!(resp.status(), 200, "load request failed");
                resp.bytes().await.expect("body");
                latencies.push(t.elapsed().as_micros() as u64);
            }
            latencies
        }));
    }
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    stop.store(true, Ordering::Relaxed);
    let mut latencies_us = Vec::new();
    for t in tasks {
        latencies_us.extend(t.await.expect("task"));
    }
    Figures {
        requests: latencies_us.len() as u64,
        elapsed: started.elapsed(),
        latencies_us,
    }
}

fn main() {
    let seconds: u64 = env_or("LOAD_SECONDS", 10);
    let connections: usize = env_or("LOAD_CONNECTIONS", 32);
    // Both sides share this machine's cores: the client gets one runtime thread per core.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let ground = BenchGround::new().await;
        let (pki, https, upstream) = (&ground.pki, ground.https, ground.upstream);
        let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
        // acq needs no login; bips needs a session: the two measure the gateway without and
        // with the login's per-request work (session check, identity headers, assertion).
        let config = format!(
            "{head}login:\n  host: login.bankart.localhost\nsession:\n  keys: [\"{key}\"]\n\
oidc:\n  issuer: https://rekono.localhost:1/openid-connect-server-webapp\n  client_id: load\n  client_secret: load\n\
assertion:\n  key: assertion.key\n\
portals:\n  acq:\n    host: acq.bankart.localhost\n    danger_no_authentication: true\n    upstream:\n      urls: [http://{upstream}]\n  bips:\n    host: bips.bankart.localhost\n    upstream:\n      urls: [http://{upstream}]\n",
            head = ground.config_head(),
            key = key.trim()
        );
        let mut child = ground.start(Command::new(env!("CARGO_BIN_EXE_prehod")), &config);
        let ca = std::fs::read(pki.path("ca.crt")).expect("ca");
                let client = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
            .resolve("acq.bankart.localhost", https)
            .resolve("bips.bankart.localhost", https)
            .http1_only()
            .pool_max_idle_per_host(connections)
            .build()
            .expect("client");
        let url = format!("https://acq.bankart.localhost:{}/bench", https.port());
        let deadline = Instant::now() + Duration::from_secs(20);
        while client.get(&url).send().await.map(|r| r.status() != 200).unwrap_or(true) {
            assert!(Instant::now() < deadline, "gateway did not come up");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        println!("load: {connections} keep-alive connections, {seconds} s each, GET of a ~0.5 KiB page\n");
        // Warm-up, not counted.
        drive(client.clone(), url.clone(), connections, 1).await;
                drive(client.clone(), url.clone(), connections, seconds).await.print("through prehod (HTTPS, h1)");

        // A session as a Rekono login would have issued it, sealed with the configured key.
        let keys = [decode_key(key.trim())];
        let sessions = prehod_identity::session::Sessions::new(
            prehod_identity::seal::Sealer::new(&keys),
            Duration::from_secs(1800),
            Duration::from_secs(36000),
            10,
        );
        let now = prehod_identity::unix_now();
        let (_, cookie) = sessions
            .issue(
                prehod_identity::session::Session {
                    name: "Load Test".into(),
                    email: "load@rekono.localhost".into(),
                    amr: vec!["pwd".into(), "otp".into()],
                    auth_time: now,
                    // Host-only cookies: sealed for the portal it is sent to.
                    host: Some("bips.bankart.localhost".into()),
                    ..prehod_identity::session::Session::new(
                        prehod_identity::session::Method::Rekono,
                        "rekono-load",
                        20,
                    )
                },
                now,
            )
            .expect("session");
        let mut headers = reqwest::header::HeaderMap::new();
        headers.insert("cookie", format!("__Host-prehod_session={cookie}").parse().expect("header"));
        let with_session = reqwest::Client::builder()
            .add_root_certificate(reqwest::Certificate::from_pem(&ca).expect("pem"))
            .resolve("bips.bankart.localhost", https)
            .default_headers(headers)
            .http1_only()
            .pool_max_idle_per_host(connections)
            .build()
            .expect("client");
        let bips = format!("https://bips.bankart.localhost:{}/bench", https.port());
        drive(with_session.clone(), bips.clone(), connections, 1).await;
        drive(with_session, bips, connections, seconds).await.print("… with a login session");


        let direct = reqwest::Client::builder().http1_only().pool_max_idle_per_host(connections).build().expect("client");
        let direct_url = format!("http://{upstream}/bench");
        drive(direct.clone(), direct_url.clone(), connections, 1).await;
        drive(direct, direct_url, connections, seconds).await.print("demo portal direct (HTTP)");
        let _ = child.kill();
        let _ = child.wait();
    });
}

fn decode_key(b64: &str) -> [u8; 32] {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD
        .decode(b64)
        .expect("base64 session key")
        .try_into()
        .expect("32 bytes")
}
