//! prehod against real peers, in one run: an nginx static upstream (12-byte body), nginx as a
//! TLS reverse proxy with a keep-alive upstream pool (the reference), a bare pingora TLS proxy
//! (benches/bare_pingora.rs, the floor of what pingora itself costs), and the real `prehod`
//! binary — a public route, a route with a session from a real Rekono login through the
//! simulator, and a certificate-only (mTLS) portal — and nginx in front of a forward-auth
//! portal asking prehod with `auth_request` (the shipped deploy/nginx/ template). Keep-alive HTTP/1.1 load from `wrk`, HTTP/2
//! from `h2load`, and a new TLS connection per request (with and without a client certificate)
//! from this file's own load client, which wrk cannot do. All on loopback, free ports, targets
//! interleaved, several rounds, medians; CPU of the server processes from /proc/PID/stat, peak
//! RSS from VmHWM (reset through /proc/PID/clear_refs before each run where the kernel lets it).
//!
//! Run it through `bash benches/compare.sh` (installs nginx, wrk, h2load; builds the bare
//! proxy). Env: COMPARE_SECONDS (10), COMPARE_ROUNDS (3), COMPARE_CONNECTIONS (64),
//! COMPARE_THREADS (2: prehod's, nginx's and the bare proxy's), COMPARE_BARE (the bare proxy's
//! binary), COMPARE_OUT (also write the table there), COMPARE_ONLY (only the rows whose
//! name holds it or one of its `|`-separated parts, no paced runs; `HTTP/2` for the two
//! h2load rows), COMPARE_PACED (`1`: the paced runs too under COMPARE_ONLY, when it keeps the
//! nginx proxy's and the authenticated rows; the bare proxy's row, when kept, is paced at
//! prehod's rate too), COMPARE_H2_STREAMS (10:
//! h2load's `-m`, streams open at once per connection). `--smoke`: 1 s per target, one round,
//! every response checked — it fails if any target answers anything but 200 or errors.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use openssl::ssl::{SslConnector, SslFiletype, SslMethod, SslVerifyMode};
use prehod_test_support::login::{login_otp, Browser, World, CLIENT_ID, CLIENT_SECRET, SESSION};
use prehod_test_support::rekono::{SREDNJA, SREDNJA_TOTP};
use prehod_test_support::{free_port, host, Gateway, Pki, Setup, PORTALS};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The 12 bytes the static upstream answers.
const BODY: &str = "hello world\n";

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

// ---------------------------------------------------------------- processes and /proc

/// A server process group whose CPU and memory are measured: its pids (nginx: master and
/// workers).
#[derive(Clone)]
struct Procs {
    pids: Vec<u32>,
}

fn clock_ticks() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8_lossy(&o.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}

impl Procs {
    /// utime + stime of all of them, in clock ticks.
    fn cpu_ticks(&self) -> u64 {
        self.pids
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/stat")).ok())
            .map(|stat| {
                // Fields after the command name (which may hold spaces): state is field 3,
                // utime 14 and stime 15.
                let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
                let fields: Vec<&str> = rest.split_whitespace().collect();
                let field = |n: usize| {
                    fields
                        .get(n - 3)
                        .and_then(|f| f.parse::<u64>().ok())
                        .unwrap_or(0)
                };
                field(14) + field(15)
            })
            .sum()
    }

    /// Resets the peak RSS (VmHWM) of each; false where the kernel refuses.
    fn reset_peak(&self) -> bool {
        self.pids
            .iter()
            .all(|pid| std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok())
    }

    /// Sum of VmHWM in KiB.
    fn peak_kib(&self) -> u64 {
        self.status_kib("VmHWM:")
    }

    /// Sum of VmRSS in KiB (what they hold now).
    fn rss_kib(&self) -> u64 {
        self.status_kib("VmRSS:")
    }

    /// Sum of one `/proc/PID/status` field given in KiB.
    fn status_kib(&self, field: &str) -> u64 {
        self.pids
            .iter()
            .filter_map(|pid| std::fs::read_to_string(format!("/proc/{pid}/status")).ok())
            .filter_map(|s| {
                s.lines()
                    .find(|l| l.starts_with(field))
                    .and_then(|l| l.split_whitespace().nth(1))
                    .and_then(|v| v.parse::<u64>().ok())
            })
            .sum()
    }
}

/// The children of `parent` (nginx's workers).
fn children(parent: u32) -> Vec<u32> {
    let mut out = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
            continue;
        };
        let rest = stat.rsplit_once(')').map(|(_, r)| r).unwrap_or_default();
        if rest.split_whitespace().nth(1).and_then(|p| p.parse().ok()) == Some(parent) {
            out.push(pid);
        }
    }
    out
}

/// A child process killed (and reaped) when dropped (interrupted first under
/// `PREHOD_TEST_STOP=interrupt`: `prehod_test_support::gateway::stop`).
struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        prehod_test_support::gateway::stop(&mut self.0);
    }
}

// ---------------------------------------------------------------- nginx

struct Nginx {
    child: Child,
    procs: Procs,
    _dir: tempfile::TempDir,
}

impl Drop for Nginx {
    /// SIGTERM to the master (it stops its workers); a SIGKILL to the master alone would
    /// leave the workers running.
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let deadline = Instant::now() + Duration::from_secs(5);
        while Instant::now() < deadline && matches!(self.child.try_wait(), Ok(None)) {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        for pid in self.procs.pids.iter().skip(1) {
            if std::fs::read_to_string(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|c| c.starts_with("nginx"))
            {
                let _ = Command::new("kill")
                    .args(["-KILL", &pid.to_string()])
                    .status();
            }
        }
    }
}

/// nginx's configuration in a new temporary directory: `threads` workers (`0`: one process,
/// `master_process off`), the access log on, keep-alive without limit. Returns the directory
/// and the configuration file.
fn nginx_conf(threads: usize, servers: &str, http: &str) -> (tempfile::TempDir, PathBuf) {
    let dir = tempfile::tempdir().expect("temp dir");
    let d = dir.path().display();
    let user = if std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
    {
        "user root;\n"
    } else {
        ""
    };
    let processes = if threads == 0 {
        "master_process off;\nworker_processes 1;".to_owned()
    } else {
        format!("worker_processes {threads};")
    };
    let conf = format!(
        "{user}{processes}\npid {d}/nginx.pid;\nerror_log {d}/error.log warn;\n\
events {{ worker_connections 4096; }}\n\
http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n\
  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n\
  keepalive_requests 1000000;\n  keepalive_timeout 60s;\n{http}\n{servers}\n}}\n"
    );
    let path = dir.path().join("nginx.conf");
    std::fs::write(&path, conf).expect("nginx.conf");
    (dir, path)
}

/// nginx's arguments after its program: its prefix and error log in `dir`, the configuration
/// `conf`, in the foreground.
fn nginx_args<'c>(cmd: &'c mut Command, dir: &Path, conf: &Path) -> &'c mut Command {
    cmd.arg("-p")
        .arg(dir)
        .arg("-e")
        .arg(dir.join("error.log"))
        .arg("-c")
        .arg(conf)
        .args(["-g", "daemon off;"])
}

fn nginx(name: &str, threads: usize, servers: &str, http: &str) -> Nginx {
    let (dir, path) = nginx_conf(threads, servers, http);
    let d = dir.path().display();
    let child = nginx_args(&mut Command::new("nginx"), dir.path(), &path)
        .stdout(Stdio::null())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!("start nginx ({name}): {e} — run benches/compare.sh, it installs nginx")
        });
    let master = child.id();
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut workers = children(master);
    while workers.len() < threads {
        assert!(
            Instant::now() < deadline,
            "nginx ({name}) started no workers: see {d}/error.log"
        );
        std::thread::sleep(Duration::from_millis(20));
        workers = children(master);
    }
    let mut pids = vec![master];
    pids.extend(workers);
    Nginx {
        child,
        procs: Procs { pids },
        _dir: dir,
    }
}

// ---------------------------------------------------------------- the load client

/// Where and what this file's own client sends.
#[derive(Clone)]
struct Target {
    addr: SocketAddr,
    /// TLS: connector and server name; `None`: plain HTTP.
    tls: Option<(Arc<SslConnector>, String)>,
    request: Arc<Vec<u8>>,
}

trait Stream: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Stream for T {}

async fn connect(t: &Target) -> Result<Box<dyn Stream>, String> {
    let tcp = tokio::net::TcpStream::connect(t.addr)
        .await
        .map_err(|e| format!("connect {}: {e}", t.addr))?;
    tcp.set_nodelay(true).map_err(|e| e.to_string())?;
    let Some((connector, name)) = &t.tls else {
        return Ok(Box::new(tcp));
    };
    let ssl = connector
        .configure()
        .and_then(|c| c.into_ssl(name))
        .map_err(|e| e.to_string())?;
    let mut stream = tokio_openssl::SslStream::new(ssl, tcp).map_err(|e| e.to_string())?;
    std::pin::Pin::new(&mut stream)
        .connect()
        .await
        .map_err(|e| format!("TLS handshake with {name}: {e}"))?;
    Ok(Box::new(stream))
}

/// One request and its whole response (Content-Length framed); the status.
async fn exchange(
    s: &mut Box<dyn Stream>,
    request: &[u8],
    buf: &mut Vec<u8>,
) -> Result<u16, String> {
    s.write_all(request)
        .await
        .map_err(|e| format!("write: {e}"))?;
    buf.clear();
    let mut chunk = [0u8; 8192];
    let (head_end, status, length) = loop {
        let n = s.read(&mut chunk).await.map_err(|e| format!("read: {e}"))?;
        if n == 0 {
            return Err("connection closed before the response".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let head =
                String::from_utf8_lossy(buf.get(..end).unwrap_or_default()).to_ascii_lowercase();
            let status = head
                .split_whitespace()
                .nth(1)
                .and_then(|s| s.parse::<u16>().ok())
                .ok_or("no status line")?;
            let length = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .and_then(|v| v.trim().parse::<usize>().ok())
                .ok_or_else(|| format!("no content-length in the response: {head}"))?;
            break (end + 4, status, length);
        }
    };
    while buf.len() < head_end + length {
        let n = s
            .read(&mut chunk)
            .await
            .map_err(|e| format!("read body: {e}"))?;
        if n == 0 {
            return Err("connection closed in the body".into());
        }
        buf.extend_from_slice(chunk.get(..n).unwrap_or_default());
    }
    Ok(status)
}

#[derive(Clone, Copy, PartialEq)]
enum Mode {
    KeepAlive,
    /// A new TCP connection and a full TLS handshake for every request.
    NewConnection,
    /// Keep-alive at this many requests per second in all (latency from the scheduled time).
    Paced(f64),
}

/// Drives `t` from `connections` tasks for `seconds`; any error or non-200 aborts.
async fn drive(t: &Target, mode: Mode, connections: usize, seconds: f64) -> Sample {
    let started = Instant::now();
    let deadline = started + Duration::from_secs_f64(seconds);
    let mut tasks = Vec::new();
    for i in 0..connections {
        let t = t.clone();
        tasks.push(tokio::spawn(async move {
            let mut latencies = Vec::new();
            let mut buf = Vec::with_capacity(4096);
            let mut conn = None;
            let interval = match mode {
                Mode::Paced(rate) => Duration::from_secs_f64(connections as f64 / rate),
                _ => Duration::ZERO,
            };
            // Spread the paced connections' schedules over one interval.
            let mut next = started + interval.mul_f64(i as f64 / connections as f64);
            while Instant::now() < deadline {
                let t0 = if let Mode::Paced(_) = mode {
                    tokio::time::sleep_until(next.into()).await;
                    let scheduled = next;
                    next += interval;
                    scheduled
                } else {
                    Instant::now()
                };
                if conn.is_none() || mode == Mode::NewConnection {
                    conn = Some(connect(&t).await?);
                }
                let Some(c) = conn.as_mut() else {
                    return Err("no connection".to_owned());
                };
                let status = exchange(c, &t.request, &mut buf).await?;
                if status != 200 {
                    return Err(format!(
                        "answered {status}: {}",
                        String::from_utf8_lossy(&buf)
                    ));
                }
                latencies.push(t0.elapsed().as_micros() as u64);
            }
            Ok::<_, String>(latencies)
        }));
    }
    let mut latencies = Vec::new();
    for task in tasks {
        match task.await {
            Ok(Ok(l)) => latencies.extend(l),
            Ok(Err(e)) => panic!("load client: {e}"),
            Err(e) => panic!("load task: {e}"),
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort_unstable();
    let q = |p: f64| {
        let i = ((latencies.len() as f64 - 1.0) * p).round() as usize;
        latencies.get(i).copied().unwrap_or(0) as f64 / 1000.0
    };
    Sample {
        requests: latencies.len() as u64,
        rps: latencies.len() as f64 / elapsed,
        p50: q(0.50),
        p99: Some(q(0.99)),
        ..Sample::default()
    }
}

// ---------------------------------------------------------------- wrk and h2load

#[derive(Clone, Default)]
struct Sample {
    requests: u64,
    rps: f64,
    p50: f64,
    /// `None`: the tool gives no percentiles (h2load: p50 is its mean).
    p99: Option<f64>,
    proxy_cpu_ms_per_1k: f64,
    upstream_cpu_ms_per_1k: f64,
    peak_kib: u64,
}

/// CPU milliseconds per 1 000 requests from clock ticks spent over `requests`.
fn cpu_ms_per_1k(ticks: u64, tick_ms: f64, requests: u64) -> f64 {
    ticks as f64 * tick_ms / requests.max(1) as f64 * 1000.0
}

fn millis(v: &str) -> Option<f64> {
    let (num, unit) = v.split_at(v.find(|c: char| c.is_ascii_alphabetic())?);
    let n: f64 = num.parse().ok()?;
    Some(match unit {
        "us" => n / 1000.0,
        "ms" => n,
        "s" => n * 1000.0,
        "m" => n * 60_000.0,
        _ => return None,
    })
}

/// `wrk` against `url` on `connect_to` (wrk resolves the URL's host itself, and
/// *.bankart.localhost resolves nowhere: its Lua `wrk.resolve` is replaced).
#[allow(clippy::too_many_arguments)]
fn wrk(
    url: &str,
    connect_to: SocketAddr,
    headers: &[String],
    c: usize,
    threads: usize,
    seconds: f64,
    check: bool,
    dir: &Path,
) -> Sample {
    let script = dir.join(format!("wrk-{}.lua", connect_to.port()));
    let mut lua = format!(
        "function wrk.resolve(host, service)\n  wrk.addrs = wrk.lookup(\"{}\", \"{}\")\nend\n",
        connect_to.ip(),
        connect_to.port()
    );
    if check {
        lua.push_str("function response(status, headers, body)\n  if status ~= 200 then\n    io.stderr:write(\"wrk: answered \" .. status .. \"\\n\")\n    os.exit(3)\n  end\nend\n");
    }
    std::fs::write(&script, lua).expect("wrk script");
    let mut cmd = Command::new("wrk");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{c}"))
        .arg(format!("-d{}s", seconds.ceil() as u64))
        .arg("--latency")
        .arg("-s")
        .arg(&script);
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("run wrk (benches/compare.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "wrk {url} failed ({}): {text}{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        !text.contains("Non-2xx"),
        "wrk {url}: responses other than 200:\n{text}"
    );
    assert!(
        !text.contains("Socket errors"),
        "wrk {url}: socket errors:\n{text}"
    );
    let find = |prefix: &str| {
        text.lines()
            .map(str::trim)
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .unwrap_or_else(|| panic!("wrk output without {prefix:?}:\n{text}"))
    };
    let requests: u64 = text
        .lines()
        .find(|l| l.contains(" requests in "))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("wrk output without a request count:\n{text}"));
    assert!(requests > 0, "wrk {url}: no requests:\n{text}");
    Sample {
        requests,
        rps: find("Requests/sec:").parse().unwrap_or(0.0),
        p50: millis(find("50%")).unwrap_or(0.0),
        p99: millis(find("99%")),
        ..Sample::default()
    }
}

/// `h2load` (HTTP/2 over TLS): `c` connections, 10 streams each.
/// The rows the paced runs are measured against (their rates are halves of these rows' maximums),
/// found by name since COMPARE_ONLY may leave others out.
const NGINX_PROXY_ROW: &str = "nginx TLS reverse proxy, keep-alive pool";
const AUTHENTICATED_ROW: &str = "prehod, authenticated (Rekono session)";
/// The floor: pingora with nothing of prehod's (benches/bare_pingora.rs), paced at prehod's rate
/// when its row is kept.
const BARE_ROW: &str = "bare pingora TLS proxy";

/// Streams each h2load connection keeps open at once (`-m`): COMPARE_H2_STREAMS, 10.
fn h2_streams() -> usize {
    env_or("COMPARE_H2_STREAMS", 10)
}

fn h2load(
    url: &str,
    connect_to: SocketAddr,
    headers: &[String],
    c: usize,
    threads: usize,
    seconds: f64,
) -> Sample {
    let mut cmd = Command::new("h2load");
    cmd.arg(format!("-t{threads}"))
        .arg(format!("-c{c}"))
        .arg(format!("-m{}", h2_streams()))
        .arg(format!("-D{}", seconds.ceil() as u64))
        .arg(format!("--connect-to={connect_to}"));
    for h in headers {
        cmd.arg("-H").arg(h);
    }
    let out = cmd
        .arg(url)
        .output()
        .expect("run h2load (benches/compare.sh installs it)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(out.status.success(), "h2load {url} failed: {text}");
    let line = |prefix: &str| {
        text.lines()
            .find(|l| l.starts_with(prefix))
            .unwrap_or_else(|| panic!("h2load output without {prefix:?}:\n{text}"))
            .to_owned()
    };
    let requests = line("requests:");
    let number = |l: &str, after: &str| -> u64 {
        let words: Vec<&str> = l.split_whitespace().collect();
        words
            .iter()
            .position(|w| w.trim_end_matches(',') == after)
            .and_then(|i| i.checked_sub(1))
            .and_then(|i| words.get(i))
            .and_then(|w| w.parse().ok())
            .unwrap_or(0)
    };
    let done = number(&requests, "done");
    let ok = number(&requests, "succeeded");
    let codes = line("status codes:");
    // A response that arrives as the clock stops is counted in the status codes but not in
    // `done` (seen: 172 033 done, 172 034 2xx): no other status, and at least `done` 2xx.
    assert!(
        done > 0
            && ok == done
            && number(&codes, "2xx") >= done
            && ["3xx", "4xx", "5xx"].iter().all(|c| number(&codes, c) == 0),
        "h2load {url}: not every request answered 2xx:\n{text}"
    );
    let finished = line("finished in");
    let rps = finished
        .split(", ")
        .find(|p| p.ends_with("req/s"))
        .and_then(|p| p.trim_end_matches(" req/s").parse().ok())
        .unwrap_or(0.0);
    // time for request:  min  max  mean  sd  +/-sd
    let t = line("time for request:");
    let mean = t.split_whitespace().nth(5).and_then(millis).unwrap_or(0.0);
    Sample {
        requests: done,
        rps,
        p50: mean,
        p99: None,
        ..Sample::default()
    }
}

// ---------------------------------------------------------------- prehod with a real login

struct Prehod {
    world: World,
    cookie: String,
    /// The browser of the login (its login-host session serves the forward-auth row's).
    browser: Browser,
}

/// prehod logged in through the simulator; with `forward_auth`, also the portal fa behind
/// nginx and nginx's address (127.0.0.2) trusted — left out of the instruction counts, whose
/// rows it would change (one CIDR more to match per request).
async fn prehod(threads: usize, upstream: SocketAddr, forward_auth: bool) -> Prehod {
    for _ in 0..5 {
        let pki = Pki::new();
        let port = free_port();
        let login_url = format!("https://login.bankart.localhost:{port}");
        let rp = prehod_test_support::rekono::gateway_client(
            CLIENT_ID,
            CLIENT_SECRET,
            &login_url,
            "/oidc/callback",
        );
        let config = prehod_test_support::rekono::sim_config(
            &pki,
            vec![prehod_rekono_sim::config::client(&rp, pki.dir.path()).expect("client")],
            Some(pki.path("ca.crt")),
        );
        let sim = prehod_rekono_sim::spawn(config).await.expect("simulator");
        let mut setup = Setup::new();
        for p in PORTALS {
            setup = setup.upstream(p, &[format!("http://{upstream}")]);
        }
        // fa sits behind nginx (the forward-auth row), which asks prehod from 127.0.0.2.
        if forward_auth {
            setup.more_portals = "fa:\n  host: fa.bankart.localhost\n  forward_auth: true\n".into();
            setup.top_extra = "trusted_proxies: [127.0.0.2/32]\n".into();
        }
        setup = setup
            .portal_yaml("acq", "danger_no_authentication: true")
            .portal_yaml("bips", "min_level: 20")
            .portal_yaml("bws", "client_certificate: required");
        setup.https_port = Some(port);
        // All load comes from 127.0.0.1.
        setup.server_extra =
            "max_connections: 100000\nmax_connections_per_address: 100000\nmax_pending_connections: 100000\n\
max_pending_connections_per_address: 50000\n"
                .to_owned();
        let key = std::fs::read_to_string(pki.path("session.key")).expect("session key");
        setup.auth = Some(format!(
            "login:\n  host: login.bankart.localhost\n  url: {login_url}\n\
session:\n  keys: [\"{key}\"]\n\
oidc:\n  issuer: {issuer}\n  client_id: {CLIENT_ID}\n  client_secret: {CLIENT_SECRET}\n  ca: {ca}\n  timeout: 5s\n\
assertion:\n  key: {assertion}\n\
certificate_login:\n  host: certlogin.bankart.localhost\n  level: 30\n  anchors:\n    - name: prehod dev CA\n      ca: {ca}\n      user_id: serial_number\n      crls: [\"{crl}\"]\n",
            key = key.trim(),
            issuer = sim.issuer(),
            ca = pki.path("ca.crt").display(),
            assertion = pki.path("assertion.key").display(),
            crl = pki.path("ca.crl.pem").display(),
        ));
        if threads != 2 {
            setup
                .server_extra
                .push_str(&format!("threads: {threads}\n"));
        }
        let Some(gw) = Gateway::try_start(&pki, &setup) else {
            continue;
        };
        gw.wait_ready();
        let world = World {
            _responder: None,
            pki,
            sim,
            staff: None,
            gw,
            _portals: Vec::new(),
        };
        let mut browser = Browser::new(&world);
        let url = prehod_test_support::login::portal_url(&world, "bips", "/");
        let page = login_otp(&world, &mut browser, &url, SREDNJA, SREDNJA_TOTP).await;
        assert_eq!(
            page.status, 200,
            "the login ends on the portal: {}",
            page.body
        );
        let cookie = browser
            .cookie_at(&host("bips"), SESSION)
            .expect("a session cookie from the login");
        return Prehod {
            world,
            cookie,
            browser,
        };
    }
    panic!("five attempts to start prehod lost its port");
}

// ---------------------------------------------------------------- the run

#[derive(Clone, Copy)]
enum Tool {
    Wrk,
    H2load,
    Client(Mode),
}

struct Row {
    name: &'static str,
    tool: Tool,
    url: String,
    connect_to: SocketAddr,
    headers: Vec<String>,
    target: Target,
    proxy: Option<Procs>,
    upstream: Procs,
}

fn connector(ca: &Path, identity: Option<(PathBuf, PathBuf)>, alpn_h1: bool) -> Arc<SslConnector> {
    let mut b = SslConnector::builder(SslMethod::tls_client()).expect("connector");
    b.set_ca_file(ca).expect("ca");
    b.set_verify(SslVerifyMode::PEER);
    if alpn_h1 {
        b.set_alpn_protos(b"\x08http/1.1").expect("alpn");
    }
    if let Some((cert, key)) = identity {
        b.set_certificate_chain_file(cert).expect("client cert");
        b.set_private_key_file(key, SslFiletype::PEM)
            .expect("client key");
    }
    Arc::new(b.build())
}

fn request(host: &str, extra: &[String], close: bool) -> Arc<Vec<u8>> {
    let mut r =
        format!("GET / HTTP/1.1\r\nHost: {host}\r\nUser-Agent: prehod-compare\r\nAccept: */*\r\n");
    for h in extra {
        r.push_str(h);
        r.push_str("\r\n");
    }
    if close {
        r.push_str("Connection: close\r\n");
    }
    r.push_str("\r\n");
    Arc::new(r.into_bytes())
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    v.get(v.len() / 2).copied().unwrap_or(0.0)
}

/// `n` requests one after another on the keep-alive connection `c`, each answered 200.
async fn sequential(c: &mut Box<dyn Stream>, t: &Target, n: usize) {
    let mut buf = Vec::new();
    for _ in 0..n {
        let status = exchange(c, &t.request, &mut buf).await.expect("exchange");
        assert_eq!(status, 200, "{}", String::from_utf8_lossy(&buf));
    }
}

/// Instructions per request of `blocks` blocks of `n` requests on one keep-alive connection
/// to `t` (after 50 to warm up), each block between two callgrind dumps of process `pid`
/// (its parts from `*part` on): sorted, least first. No handshake falls in a block.
async fn per_request(
    t: &Target,
    n: usize,
    blocks: usize,
    pid: u32,
    out: &str,
    part: &mut usize,
) -> Vec<f64> {
    let mut c = connect(t).await.expect("connect");
    sequential(&mut c, t, 50).await;
    dump(pid, out, *part);
    let mut costs = Vec::new();
    for _ in 0..blocks {
        sequential(&mut c, t, n).await;
        *part += 1;
        costs.push(dump(pid, out, *part) as f64 / n as f64);
    }
    *part += 1;
    costs.sort_by(f64::total_cmp);
    costs
}

/// One request on a new TCP connection with a full TLS handshake (the client keeps no TLS
/// session, so nothing is resumed), `Connection: close`, read until the server closes.
async fn on_new_connection(t: &Target, buf: &mut Vec<u8>) {
    let mut c = connect(t).await.expect("connect");
    let status = exchange(&mut c, &t.request, buf).await.expect("exchange");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(buf));
    let mut rest = [0u8; 1024];
    // The server's close_notify (0) or its FIN without one (an error): either ends it.
    while matches!(c.read(&mut rest).await, Ok(n) if n > 0) {}
}

/// Instructions per request of `blocks` blocks of `n` requests to `t`, each on a new
/// connection ([`on_new_connection`]; `t`'s request must ask for the close), after 10 to warm
/// up, each block between two callgrind dumps of process `pid`: sorted, least first. The
/// dump waits a moment after the block, so that the server has let go of its last connection.
async fn per_new_connection(
    t: &Target,
    n: usize,
    blocks: usize,
    pid: u32,
    out: &str,
    part: &mut usize,
) -> Vec<f64> {
    let mut buf = Vec::new();
    for _ in 0..10 {
        on_new_connection(t, &mut buf).await;
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    dump(pid, out, *part);
    let mut costs = Vec::new();
    for _ in 0..blocks {
        for _ in 0..n {
            on_new_connection(t, &mut buf).await;
        }
        tokio::time::sleep(Duration::from_millis(300)).await;
        *part += 1;
        costs.push(dump(pid, out, *part) as f64 / n as f64);
    }
    *part += 1;
    costs.sort_by(f64::total_cmp);
    costs
}

/// `| name | least | median | most |` of sorted per-request costs.
fn row(name: &str, costs: &[f64]) -> String {
    let at = |i: usize| costs.get(i).copied().unwrap_or(f64::NAN);
    format!(
        "| {name} | {:.0} | {:.0} | {:.0} |\n",
        at(0),
        at(costs.len() / 2),
        at(costs.len().saturating_sub(1))
    )
}

/// Asks callgrind to dump its counters (and zero them); waits for part `part` to be written.
fn dump(pid: u32, out: &str, part: usize) -> u64 {
    let status = Command::new("callgrind_control")
        .args(["-d", &format!("part{part}"), &pid.to_string()])
        .stdout(Stdio::null())
        .status()
        .expect("callgrind_control (valgrind)");
    assert!(status.success(), "callgrind_control -d {pid}");
    let file = format!("{out}.{pid}.{part}");
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let total = std::fs::read_to_string(&file).ok().and_then(|t| {
            t.lines()
                .find_map(|l| {
                    l.strip_prefix("totals:")
                        .or_else(|| l.strip_prefix("summary:"))
                })
                .and_then(|v| v.trim().parse::<u64>().ok())
        });
        if let Some(total) = total {
            return total;
        }
        assert!(Instant::now() < deadline, "callgrind wrote no {file}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Instructions per request of the release gateway under callgrind: the public route, the
/// authenticated route (session from a real login) and the certificate-only portal, each in
/// `blocks` blocks of `n` requests on one keep-alive connection between callgrind dumps, so
/// that nothing but requests is counted (start-up, login, handshakes and warm-up fall in
/// other parts of the profile). The median block is the path's figure: a block's cost varies
/// with timing (a read that finds no data yet costs OpenSSL a record buffer allocated and
/// freed), the median of several does much less.
///
/// With `fresh` > 0 also instructions per request on a new TLS connection each (full
/// handshake, no resumption: [`per_new_connection`], `blocks` blocks of `fresh`) for the
/// public route, the certificate-only portal, the bare proxy and nginx (with and without a
/// client certificate), into `new-connection.json` (not held to a budget).
async fn instructions(n: usize, fresh: usize, blocks: usize, threads: usize, out_dir: &Path) {
    let up_port = free_port();
    let upstream_addr: SocketAddr = ([127, 0, 0, 1], up_port).into();
    let _up = nginx(
        "upstream",
        1,
        &format!(
            "  server {{\n    listen 127.0.0.1:{up_port};\n    location / {{\n      default_type text/plain;\n      return 200 \"{}\";\n    }}\n  }}",
            BODY.replace('\n', "\\n")
        ),
        "",
    );
    std::fs::create_dir_all(out_dir).expect("callgrind output directory");
    let out = out_dir.join("callgrind.out").display().to_string();
    std::env::set_var(
        "PREHOD_TEST_WRAPPER",
        format!("valgrind --tool=callgrind --callgrind-out-file={out}.%p"),
    );
    let ph = prehod(threads, upstream_addr, false).await;
    std::env::remove_var("PREHOD_TEST_WRAPPER");
    let pid = ph.world.gw.pid();
    let ca = ph.world.pki.path("ca.crt");
    let plain = connector(&ca, None, true);
    let with_cert = connector(
        &ca,
        Some((
            ph.world.pki.path("clients/valid.crt"),
            ph.world.pki.path("clients/valid.key"),
        )),
        true,
    );
    let gw = ph.world.gw.https;
    let session = vec![format!("Cookie: {SESSION}={}", ph.cookie)];
    let paths = [
        (
            "public",
            "public route (acq)",
            Target {
                addr: gw,
                tls: Some((plain.clone(), host("acq"))),
                request: request(&host("acq"), &[], false),
            },
        ),
        (
            "authenticated",
            "authenticated (bips, Rekono session)",
            Target {
                addr: gw,
                tls: Some((plain.clone(), host("bips"))),
                request: request(&host("bips"), &session, false),
            },
        ),
        (
            "certificate_only",
            "certificate-only portal (bws, mTLS)",
            Target {
                addr: gw,
                tls: Some((with_cert.clone(), host("bws"))),
                request: request(&host("bws"), &[], false),
            },
        ),
    ];
    let mut part = 1;
    let mut rows = String::new();
    let mut figures = serde_json::Map::new();
    for (key, name, t) in &paths {
        let costs = per_request(t, n, blocks, pid, &out, &mut part).await;
        rows.push_str(&row(name, &costs));
        let median = costs.get(costs.len() / 2).copied().unwrap_or(f64::NAN);
        figures.insert((*key).into(), median.round().into());
        eprintln!("{name}: {costs:.0?} instructions per request");
    }
    // New connections: the same gateway and paths, a full handshake per request.
    let mut fresh_rows = String::new();
    let mut fresh_figures = serde_json::Map::new();
    let mut fresh_row = |key: &str, name: &str, costs: &[f64]| {
        fresh_rows.push_str(&row(name, costs));
        let median = costs.get(costs.len() / 2).copied().unwrap_or(f64::NAN);
        fresh_figures.insert(key.into(), median.round().into());
        eprintln!("{name}: {costs:.0?} instructions per new connection");
    };
    if fresh > 0 {
        for (key, name, connector, portal) in [
            ("public", "prehod, public route (acq)", &plain, "acq"),
            (
                "certificate_only",
                "prehod, certificate-only portal (bws, client certificate)",
                &with_cert,
                "bws",
            ),
        ] {
            let t = Target {
                addr: gw,
                tls: Some((connector.clone(), host(portal))),
                request: request(&host(portal), &[], true),
            };
            let costs = per_new_connection(&t, fresh, blocks, pid, &out, &mut part).await;
            fresh_row(key, name, &costs);
        }
    }
    // The floor: the bare pingora proxy, on the same upstream, under callgrind the same way
    // (not with COMPARE_BARE=none: the CI budget check builds only the gateway).
    let bare_bin = std::env::var("COMPARE_BARE")
        .unwrap_or_else(|_| "target/release/examples/bare_pingora".into());
    if bare_bin != "none" {
        let bare_port = free_port();
        let bare_out = out_dir.join("bare.out").display().to_string();
        let cert = ph.world.pki.path("server.crt").display().to_string();
        let key = ph.world.pki.path("server.key").display().to_string();
        let bare = Killed(
            Command::new("valgrind")
                .args([
                    "--tool=callgrind",
                    &format!("--callgrind-out-file={bare_out}.%p"),
                    &bare_bin,
                ])
                .arg(format!("127.0.0.1:{bare_port}"))
                .arg(upstream_addr.to_string())
                .args([&cert, &key])
                .arg(threads.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .expect("valgrind bare_pingora"),
        );
        let bare_target = Target {
            addr: ([127, 0, 0, 1], bare_port).into(),
            tls: Some((connector(&ca, None, true), host("acq"))),
            request: request(&host("acq"), &[], false),
        };
        let deadline = Instant::now() + Duration::from_secs(300);
        while connect(&bare_target).await.is_err() {
            assert!(
                Instant::now() < deadline,
                "bare pingora did not come up under valgrind"
            );
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let mut bare_part = 1;
        let costs = per_request(
            &bare_target,
            n,
            blocks,
            bare.0.id(),
            &bare_out,
            &mut bare_part,
        )
        .await;
        rows.push_str(&row(
            "bare pingora proxy (no prehod, no access log)",
            &costs,
        ));
        let median = costs.get(costs.len() / 2).copied().unwrap_or(f64::NAN);
        figures.insert("bare_pingora".into(), median.round().into());
        if fresh > 0 {
            let t = Target {
                request: request(&host("acq"), &[], true),
                ..bare_target
            };
            let costs =
                per_new_connection(&t, fresh, blocks, bare.0.id(), &bare_out, &mut bare_part).await;
            fresh_row("bare_pingora", "bare pingora proxy", &costs);
        }
        drop(bare);
    }
    // The reference: nginx as the TLS reverse proxy (the same certificate, upstream and
    // keep-alive pool as compare's timed row, access log on), one process under callgrind.
    if std::env::var("INSTR_NGINX").is_ok_and(|v| v == "none") {
        eprintln!("nginx TLS proxy: not counted (INSTR_NGINX=none)");
    } else if Command::new("nginx")
        .arg("-v")
        .stderr(Stdio::null())
        .status()
        .is_err()
    {
        eprintln!("nginx TLS proxy: not counted (no nginx on PATH)");
    } else {
        let (costs, fresh_costs) =
            nginx_instructions(&ph, upstream_addr, n, fresh, blocks, out_dir).await;
        rows.push_str(&row("nginx TLS proxy (access log on)", &costs));
        let median = costs.get(costs.len() / 2).copied().unwrap_or(f64::NAN);
        figures.insert("nginx".into(), median.round().into());
        if let Some((plain, with_cert)) = fresh_costs {
            fresh_row("nginx", "nginx TLS proxy", &plain);
            fresh_row(
                "nginx_client_certificate",
                "nginx TLS proxy, client certificate (ssl_verify_client on)",
                &with_cert,
            );
        }
    }
    // For benches/budget.py (the CI budget check): instructions per request by path.
    std::fs::write(
        out_dir.join("per-request.json"),
        serde_json::Value::Object(figures).to_string() + "\n",
    )
    .expect("write per-request.json");
    println!(
        "\ninstructions per request (callgrind, release gateway, one keep-alive connection, {blocks} blocks of {n} requests, access log on):\n\n| path | least | median | most |\n|---|---:|---:|---:|\n{rows}\nprofiles: {out}.{pid}.* (callgrind_annotate)"
    );
    if !fresh_figures.is_empty() {
        std::fs::write(
            out_dir.join("new-connection.json"),
            serde_json::Value::Object(fresh_figures).to_string() + "\n",
        )
        .expect("write new-connection.json");
        println!(
            "\ninstructions per request on a new TLS connection each (full TLS 1.3 handshake, no resumption, Connection: close; {blocks} blocks of {fresh}):\n\n| path | least | median | most |\n|---|---:|---:|---:|\n{fresh_rows}"
        );
    }
}

/// Sorted instructions per request on new connections (without, with a client certificate).
type FreshCosts = (Vec<f64>, Vec<f64>);

/// nginx as the TLS reverse proxy of compare's timed rows, one process (`master_process off`)
/// under callgrind, counted like the gateway: sorted instructions per request of `blocks`
/// blocks of `n` requests on one connection, and with `fresh` > 0 of `blocks` blocks of
/// `fresh` on a new connection each — also to a second server that verifies client
/// certificates against the dev CA (compare's timed row). Profiles: `out_dir/nginx.out.PID.*`.
async fn nginx_instructions(
    ph: &Prehod,
    upstream: SocketAddr,
    n: usize,
    fresh: usize,
    blocks: usize,
    out_dir: &Path,
) -> (Vec<f64>, Option<FreshCosts>) {
    let pki = &ph.world.pki;
    let (port, mtls_port) = (free_port(), free_port());
    let tls = format!(
        "    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n",
        cert = pki.path("server.crt").display(),
        key = pki.path("server.key").display(),
    );
    let location = "    location / {\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n";
    let (dir, conf) = nginx_conf(
        0,
        &format!(
            "  server {{\n    listen 127.0.0.1:{port} ssl;\n{tls}{location}  }}\n\
  server {{\n    listen 127.0.0.1:{mtls_port} ssl;\n{tls}    ssl_client_certificate {ca};\n    ssl_verify_client on;\n    ssl_verify_depth 3;\n{location}  }}",
            ca = pki.path("ca.crt").display(),
        ),
        &format!("  upstream backend {{\n    server {upstream};\n    keepalive 32;\n  }}"),
    );
    let ngx_out = out_dir.join("nginx.out").display().to_string();
    let mut valgrind = Command::new("valgrind");
    valgrind.args([
        "--tool=callgrind",
        &format!("--callgrind-out-file={ngx_out}.%p"),
        "nginx",
    ]);
    let ngx = Killed(
        nginx_args(&mut valgrind, dir.path(), &conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("valgrind nginx"),
    );
    let target = Target {
        addr: ([127, 0, 0, 1], port).into(),
        tls: Some((connector(&pki.path("ca.crt"), None, true), host("acq"))),
        request: request(&host("acq"), &[], false),
    };
    let deadline = Instant::now() + Duration::from_secs(300);
    while connect(&target).await.is_err() {
        assert!(
            Instant::now() < deadline,
            "nginx did not come up under valgrind: see {}/error.log",
            dir.path().display()
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut part = 1;
    let costs = per_request(&target, n, blocks, ngx.0.id(), &ngx_out, &mut part).await;
    let fresh_costs = if fresh > 0 {
        let ca = pki.path("ca.crt");
        let identity = (pki.path("clients/valid.crt"), pki.path("clients/valid.key"));
        let plain = Target {
            request: request(&host("acq"), &[], true),
            ..target
        };
        let with_cert = Target {
            addr: ([127, 0, 0, 1], mtls_port).into(),
            tls: Some((connector(&ca, Some(identity), true), host("acq"))),
            request: plain.request.clone(),
        };
        let id = ngx.0.id();
        let plain = per_new_connection(&plain, fresh, blocks, id, &ngx_out, &mut part).await;
        let with_cert =
            per_new_connection(&with_cert, fresh, blocks, id, &ngx_out, &mut part).await;
        Some((plain, with_cert))
    } else {
        None
    };
    drop(ngx);
    (costs, fresh_costs)
}

fn main() {
    let smoke = std::env::args().any(|a| a == "--smoke");
    if std::env::args().any(|a| a == "--instructions") {
        let n = env_or("INSTR_REQUESTS", 1000);
        let fresh = env_or("INSTR_NEW_CONNECTIONS", 100);
        let blocks = env_or("INSTR_BLOCKS", 5);
        let threads = env_or("COMPARE_THREADS", 2);
        let dir =
            PathBuf::from(std::env::var("INSTR_DIR").unwrap_or_else(|_| "target/callgrind".into()));
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .expect("runtime");
        runtime.block_on(instructions(n, fresh, blocks, threads, &dir));
        return;
    }
    let seconds: f64 = if smoke {
        1.0
    } else {
        env_or("COMPARE_SECONDS", 10.0)
    };
    let rounds: usize = if smoke {
        1
    } else {
        env_or("COMPARE_ROUNDS", 3)
    };
    let connections: usize = env_or("COMPARE_CONNECTIONS", 64);
    let threads: usize = env_or("COMPARE_THREADS", 2);
    let bare_bin = std::env::var("COMPARE_BARE").unwrap_or_else(|_| {
        let exe = std::env::current_exe().expect("exe");
        let profile = exe.parent().and_then(Path::parent).expect("target dir");
        profile.join("examples/bare_pingora").display().to_string()
    });
    let tick_ms = 1000.0 / clock_ticks();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let work = tempfile::tempdir().expect("temp dir");
        // The static upstream: 12 bytes from nginx.
        let up_port = free_port();
        let upstream_addr: SocketAddr = ([127, 0, 0, 1], up_port).into();
        let up = nginx(
            "upstream",
            threads,
            &format!(
                "  server {{\n    listen 127.0.0.1:{up_port};\n    location / {{\n      default_type text/plain;\n      return 200 \"{}\";\n    }}\n  }}",
                BODY.replace('\n', "\\n")
            ),
            "",
        );

        // prehod, logged in through the simulator, its portals all on the static upstream.
        let mut ph = prehod(threads, upstream_addr, true).await;
        let pki = &ph.world.pki;
        let prehod_procs = Procs {
            pids: vec![ph.world.gw.pid()],
        };
        let cert = pki.path("server.crt").display().to_string();
        let key = pki.path("server.key").display().to_string();

        // nginx as the TLS reverse proxy, keep-alive pool to the upstream; a second server
        // verifies client certificates against the dev CA.
        let (ngx_port, ngx_mtls_port) = (free_port(), free_port());
        let tls = format!("    ssl_certificate {cert};\n    ssl_certificate_key {key};\n    ssl_protocols TLSv1.2 TLSv1.3;\n");
        let location = "    location / {\n      proxy_pass http://backend;\n      proxy_http_version 1.1;\n      proxy_set_header Connection \"\";\n    }\n";
        let ngx = nginx(
            "TLS proxy",
            threads,
            &format!(
                "  server {{\n    listen 127.0.0.1:{ngx_port} ssl http2;\n{tls}{location}  }}\n\
  server {{\n    listen 127.0.0.1:{ngx_mtls_port} ssl;\n{tls}    ssl_client_certificate {ca};\n    ssl_verify_client on;\n    ssl_verify_depth 3;\n{location}  }}",
                ca = pki.path("ca.crt").display()
            ),
            &format!("  upstream backend {{\n    server {upstream_addr};\n    keepalive {};\n  }}", connections.max(32)),
        );

        // The bare pingora proxy.
        let bare_port = free_port();
        let bare = Killed(
            Command::new(&bare_bin)
                .arg(format!("127.0.0.1:{bare_port}"))
                .arg(upstream_addr.to_string())
                .args([&cert, &key])
                .arg(threads.to_string())
                .stdout(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("start {bare_bin}: {e} (cargo build --release --example bare_pingora)")),
        );
        let bare_procs = Procs { pids: vec![bare.0.id()] };

        let ca = pki.path("ca.crt");
        let client_cert = Some((pki.path("clients/valid.crt"), pki.path("clients/valid.key")));
        let plain = connector(&ca, None, true);
        let with_cert = connector(&ca, client_cert, true);
        let loop_addr = |port: u16| -> SocketAddr { ([127, 0, 0, 1], port).into() };
        let gw = ph.world.gw.https;
        let session = format!("Cookie: {SESSION}={}", ph.cookie);
        let name_ngx = "127.0.0.1".to_owned();
        let row = |name: &'static str, tool: Tool, host: &str, addr: SocketAddr, headers: Vec<String>, conn: Option<Arc<SslConnector>>, proxy: Option<&Procs>| {
            let scheme = if conn.is_some() { "https" } else { "http" };
            let close = matches!(tool, Tool::Client(Mode::NewConnection));
            Row {
                name,
                tool,
                url: format!("{scheme}://{host}:{}/", addr.port()),
                connect_to: addr,
                target: Target {
                    addr,
                    tls: conn.map(|c| (c, host.to_owned())),
                    request: request(host, &headers, close),
                },
                headers,
                proxy: proxy.cloned(),
                upstream: up.procs.clone(),
            }
        };
        let acq = host("acq");
        let bips = host("bips");
        let bws = host("bws");
        let mut rows = vec![
            row("upstream direct (nginx, plain HTTP)", Tool::Wrk, &name_ngx, upstream_addr, vec![], None, None),
            row(NGINX_PROXY_ROW, Tool::Wrk, &name_ngx, loop_addr(ngx_port), vec![], Some(plain.clone()), Some(&ngx.procs)),
            row(BARE_ROW, Tool::Wrk, &name_ngx, loop_addr(bare_port), vec![], Some(plain.clone()), Some(&bare_procs)),
            row("prehod, public route", Tool::Wrk, &acq, gw, vec![], Some(plain.clone()), Some(&prehod_procs)),
            row(AUTHENTICATED_ROW, Tool::Wrk, &bips, gw, vec![session.clone()], Some(plain.clone()), Some(&prehod_procs)),
            row("prehod, certificate-only portal (mTLS, keep-alive)", Tool::Client(Mode::KeepAlive), &bws, gw, vec![], Some(with_cert.clone()), Some(&prehod_procs)),
            row("new TLS connection per request: nginx", Tool::Client(Mode::NewConnection), &name_ngx, loop_addr(ngx_port), vec![], Some(plain.clone()), Some(&ngx.procs)),
            row("new TLS connection per request: nginx, client certificate", Tool::Client(Mode::NewConnection), &name_ngx, loop_addr(ngx_mtls_port), vec![], Some(with_cert.clone()), Some(&ngx.procs)),
            row("new TLS connection per request: prehod, public", Tool::Client(Mode::NewConnection), &acq, gw, vec![], Some(plain.clone()), Some(&prehod_procs)),
            row("new TLS connection per request: prehod, client certificate (bws)", Tool::Client(Mode::NewConnection), &bws, gw, vec![], Some(with_cert.clone()), Some(&prehod_procs)),
            row("HTTP/2 (h2load): nginx TLS proxy", Tool::H2load, &name_ngx, loop_addr(ngx_port), vec![], Some(plain.clone()), Some(&ngx.procs)),
            row("HTTP/2 (h2load): prehod, authenticated", Tool::H2load, &bips, gw, vec![session.clone()], Some(plain.clone()), Some(&prehod_procs)),
        ];
        // nginx's name on the server certificate: the dev certificate names the portals, so
        // the clients talk to nginx and the bare proxy by a portal's name too.
        for r in rows.iter_mut().filter(|r| r.target.addr != gw && r.target.tls.is_some()) {
            r.url = r.url.replace("127.0.0.1", &acq);
            r.target.tls = r.target.tls.take().map(|(c, _)| (c, acq.clone()));
            r.target.request = request(&acq, &r.headers, matches!(r.tool, Tool::Client(Mode::NewConnection)));
        }
        // nginx in front of the forward-auth portal fa, asking prehod with `auth_request`: the
        // shipped template (deploy/nginx/), on 127.0.0.2 at prehod's port (one public port),
        // connecting to prehod from 127.0.0.2 (its trusted proxy). Its CPU is nginx's and
        // prehod's together.
        let fa = "fa.bankart.localhost".to_owned();
        let fa_addr: SocketAddr = ([127, 0, 0, 2], gw.port()).into();
        let template = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/deploy/nginx/forward-auth.conf.template"
        ))
        .expect("the shipped nginx template");
        let rendered = [
            ("LISTEN", fa_addr.to_string()),
            ("PORTAL_HOST", fa.clone()),
            ("PUBLIC_AUTHORITY", format!("{fa}:{}", gw.port())),
            ("CERT", cert.clone()),
            ("KEY", key.clone()),
            ("PORTAL", format!("http://{upstream_addr}")),
            ("PREHOD", gw.to_string()),
            ("LOGIN_HOST", "login.bankart.localhost".to_owned()),
            ("PREHOD_CA", ca.display().to_string()),
            ("UPSTREAM_NAME", "prehod".to_owned()),
            ("COOKIE_PREFIX", "prehod".to_owned()),
            ("PORTAL_PREFIX", "/.prehod/".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        // prehod's default identity header names (`headers.*`), as the template's H_* names.
        .chain(
            [
                "USER", "EMAIL", "NAME", "METHOD", "LEVEL", "AMR", "ASSERTION",
                "CERT_SUBJECT", "CERT_ISSUER", "CERT_SERIAL", "CERT_FINGERPRINT",
            ]
            .into_iter()
            .flat_map(|stem| {
                let var = format!("x_auth_{}", stem.to_ascii_lowercase());
                let name = var.replace('_', "-");
                [(format!("H_{stem}"), name), (format!("H_{stem}_VAR"), var)]
            }),
        )
        .fold(template, |t, (k, v)| t.replace(&format!("{{{{{k}}}}}"), &v))
        .replace("    server_name ", "    proxy_bind 127.0.0.2;\n    server_name ");
        let auth_ngx = nginx("auth_request", threads, &rendered, "");
        ph.browser.http = ph
            .world
            .gw
            .client_builder()
            .resolve("rekono.localhost", ([127, 0, 0, 1], 0).into())
            .resolve(&fa, fa_addr)
            .build()
            .expect("client");
        let page = ph.browser.follow(&format!("https://{fa}:{}/", gw.port())).await;
        assert_eq!(page.status, 200, "single sign-on to fa through nginx: {}", page.body);
        let fa_session = ph.browser.cookie_at(&fa, SESSION).expect("fa's session cookie");
        let mut both = auth_ngx.procs.clone();
        both.pids.push(ph.world.gw.pid());
        rows.push(row("nginx auth_request → prehod forward-auth, authenticated (CPU: both)", Tool::Wrk, &fa, fa_addr, vec![format!("Cookie: {SESSION}={fa_session}")], Some(plain.clone()), Some(&both)));
        // COMPARE_ONLY: only the rows whose name holds it (a smoke of one row), no paced runs.
        let only = std::env::var("COMPARE_ONLY").ok();
        if let Some(o) = &only {
            rows.retain(|r| o.split('|').any(|part| r.name.contains(part)));
            assert!(!rows.is_empty(), "COMPARE_ONLY={o} names no row");
        }
        // The paced rates are halves of the nginx proxy's and the authenticated route's maximums.
        let paced_asked = std::env::var("COMPARE_PACED").is_ok_and(|v| v == "1");
        if only.is_some() && paced_asked {
            let kept = |name: &str| rows.iter().any(|r| r.name == name);
            assert!(
                kept(NGINX_PROXY_ROW) && kept(AUTHENTICATED_ROW),
                "COMPARE_PACED=1: COMPARE_ONLY must keep both \"nginx TLS reverse proxy\" and \"prehod, authenticated (Rekono\""
            );
        }

        // Everything answers 200 before the clock starts (polled, not slept).
        for r in &rows {
            let deadline = Instant::now() + Duration::from_secs(20);
            loop {
                let ok = async {
                    let mut c = connect(&r.target).await?;
                    let mut buf = Vec::new();
                    let s = exchange(&mut c, &request(&r.target.tls.as_ref().map_or(name_ngx.clone(), |t| t.1.clone()), &r.headers, false), &mut buf).await?;
                    if s == 200 && buf.ends_with(BODY.as_bytes()) {
                        Ok(())
                    } else {
                        Err(format!("{s}: {}", String::from_utf8_lossy(&buf)))
                    }
                }
                .await;
                match ok {
                    Ok(()) => break,
                    Err(e) if Instant::now() > deadline => panic!("{}: not ready: {e}", r.name),
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        }

        // What the proxies hold at idle before any load (prehod: after start-up, the login and
        // the readiness requests above), so that a peak can be told from the baseline.
        let idle_kib = [("prehod", prehod_procs.rss_kib()), ("nginx TLS proxy", ngx.procs.rss_kib())];
        let mut results: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
        let mut peak_reset = true;
        for round in 0..rounds {
            for (i, r) in rows.iter().enumerate() {
                let server = r.proxy.as_ref().unwrap_or(&r.upstream);
                peak_reset &= server.reset_peak();
                let (p0, u0) = (r.proxy.as_ref().map_or(0, Procs::cpu_ticks), r.upstream.cpu_ticks());
                let dir = work.path().to_owned();
                let mut s = match r.tool {
                    Tool::Wrk => {
                        let (url, connect_to, headers) = (r.url.clone(), r.connect_to, r.headers.clone());
                        tokio::task::spawn_blocking(move || wrk(&url, connect_to, &headers, connections, threads, seconds, smoke, &dir))
                            .await
                            .expect("wrk")
                    }
                    Tool::H2load => {
                        let (url, connect_to, headers) = (r.url.clone(), r.connect_to, r.headers.clone());
                        tokio::task::spawn_blocking(move || h2load(&url, connect_to, &headers, connections, threads, seconds))
                            .await
                            .expect("h2load")
                    }
                    Tool::Client(mode) => drive(&r.target, mode, connections, seconds).await,
                };
                let (p1, u1) = (r.proxy.as_ref().map_or(0, Procs::cpu_ticks), r.upstream.cpu_ticks());
                s.proxy_cpu_ms_per_1k = cpu_ms_per_1k(p1 - p0, tick_ms, s.requests);
                s.upstream_cpu_ms_per_1k = cpu_ms_per_1k(u1 - u0, tick_ms, s.requests);
                s.peak_kib = server.peak_kib();
                eprintln!(
                    "round {}/{rounds} {:<62} {:>9.0} req/s  p50 {:.2} ms  CPU {:.1}/{:.1} ms per 1k",
                    round + 1,
                    r.name,
                    s.rps,
                    s.p50,
                    s.proxy_cpu_ms_per_1k,
                    s.upstream_cpu_ms_per_1k
                );
                results.entry(i).or_default().push(s);
            }
        }

        // Latency at half of the maximum load: the nginx proxy and prehod's authenticated
        // route at the same offered load (half of nginx's maximum), and each at half of
        // prehod's own maximum — prehod's p99 there against nginx's at the same absolute rate
        // (issue 20) — (keep-alive, this file's client, paced).
        // The rows by name (COMPARE_ONLY may have left others out); with COMPARE_ONLY the
        // paced runs only when COMPARE_PACED=1 (and the nginx proxy's and authenticated rows
        // are in; the bare proxy's is paced when kept).
        let index = |name: &str| rows.iter().position(|r| r.name == name);
        let (ngx_row, auth_row, bare_row) = (index(NGINX_PROXY_ROW), index(AUTHENTICATED_ROW), index(BARE_ROW));
        let max_of = |i: Option<usize>| i.and_then(|i| results.get(&i)).map(|v| median(v.iter().map(|s| s.rps).collect())).unwrap_or(1000.0);
        let half = (max_of(ngx_row) / 2.0).max(100.0);
        let half_own = (max_of(auth_row) / 2.0).max(100.0);
        let paced = [
            (ngx_row, half, "nginx TLS proxy, at half nginx's maximum"),
            (auth_row, half, "prehod authenticated, at half nginx's maximum"),
            (auth_row, half_own, "prehod authenticated, at half its own maximum"),
            (ngx_row, half_own, "nginx TLS proxy, at half prehod's maximum"),
            // The floor at the same rate: how much of prehod's tail pingora's own pays.
            (bare_row, half_own, "bare pingora TLS proxy, at half prehod's maximum"),
        ];
        let paced_rounds = if only.is_none() || paced_asked { rounds } else { 0 };
        let mut paced_results: BTreeMap<usize, Vec<Sample>> = BTreeMap::new();
        for _ in 0..paced_rounds {
            for (k, (i, rate, _)) in paced.iter().enumerate() {
                let Some(r) = i.and_then(|i| rows.get(i)) else { continue };
                let p0 = r.proxy.as_ref().map_or(0, Procs::cpu_ticks);
                let mut s = drive(&r.target, Mode::Paced(*rate), connections, seconds).await;
                let p1 = r.proxy.as_ref().map_or(0, Procs::cpu_ticks);
                s.proxy_cpu_ms_per_1k = cpu_ms_per_1k(p1 - p0, tick_ms, s.requests);
                paced_results.entry(k).or_default().push(s);
            }
        }

        let mut table = String::new();
        let h2 = h2_streams();
        let load = format!(
            "{connections} connections, {threads} threads (wrk -t{threads} -c{connections}; h2load -t{threads} -c{connections} -m{h2}; own client {connections} tasks), {seconds} s per target, {rounds} round(s) interleaved, medians"
        );
        table.push_str(&format!("{load}\n\n| target | tool | req/s | p50 ms | p99 ms | proxy CPU ms / 1 000 req | upstream CPU ms / 1 000 req | proxy peak RSS MiB |\n|---|---|---:|---:|---:|---:|---:|---:|\n"));
        for (i, r) in rows.iter().enumerate() {
            let Some(v) = results.get(&i) else { continue };
            let m = |f: &dyn Fn(&Sample) -> f64| median(v.iter().map(f).collect());
            let tool = match r.tool {
                Tool::Wrk => "wrk",
                Tool::H2load => "h2load",
                Tool::Client(Mode::KeepAlive) => "own client",
                Tool::Client(_) => "own client, new conn.",
            };
            let p99 = if v.iter().all(|s| s.p99.is_some()) {
                format!("{:.2}", m(&|s| s.p99.unwrap_or(0.0)))
            } else {
                "–".to_owned()
            };
            let p50 = if matches!(r.tool, Tool::H2load) {
                format!("{:.2} (mean)", m(&|s| s.p50))
            } else {
                format!("{:.2}", m(&|s| s.p50))
            };
            let proxy_cpu = if r.proxy.is_some() { format!("{:.1}", m(&|s| s.proxy_cpu_ms_per_1k)) } else { "–".to_owned() };
            table.push_str(&format!(
                "| {} | {tool} | {:.0} | {p50} | {p99} | {proxy_cpu} | {:.1} | {:.1} |\n",
                r.name,
                m(&|s| s.rps),
                m(&|s| s.upstream_cpu_ms_per_1k),
                m(&|s| s.peak_kib as f64) / 1024.0,
            ));
        }
        if !paced_results.is_empty() {
        table.push_str(&format!("\nPaced keep-alive load ({connections} connections, own client; latency from the scheduled send time, so a server that falls behind shows it):\n\n| target | offered req/s | req/s | p50 ms | p99 ms | proxy CPU ms / 1 000 req |\n|---|---:|---:|---:|---:|---:|\n"));
        for (k, (_, rate, name)) in paced.iter().enumerate() {
            let Some(v) = paced_results.get(&k) else { continue };
            table.push_str(&format!(
                "| {name} | {rate:.0} | {:.0} | {:.2} | {:.2} | {:.1} |\n",
                median(v.iter().map(|s| s.rps).collect()),
                median(v.iter().map(|s| s.p50).collect()),
                median(v.iter().map(|s| s.p99.unwrap_or(0.0)).collect()),
                median(v.iter().map(|s| s.proxy_cpu_ms_per_1k).collect()),
            ));
        }
        }
        let idle: Vec<String> = idle_kib.iter().map(|(name, kib)| format!("{name} {:.1} MiB", *kib as f64 / 1024.0)).collect();
        let after = [("prehod", prehod_procs.rss_kib()), ("nginx TLS proxy", ngx.procs.rss_kib())];
        let after: Vec<String> = after.iter().map(|(name, kib)| format!("{name} {:.1} MiB", *kib as f64 / 1024.0)).collect();
        table.push_str(&format!("\nRSS at idle before the load: {}; after the last target: {}.\n", idle.join(", "), after.join(", ")));
        if !peak_reset {
            table.push_str("\n(The kernel refused /proc/PID/clear_refs: peak RSS is since each process started.)\n");
        }
        // The access logs were on: prove it.
        let log_lines = std::fs::read_to_string(&ph.world.gw.log).map(|l| l.matches("\"access\"").count()).unwrap_or(0);
        table.push_str(&format!("\nprehod's JSON access log: {log_lines} lines written during the run; nginx's access_log on.\n"));
        println!("\n{table}");
        if let Ok(out) = std::env::var("COMPARE_OUT") {
            std::fs::write(out, &table).expect("COMPARE_OUT");
        }
        drop(bare);
        drop(auth_ngx);
        drop(ngx);
        drop(up);
    });
}
