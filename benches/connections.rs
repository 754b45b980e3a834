//! 10 000 idle keep-alive TLS connections: the real `prehod` binary in front of a demo portal
//! on loopback; the bench opens `CONN_COUNT` HTTPS/1.1 connections, sends one request on each
//! (so each is a finished keep-alive connection, not a pending one), holds them all idle, and
//! reports the gateway's resident memory (`VmRSS` of `/proc/PID/status`) before, while they
//! are held, and after they are closed: memory per connection, and whether it returns.
//!
//! `bash benches/connections.sh` (raises `ulimit -n`; env: `CONN_COUNT`, default 10000;
//! `CONN_RELEASE=1` for a release gateway; `CONN_ROUNDS`, default 2: open, hold and close
//! them again, to tell memory the allocator keeps from memory still held). Figures go in benches/README.md.

use std::net::SocketAddr;
use std::pin::Pin;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslMethod};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_openssl::SslStream;

use prehod_test_support::bench::BenchGround;
use prehod_test_support::env_or;

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .expect("the gateway's VmRSS")
}

/// Open file descriptors of `pid`: whether the gateway really let the connections go.
fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, |d| d.count())
}

const HOST: &str = "acq.bankart.localhost";

/// One GET on `stream`; the whole response (headers and `Content-Length` body) is read, so
/// the connection is idle and reusable afterwards.
async fn request(stream: &mut SslStream<TcpStream>, port: u16) -> std::io::Result<u16> {
    let req = format!("GET /connections HTTP/1.1\r\nHost: {HOST}:{port}\r\n\r\n");
    stream.write_all(req.as_bytes()).await?;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        let n = stream.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::ErrorKind::UnexpectedEof.into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        let text = String::from_utf8_lossy(&buf);
        if let Some(end) = text.find("\r\n\r\n") {
            let head = text.get(..end).unwrap_or_default().to_ascii_lowercase();
            let length: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse().ok())
                .unwrap_or(0);
            if buf.len() >= end + 4 + length {
                let status = head
                    .split_whitespace()
                    .nth(1)
                    .and_then(|s| s.parse().ok())
                    .unwrap_or(0);
                return Ok(status);
            }
        }
    }
}

async fn open(
    connector: &SslConnector,
    addr: SocketAddr,
) -> Result<SslStream<TcpStream>, Box<dyn std::error::Error + Send + Sync>> {
    let tcp = TcpStream::connect(addr).await?;
    let ssl = connector.configure()?.into_ssl(HOST)?;
    let mut stream = SslStream::new(ssl, tcp)?;
    Pin::new(&mut stream).connect().await?;
    let status = request(&mut stream, addr.port()).await?;
    if status != 200 {
        return Err(format!("status {status}").into());
    }
    Ok(stream)
}

fn main() {
    let count: usize = env_or("CONN_COUNT", 10_000);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let ground = BenchGround::new().await;
        let (pki, https, upstream) = (&ground.pki, ground.https, ground.upstream);
        // Every connection comes from 127.0.0.1: the caps are raised above the count (their
        // defaults are for the internet, not for one load generator), and the idle timeout
        // past the bench (it holds the connections idle on purpose).
        let config = format!(
            // (No line may begin with the indentation: a `\` line end drops the next line's.)
            "{head}  max_connections: {cap}\n  max_connections_per_address: {cap}\n  \
max_pending_connections: {cap}\n  max_pending_connections_per_address: {pending}\n  idle_timeout: 1h\n{read_buffer}\
portals:\n  acq:\n    host: {HOST}\n    danger_no_authentication: true\n    upstream:\n      urls: [http://{upstream}]\n",
            head = ground.config_head(),
            cap = count + 100,
            pending = count + 99,
            read_buffer = std::env::var("CONN_READ_BUFFER")
                .map(|b| format!("  read_buffer: {b}\n"))
                .unwrap_or_default(),
        );
        let command = match std::env::var("CONN_WRAP") {
            Ok(w) => {
                let mut c = Command::new(w);
                c.arg(env!("CARGO_BIN_EXE_prehod"));
                c
            }
            Err(_) => Command::new(env!("CARGO_BIN_EXE_prehod")),
        };
        let mut child = ground.start(command, &config);
        let pid = child.id();
        let mut builder = SslConnector::builder(SslMethod::tls_client()).expect("tls");
        builder.set_ca_file(pki.path("ca.crt")).expect("ca");
        builder.set_alpn_protos(b"\x08http/1.1").expect("alpn");
        let connector = Arc::new(builder.build());

        let deadline = Instant::now() + Duration::from_secs(30);
        while open(&connector, https).await.is_err() {
            assert!(Instant::now() < deadline, "gateway did not come up");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        // Warm-up: a few hundred connections opened and closed, so that pools and caches
        // the first requests fill are in "before".
        for _ in 0..200 {
            drop(open(&connector, https).await.expect("warm-up"));
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
        let before = rss_kib(pid);
        println!(
            "connections: gateway pid {pid}, RSS before {before} KiB, {} open fds",
            fds(pid)
        );

        // A second round shows whether memory kept after the first is reused (the allocator
        // holding freed memory) or grows again (something still holds the first round's).
        let rounds: usize = env_or("CONN_ROUNDS", 2);
        for round in 1..=rounds {
            let started = Instant::now();
            let handshakes = Arc::new(tokio::sync::Semaphore::new(64));
            let mut tasks = Vec::with_capacity(count);
            for _ in 0..count {
                let (connector, handshakes) = (connector.clone(), handshakes.clone());
                tasks.push(tokio::spawn(async move {
                    let _permit = handshakes.acquire_owned().await.expect("semaphore");
                    open(&connector, https).await
                }));
            }
            let mut held = Vec::with_capacity(count);
            let mut failed = 0usize;
            for t in tasks {
                match t.await.expect("task") {
                    Ok(s) => held.push(s),
                    Err(e) => {
                        if failed < 5 {
                            eprintln!("connection failed: {e}");
                        }
                        failed += 1;
                    }
                }
            }
            println!(
                "round {round}: opened {} connections in {:.1} s ({failed} failed)",
                held.len(),
                started.elapsed().as_secs_f64()
            );
            tokio::time::sleep(Duration::from_secs(10)).await;
            let holding = rss_kib(pid);
            // Still served: a request on every 100th held connection.
            let mut alive = 0;
            for s in held.iter_mut().step_by(100) {
                if matches!(request(s, https.port()).await, Ok(200)) {
                    alive += 1;
                }
            }
            let sampled = held.len().div_ceil(100);
            let per = (holding.saturating_sub(before)) as f64 * 1024.0 / held.len().max(1) as f64;
            println!(
                "holding {}: RSS {holding} KiB (+{} KiB, {per:.0} bytes per connection), {} open fds; {alive}/{sampled} sampled connections still answered",
                held.len(),
                holding.saturating_sub(before),
                fds(pid)
            );
            let mut holding_later = 0;
            if let Ok(s) = std::env::var("CONN_HOLD_SECONDS") {
                tokio::time::sleep(Duration::from_secs(s.parse().unwrap_or(0))).await;
                holding_later = rss_kib(pid);
                println!("still holding after {s} s more: RSS {holding_later} KiB");
            }
            let closed_at = Instant::now();
            drop(held);
            for wait in [5u64, 15, 30] {
                tokio::time::sleep(Duration::from_secs(wait) - closed_at.elapsed().min(Duration::from_secs(wait))).await;
                let after = rss_kib(pid);
                println!(
                    "{wait:>2} s after closing them all: RSS {after} KiB ({:+} KiB against before; {:.0} % of the growth returned), {} open fds",
                    after as i64 - before as i64,
                    (holding.max(holding_later) as f64 - after as f64) * 100.0
                        / (holding.max(holding_later) as f64 - before as f64).max(1.0),
                    fds(pid)
                );
            }
        }
        let _ = child.kill();
        let _ = child.wait();
    });
}
